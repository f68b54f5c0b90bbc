/* controller - the daemon's pipeline, wired on one libev loop: set up
 * every module, start the etcd sync and the loop's watchers, and read the
 * config again on SIGHUP (hup.h decides what it changes); render mode lists
 * etcd once and renders. The etcd sync's callbacks are in controller_etcd.c,
 * the loop's ev_prepare and HAProxy's side in controller_haproxy.c, what
 * the daemon reports in controller_report.c (controller-int.h). */
#include <slotsync/controller.h>
#include <slotsync/controller-int.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/admin.h>
#include <slotsync/apply.h>
#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/config.h>
#include <slotsync/dnshosts.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/fdlimit.h>
#include <slotsync/file.h>
#include <slotsync/http.h>
#include <slotsync/hup.h>
#include <slotsync/dynback.h>
#include <slotsync/livefile.h>
#include <slotsync/names.h>
#include <slotsync/pool.h>
#include <slotsync/rollout.h>
#include <slotsync/secret.h>
#include <slotsync/log.h>
#include <slotsync/mem.h>
#include <slotsync/notify.h>
#include <slotsync/table.h>
#include <slotsync/tls.h>

#define MOD CONTROLLER_MOD
#define BASE_CONFIG_MAX (256u << 20)

/* ---- ownership: which proxies are slotsync's ---- */

/* The proxy names base_config declares (backend_proxy_names()). A missing
 * file declares nothing. Reads the whole file: called at start and on
 * SIGHUP only. */
static int read_proxy_names(const char *path, struct names *be, struct names *fe,
                            bool *base_defaults)
{
    char *text = NULL;
    size_t len = 0;
    int r = file_read(path, BASE_CONFIG_MAX, &text, &len);

    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    r = backend_proxy_names(text, len, be, fe);
    if (r == 0 && base_defaults)
        *base_defaults = names_defaults_declared(text, len, DYNBACK_BASE_DEFAULTS);
    free(text);
    return r;
}

/* Whether base_config declares the named defaults that run-time backends
 * inherit from (dynback.h): the services file then carries theirs. */
static void set_base_defaults(struct ctl *c, bool declared)
{
    c->base_defaults = declared;
    c->ap.dyn.base_declares = declared;
    c->ro.dyn_defaults = declared;
    c->live.dyn_defaults = declared;
}

/* Re-read base_config's proxy names. Logs and keeps the old ones on error. */
static void load_base_names(struct ctl *c)
{
    struct names be = {0}, fe = {0};
    bool base_defaults = false;
    int r;

    if (!c->cfg->base_config) {
        set_base_defaults(c, false);
        table_set_base_names(&c->tab, &be, &fe);
        return;
    }
    r = read_proxy_names(c->cfg->base_config, &be, &fe, &base_defaults);
    if (r < 0) {
        log_warn(MOD, "haproxy.base_config %s: cannot read its proxy names: %s",
                 c->cfg->base_config, strerror(-r));
        backend_names_clear(&be);
        backend_names_clear(&fe);
        return;
    }
    table_set_base_names(&c->tab, &be, &fe);
    set_base_defaults(c, base_defaults);
}

static void on_resync_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctl *c = w->data;

    c->ap.resync_wanted = true;
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info(MOD, "signal %d: stopping (HAProxy is left as it is)", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void on_log_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    log_flush(false);
    mem_trim_owed(); /* a trim a large buffer owes, rate-limited (mem.h) */
}

/* A SIGHUP changed b's slot count from old: say what happens. */
static void note_slots(struct backend *b, int old)
{
    int now = b->conf.opt.slots;

    if (now == old)
        return;
    b->dirty = true;
    if (now < old)
        log_info(MOD,
                 "slots lowered for %s (%d -> %d): HAProxy keeps its %zu slots until slotsync "
                 "restarts with a freshly rendered file; no filled slot is ever dropped",
                 b->conf.name, old, now, b->slots.n);
    else
        log_info(MOD, "slots raised for %s (%d -> %d)", b->conf.name, old, now);
}

/* Carry out one of SIGHUP's actions (hup.h) for nc. */
static void hup_act(struct ctl *c, const struct config *nc, const struct hup_action *a)
{
    struct backend *b;
    int old = 0;

    switch (a->kind) {
    case HUP_ADD:
        if (!(b = table_add(&c->tab, a->sc, true)))
            log_error(MOD, "SIGHUP: out of memory");
        else if (table_settle(&c->tab, b))
            rollout_want(&c->ro, "new service in the config:", a->service);
        return;
    case HUP_RECONFIGURE:
        if (!(b = table_find(&c->tab, a->service)))
            return;
        backend_reconfigure(b, a->sc, &nc->defaults, &old);
        if (a->reconf == BACKEND_RECONF_OPTIONS)
            rollout_want(&c->ro, "options changed for", b->conf.name);
        else if (a->reconf == BACKEND_RECONF_LEFT)
            rollout_want(&c->ro, "service left the config:", b->conf.name);
        else if (a->reconf == BACKEND_RECONF_DEFAULTS)
            rollout_want(&c->ro, "defaults changed for", b->conf.name);
        else if (a->reconf == BACKEND_RECONF_SLOTS)
            note_slots(b, old);
        return;
    case HUP_ADMIN_KEPT:
        log_warn(MOD, "SIGHUP: admin.* changed: the admin endpoint keeps its address, files and "
                      "protected paths until a restart (the files themselves were read again)");
        return;
    case HUP_LOG_FORMAT_KEPT:
        log_warn(MOD, "SIGHUP: log_format changed: the log keeps its format until a restart");
        return;
    case HUP_HTTP_FRONTEND:
        rollout_want(&c->ro, "http_frontend changed:", nc->hosts_map);
        return;
    case HUP_REFUSE:
        return;
    }
}

static int ctl_set_auth(struct ctl *c, const struct config *cfg, char **errmsg);

/* SIGHUP: read the config file again. What HAProxy is built from (services,
 * defaults, the HTTP frontend) is applied; where slotsync connects to is
 * not, and a file that changes it is refused as a whole. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct ctl *c = w->data;
    struct config *nc = calloc(1, sizeof(*nc));
    const struct config *oc = c->cfg;
    char *err = NULL;
    struct hup_plan plan;

    /* The TLS files first: a rotated certificate is taken even when the
     * config file itself does not change or is refused. */
    if (tls_conf_set(&oc->etcd_tls)) {
        if (http_client_set_tls(c->http, &oc->etcd_tls, &err) < 0)
            log_error(MOD, "SIGHUP: etcd TLS files not reloaded, keeping the ones in use: %s",
                      err ? err : "out of memory");
        else
            log_info(MOD, "SIGHUP: etcd TLS files read again");
        free(err);
        err = NULL;
    }
    if (c->admin && (oc->admin.token_file || oc->admin.tls_cert_file)) {
        if (admin_reload(c->admin, &err) < 0)
            log_error(MOD,
                      "SIGHUP: admin token and TLS files not reloaded, keeping the ones in "
                      "use: %s",
                      err ? err : "out of memory");
        else
            log_info(MOD, "SIGHUP: admin token and TLS files read again");
        free(err);
        err = NULL;
    }
    if (oc->etcd_username) {
        if (ctl_set_auth(c, oc, &err) < 0)
            log_error(MOD, "SIGHUP: etcd password not read again, keeping the one in use: %s",
                      err ? err : "out of memory");
        free(err);
        err = NULL;
    }
    if (!nc || !c->load_config || c->load_config(nc, &err, c->load_arg) < 0) {
        log_error(MOD, "SIGHUP: config not reloaded: %s", err ? err : "out of memory");
        free(err);
        free(nc);
        return;
    }
    if (hup_decide(oc, nc, &c->tab, &plan) < 0) {
        log_error(MOD, "SIGHUP: config not reloaded: out of memory");
        config_free(nc);
        free(nc);
        return;
    }
    if (plan.n && plan.v[0].kind == HUP_REFUSE) {
        if (plan.fields[0])
            log_error(MOD, "SIGHUP: config not reloaded: %s changed, which needs a restart",
                      plan.fields);
        else
            log_error(MOD, "SIGHUP: config not reloaded: a field that needs a restart changed");
        hup_plan_free(&plan);
        config_free(nc);
        free(nc);
        return;
    }
    for (size_t i = 0; i < plan.n; i++)
        hup_act(c, nc, &plan.v[i]);
    log_set_level((enum log_level)nc->log_level);
    c->resync_timer.repeat = nc->resync_interval_s;
    ev_timer_again(c->loop, &c->resync_timer);
    c->cfg = nc;
    c->tab.cfg = nc;
    apply_set_config(&c->ap, nc);
    pool_set_config(&c->pool, nc);
    rollout_set_config(&c->ro, nc);
    livefile_set_config(&c->live, nc);
    c->live_changed = true;
    if (c->owned_cfg) {
        config_free(c->owned_cfg);
        free(c->owned_cfg);
    }
    c->owned_cfg = nc;
    /* The base config may have changed too: settle every service again. */
    load_base_names(c);
    table_settle_again(&c->tab, controller__want_reload, c);
    /* new caps, or a waiting service the config names now: taken on */
    controller__set_caps(c);
    if (c->listed && !c->listing)
        controller__collect_dirty(c);
    c->ap.map_dirty = true;
    c->ap.resync_wanted = true;
    log_info(MOD, "SIGHUP: config reloaded%s", plan.changed ? "" : " (no backend changed)");
    hup_plan_free(&plan);
}

/* ---- render mode ---- */

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctl *c = w->data;

    c->render_err = -ETIMEDOUT;
    memprintf(&c->render_errmsg, "etcd did not answer within %.0f s%s%s%s", w->repeat,
              c->etcd_last_error ? " (last error: " : "",
              c->etcd_last_error ? c->etcd_last_error : "", c->etcd_last_error ? ")" : "");
    ev_break(loop, EVBREAK_ALL);
}

/* ---- setup and teardown ---- */

#define SERVICES_FILE_MAX (256u << 20)

static void on_stale_removed(const char *file, void *arg)
{
    log_info(MOD, "removed %s, left by a writer that died", file);
}

/* Before the loop runs: remove what a killed slotsync left beside the
 * services file (its candidate, half-written temp files), and take back the
 * backends it rendered for services etcd alone named, so that a restart
 * adopts them from HAProxy (no reload) and empties those whose keys went
 * away meanwhile. Only a file slotsync rendered is read that way. */
static int start_from_services_file(struct ctl *c, char **errmsg)
{
    const char *paths[] = {c->cfg->services_file, c->ro.candidate, c->cfg->hosts_map};
    char *text = NULL;
    size_t len = 0;
    int r;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        file_remove_stale_temps(paths[i], on_stale_removed, c);
    if (unlink(c->ro.candidate) == 0)
        log_info(MOD, "removed %s, a candidate left by an earlier run", c->ro.candidate);
    r = file_read(c->cfg->services_file, SERVICES_FILE_MAX, &text, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        log_warn(MOD, "cannot read %s: %s (backends of etcd-only services are added again)",
                 c->cfg->services_file, strerror(-r));
        return 0;
    }
    r = table_take_rendered(&c->tab, c->cfg->services_file, text, len, controller__want_reload, c);
    free(text);
    if (r < 0)
        memprintf(errmsg, "out of memory");
    return r;
}

static void ctl_destroy(struct ctl *c)
{
    admin_free(c->admin);
    free(c->recent);
    free(c->obs_backends);
    if (c->loop) {
        ev_prepare_stop(c->loop, &c->flush);
        ev_timer_stop(c->loop, &c->resync_timer);
        ev_timer_stop(c->loop, &c->deadline);
        ev_signal_stop(c->loop, &c->sig_term);
        ev_signal_stop(c->loop, &c->sig_int);
        ev_signal_stop(c->loop, &c->sig_hup);
        ev_signal_stop(c->loop, &c->sig_usr1);
        ev_timer_stop(c->loop, &c->log_timer);
    }
    notify_free(c->notify);
    dnshosts_clear(&c->dns);
    etcd_sync_stop(c->sync);
    etcd_client_free(c->etcd);
    http_client_free(c->http);
    apply_free(&c->ap);
    pool_free(&c->pool);
    rollout_free(&c->ro);
    livefile_free(&c->live);
    catalog_free(c->cat);
    table_free(&c->tab);
    if (c->owned_cfg) {
        config_free(c->owned_cfg);
        free(c->owned_cfg);
    }
    free(c->render_errmsg);
    free(c->etcd_last_error);
}

/* etcd.username with the first line of etcd.password_file, read now (at
 * start and on SIGHUP). */
static int ctl_set_auth(struct ctl *c, const struct config *cfg, char **errmsg)
{
    return secret_set_etcd_auth(c->etcd, cfg, errmsg);
}

static int ctl_init(struct ctl *c, const struct config *cfg, bool render_only, char **errmsg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->render_only = render_only;
    table_init(&c->tab, cfg, !render_only);
    c->loop = EV_DEFAULT;
    if (!c->loop) {
        memprintf(errmsg, "cannot create the event loop");
        return -ENOMEM;
    }
    c->cat = catalog_new(cfg->etcd_prefix);
    c->http = http_client_new(c->loop);
    if (!c->cat || !c->http)
        goto oom;
    controller__set_caps(c);
    if (tls_conf_set(&cfg->etcd_tls)) {
        int r = http_client_set_tls(c->http, &cfg->etcd_tls, errmsg);

        if (r < 0)
            return r;
    }
    /* Ownership: the configured services, and the backends of the services
     * file slotsync (or "slotsync render") wrote, which HAProxy runs: those
     * are read by start_from_services_file(). */
    load_base_names(c);
    for (size_t i = 0; i < cfg->n_services; i++) {
        struct backend *b = table_add(&c->tab, &cfg->services[i], true);

        if (!b)
            goto oom;
        table_settle(&c->tab, b);
    }
    c->etcd = etcd_client_new(c->loop, c->http, cfg->etcd_endpoints, cfg->n_etcd_endpoints);
    if (!c->etcd)
        goto oom;
    etcd_client_set_transport(c->etcd, (enum etcd_transport)cfg->etcd_transport);
    if (cfg->etcd_username) {
        int r = ctl_set_auth(c, cfg, errmsg);

        if (r < 0)
            return r;
    }
    if (!render_only) {
        int r = apply_init(&c->ap, c->loop, cfg, c->cat, &c->tab, &c->obs, &controller__apply_ops,
                           c, errmsg);

        if (r < 0)
            return r;
        /* until HAProxy says otherwise (an "add backend" refused) */
        c->ap.dyn.running_has_defaults = true;
        if (pool_init(&c->pool, c->loop, cfg, &c->tab, &controller__pool_ops, c) < 0)
            goto oom;
        c->ap.spares = &c->pool.sp;
        if (rollout_init(&c->ro, c->loop, cfg, c->cat, &c->tab, &c->pool, &c->obs,
                         &controller__rollout_ops, c) < 0)
            goto oom;
        livefile_init(&c->live, c->loop, cfg, c->cat, &c->tab);
        set_base_defaults(c, c->base_defaults); /* read before the modules were set up */
    }
    ev_prepare_init(&c->flush, controller__on_prepare);
    c->flush.data = c;
    ev_timer_init(&c->resync_timer, on_resync_timer, cfg->resync_interval_s,
                  cfg->resync_interval_s);
    c->resync_timer.data = c;
    ev_timer_init(&c->deadline, on_deadline, 0., 0.);
    c->deadline.data = c;
    ev_signal_init(&c->sig_term, on_stop_signal, SIGTERM);
    ev_signal_init(&c->sig_int, on_stop_signal, SIGINT);
    ev_signal_init(&c->sig_hup, on_hup, SIGHUP);
    c->sig_hup.data = c;
    ev_signal_init(&c->sig_usr1, controller__on_dump_signal, SIGUSR1);
    c->sig_usr1.data = c;
    ev_timer_init(&c->log_timer, on_log_timer, 1., 1.);
    c->etcd_since = clock_mono();
    return 0;
oom:
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

/* Descriptors: the soft limit up to the hard one, said in the log (issue
 * 20: admin clients, etcd and HAProxy share them). */
static void raise_nofile(void)
{
    struct fdlimit fl;

    if (fdlimit_raise(&fl) < 0)
        log_warn(MOD, "file descriptors: cannot raise the soft limit %lu to the hard limit %lu: %s",
                 fl.soft_before, fl.hard, strerror(-fl.err));
    else if (fl.raised)
        log_info(MOD, "file descriptors: soft limit raised from %lu to the hard limit %lu",
                 fl.soft_before, fl.soft);
    else
        log_info(MOD, "file descriptors: limit %lu (soft = hard)", fl.soft);
}

/* A warning for an admin endpoint off loopback with paths nobody guards. */
static void admin_exposure_warnings(const struct config *cfg)
{
    const struct listen_addr *l = &cfg->admin_listen;
    bool loopback = strncmp(l->host, "127.", 4) == 0 || strcmp(l->host, "::1") == 0;

    if (loopback)
        return;
    if (!cfg->admin.token_file && !cfg->admin.tls_client_ca_file)
        log_warn(MOD,
                 "admin.listen %s is not loopback and neither admin.token_file nor "
                 "admin.tls.client_ca_file is set: /status, /metrics and / are open to "
                 "whoever reaches it",
                 l->host);
    else if (cfg->admin.token_file && !cfg->admin.tls_cert_file)
        log_warn(MOD,
                 "admin.listen %s is not loopback and admin.tls is not set: the bearer "
                 "token travels in clear text",
                 l->host);
}

int controller_run(const struct config *cfg,
                   int (*load_config)(struct config *out, char **errmsg, void *arg), void *arg,
                   char **errmsg)
{
    struct ctl c;
    int r;

    raise_nofile();
    r = ctl_init(&c, cfg, false, errmsg);
    if (r < 0 || (r = start_from_services_file(&c, errmsg)) < 0)
        goto out;
    c.load_config = load_config;
    c.load_arg = arg;
    c.sync = etcd_sync_start(c.etcd, cfg->etcd_prefix, &controller__sync_ops, &c);
    if (!c.sync) {
        memprintf(errmsg, "cannot start the etcd sync");
        r = -ENOMEM;
        goto out;
    }
    etcd_sync_set_check_interval(c.sync, cfg->etcd_watch_check_interval_s);
    ev_prepare_start(c.loop, &c.flush);
    ev_timer_start(c.loop, &c.resync_timer);
    ev_signal_start(c.loop, &c.sig_term);
    ev_signal_start(c.loop, &c.sig_int);
    ev_signal_start(c.loop, &c.sig_hup);
    ev_signal_start(c.loop, &c.sig_usr1);
    ev_timer_start(c.loop, &c.log_timer);
    c.notify = notify_new(c.loop);
    log_info(MOD, "started: %zu services, etcd prefix %s, runtime socket %s", cfg->n_services,
             cfg->etcd_prefix, cfg->runtime_socket);
    rollout_read_haproxy_reloads(&c.ro);
    if (cfg->admin_listen.set) {
        c.recent = calloc(1, sizeof(*c.recent));
        c.ap.recent = c.recent;
        c.admin = c.recent ? admin_start(c.loop, &cfg->admin_listen, cfg->runtime_socket,
                                         &cfg->admin, &controller__admin_ops, &c, errmsg)
                           : NULL;
        if (!c.admin) {
            if (!c.recent)
                memprintf(errmsg, "out of memory");
            r = -EADDRNOTAVAIL;
            goto out;
        }
        admin_exposure_warnings(cfg);
        log_info(MOD, "admin endpoint on %s://%s%s%s:%u/ (/metrics /status /healthz /readyz)",
                 cfg->admin.tls_cert_file ? "https" : "http", cfg->admin_listen.ipv6 ? "[" : "",
                 cfg->admin_listen.host, cfg->admin_listen.ipv6 ? "]" : "", admin_port(c.admin));
    }
    ev_run(c.loop, 0);
    controller__log_stopped(&c);
out:
    ctl_destroy(&c);
    return r;
}

int controller_render(const struct config *cfg, const char *out_path, double timeout_s,
                      char **errmsg)
{
    struct ctl c;
    int r = ctl_init(&c, cfg, true, errmsg);

    if (r < 0)
        goto out;
    c.render_path = out_path;
    c.render_err = -EINPROGRESS;
    c.sync = etcd_sync_start(c.etcd, cfg->etcd_prefix, &controller__sync_ops, &c);
    if (!c.sync) {
        memprintf(errmsg, "cannot start the etcd sync");
        r = -ENOMEM;
        goto out;
    }
    ev_timer_set(&c.deadline, timeout_s, 0.);
    c.deadline.repeat = timeout_s;
    ev_timer_start(c.loop, &c.deadline);
    ev_signal_start(c.loop, &c.sig_term);
    ev_signal_start(c.loop, &c.sig_int);
    ev_run(c.loop, 0);
    r = c.render_err;
    if (r == -EINPROGRESS)
        r = -EINTR;
    if (r < 0 && c.render_errmsg)
        memprintf(errmsg, "%s", c.render_errmsg);
    else if (r < 0)
        memprintf(errmsg, "%s", strerror(-r));
out:
    ctl_destroy(&c);
    return r;
}
