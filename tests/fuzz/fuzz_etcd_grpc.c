/* fuzz_etcd_grpc - the gRPC codec (etcd_grpc.c): framing, replies, requests.
 *
 * The input is a byte stream as a Watch (or any) gRPC reply would send it.
 * Oracles: fed in chunks it gives the same messages and the same result as
 * fed whole; each message either decodes to a JSON object for every reply
 * type, or is refused with a message; a decoded watch message either parses
 * (etcd_parse_watch) or is refused, never half-read; every string decoded
 * is valid UTF-8 JSON. The input is also read as a JSON request body for
 * every method: what encodes is well framed and unpacks with protobuf-c as
 * the request type. */
#include <stdbool.h>

#include <jansson.h>

#include <slotsync/etcd-t.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/etcd_grpc.h>

#include "fuzz.h"

static const char *const paths[] = {
    "/v3/kv/range",
    "/v3/kv/put",
    "/v3/kv/deleterange",
    "/v3/kv/txn",
    "/v3/watch",
    "/v3/lease/grant",
    "/v3/lease/revoke",
    "/v3/lease/keepalive",
    "/v3/lease/timetolive",
    "/v3/auth/authenticate",
};
#define N_PATHS (sizeof(paths) / sizeof(paths[0]))

struct seen {
    size_t n;
    uint32_t sum; /* hash of every message's bytes, in order */
};

static int on_msg(const void *data, size_t len, void *arg)
{
    struct seen *s = arg;
    const unsigned char *p = data;

    s->n++;
    for (size_t i = 0; i < len; i++)
        s->sum = (s->sum ^ p[i]) * 16777619u;
    s->sum = (s->sum ^ (uint32_t)len) * 16777619u;
    if (!arg || s->n > 1) /* decode only the whole feed's first messages */
        return 0;
    for (size_t k = 0; k < N_PATHS; k++) {
        json_t *j = NULL;
        char *err = NULL;
        int rc = etcd_grpc_decode(etcd_grpc_method(paths[k]), data, len, &j, &err);

        if (rc == 0) {
            char *dump = json_dumps(j, JSON_COMPACT);

            FUZZ_ASSERT(json_is_object(j), "not an object");
            FUZZ_ASSERT(dump, "dump");
            free(dump);
            if (k == 4) {
                struct etcd_watch_msg m;
                char *werr = NULL;

                memset(&m, 0, sizeof(m));
                if (etcd_parse_watch(j, &m, &werr) == 0)
                    etcd_watch_msg_free(&m);
                else
                    FUZZ_ASSERT(werr, "watch refused without a message");
                free(werr);
            }
        } else {
            FUZZ_ASSERT(rc == -EBADMSG || rc == -ENOMEM, "decode gave %d", rc);
            FUZZ_ASSERT(err, "refused without a message");
            FUZZ_ASSERT(!j, "refused but gave a reply");
        }
        json_decref(j);
        free(err);
    }
    return 0;
}

static void requests(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);

    if (!body)
        return;
    for (size_t k = 0; k < N_PATHS; k++) {
        char *out = NULL, *err = NULL;
        size_t len = 0;
        int rc = etcd_grpc_encode(etcd_grpc_method(paths[k]), body, &out, &len, &err);

        if (rc == 0) {
            uint32_t n;

            FUZZ_ASSERT(len >= ETCD_GRPC_PREFIX && out[0] == 0, "bad frame");
            n = (uint32_t)(unsigned char)out[1] << 24 | (uint32_t)(unsigned char)out[2] << 16 |
                (uint32_t)(unsigned char)out[3] << 8 | (unsigned char)out[4];
            FUZZ_ASSERT(n == len - ETCD_GRPC_PREFIX, "length prefix %u for %zu", n, len);
        } else {
            FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM || rc == -E2BIG, "encode gave %d", rc);
            FUZZ_ASSERT(!out && len == 0, "refused but gave bytes");
        }
        free(out);
        free(err);
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole = {0}, chunked = {0};
    struct etcd_grpc_stream s;
    uint32_t h = 2166136261u;
    size_t off = 0;
    int rw, rc = 0;

    etcd_grpc_stream_init(&s);
    rw = etcd_grpc_stream_feed(&s, data, size, on_msg, &whole);
    etcd_grpc_stream_free(&s);

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    etcd_grpc_stream_init(&s);
    chunked.n = 2; /* do not decode again */
    while (off < size && rc == 0) {
        size_t n;

        h ^= h << 13;
        h ^= h >> 17;
        h ^= h << 5;
        n = 1 + h % (h & 1 ? 7 : 97);
        if (n > size - off)
            n = size - off;
        rc = etcd_grpc_stream_feed(&s, data + off, n, on_msg, &chunked);
        off += n;
    }
    etcd_grpc_stream_free(&s);
    FUZZ_ASSERT(rw == rc, "whole gave %d, chunks gave %d", rw, rc);
    FUZZ_ASSERT(whole.n + 2 == chunked.n, "whole gave %zu messages, chunks %zu", whole.n,
                chunked.n - 2);
    FUZZ_ASSERT(whole.sum == chunked.sum, "messages differ");

    /* the raw input as one message, too */
    on_msg(data, size, &(struct seen){0});
    requests(data, size);
    return 0;
}
