/* Tests for the gRPC codec: etcd's wire bytes written out by hand (from the
 * field numbers of etcd's rpc.proto and kv.proto), both ways, and what
 * etcd_decode then reads of the translated replies. No server. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rpc.pb-c.h"

#include <slotsync/etcd-t.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/etcd_grpc.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct etcd_grpc_method *method(const char *path)
{
    const struct etcd_grpc_method *m = etcd_grpc_method(path);

    cr_assert(m, "no method for %s", path);
    return m;
}

/* ---- methods ---- */

Test(etcd_grpc, method_table)
{
    static const struct {
        const char *gw, *grpc;
        bool streamed;
    } cases[] = {
        {"/v3/kv/range", "/etcdserverpb.KV/Range", false},
        {"/v3/kv/put", "/etcdserverpb.KV/Put", false},
        {"/v3/kv/deleterange", "/etcdserverpb.KV/DeleteRange", false},
        {"/v3/kv/txn", "/etcdserverpb.KV/Txn", false},
        {"/v3/watch", "/etcdserverpb.Watch/Watch", true},
        {"/v3/lease/grant", "/etcdserverpb.Lease/LeaseGrant", false},
        {"/v3/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", false},
        {"/v3/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive", true},
        {"/v3/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", false},
        {"/v3/auth/authenticate", "/etcdserverpb.Auth/Authenticate", false},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct etcd_grpc_method *m = method(cases[i].gw);

        cr_expect_str_eq(etcd_grpc_path(m), cases[i].grpc);
        cr_expect_eq(etcd_grpc_streamed(m), cases[i].streamed, "%s", cases[i].gw);
    }
    cr_expect_null(etcd_grpc_method("/v3/kv/compaction"));
    cr_expect_null(etcd_grpc_method("/v3/kv/range/"));
    cr_expect_null(etcd_grpc_method(""));
    cr_expect_null(etcd_grpc_method(NULL));
}

/* ---- requests: gateway JSON -> framed protobuf ---- */

struct enc_case {
    const char *path;
    const char *json;
    const char *wire; /* the message without its prefix */
    size_t wire_len;
};

#define W(s) s, sizeof(s) - 1

static const struct enc_case enc_cases[] = {
    /* key "/a" (1), range_end "/b" (2), limit 1000 (3), revision 7 (4),
     * count_only (9) */
    {"/v3/kv/range",
     "{\"key\":\"L2E=\",\"range_end\":\"L2I=\",\"limit\":\"1000\",\"revision\":\"7\","
     "\"count_only\":true}",
     W("\x0a\x02/a\x12\x02/b\x18\xe8\x07\x20\x07\x48\x01")},
    /* numbers as JSON integers are taken too */
    {"/v3/kv/range", "{\"key\":\"L2E=\",\"limit\":5}", W("\x0a\x02/a\x18\x05")},
    /* zero values are not written (proto3) */
    {"/v3/kv/range", "{\"key\":\"L2E=\",\"limit\":\"0\",\"serializable\":false}",
     W("\x0a\x02/a")},
    /* key (1), value (2), lease 0x694d8039afaa0b01 (3) */
    {"/v3/kv/put", "{\"key\":\"L2E=\",\"value\":\"eA==\",\"lease\":\"7587861932437801729\"}",
     W("\x0a\x02/a\x12\x01x\x18\x81\x96\xa8\xfd\x9a\x87\xe0\xa6\x69")},
    /* an empty value stays empty */
    {"/v3/kv/put", "{\"key\":\"L2E=\",\"value\":\"\"}", W("\x0a\x02/a")},
    {"/v3/kv/deleterange", "{\"key\":\"L2E=\"}", W("\x0a\x02/a")},
    /* compare [target MOD (2), key (3), mod_revision 9 (6, oneof)], success
     * [request_delete_range (3) {key}] */
    {"/v3/kv/txn",
     "{\"compare\":[{\"key\":\"L2E=\",\"target\":\"MOD\",\"result\":\"EQUAL\","
     "\"mod_revision\":\"9\"}],\"success\":[{\"request_delete_range\":{\"key\":\"L2E=\"}}]}",
     W("\x0a\x08\x10\x02\x1a\x02/a\x30\x09\x12\x06\x1a\x04\x0a\x02/a")},
    /* a oneof member is written even when it is zero */
    {"/v3/kv/txn", "{\"compare\":[{\"key\":\"L2E=\",\"target\":\"MOD\",\"mod_revision\":\"0\"}]}",
     W("\x0a\x08\x10\x02\x1a\x02/a\x30\x00")},
    /* create_request (1) {key, range_end, start_revision 5, progress_notify} */
    {"/v3/watch",
     "{\"create_request\":{\"key\":\"L2E=\",\"range_end\":\"L2I=\",\"start_revision\":\"5\","
     "\"progress_notify\":true}}",
     W("\x0a\x0c\x0a\x02/a\x12\x02/b\x18\x05\x20\x01")},
    /* the stall detector's check: key, range_end, limit 1, sort_order
     * DESCEND (5: 2), sort_target MOD (6: 3), keys_only (8) */
    {"/v3/kv/range",
     "{\"key\":\"L2E=\",\"range_end\":\"L2I=\",\"limit\":\"1\",\"sort_order\":\"DESCEND\","
     "\"sort_target\":\"MOD\",\"keys_only\":true}",
     W("\x0a\x02/a\x12\x02/b\x18\x01\x28\x02\x30\x03\x40\x01")},
    /* progress_request (3), empty */
    {"/v3/watch", "{\"progress_request\":{}}", W("\x1a\x00")},
    /* cancel_request (2) {watch_id 0}: an empty submessage */
    {"/v3/watch", "{\"cancel_request\":{\"watch_id\":\"0\"}}", W("\x12\x00")},
    {"/v3/lease/grant", "{\"TTL\":\"10\"}", W("\x08\x0a")},
    {"/v3/lease/keepalive", "{\"ID\":\"300\"}", W("\x08\xac\x02")},
    {"/v3/lease/revoke", "{\"ID\":\"-1\"}", W("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
    {"/v3/lease/timetolive", "{\"ID\":\"1\",\"keys\":true}", W("\x08\x01\x10\x01")},
    {"/v3/auth/authenticate", "{\"name\":\"u\",\"password\":\"p w\"}",
     W("\x0a\x01u\x12\x03p w")},
};

Test(etcd_grpc, encode_requests_as_etcd_reads_them)
{
    for (size_t i = 0; i < ARRAY_SIZE(enc_cases); i++) {
        const struct enc_case *c = &enc_cases[i];
        json_t *body = json_loads(c->json, 0, NULL);
        char *out = NULL, *err = NULL;
        size_t len = 0;
        int rc;

        cr_assert(body, "case %zu: bad JSON", i);
        rc = etcd_grpc_encode(method(c->path), body, &out, &len, &err);
        cr_assert_eq(rc, 0, "case %zu (%s): %d %s", i, c->json, rc, err ? err : "");
        cr_assert_eq(len, ETCD_GRPC_PREFIX + c->wire_len, "case %zu: %zu bytes", i, len);
        cr_expect_eq(out[0], 0, "case %zu: compressed flag", i);
        cr_expect_eq((size_t)((uint32_t)(unsigned char)out[1] << 24 |
                              (uint32_t)(unsigned char)out[2] << 16 |
                              (uint32_t)(unsigned char)out[3] << 8 | (unsigned char)out[4]),
                     c->wire_len, "case %zu: length prefix", i);
        cr_expect(memcmp(out + ETCD_GRPC_PREFIX, c->wire, c->wire_len) == 0,
                  "case %zu (%s): wire bytes differ", i, c->json);
        free(out);
        json_decref(body);
    }
}

/* Read back with protobuf-c's own decoder, as a server would. */
Test(etcd_grpc, encoded_watch_create_unpacks)
{
    json_t *body = json_pack("{s:{s:s, s:s, s:s, s:b}}", "create_request", "key", "AP8=",
                             "range_end", "AQ==", "start_revision", "9223372036854775807",
                             "progress_notify", 1);
    char *out;
    size_t len;
    Etcdserverpb__WatchRequest *w;

    cr_assert_eq(etcd_grpc_encode(method("/v3/watch"), body, &out, &len, NULL), 0);
    w = etcdserverpb__watch_request__unpack(NULL, len - ETCD_GRPC_PREFIX,
                                            (uint8_t *)out + ETCD_GRPC_PREFIX);
    cr_assert(w);
    cr_assert_eq(w->request_union_case, ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST);
    cr_expect_eq(w->create_request->key.len, 2);
    cr_expect(memcmp(w->create_request->key.data, "\x00\xff", 2) == 0);
    cr_expect_eq(w->create_request->range_end.len, 1);
    cr_expect_eq(w->create_request->start_revision, INT64_MAX);
    cr_expect(w->create_request->progress_notify);
    etcdserverpb__watch_request__free_unpacked(w, NULL);
    free(out);
    json_decref(body);
}

struct bad_case {
    const char *path;
    const char *json;
    const char *err; /* substring of the message */
};

static const struct bad_case bad_cases[] = {
    {"/v3/kv/range", "{\"key\":\"L2E=\",\"min_mod_revision\":\"3\"}", "min_mod_revision"},
    {"/v3/kv/range", "{\"sort_order\":\"SIDEWAYS\"}", "sort_order"},
    {"/v3/kv/range", "{\"key\":\"not base64!\"}", "key"},
    {"/v3/kv/range", "{\"key\":5}", "key"},
    {"/v3/kv/range", "{\"limit\":true}", "limit"},
    {"/v3/kv/range", "{\"limit\":\"12a\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":\"\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":\"-\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":\" 1\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":\"9223372036854775808\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":\"18446744073709551616\"}", "limit"},
    {"/v3/kv/range", "{\"limit\":1.5}", "limit"},
    {"/v3/kv/range", "{\"count_only\":\"true\"}", "count_only"},
    {"/v3/kv/txn", "{\"compare\":{}}", "compare"},
    {"/v3/kv/txn", "{\"compare\":[{\"target\":\"NEWEST\"}]}", "compare.target"},
    {"/v3/kv/txn", "{\"compare\":[{\"target\":7}]}", "compare.target"},
    {"/v3/kv/txn", "{\"compare\":[5]}", "compare"},
    {"/v3/kv/txn", "{\"success\":[{\"request_put\":{\"key\":\"L2E=\",\"x\":1}}]}",
     "success.request_put.x"},
    {"/v3/watch", "{\"create_request\":[]}", "create_request"},
    {"/v3/auth/authenticate", "{\"name\":1}", "name"},
    {"/v3/kv/range", "[]", "request"},
};

Test(etcd_grpc, encode_refuses_what_it_cannot_say)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        json_t *body = json_loads(c->json, JSON_DECODE_ANY, NULL);
        char *out = (char *)"unchanged", *err = NULL;
        size_t len = 1;

        cr_assert(body, "case %zu: bad JSON", i);
        cr_expect_eq(etcd_grpc_encode(method(c->path), body, &out, &len, &err), -EINVAL,
                     "case %zu (%s)", i, c->json);
        cr_expect_null(out, "case %zu", i);
        cr_expect_eq(len, 0, "case %zu", i);
        cr_expect(err && strstr(err, c->err), "case %zu (%s): message %s", i, c->json,
                  err ? err : "(none)");
        free(err);
        json_decref(body);
    }
}

/* ---- replies: protobuf -> the gateway's JSON ---- */

static json_t *decode(const char *path, const char *wire, size_t len)
{
    json_t *out = NULL;
    char *err = NULL;
    int rc = etcd_grpc_decode(method(path), wire, len, &out, &err);

    cr_assert_eq(rc, 0, "decode %s: %d %s", path, rc, err ? err : "");
    cr_assert_null(err);
    return out;
}

static void expect_json(const json_t *got, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);

    cr_assert(w, "bad expected JSON %s", want);
    cr_expect(json_equal(got, w), "got %s, want %s", g, want);
    free(g);
    json_decref(w);
}

/* header {cluster_id 1, member_id 2, revision 5, raft_term 3} */
#define HDR "\x0a\x08\x08\x01\x10\x02\x18\x05\x20\x03"

Test(etcd_grpc, range_reply_reads_like_the_gateways)
{
    /* kvs [{key "/a", create_revision 4, mod_revision 5, version 1, value
     * "x"}], more, count 1, and an unknown field 15 (skipped) */
    static const char wire[] = HDR "\x12\x0d\x0a\x02/a\x10\x04\x18\x05\x20\x01\x2a\x01x"
                                   "\x18\x01\x20\x01\x78\x01";
    json_t *j = decode("/v3/kv/range", wire, sizeof(wire) - 1);
    struct etcd_range_reply r;
    char *err = NULL;

    expect_json(j, "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"5\","
                   "\"raft_term\":\"3\"},\"kvs\":[{\"key\":\"L2E=\",\"create_revision\":\"4\","
                   "\"mod_revision\":\"5\",\"version\":\"1\",\"value\":\"eA==\"}],"
                   "\"more\":true,\"count\":\"1\"}");
    cr_assert_eq(etcd_parse_range(j, &r, &err), 0, "%s", err ? err : "");
    cr_expect_eq(r.revision, 5);
    cr_expect(r.more);
    cr_assert_eq(r.n_kvs, 1);
    cr_expect_str_eq(r.kvs[0].key, "/a");
    cr_expect_str_eq(r.kvs[0].value, "x");
    cr_expect_eq(r.kvs[0].mod_revision, 5);
    etcd_range_reply_free(&r);
    json_decref(j);
}

Test(etcd_grpc, empty_reply_is_an_empty_object)
{
    json_t *j = decode("/v3/kv/put", "", 0);

    expect_json(j, "{}");
    json_decref(j);
    j = decode("/v3/lease/revoke", HDR, sizeof(HDR) - 1);
    expect_json(j, "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"5\","
                   "\"raft_term\":\"3\"}}");
    json_decref(j);
}

Test(etcd_grpc, watch_events_read_like_the_gateways)
{
    /* header {revision 6}, events [{PUT (0, left out) kv {key "/a",
     * mod_revision 6, value "v"}}, {type DELETE (1), kv {key "/b",
     * mod_revision 6}}] (field 11) */
    static const char wire[] = "\x0a\x02\x18\x06"
                               "\x5a\x0b\x12\x09\x0a\x02/a\x18\x06\x2a\x01v"
                               "\x5a\x0a\x08\x01\x12\x06\x0a\x02/b\x18\x06";
    json_t *j = decode("/v3/watch", wire, sizeof(wire) - 1);
    struct etcd_watch_msg m;
    char *err = NULL;

    expect_json(j, "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":["
                   "{\"kv\":{\"key\":\"L2E=\",\"mod_revision\":\"6\",\"value\":\"dg==\"}},"
                   "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2I=\",\"mod_revision\":\"6\"}}]}}");
    cr_assert_eq(etcd_parse_watch(j, &m, &err), 0, "%s", err ? err : "");
    cr_expect_eq(m.revision, 6);
    cr_assert_eq(m.n_events, 2);
    cr_expect(!m.events[0].deleted);
    cr_expect_str_eq(m.events[0].value, "v");
    cr_expect(m.events[1].deleted);
    cr_expect_str_eq(m.events[1].key, "/b");
    etcd_watch_msg_free(&m);
    json_decref(j);
}

Test(etcd_grpc, watch_control_messages)
{
    static const struct {
        const char *wire;
        size_t len;
        const char *json;
        int64_t watch_id, compact;
        bool created, canceled;
    } cases[] = {
        /* created (3), watch_id 0 */
        {W("\x0a\x02\x18\x02\x18\x01"), "{\"result\":{\"header\":{\"revision\":\"2\"},"
                                        "\"created\":true}}",
         0, 0, true, false},
        /* the answer to a progress_request: watch_id -1 (2) */
        {W("\x0a\x02\x18\x09\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
         "{\"result\":{\"header\":{\"revision\":\"9\"},\"watch_id\":\"-1\"}}", -1, 0, false,
         false},
        /* canceled (4), compact_revision 9 (5) */
        {W("\x0a\x02\x18\x0c\x20\x01\x28\x09"),
         "{\"result\":{\"header\":{\"revision\":\"12\"},\"canceled\":true,"
         "\"compact_revision\":\"9\"}}",
         0, 9, false, true},
        /* canceled with a cancel_reason (6) */
        {W("\x20\x01\x32\x02no"), "{\"result\":{\"canceled\":true,\"cancel_reason\":\"no\"}}", 0,
         0, false, true},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *j = decode("/v3/watch", cases[i].wire, cases[i].len);
        struct etcd_watch_msg m;
        char *err = NULL;

        expect_json(j, cases[i].json);
        cr_assert_eq(etcd_parse_watch(j, &m, &err), 0, "case %zu: %s", i, err ? err : "");
        cr_expect_eq(m.watch_id, cases[i].watch_id, "case %zu", i);
        cr_expect_eq(m.compact_revision, cases[i].compact, "case %zu", i);
        cr_expect_eq(m.created, cases[i].created, "case %zu", i);
        cr_expect_eq(m.canceled, cases[i].canceled, "case %zu", i);
        etcd_watch_msg_free(&m);
        json_decref(j);
    }
}

Test(etcd_grpc, lease_and_auth_replies)
{
    /* LeaseGrant: ID 0x1234 (2), TTL 10 (3) */
    json_t *j = decode("/v3/lease/grant", W("\x10\xb4\x24\x18\x0a"));
    int64_t id = 0, ttl = 0;

    cr_assert_eq(etcd_parse_lease_grant(j, &id, &ttl), 0);
    cr_expect_eq(id, 0x1234);
    cr_expect_eq(ttl, 10);
    json_decref(j);
    /* LeaseKeepAlive is streamed: inside "result", as the gateway has it */
    j = decode("/v3/lease/keepalive", W("\x10\xb4\x24\x18\x07"));
    cr_assert_eq(etcd_parse_lease_keepalive(j, &ttl), 0);
    cr_expect_eq(ttl, 7);
    json_decref(j);
    /* a lease that is gone: TTL 0, left out */
    j = decode("/v3/lease/keepalive", W("\x10\xb4\x24"));
    cr_assert_eq(etcd_parse_lease_keepalive(j, &ttl), 0);
    cr_expect_eq(ttl, 0);
    json_decref(j);
    /* Txn succeeded (2) */
    j = decode("/v3/kv/txn", W("\x10\x01"));
    cr_expect(etcd_txn_succeeded(j));
    json_decref(j);
    j = decode("/v3/kv/txn", W(""));
    cr_expect(!etcd_txn_succeeded(j));
    json_decref(j);
    /* Authenticate: token (2) */
    j = decode("/v3/auth/authenticate", W("\x12\x03t.1"));
    expect_json(j, "{\"token\":\"t.1\"}");
    json_decref(j);
}

Test(etcd_grpc, header_ids_are_unsigned_and_checked_downstream)
{
    /* cluster_id 2^64-1 as a varint */
    json_t *j =
        decode("/v3/kv/range", W("\x0a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"));
    uint64_t id = 0;

    cr_assert_eq(etcd_header_cluster_id(j, &id), 0);
    cr_expect_eq(id, UINT64_MAX);
    json_decref(j);
    /* a negative revision decodes, and etcd_parse_range refuses it */
    {
        struct etcd_range_reply r;
        char *err = NULL;

        j = decode("/v3/kv/range",
                   W("\x0a\x0b\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"));
        cr_expect_eq(etcd_parse_range(j, &r, &err), -ERANGE);
        free(err);
        json_decref(j);
    }
}

Test(etcd_grpc, malformed_replies_are_refused)
{
    static const struct {
        const char *path, *wire;
        size_t len;
    } cases[] = {
        {"/v3/kv/range", W("\x0a\x08\x08")},             /* header cut short */
        {"/v3/kv/range", W("\x12\x05\x0a\x09/a")},        /* kv key longer than kv */
        {"/v3/kv/range", W("\x20")},                      /* varint missing */
        {"/v3/kv/range", W("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")}, /* 11 bytes */
        {"/v3/kv/range", W("\x0f")},                      /* wire type 7 */
        {"/v3/watch", W("\x32\x02\xff\xfe")},             /* cancel_reason not UTF-8 */
        {"/v3/auth/authenticate", W("\x12\x01\x80")},     /* token not UTF-8 */
        {"/v3/watch", W("\x5a\x03\x12\x05\x0a")},         /* nested length overruns */
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *out = (json_t *)1;
        char *err = NULL;

        cr_expect_eq(etcd_grpc_decode(method(cases[i].path), cases[i].wire, cases[i].len, &out,
                                      &err),
                     -EBADMSG, "case %zu", i);
        cr_expect_null(out, "case %zu", i);
        cr_expect(err, "case %zu: no message", i);
        free(err);
    }
}

/* ---- framing ---- */

struct got {
    char msgs[8][16];
    size_t lens[8];
    size_t n;
    int stop_at; /* return 7 on this message; -1 never */
};

static int on_msg(const void *data, size_t len, void *arg)
{
    struct got *g = arg;

    cr_assert_lt(g->n, 8);
    cr_assert_leq(len, 16);
    memcpy(g->msgs[g->n], data, len);
    g->lens[g->n] = len;
    g->n++;
    return g->stop_at >= 0 && (size_t)g->stop_at == g->n - 1 ? 7 : 0;
}

static const char two_frames[] = "\0\0\0\0\x03"
                                 "abc"
                                 "\0\0\0\0\x00"
                                 "\0\0\0\0\x02"
                                 "de";

static void expect_three(const struct got *g)
{
    cr_assert_eq(g->n, 3);
    cr_expect_eq(g->lens[0], 3);
    cr_expect(memcmp(g->msgs[0], "abc", 3) == 0);
    cr_expect_eq(g->lens[1], 0);
    cr_expect_eq(g->lens[2], 2);
    cr_expect(memcmp(g->msgs[2], "de", 2) == 0);
}

Test(etcd_grpc_stream, whole_and_byte_by_byte_give_the_same_messages)
{
    struct etcd_grpc_stream s;
    struct got g = {.stop_at = -1};

    etcd_grpc_stream_init(&s);
    cr_assert_eq(etcd_grpc_stream_feed(&s, two_frames, sizeof(two_frames) - 1, on_msg, &g), 0);
    expect_three(&g);
    cr_expect(!etcd_grpc_stream_partial(&s));
    etcd_grpc_stream_free(&s);

    memset(&g, 0, sizeof(g));
    g.stop_at = -1;
    etcd_grpc_stream_init(&s);
    for (size_t i = 0; i < sizeof(two_frames) - 1; i++) {
        cr_assert_eq(etcd_grpc_stream_feed(&s, two_frames + i, 1, on_msg, &g), 0);
        if (i == 2)
            cr_expect(etcd_grpc_stream_partial(&s));
    }
    expect_three(&g);
    cr_expect(!etcd_grpc_stream_partial(&s));
    etcd_grpc_stream_free(&s);
}

Test(etcd_grpc_stream, split_prefix_and_leftover)
{
    struct etcd_grpc_stream s;
    struct got g = {.stop_at = -1};

    etcd_grpc_stream_init(&s);
    /* the first message and half of the second's prefix */
    cr_assert_eq(etcd_grpc_stream_feed(&s, two_frames, 10, on_msg, &g), 0);
    cr_expect_eq(g.n, 1);
    cr_expect(etcd_grpc_stream_partial(&s));
    cr_assert_eq(etcd_grpc_stream_feed(&s, two_frames + 10, sizeof(two_frames) - 11, on_msg, &g),
                 0);
    expect_three(&g);
    etcd_grpc_stream_free(&s);
}

Test(etcd_grpc_stream, callback_stops_the_feed)
{
    struct etcd_grpc_stream s;
    struct got g = {.stop_at = 0};

    etcd_grpc_stream_init(&s);
    cr_expect_eq(etcd_grpc_stream_feed(&s, two_frames, sizeof(two_frames) - 1, on_msg, &g), 7);
    cr_expect_eq(g.n, 1);
    etcd_grpc_stream_free(&s);
    /* same when the message came through the buffer */
    memset(&g, 0, sizeof(g));
    g.stop_at = 1;
    etcd_grpc_stream_init(&s);
    cr_assert_eq(etcd_grpc_stream_feed(&s, two_frames, 7, on_msg, &g), 0);
    cr_expect_eq(etcd_grpc_stream_feed(&s, two_frames + 7, sizeof(two_frames) - 8, on_msg, &g),
                 7);
    cr_expect_eq(g.n, 2);
    etcd_grpc_stream_free(&s);
}

Test(etcd_grpc_stream, refuses_compression_bad_flags_and_oversize)
{
    struct etcd_grpc_stream s;
    struct got g = {.stop_at = -1};

    etcd_grpc_stream_init(&s);
    cr_expect_eq(etcd_grpc_stream_feed(&s, "\x01\0\0\0\x01z", 6, on_msg, &g), -EPROTO);
    etcd_grpc_stream_free(&s);
    etcd_grpc_stream_init(&s);
    cr_expect_eq(etcd_grpc_stream_feed(&s, "\x80\0\0\0\x00", 5, on_msg, &g), -EPROTO);
    etcd_grpc_stream_free(&s);
    /* HTTP/1.1 text where gRPC was expected */
    etcd_grpc_stream_init(&s);
    cr_expect_eq(etcd_grpc_stream_feed(&s, "404 page not found", 18, on_msg, &g), -EPROTO);
    etcd_grpc_stream_free(&s);
    etcd_grpc_stream_init(&s);
    s.max = 4;
    cr_expect_eq(etcd_grpc_stream_feed(&s, "\0\0\0\0\x05", 5, on_msg, &g), -E2BIG);
    etcd_grpc_stream_free(&s);
    /* the default cap: a 4 GiB length is refused before anything is read */
    etcd_grpc_stream_init(&s);
    cr_expect_eq(etcd_grpc_stream_feed(&s, "\0\xff\xff\xff\xff", 5, on_msg, &g), -E2BIG);
    etcd_grpc_stream_free(&s);
    cr_expect_eq(g.n, 0);
}

/* ---- status and message ---- */

Test(etcd_grpc, status_values)
{
    static const struct {
        const char *v;
        int rc, code;
    } cases[] = {
        {"0", 0, 0},         {"1", 0, 1},         {"14", 0, 14},      {"16", 0, 16},
        {"17", -EINVAL, 0},  {"", -EINVAL, 0},    {"1a", -EINVAL, 0}, {"-1", -EINVAL, 0},
        {"007", -EINVAL, 0}, {" 1", -EINVAL, 0},  {"99", -EINVAL, 0}, {NULL, -EINVAL, 0},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int code = -5;

        cr_expect_eq(etcd_grpc_parse_status(cases[i].v, &code), cases[i].rc, "case %zu", i);
        if (cases[i].rc == 0)
            cr_expect_eq(code, cases[i].code, "case %zu", i);
    }
}

Test(etcd_grpc, message_percent_decoding)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"etcdserver: no leader", "etcdserver: no leader"},
        {"etcdserver%3A%20mvcc%3a required", "etcdserver: mvcc: required"},
        {"100%", "100%"},
        {"%4", "%4"},
        {"%zz%41", "%zzA"},
        {"", ""},
        {"%E2%9C%93", "\xe2\x9c\x93"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *s = etcd_grpc_message_decode(cases[i].in);

        cr_assert(s);
        cr_expect_str_eq(s, cases[i].out, "case %zu", i);
        free(s);
    }
    {
        char *s = etcd_grpc_message_decode(NULL);

        cr_assert(s);
        cr_expect_str_eq(s, "");
        free(s);
    }
}
