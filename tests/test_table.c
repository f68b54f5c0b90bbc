/* test_table - the one owner of the backend table and of name ownership:
 * adding (from a service or from the defaults), finding and dropping
 * backends, the name sets it takes over, and settling a name with its log
 * line and counter. The ownership rule itself has its own suite (backend). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/config.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/table.h>
#include <slotsync/view.h>

static struct config cfg;
static struct table tab;
static char logbuf[8192];
static FILE *log_out;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.etcd_prefix = "/svc/";
    cfg.defaults.slots = 3;
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    table_init(&tab, &cfg, true);
    memset(logbuf, 0, sizeof(logbuf));
    log_out = fmemopen(logbuf, sizeof(logbuf) - 1, "w");
    cr_assert_not_null(log_out);
    setvbuf(log_out, NULL, _IONBF, 0);
    log_set_level(LOG_LEVEL_INFO);
    log_set_output(log_out);
}

static void teardown(void)
{
    log_set_output(NULL);
    fclose(log_out);
    table_free(&tab);
}

TestSuite(table, .init = setup, .fini = teardown);

static struct names names_of(const char *const *v, size_t n)
{
    struct names s = {0};

    for (size_t i = 0; i < n; i++)
        cr_assert_eq(backend_names_add(&s, v[i]), 0);
    backend_names_sort(&s);
    return s;
}

Test(table, add_find_drop_keep_the_table_sorted)
{
    struct backend *web = table_add_service(&tab, "web"), *api = table_add_service(&tab, "api");

    cr_assert_not_null(web);
    cr_assert_not_null(api);
    cr_expect_eq(tab.n, 2);
    cr_expect_eq(tab.v[0], api, "sorted by name");
    cr_expect_eq(table_find(&tab, "web"), web);
    cr_expect_null(table_find(&tab, "db"));
    cr_expect_eq(web->conf.opt.slots, 3, "from the defaults");
    cr_expect_not(web->configured);
    cr_expect_not(web->claimed, "settled later");
    cr_expect(web->dirty);
    cr_expect_eq(table_add_service(&tab, "web"), web, "the existing one");
    table_drop(&tab, api);
    cr_expect_eq(tab.n, 1);
    cr_expect_eq(tab.v[0], web);
    cr_expect_null(table_find(&tab, "api"));
}

Test(table, a_backend_nothing_routes_to_is_said_once)
{
    struct backend *b = table_add_service(&tab, "web");

    cr_assert_not_null(b);
    cr_expect(b->unrouted, "no listen, no http_frontend");
    table_note_routing(&tab, b);
    cr_expect_not_null(strstr(logbuf, "backend web: nothing routes to it"), "%s", logbuf);
    cr_expect_null(strstr(strstr(logbuf, "nothing routes") + 1, "nothing routes"), "once: %s",
                   logbuf);
}

Test(table, name_sets_are_taken_and_decide_ownership)
{
    static const char *const base[] = {"db"}, *const listed[] = {"db", "web", "stats"};
    static const char *const rendered[] = {"web"};
    struct names be = names_of(base, 1), fe = {0}, seen = names_of(listed, 3);
    struct names owned = names_of(rendered, 1);
    struct backend *db = table_add_service(&tab, "db"), *web = table_add_service(&tab, "web");
    struct backend *api = table_add_service(&tab, "api");

    table_set_base_names(&tab, &be, &fe);
    cr_expect_eq(be.n, 0, "taken");
    cr_expect_not(table_settle(&tab, api), "waits for HAProxy's proxies");
    cr_expect_not(api->foreign);
    table_set_proxies(&tab, &seen);
    cr_expect_eq(seen.n, 0, "taken");
    cr_expect(tab.proxies_known);
    table_set_owned(&tab, &owned);
    cr_expect_eq(owned.n, 0, "taken");
    cr_expect_eq(tab.owned.n, 1);
    cr_expect_not_null(table_name_taken(&tab, db));
    cr_expect_null(table_name_taken(&tab, web), "ours: the services file HAProxy runs");
    cr_expect_not(table_settle(&tab, db));
    cr_expect(db->foreign);
    cr_expect_eq(tab.refused_services, 1);
    cr_expect_not_null(strstr(logbuf, "etcd service \"db\" (keys /svc/db/...) refused: the name "
                                      "is taken by"),
                       "%s", logbuf);
    cr_expect(table_settle(&tab, web));
    cr_expect(table_settle(&tab, api), "free, and the proxies are known");
    /* the name becomes free: the base config no longer declares it */
    be = (struct names){0};
    table_set_base_names(&tab, &be, &fe);
    seen = names_of(rendered, 1);
    table_set_proxies(&tab, &seen);
    cr_expect(table_settle(&tab, db));
    cr_expect_not(db->foreign);
    cr_expect_not_null(strstr(logbuf, "service db: its name is free again: slotsync takes it"),
                       "%s", logbuf);
    cr_expect_eq(table_own(&tab, "api"), 0);
    cr_expect(backend_names_has(&tab.owned, "api"));
    cr_expect(backend_names_has(&tab.owned, "web"));
}

static char wanted[256];

static void want_reload(const char *why, const char *name, void *arg)
{
    size_t len = strlen(wanted);

    snprintf(wanted + len, sizeof(wanted) - len, "%s %s;", why, name);
}

/* A restart takes back the backends of the file slotsync rendered. */
Test(table, the_rendered_services_file_names_what_is_ours)
{
    static const char text[] =
        RENDER_MARKER "\n\nbackend web\n    mode http\n    balance roundrobin\n"
                      "\nbackend old\n    mode tcp\n    balance first\n"
                      "\nfrontend old\n    mode tcp\n";
    struct backend *cfgd;
    struct service_conf conf;

    cfg.defaults.mode = MODE_HTTP;
    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "cfgd");
    cfgd = table_add(&tab, &conf, true);
    cr_assert_not_null(cfgd);
    wanted[0] = '\0';
    cr_assert_eq(
        table_take_rendered(&tab, "/x/services.cfg", text, strlen(text), want_reload, NULL), 0);
    cr_expect_eq(tab.n, 3);
    cr_expect(backend_names_has(&tab.owned, "web"));
    cr_expect(backend_names_has(&tab.owned, "old"));
    cr_expect_not(backend_names_has(&tab.owned, "cfgd"), "not in the file");
    cr_expect_not(table_find(&tab, "web")->configured);
    cr_expect_str_eq(wanted, "defaults changed for old;", "rendered as tcp, the defaults say http");
    cr_expect_not_null(strstr(logbuf, "/x/services.cfg: 2 backends of services named only in etcd"),
                       "%s", logbuf);
    cr_expect_not_null(strstr(logbuf, "/x/services.cfg: frontends named as their backends"), "%s",
                       logbuf);
    /* a file someone else wrote names nothing */
    cr_assert_eq(table_take_rendered(&tab, "/x/s.cfg", "backend x\n", 10, want_reload, NULL), 0);
    cr_expect_null(table_find(&tab, "x"));
}

/* What an empty etcd listing would empty: the filled slots of the backends
 * HAProxy runs, an unknown slot counting as filled. */
Test(table, filled_slots_count_what_haproxy_holds)
{
    struct backend *a = table_add_service(&tab, "a"), *b = table_add_service(&tab, "b");
    struct backend *gone = table_add_service(&tab, "gone");
    size_t backends = 99;

    cr_assert(a && b && gone);
    cr_expect_eq(table_filled_slots(&tab, &backends), 0, "nothing present");
    cr_expect_eq(backends, 0);
    cr_assert_eq(backend_resize(a, 3), 0);
    cr_assert_eq(backend_resize(b, 2), 0);
    cr_assert_eq(backend_resize(gone, 4), 0);
    a->present = b->present = true;
    /* a: one filled, one empty, one unknown; b: both empty */
    cr_assert_eq(view_set_addr(&a->have[0], "127.0.0.1"), 0);
    a->have[0].port = 80;
    cr_assert_eq(view_set_addr(&a->have[1], "0.0.0.0"), 0);
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(view_set_addr(&b->have[i], "0.0.0.0"), 0);
    cr_expect(view_empty(&a->have[1]));
    cr_expect_eq(table_filled_slots(&tab, &backends), 2, "a's filled and unknown ones");
    cr_expect_eq(backends, 1);
    b->have[1].port = 8080;
    cr_expect_eq(table_filled_slots(&tab, &backends), 3);
    cr_expect_eq(backends, 2);
}
