/* rollout - the reload policy (rollout.h): generations, coalescing under
 * min_reload_interval_ms, what a render holds, the write backoff, and what
 * the end of a reload means; reload.c runs the check and the reload. */
#include <slotsync/rollout.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/dynback.h>
#include <slotsync/file.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/pool.h>
#include <slotsync/reload.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/runtime.h>
#include <slotsync/slots.h>
#include <slotsync/table.h>
#include <slotsync/timeouts.h>

#define MOD "sync"       /* the controller's lines, as they always were */
#define RETRY_JITTER 0.2 /* delays are spread over +-20% */
#define WRITE_RETRY_MIN_S 0.5
#define WRITE_RETRY_MAX_S 30.0
#define WRITE_FAILED "cannot write the services file"

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* Nothing to do: the owner's next rollout_maybe_start() starts it. */
}

int rollout_init(struct rollout *ro, struct ev_loop *loop, const struct config *cfg,
                 struct catalog *cat, struct table *tab, struct pool *pool, struct metrics *obs,
                 const struct rollout_ops *ops, void *arg)
{
    memset(ro, 0, sizeof(*ro));
    ro->loop = loop;
    ro->cfg = cfg;
    ro->cat = cat;
    ro->tab = tab;
    ro->pool = pool;
    ro->obs = obs;
    ro->ops = ops;
    ro->arg = arg;
    ev_timer_init(&ro->timer, on_timer, 0., 0.);
    ro->timer.data = ro;
    ro->reloader = reloader_new(loop, cfg->haproxy_bin, cfg->base_config, cfg->master_socket,
                                cfg->reload_command);
    if (!ro->reloader || !memprintf(&ro->candidate, "%s.new", cfg->services_file))
        return -ENOMEM;
    return 0;
}

void rollout_free(struct rollout *ro)
{
    if (ro->loop)
        ev_timer_stop(ro->loop, &ro->timer);
    reloader_free(ro->reloader);
    ro->reloader = NULL;
    runtime_free(ro->proc_rt);
    ro->proc_rt = NULL;
    backend_names_clear(&ro->rendering);
    if (ro->candidate)
        unlink(ro->candidate);
    free(ro->candidate);
    ro->candidate = NULL;
}

void rollout_set_config(struct rollout *ro, const struct config *cfg)
{
    ro->cfg = cfg;
}

/* The cause counted for a caller's why: its exact text, one entry per
 * text a caller passes (a prefix match once counted every slot reload as
 * "other"). A text not listed is "other". */
enum metrics_reload_cause rollout_cause(const char *why)
{
    static const struct {
        const char *why;
        enum metrics_reload_cause cause;
    } causes[] = {
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
    };

    for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++)
        if (strcmp(why, causes[i].why) == 0)
            return causes[i].cause;
    return METRICS_CAUSE_OTHER;
}

void rollout_want(struct rollout *ro, const char *why, const char *name)
{
    enum metrics_reload_cause cause = rollout_cause(why);

    if (ro->obs)
        ro->obs->reload_requests[cause]++;
    ro->desired_gen++;
    ro->want_cause = cause;
    struct log_field f[] = {
        {"event", "reload needed"},
        {"cause", why},
        {"service", name},
    };

    log_fields(LOG_LEVEL_INFO, MOD, f, sizeof(f) / sizeof(f[0]), "%s %s: a reload is needed", why,
               name);
}

bool rollout_pending(const struct rollout *ro)
{
    return ro->desired_gen != ro->loaded_gen && ro->desired_gen != ro->failed_gen;
}

static void reload_end(struct rollout *ro, bool ok)
{
    struct table *t = ro->tab;

    ro->reloading = false;
    if (ro->candidate)
        unlink(ro->candidate);
    pool_reload_ended(ro->pool, ok);
    ro->last_reload_failed = !ok;
    ro->write_retry = 0;
    if (!ok) {
        ro->failed_gen = ro->reload_gen;
        /* Slots added for the render HAProxy did not load: forget them. */
        ro->ops->resync(ro->arg);
        return;
    }
    ro->loaded_gen = ro->reload_gen;
    ro->stats.reloads++;
    /* The file HAProxy now runs declares the backends slotsync owns; a new
     * worker: any read still in flight is stale. */
    table_set_owned(t, &ro->rendering);
    ro->ops->loaded(ro->arg);
    /* Backends left out of the file HAProxy now runs: forget them, unless
     * endpoints came back meanwhile (then they want a backend again). */
    for (size_t i = 0; i < t->n;) {
        struct backend *b = t->v[i];
        struct catalog_service *svc = catalog_find(ro->cat, b->conf.name);

        if (b->left_out && svc && svc->n_endpoints)
            rollout_want(ro, "endpoints came back for", b->conf.name);
        if (b->left_out && !(svc && svc->n_endpoints)) {
            table_drop(t, b);
        } else {
            i++;
        }
    }
    ro->ops->resync(ro->arg);
}

/* The files could not be written, the check not started or HAProxy's master
 * not reached: an error of this machine (a full or read-only disk, no
 * memory, no process slot, a socket away), not HAProxy's verdict on the
 * config. The same generation is tried again with backoff until it goes
 * through; one error line, then "still" lines at a slowing cadence. what
 * says which step failed, why the error. */
static void reload_io_failed(struct rollout *ro, const char *what, const char *why)
{
    double now = clock_mono(), elapsed = 0;
    double jitter = jitter_around(RETRY_JITTER);

    ro->reloading = false;
    if (ro->candidate)
        unlink(ro->candidate);
    pool_reload_ended(ro->pool, false);
    ro->stats.io_failures++;
    ro->write_retry = ro->write_retry < WRITE_RETRY_MIN_S ? WRITE_RETRY_MIN_S : ro->write_retry * 2;
    if (ro->write_retry > WRITE_RETRY_MAX_S)
        ro->write_retry = WRITE_RETRY_MAX_S;
    if (log_outage_begin(&ro->write_outage, now))
        log_error(MOD, "%s: %s; keeping the running config, retrying with backoff", what, why);
    else if (log_outage_due(&ro->write_outage, now, &elapsed))
        log_error(MOD, "%s, still after %.0f s: %s", what, elapsed, why);
    else
        log_debug(MOD, "%s, still: %s (retry in %.1f s)", what, why, ro->write_retry);
    ev_timer_stop(ro->loop, &ro->timer);
    ev_timer_set(&ro->timer, ro->write_retry * jitter, 0.);
    ev_timer_start(ro->loop, &ro->timer);
    /* Slots added for the render HAProxy did not load: forget them. */
    ro->ops->resync(ro->arg);
}

/* A reload went through: whatever failed before works again. */
static void io_succeeded(struct rollout *ro)
{
    double len = log_outage_end(&ro->write_outage, clock_mono());

    if (len >= 0)
        log_info(MOD, "services file written and HAProxy reloaded again after %.0f s", len);
}

static void on_reload_done(int err, const char *errtext, void *arg)
{
    struct rollout *ro = arg;

    if (err < 0) {
        ro->stats.reload_failures++;
        if (err != -EIO) {
            /* The master was not reached or did not answer: no verdict. */
            reload_io_failed(ro, "cannot reload HAProxy", errtext ? errtext : strerror(-err));
            return;
        }
        struct log_field f[] = {
            {"event", "reload end"},
            {"result", "failed"},
            {"reason", errtext ? errtext : strerror(-err)},
        };

        log_fields(LOG_LEVEL_ERROR, MOD, f, sizeof(f) / sizeof(f[0]),
                   "reload failed: %s; runtime changes keep going to the running worker",
                   errtext ? errtext : strerror(-err));
        reload_end(ro, false);
        return;
    }
    io_succeeded(ro);
    char ms[32], nth[32];

    ro->stats.last_reload_s = clock_mono() - ro->last_reload_start;
    ro->stats.last_reload_servers = ro->reload_servers;
    snprintf(ms, sizeof(ms), "%.0f", ro->stats.last_reload_s * 1e3);
    snprintf(nth, sizeof(nth), "%llu", ro->stats.reloads + 1);
    struct log_field f[] = {
        {"event", "reload end"},
        {"result", "ok"},
        {"duration_ms", ms},
        {"reload", nth},
    };

    log_fields(LOG_LEVEL_INFO, MOD, f, sizeof(f) / sizeof(f[0]),
               "HAProxy reloaded in %s ms (reload %s)", ms, nth);
    reload_end(ro, true);
}

static void on_check_done(int err, const char *errtext, void *arg)
{
    struct rollout *ro = arg;
    const char *path = ro->cfg->services_file;
    int r;

    if (err < 0) {
        ro->stats.check_failures++;
        struct log_field f[] = {
            {"event", "reload end"},
            {"result", "rejected"},
            {"reason", errtext ? errtext : strerror(-err)},
        };

        log_fields(LOG_LEVEL_ERROR, MOD, f, sizeof(f) / sizeof(f[0]),
                   "haproxy -c rejected the new services file, keeping the running one: %s",
                   errtext ? errtext : strerror(-err));
        reload_end(ro, false);
        return;
    }
    if (rename(ro->candidate, path) < 0) {
        char *why = NULL;

        memprintf(&why, "rename %s to %s: %s", ro->candidate, path, strerror(errno));
        reload_io_failed(ro, WRITE_FAILED, why ? why : "rename failed");
        free(why);
        return;
    }
    r = reloader_reload(ro->reloader, RELOAD_TIMEOUT_S, on_reload_done, ro);
    if (r == -ENOTSUP) {
        log_error(MOD, "cannot reload HAProxy: neither haproxy.master_socket nor "
                       "haproxy.reload_command is set");
        ro->stats.reload_failures++;
        reload_end(ro, false);
    } else if (r < 0) {
        ro->stats.reload_failures++;
        reload_io_failed(ro, "cannot reload HAProxy", strerror(-r));
    }
}

/* Render every backend that should exist into the candidate file and the
 * host map, then check the candidate. */
static void start_reload(struct rollout *ro)
{
    size_t n_be = ro->tab->n;
    struct backend **be = ro->tab->v;
    struct render_backend *rb = calloc(n_be ? n_be : 1, sizeof(*rb));
    struct host_route *routes = NULL;
    size_t n = 0, n_routes = 0, len = 0;
    char *text = NULL, *err = NULL;
    int r = -ENOMEM;
    bool io = true; /* a failure of this machine, not of the config */

    ro->reloading = true;
    pool_reload_started(ro->pool);
    ro->reload_gen = ro->desired_gen;
    ro->last_reload_start = clock_mono();
    ro->reload_cause = ro->want_cause;
    ro->reload_servers = 0;
    if (!rb)
        goto fail;
    r = 0; /* a render with no backend of ours is still a render */
    for (size_t i = 0; i < n_be; i++) {
        struct backend *b = be[i];
        struct catalog_service *svc = catalog_find(ro->cat, b->conf.name);
        size_t endpoints = svc ? svc->n_endpoints : 0;
        size_t want = b->want_slots > b->slots.n ? b->want_slots : b->slots.n;

        b->left_out = !b->configured && !endpoints && backend_ours(b);
        if (b->left_out || !backend_ours(b))
            continue; /* dropped at this render, or not ours */
        /* The configured count, or more; never fewer than HAProxy has. */
        if (want < (size_t)b->conf.opt.slots)
            want = (size_t)b->conf.opt.slots;
        want = backend_fit_slots(b, want, endpoints);
        if ((r = backend_resize(b, want)) < 0 || (r = slots_assign(&b->slots, svc, b->have)) < 0)
            goto fail;
        /* This reload accounts for its absence: if it fails, only a new
         * change tries again. */
        if (!b->present)
            b->missing_noted = true;
        rb[n++] = (struct render_backend){b->svc, &b->slots, NULL};
        ro->reload_servers += b->slots.n;
    }
    backend_names_clear(&ro->rendering);
    for (size_t i = 0; i < n && r == 0; i++)
        r = backend_names_add(&ro->rendering, rb[i].svc->name);
    backend_names_sort(&ro->rendering);
    if (r < 0)
        goto fail;
    r = render_services(ro->cfg, rb, n, &text, &len, &err);
    io = r != -EINVAL;
    if (r == 0 && ro->dyn_defaults)
        r = render_append_dynamic_defaults(ro->cfg, &text, &len);
    if (r == 0 && ro->cfg->http_bind.set) {
        char *map = NULL;
        size_t mlen = 0;

        r = render_host_routes(ro->cfg, rb, n, &routes, &n_routes);
        if (r == 0)
            r = render_hosts_map(routes, n_routes, &map, &mlen);
        /* HAProxy reads the map only when it starts: writing it now changes
         * nothing until the reload that loads the matching services file. */
        if (r == 0)
            r = file_write_atomic(ro->cfg->hosts_map, map, mlen, &err);
        free(map);
    }
    if (r == 0)
        r = file_write_atomic(ro->candidate, text, len, &err);
    if (r == 0)
        r = reloader_check(ro->reloader, ro->candidate, on_check_done, ro);
    if (r < 0)
        goto fail;
    log_info(MOD, "rendered %zu backends to %s; checking it", n, ro->candidate);
    goto out;
fail:
    if (io) {
        reload_io_failed(ro, WRITE_FAILED, err ? err : strerror(-r));
        goto out;
    }
    log_error(MOD, "cannot render the services file: %s", err ? err : strerror(-r));
    reload_end(ro, false);
out:
    free(err);
    free(text);
    free(routes);
    free(rb);
}

void rollout_maybe_start(struct rollout *ro, bool ready)
{
    double wait;

    if (!rollout_pending(ro) || ro->reloading || !ready || ev_is_active(&ro->timer))
        return;
    if (!reloader_can_reload(ro->reloader)) {
        if (ro->failed_gen != ro->desired_gen)
            log_error(MOD, "HAProxy needs a reload but neither haproxy.master_socket nor "
                           "haproxy.reload_command is set");
        ro->failed_gen = ro->desired_gen;
        return;
    }
    /* At most one reload per min_reload_interval_ms: bursts coalesce. */
    wait = ro->last_reload_start + ro->cfg->min_reload_interval_ms / 1e3 - clock_mono();
    if (ro->stats.reloads + ro->stats.reload_failures + ro->stats.check_failures && wait > 0) {
        ev_timer_set(&ro->timer, wait, 0.);
        ev_timer_start(ro->loop, &ro->timer);
        return;
    }
    start_reload(ro);
}

bool rollout_can_start(const struct rollout *ro)
{
    double wait = ro->last_reload_start + ro->cfg->min_reload_interval_ms / 1e3 - clock_mono();

    if (ro->reloading || ev_is_active(&ro->timer) || ro->last_reload_failed ||
        !reloader_can_reload(ro->reloader))
        return false;
    return !(ro->stats.reloads + ro->stats.reload_failures + ro->stats.check_failures) || wait <= 0;
}

int rollout_render_file(const struct config *cfg, struct backend **v, size_t n, struct catalog *cat,
                        const char *out_path, char **errmsg)
{
    struct render_backend *rb = calloc(n ? n : 1, sizeof(*rb));
    const char *path = out_path ? out_path : cfg->services_file;
    struct host_route *routes = NULL;
    size_t n_routes = 0, len = 0, n_rb = 0;
    char *text = NULL, *map = NULL;
    int r = -ENOMEM;

    if (!rb)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct backend *b = v[i];
        struct catalog_service *svc = catalog_find(cat, b->conf.name);

        if (!backend_ours(b))
            continue;
        r = backend_resize(b, backend_fit_slots(b, 0, svc ? svc->n_endpoints : 0));
        if (r < 0)
            goto out;
        r = slots_assign(&b->slots, svc, NULL);
        if (r < 0)
            goto out;
        rb[n_rb].svc = b->svc;
        rb[n_rb++].slots = &b->slots;
    }
    /* The map goes beside the services file; -o writes the file only. */
    if (cfg->http_bind.set && !out_path) {
        size_t mlen = 0;

        r = render_host_routes(cfg, rb, n_rb, &routes, &n_routes);
        if (r == 0)
            r = render_hosts_map(routes, n_routes, &map, &mlen);
        if (r == 0)
            r = file_write_atomic(cfg->hosts_map, map, mlen, errmsg);
        if (r < 0)
            goto out;
    }
    r = render_services(cfg, rb, n_rb, &text, &len, errmsg);
    if (r == 0 && render_base_declares_dynamic(cfg))
        r = render_append_dynamic_defaults(cfg, &text, &len);
    if (r == 0 && out_path)
        r = file_write_output(path, text, len, errmsg);
    else if (r == 0)
        r = file_write_atomic(path, text, len, errmsg);
    if (r == 0) {
        char q[LOG_QUOTE_MAX];

        /* -o comes from the command line: escaped like any untrusted text */
        log_info(MOD, "wrote %s (%zu backends)",
                 strcmp(path, "-") ? log_quote(path, strlen(path), q, sizeof(q))
                                   : "standard output",
                 n_rb);
    }
out:
    free(rb);
    free(text);
    free(map);
    free(routes);
    return r;
}

static void on_haproxy_proc(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                            void *arg)
{
    struct rollout *ro = arg;
    unsigned long reloads = 0, failed = 0;
    long uptime = -1;

    if (err < 0 || !raw || reload_parse_show_proc(raw, &reloads, &failed) < 0 ||
        reload_parse_worker_uptime(raw, &uptime) < 0) {
        log_info(MOD,
                 "master socket %s: HAProxy's reloads not read (%s): the last reload is "
                 "shown from slotsync's own from now on",
                 ro->cfg->master_socket,
                 err < 0 ? runtime_strerror(err) : "unexpected reply to show proc");
        return;
    }
    ro->haproxy_reloads = reloads;
    if (reloads > 0) {
        /* the monotonic clock, as every other age (issue 19 item 9) */
        ro->haproxy_last_reload_at = clock_mono() - (double)uptime;
        if (ro->haproxy_last_reload_at <= 0)
            ro->haproxy_last_reload_at = 1e-6;
        log_info(MOD,
                 "HAProxy has been reloaded %lu %s (%lu failed) since it started, the last "
                 "%ld s ago (show proc)",
                 reloads, LOG_PLURAL(reloads, "time", "times"), failed, uptime);
    }
}

void rollout_read_haproxy_reloads(struct rollout *ro)
{
    if (!ro->cfg->master_socket)
        return;
    ro->proc_rt = runtime_new(ro->loop, ro->cfg->master_socket, 5);
    if (!ro->proc_rt ||
        runtime_send_raw(ro->proc_rt, PLAN_MASTER_SHOW_PROC, on_haproxy_proc, ro) < 0)
        log_info(MOD, "master socket %s: HAProxy's reloads not read", ro->cfg->master_socket);
}
