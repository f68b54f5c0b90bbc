/* report - what the running daemon says about itself: /readyz's rule, the
 * /metrics snapshot, the daemon's part of the /status document and the
 * SIGUSR1 state dump.
 *
 * Pure: the controller gathers what its modules know into a struct
 * report_state (plain values and borrowed pointers) and calls these; the
 * formats themselves are metrics.c's (Prometheus text) and status.c's (the
 * join, the dump's lines). No I/O, no clock: the time is in the state.
 */
#ifndef SLOTSYNC_REPORT_H
#define SLOTSYNC_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct backend;
struct config;
struct etcd_sync_stats;
struct metrics;
struct metrics_backend;
struct metrics_recent;

struct catalog;

/* Everything is borrowed for the call. */
struct report_state {
    double now; /* clock_mono(): every time in the state is on that clock */
    /* etcd */
    const struct etcd_sync_stats *etcd; /* NULL: no sync */
    bool listed;                        /* a complete listing has been applied */
    const struct catalog *cat;
    /* HAProxy's runtime side (apply.h) */
    bool synced, runtime_down;
    double last_resync_at; /* <= 0: none */
    unsigned long long batches, commands, command_failures, runtime_errors;
    unsigned long long runtime_added_servers, resyncs, drift_repairs;
    /* reloads (rollout.h) */
    double last_reload_at;         /* <= 0: none */
    bool last_reload_by_haproxy;   /* last_reload_at is HAProxy's (show proc), not ours */
    unsigned long haproxy_reloads; /* HAProxy's count since it started, read at start */
    bool last_reload_failed, reloading;
    const char *last_reload_cause; /* static: metrics_cause_name(); NULL: not ours or none */
    unsigned long long reloads, reload_failures, check_failures;
    unsigned long long bulk_reloads; /* reloads chosen for a large plan (bulk.h) */
    /* the backend table, sorted by name */
    struct backend *const *backends;
    size_t n_backends;
    const struct metrics *obs;           /* histograms and labelled counters */
    const struct metrics_recent *recent; /* NULL: no list of recent changes */
    /* etcd's connection (issue 19): up while the watch runs and its member
     * answers; since: clock_mono() of the last change (or of the start);
     * the endpoint in use (a URL, borrowed; shown as host:port only) and
     * the last reason etcd gave for being down (borrowed, NULL: none). */
    bool etcd_up;
    double etcd_since;
    const char *etcd_endpoint, *etcd_error;
    double wall_now;            /* clock_wall() read with now: times of day (0: not shown) */
    const struct config *cfg;   /* borrowed, NULL: no routes (the HTTP frontend's Host names) */
    size_t spares, spares_free; /* spare backends, and those no service is bound to */
};

/* What /readyz, the page and `status` add while etcd cannot be read: "etcd
 * unreachable for 40 s: serving the last known state (revision 14)" into buf
 * (size bytes). "" while etcd is up. Returns buf. */
const char *report_etcd_note(const struct report_state *s, char *buf, size_t size);

/* Ready for traffic: the first listing applied and HAProxy's runtime socket
 * answered at the last exchange. When not, *why (static text) says what is
 * missing. */
bool report_ready(const struct report_state *s, const char **why);

/* The /metrics snapshot into *m: s->obs with the counters and state of s.
 * The per-backend rows go in *rows (the caller's, grown with realloc() as
 * needed and freed by the caller); m borrows them and s's names until the
 * table changes. Out of memory: *m has no per-backend rows. */
void report_metrics(const struct report_state *s, struct metrics *m, struct metrics_backend **rows);

/* The /status document (status_build()) for HAProxy's two replies
 * (borrowed), with "ready", "last_reload", "etcd" (its connection),
 * "version", "spares", "routes" (Host name -> backend), each backend's
 * "listen" and, with s->recent, "recent". A new reference, or NULL with
 * *errmsg. */
json_t *report_status(const struct report_state *s, const char *state_text, const char *stat_text,
                      char **errmsg);

/* The state dump's lines (status_dump()), each given to line(). Returns 0
 * or -ENOMEM (some lines may have been given). */
int report_dump(const struct report_state *s, void (*line)(const char *text, void *arg), void *arg);

#endif
