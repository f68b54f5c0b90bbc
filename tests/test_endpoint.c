/* Tests for endpoint: etcd key and value rules. Most cases are hostile: what
 * matters is that nothing unsafe is ever accepted. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/endpoint.h>

/* a string literal and its length, NUL bytes inside included */
#define B(s) s, sizeof(s) - 1
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct good_value {
    const char *val;
    size_t len;
    const char *host;
    bool ipv6;
    unsigned short port;
    unsigned short weight;
    enum endpoint_state state;
};

static const struct good_value good_values[] = {
    {B("10.0.0.1:80"), "10.0.0.1", false, 80, 1, ENDPOINT_READY},
    {B("127.0.0.1:1"), "127.0.0.1", false, 1, 1, ENDPOINT_READY},
    {B("255.255.255.255:65535"), "255.255.255.255", false, 65535, 1, ENDPOINT_READY},
    {B("1.2.3.4:8080"), "1.2.3.4", false, 8080, 1, ENDPOINT_READY},
    {B("[::1]:8080"), "::1", true, 8080, 1, ENDPOINT_READY},
    {B("[0:0:0:0:0:0:0:1]:80"), "::1", true, 80, 1, ENDPOINT_READY},
    {B("[2001:DB8::A]:443"), "2001:db8::a", true, 443, 1, ENDPOINT_READY},
    {B("[2001:0db8:0000:0000:0000:0000:0000:0001]:443"), "2001:db8::1", true, 443, 1,
     ENDPOINT_READY},
    {B("[fe80::1]:80"), "fe80::1", true, 80, 1, ENDPOINT_READY},
    /* an IPv4-mapped IPv6 address is still an IPv6 literal */
    {B("[::ffff:1.2.3.4]:80"), "::ffff:1.2.3.4", true, 80, 1, ENDPOINT_READY},
    {B("[::FFFF:0102:0304]:80"), "::ffff:1.2.3.4", true, 80, 1, ENDPOINT_READY},
    {B("{\"host\":\"10.0.0.5\",\"port\":8080}"), "10.0.0.5", false, 8080, 1, ENDPOINT_READY},
    {B("{\"host\": \"10.0.0.5\", \"port\": 8080, \"weight\": 10, \"state\": \"drain\"}"),
     "10.0.0.5", false, 8080, 10, ENDPOINT_DRAIN},
    {B("{\"host\":\"10.0.0.5\",\"port\":1,\"weight\":0,\"state\":\"maint\"}"), "10.0.0.5", false, 1,
     0, ENDPOINT_MAINT},
    {B("{\"host\":\"10.0.0.5\",\"port\":65535,\"weight\":256,\"state\":\"ready\"}"), "10.0.0.5",
     false, 65535, 256, ENDPOINT_READY},
    {B("{\"port\":9000,\"host\":\"2001:db8:0::1\"}"), "2001:db8::1", true, 9000, 1, ENDPOINT_READY},
    {B("{\"host\":\"::ffff:10.1.2.3\",\"port\":80}"), "::ffff:10.1.2.3", true, 80, 1,
     ENDPOINT_READY},
    /* unknown keys are metadata: ignored, whatever their type */
    {B("{\"host\":\"10.0.0.5\",\"port\":80,\"zone\":\"eu-1\",\"tags\":[1,{\"a\":null}],"
       "\"meta\":{\"x\":1.5},\"flag\":true,\"note\":\"caf\xc3\xa9\"}"),
     "10.0.0.5", false, 80, 1, ENDPOINT_READY},
    /* JSON escapes are decoded before validation */
    {B("{\"host\":\"\\u0031.2.3.4\",\"port\":80}"), "1.2.3.4", false, 80, 1, ENDPOINT_READY},
};

struct bad_value {
    const char *val;
    size_t len;
    const char *err; /* expected substring of *errmsg */
};

static const struct bad_value bad_values[] = {
    {B(""), "empty"},
    {B("10.0.0.1:80;shutdown sessions server api/s1"), "whitespace"},
    {B("10.0.0.1:80;shutdown"), "after the port"},
    {B("10.0.0.1:80;"), "after the port"},
    {B("10.0.0.1:80\nset server api/s1 state maint"), "line break"},
    {B("10.0.0.1:80\r"), "line break"},
    {B("10.0.0.1:80\n"), "line break"},
    {B("10.0.0.1:\t80"), "control character"},
    {B("10.0.0.1:80\x7f"), "control character"},
    {B("10.0.0.1:80\x1b[2J"), "control character"},
    {B("10.0.0.1:80\0"), "NUL"},
    {B("10.0.0.1\0:80"), "NUL"},
    {B("\0"), "NUL"},
    {B(" 10.0.0.1:80"), "whitespace"},
    {B("10.0.0.1:80 "), "whitespace"},
    {B("10.0.0.1 :80"), "whitespace"},
    {B("10.0.0.1: 80"), "whitespace"},
    {B("999.1.1.1:80"), "not an IPv4 or IPv6 literal"},
    {B("256.0.0.1:80"), "not an IPv4 or IPv6 literal"},
    {B("1.2.3:80"), "not an IPv4 or IPv6 literal"},
    {B("1.2.3.4.5:80"), "not an IPv4 or IPv6 literal"},
    {B("01.2.3.4:80"), "not an IPv4 or IPv6 literal"},
    {B("0x7f.0.0.1:80"), "not an IPv4 or IPv6 literal"},
    {B("2130706433:80"), "not an IPv4 or IPv6 literal"},
    {B("localhost:80"), "not an IPv4 or IPv6 literal"},
    {B("api.example.com:80"), "not an IPv4 or IPv6 literal"},
    {B("127.0.0.1:70000"), "port out of range (1-65535)"},
    {B("127.0.0.1:65536"), "port out of range (1-65535)"},
    {B("127.0.0.1:0"), "port out of range (1-65535)"},
    {B("127.0.0.1:99999999999999999999999"), "port out of range (1-65535)"},
    {B("127.0.0.1:080"), "leading zero"},
    {B("127.0.0.1:00080"), "leading zero"},
    {B("127.0.0.1:+80"), "sign"},
    {B("127.0.0.1:-80"), "sign"},
    {B("127.0.0.1:"), "port missing"},
    {B("127.0.0.1"), "port missing"},
    {B("127.0.0.1:http"), "not a decimal number"},
    {B("127.0.0.1:80:81"), "brackets"},
    {B("127.0.0.1:80/"), "after the port"},
    {B("127.0.0.1:80#x"), "after the port"},
    {B("127.0.0.1:0x50"), "after the port"},
    {B("127.0.0.1:8\xd9\xa0"), "non-ASCII"},
    {B("\xef\xbc\x91.2.3.4:80"), "non-ASCII"},
    {B("::1:80"), "IPv6 address must be in brackets"},
    {B("::1"), "IPv6 address must be in brackets"},
    {B("2001:db8::1:443"), "IPv6 address must be in brackets"},
    {B("[::1]"), "port missing"},
    {B("[::1]:"), "port missing"},
    {B("[::1]80"), "expected ':'"},
    {B("[::1]:80]"), "after the port"},
    {B("[::1:80"), "missing ']'"},
    {B("[]:80"), "host is empty"},
    {B(":80"), "host is empty"},
    {B("[1.2.3.4]:80"), "IPv4 address must not be in brackets"},
    {B("[fe80::1%eth0]:80"), "zone id"},
    {B("[fe80::1%25eth0]:80"), "zone id"},
    {B("[::g]:80"), "not an IPv6 literal"},
    {B("[[::1]]:80"), "not an IPv6 literal"},
    {B("[:::1]:80"), "not an IPv6 literal"},
    {B("[1:2:3:4:5:6:7:8:9]:80"), "not an IPv6 literal"},
    {B("[0000:0000:0000:0000:0000:0000:0000:0000:1]:80"), "not an IPv6 literal"},
    {B("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:80"), "not an IPv4 or IPv6 literal"},
    {B("0.0.0.0:80"), "unspecified"},
    {B("[::]:80"), "unspecified"},
    {B("[0:0:0:0:0:0:0:0]:80"), "unspecified"},
    {B("[::ffff:0.0.0.0]:80"), "unspecified"},
    {B("\"10.0.0.1:80\""), "not an IPv4 or IPv6 literal"},
    {B("[\"10.0.0.1\",80]"), "not an IPv6 literal"},
    {B("80"), "port missing"},
    /* JSON */
    {B("{"), "JSON"},
    {B("{}"), "host missing"},
    {B("{\"host\":\"127.0.0.1\"}"), "port missing"},
    {B("{\"port\":80}"), "host missing"},
    {B("{\"host\":\"127.0.0.1\",\"port\":\"x\"}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":\"8080\"}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":8080.0}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":8e3}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":true}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":null}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":[80]}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":{\"n\":80}}"), "port must be an integer"},
    {B("{\"host\":\"127.0.0.1\",\"port\":0}"), "port out of range (1-65535)"},
    {B("{\"host\":\"127.0.0.1\",\"port\":-1}"), "port out of range (1-65535)"},
    {B("{\"host\":\"127.0.0.1\",\"port\":65536}"), "port out of range (1-65535)"},
    {B("{\"host\":\"127.0.0.1\",\"port\":4294967377}"), "port out of range (1-65535)"},
    {B("{\"host\":\"127.0.0.1\",\"port\":99999999999999999999999}"), "number out of range"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":257}"), "weight must be an integer 0-256"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":-1}"), "weight must be an integer 0-256"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":1.5}"), "weight must be an integer 0-256"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":\"5\"}"), "weight must be an integer 0-256"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":null}"), "weight must be an integer 0-256"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":\"bogus\"}"), "state must be"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":\"READY\"}"), "state must be"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":\"ready \"}"), "state must be"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":\"\"}"), "state must be"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":1}"), "state must be a string"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":null}"), "state must be a string"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"state\":{\"v\":\"ready\"}}"),
     "state must be a string"},
    {B("{\"host\":\"localhost\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"127.0.0.1:80\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"[::1]\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"fe80::1%eth0\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"127.0.0.1 \",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"127.0.0.1\\n\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"127.0.0.1;quit\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"\xef\xbc\x91.2.3.4\",\"port\":80}"), "not an IPv4 or IPv6 literal"},
    {B("{\"host\":\"0.0.0.0\",\"port\":80}"), "unspecified"},
    {B("{\"host\":\"127.0.0.1\\u0000\",\"port\":80}"), "NUL"},
    {B("{\"host\":127001,\"port\":80}"), "host must be a string"},
    {B("{\"host\":[\"127.0.0.1\"],\"port\":80}"), "host must be a string"},
    {B("{\"host\":{\"ip\":\"127.0.0.1\"},\"port\":80}"), "host must be a string"},
    {B("{\"host\":null,\"port\":80}"), "host must be a string"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"port\":81}"), "duplicate key"},
    {B("{\"host\":\"127.0.0.1\",\"host\":\"127.0.0.2\",\"port\":80}"), "duplicate key"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80}x"), "after the JSON object"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80}{}"), "after the JSON object"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80}\n"), "line break"},
    {B("{\"host\":\"127.0.0.1\",\n\"port\":80}"), "line break"},
    {B("{\"host\":\"127.0.0.1\",\t\"port\":80}"), "control character"},
    {B(" {\"host\":\"127.0.0.1\",\"port\":80}"), "whitespace"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80} "), "whitespace"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"x\":\"\xff\"}"), "UTF-8"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,}"), "invalid JSON"},
    {B("{'host':'127.0.0.1','port':80}"), "invalid JSON"},
    {B("{\"host\":\"127.0.0.1\",\"port\":80,\"x\":\"a\0b\"}"), "NUL"},
};

static void check_errmsg_is_safe(const char *errmsg, const char *val, size_t len, size_t i)
{
    cr_assert_not_null(errmsg, "case %zu: errmsg set", i);
    cr_expect_lt(strlen(errmsg), 120, "case %zu: short reason", i);
    for (const char *p = errmsg; *p; p++)
        cr_expect(*p >= 0x20 && *p < 0x7f && *p != ';', "case %zu: reason byte 0x%02x", i,
                  (unsigned char)*p);
    /* the reason never echoes the value */
    if (len >= 6 && strlen(val) == len)
        cr_expect_null(strstr(errmsg, val), "case %zu: reason echoes the value", i);
}

Test(endpoint, good_values)
{
    for (size_t i = 0; i < N_ELEMS(good_values); i++) {
        const struct good_value *c = &good_values[i];
        struct endpoint ep;
        char *err = NULL;
        int ret;

        memset(&ep, 0xa5, sizeof(ep));
        ret = endpoint_parse_value(c->val, c->len, &ep, &err);
        cr_expect_eq(ret, 0, "case %zu: %s (%s)", i, c->val, err ? err : "");
        if (ret == 0) {
            cr_expect_str_eq(ep.host, c->host, "case %zu", i);
            cr_expect_eq(ep.ipv6, c->ipv6, "case %zu", i);
            cr_expect_eq(ep.port, c->port, "case %zu", i);
            cr_expect_eq(ep.weight, c->weight, "case %zu", i);
            cr_expect_eq(ep.state, c->state, "case %zu", i);
        }
        cr_expect_null(err, "case %zu: no errmsg on success", i);
        free(err);
    }
}

Test(endpoint, bad_values)
{
    for (size_t i = 0; i < N_ELEMS(bad_values); i++) {
        const struct bad_value *c = &bad_values[i];
        struct endpoint ep, before;
        char *err = NULL;
        int ret;

        memset(&ep, 0x5a, sizeof(ep));
        before = ep;
        ret = endpoint_parse_value(c->val, c->len, &ep, &err);
        cr_expect_eq(ret, -EINVAL, "case %zu: accepted", i);
        cr_expect_eq(memcmp(&ep, &before, sizeof(ep)), 0, "case %zu: *ep untouched", i);
        if (ret == -EINVAL) {
            check_errmsg_is_safe(err, c->val, c->len, i);
            cr_expect_not_null(strstr(err, c->err), "case %zu: \"%s\" lacks \"%s\"", i, err,
                               c->err);
        }
        free(err);
    }
}

Test(endpoint, errmsg_is_optional)
{
    struct endpoint ep;

    cr_expect_eq(endpoint_parse_value(B("999.1.1.1:80"), &ep, NULL), -EINVAL);
    cr_expect_eq(endpoint_parse_value(B("{\"host\":1}"), &ep, NULL), -EINVAL);
    cr_expect_eq(endpoint_parse_value(B("1.1.1.1:80"), &ep, NULL), 0);
}

Test(endpoint, errmsg_previous_value_replaced)
{
    struct endpoint ep;
    char *err = strdup("old");

    cr_expect_eq(endpoint_parse_value(B("x"), &ep, &err), -EINVAL);
    cr_expect_str_neq(err, "old");
    free(err);
}

/* Build a value of exactly len bytes that is otherwise valid JSON. */
static char *padded_json(size_t len)
{
    static const char head[] = "{\"host\":\"10.0.0.1\",\"port\":80,\"pad\":\"";
    char *v = malloc(len + 1);

    cr_assert_not_null(v);
    cr_assert_gt(len, sizeof(head) + 2);
    memcpy(v, head, sizeof(head) - 1);
    memset(v + sizeof(head) - 1, 'p', len - (sizeof(head) - 1) - 2);
    memcpy(v + len - 2, "\"}", 2);
    v[len] = '\0';
    return v;
}

Test(endpoint, length_limit)
{
    struct endpoint ep;
    char *err = NULL;
    char *v;

    v = padded_json(ENDPOINT_VALUE_MAX);
    cr_expect_eq(endpoint_parse_value(v, ENDPOINT_VALUE_MAX, &ep, &err), 0, "%s", err ? err : "");
    free(v);

    v = padded_json(ENDPOINT_VALUE_MAX + 1);
    cr_expect_eq(endpoint_parse_value(v, ENDPOINT_VALUE_MAX + 1, &ep, &err), -EINVAL);
    cr_expect_not_null(strstr(err, "longer than 1024"), "%s", err);
    free(v);

    /* huge: rejected before anything looks at it */
    size_t huge = 1 << 20;
    v = malloc(huge);
    cr_assert_not_null(v);
    memset(v, '1', huge);
    cr_expect_eq(endpoint_parse_value(v, huge, &ep, &err), -EINVAL);
    cr_expect_not_null(strstr(err, "longer than 1024"), "%s", err);
    free(v);
    free(err);
}

Test(endpoint, len_is_respected)
{
    struct endpoint ep;
    char *err = NULL;

    /* only the first len bytes count: the rest of the buffer is not read */
    cr_expect_eq(endpoint_parse_value("10.0.0.1:80;quit", 11, &ep, &err), 0);
    cr_expect_eq(ep.port, 80);
    cr_expect_eq(endpoint_parse_value("10.0.0.1:8080", 10, &ep, &err), 0);
    cr_expect_eq(ep.port, 8);
    free(err);
}

/* Every accepted value formats to nothing but address characters, and
 * reparses to the same endpoint. */
static void check_accepted(const struct endpoint *ep, const char *what)
{
    char buf[128], *err = NULL;
    struct endpoint again;
    int n = endpoint_format(ep, buf, sizeof(buf));

    cr_assert_gt(n, 0);
    cr_assert_lt((size_t)n, sizeof(buf));
    cr_expect_eq(strlen(buf), (size_t)n);
    for (const char *p = buf; *p; p++)
        cr_assert(strchr("0123456789abcdefABCDEF.:[]", *p) != NULL,
                  "%s: formatted \"%s\" has byte 0x%02x", what, buf, (unsigned char)*p);
    for (const char *p = ep->host; *p; p++)
        cr_assert(strchr("0123456789abcdef.:", *p) != NULL, "%s: host byte 0x%02x", what,
                  (unsigned char)*p);
    cr_assert(ep->port >= 1);
    cr_assert(ep->weight <= ENDPOINT_WEIGHT_MAX);
    cr_assert(ep->state == ENDPOINT_READY || ep->state == ENDPOINT_DRAIN ||
              ep->state == ENDPOINT_MAINT);
    cr_assert_eq(endpoint_parse_value(buf, (size_t)n, &again, &err), 0, "%s: %s", what,
                 err ? err : "");
    again.weight = ep->weight;
    again.state = ep->state;
    cr_assert(endpoint_equal(ep, &again), "%s: \"%s\" does not round-trip", what, buf);
    free(err);
}

Test(endpoint, property_accepted_values_are_safe)
{
    for (size_t i = 0; i < N_ELEMS(good_values); i++) {
        struct endpoint ep;

        cr_assert_eq(endpoint_parse_value(good_values[i].val, good_values[i].len, &ep, NULL), 0);
        check_accepted(&ep, good_values[i].val);
    }
}

/* Mutate good and bad seeds at random (fixed seed, reproducible): whatever
 * gets accepted must still be safe. */
Test(endpoint, property_fuzzed_values_are_safe)
{
    static const char alphabet[] = "0123456789abcdefABCDEF.:[]{}\",;% \n\t\\/-+xu\0\x7f\x80\xff";
    unsigned long long state = 0x2545f4914f6cdd1dULL;
    size_t accepted = 0;

    for (int round = 0; round < 30000; round++) {
        char buf[96];
        size_t len, seed;
        struct endpoint ep;
        char *err = NULL;
        int ret;

        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        seed = state % (N_ELEMS(good_values) + N_ELEMS(bad_values));
        if (seed < N_ELEMS(good_values)) {
            len = good_values[seed].len;
            if (len > sizeof(buf))
                len = sizeof(buf);
            memcpy(buf, good_values[seed].val, len);
        } else {
            const struct bad_value *b = &bad_values[seed - N_ELEMS(good_values)];

            len = b->len > sizeof(buf) ? sizeof(buf) : b->len;
            memcpy(buf, b->val, len);
        }
        for (int m = 0; m < 1 + (int)(state >> 60) % 3 && len > 0; m++) {
            size_t at;

            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            at = (size_t)(state >> 8) % len;
            switch ((state >> 40) % 3) {
            case 0: /* replace */
                buf[at] = alphabet[(state >> 20) % (sizeof(alphabet) - 1)];
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                if (len < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = alphabet[(state >> 20) % (sizeof(alphabet) - 1)];
                    len++;
                }
            }
        }
        ret = endpoint_parse_value(buf, len, &ep, &err);
        if (ret == 0) {
            accepted++;
            check_accepted(&ep, "fuzzed value");
            /* and the accepted text itself was clean (JSON may carry any
             * printable text in ignored metadata) */
            if (buf[0] != '{')
                cr_assert_null(memchr(buf, ';', len));
            cr_assert_null(memchr(buf, '\n', len));
            cr_assert_null(memchr(buf, '\0', len));
        } else {
            cr_assert_eq(ret, -EINVAL);
            cr_assert_not_null(err);
            for (const char *p = err; *p; p++)
                cr_assert(*p >= 0x20 && *p < 0x7f);
        }
        free(err);
    }
    cr_expect_gt(accepted, 100, "the fuzzer should also produce valid values");
}

Test(endpoint, parse_hostport)
{
    struct endpoint ep;

    memset(&ep, 0, sizeof(ep));
    ep.weight = 7;
    ep.state = ENDPOINT_DRAIN;
    cr_assert_eq(endpoint_parse_hostport(B("[2001:db8::0:1]:443"), &ep), 0);
    cr_expect_str_eq(ep.host, "2001:db8::1");
    cr_expect(ep.ipv6);
    cr_expect_eq(ep.port, 443);
    cr_expect_eq(ep.weight, 7, "weight left alone");
    cr_expect_eq(ep.state, ENDPOINT_DRAIN, "state left alone");

    cr_assert_eq(endpoint_parse_hostport(B("192.168.1.1:22"), &ep), 0);
    cr_expect_str_eq(ep.host, "192.168.1.1");
    cr_expect(!ep.ipv6);
    cr_expect_eq(ep.port, 22);

    /* the unspecified address is a valid listen address */
    cr_expect_eq(endpoint_parse_hostport(B("0.0.0.0:80"), &ep), 0);
    cr_expect_eq(endpoint_parse_hostport(B("[::]:80"), &ep), 0);

    static const struct {
        const char *text;
        size_t len;
    } bad[] = {
        {B("")},
        {B("*:80")},
        {B(":80")},
        {B("1.2.3.4")},
        {B("1.2.3.4:0")},
        {B("[::1]")},
        {B("::1:80")},
        {B("a.b:80")},
        {B("1.2.3.4:80\0")},
        {B("[1.2.3.4]:80")},
        {B("1.2.3.4: 80")},
        {B("{\"host\":1}")},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        cr_expect_eq(endpoint_parse_hostport(bad[i].text, bad[i].len, &ep), -EINVAL, "case %zu", i);
}

Test(endpoint, parse_host)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: rejected */
        bool ipv6;
    } cases[] = {
        {"1.2.3.4", "1.2.3.4", false},
        {"0.0.0.0", "0.0.0.0", false},
        {"::", "::", true},
        {"::1", "::1", true},
        {"::FFFF:1.2.3.4", "::ffff:1.2.3.4", true},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", true},
        {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", true},
        {"01.2.3.4", NULL, false},
        {"1.2.3", NULL, false},
        {"1.2.3.4 ", NULL, false},
        {" 1.2.3.4", NULL, false},
        {"[::1]", NULL, false},
        {"fe80::1%eth0", NULL, false},
        {"localhost", NULL, false},
        {"", NULL, false},
        {"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000", NULL, false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[ENDPOINT_HOST_MAX];
        bool v6 = !cases[i].ipv6;
        int ret = endpoint_parse_host(cases[i].in, out, &v6);

        if (!cases[i].out) {
            cr_expect_eq(ret, -EINVAL, "case %zu", i);
            continue;
        }
        cr_expect_eq(ret, 0, "case %zu", i);
        cr_expect_str_eq(out, cases[i].out, "case %zu", i);
        cr_expect_eq(v6, cases[i].ipv6, "case %zu", i);
    }
}

struct key_case {
    const char *prefix;
    const char *key;
    size_t keylen;
    const char *service; /* NULL: rejected */
    const char *instance_or_err;
};

static const struct key_case key_cases[] = {
    {"/services/", B("/services/api/i-1"), "api", "i-1"},
    {"/services/", B("/services/api/10.0.0.1:80"), "api", "10.0.0.1:80"},
    {"/services/", B("/services/a.b_c-D9/x"), "a.b_c-D9", "x"},
    {"/services/", B("/services/api/pod/7/x"), "api", "pod/7/x"},
    {"/services/", B("/services/api/!~{}\"';#"), "api", "!~{}\"';#"},
    {"/services/", B("/services/api//"), "api", "/"},
    {"/services/", B("/services/...x/y"), "...x", "y"},
    {"/", B("/api/x"), "api", "x"},
    {"/s/", B("/s/123456789012345678901234567890123456789012345678901234567890123/i"),
     "123456789012345678901234567890123456789012345678901234567890123", "i"},
    /* rejected */
    {"/services/", B("/services/"), NULL, "no service name"},
    {"/services/", B("/services/api"), NULL, "no instance"},
    {"/services/", B("/services/api/"), NULL, "instance name is empty"},
    {"/services/", B("/services//x"), NULL, "service name invalid"},
    {"/services/", B("/services/./x"), NULL, "service name invalid"},
    {"/services/", B("/services/../x"), NULL, "service name invalid"},
    {"/services/", B("/services/a pi/x"), NULL, "service name invalid"},
    {"/services/", B("/services/api;x/y"), NULL, "service name invalid"},
    {"/services/", B("/services/api:x/y"), NULL, "service name invalid"},
    {"/services/", B("/services/ap\xc3\xa9/y"), NULL, "service name invalid"},
    {"/s/", B("/s/1234567890123456789012345678901234567890123456789012345678901234/i"), NULL,
     "service name invalid"},
    {"/services/", B("/services/api/a b"), NULL, "instance name invalid"},
    {"/services/", B("/services/api/a\tb"), NULL, "instance name invalid"},
    {"/services/", B("/services/api/a\nb"), NULL, "instance name invalid"},
    {"/services/", B("/services/api/a\x7f"), NULL, "instance name invalid"},
    {"/services/", B("/services/api/caf\xc3\xa9"), NULL, "instance name invalid"},
    {"/services/", B("/services/api/x\0y"), NULL, "NUL"},
    {"/services/", B("/services/a\0i/x"), NULL, "NUL"},
    {"/services/", B("/other/api/x"), NULL, "not under the prefix"},
    {"/services/", B("/services"), NULL, "not under the prefix"},
    {"/services/", B("/SERVICES/api/x"), NULL, "not under the prefix"},
    {"/services/", B(""), NULL, "not under the prefix"},
};

Test(endpoint, parse_key)
{
    for (size_t i = 0; i < N_ELEMS(key_cases); i++) {
        const struct key_case *c = &key_cases[i];
        char service[SERVICE_NAME_MAX + 1], instance[INSTANCE_NAME_MAX + 1], *err = NULL;
        int ret;

        ret = endpoint_parse_key(c->prefix, c->key, c->keylen, service, instance, &err);
        if (c->service) {
            cr_expect_eq(ret, 0, "case %zu: %s", i, err ? err : "");
            cr_expect_str_eq(service, c->service, "case %zu", i);
            cr_expect_str_eq(instance, c->instance_or_err, "case %zu", i);
        } else {
            cr_expect_eq(ret, -EINVAL, "case %zu: accepted", i);
            cr_assert_not_null(err, "case %zu", i);
            check_errmsg_is_safe(err, c->key, c->keylen, i);
            cr_expect_not_null(strstr(err, c->instance_or_err), "case %zu: \"%s\" lacks \"%s\"", i,
                               err, c->instance_or_err);
        }
        free(err);
    }
}

Test(endpoint, key_instance_length)
{
    char key[16 + INSTANCE_NAME_MAX + 2];
    char service[SERVICE_NAME_MAX + 1], instance[INSTANCE_NAME_MAX + 1], *err = NULL;
    size_t n = (size_t)snprintf(key, sizeof(key), "/p/api/");

    memset(key + n, 'i', INSTANCE_NAME_MAX + 1);
    cr_expect_eq(endpoint_parse_key("/p/", key, n + INSTANCE_NAME_MAX, service, instance, &err), 0);
    cr_expect_eq(strlen(instance), INSTANCE_NAME_MAX);
    cr_expect_eq(endpoint_parse_key("/p/", key, n + INSTANCE_NAME_MAX + 1, service, instance, &err),
                 -EINVAL);
    cr_expect_not_null(strstr(err, "longer than 255"), "%s", err);
    free(err);
}

Test(endpoint, service_name_valid)
{
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"api", true},
        {"a", true},
        {"A.b_c-9", true},
        {"...", true},
        {".a", true},
        {"123456789012345678901234567890123456789012345678901234567890123", true},
        {"1234567890123456789012345678901234567890123456789012345678901234", false},
        {"", false},
        {".", false},
        {"..", false},
        {"a/b", false},
        {"a b", false},
        {"a;b", false},
        {"a:b", false},
        {"api\n", false},
        {"caf\xc3\xa9", false},
        {NULL, false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++)
        cr_expect_eq(endpoint_service_name_valid(cases[i].name), cases[i].ok, "case %zu", i);
}

Test(endpoint, format)
{
    struct endpoint ep = {.host = "10.0.0.1", .ipv6 = false, .port = 80, .weight = 1};
    char buf[64];

    cr_expect_eq(endpoint_format(&ep, buf, sizeof(buf)), 11);
    cr_expect_str_eq(buf, "10.0.0.1:80");
    snprintf(ep.host, sizeof(ep.host), "2001:db8::1");
    ep.ipv6 = true;
    ep.port = 65535;
    cr_expect_eq(endpoint_format(&ep, buf, sizeof(buf)), 19);
    cr_expect_str_eq(buf, "[2001:db8::1]:65535");
    /* snprintf semantics: truncated, NUL-terminated, full length returned */
    cr_expect_eq(endpoint_format(&ep, buf, 5), 19);
    cr_expect_str_eq(buf, "[200");
}

Test(endpoint, equal)
{
    struct endpoint a, b;

    cr_assert_eq(endpoint_parse_value(B("{\"host\":\"10.0.0.1\",\"port\":80}"), &a, NULL), 0);
    cr_assert_eq(endpoint_parse_value(B("10.0.0.1:80"), &b, NULL), 0);
    cr_expect(endpoint_equal(&a, &b));
    b.weight = 2;
    cr_expect(!endpoint_equal(&a, &b));
    b = a;
    b.state = ENDPOINT_DRAIN;
    cr_expect(!endpoint_equal(&a, &b));
    b = a;
    b.port = 81;
    cr_expect(!endpoint_equal(&a, &b));
    cr_assert_eq(endpoint_parse_value(B("10.0.0.2:80"), &b, NULL), 0);
    cr_expect(!endpoint_equal(&a, &b));
    cr_assert_eq(endpoint_parse_value(B("[::1]:80"), &a, NULL), 0);
    cr_assert_eq(endpoint_parse_value(B("[0::0:1]:80"), &b, NULL), 0);
    cr_expect(endpoint_equal(&a, &b));
}

Test(endpoint, state_names)
{
    cr_expect_str_eq(endpoint_state_name(ENDPOINT_READY), "ready");
    cr_expect_str_eq(endpoint_state_name(ENDPOINT_DRAIN), "drain");
    cr_expect_str_eq(endpoint_state_name(ENDPOINT_MAINT), "maint");
    cr_expect_str_eq(endpoint_state_name((enum endpoint_state)9), "?");
    cr_expect_eq(endpoint_state_parse("ready"), ENDPOINT_READY);
    cr_expect_eq(endpoint_state_parse("drain"), ENDPOINT_DRAIN);
    cr_expect_eq(endpoint_state_parse("maint"), ENDPOINT_MAINT);
    cr_expect_eq(endpoint_state_parse("Ready"), -1);
    cr_expect_eq(endpoint_state_parse("up"), -1);
    cr_expect_eq(endpoint_state_parse(""), -1);
    cr_expect_eq(endpoint_state_parse(NULL), -1);
}

/* ---- unknown JSON fields: accepted, and named ---- */

Test(endpoint, unknown_fields_are_named_escaped)
{
    static const struct {
        const char *value;
        const char *unknown;
        unsigned short weight;
    } cases[] = {
        {"{\"host\":\"10.0.0.1\",\"port\":80,\"wieght\":3}", "\"wieght\"", 1},
        {"{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":3}", "", 3},
        {"{\"host\":\"10.0.0.1\",\"port\":80,\"zone\":\"a\",\"stat\":\"drain\"}",
         "\"zone\", \"stat\"", 1},
        /* a name that would forge a log line, or hide in the terminal */
        {"{\"host\":\"10.0.0.1\",\"port\":80,\"a\\nb\\u001b[2J\\\"\":1}", "\"a\\nb\\x1b[2J\\\"\"",
         1},
        {"10.0.0.1:80", "", 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct endpoint ep;
        char unknown[256] = "junk";
        char *err = NULL;

        cr_assert_eq(endpoint_parse_value_unknown(cases[i].value, strlen(cases[i].value), &ep,
                                                  unknown, sizeof(unknown), &err),
                     0, "case %zu: %s", i, err ? err : "");
        cr_expect_str_eq(unknown, cases[i].unknown, "case %zu", i);
        cr_expect_eq(ep.weight, cases[i].weight, "case %zu", i);
        free(err);
    }
}

Test(endpoint, unknown_fields_list_is_cut_not_overflowed)
{
    char value[1024], unknown[24];
    struct endpoint ep;
    size_t o;

    o = (size_t)snprintf(value, sizeof(value), "{\"host\":\"10.0.0.1\",\"port\":80");
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(value + o, sizeof(value) - o, ",\"field%02d\":1", i);
    snprintf(value + o, sizeof(value) - o, "}");
    cr_assert_eq(
        endpoint_parse_value_unknown(value, strlen(value), &ep, unknown, sizeof(unknown), NULL), 0);
    cr_expect_lt(strlen(unknown), sizeof(unknown));
    cr_expect_str_eq(unknown + strlen(unknown) - 3, "...", "%s", unknown);
    /* NULL or no room: nothing is written */
    cr_expect_eq(endpoint_parse_value_unknown(value, strlen(value), &ep, NULL, 0, NULL), 0);
}

/* ---- the one port rule and the one sockaddr builder ---- */

Test(endpoint, parse_port_table)
{
    static const struct {
        const char *s;
        int rc;
        unsigned short port;
        const char *reason; /* substring */
    } cases[] = {
        {"1", 0, 1, NULL},
        {"80", 0, 80, NULL},
        {"65535", 0, 65535, NULL},
        {"", -EINVAL, 0, "missing"},
        {"0", -EINVAL, 0, "out of range"},
        {"65536", -EINVAL, 0, "out of range"},
        {"123456", -EINVAL, 0, "out of range"},
        {"99999999999999999999", -EINVAL, 0, "out of range"},
        {"080", -EINVAL, 0, "leading zeros"},
        {"+80", -EINVAL, 0, "sign"},
        {"-1", -EINVAL, 0, "sign"},
        {"8o", -EINVAL, 0, "after the port"},
        {"x", -EINVAL, 0, "not a decimal"},
        {" 80", -EINVAL, 0, "not a decimal"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned short port = 7;
        char *err = NULL;
        int rc = endpoint_parse_port(cases[i].s, strlen(cases[i].s), &port, &err);

        cr_expect_eq(rc, cases[i].rc, "case %zu (%s): %d", i, cases[i].s, rc);
        if (rc == 0) {
            cr_expect_eq(port, cases[i].port, "case %zu", i);
            cr_expect_null(err);
        } else {
            cr_expect_eq(port, 7, "case %zu: port untouched", i);
            cr_expect(err && strstr(err, cases[i].reason), "case %zu: %s", i, err ? err : "");
        }
        cr_expect_eq(endpoint_parse_port(cases[i].s, strlen(cases[i].s), NULL, NULL), rc);
        free(err);
    }
}

Test(endpoint, sockaddr_table)
{
    static const struct {
        const char *host;
        bool ipv6;
        int rc;
        int family;
    } cases[] = {
        {"127.0.0.1", false, 0, AF_INET},   {"::1", true, 0, AF_INET6},
        {"2001:db8::5", true, 0, AF_INET6}, {"::1", false, -EINVAL, 0},
        {"127.0.0.1", true, -EINVAL, 0},    {"localhost", false, -EINVAL, 0},
        {"[::1]", true, -EINVAL, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = endpoint_sockaddr(cases[i].host, cases[i].ipv6, 8080, &ss, &len);

        cr_expect_eq(rc, cases[i].rc, "case %zu", i);
        if (rc < 0)
            continue;
        cr_expect_eq(ss.ss_family, cases[i].family, "case %zu", i);
        if (cases[i].family == AF_INET) {
            cr_expect_eq(len, sizeof(struct sockaddr_in));
            cr_expect_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
        } else {
            cr_expect_eq(len, sizeof(struct sockaddr_in6));
            cr_expect_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 8080);
        }
    }
}
