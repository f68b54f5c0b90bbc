/* controller - the daemon's pipeline, wired on one libev loop: the etcd
 * sync's keys go to feed (catalog), the loop's ev_prepare hands HAProxy's
 * side to apply (resyncs, batches, refusals) and to rollout (when to reload,
 * what the render holds), and the controller keeps the backend table, who
 * owns which proxy name, SIGHUP and render mode. The admin endpoint and
 * SIGUSR1 get its modules' state gathered for report.h. */
#include <slotsync/controller.h>

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
#include <slotsync/etcd.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/feed.h>
#include <slotsync/fdlimit.h>
#include <slotsync/file.h>
#include <slotsync/http.h>
#include <slotsync/dnshosts.h>
#include <slotsync/dynback.h>
#include <slotsync/secret.h>
#include <slotsync/livefile.h>
#include <slotsync/log.h>
#include <slotsync/mem.h>
#include <slotsync/notify.h>
#include <slotsync/plan.h>
#include <slotsync/pool.h>
#include <slotsync/reload.h>
#include <slotsync/render.h>
#include <slotsync/report.h>
#include <slotsync/bulk.h>
#include <slotsync/rollout.h>
#include <slotsync/runtime.h>

#define MOD "sync"
#define BASE_CONFIG_MAX (256u << 20)

struct ctl {
    struct ev_loop *loop;
    const struct config *cfg;
    struct http_client *http;
    struct etcd_client *etcd;
    struct etcd_sync *sync;
    struct catalog *cat;
    struct backend **backends; /* sorted by name */
    size_t n_backends;
    struct config *owned_cfg; /* a config loaded on SIGHUP */
    int (*load_config)(struct config *out, char **errmsg, void *arg);
    void *load_arg;
    struct rollout ro; /* reloads: when, what is rendered, retries (rollout.h) */
    /* ownership: see docs/DESIGN.md, "Which proxies slotsync owns" */
    struct names owned;   /* backends of the services file HAProxy runs */
    struct names base_be; /* backend/listen names of base_config */
    struct names base_fe; /* frontend/listen names of base_config */
    struct names proxies; /* every backend HAProxy listed at the last resync */
    bool proxies_known;   /* proxies holds a "show backend" reply */
    bool base_defaults;   /* base_config declares DYNBACK_BASE_DEFAULTS (dynback.h) */
    struct apply ap;      /* HAProxy's state read, batches sent (apply.h) */
    struct pool pool;     /* spare backends: new services without a reload (pool.h) */
    /* the services file and Host map kept current between reloads (livefile.h) */
    struct livefile live;
    unsigned long long live_sig; /* batches, resyncs, reloads, bindings at the last look */
    bool live_changed;           /* a key changed since the last touch */
    bool live_known;             /* HAProxy's state has been read once: present is known */
    ev_prepare flush;
    ev_timer resync_timer, deadline;
    ev_signal sig_term, sig_int, sig_hup;
    ev_signal sig_usr1;    /* state dump */
    ev_timer log_timer;    /* prints the log's rate-limit summaries */
    struct notify *notify; /* systemd readiness, status, watchdog */
    struct dnshosts dns;   /* the "dns" hosts file */
    bool listed;           /* a complete etcd listing has been applied */
    bool listing;          /* a listing is being applied: one summary, not a line a key */
    /* issue 23: the socket or one reload for a large plan (bulk.h), decided
     * once when a listing ends and once per read of HAProxy's state: a
     * restart found by the runtime socket's reconnect keeps the applier's
     * epoch, so every read counts (ap.stats.resyncs), not only a new epoch */
    bool bulk_due;
    /* a first listing's pages are held for one reload (bulk_hold_listing) */
    bool bulk_hold, bulk_hold_decided;
    unsigned long long bulk_resyncs; /* ap.stats.resyncs at the last decision */

    /* The last full listing had no valid key and none came since. Until
     * HAProxy is known to hold no filled slot (or keys appear), listed stays
     * false: nothing is planned, rendered or sent. */
    size_t list_valid; /* valid keys in the listing being applied */
    bool registry_empty;
    bool empty_held;                       /* HAProxy's filled slots are being kept (the gauge) */
    unsigned long long empty_seen_resyncs; /* stats.resyncs at the last decision */

    /* render mode */
    bool render_only;
    const char *render_path;
    int render_err;
    char *render_errmsg;
    char *etcd_last_error; /* the last reason the etcd sync gave for being down */
    bool etcd_up;          /* the sync's last connected() report said up */
    double etcd_since;     /* clock_mono() of that report, or of the start */
    struct {
        unsigned long long refused_services, empty_listings_held, bulk_reloads;
    } stats; /* the applier's are in ap.stats, the reloads' in ro.stats */
    /* inspection: the admin endpoint and what only it needs */
    struct admin *admin;
    struct metrics obs; /* histograms and labelled counters; the rest comes from stats */
    struct metrics_recent *recent;
    struct metrics_backend *obs_backends;
    /* HAProxy's own account of its reloads, read once at start from the
     * master's "show proc" (issue 19): after a restart of slotsync the
     * last reload is HAProxy's, not "none" */
    struct runtime *proc_rt;
    double haproxy_last_reload_at; /* <= 0: not known, or never reloaded */
    unsigned long haproxy_reloads;
};

static struct backend *backend_find(struct ctl *c, const char *name)
{
    return backend_lookup(c->backends, c->n_backends, name);
}

/* A backend no frontend reaches gets one warning naming it when it
 * becomes so (issue 19); status, the page and /metrics show b->unrouted. */
static void note_routing(const struct ctl *c, struct backend *b)
{
    bool unrouted = c->cfg && !render_service_routed(c->cfg, &b->conf);

    if (unrouted && !b->unrouted)
        log_warn(MOD,
                 "backend %s: nothing routes to it (no services.%s.listen, and no "
                 "http_frontend bind and domain for it): HAProxy gets the backend, no frontend "
                 "reaches it",
                 b->conf.name, b->conf.name);
    b->unrouted = unrouted;
}

static struct backend *backend_add(struct ctl *c, const struct service_conf *conf, bool configured)
{
    struct backend *b = backend_insert(&c->backends, &c->n_backends, conf, configured);

    if (b)
        note_routing(c, b);
    return b;
}

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
        *base_defaults = dynback_defaults_declared(text, len, DYNBACK_BASE_DEFAULTS);
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
        backend_names_clear(&c->base_be);
        backend_names_clear(&c->base_fe);
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
    backend_names_clear(&c->base_be);
    backend_names_clear(&c->base_fe);
    c->base_be = be;
    c->base_fe = fe;
    set_base_defaults(c, base_defaults);
}

/* The name sets that decide who owns a proxy name (borrowed from c). */
static struct backend_owners owners(const struct ctl *c)
{
    return (struct backend_owners){&c->base_be, &c->base_fe, &c->proxies, &c->owned,
                                   c->proxies_known};
}

static const char *name_taken(const struct ctl *c, const struct backend *b)
{
    const struct backend_owners o = owners(c);

    return backend_name_taken(b, &o);
}

/* Decide whether b is ours (backend_settle()), and say so. A refused
 * backend is left alone: nothing is sent to its proxy, nothing of it is
 * rendered. Returns true if b was claimed now (the caller decides whether
 * that needs a reload). */
static bool settle(struct ctl *c, struct backend *b)
{
    const struct backend_owners o = owners(c);
    struct backend_settling s;
    bool claimed = backend_settle(b, &o, !c->render_only, &s);

    if (s.refused_by) {
        c->stats.refused_services++;
        if (b->configured)
            log_error(MOD,
                      "services.%s refused: the name is taken by %s; slotsync leaves that "
                      "proxy alone and renders nothing for it",
                      b->conf.name, s.refused_by);
        else
            log_warn(MOD,
                     "etcd service \"%s\" (keys %s%s/...) refused: the name is taken by %s; "
                     "slotsync leaves that proxy alone and renders nothing for it",
                     b->conf.name, c->cfg->etcd_prefix, b->conf.name, s.refused_by);
    }
    if (s.freed)
        log_info(MOD, "service %s: its name is free again: slotsync takes it", b->conf.name);
    return claimed;
}

/* A claimed service HAProxy runs no backend for, on an HAProxy that adds
 * backends at run time (dynback.h): its own backend at the next batch
 * ("add backend", its slots, publish), no spare, no reload. Returns
 * whether it is done so. */
static bool dyn_place(struct ctl *c, struct backend *b)
{
    if (c->render_only || !apply_dynamic_usable(&c->ap) || !dynback_fits(b) || !backend_ours(b))
        return false;
    if (backend_names_add(&c->owned, b->conf.name) < 0)
        return false; /* no memory: a reload then */
    backend_names_sort(&c->owned);
    b->present = true; /* HAProxy runs it once the batch is answered */
    b->missing_noted = false;
    b->dyn_create = true;
    b->dirty = true;
    c->ap.map_dirty = true;
    return true;
}

/* A claimed service HAProxy runs no backend for: into a spare (pool.h), or
 * a reload. No new binding while a reload is asked for or in flight: its
 * render creates the backend anyway. */
static void place(struct ctl *c, struct backend *b)
{
    if (dyn_place(c, b))
        return;
    if (!pool_place(&c->pool, b, &c->proxies, &c->base_be,
                    !c->ro.reloading && !rollout_pending(&c->ro)))
        rollout_want(&c->ro, "new service", b->conf.name);
}

/* Move the catalog's dirty flags onto the backends. */
static void collect_dirty(struct ctl *c)
{
    struct catalog_service *s;
    size_t pos = 0;

    while ((s = catalog_take_dirty(c->cat, &pos))) {
        struct backend *b = backend_find(c, s->name);

        if (b) {
            b->dirty = true;
        } else if (s->n_endpoints) {
            struct service_conf conf;

            /* A service the config does not name: a backend from defaults,
             * if no proxy slotsync does not own has its name. */
            memset(&conf, 0, sizeof(conf));
            snprintf(conf.name, sizeof(conf.name), "%s", s->name);
            conf.opt = c->cfg->defaults;
            if (!(b = backend_add(c, &conf, false))) {
                log_error(MOD, "service %s: out of memory", s->name);
                catalog_mark_dirty(s);
                continue;
            }
            /* Claimed: HAProxy runs it already (our services file) and a
             * resync adopts its slots, or it needs a reload. */
            if (settle(c, b) && !c->render_only) {
                if (backend_names_has(&c->proxies, s->name))
                    c->ap.resync_wanted = true;
                else
                    place(c, b);
            }
        }
    }
    c->ap.map_dirty = true;
}

/* ---- etcd side ---- */

/* ---- caps on what etcd can create (catalog.h) ---- */

/* A service the config names is always served, and not counted. */
static bool cap_exempt(const char *service, void *arg)
{
    const struct ctl *c = arg;

    return config_find_service(c->cfg, service) != NULL;
}

/* Give the catalog c->cfg's caps (at start and on SIGHUP). */
static void set_caps(struct ctl *c)
{
    const struct catalog_limits l = {(size_t)c->cfg->max_services,
                                     (size_t)c->cfg->max_endpoints_per_service, cap_exempt, c};

    catalog_set_limits(c->cat, &l);
}

static void on_list_begin(void *arg)
{
    struct ctl *c = arg;

    c->listing = true;
    c->list_valid = 0;
    c->bulk_hold = c->bulk_hold_decided = false;
    catalog_relist_begin(c->cat);
}

static void on_kv(void *arg, const struct etcd_kv *kv)
{
    struct ctl *c = arg;
    int r = feed_kv(c->cat, kv, c->listing, c->render_only, c->obs.rejected);

    if (c->listing && !kv->deleted && r >= 0 && r != CATALOG_REJECTED)
        c->list_valid++;
    /* A change from the watch: its event-to-applied time starts now. */
    if (!c->listing && !c->render_only &&
        (r == CATALOG_ADDED || r == CATALOG_UPDATED || r == CATALOG_REMOVED))
        metrics_pending_add(&c->ap.events_pending, clock_mono());
    if (r == CATALOG_ADDED || r == CATALOG_UPDATED || r == CATALOG_REMOVED)
        c->live_changed = true;
}

static void render_now(struct ctl *c);

/* Plan every backend and the map again from the catalog. */
static void mark_all_dirty(struct ctl *c)
{
    for (size_t i = 0; i < c->n_backends; i++)
        c->backends[i]->dirty = true;
    c->ap.map_dirty = true;
}

/* Keys are there again after an empty listing: converge to them. */
static void registry_filled(struct ctl *c)
{
    if (c->empty_held)
        log_info(MOD, "etcd registry has %zu %s again: converging HAProxy to it",
                 catalog_count(c->cat), LOG_PLURAL(catalog_count(c->cat), "endpoint", "endpoints"));
    c->registry_empty = false;
    c->empty_held = false;
    c->listed = true;
    mark_all_dirty(c);
}

/* After an empty listing, with HAProxy's state read: hold while HAProxy has
 * a filled slot in one of our backends (a wiped etcd, or the wrong one, must
 * not empty every backend), apply the empty listing when it has none. Once
 * per read of HAProxy's state. */
static void decide_empty_registry(struct ctl *c)
{
    size_t filled = 0, backends = 0;

    if (c->empty_seen_resyncs == c->ap.stats.resyncs)
        return;
    c->empty_seen_resyncs = c->ap.stats.resyncs;
    for (size_t i = 0; i < c->n_backends; i++) {
        const struct backend *b = c->backends[i];
        size_t k = 0;

        for (size_t j = 0; b->present && j < b->slots.n; j++)
            if (!view_empty(&b->have[j])) /* an unknown slot counts as filled */
                k++;
        filled += k;
        backends += k != 0;
    }
    if (!filled || c->cfg->allow_empty_registry) {
        if (c->empty_held)
            log_info(MOD, "%s: the empty etcd registry applies",
                     filled ? "allow_empty_registry is set" : "HAProxy has no filled slot left");
        c->empty_held = false;
        c->registry_empty = false;
        c->listed = true;
        mark_all_dirty(c);
        return;
    }
    if (c->empty_held)
        return;
    c->empty_held = true;
    c->stats.empty_listings_held++;
    log_error(MOD,
              "etcd registry is empty (no valid key under %s): HAProxy is kept as it is "
              "(%zu filled slots in %zu backends) until keys appear; set "
              "allow_empty_registry to apply an empty registry",
              c->cfg->etcd_prefix, filled, backends);
}

/* A page of a first listing is in and more follow: its endpoints go to
 * slots HAProxy has empty while the rest is read (apply.h). */
static void on_list_page(void *arg)
{
    struct ctl *c = arg;

    if (!c->listed && !c->render_only)
        apply_listed_page(&c->ap);
}

static void on_list_end(void *arg, int64_t revision)
{
    struct ctl *c = arg;
    size_t removed = catalog_relist_end(c->cat);

    c->listing = false;
    log_info(MOD, "etcd listing applied: %zu %s in %zu %s at revision %lld%s",
             catalog_count(c->cat), LOG_PLURAL(catalog_count(c->cat), "endpoint", "endpoints"),
             c->cat->n_services, LOG_PLURAL(c->cat->n_services, "service", "services"),
             (long long)revision,
             removed ? " (some endpoints were removed while we were away)" : "");
    collect_dirty(c);
    c->live_changed = true;
    if (c->render_only) {
        c->listed = true;
        render_now(c);
        return;
    }
    if (c->list_valid == 0 && !c->cfg->allow_empty_registry) {
        /* Decided in on_prepare() once HAProxy's state is read again. */
        c->registry_empty = true;
        c->listed = false;
        c->empty_seen_resyncs = ~0ULL;
        return;
    }
    if (c->registry_empty)
        registry_filled(c);
    c->listed = true;
    c->bulk_due = true;
}

static void on_batch_end(void *arg, int64_t revision)
{
    struct ctl *c = arg;

    collect_dirty(c);
    /* Watch events apply one by one as always (a service scaled to zero is
     * emptied); only a key that appears ends an empty listing's hold. */
    if (c->registry_empty && !c->listing && catalog_count(c->cat) > 0)
        registry_filled(c);
}

static void on_connected(void *arg, bool up, const char *why)
{
    struct ctl *c = arg;

    if (up)
        log_info(MOD, "etcd watch established (%s)",
                 etcd_transport_name((enum etcd_transport)c->cfg->etcd_transport));
    else
        /* the etcd module has said why, at warn, with its outage lines */
        log_info(MOD, "etcd watch lost (retrying)");
    if (!up && why)
        memprintf(&c->etcd_last_error, "%s", why);
    /* Down from the start until the first report: the clock runs from then. */
    if (up != c->etcd_up)
        c->etcd_since = clock_mono();
    c->etcd_up = up;
    /* render: a TLS failure or refused credentials will not go away by
     * waiting */
    if (!up && why && c->render_only &&
        (strstr(why, "TLS: ") || strstr(why, "etcd authentication as user"))) {
        c->render_err = -EPROTO;
        memprintf(&c->render_errmsg, "%s", why);
        ev_break(c->loop, EVBREAK_ALL);
    }
}

static const struct etcd_sync_ops sync_ops = {
    .list_begin = on_list_begin,
    .kv = on_kv,
    .list_page = on_list_page,
    .list_end = on_list_end,
    .batch_end = on_batch_end,
    .connected = on_connected,
};

/* ---- HAProxy side: the applier (apply.h) borrows the table ---- */

static struct backend **ap_backends(void *arg, size_t *n)
{
    struct ctl *c = arg;

    *n = c->n_backends;
    return c->backends;
}

static void ap_want_reload(void *arg, const char *why, const char *name)
{
    struct ctl *c = arg;

    rollout_want(&c->ro, why, name);
}

/* "show backend": every backend-capable proxy HAProxy runs. Services
 * waiting for it are settled: claimed, or refused when a proxy slotsync does
 * not own has their name. */
static void ap_proxies(void *arg, struct names *seen)
{
    struct ctl *c = arg;

    backend_names_clear(&c->proxies);
    c->proxies = *seen;
    *seen = (struct names){0};
    c->proxies_known = true;
    for (size_t i = 0; i < c->n_backends; i++) {
        struct backend *b = c->backends[i];

        if ((!b->claimed || b->foreign) && !b->configured && settle(c, b) &&
            !backend_names_has(&c->proxies, b->conf.name))
            place(c, b);
    }
}

/* "show map": the spares' bindings HAProxy holds (pool.h). */
static void ap_spares_read(void *arg, const struct host_route *routes, size_t n)
{
    struct ctl *c = arg;

    pool_adopt(&c->pool, routes, n);
}

/* A backend of ours that HAProxy lost (or never loaded) is created at run
 * time again where it can be. */
static bool ap_dyn_missing(void *arg, struct backend *b)
{
    return dyn_place(arg, b);
}

static void ro_drop(void *arg, struct backend *b);

/* HAProxy's answer to an "add backend" or a "del backend" (apply.h). */
static void ap_dyn_answered(void *arg, const char *name, bool create, bool ok, const char *reply)
{
    struct ctl *c = arg;
    struct backend *b = backend_find(c, name);
    char q[LOG_QUOTE_MAX / 4];

    if (!b)
        return;
    log_quote(reply, strlen(reply), q, sizeof(q));
    if (!create) {
        if (ok) {
            log_info(MOD, "service %s: backend removed from HAProxy at run time", name);
            ro_drop(c, b); /* endpoints that come back make a new one */
            c->live_changed = true; /* livefile writes what HAProxy runs now */
        } else {
            log_warn(MOD,
                     "service %s: HAProxy refused to delete its backend: \"%s\" (it is empty and "
                     "unrouted; tried again after HAProxy's state is read, with backoff)",
                     name, q);
        }
        return;
    }
    if (ok) {
        if (dynback_add_reply(reply) == DYNBACK_EXISTS)
            log_info(MOD, "service %s: HAProxy has its backend already: its slots are added to it",
                     name);
        b->dyn_created = true;
        b->dyn_unpublished = false;
        c->live_changed = true;
        return;
    }
    /* Refused: no more run-time backends until a reload (which renders
     * their defaults section); this one goes where it would have gone
     * without them. Its refused slot commands are the creation's. */
    if (dynback_add_reply(reply) == DYNBACK_NO_DEFAULTS)
        log_warn(MOD,
                 "service %s: HAProxy runs no \"defaults " DYNBACK_DEFAULTS "\" (its services file "
                 "was rendered without it): no backend is added at run time until a reload "
                 "loads one",
                 name);
    else
        log_warn(MOD,
                 "service %s: HAProxy refused \"add backend\": \"%s\"; no backend is added at "
                 "run time until the next reload",
                 name, q);
    c->ap.dyn.running_has_defaults = false;
    b->present = false;
    b->dyn_created = false;
    for (size_t i = 0; i < b->n_refused; i++)
        plan_refusal_clear(&b->refused[i]);
    b->n_refused = 0;
    if (backend_resize(b, 0) < 0)
        log_error(MOD, "service %s: out of memory", name);
    place(c, b);
}

static const struct apply_ops apply_ops = {
    .backends = ap_backends,
    .want_reload = ap_want_reload,
    .proxies = ap_proxies,
    .spares_read = ap_spares_read,
    .dyn_missing = ap_dyn_missing,
    .dyn_answered = ap_dyn_answered,
};

static struct backend *pool_add(void *arg, const char *service)
{
    struct ctl *c = arg;
    struct service_conf conf;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", service);
    conf.opt = c->cfg->defaults;
    return backend_add(c, &conf, false);
}

static const struct pool_ops pool_ops = {
    .backends = ap_backends,
    .add = pool_add,
    .want_reload = ap_want_reload,
};

/* ---- reloads: the rollout (rollout.h) borrows the table too ---- */

/* Left out of the file HAProxy now runs, and no endpoint came back. */
static void ro_drop(void *arg, struct backend *b)
{
    struct ctl *c = arg;

    for (size_t i = 0; i < c->n_backends; i++) {
        if (c->backends[i] != b)
            continue;
        backend_free(b);
        memmove(c->backends + i, c->backends + i + 1,
                (c->n_backends - i - 1) * sizeof(*c->backends));
        c->n_backends--;
        return;
    }
}

/* HAProxy runs a new worker with the render: the file it runs declares the
 * backends slotsync owns. */
static void ro_loaded(void *arg, struct names *rendered)
{
    struct ctl *c = arg;

    backend_names_clear(&c->owned);
    c->owned = *rendered;
    *rendered = (struct names){0};
    c->ap.epoch++; /* a new worker: any read still in flight is stale */
    /* The render carries the run-time backends' defaults section (when the
     * base config allows it), and every backend HAProxy runs is rendered. */
    c->ap.dyn.running_has_defaults = true;
    for (size_t i = 0; i < c->n_backends; i++)
        c->backends[i]->dyn_created = false;
}

static void ro_resync(void *arg)
{
    struct ctl *c = arg;

    c->ap.resync_wanted = true;
}

static const struct livefile_ops livefile_ops = {
    .backends = ap_backends,
};

static const struct rollout_ops rollout_ops = {
    .backends = ap_backends,
    .drop = ro_drop,
    .loaded = ro_loaded,
    .resync = ro_resync,
};

/* systemd's view (notify.h): ready once the listing went to HAProxy and
 * nothing more is waiting to go there. */
static void notify_controller(struct ctl *c)
{
    bool settled = c->ap.synced && !c->ap.resync_wanted && !c->ro.reloading &&
                   !rollout_pending(&c->ro) && !runtime_busy(c->ap.rt) && !c->ap.map_dirty;

    for (size_t i = 0; settled && i < c->n_backends; i++)
        settled = !c->backends[i]->dirty;
    notify_update(c->notify, &(struct notify_state){c->listed, c->ap.synced, settled,
                                                    catalog_count(c->cat), c->cat->n_services});
}

/* The "dns" hosts file (dnshosts.h): every configured service and every
 * discovered one with endpoints, once etcd was listed. */
static void dns_controller(struct ctl *c)
{
    const char **names;
    size_t n = 0;
    unsigned long long hash;

    if (!c->listed || !c->cfg->dns.hosts_file)
        return;
    names = calloc(c->cfg->n_services + c->cat->n_services + 1, sizeof(*names));
    if (!names)
        return; /* the next iteration tries again */
    for (size_t i = 0; i < c->cfg->n_services; i++)
        names[n++] = c->cfg->services[i].name;
    for (size_t i = 0; i < c->cat->n_services; i++)
        if (c->cat->services[i]->n_endpoints)
            names[n++] = c->cat->services[i]->name;
    hash = dnshosts_hash(names, n);
    if (dnshosts_due(&c->dns, c->cfg, hash, clock_mono()))
        dnshosts_update(&c->dns, c->cfg, names, n, clock_mono());
    free(names);
}

/* The services file on disk follows what HAProxy runs (livefile.h): once
 * etcd is listed and HAProxy's state was read, a key, a batch, a read of
 * HAProxy's state, a reload or a spare's binding renders it again. Never
 * while a reload is in flight: its render writes the file. */
static void live_controller(struct ctl *c)
{
    unsigned long long sig = c->ap.stats.batches + c->ap.stats.resyncs + c->ro.stats.reloads +
                             c->pool.stats.bound + c->pool.stats.adopted;

    livefile_hold(&c->live, c->ro.reloading);
    if (c->ap.synced)
        c->live_known = true;
    if (sig != c->live_sig) {
        c->live_sig = sig;
        c->live_changed = true;
    }
    if (!c->live_changed || !c->listed || !c->live_known || c->ro.reloading)
        return;
    c->live_changed = false;
    livefile_touch(&c->live);
}

/* Issue 23: when a listing ended, or HAProxy's state was read (a restart, a
 * reload, a reconnect, the periodic resync), weigh the plan over the runtime socket
 * against one reload (bulk.h) and log the choice. A reload renders every
 * backend with its desired endpoints; its end reads HAProxy's state again,
 * so the planner sends only what changed meanwhile. Returns true when a
 * reload was asked: nothing is sent now. */
static bool bulk_controller(struct ctl *c)
{
    struct bulk_input in = {0};
    struct bulk_choice out;
    size_t commands = 0, servers = 0;

    if (!c->ap.adopted)
        return false;
    if (!c->bulk_due && c->bulk_resyncs == c->ap.stats.resyncs)
        return false;
    c->bulk_due = false;
    c->bulk_resyncs = c->ap.stats.resyncs;
    if (apply_estimate(&c->ap, false, BULK_MIN_COMMANDS, &commands, &servers) < 0)
        return false; /* out of memory: the socket, as before */
    in.commands = commands;
    in.servers = servers;
    in.command_us = (unsigned)c->cfg->runtime_command_us;
    in.server_us = (unsigned)c->cfg->reload_server_us;
    in.reload_allowed = rollout_can_start(&c->ro);
    in.path = (enum bulk_path)c->cfg->bulk_path;
    bulk_choose(&in, &out);
    if (commands < BULK_MIN_COMMANDS && !out.reload)
        return false; /* a small plan: the socket, no line */
    log_info(MOD,
             "bulk: %s for %zu runtime %s (%.2f s estimated) against one reload of %zu "
             "servers (%.2f s estimated): %s",
             out.reload ? "one reload" : "the runtime socket", commands,
             LOG_PLURAL(commands, "command", "commands"), out.runtime_s, servers, out.reload_s,
             out.why);
    if (!out.reload)
        return false;
    c->stats.bulk_reloads++;
    rollout_want(&c->ro, "large plan, one reload for", "every backend");
    rollout_maybe_start(&c->ro, true);
    return true;
}

/* Issue 23: a first listing's pages go to HAProxy's empty slots as they are
 * read, so by the listing's end the plan left is small and the socket wins
 * although one reload would have been cheaper for the whole listing. So at
 * its first page (HAProxy's state known), the listing's size (etcd's count
 * for the prefix) scales this page's plan to the whole listing; when one
 * reload wins by that estimate, the pages are held and the listing's end
 * decides on the real plan (bulk_controller): nothing is lost if the
 * estimate was wrong, the socket takes it then. Returns true: hold. */
static bool bulk_hold_listing(struct ctl *c)
{
    const struct etcd_sync_stats *st = c->sync ? etcd_sync_stats(c->sync) : NULL;
    struct bulk_input in = {0};
    struct bulk_choice out;
    size_t commands = 0, servers = 0, count;

    if (c->cfg->bulk_path != BULK_PATH_AUTO)
        return c->cfg->bulk_path == BULK_PATH_RELOAD;
    if (c->bulk_hold_decided)
        return c->bulk_hold;
    if (!c->ap.adopted || !st || st->list_count <= 0 || !c->list_valid)
        return false; /* nothing to scale by yet: the pages go out */
    c->bulk_hold_decided = true;
    count = (size_t)st->list_count;
    if (apply_estimate(&c->ap, true, 0, &commands, &servers) < 0)
        return false;
    if (count > c->list_valid)
        commands = (size_t)((double)commands * (double)count / (double)c->list_valid);
    if (servers < count)
        servers = count; /* the render declares a slot per endpoint at least */
    in.commands = commands;
    in.servers = servers;
    in.command_us = (unsigned)c->cfg->runtime_command_us;
    in.server_us = (unsigned)c->cfg->reload_server_us;
    in.reload_allowed = rollout_can_start(&c->ro);
    in.path = BULK_PATH_AUTO;
    bulk_choose(&in, &out);
    c->bulk_hold = out.reload;
    if (commands >= BULK_MIN_COMMANDS)
        log_info(MOD,
                 "bulk: the first etcd listing holds %zu %s (etcd's count): about %zu runtime "
                 "commands (%.2f s estimated) against one reload of %zu servers (%.2f s "
                 "estimated): %s; %s",
                 count, LOG_PLURAL(count, "key", "keys"), commands, out.runtime_s, servers,
                 out.reload_s, out.why,
                 out.reload ? "its pages wait for the listing's end" : "its pages go out as read");
    return c->bulk_hold;
}

/* Runs once per loop iteration, before the loop blocks: everything that
 * changed during the iteration goes out as one batch. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct ctl *c = w->data;

    if (c->render_only)
        return;
    notify_controller(c);
    dns_controller(c);
    live_controller(c);
    rollout_maybe_start(&c->ro, c->listed && c->ap.synced);
    /* During a reload the socket may reach the old worker or the new one:
     * what we read or change there could be lost or mistaken (a backend of
     * the new file "missing"). Hold everything; the reload's end resyncs. */
    if (c->ro.reloading || apply_busy(&c->ap))
        return;
    if (apply_resync_due(&c->ap)) {
        apply_resync(&c->ap);
        return;
    }
    if (c->registry_empty && !c->listed)
        decide_empty_registry(c);
    if (!c->listed) {
        /* part of a first listing: additions only, unless they wait for
         * the one reload the listing's end decides (bulk_hold_listing) */
        if (c->listing && !bulk_hold_listing(c))
            apply_send_additions(&c->ap);
        return;
    }
    if (bulk_controller(c))
        return;
    apply_send(&c->ap);
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

/* A SIGHUP's new config for b (backend_reconfigure()): ask for a reload or
 * say what the new slot count does. Returns whether anything changed. */
static bool reconfigured(struct ctl *c, struct backend *b, const struct service_conf *sc,
                         const struct service_options *defaults)
{
    int old = 0;

    switch (backend_reconfigure(b, sc, defaults, &old)) {
    case BACKEND_RECONF_OPTIONS:
        rollout_want(&c->ro, "options changed for", b->conf.name);
        return true;
    case BACKEND_RECONF_LEFT:
        rollout_want(&c->ro, "service left the config:", b->conf.name);
        return true;
    case BACKEND_RECONF_DEFAULTS:
        rollout_want(&c->ro, "defaults changed for", b->conf.name);
        return true;
    case BACKEND_RECONF_SLOTS:
        note_slots(b, old);
        return true;
    case BACKEND_RECONF_SAME:
        break;
    }
    return false;
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
    bool changed = false;

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
    if (!config_same_restart_fields(nc, oc)) {
        char fields[512];

        /* Name what changed (issue 19), not the whole list. */
        if (config_restart_fields_changed(nc, oc, fields, sizeof(fields)))
            log_error(MOD, "SIGHUP: config not reloaded: %s changed, which needs a restart",
                      fields);
        else
            log_error(MOD, "SIGHUP: config not reloaded: a field that needs a restart changed");
        config_free(nc);
        free(nc);
        return;
    }
    for (size_t i = 0; i < nc->n_services; i++) {
        const struct service_conf *sc = &nc->services[i];
        struct backend *b = backend_find(c, sc->name);

        if (!b) {
            if (!(b = backend_add(c, sc, true))) {
                log_error(MOD, "SIGHUP: out of memory");
                continue;
            }
            if (settle(c, b))
                rollout_want(&c->ro, "new service in the config:", sc->name);
            changed = true;
            continue;
        }
        changed = reconfigured(c, b, sc, &nc->defaults) || changed;
    }
    for (size_t i = 0; i < c->n_backends; i++) {
        struct backend *b = c->backends[i];

        changed =
            reconfigured(c, b, config_find_service(nc, b->conf.name), &nc->defaults) || changed;
    }
    if (!config_same_listen(&nc->admin_listen, &oc->admin_listen) ||
        !config_same_admin(&nc->admin, &oc->admin))
        log_warn(MOD, "SIGHUP: admin.* changed: the admin endpoint keeps its address, files and "
                      "protected paths until a restart (the files themselves were read again)");
    if (!config_same_http_frontend(nc, oc)) {
        rollout_want(&c->ro, "http_frontend changed:", nc->hosts_map);
        changed = true;
    }
    log_set_level((enum log_level)nc->log_level);
    c->resync_timer.repeat = nc->resync_interval_s;
    ev_timer_again(c->loop, &c->resync_timer);
    c->cfg = nc;
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
    for (size_t i = 0; i < c->n_backends; i++) {
        struct backend *b = c->backends[i];
        bool was_refused = b->foreign;

        note_routing(c, b);
        b->claimed = b->claimed && !name_taken(c, b);
        if (settle(c, b) && was_refused && !backend_names_has(&c->proxies, b->conf.name))
            rollout_want(&c->ro, "name free again for", b->conf.name);
        if (b->foreign)
            b->present = false;
    }
    /* new caps, or a waiting service the config names now: taken on */
    set_caps(c);
    if (c->listed && !c->listing)
        collect_dirty(c);
    c->ap.map_dirty = true;
    c->ap.resync_wanted = true;
    log_info(MOD, "SIGHUP: config reloaded%s", changed ? "" : " (no backend changed)");
}

/* ---- render mode ---- */

/* The services file (or -o's) from the first listing, then stop. */
static void render_now(struct ctl *c)
{
    c->render_err = rollout_render_file(c->cfg, c->backends, c->n_backends, c->cat, c->render_path,
                                        &c->render_errmsg);
    ev_break(c->loop, EVBREAK_ALL);
}

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

/* ---- the admin endpoint's view and the state dump (report.h) ---- */

/* What the modules know now, for report.h (borrowed until the loop runs
 * again). */
static struct report_state report_of(const struct ctl *c)
{
    return (struct report_state){
        .now = clock_mono(),
        .etcd = c->sync ? etcd_sync_stats(c->sync) : NULL,
        .listed = c->listed,
        .cat = c->cat,
        .synced = c->ap.synced,
        .runtime_down = c->ap.runtime_down,
        .last_resync_at = c->ap.last_resync_at,
        .batches = c->ap.stats.batches,
        .commands = c->ap.stats.commands,
        .command_failures = c->ap.stats.command_failures,
        .runtime_errors = c->ap.stats.runtime_errors,
        .runtime_added_servers = c->ap.stats.grown,
        .resyncs = c->ap.stats.resyncs,
        .drift_repairs = c->ap.stats.drift_repairs,
        .last_reload_at =
            c->ro.last_reload_start > 0 ? c->ro.last_reload_start : c->haproxy_last_reload_at,
        .last_reload_by_haproxy = c->ro.last_reload_start <= 0 && c->haproxy_last_reload_at > 0,
        .last_reload_cause =
            c->ro.last_reload_start > 0 ? metrics_cause_name(c->ro.reload_cause) : NULL,
        .haproxy_reloads = c->haproxy_reloads,
        .last_reload_failed = c->ro.last_reload_failed,
        .reloading = c->ro.reloading,
        .reloads = c->ro.stats.reloads,
        .reload_failures = c->ro.stats.reload_failures,
        .check_failures = c->ro.stats.check_failures,
        .bulk_reloads = c->stats.bulk_reloads,
        .backends = c->backends,
        .n_backends = c->n_backends,
        .obs = &c->obs,
        .recent = c->recent,
        .etcd_up = c->etcd_up,
        .etcd_since = c->etcd_since,
        .etcd_endpoint = c->sync ? etcd_sync_endpoint(c->sync) : NULL,
        .etcd_error = c->etcd_last_error,
        .wall_now = clock_wall(),
        .cfg = c->cfg,
        .spares = c->pool.sp.n,
        .spares_free = spare_free_count(&c->pool.sp),
    };
}

static bool admin_ready(void *arg, const char **why)
{
    struct report_state s = report_of(arg);

    return report_ready(&s, why);
}

static void admin_metrics(void *arg, struct metrics *m)
{
    struct ctl *c = arg;
    struct report_state s = report_of(c);

    report_metrics(&s, m, &c->obs_backends);
}

static json_t *admin_status(void *arg, const char *state_text, const char *stat_text, char **errmsg)
{
    struct report_state s = report_of(arg);

    return report_status(&s, state_text, stat_text, errmsg);
}

/* /readyz's body while ready: what it serves when etcd cannot be read. */
static void admin_ready_note(void *arg, char *buf, size_t size)
{
    struct report_state s = report_of(arg);

    report_etcd_note(&s, buf, size);
}

static const struct admin_ops admin_ops = {
    .ready = admin_ready,
    .ready_note = admin_ready_note,
    .metrics = admin_metrics,
    .status = admin_status,
};

static void dump_line(const char *text, void *arg)
{
    log_msg_all(LOG_LEVEL_INFO, MOD, "%s", text);
}

/* SIGUSR1: what the daemon knows (report_dump()), written to the log
 * whatever its level, never rate-limited (one line per backend). */
static void on_dump_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct report_state s = report_of(w->data);

    if (report_dump(&s, dump_line, NULL) < 0)
        log_error(MOD, "state dump: out of memory");
}

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
    struct render_file_backend *fb = NULL;
    char *text = NULL;
    size_t len = 0, n = 0, added = 0;
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
    r = render_parse_backends(text, len, &fb, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct service_conf conf;

        r = backend_names_add(&c->owned, fb[i].name);
        if (r < 0 || backend_find(c, fb[i].name))
            continue;
        memset(&conf, 0, sizeof(conf));
        snprintf(conf.name, sizeof(conf.name), "%s", fb[i].name);
        conf.opt = c->cfg->defaults;
        if (!backend_add(c, &conf, false)) {
            r = -ENOMEM;
            break;
        }
        added++;
        /* The defaults changed while slotsync was away. */
        if (!render_backend_matches(&fb[i], &conf.opt))
            rollout_want(&c->ro, "defaults changed for", conf.name);
    }
    backend_names_sort(&c->owned);
    if (added)
        log_info(MOD, "%s: %zu backends of services named only in etcd", c->cfg->services_file,
                 added);
    for (size_t i = 0, old = 0; r == 0 && i < n; i++) {
        char line[SERVICE_NAME_MAX + 16];

        /* An older slotsync named a frontend after its backend (3.3+ cannot
         * load that): it is adopted as it runs, renamed at the next reload. */
        snprintf(line, sizeof(line), "\nfrontend %s\n", fb[i].name);
        if (strstr(text, line) && !old++)
            log_info(MOD,
                     "%s: frontends named as their backends (an older slotsync's naming, "
                     "refused by HAProxy 3.3+); adopted as they run, written as "
                     "\"frontend " RENDER_FRONTEND_PREFIX "<service>\" at the next reload",
                     c->cfg->services_file);
    }
    free(fb);
    free(text);
    if (r < 0)
        memprintf(errmsg, "out of memory");
    return r;
}

static void ctl_destroy(struct ctl *c)
{
    runtime_free(c->proc_rt);
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
    for (size_t i = 0; i < c->n_backends; i++)
        backend_free(c->backends[i]);
    free(c->backends);
    backend_names_clear(&c->owned);
    backend_names_clear(&c->base_be);
    backend_names_clear(&c->base_fe);
    backend_names_clear(&c->proxies);
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
    c->loop = EV_DEFAULT;
    if (!c->loop) {
        memprintf(errmsg, "cannot create the event loop");
        return -ENOMEM;
    }
    c->cat = catalog_new(cfg->etcd_prefix);
    c->http = http_client_new(c->loop);
    if (!c->cat || !c->http)
        goto oom;
    set_caps(c);
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
        struct backend *b = backend_add(c, &cfg->services[i], true);

        if (!b)
            goto oom;
        settle(c, b);
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
        int r = apply_init(&c->ap, c->loop, cfg, c->cat, &c->obs, &apply_ops, c, errmsg);

        if (r < 0)
            return r;
        /* until HAProxy says otherwise (an "add backend" refused) */
        c->ap.dyn.running_has_defaults = true;
        if (pool_init(&c->pool, c->loop, cfg, &pool_ops, c) < 0)
            goto oom;
        c->ap.spares = &c->pool.sp;
        if (rollout_init(&c->ro, c->loop, cfg, c->cat, &c->pool, &c->obs, &rollout_ops, c) < 0)
            goto oom;
        livefile_init(&c->live, c->loop, cfg, c->cat, &livefile_ops, c);
        set_base_defaults(c, c->base_defaults); /* read before the modules were set up */
    }
    ev_prepare_init(&c->flush, on_prepare);
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
    ev_signal_init(&c->sig_usr1, on_dump_signal, SIGUSR1);
    c->sig_usr1.data = c;
    ev_timer_init(&c->log_timer, on_log_timer, 1., 1.);
    c->etcd_since = clock_mono();
    return 0;
oom:
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

static void on_haproxy_proc(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                            void *arg)
{
    struct ctl *c = arg;
    unsigned long reloads = 0, failed = 0;
    long uptime = -1;

    if (err < 0 || !raw || reload_parse_show_proc(raw, &reloads, &failed) < 0 ||
        reload_parse_worker_uptime(raw, &uptime) < 0) {
        log_info(MOD,
                 "master socket %s: HAProxy's reloads not read (%s): the last reload is "
                 "shown from slotsync's own from now on",
                 c->cfg->master_socket,
                 err < 0 ? runtime_strerror(err) : "unexpected reply to show proc");
        return;
    }
    c->haproxy_reloads = reloads;
    if (reloads > 0) {
        /* the monotonic clock, as every other age (issue 19 item 9) */
        c->haproxy_last_reload_at = clock_mono() - (double)uptime;
        if (c->haproxy_last_reload_at <= 0)
            c->haproxy_last_reload_at = 1e-6;
        log_info(MOD,
                 "HAProxy has been reloaded %lu %s (%lu failed) since it started, the last "
                 "%ld s ago (show proc)",
                 reloads, LOG_PLURAL(reloads, "time", "times"), failed, uptime);
    }
}

/* Ask the master "show proc" once (no master socket: nothing to ask). */
static void read_haproxy_reloads(struct ctl *c)
{
    if (!c->cfg->master_socket)
        return;
    c->proc_rt = runtime_new(c->loop, c->cfg->master_socket, 5);
    if (!c->proc_rt || runtime_send_raw(c->proc_rt, PLAN_MASTER_SHOW_PROC, on_haproxy_proc, c) < 0)
        log_info(MOD, "master socket %s: HAProxy's reloads not read", c->cfg->master_socket);
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
    c.sync = etcd_sync_start(c.etcd, cfg->etcd_prefix, &sync_ops, &c);
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
    read_haproxy_reloads(&c);
    if (cfg->admin_listen.set) {
        c.recent = calloc(1, sizeof(*c.recent));
        c.ap.recent = c.recent;
        c.admin = c.recent ? admin_start(c.loop, &cfg->admin_listen, cfg->runtime_socket,
                                         &cfg->admin, &admin_ops, &c, errmsg)
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
    log_info(MOD,
             "stopped: %llu batches, %llu commands, %llu refused, %llu resyncs, "
             "%llu reloads (%llu failed, %llu checks failed), %llu values rejected, "
             "%llu services refused, %llu drift repairs, "
             "%llu static-algorithm weights not sent, %llu reads below level admin",
             c.ap.stats.batches, c.ap.stats.commands, c.ap.stats.command_failures,
             c.ap.stats.resyncs, c.ro.stats.reloads, c.ro.stats.reload_failures,
             c.ro.stats.check_failures, c.cat->rejected, c.stats.refused_services,
             c.ap.stats.drift_repairs, c.ap.stats.static_weights_ignored, c.ap.stats.level_too_low);
    if (c.ro.stats.io_failures)
        log_info(MOD, "%llu renders or reloads failed on I/O and were retried%s",
                 c.ro.stats.io_failures, c.ro.write_outage.since > 0 ? " (still failing)" : "");
    if (c.live.stats.failures)
        log_info(MOD, "%llu writes of the services file between reloads failed and were "
                      "retried%s",
                 c.live.stats.failures, c.live.outage.since > 0 ? " (still failing)" : "");
    if (c.stats.empty_listings_held)
        log_info(MOD, "empty etcd registry held back %llu times%s", c.stats.empty_listings_held,
                 c.empty_held ? " (still held: HAProxy was left as it was)" : "");
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
    c.sync = etcd_sync_start(c.etcd, cfg->etcd_prefix, &sync_ops, &c);
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
