/* Tests for status: the etcd/HAProxy join, its JSON and its tables against
 * golden files under tests/data/status/<case>/. UPDATE_GOLDEN=1 rewrites
 * them (then review the diff). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/file.h>
#include <slotsync/status.h>

/* The whole file, through the file module's reader. Caller frees. */
static char *read_file(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    int r = file_read(path, (size_t)1 << 24, &buf, &len);

    cr_assert_eq(r, 0, "cannot read %s: %s", path, strerror(-r));
    return buf;
}

static void check_golden(const char *test, const char *file, const char *text)
{
    char path[256];
    char *expected;

    snprintf(path, sizeof(path), "tests/data/status/%s/%s", test, file);
    if (getenv("UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        return;
    }
    expected = read_file(path);
    cr_assert_str_eq(text, expected, "%s differs:\n--- got\n%s--- expected\n%s", path, text,
                     expected);
    free(expected);
}

static void put(struct catalog *cat, const char *key, const char *value)
{
    cr_assert_geq(catalog_put(cat, key, strlen(key), value, strlen(value), 5, NULL), 0);
}

static json_t *build(const char *test, struct catalog *cat, const char *const *backends, size_t n)
{
    char path[256], *state, *stat, *err = NULL;
    json_t *doc = NULL;

    snprintf(path, sizeof(path), "tests/data/status/%s/servers_state.txt", test);
    state = read_file(path);
    snprintf(path, sizeof(path), "tests/data/status/%s/stat.csv", test);
    stat = read_file(path);
    cr_assert_eq(status_build(cat, 42, backends, n, NULL, 0, state, stat, &doc, &err), 0, "%s",
                 err ? err : "");
    free(state);
    free(stat);
    return doc;
}

static void check_all(const char *test, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS), *table;
    size_t len = strlen(text);

    text = realloc(text, len + 2);
    strcpy(text + len, "\n");
    check_golden(test, "expected.json", text);
    free(text);
    cr_assert_eq(status_render_table(doc, false, &table), 0);
    check_golden(test, "expected.txt", table);
    free(table);
    cr_assert_eq(status_render_table(doc, true, &table), 0);
    check_golden(test, "expected-all.txt", table);
    free(table);
}

Test(status, drift_of_every_kind)
{
    static const char *const backends[] = {"web", "db"};
    struct catalog *cat = catalog_new("/svc/");
    json_t *doc;

    put(cat, "/svc/web/a", "127.0.0.1:8081");
    put(cat, "/svc/web/b", "127.0.0.1:8082"); /* maint by hand */
    put(cat, "/svc/web/c", "127.0.0.1:8083"); /* no slot */
    put(cat, "/svc/db/m", "{\"host\":\"127.0.0.1\",\"port\":5432,\"weight\":10}"); /* weight */
    put(cat, "/svc/db/n", "127.0.0.1:5433");
    put(cat, "/svc/db/o", "{\"host\":\"127.0.0.1\",\"port\":5434,\"state\":\"maint\"}");
    put(cat, "/svc/api/x", "127.0.0.1:9000"); /* no backend */
    doc = build("drift", cat, backends, 2);
    cr_assert_eq(status_drift_count(doc), 4);
    check_all("drift", doc);
    json_decref(doc);
    catalog_free(cat);
}

Test(status, in_sync)
{
    static const char *const backends[] = {"web"};
    struct catalog *cat = catalog_new("/svc/");
    json_t *doc;

    put(cat, "/svc/web/a", "127.0.0.1:8081");
    put(cat, "/svc/web/b", "{\"host\":\"127.0.0.1\",\"port\":8082,\"state\":\"drain\"}");
    doc = build("insync", cat, backends, 1);
    cr_assert_eq(status_drift_count(doc), 0);
    cr_assert(json_is_true(json_object_get(doc, "in_sync")));
    check_all("insync", doc);
    json_decref(doc);
    catalog_free(cat);
}

Test(status, filter_keeps_one_backend)
{
    static const char *const backends[] = {"web", "db"};
    struct catalog *cat = catalog_new("/svc/");
    json_t *doc;

    put(cat, "/svc/web/a", "127.0.0.1:8081");
    put(cat, "/svc/db/m", "{\"host\":\"127.0.0.1\",\"port\":5432,\"weight\":10}");
    doc = build("drift", cat, backends, 2);
    cr_assert_eq(status_filter(doc, "nope"), -ENOENT);
    cr_assert_eq(status_filter(doc, "db"), 0);
    cr_assert_eq(json_array_size(json_object_get(doc, "backends")), 1);
    /* m's weight, and s2 serving an address etcd no longer has */
    cr_assert_eq(status_drift_count(doc), 2);
    json_decref(doc);
    catalog_free(cat);
}

Test(status, bad_state_text_is_an_error)
{
    struct catalog *cat = catalog_new("/svc/");
    char *err = NULL;
    json_t *doc = NULL;

    cr_assert_eq(status_build(cat, 1, NULL, 0, NULL, 0, "Unknown command\n", NULL, &doc, &err),
                 -EPROTO);
    cr_assert_null(doc);
    cr_assert_not_null(err);
    free(err);
    catalog_free(cat);
}

/* ---- status_dump(): SIGUSR1's lines ---- */

static char dumped[8][512];
static size_t n_dumped;

static void collect_line(const char *text, void *arg)
{
    cr_assert_eq(arg, dumped);
    cr_assert_lt(n_dumped, 8);
    snprintf(dumped[n_dumped++], sizeof(dumped[0]), "%s", text);
}

Test(status, dump_lines)
{
    static const struct status_dump_backend backends[] = {
        {"api", 3, 4, 3, 0, true, true},
        {"web", 2, 2, 5, 3, false, false},
    };
    static const struct {
        const char *name;
        struct status_dump d;
        const char *lines[7];
    } cases[] = {
        {"nothing yet",
         {.now = 100.0},
         {"state dump (SIGUSR1): etcd revision 0 (not watching, first listing not done), 0 "
          "endpoints in 0 services, 0 values rejected, 0 with unknown JSON fields",
          "state dump: HAProxy state not known yet; last resync never (0 resyncs); last reload "
          "never (0 done, 0 failed, 0 checks failed); 0 batches, 0 commands (0 refused)",
          "state dump: etcd unreachable (?) for 0.0 s, last answer never, last error: none; "
          "serving the last known state (revision 0)",
          "state dump: end (0 backends)"}},
        {"etcd down for 40 s",
         {.now = 100.0,
          .revision = 14,
          .listed = true,
          .etcd_since = 60.0,
          .etcd_last_contact = 59.5,
          .etcd_endpoint = "127.0.0.1:2379",
          .etcd_error = "watch on http://127.0.0.1:2379: Connection refused"},
         {"state dump (SIGUSR1): etcd revision 14 (not watching, listed), 0 endpoints in 0 "
          "services, 0 values rejected, 0 with unknown JSON fields",
          "state dump: HAProxy state not known yet; last resync never (0 resyncs); last reload "
          "never (0 done, 0 failed, 0 checks failed); 0 batches, 0 commands (0 refused)",
          "state dump: etcd unreachable (127.0.0.1:2379) for 40.0 s, last answer 40.5 s ago, last "
          "error: watch on http://127.0.0.1:2379: Connection refused; serving the last known "
          "state (revision 14)",
          "state dump: end (0 backends)"}},
        {"running, a reload in flight",
         {.now = 100.0,
          .revision = 42,
          .watching = true,
          .listed = true,
          .endpoints = 8,
          .services = 2,
          .rejected = 1,
          .unknown_fields = 2,
          .synced = true,
          .last_resync_at = 97.5,
          .resyncs = 3,
          .last_reload_at = 90.0,
          .reloads = 4,
          .reload_failures = 5,
          .check_failures = 6,
          .reloading = true,
          .batches = 7,
          .commands = 9,
          .refused = 1,
          .backends = backends,
          .n_backends = 2,
          .etcd_up = true,
          .etcd_since = 40.0,
          .etcd_last_contact = 99.5,
          .etcd_endpoint = "127.0.0.1:2379"},
         {"state dump (SIGUSR1): etcd revision 42 (watching, listed), 8 endpoints in 2 services, "
          "1 value rejected, 2 with unknown JSON fields",
          "state dump: HAProxy state known; last resync 2.5 s ago (3 resyncs); last reload 10.0 s "
          "ago (4 done, 5 failed, 6 checks failed, one in flight); 7 batches, 9 commands (1 "
          "refused)",
          "state dump: etcd connected through 127.0.0.1:2379 for 60.0 s, last answer 0.5 s ago",
          "state dump: backend api: 3 slots used, 1 free (3 endpoints, 0 without a slot)",
          "state dump: backend web: 2 slots used, 0 free (5 endpoints, 3 without a slot), not in "
          "HAProxy, from etcd only",
          "state dump: end (2 backends)"}},
    };

    /* issue 19 item 11: one of a thing is singular */
    static const struct status_dump_backend one_backend[] = {{"one", 1, 2, 1, 1, true, true}};
    static const struct status_dump one = {.now = 10.0,
                                           .endpoints = 1,
                                           .services = 1,
                                           .rejected = 1,
                                           .unknown_fields = 1,
                                           .resyncs = 1,
                                           .reloads = 1,
                                           .reload_failures = 1,
                                           .check_failures = 1,
                                           .batches = 1,
                                           .commands = 1,
                                           .refused = 1,
                                           .backends = one_backend,
                                           .n_backends = 1,
                                           .etcd_up = true,
                                           .etcd_since = 9.0,
                                           .etcd_last_contact = 9.0,
                                           .etcd_endpoint = "127.0.0.1:2379"};
    static const char *const one_lines[] = {
        "state dump (SIGUSR1): etcd revision 0 (not watching, first listing not done), 1 "
        "endpoint in 1 service, 1 value rejected, 1 with unknown JSON fields",
        "state dump: HAProxy state not known yet; last resync never (1 resync); last reload "
        "never (1 done, 1 failed, 1 check failed); 1 batch, 1 command (1 refused)",
        "state dump: etcd connected through 127.0.0.1:2379 for 1.0 s, last answer 1.0 s ago",
        "state dump: backend one: 1 slot used, 1 free (1 endpoint, 1 without a slot)",
        "state dump: end (1 backend)"};

    n_dumped = 0;
    cr_assert_eq(status_dump(&one, collect_line, dumped), 0);
    cr_expect_eq(n_dumped, 5);
    for (size_t j = 0; j < 5 && j < n_dumped; j++)
        cr_expect_str_eq(dumped[j], one_lines[j]);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;

        n_dumped = 0;
        cr_assert_eq(status_dump(&cases[i].d, collect_line, dumped), 0);
        while (n < 7 && cases[i].lines[n])
            n++;
        cr_expect_eq(n_dumped, n, "%s: %zu lines", cases[i].name, n_dumped);
        for (size_t j = 0; j < n && j < n_dumped; j++)
            cr_expect_str_eq(dumped[j], cases[i].lines[j], "%s", cases[i].name);
    }
}

Test(status, a_service_in_a_spare_backend_is_shown_under_its_name)
{
    static const struct status_alias aliases[] = {{"web", "spare:3"}};
    static const char state[] =
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
        "srv_agent_port\n"
        "7 spare:3 1 s1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8081 - 0 0 - - 0\n"
        "7 spare:3 2 s2 0.0.0.0 0 1 1 1 5 1 0 0 0 0 0 0 - 0 - 0 0 - - 0\n"
        "8 spare:4 1 s1 0.0.0.0 0 1 1 1 5 1 0 0 0 0 0 0 - 0 - 0 0 - - 0\n";
    struct catalog *cat = catalog_new("/svc/");
    json_t *doc = NULL, *web;
    char *err = NULL, *table = NULL;

    put(cat, "/svc/web/a", "127.0.0.1:8081");
    cr_assert_eq(status_build(cat, 1, NULL, 0, aliases, 1, state, NULL, &doc, &err), 0);
    cr_assert_eq(json_array_size(json_object_get(doc, "backends")), 1);
    web = json_array_get(json_object_get(doc, "backends"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(web, "name")), "web");
    cr_expect_str_eq(json_string_value(json_object_get(web, "proxy")), "spare:3");
    cr_expect(json_is_true(json_object_get(web, "present")));
    cr_expect_eq(json_integer_value(json_object_get(web, "slots_used")), 1);
    cr_expect_eq(status_drift_count(doc), 0);
    cr_assert_eq(status_render_table(doc, false, &table), 0);
    cr_expect_not_null(strstr(table, "backend web (spare:3): 1 of 2 slots used"), "%s", table);
    free(table);
    json_decref(doc);
    catalog_free(cat);
}

/* A daemon's /status while it cannot read etcd: the table's last lines say
 * the state is etcd's last known one, since when and why; status_etcd_down()
 * is what `status --admin` exits 3 on. */
Test(status, etcd_down_in_a_daemons_document)
{
    json_t *doc = json_pack("{s:I,s:I,s:b,s:[],s:{s:b,s:s,s:s,s:s}}", "etcd_revision",
                            (json_int_t)14, "drift", (json_int_t)0, "in_sync", 1, "backends",
                            "etcd", "connected", 0, "endpoint", "127.0.0.1:2379", "note",
                            "etcd unreachable for 40 s: serving the last known state (revision 14)",
                            "last_error", "watch on http://127.0.0.1:2379: Connection refused");
    char *table = NULL;

    cr_assert_not_null(doc);
    cr_expect(status_etcd_down(doc));
    cr_assert_eq(status_render_table(doc, false, &table), 0);
    cr_expect_str_eq(table, "\netcd revision 14: HAProxy matches the last known etcd state\n"
                            "etcd unreachable for 40 s: serving the last known state (revision "
                            "14); last error: watch on http://127.0.0.1:2379: Connection "
                            "refused\n");
    free(table);
    json_object_set_new(doc, "drift", json_integer(2));
    cr_assert_eq(status_render_table(doc, false, &table), 0);
    cr_expect_not_null(strstr(table, "2 drifts between the last known etcd state and HAProxy\n"),
                       "%s", table);
    free(table);
    /* connected, or no etcd object at all (status reading etcd itself) */
    json_object_set_new(json_object_get(doc, "etcd"), "connected", json_true());
    cr_expect_not(status_etcd_down(doc));
    json_object_del(doc, "etcd");
    cr_expect_not(status_etcd_down(doc));
    cr_assert_eq(status_render_table(doc, false, &table), 0);
    cr_expect_str_eq(table, "\netcd revision 14: 2 drifts between etcd and HAProxy\n");
    free(table);
    json_decref(doc);
}
