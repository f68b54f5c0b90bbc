/* etcd-t - types shared by the etcd client, its decoders and its users. */
#ifndef SLOTSYNC_ETCD_T_H
#define SLOTSYNC_ETCD_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the client speaks to etcd (etcd.transport): the JSON gateway over
 * HTTP/1.1, or etcd's native gRPC over HTTP/2 (issue 24). */
enum etcd_transport {
    ETCD_TRANSPORT_JSON = 0,
    ETCD_TRANSPORT_GRPC = 1,
};

struct etcd_kv {
    char *key; /* decoded, NUL-terminated, owned */
    size_t key_len;
    char *value; /* decoded, NUL-terminated, owned; NULL for a delete */
    size_t value_len;
    int64_t mod_revision;
    int64_t create_revision; /* 0 when etcd omits it (delete events) */
    int64_t lease;
    bool deleted; /* watch events only */
};

struct etcd_range_reply {
    int64_t revision; /* header.revision */
    bool more;
    int64_t count;
    struct etcd_kv *kvs;
    size_t n_kvs;
};

struct etcd_watch_msg {
    int64_t revision; /* header.revision (0 when omitted) */
    int64_t watch_id;
    bool created;
    bool canceled;
    int64_t compact_revision; /* > 0: our start revision was compacted */
    char *cancel_reason;      /* owned, may be NULL */
    struct etcd_kv *events;
    size_t n_events;
    /* set when the message is a gateway error object {"error":...} */
    bool error;
    int error_code;
    char *error_message;
};

struct etcd_sync_ops {
    void (*list_begin)(void *arg);
    void (*kv)(const struct etcd_kv *kv, void *arg);
    /* A page of the listing was delivered (its kv calls made) and more
     * follow: the listing is partial until list_end. Optional. */
    void (*list_page)(void *arg);
    void (*list_end)(int64_t revision, void *arg);
    void (*batch_end)(int64_t revision, void *arg);
    void (*connected)(bool up, const char *why, void *arg);
};

struct etcd_sync_stats {
    unsigned long long lists, watch_starts, reconnects, compactions, events, errors;
    unsigned long long bad_revisions; /* replies refused for a revision out of range */
    unsigned long long hung;          /* watch moved off a member that stopped answering */
    unsigned long long new_clusters;  /* re-lists after a rebuilt/restored cluster */
    /* the stall detector (etcd_sync_set_check_interval): checks answered,
     * watches restarted because etcd stayed ahead of them */
    unsigned long long watch_checks, watch_stalls;
    double last_check_at, last_stall_at; /* clock_mono(); 0 = never */
    bool check_ahead;                    /* the last check found etcd ahead */
    int64_t keys;                        /* keys under the prefix as applied */
    int64_t revision;                    /* last revision applied */
    /* keys the listing in progress (or the last one) holds by its first
     * page's "count" (etcd's word, untrusted: an estimate; 0 = none said) */
    int64_t list_count;
    bool watching;
    /* clock_mono() of etcd's last answer (a listing page, a watch message,
     * a probe's reply, even an error one); 0 = never */
    double last_contact_at;
};

#endif
