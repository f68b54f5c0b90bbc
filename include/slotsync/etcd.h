/* etcd - an etcd v3 client over the JSON gateway (/v3/...), on the loop.
 *
 * Unary calls (range, put, delete, lease grant/keepalive/revoke) and a
 * long-lived prefix sync: list the prefix in pages, then watch from the
 * listing's revision + 1; on a broken stream reconnect with capped
 * exponential backoff and jitter and resume from the last revision seen; when
 * that revision was compacted, list again (the consumer diffs). Several
 * endpoints fail over in turn.
 *
 * The gateway's quirks (seen on etcd 3.4): keys and values are base64; int64
 * fields are JSON strings; zero-valued fields are omitted (a PUT event has no
 * "type"); a compaction cancel is {"result":{"canceled":true,
 * "compact_revision":"N"}} on a stream that stays open.
 *
 * The decoding functions are pure and exported for tests.
 */
#ifndef SLOTSYNC_ETCD_H
#define SLOTSYNC_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ev_loop;
struct http_client;
struct etcd_client;
struct etcd_call;
struct etcd_sync;

/* ---- pure decoding ---- */

/* Base64 (standard alphabet, padded). The result is NUL-terminated and owned
 * by the caller; *outlen excludes the NUL. 0, -EINVAL (bad input) or
 * -ENOMEM. */
int etcd_b64_encode(const void *in, size_t len, char **out, size_t *outlen);
int etcd_b64_decode(const char *in, size_t len, char **out, size_t *outlen);

/* The range_end that covers every key starting with prefix (prefix with its
 * last byte < 0xff incremented). Caller frees. NULL on ENOMEM. */
char *etcd_prefix_range_end(const char *prefix, size_t len, size_t *outlen);

/* An int64 field that etcd sends as a JSON string (or, leniently, a number);
 * missing = 0. Returns 0, or -EINVAL for anything else. */
int etcd_json_int64(const json_t *obj, const char *field, int64_t *out);

struct etcd_kv {
    char *key; /* decoded, NUL-terminated, owned */
    size_t key_len;
    char *value; /* decoded, NUL-terminated, owned; NULL for a delete */
    size_t value_len;
    int64_t mod_revision;
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

/* Revisions (header revision, mod_revision, compact_revision) are checked
 * where they are decoded: 0 < rev < INT64_MAX (0 only where the field may be
 * omitted); a bad one fails the decode with -ERANGE and *errmsg naming the
 * field. */

/* Decode a /v3/kv/range reply. 0, -ERANGE (a revision out of range) or
 * -EINVAL with *errmsg. Free with etcd_range_reply_free(). */
int etcd_parse_range(const json_t *reply, struct etcd_range_reply *out, char **errmsg);
void etcd_range_reply_free(struct etcd_range_reply *r);

/* Decode one message of a /v3/watch stream (the object with "result", or an
 * error object). 0, -ERANGE or -EINVAL with *errmsg. Free with
 * etcd_watch_msg_free(). */
int etcd_parse_watch(const json_t *msg, struct etcd_watch_msg *out, char **errmsg);
void etcd_watch_msg_free(struct etcd_watch_msg *m);

/* header.cluster_id of a reply (a uint64 sent as a string): 0 when missing.
 * Returns 0, or -EINVAL for a malformed value. */
int etcd_header_cluster_id(const json_t *reply, uint64_t *out);

/* Splits a byte stream of newline-delimited JSON objects. */
struct etcd_stream {
    char *buf;
    size_t len, cap;
    size_t max; /* a line longer than this is an error; 0 = 64 MiB */
};
typedef int (*etcd_stream_cb)(json_t *msg, void *arg); /* msg borrowed; non-zero stops */
void etcd_stream_init(struct etcd_stream *s);
/* Feed bytes; calls cb for each complete line that parses as a JSON object.
 * Returns 0, the callback's non-zero value, -EINVAL for a line that is not
 * JSON, or -E2BIG / -ENOMEM. */
int etcd_stream_feed(struct etcd_stream *s, const char *data, size_t len, etcd_stream_cb cb,
                     void *arg);
void etcd_stream_free(struct etcd_stream *s);

/* ---- client ---- */

/* endpoints: "http://host:port" URLs, copied. Returns NULL on failure. The
 * http client is borrowed and must outlive the etcd client. */
struct etcd_client *etcd_client_new(struct ev_loop *loop, struct http_client *http,
                                    char *const *endpoints, size_t n);
/* Cancels every call and sync (no callbacks) and frees. */
void etcd_client_free(struct etcd_client *c);

/* Authenticate as user with password (both copied; user NULL: no
 * authentication). Calls and watches then wait for a token from
 * /v3/auth/authenticate, sent as the Authorization header; a token etcd
 * refuses (gRPC code 16: invalid or expired) is replaced once per call and
 * before a watch reconnects (from the revision it had reached). Wrong
 * credentials fail the waiting calls with -EACCES and a text saying so; a
 * sync retries with its backoff. Neither the password nor the token appears
 * in any text this client produces. 0 or -ENOMEM. */
int etcd_client_set_auth(struct etcd_client *c, const char *user, const char *password);

/* Per-attempt timeout of the calls that do not give one (etcd_put, the lease
 * calls, ...); 0 = the default, 5 s. A call that times out is tried once
 * more on the next endpoint, so it can take twice this. */
void etcd_client_set_call_timeout(struct etcd_client *c, long timeout_ms);

/* reply is borrowed for the callback's duration; err is 0 or negative, with
 * errtext naming the problem (connection, HTTP status, gateway error).
 * errtext is safe to log as it is: every byte that came from the network in
 * it went through log_quote(). */
typedef void (*etcd_reply_cb)(int err, const json_t *reply, const char *errtext, void *arg);

/* POST body (stolen, even on failure) to path ("/v3/kv/put", ...). A failed
 * connection is retried once on the next endpoint before err is reported.
 * Returns the call, or NULL (then cb is never called). */
struct etcd_call *etcd_call(struct etcd_client *c, const char *path, json_t *body, long timeout_ms,
                            etcd_reply_cb cb, void *arg);
void etcd_call_cancel(struct etcd_call *call);

/* Convenience wrappers building the JSON body. key/value are raw bytes. */
struct etcd_call *etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                           etcd_reply_cb cb, void *arg);
struct etcd_call *etcd_delete(struct etcd_client *c, const char *key, etcd_reply_cb cb, void *arg);
struct etcd_call *etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, etcd_reply_cb cb,
                                   void *arg);
struct etcd_call *etcd_lease_keepalive(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                       void *arg);
struct etcd_call *etcd_lease_revoke(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                    void *arg);

/* Prefix sync. The consumer sees a listing as list_begin, kv* (deleted
 * false), list_end; then watch events as kv* (deleted set for deletes),
 * each watch message closed by batch_end. A re-list after compaction or a
 * lost revision repeats list_begin..list_end, so the consumer can diff.
 * connected(false) reports a broken stream (kept trying in the background);
 * its why is safe to log as it is (see etcd_reply_cb).
 *
 * While watching, the member the watch is on is probed every second on a
 * connection of its own (a linearizable one-key range, 3 s timeout); a
 * member that does not answer is hung: the watch moves to the next endpoint
 * and resumes after the last revision. The watch also asks for a leader
 * (gRPC metadata hasleader), so a member cut off from the cluster cancels
 * it. A probe whose header revision is below one already seen, or whose
 * cluster id changed, means a rebuilt or restored cluster: one warning and a
 * full re-list. */
struct etcd_sync_ops {
    void (*list_begin)(void *arg);
    void (*kv)(void *arg, const struct etcd_kv *kv);
    void (*list_end)(void *arg, int64_t revision);
    void (*batch_end)(void *arg, int64_t revision);
    void (*connected)(void *arg, bool up, const char *why);
};

struct etcd_sync_stats {
    unsigned long long lists, watch_starts, reconnects, compactions, events, errors;
    unsigned long long bad_revisions; /* replies refused for a revision out of range */
    unsigned long long hung;          /* watch moved off a member that stopped answering */
    unsigned long long new_clusters;  /* re-lists after a rebuilt/restored cluster */
    int64_t revision;                 /* last revision applied */
    bool watching;
};

/* Start syncing prefix (copied). ops and arg are borrowed. NULL on ENOMEM. */
struct etcd_sync *etcd_sync_start(struct etcd_client *c, const char *prefix,
                                  const struct etcd_sync_ops *ops, void *arg);
void etcd_sync_stop(struct etcd_sync *s);
const struct etcd_sync_stats *etcd_sync_stats(const struct etcd_sync *s);

#endif
