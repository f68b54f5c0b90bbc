/* etcd - an etcd v3 client over the JSON gateway, on the loop.
 *
 * Two layers (the pure decoders are in etcd_decode.c):
 *  - etcd_call: one buffered POST with endpoint failover;
 *  - etcd_sync: LIST a prefix in pages at one revision, then WATCH from the
 *    next revision, reconnecting with backoff and re-listing on compaction.
 *
 * Watch liveness. An idle watch is silent, so neither a transfer timeout nor
 * curl's low-speed limit can tell a quiet stream from a dead one. Two guards:
 *  - TCP keepalive on every connection (see http.c) catches a dead peer or a
 *    lost network within about a minute;
 *  - the watch asks for progress notifications. etcd sends one per interval
 *    (--experimental-watch-progress-notify-interval, default 10 min) when no
 *    event went out in that interval, so a healthy stream is never silent for
 *    more than two intervals. We cannot ask etcd for its interval, so we
 *    measure it: the gap between two notifications is a whole number of
 *    intervals, hence never shorter than one, and the smallest gap seen is
 *    our estimate. Once we have one, a stream silent for three estimates is
 *    declared dead and restarted. Before that, only keepalive guards it.
 *
 * Revisions. "Applied" (stats.revision) is the listing's revision or the
 * highest mod_revision delivered since, never a watch header's revision:
 * etcd may stamp a catch-up batch with the current revision while more
 * revisions are still to come. Events at or below it (replays after a
 * reconnect) are skipped; events of one transaction share a revision and
 * always arrive in one message, so the comparison is made against the value
 * it had when the message arrived. A reconnect resumes after the higher of
 * "applied" and the last progress notification's revision (etcd sends those
 * only to caught-up watchers): a quiet prefix in a busy cluster then does not
 * fall behind compaction and force a re-list on every reconnect.
 *
 * Re-entrancy. Sync callbacks may call etcd_sync_stop() on their own sync,
 * and any callback may start or cancel calls, or free the etcd client. A
 * stopped sync makes no more callbacks; its memory goes when the outermost
 * frame that uses it returns. (Freeing the http client from inside an etcd
 * callback is not supported: a sync stopped there could leak.)
 */
#include <slotsync/etcd.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <slotsync/etcd_decode.h>
#include <slotsync/http.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/timeouts.h>

#define MOD "etcd"

#define ETCD_LIST_PAGE 1000
#define ETCD_REPLY_MAX ((size_t)256 << 20)
#define ETCD_BACKOFF_MIN 0.1
#define ETCD_BACKOFF_MAX 5.0
#define ETCD_JITTER 0.2
#define ETCD_IDLE_FACTOR 3.0
#define ETCD_IDLE_MIN_INTERVAL 1.0
/* Liveness probe of the watch's member: one every second (its timeout is
 * in timeouts.h). */
#define ETCD_PROBE_INTERVAL 1.0

/* ---- client and calls ---- */

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
    struct etcd_sync *syncs;
    struct etcd_auth auth;
};

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
};

static const char *quote(const char *s, char *buf, size_t size)
{
    return log_quote(s, strlen(s), buf, size);
}

/* Move off endpoint ep after it failed, unless someone already did. why
 * (log-safe, naming ep) makes the switch a warning; callers that log the
 * failure themselves pass NULL. */
static void endpoint_failed(struct etcd_client *c, size_t ep, const char *why)
{
    if (c->n_endpoints > 1 && c->cur == ep) {
        c->cur = (c->cur + 1) % c->n_endpoints;
        if (why)
            log_warn(MOD, "%s; switching to endpoint %s", why, c->endpoints[c->cur]);
        else
            log_info(MOD, "switching to endpoint %s", c->endpoints[c->cur]);
    }
}

static char *endpoint_url(const struct etcd_client *c, size_t ep, const char *path)
{
    char *url = NULL;

    return memprintf(&url, "%s%s", c->endpoints[ep], path);
}

/* Errors worth one more try on the next endpoint: nothing reached etcd, or
 * the member said it cannot serve (no leader, shutting down). */
static bool retryable(int err)
{
    return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EHOSTUNREACH || err == -EAGAIN;
}

static bool is_compacted(int err, const char *text)
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
    free(call->path);
    free(call->body);
    free(call);
}

static void call_http_done(struct http_request *req, int err, long status, const char *body,
                           size_t len, const char *errtext, void *arg);

static bool auth_needed(struct etcd_client *c);
static int auth_start(struct etcd_client *c);
static void auth_invalidate(struct etcd_client *c, unsigned gen);
static void auth_release(struct etcd_client *c, int err, const char *text);

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
    char *url = endpoint_url(c, ep, call->path);

    if (!url)
        return -ENOMEM;
    call->ep = ep;
    call->attempts++;
    call->token_gen = c->auth.gen;
    call->req = http_request_start(c->http, url, &opts, call_http_done, call);
    free(url);
    return call->req ? 0 : -ENOMEM;
}

/* Turn a finished HTTP exchange into (err, reply, text). *reply is new. */
static int call_result(const struct etcd_call *call, int err, long status, const char *body,
                       size_t len, const char *errtext, json_t **reply, char **text)
{
    const struct etcd_client *c = call->client;
    const char *ep = c->endpoints[call->ep];
    char q[LOG_QUOTE_MAX];
    json_error_t jerr;
    const json_t *e;

    *reply = NULL;
    if (err < 0) {
        /* curl's text may echo what the peer sent */
        memprintf(text, "%s%s: %s", ep, call->path,
                  errtext ? quote(errtext, q, sizeof(q)) : "request failed");
        return err;
    }
    *reply = json_loadb(body, len, 0, &jerr);
    e = json_is_object(*reply) ? json_object_get(*reply, "error") : NULL;
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
                  quote(m.error_message, q, sizeof(q)), m.error_code);
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
                  quote(jerr.text, q, sizeof(q)));
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

    call->req = NULL;
    rc = call_result(call, err, status, body, len, errtext, &reply, &text);
    if (rc == -EACCES && c->auth.user && !call->reauthed) {
        /* invalid or expired token (gRPC 16): authenticate again, then send
         * this call once more */
        log_debug(MOD, "%s: authenticating again", text ? text : "etcd call refused");
        call->reauthed = true;
        call->waiting_auth = true;
        auth_invalidate(c, call->token_gen);
        json_decref(reply);
        free(text);
        if (auth_start(c) < 0)
            auth_release(c, -ENOMEM, "cannot start an etcd authentication request");
        return;
    }
    if (retryable(rc) && !call->pinned) {
        /* The caller reports the failure if the retry fails too. */
        log_debug(MOD, "%s", text ? text : "etcd call failed");
        endpoint_failed(c, call->ep, text ? text : "etcd call failed");
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
static struct etcd_call *call_start(struct etcd_client *c, long pin, const char *path, json_t *body,
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
    call->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!call->path || !call->body)
        goto fail_call;
    call->body_len = strlen(call->body);
    if (auth_needed(c))
        call->waiting_auth = true;
    else if (call_send(call) < 0)
        goto fail_call;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    if (call->waiting_auth && auth_start(c) < 0) {
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
    return call_start(c, -1, path, body, timeout_ms, cb, arg);
}

void etcd_client_set_call_timeout(struct etcd_client *c, long timeout_ms)
{
    if (c)
        c->call_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void etcd_call_cancel(struct etcd_call *call)
{
    if (!call || call->in_cb)
        return;
    http_cancel(call->req);
    call_unlink_free(call);
}

/* ---- request bodies ---- */

static int set_b64(json_t *obj, const char *field, const void *data, size_t len)
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

static int set_int64(json_t *obj, const char *field, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_object_set_new(obj, field, json_string(buf)) < 0 ? -ENOMEM : 0;
}

struct etcd_call *etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
                           etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || set_b64(body, "key", key, strlen(key)) < 0 ||
        set_b64(body, "value", value ? value : "", value ? strlen(value) : 0) < 0 ||
        (lease && set_int64(body, "lease", lease) < 0)) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, "/v3/kv/put", body, 0, cb, arg);
}

struct etcd_call *etcd_delete(struct etcd_client *c, const char *key, etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || set_b64(body, "key", key, strlen(key)) < 0) {
        json_decref(body);
        return NULL;
    }
    return etcd_call(c, "/v3/kv/deleterange", body, 0, cb, arg);
}

struct etcd_call *etcd_get(struct etcd_client *c, const char *key, long timeout_ms,
                           etcd_reply_cb cb, void *arg)
{
    json_t *body = json_object();

    if (!body || !key || set_b64(body, "key", key, strlen(key)) < 0) {
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

    if (!body || set_int64(body, field, v) < 0) {
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

/* ---- prefix sync ---- */

struct etcd_sync {
    struct etcd_client *client;
    struct ev_loop *loop;
    struct etcd_sync *prev, *next;
    const struct etcd_sync_ops *ops;
    void *arg;
    struct etcd_sync_stats stats;
    int64_t resume_rev; /* a new watch starts after this */

    char *prefix, *range_end;
    size_t prefix_len, range_end_len;
    bool need_list; /* no usable revision: list before watching */

    /* listing in progress: pages pile up here, delivered at the end */
    struct etcd_call *list_call;
    int64_t list_rev;
    struct etcd_kv *list_kvs;
    size_t list_n, list_cap;

    /* watch in progress */
    struct http_request *watch_req;
    struct etcd_stream stream;
    size_t watch_ep;
    char *watch_err;          /* why we aborted the stream, if we did */
    bool watch_unauth;        /* etcd refused the stream's token (gRPC 16) */
    bool waiting_auth;        /* the watch waits for a token */
    unsigned watch_token_gen; /* the token the stream was opened with */
    bool watch_compacted;     /* the stream said our revision is gone */
    double last_progress;     /* ev_now of the last progress notification */
    double progress_interval; /* estimate, 0 = unknown */
    ev_timer idle;
    bool created; /* the stream said "created" */

    /* liveness probe of the watch's member, and what it tells of the
     * cluster */
    struct etcd_call *probe_call;
    ev_timer probe_timer;
    bool probe_ok;       /* the watch's member answered a probe */
    int64_t seen_rev;    /* highest revision seen from this cluster */
    int64_t probe_seen;  /* the highest seen when the probe in flight was sent */
    uint64_t cluster_id; /* 0 = not known yet */
    struct log_outage outage;

    ev_timer retry;
    double backoff;
    int reported; /* last connected() report: -1 none, 0 down, 1 up */

    int depth; /* frames using this sync; free waits for 0 */
    bool stopped;
    bool in_watch_data; /* inside the watch's on_data */
};

static void sync_maybe_free(struct etcd_sync *s)
{
    if (!s->stopped || s->depth > 0 || s->watch_req)
        return;
    ev_timer_stop(s->loop, &s->retry);
    ev_timer_stop(s->loop, &s->idle);
    ev_timer_stop(s->loop, &s->probe_timer);
    for (size_t i = 0; i < s->list_n; i++)
        etcd_kv_free(&s->list_kvs[i]);
    free(s->list_kvs);
    etcd_stream_free(&s->stream);
    free(s->watch_err);
    free(s->prefix);
    free(s->range_end);
    free(s);
}

static void list_reset(struct etcd_sync *s)
{
    for (size_t i = 0; i < s->list_n; i++)
        etcd_kv_free(&s->list_kvs[i]);
    free(s->list_kvs);
    s->list_kvs = NULL;
    s->list_n = s->list_cap = 0;
    s->list_rev = 0;
}

static void report(struct etcd_sync *s, bool up, const char *why)
{
    if (s->reported == (int)up)
        return;
    s->reported = up;
    if (!s->stopped && s->ops->connected)
        s->ops->connected(s->arg, up, why);
}

static void sync_schedule(struct etcd_sync *s, double delay)
{
    ev_timer_stop(s->loop, &s->retry);
    ev_timer_set(&s->retry, delay, 0.);
    ev_timer_start(s->loop, &s->retry);
}

static void list_start(struct etcd_sync *s);
static void sync_fail(struct etcd_sync *s, const char *why);

/* ---- the watch's member: liveness and identity ---- */

static void probe_stop(struct etcd_sync *s)
{
    ev_timer_stop(s->loop, &s->probe_timer);
    /* inside probe_done the call is finishing and frees itself */
    etcd_call_cancel(s->probe_call);
    s->probe_call = NULL;
}

static void probe_again(struct etcd_sync *s)
{
    if (s->stopped || !s->watch_req)
        return;
    ev_timer_stop(s->loop, &s->probe_timer);
    ev_timer_set(&s->probe_timer, ETCD_PROBE_INTERVAL, 0.);
    ev_timer_start(s->loop, &s->probe_timer);
}

/* End the watch stream without a callback. Not from inside watch_data. */
static void watch_cancel(struct etcd_sync *s)
{
    ev_timer_stop(s->loop, &s->idle);
    if (s->watch_req) {
        http_cancel(s->watch_req);
        s->watch_req = NULL;
    }
    s->stats.watching = false;
}

/* The stream is created and its member answers: the sync works. */
static void sync_up(struct etcd_sync *s)
{
    double len;
    char q[LOG_QUOTE_MAX];

    if (!s->created || !s->probe_ok || s->stopped)
        return;
    s->backoff = ETCD_BACKOFF_MIN;
    len = log_outage_end(&s->outage, ev_now(s->loop));
    if (len >= 0)
        log_info(MOD, "sync %s: etcd answers again after %.0f s (watching through %s)",
                 log_quote(s->prefix, s->prefix_len, q, sizeof(q)), len,
                 s->client->endpoints[s->watch_ep]);
    report(s, true, "watching");
}

/* A rebuilt or restored cluster: revisions went back, so neither resuming
 * nor comparing revisions works. Forget them all and list again; the
 * consumer diffs the listing against what it has. */
static void new_cluster(struct etcd_sync *s, const char *why)
{
    char q[LOG_QUOTE_MAX];

    log_warn(MOD,
             "sync %s: %s: etcd was rebuilt or restored, forgetting its revisions and listing "
             "everything again",
             log_quote(s->prefix, s->prefix_len, q, sizeof(q)), why);
    s->stats.new_clusters++;
    watch_cancel(s);
    probe_stop(s);
    s->resume_rev = s->seen_rev = s->stats.revision = 0;
    s->cluster_id = 0;
    s->created = s->probe_ok = false;
    s->need_list = true;
    list_start(s);
}

static void probe_done(int err, const json_t *reply, const char *errtext, void *arg)
{
    struct etcd_sync *s = arg;
    struct etcd_client *c = s->client;
    size_t ep = s->watch_ep;
    /* A linearizable read answers at least the revision the cluster had
     * when it was sent: compare with what had been seen then. A watch event
     * that arrives while the probe is out may be newer than its answer
     * without anything having gone back. */
    int64_t rev = 0, seen = s->probe_seen;
    uint64_t id = 0;
    char *why = NULL, q[LOG_QUOTE_MAX];

    s->probe_call = NULL;
    if (s->stopped || !s->watch_req)
        return;
    s->depth++;
    if (err < 0 && retryable(err)) {
        /* Nothing came back in time (or the member says it cannot serve):
         * the stream on it is as dead, however quiet it looks. */
        s->stats.hung++;
        watch_cancel(s);
        endpoint_failed(c, ep, NULL);
        memprintf(&why,
                  "etcd endpoint %s is not answering (probe: %s): watch %s %s, resuming after "
                  "revision %" PRId64,
                  quote(c->endpoints[ep], q, sizeof(q)), errtext ? errtext : "failed",
                  c->cur == ep ? "retries" : "moves to", c->endpoints[c->cur], s->resume_rev);
        sync_fail(s, why ? why : "etcd endpoint not answering");
        goto out;
    }
    if (err < 0) {
        /* An answer, even an error, shows the member is alive (it tells
         * nothing of revisions, though). */
        log_debug(MOD, "sync probe: %s", errtext ? errtext : "failed");
        s->probe_ok = true;
        sync_up(s);
        probe_again(s);
        goto out;
    }
    if (etcd_header_revision(reply, &rev, &why) < 0 || etcd_header_cluster_id(reply, &id) < 0) {
        s->stats.bad_revisions++;
        log_msg(s->probe_ok ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, MOD,
                "sync probe of %s: bad reply header: %s", quote(c->endpoints[ep], q, sizeof(q)),
                why ? why : "bad cluster_id");
        s->probe_ok = false;
        probe_again(s);
        goto out;
    }
    if (id && s->cluster_id && id != s->cluster_id) {
        memprintf(&why, "cluster id of %s changed from %" PRIx64 " to %" PRIx64,
                  quote(c->endpoints[ep], q, sizeof(q)), s->cluster_id, id);
        new_cluster(s, why ? why : "cluster id changed");
        goto out;
    }
    if (rev > 0 && rev < seen) {
        memprintf(&why, "%s is at revision %" PRId64 ", below the %" PRId64 " already seen",
                  quote(c->endpoints[ep], q, sizeof(q)), rev, seen);
        new_cluster(s, why ? why : "revision went back");
        goto out;
    }
    if (id)
        s->cluster_id = id;
    if (rev > s->seen_rev)
        s->seen_rev = rev;
    s->probe_ok = true;
    sync_up(s);
    probe_again(s);

out:
    free(why);
    s->depth--;
    sync_maybe_free(s);
}

/* Ask the watch's member, on a connection of its own, for one key: a
 * linearizable read, so a member without a leader fails it too. */
static void probe_send(struct etcd_sync *s)
{
    json_t *body = json_object();

    if (!body || set_b64(body, "key", s->prefix, s->prefix_len) < 0 ||
        json_object_set_new(body, "count_only", json_true()) < 0) {
        json_decref(body);
        probe_again(s);
        return;
    }
    s->probe_seen = s->seen_rev > s->resume_rev ? s->seen_rev : s->resume_rev;
    s->probe_call = call_start(s->client, (long)s->watch_ep, "/v3/kv/range", body,
                               ETCD_PROBE_TIMEOUT_MS, probe_done, s);
    if (!s->probe_call)
        probe_again(s);
}

static void probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_sync *s = w->data;

    if (!s->stopped && s->watch_req && !s->probe_call)
        probe_send(s);
}

/* The stream or listing failed: say so, and try again after a backoff. */
static void sync_fail(struct etcd_sync *s, const char *why)
{
    double delay = s->backoff * jitter_around(ETCD_JITTER);
    char q[LOG_QUOTE_MAX];

    double now = ev_now(s->loop), elapsed;

    if (s->stopped)
        return;
    s->stats.errors++;
    s->stats.reconnects++;
    s->stats.watching = false;
    probe_stop(s);
    /* The first failure after a working stream is news; the retries of an
     * outage are not (one line per event, not per attempt), except for a
     * "still" line now and then. why is log-safe (see etcd.h). */
    log_quote(s->prefix, s->prefix_len, q, sizeof(q));
    if (log_outage_begin(&s->outage, now))
        log_warn(MOD, "sync %s: %s; retrying in %.0f ms", q, why ? why : "error", delay * 1000.0);
    else if (log_outage_due(&s->outage, now, &elapsed))
        log_warn(MOD, "sync %s: etcd still unreachable after %.0f s (last error: %s)", q, elapsed,
                 why ? why : "error");
    else
        log_debug(MOD, "sync %s: %s; retrying in %.0f ms", q, why ? why : "error", delay * 1000.0);
    s->backoff = s->backoff * 2 > ETCD_BACKOFF_MAX ? ETCD_BACKOFF_MAX : s->backoff * 2;
    report(s, false, why ? why : "error");
    if (!s->stopped)
        sync_schedule(s, delay);
}

static void list_done(int err, const json_t *reply, const char *errtext, void *arg);
static void watch_start(struct etcd_sync *s);

/* etcd's key order: bytewise, a prefix first. */
static int key_cmp(const struct etcd_kv *a, const struct etcd_kv *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int d = memcmp(a->key, b->key, n);

    if (d)
        return d;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static void list_page(struct etcd_sync *s, const char *key, size_t key_len)
{
    json_t *body = json_object();

    if (!body || set_b64(body, "key", key, key_len) < 0 ||
        set_b64(body, "range_end", s->range_end, s->range_end_len) < 0 ||
        set_int64(body, "limit", ETCD_LIST_PAGE) < 0 ||
        (s->list_rev > 0 && set_int64(body, "revision", s->list_rev) < 0)) {
        json_decref(body);
        sync_fail(s, "out of memory building a range request");
        return;
    }
    s->list_call = etcd_call(s->client, "/v3/kv/range", body, ETCD_LIST_TIMEOUT_MS, list_done, s);
    if (!s->list_call)
        sync_fail(s, "cannot start a range request");
}

static void list_start(struct etcd_sync *s)
{
    list_reset(s);
    list_page(s, s->prefix, s->prefix_len);
}

/* Hand the complete listing to the consumer, then watch. */
static void list_deliver(struct etcd_sync *s)
{
    const struct etcd_sync_ops *ops = s->ops;

    if (ops->list_begin)
        ops->list_begin(s->arg);
    for (size_t i = 0; i < s->list_n && !s->stopped; i++)
        if (ops->kv)
            ops->kv(s->arg, &s->list_kvs[i]);
    s->stats.lists++;
    s->stats.revision = s->resume_rev = s->seen_rev = s->list_rev;
    s->need_list = false;
    if (!s->stopped && ops->list_end)
        ops->list_end(s->arg, s->list_rev);
    list_reset(s);
    if (!s->stopped)
        watch_start(s);
}

static void list_done(int err, const json_t *reply, const char *errtext, void *arg)
{
    struct etcd_sync *s = arg;
    struct etcd_range_reply r;
    char *errmsg = NULL, q[LOG_QUOTE_MAX];
    uint64_t id = 0;
    int rc;

    s->list_call = NULL;
    s->depth++;
    if (err < 0) {
        if (is_compacted(err, errtext) && s->list_rev > 0) {
            /* Our snapshot revision went away between pages: start over. */
            s->stats.compactions++;
            log_info(MOD, "listing revision %" PRId64 " compacted, listing again", s->list_rev);
            list_start(s);
        } else {
            sync_fail(s, errtext);
        }
        goto out;
    }
    rc = etcd_parse_range(reply, &r, &errmsg);
    if (rc < 0) {
        if (rc == -ERANGE)
            s->stats.bad_revisions++;
        memprintf(&errmsg, "bad range reply: %s", errmsg ? errmsg : "out of memory");
        sync_fail(s, errmsg);
        goto out;
    }
    if (r.more && r.n_kvs == 0) {
        /* Asking again would get the same answer: no progress, ever. */
        etcd_range_reply_free(&r);
        sync_fail(s, "range reply says more keys follow but holds none: listing makes no progress");
        goto out;
    }
    if (r.n_kvs > 0 && s->list_n > 0 && key_cmp(&r.kvs[0], &s->list_kvs[s->list_n - 1]) <= 0) {
        etcd_range_reply_free(&r);
        sync_fail(s, "range page does not start after the previous one: listing makes no progress");
        goto out;
    }
    if (etcd_header_cluster_id(reply, &id) == 0 && id) {
        if (s->cluster_id && id != s->cluster_id)
            log_warn(MOD, "sync %s: etcd cluster id changed from %" PRIx64 " to %" PRIx64,
                     log_quote(s->prefix, s->prefix_len, q, sizeof(q)), s->cluster_id, id);
        s->cluster_id = id;
    }
    if (s->list_rev == 0) {
        if (r.revision <= 0) {
            etcd_range_reply_free(&r);
            sync_fail(s, "range reply without a revision");
            goto out;
        }
        s->list_rev = r.revision;
    }
    if (r.n_kvs > 0) {
        if (s->list_n + r.n_kvs > s->list_cap) {
            size_t cap = s->list_cap ? s->list_cap : 64;
            struct etcd_kv *p;

            while (cap < s->list_n + r.n_kvs)
                cap *= 2;
            p = realloc(s->list_kvs, cap * sizeof(*p));
            if (!p) {
                etcd_range_reply_free(&r);
                sync_fail(s, "out of memory");
                goto out;
            }
            s->list_kvs = p;
            s->list_cap = cap;
        }
        /* The kvs move over; the reply keeps empty shells. */
        memcpy(s->list_kvs + s->list_n, r.kvs, r.n_kvs * sizeof(*r.kvs));
        s->list_n += r.n_kvs;
        free(r.kvs);
        r.kvs = NULL;
        r.n_kvs = 0;
    }
    if (r.more && s->list_n > 0) {
        /* Next page starts right after the last key: last key + "\0". */
        const struct etcd_kv *last = &s->list_kvs[s->list_n - 1];
        char *next = malloc(last->key_len + 1);

        if (!next) {
            sync_fail(s, "out of memory");
        } else {
            memcpy(next, last->key, last->key_len);
            next[last->key_len] = '\0';
            list_page(s, next, last->key_len + 1);
            free(next);
        }
    } else {
        list_deliver(s);
    }
    etcd_range_reply_free(&r);

out:
    free(errmsg);
    s->depth--;
    sync_maybe_free(s);
}

static void watch_abort_reason(struct etcd_sync *s, const char *why)
{
    if (!s->watch_err)
        s->watch_err = strdup(why);
}

/* Re-arm the silence watchdog, if we know etcd's progress interval. */
static void idle_touch(struct etcd_sync *s)
{
    if (s->progress_interval > 0)
        ev_timer_again(s->loop, &s->idle);
}

static void on_progress(struct etcd_sync *s, int64_t revision)
{
    double now = ev_now(s->loop);

    if (revision > s->resume_rev)
        s->resume_rev = revision;
    if (s->last_progress > 0) {
        double gap = now - s->last_progress;

        if (gap < ETCD_IDLE_MIN_INTERVAL)
            gap = ETCD_IDLE_MIN_INTERVAL;
        if (s->progress_interval == 0 || gap < s->progress_interval) {
            s->progress_interval = gap;
            s->idle.repeat = ETCD_IDLE_FACTOR * gap;
        }
    }
    s->last_progress = now;
}

static void watch_events(struct etcd_sync *s, const struct etcd_watch_msg *m)
{
    int64_t floor = s->stats.revision;
    bool delivered = false;

    for (size_t i = 0; i < m->n_events && !s->stopped; i++) {
        const struct etcd_kv *kv = &m->events[i];

        if (kv->mod_revision <= floor)
            continue; /* replay of something already applied */
        if (s->ops->kv)
            s->ops->kv(s->arg, kv);
        s->stats.events++;
        if (kv->mod_revision > s->stats.revision)
            s->stats.revision = kv->mod_revision;
        if (kv->mod_revision > s->resume_rev)
            s->resume_rev = kv->mod_revision;
        delivered = true;
    }
    if (delivered && !s->stopped && s->ops->batch_end)
        s->ops->batch_end(s->arg, s->stats.revision);
}

/* One message of the watch stream. Non-zero aborts the stream. */
static int watch_msg(json_t *msg, void *arg)
{
    struct etcd_sync *s = arg;
    struct etcd_watch_msg m;
    char *errmsg = NULL;
    char q[LOG_QUOTE_MAX];
    int rc = 0;

    rc = etcd_parse_watch(msg, &m, &errmsg);
    if (rc < 0) {
        if (rc == -ERANGE)
            s->stats.bad_revisions++;
        memprintf(&errmsg, "bad watch message: %s", errmsg ? errmsg : "out of memory");
        watch_abort_reason(s, errmsg ? errmsg : "bad watch message");
        free(errmsg);
        return 1;
    }
    if (m.error) {
        if (is_compacted(etcd_grpc_errno(m.error_code), m.error_message)) {
            s->watch_compacted = true;
        } else {
            memprintf(&errmsg, "watch error: %s (code %d)", quote(m.error_message, q, sizeof(q)),
                      m.error_code);
            s->watch_unauth = m.error_code == GRPC_UNAUTHENTICATED;
            watch_abort_reason(s, errmsg ? errmsg : "watch error");
        }
        rc = 1;
    } else if (m.canceled) {
        if (m.compact_revision > 0) {
            s->watch_compacted = true;
            log_info(MOD, "watch from revision %" PRId64 " compacted (now %" PRId64 ")",
                     s->resume_rev + 1, m.compact_revision);
        } else {
            memprintf(&errmsg, "watch canceled by etcd: %s",
                      m.cancel_reason ? quote(m.cancel_reason, q, sizeof(q)) : "no reason");
            /* a refused token cancels the watch with the gRPC status in
             * the reason: "rpc error: code = Unauthenticated desc = ..." */
            s->watch_unauth = m.cancel_reason && strstr(m.cancel_reason, "code = Unauthenticated");
            watch_abort_reason(s, errmsg ? errmsg : "watch canceled");
        }
        rc = 1;
    } else if (m.created) {
        s->stats.watching = true;
        s->created = true;
        sync_up(s);
    } else if (m.n_events == 0) {
        on_progress(s, m.revision);
    } else {
        watch_events(s, &m);
    }
    if (rc == 0 && !s->stopped)
        idle_touch(s);
    etcd_watch_msg_free(&m);
    free(errmsg);
    return rc || s->stopped;
}

static int watch_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct etcd_sync *s = arg;
    int rc;

    s->depth++;
    s->in_watch_data = true;
    rc = etcd_stream_feed(&s->stream, data, len, watch_msg, s);
    s->in_watch_data = false;
    s->depth--;
    if (rc == -E2BIG)
        watch_abort_reason(s, "watch message too long");
    else if (rc == -EINVAL)
        watch_abort_reason(s, "watch stream sent a line that is not a JSON object");
    else if (rc == -ENOMEM)
        watch_abort_reason(s, "out of memory");
    /* Stopped: the abort brings us to watch_done, which frees. */
    return rc != 0 || s->stopped;
}

/* A body without a final newline (a plain HTTP error reply) may still hold
 * etcd's error object. */
static void watch_leftover(struct etcd_sync *s)
{
    json_t *msg;

    if (s->stream.len == 0 || s->watch_err || s->watch_compacted)
        return;
    msg = json_loadb(s->stream.buf, s->stream.len, 0, NULL);
    if (json_is_object(msg))
        watch_msg(msg, s);
    json_decref(msg);
}

static void watch_done(struct http_request *req, int err, long status, const char *body, size_t len,
                       const char *errtext, void *arg)
{
    struct etcd_sync *s = arg;
    char *why = NULL, q[LOG_QUOTE_MAX];

    s->watch_req = NULL;
    ev_timer_stop(s->loop, &s->idle);
    probe_stop(s);
    s->stats.watching = false;
    if (s->stopped) {
        sync_maybe_free(s);
        return;
    }
    s->depth++;
    watch_leftover(s);
    if (s->watch_compacted) {
        s->stats.compactions++;
        s->need_list = true;
        list_start(s);
        goto out;
    }
    if ((s->watch_unauth || status == 401) && s->client->auth.user)
        auth_invalidate(s->client, s->watch_token_gen);
    if (s->watch_err)
        why = strdup(s->watch_err);
    else if (err < 0)
        memprintf(&why, "watch on %s: %s", s->client->endpoints[s->watch_ep],
                  errtext ? quote(errtext, q, sizeof(q)) : "failed");
    else if (status != 200)
        memprintf(&why, "watch: HTTP %ld", status);
    else
        memprintf(&why, "watch stream closed by etcd");
    endpoint_failed(s->client, s->watch_ep, NULL);
    sync_fail(s, why ? why : "watch failed");
    free(why);

out:
    s->depth--;
    sync_maybe_free(s);
}

static void watch_start(struct etcd_sync *s)
{
    struct etcd_client *c = s->client;
    json_t *body = json_object(), *create = json_object();
    /* Require a leader: a member cut off from the others cancels the watch
     * ("no leader") instead of keeping it open and silent. The 3.4 gateway
     * passes this on as gRPC metadata. */
    static const char *const headers[] = {"Grpc-Metadata-hasleader: true", NULL};
    struct http_opts opts = {.method = "POST", .on_data = watch_data, .headers = headers};
    char *text = NULL, *url = NULL, q[LOG_QUOTE_MAX];

    if (auth_needed(c)) {
        s->waiting_auth = true;
        if (auth_start(c) < 0) {
            s->waiting_auth = false;
            sync_fail(s, "cannot start an etcd authentication request");
        }
        return;
    }
    etcd_stream_free(&s->stream);
    free(s->watch_err);
    s->watch_err = NULL;
    s->watch_unauth = false;
    s->watch_token_gen = c->auth.gen;
    s->watch_compacted = false;
    s->last_progress = 0;
    s->progress_interval = 0;
    s->created = s->probe_ok = false;
    if (!body || !create || set_b64(create, "key", s->prefix, s->prefix_len) < 0 ||
        set_b64(create, "range_end", s->range_end, s->range_end_len) < 0 ||
        set_int64(create, "start_revision", s->resume_rev + 1) < 0 ||
        json_object_set_new(create, "progress_notify", json_true()) < 0 ||
        json_object_set(body, "create_request", create) < 0 ||
        !(text = json_dumps(body, JSON_COMPACT)) || !(url = endpoint_url(c, c->cur, "/v3/watch"))) {
        sync_fail(s, "out of memory building a watch request");
        goto out;
    }
    opts.body = text;
    opts.body_len = strlen(text);
    s->watch_ep = c->cur;
    s->stats.watch_starts++;
    log_debug(MOD, "sync %s: watch through %s from revision %" PRId64,
              log_quote(s->prefix, s->prefix_len, q, sizeof(q)), c->endpoints[c->cur],
              s->resume_rev + 1);
    s->watch_req = http_request_start(c->http, url, &opts, watch_done, s);
    if (!s->watch_req)
        sync_fail(s, "cannot start a watch request");
    else
        probe_send(s);

out:
    json_decref(create);
    json_decref(body);
    free(text);
    free(url);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_sync *s = w->data;

    s->depth++;
    if (s->need_list)
        list_start(s);
    else
        watch_start(s);
    s->depth--;
    sync_maybe_free(s);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_sync *s = w->data;
    char why[128];

    ev_timer_stop(loop, w);
    if (!s->watch_req)
        return;
    snprintf(why, sizeof(why), "watch silent for %.0f s (progress every %.0f s): restarting",
             w->repeat, s->progress_interval);
    http_cancel(s->watch_req);
    s->watch_req = NULL;
    s->stats.watching = false;
    s->depth++;
    endpoint_failed(s->client, s->watch_ep, NULL);
    sync_fail(s, why);
    s->depth--;
    sync_maybe_free(s);
}

struct etcd_sync *etcd_sync_start(struct etcd_client *c, const char *prefix,
                                  const struct etcd_sync_ops *ops, void *arg)
{
    struct etcd_sync *s;

    if (!c || !prefix || !ops)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->client = c;
    s->loop = c->loop;
    s->ops = ops;
    s->arg = arg;
    s->prefix_len = strlen(prefix);
    s->prefix = strdup(prefix);
    s->range_end = etcd_prefix_range_end(prefix, s->prefix_len, &s->range_end_len);
    if (!s->prefix || !s->range_end) {
        free(s->prefix);
        free(s->range_end);
        free(s);
        return NULL;
    }
    s->need_list = true;
    s->backoff = ETCD_BACKOFF_MIN;
    s->reported = -1;
    etcd_stream_init(&s->stream);
    ev_init(&s->retry, retry_cb);
    s->retry.data = s;
    ev_init(&s->idle, idle_cb);
    s->idle.data = s;
    ev_init(&s->probe_timer, probe_timer_cb);
    s->probe_timer.data = s;
    s->next = c->syncs;
    if (c->syncs)
        c->syncs->prev = s;
    c->syncs = s;
    /* The first listing starts from the loop, so no callback runs before
     * this function has returned. */
    sync_schedule(s, 0.);
    return s;
}

void etcd_sync_stop(struct etcd_sync *s)
{
    struct etcd_client *c;

    if (!s || s->stopped)
        return;
    c = s->client;
    s->stopped = true;
    ev_timer_stop(s->loop, &s->retry);
    ev_timer_stop(s->loop, &s->idle);
    probe_stop(s);
    /* Inside list_done the call is finishing and frees itself. */
    etcd_call_cancel(s->list_call);
    s->list_call = NULL;
    /* Inside watch_data the request may not be cancelled: watch_data
     * aborts it instead and watch_done frees us. */
    if (s->watch_req && !s->in_watch_data) {
        http_cancel(s->watch_req);
        s->watch_req = NULL;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        c->syncs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    sync_maybe_free(s);
}

const struct etcd_sync_stats *etcd_sync_stats(const struct etcd_sync *s)
{
    return &s->stats;
}

void etcd_client_free(struct etcd_client *c)
{
    struct etcd_call *call, *next;

    if (!c)
        return;
    while (c->syncs)
        etcd_sync_stop(c->syncs);
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

static bool auth_needed(struct etcd_client *c)
{
    return c->auth.user && !c->auth.token;
}

/* The token sent with generation gen was refused: forget it, unless a newer
 * one replaced it meanwhile. */
static void auth_invalidate(struct etcd_client *c, unsigned gen)
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
    struct etcd_sync *s;
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
    again = true;
    while (again) {
        again = false;
        for (s = c->syncs; s; s = s->next) {
            if (!s->waiting_auth)
                continue;
            s->waiting_auth = false;
            s->depth++;
            if (err == 0)
                watch_start(s);
            else
                sync_fail(s, text);
            s->depth--;
            sync_maybe_free(s);
            again = true;
            break;
        }
    }
}

static void auth_done(struct http_request *req, int err, long status, const char *body, size_t len,
                      const char *errtext, void *arg)
{
    struct etcd_client *c = arg;
    const char *ep = c->endpoints[c->auth.ep];
    json_t *reply = NULL, *tok, *e;
    char *text = NULL, q[512];
    int rc = 0;

    c->auth.req = NULL;
    if (err < 0) {
        rc = err;
        memprintf(&text, "%s/v3/auth/authenticate: %s", ep, errtext ? errtext : "failed");
        if (retryable(err))
            endpoint_failed(c, c->auth.ep, text);
    } else {
        reply = json_loadb(body, len, 0, NULL);
        tok = json_is_object(reply) ? json_object_get(reply, "token") : NULL;
        e = json_is_object(reply) ? json_object_get(reply, "error") : NULL;
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
                          quote(c->auth.user, q, sizeof(q)), m.error_message);
            else
                memprintf(&text, "%s: etcd authentication as user %s failed (HTTP %ld)", ep,
                          quote(c->auth.user, q, sizeof(q)), status);
            etcd_watch_msg_free(&m);
        }
    }
    json_decref(reply);
    if (rc == 0)
        log_debug(MOD, "authenticated to etcd as %s", quote(c->auth.user, q, sizeof(q)));
    auth_release(c, rc, text ? text : "authentication failed");
    free(text);
}

/* Start /v3/auth/authenticate unless one is in flight. 0 or -ENOMEM
 * (then nothing waits for it: the caller fails what needed it). */
static int auth_start(struct etcd_client *c)
{
    struct http_opts opts = {.method = "POST", .timeout_ms = ETCD_CALL_TIMEOUT_MS};
    json_t *body;
    char *text = NULL, *url;

    if (c->auth.req || !c->auth.user)
        return 0;
    body = json_pack("{s:s, s:s}", "name", c->auth.user, "password", c->auth.password);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    url = endpoint_url(c, c->cur, "/v3/auth/authenticate");
    if (text && url) {
        opts.body = text;
        opts.body_len = strlen(text);
        c->auth.ep = c->cur;
        /* no stale token on the request that gets a new one */
        http_client_set_authorization(c->http, NULL);
        c->auth.req = http_request_start(c->http, url, &opts, auth_done, c);
    }
    free_secret(&text);
    free(url);
    return c->auth.req ? 0 : -ENOMEM;
}
