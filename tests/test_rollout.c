/* test_rollout - the reload policy on a real loop, without HAProxy: a
 * shell script stands in for the haproxy binary ("haproxy -c") and
 * reload_command for the reload, each counting its runs in a file. What is
 * tested: the generations (a want while a reload runs leads to exactly one
 * more; a refused check is not retried for its generation), coalescing
 * under min_reload_interval_ms (the timer armed, not the clock watched), the
 * write backoff, an unreachable master socket retried, and what the end of
 * a reload means (the rendered names handed over, the backends left out
 * dropped unless their endpoints came back). reload.c's own suite tests the
 * check with the real haproxy. */
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
#include <slotsync/log.h>
#include <slotsync/pool-t.h>
#include <slotsync/rollout.h>
#include <slotsync/table.h>

struct owner {
    struct table tab; /* after a reload: what slotsync owns, the backends left */
    size_t resyncs, loads;
};

static struct owner own;
static struct ev_loop *loop;
static struct config cfg;
static struct catalog *cat;
static struct pool pool; /* zeroed: no spares (pool.h accepts that) */
static struct metrics obs;
static struct rollout ro;
static ev_prepare prep;
static bool ready = true;
static char dir[64], services[128], bin[128], command[512], logs[128];
static FILE *log_out;

static void own_loaded(void *arg)
{
    own.loads++;
}

static void own_resync(void *arg)
{
    own.resyncs++;
}

static const struct rollout_ops ops = {own_loaded, own_resync};

/* The controller's ev_prepare, as it calls the rollout. */
static void on_prepare(struct ev_loop *l, ev_prepare *w, int revents)
{
    rollout_maybe_start(&ro, ready);
}

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
}

static void setup(void)
{
    char script[512];

    log_out = NULL;
    snprintf(dir, sizeof(dir), "/tmp/test_rollout.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(services, sizeof(services), "%s/services.cfg", dir);
    snprintf(bin, sizeof(bin), "%s/haproxy", dir);
    snprintf(logs, sizeof(logs), "%s/log", dir);
    /* "haproxy -c": counts its runs; refuses while the file "reject" exists */
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho \"$@\" >> %s/checks\n"
             "if [ -e %s/reject ]; then echo '[ALERT] (1) : config : no good'; exit 1; fi\n",
             dir, dir);
    write_script(bin, script);
    snprintf(command, sizeof(command), "echo reload >> %s/reloads; test ! -e %s/refuse", dir, dir);
    log_out = fopen(logs, "w+");
    cr_assert_not_null(log_out);
    log_set_output(log_out);
    log_set_unlimited(true);
    log_set_level(LOG_LEVEL_DEBUG);
    loop = EV_DEFAULT; /* ev_child watches children on the default loop only */
    memset(&cfg, 0, sizeof(cfg));
    memset(&own, 0, sizeof(own));
    table_init(&own.tab, &cfg, true);
    memset(&obs, 0, sizeof(obs));
    memset(&pool, 0, sizeof(pool));
    cfg.services_file = services;
    cfg.haproxy_bin = bin;
    cfg.reload_command = command;
    cfg.min_reload_interval_ms = 0;
    cfg.defaults.mode = MODE_HTTP;
    cfg.defaults.slots = 2;
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    cat = catalog_new("/svc/");
    cr_assert_not_null(cat);
    ready = true;
    ev_prepare_init(&prep, on_prepare);
    ev_prepare_start(loop, &prep);
}

static void teardown(void)
{
    char path[192];
    static const char *const files[] = {"checks",       "reloads",          "reject",  "refuse",
                                        "services.cfg", "services.cfg.new", "out.cfg", "log"};

    rollout_free(&ro);
    ev_prepare_stop(loop, &prep);
    table_free(&own.tab);
    catalog_free(cat);
    ev_loop_destroy(loop);
    log_set_output(NULL);
    if (log_out)
        fclose(log_out);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    unlink(bin);
    rmdir(dir);
}

TestSuite(rollout, .init = setup, .fini = teardown, .timeout = 30);

static void start(void)
{
    cr_assert_eq(rollout_init(&ro, loop, &cfg, cat, &own.tab, &pool, &obs, &ops, NULL), 0);
}

static struct backend *add_backend(const char *name, bool configured)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt = cfg.defaults;
    b = backend_insert(&own.tab.v, &own.tab.n, &conf, configured);
    cr_assert_not_null(b);
    b->claimed = true; /* ours: settled by the controller */
    return b;
}

static void put_endpoint(const char *service, const char *instance, const char *addr)
{
    char key[128];

    snprintf(key, sizeof(key), "/svc/%s/%s", service, instance);
    cr_assert_geq(catalog_put(cat, key, strlen(key), addr, strlen(addr), 1, NULL), 0);
}

static void on_tick(struct ev_loop *l, ev_timer *w, int revents)
{
    bool (*done)(void) = (bool (*)(void))w->data;

    if (done && done())
        ev_break(l, EVBREAK_ALL);
}

static void on_guard(struct ev_loop *l, ev_timer *w, int revents)
{
    ev_break(l, EVBREAK_ALL);
}

/* Run the loop until done() (checked every 5 ms), or for s seconds when
 * done is NULL; fails after 10 s. */
static void run_until(bool (*done)(void), double s)
{
    ev_timer tick, guard;

    ev_timer_init(&tick, on_tick, 0.005, 0.005);
    tick.data = (void *)done;
    ev_timer_init(&guard, on_guard, done ? 10. : s, 0.);
    ev_timer_start(loop, &tick);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    ev_timer_stop(loop, &tick);
    ev_timer_stop(loop, &guard);
    if (done)
        cr_assert(done(), "not done after 10 s");
}

static bool idle(void)
{
    return !ro.reloading && !ev_is_active(&ro.timer) && !rollout_pending(&ro);
}

static bool loaded(void)
{
    return !ro.reloading && ro.loaded_gen == ro.desired_gen;
}

/* Lines in dir/name; 0 when it does not exist. */
static size_t runs(const char *name)
{
    char path[192], *text = NULL;
    size_t len = 0, n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (file_read(path, 1 << 20, &text, &len) == -ENOENT)
        return 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    free(text);
    return n;
}

static bool logged(const char *text)
{
    char *all = NULL;
    size_t len = 0;
    bool found;

    fflush(log_out);
    cr_assert_eq(file_read(logs, 1 << 22, &all, &len), 0);
    found = strstr(all, text) != NULL;
    free(all);
    return found;
}

static void touch(const char *name)
{
    char path[192];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
}

static void rm(const char *name)
{
    char path[192];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(unlink(path), 0);
}

Test(rollout, a_want_renders_checks_renames_and_reloads)
{
    char *text = NULL, path[192];
    size_t len = 0;

    add_backend("web", true);
    start();
    cr_expect_not(rollout_pending(&ro));
    rollout_want(&ro, "new service", "web");
    cr_expect(rollout_pending(&ro));
    /* not ready (etcd not listed or HAProxy's state not read): nothing */
    rollout_maybe_start(&ro, false);
    cr_expect_not(ro.reloading);
    cr_expect_not(ev_is_active(&ro.timer));
    run_until(loaded, 0);
    cr_expect_eq(ro.stats.reloads, 1);
    cr_expect_eq(runs("checks"), 1);
    cr_expect_eq(runs("reloads"), 1);
    cr_expect_not(ro.last_reload_failed);
    cr_expect_gt(ro.last_reload_start, 0);
    cr_assert_eq(file_read(services, 1 << 20, &text, &len), 0);
    cr_expect_not_null(strstr(text, "backend web"), "%s", text);
    free(text);
    snprintf(path, sizeof(path), "%s.new", services);
    cr_expect_neq(access(path, F_OK), 0, "the candidate was renamed");
    cr_expect_eq(own.loads, 1);
    cr_expect_eq(own.tab.owned.n, 1);
    cr_expect(backend_names_has(&own.tab.owned, "web"));
    cr_expect_geq(own.resyncs, 1, "HAProxy's state is read again after a reload");
    cr_expect(logged("new service web: a reload is needed"));
    cr_expect(logged("rendered 1 backends to "));
    cr_expect(logged("HAProxy reloaded in "));
}

/* Why a reload is wanted, as counted in slotsync_reload_requests_total. */
Test(rollout, causes_are_counted_by_the_start_of_why)
{
    static const struct {
        const char *why;
        enum metrics_reload_cause cause;
    } cases[] = {
        /* exactly the texts the callers pass (controller.c, apply.c, pool.c,
         * rollout.c): a prefix table once counted slot reloads as "other" */
        {"new service in the config:", METRICS_CAUSE_CONFIG},
        {"new service", METRICS_CAUSE_NEW_SERVICE},
        {"endpoints came back for", METRICS_CAUSE_NEW_SERVICE},
        {"backend missing in HAProxy:", METRICS_CAUSE_BACKEND_MISSING},
        {"HTTP frontend missing in HAProxy:", METRICS_CAUSE_HTTP_FRONTEND},
        {"http_frontend changed:", METRICS_CAUSE_HTTP_FRONTEND},
        {"options changed for", METRICS_CAUSE_CONFIG},
        {"service left the config:", METRICS_CAUSE_CONFIG},
        {"defaults changed for", METRICS_CAUSE_CONFIG},
        {"more slots needed by", METRICS_CAUSE_SLOTS},
        {"more slots configured for", METRICS_CAUSE_SLOTS},
        {"spare pool low:", METRICS_CAUSE_NEW_SERVICE},
        {"large plan, one reload for", METRICS_CAUSE_BULK},
        /* a text no caller passes is "other", never a near match */
        {"slots", METRICS_CAUSE_OTHER},
        {"new services", METRICS_CAUSE_OTHER},
        {"name free again for", METRICS_CAUSE_OTHER},
    };

    start();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned long long before[METRICS_CAUSES];

        memcpy(before, obs.reload_requests, sizeof(before));
        rollout_want(&ro, cases[i].why, "x");
        for (int k = 0; k < METRICS_CAUSES; k++)
            cr_expect_eq(obs.reload_requests[k], before[k] + (k == (int)cases[i].cause),
                         "%s: cause %d", cases[i].why, k);
        cr_expect_eq(ro.desired_gen, i + 1);
    }
}

Test(rollout, a_want_while_a_reload_runs_leads_to_exactly_one_more)
{
    add_backend("web", true);
    start();
    rollout_want(&ro, "new service", "web");
    rollout_maybe_start(&ro, true);
    cr_assert(ro.reloading, "the first reload starts at once");
    cr_expect_eq(ro.reload_gen, 1);
    /* a burst while it runs */
    rollout_want(&ro, "options changed for", "web");
    rollout_want(&ro, "more slots needed by", "web");
    rollout_maybe_start(&ro, true);
    cr_expect_eq(ro.reload_gen, 1, "nothing more started");
    run_until(loaded, 0);
    cr_expect_eq(ro.loaded_gen, 3);
    cr_expect_eq(ro.reload_gen, 3, "the second reload carries the whole burst");
    run_until(NULL, 0.1); /* nothing more comes */
    cr_expect_eq(ro.stats.reloads, 2);
    cr_expect_eq(runs("checks"), 2);
    cr_expect_eq(runs("reloads"), 2);
    cr_expect(idle());
}

Test(rollout, min_reload_interval_arms_the_timer_and_coalesces)
{
    cfg.min_reload_interval_ms = 60000;
    add_backend("web", true);
    start();
    rollout_want(&ro, "new service", "web");
    run_until(loaded, 0);
    cr_assert_eq(ro.stats.reloads, 1, "the first reload waits for nothing");
    rollout_want(&ro, "options changed for", "web");
    rollout_maybe_start(&ro, true);
    cr_expect_not(ro.reloading);
    cr_assert(ev_is_active(&ro.timer));
    cr_expect_gt(ev_timer_remaining(loop, &ro.timer), 59.);
    cr_expect_leq(ev_timer_remaining(loop, &ro.timer), 60.);
    rollout_want(&ro, "more slots needed by", "web");
    rollout_maybe_start(&ro, true);
    cr_expect_not(ro.reloading);
    cr_expect_eq(ro.reload_gen, 1);
    cr_expect_eq(runs("checks"), 1);
    /* the interval is over (as if the timer had run): one reload for both */
    ev_timer_stop(loop, &ro.timer);
    ro.last_reload_start -= 61.;
    run_until(loaded, 0);
    cr_expect_eq(ro.reload_gen, 3);
    cr_expect_eq(ro.stats.reloads, 2);
    cr_expect_eq(runs("checks"), 2);
}

static bool two_io_failures(void)
{
    return ro.stats.io_failures >= 2;
}

Test(rollout, a_failed_write_is_retried_with_backoff)
{
    char sub[128], path[192];

    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(path, sizeof(path), "%s/services.cfg", sub);
    cfg.services_file = path; /* a directory that is not there yet */
    add_backend("web", true);
    start();
    rollout_want(&ro, "new service", "web");
    rollout_maybe_start(&ro, true);
    cr_expect_not(ro.reloading);
    cr_expect_eq(ro.stats.io_failures, 1);
    cr_expect_eq(ro.failed_gen, 0, "a failure of this machine fails no generation");
    cr_expect(rollout_pending(&ro));
    cr_assert(ev_is_active(&ro.timer));
    cr_expect_eq(ro.write_retry, 0.5);
    cr_expect_geq(ev_timer_remaining(loop, &ro.timer), 0.5 * 0.8 - 0.01);
    cr_expect_leq(ev_timer_remaining(loop, &ro.timer), 0.5 * 1.2);
    cr_expect_geq(own.resyncs, 1);
    cr_expect(logged("cannot write the services file: "));
    cr_expect(logged("; keeping the running config, retrying with backoff"));
    /* the timer holds it back */
    rollout_maybe_start(&ro, true);
    cr_expect_eq(ro.stats.io_failures, 1);
    /* its end: tried again, failing again, twice the delay */
    run_until(two_io_failures, 0);
    cr_expect_eq(ro.write_retry, 1.0);
    cr_assert(ev_is_active(&ro.timer));
    cr_expect_geq(ev_timer_remaining(loop, &ro.timer), 1.0 * 0.8 - 0.01);
    cr_expect_leq(ev_timer_remaining(loop, &ro.timer), 1.0 * 1.2);
    cr_expect_eq(runs("checks"), 0);
    /* the disk is back: the same generation goes through */
    cr_assert_eq(mkdir(sub, 0755), 0);
    run_until(loaded, 0);
    cr_expect_eq(ro.loaded_gen, 1);
    cr_expect_eq(ro.stats.io_failures, 2);
    cr_expect_eq(ro.write_retry, 0);
    cr_expect_eq(ro.write_outage.since, 0);
    cr_expect(logged("services file written and HAProxy reloaded again after "));
    unlink(path);
}

static bool checked_once(void)
{
    return ro.stats.check_failures == 1 && !ro.reloading;
}

Test(rollout, a_refused_check_is_not_retried_for_the_same_generation)
{
    add_backend("web", true);
    start();
    touch("reject");
    rollout_want(&ro, "new service", "web");
    run_until(checked_once, 0);
    run_until(NULL, 0.2);
    cr_expect_eq(runs("checks"), 1);
    cr_expect_eq(runs("reloads"), 0);
    cr_expect_eq(ro.failed_gen, 1);
    cr_expect_not(rollout_pending(&ro));
    cr_expect(ro.last_reload_failed);
    cr_expect_not(ev_is_active(&ro.timer));
    cr_expect_neq(access(services, F_OK), 0, "the running file is kept");
    cr_expect_eq(own.loads, 0);
    cr_expect(logged("haproxy -c rejected the new services file, keeping the running one: "
                     "haproxy -c exited with 1: [ALERT] (1) : config : no good"));
    /* a newer change tries again */
    rm("reject");
    rollout_want(&ro, "options changed for", "web");
    run_until(loaded, 0);
    cr_expect_eq(runs("checks"), 2);
    cr_expect_eq(ro.stats.reloads, 1);
    cr_expect_not(ro.last_reload_failed);
}

Test(rollout, a_refused_reload_is_not_retried_for_the_same_generation)
{
    add_backend("web", true);
    start();
    touch("refuse");
    rollout_want(&ro, "new service", "web");
    run_until(idle, 0);
    run_until(NULL, 0.1);
    cr_expect_eq(runs("reloads"), 1);
    cr_expect_eq(ro.stats.reload_failures, 1);
    cr_expect_eq(ro.stats.io_failures, 0);
    cr_expect_eq(ro.failed_gen, 1);
    cr_expect(ro.last_reload_failed);
    cr_expect(logged("reload failed: reload_command exited with 1; runtime changes keep going "
                     "to the running worker"));
}

static bool io_failed(void)
{
    return ro.stats.io_failures == 1 && !ro.reloading;
}

Test(rollout, an_unreachable_master_is_retried_for_the_same_generation)
{
    char sock[128];

    snprintf(sock, sizeof(sock), "%s/master.sock", dir); /* nobody listens */
    cfg.master_socket = sock;
    cfg.reload_command = NULL;
    add_backend("web", true);
    start();
    rollout_want(&ro, "new service", "web");
    run_until(io_failed, 0);
    cr_expect_eq(ro.stats.reload_failures, 1);
    cr_expect_eq(ro.failed_gen, 0);
    cr_expect(rollout_pending(&ro));
    cr_expect(ev_is_active(&ro.timer), "retried with backoff");
    cr_expect(logged("cannot reload HAProxy: "));
}

Test(rollout, without_a_way_to_reload_the_generation_fails_once)
{
    cfg.reload_command = NULL;
    add_backend("web", true);
    start();
    rollout_want(&ro, "new service", "web");
    run_until(NULL, 0.05);
    cr_expect_eq(ro.failed_gen, 1);
    cr_expect_not(rollout_pending(&ro));
    cr_expect_eq(runs("checks"), 0, "nothing is rendered or checked");
    cr_expect(logged("HAProxy needs a reload but neither haproxy.master_socket nor "
                     "haproxy.reload_command is set"));
}

static bool reloaded_once(void)
{
    return ro.stats.reloads == 1 && !ro.reloading;
}

Test(rollout, the_end_of_a_reload_hands_over_the_render_and_drops_what_was_left_out)
{
    struct backend *back;

    cfg.min_reload_interval_ms = 60000; /* the next reload waits: this one is looked at */

    add_backend("web", true);
    add_backend("api", false);  /* discovered, with endpoints */
    add_backend("gone", false); /* discovered, its endpoints gone */
    back = add_backend("back", false);
    add_backend("theirs", false)->foreign = true; /* a name slotsync does not own */
    put_endpoint("api", "a", "127.0.0.1:8080");
    start();
    rollout_want(&ro, "new service", "api");
    rollout_maybe_start(&ro, true);
    cr_assert(ro.reloading);
    cr_expect(back->left_out);
    /* its endpoints come back while the reload runs */
    put_endpoint("back", "b", "127.0.0.2:8080");
    run_until(reloaded_once, 0);
    cr_expect_eq(own.tab.owned.n, 2);
    cr_expect(backend_names_has(&own.tab.owned, "api"));
    cr_expect(backend_names_has(&own.tab.owned, "web"));
    cr_expect_eq(own.tab.n, 4, "one dropped");
    cr_expect_null(table_find(&own.tab, "gone"));
    cr_expect_not_null(table_find(&own.tab, "back"), "kept: it wants a backend again");
    cr_expect_not_null(table_find(&own.tab, "theirs"));
    cr_expect(logged("endpoints came back for back: a reload is needed"));
    cr_expect(rollout_pending(&ro));
    /* ... and gets it at the next reload */
    ev_timer_stop(loop, &ro.timer);
    ro.last_reload_start -= 61.;
    run_until(loaded, 0);
    cr_expect_eq(ro.stats.reloads, 2);
    cr_expect(backend_names_has(&own.tab.owned, "back"));
    cr_expect_not(backend_names_has(&own.tab.owned, "theirs"));
}

Test(rollout, render_file_renders_what_slotsync_owns)
{
    char out[192], *text = NULL, *err = NULL;
    size_t len = 0;

    add_backend("web", true);
    add_backend("api", false);
    add_backend("theirs", false)->foreign = true;
    put_endpoint("api", "a", "127.0.0.1:8080");
    snprintf(out, sizeof(out), "%s/out.cfg", dir);
    cr_assert_eq(rollout_render_file(&cfg, own.tab.v, own.tab.n, cat, out, &err), 0, "%s", err);
    cr_assert_eq(file_read(out, 1 << 20, &text, &len), 0);
    cr_expect_not_null(strstr(text, "backend web"), "%s", text);
    cr_expect_not_null(strstr(text, "backend api"), "%s", text);
    cr_expect_not_null(strstr(text, "127.0.0.1:8080"), "%s", text);
    cr_expect_null(strstr(text, "theirs"), "%s", text);
    free(text);
    cr_expect(logged("out.cfg (2 backends)"));
}

/* A reload whose render holds no backend of ours (the HTTP frontend is
 * missing before any service exists, or every etcd-only service emptied)
 * writes a file without backends and reloads: it is not a failed write. */
Test(rollout, a_render_with_no_backend_of_ours_still_reloads)
{
    char *text = NULL;
    size_t len = 0;

    add_backend("gone", false); /* etcd-only and empty: left out */
    start();
    rollout_want(&ro, "HTTP frontend missing:", "/etc/haproxy/hosts.map");
    run_until(loaded, 0);
    cr_expect_eq(ro.stats.reloads, 1);
    cr_expect_eq(ro.stats.io_failures, 0);
    cr_expect_eq(runs("checks"), 1);
    cr_expect_eq(runs("reloads"), 1);
    cr_expect_not(logged("cannot write the services file"));
    cr_expect(logged("rendered 0 backends to "));
    cr_assert_eq(file_read(services, 1 << 20, &text, &len), 0);
    cr_expect_null(strstr(text, "backend gone"), "%s", text);
    free(text);
    cr_expect_eq(own.tab.owned.n, 0);
    cr_expect_eq(own.tab.n, 0, "dropped");
}
