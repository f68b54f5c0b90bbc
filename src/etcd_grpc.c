/* etcd_grpc - etcd's gRPC messages to and from the gateway's JSON shape,
 * gRPC framing, and grpc-status / grpc-message values.
 *
 * The translation walks protobuf-c's descriptors of the messages in
 * proto/rpc.proto: a JSON field is the proto field of the same name (the
 * gateway's names are the proto names), int64s are decimal strings, bytes
 * base64, enums their names; a oneof member present in the JSON selects it.
 * Going back, zero-valued singular fields are left out, as the gateway
 * leaves them out, and a set oneof member is always written. Everything a
 * reply holds is then checked by etcd_decode like the gateway's replies.
 */
#include <slotsync/etcd_grpc.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.pb-c.h"

#include <slotsync/etcd_decode.h>
#include <slotsync/log.h>
#include <slotsync/vec.h>

struct etcd_grpc_method {
    const char *gateway_path;
    const char *grpc_path;
    const ProtobufCMessageDescriptor *req, *reply;
    bool streamed;
};

static const struct etcd_grpc_method methods[] = {
    {"/v3/kv/range", "/etcdserverpb.KV/Range", &etcdserverpb__range_request__descriptor,
     &etcdserverpb__range_response__descriptor, false},
    {"/v3/kv/put", "/etcdserverpb.KV/Put", &etcdserverpb__put_request__descriptor,
     &etcdserverpb__put_response__descriptor, false},
    {"/v3/kv/deleterange", "/etcdserverpb.KV/DeleteRange",
     &etcdserverpb__delete_range_request__descriptor,
     &etcdserverpb__delete_range_response__descriptor, false},
    {"/v3/kv/txn", "/etcdserverpb.KV/Txn", &etcdserverpb__txn_request__descriptor,
     &etcdserverpb__txn_response__descriptor, false},
    {"/v3/watch", "/etcdserverpb.Watch/Watch", &etcdserverpb__watch_request__descriptor,
     &etcdserverpb__watch_response__descriptor, true},
    {"/v3/lease/grant", "/etcdserverpb.Lease/LeaseGrant",
     &etcdserverpb__lease_grant_request__descriptor,
     &etcdserverpb__lease_grant_response__descriptor, false},
    {"/v3/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke",
     &etcdserverpb__lease_revoke_request__descriptor,
     &etcdserverpb__lease_revoke_response__descriptor, false},
    {"/v3/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive",
     &etcdserverpb__lease_keep_alive_request__descriptor,
     &etcdserverpb__lease_keep_alive_response__descriptor, true},
    {"/v3/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive",
     &etcdserverpb__lease_time_to_live_request__descriptor,
     &etcdserverpb__lease_time_to_live_response__descriptor, false},
    {"/v3/auth/authenticate", "/etcdserverpb.Auth/Authenticate",
     &etcdserverpb__authenticate_request__descriptor,
     &etcdserverpb__authenticate_response__descriptor, false},
};

const struct etcd_grpc_method *etcd_grpc_method(const char *gateway_path)
{
    if (!gateway_path)
        return NULL;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].gateway_path, gateway_path) == 0)
            return &methods[i];
    return NULL;
}

const char *etcd_grpc_path(const struct etcd_grpc_method *m)
{
    return m->grpc_path;
}

bool etcd_grpc_streamed(const struct etcd_grpc_method *m)
{
    return m->streamed;
}

/* ---- JSON -> protobuf ----
 *
 * A request is built in memory we own (an arena), not with protobuf-c's
 * allocator: free_unpacked() is for unpacked messages only. */

struct arena {
    void **blocks;
    size_t n, cap;
};

static void *arena_alloc(struct arena *a, size_t size)
{
    void *p;

    if (vec_reserve(&a->blocks, &a->cap, a->n + 1, sizeof(*a->blocks), 16) < 0)
        return NULL;
    p = calloc(1, size ? size : 1);
    if (p)
        a->blocks[a->n++] = p;
    return p;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0; /* float and double: not in etcd's messages we use */
    }
}

/* A decimal integer as the gateway writes int64s ("123", "-4"), or a JSON
 * integer. */
static int json_to_i64(const json_t *j, bool is_unsigned, uint64_t *out)
{
    const char *s, *p;
    uint64_t v = 0;
    bool neg = false;

    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);

        if (is_unsigned && i < 0)
            return -EINVAL;
        *out = (uint64_t)i;
        return 0;
    }
    if (!json_is_string(j))
        return -EINVAL;
    s = json_string_value(j);
    p = s;
    if (*p == '-' && !is_unsigned) {
        neg = true;
        p++;
    }
    if (!*p || json_string_length(j) != strlen(s))
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (!is_unsigned && v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return -EINVAL;
    *out = neg ? (uint64_t)0 - v : v;
    return 0;
}

static int json_to_msg(const ProtobufCMessageDescriptor *d, const json_t *obj,
                       ProtobufCMessage **out, struct arena *a, const char *path, char **errmsg);

/* One value of field f from j, stored at dst. */
static int json_to_value(const ProtobufCFieldDescriptor *f, const json_t *j, void *dst,
                         struct arena *a, const char *path, char **errmsg)
{
    uint64_t v;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        bool u = f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;

        if (json_to_i64(j, u, &v) < 0)
            goto bad;
        memcpy(dst, &v, 8);
        return 0;
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t i;

        if (!json_is_integer(j) || json_integer_value(j) < INT32_MIN ||
            json_integer_value(j) > INT32_MAX)
            goto bad;
        i = (int32_t)json_integer_value(j);
        memcpy(dst, &i, 4);
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t u;

        if (!json_is_integer(j) || json_integer_value(j) < 0 ||
            json_integer_value(j) > UINT32_MAX)
            goto bad;
        u = (uint32_t)json_integer_value(j);
        memcpy(dst, &u, 4);
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;

        if (!json_is_boolean(j))
            goto bad;
        b = json_is_true(j);
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev = NULL;
        int e;

        if (json_is_string(j))
            ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor,
                                                              json_string_value(j));
        else if (json_is_integer(j) && json_integer_value(j) >= INT_MIN &&
                 json_integer_value(j) <= INT_MAX)
            ev = protobuf_c_enum_descriptor_get_value(f->descriptor,
                                                      (int)json_integer_value(j));
        if (!ev)
            goto bad;
        e = ev->value;
        memcpy(dst, &e, sizeof(e));
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s;

        if (!json_is_string(j))
            goto bad;
        s = arena_alloc(a, json_string_length(j) + 1);
        if (!s)
            return -ENOMEM;
        memcpy(s, json_string_value(j), json_string_length(j));
        memcpy(dst, &s, sizeof(s));
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b = {0};
        char *raw, *copy;
        size_t n;
        int rc;

        if (!json_is_string(j))
            goto bad;
        rc = etcd_b64_decode(json_string_value(j), json_string_length(j), &raw, &n);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            goto bad;
        copy = arena_alloc(a, n);
        if (!copy) {
            free(raw);
            return -ENOMEM;
        }
        memcpy(copy, raw, n);
        free(raw);
        b.data = (uint8_t *)copy;
        b.len = n;
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m;
        int rc = json_to_msg(f->descriptor, j, &m, a, path, errmsg);

        if (rc < 0)
            return rc;
        memcpy(dst, &m, sizeof(m));
        return 0;
    }
    default:
        break;
    }
bad:
    if (errmsg && !*errmsg)
        memprintf(errmsg, "field %s has a value of the wrong type", path);
    return -EINVAL;
}

static int json_to_msg(const ProtobufCMessageDescriptor *d, const json_t *obj,
                       ProtobufCMessage **out, struct arena *a, const char *path, char **errmsg)
{
    ProtobufCMessage *m;
    const char *name;
    json_t *j;
    char sub[256];

    if (!json_is_object(obj)) {
        if (errmsg && !*errmsg)
            memprintf(errmsg, "%s is not an object", path[0] ? path : "the request");
        return -EINVAL;
    }
    m = arena_alloc(a, d->sizeof_message);
    if (!m)
        return -ENOMEM;
    d->message_init(m);
    json_object_foreach((json_t *)obj, name, j)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
        char *base = (char *)m;
        size_t size;
        int rc;

        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", name);
        if (!f || !(size = value_size(f))) {
            if (errmsg && !*errmsg)
                memprintf(errmsg, "field %s is not part of %s", sub, d->name);
            return -EINVAL;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = json_is_array(j) ? json_array_size(j) : 0;
            char *arr;

            if (!json_is_array(j)) {
                if (errmsg && !*errmsg)
                    memprintf(errmsg, "field %s is not an array", sub);
                return -EINVAL;
            }
            arr = arena_alloc(a, n * size);
            if (!arr)
                return -ENOMEM;
            for (size_t i = 0; i < n; i++)
                if ((rc = json_to_value(f, json_array_get(j, i), arr + i * size, a, sub,
                                        errmsg)) < 0)
                    return rc;
            memcpy(base + f->quantifier_offset, &n, sizeof(n));
            memcpy(base + f->offset, &arr, sizeof(arr));
            continue;
        }
        if ((rc = json_to_value(f, j, base + f->offset, a, sub, errmsg)) < 0)
            return rc;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t id = f->id;

            memcpy(base + f->quantifier_offset, &id, sizeof(id));
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
            protobuf_c_boolean has = 1;

            memcpy(base + f->quantifier_offset, &has, sizeof(has));
        }
    }
    *out = m;
    return 0;
}

int etcd_grpc_encode(const struct etcd_grpc_method *m, const json_t *body, char **out,
                     size_t *len, char **errmsg)
{
    struct arena a = {0};
    ProtobufCMessage *msg = NULL;
    unsigned char *buf;
    size_t n;
    int rc;

    *out = NULL;
    *len = 0;
    rc = json_to_msg(m->req, body, &msg, &a, "", errmsg);
    if (rc < 0)
        goto out;
    n = protobuf_c_message_get_packed_size(msg);
    if (n > ETCD_GRPC_MAX_MSG) {
        rc = -E2BIG;
        if (errmsg && !*errmsg)
            memprintf(errmsg, "request of %zu bytes is too large", n);
        goto out;
    }
    buf = malloc(ETCD_GRPC_PREFIX + n);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    buf[0] = 0;
    buf[1] = (unsigned char)(n >> 24);
    buf[2] = (unsigned char)(n >> 16);
    buf[3] = (unsigned char)(n >> 8);
    buf[4] = (unsigned char)n;
    protobuf_c_message_pack(msg, buf + ETCD_GRPC_PREFIX);
    *out = (char *)buf;
    *len = ETCD_GRPC_PREFIX + n;
out:
    if (rc == -ENOMEM && errmsg && !*errmsg)
        memprintf(errmsg, "out of memory");
    arena_free(&a);
    return rc;
}

/* ---- protobuf -> JSON ---- */

static int msg_to_json(const ProtobufCMessage *m, json_t **out, const char *path, char **errmsg);

static int value_to_json(const ProtobufCFieldDescriptor *f, const void *src, json_t **out,
                         const char *path, char **errmsg)
{
    char buf[32];

    *out = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;

        memcpy(&v, src, 8);
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        *out = json_string(buf);
        break;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;

        memcpy(&v, src, 8);
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        *out = json_string(buf);
        break;
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;

        memcpy(&v, src, 4);
        *out = json_integer(v);
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v;

        memcpy(&v, src, 4);
        *out = json_integer(v);
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;

        memcpy(&b, src, sizeof(b));
        *out = json_boolean(b);
        break;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev;
        int e;

        memcpy(&e, src, sizeof(e));
        ev = protobuf_c_enum_descriptor_get_value(f->descriptor, e);
        /* the gateway writes an unknown value as its number */
        *out = ev ? json_string(ev->name) : json_integer(e);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;

        memcpy(&s, src, sizeof(s));
        *out = json_stringn(s ? s : "", s ? strlen(s) : 0);
        if (!*out) {
            if (errmsg && !*errmsg)
                memprintf(errmsg, "field %s is not UTF-8", path);
            return -EBADMSG;
        }
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;
        char *s;

        memcpy(&b, src, sizeof(b));
        if (etcd_b64_encode(b.data ? (const void *)b.data : "", b.len, &s, NULL) < 0)
            return -ENOMEM;
        *out = json_string(s);
        free(s);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub;

        memcpy(&sub, src, sizeof(sub));
        if (!sub) {
            *out = json_object();
            break;
        }
        return msg_to_json(sub, out, path, errmsg);
    }
    default:
        if (errmsg && !*errmsg)
            memprintf(errmsg, "field %s has an unsupported type", path);
        return -EBADMSG;
    }
    return *out ? 0 : -ENOMEM;
}

/* A singular field holding its zero value: the gateway leaves it out. */
static bool is_zero(const ProtobufCFieldDescriptor *f, const void *src)
{
    static const unsigned char zeros[16];

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;

        memcpy(&s, src, sizeof(s));
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;

        memcpy(&b, src, sizeof(b));
        return b.len == 0;
    }
    default:
        return memcmp(src, zeros, value_size(f)) == 0;
    }
}

static int msg_to_json(const ProtobufCMessage *m, json_t **out, const char *path, char **errmsg)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    json_t *obj = json_object();
    char sub[256];
    int rc = 0;

    if (!obj)
        return -ENOMEM;
    for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t size = value_size(f);
        json_t *v = NULL;

        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            const char *arr;

            memcpy(&n, base + f->quantifier_offset, sizeof(n));
            memcpy(&arr, base + f->offset, sizeof(arr));
            if (n == 0)
                continue;
            v = json_array();
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            for (size_t k = 0; k < n && rc == 0; k++) {
                json_t *e;

                rc = value_to_json(f, arr + k * size, &e, sub, errmsg);
                if (rc == 0 && json_array_append_new(v, e) < 0)
                    rc = -ENOMEM;
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t which;

                memcpy(&which, base + f->quantifier_offset, sizeof(which));
                if (which != f->id)
                    continue;
            } else if (is_zero(f, base + f->offset)) {
                continue;
            }
            rc = value_to_json(f, base + f->offset, &v, sub, errmsg);
        }
        if (rc == 0 && json_object_set_new(obj, f->name, v) < 0)
            rc = -ENOMEM;
        else if (rc < 0)
            json_decref(v);
    }
    if (rc < 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int etcd_grpc_decode(const struct etcd_grpc_method *m, const void *data, size_t len, json_t **out,
                     char **errmsg)
{
    ProtobufCMessage *msg;
    json_t *obj = NULL;
    int rc;

    *out = NULL;
    msg = protobuf_c_message_unpack(m->reply, NULL, len, len ? data : (const uint8_t *)"");
    if (!msg) {
        if (errmsg && !*errmsg)
            memprintf(errmsg, "reply of %zu bytes is not a valid %s", len, m->reply->name);
        return -EBADMSG;
    }
    rc = msg_to_json(msg, &obj, "", errmsg);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (rc < 0) {
        if (rc == -ENOMEM && errmsg && !*errmsg)
            memprintf(errmsg, "out of memory");
        return rc;
    }
    if (m->streamed) {
        json_t *wrap = json_object();

        if (!wrap || json_object_set_new(wrap, "result", obj) < 0) {
            json_decref(wrap);
            if (errmsg && !*errmsg)
                memprintf(errmsg, "out of memory");
            return -ENOMEM;
        }
        obj = wrap;
    }
    *out = obj;
    return 0;
}

/* ---- framing ---- */

void etcd_grpc_stream_init(struct etcd_grpc_stream *s)
{
    memset(s, 0, sizeof(*s));
}

void etcd_grpc_stream_free(struct etcd_grpc_stream *s)
{
    free(s->buf);
    etcd_grpc_stream_init(s);
}

bool etcd_grpc_stream_partial(const struct etcd_grpc_stream *s)
{
    return s->len > 0;
}

/* Messages in p[0..n): how many bytes were consumed (complete messages). */
static int frames(struct etcd_grpc_stream *s, const unsigned char *p, size_t n, size_t *used,
                  etcd_grpc_msg_cb cb, void *arg)
{
    size_t max = s->max ? s->max : ETCD_GRPC_MAX_MSG, off = 0;

    *used = 0;
    while (n - off >= ETCD_GRPC_PREFIX) {
        uint32_t mlen = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
                        (uint32_t)p[off + 3] << 8 | p[off + 4];
        int rc;

        if (p[off] != 0)
            return -EPROTO; /* compressed (1) or not gRPC at all */
        if (mlen > max)
            return -E2BIG;
        if (n - off - ETCD_GRPC_PREFIX < mlen)
            break;
        rc = cb(p + off + ETCD_GRPC_PREFIX, mlen, arg);
        off += ETCD_GRPC_PREFIX + mlen;
        *used = off;
        if (rc)
            return rc;
    }
    return 0;
}

int etcd_grpc_stream_feed(struct etcd_grpc_stream *s, const void *data, size_t len,
                          etcd_grpc_msg_cb cb, void *arg)
{
    size_t used;
    int rc;

    if (s->len == 0) {
        /* nothing pending: read the messages in place, keep the rest */
        rc = frames(s, data, len, &used, cb, arg);
        if (rc)
            return rc;
        data = (const unsigned char *)data + used;
        len -= used;
        if (len == 0)
            return 0;
    }
    if (vec_reserve(&s->buf, &s->cap, s->len + len, 1, 4096) < 0)
        return -ENOMEM;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    rc = frames(s, s->buf, s->len, &used, cb, arg);
    memmove(s->buf, s->buf + used, s->len - used);
    s->len -= used;
    if (s->len == 0 && s->cap > ((size_t)1 << 20)) {
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    return rc;
}

/* ---- status ---- */

int etcd_grpc_parse_status(const char *value, int *code)
{
    int v = 0;

    if (!value || !*value || strlen(value) > 2)
        return -EINVAL;
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 16)
        return -EINVAL;
    *code = v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *etcd_grpc_message_decode(const char *value)
{
    size_t n = value ? strlen(value) : 0, o = 0;
    char *out = malloc(n + 1);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (value[i] == '%' && i + 2 < n && (hi = hexval(value[i + 1])) >= 0 &&
            (lo = hexval(value[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = value[i];
        }
    }
    out[o] = '\0';
    return out;
}
