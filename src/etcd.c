/* etcd - an etcd v3 client over the JSON gateway, on the loop.
 *
 * Three layers:
 *  - pure decoders (base64, int64-as-string, range replies, watch messages,
 *    the newline-delimited stream splitter), tested without I/O;
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

#include <slotsync/http.h>
#include <slotsync/log.h>

#define MOD "etcd"

#define ETCD_CALL_TIMEOUT_MS 5000L
/* One page of 1000 keys; a member that hangs mid-listing costs this much
 * before the page is asked of the next endpoint. */
#define ETCD_LIST_TIMEOUT_MS 10000L
#define ETCD_LIST_PAGE 1000
#define ETCD_REPLY_MAX ((size_t)256 << 20)
#define ETCD_STREAM_MAX ((size_t)64 << 20)
#define ETCD_BACKOFF_MIN 0.1
#define ETCD_BACKOFF_MAX 5.0
#define ETCD_JITTER 0.2
#define ETCD_IDLE_FACTOR 3.0
#define ETCD_IDLE_MIN_INTERVAL 1.0
/* Liveness probe of the watch's member: one every second, each given 3 s,
 * so a hung member is found within about 4 s. */
#define ETCD_PROBE_INTERVAL 1.0
#define ETCD_PROBE_TIMEOUT_MS 3000L
/* A stream buffer bigger than this is released once empty. */
#define ETCD_STREAM_KEEP ((size_t)1 << 20)

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

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_b64_encode(const void *in, size_t len, char **out, size_t *outlen)
{
    const unsigned char *p = in;
    size_t n, o = 0, i;
    char *s;

    if (!out || (!in && len))
        return -EINVAL;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return -ENOMEM;
    n = (len + 2) / 3 * 4;
    s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = b64_alphabet[(v >> 6) & 63];
        s[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;

        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = '=';
        s[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = b64_alphabet[(v >> 6) & 63];
        s[o++] = '=';
    }
    s[o] = '\0';
    *out = s;
    if (outlen)
        *outlen = o;
    return 0;
}

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Strict: padded, no whitespace, '=' only at the end, and the unused low
 * bits of the last symbol zero (the one canonical encoding, which is what
 * etcd emits). */
int etcd_b64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    size_t pad = 0, n, o = 0;
    char *s;

    if (!out || (!in && len))
        return -EINVAL;
    if (len % 4 != 0)
        return -EINVAL;
    if (len > 0 && in[len - 1] == '=')
        pad++;
    if (len > 1 && in[len - 2] == '=')
        pad++;
    n = len / 4 * 3 - pad;
    s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        bool last = i + 4 == len;

        for (int j = 0; j < 4; j++) {
            if (last && (size_t)j >= 4 - pad) {
                v[j] = 0;
                continue;
            }
            v[j] = b64_value((unsigned char)in[i + j]);
            if (v[j] < 0)
                goto bad;
        }
        if (last && pad == 2 && (v[1] & 15))
            goto bad;
        if (last && pad == 1 && (v[2] & 3))
            goto bad;
        uint32_t t =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        s[o++] = (char)(t >> 16);
        if (!last || pad < 2)
            s[o++] = (char)((t >> 8) & 255);
        if (!last || pad < 1)
            s[o++] = (char)(t & 255);
    }
    s[o] = '\0';
    *out = s;
    if (outlen)
        *outlen = o;
    return 0;

bad:
    free(s);
    return -EINVAL;
}

char *etcd_prefix_range_end(const char *prefix, size_t len, size_t *outlen)
{
    char *end;

    while (len > 0 && (unsigned char)prefix[len - 1] == 0xff)
        len--;
    if (len == 0) {
        /* Nothing to increment: "\0" means every key from the start key. */
        end = calloc(2, 1);
        if (end && outlen)
            *outlen = 1;
        return end;
    }
    end = malloc(len + 1);
    if (!end)
        return NULL;
    memcpy(end, prefix, len);
    end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
    end[len] = '\0';
    if (outlen)
        *outlen = len;
    return end;
}

/* ---- JSON fields ---- */

static int parse_int64(const char *s, size_t len, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0, limit;
    size_t i = 0;

    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return -EINVAL;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

int etcd_json_int64(const json_t *obj, const char *field, int64_t *out)
{
    const json_t *v;

    *out = 0;
    if (!json_is_object(obj))
        return -EINVAL;
    v = json_object_get(obj, field);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        int64_t r;

        if (parse_int64(json_string_value(v), json_string_length(v), &r) < 0)
            return -EINVAL;
        *out = r;
        return 0;
    }
    return -EINVAL;
}

/* An optional boolean field: missing = false. */
static int json_bool_field(const json_t *obj, const char *field, bool *out)
{
    const json_t *v = json_object_get(obj, field);

    *out = false;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return -EINVAL;
    *out = json_is_true(v);
    return 0;
}

/* Revisions are where they enter checked against 0 < rev < INT64_MAX, so
 * "rev + 1" never overflows and no value can make every later event look
 * like a replay. optional: 0 (the gateway omits zero values) is accepted
 * too. 0 or -ERANGE with *errmsg naming the field. */
static int check_revision(int64_t rev, bool optional, const char *what, char **errmsg)
{
    if ((optional && rev == 0) || (rev > 0 && rev < INT64_MAX))
        return 0;
    memprintf(errmsg, "%s %" PRId64 " out of range (1..%" PRId64 ")", what, rev,
              (int64_t)(INT64_MAX - 1));
    return -ERANGE;
}

static int header_revision(const json_t *obj, int64_t *rev, char **errmsg)
{
    const json_t *h = json_object_get(obj, "header");

    *rev = 0;
    if (!h)
        return 0;
    if (!json_is_object(h) || etcd_json_int64(h, "revision", rev) < 0) {
        memprintf(errmsg, "bad header revision");
        return -EINVAL;
    }
    return check_revision(*rev, true, "header revision", errmsg);
}

int etcd_header_cluster_id(const json_t *reply, uint64_t *out)
{
    const json_t *h = json_object_get(reply, "header"), *v;
    const char *text;
    uint64_t id = 0;

    *out = 0;
    v = json_is_object(h) ? json_object_get(h, "cluster_id") : NULL;
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    /* a uint64: beyond what etcd_json_int64 takes */
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 20)
        return -EINVAL;
    text = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++) {
        unsigned d = (unsigned)(text[i] - '0');

        if (text[i] < '0' || text[i] > '9' || id > (UINT64_MAX - d) / 10)
            return -EINVAL;
        id = id * 10 + d;
    }
    *out = id;
    return 0;
}

static void kv_free(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

/* Decode a base64 string field; missing = empty when optional. */
static int b64_field(const json_t *obj, const char *field, bool optional, char **out,
                     size_t *outlen, char **errmsg)
{
    const json_t *v = json_object_get(obj, field);
    int rc;

    if (!v && optional) {
        *out = calloc(1, 1);
        *outlen = 0;
        return *out ? 0 : -ENOMEM;
    }
    if (!json_is_string(v)) {
        memprintf(errmsg, "kv %s is %s", field, v ? "not a string" : "missing");
        return -EINVAL;
    }
    rc = etcd_b64_decode(json_string_value(v), json_string_length(v), out, outlen);
    if (rc == -EINVAL)
        memprintf(errmsg, "kv %s is not valid base64", field);
    else if (rc < 0)
        memprintf(errmsg, "out of memory");
    return rc;
}

static int decode_kv(const json_t *j, bool deleted, struct etcd_kv *kv, char **errmsg)
{
    int rc;

    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(j)) {
        memprintf(errmsg, "kv is not an object");
        return -EINVAL;
    }
    rc = b64_field(j, "key", false, &kv->key, &kv->key_len, errmsg);
    if (rc < 0)
        goto fail;
    if (!deleted) {
        rc = b64_field(j, "value", true, &kv->value, &kv->value_len, errmsg);
        if (rc < 0)
            goto fail;
    }
    if (etcd_json_int64(j, "mod_revision", &kv->mod_revision) < 0 ||
        etcd_json_int64(j, "lease", &kv->lease) < 0) {
        memprintf(errmsg, "bad kv mod_revision or lease");
        rc = -EINVAL;
        goto fail;
    }
    rc = check_revision(kv->mod_revision, false, "kv mod_revision", errmsg);
    if (rc < 0)
        goto fail;
    kv->deleted = deleted;
    return 0;

fail:
    kv_free(kv);
    return rc;
}

int etcd_parse_range(const json_t *reply, struct etcd_range_reply *out, char **errmsg)
{
    const json_t *kvs;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(reply)) {
        memprintf(errmsg, "range reply is not an object");
        return -EINVAL;
    }
    rc = header_revision(reply, &out->revision, errmsg);
    if (rc < 0)
        goto fail;
    rc = -EINVAL;
    if (json_bool_field(reply, "more", &out->more) < 0) {
        memprintf(errmsg, "bad \"more\"");
        goto fail;
    }
    if (etcd_json_int64(reply, "count", &out->count) < 0) {
        memprintf(errmsg, "bad \"count\"");
        goto fail;
    }
    kvs = json_object_get(reply, "kvs");
    if (kvs) {
        size_t n = json_array_size(kvs);

        if (!json_is_array(kvs)) {
            memprintf(errmsg, "\"kvs\" is not an array");
            goto fail;
        }
        if (n > 0) {
            out->kvs = calloc(n, sizeof(*out->kvs));
            if (!out->kvs) {
                memprintf(errmsg, "out of memory");
                rc = -ENOMEM;
                goto fail;
            }
        }
        for (size_t i = 0; i < n; i++) {
            rc = decode_kv(json_array_get(kvs, i), false, &out->kvs[i], errmsg);
            if (rc < 0)
                goto fail;
            out->n_kvs++;
        }
    }
    return 0;

fail:
    etcd_range_reply_free(out);
    return rc;
}

void etcd_range_reply_free(struct etcd_range_reply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_kvs; i++)
        kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* {"error":"text","message":"text","code":N} (unary style) or
 * {"error":{"grpc_code":N,"message":"text",...}} (stream style). */
static int parse_error_object(const json_t *msg, const json_t *err, struct etcd_watch_msg *out,
                              char **errmsg)
{
    const json_t *code, *text;

    out->error = true;
    if (json_is_object(err)) {
        code = json_object_get(err, "grpc_code");
        if (!code)
            code = json_object_get(err, "code");
        text = json_object_get(err, "message");
    } else if (json_is_string(err)) {
        code = json_object_get(msg, "code");
        text = json_object_get(msg, "message");
        if (!json_is_string(text) || json_string_length(text) == 0)
            text = err;
    } else {
        memprintf(errmsg, "bad \"error\"");
        return -EINVAL;
    }
    out->error_code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
    out->error_message =
        strdup(json_is_string(text) ? json_string_value(text) : "unknown gateway error");
    if (!out->error_message) {
        memprintf(errmsg, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int decode_event(const json_t *ev, struct etcd_kv *kv, char **errmsg)
{
    const json_t *type;
    bool deleted;

    if (!json_is_object(ev)) {
        memprintf(errmsg, "event is not an object");
        return -EINVAL;
    }
    /* Zero values are omitted: no "type" is PUT. Enums may come as names or,
     * with other gateway settings, numbers. */
    type = json_object_get(ev, "type");
    if (!type || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0) ||
        (json_is_integer(type) && json_integer_value(type) == 0)) {
        deleted = false;
    } else if ((json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) ||
               (json_is_integer(type) && json_integer_value(type) == 1)) {
        deleted = true;
    } else {
        memprintf(errmsg, "unknown event type");
        return -EINVAL;
    }
    return decode_kv(json_object_get(ev, "kv"), deleted, kv, errmsg);
}

int etcd_parse_watch(const json_t *msg, struct etcd_watch_msg *out, char **errmsg)
{
    const json_t *result, *err, *reason, *events;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(msg)) {
        memprintf(errmsg, "watch message is not an object");
        return -EINVAL;
    }
    err = json_object_get(msg, "error");
    if (err) {
        rc = parse_error_object(msg, err, out, errmsg);
        if (rc < 0)
            goto fail;
        return 0;
    }
    result = json_object_get(msg, "result");
    if (!json_is_object(result)) {
        memprintf(errmsg, "watch message without \"result\"");
        goto fail;
    }
    rc = header_revision(result, &out->revision, errmsg);
    if (rc < 0)
        goto fail;
    rc = -EINVAL;
    if (etcd_json_int64(result, "watch_id", &out->watch_id) < 0 ||
        etcd_json_int64(result, "compact_revision", &out->compact_revision) < 0) {
        memprintf(errmsg, "bad watch_id or compact_revision");
        goto fail;
    }
    rc = check_revision(out->compact_revision, true, "compact_revision", errmsg);
    if (rc < 0)
        goto fail;
    rc = -EINVAL;
    if (json_bool_field(result, "created", &out->created) < 0 ||
        json_bool_field(result, "canceled", &out->canceled) < 0) {
        memprintf(errmsg, "bad created or canceled");
        goto fail;
    }
    reason = json_object_get(result, "cancel_reason");
    if (reason) {
        if (!json_is_string(reason)) {
            memprintf(errmsg, "bad cancel_reason");
            goto fail;
        }
        out->cancel_reason = strdup(json_string_value(reason));
        if (!out->cancel_reason) {
            rc = -ENOMEM;
            memprintf(errmsg, "out of memory");
            goto fail;
        }
    }
    events = json_object_get(result, "events");
    if (events) {
        size_t n = json_array_size(events);

        if (!json_is_array(events)) {
            memprintf(errmsg, "\"events\" is not an array");
            goto fail;
        }
        if (n > 0) {
            out->events = calloc(n, sizeof(*out->events));
            if (!out->events) {
                rc = -ENOMEM;
                memprintf(errmsg, "out of memory");
                goto fail;
            }
        }
        for (size_t i = 0; i < n; i++) {
            rc = decode_event(json_array_get(events, i), &out->events[i], errmsg);
            if (rc < 0)
                goto fail;
            out->n_events++;
        }
    }
    return 0;

fail:
    etcd_watch_msg_free(out);
    return rc;
}

void etcd_watch_msg_free(struct etcd_watch_msg *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_events; i++)
        kv_free(&m->events[i]);
    free(m->events);
    free(m->cancel_reason);
    free(m->error_message);
    memset(m, 0, sizeof(*m));
}

/* ---- stream splitter ---- */

void etcd_stream_init(struct etcd_stream *s)
{
    memset(s, 0, sizeof(*s));
}

void etcd_stream_free(struct etcd_stream *s)
{
    free(s->buf);
    etcd_stream_init(s);
}

static int stream_line(const char *line, size_t len, etcd_stream_cb cb, void *arg)
{
    json_error_t jerr;
    json_t *msg;
    size_t i;
    int rc;

    for (i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            break;
    if (i == len)
        return 0; /* blank line */
    msg = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return -EINVAL;
    }
    rc = cb(msg, arg);
    json_decref(msg);
    return rc;
}

/* Invariant between calls that returned 0: buf holds one partial line, with
 * no newline, so only new bytes are searched. After a non-zero return the
 * splitter is reset (its caller abandons or restarts the stream). */
int etcd_stream_feed(struct etcd_stream *s, const char *data, size_t len, etcd_stream_cb cb,
                     void *arg)
{
    size_t max = s->max ? s->max : ETCD_STREAM_MAX;
    size_t start = 0, scan = s->len;
    int rc = 0;

    if (len > SIZE_MAX - s->len - 1)
        return -ENOMEM;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *p;

        while (cap < s->len + len + 1)
            cap = cap > SIZE_MAX / 2 ? s->len + len + 1 : cap * 2;
        p = realloc(s->buf, cap);
        if (!p) {
            rc = -ENOMEM;
            goto reset;
        }
        s->buf = p;
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf + s->len, data, len);
    s->len += len;

    for (;;) {
        char *nl = memchr(s->buf + scan, '\n', s->len - scan);
        size_t end;

        if (!nl)
            break;
        end = (size_t)(nl - s->buf);
        if (end - start > max) {
            rc = -E2BIG;
            goto reset;
        }
        rc = stream_line(s->buf + start, end - start, cb, arg);
        if (rc != 0)
            goto reset;
        start = scan = end + 1;
    }
    if (s->len - start > max) {
        rc = -E2BIG;
        goto reset;
    }
    if (start > 0) {
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
    }
    if (s->len == 0 && s->cap > ETCD_STREAM_KEEP) {
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    return 0;

reset:
    s->len = 0;
    return rc;
}

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

static int grpc_errno(int code)
{
    switch (code) {
    case GRPC_CANCELED:
        return -ECANCELED;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_FAILED_PRECONDITION:
        return -EINVAL;
    case GRPC_DEADLINE_EXCEEDED:
        return -ETIMEDOUT;
    case GRPC_NOT_FOUND:
        return -ENOENT;
    case GRPC_ALREADY_EXISTS:
        return -EEXIST;
    case GRPC_PERMISSION_DENIED:
        return -EPERM;
    case GRPC_RESOURCE_EXHAUSTED:
        return -ENOSPC;
    case GRPC_OUT_OF_RANGE:
        return -ERANGE;
    case GRPC_UNIMPLEMENTED:
        return -ENOSYS;
    case GRPC_UNAVAILABLE:
        return -EAGAIN;
    case GRPC_UNAUTHENTICATED:
        return -EACCES;
    default:
        return -EIO;
    }
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
    char q[512];
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

        if (parse_error_object(*reply, e, &m, NULL) < 0) {
            memprintf(text, "%s%s: HTTP %ld, unreadable error", ep, call->path, status);
            etcd_watch_msg_free(&m);
            return -EIO;
        }
        rc = grpc_errno(m.error_code);
        memprintf(text, "%s%s: etcd: %s (code %d)", ep, call->path,
                  quote(m.error_message, q, sizeof(q)), m.error_code);
        etcd_watch_msg_free(&m);
        return rc;
    }
    if (status != 200) {
        memprintf(text, "%s%s: HTTP %ld: %s", ep, call->path, status, log_quote(body, len, q, 200));
        return status == 404 ? -ENOENT : -EIO;
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
    uint64_t cluster_id; /* 0 = not known yet */
    struct log_outage outage;

    ev_timer retry;
    double backoff;
    uint64_t rng;
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
        kv_free(&s->list_kvs[i]);
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
        kv_free(&s->list_kvs[i]);
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

/* xorshift64*: jitter only, no need for more. */
static double sync_random(struct etcd_sync *s)
{
    uint64_t x = s->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
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
    char q[512];

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
    char q[512];

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
    int64_t rev = 0, seen = s->seen_rev > s->resume_rev ? s->seen_rev : s->resume_rev;
    uint64_t id = 0;
    char *why = NULL, q[512];

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
    if (header_revision(reply, &rev, &why) < 0 || etcd_header_cluster_id(reply, &id) < 0) {
        s->stats.bad_revisions++;
        log_msg(s->probe_ok ? LOG_WARN : LOG_DEBUG, MOD, "sync probe of %s: bad reply header: %s",
                quote(c->endpoints[ep], q, sizeof(q)), why ? why : "bad cluster_id");
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
    double delay = s->backoff * (1.0 - ETCD_JITTER + 2.0 * ETCD_JITTER * sync_random(s));
    char q[512];

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
    char *errmsg = NULL, q[512];
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
    char q[512];
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
        if (is_compacted(grpc_errno(m.error_code), m.error_message)) {
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
    char *why = NULL, q[512];

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
    char *text = NULL, *url = NULL, q[512];

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
    s->rng = ((uint64_t)(uintptr_t)s ^ (uint64_t)(ev_time() * 1e6)) | 1;
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
            if (e && parse_error_object(reply, e, &m, NULL) == 0 && m.error_message)
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
