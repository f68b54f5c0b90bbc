/* test_policy - where a new service goes, and the empty registry's hold:
 * every combination of the facts, table-driven. */
#include <criterion/criterion.h>

#include <string.h>

#include <slotsync/policy.h>

Test(policy, place_every_combination)
{
    /* 2^5 facts: dynamic only when all four of its conditions hold, a
     * spare binding only when no reload is asked for or under way. */
    for (unsigned m = 0; m < 32; m++) {
        const struct policy_place_facts f = {
            .render_only = m & 1,
            .dynamic_usable = m & 2,
            .dynamic_fits = m & 4,
            .ours = m & 8,
            .reload_busy = m & 16,
        };
        struct policy_place w;

        memset(&w, 0xa5, sizeof(w));
        policy_place(&f, &w);
        cr_expect_eq(w.dynamic, (m & 15) == 14, "facts %#x", m);
        cr_expect_eq(w.spare_bind, !(m & 16), "facts %#x", m);
    }
}

Test(policy, place_named_cases)
{
    static const struct {
        struct policy_place_facts f;
        bool dynamic, spare_bind;
    } cases[] = {
        /* HAProxy 3.x with a free name: its own backend */
        {{false, true, true, true, false}, true, true},
        /* ... also while a reload is pending: no spare, but a backend of its own */
        {{false, true, true, true, true}, true, false},
        /* HAProxy 2.6 (no "add backend"): a spare, or a reload */
        {{false, false, true, true, false}, false, true},
        /* a configured service (or a TCP one): never dynamic */
        {{false, true, false, true, false}, false, true},
        /* a name a foreign proxy holds */
        {{false, true, true, false, false}, false, true},
        /* slotsync render */
        {{true, true, true, true, false}, false, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_place w;

        policy_place(&cases[i].f, &w);
        cr_expect_eq(w.dynamic, cases[i].dynamic, "case %zu", i);
        cr_expect_eq(w.spare_bind, cases[i].spare_bind, "case %zu", i);
    }
}

Test(policy, empty_registry_table)
{
    static const struct {
        size_t filled;
        bool allow, held;
        enum policy_empty act;
        bool log;
        const char *why;
    } cases[] = {
        /* a wiped etcd in front of a full HAProxy: hold, said once */
        {3, false, false, POLICY_EMPTY_HOLD, true, NULL},
        {3, false, true, POLICY_EMPTY_HOLD, false, NULL},
        /* the operator allows it: applies; a line only if it was held */
        {3, true, false, POLICY_EMPTY_APPLY, false, "allow_empty_registry is set"},
        {3, true, true, POLICY_EMPTY_APPLY, true, "allow_empty_registry is set"},
        /* nothing to lose: applies */
        {0, false, false, POLICY_EMPTY_APPLY, false, "HAProxy has no filled slot left"},
        {0, false, true, POLICY_EMPTY_APPLY, true, "HAProxy has no filled slot left"},
        {0, true, true, POLICY_EMPTY_APPLY, true, "HAProxy has no filled slot left"},
        /* one slot is enough to hold */
        {1, false, false, POLICY_EMPTY_HOLD, true, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_empty_out d;

        memset(&d, 0xa5, sizeof(d));
        policy_empty_registry(cases[i].filled, cases[i].allow, cases[i].held, &d);
        cr_expect_eq(d.act, cases[i].act, "case %zu", i);
        cr_expect_eq(d.log, cases[i].log, "case %zu", i);
        if (cases[i].why)
            cr_expect_str_eq(d.why, cases[i].why, "case %zu", i);
        else
            cr_expect_null(d.why, "case %zu", i);
    }
}
