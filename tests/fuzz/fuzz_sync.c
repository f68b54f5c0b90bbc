/* fuzz_sync - the list+watch sequence as the daemon consumes it: listings
 * (relist begin, puts, end) and watch batches (puts, deletes) in any order,
 * into the catalog, kept slot tables and a model of HAProxy.
 *
 * Each input byte is one step: a listing's begin or end, a put of one of a
 * few keys with one of a few values (valid and hostile), a delete, a batch
 * end (converge), or a hand edit of HAProxy (drift). Oracles after every
 * batch end: the catalog holds exactly what a simple model of etcd's
 * semantics says (a bad value removes the key; a listing's end removes what
 * it did not list); an endpoint keeps its slot while it exists; the commands
 * are clean; once applied, planning again gives nothing.
 *
 * etcd.c's own HTTP-level state machine (reconnects, compaction, backoff)
 * is not driven here; the messages it decodes are fuzzed by fuzz_watch. */
#include <stdbool.h>

#include <slotsync/catalog.h>
#include <slotsync/plan.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

#include "fuzz.h"

#define PREFIX "/services/"
#define N_SLOTS 3

static const char *const keys[] = {
    PREFIX "web/a", PREFIX "web/b", PREFIX "web/c",  PREFIX "web/d",
    PREFIX "api/a", PREFIX "api/b", PREFIX "we b/x", PREFIX "web/",
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const values[] = {
    "127.0.0.1:8080",
    "127.0.0.2:8080",
    "{\"host\":\"::1\",\"port\":81,\"weight\":0,\"state\":\"drain\"}",
    "{\"host\":\"127.0.0.3\",\"port\":82,\"state\":\"maint\"}",
    "127.0.0.1:80;shutdown sessions server web/s1",
    "127.0.0.1:80\nshow info",
    "0.0.0.0:80",
    "{\"host\":\"127.0.0.1\",\"port\":\"80\"}",
};
#define N_VALUES (sizeof(values) / sizeof(values[0]))
static const char *const services[] = {"api", "web"}; /* sorted, as the catalog */

struct backend {
    struct slot_table t;
    struct server_view have[N_SLOTS * 8];
};

struct state {
    struct catalog *cat;
    int model[N_KEYS]; /* value index, or -1: not in etcd as a valid endpoint */
    bool listing;
    bool listed[N_KEYS];
    struct backend be[2];
};

static bool key_valid(size_t k)
{
    return k < 6;
}

static bool value_valid(size_t v)
{
    return v < 4;
}

static void have_init(struct backend *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        view_set_new_slot(&b->have[i]);
}

static void check_model(const struct state *st)
{
    size_t n = 0;

    for (size_t k = 0; k < N_KEYS; k++) {
        const char *svc_name = strncmp(keys[k], PREFIX "web/", 14) == 0 ? "web" : "api";
        const char *inst = strrchr(keys[k], '/') + 1;
        struct catalog_service *svc;
        bool found = false;

        if (st->model[k] < 0)
            continue;
        n++;
        svc = catalog_find(st->cat, svc_name);
        FUZZ_ASSERT(svc, "service %s missing", svc_name);
        for (size_t i = 0; i < svc->n_endpoints; i++)
            found |= strcmp(svc->endpoints[i]->instance, inst) == 0;
        FUZZ_ASSERT(found, "%s missing from the catalog", keys[k]);
    }
    FUZZ_ASSERT(catalog_count(st->cat) == n, "catalog holds %zu endpoints, model %zu",
                catalog_count(st->cat), n);
}

static void converge(struct state *st)
{
    check_model(st);
    for (size_t b = 0; b < 2; b++) {
        struct backend *be = &st->be[b];
        const struct catalog_service *svc = catalog_find(st->cat, services[b]);
        char *before[N_SLOTS * 8] = {0};
        size_t n_before = be->t.n;
        struct plan p;
        int r;

        for (size_t i = 0; i < be->t.n; i++)
            before[i] = be->t.slots[i].instance ? strdup(be->t.slots[i].instance) : NULL;
        FUZZ_ASSERT(slots_assign(&be->t, svc, be->have) >= 0, "assign");
        /* an endpoint that still exists is where it was */
        for (size_t i = 0; i < n_before; i++) {
            bool exists = false;

            if (!before[i])
                continue;
            for (size_t e = 0; svc && e < svc->n_endpoints; e++)
                exists |= strcmp(svc->endpoints[e]->instance, before[i]) == 0;
            if (exists)
                FUZZ_ASSERT(be->t.slots[i].instance &&
                                strcmp(be->t.slots[i].instance, before[i]) == 0,
                            "%s moved from slot %zu", before[i], i);
            free(before[i]);
        }
        plan_init(&p);
        r = plan_backend(&p, services[b], &be->t, be->have);
        FUZZ_ASSERT(r >= 0, "plan refused (%d)", r);
        fuzz_check_plan(&p);
        plan_reset(&p);
        r = plan_backend(&p, services[b], &be->t, be->have);
        FUZZ_ASSERT(r == 0, "replan after apply gave %d commands, first '%s'", r, p.cmds[0]);
        plan_free(&p);
    }
}

static void put(struct state *st, size_t k, size_t v)
{
    int r = catalog_put(st->cat, keys[k], strlen(keys[k]), values[v], strlen(values[v]), 1, NULL);

    FUZZ_ASSERT(r >= 0, "catalog_put: %d", r);
    FUZZ_ASSERT((r == CATALOG_REJECTED) == !(key_valid(k) && value_valid(v)), "put %s = %s gave %d",
                keys[k], values[v], r);
    if (!key_valid(k))
        return;
    st->model[k] = value_valid(v) ? (int)v : -1;
    if (st->listing)
        st->listed[k] = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st;

    memset(&st, 0, sizeof(st));
    st.cat = catalog_new(PREFIX);
    FUZZ_ASSERT(st.cat, "ENOMEM");
    for (size_t k = 0; k < N_KEYS; k++)
        st.model[k] = -1;
    for (size_t b = 0; b < 2; b++) {
        FUZZ_ASSERT(slots_init(&st.be[b].t, N_SLOTS) == 0, "ENOMEM");
        have_init(&st.be[b], 0, N_SLOTS * 8);
    }

    for (size_t i = 0; i < size && i < 4096; i++) {
        uint8_t op = data[i] & 7, arg = data[i] >> 3;

        switch (op) {
        case 0: /* a listing starts */
            catalog_relist_begin(st.cat);
            st.listing = true;
            memset(st.listed, 0, sizeof(st.listed));
            break;
        case 1:
        case 2:
        case 3: /* put */
            put(&st, arg % N_KEYS, (size_t)(arg / N_KEYS + op) % N_VALUES);
            break;
        case 4: { /* delete */
            size_t k = arg % N_KEYS;
            int r = catalog_delete(st.cat, keys[k], strlen(keys[k]), NULL);

            FUZZ_ASSERT(r >= 0, "catalog_delete: %d", r);
            if (key_valid(k))
                st.model[k] = -1;
            break;
        }
        case 5: /* the listing ends */
            if (!st.listing)
                break;
            catalog_relist_end(st.cat);
            for (size_t k = 0; k < N_KEYS; k++)
                if (!st.listed[k])
                    st.model[k] = -1;
            st.listing = false;
            converge(&st);
            break;
        case 6: /* a watch batch ends */
            if (!st.listing)
                converge(&st);
            break;
        case 7: { /* someone changes HAProxy by hand, or it grows a slot */
            struct backend *be = &st.be[arg & 1];
            size_t s = (size_t)(arg >> 1) % N_SLOTS;

            if ((arg >> 1) == 31 && be->t.n < N_SLOTS * 8) {
                size_t n = be->t.n;

                FUZZ_ASSERT(slots_grow(&be->t, n + 1) == 0, "ENOMEM");
                break;
            }
            if (arg & 2)
                be->have[s].weight = (be->have[s].weight + 7) % 257;
            else
                be->have[s].admin = (enum server_admin)((be->have[s].admin + 1) % 3);
            break;
        }
        }
    }
    if (!st.listing)
        converge(&st);

    catalog_free(st.cat);
    for (size_t b = 0; b < 2; b++)
        slots_free(&st.be[b].t);
    return 0;
}
