/* Tests for announce_key: the key as read back, and whether a withdrawal may
 * delete it (moved from test_announce.c). */
#include <criterion/criterion.h>

#include <string.h>

#include <slotsync/announce_key.h>
#include <slotsync/endpoint.h>

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
