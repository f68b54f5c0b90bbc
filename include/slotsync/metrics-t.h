/* metrics-t - the counters and gauges (metrics.h has the functions). */
#ifndef SLOTSYNC_METRICS_T_H
#define SLOTSYNC_METRICS_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14

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
    METRICS_CAUSE_BULK, /* a large plan goes through one reload (bulk.h) */
    METRICS_CAUSE_OTHER,
    METRICS_CAUSES
};

enum metrics_reject_reason { METRICS_REJECT_KEY = 0, METRICS_REJECT_VALUE, METRICS_REJECTS };

/* The caps on what etcd can create (a label: the config field's name). */
enum metrics_cap { METRICS_CAP_SERVICES = 0, METRICS_CAP_ENDPOINTS, METRICS_CAPS };

struct metrics_backend {
    const char *name; /* borrowed */
    size_t used, total;
    bool unrouted; /* no frontend reaches it */
};

struct metrics {
    /* etcd (copied from the sync's own counters when a snapshot is taken) */
    unsigned long long etcd_events, etcd_watch_starts;
    /* the watch stall detector: checks answered, watches restarted */
    unsigned long long etcd_watch_checks, etcd_watch_stalls;
    int64_t etcd_revision;
    unsigned long long rejected[METRICS_REJECTS];
    /* HAProxy runtime API */
    unsigned long long commands, command_failures, batches, runtime_errors;
    unsigned long long runtime_added_servers, resyncs, drift_repairs;
    struct metrics_histogram batch_seconds;    /* batch sent -> reply */
    struct metrics_histogram event_to_applied; /* etcd event arrival -> HAProxy reply */
    /* reloads */
    unsigned long long reloads, reload_failures, check_failures;
    unsigned long long bulk_reloads; /* reloads chosen over the socket for a large plan */
    unsigned long long reload_requests[METRICS_CAUSES];
    /* state (filled when a snapshot is taken) */
    bool haproxy_up, ready;
    double since_resync_s; /* < 0: no resync yet */
    const struct metrics_backend *backends;
    size_t n_backends;
    /* etcd's connection, the build, the spare pool (issue 19) */
    bool etcd_up;                     /* the watch runs and its member answers */
    double etcd_last_contact_s;       /* since etcd last answered anything; < 0: never */
    const char *version;              /* slotsync_build_info's label; NULL: not rendered */
    size_t spares_total, spares_free; /* spare backends, and those no service is bound to */
    /* caps on what etcd can create (catalog.h), by METRICS_CAP_* */
    unsigned long long capped[METRICS_CAPS]; /* refusals */
    size_t held[METRICS_CAPS];               /* refused and waiting now */
};

/* etcd events waiting to be applied, grouped by arrival time (events of one
 * watch message arrive together). When full, the newest group absorbs more
 * events: latencies are then slightly under-stated, never lost. */
#define METRICS_PENDING_GROUPS 32
struct metrics_pending {
    double at[METRICS_PENDING_GROUPS];
    unsigned long long n[METRICS_PENDING_GROUPS];
    size_t len;
};

/* The last changes applied to HAProxy, for the live page. */
#define METRICS_RECENT_MAX 100
struct metrics_change {
    double at;             /* wall-clock time of HAProxy's reply */
    char backend[64 + 24]; /* "web (spare:3)" */
    char slot[16];
    char instance[255 + 1]; /* "" when a slot was emptied */
    char what[200];         /* e.g. "127.0.0.1:8081 ready -> maint" */
    bool drift;             /* a drift repair */
    double latency_s;       /* event to applied; < 0 when no etcd event caused it */
};
struct metrics_recent {
    struct metrics_change ring[METRICS_RECENT_MAX];
    size_t next, len;
};

#endif
