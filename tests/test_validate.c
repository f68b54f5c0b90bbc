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
