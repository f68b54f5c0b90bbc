/* etcd - an etcd v3 client over the JSON gateway (/v3/...), on the loop.
 *
 * Unary calls (range, put, delete, transactions, lease
 * grant/keepalive/revoke); several endpoints fail over in turn. The
 * long-lived prefix sync (list + watch) built on it is in etcd_sync.h.
 *
 * The gateway's quirks (seen on etcd 3.4): keys and values are base64; int64
 * fields are JSON strings; zero-valued fields are omitted (a PUT event has no
 * "type"); a compaction cancel is {"result":{"canceled":true,
 * "compact_revision":"N"}} on a stream that stays open.
 *
 * The pure decoders of the replies are in etcd_decode.h; the shared types in
 * etcd-t.h. This header does not pull in jansson.h.
 */
#ifndef SLOTSYNC_ETCD_H
#define SLOTSYNC_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/etcd-t.h>

struct json_t; /* jansson's json_t, so includers need not pull jansson.h */

struct ev_loop;
struct http_client;
struct etcd_client;
struct etcd_call;

/* ---- client ---- */

/* endpoints: "http://host:port" URLs, copied. Returns NULL on failure. The
 * http client is borrowed and must outlive the etcd client. */
struct etcd_client *etcd_client_new(struct ev_loop *loop, struct http_client *http,
                                    char *const *endpoints, size_t n);
/* Cancels every call (no callbacks) and frees c: 0 (also for NULL). While a
 * sync is started on c, nothing is done and -EBUSY is returned (as libuv's
 * uv_loop_close() refuses a loop with active handles): etcd_sync_stop()
 * each sync first. */
int etcd_client_free(struct etcd_client *c);

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

/* Speak the JSON gateway (the default) or native gRPC to etcd, for calls
 * and watches started from now on. The interface stays the same either way:
 * requests are given and replies decoded in the gateway's JSON shape (on
 * gRPC, etcd_grpc.h translates both ways). */
void etcd_client_set_transport(struct etcd_client *c, enum etcd_transport t);
/* "json" or "grpc". */
const char *etcd_transport_name(enum etcd_transport t);

/* reply is borrowed for the callback's duration; err is 0 or negative, with
 * errtext naming the problem (connection, HTTP status, gateway error).
 * errtext is safe to log as it is: every byte that came from the network in
 * it went through log_quote(). */
typedef void (*etcd_reply_cb)(int err, const struct json_t *reply, const char *errtext, void *arg);

/* POST body (stolen, even on failure) to path ("/v3/kv/put", ...). A failed
 * connection is retried once on the next endpoint before err is reported.
 * Returns the call, or NULL (then cb is never called). */
struct etcd_call *etcd_call(struct etcd_client *c, const char *path, struct json_t *body,
                            long timeout_ms, etcd_reply_cb cb, void *arg);
void etcd_call_cancel(struct etcd_call *call);

/* Convenience wrappers building the JSON body. key/value are raw bytes. */
struct etcd_call *etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                           etcd_reply_cb cb, void *arg);
struct etcd_call *etcd_delete(struct etcd_client *c, const char *key, etcd_reply_cb cb, void *arg);
/* Range of the one key (the reply decodes with etcd_parse_range()). */
struct etcd_call *etcd_get(struct etcd_client *c, const char *key, long timeout_ms,
                           etcd_reply_cb cb, void *arg);
/* A transaction deleting key only if its mod_revision is still
 * mod_revision; etcd_txn_succeeded() on the reply says whether it did. */
struct etcd_call *etcd_delete_if_mod(struct etcd_client *c, const char *key, int64_t mod_revision,
                                     long timeout_ms, etcd_reply_cb cb, void *arg);
struct etcd_call *etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, etcd_reply_cb cb,
                                   void *arg);
struct etcd_call *etcd_lease_keepalive(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                       void *arg);
struct etcd_call *etcd_lease_revoke(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                    void *arg);

#endif
