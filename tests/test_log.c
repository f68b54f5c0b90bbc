/* Tests for log: log_quote escaping and truncation, memprintf, level names. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <slotsync/log.h>

#define B(s) s, sizeof(s) - 1

struct quote_case {
    const char *in;
    size_t len;
    const char *out;
};

Test(log, quote_escapes)
{
    static const struct quote_case cases[] = {
        {B(""), ""},
        {B("plain text 123"), "plain text 123"},
        {B("a\nb"), "a\\nb"},
        {B("a\rb\tc"), "a\\rb\\tc"},
        {B("say \"hi\""), "say \\\"hi\\\""},
        {B("back\\slash"), "back\\\\slash"},
        {B("\x01\x1f"), "\\x01\\x1f"},
        {B("del\x7f"), "del\\x7f"},
        {B("nul\0inside"), "nul\\x00inside"},
        {B("caf\xc3\xa9"), "caf\\xc3\\xa9"},
        {B("\xff"), "\\xff"},
        {B("10.0.0.1:80;shutdown sessions"), "10.0.0.1:80;shutdown sessions"},
        {B("line\nforged 2024-01-01 error x: y"), "line\\nforged 2024-01-01 error x: y"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        char *ret = log_quote(cases[i].in, cases[i].len, out, sizeof(out));

        cr_expect_eq(ret, out, "case %zu: returns out", i);
        cr_expect_str_eq(out, cases[i].out, "case %zu", i);
    }
}

Test(log, quote_len_limits_input)
{
    char out[32];

    cr_expect_str_eq(log_quote("abcdef", 3, out, sizeof(out)), "abc");
}

Test(log, quote_truncates_with_marker)
{
    char big[600], out[64];

    memset(big, 'x', sizeof(big));
    log_quote(big, sizeof(big), out, sizeof(out));
    cr_expect_lt(strlen(out), sizeof(out));
    cr_expect_eq(strncmp(out + strlen(out) - 3, "...", 3), 0, "got \"%s\"", out);
    for (size_t i = 0; i < strlen(out) - 3; i++)
        cr_expect_eq(out[i], 'x');
}

Test(log, quote_never_splits_an_escape)
{
    char nl[40], out[16];

    memset(nl, '\n', sizeof(nl));
    log_quote(nl, sizeof(nl), out, sizeof(out));
    cr_expect_lt(strlen(out), sizeof(out));
    /* every "\n" escape is complete: pairs of backslash-n, then "..." */
    size_t n = strlen(out) - 3;
    cr_expect_eq(n % 2, 0, "got \"%s\"", out);
    for (size_t i = 0; i < n; i += 2) {
        cr_expect_eq(out[i], '\\');
        cr_expect_eq(out[i + 1], 'n');
    }
    cr_expect_str_eq(out + n, "...");
}

Test(log, quote_tiny_buffers)
{
    char out[8];

    /* size 0: nothing written at all */
    memset(out, 'Z', sizeof(out));
    log_quote("abc", 3, out, 0);
    cr_expect_eq(out[0], 'Z');

    for (size_t size = 1; size <= sizeof(out); size++) {
        memset(out, 'Z', sizeof(out));
        log_quote("abcdefghijkl", 12, out, size);
        cr_expect_lt(strlen(out), size, "size %zu: always NUL-terminated inside", size);
        for (size_t i = size; i < sizeof(out); i++)
            cr_expect_eq(out[i], 'Z', "size %zu: no write past the buffer", size);
    }
}

Test(log, quote_output_is_printable)
{
    char in[256], out[2048];

    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    log_quote(in, sizeof(in), out, sizeof(out));
    for (size_t i = 0; out[i]; i++)
        cr_expect(out[i] >= 0x20 && out[i] < 0x7f, "byte %zu is 0x%02x", i, (unsigned char)out[i]);
}

Test(log, memprintf_formats)
{
    char *s = NULL;

    cr_expect_str_eq(memprintf(&s, "%s:%d", "port", 80), "port:80");
    cr_expect_str_eq(s, "port:80");
    /* the previous value is freed, and may be used as an argument */
    memprintf(&s, "%s (more)", s);
    cr_expect_str_eq(s, "port:80 (more)");
    memprintf(&s, "%s", "");
    cr_expect_str_eq(s, "");
    free(s);
}

Test(log, memprintf_null_out)
{
    cr_expect_null(memprintf(NULL, "x %d", 1));
}

Test(log, memprintf_long)
{
    char *s = NULL;
    char big[5000];

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memprintf(&s, "<%s>", big);
    cr_assert_not_null(s);
    cr_expect_eq(strlen(s), sizeof(big) + 1);
    free(s);
}

Test(log, level_parse)
{
    static const struct {
        const char *name;
        int level;
    } cases[] = {
        {"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
        {"ERROR", -1},        {"Info", -1},       {"warning", -1},    {"", -1},
        {"info ", -1},        {" info", -1},      {"debug\n", -1},    {"trace", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(log_level_parse(cases[i].name), cases[i].level, "case %zu", i);
}

Test(log, level_names_round_trip)
{
    for (int l = LOG_ERROR; l <= LOG_DEBUG; l++)
        cr_expect_eq(log_level_parse(log_level_name((enum log_level)l)), l);
    cr_expect_str_eq(log_level_name((enum log_level)42), "?");
}

Test(log, set_get_level)
{
    enum log_level saved = log_get_level();

    log_set_level(LOG_DEBUG);
    cr_expect_eq(log_get_level(), LOG_DEBUG);
    log_set_level(LOG_ERROR);
    cr_expect_eq(log_get_level(), LOG_ERROR);
    log_set_level(saved);
}

Test(log, outage_cadence)
{
    struct log_outage o = {0};
    double el = 0;
    /* (seconds since start, line due?) in call order */
    static const struct {
        double at;
        bool due;
    } steps[] = {
        {0, false},   {5, false},  {9.9, false}, {10, true},    {12, false},  {29, false},
        {30, true},   {31, false}, {60, true},   {61, false},   {359, false}, {360, true},
        {400, false}, {660, true}, {2000, true}, {2001, false},
    };

    cr_assert(log_outage_begin(&o, 100));
    cr_assert_not(log_outage_begin(&o, 101), "an outage already going is not new");
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bool due = log_outage_due(&o, 100 + steps[i].at, &el);

        cr_expect_eq(due, steps[i].due, "at +%g s", steps[i].at);
        if (due)
            cr_expect_float_eq(el, steps[i].at, 1e-9, "elapsed at +%g s", steps[i].at);
    }
    cr_expect_float_eq(log_outage_end(&o, 2100), 2000, 1e-9);
    cr_expect_float_eq(log_outage_end(&o, 2101), -1, 1e-9, "ended twice");
    cr_expect_not(log_outage_due(&o, 5000, &el), "no outage, no line");
    cr_expect(log_outage_begin(&o, 5000), "a new outage after the end");
}
