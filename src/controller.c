/* controller - the daemon's pipeline, wired on one libev loop:
 * etcd sync -> catalog -> slots -> plan -> runtime (batched), with resyncs
 * from "show servers state" on start, on reconnect, on any failed command and
 * every resync_interval_s. */
#include <slotsync/controller.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <slotsync/catalog.h>
#include <slotsync/etcd.h>
#include <slotsync/http.h>
#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/runtime.h>
#include <slotsync/slots.h>

#define MOD "sync"
#define RETRY_MIN_S 0.1
#define RETRY_MAX_S 5.0
#define RUNTIME_TIMEOUT_S 10.0

/* A configured service and HAProxy's side of it. */
struct backend {
    const struct service_conf *svc; /* borrowed from the config */
    struct slot_table slots;        /* as many slots as HAProxy has for it */
    struct server_state *have;      /* slots.n entries: HAProxy's view */
    bool present;                   /* seen in HAProxy at the last resync */
    bool dirty;                     /* needs converging */
    size_t last_overflow;
    /* filled while parsing a resync */
    struct server_state *seen;
    size_t n_seen, cap_seen;
    bool seen_backend;
};

struct ctl {
    struct ev_loop *loop;
    const struct config *cfg;
    struct http_client *http;
    struct etcd_client *etcd;
    struct etcd_sync *sync;
    struct catalog *cat;
    struct runtime *rt;
    struct backend *backends; /* same order as cfg->services (sorted) */
    size_t n_backends;
    struct plan plan;
    ev_prepare flush;
    ev_timer resync_timer, retry_timer, deadline;
    ev_signal sig_term, sig_int, sig_hup;
    bool listed;        /* a complete etcd listing has been applied */
    bool synced;        /* HAProxy's state is known */
    bool resync_wanted; /* re-read HAProxy's state before the next batch */
    bool runtime_down;  /* last exchange failed to connect */
    unsigned epoch;        /* bumped each time the sentinel connection ends */
    unsigned resync_epoch; /* epoch when the resync in flight was sent */
    double retry_delay;
    double batch_started;
    char **ignored; /* services in etcd with no backend, logged once each */
    size_t n_ignored;
    /* render mode */
    bool render_only;
    const char *render_path;
    int render_err;
    char *render_errmsg;
    struct {
        unsigned long long batches, commands, command_failures, resyncs, runtime_errors;
        unsigned long long rejected_logged;
    } stats;
};

static struct backend *backend_find(struct ctl *c, const char *name)
{
    size_t lo = 0, hi = c->n_backends;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(name, c->backends[mid].svc->name);

        if (cmp == 0)
            return &c->backends[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void note_ignored(struct ctl *c, const char *name)
{
    char **n;

    for (size_t i = 0; i < c->n_ignored; i++)
        if (strcmp(c->ignored[i], name) == 0)
            return;
    n = realloc(c->ignored, (c->n_ignored + 1) * sizeof(*n));
    if (!n)
        return;
    c->ignored = n;
    c->ignored[c->n_ignored] = strdup(name);
    if (c->ignored[c->n_ignored])
        c->n_ignored++;
    log_info(MOD, "service %s is in etcd but not in the config: ignored", name);
}

/* Move the catalog's dirty flags onto the backends. */
static void collect_dirty(struct ctl *c)
{
    for (size_t i = 0; i < c->cat->n_services; i++) {
        struct catalog_service *s = c->cat->services[i];
        struct backend *b;

        if (!s->dirty)
            continue;
        s->dirty = false;
        b = backend_find(c, s->name);
        if (b)
            b->dirty = true;
        else if (s->n_endpoints)
            note_ignored(c, s->name);
    }
}

/* ---- etcd side ---- */

static void on_list_begin(void *arg)
{
    struct ctl *c = arg;

    catalog_relist_begin(c->cat);
}

static void on_kv(void *arg, const struct etcd_kv *kv)
{
    struct ctl *c = arg;
    char qkey[300], *why = NULL;
    int r;

    if (kv->deleted)
        r = catalog_delete(c->cat, kv->key, kv->key_len, &why);
    else
        r = catalog_put(c->cat, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision,
                        &why);
    log_quote(kv->key, kv->key_len, qkey, sizeof(qkey));
    switch (r) {
    case CATALOG_REJECTED:
        log_warn(MOD, "etcd key \"%s\" rejected: %s", qkey, why ? why : "invalid");
        break;
    case CATALOG_ADDED:
    case CATALOG_UPDATED: {
        struct endpoint ep;
        char addr[ENDPOINT_HOST_MAX + 10];

        /* The value was accepted, so it parses: log what it means. */
        if (c->render_only || endpoint_parse_value(kv->value, kv->value_len, &ep, NULL) < 0)
            break;
        endpoint_format(&ep, addr, sizeof(addr));
        log_info(MOD, "etcd key \"%s\" %s: %s weight %u %s", qkey,
                 r == CATALOG_ADDED ? "added" : "updated", addr, ep.weight,
                 endpoint_state_name(ep.state));
        break;
    }
    case CATALOG_REMOVED:
        if (!c->render_only)
            log_info(MOD, "etcd key \"%s\" removed", qkey);
        break;
    case CATALOG_UNCHANGED:
        break;
    default:
        log_error(MOD, "etcd key \"%s\": %s", qkey, strerror(-r));
        /* Out of memory: a later re-list repairs what was lost. */
        break;
    }
    free(why);
}

static void render_now(struct ctl *c);

static void on_list_end(void *arg, int64_t revision)
{
    struct ctl *c = arg;
    size_t removed = catalog_relist_end(c->cat);

    log_info(MOD, "etcd listing applied: %zu endpoints in %zu services at revision %lld%s",
             catalog_count(c->cat), c->cat->n_services, (long long)revision,
             removed ? " (some endpoints were removed while we were away)" : "");
    c->listed = true;
    collect_dirty(c);
    if (c->render_only)
        render_now(c);
}

static void on_batch_end(void *arg, int64_t revision)
{
    collect_dirty(arg);
}

static void on_connected(void *arg, bool up, const char *why)
{
    if (up)
        log_info(MOD, "etcd watch established");
    else
        log_warn(MOD, "etcd watch lost: %s (retrying)", why ? why : "unknown");
}

static const struct etcd_sync_ops sync_ops = {
    .list_begin = on_list_begin,
    .kv = on_kv,
    .list_end = on_list_end,
    .batch_end = on_batch_end,
    .connected = on_connected,
};

/* ---- HAProxy side ---- */

static void schedule_retry(struct ctl *c)
{
    double jitter = 0.8 + 0.4 * ((double)random() / (double)RAND_MAX);

    c->retry_delay = c->retry_delay < RETRY_MIN_S ? RETRY_MIN_S : c->retry_delay * 2;
    if (c->retry_delay > RETRY_MAX_S)
        c->retry_delay = RETRY_MAX_S;
    ev_timer_stop(c->loop, &c->retry_timer);
    ev_timer_set(&c->retry_timer, c->retry_delay * jitter, 0.);
    ev_timer_start(c->loop, &c->retry_timer);
}

static void runtime_failed(struct ctl *c, int err, const char *what)
{
    c->stats.runtime_errors++;
    if (!c->runtime_down)
        log_warn(MOD, "HAProxy runtime socket %s: %s: %s (retrying with backoff)",
                 c->cfg->runtime_socket, what, strerror(-err));
    else
        log_debug(MOD, "HAProxy runtime socket still unavailable: %s", strerror(-err));
    c->runtime_down = true;
    c->synced = false;
    schedule_retry(c);
}

static int on_state_row(const struct server_state *st, void *arg)
{
    struct ctl *c = arg;
    struct backend *b = backend_find(c, st->backend);
    long idx;

    if (!b)
        return 0;
    b->seen_backend = true;
    idx = slots_index_of(st->server);
    if (idx < 0)
        return 0; /* a server of the operator's own: not ours */
    if (b->n_seen == b->cap_seen) {
        size_t ncap = b->cap_seen ? b->cap_seen * 2 : 16;
        struct server_state *n = realloc(b->seen, ncap * sizeof(*n));

        if (!n)
            return -ENOMEM;
        b->seen = n;
        b->cap_seen = ncap;
    }
    b->seen[b->n_seen++] = *st;
    return 0;
}

static int cmp_state_by_slot(const void *a, const void *b)
{
    long x = slots_index_of(((const struct server_state *)a)->server);
    long y = slots_index_of(((const struct server_state *)b)->server);

    return (x > y) - (x < y);
}

/* Make b's slot table match the slots HAProxy has (s1..sK, contiguous). */
static int backend_adopt(struct ctl *c, struct backend *b)
{
    size_t k = 0, n_before = b->slots.n;
    struct server_state *have;

    qsort(b->seen, b->n_seen, sizeof(*b->seen), cmp_state_by_slot);
    while (k < b->n_seen && slots_index_of(b->seen[k].server) == (long)k)
        k++;
    if (k < b->n_seen)
        log_warn(MOD, "backend %s: slot servers are not contiguous after s%zu: using s1..s%zu",
                 b->svc->name, k, k);
    if (k > b->slots.n) {
        if (b->slots.n == 0 && !b->slots.slots) {
            if (slots_init(&b->slots, k) < 0)
                return -ENOMEM;
        } else if (slots_grow(&b->slots, k) < 0) {
            return -ENOMEM;
        }
    } else if (k < b->slots.n) {
        /* HAProxy has fewer slots than before (restarted on an older file):
         * endpoints beyond it look for another slot at the next assign. */
        for (size_t i = k; i < b->slots.n; i++) {
            free(b->slots.slots[i].instance);
            b->slots.slots[i].instance = NULL;
        }
        b->slots.n = k;
    }
    have = realloc(b->have, (k ? k : 1) * sizeof(*have));
    if (!have)
        return -ENOMEM;
    b->have = have;
    if (k)
        memcpy(b->have, b->seen, k * sizeof(*have));
    if (b->present != b->seen_backend || n_before != k) {
        if (!b->seen_backend)
            log_warn(MOD, "backend %s is not in HAProxy: render the services file (slotsync "
                          "render) and reload HAProxy",
                     b->svc->name);
        else
            log_info(MOD, "backend %s: %zu slots in HAProxy", b->svc->name, k);
    }
    b->present = b->seen_backend;
    b->dirty = true;
    return 0;
}

static void on_sentinel_lost(void *arg)
{
    struct ctl *c = arg;

    /* HAProxy restarted, reloaded, or timed the idle connection out: in every
     * case re-read its state before the next batch. */
    log_debug(MOD, "runtime sentinel connection closed: resyncing");
    c->epoch++;
    c->resync_wanted = true;
}

static void on_resync_reply(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                            void *arg)
{
    struct ctl *c = arg;
    size_t bad = 0, slots = 0;
    int r;

    if (err < 0) {
        runtime_failed(c, err, "show servers state");
        return;
    }
    if (!runtime_reply_ok("show servers state", replies[0])) {
        runtime_failed(c, -EPROTO, "show servers state gave an unexpected reply");
        return;
    }
    for (size_t i = 0; i < c->n_backends; i++) {
        c->backends[i].n_seen = 0;
        c->backends[i].seen_backend = false;
    }
    r = runtime_parse_servers_state(replies[0], strlen(replies[0]), on_state_row, c, &bad);
    if (r < 0) {
        runtime_failed(c, r, "show servers state could not be parsed");
        return;
    }
    if (bad)
        log_warn(MOD, "show servers state: %zu rows failed validation and were ignored", bad);
    for (size_t i = 0; i < c->n_backends; i++) {
        if (backend_adopt(c, &c->backends[i]) < 0) {
            runtime_failed(c, -ENOMEM, "adopting HAProxy's state");
            return;
        }
        slots += c->backends[i].slots.n;
    }
    if (c->runtime_down || !c->synced)
        log_info(MOD, "HAProxy state read: %zu slots in %zu backends", slots, c->n_backends);
    c->stats.resyncs++;
    c->runtime_down = false;
    c->synced = true;
    /* A sentinel lost while this resync was in flight may have seen a newer
     * HAProxy than the one that answered: read again. */
    c->resync_wanted = c->epoch != c->resync_epoch;
    c->retry_delay = 0;
}

static void start_resync(struct ctl *c)
{
    static const char *const cmd[] = {"show servers state"};
    int r;

    /* Connected first, so that a restart after our read is noticed. */
    r = runtime_sentinel_connect(c->rt, on_sentinel_lost, c);
    if (r < 0)
        log_debug(MOD, "runtime sentinel: %s", strerror(-r));
    c->resync_epoch = c->epoch;
    r = runtime_send(c->rt, cmd, 1, on_resync_reply, c);

    if (r < 0)
        runtime_failed(c, r, "connect");
}

static void on_batch_reply(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg)
{
    struct ctl *c = arg;
    size_t failed = 0;

    if (err < 0) {
        /* Whatever part of the batch was applied, a resync finds out. */
        runtime_failed(c, err, "sending a batch");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (runtime_reply_ok(c->plan.cmds[i], replies[i]))
            continue;
        char q[256];

        log_quote(replies[i], strlen(replies[i]), q, sizeof(q));
        log_warn(MOD, "HAProxy refused \"%s\": \"%s\"", c->plan.cmds[i], q);
        failed++;
    }
    c->stats.command_failures += failed;
    if (failed)
        c->resync_wanted = true;
    log_info(MOD, "applied %zu runtime commands (%zu failed) in %.1f ms", n, failed,
             (ev_time() - c->batch_started) * 1e3);
}

static void converge_backend(struct ctl *c, struct backend *b)
{
    struct catalog_service *svc = catalog_find(c->cat, b->svc->name);
    int r;

    b->dirty = false;
    if (!b->present)
        return;
    r = slots_assign(&b->slots, svc, b->have);
    if (r < 0) {
        log_error(MOD, "backend %s: %s", b->svc->name, strerror(-r));
        b->dirty = true;
        return;
    }
    if (b->slots.overflow != b->last_overflow) {
        if (b->slots.overflow)
            log_warn(MOD, "backend %s: %zu endpoints have no free slot (%zu slots)",
                     b->svc->name, b->slots.overflow, b->slots.n);
        else
            log_info(MOD, "backend %s: every endpoint has a slot again", b->svc->name);
        b->last_overflow = b->slots.overflow;
    }
    r = plan_backend(&c->plan, b->svc->name, &b->slots, b->have);
    if (r < 0) {
        log_error(MOD, "backend %s: planning failed: %s", b->svc->name, strerror(-r));
        c->resync_wanted = true;
    }
}

/* Runs once per loop iteration, before the loop blocks: everything that
 * changed during the iteration goes out as one batch. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct ctl *c = w->data;
    int r;

    if (c->render_only || runtime_busy(c->rt) || ev_is_active(&c->retry_timer))
        return;
    if (!c->synced || c->resync_wanted) {
        start_resync(c);
        return;
    }
    if (!c->listed)
        return;
    plan_reset(&c->plan);
    for (size_t i = 0; i < c->n_backends; i++)
        if (c->backends[i].dirty)
            converge_backend(c, &c->backends[i]);
    if (!c->plan.n)
        return;
    if (log_get_level() >= LOG_DEBUG)
        for (size_t i = 0; i < c->plan.n; i++)
            log_debug(MOD, "batch command %zu/%zu: %s", i + 1, c->plan.n, c->plan.cmds[i]);
    c->batch_started = ev_time();
    c->stats.batches++;
    c->stats.commands += c->plan.n;
    r = runtime_send(c->rt, (const char *const *)c->plan.cmds, c->plan.n, on_batch_reply, c);
    if (r < 0)
        runtime_failed(c, r, "sending a batch");
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* Nothing to do: the next on_prepare() tries again. */
}

static void on_resync_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctl *c = w->data;

    c->resync_wanted = true;
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    log_info(MOD, "signal %d: stopping (HAProxy is left as it is)", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct ctl *c = w->data;

    log_info(MOD, "SIGHUP: re-reading HAProxy's state");
    c->resync_wanted = true;
}

/* ---- render mode ---- */

static void render_now(struct ctl *c)
{
    struct render_backend *rb = calloc(c->n_backends ? c->n_backends : 1, sizeof(*rb));
    const char *path = c->render_path ? c->render_path : c->cfg->services_file;
    char *text = NULL;
    size_t len = 0;
    int r = -ENOMEM;

    if (!rb)
        goto out;
    for (size_t i = 0; i < c->n_backends; i++) {
        struct backend *b = &c->backends[i];

        r = slots_init(&b->slots, (size_t)b->svc->opt.slots);
        if (r < 0)
            goto out;
        r = slots_assign(&b->slots, catalog_find(c->cat, b->svc->name), NULL);
        if (r < 0)
            goto out;
        if (b->slots.overflow)
            log_warn(MOD, "backend %s: %zu endpoints have no free slot (%zu slots)",
                     b->svc->name, b->slots.overflow, b->slots.n);
        rb[i].svc = b->svc;
        rb[i].slots = &b->slots;
    }
    r = render_services(c->cfg, rb, c->n_backends, &text, &len, &c->render_errmsg);
    if (r == 0)
        r = render_write_atomic(path, text, len, &c->render_errmsg);
    if (r == 0)
        log_info(MOD, "wrote %s (%zu backends)", path, c->n_backends);
out:
    c->render_err = r;
    free(rb);
    free(text);
    ev_break(c->loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctl *c = w->data;

    c->render_err = -ETIMEDOUT;
    memprintf(&c->render_errmsg, "etcd did not answer within %.0f s", w->repeat);
    ev_break(loop, EVBREAK_ALL);
}

/* ---- setup and teardown ---- */

static void ctl_destroy(struct ctl *c)
{
    if (c->loop) {
        ev_prepare_stop(c->loop, &c->flush);
        ev_timer_stop(c->loop, &c->resync_timer);
        ev_timer_stop(c->loop, &c->retry_timer);
        ev_timer_stop(c->loop, &c->deadline);
        ev_signal_stop(c->loop, &c->sig_term);
        ev_signal_stop(c->loop, &c->sig_int);
        ev_signal_stop(c->loop, &c->sig_hup);
    }
    etcd_sync_stop(c->sync);
    etcd_client_free(c->etcd);
    http_client_free(c->http);
    runtime_free(c->rt);
    catalog_free(c->cat);
    plan_free(&c->plan);
    for (size_t i = 0; i < c->n_backends; i++) {
        slots_free(&c->backends[i].slots);
        free(c->backends[i].have);
        free(c->backends[i].seen);
    }
    free(c->backends);
    for (size_t i = 0; i < c->n_ignored; i++)
        free(c->ignored[i]);
    free(c->ignored);
    free(c->render_errmsg);
}

static int ctl_init(struct ctl *c, const struct config *cfg, bool render_only, char **errmsg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->render_only = render_only;
    c->loop = EV_DEFAULT;
    plan_init(&c->plan);
    if (!c->loop) {
        memprintf(errmsg, "cannot create the event loop");
        return -ENOMEM;
    }
    c->n_backends = cfg->n_services;
    c->backends = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*c->backends));
    c->cat = catalog_new(cfg->etcd_prefix);
    c->http = http_client_new(c->loop);
    if (!c->backends || !c->cat || !c->http)
        goto oom;
    for (size_t i = 0; i < cfg->n_services; i++)
        c->backends[i].svc = &cfg->services[i];
    c->etcd = etcd_client_new(c->loop, c->http, cfg->etcd_endpoints, cfg->n_etcd_endpoints);
    if (!c->etcd)
        goto oom;
    if (!render_only) {
        c->rt = runtime_new(c->loop, cfg->runtime_socket, RUNTIME_TIMEOUT_S);
        if (!c->rt) {
            memprintf(errmsg, "haproxy.runtime_socket: cannot use '%s'", cfg->runtime_socket);
            return -EINVAL;
        }
    }
    ev_prepare_init(&c->flush, on_prepare);
    c->flush.data = c;
    ev_timer_init(&c->retry_timer, on_retry, 0., 0.);
    c->retry_timer.data = c;
    ev_timer_init(&c->resync_timer, on_resync_timer, cfg->resync_interval_s,
                  cfg->resync_interval_s);
    c->resync_timer.data = c;
    ev_timer_init(&c->deadline, on_deadline, 0., 0.);
    c->deadline.data = c;
    ev_signal_init(&c->sig_term, on_stop_signal, SIGTERM);
    ev_signal_init(&c->sig_int, on_stop_signal, SIGINT);
    ev_signal_init(&c->sig_hup, on_hup, SIGHUP);
    c->sig_hup.data = c;
    return 0;
oom:
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

int controller_run(const struct config *cfg, char **errmsg)
{
    struct ctl c;
    int r = ctl_init(&c, cfg, false, errmsg);

    if (r < 0)
        goto out;
    c.sync = etcd_sync_start(c.etcd, cfg->etcd_prefix, &sync_ops, &c);
    if (!c.sync) {
        memprintf(errmsg, "cannot start the etcd sync");
        r = -ENOMEM;
        goto out;
    }
    ev_prepare_start(c.loop, &c.flush);
    ev_timer_start(c.loop, &c.resync_timer);
    ev_signal_start(c.loop, &c.sig_term);
    ev_signal_start(c.loop, &c.sig_int);
    ev_signal_start(c.loop, &c.sig_hup);
    log_info(MOD, "started: %zu services, etcd prefix %s, runtime socket %s", cfg->n_services,
             cfg->etcd_prefix, cfg->runtime_socket);
    ev_run(c.loop, 0);
    log_info(MOD, "stopped: %llu batches, %llu commands, %llu refused, %llu resyncs, "
                  "%llu values rejected",
             c.stats.batches, c.stats.commands, c.stats.command_failures, c.stats.resyncs,
             c.cat->rejected);
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
