/* Tests for the etcd client: table-driven decoder cases, and one I/O test
 * against a real etcd started on free 127.0.0.1 ports (skipped without
 * /usr/bin/etcd), reached partly through a small TCP proxy on the loop that
 * can hold traffic back or cut connections. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <ev.h>
#include <jansson.h>

#include <slotsync/etcd.h>
#include <slotsync/http.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- base64 ---- */

struct b64_case {
    const char *raw;
    size_t raw_len;
    const char *b64;
};

static const struct b64_case b64_cases[] = {
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    {"/svc/a", 6, "L3N2Yy9h"},
    {"\0b\0", 3, "AGIA"},
    {"\xff\xfe\xfd", 3, "//79"},
    {"\xfb\xff", 2, "+/8="},
};

Test(etcd_b64, round_trips)
{
    for (size_t i = 0; i < ARRAY_SIZE(b64_cases); i++) {
        const struct b64_case *c = &b64_cases[i];
        char *enc, *dec;
        size_t enc_len, dec_len;

        cr_assert_eq(etcd_b64_encode(c->raw, c->raw_len, &enc, &enc_len), 0, "case %zu", i);
        cr_assert_str_eq(enc, c->b64, "case %zu", i);
        cr_assert_eq(enc_len, strlen(c->b64));
        cr_assert_eq(etcd_b64_decode(enc, enc_len, &dec, &dec_len), 0, "case %zu", i);
        cr_assert_eq(dec_len, c->raw_len, "case %zu", i);
        cr_assert_eq(memcmp(dec, c->raw, dec_len), 0, "case %zu", i);
        cr_assert_eq(dec[dec_len], '\0', "NUL-terminated");
        free(enc);
        free(dec);
    }
}

Test(etcd_b64, every_byte_every_length)
{
    unsigned char raw[300];

    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof(raw); len++) {
        char *enc, *dec;
        size_t enc_len, dec_len;

        cr_assert_eq(etcd_b64_encode(raw, len, &enc, &enc_len), 0);
        cr_assert_eq(enc_len % 4, 0);
        cr_assert_eq(etcd_b64_decode(enc, enc_len, &dec, &dec_len), 0, "len %zu", len);
        cr_assert_eq(dec_len, len);
        cr_assert_eq(memcmp(dec, raw, len), 0);
        free(enc);
        free(dec);
    }
}

Test(etcd_b64, rejects)
{
    static const char *const bad[] = {
        "Zg",       /* length not a multiple of 4 */
        "Zg=",      /* idem */
        "Zm9vY",    /* idem */
        "Z===",     /* three pads */
        "====",     /* only pads */
        "Zm9v!A==", /* bad character */
        "Zm-_",     /* URL-safe alphabet */
        "Zm\n9v",   /* whitespace */
        " Zg=",     /* whitespace */
        "Zg==Zg==", /* padding in the middle */
        "Z=g=",     /* padding before data */
        "Zh==",     /* non-zero unused bits */
        "Zm9=",     /* idem, one pad */
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *out = (char *)1;
        size_t len;

        cr_assert_eq(etcd_b64_decode(bad[i], strlen(bad[i]), &out, &len), -EINVAL, "\"%s\"",
                     bad[i]);
        cr_assert_eq(out, (char *)1, "output untouched on error");
    }
}

/* ---- prefix range end ---- */

struct prefix_case {
    const char *prefix;
    size_t len;
    const char *end;
    size_t end_len;
};

static const struct prefix_case prefix_cases[] = {
    {"/svc/", 5, "/svc0", 5},
    {"a", 1, "b", 1},
    {"a\xff", 2, "b", 1},
    {"a\xff\xff", 3, "b", 1},
    {"a\x01\xff", 3, "a\x02", 2},
    {"\xfe", 1, "\xff", 1},
    {"\xff", 1, "\0", 1},
    {"\xff\xff", 2, "\0", 1},
    {"", 0, "\0", 1},
};

Test(etcd_prefix, range_end)
{
    for (size_t i = 0; i < ARRAY_SIZE(prefix_cases); i++) {
        const struct prefix_case *c = &prefix_cases[i];
        size_t len = 99;
        char *end = etcd_prefix_range_end(c->prefix, c->len, &len);

        cr_assert_not_null(end);
        cr_assert_eq(len, c->end_len, "case %zu", i);
        cr_assert_eq(memcmp(end, c->end, len), 0, "case %zu", i);
        cr_assert_eq(end[len], '\0');
        free(end);
    }
}

/* ---- int64 fields ---- */

struct int64_case {
    const char *json;
    int rc;
    int64_t value;
};

static const struct int64_case int64_cases[] = {
    {"{\"f\":\"12\"}", 0, 12},
    {"{\"f\":12}", 0, 12},
    {"{}", 0, 0},
    {"{\"f\":\"0\"}", 0, 0},
    {"{\"f\":\"-5\"}", 0, -5},
    {"{\"f\":-5}", 0, -5},
    {"{\"f\":\"007\"}", 0, 7},
    {"{\"f\":\"9223372036854775807\"}", 0, INT64_MAX},
    {"{\"f\":\"-9223372036854775808\"}", 0, INT64_MIN},
    {"{\"f\":\"9223372036854775808\"}", -EINVAL, 0},
    {"{\"f\":\"-9223372036854775809\"}", -EINVAL, 0},
    {"{\"f\":\"99999999999999999999999\"}", -EINVAL, 0},
    {"{\"f\":\"12x\"}", -EINVAL, 0},
    {"{\"f\":\"x12\"}", -EINVAL, 0},
    {"{\"f\":\"\"}", -EINVAL, 0},
    {"{\"f\":\"-\"}", -EINVAL, 0},
    {"{\"f\":\" 1\"}", -EINVAL, 0},
    {"{\"f\":\"+1\"}", -EINVAL, 0},
    {"{\"f\":\"1.0\"}", -EINVAL, 0},
    {"{\"f\":1.5}", -EINVAL, 0},
    {"{\"f\":null}", -EINVAL, 0},
    {"{\"f\":true}", -EINVAL, 0},
    {"{\"f\":[1]}", -EINVAL, 0},
};

Test(etcd_json, int64_fields)
{
    for (size_t i = 0; i < ARRAY_SIZE(int64_cases); i++) {
        const struct int64_case *c = &int64_cases[i];
        json_t *j = json_loads(c->json, 0, NULL);
        int64_t v = 42;

        cr_assert_not_null(j, "%s", c->json);
        cr_assert_eq(etcd_json_int64(j, "f", &v), c->rc, "%s", c->json);
        if (c->rc == 0)
            cr_assert_eq(v, c->value, "%s: %" PRId64, c->json, v);
        json_decref(j);
    }
}

Test(etcd_json, int64_not_an_object)
{
    json_t *j = json_string("12");
    int64_t v;

    cr_assert_eq(etcd_json_int64(j, "f", &v), -EINVAL);
    json_decref(j);
}

/* ---- range replies ---- */

#define HDR(rev) "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"" rev "\"}"

struct range_case {
    const char *name;
    const char *json;
    int rc;
    int64_t revision, count;
    bool more;
    size_t n_kvs;
    const char *key0;
    const char *value0;
    size_t value0_len;
    int64_t mod0;
};

static const struct range_case range_cases[] = {
    {"no kvs", "{" HDR("7") ",\"count\":\"0\"}", 0, 7, 0, false, 0, NULL, NULL, 0, 0},
    {"no kvs, no count", "{" HDR("7") "}", 0, 7, 0, false, 0, NULL, NULL, 0, 0},
    {"one kv",
     "{" HDR("2") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"create_revision\":\"2\",\"mod_revision\":"
                  "\"2\",\"version\":\"1\",\"value\":\"MTI3LjAuMC4x\"}],\"count\":\"1\"}",
     0, 2, 1, false, 1, "/svc/a", "127.0.0.1", 9, 2},
    {"more true",
     "{" HDR("9") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"mod_revision\":\"3\",\"value\":\"eA==\","
                  "\"lease\":\"77\"}],\"more\":true,\"count\":\"5\"}",
     0, 9, 5, true, 1, "/svc/a", "x", 1, 3},
    {"more false", "{" HDR("9") ",\"more\":false}", 0, 9, 0, false, 0, NULL, NULL, 0, 0},
    {"missing value is empty",
     "{" HDR("4") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"mod_revision\":\"4\"}],\"count\":\"1\"}", 0, 4,
     1, false, 1, "/svc/a", "", 0, 4},
    {"value with NUL bytes",
     "{" HDR("4") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"mod_revision\":\"4\",\"value\":\"AGIA\"}]}", 0,
     4, 0, false, 1, "/svc/a", "\0b\0", 3, 4},
    {"two kvs",
     "{" HDR("5") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"value\":\"eA==\",\"mod_revision\":\"2\"},"
                  "{\"key\":\"L3N2Yy9i\",\"value\":\"eQ==\",\"mod_revision\":\"5\"}],"
                  "\"count\":\"2\"}",
     0, 5, 2, false, 2, "/svc/a", "x", 1, 2},
    {"bad base64 key", "{" HDR("4") ",\"kvs\":[{\"key\":\"L3N2Yy9\"}]}", .rc = -EINVAL},
    {"bad base64 value", "{" HDR("4") ",\"kvs\":[{\"key\":\"L3N2Yy9h\",\"value\":\"e!==\"}]}",
     .rc = -EINVAL},
    {"missing key", "{" HDR("4") ",\"kvs\":[{\"value\":\"eA==\"}]}", .rc = -EINVAL},
    {"kvs not an array", "{" HDR("4") ",\"kvs\":{}}", .rc = -EINVAL},
    {"kv not an object", "{" HDR("4") ",\"kvs\":[\"x\"]}", .rc = -EINVAL},
    {"bad count", "{" HDR("4") ",\"count\":\"lots\"}", .rc = -EINVAL},
    {"bad revision", "{" HDR("4x") "}", .rc = -EINVAL},
    {"bad more", "{" HDR("4") ",\"more\":\"true\"}", .rc = -EINVAL},
    {"bad mod_revision", "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\",\"mod_revision\":\"z\"}]}",
     .rc = -EINVAL},
    {"not an object", "[]", .rc = -EINVAL},
    /* revisions: 0 < rev < INT64_MAX where they enter */
    {"highest revision", "{" HDR("9223372036854775806") "}", 0, INT64_MAX - 1, 0, false, 0, NULL,
     NULL, 0, 0},
    {"revision INT64_MAX", "{" HDR("9223372036854775807") "}", .rc = -ERANGE},
    {"negative revision", "{" HDR("-3") "}", .rc = -ERANGE},
    {"mod_revision INT64_MAX",
     "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\",\"mod_revision\":\"9223372036854775807\"}]}",
     .rc = -ERANGE},
    {"mod_revision missing", "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\"}]}", .rc = -ERANGE},
    {"mod_revision negative", "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\",\"mod_revision\":\"-1\"}]}",
     .rc = -ERANGE},
};

Test(etcd_parse, range_replies)
{
    for (size_t i = 0; i < ARRAY_SIZE(range_cases); i++) {
        const struct range_case *c = &range_cases[i];
        json_t *j = json_loads(c->json, 0, NULL);
        struct etcd_range_reply r;
        char *errmsg = NULL;
        int rc;

        cr_assert_not_null(j, "%s: test JSON", c->name);
        rc = etcd_parse_range(j, &r, &errmsg);
        cr_assert_eq(rc, c->rc, "%s: rc %d", c->name, rc);
        if (rc < 0) {
            cr_assert_not_null(errmsg, "%s: errmsg", c->name);
            cr_assert_null(r.kvs, "%s: cleared on error", c->name);
        } else {
            cr_assert_eq(r.revision, c->revision, "%s", c->name);
            cr_assert_eq(r.count, c->count, "%s", c->name);
            cr_assert_eq(r.more, c->more, "%s", c->name);
            cr_assert_eq(r.n_kvs, c->n_kvs, "%s", c->name);
            if (c->n_kvs > 0) {
                cr_assert_str_eq(r.kvs[0].key, c->key0, "%s", c->name);
                cr_assert_eq(r.kvs[0].key_len, strlen(c->key0));
                cr_assert_not_null(r.kvs[0].value, "%s", c->name);
                cr_assert_eq(r.kvs[0].value_len, c->value0_len, "%s", c->name);
                cr_assert_eq(memcmp(r.kvs[0].value, c->value0, c->value0_len), 0);
                cr_assert_eq(r.kvs[0].value[c->value0_len], '\0');
                cr_assert_eq(r.kvs[0].mod_revision, c->mod0, "%s", c->name);
                cr_assert_eq(r.kvs[0].deleted, false);
            }
        }
        etcd_range_reply_free(&r);
        free(errmsg);
        json_decref(j);
    }
}

Test(etcd_parse, range_lease)
{
    json_t *j = json_loads(range_cases[3].json, 0, NULL);
    struct etcd_range_reply r;

    cr_assert_eq(etcd_parse_range(j, &r, NULL), 0);
    cr_assert_eq(r.kvs[0].lease, 77);
    etcd_range_reply_free(&r);
    json_decref(j);
}

/* ---- watch messages ---- */

#define WHDR(rev)                                                                                  \
    "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"" rev                     \
    "\",\"raft_term\":\"2\"}"
#define WHDR_NOREV "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":\"2\"}"

struct watch_event_expect {
    const char *key;
    const char *value; /* NULL: a delete */
    int64_t mod_revision;
};

struct watch_case {
    const char *name;
    const char *json;
    int rc;
    int64_t revision;
    bool created, canceled, error;
    int64_t compact_revision;
    int error_code;
    const char *text; /* cancel_reason or error_message */
    size_t n_events;
    struct watch_event_expect ev[2];
};

static const struct watch_case watch_cases[] = {
    {"created", "{\"result\":{" WHDR("2") ",\"created\":true}}", 0, 2, .created = true},
    {"progress", "{\"result\":{" WHDR("8") "}}", 0, 8, .created = false},
    {"put without type",
     "{\"result\":{" WHDR(
         "3") ",\"events\":[{\"kv\":{\"key\":\"L3N2Yy9h\",\"create_revision\":"
              "\"3\",\"mod_revision\":\"3\",\"version\":\"1\",\"value\":\"MTI3LjAuMC4x\"}}]}}",
     0, 3, .n_events = 1, .ev = {{"/svc/a", "127.0.0.1", 3}}},
    {"put with type",
     "{\"result\":{" WHDR("3") ",\"events\":[{\"type\":\"PUT\",\"kv\":{\"key\":\"L3N2Yy9h\","
                               "\"mod_revision\":\"3\"}}]}}",
     0, 3, .n_events = 1, .ev = {{"/svc/a", "", 3}}},
    {"delete",
     "{\"result\":{" WHDR("4") ",\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3N2Yy9h\","
                               "\"mod_revision\":\"4\"}}]}}",
     0, 4, .n_events = 1, .ev = {{"/svc/a", NULL, 4}}},
    {"several events",
     "{\"result\":{" WHDR("6") ",\"events\":[{\"kv\":{\"key\":\"L3N2Yy9i\",\"mod_revision\":\"5\","
                               "\"value\":\"eQ==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
                               "\"L3N2Yy9h\",\"mod_revision\":"
                               "\"6\"}}]}}",
     0, 6, .n_events = 2, .ev = {{"/svc/b", "y", 5}, {"/svc/a", NULL, 6}}},
    {"compaction cancel",
     "{\"result\":{" WHDR_NOREV ",\"canceled\":true,\"compact_revision\":\"3\"}}", 0, 0,
     .canceled = true, .compact_revision = 3},
    {"cancel with reason",
     "{\"result\":{" WHDR("5") ",\"canceled\":true,\"cancel_reason\":\"gone\"}}", 0, 5,
     .canceled = true, .text = "gone"},
    {"error object",
     "{\"error\":\"etcdserver: mvcc: required revision has been compacted\",\"message\":"
     "\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}",
     0, .error = true, .error_code = 11,
     .text = "etcdserver: mvcc: required revision has been compacted"},
    {"stream error object",
     "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"no leader\",\"http_status\":"
     "\"Service Unavailable\"}}",
     0, .error = true, .error_code = 14, .text = "no leader"},
    {"no result", "{\"header\":{}}", .rc = -EINVAL},
    {"result not an object", "{\"result\":[]}", .rc = -EINVAL},
    {"bad type",
     "{\"result\":{" WHDR("4") ",\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"eA==\"}}]}}",
     .rc = -EINVAL},
    {"event without kv", "{\"result\":{" WHDR("4") ",\"events\":[{}]}}", .rc = -EINVAL},
    {"bad key", "{\"result\":{" WHDR("4") ",\"events\":[{\"kv\":{\"key\":\"e\"}}]}}",
     .rc = -EINVAL},
    {"bad created", "{\"result\":{" WHDR("4") ",\"created\":\"yes\"}}", .rc = -EINVAL},
    {"bad compact_revision", "{\"result\":{\"canceled\":true,\"compact_revision\":\"x\"}}",
     .rc = -EINVAL},
    {"bad error", "{\"error\":5}", .rc = -EINVAL},
    {"event mod_revision INT64_MAX",
     "{\"result\":{" WHDR("4") ",\"events\":[{\"kv\":{\"key\":\"eA==\",\"mod_revision\":"
                               "\"9223372036854775807\"}}]}}",
     .rc = -ERANGE},
    {"event mod_revision 0",
     "{\"result\":{" WHDR("4") ",\"events\":[{\"kv\":{\"key\":\"eA==\",\"mod_revision\":"
                               "\"0\"}}]}}",
     .rc = -ERANGE},
    {"header revision INT64_MAX", "{\"result\":{" WHDR("9223372036854775807") "}}", .rc = -ERANGE},
    {"compact_revision INT64_MAX",
     "{\"result\":{\"canceled\":true,\"compact_revision\":\"9223372036854775807\"}}",
     .rc = -ERANGE},
    {"negative compact_revision", "{\"result\":{\"canceled\":true,\"compact_revision\":\"-2\"}}",
     .rc = -ERANGE},
};

Test(etcd_parse, watch_messages)
{
    for (size_t i = 0; i < ARRAY_SIZE(watch_cases); i++) {
        const struct watch_case *c = &watch_cases[i];
        json_t *j = json_loads(c->json, 0, NULL);
        struct etcd_watch_msg m;
        char *errmsg = NULL;
        int rc;

        cr_assert_not_null(j, "%s: test JSON", c->name);
        rc = etcd_parse_watch(j, &m, &errmsg);
        cr_assert_eq(rc, c->rc, "%s: rc %d", c->name, rc);
        if (rc < 0) {
            cr_assert_not_null(errmsg, "%s", c->name);
            cr_assert_null(m.events);
        } else {
            cr_assert_eq(m.revision, c->revision, "%s", c->name);
            cr_assert_eq(m.created, c->created, "%s", c->name);
            cr_assert_eq(m.canceled, c->canceled, "%s", c->name);
            cr_assert_eq(m.error, c->error, "%s", c->name);
            cr_assert_eq(m.compact_revision, c->compact_revision, "%s", c->name);
            if (c->error) {
                cr_assert_eq(m.error_code, c->error_code, "%s", c->name);
                cr_assert_str_eq(m.error_message, c->text, "%s", c->name);
            } else if (c->text) {
                cr_assert_str_eq(m.cancel_reason, c->text, "%s", c->name);
            }
            cr_assert_eq(m.n_events, c->n_events, "%s", c->name);
            for (size_t e = 0; e < c->n_events; e++) {
                const struct etcd_kv *kv = &m.events[e];

                cr_assert_str_eq(kv->key, c->ev[e].key, "%s", c->name);
                cr_assert_eq(kv->mod_revision, c->ev[e].mod_revision, "%s", c->name);
                if (c->ev[e].value) {
                    cr_assert_eq(kv->deleted, false, "%s", c->name);
                    cr_assert_str_eq(kv->value, c->ev[e].value, "%s", c->name);
                } else {
                    cr_assert_eq(kv->deleted, true, "%s", c->name);
                    cr_assert_null(kv->value, "%s", c->name);
                }
            }
        }
        etcd_watch_msg_free(&m);
        free(errmsg);
        json_decref(j);
    }
}

/* ---- cluster id ---- */

struct cluster_id_case {
    const char *json;
    int rc;
    uint64_t id;
};

static const struct cluster_id_case cluster_id_cases[] = {
    {"{\"header\":{\"cluster_id\":\"11499885844451628656\"}}", 0, 11499885844451628656ULL},
    {"{\"header\":{\"cluster_id\":\"18446744073709551615\"}}", 0, UINT64_MAX},
    {"{\"header\":{\"cluster_id\":42}}", 0, 42},
    {"{\"header\":{}}", 0, 0},
    {"{}", 0, 0},
    {"{\"header\":{\"cluster_id\":\"18446744073709551616\"}}", -EINVAL, 0},
    {"{\"header\":{\"cluster_id\":\"-1\"}}", -EINVAL, 0},
    {"{\"header\":{\"cluster_id\":\"\"}}", -EINVAL, 0},
    {"{\"header\":{\"cluster_id\":true}}", -EINVAL, 0},
};

Test(etcd_parse, cluster_id)
{
    for (size_t i = 0; i < ARRAY_SIZE(cluster_id_cases); i++) {
        const struct cluster_id_case *c = &cluster_id_cases[i];
        json_t *j = json_loads(c->json, 0, NULL);
        uint64_t id = 7;

        cr_assert_not_null(j);
        cr_assert_eq(etcd_header_cluster_id(j, &id), c->rc, "%s", c->json);
        if (c->rc == 0)
            cr_assert_eq(id, c->id, "%s", c->json);
        json_decref(j);
    }
}

/* ---- stream splitter ---- */

struct collect {
    char seen[8][64];
    size_t n;
    size_t stop_after; /* 0 = never */
};

static int collect_cb(json_t *msg, void *arg)
{
    struct collect *c = arg;
    const json_t *id = json_object_get(msg, "id");

    cr_assert(json_is_object(msg));
    cr_assert_lt(c->n, ARRAY_SIZE(c->seen));
    snprintf(c->seen[c->n], sizeof(c->seen[0]), "%s",
             json_is_string(id) ? json_string_value(id) : "?");
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

static const char stream_text[] = "{\"id\":\"a\"}\n"
                                  "{\"id\":\"bb\",\"x\":[1,2,{\"y\":\"\\n\"}]}\r\n"
                                  "\n"
                                  "  \n"
                                  "{\"id\":\"ccc\"}\n";

static void expect_abc(const struct collect *c)
{
    cr_assert_eq(c->n, 3);
    cr_assert_str_eq(c->seen[0], "a");
    cr_assert_str_eq(c->seen[1], "bb");
    cr_assert_str_eq(c->seen[2], "ccc");
}

Test(etcd_stream, split_at_every_boundary)
{
    size_t len = strlen(stream_text);

    for (size_t cut = 0; cut <= len; cut++) {
        struct etcd_stream s;
        struct collect c = {0};

        etcd_stream_init(&s);
        cr_assert_eq(etcd_stream_feed(&s, stream_text, cut, collect_cb, &c), 0, "cut %zu", cut);
        cr_assert_eq(etcd_stream_feed(&s, stream_text + cut, len - cut, collect_cb, &c), 0);
        expect_abc(&c);
        cr_assert_eq(s.len, 0);
        etcd_stream_free(&s);
    }
}

Test(etcd_stream, byte_by_byte)
{
    struct etcd_stream s;
    struct collect c = {0};

    etcd_stream_init(&s);
    for (size_t i = 0; stream_text[i]; i++)
        cr_assert_eq(etcd_stream_feed(&s, stream_text + i, 1, collect_cb, &c), 0);
    expect_abc(&c);
    etcd_stream_free(&s);
}

Test(etcd_stream, partial_line_waits)
{
    struct etcd_stream s;
    struct collect c = {0};

    etcd_stream_init(&s);
    cr_assert_eq(etcd_stream_feed(&s, "{\"id\":\"a\"}\n{\"id\"", 16, collect_cb, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(s.len, 5);
    cr_assert_eq(etcd_stream_feed(&s, ":\"z\"}\n", 6, collect_cb, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.seen[1], "z");
    etcd_stream_free(&s);
}

Test(etcd_stream, line_too_long)
{
    struct etcd_stream s;
    struct collect c = {0};
    const char *line = "{\"id\":\"0123456789abcdef\"}\n";

    /* A complete line over the limit. */
    etcd_stream_init(&s);
    s.max = 16;
    cr_assert_eq(etcd_stream_feed(&s, line, strlen(line), collect_cb, &c), -E2BIG);
    cr_assert_eq(c.n, 0);
    /* A partial line that already exceeds the limit. */
    cr_assert_eq(etcd_stream_feed(&s, line, 10, collect_cb, &c), 0);
    cr_assert_eq(etcd_stream_feed(&s, line + 10, 10, collect_cb, &c), -E2BIG);
    /* At the limit is fine. */
    cr_assert_eq(etcd_stream_feed(&s, "{\"id\":\"abcdef\"}\n", 16, collect_cb, &c), 0);
    cr_assert_eq(c.n, 1);
    etcd_stream_free(&s);
}

Test(etcd_stream, garbage_lines)
{
    static const char *const bad[] = {"nope\n", "[1,2]\n", "\"str\"\n", "{\"a\":\n",
                                      "{\"id\":\"a\"} x\n"};

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct etcd_stream s;
        struct collect c = {0};

        etcd_stream_init(&s);
        cr_assert_eq(etcd_stream_feed(&s, bad[i], strlen(bad[i]), collect_cb, &c), -EINVAL, "%s",
                     bad[i]);
        cr_assert_eq(c.n, 0);
        /* The splitter starts afresh after an error. */
        cr_assert_eq(etcd_stream_feed(&s, "{\"id\":\"ok\"}\n", 12, collect_cb, &c), 0);
        cr_assert_eq(c.n, 1);
        etcd_stream_free(&s);
    }
}

Test(etcd_stream, callback_stops)
{
    struct etcd_stream s;
    struct collect c = {.stop_after = 2};

    etcd_stream_init(&s);
    cr_assert_eq(etcd_stream_feed(&s, stream_text, strlen(stream_text), collect_cb, &c), 7);
    cr_assert_eq(c.n, 2);
    etcd_stream_free(&s);
}

/* ---- I/O against a real etcd ---- */

#define ETCD_BIN "/usr/bin/etcd"

static pid_t etcd_pid = -1;
static char etcd_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void etcd_kill(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGCONT);
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
        etcd_pid = -1;
    }
    if (etcd_dir[0]) {
        nftw(etcd_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        etcd_dir[0] = '\0';
    }
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    cr_assert_geq(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start etcd; it dies with us (PDEATHSIG) even if the test is killed. */
static void etcd_spawn(int client_port, int peer_port)
{
    char data[128], log[128], curl[64], purl[64], cluster[96];
    pid_t pid;

    snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/slotsync-etcd-XXXXXX");
    cr_assert_not_null(mkdtemp(etcd_dir));
    snprintf(data, sizeof(data), "%s/data", etcd_dir);
    snprintf(log, sizeof(log), "%s/log", etcd_dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", client_port);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", peer_port);
    snprintf(cluster, sizeof(cluster), "default=%s", purl);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(ETCD_BIN, "etcd", "--data-dir", data, "--listen-client-urls", curl,
              "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
              "--experimental-watch-progress-notify-interval", "1s", (char *)NULL);
        _exit(127);
    }
    etcd_pid = pid;
}

/* A TCP proxy on the loop that can hold traffic (pause) or cut connections. */
struct pconn {
    struct proxy *proxy;
    int cfd, ufd;
    char tail[16]; /* end of the previous chunk from upstream, for matching */
    size_t tail_len;
    ev_io cio, uio;
    struct pconn *next;
};

struct proxy {
    struct ev_loop *loop;
    int lfd, port, upstream_port;
    ev_io accept_io;
    bool paused;
    bool pause_on_more;    /* one shot: pause after passing on "more":true */
    unsigned long results; /* "result" objects seen going to the client */
    struct pconn *conns;
};

static void pconn_close(struct pconn *pc)
{
    struct proxy *p = pc->proxy;

    for (struct pconn **pp = &p->conns; *pp; pp = &(*pp)->next) {
        if (*pp == pc) {
            *pp = pc->next;
            break;
        }
    }
    ev_io_stop(p->loop, &pc->cio);
    ev_io_stop(p->loop, &pc->uio);
    close(pc->cfd);
    close(pc->ufd);
    free(pc);
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static size_t count_in(const char *buf, size_t len, const char *what)
{
    size_t n = 0, wl = strlen(what);

    for (size_t i = 0; i + wl <= len; i++)
        if (memcmp(buf + i, what, wl) == 0)
            n++;
    return n;
}

static void proxy_pause(struct proxy *p, bool pause);

static void pconn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pconn *pc = w->data;
    struct proxy *p = pc->proxy;
    bool from_client = w == &pc->cio;
    char buf[sizeof(pc->tail) + 16384], *data = buf + sizeof(pc->tail);
    ssize_t n = read(w->fd, data, 16384);
    size_t seen;

    if (n <= 0 || !send_all(from_client ? pc->ufd : pc->cfd, data, (size_t)n)) {
        pconn_close(pc);
        return;
    }
    if (from_client)
        return;
    /* Match across chunk boundaries: previous tail + this chunk, counting
     * only matches that end inside this chunk. */
    memcpy(data - pc->tail_len, pc->tail, pc->tail_len);
    seen = pc->tail_len + (size_t)n;
    p->results += count_in(data - pc->tail_len, seen, "\"result\"") -
                  count_in(pc->tail, pc->tail_len, "\"result\"");
    if (p->pause_on_more && count_in(data - pc->tail_len, seen, "\"more\":true") >
                                count_in(pc->tail, pc->tail_len, "\"more\":true")) {
        p->pause_on_more = false;
        proxy_pause(p, true);
    }
    pc->tail_len = seen < sizeof(pc->tail) ? seen : sizeof(pc->tail);
    memmove(pc->tail, data + n - pc->tail_len, pc->tail_len);
}

static void proxy_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct proxy *p = w->data;
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct pconn *pc;
    int cfd = accept(p->lfd, NULL, NULL), ufd;

    if (cfd < 0)
        return;
    ufd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)p->upstream_port);
    /* A loopback connect completes at once; fine for a test helper. */
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(cfd);
        if (ufd >= 0)
            close(ufd);
        return;
    }
    pc = calloc(1, sizeof(*pc));
    cr_assert_not_null(pc);
    pc->proxy = p;
    pc->cfd = cfd;
    pc->ufd = ufd;
    ev_io_init(&pc->cio, pconn_io, cfd, EV_READ);
    ev_io_init(&pc->uio, pconn_io, ufd, EV_READ);
    pc->cio.data = pc->uio.data = pc;
    if (!p->paused) {
        ev_io_start(loop, &pc->cio);
        ev_io_start(loop, &pc->uio);
    }
    pc->next = p->conns;
    p->conns = pc;
}

static void proxy_open(struct proxy *p, struct ev_loop *loop, int upstream_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int one = 1;

    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->upstream_port = upstream_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(p->lfd, 0);
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(p->lfd, 16), 0);
    cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
    p->port = ntohs(a.sin_port);
    ev_io_init(&p->accept_io, proxy_accept, p->lfd, EV_READ);
    p->accept_io.data = p;
    ev_io_start(loop, &p->accept_io);
}

static void proxy_pause(struct proxy *p, bool pause)
{
    p->paused = pause;
    for (struct pconn *pc = p->conns; pc; pc = pc->next) {
        if (pause) {
            ev_io_stop(p->loop, &pc->cio);
            ev_io_stop(p->loop, &pc->uio);
        } else {
            ev_io_start(p->loop, &pc->cio);
            ev_io_start(p->loop, &pc->uio);
        }
    }
}

static void proxy_close(struct proxy *p)
{
    while (p->conns)
        pconn_close(p->conns);
    ev_io_stop(p->loop, &p->accept_io);
    close(p->lfd);
}

/* What the consumer of a sync believes is in etcd. */
struct entry {
    char *key, *value;
    size_t value_len;
};

struct kvset {
    struct entry *e;
    size_t n, cap;
};

static struct entry *kvset_find(struct kvset *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].key, key) == 0)
            return &s->e[i];
    return NULL;
}

static void kvset_put(struct kvset *s, const char *key, const char *value, size_t len)
{
    struct entry *e = kvset_find(s, key);

    if (!e) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            s->e = realloc(s->e, s->cap * sizeof(*s->e));
            cr_assert_not_null(s->e);
        }
        e = &s->e[s->n++];
        e->key = strdup(key);
        e->value = NULL;
    }
    free(e->value);
    e->value = malloc(len + 1);
    cr_assert_not_null(e->value);
    memcpy(e->value, value, len + 1);
    e->value_len = len;
}

static void kvset_del(struct kvset *s, const char *key)
{
    struct entry *e = kvset_find(s, key);

    if (!e)
        return;
    free(e->key);
    free(e->value);
    *e = s->e[--s->n];
}

static void kvset_clear(struct kvset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].key);
        free(s->e[i].value);
    }
    free(s->e);
    memset(s, 0, sizeof(*s));
}

struct consumer {
    struct kvset state, listing;
    bool listing_open;
    int list_begins, list_ends, batches, ups, downs, kvs;
    int64_t list_rev, batch_rev, last_event_rev;
    bool up;
    int reported; /* 0 never, 1 up, 2 down */
    char why[256];
    /* self-stopping consumer */
    struct etcd_sync *self;
    int stop_when; /* 0 never, 1 first kv, 2 first watch event */
    bool stopped;
    int after_stop;
};

static void c_list_begin(void *arg)
{
    struct consumer *c = arg;

    cr_assert(!c->listing_open, "list_begin inside a listing");
    c->listing_open = true;
    c->list_begins++;
    kvset_clear(&c->listing);
}

static void c_kv(void *arg, const struct etcd_kv *kv)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    c->kvs++;
    cr_assert_eq(kv->key[kv->key_len], '\0');
    cr_assert_eq(strncmp(kv->key, "/svc/", 5), 0, "key outside the prefix: %s", kv->key);
    if (c->listing_open) {
        cr_assert(!kv->deleted);
        kvset_put(&c->listing, kv->key, kv->value, kv->value_len);
    } else {
        /* after the listing, in revision order (a transaction's events
         * share one revision) */
        cr_assert_gt(kv->mod_revision, c->list_rev);
        cr_assert_geq(kv->mod_revision, c->last_event_rev);
        c->last_event_rev = kv->mod_revision;
        if (kv->deleted) {
            cr_assert_null(kv->value);
            kvset_del(&c->state, kv->key);
        } else {
            kvset_put(&c->state, kv->key, kv->value, kv->value_len);
        }
    }
    if (c->stop_when == 1 || (c->stop_when == 2 && !c->listing_open)) {
        etcd_sync_stop(c->self);
        c->self = NULL;
        c->stopped = true;
    }
}

static void c_list_end(void *arg, int64_t revision)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(c->listing_open);
    c->listing_open = false;
    c->list_ends++;
    c->list_rev = revision;
    c->last_event_rev = revision;
    kvset_clear(&c->state);
    c->state = c->listing;
    memset(&c->listing, 0, sizeof(c->listing));
}

static void c_batch_end(void *arg, int64_t revision)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(!c->listing_open);
    cr_assert_gt(revision, c->batch_rev);
    c->batches++;
    c->batch_rev = revision;
}

static void c_connected(void *arg, bool up, const char *why)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(c->reported == 0 || (c->reported == 1) != up, "connected() reports changes");
    c->reported = up ? 1 : 2;
    c->up = up;
    if (up)
        c->ups++;
    else
        c->downs++;
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
}

static const struct etcd_sync_ops consumer_ops = {
    .list_begin = c_list_begin,
    .kv = c_kv,
    .list_end = c_list_end,
    .batch_end = c_batch_end,
    .connected = c_connected,
};

/* Waiting on the loop for a condition, with a deadline. */
struct io_test {
    struct ev_loop *loop;
    struct http_client *http;
    struct etcd_client *direct; /* straight to etcd */
    struct etcd_client *synced; /* dead endpoint, then the proxy */
    struct proxy proxy;
    struct consumer cons, quitter, pager;
    bool timed_out;
    unsigned long mark;
};

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

static bool wait_until(struct io_test *t, bool (*cond)(struct io_test *), double seconds)
{
    ev_timer deadline;
    bool ok;

    t->timed_out = false;
    ev_timer_init(&deadline, deadline_cb, seconds, 0.);
    deadline.data = &t->timed_out;
    ev_timer_start(t->loop, &deadline);
    while (!(ok = cond(t)) && !t->timed_out)
        ev_run(t->loop, EVRUN_ONCE);
    ev_timer_stop(t->loop, &deadline);
    return ok;
}

static bool never(struct io_test *t)
{
    return false;
}

struct reply {
    bool done;
    int err;
    json_t *json;
    char errtext[512];
};

static void reply_cb(int err, const json_t *json, const char *errtext, void *arg)
{
    struct reply *r = arg;

    r->done = true;
    r->err = err;
    r->json = json ? json_deep_copy(json) : NULL;
    snprintf(r->errtext, sizeof(r->errtext), "%s", errtext ? errtext : "");
}

static struct reply *pending_reply;

static bool reply_done(struct io_test *t)
{
    return pending_reply->done;
}

/* Run a call to completion; r->json must be released by the caller. */
static int finish(struct io_test *t, struct etcd_call *call, struct reply *r)
{
    cr_assert_not_null(call);
    pending_reply = r;
    cr_assert(wait_until(t, reply_done, 15), "call did not finish");
    return r->err;
}

static void reply_clear(struct reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static json_t *b64(const char *data, size_t len)
{
    char *s;
    json_t *j;

    cr_assert_eq(etcd_b64_encode(data, len, &s, NULL), 0);
    j = json_string(s);
    free(s);
    return j;
}

static int64_t current_revision(struct io_test *t)
{
    struct reply r = {0};
    int64_t rev;

    cr_assert_eq(finish(t,
                        etcd_call(t->direct, "/v3/kv/range", json_pack("{s:o}", "key", b64("x", 1)),
                                  0, reply_cb, &r),
                        &r),
                 0, "%s", r.errtext);
    cr_assert_eq(etcd_json_int64(json_object_get(r.json, "header"), "revision", &rev), 0);
    reply_clear(&r);
    return rev;
}

/* Put count keys /svc/kNNNN in transactions of 100. */
static void put_many(struct io_test *t, int count)
{
    for (int base = 0; base < count; base += 100) {
        json_t *ops = json_array();
        struct reply r = {0};

        for (int i = base; i < count && i < base + 100; i++) {
            char key[32], value[32];

            snprintf(key, sizeof(key), "/svc/k%04d", i);
            snprintf(value, sizeof(value), "127.0.0.%d:80", i % 250);
            json_array_append_new(ops, json_pack("{s:{s:o,s:o}}", "request_put", "key",
                                                 b64(key, strlen(key)), "value",
                                                 b64(value, strlen(value))));
        }
        cr_assert_eq(finish(t,
                            etcd_call(t->direct, "/v3/kv/txn", json_pack("{s:o}", "success", ops),
                                      0, reply_cb, &r),
                            &r),
                     0, "%s", r.errtext);
        reply_clear(&r);
    }
}

static void put(struct io_test *t, const char *key, const char *value)
{
    struct reply r = {0};

    cr_assert_eq(finish(t, etcd_put(t->direct, key, value, 0, reply_cb, &r), &r), 0, "%s",
                 r.errtext);
    reply_clear(&r);
}

static void del(struct io_test *t, const char *key)
{
    struct reply r = {0};

    cr_assert_eq(finish(t, etcd_delete(t->direct, key, reply_cb, &r), &r), 0, "%s", r.errtext);
    reply_clear(&r);
}

/* The consumer's state must equal a direct range over the prefix. */
static void check_state_matches_etcd(struct io_test *t, const struct kvset *state)
{
    struct reply r = {0};
    struct etcd_range_reply rr;
    char *errmsg = NULL;

    cr_assert_eq(finish(t,
                        etcd_call(t->direct, "/v3/kv/range",
                                  json_pack("{s:o,s:o}", "key", b64("/svc/", 5), "range_end",
                                            b64("/svc0", 5)),
                                  0, reply_cb, &r),
                        &r),
                 0, "%s", r.errtext);
    cr_assert_eq(etcd_parse_range(r.json, &rr, &errmsg), 0, "%s", errmsg);
    cr_assert_eq(rr.n_kvs, state->n, "etcd has %zu keys, consumer %zu", rr.n_kvs, state->n);
    for (size_t i = 0; i < rr.n_kvs; i++) {
        struct entry *e = kvset_find((struct kvset *)state, rr.kvs[i].key);

        cr_assert_not_null(e, "consumer lacks %s", rr.kvs[i].key);
        cr_assert_eq(e->value_len, rr.kvs[i].value_len);
        cr_assert_eq(memcmp(e->value, rr.kvs[i].value, e->value_len), 0);
    }
    etcd_range_reply_free(&rr);
    reply_clear(&r);
}

/* Poll until etcd answers, for at most about 30 s. */
static bool etcd_ready(struct io_test *t)
{
    for (int attempt = 0; attempt < 150; attempt++) {
        struct reply r = {0};
        bool ok;

        pending_reply = &r;
        cr_assert_not_null(etcd_call(t->direct, "/v3/kv/range",
                                     json_pack("{s:o}", "key", b64("x", 1)), 1000, reply_cb, &r));
        cr_assert(wait_until(t, reply_done, 5));
        ok = r.err == 0;
        reply_clear(&r);
        if (ok)
            return true;
        wait_until(t, never, 0.2);
    }
    return false;
}

static bool first_list(struct io_test *t)
{
    return t->cons.list_ends >= 1 && t->cons.up;
}

static bool saw_new_and_delete(struct io_test *t)
{
    return kvset_find(&t->cons.state, "/svc/new") && !kvset_find(&t->cons.state, "/svc/k0000") &&
           t->cons.batches >= 2;
}

static bool quitter_stopped(struct io_test *t)
{
    return t->quitter.stopped;
}

static bool two_progress(struct io_test *t)
{
    return t->proxy.results >= t->mark + 2;
}

static bool went_down(struct io_test *t)
{
    return !t->cons.up && t->cons.downs >= 1;
}

static bool relisted(struct io_test *t)
{
    return t->cons.list_ends >= 2 && t->cons.up;
}

static bool proxy_paused(struct io_test *t)
{
    return t->proxy.paused;
}

static bool pager_listed(struct io_test *t)
{
    return t->pager.list_ends >= 1 && t->pager.up;
}

static bool pager_stopped(struct io_test *t)
{
    return t->pager.stopped;
}

static bool saw_after(struct io_test *t)
{
    return kvset_find(&t->cons.state, "/svc/after") != NULL;
}

static void io_fini(void)
{
    etcd_kill();
}

Test(etcd_io, sync_against_real_etcd, .timeout = 120, .fini = io_fini)
{
    struct io_test t = {0};
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;
    int port, peer, dead;
    char direct_url[64], dead_url[64], proxy_url[64];
    struct reply r = {0};
    int64_t rev;
    const int n_keys = 1205; /* more than one page of 1000 */

    if (access(ETCD_BIN, X_OK) != 0)
        cr_skip_test("%s not installed", ETCD_BIN);
    port = free_port();
    peer = free_port();
    dead = free_port(); /* nothing listens there: connection refused */
    cr_assert(port != peer && port != dead && peer != dead);
    etcd_spawn(port, peer);

    t.loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(t.loop);
    t.http = http_client_new(t.loop);
    cr_assert_not_null(t.http);
    proxy_open(&t.proxy, t.loop, port);
    snprintf(direct_url, sizeof(direct_url), "http://127.0.0.1:%d/", port);
    snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d", dead);
    snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", t.proxy.port);
    {
        char *direct[] = {direct_url};
        char *synced[] = {dead_url, proxy_url};

        t.direct = etcd_client_new(t.loop, t.http, direct, 1);
        t.synced = etcd_client_new(t.loop, t.http, synced, 2);
    }
    cr_assert_not_null(t.direct);
    cr_assert_not_null(t.synced);
    cr_assert(etcd_ready(&t), "etcd did not come up");

    /* Data: more than a page, a binary value, a key just outside. */
    put_many(&t, n_keys);
    {
        json_t *body = json_pack("{s:o,s:o}", "key", b64("/svc/bin", 8), "value", b64("a\0b\n", 4));

        cr_assert_eq(finish(&t, etcd_call(t.direct, "/v3/kv/put", body, 0, reply_cb, &r), &r), 0,
                     "%s", r.errtext);
        reply_clear(&r);
    }
    put(&t, "/svd/outside", "x");
    put(&t, "/svc", "no trailing slash: outside");

    /* Gateway errors come back with etcd's message. */
    cr_assert_eq(finish(&t,
                        etcd_call(t.direct, "/v3/kv/range", json_pack("{s:s}", "key", "!!"), 0,
                                  reply_cb, &r),
                        &r),
                 -EINVAL);
    cr_assert(strstr(r.errtext, "illegal base64"), "%s", r.errtext);
    reply_clear(&r);

    /* Leases: a live keepalive has a TTL, an expired/revoked one none. */
    {
        int64_t id, ttl;

        cr_assert_eq(finish(&t, etcd_lease_grant(t.direct, 30, reply_cb, &r), &r), 0);
        cr_assert_eq(etcd_json_int64(r.json, "ID", &id), 0);
        cr_assert_gt(id, 0);
        reply_clear(&r);
        cr_assert_eq(finish(&t, etcd_lease_keepalive(t.direct, id, reply_cb, &r), &r), 0);
        cr_assert_eq(etcd_json_int64(json_object_get(r.json, "result"), "TTL", &ttl), 0);
        cr_assert_gt(ttl, 0);
        reply_clear(&r);
        cr_assert_eq(finish(&t, etcd_put(t.direct, "/lease/a", "b", id, reply_cb, &r), &r), 0);
        reply_clear(&r);
        cr_assert_eq(finish(&t, etcd_lease_revoke(t.direct, id, reply_cb, &r), &r), 0);
        reply_clear(&r);
        cr_assert_eq(finish(&t, etcd_lease_keepalive(t.direct, id, reply_cb, &r), &r), 0);
        cr_assert_eq(etcd_json_int64(json_object_get(r.json, "result"), "TTL", &ttl), 0);
        cr_assert_eq(ttl, 0);
        reply_clear(&r);
        cr_assert_eq(finish(&t, etcd_lease_revoke(t.direct, id, reply_cb, &r), &r), -ENOENT);
        cr_assert(strstr(r.errtext, "lease not found"), "%s", r.errtext);
        reply_clear(&r);
    }

    /* Sync through a dead endpoint then the proxy: the listing must fail
     * over, page through 1000+ keys and skip what is outside the prefix. */
    sync = etcd_sync_start(t.synced, "/svc/", &consumer_ops, &t.cons);
    cr_assert_not_null(sync);
    t.quitter.stop_when = 1;
    t.quitter.self = etcd_sync_start(t.synced, "/svc/", &consumer_ops, &t.quitter);
    cr_assert_not_null(t.quitter.self);
    cr_assert(wait_until(&t, first_list, 20), "no listing (list_ends %d, why %s)", t.cons.list_ends,
              t.cons.why);
    cr_assert_eq(t.cons.list_begins, 1);
    cr_assert_eq(t.cons.state.n, (size_t)n_keys + 1);
    {
        struct entry *e = kvset_find(&t.cons.state, "/svc/bin");

        cr_assert_not_null(e);
        cr_assert_eq(e->value_len, 4);
        cr_assert_eq(memcmp(e->value, "a\0b\n", 4), 0);
    }
    rev = current_revision(&t);
    cr_assert_eq(t.cons.list_rev, rev);
    st = etcd_sync_stats(sync);
    cr_assert_eq(st->lists, 1);
    cr_assert_eq(st->revision, rev);
    check_state_matches_etcd(&t, &t.cons.state);

    /* The quitter stopped itself in its first kv: nothing after that. */
    cr_assert(wait_until(&t, quitter_stopped, 10));
    cr_assert_eq(t.quitter.kvs, 1);

    /* Watch: a put and a delete arrive as events. */
    put(&t, "/svc/new", "127.0.0.4:80");
    del(&t, "/svc/k0000");
    put(&t, "/svd/outside", "y");
    cr_assert(wait_until(&t, saw_new_and_delete, 10), "watch events missing");
    cr_assert_eq(t.quitter.after_stop, 0);
    cr_assert(st->watching);
    cr_assert_geq(st->events, 2);
    check_state_matches_etcd(&t, &t.cons.state);

    /* Progress notifications (every 1 s here) teach the sync etcd's
     * interval; then the proxy holds everything back. The silent stream must
     * be declared dead, and meanwhile we change keys and compact, so the
     * resumed watch finds its revision gone and lists again. */
    t.mark = t.proxy.results;
    cr_assert(wait_until(&t, two_progress, 10), "no progress notifications");
    t.mark = t.proxy.results;
    cr_assert(wait_until(&t, two_progress, 10), "no progress notifications");
    proxy_pause(&t.proxy, true);
    put(&t, "/svc/paused", "127.0.0.5:80");
    del(&t, "/svc/k0001");
    rev = current_revision(&t);
    cr_assert_eq(
        finish(&t,
               etcd_call(t.direct, "/v3/kv/compaction",
                         json_pack("{s:I,s:b}", "revision", (json_int_t)rev, "physical", 1), 0,
                         reply_cb, &r),
               &r),
        0, "%s", r.errtext);
    reply_clear(&r);
    /* A range at a compacted revision: -ERANGE with etcd's text. */
    cr_assert_eq(finish(&t,
                        etcd_call(t.direct, "/v3/kv/range",
                                  json_pack("{s:o,s:s}", "key", b64("x", 1), "revision", "2"), 0,
                                  reply_cb, &r),
                        &r),
                 -ERANGE);
    cr_assert(strstr(r.errtext, "compacted"), "%s", r.errtext);
    reply_clear(&r);

    cr_assert(wait_until(&t, went_down, 15), "silent watch not detected");
    /* the idle watchdog or the probe of the member, whichever is first */
    cr_assert(strstr(t.cons.why, "silent") || strstr(t.cons.why, "not answering"), "%s",
              t.cons.why);
    proxy_pause(&t.proxy, false);
    cr_assert(wait_until(&t, relisted, 20), "no re-list after compaction (why %s)", t.cons.why);
    cr_assert_eq(t.cons.list_begins, 2);
    cr_assert(kvset_find(&t.cons.state, "/svc/paused"));
    cr_assert_null(kvset_find(&t.cons.state, "/svc/k0001"));
    check_state_matches_etcd(&t, &t.cons.state);
    cr_assert_geq(st->compactions, 1);
    cr_assert_geq(st->reconnects, 1);
    cr_assert_geq(st->lists, 2);

    /* Cut the connection: the watch resumes without a listing. */
    {
        int lists = t.cons.list_begins;

        while (t.proxy.conns)
            pconn_close(t.proxy.conns);
        put(&t, "/svc/after", "127.0.0.9:80");
        cr_assert(wait_until(&t, saw_after, 15), "no event after a cut (why %s)", t.cons.why);
        cr_assert_eq(t.cons.list_begins, lists);
        check_state_matches_etcd(&t, &t.cons.state);
    }
    cr_assert_eq(t.quitter.after_stop, 0);

    /* A snapshot compacted between two pages: the listing starts over, and
     * the consumer still sees one list_begin..list_end. Then this consumer
     * stops its sync from inside a watch event. */
    {
        const struct etcd_sync_stats *pst;

        t.proxy.pause_on_more = true;
        t.pager.stop_when = 2;
        t.pager.self = etcd_sync_start(t.synced, "/svc/", &consumer_ops, &t.pager);
        cr_assert_not_null(t.pager.self);
        pst = etcd_sync_stats(t.pager.self);
        cr_assert(wait_until(&t, proxy_paused, 15), "first page never seen");
        put(&t, "/svc/between", "127.0.0.11:80");
        rev = current_revision(&t);
        cr_assert_eq(
            finish(&t,
                   etcd_call(t.direct, "/v3/kv/compaction",
                             json_pack("{s:I,s:b}", "revision", (json_int_t)rev, "physical", 1), 0,
                             reply_cb, &r),
                   &r),
            0, "%s", r.errtext);
        reply_clear(&r);
        proxy_pause(&t.proxy, false);
        cr_assert(wait_until(&t, pager_listed, 20), "pager did not list");
        cr_assert_eq(t.pager.list_begins, 1);
        cr_assert_eq(pst->compactions, 1);
        cr_assert_eq(pst->lists, 1);
        cr_assert(kvset_find(&t.pager.state, "/svc/between"));
        check_state_matches_etcd(&t, &t.pager.state);
        put(&t, "/svc/last", "127.0.0.12:80");
        cr_assert(wait_until(&t, pager_stopped, 10));
        cr_assert_eq(t.pager.batches, 0, "stopped before batch_end");
    }

    /* Let the loop run a little with everything quiet: still consistent. */
    put(&t, "/svc/final", "127.0.0.13:80");
    wait_until(&t, never, 0.3);
    cr_assert_eq(t.quitter.after_stop, 0);
    cr_assert_eq(t.pager.after_stop, 0);
    cr_assert(kvset_find(&t.cons.state, "/svc/final"));

    etcd_sync_stop(sync);
    etcd_client_free(t.synced);
    etcd_client_free(t.direct);
    http_client_free(t.http);
    proxy_close(&t.proxy);
    ev_loop_destroy(t.loop);
    kvset_clear(&t.cons.state);
    kvset_clear(&t.cons.listing);
    kvset_clear(&t.quitter.state);
    kvset_clear(&t.quitter.listing);
    kvset_clear(&t.pager.state);
    kvset_clear(&t.pager.listing);
    etcd_kill();
}

static struct etcd_client *doomed;

static void free_client_cb(int err, const json_t *json, const char *errtext, void *arg)
{
    reply_cb(err, json, errtext, arg);
    etcd_client_free(doomed);
    doomed = NULL;
}

/* No etcd needed: every endpoint refuses. */
Test(etcd_io, connection_refused)
{
    struct io_test t = {0};
    struct reply r = {0};
    char a[64], b[64];
    int pa = free_port(), pb = free_port();

    t.loop = ev_loop_new(EVFLAG_AUTO);
    t.http = http_client_new(t.loop);
    snprintf(a, sizeof(a), "http://127.0.0.1:%d", pa);
    snprintf(b, sizeof(b), "http://127.0.0.1:%d", pb);
    {
        char *eps[] = {a, b};

        t.direct = etcd_client_new(t.loop, t.http, eps, 2);
    }
    cr_assert_eq(finish(&t, etcd_put(t.direct, "/k", "v", 0, reply_cb, &r), &r), -ECONNREFUSED);
    /* tried both: the text names the second */
    cr_assert(strstr(r.errtext, b), "%s", r.errtext);
    reply_clear(&r);

    /* A cancelled call never calls back, and free cancels the rest. */
    {
        struct reply r2 = {0};
        struct etcd_call *call = etcd_put(t.direct, "/k", "v", 0, reply_cb, &r2);

        cr_assert_not_null(call);
        etcd_call_cancel(call);
        cr_assert_not_null(etcd_put(t.direct, "/k", "v", 0, reply_cb, &r2));
        etcd_client_free(t.direct);
        wait_until(&t, never, 0.2);
        cr_assert(!r2.done);
    }

    /* A callback may free its client; the other pending call is dropped. */
    {
        char *eps[] = {a};
        struct reply r3 = {0}, r4 = {0};

        doomed = etcd_client_new(t.loop, t.http, eps, 1);
        cr_assert_not_null(doomed);
        cr_assert_not_null(
            etcd_call(doomed, "/v3/kv/range", json_object(), 0, free_client_cb, &r3));
        cr_assert_not_null(
            etcd_call(doomed, "/v3/kv/range", json_object(), 0, free_client_cb, &r4));
        cr_assert(wait_until(&t, never, 0.3) == false);
        cr_assert(r3.done != r4.done, "exactly one callback");
        cr_assert_null(doomed);
    }
    http_client_free(t.http);
    ev_loop_destroy(t.loop);
}

/* ---- against a fake etcd on the loop ----
 *
 * A small HTTP server that answers each request from a table the test sets:
 * enough to play an etcd gone wrong (bad revisions, a listing that never
 * ends, bytes jansson cannot parse) without a real one. */

struct fconn {
    struct fake *fake;
    int fd;
    ev_io io;
    char buf[8192];
    size_t len;
    struct fconn *next;
};

struct fake {
    struct ev_loop *loop;
    int lfd, port;
    ev_io accept_io;
    struct fconn *conns;
    int ranges, pages, probes, watches, puts;
    /* what to answer */
    const char *put_reply;
    int mode; /* 0: listing without progress, 1: bad watch revision */
};

static void fconn_close(struct fconn *fc)
{
    struct fake *f = fc->fake;

    for (struct fconn **pp = &f->conns; *pp; pp = &(*pp)->next) {
        if (*pp == fc) {
            *pp = fc->next;
            break;
        }
    }
    ev_io_stop(f->loop, &fc->io);
    close(fc->fd);
    free(fc);
}

static void fsay(struct fconn *fc, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fc->fd, data, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void freply(struct fconn *fc, const char *body)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));

    fsay(fc, head, (size_t)n);
    fsay(fc, body, strlen(body));
    fconn_close(fc);
}

static void fchunk(struct fconn *fc, const char *line)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%zx\r\n", strlen(line) + 1);

    fsay(fc, head, (size_t)n);
    fsay(fc, line, strlen(line));
    fsay(fc, "\n\r\n", 3);
}

#define FHDR "\"header\":{\"cluster_id\":\"7\",\"revision\":\"5\"}"
/* "/svc/a" and "/svc/b" in base64 */
#define B64_PA "L3N2Yy9h"
#define B64_PB "L3N2Yy9i"

static void fake_handle(struct fconn *fc, const char *path, const char *body)
{
    struct fake *f = fc->fake;

    if (strcmp(path, "/v3/kv/put") == 0) {
        f->puts++;
        freply(fc, f->put_reply);
    } else if (strcmp(path, "/v3/kv/range") == 0 && strstr(body, "count_only")) {
        f->probes++;
        freply(fc, "{" FHDR ",\"count\":\"0\"}");
    } else if (strcmp(path, "/v3/kv/range") == 0) {
        f->ranges++;
        if (f->mode == 1)
            freply(fc, "{" FHDR "}");
        else if (strstr(body, "\"key\":\"L3N2Yy9hAA==\"")) /* the page after "/svc/a" */
            freply(fc, "{" FHDR ",\"more\":true,\"count\":\"3\"}");
        else
            freply(fc, "{" FHDR ",\"kvs\":[{\"key\":\"" B64_PA "\",\"mod_revision\":\"2\","
                       "\"value\":\"eA==\"}],\"more\":true,\"count\":\"3\"}");
    } else if (strcmp(path, "/v3/watch") == 0) {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

        f->watches++;
        fsay(fc, head, strlen(head));
        fchunk(fc, "{\"result\":{" FHDR ",\"created\":true}}");
        if (f->watches == 1)
            fchunk(fc, "{\"result\":{" FHDR ",\"events\":[{\"kv\":{\"key\":\"" B64_PA "\","
                       "\"mod_revision\":\"9223372036854775807\",\"value\":\"eA==\"}}]}}");
        fchunk(fc, "{\"result\":{" FHDR ",\"events\":[{\"kv\":{\"key\":\"" B64_PB "\","
                   "\"mod_revision\":\"6\",\"value\":\"eQ==\"}}]}}");
        /* the stream stays open */
    } else {
        freply(fc, "{}");
    }
}

static void fconn_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fconn *fc = w->data;
    ssize_t n = read(fc->fd, fc->buf + fc->len, sizeof(fc->buf) - fc->len - 1);
    char *end, *cl, path[64];
    size_t head_len, body_len = 0;

    if (n <= 0) {
        fconn_close(fc);
        return;
    }
    fc->len += (size_t)n;
    fc->buf[fc->len] = '\0';
    end = strstr(fc->buf, "\r\n\r\n");
    if (!end)
        return;
    head_len = (size_t)(end - fc->buf) + 4;
    cl = strstr(fc->buf, "Content-Length:");
    if (cl && cl < end)
        body_len = strtoul(cl + 15, NULL, 10);
    if (fc->len < head_len + body_len)
        return;
    if (sscanf(fc->buf, "%*s %63s", path) != 1)
        path[0] = '\0';
    ev_io_stop(loop, w);
    ev_io_set(w, fc->fd, EV_READ);
    fake_handle(fc, path, fc->buf + head_len);
}

/* After a request, only a close is expected: reading on would mistake it. */
static void fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake *f = w->data;
    struct fconn *fc;
    int fd = accept(f->lfd, NULL, NULL);

    if (fd < 0)
        return;
    fc = calloc(1, sizeof(*fc));
    cr_assert_not_null(fc);
    fc->fake = f;
    fc->fd = fd;
    ev_io_init(&fc->io, fconn_read, fd, EV_READ);
    fc->io.data = fc;
    ev_io_start(loop, &fc->io);
    fc->next = f->conns;
    f->conns = fc;
}

static void fake_open(struct fake *f, struct ev_loop *loop)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(f->lfd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(f->lfd, 64), 0);
    cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    ev_io_init(&f->accept_io, fake_accept, f->lfd, EV_READ);
    f->accept_io.data = f;
    ev_io_start(loop, &f->accept_io);
}

static void fake_close(struct fake *f)
{
    while (f->conns)
        fconn_close(f->conns);
    ev_io_stop(f->loop, &f->accept_io);
    close(f->lfd);
}

struct fake_test {
    struct io_test t;
    struct fake fake;
    struct consumer cons;
};

static void fake_setup(struct fake_test *ft, int mode)
{
    char url[64];

    memset(ft, 0, sizeof(*ft));
    ft->t.loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(ft->t.loop);
    ft->t.http = http_client_new(ft->t.loop);
    cr_assert_not_null(ft->t.http);
    fake_open(&ft->fake, ft->t.loop);
    ft->fake.mode = mode;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ft->fake.port);
    {
        char *eps[] = {url};

        ft->t.direct = etcd_client_new(ft->t.loop, ft->t.http, eps, 1);
    }
    cr_assert_not_null(ft->t.direct);
}

static void fake_teardown(struct fake_test *ft)
{
    etcd_client_free(ft->t.direct);
    http_client_free(ft->t.http);
    fake_close(&ft->fake);
    ev_loop_destroy(ft->t.loop);
    kvset_clear(&ft->cons.state);
    kvset_clear(&ft->cons.listing);
}

static bool is_printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* jansson's error text quotes the bytes it choked on: they must come out
 * escaped, whatever they are. */
Test(etcd_fake, unparsable_reply_is_escaped)
{
    static const char *const bodies[] = {
        "\x1b[2J\x1b[31mred",
        "{\"a\":\"\xe2\x80\xa8\x01\"}",
        "\x7f\xc2\x9b[1m",
    };
    struct fake_test ft;

    fake_setup(&ft, 0);
    for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
        struct reply r = {0};

        ft.fake.put_reply = bodies[i];
        cr_assert_eq(finish(&ft.t, etcd_put(ft.t.direct, "/k", "v", 0, reply_cb, &r), &r),
                     -EBADMSG);
        cr_assert(strstr(r.errtext, "not a JSON object"), "%s", r.errtext);
        cr_assert(is_printable_ascii(r.errtext), "raw bytes in the error text: %s", r.errtext);
        reply_clear(&r);
    }
    fake_teardown(&ft);
}

static bool down_no_progress(struct io_test *t)
{
    struct fake_test *ft = (struct fake_test *)t;

    return ft->cons.downs >= 1 && strstr(ft->cons.why, "no progress");
}

/* "more": true on a page without keys: asking again gets the same page, so
 * it is an error, retried with backoff, never a tight loop (nor a listing
 * delivered as complete). */
Test(etcd_fake, listing_without_progress_backs_off)
{
    struct fake_test ft;
    struct etcd_sync *sync;

    fake_setup(&ft, 0);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    cr_assert(wait_until(&ft.t, down_no_progress, 5), "no error for a listing without progress");
    wait_until(&ft.t, never, 1.5);
    cr_assert_eq(ft.cons.list_ends, 0, "an incomplete listing was delivered");
    /* backoff from 0.1 s doubling: a handful of tries in 1.5 s, not a spin */
    cr_assert_lt(ft.fake.ranges, 30, "%d range requests", ft.fake.ranges);
    cr_assert_geq(etcd_sync_stats(sync)->errors, 2);
    etcd_sync_stop(sync);
    fake_teardown(&ft);
}

static bool got_b(struct io_test *t)
{
    struct fake_test *ft = (struct fake_test *)t;

    return kvset_find(&ft->cons.state, "/svc/b") != NULL;
}

/* An event at revision INT64_MAX is refused (and counted) instead of making
 * every later event look like a replay; the event after it still arrives. */
Test(etcd_fake, watch_revision_out_of_range)
{
    struct fake_test ft;
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;

    fake_setup(&ft, 1);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    st = etcd_sync_stats(sync);
    cr_assert(wait_until(&ft.t, got_b, 10), "event after the bad one lost (watches %d)",
              ft.fake.watches);
    cr_assert_null(kvset_find(&ft.cons.state, "/svc/a"), "the bad event was applied");
    cr_assert_eq(st->revision, 6);
    cr_assert_geq(st->bad_revisions, 1);
    cr_assert_geq(ft.fake.watches, 2);
    etcd_sync_stop(sync);
    fake_teardown(&ft);
}
