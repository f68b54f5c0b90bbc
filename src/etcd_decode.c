/* etcd_decode - pure decoders of the etcd v3 JSON gateway's replies.
 *
 * Base64, int64-as-string, revisions, range replies, watch messages, gateway
 * error objects and their gRPC codes, and the newline-delimited stream
 * splitter. No I/O: tested without a server (tests/test_etcd_decode.c).
 */
#include <slotsync/etcd_decode.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/vec.h>

#define ETCD_STREAM_MAX ((size_t)64 << 20)
/* A stream buffer bigger than this is released once empty. */
#define ETCD_STREAM_KEEP ((size_t)1 << 20)

int etcd_grpc_errno(int code)
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

int etcd_header_revision(const json_t *obj, int64_t *rev, char **errmsg)
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

void etcd_kv_free(struct etcd_kv *kv)
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
        etcd_json_int64(j, "create_revision", &kv->create_revision) < 0 ||
        etcd_json_int64(j, "lease", &kv->lease) < 0) {
        memprintf(errmsg, "bad kv mod_revision, create_revision or lease");
        rc = -EINVAL;
        goto fail;
    }
    rc = check_revision(kv->mod_revision, false, "kv mod_revision", errmsg);
    if (rc < 0)
        goto fail;
    /* absent (0) in delete events; never after the key's last change */
    rc = check_revision(kv->create_revision, true, "kv create_revision", errmsg);
    if (rc == 0 && kv->create_revision > kv->mod_revision) {
        memprintf(errmsg, "kv create_revision %" PRId64 " above its mod_revision %" PRId64,
                  kv->create_revision, kv->mod_revision);
        rc = -ERANGE;
    }
    if (rc < 0)
        goto fail;
    kv->deleted = deleted;
    return 0;

fail:
    etcd_kv_free(kv);
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
    rc = etcd_header_revision(reply, &out->revision, errmsg);
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
        etcd_kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

const json_t *etcd_reply_error(const json_t *msg)
{
    const json_t *e, *code, *text;

    if (!json_is_object(msg))
        return NULL;
    e = json_object_get(msg, "error");
    if (e)
        return e;
    /* 3.6: google.rpc.Status at the top */
    code = json_object_get(msg, "code");
    text = json_object_get(msg, "message");
    if (json_is_integer(code) && json_integer_value(code) != 0 && json_is_string(text) &&
        !json_object_get(msg, "result") && !json_object_get(msg, "header"))
        return msg;
    return NULL;
}

/* See etcd_reply_error() for the shapes; err == msg is 3.6's unary one. */
int etcd_parse_error(const json_t *msg, const json_t *err, struct etcd_watch_msg *out,
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
    err = etcd_reply_error(msg);
    if (err) {
        rc = etcd_parse_error(msg, err, out, errmsg);
        if (rc < 0)
            goto fail;
        return 0;
    }
    result = json_object_get(msg, "result");
    if (!json_is_object(result)) {
        memprintf(errmsg, "watch message without \"result\"");
        goto fail;
    }
    rc = etcd_header_revision(result, &out->revision, errmsg);
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
        etcd_kv_free(&m->events[i]);
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
    if (vec_reserve(&s->buf, &s->cap, s->len + len + 1, 1, 4096) < 0) {
        rc = -ENOMEM;
        goto reset;
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

/* ---- lease replies ---- */

/* The gateway wraps streamed answers (keepalive) in "result". */
static const json_t *lease_body(const json_t *reply)
{
    const json_t *res = json_object_get(reply, "result");

    return json_is_object(res) ? res : reply;
}

int etcd_parse_lease_grant(const json_t *reply, int64_t *id, int64_t *ttl)
{
    const json_t *body = lease_body(reply);

    *id = *ttl = 0;
    if (etcd_json_int64(body, "ID", id) < 0 || *id == 0 || etcd_json_int64(body, "TTL", ttl) < 0)
        return -EINVAL;
    return 0;
}

int etcd_parse_lease_keepalive(const json_t *reply, int64_t *ttl)
{
    *ttl = 0;
    return etcd_json_int64(lease_body(reply), "TTL", ttl) < 0 ? -EINVAL : 0;
}

bool etcd_txn_succeeded(const json_t *reply)
{
    return json_is_true(json_object_get(reply, "succeeded"));
}
