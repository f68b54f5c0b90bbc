/* apply - the runtime applier: HAProxy's state read and the planned changes
 * sent, on the loop.
 *
 * An I/O adapter between the controller and HAProxy's runtime API. It reads
 * HAProxy's state ("show cli level", "show servers state", "show backend",
 * "show map") and adopts it into the controller's backends, plans each
 * dirty backend and the Host map (plan.c) and sends the batch, then reads
 * the replies: applied changes are logged, refused commands remembered and
 * HAProxy's state read again with backoff. It keeps the runtime socket's
 * outage and backoff, and the sentinel on the master socket that notices a
 * reload or restart. It works on the backend table it is lent (table.h)
 * and puts HAProxy's proxy names there; the controller owns the table and
 * the catalog, hands a wanted reload to rollout.h and hears the rest
 * through struct apply_ops.
 */
#ifndef SLOTSYNC_APPLY_H
#define SLOTSYNC_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/config.h>
#include <slotsync/dynback.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/spare.h>
#include <slotsync/table.h>

/* What the applier asks of its owner. None may be NULL unless said. */
struct apply_ops {
    /* Structure changed (a backend or the HTTP frontend is missing in
     * HAProxy, a backend needs more slots than the run time can add): a
     * reload is needed. why and name as in the log line. */
    void (*want_reload)(void *arg, const char *why, const char *name);
    /* "show backend" listed HAProxy's proxies, now in the table
     * (table_set_proxies()): the services waiting for them are settled.
     * Called before the rows of "show servers state" are adopted. */
    void (*proxies)(void *arg);
    /* "show map" read these routes (borrowed): the bindings of spare
     * backends are adopted from them (pool.h). Called before proxies(), and
     * may add backends. NULL: no spares. */
    void (*spares_read)(void *arg, const struct host_route *routes, size_t n);
    /* Run-time backends (dynback.h); all three NULL: none. b, ours, is
     * missing in HAProxy: true when it is created at run time
     * (b->dyn_create set) instead of by a reload. */
    bool (*dyn_missing)(void *arg, struct backend *b);
    /* HAProxy added or removed a backend at run time, as asked (a removed
     * one is dropped from the table already): what it runs changed. */
    void (*runs_changed)(void *arg);
    /* HAProxy refused b's "add backend": b is not present and has no slot
     * now, and no backend is added at run time until a reload; the callee
     * places b as it would without run-time backends. */
    void (*dyn_refused)(void *arg, struct backend *b);
};

struct apply_stats {
    unsigned long long batches, commands, command_failures, resyncs, runtime_errors;
    unsigned long long grown, drift_repairs, level_too_low, static_weights_ignored;
};

/* Embedded in its owner; apply_init() fills it, apply_free() empties it.
 * The owner may read every field and set resync_wanted, map_dirty and epoch
 * (bumped when HAProxy's process changes); the rest is the applier's. */
struct apply {
    struct ev_loop *loop;
    const struct config *cfg;        /* borrowed; apply_set_config() */
    struct catalog *cat;             /* borrowed */
    struct table *tab;               /* borrowed: the backends, HAProxy's proxies go there */
    const struct spare_pool *spares; /* borrowed, or NULL: which service each spare carries */
    struct metrics *obs;             /* borrowed: batch_seconds, event_to_applied */
    struct metrics_recent *recent;   /* borrowed, or NULL: no list of recent changes */
    const struct apply_ops *ops;
    void *arg;
    struct runtime *rt;
    struct runtime *master_watch; /* sentinel on the master socket, or NULL */
    struct plan plan;             /* the batch in flight */
    ev_timer retry_timer, refusal_timer, master_timer;
    /* the HTTP frontend's host map */
    struct host_route *map_have;
    size_t n_map_have;
    bool map_known, map_dirty, map_missing_noted, map_plan_failed;
    size_t map_bad_last;
    bool batch_failed;     /* a batch failed since the last resync */
    unsigned adopt_epoch;  /* epoch of the last adopted state */
    bool adopted;          /* adopt_epoch is set */
    double last_resync_at; /* clock_mono() of the last complete resync; 0 = none */
    bool synced;           /* HAProxy's state is known */
    bool resync_wanted;    /* re-read HAProxy's state before the next batch */
    bool runtime_down;     /* last exchange failed to connect */
    bool level_ok;         /* "show cli level" said admin on this HAProxy */
    bool level_noted;      /* the socket's level was logged as too low */
    bool resync_has_level; /* the resync in flight starts with "show cli level" */
    struct log_outage rt_outage, master_outage;
    double refusal_delay, last_refusal, unframed_warned_at;
    double master_delay, master_connected_at;
    bool master_lost;      /* the sentinel closed: what was read since may be a dying worker's */
    unsigned epoch;        /* bumped when HAProxy's process changes (sentinel, reload) */
    unsigned resync_epoch; /* epoch when the resync in flight was sent */
    double retry_delay;
    double batch_started;
    /* etcd events not applied yet (the owner adds them), and those of the
     * batch in flight */
    struct metrics_pending events_pending, events_in_flight;
    double batch_latency; /* oldest event of the batch just applied; < 0: none */
    struct apply_stats stats;
    /* run-time backends: HAProxy's version ("show info", read with the
     * level after every (re)connect) and what the owner knows (the owner
     * sets dyn.base_declares; dyn.running_has_defaults is cleared when
     * HAProxy says it has no such defaults section, set again at a reload) */
    struct dynback_state dyn;
    bool resync_has_info; /* the resync in flight ends with "show info" */
    bool dyn_version_noted; /* an unreadable version was logged */
    unsigned long long dyn_created, dyn_deleted;
};

/* Set a up on loop for cfg's runtime and master sockets (cfg, cat, tab,
 * obs and ops borrowed). Returns 0, or -EINVAL (a runtime socket that cannot be
 * used) or -ENOMEM with *errmsg; a is then ready for apply_free(). */
int apply_init(struct apply *a, struct ev_loop *loop, const struct config *cfg, struct catalog *cat,
               struct table *tab, struct metrics *obs, const struct apply_ops *ops, void *arg,
               char **errmsg);
/* Stop a's watchers and free what it owns. A zeroed a is fine. */
void apply_free(struct apply *a);
/* A config read again (SIGHUP); borrowed like the first. */
void apply_set_config(struct apply *a, const struct config *cfg);

/* Whether a new service may get a backend at run time now (dynback.h). */
bool apply_dynamic_usable(const struct apply *a);

/* An exchange is in flight or a retry is waiting: start nothing. */
bool apply_busy(const struct apply *a);
/* HAProxy's state must be read before a batch can be planned. */
bool apply_resync_due(const struct apply *a);
/* Read HAProxy's state (and the socket's level, when not known yet). */
void apply_resync(struct apply *a);
/* Plan every dirty backend and, if dirty, the Host map, and send the batch
 * (whole backends until it holds 1024 commands or more; the rest stays
 * dirty for the next call). */
void apply_send(struct apply *a);

/* While the first listing is only partly read: mark the backends whose
 * service got endpoints in the page just delivered (catalog dirty flags,
 * left set for the listing's end), ... */
void apply_listed_page(struct apply *a);
/* ... and send what they can take now: endpoints into slots HAProxy has
 * empty, run-time growth ("add server"). Nothing is emptied, moved or
 * changed, no reload is asked and the Host map waits: an endpoint not listed
 * yet may be what HAProxy has. The listing's end converges them whole. */
void apply_send_additions(struct apply *a);

/* What a plan would cost now (bulk.h's inputs): the runtime commands
 * apply_send() (additions: apply_send_additions()) would send over every
 * backend it would plan, all batches together, and the servers a render
 * would declare. The dirty backends' slots are assigned as the send would
 * assign them; nothing is sent and HAProxy's view is left as it is. An
 * upper bound is taken first: when it is under min_commands, the plan is
 * not built and *commands is that bound. 0 or -ENOMEM. */
int apply_estimate(struct apply *a, bool additions, size_t min_commands, size_t *commands,
                   size_t *servers);

#endif
