/* Tests for announce's pure parts: the published value (round-tripped
 * through the daemon's endpoint_parse_value), the key as read back, and the
 * retry backoff. Its command line is test_announce_opts.c. */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/announce.h>
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

/* ---- the key as read back ---- */

#define OURS "{\"host\":\"127.0.0.1\",\"port\":8080}"

struct verdict_case {
    bool present;
    const char *value;
    int64_t lease;
    enum announce_key_verdict verdict;
};

Test(announce_key, classify)
{
    static const struct verdict_case cases[] = {
        {true, OURS, 0x10, ANNOUNCE_KEY_OURS},
        {false, NULL, 0, ANNOUNCE_KEY_GONE},
        /* etcdctl put of the same bytes without --lease */
        {true, OURS, 0, ANNOUNCE_KEY_DETACHED},
        /* the operator's drain: another value, and detached */
        {true, "{\"host\":\"127.0.0.1\",\"port\":8080,\"state\":\"drain\"}", 0,
         ANNOUNCE_KEY_OVERWRITTEN},
        /* etcdctl put --lease=<ours> of another value */
        {true, "127.0.0.1:8080", 0x10, ANNOUNCE_KEY_OVERWRITTEN},
        {true, "", 0x10, ANNOUNCE_KEY_OVERWRITTEN},
        /* a prefix of ours is not ours */
        {true, "{\"host\":\"127.0.0.1\",\"port\":808", 0x10, ANNOUNCE_KEY_OVERWRITTEN},
        /* another announce: same or another value, its own lease */
        {true, OURS, 0x20, ANNOUNCE_KEY_TAKEN},
        {true, "10.9.9.9:80", 0x20, ANNOUNCE_KEY_TAKEN},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct verdict_case *c = &cases[i];
        enum announce_key_verdict v = announce_key_classify(
            c->present, c->value, c->value ? strlen(c->value) : 0, c->lease, OURS, 0x10);

        cr_expect_eq(v, c->verdict, "case %zu: %s, expected %s", i, announce_key_verdict_name(v),
                     announce_key_verdict_name(c->verdict));
    }
    /* Bytes after a NUL count. */
    cr_expect_eq(announce_key_classify(true, OURS "\0x", strlen(OURS) + 2, 0x10, OURS, 0x10),
                 ANNOUNCE_KEY_OVERWRITTEN);
    cr_expect_str_eq(announce_key_verdict_name(ANNOUNCE_KEY_TAKEN), "taken");
    cr_expect_str_eq(announce_key_verdict_name((enum announce_key_verdict)42), "?");
}

struct deletable_case {
    const char *value;
    int64_t lease;
    bool deletable;
};

Test(announce_key, deletable)
{
    static const struct deletable_case cases[] = {
        /* our endpoint under no lease, whatever its weight or state */
        {OURS, 0, true},
        {"{\"host\":\"127.0.0.1\",\"port\":8080,\"state\":\"drain\"}", 0, true},
        {"{\"port\":8080,\"weight\":9,\"host\":\"127.0.0.1\",\"state\":\"maint\"}", 0, true},
        {"127.0.0.1:8080", 0, true},
        /* under our (revoked) lease */
        {OURS, 0x10, true},
        /* another writer's lease: never, even with our endpoint */
        {OURS, 0x20, false},
        /* another endpoint, or not an endpoint at all */
        {"127.0.0.1:8081", 0, false},
        {"127.0.0.2:8080", 0, false},
        {"[::1]:8080", 0, false},
        {"{\"host\":\"127.0.0.1\",\"port\":8080,\"state\":\"gone\"}", 0, false},
        {"garbage", 0, false},
        {"", 0, false},
    };
    struct endpoint ours;

    memset(&ours, 0, sizeof(ours));
    cr_assert_eq(endpoint_parse_hostport("127.0.0.1:8080", 14, &ours), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct deletable_case *c = &cases[i];

        cr_expect_eq(announce_key_deletable(c->value, strlen(c->value), c->lease, 0x10, &ours),
                     c->deletable, "case %zu: %s under %llx", i, c->value,
                     (unsigned long long)c->lease);
    }
    cr_expect_not(announce_key_deletable(NULL, 0, 0, 0x10, &ours));
    cr_expect_not(announce_key_deletable(OURS, strlen(OURS), 0, 0x10, NULL));
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

/* ---- backoff ---- */

Test(announce_backoff, doubles_to_the_cap)
{
    /* r = 0 gives the lower bound d/2. */
    cr_expect_float_eq(announce_backoff(0, 0.25, 5, 0), 0.125, 1e-12);
    cr_expect_float_eq(announce_backoff(1, 0.25, 5, 0), 0.25, 1e-12);
    cr_expect_float_eq(announce_backoff(2, 0.25, 5, 0), 0.5, 1e-12);
    cr_expect_float_eq(announce_backoff(4, 0.25, 5, 0), 2.0, 1e-12);
    cr_expect_float_eq(announce_backoff(5, 0.25, 5, 0), 2.5, 1e-12, "capped at 5");
    cr_expect_float_eq(announce_backoff(1000, 0.25, 5, 0), 2.5, 1e-12);
    cr_expect_float_eq(announce_backoff(4294967295u, 0.25, 5, 0), 2.5, 1e-12);
}

Test(announce_backoff, jitter_stays_in_bounds)
{
    for (unsigned attempt = 0; attempt < 40; attempt++) {
        double d = fmin(5.0, 0.25 * pow(2, attempt));

        for (int k = 0; k <= 100; k++) {
            double r = k / 101.0;
            double v = announce_backoff(attempt, 0.25, 5.0, r);

            cr_expect_geq(v, d / 2 - 1e-12, "attempt %u r %f: %f", attempt, r, v);
            cr_expect_lt(v, d, "attempt %u r %f: %f", attempt, r, v);
            cr_expect_leq(v, 5.0);
        }
    }
}

Test(announce_backoff, bad_jitter_is_ignored)
{
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, NAN), 1.0, 1e-12);
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, -1), 1.0, 1e-12);
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, 1), 1.0, 1e-12);
}
