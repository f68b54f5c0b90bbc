/* test_backend - the backend table, slot sizing and growth, ownership of
 * names and the memory of refused commands: table-driven, no I/O. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/plan-t.h>
#include <slotsync/routes-t.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct backend **tab;
static size_t n_tab;

static void teardown(void)
{
    for (size_t i = 0; i < n_tab; i++)
        backend_free(tab[i]);
    free(tab);
    tab = NULL;
    n_tab = 0;
}

TestSuite(backend, .fini = teardown);

static struct backend *insert(const char *name, int slots, int growth, bool configured)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt.slots = slots;
    conf.opt.slot_growth = growth;
    b = backend_insert(&tab, &n_tab, &conf, configured);
    cr_assert_not_null(b);
    return b;
}

Test(backend, insert_keeps_the_table_sorted)
{
    static const char *const names[] = {"web", "api", "zeta", "mid", "api", "b"};
    static const char *const sorted[] = {"api", "b", "mid", "web", "zeta"};
    struct backend *api;
    bool found;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        insert(names[i], 4, 0, true);
    cr_assert_eq(n_tab, ARRAY_SIZE(sorted));
    for (size_t i = 0; i < n_tab; i++) {
        cr_assert_str_eq(tab[i]->conf.name, sorted[i]);
        cr_assert_eq(tab[i]->svc, &tab[i]->conf);
        cr_assert(tab[i]->dirty && tab[i]->configured);
        cr_assert_eq(backend_pos(tab, n_tab, sorted[i], &found), i);
        cr_assert(found);
    }
    /* a second insert of a name returns the first backend */
    api = backend_lookup(tab, n_tab, "api");
    cr_assert_eq(insert("api", 9, 0, false), api);
    cr_assert_eq(api->conf.opt.slots, 4);
    cr_assert_null(backend_lookup(tab, n_tab, "nope"));
    cr_assert_eq(backend_pos(tab, n_tab, "c", &found), 2);
    cr_assert_not(found);
    cr_assert_eq(backend_pos(tab, n_tab, "zzz", &found), n_tab);
    cr_assert_eq(backend_pos(tab, 0, "api", &found), 0);
    cr_assert_not(found);
}

struct fit_case {
    int slots, growth;
    size_t from, endpoints;
    size_t want_step; /* backend_grow_step(from) */
    size_t want_fit;  /* backend_fit_slots(from, endpoints) */
};

static const struct fit_case fit_cases[] = {
    /* slot_growth 0 doubles */
    {4, 0, 0, 0, 1, 4},
    {4, 0, 0, 4, 1, 4},
    {4, 0, 0, 5, 1, 8},
    {4, 0, 0, 17, 1, 32},
    {4, 0, 4, 9, 8, 16},
    {4, 0, 6, 6, 12, 6},
    /* a fixed step adds */
    {4, 3, 0, 5, 3, 7},
    {4, 3, 4, 11, 7, 13},
    {10, 1, 0, 12, 1, 12},
    {1, 0, 0, 1000, 1, 1024},
};

Test(backend, growth_rule_and_fit)
{
    for (size_t i = 0; i < ARRAY_SIZE(fit_cases); i++) {
        const struct fit_case *c = &fit_cases[i];
        char name[16];
        struct backend *b;

        snprintf(name, sizeof(name), "b%zu", i);
        b = insert(name, c->slots, c->growth, true);
        cr_assert_eq(backend_grow_step(b, c->from), c->want_step, "case %zu: step %zu", i,
                     backend_grow_step(b, c->from));
        cr_assert_eq(backend_fit_slots(b, c->from, c->endpoints), c->want_fit, "case %zu: fit %zu",
                     i, backend_fit_slots(b, c->from, c->endpoints));
    }
}

struct resize_case {
    size_t from, to;
};

static const struct resize_case resize_cases[] = {
    {0, 0}, {0, 4}, {4, 8}, {8, 2}, {3, 3}, {5, 0},
};

Test(backend, resize_keeps_slots_and_views)
{
    for (size_t i = 0; i < ARRAY_SIZE(resize_cases); i++) {
        const struct resize_case *c = &resize_cases[i];
        struct backend *b;
        char name[16];

        snprintf(name, sizeof(name), "r%zu", i);
        b = insert(name, 4, 0, true);
        cr_assert_eq(backend_resize(b, c->from), 0, "case %zu", i);
        cr_assert_not_null(b->have);
        cr_assert_not_null(b->drift);
        for (size_t k = 0; k < c->from; k++) {
            cr_assert_eq(view_set_addr(&b->have[k], "10.0.0.1"), 0);
            b->drift[k] = true;
            b->slots.slots[k].instance = strdup("i");
        }
        cr_assert_eq(backend_resize(b, c->to), 0, "case %zu", i);
        cr_assert_eq(b->slots.n, c->to, "case %zu", i);
        for (size_t k = 0; k < c->to; k++) {
            bool kept = k < c->from;

            cr_assert_eq(view_known(&b->have[k]), kept, "case %zu slot %zu", i, k);
            cr_assert_eq(b->drift[k], kept, "case %zu slot %zu", i, k);
            cr_assert_eq(b->slots.slots[k].instance != NULL, kept, "case %zu slot %zu", i, k);
        }
    }
}

Test(backend, add_slots_are_dynamic_servers_in_maintenance)
{
    struct backend *b = insert("web", 2, 0, true);

    cr_assert_eq(backend_resize(b, 2), 0);
    b->have[0].admin = SERVER_READY;
    cr_assert_eq(backend_add_slots(b, 5), 0);
    cr_assert_eq(b->slots.n, 5);
    cr_assert_eq(b->added_to, 5);
    cr_assert_eq(b->have[0].admin, SERVER_READY);
    for (size_t k = 2; k < 5; k++) {
        cr_assert(view_empty(&b->have[k]));
        cr_assert(view_addr_is(&b->have[k], "0.0.0.0"));
        cr_assert_eq(b->have[k].port, 0);
        cr_assert_eq(b->have[k].admin, SERVER_MAINT);
        cr_assert_eq(b->have[k].weight, 1);
    }
}

Test(backend, names_sets)
{
    struct names s = {0};
    static const char *const in[] = {"web", "api", "mid"};

    for (size_t i = 0; i < ARRAY_SIZE(in); i++)
        cr_assert_eq(backend_names_add(&s, in[i]), 0);
    backend_names_sort(&s);
    cr_assert_str_eq(s.v[0], "api");
    cr_assert_str_eq(s.v[2], "web");
    for (size_t i = 0; i < ARRAY_SIZE(in); i++)
        cr_assert(backend_names_has(&s, in[i]));
    cr_assert_not(backend_names_has(&s, "nope"));
    backend_names_clear(&s);
    cr_assert_eq(s.n, 0);
    cr_assert_null(s.v);
    cr_assert_not(backend_names_has(&s, "web"));
}

struct taken_case {
    const char *name;
    bool configured, listen, proxies_known;
    const char *want; /* substring of the reason, NULL = free */
};

static const struct taken_case taken_cases[] = {
    {"free", false, false, true, NULL},
    {"base_be", true, false, true, "backend or listen section of haproxy.base_config"},
    {"base_be", false, false, false, "backend or listen section of haproxy.base_config"},
    /* a frontend name only matters to a service with its own listen */
    {"base_fe", true, false, true, NULL},
    {"base_fe", true, true, true, "frontend or listen section of haproxy.base_config"},
    /* a proxy HAProxy runs that slotsync did not render: etcd services only */
    {"running", false, false, true, "running configuration that slotsync did not render"},
    {"running", true, false, true, NULL},
    {"running", false, false, false, NULL},
    {"ours", false, false, true, NULL},
};

Test(backend, name_taken)
{
    struct names be = {0}, fe = {0}, proxies = {0}, owned = {0};

    cr_assert_eq(backend_names_add(&be, "base_be"), 0);
    cr_assert_eq(backend_names_add(&fe, "base_fe"), 0);
    cr_assert_eq(backend_names_add(&proxies, "running"), 0);
    cr_assert_eq(backend_names_add(&proxies, "ours"), 0);
    cr_assert_eq(backend_names_add(&owned, "ours"), 0);
    backend_names_sort(&proxies);
    for (size_t i = 0; i < ARRAY_SIZE(taken_cases); i++) {
        const struct taken_case *c = &taken_cases[i];
        const struct backend_owners o = {&be, &fe, &proxies, &owned, c->proxies_known};
        struct backend b;
        const char *by;

        memset(&b, 0, sizeof(b));
        snprintf(b.conf.name, sizeof(b.conf.name), "%s", c->name);
        b.conf.listen.set = c->listen;
        b.configured = c->configured;
        by = backend_name_taken(&b, &o);
        if (!c->want)
            cr_assert_null(by, "case %zu: %s", i, by);
        else
            cr_assert(by && strstr(by, c->want), "case %zu: %s", i, by ? by : "(free)");
    }
    backend_names_clear(&be);
    backend_names_clear(&fe);
    backend_names_clear(&proxies);
    backend_names_clear(&owned);
}

Test(backend, ours)
{
    struct backend b;

    memset(&b, 0, sizeof(b));
    cr_assert_not(backend_ours(&b));
    b.claimed = true;
    cr_assert(backend_ours(&b));
    b.foreign = true;
    cr_assert_not(backend_ours(&b));
}

struct refusal_step {
    long slot;
    const char *cmd;
    const char *reason;
    double now;
    bool want_recent;
    size_t want_n; /* refusals held after the step */
};

/* One backend of 3 slots, warn_every 60 s. */
static const struct refusal_step refusal_steps[] = {
    {0, "set server web/s1 addr 127.0.0.2 port 80", "bad address", 100, false, 1},
    /* the same kind again within a minute: replaced, recent */
    {0, "set server web/s1 addr 127.0.0.3 port 80", "bad address", 120, true, 1},
    /* another kind of command on the same slot: a second refusal */
    {0, "set server web/s1 weight 5", "bad weight", 125, false, 2},
    /* the same reason on another slot is not recent for it */
    {1, "set server web/s2 addr 127.0.0.4 port 80", "bad address", 130, false, 3},
    /* a minute after the first warning: warn again */
    {0, "set server web/s1 addr 127.0.0.5 port 80", "bad address", 161, false, 3},
    /* out of range slots are not remembered */
    {3, "set server web/s4 weight 1", "bad weight", 170, false, 3},
    {-1, "add map x y", "no map", 170, false, 3},
};

Test(backend, refusals)
{
    struct backend *b = insert("web", 3, 0, true);

    cr_assert_eq(backend_resize(b, 3), 0);
    for (size_t i = 0; i < ARRAY_SIZE(refusal_steps); i++) {
        const struct refusal_step *s = &refusal_steps[i];
        struct plan_origin o;
        bool recent;

        memset(&o, 0, sizeof(o));
        snprintf(o.backend, sizeof(o.backend), "web");
        o.slot = s->slot;
        recent = backend_refusal_note(b, &o, s->cmd, s->reason, s->now, 60.0);
        cr_assert_eq(recent, s->want_recent, "step %zu", i);
        cr_assert_eq(b->n_refused, s->want_n, "step %zu: %zu held", i, b->n_refused);
        if (s->slot >= 0 && s->slot < 3) {
            struct plan_refusal *r = backend_refusal_find(b, (size_t)s->slot, s->cmd);

            cr_assert_not_null(r, "step %zu", i);
            cr_assert_str_eq(r->cmd, s->cmd, "step %zu", i);
            cr_assert_str_eq(r->reason, s->reason, "step %zu", i);
        }
    }
    /* the kind is the first four words: any other weight matches */
    cr_assert_not_null(backend_refusal_find(b, 0, "set server web/s1 weight 9"));
    cr_assert_null(backend_refusal_find(b, 2, "set server web/s3 weight 9"));
    backend_refusal_forget(b, 0, "set server web/s1 weight 1");
    cr_assert_eq(b->n_refused, 2);
    cr_assert_null(backend_refusal_find(b, 0, "set server web/s1 weight 5"));
    backend_refusal_forget(b, 2, "set server web/s3 weight 1"); /* none: no-op */
    cr_assert_eq(b->n_refused, 2);
}

Test(backend, proxy_names_of_a_config_text)
{
    const char *text = "global\n"
                       "    master-worker\n"
                       "frontend www\n"
                       "    bind :80\n"
                       "backend api # comment\n"
                       "  listen   stats\n"
                       "\tbackend tabbed\n"
                       "backend bad/name\n"
                       "backend\n"
                       "defaults web\n"
                       "frontend shared\n"
                       "backend shared\n"
                       "backend last"; /* no final newline */
    static const char *const want_be[] = {"api", "last", "shared", "stats", "tabbed"};
    static const char *const want_fe[] = {"shared", "stats", "www"};
    struct names be = {0}, fe = {0};

    cr_assert_eq(backend_proxy_names(text, strlen(text), &be, &fe), 0);
    cr_assert_eq(be.n, ARRAY_SIZE(want_be));
    for (size_t i = 0; i < be.n; i++)
        cr_expect_str_eq(be.v[i], want_be[i]);
    cr_assert_eq(fe.n, ARRAY_SIZE(want_fe));
    for (size_t i = 0; i < fe.n; i++)
        cr_expect_str_eq(fe.v[i], want_fe[i]);
    backend_names_clear(&be);
    backend_names_clear(&fe);
    cr_assert_eq(backend_proxy_names("", 0, &be, NULL), 0);
    cr_assert_eq(be.n, 0);
}

/* ---- backend_adopt(): HAProxy's rows into a backend ---- */

/* What HAProxy has in a slot: addr:port, weight 1, ready. */
static struct server_view row(const char *addr, unsigned port)
{
    struct server_view v;

    memset(&v, 0, sizeof(v));
    cr_assert_eq(view_set_addr(&v, addr), 0);
    v.port = (uint16_t)port;
    v.weight = 1;
    return v;
}

#define ADOPT_ROWS_MAX 4

struct adopt_case {
    const char *name;
    /* before */
    bool configured, foreign, was_present, trusted;
    size_t slots_before, added_to, endpoints;
    const char *had_addr; /* slot 0's view before (NULL: unknown) */
    /* HAProxy's reply */
    bool seen_backend;
    const char *rows[ADOPT_ROWS_MAX]; /* server names, NULL-terminated; all at 10.0.0.1:80 */
    /* after */
    size_t slots, contiguous;
    bool gap, runtime_lost, changed, missing, present, drift0, grow_by_reload;
};

static const struct adopt_case adopt_cases[] = {
    {.name = "first read: three slots",
     .configured = true,
     .seen_backend = true,
     .rows = {"s1", "s2", "s3"},
     .slots = 3,
     .contiguous = 3,
     .changed = true,
     .present = true},
    {.name = "rows out of order are sorted",
     .configured = true,
     .seen_backend = true,
     .rows = {"s3", "s1", "s2"},
     .slots = 3,
     .contiguous = 3,
     .changed = true,
     .present = true},
    {.name = "a gap: only s1..s2",
     .configured = true,
     .seen_backend = true,
     .rows = {"s1", "s2", "s4"},
     .slots = 2,
     .contiguous = 2,
     .gap = true,
     .changed = true,
     .present = true},
    {.name = "same slots again: no change",
     .configured = true,
     .was_present = true,
     .slots_before = 2,
     .seen_backend = true,
     .rows = {"s1", "s2"},
     .slots = 2,
     .contiguous = 2,
     .present = true},
    {.name = "configured and missing: a reload is asked",
     .configured = true,
     .seen_backend = false,
     .missing = true},
    {.name = "etcd-only, no endpoints, missing: nothing asked", .seen_backend = false},
    {.name = "etcd-only with endpoints, missing: a reload is asked",
     .endpoints = 2,
     .seen_backend = false,
     .missing = true},
    {.name = "missing with a pending render's table: kept",
     .configured = true,
     .slots_before = 4,
     .seen_backend = false,
     .slots = 4,
     .missing = true},
    {.name = "was present, now gone",
     .configured = true,
     .was_present = true,
     .slots_before = 2,
     .seen_backend = false,
     .slots = 0,
     .changed = true,
     .missing = true},
    {.name = "runtime slots gone: grow by reload",
     .configured = true,
     .was_present = true,
     .slots_before = 4,
     .added_to = 4,
     .seen_backend = true,
     .rows = {"s1", "s2"},
     .slots = 2,
     .contiguous = 2,
     .runtime_lost = true,
     .changed = true,
     .present = true,
     .grow_by_reload = true},
    {.name = "trusted and different: drift",
     .configured = true,
     .was_present = true,
     .trusted = true,
     .slots_before = 1,
     .had_addr = "10.0.0.9",
     .seen_backend = true,
     .rows = {"s1"},
     .slots = 1,
     .contiguous = 1,
     .present = true,
     .drift0 = true},
    {.name = "not trusted and different: no drift",
     .configured = true,
     .was_present = true,
     .slots_before = 1,
     .had_addr = "10.0.0.9",
     .seen_backend = true,
     .rows = {"s1"},
     .slots = 1,
     .contiguous = 1,
     .present = true},
    {.name = "trusted and the same: no drift",
     .configured = true,
     .was_present = true,
     .trusted = true,
     .slots_before = 1,
     .had_addr = "10.0.0.1",
     .seen_backend = true,
     .rows = {"s1"},
     .slots = 1,
     .contiguous = 1,
     .present = true},
    {.name = "foreign: left alone",
     .configured = true,
     .foreign = true,
     .slots_before = 1,
     .seen_backend = false,
     .slots = 1},
};

Test(backend, adopt_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(adopt_cases); i++) {
        const struct adopt_case *t = &adopt_cases[i];
        struct backend *b = insert("web", 0, 0, t->configured);
        struct backend_adoption ad;
        size_t n = 0;

        b->claimed = true;
        b->foreign = t->foreign;
        b->present = t->was_present;
        b->dirty = false;
        cr_assert_eq(backend_resize(b, t->slots_before), 0);
        if (t->had_addr)
            b->have[0] = row(t->had_addr, 80);
        b->added_to = t->added_to;
        b->seen_backend = t->seen_backend;
        /* the row of s<k> has port 79 + k: s1 has 10.0.0.1:80 */
        for (; n < ADOPT_ROWS_MAX && t->rows[n]; n++) {
            long k = slots_index_of(t->rows[n]);
            struct server_view v = row("10.0.0.1", 80 + (unsigned)k);

            cr_assert_geq(k, 0);
            cr_assert_eq(backend_seen_add(b, (size_t)k, &v), 0);
        }
        cr_assert_eq(backend_adopt(b, t->trusted, t->endpoints, &ad), 0, "%s", t->name);
        cr_expect_eq(b->slots.n, t->slots, "%s: %zu slots", t->name, b->slots.n);
        cr_expect_eq(ad.contiguous, t->contiguous, "%s", t->name);
        cr_expect_eq(ad.gap, t->gap, "%s", t->name);
        cr_expect_eq(ad.runtime_lost, t->runtime_lost, "%s", t->name);
        cr_expect_eq(ad.changed, t->changed, "%s", t->name);
        cr_expect_eq(ad.missing, t->missing, "%s", t->name);
        cr_expect_eq(b->present, t->present, "%s", t->name);
        cr_expect_eq(b->grow_by_reload, t->grow_by_reload, "%s", t->name);
        cr_expect_eq(b->dirty, !t->foreign, "%s", t->name);
        if (t->slots)
            cr_expect_eq(b->drift[0], t->drift0, "%s", t->name);
        /* HAProxy's rows are the view now, in slot order */
        for (size_t j = 0; t->present && j < t->contiguous; j++)
            cr_expect_eq(b->have[j].port, 80 + j, "%s: slot %zu", t->name, j);
        cr_expect_null(b->seen, "%s: the rows read are freed once adopted", t->name);
        cr_expect_eq(b->n_seen, 0, "%s", t->name);
        teardown();
    }
}

Test(backend, adopt_twice_notes_a_missing_backend_once)
{
    struct backend *b = insert("web", 2, 0, true);
    struct backend_adoption ad;

    b->claimed = true;
    cr_assert_eq(backend_adopt(b, false, 0, &ad), 0);
    cr_expect(ad.missing);
    cr_assert_eq(backend_adopt(b, false, 0, &ad), 0);
    cr_expect_not(ad.missing, "asked once until it is seen");
}

/* ---- backend_growth(): how a present backend gets its slots ---- */

struct growth_case {
    const char *name;
    const char *balance;
    int configured_slots, growth;
    size_t have, endpoints, want_slots;
    bool grow_by_reload;
    enum backend_grow expect;
    size_t n, want_after;
};

static const struct growth_case growth_cases[] = {
    {"enough slots", "roundrobin", 4, 0, 4, 3, 0, false, BACKEND_GROW_NONE, 4, 0},
    {"HAProxy has more than configured: kept", "roundrobin", 2, 0, 4, 3, 0, false,
     BACKEND_GROW_NONE, 4, 0},
    {"more endpoints, dynamic: doubled at run time", "roundrobin", 4, 0, 4, 5, 0, false,
     BACKEND_GROW_RUNTIME, 8, 0},
    {"more endpoints, fixed step", "leastconn", 4, 3, 4, 5, 0, false, BACKEND_GROW_RUNTIME, 7, 0},
    {"more configured, dynamic", "roundrobin", 6, 0, 4, 0, 0, false, BACKEND_GROW_RUNTIME, 6, 0},
    {"static algorithm: by reload", "static-rr", 4, 0, 4, 5, 0, false, BACKEND_GROW_RELOAD, 8, 8},
    {"runtime slots were lost: by reload", "roundrobin", 4, 0, 4, 5, 0, true, BACKEND_GROW_RELOAD,
     8, 8},
    {"reload already asked for that many", "static-rr", 4, 0, 4, 5, 8, false, BACKEND_GROW_NONE, 8,
     8},
    {"reload asked for fewer: asked again", "source", 4, 0, 4, 9, 8, false, BACKEND_GROW_RELOAD, 16,
     16},
};

Test(backend, growth_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(growth_cases); i++) {
        const struct growth_case *t = &growth_cases[i];
        struct backend *b = insert("web", t->configured_slots, t->growth, true);
        size_t n = 0;

        snprintf(b->conf.opt.balance, sizeof(b->conf.opt.balance), "%s", t->balance);
        cr_assert_eq(backend_resize(b, t->have), 0);
        b->want_slots = t->want_slots;
        b->grow_by_reload = t->grow_by_reload;
        cr_expect_eq(backend_growth(b, t->endpoints, &n), t->expect, "%s", t->name);
        cr_expect_eq(n, t->n, "%s: %zu slots", t->name, n);
        cr_expect_eq(b->want_slots, t->want_after, "%s: want %zu", t->name, b->want_slots);
        cr_expect_eq(b->slots.n, t->have, "%s: the table is not grown here", t->name);
        teardown();
    }
}

/* backend_growth_additions(): while a listing is partly read, run-time
 * growth as backend_growth() says, never a reload (nor want_slots noted: the
 * listing's end asks it, with the final count). */
Test(backend, growth_additions_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(growth_cases); i++) {
        const struct growth_case *t = &growth_cases[i];
        struct backend *b = insert("web", t->configured_slots, t->growth, true);
        bool runtime = t->expect == BACKEND_GROW_RUNTIME;
        size_t n = 0;

        snprintf(b->conf.opt.balance, sizeof(b->conf.opt.balance), "%s", t->balance);
        cr_assert_eq(backend_resize(b, t->have), 0);
        b->want_slots = t->want_slots;
        b->grow_by_reload = t->grow_by_reload;
        cr_expect_eq(backend_growth_additions(b, t->endpoints, &n),
                     runtime ? BACKEND_GROW_RUNTIME : BACKEND_GROW_NONE, "%s", t->name);
        cr_expect_eq(n, runtime ? t->n : t->have, "%s: %zu slots", t->name, n);
        cr_expect_eq(b->want_slots, t->want_slots, "%s: want_slots untouched", t->name);
        /* the listing's end still asks the reload */
        if (t->expect == BACKEND_GROW_RELOAD)
            cr_expect_eq(backend_growth(b, t->endpoints, &n), BACKEND_GROW_RELOAD, "%s", t->name);
        teardown();
    }
}

/* ---- backend_static_weights(): one warning per instance ---- */

static size_t warned_count;
static char warned_last[128];

static void count_warning(const struct backend *b, const struct slot *s, void *arg)
{
    cr_assert_eq(arg, &warned_count);
    warned_count++;
    snprintf(warned_last, sizeof(warned_last), "%.60s/%.60s", b->conf.name, s->instance);
}

static void fill(struct backend *b, size_t i, const char *instance, unsigned weight)
{
    free(b->slots.slots[i].instance);
    b->slots.slots[i].instance = instance ? strdup(instance) : NULL;
    b->slots.slots[i].ep.weight = weight;
}

Test(backend, static_weights_warn_once_per_instance)
{
    struct backend *b = insert("web", 4, 0, true);
    struct plan_opts o;

    memset(&o, 0xff, sizeof(o)); /* every field is set, none left over */

    snprintf(b->conf.opt.balance, sizeof(b->conf.opt.balance), "static-rr");
    cr_assert_eq(backend_resize(b, 4), 0);
    cr_expect(backend_plan_opts(b, &o)->static_weights);
    cr_expect_not(o.additions_only, "a convergence of its own, not b's");
    cr_expect_eq(o.n_refused, 0);
    fill(b, 0, "a", 1); /* default: nothing to say */
    fill(b, 1, "b", 0); /* drain: applied */
    fill(b, 2, "c", 5);
    backend_static_weights(b, count_warning, &warned_count);
    cr_expect_eq(warned_count, 1);
    cr_expect_str_eq(warned_last, "web/c");
    backend_static_weights(b, count_warning, &warned_count);
    cr_expect_eq(warned_count, 1, "not told twice");
    fill(b, 3, "d", 7);
    backend_static_weights(b, count_warning, &warned_count);
    cr_expect_eq(warned_count, 2);
    cr_expect_str_eq(warned_last, "web/d");
    fill(b, 2, NULL, 0); /* c leaves... */
    backend_static_weights(b, count_warning, &warned_count);
    fill(b, 2, "c", 5); /* ...and comes back: told again */
    backend_static_weights(b, count_warning, &warned_count);
    cr_expect_eq(warned_count, 3);
    cr_expect_str_eq(warned_last, "web/c");
    snprintf(b->conf.opt.balance, sizeof(b->conf.opt.balance), "roundrobin");
    cr_expect_not(backend_plan_opts(b, &o)->static_weights);
}

/* ---- backend_settle(): whose is a name ---- */

struct settle_case {
    const char *name;
    bool configured, claimed, foreign;
    bool in_base, proxies_known, in_proxies, owned, need_proxies;
    bool ret, refused, freed, claimed_after, foreign_after;
};

static const struct settle_case settle_cases[] = {
    /* fields in the order of struct settle_case: before (configured, claimed, foreign), the
     * owners (in base, proxies known, in proxies, owned, need proxies), then what is expected
     * (returned, refused, freed, claimed, foreign) */
    {"configured, free", true, false, false, false, false, false, false, true, true, false, false,
     true, false},
    {"already claimed", true, true, false, false, true, false, false, true, false, false, false,
     true, false},
    {"taken by base_config", true, false, false, true, false, false, false, true, false, true,
     false, false, true},
    {"claimed, then base_config takes it", true, true, false, true, false, false, false, true,
     false, true, false, false, true},
    {"refused already: not said again", true, false, true, true, false, false, false, true, false,
     false, false, false, true},
    {"free again", true, false, true, false, true, false, false, true, true, false, true, true,
     false},
    {"etcd-only, proxies unknown: waits", false, false, false, false, false, false, false, true,
     false, false, false, false, false},
    {"etcd-only, render mode: taken", false, false, false, false, false, false, false, false, true,
     false, false, true, false},
    {"etcd-only, a proxy not ours", false, false, false, false, true, true, false, true, false,
     true, false, false, true},
    {"etcd-only, our own proxy", false, false, false, false, true, true, true, true, true, false,
     false, true, false},
};

Test(backend, settle_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(settle_cases); i++) {
        const struct settle_case *t = &settle_cases[i];
        struct names base = {0}, proxies = {0}, owned = {0}, none = {0};
        struct backend *b = insert("web", 2, 0, t->configured);
        const struct backend_owners o = {&base, &none, &proxies, &owned, t->proxies_known};
        struct backend_settling s;

        if (t->in_base)
            cr_assert_eq(backend_names_add(&base, "web"), 0);
        if (t->in_proxies)
            cr_assert_eq(backend_names_add(&proxies, "web"), 0);
        if (t->owned)
            cr_assert_eq(backend_names_add(&owned, "web"), 0);
        b->claimed = t->claimed;
        b->foreign = t->foreign;
        cr_expect_eq(backend_settle(b, &o, t->need_proxies, &s), t->ret, "%s", t->name);
        cr_expect_eq(s.refused_by != NULL, t->refused, "%s", t->name);
        cr_expect_eq(s.freed, t->freed, "%s", t->name);
        cr_expect_eq(b->claimed, t->claimed_after, "%s", t->name);
        cr_expect_eq(b->foreign, t->foreign_after, "%s", t->name);
        backend_names_clear(&base);
        backend_names_clear(&proxies);
        backend_names_clear(&owned);
        teardown();
    }
}

/* ---- backend_reconfigure(): a SIGHUP's config for one backend ---- */

struct reconf_case {
    const char *name;
    bool configured;     /* before */
    int slots;           /* before */
    const char *balance; /* before */
    bool in_config;      /* the new config names it */
    int new_slots;       /* its slots in the new config (or the new defaults') */
    const char *new_bal; /* its balance in the new config (or the new defaults') */
    enum backend_reconf expect;
    bool configured_after;
};

static const struct reconf_case reconf_cases[] = {
    {"configured, unchanged", true, 4, "roundrobin", true, 4, "roundrobin", BACKEND_RECONF_SAME,
     true},
    {"configured, options changed", true, 4, "roundrobin", true, 4, "leastconn",
     BACKEND_RECONF_OPTIONS, true},
    {"configured, slots only", true, 4, "roundrobin", true, 8, "roundrobin", BACKEND_RECONF_SLOTS,
     true},
    {"from etcd, now configured", false, 4, "roundrobin", true, 4, "roundrobin",
     BACKEND_RECONF_OPTIONS, true},
    {"configured, left the config", true, 4, "roundrobin", false, 4, "roundrobin",
     BACKEND_RECONF_LEFT, false},
    {"from etcd, defaults unchanged", false, 4, "roundrobin", false, 4, "roundrobin",
     BACKEND_RECONF_SAME, false},
    {"from etcd, defaults changed", false, 4, "roundrobin", false, 4, "first",
     BACKEND_RECONF_DEFAULTS, false},
    {"from etcd, default slots only", false, 4, "roundrobin", false, 2, "roundrobin",
     BACKEND_RECONF_SLOTS, false},
};

Test(backend, reconfigure_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(reconf_cases); i++) {
        const struct reconf_case *t = &reconf_cases[i];
        struct backend *b = insert("web", t->slots, 0, t->configured);
        struct service_conf sc;
        struct service_options defaults;
        int old = -1;

        snprintf(b->conf.opt.balance, sizeof(b->conf.opt.balance), "%s", t->balance);
        memset(&sc, 0, sizeof(sc));
        snprintf(sc.name, sizeof(sc.name), "web");
        sc.opt = b->conf.opt;
        sc.opt.slots = t->new_slots;
        snprintf(sc.opt.balance, sizeof(sc.opt.balance), "%s", t->new_bal);
        defaults = sc.opt;
        b->grow_by_reload = true;
        cr_expect_eq(backend_reconfigure(b, t->in_config ? &sc : NULL, &defaults, &old), t->expect,
                     "%s", t->name);
        cr_expect_eq(old, t->slots, "%s", t->name);
        cr_expect_eq(b->configured, t->configured_after, "%s", t->name);
        cr_expect_eq(b->conf.opt.slots, t->new_slots, "%s: slots now", t->name);
        cr_expect_str_eq(b->conf.opt.balance, t->new_bal, "%s: balance now", t->name);
        cr_expect_str_eq(b->conf.name, "web", "%s", t->name);
        cr_expect_eq(b->grow_by_reload, t->expect != BACKEND_RECONF_OPTIONS, "%s", t->name);
        cr_expect_eq(backend_reconfigure(b, t->in_config ? &sc : NULL, &defaults, &old),
                     BACKEND_RECONF_SAME, "%s: twice", t->name);
        teardown();
    }
}

/* ---- the Host routes of the backends HAProxy runs ---- */

struct routes_case {
    const char *name;
    bool present, claimed, foreign;
    const char *proxy; /* a spare's, or NULL */
    bool ours_only;
    const char *want; /* "host backend", or NULL: no route */
};

Test(backend, host_routes)
{
    static const struct routes_case cases[] = {
        {"ours, running", true, true, false, NULL, false, "web.svc.local web"},
        {"ours, running, map file", true, true, false, NULL, true, "web.svc.local web"},
        {"not running", false, true, false, NULL, false, NULL},
        {"in a spare", true, true, false, "spare:3", true, "web.svc.local spare:3"},
        {"someone else's, live map", true, true, true, NULL, false, "web.svc.local web"},
        {"someone else's, map file", true, true, true, NULL, true, NULL},
        {"unclaimed, map file", true, false, false, NULL, true, NULL},
    };
    struct config cfg;
    char domain[] = "svc.local";

    memset(&cfg, 0, sizeof(cfg));
    cfg.http_bind.set = true;
    cfg.http_domain = domain;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct routes_case *c = &cases[i];
        struct backend *b = insert("web", 2, 0, false);
        struct host_route *routes = NULL;
        size_t n = 99;
        char got[512] = ""; /* a host (253) and a backend name fit */

        b->conf.opt.mode = MODE_HTTP;
        b->present = c->present;
        b->claimed = c->claimed;
        b->foreign = c->foreign;
        backend_set_proxy(b, c->proxy);
        cr_assert_eq(backend_host_routes(&cfg, tab, n_tab, c->ours_only, &routes, &n), 0, "%s",
                     c->name);
        if (n)
            snprintf(got, sizeof(got), "%s %s", routes[0].host, routes[0].backend);
        cr_expect_eq(n, c->want ? 1u : 0u, "%s: %zu routes", c->name, n);
        if (c->want)
            cr_expect_str_eq(got, c->want, "%s", c->name);
        free(routes);
        teardown();
    }
}
