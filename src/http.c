/* http - libcurl's multi interface on a libev loop.
 *
 * The split follows curl's evhiperfifo example: curl tells us which sockets
 * to watch (sock_cb -> one ev_io per socket) and when to call it back
 * (timer_cb -> one ev_timer); libev tells us when a socket is ready
 * (io_cb/timeout_cb -> curl_multi_socket_action); afterwards dispatch() reads
 * curl's finished transfers.
 *
 * No user callback ever runs inside a libcurl callback: libcurl refuses
 * curl_multi_add_handle/remove_handle from there (CURLM_RECURSIVE_API_CALL),
 * and our users start and cancel requests from their callbacks. So curl's
 * write callback only copies bytes into the request; dispatch() hands
 * streamed chunks to on_data and finished transfers to done once
 * curl_multi_socket_action has returned. While dispatch() runs, a cancelled
 * request is detached from curl at once but its memory is only released
 * when dispatch() ends, so the walk over the request list stays valid.
 */
#include <slotsync/http.h>

#include <slotsync/fdlimit.h>
#include <slotsync/log.h>
#include <slotsync/mem.h>
#include <slotsync/tls.h>
#include <slotsync/timeouts.h>
#include <slotsync/vec.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <ev.h>

#define HTTP_DEFAULT_MAX_BODY ((size_t)16 << 20)
/* Dead-peer detection for idle streams: first probe after 15 s of silence,
 * then every 5 s (the kernel's probe count applies, usually 9). */
#define HTTP_KEEPIDLE_S 15L
#define HTTP_KEEPINTVL_S 5L

struct http_sock {
    ev_io io; /* first: the ev callback gets &io */
    struct http_client *client;
    curl_socket_t fd;
    struct http_sock *prev, *next;
};

struct http_client {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    struct http_request *reqs; /* every request not yet released */
    struct http_sock *socks;
    int busy;             /* dispatch() depth: releases are deferred while > 0 */
    bool freeing;         /* http_client_free() was called during dispatch() */
    bool in_curl;         /* inside curl_multi_socket_action() */
    struct tls_files tls; /* for https:// URLs; copied into each request */
    char *authorization;  /* "Authorization: ..." header line, or NULL */
    bool has_tls;
};

struct http_request {
    struct http_client *client;
    struct http_request *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO for a TLS server_name */
    bool https;
    http_done_cb done;
    http_data_cb on_data;
    void *arg;
    char *buf; /* buffered: the body so far; stream: bytes not yet given to on_data */
    size_t len, cap, max_body;
    bool dead;    /* finished or cancelled: no more callbacks, release pending */
    bool too_big; /* buffered body went over max_body */
    char errbuf[CURL_ERROR_SIZE];
    int socket_errno; /* socket() failed with it (EMFILE...): curl says only "couldn't connect" */
    /* grpc (issue 24) */
    int grpc_status; /* -1 none yet, -2 malformed */
    char *grpc_message;
    bool body_stream;    /* the body is fed by http_request_send() */
    bool body_ended;     /* ... until http_request_end_body() */
    bool body_paused;    /* curl was told to wait for more */
    char *out;           /* queued body bytes not yet taken by curl */
    size_t out_off, out_len, out_cap;
};

/* ---- requests ---- */

static int buf_append(struct http_request *req, const char *data, size_t n)
{
    if (n > SIZE_MAX - req->len - 1)
        return -ENOMEM;
    if (vec_reserve(&req->buf, &req->cap, req->len + n + 1, 1, 4096) < 0)
        return -ENOMEM;
    memcpy(req->buf + req->len, data, n);
    req->len += n;
    req->buf[req->len] = '\0';
    return 0;
}

/* curl's write callback: only stores bytes (see the file comment). */
static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_request *req = userp;
    size_t n = size * nmemb;

    if (req->dead)
        return 0;
    if (!req->on_data && req->len + n > req->max_body) {
        req->too_big = true;
        return 0;
    }
    if (buf_append(req, data, n) < 0)
        return 0;
    return n;
}

/* Whether this libcurl breaks a reused prior-knowledge (cleartext) HTTP/2
 * connection: 7.88.0 and 7.88.1 do (curl#10634). */
static bool h2c_reuse_broken(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    return v && v->version_num >= 0x075800 && v->version_num < 0x075802;
}

/* curl's header callback on grpc requests: keeps grpc-status and
 * grpc-message, from the headers (a trailers-only reply) or the trailers. */
static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_request *req = userp;
    size_t n = size * nmemb, name_len, vlen;
    const char *colon = memchr(data, ':', n), *v;

    if (!colon)
        return n;
    name_len = (size_t)(colon - data);
    v = colon + 1;
    vlen = n - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (name_len == 11 && strncasecmp(data, "grpc-status", 11) == 0) {
        int code = 0;
        size_t i;

        for (i = 0; i < vlen && i < 3 && v[i] >= '0' && v[i] <= '9'; i++)
            code = code * 10 + (v[i] - '0');
        req->grpc_status = (vlen > 0 && i == vlen && code <= 16) ? code : -2;
    } else if (name_len == 12 && strncasecmp(data, "grpc-message", 12) == 0) {
        char *m = strndup(v, vlen < 4096 ? vlen : 4096);

        if (m) {
            free(req->grpc_message);
            req->grpc_message = m;
        }
    }
    return n;
}

/* curl's read callback on body_stream requests: hands over what is queued,
 * or pauses the upload until http_request_send() brings more. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct http_request *req = userp;
    size_t room = size * nitems, n = req->out_len - req->out_off;

    if (req->dead)
        return CURL_READFUNC_ABORT;
    if (n == 0) {
        if (req->body_ended)
            return 0;
        req->body_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (n > room)
        n = room;
    memcpy(buf, req->out + req->out_off, n);
    req->out_off += n;
    if (req->out_off == req->out_len)
        req->out_off = req->out_len = 0;
    return n;
}

/* Detach the easy handle from curl. Must not run inside a curl callback. */
static void request_detach(struct http_request *req)
{
    if (req->easy) {
        curl_multi_remove_handle(req->client->multi, req->easy);
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    req->dead = true;
}

static void request_release(struct http_request *req)
{
    struct http_client *c = req->client;

    request_detach(req);
    if (req->prev)
        req->prev->next = req->next;
    else
        c->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    curl_slist_free_all(req->headers);
    curl_slist_free_all(req->connect_to);
    free(req->buf);
    mem_transient_freed(req->cap); /* a listing page's body, say */
    free(req->grpc_message);
    free(req->out);
    free(req);
}

/* Free dead requests once no dispatch() is walking the list. */
static void sweep(struct http_client *c)
{
    struct http_request *req = c->reqs, *next;

    for (; req; req = next) {
        next = req->next;
        if (req->dead)
            request_release(req);
    }
}

static int map_curl_error(const struct http_request *req, CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_WRITE_ERROR:
        return req->too_big ? -EMSGSIZE : -EIO;
    default:
        return -EIO;
    }
}

static bool has(const char *text, const char *word)
{
    return strstr(text, word) != NULL;
}

/* TLS failures say which of the usual causes it is; curl's own text (from
 * OpenSSL) follows. Returns false for errors that are not about TLS. */
static bool tls_error_text(const struct http_request *req, CURLcode rc, const char *detail,
                           char *out, size_t size)
{
    const char *what;
    long status = 0;

    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (has(detail, "subject name") || has(detail, "does not match") ||
            has(detail, "hostname mismatch"))
            what = "the server's certificate is not valid for this host name (set "
                   "etcd.tls.server_name to a name it holds)";
        else
            what = "the server's certificate is not signed by a trusted CA (check etcd.tls.ca_file "
                   "or --cacert)";
        break;
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
        what = "the CA file, client certificate or key cannot be used";
        break;
    case CURLE_SSL_CLIENTCERT:
        what = "the server requires a client certificate (etcd.tls.cert_file or --cert)";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (has(detail, "certificate required") || has(detail, "bad certificate") ||
            has(detail, "unknown ca") || has(detail, "certificate unknown"))
            what = req->client->has_tls && req->client->tls.cert
                       ? "the server refused the client certificate"
                       : "the server requires a client certificate and none is configured "
                         "(etcd.tls.cert_file or --cert)";
        else if (rc == CURLE_SSL_CONNECT_ERROR)
            what = "handshake failed";
        else if (req->https && req->client->has_tls &&
                 curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
                 status == 0 && req->len == 0)
            /* TLS 1.3: the server checks the client certificate after the
             * handshake and just closes; nothing came back yet */
            what = req->client->tls.cert
                       ? "the server refused the client certificate (it closed the connection "
                         "right after the handshake)"
                       : "the server requires a client certificate and none is configured "
                         "(etcd.tls.cert_file or --cert); it closed the connection right after "
                         "the handshake";
        else
            return false;
        break;
    default:
        return false;
    }
    snprintf(out, size, "TLS: %s: %s", what, detail);
    return true;
}

/* CURLOPT_OPENSOCKETFUNCTION: socket() as curl would call it, but with its
 * errno kept, so that EMFILE is reported as such and not as an unreachable
 * server (issue 20). */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    struct http_request *req = clientp;
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);

    if (fd < 0) {
        req->socket_errno = errno;
        return CURL_SOCKET_BAD;
    }
    req->socket_errno = 0;
    return fd;
}

static void finish(struct http_request *req, CURLcode rc)
{
    long status = 0;
    int err = 0;
    const char *errtext = NULL;
    char text[CURL_ERROR_SIZE + 256];

    if (rc == CURLE_OK) {
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    } else {
        err = map_curl_error(req, rc);
        if (req->too_big)
            snprintf(text, sizeof(text), "response body larger than %zu bytes", req->max_body);
        else if (fdlimit_is_exhausted(req->socket_errno) && rc == CURLE_COULDNT_CONNECT) {
            /* Not the server's fault: say what ran out. */
            err = -req->socket_errno;
            snprintf(text, sizeof(text), "%s", fdlimit_strerror(req->socket_errno));
        } else if (tls_error_text(req, rc, req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc),
                                  text, sizeof(text)))
            err = -EPROTO;
        else
            snprintf(text, sizeof(text), "%s",
                     req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc));
        errtext = text;
    }
    request_detach(req);
    if (req->done) {
        if (req->on_data || err)
            req->done(req, err, status, NULL, 0, errtext, req->arg);
        else
            req->done(req, 0, status, req->buf ? req->buf : "", req->len, NULL, req->arg);
    }
}

/* Runs after every curl_multi_socket_action(): user callbacks live here. */
static void dispatch(struct http_client *c)
{
    struct http_request *req;
    CURLMsg *msg;
    int left;

    c->busy++;
    /* Streamed bytes first, so a transfer's data precedes its done. Requests
     * started meanwhile go in at the head, behind this walk, and have no
     * data yet anyway. */
    for (req = c->reqs; req; req = req->next) {
        while (!req->dead && req->on_data && req->len > 0) {
            char *chunk = req->buf;
            size_t n = req->len;
            int rc;

            /* Hand over the buffer: on_data may cancel this request. */
            req->buf = NULL;
            req->len = req->cap = 0;
            rc = req->on_data(req, chunk, n, req->arg);
            free(chunk);
            mem_transient_freed(n);
            if (rc != 0 && !req->dead) {
                request_detach(req);
                if (req->done)
                    req->done(req, -ECANCELED, 0, NULL, 0, "aborted by the data callback",
                              req->arg);
            }
        }
    }
    while (!c->freeing && (msg = curl_multi_info_read(c->multi, &left))) {
        char *priv = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        req = (struct http_request *)priv;
        if (req && !req->dead)
            finish(req, msg->data.result);
    }
    if (--c->busy == 0) {
        if (c->freeing)
            http_client_free(c);
        else
            sweep(c);
    }
}

/* ---- curl -> libev ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_sock *sock = (struct http_sock *)w;
    struct http_client *c = sock->client;
    int action = 0, running;

    if (revents & EV_READ)
        action |= CURL_CSELECT_IN;
    if (revents & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    if (revents & EV_ERROR)
        action |= CURL_CSELECT_ERR;
    /* sock may be freed by sock_cb during the call: use c only. */
    c->in_curl = true;
    curl_multi_socket_action(c->multi, sock->fd, action, &running);
    c->in_curl = false;
    dispatch(c);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_client *c = w->data;
    int running;

    c->in_curl = true;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl = false;
    dispatch(c);
}

static void sock_free(struct http_client *c, struct http_sock *sock)
{
    ev_io_stop(c->loop, &sock->io);
    if (sock->prev)
        sock->prev->next = sock->next;
    else
        c->socks = sock->next;
    if (sock->next)
        sock->next->prev = sock->prev;
    free(sock);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants. */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http_sock *sock = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sock) {
            curl_multi_assign(c->multi, s, NULL);
            sock_free(c, sock);
        }
        return 0;
    }
    if (!sock) {
        sock = calloc(1, sizeof(*sock));
        if (!sock)
            return -1; /* curl fails the transfer */
        sock->client = c;
        sock->fd = s;
        ev_init(&sock->io, io_cb);
        sock->next = c->socks;
        if (c->socks)
            c->socks->prev = sock;
        c->socks = sock;
        curl_multi_assign(c->multi, s, sock);
    }
    if (what & CURL_POLL_IN)
        events |= EV_READ;
    if (what & CURL_POLL_OUT)
        events |= EV_WRITE;
    ev_io_stop(c->loop, &sock->io);
    ev_io_set(&sock->io, s, events);
    if (events)
        ev_io_start(c->loop, &sock->io);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, else (re)arm it. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;

    ev_timer_stop(c->loop, &c->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(c->loop, &c->timer);
    }
    return 0;
}

/* ---- API ---- */

struct http_client *http_client_new(struct ev_loop *loop)
{
    static bool curl_ready;
    struct http_client *c;

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = true;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto fail;
    ev_init(&c->timer, timeout_cb);
    c->timer.data = c;
    /* gRPC requests to one member share one HTTP/2 connection (issue 24) */
    if (curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
        goto fail_multi;
    return c;

fail_multi:
    curl_multi_cleanup(c->multi);
fail:
    free(c);
    return NULL;
}

void http_client_free(struct http_client *c)
{
    struct http_request *req;

    if (!c)
        return;
    for (req = c->reqs; req; req = req->next) {
        req->done = NULL;
        req->on_data = NULL;
        request_detach(req);
    }
    if (c->busy > 0) {
        /* Inside a callback: dispatch() finishes the job on its way out. */
        c->freeing = true;
        return;
    }
    while (c->reqs)
        request_release(c->reqs);
    /* Cleanup may still report sockets through sock_cb, so c stays valid. */
    curl_multi_cleanup(c->multi);
    while (c->socks)
        sock_free(c, c->socks);
    ev_timer_stop(c->loop, &c->timer);
    tls_files_free(&c->tls);
    http_client_set_authorization(c, NULL);
    free(c);
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(req->easy, (opt), (val)) != CURLE_OK)                                 \
            goto fail;                                                                             \
    } while (0)

static int set_blob(CURL *easy, CURLoption opt, char *data, size_t len)
{
    struct curl_blob blob = {.data = data, .len = len, .flags = CURL_BLOB_COPY};

    return curl_easy_setopt(easy, opt, &blob) == CURLE_OK ? 0 : -ENOMEM;
}

/* The URL and, for https://, the client's TLS files. Verification stays on
 * (curl's default, set again so no code path can lose it). With a
 * server_name, the request goes to the URL's host and port but the
 * certificate is checked against server_name: the URL names server_name and
 * CURLOPT_CONNECT_TO maps it to the real address. */
static int set_url_and_tls(struct http_request *req, const char *url)
{
    const struct http_client *c = req->client;
    const struct tls_files *tls = &c->tls;
    char *host = NULL, *port = NULL, *named = NULL, connect_to[600];
    struct curl_slist *ct;
    CURLU *u = NULL;
    int ret = -EINVAL;

    req->https = strncmp(url, "https://", 8) == 0;
    if (!req->https || !c->has_tls)
        return curl_easy_setopt(req->easy, CURLOPT_URL, url) == CURLE_OK ? 0 : -ENOMEM;
    if (curl_easy_setopt(req->easy, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(req->easy, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
        return -ENOMEM;
    if ((tls->ca && set_blob(req->easy, CURLOPT_CAINFO_BLOB, tls->ca, tls->ca_len) < 0) ||
        (tls->cert && set_blob(req->easy, CURLOPT_SSLCERT_BLOB, tls->cert, tls->cert_len) < 0) ||
        (tls->key && set_blob(req->easy, CURLOPT_SSLKEY_BLOB, tls->key, tls->key_len) < 0))
        return -ENOMEM;
    if (!tls->server_name)
        return curl_easy_setopt(req->easy, CURLOPT_URL, url) == CURLE_OK ? 0 : -ENOMEM;

    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, tls->server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &named, 0) != CURLUE_OK)
        goto out;
    /* "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT"; an IPv6 host keeps its
     * brackets */
    snprintf(connect_to, sizeof(connect_to), "%s:%s:%s:%s", tls->server_name, port, host, port);
    ct = curl_slist_append(NULL, connect_to);
    if (!ct)
        goto out;
    req->connect_to = ct;
    if (curl_easy_setopt(req->easy, CURLOPT_CONNECT_TO, ct) != CURLE_OK ||
        curl_easy_setopt(req->easy, CURLOPT_URL, named) != CURLE_OK)
        goto out;
    ret = 0;
out:
    curl_free(host);
    curl_free(port);
    curl_free(named);
    curl_url_cleanup(u);
    return ret;
}

int http_client_set_authorization(struct http_client *c, const char *value)
{
    char *line = NULL;

    if (value && strpbrk(value, "\r\n"))
        return -EINVAL;
    if (value && !memprintf(&line, "Authorization: %s", value))
        return -ENOMEM;
    if (c->authorization) {
        /* a token is a secret: don't leave it in freed memory */
        memset(c->authorization, 0, strlen(c->authorization));
        free(c->authorization);
    }
    c->authorization = line;
    return 0;
}

int http_client_set_tls(struct http_client *c, const struct tls_conf *conf, char **errmsg)
{
    struct tls_files files;
    int ret;

    if (!conf || !tls_conf_set(conf)) {
        tls_files_free(&c->tls);
        c->has_tls = false;
        return 0;
    }
    ret = tls_files_load(conf, &files, errmsg);
    if (ret < 0)
        return ret;
    tls_files_free(&c->tls);
    c->tls = files;
    c->has_tls = true;
    if (files.key_too_open)
        log_warn("tls", "key file %s is readable by group or others (chmod 600 it)",
                 conf->key_file);
    return 0;
}

struct http_request *http_request_start(struct http_client *c, const char *url,
                                        const struct http_opts *opts, http_done_cb done, void *arg)
{
    static const struct http_opts defaults;
    struct http_request *req;
    const char *method;
    struct curl_slist *h;

    if (!c || !url || c->freeing || c->in_curl)
        return NULL;
    if (!opts)
        opts = &defaults;
    req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->client = c;
    req->done = done;
    req->on_data = opts->on_data;
    req->arg = arg;
    req->max_body = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
    req->grpc_status = -1;
    req->easy = curl_easy_init();
    if (!req->easy)
        goto fail;

    if (set_url_and_tls(req, url) < 0)
        goto fail;
    SETOPT(CURLOPT_PRIVATE, (char *)req);
    SETOPT(CURLOPT_ERRORBUFFER, req->errbuf);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SETOPT(CURLOPT_OPENSOCKETDATA, req);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, req);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_NOPROXY, "*");
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPIDLE_S);
    SETOPT(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPINTVL_S);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms > 0
                                          ? opts->connect_timeout_ms
                                          : HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
    if (opts->timeout_ms > 0)
        SETOPT(CURLOPT_TIMEOUT_MS, opts->timeout_ms);
    if (opts->low_speed_time_s > 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(CURLOPT_LOW_SPEED_TIME, opts->low_speed_time_s);
    }

    if (opts->grpc) {
        SETOPT(CURLOPT_HTTP_VERSION, req->https ? (long)CURL_HTTP_VERSION_2TLS
                                                : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        if (!req->https && h2c_reuse_broken()) {
            /* libcurl 7.88.0-7.88.1 (Debian 12's) fails a request that
             * reuses a prior-knowledge HTTP/2 connection ("Error in the
             * HTTP2 framing layer", curl#10634, fixed in 7.88.2 / 8.0): on
             * http:// each gRPC request gets a connection of its own
             * there. https:// (ALPN) is not affected and multiplexes. */
            SETOPT(CURLOPT_FRESH_CONNECT, 1L);
            SETOPT(CURLOPT_FORBID_REUSE, 1L);
        } else {
            /* wait for the connection in use rather than open a second one */
            SETOPT(CURLOPT_PIPEWAIT, 1L);
        }
        SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(CURLOPT_HEADERDATA, req);
        h = curl_slist_append(req->headers, "te: trailers");
        if (!h)
            goto fail;
        req->headers = h;
    }
    method = opts->method ? opts->method : (opts->body ? "POST" : "GET");
    if (opts->grpc && opts->body_stream) {
        char line[256];

        req->body_stream = true;
        if (opts->body && opts->body_len > 0 && http_request_send(req, opts->body, opts->body_len) < 0)
            goto fail;
        /* an upload of unknown size, sent as POST */
        SETOPT(CURLOPT_UPLOAD, 1L);
        SETOPT(CURLOPT_CUSTOMREQUEST, "POST");
        SETOPT(CURLOPT_READFUNCTION, read_cb);
        SETOPT(CURLOPT_READDATA, req);
        snprintf(line, sizeof(line), "Content-Type: %s",
                 opts->content_type ? opts->content_type : "application/grpc");
        h = curl_slist_append(req->headers, line);
        if (!h)
            goto fail;
        req->headers = h;
    } else if (opts->body || strcmp(method, "POST") == 0) {
        char line[256];

        /* Size first: COPYPOSTFIELDS then copies exactly body_len bytes. */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(opts->body ? opts->body_len : 0));
        SETOPT(CURLOPT_COPYPOSTFIELDS, opts->body ? opts->body : "");
        snprintf(line, sizeof(line), "Content-Type: %s",
                 opts->content_type ? opts->content_type : "application/json");
        h = curl_slist_append(req->headers, line);
        if (!h)
            goto fail;
        req->headers = h;
        /* No "Expect: 100-continue" round trip for large bodies. */
        h = curl_slist_append(req->headers, "Expect:");
        if (!h)
            goto fail;
        req->headers = h;
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }

    for (const char *const *line = opts->headers; line && *line; line++) {
        h = curl_slist_append(req->headers, *line);
        if (!h)
            goto fail;
        req->headers = h;
    }
    if (c->authorization) {
        h = curl_slist_append(req->headers, c->authorization);
        if (!h)
            goto fail;
        req->headers = h;
    }
    if (req->headers)
        SETOPT(CURLOPT_HTTPHEADER, req->headers);

    if (curl_multi_add_handle(c->multi, req->easy) != CURLM_OK)
        goto fail;
    /* At the head: a dispatch() walk in progress is past it, and it has no
     * data yet anyway. */
    req->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = req;
    c->reqs = req;
    return req;

fail:
    if (req->easy)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    curl_slist_free_all(req->connect_to);
    free(req->out);
    free(req);
    return NULL;
}

int http_request_grpc_status(const struct http_request *req, const char **message)
{
    if (message)
        *message = req ? req->grpc_message : NULL;
    return req ? req->grpc_status : -1;
}

int http_request_send(struct http_request *req, const void *data, size_t len)
{
    if (!req || req->dead || !req->body_stream || req->body_ended)
        return -EINVAL;
    if (req->out_off > 0 && req->out_off == req->out_len)
        req->out_off = req->out_len = 0;
    if (vec_reserve(&req->out, &req->out_cap, req->out_len + len, 1, 256) < 0)
        return -ENOMEM;
    memcpy(req->out + req->out_len, data, len);
    req->out_len += len;
    if (req->body_paused && req->easy && !req->client->in_curl) {
        req->body_paused = false;
        curl_easy_pause(req->easy, CURLPAUSE_CONT);
    }
    return 0;
}

void http_request_end_body(struct http_request *req)
{
    if (!req || req->dead || !req->body_stream || req->body_ended)
        return;
    req->body_ended = true;
    if (req->body_paused && req->easy && !req->client->in_curl) {
        req->body_paused = false;
        curl_easy_pause(req->easy, CURLPAUSE_CONT);
    }
}

void http_cancel(struct http_request *req)
{
    struct http_client *c;

    if (!req || req->dead)
        return;
    c = req->client;
    req->done = NULL;
    req->on_data = NULL;
    if (c->busy > 0)
        request_detach(req); /* dispatch() releases it */
    else
        request_release(req);
}
