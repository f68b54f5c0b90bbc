/* test_report - the daemon's self-report from a gathered state, no loop:
 * readiness (table), the /metrics snapshot (counters, state, per-backend
 * rows, a spare's label), the /status document's daemon fields and the
 * SIGUSR1 dump's lines. The formats have their own suites (metrics,
 * status). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/etcd-t.h>
#include <slotsync/metrics.h>
#include <slotsync/report.h>
#include <slotsync/slots.h>
#include <slotsync/status.h>
#include <slotsync/version.h>

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
    es.last_contact_at = 999.5;
    es.last_check_at = 997;
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
        .etcd_up = true,
        .etcd_since = 900,
        .etcd_endpoint = "https://user@127.0.0.1:2379/",
        .wall_now = 1796608419.0,
        .spares = 4,
        .spares_free = 3,
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
    s.last_reload_cause = metrics_cause_name(METRICS_CAUSE_BULK);
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect(json_is_true(json_object_get(doc, "ready")));
    last = json_object_get(doc, "last_reload");
    cr_expect_eq(json_real_value(json_object_get(last, "ago_s")), 10);
    cr_expect(json_is_false(json_object_get(last, "failed")));
    cr_expect_eq(json_integer_value(json_object_get(last, "reloads")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(last, "cause")), "bulk");
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
    s.last_reload_cause = NULL;
    s.listed = false;
    s.recent = NULL;
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect(json_is_false(json_object_get(doc, "ready")));
    last = json_object_get(doc, "last_reload");
    cr_expect(json_is_null(json_object_get(last, "ago_s")));
    cr_expect(json_is_true(json_object_get(last, "failed")));
    cr_expect(json_is_null(json_object_get(last, "cause")));
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
    struct config cfg = {.etcd_transport = ETCD_TRANSPORT_GRPC};
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
    s.cfg = &cfg;
    cr_assert_eq(report_dump(&s, collect, &l), 0);
    cr_assert_eq(l.n, 6);
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
    cr_expect_str_eq(l.text[2], "state dump: etcd connected through 127.0.0.1:2379 over grpc for "
                                "100.0 s, last answer 0.5 s ago");
    cr_expect_str_eq(l.text[3], "state dump: backend old: 0 slots used, 2 free (0 endpoints, 0 "
                                "without a slot), not in HAProxy, from etcd only");
    cr_expect_str_eq(l.text[4], "state dump: backend web: 2 slots used, 1 free (2 endpoints, 0 "
                                "without a slot)");
    cr_expect_str_eq(l.text[5], "state dump: end (2 backends)");
}

/* etcd's state on every surface (issue 19): /readyz's note, /metrics, the
 * /status "etcd" object, the dump; up, then down for 40 s. */
Test(report, etcd_state_up_and_down)
{
    struct config cfg = {.etcd_transport = ETCD_TRANSPORT_JSON};
    static const char servers[] =
        STATE_HEADER "3 web 1 s1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0\n";
    struct metrics_backend *rows = NULL;
    struct metrics m;
    struct report_state s;
    struct lines l = {0};
    json_t *doc, *e;
    char note[200], *err = NULL;
    const char *why;

    put("/svc/web/a", "127.0.0.1:8081");
    add("web", true, 1);
    s = state();
    s.cfg = &cfg;
    cr_expect_str_eq(report_etcd_note(&s, note, sizeof(note)), "");
    report_metrics(&s, &m, &rows);
    cr_expect(m.etcd_up);
    cr_expect_float_eq(m.etcd_last_contact_s, 0.5, 1e-9);
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    e = json_object_get(doc, "etcd");
    cr_expect(json_is_true(json_object_get(e, "connected")));
    /* host:port only: no scheme, no credentials, no path */
    cr_expect_str_eq(json_string_value(json_object_get(e, "endpoint")), "127.0.0.1:2379");
    cr_expect_str_eq(json_string_value(json_object_get(e, "transport")), "json");
    cr_expect_float_eq(json_real_value(json_object_get(e, "since_s")), 100, 1e-9);
    cr_expect_str_eq(json_string_value(json_object_get(e, "since")), "2026-12-07T01:51:59.000Z");
    cr_expect(json_is_null(json_object_get(e, "note")));
    json_decref(doc);

    /* 40 s into an outage, revision 42 served: still ready, and said so */
    s.etcd_up = false;
    s.etcd_since = 960;
    s.etcd_error = "watch on http://127.0.0.1:2379: Connection refused";
    ((struct etcd_sync_stats *)s.etcd)->last_contact_at = 959;
    cr_expect(report_ready(&s, &why));
    cr_expect_str_eq(report_etcd_note(&s, note, sizeof(note)),
                     "etcd unreachable for 40 s: serving the last known state (revision 42)");
    report_metrics(&s, &m, &rows);
    cr_expect_not(m.etcd_up);
    cr_expect_float_eq(m.etcd_last_contact_s, 41, 1e-9);
    cr_expect(m.ready);
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    e = json_object_get(doc, "etcd");
    cr_expect(json_is_false(json_object_get(e, "connected")));
    cr_expect_float_eq(json_real_value(json_object_get(e, "since_s")), 40, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(e, "last_contact_s")), 41, 1e-9);
    cr_expect_str_eq(json_string_value(json_object_get(e, "last_error")), s.etcd_error);
    cr_expect_eq(json_integer_value(json_object_get(e, "revision")), 42);
    cr_expect_str_eq(json_string_value(json_object_get(e, "note")), note);
    cr_expect(json_is_true(json_object_get(doc, "ready")));
    cr_expect(status_etcd_down(doc));
    /* the stall detector: no stall yet, its last check 3 s ago */
    e = json_object_get(e, "watch_check");
    cr_expect_eq(json_integer_value(json_object_get(e, "stalls")), 0);
    cr_expect(json_is_null(json_object_get(e, "last_stall_s")));
    cr_expect_float_eq(json_real_value(json_object_get(e, "last_check_s")), 3, 1e-9);
    cr_expect(json_is_false(json_object_get(e, "ahead")));
    json_decref(doc);
    /* two stalls, the last 10 s ago: /status and /metrics count them */
    ((struct etcd_sync_stats *)s.etcd)->watch_stalls = 2;
    ((struct etcd_sync_stats *)s.etcd)->watch_checks = 9;
    ((struct etcd_sync_stats *)s.etcd)->last_stall_at = 990;
    report_metrics(&s, &m, &rows);
    cr_expect_eq(m.etcd_watch_stalls, 2);
    cr_expect_eq(m.etcd_watch_checks, 9);
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    e = json_object_get(json_object_get(doc, "etcd"), "watch_check");
    cr_expect_eq(json_integer_value(json_object_get(e, "stalls")), 2);
    cr_expect_eq(json_integer_value(json_object_get(e, "checks")), 9);
    cr_expect_float_eq(json_real_value(json_object_get(e, "last_stall_s")), 10, 1e-9);
    json_decref(doc);
    cr_assert_eq(report_dump(&s, collect, &l), 0);
    cr_expect_str_eq(l.text[2], "state dump: etcd unreachable (127.0.0.1:2379) for 40.0 s, last "
                                "answer 41.0 s ago, last error: watch on http://127.0.0.1:2379: "
                                "Connection refused; serving the last known state (revision 42)");
    /* never heard from: no contact age */
    ((struct etcd_sync_stats *)s.etcd)->last_contact_at = 0;
    report_metrics(&s, &m, &rows);
    cr_expect_lt(m.etcd_last_contact_s, 0);
    /* before the first listing: nothing of etcd's is served yet */
    s.listed = false;
    cr_expect_str_eq(report_etcd_note(&s, note, sizeof(note)),
                     "etcd not read yet (40 s): nothing from it is served");
    free(rows);
}

/* The version, the spare pool and the routes (issue 19, item 6). */
Test(report, version_spares_and_routes)
{
    static const char servers[] =
        STATE_HEADER "3 web 1 s1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0\n"
                     "7 spare:1 1 s1 127.0.0.2 2 0 1 1 5 6 3 4 6 0 0 0 - 8082 - 0 0 - - 0\n";
    struct config cfg = {0};
    struct metrics_backend *rows = NULL;
    struct metrics m;
    struct report_state s;
    struct backend *web;
    char *hosts[] = {"www.example.org"};
    json_t *doc, *routes, *b;
    char *err = NULL;
    size_t i;

    put("/svc/web/a", "127.0.0.1:8081");
    put("/svc/shop/a", "127.0.0.2:8082");
    web = add("web", true, 1);
    web->conf.listen = (struct listen_addr){.set = true, .host = "127.0.0.1", .port = 8080};
    web->conf.hosts = hosts;
    web->conf.n_hosts = 1;
    backend_set_proxy(add("shop", false, 1), "spare:1");
    cfg.http_bind = (struct listen_addr){.set = true, .host = "127.0.0.1", .port = 8000};
    cfg.http_domain = "demo.local";
    s = state();
    s.backends = v;
    s.n_backends = n;
    s.cfg = &cfg;
    report_metrics(&s, &m, &rows);
    cr_expect_str_eq(m.version, SLOTSYNC_VERSION);
    cr_expect_eq(m.spares_total, 4);
    cr_expect_eq(m.spares_free, 3);
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "version")), SLOTSYNC_VERSION);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "spares"), "total")), 4);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "spares"), "free")), 3);
    routes = json_object_get(doc, "routes");
    cr_assert_eq(json_array_size(routes), 3, "%s", json_dumps(routes, 0));
    /* sorted by host; a spare's service under its label */
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 0), "host")),
                     "shop.demo.local");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 0), "backend")),
                     "shop (spare:1)");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 0), "proxy")),
                     "spare:1");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 1), "host")),
                     "web.demo.local");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 1), "backend")),
                     "web");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(routes, 2), "host")),
                     "www.example.org");
    json_array_foreach(json_object_get(doc, "backends"), i, b)
    {
        const char *name = json_string_value(json_object_get(b, "name"));
        const json_t *listen = json_object_get(b, "listen");

        if (strcmp(name, "web") == 0)
            cr_expect_str_eq(json_string_value(listen), "127.0.0.1:8080");
        else
            cr_expect(json_is_null(listen), "%s", name);
    }
    json_decref(doc);
    /* no HTTP frontend: no routes */
    cfg.http_bind.set = false;
    doc = report_status(&s, servers, NULL, &err);
    cr_assert_not_null(doc, "%s", err);
    cr_expect_eq(json_array_size(json_object_get(doc, "routes")), 0);
    json_decref(doc);
    web->conf.hosts = NULL;
    web->conf.n_hosts = 0;
    free(rows);
}
