/* etcd_grpc - the pure codec of etcd's native gRPC protocol.
 *
 * The etcd client speaks one request language whatever the transport: the
 * JSON gateway's bodies (base64 bytes, int64 as strings, proto field
 * names), and its users decode replies in the gateway's shape with
 * etcd_decode.h. On the gRPC transport this module translates both ways:
 *  - a gateway path ("/v3/kv/range") names a gRPC method
 *    ("/etcdserverpb.KV/Range") and its request and reply messages;
 *  - a gateway request body encodes as the method's protobuf request,
 *    framed for gRPC (1 byte compressed flag, 4 bytes big-endian length);
 *  - a protobuf reply decodes to the object the gateway would have sent
 *    (zero fields omitted, enums by name, streamed replies inside
 *    "result"), so every check etcd_decode makes applies to both.
 * The messages and field numbers are in proto/rpc.proto and proto/kv.proto
 * (etcd's, for the messages slotsync uses). No I/O: tested without a server
 * (tests/test_etcd_grpc.c), fuzzed (tests/fuzz/fuzz_etcd_grpc.c).
 */
#ifndef SLOTSYNC_ETCD_GRPC_H
#define SLOTSYNC_ETCD_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* One gRPC method of etcd's API. */
struct etcd_grpc_method;

/* The method for a gateway path ("/v3/kv/range", "/v3/watch", ...), or NULL
 * for a path this codec does not know. Static, never freed. */
const struct etcd_grpc_method *etcd_grpc_method(const char *gateway_path);
/* Its gRPC path, "/etcdserverpb.KV/Range". Static. */
const char *etcd_grpc_path(const struct etcd_grpc_method *m);
/* Whether its replies come on a stream (Watch, LeaseKeepAlive): the
 * gateway wraps each in {"result": ...}. */
bool etcd_grpc_streamed(const struct etcd_grpc_method *m);

/* The gRPC frame header: 1 byte flag, 4 bytes length. */
#define ETCD_GRPC_PREFIX 5
/* A message longer than this is refused (etcd's own default cap on what it
 * sends is 2 GiB; ours is the client's, as for the gateway). */
#define ETCD_GRPC_MAX_MSG ((size_t)256 << 20)

/* Encode body (a gateway request object, borrowed) as one framed request of
 * method m. *out is new (malloc), *len its size. 0, -EINVAL with *errmsg
 * naming the field (an unknown field, a wrong type, bad base64) or
 * -ENOMEM. */
int etcd_grpc_encode(const struct etcd_grpc_method *m, const json_t *body, char **out,
                     size_t *len, char **errmsg);

/* Decode one reply message of method m (data/len: the message without its
 * frame prefix) to the gateway's object: new reference in *out. 0, -EBADMSG
 * (not a valid protobuf of that type, or a string that is not UTF-8) or
 * -ENOMEM, with *errmsg. */
int etcd_grpc_decode(const struct etcd_grpc_method *m, const void *data, size_t len, json_t **out,
                     char **errmsg);

/* Splits a byte stream into gRPC messages. */
struct etcd_grpc_stream {
    unsigned char *buf;
    size_t len, cap;
    size_t max; /* a longer message is an error; 0 = ETCD_GRPC_MAX_MSG */
};
/* data/len: one message without its prefix, borrowed; non-zero stops. */
typedef int (*etcd_grpc_msg_cb)(const void *data, size_t len, void *arg);
void etcd_grpc_stream_init(struct etcd_grpc_stream *s);
/* Feed bytes; calls cb for each complete message. Returns 0, the
 * callback's non-zero value, -EPROTO for a compressed message (we never
 * offer compression) or a flag byte that is neither 0 nor 1, -E2BIG or
 * -ENOMEM. */
int etcd_grpc_stream_feed(struct etcd_grpc_stream *s, const void *data, size_t len,
                          etcd_grpc_msg_cb cb, void *arg);
/* Bytes of an incomplete message are left. */
bool etcd_grpc_stream_partial(const struct etcd_grpc_stream *s);
void etcd_grpc_stream_free(struct etcd_grpc_stream *s);

/* The value of a grpc-status header or trailer: 0-16 and nothing else.
 * 0, or -EINVAL. */
int etcd_grpc_parse_status(const char *value, int *code);
/* A grpc-message value, percent-decoded (gRPC's encoding of it): new string,
 * NUL-terminated; a bad escape is kept as it is. NULL on ENOMEM. The text is
 * the peer's: quote it before logging. */
char *etcd_grpc_message_decode(const char *value);

#endif
