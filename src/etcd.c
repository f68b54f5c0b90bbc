/* etcd - an etcd v3 client over the JSON gateway, on the loop: one buffered
 * POST per call (etcd_call and the put/get/delete/txn/lease wrappers), with
 * endpoint failover and username/password authentication.
 *
 * The pure decoders of the replies are in etcd_decode.c; the prefix sync
 * (list + watch) is in etcd_sync.c and reaches the client's endpoints and
 * token through etcd-int.h. The client never calls up into the sync: a
 * sync waiting for a token queues a token waiter (HAProxy's buffer_wait
 * idiom) which the client wakes, and the client is not freed while a sync
 * is started on it (-EBUSY).
 *
 * Re-entrancy. Any callback may start or cancel calls, or free the etcd
 * client. (Freeing the http client from inside an etcd callback is not
 * supported: a sync stopped there could leak.)
 */
#include <slotsync/etcd.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/etcd-int.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/etcd_grpc.h>
#include <slotsync/http.h>
#include <slotsync/log.h>
#include <slotsync/timeouts.h>

#define MOD "etcd"

#define ETCD_REPLY_MAX ((size_t)256 << 20)

/* ---- client and calls ---- */

struct etcd_call {
    struct etcd_client *client;
    struct etcd_call *prev, *next;
    char *path;
    char *body;
    size_t body_len;
    long timeout_ms;
    etcd_reply_cb cb;
    void *arg;
    struct http_request *req;
    size_t ep;   /* endpoint req went to */
    bool pinned; /* only ep: no failover, no endpoint switch (probes) */
    int attempts;
    bool in_cb;         /* cb running: cancel is a no-op, we free on return */
    bool waiting_auth;  /* not sent yet: waits for a token */
    bool reauthed;      /* already retried once with a new token */
    unsigned token_gen; /* the token it was sent with */
    const struct etcd_grpc_method *grpc; /* gRPC transport: the method; body is framed */
    /* A streamed method (LeaseKeepAlive) called once: the request's body
     * stays open until the first reply message is in (etcd grpc-proxy
     * cancels the call when the client half-closes before its reply came,
     * issue 24); rbuf holds the reply's bytes so far. */
    bool stream_reply;
    bool got_reply; /* rbuf holds a whole message: the transfer was ended */
    char *rbuf;
    size_t rlen;
};

/* Move off endpoint ep after it failed, unless someone already did. why
 * (log-safe, naming ep) makes the switch a warning; callers that log the
 * failure themselves pass NULL. */
void etcd__endpoint_failed(struct etcd_client *c, size_t ep, const char *why)
{
    if (c->n_endpoints > 1 && c->cur == ep) {
        c->cur = (c->cur + 1) % c->n_endpoints;
        if (why)
            log_warn(MOD, "%s; switching to endpoint %s", why, c->endpoints[c->cur]);
        else
            log_info(MOD, "switching to endpoint %s", c->endpoints[c->cur]);
    }
}

char *etcd__endpoint_url(const struct etcd_client *c, size_t ep, const char *path)
{
    char *url = NULL;

    return memprintf(&url, "%s%s", c->endpoints[ep], path);
}

/* Errors worth one more try on the next endpoint: nothing reached etcd, or
 * the member said it cannot serve (no leader, shutting down). */
bool etcd__retryable(int err)
{
    return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EHOSTUNREACH || err == -EAGAIN;
}

bool etcd__is_compacted(int err, const char *text)
{
    return err == -ERANGE && text && strstr(text, "compacted");
}

static void call_unlink(struct etcd_call *call)
{
    struct etcd_client *c = call->client;

    if (!c)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    call->client = NULL;
}

static void call_unlink_free(struct etcd_call *call)
{
    call_unlink(call);
    free(call->rbuf);
    free(call->path);
    free(call->body);
    free(call);
}

static void call_http_done(struct http_request *req, int err, long status, const char *body,
                           size_t len, const char *errtext, void *arg);

static void auth_release(struct etcd_client *c, int err, const char *text);

/* Stream-mode data of a stream_reply call: gather the bytes, and end the
 * transfer (done then gets -ECANCELED, read as the reply) once they hold a
 * whole gRPC message. */
static int call_grpc_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct etcd_call *call = arg;
    char *grown;
    uint32_t mlen;

    (void)req;
    if (len > ETCD_GRPC_MAX_MSG + ETCD_GRPC_PREFIX - call->rlen)
        return 1; /* more than a message can be: done gets -ECANCELED without a reply */
    grown = realloc(call->rbuf, call->rlen + len);
    if (!grown)
        return 1;
    call->rbuf = grown;
    memcpy(call->rbuf + call->rlen, data, len);
    call->rlen += len;
    if (call->rlen < ETCD_GRPC_PREFIX)
        return 0;
    mlen = (uint32_t)(unsigned char)call->rbuf[1] << 24 |
           (uint32_t)(unsigned char)call->rbuf[2] << 16 |
           (uint32_t)(unsigned char)call->rbuf[3] << 8 | (unsigned char)call->rbuf[4];
    if (call->rbuf[0] != 0 || mlen > ETCD_GRPC_MAX_MSG ||
        call->rlen - ETCD_GRPC_PREFIX >= mlen) {
        call->got_reply = true; /* bad framing is reported by etcd__grpc_reply */
        return 1;
    }
    return 0;
}

static int call_send(struct etcd_call *call)
{
    struct etcd_client *c = call->client;
    struct http_opts opts = {
        .method = "POST",
        .body = call->body,
        .body_len = call->body_len,
        .timeout_ms = call->timeout_ms,
        .max_body = ETCD_REPLY_MAX,
    };
    size_t ep = call->pinned ? call->ep : c->cur;
    char *url = etcd__endpoint_url(c, ep, call->grpc ? etcd_grpc_path(call->grpc) : call->path);

    if (!url)
        return -ENOMEM;
    call->ep = ep;
    call->attempts++;
    call->token_gen = c->auth.gen;
    if (call->grpc) {
        opts.grpc = true;
        opts.content_type = "application/grpc";
    }
    if (call->grpc && etcd_grpc_streamed(call->grpc)) {
        call->stream_reply = true;
        call->got_reply = false;
        free(call->rbuf);
        call->rbuf = NULL;
        call->rlen = 0;
        opts.body_stream = true;
        opts.on_data = call_grpc_data;
    }
    call->req = http_request_start(c->http, url, &opts, call_http_done, call);
    free(url);
    return call->req ? 0 : -ENOMEM;
}

/* etcd_grpc_stream callback: keep the first message, stop. */
static int grpc_first_msg(const void *data, size_t len, void *arg)
{
    struct {
        const char *data;
        size_t len;
        bool seen;
    } *first = arg;

    first->data = data;
    first->len = len;
    first->seen = true;
    return 1;
}

static int grpc_first_reply(const struct etcd_grpc_method *m, const char *body, size_t len,
                            json_t **reply, char **why);

int etcd__grpc_reply(const char *gateway_path, struct http_request *req, long status,
                     const char *body, size_t len, json_t **reply, char **why)
{
    const struct etcd_grpc_method *m = etcd_grpc_method(gateway_path);
    const char *gmsg = NULL;
    int code = http_request_grpc_status(req, &gmsg);
    char q[LOG_QUOTE_MAX];

    *reply = NULL;
    if (!m)
        return memprintf(why, "no gRPC method for %s", gateway_path), -EINVAL;
    if (code == -2)
        return memprintf(why, "malformed grpc-status"), -EPROTO;
    if (code < 0) {
        /* no gRPC status at all: not a gRPC server, or a proxy's own reply */
        if (status != 200)
            memprintf(why, "HTTP %ld without a gRPC status: %s", status,
                      log_quote(body ? body : "", len, q, 200));
        else
            memprintf(why, "reply without a gRPC status");
        return status == 503 ? -EAGAIN : -EIO;
    }
    if (code > 0) {
        char *text = etcd_grpc_message_decode(gmsg ? gmsg : "");

        *reply = text ? json_pack("{s:s, s:s, s:i}", "error", text, "message", text, "code", code)
                      : NULL;
        free(text);
        if (!*reply)
            return memprintf(why, "out of memory"), -ENOMEM;
        return 0;
    }
    return grpc_first_reply(m, body, len, reply, why);
}

/* The first gRPC message of body, decoded for method m into *reply (new). */
static int grpc_first_reply(const struct etcd_grpc_method *m, const char *body, size_t len,
                            json_t **reply, char **why)
{
    struct etcd_grpc_stream st;
    struct first {
        const char *data;
        size_t len;
        bool seen;
    } first = {0};
    int rc;

    *reply = NULL;
    etcd_grpc_stream_init(&st);
    rc = etcd_grpc_stream_feed(&st, body ? body : "", len, grpc_first_msg, &first);
    if (rc == 1)
        rc = 0;
    etcd_grpc_stream_free(&st);
    if (rc < 0)
        return memprintf(why, "bad gRPC framing (%s)", strerror(-rc)), -EBADMSG;
    if (!first.seen)
        return memprintf(why, "gRPC reply without a message"), -EBADMSG;
    rc = etcd_grpc_decode(m, first.data, first.len, reply, why);
    return rc < 0 ? -EBADMSG : 0;
}

/* Turn a finished HTTP exchange into (err, reply, text). *reply is new. */
static int call_result(const struct etcd_call *call, struct http_request *req, int err,
                       long status, const char *body, size_t len, const char *errtext,
                       json_t **reply, char **text)
{
    const struct etcd_client *c = call->client;
    const char *ep = c->endpoints[call->ep];
    char q[LOG_QUOTE_MAX];
    json_error_t jerr;
    const json_t *e;

    *reply = NULL;
    if (call->stream_reply) {
        /* stream mode: the body is what call_grpc_data gathered */
        if (err == -ECANCELED && call->got_reply) {
            err = 0;
            status = 200;
        }
        body = call->rbuf;
        len = call->rlen;
    }
    if (err < 0) {
        /* curl's text may echo what the peer sent */
        memprintf(text, "%s%s: %s", ep, call->path,
                  errtext ? log_quote_str(errtext, q, sizeof(q)) : "request failed");
        return err;
    }
    if (call->grpc) {
        char *why = NULL;
        /* a stream_reply call ended at its first message: no trailers (yet) */
        int rc = call->stream_reply && call->got_reply
                     ? grpc_first_reply(call->grpc, body, len, reply, &why)
                     : etcd__grpc_reply(call->path, req, status, body, len, reply, &why);

        if (rc < 0) {
            memprintf(text, "%s%s: %s", ep, etcd_grpc_path(call->grpc),
                      why ? why : "out of memory");
            free(why);
            return rc;
        }
        status = 200; /* the gRPC status is what counts */
        jerr.text[0] = '\0';
    } else {
        *reply = json_loadb(body, len, 0, &jerr);
    }
    e = etcd_reply_error(*reply);
    if (e) {
        struct etcd_watch_msg m = {0};
        int rc;

        if (etcd_parse_error(*reply, e, &m, NULL) < 0) {
            memprintf(text, "%s%s: HTTP %ld, unreadable error", ep, call->path, status);
            etcd_watch_msg_free(&m);
            return -EIO;
        }
        rc = etcd_grpc_errno(m.error_code);
        memprintf(text, "%s%s: etcd: %s (code %d)", ep, call->path,
                  log_quote_str(m.error_message, q, sizeof(q)), m.error_code);
        etcd_watch_msg_free(&m);
        return rc;
    }
    if (status != 200) {
        memprintf(text, "%s%s: HTTP %ld: %s", ep, call->path, status, log_quote(body, len, q, 200));
        return -EIO; /* -ENOENT is kept for etcd's own NOT_FOUND */
    }
    if (!json_is_object(*reply)) {
        /* jansson's text echoes the offending input bytes */
        memprintf(text, "%s%s: reply is not a JSON object: %s", ep, call->path,
                  log_quote_str(jerr.text, q, sizeof(q)));
        json_decref(*reply);
        *reply = NULL;
        return -EBADMSG;
    }
    return 0;
}

static void call_http_done(struct http_request *req, int err, long status, const char *body,
                           size_t len, const char *errtext, void *arg)
{
    struct etcd_call *call = arg;
    struct etcd_client *c = call->client;
    json_t *reply = NULL;
    char *text = NULL;
    int rc;

    rc = call_result(call, req, err, status, body, len, errtext, &reply, &text);
    call->req = NULL;
    if (rc == -EACCES && c->auth.user && !call->reauthed) {
        /* invalid or expired token (gRPC 16): authenticate again, then send
         * this call once more */
        log_debug(MOD, "%s: authenticating again", text ? text : "etcd call refused");
        call->reauthed = true;
        call->waiting_auth = true;
        etcd__auth_invalidate(c, call->token_gen);
        json_decref(reply);
        free(text);
        if (etcd__auth_start(c) < 0)
            auth_release(c, -ENOMEM, "cannot start an etcd authentication request");
        return;
    }
    if (etcd__retryable(rc) && !call->pinned) {
        /* The caller reports the failure if the retry fails too. */
        log_debug(MOD, "%s", text ? text : "etcd call failed");
        etcd__endpoint_failed(c, call->ep, text ? text : "etcd call failed");
        if (call->attempts < 2 && c->n_endpoints > 1 && call_send(call) == 0) {
            json_decref(reply);
            free(text);
            return;
        }
    }
    call->in_cb = true;
    call->cb(rc, reply, rc == 0 ? NULL : text ? text : "out of memory", call->arg);
    json_decref(reply);
    free(text);
    call_unlink_free(call);
}

/* etcd_call, or with pin >= 0 a call to that endpoint only. */
struct etcd_call *etcd__call_start(struct etcd_client *c, long pin, const char *path, json_t *body,
                                   long timeout_ms, etcd_reply_cb cb, void *arg)
{
    struct etcd_call *call;

    if (!c || !path || !body || !cb)
        goto fail_body;
    call = calloc(1, sizeof(*call));
    if (!call)
        goto fail_body;
    call->client = c;
    call->cb = cb;
    call->arg = arg;
    call->pinned = pin >= 0;
    call->ep = pin >= 0 ? (size_t)pin : 0;
    call->timeout_ms = timeout_ms > 0       ? timeout_ms
                       : c->call_timeout_ms ? c->call_timeout_ms
                                            : ETCD_CALL_TIMEOUT_MS;
    call->path = strdup(path);
    if (c->transport == ETCD_TRANSPORT_GRPC) {
        char *why = NULL;

        call->grpc = etcd_grpc_method(path);
        if (!call->grpc || etcd_grpc_encode(call->grpc, body, &call->body, &call->body_len,
                                            &why) < 0) {
            log_error(MOD, "cannot encode %s for gRPC: %s", path,
                      why ? why : "no such method");
            free(why);
            json_decref(body);
            goto fail_call;
        }
    } else {
        call->body = json_dumps(body, JSON_COMPACT);
        if (call->body)
            call->body_len = strlen(call->body);
    }
    json_decref(body);
    if (!call->path || !call->body)
        goto fail_call;
    if (etcd__auth_needed(c))
        call->waiting_auth = true;
    else if (call_send(call) < 0)
        goto fail_call;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    if (call->waiting_auth && etcd__auth_start(c) < 0) {
        call_unlink_free(call);
        return NULL;
    }
    return call;

fail_call:
    free(call->path);
    free(call->body);
    free(call);
    return NULL;
fail_body:
    json_decref(body);
    return NULL;
}

struct etcd_call *etcd_call(struct etcd_client *c, const char *path, json_t *body, long timeout_ms,
                            etcd_reply_cb cb, void *arg)
{
    return etcd__call_start(c, -1, path, body, timeout_ms, cb, arg);
}

void etcd_client_set_call_timeout(struct etcd_client *c, long timeout_ms)
{
    if (c)
        c->call_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void etcd_client_set_transport(struct etcd_client *c, enum etcd_transport t)
{
    if (c)
        c->transport = t == ETCD_TRANSPORT_GRPC ? ETCD_TRANSPORT_GRPC : ETCD_TRANSPORT_JSON;
}

const char *etcd_transport_name(enum etcd_transport t)
{
    return t == ETCD_TRANSPORT_GRPC ? "grpc" : "json";
}

void etcd_call_cancel(struct etcd_call *call)
{
    if (!call || call->in_cb)
        return;
    http_cancel(call->req);
    call_unlink_free(call);
}

/* ---- request bodies ---- */

int etcd__set_b64(json_t *obj, const char *field, const void *data, size_t len)
{
    char *s;

    if (etcd_b64_encode(data, len, &s, NULL) < 0)
        return -ENOMEM;
    /* set_new takes the reference even on failure */
    if (json_object_set_new(obj, field, json_string(s)) < 0) {
        free(s);
        return -ENOMEM;
    }
    free(s);
    return 0;
}

int etcd__set_int64(json_t *obj, const char *field, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_object_set_new(obj, field, json_string(buf)) < 0 ? -ENOMEM : 0;
}

struct etcd_call *etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                           etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || etcd__set_b64(body, "key", key, strlen(key)) < 0 ||
        etcd__set_b64(body, "value", value ? value : "", value ? strlen(value) : 0) < 0 ||
        (lease && etcd__set_int64(body, "lease", lease) < 0)) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, "/v3/kv/put", body, 0, cb, arg);
}

struct etcd_call *etcd_delete(struct etcd_client *c, const char *key, etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || etcd__set_b64(body, "key", key, strlen(key)) < 0) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, "/v3/kv/deleterange", body, 0, cb, arg);
}

struct etcd_call *etcd_get(struct etcd_client *c, const char *key, long timeout_ms,
                           etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || etcd__set_b64(body, "key", key, strlen(key)) < 0) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, "/v3/kv/range", body, timeout_ms, cb, arg);
}

struct etcd_call *etcd_delete_if_mod(struct etcd_client *c, const char *key, int64_t mod_revision,
                                     long timeout_ms, etcd_reply_cb cb, void *arg)
{
    json_t *body = NULL, *cmp = NULL, *del = NULL;
    char *k64 = NULL, rev[24];

    if (!key || etcd_b64_encode(key, strlen(key), &k64, NULL) < 0)
        return NULL;
    snprintf(rev, sizeof(rev), "%lld", (long long)mod_revision);
    cmp = json_pack("{s:s, s:s, s:s, s:s}", "key", k64, "target", "MOD", "result", "EQUAL",
                    "mod_revision", rev);
    del = json_pack("{s:{s:s}}", "request_delete_range", "key", k64);
    if (cmp && del)
        body = json_pack("{s:[o], s:[o]}", "compare", cmp, "success", del);
    else {
        json_decref(cmp);
        json_decref(del);
    }
    free(k64);
    if (!body)
        return NULL;
    return etcd_call(c, "/v3/kv/txn", body, timeout_ms, cb, arg);
}

static struct etcd_call *lease_call(struct etcd_client *c, const char *path, const char *field,
                                    int64_t v, etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || etcd__set_int64(body, field, v) < 0) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, path, body, 0, cb, arg);
}

struct etcd_call *etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, etcd_reply_cb cb,
                                   void *arg)
{
    return lease_call(c, "/v3/lease/grant", "TTL", ttl_s, cb, arg);
}

struct etcd_call *etcd_lease_keepalive(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                       void *arg)
{
    return lease_call(c, "/v3/lease/keepalive", "ID", lease, cb, arg);
}

struct etcd_call *etcd_lease_revoke(struct etcd_client *c, int64_t lease, etcd_reply_cb cb,
                                    void *arg)
{
    return lease_call(c, "/v3/lease/revoke", "ID", lease, cb, arg);
}

/* ---- client ---- */

struct etcd_client *etcd_client_new(struct ev_loop *loop, struct http_client *http,
                                    char *const *endpoints, size_t n)
{
    struct etcd_client *c;

    if (!loop || !http || !endpoints || n == 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->http = http;
    c->endpoints = calloc(n, sizeof(*c->endpoints));
    if (!c->endpoints)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        size_t len;

        if (!endpoints[i])
            goto fail;
        len = strlen(endpoints[i]);
        while (len > 0 && endpoints[i][len - 1] == '/')
            len--;
        c->endpoints[i] = strndup(endpoints[i], len);
        if (!c->endpoints[i])
            goto fail;
        c->n_endpoints++;
    }
    return c;

fail:
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c);
    return NULL;
}

int etcd_client_free(struct etcd_client *c)
{
    struct etcd_call *call, *next;

    if (!c)
        return 0;
    if (c->syncs)
        return -EBUSY;
    while (c->token_waiters)
        etcd__token_wait_cancel(c, c->token_waiters);
    for (call = c->calls; call; call = next) {
        next = call->next;
        if (call->in_cb)
            call_unlink(call); /* its callback is running: it frees itself */
        else
            etcd_call_cancel(call);
    }
    http_cancel(c->auth.req);
    etcd_client_set_auth(c, NULL, NULL);
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c);
    return 0;
}

/* ---- authentication ---- */

static void free_secret(char **p)
{
    if (*p) {
        memset(*p, 0, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

int etcd_client_set_auth(struct etcd_client *c, const char *user, const char *password)
{
    char *u = NULL, *pw = NULL;

    if (user && (!(u = strdup(user)) || !(pw = strdup(password ? password : "")))) {
        free(u);
        return -ENOMEM;
    }
    free(c->auth.user);
    free_secret(&c->auth.password);
    free_secret(&c->auth.token);
    c->auth.user = u;
    c->auth.password = pw;
    c->auth.gen++;
    http_client_set_authorization(c->http, NULL);
    return 0;
}

bool etcd__auth_needed(struct etcd_client *c)
{
    return c->auth.user && !c->auth.token;
}

/* The token sent with generation gen was refused: forget it, unless a newer
 * one replaced it meanwhile. */
void etcd__auth_invalidate(struct etcd_client *c, unsigned gen)
{
    if (!c->auth.token || gen != c->auth.gen)
        return;
    free_secret(&c->auth.token);
    http_client_set_authorization(c->http, NULL);
}

/* Send or fail everything that waited for a token. text is NULL on
 * success. */
static void auth_release(struct etcd_client *c, int err, const char *text)
{
    struct etcd_call *call;
    bool again = true;

    while (again) {
        again = false;
        for (call = c->calls; call; call = call->next) {
            if (!call->waiting_auth)
                continue;
            call->waiting_auth = false;
            if (err == 0 && call_send(call) == 0)
                continue;
            call->in_cb = true;
            call->cb(err ? err : -ENOMEM, NULL, text ? text : "out of memory", call->arg);
            call_unlink_free(call);
            again = true; /* the list may have changed under us */
            break;
        }
    }
    /* Then the token waiters, one at a time from the head: a callback may
     * queue or cancel others. */
    while (c->token_waiters) {
        struct etcd_token_waiter *w = c->token_waiters;

        etcd__token_wait_cancel(c, w);
        w->cb(err, text, w->arg);
    }
}

int etcd__token_wait(struct etcd_client *c, struct etcd_token_waiter *w)
{
    if (!w->queued) {
        w->prev = NULL;
        w->next = c->token_waiters;
        if (c->token_waiters)
            c->token_waiters->prev = w;
        c->token_waiters = w;
        w->queued = true;
    }
    if (etcd__auth_start(c) < 0) {
        etcd__token_wait_cancel(c, w);
        return -ENOMEM;
    }
    return 0;
}

void etcd__token_wait_cancel(struct etcd_client *c, struct etcd_token_waiter *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        c->token_waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
}

static void auth_done(struct http_request *req, int err, long status, const char *body, size_t len,
                      const char *errtext, void *arg)
{
    struct etcd_client *c = arg;
    const char *ep = c->endpoints[c->auth.ep];
    json_t *reply = NULL, *tok;
    const json_t *e;
    char *text = NULL, q[512];
    int rc = 0;

    c->auth.req = NULL;
    if (err < 0) {
        rc = err;
        memprintf(&text, "%s/v3/auth/authenticate: %s", ep, errtext ? errtext : "failed");
        if (etcd__retryable(err))
            etcd__endpoint_failed(c, c->auth.ep, text);
    } else {
        if (c->transport == ETCD_TRANSPORT_GRPC) {
            char *why = NULL;

            if (etcd__grpc_reply("/v3/auth/authenticate", req, status, body, len, &reply,
                                 &why) < 0)
                log_debug(MOD, "%s/etcdserverpb.Auth/Authenticate: %s", ep,
                          why ? why : "out of memory");
            free(why);
        } else {
            reply = json_loadb(body, len, 0, NULL);
        }
        tok = json_is_object(reply) ? json_object_get(reply, "token") : NULL;
        e = etcd_reply_error(reply);
        if (json_is_string(tok) && json_string_length(tok) > 0 &&
            json_string_length(tok) == strlen(json_string_value(tok)) &&
            !strpbrk(json_string_value(tok), "\r\n")) {
            c->auth.token = strdup(json_string_value(tok));
            c->auth.gen++;
            if (!c->auth.token || http_client_set_authorization(c->http, c->auth.token) < 0) {
                free_secret(&c->auth.token);
                rc = -ENOMEM;
                memprintf(&text, "out of memory");
            }
        } else {
            struct etcd_watch_msg m = {0};

            rc = -EACCES;
            if (e && etcd_parse_error(reply, e, &m, NULL) == 0 && m.error_message)
                memprintf(&text, "%s: etcd authentication as user %s failed: %s", ep,
                          log_quote_str(c->auth.user, q, sizeof(q)), m.error_message);
            else
                memprintf(&text, "%s: etcd authentication as user %s failed (HTTP %ld)", ep,
                          log_quote_str(c->auth.user, q, sizeof(q)), status);
            etcd_watch_msg_free(&m);
        }
    }
    json_decref(reply);
    if (rc == 0)
        log_debug(MOD, "authenticated to etcd as %s", log_quote_str(c->auth.user, q, sizeof(q)));
    auth_release(c, rc, text ? text : "authentication failed");
    free(text);
}

/* Start /v3/auth/authenticate unless one is in flight. 0 or -ENOMEM
 * (then nothing waits for it: the caller fails what needed it). */
int etcd__auth_start(struct etcd_client *c)
{
    struct http_opts opts = {.method = "POST", .timeout_ms = ETCD_CALL_TIMEOUT_MS};
    json_t *body;
    char *text = NULL, *url;
    size_t text_len = 0;

    if (c->auth.req || !c->auth.user)
        return 0;
    body = json_pack("{s:s, s:s}", "name", c->auth.user, "password", c->auth.password);
    if (c->transport == ETCD_TRANSPORT_GRPC) {
        const struct etcd_grpc_method *m = etcd_grpc_method("/v3/auth/authenticate");

        if (body && etcd_grpc_encode(m, body, &text, &text_len, NULL) < 0)
            text = NULL;
        opts.grpc = true;
        opts.content_type = "application/grpc";
        url = etcd__endpoint_url(c, c->cur, etcd_grpc_path(m));
    } else {
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        text_len = text ? strlen(text) : 0;
        url = etcd__endpoint_url(c, c->cur, "/v3/auth/authenticate");
    }
    json_decref(body);
    if (text && url) {
        opts.body = text;
        opts.body_len = text_len;
        c->auth.ep = c->cur;
        /* no stale token on the request that gets a new one */
        http_client_set_authorization(c->http, NULL);
        c->auth.req = http_request_start(c->http, url, &opts, auth_done, c);
    }
    if (text) {
        memset(text, 0, text_len);
        free(text);
    }
    free(url);
    return c->auth.req ? 0 : -ENOMEM;
}
