/* test_report - the daemon's self-report from a gathered state, no loop:
 * readiness (table), the /metrics snapshot (counters, state, per-backend
 * rows, a spare's label), the /status document's daemon fields and the
 * SIGUSR1 dump's lines. The formats have their own suites (metrics,
 * status). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/report.h>
#include <slotsync/slots.h>

#define STATE_HEADER                                                                               \
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "        \
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "                    \
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "             \
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "        \
    "srv_agent_port\n"

static struct backend **v;
static size_t n;
static struct catalog *cat;
static struct metrics obs;

static void setup(void)
{
    v = NULL;
    n = 0;
    memset(&obs, 0, sizeof(obs));
    cat = catalog_new("/svc/");
    cr_assert_not_null(cat);
}

static void teardown(void)
{
    for (size_t i = 0; i < n; i++)
        backend_free(v[i]);
    free(v);
    catalog_free(cat);
}

TestSuite(report, .init = setup, .fini = teardown);

static void put(const char *key, const char *value)
{
    cr_assert_geq(catalog_put(cat, key, strlen(key), value, strlen(value), 1, NULL), 0);
}

/* A backend of slots slots, filled from the catalog. */
static struct backend *add(const char *name, bool configured, size_t slots)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt.slots = (int)slots;
    conf.opt.mode = MODE_HTTP;
    b = backend_insert(&v, &n, &conf, configured);
    cr_assert_not_null(b);
    b->claimed = true;
    cr_assert_eq(backend_resize(b, slots), 0);
    cr_assert_geq(slots_assign(&b->slots, catalog_find(cat, name), NULL), 0);
    return b;
}

/* A daemon in sync: listed, HAProxy read 2 s ago. */
static struct report_state state(void)
{
    static struct etcd_sync_stats es;

    memset(&es, 0, sizeof(es));
    es.events = 7;
    es.watch_starts = 2;
    es.revision = 42;
    es.watching = true;
    return (struct report_state){
        .now = 1000,
        .etcd = &es,
        .listed = true,
        .cat = cat,
        .synced = true,
        .last_resync_at = 998,
        .batches = 3,
        .commands = 11,
        .command_failures = 1,
        .runtime_errors = 4,
        .runtime_added_servers = 5,
        .resyncs = 6,
        .drift_repairs = 8,
        .last_reload_at = 990,
        .reloads = 2,
        .reload_failures = 1,
        .check_failures = 9,
        .backends = v,
        .n_backends = n,
        .obs = &obs,
    };
}

Test(report, ready_needs_the_listing_and_an_answering_haproxy)
{
    static const struct {
        bool listed, synced, runtime_down;
        double last_resync_at;
        bool ready;
        const char *why;
    } cases[] = {
        {true, true, false, 998, true, NULL},
        {false, true, false, 998, false, "the first etcd listing is not done"},
        {false, false, true, 0, false, "the first etcd listing is not done"},
        {true, false, false, 998, false, "HAProxy's runtime socket does not answer"},
        {true, true, true, 998, false, "HAProxy's runtime socket does not answer"},
        {true, true, false, 0, false, "HAProxy's runtime socket does not answer"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct report_state s = state();
        const char *why = NULL;

        s.listed = cases[i].listed;
        s.synced = cases[i].synced;
        s.runtime_down = cases[i].runtime_down;
        s.last_resync_at = cases[i].last_resync_at;
        cr_expect_eq(report_ready(&s, &why), cases[i].ready, "case %zu", i);
        if (cases[i].why)
            cr_expect_str_eq(why, cases[i].why, "case %zu", i);
    }
}

Test(report, metrics_take_the_counters_the_state_and_a_row_per_backend)
{
    struct metrics_backend *rows = NULL;
    struct metrics m;
    struct report_state s;

    put("/svc/web/a", "127.0.0.1:8081");
    add("web", true, 3);
    backend_set_proxy(add("api", false, 2), "spare:1");
    obs.reload_requests[METRICS_CAUSE_SLOTS] = 12;
    obs.rejected[METRICS_REJECT_VALUE] = 13;
    s = state();
    report_metrics(&s, &m, &rows);
    cr_expect_eq(m.etcd_events, 7);
    cr_expect_eq(m.etcd_watch_starts, 2);
    cr_expect_eq(m.etcd_revision, 42);
    cr_expect_eq(m.commands, 11);
    cr_expect_eq(m.command_failures, 1);
    cr_expect_eq(m.batches, 3);
    cr_expect_eq(m.runtime_errors, 4);
    cr_expect_eq(m.runtime_added_servers, 5);
    cr_expect_eq(m.resyncs, 6);
    cr_expect_eq(m.drift_repairs, 8);
    cr_expect_eq(m.reloads, 2);
    cr_expect_eq(m.reload_failures, 1);
    cr_expect_eq(m.check_failures, 9);
    cr_expect_eq(m.reload_requests[METRICS_CAUSE_SLOTS], 12, "obs's counters are kept");
    cr_expect_eq(m.rejected[METRICS_REJECT_VALUE], 13);
    cr_expect(m.haproxy_up);
    cr_expect(m.ready);
    cr_expect_eq(m.since_resync_s, 2);
    cr_assert_eq(m.n_backends, 2);
    cr_assert(m.backends == rows);
    cr_expect_str_eq(rows[0].name, "api (spare:1)");
    cr_expect_eq(rows[0].used, 0);
    cr_expect_eq(rows[0].total, 2);
    cr_expect_str_eq(rows[1].name, "web");
    cr_expect_eq(rows[1].used, 1);
    cr_expect_eq(rows[1].total, 3);
    /* no etcd sync, HAProxy down, never read: obs's values, -1 */
    obs.etcd_revision = 5;
    s.etcd = NULL;
    s.runtime_down = true;
    s.last_resync_at = 0;
    report_metrics(&s, &m, &rows);
    cr_expect_eq(m.etcd_revision, 5);
    cr_expect_not(m.haproxy_up);
    cr_expect_not(m.ready);
    cr_expect_eq(m.since_resync_s, -1);
    free(rows);
}

Test(report, status_adds_readiness_and_the_last_reload)
{
    static const char servers[] =
        STATE_HEADER "3 web 1 s1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0\n"
                     "3 web 2 s2 0.0.0.0 0 1 1 1 5 1 0 0 0 0 0 0 - 0 - 0 0 - - 0\n"
                     "7 spare:1 1 s1 127.0.0.2 2 0 1 1 5 6 3 4 6 0 0 0 - 8082 - 0 0 - - 0\n";
    struct metrics_recent recent = {0};
    struct report_state s;
    json_t *doc, *last, *backends;
    char *err = NULL;

    put("/svc/web/a", "127.0.0.1:8081");
    put("/svc/api/a", "127.0.0.2:8082");
    add("web", true, 2);
    backend_set_proxy(add("api", false, 1), "spare:1");
    metrics_recent_add(&recent, &(struct metrics_change){.at = 999,
                                                         .backend = "web",
                                                         .slot = "s1",
                                                         .instance = "a",
                                                         .what = "added",
                                                         .latency_s = -1});
    s = state();
    s.recent = &recent;
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect(json_is_true(json_object_get(doc, "ready")));
    last = json_object_get(doc, "last_reload");
    cr_expect_eq(json_real_value(json_object_get(last, "ago_s")), 10);
    cr_expect(json_is_false(json_object_get(last, "failed")));
    cr_expect_eq(json_integer_value(json_object_get(last, "reloads")), 2);
    cr_expect_eq(json_array_size(json_object_get(doc, "recent")), 1);
    cr_expect_eq(json_integer_value(json_object_get(doc, "etcd_revision")), 42);
    backends = json_object_get(doc, "backends");
    cr_assert_eq(json_array_size(backends), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *b = json_array_get(backends, i);

        if (strcmp(json_string_value(json_object_get(b, "name")), "api") == 0)
            cr_expect_str_eq(json_string_value(json_object_get(b, "proxy")), "spare:1");
    }
    json_decref(doc);
    /* never reloaded, the last one failed, not ready, no list of changes */
    s.last_reload_at = 0;
    s.last_reload_failed = true;
    s.listed = false;
    s.recent = NULL;
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect(json_is_false(json_object_get(doc, "ready")));
    last = json_object_get(doc, "last_reload");
    cr_expect(json_is_null(json_object_get(last, "ago_s")));
    cr_expect(json_is_true(json_object_get(last, "failed")));
    cr_expect_null(json_object_get(doc, "recent"));
    json_decref(doc);
    /* HAProxy's reply is not version 1: status_build's error */
    cr_expect_null(report_status(&s, "2\n", NULL, &err));
    cr_expect_not_null(err);
    free(err);
}

struct lines {
    char text[8][512];
    size_t n;
};

static void collect(const char *text, void *arg)
{
    struct lines *l = arg;

    cr_assert_lt(l->n, 8);
    snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", text);
}

Test(report, dump_says_what_the_state_holds)
{
    struct lines l = {0};
    struct report_state s;
    struct backend *gone;

    put("/svc/web/a", "127.0.0.1:8081");
    put("/svc/web/b", "127.0.0.1:8082");
    add("web", true, 3)->present = true;
    gone = add("old", false, 2);
    gone->present = false;
    s = state();
    s.reloading = true;
    cr_assert_eq(report_dump(&s, collect, &l), 0);
    cr_assert_eq(l.n, 5);
    cr_expect_str_eq(l.text[0],
                     "state dump (SIGUSR1): etcd revision 42 (watching, listed), 2 endpoints in 1 "
                     "service, 0 values rejected, 0 with unknown JSON fields");
    cr_expect_not_null(strstr(l.text[1], "HAProxy state known; last resync 2.0 s ago (6 resyncs)"),
                       "%s", l.text[1]);
    cr_expect_not_null(
        strstr(l.text[1],
               "last reload 10.0 s ago (2 done, 1 failed, 9 checks failed, one in flight); "
               "3 batches, 11 commands (1 refused)"),
        "%s", l.text[1]);
    cr_expect_str_eq(l.text[2], "state dump: backend old: 0 slots used, 2 free (0 endpoints, 0 "
                                "without a slot), not in HAProxy, from etcd only");
    cr_expect_str_eq(l.text[3], "state dump: backend web: 2 slots used, 1 free (2 endpoints, 0 "
                                "without a slot)");
    cr_expect_str_eq(l.text[4], "state dump: end (2 backends)");
}
