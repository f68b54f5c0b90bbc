/* test_pool - the spare backends on a real loop: a new service bound to a
 * spare HAProxy runs (and not to one base_config holds), the map file
 * written with its route, the refill asked for min_reload_interval_ms
 * later, adoption from the live map creating the backend, and a reload's
 * end freeing every spare. The decisions have their own suite (spare). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/backend.h>
#include <slotsync/file.h>
#include <slotsync/log.h>
#include <slotsync/pool.h>
#include <slotsync/routes-t.h>
#include <slotsync/spare.h>
#include <slotsync/table.h>

struct owner {
    struct table tab;
    size_t reloads;
    char why[128];
};

static struct owner own;
static struct ev_loop *loop;
static struct config cfg;
static struct pool pool;
static char dir[64], map_path[128];

static struct backend *add_named(const char *name)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt = cfg.defaults;
    b = backend_insert(&own.tab.v, &own.tab.n, &conf, false);
    cr_assert_not_null(b);
    b->claimed = true;
    return b;
}

static void own_want_reload(const char *why, const char *name, void *arg)
{
    own.reloads++;
    snprintf(own.why, sizeof(own.why), "%s %s", why, name);
}

static const struct pool_ops ops = {own_want_reload};

static void setup(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/test_pool.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(map_path, sizeof(map_path), "%s/services.cfg.map", dir);
    loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(loop);
    memset(&cfg, 0, sizeof(cfg));
    memset(&own, 0, sizeof(own));
    table_init(&own.tab, &cfg, true);
    cfg.http_bind.set = true;
    cfg.http_domain = "svc.local";
    cfg.hosts_map = map_path;
    cfg.services_file = "/x/services.cfg";
    cfg.spare_backends = 4;
    cfg.min_reload_interval_ms = 50;
    cfg.defaults.mode = MODE_HTTP;
    cfg.defaults.slots = 2;
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    cr_assert_eq(pool_init(&pool, loop, &cfg, &own.tab, &ops, NULL), 0);
    cr_assert_eq(pool.sp.n, 4);
}

static void teardown(void)
{
    pool_free(&pool);
    table_free(&own.tab);
    ev_loop_destroy(loop);
    unlink(map_path);
    rmdir(dir);
}

TestSuite(pool, .init = setup, .fini = teardown);

static void stop_loop(struct ev_loop *l, ev_timer *w, int revents)
{
    ev_break(l, EVBREAK_ALL);
}

/* Run the loop for s seconds. */
static void run_for(double s)
{
    ev_timer t;

    ev_timer_init(&t, stop_loop, s, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static void names_of(struct names *s, const char *const *v)
{
    for (; *v; v++)
        cr_assert_eq(backend_names_add(s, *v), 0);
    backend_names_sort(s);
}

static char *map_text(void)
{
    char *text = NULL;
    size_t len = 0;

    cr_assert_eq(file_read(map_path, 1 << 20, &text, &len), 0);
    return text;
}

Test(pool, binds_writes_the_map_and_asks_for_the_refill_later)
{
    static const char *const listed[] = {"spare:0", "spare:1", "spare:2", "spare:3", NULL};
    static const char *const base[] = {"spare:0", NULL}; /* an operator's proxy */
    struct names proxies = {0}, base_be = {0};
    struct backend *web = add_named("web"), *api = add_named("api"), *db = add_named("db");
    char *text;

    names_of(&proxies, listed);
    names_of(&base_be, base);
    cr_assert(pool_place(&pool, web, &proxies, &base_be, true));
    cr_expect_str_eq(backend_proxy(web), "spare:1");
    cr_expect_str_eq(backend_label(web), "web (spare:1)");
    cr_expect(web->present && web->dirty);
    cr_expect_eq(web->slots.n, 2);
    /* a reload asked for or in flight: no new binding */
    cr_expect_not(pool_place(&pool, api, &proxies, &base_be, false));
    cr_expect_not(backend_is_spare(api));
    cr_assert(pool_place(&pool, api, &proxies, &base_be, true));
    cr_expect_str_eq(backend_proxy(api), "spare:2");
    /* 1 of 4 free: the refill comes min_reload_interval_ms later, once */
    cr_expect_eq(own.reloads, 0);
    run_for(0.01);
    text = map_text();
    cr_expect_not_null(strstr(text, "web.svc.local spare:1\n"), "%s", text);
    cr_expect_not_null(strstr(text, "api.svc.local spare:2\n"), "%s", text);
    free(text);
    cr_assert(pool_place(&pool, db, &proxies, &base_be, true));
    cr_expect_str_eq(backend_proxy(db), "spare:3");
    run_for(0.15);
    cr_expect_eq(own.reloads, 1);
    cr_expect_not_null(strstr(own.why, "spare pool low"), "%s", own.why);
    /* the reload: everyone in a backend of its own, every spare free */
    pool_reload_started(&pool);
    pool_reload_ended(&pool, true);
    cr_expect_not(backend_is_spare(web) || backend_is_spare(api) || backend_is_spare(db));
    cr_expect_str_eq(backend_label(web), "web");
    cr_expect_eq(spare_free_count(&pool.sp), 4);
    backend_names_clear(&proxies);
    backend_names_clear(&base_be);
}

Test(pool, adopts_the_live_map_and_gives_each_binding_a_backend)
{
    static const struct host_route live[] = {
        {"api.svc.local", "api"},
        {"gone.svc.local", "spare:2"},
        {"web.svc.local", "spare:0"},
    };
    struct names none = {0};
    struct backend *web = add_named("web"), *gone;

    pool_adopt(&pool, live, 3);
    cr_expect_str_eq(backend_proxy(web), "spare:0");
    gone = table_find(&own.tab, "gone");
    cr_assert_not_null(gone, "a backend for the service spare:2 carries");
    cr_expect_str_eq(backend_proxy(gone), "spare:2");
    cr_expect_eq(spare_free_count(&pool.sp), 2);
    /* placing an adopted service needs no free spare nor a listing */
    web->proxy[0] = '\0';
    cr_expect(pool_place(&pool, web, &none, &none, false));
    cr_expect_str_eq(backend_proxy(web), "spare:0");
    /* a failed reload keeps the bindings */
    pool_reload_started(&pool);
    pool_reload_ended(&pool, false);
    cr_expect_str_eq(backend_proxy(gone), "spare:2");
}

Test(pool, no_spares_without_a_domain)
{
    struct pool p;
    struct names none = {0};
    struct backend *web = add_named("web");

    cfg.http_domain = NULL;
    cr_assert_eq(pool_init(&p, loop, &cfg, &own.tab, &ops, NULL), 0);
    cr_expect_eq(p.sp.n, 0);
    cr_expect_not(pool_place(&p, web, &none, &none, true));
    pool_free(&p);
}
