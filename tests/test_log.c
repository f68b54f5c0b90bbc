/* Tests for log: log_quote escaping and truncation, memprintf, level names. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* log.h must build beside <syslog.h> (its LOG_INFO/LOG_DEBUG macros once
 * collided with log.h's level names): this suite includes both. */
#include <syslog.h>
#include <time.h>

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

/* The string form quotes the whole string, as log_quote() with its length
 * (config.c, etcd.c and etcd_sync.c each had that wrapper as quote()). */
Test(log, quote_str_is_quote_of_the_whole_string)
{
    static const char *const in[] = {"", "plain", "a\"b\\c\n", "\x01\x7f\xff",
                                     "http://127.0.0.1:2379"};
    char a[LOG_QUOTE_MAX], b[LOG_QUOTE_MAX], small[8], small2[8];

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        cr_expect_eq(log_quote_str(in[i], a, sizeof(a)), a);
        cr_expect_str_eq(a, log_quote(in[i], strlen(in[i]), b, sizeof(b)), "%s", in[i]);
    }
    cr_expect_str_eq(log_quote_str("abcdefghijkl", small, sizeof(small)),
                     log_quote("abcdefghijkl", 12, small2, sizeof(small2)));
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
        {"error", LOG_LEVEL_ERROR},
        {"warn", LOG_LEVEL_WARN},
        {"info", LOG_LEVEL_INFO},
        {"debug", LOG_LEVEL_DEBUG},
        {"ERROR", -1},
        {"Info", -1},
        {"warning", -1},
        {"", -1},
        {"info ", -1},
        {" info", -1},
        {"debug\n", -1},
        {"trace", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(log_level_parse(cases[i].name), cases[i].level, "case %zu", i);
}

Test(log, level_names_round_trip)
{
    for (int l = LOG_LEVEL_ERROR; l <= LOG_LEVEL_DEBUG; l++)
        cr_expect_eq(log_level_parse(log_level_name((enum log_level)l)), l);
    cr_expect_str_eq(log_level_name((enum log_level)42), "?");
}

Test(log, set_get_level)
{
    enum log_level saved = log_get_level();

    log_set_level(LOG_LEVEL_DEBUG);
    cr_expect_eq(log_get_level(), LOG_LEVEL_DEBUG);
    log_set_level(LOG_LEVEL_ERROR);
    cr_expect_eq(log_get_level(), LOG_LEVEL_ERROR);
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

/* ---- timestamps: RFC 3339, UTC by default ---- */

static bool rfc3339_utc_prefix(const char *line)
{
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ " */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";

    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? !(line[i] >= '0' && line[i] <= '9') : line[i] != shape[i])
            return false;
    }
    return true;
}

/* What a real log_msg writes to stderr, with a zone far from UTC set: the
 * stamp must be UTC with a 'Z', and its hour UTC's. */
Test(log, timestamp_is_utc_rfc3339, .init = cr_redirect_stderr)
{
    char buf[512] = "", want_hour[3], want_hour2[3];
    time_t before, after;
    struct tm tm;
    FILE *err;

    setenv("TZ", "America/New_York", 1);
    tzset();
    before = time(NULL);
    log_msg(LOG_LEVEL_ERROR, "test", "stamp check");
    after = time(NULL);
    fflush(stderr);
    err = cr_get_redirected_stderr();
    cr_assert(fgets(buf, sizeof(buf), err), "a line was written");
    cr_expect(rfc3339_utc_prefix(buf), "not RFC 3339 UTC: \"%s\"", buf);
    gmtime_r(&before, &tm);
    strftime(want_hour, sizeof(want_hour), "%H", &tm);
    gmtime_r(&after, &tm);
    strftime(want_hour2, sizeof(want_hour2), "%H", &tm);
    cr_expect(strncmp(buf + 11, want_hour, 2) == 0 || strncmp(buf + 11, want_hour2, 2) == 0,
              "hour is not UTC's (%s): \"%s\"", want_hour, buf);
    cr_expect(strstr(buf, " error test: stamp check\n") != NULL, "\"%s\"", buf);
}

Test(log, format_time_utc_and_local)
{
    char out[64];

    /* 2026-12-01T05:15:00Z */
    cr_expect_eq(log_format_time(1796102100, 123456, false, out, sizeof(out)), 24);
    cr_expect_str_eq(out, "2026-12-01T05:15:00.123Z");
    setenv("TZ", "America/New_York", 1);
    tzset();
    log_format_time(1796102100, 123456, true, out, sizeof(out));
    cr_expect_str_eq(out, "2026-12-01T00:15:00.123-05:00");
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    log_format_time(1796102100, 0, true, out, sizeof(out));
    cr_expect_str_eq(out, "2026-12-01T10:45:00.000+05:30");
    setenv("TZ", "UTC", 1);
    tzset();
    log_format_time(1796102100, 999999, true, out, sizeof(out));
    cr_expect_str_eq(out, "2026-12-01T05:15:00.999+00:00");
}

/* ---- rate limit: pure logic with an injected clock ---- */

Test(log, rate_allows_a_burst_then_summarises)
{
    struct log_rate r = {0};
    unsigned long sum = 99;
    unsigned printed = 0;

    /* 5,000 lines within 0.5 s: 50 print, the rest is hidden */
    for (int i = 0; i < 5000; i++) {
        if (log_rate_allow(&r, 100.0 + i * 1e-4, &sum))
            printed++;
        cr_assert_eq(sum, 0, "no summary inside the window (line %d)", i);
    }
    cr_expect_eq(printed, LOG_RATE_LINES);
    /* nothing due before the window ends */
    cr_expect_not(log_rate_flush(&r, 100.9, &sum));
    /* the next line after the window: it prints, after a summary of 4,950 */
    cr_expect(log_rate_allow(&r, 101.2, &sum));
    cr_expect_eq(sum, 5000 - LOG_RATE_LINES);
    /* and the new window has its own budget */
    printed = 1;
    for (int i = 0; i < 100; i++)
        printed += log_rate_allow(&r, 101.3, &sum);
    cr_expect_eq(printed, LOG_RATE_LINES);
}

Test(log, rate_flush_reports_once_when_quiet)
{
    struct log_rate r = {0};
    unsigned long sum;

    for (int i = 0; i < 60; i++)
        log_rate_allow(&r, 10.0, &sum);
    cr_expect_not(log_rate_flush(&r, 10.5, &sum));
    cr_expect(log_rate_flush(&r, 11.0, &sum));
    cr_expect_eq(sum, 10);
    cr_expect_not(log_rate_flush(&r, 12.0, &sum), "reported once");
    /* a quiet key starts afresh */
    cr_expect(log_rate_allow(&r, 20.0, &sum));
    cr_expect_eq(sum, 0);
}

Test(log, rate_slow_lines_never_limited)
{
    struct log_rate r = {0};
    unsigned long sum;

    /* 40 lines a second for a minute: all printed, no summary */
    for (int i = 0; i < 40 * 60; i++) {
        cr_assert(log_rate_allow(&r, i / 40.0, &sum), "line %d", i);
        cr_assert_eq(sum, 0);
    }
}

/* ---- rate limit end to end: log_msg with an injected clock ---- */

static double fake_now;
static double fake_clock(void)
{
    return fake_now;
}
static long fake_wall(long *usec)
{
    *usec = 0;
    return 1796102100;
}

static size_t count_lines(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(log, msg_flood_is_summarised_per_call_site)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    cr_assert(out);
    log_set_output(out);
    log_set_clock(fake_clock, fake_wall);
    log_set_level(LOG_LEVEL_INFO);
    fake_now = 1000.0;
    /* one key flapping: 5,000 "changed" lines in a second, and in between a
     * line of another call site, which keeps its own budget */
    for (int i = 0; i < 5000; i++) {
        fake_now = 1000.0 + i * 1.9e-4;
        log_info("sync", "etcd key \"/services/web/k\" updated: weight %d", i % 7);
        if (i % 1000 == 0)
            log_warn("sync", "another site %d", i);
    }
    fflush(out);
    cr_expect_eq(count_lines(text, "updated: weight"), LOG_RATE_LINES, "%s", text);
    cr_expect_eq(count_lines(text, "another site"), 5);
    cr_expect_eq(count_lines(text, "similar lines"), 0, "no summary before the second is over");
    /* a second later, with no new line, the timer's flush prints the summary */
    fake_now = 1001.5;
    log_flush(false);
    fflush(out);
    cr_expect(strstr(text, "2026-12-01T05:15:00.000Z info  sync: +4950 similar lines in the "
                           "last second (last: etcd key \"/services/web/k\" updated: weight 1)\n"),
              "%s", text + (len > 300 ? len - 300 : 0));
    cr_expect_eq(count_lines(text, "similar lines"), 1);
    log_flush(false);
    fflush(out);
    cr_expect_eq(count_lines(text, "similar lines"), 1, "a summary is printed once");
    /* debug lines and log_msg_all are never limited */
    log_set_level(LOG_LEVEL_DEBUG);
    for (int i = 0; i < 200; i++) {
        log_debug("sync", "debug line %d", i);
        log_msg_all(LOG_LEVEL_INFO, "sync", "dump line %d", i);
    }
    fflush(out);
    cr_expect_eq(count_lines(text, "debug line"), 200);
    cr_expect_eq(count_lines(text, "dump line"), 200);
    /* --log-unlimited: every line of a flood */
    log_set_unlimited(true);
    for (int i = 0; i < 200; i++)
        log_info("sync", "unlimited %d", i);
    log_set_unlimited(false);
    fflush(out);
    cr_expect_eq(count_lines(text, "unlimited"), 200);
    log_set_output(NULL);
    log_set_clock(NULL, NULL);
    log_set_level(LOG_LEVEL_INFO);
    fclose(out);
    free(text);
}

/* At exit every pending summary is printed, and log_msg_all ignores the
 * level threshold (a dump asked for with SIGUSR1 shows at any level). */
Test(log, flush_all_and_msg_all_threshold)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    cr_assert(out);
    log_set_output(out);
    log_set_clock(fake_clock, fake_wall);
    log_set_level(LOG_LEVEL_WARN);
    fake_now = 50.0;
    for (int i = 0; i < 70; i++)
        log_warn("x", "flood %d", i);
    log_info("x", "below the threshold");
    log_msg_all(LOG_LEVEL_INFO, "x", "asked for");
    log_flush(false);
    fflush(out);
    cr_expect_eq(count_lines(text, "similar lines"), 0);
    log_flush(true);
    fflush(out);
    cr_expect(strstr(text, "warn  x: +20 similar lines in the last second (last: flood 69)\n"),
              "%s", text);
    cr_expect_eq(count_lines(text, "below the threshold"), 0);
    cr_expect_eq(count_lines(text, "info  x: asked for"), 1);
    log_set_output(NULL);
    log_set_clock(NULL, NULL);
    fclose(out);
    free(text);
}

/* ---- --log-format (issue 13) ---- */

static char *log_one(enum log_format f, const char *module, const char *msg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    cr_assert(out);
    log_set_output(out);
    log_set_clock(NULL, fake_wall);
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(f);
    log_msg_all(LOG_LEVEL_WARN, module, "%s", msg);
    log_set_format(LOG_FORMAT_TEXT);
    log_set_output(NULL);
    log_set_clock(NULL, NULL);
    fclose(out);
    return text;
}

Test(log, formats_escape_every_field)
{
    static const struct {
        enum log_format f;
        const char *msg, *want;
    } cases[] = {
        {LOG_FORMAT_TEXT, "endpoint added",
         "2026-12-01T05:15:00.000Z warn  sync: endpoint added\n"},
        {LOG_FORMAT_LOGFMT, "endpoint added",
         "ts=2026-12-01T05:15:00.000Z level=warn module=\"sync\" msg=\"endpoint added\"\n"},
        {LOG_FORMAT_LOGFMT, "say \"hi\"\\ x=1\nlevel=error",
         "ts=2026-12-01T05:15:00.000Z level=warn module=\"sync\" "
         "msg=\"say \\\"hi\\\"\\\\ x=1\\nlevel=error\"\n"},
        {LOG_FORMAT_JSON, "endpoint added",
         "{\"ts\":\"2026-12-01T05:15:00.000Z\",\"level\":\"warn\",\"module\":\"sync\","
         "\"msg\":\"endpoint added\"}\n"},
        {LOG_FORMAT_JSON, "q\"b\\\x01\t\xc3\xa9",
         "{\"ts\":\"2026-12-01T05:15:00.000Z\",\"level\":\"warn\",\"module\":\"sync\","
         "\"msg\":\"q\\\"b\\\\\\u0001\\t\\u00c3\\u00a9\"}\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = log_one(cases[i].f, "sync", cases[i].msg);

        cr_expect_str_eq(got, cases[i].want, "case %zu", i);
        free(got);
    }
    cr_expect_eq(log_format_parse("text"), LOG_FORMAT_TEXT);
    cr_expect_eq(log_format_parse("logfmt"), LOG_FORMAT_LOGFMT);
    cr_expect_eq(log_format_parse("json"), LOG_FORMAT_JSON);
    cr_expect_eq(log_format_parse("JSON"), -1);
}

Test(log, levels_do_not_collide_with_syslog)
{
    /* both sets of names usable in one file, with their own values */
    cr_expect_eq(LOG_LEVEL_ERROR, 0);
    cr_expect_eq(LOG_LEVEL_DEBUG, 3);
    cr_expect_eq(LOG_INFO, 6);
    cr_expect_eq(LOG_DEBUG, 7);
    cr_expect_str_eq(log_level_name(LOG_LEVEL_WARN), "warn");
}

/* ---- per-event fields: log_fields() (issue 13) ---- */

/* One log_fields() line in format f, as printed (the caller frees). */
static char *fields_one(enum log_format f, const struct log_field *fields, size_t n,
                        const char *msg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    cr_assert(out);
    log_set_output(out);
    log_set_clock(fake_clock, fake_wall);
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(f);
    /* a new window for every call, so that the limiter never hides one */
    fake_now += 10.0;
    log_fields(LOG_LEVEL_INFO, "sync", fields, n, "%s", msg);
    log_set_format(LOG_FORMAT_TEXT);
    log_set_output(NULL);
    log_set_clock(NULL, NULL);
    fclose(out);
    return text;
}

#define TS "2026-12-01T05:15:00.000Z"
#define JHEAD "{\"ts\":\"" TS "\",\"level\":\"info\",\"module\":\"sync\","

Test(log, fields_in_each_format)
{
    static const struct log_field change[] = {
        {"service", "api"}, {"instance", "c1"}, {"addr", "10.0.0.5:8080"},
        {"slot", "s3"},     {"had", NULL}, /* left out */
    };
    static const struct {
        enum log_format f;
        const char *want;
    } cases[] = {
        /* text: the message alone, as people read it today */
        {LOG_FORMAT_TEXT, TS " info  sync: endpoint added\n"},
        {LOG_FORMAT_LOGFMT, "ts=" TS " level=info module=\"sync\" msg=\"endpoint added\" "
                            "service=api instance=c1 addr=10.0.0.5:8080 slot=s3\n"},
        {LOG_FORMAT_JSON,
         JHEAD "\"msg\":\"endpoint added\",\"service\":\"api\","
               "\"instance\":\"c1\",\"addr\":\"10.0.0.5:8080\",\"slot\":\"s3\"}\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = fields_one(cases[i].f, change, 5, "endpoint added");

        cr_expect_str_eq(got, cases[i].want, "case %zu", i);
        free(got);
    }
}

/* Hostile values (from etcd keys, HAProxy's replies) cannot add a key, end
 * the record or forge a line, in either format. */
Test(log, fields_escape_hostile_values)
{
    static const struct {
        enum log_format f;
        const char *value, *want;
    } cases[] = {
        {LOG_FORMAT_LOGFMT, "", "v=\"\""},
        {LOG_FORMAT_LOGFMT, "a b", "v=\"a b\""},
        {LOG_FORMAT_LOGFMT, "x=1", "v=\"x=1\""},
        {LOG_FORMAT_LOGFMT, "say \"hi\"", "v=\"say \\\"hi\\\"\""},
        {LOG_FORMAT_LOGFMT, "a\nts=forged level=error", "v=\"a\\nts=forged level=error\""},
        {LOG_FORMAT_LOGFMT, "back\\slash", "v=\"back\\\\slash\""},
        {LOG_FORMAT_LOGFMT, "\x01\x1f\x7f\r\t", "v=\"\\x01\\x1f\\x7f\\r\\t\""},
        {LOG_FORMAT_LOGFMT, "caf\xc3\xa9", "v=\"caf\xc3\xa9\""},
        {LOG_FORMAT_JSON, "", "\"v\":\"\""},
        {LOG_FORMAT_JSON, "say \"hi\"", "\"v\":\"say \\\"hi\\\"\""},
        {LOG_FORMAT_JSON, "a\n\"}{\"x\":\"", "\"v\":\"a\\n\\\"}{\\\"x\\\":\\\"\""},
        {LOG_FORMAT_JSON, "back\\slash", "\"v\":\"back\\\\slash\""},
        {LOG_FORMAT_JSON, "\x01\x1f\x7f\r\t", "\"v\":\"\\u0001\\u001f\\u007f\\r\\t\""},
        {LOG_FORMAT_JSON, "caf\xc3\xa9\xff", "\"v\":\"caf\\u00c3\\u00a9\\u00ff\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct log_field f[] = {{"v", cases[i].value}, {"end", "1"}};
        char *got = fields_one(cases[i].f, f, 2, "m");
        bool json = cases[i].f == LOG_FORMAT_JSON;
        char want[256];

        snprintf(want, sizeof(want), json ? "%s,\"end\":\"1\"}\n" : " %s end=1\n", cases[i].want);
        cr_expect(strstr(got, want), "case %zu: want ...%s got %s", i, want, got);
        cr_expect_eq(count_lines(got, "\n"), 1, "case %zu: one line", i);
        free(got);
    }
}

/* Keys come from the code, but a bad one still cannot break the record or
 * shadow the record's own keys. */
Test(log, fields_keys_are_plain_names)
{
    struct log_field f[] = {{"msg", "x"}, {"a b=\"c", "y"}, {"", "z"}, {NULL, "w"}};
    char *got = fields_one(LOG_FORMAT_LOGFMT, f, 4, "m");

    cr_expect_str_eq(got, "ts=" TS " level=info module=\"sync\" msg=\"m\" msg_=x a_b__c=y _=z\n");
    free(got);
    got = fields_one(LOG_FORMAT_JSON, f, 4, "m");
    cr_expect_str_eq(got, JHEAD "\"msg\":\"m\",\"msg_\":\"x\",\"a_b__c\":\"y\",\"_\":\"z\"}\n");
    free(got);
}

/* Values that do not fit are cut, but the line is still one closed record. */
Test(log, fields_long_values_keep_the_record_closed)
{
    size_t big = LOG_LINE_MAX * 8;
    char *v = malloc(big + 1);
    struct log_field f[8];

    cr_assert(v);
    memset(v, '"', big);
    v[big] = '\0';
    for (size_t i = 0; i < 8; i++)
        f[i] = (struct log_field){"k", v};
    for (int json = 0; json < 2; json++) {
        char *got = fields_one(json ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT, f, 8, v);
        size_t n = strlen(got);

        cr_expect_eq(count_lines(got, "\n"), 1);
        cr_expect(n > 2 && strcmp(got + n - (json ? 3 : 2), json ? "\"}\n" : "\"\n") == 0,
                  "ends %s", got + n - 8);
        free(got);
    }
    free(v);
}

/* log_fields is rate-limited per call site like log_msg. */
Test(log, fields_are_rate_limited)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    struct log_field f[] = {{"service", "api"}};

    cr_assert(out);
    log_set_output(out);
    log_set_clock(fake_clock, fake_wall);
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(LOG_FORMAT_LOGFMT);
    fake_now = 5000.0;
    for (int i = 0; i < 80; i++)
        log_fields(LOG_LEVEL_INFO, "sync", f, 1, "flap %d", i);
    log_flush(true);
    log_set_format(LOG_FORMAT_TEXT);
    fflush(out);
    cr_expect_eq(count_lines(text, "service=api"), LOG_RATE_LINES, "%s", text);
    cr_expect_eq(count_lines(text, "+30 similar lines in the last second (last: flap 79)"), 1);
    log_set_output(NULL);
    log_set_clock(NULL, NULL);
    fclose(out);
    free(text);
}

/* issue 19 item 11: a library's message ending in a newline is quoted
 * without it; a newline inside stays quoted. */
Test(log, chomp_drops_only_trailing_line_ends)
{
    static const struct {
        const char *in, *quoted;
    } cases[] = {
        {"Failed to bind\n", "Failed to bind"},
        {"two\r\n", "two"},
        {"in\nside\n", "in\\nside"},
        {"none", "none"},
        {"\n", ""},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char q[64];

        log_quote(cases[i].in, log_chomp(cases[i].in, strlen(cases[i].in)), q, sizeof(q));
        cr_expect_str_eq(q, cases[i].quoted, "case %zu", i);
    }
}
