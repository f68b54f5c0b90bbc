/* test_slots - slot assignment: stability, reuse, adoption, overflow, growth,
 * and server name parsing. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

static struct catalog *cat;
static struct slot_table table;

static void setup(void)
{
    cat = catalog_new("/s/");
    cr_assert_not_null(cat);
    table = (struct slot_table){0};
}

static void teardown(void)
{
    slots_free(&table);
    catalog_free(cat);
}

TestSuite(slots, .init = setup, .fini = teardown);

static void put(const char *instance, const char *val)
{
    char key[300];
    int r;

    snprintf(key, sizeof(key), "/s/api/%s", instance);
    r = catalog_put(cat, key, strlen(key), val, strlen(val), 1, NULL);
    cr_assert(r == CATALOG_ADDED || r == CATALOG_UPDATED || r == CATALOG_UNCHANGED, "put %s=%s",
              instance, val);
}

static void del(const char *instance)
{
    char key[300];

    snprintf(key, sizeof(key), "/s/api/%s", instance);
    cr_assert_eq(catalog_delete(cat, key, strlen(key), NULL), CATALOG_REMOVED, "del %s", instance);
}

static const struct catalog_service *api(void)
{
    return catalog_find(cat, "api");
}

static int assign(const struct server_view *observed)
{
    return slots_assign(&table, api(), observed);
}

/* Assert slot i holds instance (NULL: free, with a zeroed endpoint). */
static void assert_slot(size_t i, const char *instance)
{
    const struct slot *s = &table.slots[i];

    if (!instance) {
        static const struct endpoint zero;

        cr_assert_null(s->instance, "slot %zu holds %s", i, s->instance);
        cr_assert(memcmp(&s->ep, &zero, sizeof(zero)) == 0, "slot %zu: ep not zeroed", i);
        return;
    }
    cr_assert_not_null(s->instance, "slot %zu free, wanted %s", i, instance);
    cr_assert_str_eq(s->instance, instance, "slot %zu", i);
}

static void observe(struct server_view *obs, size_t i, const char *addr, unsigned port)
{
    cr_assert_eq(view_set_addr(&obs[i], addr), 0, "%s", addr);
    obs[i].port = (uint16_t)port;
}

Test(slots, init_and_free)
{
    cr_assert_eq(slots_init(&table, 4), 0);
    cr_assert_eq(table.n, 4);
    cr_assert_eq(table.overflow, 0);
    cr_assert_eq(slots_used(&table), 0);
    for (size_t i = 0; i < 4; i++)
        assert_slot(i, NULL);
    slots_free(&table);
    cr_assert_null(table.slots);
    cr_assert_eq(table.n, 0);
    cr_assert_eq(slots_init(&table, 0), 0);
    cr_assert_eq(slots_assign(&table, NULL, NULL), 0);
}

Test(slots, first_assign_in_instance_order)
{
    cr_assert_eq(slots_init(&table, 5), 0);
    put("c", "10.0.0.3:80");
    put("a", "10.0.0.1:80");
    put("b", "{\"host\":\"10.0.0.2\",\"port\":81,\"weight\":9,\"state\":\"drain\"}");
    cr_assert_eq(assign(NULL), 3);
    assert_slot(0, "a");
    assert_slot(1, "b");
    assert_slot(2, "c");
    assert_slot(3, NULL);
    assert_slot(4, NULL);
    cr_assert_str_eq(table.slots[1].ep.host, "10.0.0.2");
    cr_assert_eq(table.slots[1].ep.port, 81);
    cr_assert_eq(table.slots[1].ep.weight, 9);
    cr_assert_eq(table.slots[1].ep.state, ENDPOINT_DRAIN);
    cr_assert_eq(slots_used(&table), 3);
    cr_assert_eq(table.overflow, 0);
    /* the table owns copies of the names */
    cr_assert_neq(table.slots[0].instance, api()->endpoints[0]->instance);

    cr_assert_eq(assign(NULL), 0, "nothing changed");
}

Test(slots, change_in_place_keeps_slot)
{
    cr_assert_eq(slots_init(&table, 3), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(NULL), 2);

    put("a", "10.9.9.9:8080");
    cr_assert_eq(assign(NULL), 1);
    assert_slot(0, "a");
    assert_slot(1, "b");
    cr_assert_str_eq(table.slots[0].ep.host, "10.9.9.9");
    cr_assert_eq(table.slots[0].ep.port, 8080);

    put("b", "{\"host\":\"10.0.0.2\",\"port\":80,\"weight\":0}");
    cr_assert_eq(assign(NULL), 1);
    assert_slot(1, "b");
    cr_assert_eq(table.slots[1].ep.weight, 0);

    put("b", "{\"host\":\"10.0.0.2\",\"port\":80,\"weight\":0,\"state\":\"maint\"}");
    cr_assert_eq(assign(NULL), 1);
    assert_slot(1, "b");
    cr_assert_eq(table.slots[1].ep.state, ENDPOINT_MAINT);
}

Test(slots, removed_frees_and_lowest_free_is_reused)
{
    static const char *const names[] = {"a", "b", "c", "d", "e"};

    cr_assert_eq(slots_init(&table, 6), 0);
    for (size_t i = 0; i < 5; i++) {
        char val[32];

        snprintf(val, sizeof(val), "10.0.0.%zu:80", i + 1);
        put(names[i], val);
    }
    cr_assert_eq(assign(NULL), 5);
    del("b");
    del("d");
    cr_assert_eq(assign(NULL), 2);
    assert_slot(0, "a");
    assert_slot(1, NULL);
    assert_slot(2, "c");
    assert_slot(3, NULL);
    assert_slot(4, "e");
    assert_slot(5, NULL);
    cr_assert_eq(slots_used(&table), 3);

    put("z", "10.0.0.26:80");
    cr_assert_eq(assign(NULL), 1);
    assert_slot(1, "z");
    put("y", "10.0.0.25:80");
    put("x", "10.0.0.24:80");
    cr_assert_eq(assign(NULL), 2);
    /* new ones go in instance order to the lowest free slots */
    assert_slot(3, "x");
    assert_slot(5, "y");
    assert_slot(1, "z");
}

Test(slots, removed_and_added_in_one_pass_counts_slot_once)
{
    cr_assert_eq(slots_init(&table, 2), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(NULL), 2);
    del("a");
    put("c", "10.0.0.3:80");
    cr_assert_eq(assign(NULL), 1);
    assert_slot(0, "c");
    assert_slot(1, "b");
    cr_assert_str_eq(table.slots[0].ep.host, "10.0.0.3");
}

/* A table that somehow holds one instance twice keeps the first copy only. */
Test(slots, duplicate_instance_in_table_is_freed)
{
    cr_assert_eq(slots_init(&table, 3), 0);
    put("a", "10.0.0.1:80");
    table.slots[0].instance = strdup("a");
    table.slots[2].instance = strdup("a");
    cr_assert_eq(assign(NULL), 2);
    assert_slot(0, "a");
    assert_slot(1, NULL);
    assert_slot(2, NULL);
    cr_assert_str_eq(table.slots[0].ep.host, "10.0.0.1");
}

Test(slots, no_service_frees_everything)
{
    cr_assert_eq(slots_init(&table, 3), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(NULL), 2);
    cr_assert_eq(slots_assign(&table, NULL, NULL), 2);
    for (size_t i = 0; i < 3; i++)
        assert_slot(i, NULL);
    cr_assert_eq(slots_assign(&table, NULL, NULL), 0);
}

Test(slots, adoption_by_observed_addr_port)
{
    struct server_view obs[6] = {0};

    cr_assert_eq(slots_init(&table, 6), 0);
    observe(obs, 0, "10.0.0.9", 80); /* nobody has this */
    observe(obs, 1, "10.0.0.2", 81); /* right host, wrong port */
    observe(obs, 2, "10.0.0.2", 80); /* b */
    observe(obs, 3, "10.0.0.1", 80); /* a: unknown entry, must be ignored */
    obs[3].family = VIEW_UNKNOWN;
    observe(obs, 4, "2001:db8::7", 443); /* d, written differently in etcd */
    observe(obs, 5, "0.0.0.0", 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    put("c", "10.0.0.3:80");
    put("d", "[2001:db8:0:0::7]:443");

    cr_assert_eq(assign(obs), 4);
    assert_slot(2, "b");
    assert_slot(4, "d");
    assert_slot(0, "a");
    assert_slot(1, "c");
    assert_slot(3, NULL);
    assert_slot(5, NULL);
}

/* While a listing is partly read, a slot HAProxy has filled may hold an
 * endpoint not listed yet: new endpoints take only slots HAProxy has empty
 * (or unknown); the rest wait, without counting as overflow. Once the
 * listing is whole, slots_assign() places them anywhere free. */
Test(slots, partial_assign_takes_only_slots_haproxy_has_empty)
{
    struct server_view obs[4] = {0};

    cr_assert_eq(slots_init(&table, 4), 0);
    observe(obs, 0, "10.0.0.8", 80);
    observe(obs, 1, "0.0.0.0", 0);
    observe(obs, 2, "10.0.0.9", 80);
    observe(obs, 3, "0.0.0.0", 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    put("c", "10.0.0.3:80");
    put("h", "10.0.0.9:80"); /* HAProxy has it: adopted even while partial */
    cr_assert_eq(slots_assign_partial(&table, api(), obs), 3);
    assert_slot(1, "a");
    assert_slot(2, "h");
    assert_slot(3, "b");
    assert_slot(0, NULL);
    cr_assert_eq(table.overflow, 0, "c waits");
    cr_assert_eq(assign(obs), 1, "the listing is whole: c takes s1");
    assert_slot(0, "c");
    cr_assert_eq(table.overflow, 0);
    put("d", "10.0.0.4:80");
    cr_assert_eq(assign(obs), 0);
    cr_assert_eq(table.overflow, 1);
}

/* An endpoint with no observed match must not take a slot that a later
 * endpoint (in instance order) would adopt. */
Test(slots, adoption_runs_before_lowest_free)
{
    struct server_view obs[3] = {0};

    cr_assert_eq(slots_init(&table, 3), 0);
    observe(obs, 0, "10.0.0.2", 80);
    observe(obs, 1, "0.0.0.0", 0);
    observe(obs, 2, "0.0.0.0", 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(obs), 2);
    assert_slot(0, "b");
    assert_slot(1, "a");
    assert_slot(2, NULL);
}

Test(slots, adoption_never_takes_an_occupied_slot)
{
    struct server_view obs[3] = {0};

    cr_assert_eq(slots_init(&table, 3), 0);
    put("a", "10.0.0.1:80");
    cr_assert_eq(assign(NULL), 1);
    /* HAProxy still shows slot 0 at b's address, but a holds slot 0 */
    observe(obs, 0, "10.0.0.2", 80);
    observe(obs, 1, "0.0.0.0", 0);
    observe(obs, 2, "10.0.0.2", 80);
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(obs), 1);
    assert_slot(0, "a");
    assert_slot(1, NULL);
    assert_slot(2, "b");
}

Test(slots, adoption_of_a_slot_freed_in_the_same_pass)
{
    struct server_view obs[2] = {0};

    cr_assert_eq(slots_init(&table, 2), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    cr_assert_eq(assign(NULL), 2);
    observe(obs, 0, "10.0.0.1", 80);
    observe(obs, 1, "10.0.0.2", 80);
    /* b re-registers under a new instance name at the same address */
    del("b");
    put("b2", "10.0.0.2:80");
    cr_assert_eq(assign(obs), 1);
    assert_slot(0, "a");
    assert_slot(1, "b2");
}

Test(slots, adoption_with_duplicate_addresses)
{
    struct server_view obs[4] = {0};

    cr_assert_eq(slots_init(&table, 4), 0);
    observe(obs, 0, "10.0.0.5", 80);
    observe(obs, 1, "10.0.0.7", 80);
    observe(obs, 2, "10.0.0.5", 80);
    observe(obs, 3, "10.0.0.5", 80);
    put("x", "10.0.0.5:80");
    put("y", "10.0.0.5:80");
    put("z", "10.0.0.7:80");
    cr_assert_eq(assign(obs), 3);
    assert_slot(0, "x");
    assert_slot(2, "y");
    assert_slot(1, "z");
    assert_slot(3, NULL);
}

Test(slots, overflow_then_slot_frees)
{
    cr_assert_eq(slots_init(&table, 2), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    put("c", "10.0.0.3:80");
    put("d", "10.0.0.4:80");
    cr_assert_eq(assign(NULL), 2);
    cr_assert_eq(table.overflow, 2);
    assert_slot(0, "a");
    assert_slot(1, "b");
    cr_assert_eq(slots_used(&table), 2);

    del("a");
    cr_assert_eq(assign(NULL), 1);
    cr_assert_eq(table.overflow, 1);
    assert_slot(0, "c");
    assert_slot(1, "b");

    del("d");
    cr_assert_eq(assign(NULL), 0);
    cr_assert_eq(table.overflow, 0);
}

Test(slots, grow_keeps_slots_and_places_overflow)
{
    cr_assert_eq(slots_init(&table, 2), 0);
    put("a", "10.0.0.1:80");
    put("b", "10.0.0.2:80");
    put("c", "10.0.0.3:80");
    cr_assert_eq(assign(NULL), 2);
    cr_assert_eq(table.overflow, 1);

    cr_assert_eq(slots_grow(&table, 4), 0);
    cr_assert_eq(table.n, 4);
    assert_slot(0, "a");
    assert_slot(1, "b");
    assert_slot(2, NULL);
    assert_slot(3, NULL);
    cr_assert_eq(assign(NULL), 1);
    cr_assert_eq(table.overflow, 0);
    assert_slot(2, "c");
    assert_slot(3, NULL);

    cr_assert_eq(slots_grow(&table, 4), 0);
    cr_assert_eq(slots_grow(&table, 3), -EINVAL);
    cr_assert_eq(table.n, 4);
}

/* Random churn: an endpoint that survives a round keeps its slot, slots only
 * hold live endpoints, nothing is placed twice, overflow adds up. */
Test(slots, stability_under_churn)
{
    enum { N_INST = 300, N_SLOTS = 128, ROUNDS = 200 };
    static char *prev[N_SLOTS];
    bool live[N_INST] = {false};
    unsigned x = 2463534242u;
    unsigned version[N_INST] = {0};

    cr_assert_eq(slots_init(&table, N_SLOTS), 0);
    for (int round = 0; round < ROUNDS; round++) {
        size_t m, used;
        int changed;

        for (int k = 0; k < 12; k++) {
            char name[16], val[32];
            unsigned i;

            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            i = x % N_INST;
            snprintf(name, sizeof(name), "i%03u", i);
            if (live[i] && (x >> 20) % 3 == 0) {
                del(name);
                live[i] = false;
            } else {
                if (live[i])
                    version[i]++;
                snprintf(val, sizeof(val), "10.%u.%u.%u:%u", i / 256, i % 256, version[i] % 250,
                         8000 + version[i]);
                put(name, val);
                live[i] = true;
            }
        }
        for (size_t s = 0; s < N_SLOTS; s++) {
            free(prev[s]);
            prev[s] = table.slots[s].instance ? strdup(table.slots[s].instance) : NULL;
        }
        changed = assign(NULL);
        cr_assert_geq(changed, 0);

        m = api() ? api()->n_endpoints : 0;
        used = slots_used(&table);
        cr_assert_eq(used, m < N_SLOTS ? m : N_SLOTS, "round %d", round);
        cr_assert_eq(table.overflow, m - used, "round %d", round);
        for (size_t s = 0; s < N_SLOTS; s++) {
            const char *now = table.slots[s].instance;
            unsigned i;

            if (prev[s] && live[strtoul(prev[s] + 1, NULL, 10)])
                cr_assert(now && strcmp(now, prev[s]) == 0, "round %d: %s moved from slot %zu",
                          round, prev[s], s);
            if (!now)
                continue;
            i = (unsigned)strtoul(now + 1, NULL, 10);
            cr_assert(live[i], "round %d: slot %zu holds dead %s", round, s, now);
            for (size_t t = s + 1; t < N_SLOTS; t++)
                cr_assert(!table.slots[t].instance || strcmp(table.slots[t].instance, now) != 0,
                          "round %d: %s twice", round, now);
            cr_assert_eq(table.slots[s].ep.port, 8000 + version[i], "round %d: %s stale", round,
                         now);
        }
    }
    for (size_t s = 0; s < N_SLOTS; s++)
        free(prev[s]);
}

Test(slots, large_table_and_service)
{
    enum { N_SLOTS = 4096, N_EP = 20000 };
    struct server_view *obs = calloc(N_SLOTS, sizeof(*obs));
    char name[16], val[32];

    cr_assert_not_null(obs);
    for (int i = 0; i < N_EP; i++) {
        snprintf(name, sizeof(name), "i%05d", i);
        snprintf(val, sizeof(val), "10.0.%d.%d:%d", i / 256, i % 256, 1000 + i % 50000);
        put(name, val);
    }
    /* HAProxy has the endpoints in reverse order: all 4096 are adopted */
    for (int s = 0; s < N_SLOTS; s++) {
        int i = N_SLOTS - 1 - s;
        char addr[32];

        snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
        observe(obs, (size_t)s, addr, (unsigned)(1000 + i));
    }
    cr_assert_eq(slots_init(&table, N_SLOTS), 0);
    cr_assert_eq(assign(obs), N_SLOTS);
    cr_assert_eq(table.overflow, N_EP - N_SLOTS);
    for (int s = 0; s < N_SLOTS; s++) {
        snprintf(name, sizeof(name), "i%05d", N_SLOTS - 1 - s);
        assert_slot((size_t)s, name);
    }
    cr_assert_eq(assign(obs), 0);
    free(obs);
}

static const struct {
    const char *name;
    long index;
} server_names[] = {
    {"s1", 0},   {"s2", 1},   {"s12", 11},  {"s4096", 4095},     {"s999999999", 999999998},
    {"s0", -1},  {"s01", -1}, {"s", -1},    {"x1", -1},          {"S1", -1},
    {"s1x", -1}, {"s-1", -1}, {"s+1", -1},  {"s 1", -1},         {"s1 ", -1},
    {"", -1},    {"ss1", -1}, {"s1.0", -1}, {"s1000000000", -1}, {"s99999999999999999999999", -1},
};

Test(slots, index_of)
{
    for (size_t i = 0; i < sizeof(server_names) / sizeof(server_names[0]); i++)
        cr_assert_eq(slots_index_of(server_names[i].name), server_names[i].index, "\"%s\"",
                     server_names[i].name);
    cr_assert_eq(slots_index_of(NULL), -1);
}

Test(slots, index_of_round_trips_slot_name)
{
    char name[32];

    for (size_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), SLOT_NAME_FMT, i + 1);
        cr_assert_eq(slots_index_of(name), (long)i, "%s", name);
    }
}

struct shrink_case {
    size_t from, to, want_n;
};

static const struct shrink_case shrink_cases[] = {
    {4, 2, 2}, {4, 4, 4}, {4, 0, 0}, {3, 5, 3}, {0, 0, 0},
};

Test(slots, shrink_frees_the_dropped_entries)
{
    for (size_t i = 0; i < sizeof(shrink_cases) / sizeof(shrink_cases[0]); i++) {
        const struct shrink_case *c = &shrink_cases[i];
        struct slot_table t = {0};

        cr_assert_eq(slots_init(&t, c->from), 0);
        for (size_t k = 0; k < c->from; k++)
            cr_assert_not_null(t.slots[k].instance = strdup("i"));
        slots_shrink(&t, c->to);
        cr_assert_eq(t.n, c->want_n, "case %zu", i);
        for (size_t k = 0; k < t.n; k++)
            cr_assert_str_eq(t.slots[k].instance, "i", "case %zu", i);
        for (size_t k = t.n; k < c->from; k++)
            cr_assert_null(t.slots[k].instance, "case %zu", i);
        cr_assert_eq(slots_grow(&t, c->from), 0);
        slots_free(&t);
    }
}
