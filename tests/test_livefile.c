/* test_livefile - the services file and Host map kept current between
 * reloads: what is rendered (ours and present only, a bound spare with its
 * service's slots and route, slots added at run time), and the writer on a
 * real loop (only a changed text is written, never while a reload holds
 * it, at most once per interval, failures retried with backoff). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/file.h>
#include <slotsync/livefile.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/table-t.h>

static struct table tab; /* the backends, lent to livefile */
static struct catalog *cat;
static struct config cfg;
static struct ev_loop *loop;
static struct livefile lf;
static char dir[64], svc_path[128], map_path[128];

static struct backend *add(const char *name, size_t slots, bool present, bool ours)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt = cfg.defaults;
    b = backend_insert(&tab.v, &tab.n, &conf, false);
    cr_assert_not_null(b);
    b->claimed = ours;
    b->present = present;
    cr_assert_eq(backend_resize(b, slots), 0);
    return b;
}

static void put(const char *service, const char *instance, const char *val)
{
    char key[300];
    int r;

    snprintf(key, sizeof(key), "/s/%s/%s", service, instance);
    r = catalog_put(cat, key, strlen(key), val, strlen(val), 1, NULL);
    cr_assert(r == CATALOG_ADDED || r == CATALOG_UPDATED, "put %s", key);
}

static void setup(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/test_livefile.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(svc_path, sizeof(svc_path), "%s/services.cfg", dir);
    snprintf(map_path, sizeof(map_path), "%s/services.cfg.map", dir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_bind.set = true;
    snprintf(cfg.http_bind.host, sizeof(cfg.http_bind.host), "127.0.0.1");
    cfg.http_bind.port = 8080;
    cfg.http_domain = "svc.local";
    cfg.hosts_map = map_path;
    cfg.services_file = svc_path;
    cfg.spare_backends = 2;
    cfg.defaults.mode = MODE_HTTP;
    cfg.defaults.slots = 2;
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    cat = catalog_new("/s/");
    cr_assert_not_null(cat);
    loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(loop);
    cr_assert_eq(livefile_init(&lf, loop, &cfg, cat, &tab), 0);
}

static void teardown(void)
{
    livefile_free(&lf);
    ev_loop_destroy(loop);
    for (size_t i = 0; i < tab.n; i++)
        backend_free(tab.v[i]);
    free(tab.v);
    tab.v = NULL;
    tab.n = 0;
    catalog_free(cat);
    unlink(svc_path);
    unlink(map_path);
    rmdir(dir);
}

TestSuite(livefile, .init = setup, .fini = teardown);

static char *render(char **map)
{
    char *text = NULL, *err = NULL;
    size_t len = 0, mlen = 0;

    cr_assert_eq(livefile_render(&cfg, tab.v, tab.n, cat, false, &text, &len, map, &mlen, &err), 0,
                 "%s", err ? err : "");
    cr_assert_eq(strlen(text), len);
    return text;
}

Test(livefile, renders_what_haproxy_runs_with_the_current_endpoints)
{
    struct backend *web;
    char *map = NULL, *text;

    add("api", 2, true, true);
    /* grown at run time to 3 slots: a reload must keep the third */
    cr_assert_eq(backend_add_slots(tab.v[0], 3), 0);
    add("gone", 2, false, true);   /* HAProxy does not run it (yet) */
    add("theirs", 2, true, false); /* not ours */
    web = add("web", 2, true, true);
    snprintf(web->proxy, sizeof(web->proxy), "spare:1");
    put("api", "a", "127.0.0.1:9001");
    put("api", "b", "127.0.0.1:9002");
    put("api", "c", "127.0.0.1:9003");
    put("gone", "a", "127.0.0.1:9100");
    put("theirs", "a", "127.0.0.1:9200");
    put("web", "a", "{\"host\":\"127.0.0.2\",\"port\":80,\"weight\":7}");
    text = render(&map);
    cr_assert(strstr(text, "\nbackend api\n"), "%s", text);
    cr_assert(strstr(text, "    server s1 127.0.0.1:9001 weight 1\n"), "%s", text);
    cr_assert(strstr(text, "    server s3 127.0.0.1:9003 weight 1\n"), "%s", text);
    cr_assert_null(strstr(text, "backend gone"), "%s", text);
    cr_assert_null(strstr(text, "backend theirs"), "%s", text);
    cr_assert_null(strstr(text, "\nbackend web\n"), "%s", text);
    /* web's endpoint lives in its spare; the other spare stays empty */
    cr_assert(strstr(text, "\nbackend spare:1\n    mode http\n    balance roundrobin\n"
                           "    server s1 127.0.0.2:80 weight 7\n"
                           "    server s2 0.0.0.0:0 disabled\n"),
              "%s", text);
    cr_assert(strstr(text, "\nbackend spare:0\n    mode http\n    balance roundrobin\n"
                           "    server s1 0.0.0.0:0 disabled\n"
                           "    server s2 0.0.0.0:0 disabled\n"),
              "%s", text);
    cr_assert(strstr(map, "\napi.svc.local api\nweb.svc.local spare:1\n"), "%s", map);
    /* the file declares what a restarted slotsync owns: api, not web */
    struct render_file_backend *fb = NULL;
    size_t nfb = 0;

    cr_assert_eq(render_parse_backends(text, strlen(text), &fb, &nfb), 0);
    cr_assert_eq(nfb, 1);
    cr_assert_str_eq(fb[0].name, "api");
    free(fb);
    free(text);
    free(map);
}

Test(livefile, no_map_without_an_http_frontend)
{
    char *map = (char *)"x", *text;

    cfg.http_bind.set = false;
    add("api", 1, true, true);
    put("api", "a", "127.0.0.1:9001");
    text = render(&map);
    cr_assert_null(map);
    cr_assert(strstr(text, "    server s1 127.0.0.1:9001 weight 1\n"), "%s", text);
    cr_assert_null(strstr(text, "spare:"), "%s", text);
    free(text);
}

static void run_until_idle(void)
{
    /* bounded: the timer fires at most a few times */
    for (int i = 0; i < 50 && ev_is_active(&lf.timer); i++)
        ev_run(loop, EVRUN_ONCE);
}

static char *slurp(const char *path)
{
    char *t = NULL;
    size_t len = 0;

    cr_assert_eq(file_read(path, 1 << 20, &t, &len), 0, "%s", path);
    return t;
}

Test(livefile, writes_only_a_changed_text_and_never_while_held)
{
    struct stat st1, st2;
    char *t;

    add("api", 2, true, true);
    put("api", "a", "127.0.0.1:9001");
    livefile_touch(&lf);
    run_until_idle();
    cr_assert_eq(lf.stats.writes, 1);
    t = slurp(svc_path);
    cr_assert(strstr(t, "127.0.0.1:9001"), "%s", t);
    free(t);
    t = slurp(map_path);
    cr_assert(strstr(t, "\napi.svc.local api\n"), "%s", t);
    free(t);
    cr_assert_eq(stat(svc_path, &st1), 0);

    /* nothing changed: rendered again (a second later), not written */
    livefile_touch(&lf);
    cr_assert(ev_is_active(&lf.timer));
    cr_assert_gt(ev_timer_remaining(loop, &lf.timer), LIVEFILE_INTERVAL_S / 2);
    run_until_idle();
    cr_assert_eq(lf.stats.renders, 2);
    cr_assert_eq(lf.stats.writes, 1);
    cr_assert_eq(lf.stats.unchanged, 1);
    cr_assert_eq(stat(svc_path, &st2), 0);
    cr_assert_eq(st1.st_ino, st2.st_ino, "rewritten although unchanged");

    /* a reload in flight: nothing is rendered until it ends */
    livefile_hold(&lf, true);
    put("api", "a", "127.0.0.1:9009");
    livefile_touch(&lf);
    cr_assert_not(ev_is_active(&lf.timer));
    livefile_hold(&lf, false);
    cr_assert(ev_is_active(&lf.timer));
    run_until_idle();
    cr_assert_eq(lf.stats.writes, 2);
    t = slurp(svc_path);
    cr_assert(strstr(t, "127.0.0.1:9009"), "%s", t);
    free(t);
}

Test(livefile, a_file_already_current_is_not_rewritten_after_a_reload)
{
    struct stat st1, st2;

    add("api", 2, true, true);
    put("api", "a", "127.0.0.1:9001");
    livefile_touch(&lf);
    run_until_idle();
    cr_assert_eq(stat(svc_path, &st1), 0);
    /* a reload's render wrote the same text: compared with the disk */
    livefile_hold(&lf, true);
    livefile_hold(&lf, false);
    run_until_idle();
    cr_assert_eq(lf.stats.writes, 1);
    cr_assert_eq(stat(svc_path, &st2), 0);
    cr_assert_eq(st1.st_ino, st2.st_ino);
}

Test(livefile, a_failed_write_is_retried_with_backoff)
{
    char bad[160];

    snprintf(bad, sizeof(bad), "%s/missing/services.cfg", dir);
    cfg.services_file = bad;
    cfg.http_bind.set = false;
    add("api", 1, true, true);
    put("api", "a", "127.0.0.1:9001");
    livefile_touch(&lf);
    ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(lf.stats.failures, 1);
    cr_assert(ev_is_active(&lf.timer), "no retry armed");
    double first = ev_timer_remaining(loop, &lf.timer);

    cr_assert_gt(first, 0.3);
    cr_assert_lt(first, 0.7);
    /* a touch does not cut the backoff short */
    livefile_touch(&lf);
    cr_assert_geq(ev_timer_remaining(loop, &lf.timer), 0.3);
    ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(lf.stats.failures, 2);
    cr_assert_gt(ev_timer_remaining(loop, &lf.timer), 0.7); /* doubled */
    /* the directory appears: the next retry writes */
    char sub[140];

    snprintf(sub, sizeof(sub), "%s/missing", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    ev_run(loop, EVRUN_ONCE);
    cr_assert_eq(lf.stats.writes, 1);
    cr_assert_eq(lf.outage.since, 0);
    unlink(bad);
    rmdir(sub);
}

/* issue 21 item 3: a backend added at run time (HAProxy 3.4+, dynback.h) is
 * a backend of ours HAProxy runs like any other: the file written between
 * reloads declares it with its slots and its route, and ends with the
 * defaults section the next "add backend" names, so that a reload or a
 * restart of HAProxy brings it back and can still add more. Without the
 * base config's slotsync:base, no such section. */
Test(livefile, run_time_backends_and_their_defaults)
{
    struct backend *b;
    char *text = NULL, *map = NULL, *err = NULL;
    size_t len = 0, mlen = 0;

    b = add("newsvc", 0, true, true);
    b->dyn_created = true;
    cr_assert_eq(backend_add_slots(b, 2), 0); /* as dyn_plan_create() adds them */
    put("newsvc", "a", "127.0.0.1:9301");
    cr_assert_eq(livefile_render(&cfg, tab.v, tab.n, cat, true, &text, &len, &map, &mlen, &err), 0,
                 "%s", err ? err : "");
    cr_assert_eq(strlen(text), len);
    cr_expect(strstr(text, "\nbackend newsvc\n"), "%s", text);
    cr_expect(strstr(text, "    server s1 127.0.0.1:9301 weight 1\n"), "%s", text);
    cr_expect(strstr(text, "    server s2 0.0.0.0:0 disabled\n"), "%s", text);
    cr_expect(strstr(map, "newsvc.svc.local newsvc\n"), "%s", map);
    {
        const char *tail = strstr(text, "\ndefaults slotsync:dynamic from slotsync:base\n");

        cr_assert_not_null(tail, "%s", text);
        /* after every proxy: it is the defaults of none of them */
        cr_expect_null(strstr(tail, "\nbackend "), "%s", tail);
        cr_expect_null(strstr(tail, "\nfrontend "), "%s", tail);
        cr_expect(strstr(tail, "    balance roundrobin\n"), "%s", tail);
    }
    free(text);
    free(map);
    cr_assert_eq(livefile_render(&cfg, tab.v, tab.n, cat, false, &text, &len, &map, &mlen, &err),
                 0);
    cr_expect(strstr(text, "\nbackend newsvc\n"), "%s", text);
    cr_expect_null(strstr(text, "defaults slotsync:dynamic"), "%s", text);
    free(text);
    free(map);
    free(err);
}
