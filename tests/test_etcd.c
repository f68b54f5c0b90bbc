/* Tests for the etcd client's calls (gateway errors, leases, failover,
 * cancel and free from a callback, error texts) against the shared real etcd
 * and a fake one (tests/etcd_harness.h). The prefix sync is tested in
 * test_etcd_sync.c, the pure decoders in test_etcd_decode.c. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "etcd_harness.h"

Test(etcd_io, gateway_errors_and_leases, .timeout = 60)
{
    struct io_test t = {0};
    struct reply r = {0};
    int64_t id, ttl;

    io_setup(&t);
    /* Gateway errors come back with etcd's message. */
    cr_assert_eq(finish(&t,
                        etcd_call(t.direct, "/v3/kv/range", json_pack("{s:s}", "key", "!!"), 0,
                                  reply_cb, &r),
                        &r),
                 -EINVAL);
    cr_assert(strstr(r.errtext, "illegal base64"), "%s", r.errtext);
    reply_clear(&r);

    /* Leases: a live keepalive has a TTL, an expired/revoked one none. */
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
    /* a lease that is gone is etcd's NOT_FOUND: -ENOENT */
    cr_assert_eq(finish(&t, etcd_lease_revoke(t.direct, id, reply_cb, &r), &r), -ENOENT);
    cr_assert(strstr(r.errtext, "lease not found"), "%s", r.errtext);
    reply_clear(&r);

    /* A range at a compacted revision: -ERANGE with etcd's text. */
    put(&t, "/svc/x", "127.0.0.1:80");
    compact_now(&t);
    cr_assert_eq(finish(&t,
                        etcd_call(t.direct, "/v3/kv/range",
                                  json_pack("{s:o,s:s}", "key", b64("x", 1), "revision", "1"), 0,
                                  reply_cb, &r),
                        &r),
                 -ERANGE);
    cr_assert(strstr(r.errtext, "compacted"), "%s", r.errtext);
    reply_clear(&r);
    io_teardown(&t);
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
