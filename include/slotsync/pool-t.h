/* pool-t - the types of the spare backends on the loop (pool.h). Types
 * only. */
#ifndef SLOTSYNC_POOL_T_H
#define SLOTSYNC_POOL_T_H

#include <stdbool.h>

#include <ev.h>

/* struct spare_pool and struct log_outage are embedded: their headers until
 * they have -t.h ones of their own */
#include <slotsync/log-t.h>
#include <slotsync/spare-t.h>

struct backend;
struct config;
struct table;

struct pool_ops {
    /* A reload is needed (why, name as in the log line). */
    void (*want_reload)(const char *why, const char *name, void *arg);
};

struct pool_stats {
    unsigned long long bound, adopted, refills, map_writes, map_write_failures;
};

/* Embedded in its owner; pool_init() fills it, pool_free() empties it. */
struct pool {
    struct spare_pool sp; /* which service each spare carries (apply reads it) */
    struct ev_loop *loop;
    const struct config *cfg;
    struct table *tab; /* borrowed: the backends, where a spare's service gets one */
    const struct pool_ops *ops;
    void *arg;
    ev_timer refill_timer; /* the refill reload, min_reload_interval_ms after running low */
    ev_timer map_timer;    /* the map file's write, and its retries */
    double map_delay;
    bool map_wanted;
    bool holding; /* a reload is in flight: its render writes the map file */
    struct log_outage map_outage;
    struct pool_stats stats;
};

#endif
