/* Tests for validate: etcd URLs, socket and listen addresses, prefixes
 * and host names, each table-driven (moved from test_config.c with the
 * code, issue 22). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/config.h>
#include <slotsync/validate.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Messages are one printable line: nothing raw from the input. */
static void check_message(const char *msg, size_t i)
{
    cr_assert_not_null(msg, "case %zu: errmsg set", i);
    for (const char *p = msg; *p; p++)
        cr_expect(*p >= 0x20 && *p < 0x7f, "case %zu: byte 0x%02x in \"%s\"", i, (unsigned char)*p,
                  msg);
}

Test(validate, etcd_url)
{
    static const struct {
        const char *url;
        bool ok;
    } cases[] = {
        {"http://127.0.0.1:2379", true},
        {"http://127.0.0.1:2379/", true},
        {"http://etcd.example.com:443", true},
        {"https://etcd.example.com:443", true},
        {"http://[::1]:2379", true},
        {"http://[2001:db8::1]:2379/", true},
        {"http://e:1", true},
        {"http://a-b.c-d.e:65535", true},
        {"http://127.0.0.1:2379//", false},
        {"http://127.0.0.1:2379/x", false},
        {"http://127.0.0.1", false},
        {"http://127.0.0.1:99999", false},
        {"http://[::1]", false},
        {"http://[fe80::1%25eth0]:2379", false},
        {"https://", false},
        {"http:/127.0.0.1:2379", false},
        {"unix:///run/etcd.sock", false},
        {"http://127.0.0.1:2379#f", false},
        {"", false},
        {NULL, false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *err = NULL;
        int ret = validate_etcd_url(cases[i].url, &err);

        cr_expect_eq(ret, cases[i].ok ? 0 : -EINVAL, "case %zu: %s", i, err ? err : "");
        if (!cases[i].ok)
            check_message(err, i);
        else
            cr_expect_null(err);
        free(err);
    }
    /* a very long host name */
    char url[600];
    snprintf(url, sizeof(url), "http://%0500d:1", 0);
    cr_expect_eq(validate_etcd_url(url, NULL), -EINVAL);
}

Test(validate, socket_addr)
{
    static const struct {
        const char *addr;
        bool ok;
    } cases[] = {
        {"/run/haproxy.sock", true},
        {"./h.sock", true},
        {"127.0.0.1:9999", true},
        {"[::1]:9999", true},
        {"localhost:1", true},
        {"localhost:65535", true},
        {"localhost", false},
        {"localhost:0", false},
        {"LOCALHOST:1", false},
        {"h.sock", false},
        {"127.0.0.1", false},
        {"[::1]", false},
        {"*:9999", false},
        {":9999", false},
        {"/a\tb", false},
        {"", false},
        {NULL, false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *err = NULL;

        cr_expect_eq(validate_socket_addr(cases[i].addr, &err), cases[i].ok ? 0 : -EINVAL,
                     "case %zu", i);
        if (!cases[i].ok)
            check_message(err, i);
        free(err);
    }
}

Test(validate, listen)
{
    static const struct {
        const char *text;
        const char *host; /* NULL: rejected */
        bool ipv6;
        unsigned short port;
    } cases[] = {
        {"*:80", "", false, 80},
        {":8080", "", false, 8080},
        {"0.0.0.0:1", "0.0.0.0", false, 1},
        {"10.0.0.1:65535", "10.0.0.1", false, 65535},
        {"[::]:443", "::", true, 443},
        {"[2001:DB8:0::1]:443", "2001:db8::1", true, 443},
        {"*:0", NULL, false, 0},
        {"*:65536", NULL, false, 0},
        {"*:+80", NULL, false, 0},
        {"*: 80", NULL, false, 0},
        {"**:80", NULL, false, 0},
        {"*", NULL, false, 0},
        {"", NULL, false, 0},
        {"80", NULL, false, 0},
        {"::80", NULL, false, 0},
        {"[::1]:80x", NULL, false, 0},
        {"localhost:80", NULL, false, 0},
        {"10.0.0.1:80,10.0.0.2:80", NULL, false, 0},
        {NULL, NULL, false, 0},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct listen_addr l;
        char *err = NULL;
        int ret;

        memset(&l, 0x5a, sizeof(l));
        ret = validate_listen(cases[i].text, &l, &err);
        if (!cases[i].host) {
            cr_expect_eq(ret, -EINVAL, "case %zu", i);
            check_message(err, i);
        } else {
            cr_expect_eq(ret, 0, "case %zu: %s", i, err ? err : "");
            cr_expect(l.set, "case %zu", i);
            cr_expect_str_eq(l.host, cases[i].host, "case %zu", i);
            cr_expect_eq(l.ipv6, cases[i].ipv6, "case %zu", i);
            cr_expect_eq(l.port, cases[i].port, "case %zu", i);
        }
        free(err);
    }
}

Test(validate, prefix)
{
    static const struct {
        const char *prefix;
        bool ok;
    } cases[] = {
        {"/", true},          {"/services/", true}, {"/a/b/", true},  {"", false},
        {"services/", false}, {"/services", false}, {"/a b/", false}, {"/a\tb/", false},
    };
    char long_prefix[300];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *err = NULL;

        cr_expect_eq(validate_prefix(cases[i].prefix, &err), cases[i].ok ? 0 : -EINVAL, "case %zu",
                     i);
        if (!cases[i].ok)
            check_message(err, i);
        free(err);
    }
    memset(long_prefix, 'a', sizeof(long_prefix) - 1);
    long_prefix[0] = long_prefix[sizeof(long_prefix) - 2] = '/';
    long_prefix[sizeof(long_prefix) - 1] = '\0';
    cr_expect_eq(validate_prefix(long_prefix, NULL), -EINVAL, "%zu bytes", strlen(long_prefix));
}

Test(validate, hostname)
{
    static const struct {
        const char *name, *lower; /* lower NULL: not a host name */
    } cases[] = {
        {"a", "a"},         {"Api.Example.COM", "api.example.com"},
        {"a-b.c", "a-b.c"}, {"x1.y2", "x1.y2"},
        {"-a.b", NULL},     {"a-.b", NULL},
        {"a..b", NULL},     {".a", NULL},
        {"a.", NULL},       {"999.1.1.1", NULL},
        {"a_b", NULL},      {"", NULL},
        {"a b", NULL},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[254];
        bool ok = validate_hostname_lower(cases[i].name, out);

        cr_expect_eq(ok, cases[i].lower != NULL, "case %zu: %s", i, cases[i].name);
        cr_expect_eq(validate_hostname(cases[i].name, strlen(cases[i].name)), ok, "case %zu", i);
        if (ok)
            cr_expect_str_eq(out, cases[i].lower, "case %zu", i);
    }
    {
        char label[70], name[300];

        memset(label, 'a', 64);
        label[64] = '\0';
        cr_expect_not(validate_hostname(label, 64), "a 64-byte label");
        cr_expect(validate_hostname(label, 63), "a 63-byte label");
        /* 253 bytes: three labels of 63 and one of 61; then 254 */
        snprintf(name, sizeof(name), "%.63s.%.63s.%.63s.%.61s", label, label, label, label);
        cr_expect(validate_hostname(name, strlen(name)), "%zu bytes", strlen(name));
        strcat(name, "a");
        cr_expect_not(validate_hostname(name, strlen(name)), "%zu bytes", strlen(name));
    }
}

Test(validate, paths_and_commands)
{
    char long_path[4098];
    char *err = NULL;

    cr_expect_eq(validate_file_path("/etc/haproxy/services.cfg", NULL), 0);
    cr_expect_eq(validate_file_path("relative.cfg", NULL), 0);
    cr_expect_eq(validate_file_path("/a b", &err), -EINVAL);
    cr_expect_str_eq(err, "must be 1-4096 printable ASCII characters, no whitespace");
    cr_expect_eq(validate_file_path("", NULL), -EINVAL);
    cr_expect_eq(validate_file_path("/caf\xc3\xa9", NULL), -EINVAL);
    cr_expect_eq(validate_command("systemctl reload haproxy", NULL), 0);
    cr_expect_eq(validate_command("a\tb", &err), -EINVAL);
    cr_expect_str_eq(err, "must be 1-4096 printable ASCII characters");
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    cr_expect_eq(validate_file_path(long_path, NULL), -EINVAL, "4097 bytes");
    long_path[4096] = '\0';
    cr_expect_eq(validate_file_path(long_path, NULL), 0, "4096 bytes");
    free(err);
}

Test(validate, server_options)
{
    static const struct {
        const char *options, *reason; /* reason NULL: accepted */
    } cases[] = {
        {"", NULL},
        {"check inter 2s", NULL},
        {"check backup ssl verify none sni req.hdr,host", NULL},
        {"check  inter 2s", "tokens must be separated by single spaces"},
        {" check", "tokens must be separated by single spaces"},
        {"check ", "tokens must be separated by single spaces"},
        {"check weight 3", "token 'weight' is managed by slotsync"},
        {"disabled", "token 'disabled' is managed by slotsync"},
        {"agent-check", "token 'agent-check' is managed by slotsync"},
        {"check;reload", "invalid character at byte 6 (allowed: A-Z a-z 0-9 . _ : / @ = , + - "
                         "and single spaces)"},
        {"weights", NULL},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *err = NULL;
        int ret = validate_server_options(cases[i].options, &err);

        if (!cases[i].reason) {
            cr_expect_eq(ret, 0, "case %zu: %s", i, err ? err : "");
        } else {
            cr_expect_eq(ret, -EINVAL, "case %zu", i);
            cr_expect(err && strcmp(err, cases[i].reason) == 0, "case %zu: %s", i, err ? err : "");
        }
        free(err);
    }
    {
        char longer[CONFIG_OPTIONS_MAX + 1];

        memset(longer, 'a', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        cr_expect_eq(validate_server_options(longer, NULL), -EINVAL);
        longer[CONFIG_OPTIONS_MAX - 1] = '\0';
        cr_expect_eq(validate_server_options(longer, NULL), 0, "%d bytes", CONFIG_OPTIONS_MAX - 1);
    }
}

Test(validate, ip_literal)
{
    cr_expect_eq(validate_ip_literal("127.0.0.1", NULL), 0);
    cr_expect_eq(validate_ip_literal("::1", NULL), 0);
    cr_expect_eq(validate_ip_literal("2001:db8::1", NULL), 0);
    cr_expect_eq(validate_ip_literal("localhost", NULL), -EINVAL);
    cr_expect_eq(validate_ip_literal("10.0.0.1 evil", NULL), -EINVAL);
    cr_expect_eq(validate_ip_literal("[::1]", NULL), -EINVAL);
    cr_expect_eq(validate_ip_literal("", NULL), -EINVAL);
}

Test(validate, listen_overlap)
{
    static const struct {
        const char *a, *b;
        bool overlap;
    } cases[] = {
        {"127.0.0.1:80", "127.0.0.1:80", true},
        {"127.0.0.1:80", "127.0.0.2:80", false},
        {"127.0.0.1:80", "127.0.0.1:81", false},
        {"*:80", "127.0.0.1:80", true},
        {":80", "10.0.0.1:80", true},
        {"0.0.0.0:80", "10.0.0.1:80", true},
        {"[::]:80", "10.0.0.1:80", true},
        {"[::1]:80", "[::1]:80", true},
        {"[::1]:80", "127.0.0.1:80", false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct listen_addr a, b, unset = {0};

        cr_assert_eq(validate_listen(cases[i].a, &a, NULL), 0, "case %zu", i);
        cr_assert_eq(validate_listen(cases[i].b, &b, NULL), 0, "case %zu", i);
        cr_expect_eq(validate_listen_overlap(&a, &b), cases[i].overlap, "case %zu", i);
        cr_expect_eq(validate_listen_overlap(&b, &a), cases[i].overlap, "case %zu", i);
        cr_expect_not(validate_listen_overlap(&a, &unset), "case %zu: unset", i);
    }
}
