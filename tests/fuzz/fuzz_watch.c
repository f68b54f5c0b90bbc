/* fuzz_watch - the etcd watch stream (etcd.c): line splitting, message
 * decoding, and what the events do to the catalog and the plan.
 *
 * The input is a byte stream as the JSON gateway would send it. Oracles: fed
 * in random chunks it yields exactly the messages, and the same result, as
 * fed whole; a decoded key and value base64-encode and decode back to
 * themselves; every event either enters the catalog as the parser reads it
 * or is refused and counted; the commands for the resulting slots are clean
 * and, once applied, planning again gives nothing. Each message is also
 * decoded as a range reply (the listing). */
#include <stdbool.h>

#include <jansson.h>

#include <slotsync/catalog.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/plan.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

#include "fuzz.h"

#define PREFIX "/services/"
#define MAX_MSGS 256

struct seen {
    char *msgs[MAX_MSGS]; /* each message, dumped with sorted keys */
    size_t n;
    struct catalog *cat; /* NULL: only collect */
};

static void b64_roundtrip(const char *raw, size_t len)
{
    char *enc, *dec;
    size_t elen, dlen;

    FUZZ_ASSERT(etcd_b64_encode(raw, len, &enc, &elen) == 0, "encode");
    FUZZ_ASSERT(etcd_b64_decode(enc, elen, &dec, &dlen) == 0, "decode of our own encoding");
    FUZZ_ASSERT(dlen == len && memcmp(dec, raw, len) == 0, "base64 does not round-trip");
    free(enc);
    free(dec);
}

static void apply_kv(struct catalog *cat, const struct etcd_kv *kv)
{
    unsigned long long before = cat->rejected;
    char *err = NULL;
    int r;

    FUZZ_ASSERT(kv->key, "kv without a key");
    b64_roundtrip(kv->key, kv->key_len);
    if (kv->deleted) {
        r = catalog_delete(cat, kv->key, kv->key_len, &err);
    } else {
        FUZZ_ASSERT(kv->value, "put without a value");
        b64_roundtrip(kv->value, kv->value_len);
        r = catalog_put(cat, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision,
                        &err);
    }
    FUZZ_ASSERT(r >= 0, "catalog: %d", r);
    if (r == CATALOG_REJECTED)
        FUZZ_ASSERT(cat->rejected == before + 1 && err, "refused but not counted");
    else
        FUZZ_ASSERT(cat->rejected == before, "counted but not refused");
    free(err);
}

static int on_msg(json_t *msg, void *arg)
{
    struct seen *s = arg;
    struct etcd_watch_msg w;
    struct etcd_range_reply rr;
    char *err = NULL;

    if (s->n < MAX_MSGS) {
        s->msgs[s->n] = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        FUZZ_ASSERT(s->msgs[s->n], "dump");
        s->n++;
    }
    if (!s->cat)
        return 0;
    memset(&w, 0, sizeof(w));
    if (etcd_parse_watch(msg, &w, &err) == 0) {
        for (size_t i = 0; i < w.n_events; i++)
            apply_kv(s->cat, &w.events[i]);
        etcd_watch_msg_free(&w);
    }
    free(err);
    err = NULL;
    memset(&rr, 0, sizeof(rr));
    if (etcd_parse_range(msg, &rr, &err) == 0) {
        for (size_t i = 0; i < rr.n_kvs; i++) {
            FUZZ_ASSERT(!rr.kvs[i].deleted, "a listing with a delete");
            apply_kv(s->cat, &rr.kvs[i]);
        }
        etcd_range_reply_free(&rr);
    }
    free(err);
    return 0;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->msgs[i]);
}

/* Every service gets 4 slots against a HAProxy whose slots are known and
 * empty: plan, apply, plan again. */
static void converge(const struct catalog *cat)
{
    for (size_t i = 0; i < cat->n_services && i < 16; i++) {
        const struct catalog_service *svc = cat->services[i];
        struct server_view have[4];
        struct slot_table t;
        struct plan p;
        int r;

        memset(have, 0, sizeof(have));
        for (size_t k = 0; k < 4; k++)
            view_set_new_slot(&have[k]);
        FUZZ_ASSERT(endpoint_service_name_valid(svc->name), "service '%s'", svc->name);
        FUZZ_ASSERT(slots_init(&t, 4) == 0, "ENOMEM");
        FUZZ_ASSERT(slots_assign(&t, svc, have) >= 0, "assign");
        plan_init(&p);
        r = plan_backend(&p, svc->name, &t, have);
        FUZZ_ASSERT(r >= 0, "plan refused (%d)", r);
        fuzz_check_plan(&p);
        plan_reset(&p);
        r = plan_backend(&p, svc->name, &t, have);
        FUZZ_ASSERT(r == 0, "replan after apply gave %d commands", r);
        plan_free(&p);
        slots_free(&t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole = {0}, chunked = {0};
    struct etcd_stream s;
    uint32_t h = 2166136261u;
    size_t off = 0;
    int rw, rc = 0;

    whole.cat = catalog_new(PREFIX);
    FUZZ_ASSERT(whole.cat, "ENOMEM");
    etcd_stream_init(&s);
    rw = etcd_stream_feed(&s, (const char *)data, size, on_msg, &whole);
    etcd_stream_free(&s);
    converge(whole.cat);
    catalog_free(whole.cat);

    /* chunk sizes from the input's own hash, so a finding replays */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    etcd_stream_init(&s);
    while (off < size && rc == 0) {
        size_t n;

        h ^= h << 13;
        h ^= h >> 17;
        h ^= h << 5;
        n = 1 + h % (h & 1 ? 7 : 97);
        if (n > size - off)
            n = size - off;
        rc = etcd_stream_feed(&s, (const char *)data + off, n, on_msg, &chunked);
        off += n;
    }
    etcd_stream_free(&s);

    FUZZ_ASSERT(rw == rc, "whole gave %d, chunks gave %d", rw, rc);
    FUZZ_ASSERT(whole.n == chunked.n, "whole gave %zu messages, chunks %zu", whole.n, chunked.n);
    for (size_t i = 0; i < whole.n; i++)
        FUZZ_ASSERT(strcmp(whole.msgs[i], chunked.msgs[i]) == 0, "message %zu differs", i);
    seen_free(&whole);
    seen_free(&chunked);
    return 0;
}
