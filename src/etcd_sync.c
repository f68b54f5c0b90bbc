/* etcd_sync - the prefix sync of the etcd client: LIST a prefix in pages at
 * one revision, then WATCH from the next revision, reconnecting with backoff
 * and re-listing on compaction; the watch's member is probed for liveness
 * and identity.
 *
 * It borrows the client's endpoints, failover cursor and token through
 * etcd-int.h; calls go through etcd_call() like any other user's.
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
 * Neither sees a watch that stops delivering on a connection that stays up
 * while its endpoint answers other calls (etcd's grpc-proxy has such bugs):
 * the stall detector below checks etcd's newest key and key count against
 * what was applied every check_interval.
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
 * and any callback may start or cancel calls, or free the etcd client once
 * every sync on it is stopped (before, etcd_client_free() refuses). A
 * stopped sync makes no more callbacks; its memory goes when the outermost
 * frame that uses it returns.
 */
#include <slotsync/etcd_sync.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <slotsync/clock.h>
#include <slotsync/etcd-int.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/etcd_grpc.h>
#include <slotsync/etcd_stall.h>
#include <slotsync/http.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/timeouts.h>

#define MOD "etcd" /* the sync's log lines are the etcd module's */

#define ETCD_LIST_PAGE 1000
/* A count above this is not taken as a listing's size (bulk estimate only). */
#define ETCD_LIST_COUNT_MAX 100000000
#define ETCD_BACKOFF_MIN 0.1
#define ETCD_BACKOFF_MAX 5.0
#define ETCD_JITTER 0.2
#define ETCD_IDLE_FACTOR 3.0
#define ETCD_IDLE_MIN_INTERVAL 1.0
/* Liveness probe of the watch's member: one every second (its timeout is
 * in timeouts.h). */
#define ETCD_PROBE_INTERVAL 1.0
/* Stall detector: a check of the prefix every this many seconds by default
 * (etcd.watch_check_interval_s), spread by this much so a fleet's checks do
 * not fall in step. */
#define ETCD_CHECK_INTERVAL 30.0
#define ETCD_CHECK_JITTER 0.2

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

    /* listing in progress: each page is delivered as it is read, then
     * freed; only its last key is kept (where the next page starts) */
    struct etcd_call *list_call;
    int64_t list_rev;
    struct etcd_kv list_last; /* key only; key NULL before the first page */
    bool list_begun;          /* list_begin was delivered for this listing */

    /* watch in progress */
    struct http_request *watch_req;
    struct etcd_stream stream;
    size_t watch_ep;
    char *watch_err;          /* why we aborted the stream, if we did */
    bool watch_unauth;        /* etcd refused the stream's token (gRPC 16) */
    struct etcd_token_waiter token_wait; /* queued: the watch waits for a token */
    unsigned watch_token_gen; /* the token the stream was opened with */
    bool watch_compacted;     /* the stream said our revision is gone */
    double last_progress;     /* clock_mono() of the last progress notification */
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

    /* gRPC transport (issue 24): the watch is a Watch stream whose request
     * side stays open; liveness is a progress_request on it (see
     * grpc_probe) instead of a range call */
    bool grpc;
    struct etcd_grpc_stream gstream;
    bool progress_pending; /* a progress_request is unanswered */
    double progress_sent;  /* clock_mono() it was sent */
    double stream_heard;   /* clock_mono() of the stream's last message */
    bool rebuilt;          /* a progress reply showed a rebuilt cluster (why in watch_err) */
    bool progress_answers; /* this stream answered a progress_request */
    bool range_probe;      /* it never does (a grpc-proxy): probe with ranges */
    bool probe_serializable; /* the range probe in flight is serializable */

    /* stall detector (issue 24): beside the watch, now and then, etcd's
     * newest key under the prefix and its key count, compared with what
     * was applied (etcd_stall.h); two checks ahead in a row restart the
     * watch */
    struct etcd_call *check_call;
    ev_timer check_timer;
    double check_interval; /* seconds */
    struct etcd_stall_sample check_prev;
    bool check_have_prev;  /* check_prev holds this watch's previous check */
    double check_prev_at;  /* clock_mono() of check_prev */
};

static void sync_maybe_free(struct etcd_sync *s)
{
    if (!s->stopped || s->depth > 0 || s->watch_req)
        return;
    ev_timer_stop(s->loop, &s->retry);
    ev_timer_stop(s->loop, &s->idle);
    ev_timer_stop(s->loop, &s->probe_timer);
    ev_timer_stop(s->loop, &s->check_timer);
    etcd_kv_free(&s->list_last);
    etcd_stream_free(&s->stream);
    etcd_grpc_stream_free(&s->gstream);
    free(s->watch_err);
    free(s->prefix);
    free(s->range_end);
    free(s);
}

static void list_reset(struct etcd_sync *s)
{
    etcd_kv_free(&s->list_last);
    memset(&s->list_last, 0, sizeof(s->list_last));
    s->list_begun = false;
    s->list_rev = 0;
}

static void report(struct etcd_sync *s, bool up, const char *why)
{
    if (s->reported == (int)up)
        return;
    s->reported = up;
    if (!s->stopped && s->ops->connected)
        s->ops->connected(up, why, s->arg);
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
    /* the stall detector checks the watch in progress: it ends with it */
    ev_timer_stop(s->loop, &s->check_timer);
    etcd_call_cancel(s->check_call);
    s->check_call = NULL;
    s->check_have_prev = false;
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
    len = log_outage_end(&s->outage, clock_mono());
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
    if (err >= 0 || !etcd__retryable(err))
        s->stats.last_contact_at = clock_mono();
    if (err < 0 && etcd__retryable(err)) {
        /* Nothing came back in time (or the member says it cannot serve):
         * the stream on it is as dead, however quiet it looks. */
        s->stats.hung++;
        watch_cancel(s);
        etcd__endpoint_failed(c, ep, NULL);
        memprintf(&why,
                  "etcd endpoint %s is not answering (probe: %s): watch %s %s, resuming after "
                  "revision %" PRId64,
                  log_quote_str(c->endpoints[ep], q, sizeof(q)), errtext ? errtext : "failed",
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
                "sync probe of %s: bad reply header: %s",
                log_quote_str(c->endpoints[ep], q, sizeof(q)), why ? why : "bad cluster_id");
        s->probe_ok = false;
        probe_again(s);
        goto out;
    }
    if (id && s->cluster_id && id != s->cluster_id) {
        memprintf(&why, "cluster id of %s changed from %" PRIx64 " to %" PRIx64,
                  log_quote_str(c->endpoints[ep], q, sizeof(q)), s->cluster_id, id);
        new_cluster(s, why ? why : "cluster id changed");
        goto out;
    }
    /* A serializable answer may come from a proxy's cache, at an older
     * revision: it shows the endpoint alive, not that revisions went back. */
    if (rev > 0 && rev < seen && !s->probe_serializable) {
        memprintf(&why, "%s is at revision %" PRId64 ", below the %" PRId64 " already seen",
                  log_quote_str(c->endpoints[ep], q, sizeof(q)), rev, seen);
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

static void grpc_probe(struct etcd_sync *s);
static void watch_abort_reason(struct etcd_sync *s, const char *why);

/* Ask the watch's member, on a connection of its own, for one key: a
 * linearizable read, so a member without a leader fails it too. On gRPC,
 * ask on the watch stream itself (grpc_probe); where the stream cannot
 * answer (an etcd grpc-proxy), a serializable read: the proxy answers it
 * from its cache, so thousands of hosts behind proxies cost etcd nothing
 * when idle (a linearizable read would be one raft ReadIndex per host per
 * second at the leader), and the watch's require-leader metadata already
 * ends the stream of a member without a leader. */
static void probe_send(struct etcd_sync *s)
{
    if (s->grpc && !s->range_probe) {
        grpc_probe(s);
        return;
    }

    json_t *body = json_object();

    s->probe_serializable = s->grpc;
    if (!body || etcd__set_b64(body, "key", s->prefix, s->prefix_len) < 0 ||
        json_object_set_new(body, "count_only", json_true()) < 0 ||
        (s->probe_serializable &&
         json_object_set_new(body, "serializable", json_true()) < 0)) {
        json_decref(body);
        probe_again(s);
        return;
    }
    s->probe_seen = s->seen_rev > s->resume_rev ? s->seen_rev : s->resume_rev;
    s->probe_call = etcd__call_start(s->client, (long)s->watch_ep, "/v3/kv/range", body,
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

/* gRPC liveness, without raft: once a second, unless a request is still
 * out, a progress_request goes down the watch stream; the member answers
 * it from its own state (a WatchResponse with watch_id -1 and its current
 * header). Any message on the stream shows the member alive. Nothing heard
 * for ETCD_PROBE_TIMEOUT_MS after a request: the member is hung, as when
 * the range probe times out. The require-leader metadata (hasleader) makes
 * a member cut off from its leader end the stream with UNAVAILABLE. */
static void grpc_probe(struct etcd_sync *s)
{
    static const char progress[] = "{\"progress_request\":{}}";
    const struct etcd_grpc_method *m = etcd_grpc_method("/v3/watch");
    struct etcd_client *c = s->client;
    double now = clock_mono();
    json_t *body;
    char *frame = NULL, *why = NULL, q[LOG_QUOTE_MAX], q2[LOG_QUOTE_MAX];
    size_t len = 0;

    if (s->progress_pending) {
        if (s->stream_heard < s->progress_sent &&
            now - s->progress_sent >= ETCD_PROBE_TIMEOUT_MS / 1000.0 && !s->progress_answers) {
            /* Never answered on this stream: not necessarily hung. etcd's
             * grpc-proxy drops progress requests ("not supported request
             * type by gRPC proxy"). Probe it with the range instead, which
             * a hung endpoint fails like any call. */
            log_info(MOD,
                     "sync %s: %s does not answer progress requests (an etcd grpc-proxy?): its "
                     "liveness is probed with a range a second instead",
                     log_quote(s->prefix, s->prefix_len, q, sizeof(q)),
                     log_quote_str(c->endpoints[s->watch_ep], q2, sizeof(q2)));
            s->range_probe = true;
            s->progress_pending = false;
            probe_send(s);
            return;
        }
        if (s->stream_heard < s->progress_sent &&
            now - s->progress_sent >= ETCD_PROBE_TIMEOUT_MS / 1000.0) {
            size_t ep = s->watch_ep;

            s->stats.hung++;
            s->depth++;
            watch_cancel(s);
            etcd__endpoint_failed(c, ep, NULL);
            memprintf(&why,
                      "etcd endpoint %s is not answering (no reply to a progress request in "
                      "%.0f s): watch %s %s, resuming after revision %" PRId64,
                      log_quote_str(c->endpoints[ep], q, sizeof(q)), now - s->progress_sent,
                      c->cur == ep ? "retries" : "moves to", c->endpoints[c->cur],
                      s->resume_rev);
            sync_fail(s, why ? why : "etcd endpoint not answering");
            free(why);
            s->depth--;
            sync_maybe_free(s);
            return;
        }
        if (s->stream_heard >= s->progress_sent)
            s->progress_pending = false;
    }
    if (!s->progress_pending) {
        body = json_loads(progress, 0, NULL);
        if (body && etcd_grpc_encode(m, body, &frame, &len, NULL) == 0 &&
            http_request_send(s->watch_req, frame, len) == 0) {
            s->progress_pending = true;
            s->progress_sent = now;
            s->probe_seen = s->seen_rev > s->resume_rev ? s->seen_rev : s->resume_rev;
        }
        json_decref(body);
        free(frame);
    }
    probe_again(s);
}

/* A reply to our progress_request (watch_id -1, no events): the member's
 * header says which cluster it is and how far it got, as the range probe's
 * does. Returns true for a rebuilt cluster: the stream is aborted (from
 * inside its data callback it cannot be cancelled) and watch_done lists
 * again. */
static bool grpc_progress_reply(struct etcd_sync *s, const json_t *msg, int64_t rev)
{
    const json_t *result = json_object_get(msg, "result");
    uint64_t id = 0;
    char *why = NULL, q[LOG_QUOTE_MAX];
    const char *ep = s->client->endpoints[s->watch_ep];

    if (etcd_header_cluster_id(result, &id) < 0) {
        s->stats.bad_revisions++;
        return false;
    }
    if (id && s->cluster_id && id != s->cluster_id) {
        memprintf(&why, "cluster id of %s changed from %" PRIx64 " to %" PRIx64,
                  log_quote_str(ep, q, sizeof(q)), s->cluster_id, id);
        watch_abort_reason(s, why ? why : "cluster id changed");
        s->rebuilt = true;
        free(why);
        return true;
    }
    if (rev > 0 && rev < s->probe_seen) {
        memprintf(&why, "%s is at revision %" PRId64 ", below the %" PRId64 " already seen",
                  log_quote_str(ep, q, sizeof(q)), rev, s->probe_seen);
        watch_abort_reason(s, why ? why : "revision went back");
        s->rebuilt = true;
        free(why);
        return true;
    }
    if (id)
        s->cluster_id = id;
    if (rev > s->seen_rev)
        s->seen_rev = rev;
    return false;
}

/* ---- the stall detector ---- */

/* A watch can stop delivering while its connection and its endpoint look
 * well: etcd's grpc-proxy 3.4/3.5 has bugs where one coalesced watcher
 * stops getting events (etcd#9988, etcd#21813), and the proxy still answers
 * the liveness range and drops progress requests, so neither guard above
 * sees it. So every check_interval (30 s by default, jittered) one
 * linearizable, keys-only, limit-1 range of the prefix sorted by
 * mod_revision descending gives etcd's newest key and, in the reply's
 * count, how many keys the prefix holds; etcd_stall_compare() sets them
 * against what was applied. Linearizable, because a proxy answers a
 * serializable range from its cache, which may be as stale as the watch;
 * once every 30 s it is a thirtieth of the per-second read the gRPC
 * transport did away with. */

static void check_done(int err, const json_t *reply, const char *errtext, void *arg);

static void check_arm(struct etcd_sync *s)
{
    ev_timer_stop(s->loop, &s->check_timer);
    if (s->stopped || !s->watch_req || s->check_interval <= 0)
        return;
    ev_timer_set(&s->check_timer, s->check_interval * jitter_around(ETCD_CHECK_JITTER), 0.);
    ev_timer_start(s->loop, &s->check_timer);
}

static void check_send(struct etcd_sync *s)
{
    json_t *body = json_object();

    if (!body || etcd__set_b64(body, "key", s->prefix, s->prefix_len) < 0 ||
        etcd__set_b64(body, "range_end", s->range_end, s->range_end_len) < 0 ||
        etcd__set_int64(body, "limit", 1) < 0 ||
        json_object_set_new(body, "sort_order", json_string("DESCEND")) < 0 ||
        json_object_set_new(body, "sort_target", json_string("MOD")) < 0 ||
        json_object_set_new(body, "keys_only", json_true()) < 0) {
        json_decref(body);
        check_arm(s);
        return;
    }
    /* to the watch's endpoint: a proxy forwards a linearizable range to
     * the cluster, so the answer is etcd's, through the same way in */
    s->check_call = etcd__call_start(s->client, (long)s->watch_ep, "/v3/kv/range", body,
                                     ETCD_CALL_TIMEOUT_MS, check_done, s);
    if (!s->check_call)
        check_arm(s);
}

static void check_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct etcd_sync *s = w->data;

    if (!s->stopped && s->watch_req && !s->check_call)
        check_send(s);
}

/* Two checks found etcd ahead and the watch not moving: restart it on the
 * next endpoint after the last revision applied (not after a progress
 * notification's: through a stalled proxy that may be past what was
 * missed). The replay brings what was missed; only a compacted revision
 * makes it a listing. */
static void stall_restart(struct etcd_sync *s, const struct etcd_stall_sample *now, double apart)
{
    struct etcd_client *c = s->client;
    size_t ep = s->watch_ep;
    char *why = NULL, q[LOG_QUOTE_MAX];

    s->stats.watch_stalls++;
    s->stats.last_stall_at = clock_mono();
    s->resume_rev = s->stats.revision;
    watch_cancel(s);
    etcd__endpoint_failed(c, ep, NULL);
    memprintf(&why,
              "watch on %s stalled: etcd is at revision %" PRId64 " with %" PRId64
              " keys under the prefix (newest changed at %" PRId64 "), the watch delivered up "
              "to revision %" PRId64 " with %" PRId64 " keys, at two checks %.0f s apart: "
              "restarting it %s %s after revision %" PRId64,
              log_quote_str(c->endpoints[ep], q, sizeof(q)), now->etcd_rev, now->etcd_count,
              now->etcd_top, now->applied_rev, now->applied_keys, apart,
              c->cur == ep ? "on" : "on the next endpoint,", c->endpoints[c->cur],
              s->resume_rev);
    sync_fail(s, why ? why : "watch stalled: restarting it");
    free(why);
}

static void check_done(int err, const json_t *reply, const char *errtext, void *arg)
{
    struct etcd_sync *s = arg;
    struct etcd_range_reply r;
    struct etcd_stall_sample now;
    enum etcd_stall_verdict v;
    char *why = NULL, q[LOG_QUOTE_MAX];
    double at = clock_mono();
    int rc;

    s->check_call = NULL;
    if (s->stopped || !s->watch_req)
        return;
    s->depth++;
    if (err >= 0 || !etcd__retryable(err))
        s->stats.last_contact_at = at;
    if (err < 0) {
        /* no verdict: the liveness probe judges the endpoint; the next
         * check starts the pair again */
        log_debug(MOD, "sync watch check: %s", errtext ? errtext : "failed");
        s->check_have_prev = false;
        check_arm(s);
        goto out;
    }
    rc = etcd_parse_range(reply, &r, &why);
    if (rc == 0 && (r.revision <= 0 || r.count < (int64_t)r.n_kvs || r.n_kvs > 1)) {
        etcd_range_reply_free(&r);
        memprintf(&why, "no revision, or a count below its keys");
        rc = -ERANGE;
    }
    if (rc < 0) {
        if (rc == -ERANGE)
            s->stats.bad_revisions++;
        log_warn(MOD, "sync %s: bad reply to the watch check: %s",
                 log_quote(s->prefix, s->prefix_len, q, sizeof(q)), why ? why : "out of memory");
        s->check_have_prev = false;
        check_arm(s);
        goto out;
    }
    now = (struct etcd_stall_sample){
        .etcd_rev = r.revision,
        .etcd_top = r.n_kvs ? r.kvs[0].mod_revision : 0,
        .etcd_count = r.count,
        .applied_rev = s->stats.revision,
        .applied_keys = s->stats.keys,
    };
    etcd_range_reply_free(&r);
    v = etcd_stall_compare(s->check_have_prev ? &s->check_prev : NULL, &now);
    s->stats.watch_checks++;
    s->stats.last_check_at = at;
    s->stats.check_ahead = v == ETCD_STALL_AHEAD || v == ETCD_STALL_STALLED;
    log_debug(MOD,
              "sync watch check: %s (etcd revision %" PRId64 ", newest key %" PRId64 ", %" PRId64
              " keys; applied %" PRId64 ", %" PRId64 " keys)",
              etcd_stall_verdict_name(v), now.etcd_rev, now.etcd_top, now.etcd_count,
              now.applied_rev, now.applied_keys);
    if (v == ETCD_STALL_STALLED) {
        stall_restart(s, &now, at - s->check_prev_at);
        goto out;
    }
    s->check_prev = now;
    s->check_prev_at = at;
    s->check_have_prev = true;
    check_arm(s);

out:
    free(why);
    s->depth--;
    sync_maybe_free(s);
}

/* The stream or listing failed: say so, and try again after a backoff. */
static void sync_fail(struct etcd_sync *s, const char *why)
{
    double delay = s->backoff * jitter_around(ETCD_JITTER);
    char q[LOG_QUOTE_MAX];

    double now = clock_mono(), elapsed;

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
        log_warn(MOD, "sync %s: %s after %.0f s (last error: %s)", q,
                 why && strstr(why, "out of file descriptors")
                     ? "etcd still not reached: slotsync is out of file descriptors"
                     : "etcd still unreachable",
                 elapsed, why ? why : "error");
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

    if (!body || etcd__set_b64(body, "key", key, key_len) < 0 ||
        etcd__set_b64(body, "range_end", s->range_end, s->range_end_len) < 0 ||
        etcd__set_int64(body, "limit", ETCD_LIST_PAGE) < 0 ||
        (s->list_rev > 0 && etcd__set_int64(body, "revision", s->list_rev) < 0)) {
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

/* Hand one page to the consumer: list_begin first if this is the listing's
 * first page, then its keys. */
static void list_deliver_page(struct etcd_sync *s, const struct etcd_range_reply *r)
{
    const struct etcd_sync_ops *ops = s->ops;

    if (!s->list_begun) {
        s->list_begun = true;
        /* the whole prefix's count: the first page's range starts at it */
        s->stats.list_count = r->count > 0 && r->count <= ETCD_LIST_COUNT_MAX ? r->count : 0;
        s->stats.keys = 0;
        if (ops->list_begin)
            ops->list_begin(s->arg);
    }
    s->stats.keys += (int64_t)r->n_kvs;
    for (size_t i = 0; i < r->n_kvs && !s->stopped; i++)
        if (ops->kv)
            ops->kv(&r->kvs[i], s->arg);
}

/* The listing is complete (its pages delivered): say so, then watch. */
static void list_deliver(struct etcd_sync *s)
{
    const struct etcd_sync_ops *ops = s->ops;

    s->stats.lists++;
    s->stats.revision = s->resume_rev = s->seen_rev = s->list_rev;
    s->need_list = false;
    if (!s->stopped && ops->list_end)
        ops->list_end(s->list_rev, s->arg);
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
    if (err >= 0 || !etcd__retryable(err))
        s->stats.last_contact_at = clock_mono();
    if (err < 0) {
        if (etcd__is_compacted(err, errtext) && s->list_rev > 0) {
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
    if (r.n_kvs > 0 && s->list_last.key && key_cmp(&r.kvs[0], &s->list_last) <= 0) {
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
    if (r.more) {
        /* Where the next page starts: right after this page's last key. */
        const struct etcd_kv *last = &r.kvs[r.n_kvs - 1];
        char *key = malloc(last->key_len + 1);

        if (!key) {
            etcd_range_reply_free(&r);
            sync_fail(s, "out of memory");
            goto out;
        }
        memcpy(key, last->key, last->key_len);
        key[last->key_len] = '\0';
        etcd_kv_free(&s->list_last);
        s->list_last = (struct etcd_kv){.key = key, .key_len = last->key_len};
    }
    /* The page goes to the consumer now and is freed below: a listing of
     * 100,000 keys is never held whole, and the consumer can act on each
     * page while the next one is read. */
    list_deliver_page(s, &r);
    if (s->stopped) {
        /* the consumer stopped the sync */
    } else if (r.more) {
        /* Next page starts right after the last key: last key + "\0". */
        char *next = malloc(s->list_last.key_len + 1);

        if (!next) {
            sync_fail(s, "out of memory");
        } else {
            memcpy(next, s->list_last.key, s->list_last.key_len);
            next[s->list_last.key_len] = '\0';
            list_page(s, next, s->list_last.key_len + 1);
            free(next);
            if (!s->stopped && s->ops->list_page)
                s->ops->list_page(s->arg);
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
    double now = clock_mono();

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
            s->ops->kv(kv, s->arg);
        s->stats.events++;
        /* the keys the prefix holds, for the stall detector: a delete
         * event is only sent for a key that was there; a put made the key
         * when it was created at its own revision */
        if (kv->deleted && s->stats.keys > 0)
            s->stats.keys--;
        else if (!kv->deleted && kv->create_revision == kv->mod_revision)
            s->stats.keys++;
        if (kv->mod_revision > s->stats.revision)
            s->stats.revision = kv->mod_revision;
        if (kv->mod_revision > s->resume_rev)
            s->resume_rev = kv->mod_revision;
        delivered = true;
    }
    if (delivered && !s->stopped && s->ops->batch_end)
        s->ops->batch_end(s->stats.revision, s->arg);
}

/* One message of the watch stream. Non-zero aborts the stream. */
static int watch_msg(json_t *msg, void *arg)
{
    struct etcd_sync *s = arg;
    struct etcd_watch_msg m;
    char *errmsg = NULL;
    char q[LOG_QUOTE_MAX];
    int rc = 0;

    s->stats.last_contact_at = s->stream_heard = clock_mono();
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
        if (etcd__is_compacted(etcd_grpc_errno(m.error_code), m.error_message)) {
            s->watch_compacted = true;
        } else {
            memprintf(&errmsg, "watch error: %s (code %d)",
                      log_quote_str(m.error_message, q, sizeof(q)), m.error_code);
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
                      m.cancel_reason ? log_quote_str(m.cancel_reason, q, sizeof(q)) : "no reason");
            /* a refused token cancels the watch with the gRPC status in
             * the reason: "rpc error: code = Unauthenticated desc = ..." */
            s->watch_unauth = m.cancel_reason && strstr(m.cancel_reason, "code = Unauthenticated");
            watch_abort_reason(s, errmsg ? errmsg : "watch canceled");
        }
        rc = 1;
    } else if (m.created) {
        s->stats.watching = true;
        s->created = true;
        check_arm(s);
        if (s->grpc)
            s->probe_ok = true; /* the member itself answered on the stream */
        sync_up(s);
    } else if (m.n_events == 0 && s->grpc && m.watch_id == -1) {
        /* our progress_request's answer: liveness and identity only. Its
         * revision is not a resume point: etcd 3.4 answers with its current
         * revision even while events below it are still queued for us. */
        s->progress_answers = true;
        if (grpc_progress_reply(s, msg, m.revision))
            rc = 1;
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

/* One gRPC message of the watch stream, as the gateway's JSON message. */
static int grpc_watch_frame(const void *data, size_t len, void *arg)
{
    struct etcd_sync *s = arg;
    const struct etcd_grpc_method *m = etcd_grpc_method("/v3/watch");
    json_t *msg = NULL;
    char *why = NULL;
    int rc;

    if (etcd_grpc_decode(m, data, len, &msg, &why) < 0) {
        memprintf(&why, "bad watch message: %s", why ? why : "out of memory");
        watch_abort_reason(s, why ? why : "bad watch message");
        free(why);
        return -EBADMSG;
    }
    rc = watch_msg(msg, s);
    json_decref(msg);
    return rc;
}

static int watch_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct etcd_sync *s = arg;
    int rc;

    s->depth++;
    s->in_watch_data = true;
    if (s->grpc)
        rc = etcd_grpc_stream_feed(&s->gstream, data, len, grpc_watch_frame, s);
    else
        rc = etcd_stream_feed(&s->stream, data, len, watch_msg, s);
    s->in_watch_data = false;
    s->depth--;
    if (rc == -EPROTO)
        watch_abort_reason(s, "watch stream sent a compressed or malformed gRPC frame");
    else if (rc == -EBADMSG)
        rc = 1; /* grpc_watch_frame said why */
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

/* The Watch stream ended: a non-zero grpc-status is etcd's error, read as
 * the gateway's stream error object so watch_msg sorts it (compacted,
 * unauthenticated, no leader, ...). */
static void grpc_watch_status(struct etcd_sync *s, struct http_request *req, long status)
{
    const char *gmsg = NULL;
    int code = http_request_grpc_status(req, &gmsg);
    char *text;
    json_t *msg;

    if (s->watch_err || s->watch_compacted)
        return;
    if (code == -2) {
        watch_abort_reason(s, "watch stream ended with a malformed grpc-status");
        return;
    }
    if (code == -1 && status != 200 && status != 0) {
        char why[64];

        snprintf(why, sizeof(why), "watch: HTTP %ld without a gRPC status", status);
        watch_abort_reason(s, why);
        return;
    }
    if (code <= 0)
        return;
    text = etcd_grpc_message_decode(gmsg ? gmsg : "");
    msg = text ? json_pack("{s:{s:i, s:s}}", "error", "grpc_code", code, "message", text) : NULL;
    if (msg)
        watch_msg(msg, s);
    else
        watch_abort_reason(s, "out of memory");
    json_decref(msg);
    free(text);
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
    if (s->rebuilt) {
        s->rebuilt = false;
        new_cluster(s, s->watch_err ? s->watch_err : "etcd was rebuilt");
        goto out;
    }
    if (s->grpc)
        grpc_watch_status(s, req, status);
    else
        watch_leftover(s);
    if (s->watch_compacted) {
        s->stats.compactions++;
        s->need_list = true;
        list_start(s);
        goto out;
    }
    if ((s->watch_unauth || status == 401) && s->client->auth.user)
        etcd__auth_invalidate(s->client, s->watch_token_gen);
    if (s->watch_err)
        why = strdup(s->watch_err);
    else if (err < 0)
        memprintf(&why, "watch on %s: %s", s->client->endpoints[s->watch_ep],
                  errtext ? log_quote_str(errtext, q, sizeof(q)) : "failed");
    else if (status != 200)
        memprintf(&why, "watch: HTTP %ld", status);
    else
        memprintf(&why, "watch stream closed by etcd");
    etcd__endpoint_failed(s->client, s->watch_ep, NULL);
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
    /* natively, the same metadata is a plain header */
    static const char *const grpc_headers[] = {"hasleader: true", NULL};
    struct http_opts opts = {.method = "POST", .on_data = watch_data, .headers = headers};
    const struct etcd_grpc_method *gm = etcd_grpc_method("/v3/watch");
    char *text = NULL, *url = NULL, q[LOG_QUOTE_MAX];
    size_t text_len = 0;

    if (etcd__auth_needed(c)) {
        if (etcd__token_wait(c, &s->token_wait) < 0)
            sync_fail(s, "cannot start an etcd authentication request");
        goto out; /* the request bodies built above go too */
    }
    etcd_stream_free(&s->stream);
    etcd_grpc_stream_free(&s->gstream);
    s->grpc = c->transport == ETCD_TRANSPORT_GRPC;
    s->progress_pending = false;
    s->progress_sent = s->stream_heard = 0;
    s->rebuilt = false;
    s->progress_answers = s->range_probe = false;
    free(s->watch_err);
    s->watch_err = NULL;
    s->watch_unauth = false;
    s->watch_token_gen = c->auth.gen;
    s->watch_compacted = false;
    s->last_progress = 0;
    s->progress_interval = 0;
    s->created = s->probe_ok = false;
    if (!body || !create || etcd__set_b64(create, "key", s->prefix, s->prefix_len) < 0 ||
        etcd__set_b64(create, "range_end", s->range_end, s->range_end_len) < 0 ||
        etcd__set_int64(create, "start_revision", s->resume_rev + 1) < 0 ||
        json_object_set_new(create, "progress_notify", json_true()) < 0 ||
        json_object_set(body, "create_request", create) < 0 ||
        (s->grpc ? etcd_grpc_encode(gm, body, &text, &text_len, NULL) < 0
                 : !(text = json_dumps(body, JSON_COMPACT))) ||
        !(url = etcd__endpoint_url(c, c->cur, s->grpc ? etcd_grpc_path(gm) : "/v3/watch"))) {
        sync_fail(s, "out of memory building a watch request");
        goto out;
    }
    opts.body = text;
    opts.body_len = s->grpc ? text_len : strlen(text);
    if (s->grpc) {
        opts.grpc = true;
        opts.body_stream = true;
        opts.content_type = "application/grpc";
        opts.headers = grpc_headers;
    }
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
    etcd__endpoint_failed(s->client, s->watch_ep, NULL);
    sync_fail(s, why);
    s->depth--;
    sync_maybe_free(s);
}

static void token_ready(int err, const char *text, void *arg);

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
    s->token_wait.cb = token_ready;
    s->token_wait.arg = s;
    ev_init(&s->check_timer, check_timer_cb);
    s->check_timer.data = s;
    s->check_interval = ETCD_CHECK_INTERVAL;
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
    etcd__token_wait_cancel(c, &s->token_wait);
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

void etcd_sync_set_check_interval(struct etcd_sync *s, double seconds)
{
    s->check_interval = seconds > 0 ? seconds : 0;
    if (!s->stopped && s->check_interval <= 0)
        ev_timer_stop(s->loop, &s->check_timer);
}

const struct etcd_sync_stats *etcd_sync_stats(const struct etcd_sync *s)
{
    return &s->stats;
}

const char *etcd_sync_endpoint(const struct etcd_sync *s)
{
    const struct etcd_client *c = s->client;
    size_t ep = s->watch_req ? s->watch_ep : c->cur;

    return ep < c->n_endpoints ? c->endpoints[ep] : NULL;
}

/* The authentication the watch waited for ended (the client took our
 * waiter off its queue): err 0, start the watch; otherwise fail with text
 * (log-safe) and back off. */
static void token_ready(int err, const char *text, void *arg)
{
    struct etcd_sync *s = arg;

    s->depth++;
    if (err == 0)
        watch_start(s);
    else
        sync_fail(s, text);
    s->depth--;
    sync_maybe_free(s);
}
