/* Tests for the pure etcd decoders: table-driven cases, no server. */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <slotsync/etcd-t.h>
#include <slotsync/etcd_decode.h>

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
    {"create_revision above mod_revision",
     "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\",\"create_revision\":\"4\",\"mod_revision\":\"3\"}]}",
     .rc = -ERANGE},
    {"create_revision negative",
     "{" HDR(
         "4") ",\"kvs\":[{\"key\":\"eA==\",\"create_revision\":\"-2\",\"mod_revision\":\"3\"}]}",
     .rc = -ERANGE},
    {"create_revision not a number",
     "{" HDR("4") ",\"kvs\":[{\"key\":\"eA==\",\"create_revision\":\"x\",\"mod_revision\":\"3\"}]}",
     .rc = -EINVAL},
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

/* create_revision says whether a put made the key (the sync counts keys
 * with it); absent, it is 0. */
Test(etcd_parse, range_create_revision)
{
    json_t *j = json_loads(range_cases[2].json, 0, NULL);
    json_t *k = json_loads(range_cases[3].json, 0, NULL);
    struct etcd_range_reply r;

    cr_assert_eq(etcd_parse_range(j, &r, NULL), 0);
    cr_expect_eq(r.kvs[0].create_revision, 2);
    etcd_range_reply_free(&r);
    cr_assert_eq(etcd_parse_range(k, &r, NULL), 0);
    cr_expect_eq(r.kvs[0].create_revision, 0);
    etcd_range_reply_free(&r);
    json_decref(j);
    json_decref(k);
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

/* ---- gateway errors ---- */

struct error_case {
    const char *json;
    int rc;
    int code;
    const char *message;
    int err; /* etcd_grpc_errno(code) */
};

static const struct error_case error_cases[] = {
    {"{\"error\":\"etcdserver: requested lease not found\",\"code\":5,"
     "\"message\":\"etcdserver: requested lease not found\"}",
     0, 5, "etcdserver: requested lease not found", -ENOENT},
    {"{\"error\":\"text only\",\"code\":14}", 0, 14, "text only", -EAGAIN},
    {"{\"error\":{\"grpc_code\":11,\"message\":\"mvcc: required revision has been compacted\"}}", 0,
     11, "mvcc: required revision has been compacted", -ERANGE},
    {"{\"error\":{\"code\":4}}", 0, 4, "unknown gateway error", -ETIMEDOUT},
    {"{\"error\":{\"code\":16,\"message\":\"auth\"}}", 0, 16, "auth", -EACCES},
    {"{\"error\":\"x\",\"code\":99}", 0, 99, "x", -EIO},
    {"{\"error\":\"x\"}", 0, 0, "x", -EIO},
    {"{\"error\":17}", -EINVAL, 0, NULL, 0},
    /* etcd 3.6 (grpc-gateway v2): google.rpc.Status, unary at the top ... */
    {"{\"code\":5,\"message\":\"etcdserver: requested lease not found\",\"details\":[]}", 0, 5,
     "etcdserver: requested lease not found", -ENOENT},
    {"{\"code\":16,\"message\":\"etcdserver: invalid auth token\",\"details\":[]}", 0, 16,
     "etcdserver: invalid auth token", -EACCES},
    {"{\"code\":14,\"message\":\"etcdserver: no leader\"}", 0, 14, "etcdserver: no leader",
     -EAGAIN},
    /* ... and under "error" on a stream */
    {"{\"error\":{\"code\":11,\"message\":\"etcdserver: mvcc: required revision has been "
     "compacted\",\"details\":[]}}",
     0, 11, "etcdserver: mvcc: required revision has been compacted", -ERANGE},
    /* 3.4/3.5's stream shape, every member */
    {"{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
     "\"http_status\":\"Service Unavailable\"}}",
     0, 14, "etcdserver: no leader", -EAGAIN},
};

/* Which replies are errors at all: 3.6's top-level status only with a
 * non-zero integer code and a message, never beside a result or header. */
struct is_error_case {
    const char *json;
    bool error;
};

static const struct is_error_case is_error_cases[] = {
    {"{\"code\":5,\"message\":\"x\",\"details\":[]}", true},
    {"{\"code\":5,\"message\":\"x\"}", true},
    {"{\"error\":\"x\",\"code\":5,\"message\":\"x\"}", true},
    {"{\"error\":{\"grpc_code\":14,\"message\":\"x\"}}", true},
    {"{\"error\":{\"code\":14,\"message\":\"x\",\"details\":[]}}", true},
    {"{\"code\":0,\"message\":\"\"}", false},
    {"{\"code\":\"5\",\"message\":\"x\"}", false},
    {"{\"code\":5}", false},
    {"{\"header\":{\"revision\":\"3\"},\"code\":5,\"message\":\"x\"}", false},
    {"{\"result\":{},\"code\":5,\"message\":\"x\"}", false},
    {"{\"header\":{\"revision\":\"3\"},\"kvs\":[]}", false},
    {"[]", false},
};

Test(etcd_parse, which_replies_are_errors)
{
    for (size_t i = 0; i < ARRAY_SIZE(is_error_cases); i++) {
        json_t *msg = json_loads(is_error_cases[i].json, 0, NULL);

        cr_assert_not_null(msg, "case %zu", i);
        cr_expect_eq(etcd_reply_error(msg) != NULL, is_error_cases[i].error, "case %zu: %s", i,
                     is_error_cases[i].json);
        json_decref(msg);
    }
}

/* A 3.6 stream error ends a watch like 3.4's does. */
Test(etcd_parse, watch_error_of_etcd_3_6)
{
    json_t *msg = json_loads("{\"error\":{\"code\":11,\"message\":\"etcdserver: mvcc: required "
                             "revision has been compacted\",\"details\":[]}}",
                             0, NULL);
    struct etcd_watch_msg m;
    char *errmsg = NULL;

    cr_assert_eq(etcd_parse_watch(msg, &m, &errmsg), 0, "%s", errmsg ? errmsg : "");
    cr_expect(m.error);
    cr_expect_eq(m.error_code, 11);
    cr_expect_str_eq(m.error_message, "etcdserver: mvcc: required revision has been compacted");
    etcd_watch_msg_free(&m);
    json_decref(msg);
}

Test(etcd_parse, error_objects)
{
    for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        json_t *msg = json_loads(c->json, 0, NULL);
        struct etcd_watch_msg m = {0};
        char *errmsg = NULL;
        int rc;

        cr_assert_not_null(msg, "case %zu", i);
        rc = etcd_parse_error(msg, etcd_reply_error(msg), &m, &errmsg);
        cr_assert_eq(rc, c->rc, "case %zu: rc %d", i, rc);
        if (rc == 0) {
            cr_assert(m.error, "case %zu", i);
            cr_assert_eq(m.error_code, c->code, "case %zu", i);
            cr_assert_str_eq(m.error_message, c->message, "case %zu", i);
            cr_assert_eq(etcd_grpc_errno(m.error_code), c->err, "case %zu", i);
        } else {
            cr_assert_not_null(errmsg, "case %zu", i);
        }
        free(errmsg);
        etcd_watch_msg_free(&m);
        json_decref(msg);
    }
}

/* ---- lease and txn replies ---- */

struct lease_case {
    const char *json;
    int grant_rc;
    int64_t id, ttl;
    int keepalive_rc;
    int64_t keepalive_ttl;
};

static const struct lease_case lease_cases[] = {
    {"{\"ID\":\"7587862\",\"TTL\":\"10\"}", 0, 7587862, 10, 0, 10},
    {"{\"result\":{\"ID\":\"12\",\"TTL\":\"9\"}}", 0, 12, 9, 0, 9},
    /* the gateway omits a zero TTL: the lease is gone */
    {"{\"result\":{\"ID\":\"12\"}}", 0, 12, 0, 0, 0},
    {"{\"TTL\":\"10\"}", -EINVAL, 0, 0, 0, 10},
    {"{\"ID\":\"0\",\"TTL\":\"10\"}", -EINVAL, 0, 0, 0, 10},
    {"{\"ID\":\"x\",\"TTL\":\"10\"}", -EINVAL, 0, 0, 0, 10},
    {"{\"ID\":\"5\",\"TTL\":\"ten\"}", -EINVAL, 0, 0, -EINVAL, 0},
    {"{\"result\":\"x\",\"ID\":\"5\",\"TTL\":\"3\"}", 0, 5, 3, 0, 3},
};

Test(etcd_parse, lease_replies)
{
    for (size_t i = 0; i < ARRAY_SIZE(lease_cases); i++) {
        const struct lease_case *c = &lease_cases[i];
        json_t *reply = json_loads(c->json, 0, NULL);
        int64_t id = -1, ttl = -1;

        cr_assert_not_null(reply, "case %zu", i);
        cr_expect_eq(etcd_parse_lease_grant(reply, &id, &ttl), c->grant_rc, "case %zu", i);
        if (c->grant_rc == 0) {
            cr_expect_eq(id, c->id, "case %zu", i);
            cr_expect_eq(ttl, c->ttl, "case %zu", i);
        }
        cr_expect_eq(etcd_parse_lease_keepalive(reply, &ttl), c->keepalive_rc, "case %zu", i);
        if (c->keepalive_rc == 0)
            cr_expect_eq(ttl, c->keepalive_ttl, "case %zu", i);
        json_decref(reply);
    }
}

Test(etcd_parse, txn_succeeded)
{
    static const struct {
        const char *json;
        bool want;
    } cases[] = {
        {"{\"succeeded\":true}", true},
        {"{\"header\":{}}", false}, /* omitted = false */
        {"{\"succeeded\":false}", false},
        {"{\"succeeded\":\"true\"}", false},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *reply = json_loads(cases[i].json, 0, NULL);

        cr_assert_not_null(reply);
        cr_expect_eq(etcd_txn_succeeded(reply), cases[i].want, "case %zu", i);
        json_decref(reply);
    }
}
