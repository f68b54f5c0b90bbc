/* Tests for announce_value: the published value, round-tripped through the
 * daemon's endpoint_parse_value (moved from test_announce.c). */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include <slotsync/announce_value.h>
#include <slotsync/endpoint.h>

/* ---- the published value ---- */

struct value_case {
    const char *addr;
    int weight; /* -1: not given */
    enum announce_format format;
    const char *value;
};

Test(announce_value, formats_and_round_trips)
{
    static const struct value_case cases[] = {
        {"127.0.0.1:8080", -1, ANNOUNCE_FORMAT_JSON, "{\"host\":\"127.0.0.1\",\"port\":8080}"},
        {"127.0.0.1:8080", 7, ANNOUNCE_FORMAT_JSON,
         "{\"host\":\"127.0.0.1\",\"port\":8080,\"weight\":7}"},
        {"10.1.2.3:1", 0, ANNOUNCE_FORMAT_JSON, "{\"host\":\"10.1.2.3\",\"port\":1,\"weight\":0}"},
        {"10.1.2.3:65535", 256, ANNOUNCE_FORMAT_JSON,
         "{\"host\":\"10.1.2.3\",\"port\":65535,\"weight\":256}"},
        {"[2001:db8::5]:443", -1, ANNOUNCE_FORMAT_JSON, "{\"host\":\"2001:db8::5\",\"port\":443}"},
        {"[::1]:80", 3, ANNOUNCE_FORMAT_JSON, "{\"host\":\"::1\",\"port\":80,\"weight\":3}"},
        {"127.0.0.1:8080", -1, ANNOUNCE_FORMAT_PLAIN, "127.0.0.1:8080"},
        {"[2001:db8::5]:443", -1, ANNOUNCE_FORMAT_PLAIN, "[2001:db8::5]:443"},
        {"[::ffff:10.0.0.1]:80", -1, ANNOUNCE_FORMAT_PLAIN, "[::ffff:10.0.0.1]:80"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct value_case *c = &cases[i];
        struct endpoint ep, back;
        char buf[ENDPOINT_VALUE_MAX + 1], *err = NULL;
        int n;

        memset(&ep, 0, sizeof(ep));
        cr_assert_eq(endpoint_parse_hostport(c->addr, strlen(c->addr), &ep), 0, "case %zu", i);
        ep.weight = c->weight >= 0 ? (unsigned short)c->weight : ENDPOINT_DEFAULT_WEIGHT;
        n = announce_format_value(&ep, c->weight >= 0, c->format, buf, sizeof(buf));
        cr_assert_eq(n, (int)strlen(c->value), "case %zu: returned %d", i, n);
        cr_expect_str_eq(buf, c->value, "case %zu", i);

        /* What announce publishes, the daemon must accept as the same
         * endpoint. */
        memset(&back, 0, sizeof(back));
        cr_assert_eq(endpoint_parse_value(buf, (size_t)n, &back, &err), 0,
                     "case %zu: daemon refuses %s: %s", i, buf, err ? err : "");
        cr_expect_str_eq(back.host, ep.host, "case %zu", i);
        cr_expect_eq(back.ipv6, ep.ipv6, "case %zu", i);
        cr_expect_eq(back.port, ep.port, "case %zu", i);
        cr_expect_eq(back.weight, c->weight >= 0 ? c->weight : ENDPOINT_DEFAULT_WEIGHT, "case %zu",
                     i);
        cr_expect_eq(back.state, ENDPOINT_READY, "case %zu", i);
        free(err);
    }
}

/* The drain value: the ready value plus "state":"drain", which the daemon
 * reads back as the same endpoint draining. */
Test(announce_value, drain_state)
{
    static const struct value_case cases[] = {
        {"127.0.0.1:8080", -1, ANNOUNCE_FORMAT_JSON,
         "{\"host\":\"127.0.0.1\",\"port\":8080,\"state\":\"drain\"}"},
        {"127.0.0.1:8080", 7, ANNOUNCE_FORMAT_JSON,
         "{\"host\":\"127.0.0.1\",\"port\":8080,\"weight\":7,\"state\":\"drain\"}"},
        {"[2001:db8::5]:443", 0, ANNOUNCE_FORMAT_JSON,
         "{\"host\":\"2001:db8::5\",\"port\":443,\"weight\":0,\"state\":\"drain\"}"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct value_case *c = &cases[i];
        struct endpoint ep, back;
        char buf[ENDPOINT_VALUE_MAX + 1], *err = NULL;
        int n;

        memset(&ep, 0, sizeof(ep));
        cr_assert_eq(endpoint_parse_hostport(c->addr, strlen(c->addr), &ep), 0, "case %zu", i);
        ep.weight = c->weight >= 0 ? (unsigned short)c->weight : ENDPOINT_DEFAULT_WEIGHT;
        ep.state = ENDPOINT_DRAIN;
        n = announce_format_value(&ep, c->weight >= 0, c->format, buf, sizeof(buf));
        cr_assert_eq(n, (int)strlen(c->value), "case %zu: returned %d", i, n);
        cr_expect_str_eq(buf, c->value, "case %zu", i);
        memset(&back, 0, sizeof(back));
        cr_assert_eq(endpoint_parse_value(buf, (size_t)n, &back, &err), 0, "case %zu: %s", i,
                     err ? err : "");
        cr_expect_eq(back.state, ENDPOINT_DRAIN, "case %zu", i);
        cr_expect_str_eq(back.host, ep.host, "case %zu", i);
        cr_expect_eq(back.port, ep.port, "case %zu", i);
        free(err);
    }
}

Test(announce_value, drain_errors)
{
    struct endpoint ep;
    char buf[128];
    size_t full;

    memset(&ep, 0, sizeof(ep));
    cr_assert_eq(endpoint_parse_hostport("127.0.0.1:8080", 14, &ep), 0);
    ep.state = ENDPOINT_DRAIN;
    cr_expect_eq(announce_format_value(&ep, false, ANNOUNCE_FORMAT_PLAIN, buf, sizeof(buf)),
                 -EINVAL, "plain cannot carry a state");
    ep.state = (enum endpoint_state)7;
    cr_expect_eq(announce_format_value(&ep, false, ANNOUNCE_FORMAT_JSON, buf, sizeof(buf)),
                 -EINVAL);
    /* Every buffer one byte short of the value is refused, never cut. */
    ep.state = ENDPOINT_DRAIN;
    full = (size_t)announce_format_value(&ep, true, ANNOUNCE_FORMAT_JSON, buf, sizeof(buf));
    for (size_t size = 1; size <= full; size++) {
        char small[128];

        cr_expect_eq(announce_format_value(&ep, true, ANNOUNCE_FORMAT_JSON, small, size), -ENOSPC,
                     "size %zu", size);
    }
}

Test(announce_value, errors)
{
    struct endpoint ep;
    char small[8], buf[128];

    memset(&ep, 0, sizeof(ep));
    cr_assert_eq(endpoint_parse_hostport("127.0.0.1:8080", 14, &ep), 0);
    cr_expect_eq(announce_format_value(&ep, false, ANNOUNCE_FORMAT_JSON, small, sizeof(small)),
                 -ENOSPC);
    cr_expect_eq(announce_format_value(&ep, false, ANNOUNCE_FORMAT_PLAIN, small, sizeof(small)),
                 -ENOSPC);
    cr_expect_eq(announce_format_value(&ep, true, ANNOUNCE_FORMAT_PLAIN, buf, sizeof(buf)), -EINVAL,
                 "plain cannot carry a weight");
    cr_expect_eq(announce_format_value(NULL, false, ANNOUNCE_FORMAT_JSON, buf, sizeof(buf)),
                 -EINVAL);
    cr_expect_eq(announce_format_value(&ep, false, (enum announce_format)9, buf, sizeof(buf)),
                 -EINVAL);
}
