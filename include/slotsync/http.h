/* http - libcurl's multi interface driven by a libev loop.
 *
 * One http_client per loop owns the CURLM, its timer and the per-socket I/O
 * watchers (the split of curl's evhiperfifo example: socket callback, timer
 * callback, event callback, check_multi_info). Requests never block the loop.
 */
#ifndef SLOTSYNC_HTTP_H
#define SLOTSYNC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct ev_loop;
struct http_client;
struct http_request;

/* Called for each chunk of a streamed response body (stream mode only).
 * Return 0 to go on, non-zero to abort the transfer (done_cb then gets
 * -ECANCELED). The request may not be cancelled from inside this callback. */
typedef int (*http_data_cb)(struct http_request *req, const char *data, size_t len, void *arg);

/* Called once when the request ends, unless it was cancelled with
 * http_cancel(). err is 0 when an HTTP response was received (status holds
 * its code), else a negative errno-style code with a reason in errtext;
 * -EPROTO with errtext starting "TLS: " for a TLS failure (the text says
 * which: an untrusted server certificate, a name mismatch, a refused or
 * missing client certificate, unusable files).
 * body/len hold the whole body in buffered mode (NUL-terminated, borrowed
 * until the callback returns), NULL/0 in stream mode. The request is freed
 * after the callback returns. */
typedef void (*http_done_cb)(struct http_request *req, int err, long status, const char *body,
                             size_t len, const char *errtext, void *arg);

struct http_opts {
    const char *method; /* "GET" or "POST"; NULL = GET without body, POST with */
    const char *body;   /* borrowed, copied by curl; NULL = none */
    size_t body_len;
    const char *content_type;   /* default "application/json" when a body is given */
    long connect_timeout_ms;    /* 0 = 3000 */
    long timeout_ms;            /* whole transfer; 0 = none (streams) */
    long low_speed_time_s;      /* abort if under 1 byte/s for this long; 0 = off */
    size_t max_body;            /* buffered mode cap; 0 = 16 MiB */
    http_data_cb on_data;       /* non-NULL: stream mode */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; copied */
    /* gRPC (issue 24): HTTP/2, with prior knowledge on http:// and by ALPN
     * on https://, every request to one host multiplexed on one
     * connection; "te: trailers" is sent and grpc-status / grpc-message
     * are kept from the headers or the trailers (http_request_grpc_status).
     * The body is binary, content_type should be "application/grpc". */
    bool grpc;
    /* With grpc: the request body is a stream that stays open after body
     * (if any) was sent; more is queued with http_request_send() and it
     * ends with http_request_end_body() or the request. */
    bool body_stream;
};

/* New client on loop. NULL on failure. */
struct http_client *http_client_new(struct ev_loop *loop);
/* Cancels every pending request (no callbacks) and frees the client. */
void http_client_free(struct http_client *c);

struct tls_conf;

/* Read the TLS files conf names (the CA bundle, the client certificate and
 * key) and use them for every https:// request started from now on;
 * requests in flight keep what they had. Called at start and on SIGHUP. On
 * failure the files in use stay and *errmsg names the file. A key file
 * readable by group or others is logged as a warning. conf NULL or empty:
 * the system's CAs, no client certificate. 0 or a negative errno. */
int http_client_set_tls(struct http_client *c, const struct tls_conf *conf, char **errmsg);

/* Send "Authorization: value" (copied; NULL: none) with every request
 * started from now on. 0 or -ENOMEM, or -EINVAL for a value with a line
 * break. */
int http_client_set_authorization(struct http_client *c, const char *value);

/* Start a request. url and opts are borrowed (copied). Returns the request,
 * or NULL on failure (then done is never called). */
struct http_request *http_request_start(struct http_client *c, const char *url,
                                        const struct http_opts *opts, http_done_cb done, void *arg);

/* A grpc request's status, valid until its done callback returns: the
 * grpc-status value (-1 when none came, -2 when it was not a number 0-16)
 * and, if message is not NULL, the raw grpc-message (borrowed, NULL when
 * none came). */
int http_request_grpc_status(const struct http_request *req, const char **message);

/* Queue bytes (copied) on a body_stream request's body; they are sent as
 * soon as the connection takes them. 0, -ENOMEM, or -EINVAL when the
 * request has no open body stream (ended, finished or not body_stream). */
int http_request_send(struct http_request *req, const void *data, size_t len);
/* End a body_stream request's body once what is queued is sent. */
void http_request_end_body(struct http_request *req);

/* Abort a pending request; its done callback is not called. */
void http_cancel(struct http_request *req);

#endif
