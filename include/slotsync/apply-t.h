/* apply-t - the types of the runtime applier (apply.h). Types only. */
#ifndef SLOTSYNC_APPLY_T_H
#define SLOTSYNC_APPLY_T_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

/* struct plan, struct log_outage, struct metrics_pending and struct
 * dynback_state are embedded: their headers until they have -t.h ones of
 * their own */
#include <slotsync/dynback-t.h>
#include <slotsync/log-t.h>
#include <slotsync/metrics-t.h>
#include <slotsync/plan-t.h>

struct backend;

struct catalog;
struct config;
struct host_route;
struct metrics_recent;
struct runtime;
struct spare_pool;
struct table;

/* What the applier asks of its owner. None may be NULL unless said. */
struct apply_ops {
    /* Structure changed (a backend or the HTTP frontend is missing in
     * HAProxy, a backend needs more slots than the run time can add): a
     * reload is needed. why and name as in the log line. */
    void (*want_reload)(const char *why, const char *name, void *arg);
    /* "show backend" listed HAProxy's proxies, now in the table
     * (table_set_proxies()): the services waiting for them are settled.
     * Called before the rows of "show servers state" are adopted. */
    void (*proxies)(void *arg);
    /* "show map" read these routes (borrowed): the bindings of spare
     * backends are adopted from them (pool.h). Called before proxies(), and
     * may add backends. NULL: no spares. */
    void (*spares_read)(const struct host_route *routes, size_t n, void *arg);
    /* Run-time backends (dynback.h); all three NULL: none. b, ours, is
     * missing in HAProxy: true when it is created at run time
     * (b->dyn_create set) instead of by a reload. */
    bool (*dyn_missing)(struct backend *b, void *arg);
    /* HAProxy added or removed a backend at run time, as asked (a removed
     * one is dropped from the table already): what it runs changed. */
    void (*runs_changed)(void *arg);
    /* HAProxy refused b's "add backend": b is not present and has no slot
     * now, and no backend is added at run time until a reload; the callee
     * places b as it would without run-time backends. */
    void (*dyn_refused)(struct backend *b, void *arg);
};

struct apply_stats {
    unsigned long long batches, commands, command_failures, resyncs, runtime_errors;
    unsigned long long grown, drift_repairs, level_too_low, static_weights_ignored;
    /* batches of BULK_SAMPLE_MIN_COMMANDS or more: their commands and time
     * (the cost model's samples, bulk.h) */
    unsigned long long sampled_commands;
    double sampled_seconds;
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
    bool resync_has_info;   /* the resync in flight ends with "show info" */
    bool dyn_version_noted; /* an unreadable version was logged */
    unsigned long long dyn_created, dyn_deleted;
};

#endif
