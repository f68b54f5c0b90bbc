/* test_etcd_stall - the watch stall detector's comparison: etcd's answer
 * (newest key by mod_revision, key count) against what was applied; one
 * check ahead is an event in flight, two with the watch not moving are a
 * stall. */
#include <criterion/criterion.h>

#include <slotsync/etcd_stall.h>

/* {etcd_rev, etcd_top, etcd_count, applied_rev, applied_keys} */
#define S(er, et, ec, ar, ak)                                                                      \
    {                                                                                              \
        (er), (et), (ec), (ar), (ak)                                                               \
    }

struct one_case {
    const char *name;
    struct etcd_stall_sample s;
    bool ahead;
    enum etcd_stall_verdict first; /* the verdict without a previous sample */
};

static const struct one_case one_cases[] = {
    {"equal: the newest key is the last applied", S(50, 50, 3, 50, 3), false, ETCD_STALL_EQUAL},
    {"equal: other prefixes moved the cluster on", S(90, 40, 3, 40, 3), false, ETCD_STALL_EQUAL},
    {"equal: a listing's revision above every key", S(60, 12, 2, 60, 2), false, ETCD_STALL_EQUAL},
    {"equal: after a delete the newest key is older", S(70, 20, 2, 70, 2), false, ETCD_STALL_EQUAL},
    {"equal: empty prefix", S(9, 0, 0, 9, 0), false, ETCD_STALL_EQUAL},
    {"ahead: a put not delivered", S(51, 51, 3, 50, 3), true, ETCD_STALL_AHEAD},
    {"ahead: a new key not delivered", S(51, 51, 4, 50, 3), true, ETCD_STALL_AHEAD},
    {"ahead: a delete not delivered (count only)", S(51, 40, 2, 50, 3), true, ETCD_STALL_AHEAD},
    {"ahead: the last key deleted, not delivered", S(51, 0, 0, 50, 1), true, ETCD_STALL_AHEAD},
    {"ahead: count differs at the applied revision", S(50, 50, 2, 50, 3), true, ETCD_STALL_AHEAD},
    {"behind: an event newer than the answer applied", S(50, 50, 3, 52, 4), false,
     ETCD_STALL_BEHIND},
    {"behind: counts differ but the answer is older", S(50, 48, 3, 52, 2), false,
     ETCD_STALL_BEHIND},
    {"ahead even when the answer is older: a newer key", S(50, 53, 3, 52, 3), true,
     ETCD_STALL_AHEAD},
};

Test(etcd_stall, one_sample_table)
{
    for (size_t i = 0; i < sizeof(one_cases) / sizeof(one_cases[0]); i++) {
        const struct one_case *c = &one_cases[i];

        cr_expect_eq(etcd_stall_ahead(&c->s), c->ahead, "%s: ahead", c->name);
        cr_expect_eq(etcd_stall_compare(NULL, &c->s), c->first, "%s: %s", c->name,
                     etcd_stall_verdict_name(etcd_stall_compare(NULL, &c->s)));
    }
}

struct two_case {
    const char *name;
    struct etcd_stall_sample prev, now;
    enum etcd_stall_verdict want;
};

static const struct two_case two_cases[] = {
    {"twice ahead, nothing delivered: stalled", S(51, 51, 3, 50, 3), S(51, 51, 3, 50, 3),
     ETCD_STALL_STALLED},
    {"twice ahead, more changes, nothing delivered", S(51, 51, 3, 50, 3), S(60, 60, 5, 50, 3),
     ETCD_STALL_STALLED},
    {"a missed delete, twice: stalled", S(51, 40, 2, 50, 3), S(51, 40, 2, 50, 3),
     ETCD_STALL_STALLED},
    {"delivered some, not what etcd had then: stalled", S(60, 60, 3, 50, 3), S(61, 61, 3, 55, 3),
     ETCD_STALL_STALLED},
    {"an event in flight, then delivered: equal", S(51, 51, 3, 50, 3), S(51, 51, 3, 51, 3),
     ETCD_STALL_EQUAL},
    {"a delete in flight, then delivered: equal", S(51, 40, 2, 50, 3), S(51, 40, 2, 51, 2),
     ETCD_STALL_EQUAL},
    {"a busy prefix: ahead twice, but the watch moved past", S(60, 60, 3, 58, 3),
     S(80, 80, 3, 78, 3), ETCD_STALL_AHEAD},
    {"a busy prefix, deletes: count differs twice, watch moved", S(60, 55, 2, 58, 3),
     S(80, 70, 1, 79, 2), ETCD_STALL_AHEAD},
    {"equal, then ahead once: in flight", S(50, 50, 3, 50, 3), S(51, 51, 3, 50, 3),
     ETCD_STALL_AHEAD},
    {"behind, then ahead once: in flight", S(50, 50, 3, 52, 4), S(53, 53, 4, 52, 4),
     ETCD_STALL_AHEAD},
    {"ahead, then behind", S(51, 51, 3, 50, 3), S(51, 51, 3, 53, 4), ETCD_STALL_BEHIND},
};

Test(etcd_stall, twice_in_a_row_table)
{
    for (size_t i = 0; i < sizeof(two_cases) / sizeof(two_cases[0]); i++) {
        const struct two_case *c = &two_cases[i];
        enum etcd_stall_verdict got = etcd_stall_compare(&c->prev, &c->now);

        cr_expect_eq(got, c->want, "%s: got %s, want %s", c->name, etcd_stall_verdict_name(got),
                     etcd_stall_verdict_name(c->want));
    }
}

Test(etcd_stall, verdict_names)
{
    cr_expect_str_eq(etcd_stall_verdict_name(ETCD_STALL_EQUAL), "equal");
    cr_expect_str_eq(etcd_stall_verdict_name(ETCD_STALL_BEHIND), "behind");
    cr_expect_str_eq(etcd_stall_verdict_name(ETCD_STALL_AHEAD), "ahead");
    cr_expect_str_eq(etcd_stall_verdict_name(ETCD_STALL_STALLED), "stalled");
}
