/* test_spare - the spare pool: names, binding, release, refill planning,
 * adoption from the live map and labels; table-driven. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <slotsync/endpoint.h>
#include <slotsync/routes-t.h>
#include <slotsync/spare.h>

Test(spare, names)
{
    static const struct {
        const char *name;
        long index;
        bool proxy_ok;
    } cases[] = {
        {"spare:0", 0, true},      {"spare:3", 3, true},    {"spare:1023", 1023, true},
        {"spare:1024", -1, false}, {"spare:03", -1, false}, {"spare:", -1, false},
        {"spare:-1", -1, false},   {"spare:1x", -1, false}, {"Spare:1", -1, false},
        {"spare", -1, true},       {"web", -1, true},       {"_s3", -1, true},
        {"a:b", -1, false},        {"", -1, false},         {"spare:99999999999", -1, false},
    };
    char buf[SPARE_NAME_SIZE];

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cr_expect_eq(spare_index(cases[k].name), cases[k].index, "%s", cases[k].name);
        cr_expect_eq(spare_proxy_name_valid(cases[k].name), cases[k].proxy_ok, "%s", cases[k].name);
    }
    /* No service name is a spare's: ':' is not a service character. */
    cr_expect_not(endpoint_service_name_valid("spare:0"));
    for (size_t i = 0; i < SPARE_MAX; i++) {
        spare_name(i, buf);
        cr_assert_eq(spare_index(buf), (long)i, "%s", buf);
    }
}

static bool odd_only(size_t i, void *arg)
{
    (void)arg;
    return i % 2 == 1;
}

Test(spare, bind_release)
{
    /* op: 'b' bind, 'r' release, each with the index expected (bind) or
     * given (release), and the free count after. */
    static const struct {
        char op;
        const char *svc;
        long idx;
        size_t free_after;
    } steps[] = {
        {'b', "web", 0, 3},       {'b', "api", 1, 2}, {'b', "web", 0, 2}, /* again: same spare */
        {'b', "WEB", 0, 2},                                               /* case-insensitive */
        {'b', "bad name", -1, 2}, {'r', NULL, 0, 3},  {'b', "db", 0, 2},  /* first free reused */
        {'b', "x", 2, 1},         {'b', "y", 3, 0},   {'b', "z", -1, 0},  /* exhausted */
        {'r', NULL, 7, 0},                                                /* out of range */
        {'r', NULL, 3, 1},        {'r', NULL, 3, 1},                      /* twice: once */
    };
    struct spare_pool p;

    cr_assert_eq(spare_pool_init(&p, 4), 0);
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        if (steps[k].op == 'b')
            cr_expect_eq(spare_bind(&p, steps[k].svc, NULL, NULL), steps[k].idx, "step %zu", k);
        else
            spare_release(&p, (size_t)steps[k].idx);
        cr_expect_eq(spare_free_count(&p), steps[k].free_after, "step %zu", k);
    }
    cr_expect_str_eq(spare_bound(&p, 0), "db");
    cr_expect_null(spare_bound(&p, 3));
    cr_expect_null(spare_bound(&p, 99));
    cr_expect_eq(spare_find(&p, "x"), 2);
    cr_expect_eq(spare_find(&p, "y"), -1);
    /* A spare HAProxy does not run is never chosen. */
    cr_assert_eq(spare_pool_reset(&p, 4), 0);
    cr_expect_eq(spare_free_count(&p), 4);
    cr_expect_eq(spare_bind(&p, "a", odd_only, NULL), 1);
    cr_expect_eq(spare_bind(&p, "b", odd_only, NULL), 3);
    cr_expect_eq(spare_bind(&p, "c", odd_only, NULL), -1);
    spare_rename(&p, 1, "A");
    cr_expect_str_eq(spare_bound(&p, 1), "A");
    cr_expect_eq(spare_pool_reset(&p, SPARE_MAX + 1), -EINVAL);
    spare_pool_free(&p);
}

Test(spare, refill_plan)
{
    static const struct {
        size_t n, bound, waiting;
        enum spare_refill want;
    } cases[] = {
        {0, 0, 0, SPARE_REFILL_NONE},    {0, 0, 5, SPARE_REFILL_NONE},
        {16, 0, 0, SPARE_REFILL_NONE},   {16, 8, 0, SPARE_REFILL_NONE}, /* half free: enough */
        {16, 9, 0, SPARE_REFILL_LATER},  {16, 15, 3, SPARE_REFILL_LATER},
        {16, 16, 0, SPARE_REFILL_LATER}, {16, 16, 1, SPARE_REFILL_NOW},
        {1, 0, 0, SPARE_REFILL_NONE},    {1, 1, 0, SPARE_REFILL_LATER},
        {24, 20, 0, SPARE_REFILL_LATER}, {4, 4, 8, SPARE_REFILL_NOW},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct spare_pool p;
        char svc[24];

        cr_assert_eq(spare_pool_init(&p, cases[k].n), 0);
        for (size_t i = 0; i < cases[k].bound; i++) {
            snprintf(svc, sizeof(svc), "s%zu", i);
            cr_assert_geq(spare_bind(&p, svc, NULL, NULL), 0);
        }
        cr_expect_eq(spare_refill_plan(&p, cases[k].waiting), cases[k].want, "case %zu", k);
        spare_pool_free(&p);
    }
}

Test(spare, adopt)
{
    static const struct host_route routes[] = {
        {"api.example.org", "api"},       /* its own backend: not a spare's */
        {"db.example.org", "spare:2"},    /* adopted */
        {"old.example.org", "spare:9"},   /* out of range */
        {"other.example.com", "spare:1"}, /* not <service>.<domain> */
        {"web.example.org", "spare:0"},   /* kept: the pool has it */
        {"x.example.org", "spare:0"},     /* spare:0 is web's: conflict */
        {"web2.example.org", "spare:3"},  /* adopted */
        {"web2.example.org", "spare:1"},  /* web2 has spare:3: conflict */
        {".example.org", "spare:1"},      /* no service name */
    };
    struct spare_pool p;
    struct spare_adoption a;

    cr_assert_eq(spare_pool_init(&p, 4), 0);
    cr_assert_eq(spare_bind(&p, "web", NULL, NULL), 0);
    spare_adopt(&p, routes, sizeof(routes) / sizeof(routes[0]), "example.org", &a);
    cr_expect_eq(a.adopted, 2);
    cr_expect_eq(a.kept, 1);
    cr_expect_eq(a.conflicts, 2);
    cr_expect_eq(a.ignored, 3);
    cr_expect_str_eq(spare_bound(&p, 2), "db");
    cr_expect_str_eq(spare_bound(&p, 3), "web2");
    cr_expect_null(spare_bound(&p, 1));
    cr_expect_eq(spare_free_count(&p), 1);
    /* Again: nothing new (a restart's second read). */
    spare_adopt(&p, routes, sizeof(routes) / sizeof(routes[0]), "example.org", &a);
    cr_expect_eq(a.adopted, 0);
    cr_expect_eq(a.kept, 3);
    /* Without a domain no route can be read. */
    spare_adopt(&p, routes, sizeof(routes) / sizeof(routes[0]), NULL, &a);
    cr_expect_eq(a.adopted + a.kept, 0);
    spare_pool_free(&p);
}

Test(spare, label)
{
    static const struct {
        const char *svc, *proxy, *want;
    } cases[] = {
        {"web", "spare:3", "web (spare:3)"},
        {"web", "web", "web"},
        {"web", "", "web"},
        {"web", NULL, "web"},
    };
    char out[SPARE_LABEL_SIZE];

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        spare_label(cases[k].svc, cases[k].proxy, out, sizeof(out));
        cr_expect_str_eq(out, cases[k].want);
    }
}
