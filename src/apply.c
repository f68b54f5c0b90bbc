/* apply - the runtime applier (apply.h): HAProxy's state read and adopted,
 * batches planned and sent, replies logged, refusals remembered, with the
 * runtime socket's backoff and the master socket's sentinel. */
#include <slotsync/apply.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/bulk.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/dynback.h>
#include <slotsync/endpoint.h>
#include <slotsync/fdlimit.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>
#include <slotsync/plan.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>
#include <slotsync/slots.h>
#include <slotsync/spare.h>
#include <slotsync/table.h>
#include <slotsync/timeouts.h>
#include <slotsync/view.h>

#define MOD "sync"
#define RETRY_MIN_S 0.1
#define RETRY_MAX_S 5.0
#define RETRY_JITTER 0.2          /* delays are spread over +-20% */
#define RETRY_SLOW_MAX_S 30.0     /* refusals, a socket below level admin, the master */
#define REFUSAL_RESYNC_MIN_S 1.0  /* first resync after a refused command */
/* A unix socket that comes back (HAProxy restarted, by us or anyone) is
 * used within a second: connecting to a path costs nothing when it is
 * missing, so its reconnect backoff is capped here (with the jitter's +20%,
 * under 1 s). A TCP address keeps the caps above. Issue 23. */
#define UNIX_RETRY_MAX_S 0.8
#define REFUSAL_WARN_EVERY_S 60.0 /* one warning per (slot, reason) per minute */
#define REFUSAL_WARN_MAX 10       /* warning lines per batch; the rest at debug */
#define MASTER_FLAP_S 2.0         /* a sentinel that lived less is not reconnected at once */
/* Per batch, at most this many changes get an info line each; the rest go
 * to debug and an info summary counts them (a cold start of 100,000
 * endpoints must not print 100,000 lines). */
#define CHANGE_LOG_MAX 20
/* A batch takes whole backends until it holds this many commands; the
 * backends left dirty go in the next one, once this one is answered. One
 * batch for a cold start of 100,000 endpoints would hold 200,000 commands
 * and their origins and change lines (about 500 bytes a command) at once,
 * and one line of 10 MB. 1024 keeps that near half a megabyte; a batch
 * costs one round trip (about a millisecond here) beside HAProxy's own
 * work on its commands (tens of microseconds each). Long lines are slower
 * too: in bench.py's cold start of 100,000 endpoints, batches of 6,000
 * commands (270 kB, more than a socket buffer) spent 66 us a command in
 * HAProxy, batches of 2,000 31 us (one run each). */
#define BATCH_COMMANDS_MAX 1024
#define STR_(x) #x
#define STR(x) STR_(x)

/* The owner's backend living in the HAProxy proxy named name (its own, or
 * the spare it is bound to), borrowed, or NULL. */
static struct backend *apply_backend(struct apply *a, const char *name)
{
    size_t n = a->tab->n;
    struct backend **v = a->tab->v, *b;
    long i = spare_index(name);

    if (i >= 0) {
        const char *svc = a->spares ? spare_bound(a->spares, (size_t)i) : NULL;

        b = svc ? backend_lookup(v, n, svc) : NULL;
        return b && strcmp(backend_proxy(b), name) == 0 ? b : NULL;
    }
    b = backend_lookup(v, n, name);
    return b && !backend_is_spare(b) ? b : NULL;
}

/* Double *delay within [min, max] and arm t for it, with jitter. */
static void backoff_start(struct apply *a, ev_timer *t, double *delay, double min, double max)
{
    *delay = *delay < min ? min : *delay * 2;
    if (*delay > max)
        *delay = max;
    ev_timer_stop(a->loop, t);
    ev_timer_set(t, *delay * jitter_around(RETRY_JITTER), 0.);
    ev_timer_start(a->loop, t);
}

/* max, or UNIX_RETRY_MAX_S when addr is a unix socket's path. */
static double socket_cap(const char *addr, double max)
{
    return addr && strchr(addr, '/') && max > UNIX_RETRY_MAX_S ? UNIX_RETRY_MAX_S : max;
}

static void schedule_retry_max(struct apply *a, double max)
{
    backoff_start(a, &a->retry_timer, &a->retry_delay, RETRY_MIN_S, max);
}

static void schedule_retry(struct apply *a)
{
    schedule_retry_max(a, socket_cap(a->cfg->runtime_socket, RETRY_MAX_S));
}

static void runtime_failed(struct apply *a, int err, const char *what)
{
    double now = clock_mono(), elapsed;
    const char *hint = runtime_stale(a->rt) ? " (HAProxy may still run it: its end is awaited "
                                              "before HAProxy's state is read again)"
                                            : "";

    a->stats.runtime_errors++;
    if (log_outage_begin(&a->rt_outage, now))
        log_warn(MOD, "HAProxy runtime socket %s: %s: %s%s (retrying with backoff)",
                 a->cfg->runtime_socket, what, runtime_strerror(err), hint);
    else if (log_outage_due(&a->rt_outage, now, &elapsed))
        log_warn(MOD, "HAProxy runtime socket %s still unavailable after %.0f s: %s: %s",
                 a->cfg->runtime_socket, elapsed, what, runtime_strerror(err));
    else
        log_debug(MOD, "HAProxy runtime socket still unavailable: %s", runtime_strerror(err));
    a->runtime_down = true;
    a->synced = false;
    a->level_ok = false; /* what answers next may be another HAProxy */
    schedule_retry(a);
}

static int on_state_row(const struct server_state *st, void *arg)
{
    struct apply *a = arg;
    struct backend *b = apply_backend(a, st->backend);
    struct server_view v;
    long idx;

    if (!b || !backend_ours(b))
        return 0;
    b->seen_backend = true;
    idx = slots_index_of(st->server);
    if (idx < 0)
        return 0; /* a server of the operator's own: not ours */
    /* A row the compact form cannot hold (the parser validated it) is kept
     * as unknown: everything is planned for that slot. */
    if (view_from_state(&v, st) < 0)
        memset(&v, 0, sizeof(v));
    return backend_seen_add(b, (size_t)idx, &v);
}

/* Make b's slot table match the slots HAProxy has (backend_adopt()), and
 * say what changed. */
static int adopt(struct apply *a, struct backend *b)
{
    struct catalog_service *svc = catalog_find(a->cat, b->conf.name);
    bool trusted = a->adopted && a->adopt_epoch == a->resync_epoch && !a->batch_failed;
    struct backend_adoption ad;
    int r = backend_adopt(b, trusted, svc ? svc->n_endpoints : 0, &ad);

    if (r < 0)
        return r;
    if (ad.gap)
        log_warn(MOD, "backend %s: slot servers are not contiguous after s%zu: using s1..s%zu",
                 backend_label(b), ad.contiguous, ad.contiguous);
    if (ad.runtime_lost)
        log_warn(MOD, "backend %s: slots added at run time are gone: growing by reload instead",
                 backend_label(b));
    if (ad.changed) {
        if (!b->present)
            log_warn(MOD, "backend %s is not in HAProxy's running configuration", backend_label(b));
        else
            log_info(MOD, "backend %s: %zu slots in HAProxy", backend_label(b), ad.slots);
    }
    if (ad.missing && !(a->ops->dyn_missing && a->ops->dyn_missing(b, a->arg)))
        a->ops->want_reload("backend missing in HAProxy:", b->conf.name, a->arg);
    return 0;
}

static void master_connect(struct apply *a);

/* The master socket is optional: when it cannot be reached, runtime sync
 * goes on and the periodic resync is what notices a restart. */
static void master_unreachable(struct apply *a, int err)
{
    double now = clock_mono(), elapsed;

    if (log_outage_begin(&a->master_outage, now))
        log_warn(MOD,
                 "master socket %s unreachable: %s; runtime sync goes on without it (a restart "
                 "is noticed by the periodic resync, every %d s)",
                 a->cfg->master_socket, runtime_strerror(err), a->cfg->resync_interval_s);
    else if (log_outage_due(&a->master_outage, now, &elapsed))
        log_warn(MOD, "master socket %s still unreachable after %.0f s: %s", a->cfg->master_socket,
                 elapsed, runtime_strerror(err));
    else
        log_debug(MOD, "master socket %s: %s", a->cfg->master_socket, runtime_strerror(err));
    backoff_start(a, &a->master_timer, &a->master_delay, RETRY_MIN_S * 5,
                      socket_cap(a->cfg->master_socket, RETRY_SLOW_MAX_S));
}

static void on_sentinel_lost(int err, void *arg)
{
    struct apply *a = arg;

    if (err < 0) {
        master_unreachable(a, err);
        return;
    }
    /* HAProxy restarted, reloaded, or timed the idle connection out: in every
     * case re-read its state (and the socket's level) before the next batch. */
    log_debug(MOD, "master socket sentinel closed (reload, restart or stop): resyncing");
    a->epoch++;
    a->resync_wanted = true;
    a->level_ok = false;
    a->master_lost = true;
    /* One that keeps closing at once is reconnected with backoff, not in a
     * loop of resyncs. */
    if (clock_mono() - a->master_connected_at < MASTER_FLAP_S)
        backoff_start(a, &a->master_timer, &a->master_delay, RETRY_MIN_S * 5,
                      socket_cap(a->cfg->master_socket, RETRY_SLOW_MAX_S));
    else
        a->master_delay = 0;
}

/* Connected before a resync, so that a restart after our read is noticed. It
 * watches the master: an idle connection to a worker would keep an old
 * worker alive after a reload, and the master closes it on every reload and
 * when HAProxy stops. */
static void master_connect(struct apply *a)
{
    int r;

    if (!a->master_watch || runtime_sentinel_connected(a->master_watch) ||
        ev_is_active(&a->master_timer))
        return;
    r = runtime_sentinel_connect(a->master_watch, on_sentinel_lost, a);
    if (r < 0) {
        master_unreachable(a, r);
        return;
    }
    a->master_connected_at = clock_mono();
    /* Back after an outage, or after a close: a restart may have gone
     * unnoticed, and a read done while no master answered may have been
     * the dying worker's. Read again now that the master watches. */
    if (a->master_outage.since > 0 || a->master_lost) {
        a->epoch++;
        a->resync_wanted = true;
    }
    a->master_lost = false;
}

static void on_master_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    master_connect(w->data);
}

/* "show map <file>", parsed by runtime_parse_routes(), into map_have. */
static int parse_map(struct apply *a, const char *text)
{
    struct host_route *routes = NULL;
    size_t n = 0, bad = 0;
    int r = runtime_parse_routes(text, strlen(text), &routes, &n, &bad);

    if (r < 0)
        return r;
    if (bad != a->map_bad_last)
        log_msg(bad ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, MOD,
                "show map %s: %zu lines are not routes slotsync could have written%s",
                a->cfg->hosts_map, bad, bad ? " (ignored; a host we route is set again)" : "");
    a->map_bad_last = bad;
    free(a->map_have);
    a->map_have = routes;
    a->n_map_have = n;
    return 0;
}

static int proxy_row(const char *name, void *arg)
{
    return backend_names_add(arg, name);
}

/* "show backend": every backend-capable proxy HAProxy runs, handed to the
 * owner (which settles the services waiting for it). */
static int read_proxies(struct apply *a, const char *text)
{
    struct names seen = {0};
    int r = runtime_parse_backends(text, strlen(text), proxy_row, &seen, NULL);

    if (r < 0) {
        backend_names_clear(&seen);
        return r;
    }
    backend_names_sort(&seen);
    table_set_proxies(a->tab, &seen);
    a->ops->proxies(a->arg);
    return 0;
}

/* "show info": HAProxy's version, which says whether it can create
 * backends at run time (dynback.h). A reply without a version line that
 * reads is logged once per change and counts as "cannot". */
static void read_version(struct apply *a, const char *info)
{
    struct haproxy_version v;
    bool known = dynback_parse_version(info, strlen(info), &v) == 0;
    bool was = a->dyn.version_known && dynback_version_ok(&a->dyn.version);

    if (!known) {
        if (a->dyn.version_known || !a->dyn_version_noted)
            log_warn(MOD, "show info gave no version slotsync can read: no backend is created at "
                          "run time (new services use spare backends or a reload)");
        a->dyn_version_noted = true;
        a->dyn.version_known = false;
        return;
    }
    if (!a->dyn.version_known || a->dyn.version.major != v.major ||
        a->dyn.version.minor != v.minor || a->dyn.version.patch != v.patch) {
        bool now = dynback_version_ok(&v);

        if (now && !dynback_config_ok(a->cfg))
            log_info(MOD,
                     "HAProxy %u.%u.%u: it can add backends at run time, but the config does not "
                     "route new services into backends of their own by Host (http_frontend with "
                     "a domain, HTTP defaults with a dynamic balance): spare backends or a "
                     "reload",
                     v.major, v.minor, v.patch);
        else if (now && !a->cfg->base_config)
            log_info(MOD,
                     "HAProxy %u.%u.%u: it can add backends at run time, but haproxy.base_config "
                     "is not set, so slotsync cannot see its \"defaults " DYNBACK_BASE_DEFAULTS
                     "\" (see haproxy/haproxy.cfg): new services use spare backends or a reload",
                     v.major, v.minor, v.patch);
        else if (now && !a->dyn.base_declares)
            log_info(MOD,
                     "HAProxy %u.%u.%u: it can add backends at run time, but haproxy.base_config "
                     "declares no \"defaults " DYNBACK_BASE_DEFAULTS "\" (see haproxy/haproxy.cfg): "
                     "new services use spare backends or a reload",
                     v.major, v.minor, v.patch);
        else if (now)
            log_info(MOD,
                     "HAProxy %u.%u.%u: new HTTP services get a backend of their own at run time "
                     "(add backend), with no spare and no reload",
                     v.major, v.minor, v.patch);
        else if (was || !a->dyn.version_known)
            log_info(MOD,
                     "HAProxy %u.%u.%u: no backend can be added at run time before %d.%d: new "
                     "services use spare backends or a reload",
                     v.major, v.minor, v.patch, DYNBACK_MIN_MAJOR, DYNBACK_MIN_MINOR);
    }
    a->dyn.version = v;
    a->dyn.version_known = true;
    a->dyn_version_noted = false;
}

static void on_resync_reply(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                            void *arg)
{
    struct apply *a = arg;
    struct backend **be;
    size_t bad = 0, slots = 0, n_be = 0;
    double down;
    int r;

    if (err < 0) {
        runtime_failed(a, err, "show servers state");
        return;
    }
    if (a->epoch != a->resync_epoch) {
        /* HAProxy reloaded or restarted while we read: what we read may be
         * the old process's. Read again rather than adopt it. */
        a->resync_wanted = true;
        return;
    }
    if (a->resync_has_info && n > 0) {
        read_version(a, replies[n - 1]);
        n--;
    }
    down = log_outage_end(&a->rt_outage, clock_mono());
    if (down >= 0)
        log_info(MOD, "HAProxy runtime socket %s answers again after %.0f s",
                 a->cfg->runtime_socket, down);
    if (a->resync_has_level) {
        int level = runtime_cli_level(replies[0]);

        if (level < 0) {
            runtime_failed(a, -EPROTO, "show cli level gave an unexpected reply");
            return;
        }
        replies++;
        n--;
        if (level != RUNTIME_LEVEL_ADMIN) {
            /* Every change would be refused: send nothing, ask again later. */
            a->stats.level_too_low++;
            if (!a->level_noted)
                log_error(MOD,
                          "HAProxy runtime socket %s is at level %s: slotsync needs \"level "
                          "admin\" on it (stats socket ... level admin); nothing is sent until "
                          "it has it (checking again with backoff)",
                          a->cfg->runtime_socket, runtime_level_name((enum runtime_level)level));
            a->level_noted = true;
            a->synced = false;
            schedule_retry_max(a, RETRY_SLOW_MAX_S);
            return;
        }
        if (a->level_noted)
            log_info(MOD, "HAProxy runtime socket %s is at level admin now",
                     a->cfg->runtime_socket);
        a->level_noted = false;
        a->level_ok = true;
    }
    if (!runtime_reply_ok(PLAN_SHOW_STATE, replies[0])) {
        runtime_failed(a, -EPROTO, "show servers state gave an unexpected reply");
        return;
    }
    if (n > 2) {
        /* "show map": an unknown map means HAProxy runs without our HTTP
         * frontend (yet). */
        a->map_known = runtime_reply_ok(PLAN_SHOW_MAP, replies[2]) && parse_map(a, replies[2]) == 0;
        a->map_dirty = true;
        if (!a->map_known && !a->map_missing_noted) {
            a->map_missing_noted = true;
            a->ops->want_reload("HTTP frontend missing in HAProxy:", a->cfg->hosts_map, a->arg);
        } else if (a->map_known) {
            a->map_missing_noted = false;
            /* The live map's spare bindings first: the proxies and rows
             * read next are joined through them. */
            if (a->ops->spares_read)
                a->ops->spares_read(a->map_have, a->n_map_have, a->arg);
        }
    }
    if (n < 2 || !runtime_reply_ok(PLAN_SHOW_BACKENDS, replies[1]) ||
        (r = read_proxies(a, replies[1])) < 0) {
        runtime_failed(a, -EPROTO, "show backend gave an unexpected reply");
        return;
    }
    be = a->tab->v;
    n_be = a->tab->n;
    for (size_t i = 0; i < n_be; i++) {
        be[i]->n_seen = 0;
        be[i]->seen_backend = false;
        be[i]->dyn_removing = false; /* HAProxy's state says what was removed */
    }
    r = runtime_parse_servers_state(replies[0], strlen(replies[0]), on_state_row, a, &bad);
    if (r < 0) {
        runtime_failed(a, r, "show servers state could not be parsed");
        return;
    }
    if (bad)
        log_warn(MOD, "show servers state: %zu rows failed validation and were ignored", bad);
    for (size_t i = 0; i < n_be; i++) {
        if (adopt(a, be[i]) < 0) {
            runtime_failed(a, -ENOMEM, "adopting HAProxy's state");
            return;
        }
        slots += be[i]->slots.n;
    }
    a->adopted = true;
    a->adopt_epoch = a->resync_epoch;
    a->batch_failed = false;
    log_msg(a->runtime_down || !a->synced ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, MOD,
            "HAProxy state read: %zu slots in %zu backends", slots, n_be);
    a->stats.resyncs++;
    a->last_resync_at = clock_mono();
    a->runtime_down = false;
    a->synced = true;
    a->resync_wanted = false;
    a->retry_delay = 0;
    /* A dying worker's state is repaired by the read that follows the
     * master's return (master_connect) or by the periodic resync. */
    if (a->master_watch && runtime_sentinel_connected(a->master_watch) &&
        (down = log_outage_end(&a->master_outage, clock_mono())) >= 0) {
        log_info(MOD, "master socket %s answers again after %.0f s", a->cfg->master_socket, down);
        a->master_delay = 0;
    }
}

static void start_resync(struct apply *a)
{
    struct plan cmds;
    int r;

    plan_init(&cmds);
    /* Without a master socket the periodic resync notices a restart. */
    master_connect(a);
    /* At start and after every reconnect: is the socket at level admin? */
    a->resync_has_level = !a->level_ok;
    if ((r = plan_resync(&cmds, a->resync_has_level,
                         a->cfg->http_bind.set ? a->cfg->hosts_map : NULL)) < 0) {
        plan_free(&cmds);
        runtime_failed(a, r, "building the resync commands");
        return;
    }
    /* HAProxy's version with the level: after every (re)connect or reload
     * (the new worker may be another binary). */
    a->resync_has_info = a->resync_has_level;
    if (a->resync_has_info && (r = plan_add(&cmds, PLAN_SHOW_INFO)) < 0) {
        plan_free(&cmds);
        runtime_failed(a, r, "building the resync commands");
        return;
    }
    a->resync_epoch = a->epoch;
    r = runtime_send(a->rt, (const char *const *)cmds.cmds, cmds.n, on_resync_reply, a);
    plan_free(&cmds);
    if (r < 0)
        runtime_failed(a, r, "connect");
}

/* The live page's list of recent changes. */
static void record_change(struct apply *a, const struct plan_change *ch, const char *name)
{
    struct metrics_change mc;

    if (!a->recent)
        return;
    memset(&mc, 0, sizeof(mc));
    mc.at = clock_wall(); /* a time of day, shown on the live page */
    snprintf(mc.backend, sizeof(mc.backend), "%s", name);
    snprintf(mc.slot, sizeof(mc.slot), "s%zu", ch->slot + 1);
    if (ch->instance)
        snprintf(mc.instance, sizeof(mc.instance), "%s", ch->instance);
    if (ch->known)
        snprintf(mc.what, sizeof(mc.what), "%s -> %s", ch->had, ch->want);
    else
        snprintf(mc.what, sizeof(mc.what), "set to %s", ch->want);
    mc.drift = ch->drift;
    mc.latency_s = ch->drift ? -1 : a->batch_latency;
    metrics_recent_add(a->recent, &mc);
}

/* One info line per applied change, up to CHANGE_LOG_MAX per batch (the
 * rest at debug), then a summary. A change is applied when every command
 * that carries it was accepted. */
static void log_changes(struct apply *a, char **replies, size_t n, size_t failed)
{
    size_t shown = 0, changes = 0, drifts = 0, k = 0;
    const struct plan *p = &a->plan;

    for (size_t i = 0; i < n; i++) {
        const struct plan_change *ch =
            k < p->n_changes && p->changes[k].first == i ? &p->changes[k] : NULL;
        size_t last = ch ? ch->first + ch->n : i + 1;
        bool ok = true;
        enum log_level level;

        for (size_t j = i; j < last && j < n; j++)
            ok = ok && runtime_reply_ok(p->cmds[j], replies[j]);
        if (ch)
            k++;
        i = last - 1;
        if (!ok)
            continue; /* logged as refused */
        const struct backend *b = ch ? apply_backend(a, ch->backend) : NULL;
        /* "web (spare:3)" while the service lives in a spare */
        const char *name = b ? backend_label(b) : ch ? ch->backend : "";

        if (ch)
            record_change(a, ch, name);
        changes++;
        level = shown < CHANGE_LOG_MAX ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
        if (level == LOG_LEVEL_INFO)
            shown++;
        if (!ch) {
            log_msg(level, MOD, "applied: %s", p->cmds[last - 1]);
            continue;
        }
        char inst[2 * 255 + 1], slot[32], addr[ENDPOINT_HOST_MAX + 10] = "";
        const struct slot *s = b && ch->slot < b->slots.n ? &b->slots.slots[ch->slot] : NULL;

        if (ch->instance)
            log_quote(ch->instance, strlen(ch->instance), inst, sizeof(inst));
        else
            snprintf(inst, sizeof(inst), "emptied");
        /* The slot's endpoint as applied, for the fields of logfmt/json. */
        if (ch->instance && s && s->instance && strcmp(s->instance, ch->instance) == 0)
            endpoint_format(&s->ep, addr, sizeof(addr));
        snprintf(slot, sizeof(slot), SLOT_NAME_FMT, ch->slot + 1);
        struct log_field f[] = {
            {"service", b ? b->conf.name : ch->backend},
            {"slot", slot},
            {"instance", ch->instance},
            {"addr", addr[0] ? addr : NULL},
            {"had", ch->known ? ch->had : NULL},
            {"want", ch->want},
            {"drift", ch->drift ? "true" : "false"},
        };
        size_t nf = sizeof(f) / sizeof(f[0]);

        if (ch->drift) {
            drifts++;
            a->stats.drift_repairs++;
            log_fields(level, MOD, f, nf,
                       "drift repaired: %s/s%zu (%s): haproxy had %s, etcd says %s", name,
                       ch->slot + 1, inst, ch->had, ch->want);
        } else {
            log_fields(level, MOD, f, nf, "%s/s%zu (%s): %s%s%s", name, ch->slot + 1, inst,
                       ch->known ? ch->had : "", ch->known ? " -> " : "set to ", ch->want);
        }
    }
    log_msg(
        failed ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, MOD,
        "applied %zu runtime %s (%zu failed) in %.1f ms: %zu %s, %zu drift %s%s", n,
        LOG_PLURAL(n, "command", "commands"), failed, (clock_mono() - a->batch_started) * 1e3, changes,
        LOG_PLURAL(changes, "change", "changes"), drifts, LOG_PLURAL(drifts, "repair", "repairs"),
        changes > shown ? " (the lines past the first " STR(CHANGE_LOG_MAX) " are at debug level)"
                        : "");
}

static void refusal_forget(struct apply *a, const struct plan_origin *o, const char *cmd)
{
    struct backend *b = o->slot >= 0 ? apply_backend(a, o->backend) : NULL;

    if (b)
        backend_refusal_forget(b, (size_t)o->slot, cmd);
}

/* See backend_refusal_note(): one warning per (slot, reason) per minute. */
static bool refusal_note(struct apply *a, const struct plan_origin *o, const char *cmd,
                         const char *reason)
{
    struct backend *b = o->slot >= 0 ? apply_backend(a, o->backend) : NULL;

    return b && backend_refusal_note(b, o, cmd, reason, clock_mono(), REFUSAL_WARN_EVERY_S);
}

/* Refused commands are not resent, but HAProxy's state is read again (the
 * view assumed them applied) after a delay that doubles, with jitter, up to
 * RETRY_SLOW_MAX_S while refusals keep coming. */
static void refusal_resync_later(struct apply *a)
{
    double now = clock_mono();

    if (now - a->last_refusal > 2 * RETRY_SLOW_MAX_S)
        a->refusal_delay = 0;
    a->last_refusal = now;
    if (!ev_is_active(&a->refusal_timer))
        backoff_start(a, &a->refusal_timer, &a->refusal_delay, REFUSAL_RESYNC_MIN_S,
                      RETRY_SLOW_MAX_S);
}

static void on_refusal_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct apply *a = w->data;

    a->resync_wanted = true;
}

/* HAProxy's answer to an "add backend" (create) or a "del backend" of the
 * backend named name (ok: its success, reply borrowed). */
static void dyn_answered(struct apply *a, const char *name, bool create, bool ok, const char *reply)
{
    struct backend *b = table_find(a->tab, name);
    char q[LOG_QUOTE_MAX / 4];

    if (!b)
        return;
    log_quote(reply, strlen(reply), q, sizeof(q));
    if (!create) {
        if (ok) {
            log_info(MOD, "service %s: backend removed from HAProxy at run time", name);
            table_drop(a->tab, b); /* endpoints that come back make a new one */
            a->ops->runs_changed(a->arg);
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
        a->ops->runs_changed(a->arg);
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
    a->dyn.running_has_defaults = false;
    b->present = false;
    b->dyn_created = false;
    for (size_t i = 0; i < b->n_refused; i++)
        plan_refusal_clear(&b->refused[i]);
    b->n_refused = 0;
    if (backend_resize(b, 0) < 0)
        log_error(MOD, "service %s: out of memory", name);
    a->ops->dyn_refused(b, a->arg);
}

/* The answers to the batch's "add backend" and "del backend" commands
 * (after everything else: a deleted backend is dropped from the table). */
static void dyn_answers(struct apply *a, char **replies, size_t n)
{
    for (size_t i = 0; i < n && a->ops->dyn_refused; i++) {
        const char *cmd = a->plan.cmds[i], *name;
        bool create = strncmp(cmd, PLAN_ADD_BACKEND, strlen(PLAN_ADD_BACKEND)) == 0;
        char be[SERVICE_NAME_MAX + 1];
        size_t len;

        if (!create && strncmp(cmd, PLAN_DEL_BACKEND, strlen(PLAN_DEL_BACKEND)) != 0)
            continue;
        name = cmd + strlen(create ? PLAN_ADD_BACKEND : PLAN_DEL_BACKEND);
        len = strcspn(name, " ");
        if (len == 0 || len >= sizeof(be))
            continue;
        memcpy(be, name, len);
        be[len] = '\0';
        if (runtime_reply_ok(cmd, replies[i]))
            create ? a->dyn_created++ : a->dyn_deleted++;
        dyn_answered(a, be, create, runtime_reply_ok(cmd, replies[i]), replies[i]);
    }
}

static void on_batch_reply(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg)
{
    struct apply *a = arg;
    size_t failed = 0, warned = 0;

    if (err == -EPROTO && raw) {
        /* HAProxy answered, but a refusal came without its empty line (2.6
         * does that for a few "add server" errors): which command failed is
         * unknown. HAProxy is reachable, so this is a refusal, not an
         * outage: its state is read again with the refusal backoff, and
         * the same batch cannot come back faster than that. */
        a->stats.command_failures++;
        if (clock_mono() - a->unframed_warned_at >= REFUSAL_WARN_EVERY_S) {
            char q[160];

            a->unframed_warned_at = clock_mono();
            log_quote(raw, raw_len, q, sizeof(q));
            log_warn(MOD,
                     "HAProxy refused part of a batch of %zu commands without saying which "
                     "(\"%s\"); reading its state again with backoff",
                     a->plan.n, q);
        }
        refusal_resync_later(a);
        return;
    }
    if (err < 0) {
        /* Whatever part of the batch was applied, a resync finds out; its
         * events count when a later batch applies them. */
        metrics_pending_move(&a->events_in_flight, &a->events_pending);
        metrics_pending_move(&a->events_pending, &a->events_in_flight);
        a->batch_failed = true;
        runtime_failed(a, err, "sending a batch");
        return;
    }
    metrics_observe(&a->obs->batch_seconds, clock_mono() - a->batch_started, 1);
    if (n >= BULK_SAMPLE_MIN_COMMANDS) {
        /* what the cost model learns a command costs on this HAProxy */
        a->stats.sampled_commands += n;
        a->stats.sampled_seconds += clock_mono() - a->batch_started;
    }
    a->batch_latency =
        a->events_in_flight.len
            ? metrics_pending_observe(&a->events_in_flight, &a->obs->event_to_applied, clock_mono())
            : -1;
    for (size_t i = 0; i < n; i++) {
        const struct plan_origin *o = &a->plan.origin[i];
        char q[LOG_QUOTE_MAX / 4];

        if (runtime_reply_ok(a->plan.cmds[i], replies[i])) {
            refusal_forget(a, o, a->plan.cmds[i]);
            continue;
        }
        failed++;
        log_quote(replies[i], strlen(replies[i]), q, sizeof(q));
        if (!refusal_note(a, o, a->plan.cmds[i], q) && warned++ < REFUSAL_WARN_MAX)
            log_warn(MOD,
                     "HAProxy refused \"%s\": \"%s\"%s (not sent again until the endpoint or "
                     "HAProxy's side of the slot changes)",
                     a->plan.cmds[i], q,
                     reply_judge(a->plan.cmds[i], replies[i], NULL) == REPLY_UNKNOWN
                         ? ", a reply no supported HAProxy version gives: taken for a refusal"
                         : "");
        else
            log_debug(MOD, "HAProxy refused \"%s\": \"%s\"", a->plan.cmds[i], q);
    }
    if (warned > REFUSAL_WARN_MAX)
        log_warn(MOD, "HAProxy refused %zu more commands of this batch (debug level lists them)",
                 warned - REFUSAL_WARN_MAX);
    a->stats.command_failures += failed;
    if (failed) {
        a->batch_failed = true;
        refusal_resync_later(a);
    }
    log_changes(a, replies, n, failed);
    dyn_answers(a, replies, n);
}

/* Add slots old..n-1 to a running backend with "add server". */
static int grow_at_runtime(struct apply *a, struct backend *b, size_t n)
{
    size_t old = b->slots.n;
    int r;

    r = plan_add_slots(&a->plan, backend_proxy(b), old, n, b->conf.opt.server_options);
    if (r < 0)
        return r;
    r = backend_add_slots(b, n);
    if (r < 0)
        return r;
    a->stats.grown += n - old;
    log_info(MOD, "backend %s: %zu -> %zu slots at run time (add server, no reload)",
             backend_label(b), old, n);
    return 0;
}

/* A weight a static algorithm cannot apply (backend_static_weights()). */
static void warn_weight(const struct backend *b, const struct slot *s, void *arg)
{
    struct apply *a = arg;

    a->stats.static_weights_ignored++;
    log_warn(MOD,
             "backend %s uses balance %s: HAProxy cannot change weights at run time, so "
             "weight %u of %s/%s is not applied (only weight 0, as drain)",
             backend_label(b), b->conf.opt.balance, s->ep.weight, b->conf.name, s->instance);
}

/* The planning options of b: its refused commands, and for a static
 * algorithm no weights (one warning per endpoint whose weight is not sent). */
static const struct plan_opts *static_opts(struct apply *a, struct backend *b, struct plan_opts *o)
{
    backend_plan_opts(b, o);
    if (o->static_weights)
        backend_static_weights(b, warn_weight, a);
    return o;
}

bool apply_dynamic_usable(const struct apply *a)
{
    return dynback_usable(&a->dyn, a->cfg);
}

/* b's backend, created now: "add backend" and its slots (as many as its
 * endpoints need, at least the configured count), each a dynamic server in
 * maintenance with no address until the slot commands that follow fill
 * it. An "add backend" that finds the name taken by a backend leaves that
 * one (a creation that raced a resync, or a removal that stopped
 * half-way), and the slots are added to it. */
static int dyn_plan_create(struct apply *a, struct backend *b, size_t endpoints)
{
    size_t n = backend_fit_slots(b, 0, endpoints);
    int r;

    b->dyn_create = false;
    if ((r = backend_resize(b, 0)) < 0 ||
        (r = plan_create_backend(&a->plan, b->conf.name, n, b->conf.opt.server_options)) < 0 ||
        (r = backend_add_slots(b, n)) < 0) {
        log_error(MOD, "backend %s: planning its creation failed: %s", b->conf.name,
                  strerror(-r));
        b->present = false;
        a->resync_wanted = true;
        return r;
    }
    b->dyn_removing = false;
    log_info(MOD, "service %s: backend added at run time with %zu slots (add backend, no reload)",
             b->conf.name, n);
    return 0;
}

/* A service with no endpoint left leaves HAProxy at run time (dynback.h):
 * its route goes in this batch (it is not present any more), and its
 * backend is unpublished, emptied and deleted. */
static void dyn_plan_delete(struct apply *a, struct backend *b)
{
    int r = plan_delete_backend(&a->plan, b->conf.name, b->slots.n);

    if (r < 0) {
        log_error(MOD, "backend %s: planning its removal failed: %s", b->conf.name, strerror(-r));
        return;
    }
    b->dyn_removing = true;
    b->dyn_unpublished = true;
    b->present = false;
    a->map_dirty = true;
    log_info(MOD, "service %s: no endpoint left: its backend is removed at run time (del backend, "
                  "no reload)",
             b->conf.name);
}

/* additions: a listing is partly read (apply_send_additions()). */
static void converge_backend(struct apply *a, struct backend *b, bool additions)
{
    struct catalog_service *svc = catalog_find(a->cat, b->conf.name);
    struct plan_opts opts;
    size_t endpoints = svc ? svc->n_endpoints : 0;
    size_t first_change = a->plan.n_changes;
    size_t n = 0;
    bool publish = false;
    int r;

    if (additions)
        b->page_dirty = false; /* b->dirty stays: the listing's end converges it whole */
    else
        b->dirty = b->page_dirty = false;
    if (!b->present || !backend_ours(b))
        return;
    if (!additions && b->dyn_create) {
        if (dyn_plan_create(a, b, endpoints) < 0)
            return;
        publish = true;
    } else if (!additions && !endpoints && apply_dynamic_usable(a) &&
               dynback_removable(b, endpoints)) {
        dyn_plan_delete(a, b);
        return;
    } else if (!additions && endpoints && b->dyn_unpublished) {
        publish = true; /* a removal that stopped half-way left it unpublished */
    }
    switch (additions ? backend_growth_additions(b, endpoints, &n)
                      : backend_growth(b, endpoints, &n)) {
    case BACKEND_GROW_RUNTIME:
        r = grow_at_runtime(a, b, n);
        if (r < 0) {
            log_error(MOD, "backend %s: growing: %s", backend_label(b), strerror(-r));
            a->resync_wanted = true;
            return;
        }
        break;
    case BACKEND_GROW_RELOAD:
        a->ops->want_reload(endpoints > b->slots.n ? "more slots needed by"
                                                   : "more slots configured for",
                            b->conf.name, a->arg);
        break;
    case BACKEND_GROW_NONE:
        break;
    }
    r = additions ? slots_assign_partial(&b->slots, svc, b->have)
                  : slots_assign(&b->slots, svc, b->have);
    if (r < 0) {
        log_error(MOD, "backend %s: %s", backend_label(b), strerror(-r));
        b->dirty = true;
        b->page_dirty = additions;
        return;
    }
    if (b->slots.overflow != b->last_overflow) {
        if (b->slots.overflow)
            log_warn(MOD, "backend %s: %zu %s no free slot (%zu %s)", backend_label(b),
                     b->slots.overflow,
                     LOG_PLURAL(b->slots.overflow, "endpoint has", "endpoints have"), b->slots.n,
                     LOG_PLURAL(b->slots.n, "slot", "slots"));
        else
            log_info(MOD, "backend %s: every endpoint has a slot again", backend_label(b));
        b->last_overflow = b->slots.overflow;
    }
    static_opts(a, b, &opts);
    opts.additions_only = additions;
    r = plan_backend_opts(&a->plan, backend_proxy(b), &b->slots, b->have, &opts);
    if (r < 0) {
        log_error(MOD, "backend %s: planning failed: %s", backend_label(b), strerror(-r));
        a->resync_wanted = true;
        return;
    }
    for (size_t i = first_change; i < a->plan.n_changes; i++)
        a->plan.changes[i].drift = b->drift[a->plan.changes[i].slot];
    memset(b->drift, 0, b->slots.n * sizeof(*b->drift));
    /* Routed only once its slots are filled (the map follows the batch's
     * backends). */
    if (publish && (r = plan_publish_backend(&a->plan, b->conf.name)) < 0) {
        log_error(MOD, "backend %s: planning failed: %s", backend_label(b), strerror(-r));
        a->resync_wanted = true;
    }
}

/* The routes of the backends HAProxy runs. */
static int present_routes(struct apply *a, struct host_route **out, size_t *n_out)
{
    return backend_host_routes(a->cfg, a->tab->v, a->tab->n, false, out, n_out);
}

/* Runtime map commands from the map HAProxy has to the one we want. */
static void converge_map(struct apply *a)
{
    struct host_route *want = NULL;
    size_t nw = 0;
    int r;

    a->map_dirty = false;
    if (!a->cfg->http_bind.set || !a->map_known)
        return;
    if (present_routes(a, &want, &nw) < 0) {
        log_error(MOD, "host map %s: out of memory", a->cfg->hosts_map);
        a->map_dirty = true;
        return;
    }
    r = plan_map(&a->plan, a->cfg->hosts_map, want, nw, a->map_have, a->n_map_have);
    if (r < 0) {
        /* Validated input cannot get here (plan.c checks the longest
         * command at compile time): say so once, and try again at the next
         * change rather than spin. */
        if (!a->map_plan_failed)
            log_error(MOD, "host map %s: its commands cannot be built: %s", a->cfg->hosts_map,
                      strerror(-r));
        a->map_plan_failed = true;
        free(want);
        return;
    }
    a->map_plan_failed = false;
    free(a->map_have);
    a->map_have = want;
    a->n_map_have = nw;
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* Nothing to do: the owner's next loop iteration tries again. */
}

int apply_init(struct apply *a, struct ev_loop *loop, const struct config *cfg, struct catalog *cat,
               struct table *tab, struct metrics *obs, const struct apply_ops *ops, void *arg,
               char **errmsg)
{
    a->loop = loop;
    a->cfg = cfg;
    a->cat = cat;
    a->tab = tab;
    a->obs = obs;
    a->ops = ops;
    a->arg = arg;
    plan_init(&a->plan);
    ev_timer_init(&a->retry_timer, on_retry, 0., 0.);
    a->retry_timer.data = a;
    ev_timer_init(&a->refusal_timer, on_refusal_timer, 0., 0.);
    a->refusal_timer.data = a;
    ev_timer_init(&a->master_timer, on_master_timer, 0., 0.);
    a->master_timer.data = a;
    a->rt = runtime_new(loop, cfg->runtime_socket, cfg->runtime_timeout_s);
    if (!a->rt) {
        memprintf(errmsg, "haproxy.runtime_socket: cannot use '%s'", cfg->runtime_socket);
        return -EINVAL;
    }
    if (cfg->master_socket &&
        !(a->master_watch = runtime_new(loop, cfg->master_socket, MASTER_SENTINEL_TIMEOUT_S))) {
        memprintf(errmsg, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

void apply_free(struct apply *a)
{
    if (a->loop) {
        ev_timer_stop(a->loop, &a->retry_timer);
        ev_timer_stop(a->loop, &a->refusal_timer);
        ev_timer_stop(a->loop, &a->master_timer);
    }
    runtime_free(a->rt);
    runtime_free(a->master_watch);
    plan_free(&a->plan);
    free(a->map_have);
    a->rt = a->master_watch = NULL;
    a->map_have = NULL;
    a->n_map_have = 0;
}

void apply_set_config(struct apply *a, const struct config *cfg)
{
    a->cfg = cfg;
}

bool apply_busy(const struct apply *a)
{
    return runtime_busy(a->rt) || ev_is_active(&a->retry_timer);
}

bool apply_resync_due(const struct apply *a)
{
    return !a->synced || a->resync_wanted;
}

void apply_resync(struct apply *a)
{
    start_resync(a);
}

/* Plan the backends that need it (additions: those with page_dirty, with
 * additions only) up to BATCH_COMMANDS_MAX commands, and send the batch. */
static void send_batch(struct apply *a, bool additions)
{
    size_t n_be = 0;
    struct backend **be;
    bool more = false; /* backends left for the next batch */
    int r;

    plan_reset(&a->plan);
    be = a->tab->v;
    n_be = a->tab->n;
    for (size_t i = 0; i < n_be; i++) {
        if (!(additions ? be[i]->page_dirty : be[i]->dirty))
            continue;
        if (a->plan.n >= BATCH_COMMANDS_MAX) {
            more = true;
            break;
        }
        converge_backend(a, be[i], additions);
    }
    /* The map points at backends: it goes with the last of them, and only
     * once the listing is whole. */
    if (a->map_dirty && !more && !additions)
        converge_map(a);
    if (!a->plan.n) {
        /* Events that changed nothing HAProxy runs (or only asked for a
         * reload) are never "applied" by a batch. */
        if (!additions)
            a->events_pending.len = 0;
        return;
    }
    /* Events count as applied with the batch that ends their work. */
    if (!more && !additions)
        metrics_pending_move(&a->events_in_flight, &a->events_pending);
    if (log_get_level() >= LOG_LEVEL_DEBUG)
        for (size_t i = 0; i < a->plan.n; i++)
            log_debug(MOD, "batch command %zu/%zu: %s", i + 1, a->plan.n, a->plan.cmds[i]);
    a->batch_started = clock_mono();
    a->stats.batches++;
    a->stats.commands += a->plan.n;
    r = runtime_send(a->rt, (const char *const *)a->plan.cmds, a->plan.n, on_batch_reply, a);
    if (r < 0) {
        /* The batch never left (no socket, EMFILE): the view assumed it
         * applied, so what the next read finds differs from it, and that is
         * not drift (issue 19). Its events wait for a later batch. */
        metrics_pending_move(&a->events_in_flight, &a->events_pending);
        metrics_pending_move(&a->events_pending, &a->events_in_flight);
        a->batch_failed = true;
        runtime_failed(a, r, "sending a batch");
    }
}

void apply_send(struct apply *a)
{
    send_batch(a, false);
}

void apply_send_additions(struct apply *a)
{
    send_batch(a, true);
}

void apply_listed_page(struct apply *a)
{
    size_t n_be = a->tab->n;
    struct backend **be = a->tab->v;

    for (size_t i = 0; i < n_be; i++) {
        const struct catalog_service *svc = catalog_find(a->cat, be[i]->conf.name);

        if (svc && svc->dirty)
            be[i]->page_dirty = true;
    }
}

/* Commands at most per slot a plan holds (address, port, weight, state; a
 * slot added at run time: add server and its state). */
#define ESTIMATE_CMDS_PER_SLOT 4

int apply_estimate(struct apply *a, bool additions, size_t min_commands, size_t *commands,
                   size_t *servers)
{
    size_t n_be = a->tab->n, bound = 0, n = 0, files = 0;
    struct backend **be = a->tab->v;
    struct server_view *have = NULL;
    size_t have_cap = 0;
    struct plan scratch;
    int r = 0;

    for (size_t i = 0; i < n_be; i++) {
        struct backend *b = be[i];
        const struct catalog_service *svc = catalog_find(a->cat, b->conf.name);
        size_t endpoints = svc ? svc->n_endpoints : 0;
        size_t want = b->want_slots > b->slots.n ? b->want_slots : b->slots.n;

        if (!backend_ours(b))
            continue;
        /* as rollout's render sizes it */
        if (want < (size_t)b->conf.opt.slots)
            want = (size_t)b->conf.opt.slots;
        if (b->configured || endpoints)
            files += backend_fit_slots(b, want, endpoints);
        if ((additions ? b->page_dirty : b->dirty) && b->present)
            bound += ESTIMATE_CMDS_PER_SLOT * (b->slots.n > endpoints ? b->slots.n : endpoints);
    }
    *servers = files;
    *commands = bound;
    if (bound < min_commands)
        return 0;
    plan_init(&scratch);
    for (size_t i = 0; i < n_be && r >= 0; i++) {
        struct backend *b = be[i];
        struct catalog_service *svc = catalog_find(a->cat, b->conf.name);
        size_t endpoints = svc ? svc->n_endpoints : 0;
        struct plan_opts opts;

        if (!(additions ? b->page_dirty : b->dirty) || !b->present || !backend_ours(b))
            continue;
        /* endpoints beyond the slots: "add server" and its state each */
        if (endpoints > b->slots.n)
            n += 2 * (endpoints - b->slots.n);
        r = additions ? slots_assign_partial(&b->slots, svc, b->have)
                      : slots_assign(&b->slots, svc, b->have);
        if (r < 0)
            break;
        if (b->slots.n > have_cap) {
            struct server_view *nh = realloc(have, b->slots.n * sizeof(*nh));

            if (!nh) {
                r = -ENOMEM;
                break;
            }
            have = nh;
            have_cap = b->slots.n;
        }
        /* planning updates the view it is given: plan on a copy */
        if (b->slots.n)
            memcpy(have, b->have, b->slots.n * sizeof(*have));
        backend_plan_opts(b, &opts);
        opts.additions_only = additions;
        plan_reset(&scratch);
        r = plan_backend_opts(&scratch, backend_proxy(b), &b->slots, have, &opts);
        if (r > 0)
            n += (size_t)r;
    }
    plan_free(&scratch);
    free(have);
    if (r < 0)
        return r;
    *commands = n;
    return 0;
}
