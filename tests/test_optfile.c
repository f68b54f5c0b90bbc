/* Tests for optfile: the "NAME VALUE" lines of an options file, and their
 * expansion in place of --options-file on a command line. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slotsync/optfile.h>

#define B(s) s, sizeof(s) - 1

struct parse_case {
    const char *text;
    size_t len;
    const char *want; /* the args joined by '|', or NULL: refused */
};

Test(optfile, parse_table)
{
    static const struct parse_case cases[] = {
        {B(""), ""},
        {B("# only a comment\n\n   \n"), ""},
        {B("addr 10.0.0.5:8080\n"), "--addr|10.0.0.5:8080"},
        {B("  key   /services/web/h1  \r\nttl\t5"), "--key|/services/web/h1|--ttl|5"},
        {B("check http://10.0.0.5:8080/health check\n"),
         "--check|http://10.0.0.5:8080/health check"},
        {B("help\n"), "--help"},
        {B("  # indented comment\nweight 3\n"), "--weight|3"},
        {B("--addr 1.2.3.4:5\n"), NULL},
        {B("Addr 1.2.3.4:5\n"), NULL},
        {B("addr 1.2.3.4:5\x1b[2J\n"), NULL},
        {B("addr 1.2.3.4:5\nkey a\0b\n"), NULL},
        {B("ad;dr x\n"), NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **args = NULL, *errmsg = NULL, joined[512] = "";
        size_t n = 9;
        int r = optfile_parse(cases[i].text, cases[i].len, &args, &n, &errmsg);

        if (!cases[i].want) {
            cr_expect_eq(r, -EINVAL, "case %zu", i);
            cr_expect_not_null(errmsg, "case %zu", i);
            cr_expect(errmsg && strncmp(errmsg, "line ", 5) == 0, "case %zu: %s", i, errmsg);
            free(errmsg);
            continue;
        }
        cr_assert_eq(r, 0, "case %zu: %s", i, errmsg ? errmsg : "");
        for (size_t k = 0; k < n; k++) {
            if (k)
                strcat(joined, "|");
            strcat(joined, args[k]);
        }
        cr_expect_null(args[n], "case %zu", i);
        cr_expect_str_eq(joined, cases[i].want, "case %zu", i);
        optfile_free(args);
    }
}

Test(optfile, expand_in_place_not_after_dashes)
{
    char path[] = "/tmp/slotsync-test-optfile-XXXXXX", arg2[64];
    int fd = mkstemp(path), n = 0;
    char **out = NULL, **owned = NULL, *errmsg = NULL;
    const char *text = "key /s/web/a\naddr 127.0.0.1:1\n";

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(arg2, sizeof(arg2), "--options-file=%s", path);
    {
        char *argv[] = {"announce", "--ttl", "5",   "--options-file", path, "--weight", "2",
                        arg2,       "--",    "cmd", "--options-file", "x",  NULL};
        const char *want[] = {
            "announce",    "--ttl",    "5",   "--key",          "/s/web/a", "--addr",
            "127.0.0.1:1", "--weight", "2",   "--key",          "/s/web/a", "--addr",
            "127.0.0.1:1", "--",       "cmd", "--options-file", "x"};

        cr_assert_eq(optfile_expand(12, argv, &out, &n, &owned, &errmsg), 0, "%s",
                     errmsg ? errmsg : "");
        cr_assert_eq(n, (int)(sizeof(want) / sizeof(want[0])));
        for (int i = 0; i < n; i++)
            cr_expect_str_eq(out[i], want[i], "arg %d", i);
        cr_expect_null(out[n]);
        free(out);
        optfile_free(owned);
    }
    unlink(path);
    {
        char *argv[] = {"announce", "--options-file", path, NULL};

        cr_expect_eq(optfile_expand(3, argv, &out, &n, &owned, &errmsg), -ENOENT);
        cr_expect_not_null(strstr(errmsg, "No such file"), "%s", errmsg);
        free(errmsg);
    }
}
