/* metrics - the daemon's counters and histograms, and their Prometheus text.
 *
 * Pure: the controller increments a struct metrics; metrics_render() turns a
 * snapshot into the text exposition format (version 0.0.4) served at the
 * admin endpoint's /metrics. No I/O, no clock: times are passed in.
 */
#ifndef SLOTSYNC_METRICS_H
#define SLOTSYNC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14

/* Upper bounds (seconds) of the histogram buckets; +Inf is implied. */
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

struct metrics_histogram {
    unsigned long long buckets[METRICS_BUCKETS]; /* non-cumulative counts */
    unsigned long long count;
    double sum;
};

/* Why a reload was asked for (a label of slotsync_reload_requests_total). */
enum metrics_reload_cause {
    METRICS_CAUSE_NEW_SERVICE = 0,
    METRICS_CAUSE_BACKEND_MISSING,
    METRICS_CAUSE_HTTP_FRONTEND,
    METRICS_CAUSE_SLOTS,
    METRICS_CAUSE_CONFIG,
    METRICS_CAUSE_OTHER,
    METRICS_CAUSES
};

enum metrics_reject_reason { METRICS_REJECT_KEY = 0, METRICS_REJECT_VALUE, METRICS_REJECTS };

struct metrics_backend {
    const char *name; /* borrowed */
    size_t used, total;
};

struct metrics {
    /* etcd (copied from the sync's own counters when a snapshot is taken) */
    unsigned long long etcd_events, etcd_watch_starts;
    int64_t etcd_revision;
    unsigned long long rejected[METRICS_REJECTS];
    /* HAProxy runtime API */
    unsigned long long commands, command_failures, batches, runtime_errors;
    unsigned long long runtime_added_servers, resyncs, drift_repairs;
    struct metrics_histogram batch_seconds;    /* batch sent -> reply */
    struct metrics_histogram event_to_applied; /* etcd event arrival -> HAProxy reply */
    /* reloads */
    unsigned long long reloads, reload_failures, check_failures;
    unsigned long long reload_requests[METRICS_CAUSES];
    /* state (filled when a snapshot is taken) */
    bool haproxy_up, ready;
    double since_resync_s; /* < 0: no resync yet */
    const struct metrics_backend *backends;
    size_t n_backends;
};

/* Count n observations of value seconds (n events applied together). */
void metrics_observe(struct metrics_histogram *h, double seconds, unsigned long long n);

/* The exposition text of m into *out (owned, NUL-terminated, free()), its
 * length in *len. Returns 0 or -ENOMEM. */
int metrics_render(const struct metrics *m, char **out, size_t *len);

const char *metrics_cause_name(enum metrics_reload_cause cause);

#endif
