/* livefile-t - the live services file and Host map (livefile.h has the functions). */
#ifndef SLOTSYNC_LIVEFILE_T_H
#define SLOTSYNC_LIVEFILE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include <slotsync/log-t.h>

struct config;
struct table;

struct catalog;

/* At most one render per this many seconds; a change is on disk within
 * twice that. */
#define LIVEFILE_INTERVAL_S 1.0

struct livefile_stats {
    unsigned long long renders, writes, unchanged, failures;
};

/* Embedded in its owner; livefile_init() fills it, livefile_free() empties
 * it. The owner may read every field; only livefile writes them. */
struct livefile {
    struct ev_loop *loop;
    const struct config *cfg; /* borrowed; livefile_set_config() */
    struct catalog *cat;      /* borrowed */
    struct table *tab;        /* borrowed: the backends HAProxy runs */
    ev_timer timer;
    bool wanted;  /* something may have changed since the last render */
    bool held;    /* a reload is in flight: its render writes the files */
    double last;  /* CLOCK_MONOTONIC of the last render; 0 = none */
    double delay; /* backoff after a failed write */
    char *text;   /* what the services file holds (NULL: unknown) */
    size_t len;
    char *map; /* what the Host map holds (NULL: unknown) */
    size_t mlen;
    struct log_outage outage;
    struct livefile_stats stats;
    /* the services file ends with the named defaults of run-time backends
     * (dynback.h; base_config declares DYNBACK_BASE_DEFAULTS); set by the
     * owner */
    bool dyn_defaults;
};

#endif
