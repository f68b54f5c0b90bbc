/* rollout-t - the types of the reload policy on the loop (rollout.h). Types
 * only. */
#ifndef SLOTSYNC_ROLLOUT_T_H
#define SLOTSYNC_ROLLOUT_T_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/backend-t.h>
/* struct log_outage and enum metrics_reload_cause are embedded: their
 * headers until they have -t.h ones of their own */
#include <slotsync/log-t.h>
#include <slotsync/metrics-t.h>

struct catalog;
struct config;
struct pool;
struct reloader;
struct runtime;
struct table;

/* What the rollout asks of its owner. None may be NULL. */
struct rollout_ops {
    /* HAProxy runs the render now (a new worker): the backends its services
     * file declares are what slotsync owns (in the table already,
     * table_set_owned()). What was read from the old worker is stale. The
     * backends left out with no endpoint are dropped from the table after
     * it. */
    void (*loaded)(void *arg);
    /* HAProxy's state must be read again before the next batch: a reload
     * ended, or one failed after slots were added for its render. */
    void (*resync)(void *arg);
};

struct rollout_stats {
    unsigned long long reloads, reload_failures, check_failures, io_failures;
    /* the last reload that went through: render to confirmed, seconds, and
     * the servers its file declared (the cost model's sample, bulk.h) */
    double last_reload_s;
    size_t last_reload_servers;
};

/* Embedded in its owner; rollout_init() fills it, rollout_free() empties
 * it. The owner may read every field; only the rollout writes them. */
struct rollout {
    struct ev_loop *loop;
    const struct config *cfg; /* borrowed; rollout_set_config() */
    struct catalog *cat;      /* borrowed: the endpoints each backend renders */
    struct table *tab;        /* borrowed: what is rendered, who owns what after a reload */
    struct pool *pool;        /* borrowed: a reload un-binds the spares */
    struct metrics *obs;      /* borrowed: reload requests by cause; may be NULL */
    const struct rollout_ops *ops;
    void *arg;
    struct reloader *reloader;
    char *candidate; /* <services_file>.new: rendered, checked, renamed */
    ev_timer timer;  /* min_reload_interval_ms, or the write backoff */
    /* generations: wanted (each rollout_want()), loaded by HAProxy,
     * refused by HAProxy (not retried), and the one in flight */
    unsigned desired_gen, loaded_gen, failed_gen, reload_gen;
    bool reloading;                 /* a render, check or reload is in flight */
    bool last_reload_failed;        /* the last one to end was refused or failed */
    double last_reload_start;       /* clock_mono() of the last start; 0 = none */
    size_t reload_servers;          /* servers the reload in flight renders */
    double write_retry;             /* backoff after a failure of this machine */
    struct log_outage write_outage; /* since when renders or reloads fail on I/O */
    struct names rendering;         /* backends of the reload in flight */
    struct rollout_stats stats;
    /* the cause of the latest rollout_want(), and of the latest want a
     * started reload covers (valid once last_reload_start > 0) */
    enum metrics_reload_cause want_cause, reload_cause;
    /* The services file carries the named defaults of run-time backends
     * (base_config declares DYNBACK_BASE_DEFAULTS; set by the owner). */
    bool dyn_defaults;
    /* HAProxy's own account of its reloads, read once at start from the
     * master's "show proc" (issue 19): after a restart of slotsync the
     * last reload is HAProxy's, not "none" */
    struct runtime *proc_rt;
    double haproxy_last_reload_at; /* clock_mono(); <= 0: not known, or never reloaded */
    unsigned long haproxy_reloads;
};

#endif
