/* etcd_decode - pure decoders of the etcd v3 JSON gateway's replies.
 *
 * The gateway's quirks (seen on etcd 3.4): keys and values are base64; int64
 * fields are JSON strings; zero-valued fields are omitted (a PUT event has no
 * "type"); a compaction cancel is {"result":{"canceled":true,
 * "compact_revision":"N"}} on a stream that stays open. No I/O: tested
 * without a server.
 */
#ifndef SLOTSYNC_ETCD_DECODE_H
#define SLOTSYNC_ETCD_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct etcd_kv;
struct etcd_range_reply;
struct etcd_watch_msg;

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

/* Free the strings of one decoded kv and zero it. */
void etcd_kv_free(struct etcd_kv *kv);

/* header.revision of a reply; 0 when the header is missing. 0, -EINVAL or
 * -ERANGE with *errmsg. */
int etcd_header_revision(const json_t *obj, int64_t *rev, char **errmsg);

/* The error a gateway reply carries, or NULL when it is none (borrowed from
 * msg). The gateway's shapes, by etcd version:
 *   3.4/3.5 unary:  {"error":"text","code":N,"message":"text"}
 *   3.4/3.5 stream: {"error":{"grpc_code":N,"http_code":N,"message":"text",
 *                   "http_status":"text"}}
 *   3.6 unary:      {"code":N,"message":"text","details":[...]}
 *                   (google.rpc.Status, grpc-gateway v2): msg itself
 *   3.6 stream:     {"error":{"code":N,"message":"text","details":[...]}}
 * A top-level "code" counts only as an integer other than 0 (OK) beside a
 * string "message", in an object with no "result" or "header". */
const json_t *etcd_reply_error(const json_t *msg);

/* Decode err, the error etcd_reply_error(msg) found (any shape above).
 * Sets out->error, error_code and error_message (owned by out). 0, -EINVAL
 * or -ENOMEM with *errmsg. */
int etcd_parse_error(const json_t *msg, const json_t *err, struct etcd_watch_msg *out,
                     char **errmsg);

/* gRPC status codes, as the gateway reports them in "code". */
enum {
    GRPC_CANCELED = 1,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_UNAVAILABLE = 14,
    GRPC_UNAUTHENTICATED = 16,
};

/* The negative errno for a gRPC status code: NOT_FOUND (a lease or key that
 * is gone) -ENOENT, OUT_OF_RANGE (a compacted revision) -ERANGE, UNAVAILABLE
 * -EAGAIN, DEADLINE_EXCEEDED -ETIMEDOUT, ...; anything unknown -EIO. */
int etcd_grpc_errno(int code);

/* A lease grant reply: its lease ID (non-zero) and TTL (0 when omitted).
 * 0, or -EINVAL for a missing or malformed ID or a malformed TTL. */
int etcd_parse_lease_grant(const json_t *reply, int64_t *id, int64_t *ttl);
/* A lease keepalive reply (fields inside "result"): its TTL, 0 when the
 * gateway omits it (the lease is gone). 0, or -EINVAL for a malformed TTL. */
int etcd_parse_lease_keepalive(const json_t *reply, int64_t *ttl);

/* Whether a /v3/kv/txn reply says its compares held ("succeeded": true). */
bool etcd_txn_succeeded(const json_t *reply);

#endif
