/* etcd-int - what the etcd client (etcd.c) shares with its prefix sync
 * (etcd_sync.c), and with no other module.
 *
 * The client owns the endpoints, the failover cursor and the authentication
 * token; a sync borrows them to open its watch on the member in use, to
 * probe that member, and to wait for a token (as a token waiter). Helpers
 * named etcd__x (libuv's convention) are internal: other modules use etcd.h
 * and etcd_sync.h. Everything here is the client's: the sync calls down
 * into it, the client never calls up into the sync (no import cycle), so
 * this header includes only etcd-t.h.
 */
#ifndef SLOTSYNC_ETCD_INT_H
#define SLOTSYNC_ETCD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/etcd-t.h>

struct ev_loop;
struct http_client;
struct http_request;
struct json_t;
struct etcd_call;
struct etcd_sync;

/* A wait for the authentication token, HAProxy's buffer_wait idiom: whoever
 * needs a token and finds none embeds one of these, sets cb and arg once,
 * and queues it with etcd__token_wait(). When the authentication ends, the
 * client takes each waiter off its list and calls cb(err, text, arg): err 0
 * means a token is there; otherwise text (log-safe) says why. A waiter is
 * queued at most once; etcd__token_wait_cancel() takes it off unwoken. */
struct etcd_token_waiter {
    struct etcd_token_waiter *prev, *next;
    bool queued;
    void (*cb)(int err, const char *text, void *arg);
    void *arg;
};

/* Username/password authentication: one /v3/auth/authenticate at a time;
 * calls and watches that need a token wait for it. */
struct etcd_auth {
    char *user, *password; /* NULL: no authentication */
    char *token;           /* sent as the raw Authorization header */
    unsigned gen;          /* bumped with every new token */
    struct http_request *req;
    size_t ep;
};

struct etcd_client {
    struct ev_loop *loop;
    struct http_client *http;
    char **endpoints;
    size_t n_endpoints;
    size_t cur; /* endpoint in use; moves on after a connection failure */
    long call_timeout_ms;
    struct etcd_call *calls;
    /* the syncs started on this client: owned by etcd_sync.c and linked
     * through it; etcd_client_free() refuses while there is one */
    struct etcd_sync *syncs;
    struct etcd_token_waiter *token_waiters; /* woken when an authentication ends */
    struct etcd_auth auth;
    enum etcd_transport transport;
};

/* ---- etcd.c, for etcd_sync.c ---- */

/* Move off endpoint ep after it failed, unless someone already did. why
 * (log-safe, naming ep) makes the switch a warning; NULL logs it as info. */
void etcd__endpoint_failed(struct etcd_client *c, size_t ep, const char *why);
/* endpoint ep's URL followed by path: new, or NULL on ENOMEM. */
char *etcd__endpoint_url(const struct etcd_client *c, size_t ep, const char *path);
/* Errors worth one more try on the next endpoint. */
bool etcd__retryable(int err);
/* err and text say the revision asked for was compacted. */
bool etcd__is_compacted(int err, const char *text);

/* etcd_call(), or with pin >= 0 a call to that endpoint only (no failover,
 * no endpoint switch). body is stolen, even on failure. */
struct etcd_call *etcd__call_start(
    struct etcd_client *c, long pin, const char *path, struct json_t *body, long timeout_ms,
    void (*cb)(int err, const struct json_t *reply, const char *errtext, void *arg), void *arg);

/* Set a base64 / an int64-as-string field of a request body. 0 or
 * -ENOMEM. */
int etcd__set_b64(struct json_t *obj, const char *field, const void *data, size_t len);
int etcd__set_int64(struct json_t *obj, const char *field, int64_t v);

/* Authentication is configured and no token is held. */
bool etcd__auth_needed(struct etcd_client *c);
/* Start /v3/auth/authenticate unless one is in flight. 0, or -ENOMEM (then
 * nothing waits for it: the caller fails what needed it). */
int etcd__auth_start(struct etcd_client *c);
/* The token sent with generation gen was refused: forget it, unless a newer
 * one replaced it meanwhile. */
void etcd__auth_invalidate(struct etcd_client *c, unsigned gen);
/* Queue w (borrowed; a no-op if it is queued already) for the token and
 * start the authentication unless one is in flight. 0, or -ENOMEM: then w
 * is not queued and will not be woken. */
int etcd__token_wait(struct etcd_client *c, struct etcd_token_waiter *w);
/* Take w off the queue without waking it (a no-op if it is not queued). */
void etcd__token_wait_cancel(struct etcd_client *c, struct etcd_token_waiter *w);

/* A finished gRPC exchange of method m (gateway_path's) read as the
 * gateway would have answered: *reply new, the reply object (a streamed
 * method's first message inside "result") or, for a non-zero grpc-status,
 * the gateway's error object {"error","message","code"}. 0, or a negative
 * errno with *why (log-safe) for a reply neither can be made of. */
int etcd__grpc_reply(const char *gateway_path, struct http_request *req, long status,
                     const char *body, size_t len, struct json_t **reply, char **why);

#endif
