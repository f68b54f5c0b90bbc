/* catalog - the desired state, as etcd says.
 *
 * Two levels of sorted pointer arrays: services by name, each with its
 * endpoints by instance. Lookups are binary searches that first try the last
 * entry, because an etcd listing arrives in key order: loading 100,000 keys
 * then appends at O(1) amortized per key instead of shifting the array. An
 * out-of-order insert costs a memmove of pointers, which is cheap next to the
 * network round trip that brought the key.
 *
 * Counters: every put or delete event ends up in exactly one of puts,
 * deletes (accepted events, changed or not) or rejected (refused keys or
 * values), so puts + deletes + rejected is the number of events applied.
 */
#include <slotsync/catalog.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/endpoint.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/sorted.h>
#include <slotsync/vec.h>

static int cmp_service(const void *key, const void *elem)
{
    return strcmp(key, (*(struct catalog_service *const *)elem)->name);
}

static int cmp_endpoint(const void *key, const void *elem)
{
    return strcmp(key, (*(struct catalog_endpoint *const *)elem)->instance);
}

/* Set *at to the index of key among the n sorted elements at base and
 * return true, or to where it would be inserted and return false. The last
 * element is tried first (a listing arrives in key order), then
 * sorted_find() over the others. */
static bool find_sorted(const void *key, const void *base, size_t n, size_t size,
                        int (*cmp)(const void *key, const void *elem), size_t *at)
{
    bool found;
    int c;

    if (n > 0) {
        c = cmp(key, (const char *)base + (n - 1) * size);
        if (c >= 0) {
            *at = c == 0 ? n - 1 : n;
            return c == 0;
        }
        n--;
    }
    *at = sorted_find(key, base, n, size, cmp, &found);
    return found;
}

/* Set *at to the index of name among the sorted services and return true, or
 * to where it would be inserted and return false. */
static bool find_service(const struct catalog *cat, const char *name, size_t *at)
{
    return find_sorted(name, cat->services, cat->n_services, sizeof(*cat->services), cmp_service,
                       at);
}

/* Same as find_service(), for a sorted array of endpoints. */
static bool find_in(struct catalog_endpoint *const *v, size_t n, const char *instance, size_t *at)
{
    return find_sorted(instance, v, n, sizeof(*v), cmp_endpoint, at);
}

/* The sorted endpoints of one service. */
static bool find_endpoint(const struct catalog_service *svc, const char *instance, size_t *at)
{
    return find_in(svc->endpoints, svc->n_endpoints, instance, at);
}

/* Make room for one more service. Leaves the catalog as it was on failure. */
static int reserve_service(struct catalog *cat)
{
    /* Appends stay O(1) amortized: the capacity doubles, from 8. */
    return vec_reserve(&cat->services, &cat->cap, cat->n_services + 1, sizeof(*cat->services), 8);
}

/* Make room for one more endpoint in svc. Leaves svc as it was on failure. */
static int reserve_endpoint(struct catalog_service *svc)
{
    return vec_reserve(&svc->endpoints, &svc->cap, svc->n_endpoints + 1, sizeof(*svc->endpoints),
                       8);
}

/* The instance name lives in the same allocation, right after the struct,
 * so one free() releases both. */
static struct catalog_endpoint *endpoint_new(const char *instance, const struct endpoint *ep,
                                             int64_t mod_revision)
{
    size_t len = strlen(instance);
    struct catalog_endpoint *ce = malloc(sizeof(*ce) + len + 1);

    if (!ce)
        return NULL;
    ce->instance = (char *)(ce + 1);
    memcpy(ce->instance, instance, len + 1);
    ce->ep = *ep;
    ce->mod_revision = mod_revision;
    ce->seen = true;
    ce->unknown_hash = 0;
    return ce;
}

static void remove_endpoint(struct catalog_service *svc, size_t at)
{
    free(svc->endpoints[at]);
    memmove(svc->endpoints + at, svc->endpoints + at + 1,
            (svc->n_endpoints - at - 1) * sizeof(*svc->endpoints));
    svc->n_endpoints--;
    svc->dirty = true;
}

static void service_free(struct catalog_service *svc)
{
    if (!svc)
        return;
    for (size_t i = 0; i < svc->n_endpoints; i++)
        free(svc->endpoints[i]);
    free(svc->endpoints);
    for (size_t i = 0; i < svc->n_held; i++)
        free(svc->held[i]);
    free(svc->held);
    free(svc);
}

/* Insert a new endpoint into service slot si (existing service if found,
 * else a new service named service inserted at si), endpoint index ei. All
 * allocations happen before anything is linked, so -ENOMEM changes nothing. */
static int add_endpoint(struct catalog *cat, bool svc_exists, size_t si, size_t ei,
                        const char *service, const char *instance, const struct endpoint *ep,
                        int64_t mod_revision)
{
    struct catalog_service *svc = NULL, *fresh = NULL;
    struct catalog_endpoint *ce;

    if (svc_exists) {
        svc = cat->services[si];
    } else {
        if (reserve_service(cat) < 0)
            goto fail;
        fresh = calloc(1, sizeof(*fresh));
        if (!fresh)
            goto fail;
        /* endpoint_parse_key() bounded service to SERVICE_NAME_MAX */
        strcpy(fresh->name, service);
        svc = fresh;
        ei = 0;
    }
    if (reserve_endpoint(svc) < 0)
        goto fail;
    ce = endpoint_new(instance, ep, mod_revision);
    if (!ce)
        goto fail;

    if (fresh) {
        memmove(cat->services + si + 1, cat->services + si,
                (cat->n_services - si) * sizeof(*cat->services));
        cat->services[si] = fresh;
        cat->n_services++;
    }
    memmove(svc->endpoints + ei + 1, svc->endpoints + ei,
            (svc->n_endpoints - ei) * sizeof(*svc->endpoints));
    svc->endpoints[ei] = ce;
    svc->n_endpoints++;
    svc->dirty = true;
    return CATALOG_ADDED;

fail:
    service_free(fresh);
    return -ENOMEM;
}

/* Takes nothing; prefix is copied. */
struct catalog *catalog_new(const char *prefix)
{
    struct catalog *cat = calloc(1, sizeof(*cat));

    if (!cat)
        return NULL;
    cat->prefix = strdup(prefix ? prefix : "");
    if (!cat->prefix) {
        free(cat);
        return NULL;
    }
    return cat;
}

void catalog_free(struct catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n_services; i++)
        service_free(cat->services[i]);
    free(cat->services);
    free(cat->prefix);
    free(cat);
}

/* FNV-1a of the unknown-field list, never 0 (0 = none). */
static uint32_t unknown_hash(const char *unknown)
{
    uint32_t h = 2166136261u;

    if (!unknown[0])
        return 0;
    for (const unsigned char *p = (const unsigned char *)unknown; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h ? h : 1;
}

/* Unknown JSON fields are accepted (a newer registrar may add some), but a
 * misspelt known one ("wieght") would silently mean the default: one
 * warning per key, again only when its list of unknown fields changes. */
static void note_unknown(struct catalog *cat, struct catalog_endpoint *ce, const char *key,
                         size_t klen, const char *unknown)
{
    uint32_t h = unknown_hash(unknown);

    if (h && h != ce->unknown_hash) {
        char qkey[300];

        cat->unknown_fields++;
        log_quote(key, klen, qkey, sizeof(qkey));
        log_warn("catalog",
                 "etcd key \"%s\": unknown JSON field%s %s ignored (known: host, port, weight, "
                 "state); check the spelling",
                 qkey, strchr(unknown, ',') ? "s" : "", unknown);
    }
    ce->unknown_hash = h;
}

/* ---- caps (catalog_set_limits()) ----
 *
 * Held endpoints sit in their service's held[] array, out of endpoints[],
 * so every consumer (planner, render, status, dns) sees only what is
 * served. n_counted is kept at each change of a service between no
 * endpoint served and some; n_waiting is the number of services refused by
 * max_services, so a removal that frees a place looks for one only when
 * there is one to take on. */

static bool exempt(const struct catalog *cat, const char *name)
{
    return cat->limits.exempt && cat->limits.exempt(name, cat->limits.arg);
}

/* svc served before endpoints and serves svc->n_endpoints now. */
static void recount(struct catalog *cat, const struct catalog_service *svc, size_t before)
{
    bool was = before > 0, is = svc->n_endpoints > 0;

    if (was == is || exempt(cat, svc->name))
        return;
    if (is)
        cat->n_counted++;
    else if (cat->n_counted)
        cat->n_counted--;
}

/* No place under max_services for one more service named name. */
static bool services_full(const struct catalog *cat, const char *name)
{
    return cat->limits.max_services && cat->n_counted >= cat->limits.max_services &&
           !exempt(cat, name);
}

static bool endpoints_full(const struct catalog *cat, const struct catalog_service *svc)
{
    return cat->limits.max_endpoints && svc->n_endpoints >= cat->limits.max_endpoints;
}

static int reserve_held(struct catalog_service *svc)
{
    return vec_reserve(&svc->held, &svc->cap_held, svc->n_held + 1, sizeof(*svc->held), 8);
}

/* Put a new endpoint aside in svc (NULL: a new service named service,
 * inserted at si, with nothing served). All allocations happen before
 * anything is linked. Returns the service, or NULL on ENOMEM. */
static struct catalog_service *hold(struct catalog *cat, struct catalog_service *svc, size_t si,
                                    const char *service, const char *instance,
                                    const struct endpoint *ep, int64_t mod_revision)
{
    struct catalog_service *fresh = NULL;
    struct catalog_endpoint *ce = endpoint_new(instance, ep, mod_revision);
    size_t at;

    if (!ce)
        return NULL;
    if (!svc) {
        if (reserve_service(cat) < 0 || !(fresh = calloc(1, sizeof(*fresh))))
            goto fail;
        strcpy(fresh->name, service); /* bounded by endpoint_parse_key() */
        svc = fresh;
    }
    if (reserve_held(svc) < 0)
        goto fail;
    if (fresh) {
        memmove(cat->services + si + 1, cat->services + si,
                (cat->n_services - si) * sizeof(*cat->services));
        cat->services[si] = fresh;
        cat->n_services++;
    }
    find_in(svc->held, svc->n_held, instance, &at);
    memmove(svc->held + at + 1, svc->held + at, (svc->n_held - at) * sizeof(*svc->held));
    svc->held[at] = ce;
    svc->n_held++;
    return svc;

fail:
    free(ce);
    free(fresh);
    return NULL;
}

static void unhold(struct catalog *cat, struct catalog_service *svc, size_t at)
{
    free(svc->held[at]);
    memmove(svc->held + at, svc->held + at + 1, (svc->n_held - at - 1) * sizeof(*svc->held));
    svc->n_held--;
    if (svc->waiting && !svc->n_held) {
        svc->waiting = false;
        cat->n_waiting--;
    }
}

/* Serve svc's held endpoints while there is room, in instance order; each
 * is logged unless its service is taken on now (that has its own line). */
static void take_on_endpoints_(struct catalog *cat, struct catalog_service *svc, bool quiet)
{
    while (!svc->waiting && svc->n_held && !endpoints_full(cat, svc)) {
        struct catalog_endpoint *ce = svc->held[0];
        size_t at;

        if (reserve_endpoint(svc) < 0)
            return; /* out of memory: a later change or re-list tries again */
        memmove(svc->held, svc->held + 1, (svc->n_held - 1) * sizeof(*svc->held));
        svc->n_held--;
        find_endpoint(svc, ce->instance, &at);
        memmove(svc->endpoints + at + 1, svc->endpoints + at,
                (svc->n_endpoints - at) * sizeof(*svc->endpoints));
        svc->endpoints[at] = ce;
        svc->n_endpoints++;
        svc->dirty = true;
        if (!quiet)
            log_info("catalog",
                     "etcd key %s%s/%s taken on: service %s is under max_endpoints_per_service "
                     "(%zu) again",
                     cat->prefix, svc->name, ce->instance, svc->name, cat->limits.max_endpoints);
    }
}

static void take_on_endpoints(struct catalog *cat, struct catalog_service *svc)
{
    take_on_endpoints_(cat, svc, false);
}

/* Take a waiting service on: what it holds is served, up to the cap. */
static void take_on_service(struct catalog *cat, struct catalog_service *svc, const char *why)
{
    size_t before = svc->n_endpoints;

    svc->waiting = false;
    cat->n_waiting--;
    log_info("catalog", "etcd service \"%s\" taken on: %s", svc->name, why);
    take_on_endpoints_(cat, svc, true);
    recount(cat, svc, before);
}

/* Take waiting services on, in name order, while there is a place. */
static void take_on_services(struct catalog *cat)
{
    for (size_t i = 0; i < cat->n_services && cat->n_waiting; i++) {
        struct catalog_service *svc = cat->services[i];

        if (!svc->waiting)
            continue;
        if (services_full(cat, svc->name))
            return;
        take_on_service(cat, svc, "a place under max_services is free");
    }
}

/* A served endpoint is gone: a held one of the service takes its place;
 * a service that serves nothing now frees its place for a waiting one. */
static void remove_served(struct catalog *cat, struct catalog_service *svc, size_t at)
{
    size_t before = svc->n_endpoints;

    remove_endpoint(svc, at);
    take_on_endpoints(cat, svc);
    recount(cat, svc, before);
    if (before && !svc->n_endpoints)
        take_on_services(cat);
}

/* A new endpoint that a cap refuses: held, warned about once, counted.
 * Returns CATALOG_HELD, or -1 when no cap applies (the caller serves it). */
static int cap_new_endpoint(struct catalog *cat, struct catalog_service *svc, size_t si,
                            const char *service, const char *instance, const struct endpoint *ep,
                            int64_t mod_revision, const char *key, size_t klen)
{
    bool waiting = svc && svc->waiting;
    bool refuse_service = !waiting && (!svc || !svc->n_endpoints) && services_full(cat, service);
    char qkey[300];

    if (!waiting && !refuse_service && !(svc && endpoints_full(cat, svc)))
        return -1;
    if (!(svc = hold(cat, svc, si, service, instance, ep, mod_revision)))
        return -ENOMEM;
    if (waiting)
        return CATALOG_HELD; /* the service was warned about */
    if (refuse_service) {
        svc->waiting = true;
        cat->n_waiting++;
        cat->capped_services++;
        log_warn("catalog",
                 "etcd service \"%s\" (keys %s%s/...) refused: max_services (%zu) services are "
                 "served; it is taken on when one of them leaves",
                 service, cat->prefix, service, cat->limits.max_services);
        return CATALOG_HELD;
    }
    cat->capped_endpoints++;
    log_quote(key, klen, qkey, sizeof(qkey));
    log_warn("catalog",
             "etcd key \"%s\" refused: service %s has max_endpoints_per_service (%zu) endpoints; "
             "it is taken on when one of them leaves",
             qkey, service, cat->limits.max_endpoints);
    return CATALOG_HELD;
}

void catalog_set_limits(struct catalog *cat, const struct catalog_limits *l)
{
    cat->limits = *l;
    cat->n_counted = 0;
    for (size_t i = 0; i < cat->n_services; i++) {
        struct catalog_service *svc = cat->services[i];

        if (svc->n_endpoints && !exempt(cat, svc->name))
            cat->n_counted++;
    }
    for (size_t i = 0; i < cat->n_services; i++) {
        struct catalog_service *svc = cat->services[i];
        size_t before = svc->n_endpoints;

        if (svc->waiting && exempt(cat, svc->name))
            take_on_service(cat, svc, "it is in the config now");
        take_on_endpoints(cat, svc);
        recount(cat, svc, before);
    }
    take_on_services(cat);
}

void catalog_held(const struct catalog *cat, size_t *services, size_t *endpoints)
{
    *services = *endpoints = 0;
    for (size_t i = 0; i < cat->n_services; i++) {
        const struct catalog_service *svc = cat->services[i];

        if (svc->waiting)
            (*services)++;
        else
            *endpoints += svc->n_held;
    }
}

/* Borrows key and val. Note that mod_revision and seen are refreshed even
 * when the value is unchanged, so a re-list keeps the endpoint. */
/* catalog_put(), with what the key and value said in *out (which gets
 * the service and instance once the key parses, the endpoint once the value
 * does). */
static int put(struct catalog *cat, const char *key, size_t klen, const char *val, size_t vlen,
               int64_t mod_revision, struct catalog_parsed *out, char **errmsg)
{
    char *service = out->service, *instance = out->instance, unknown[256];
    struct catalog_service *svc = NULL;
    struct catalog_endpoint *ce;
    struct endpoint ep;
    size_t si, ei = 0, hi = 0;
    bool svc_exists, ep_exists = false, held_exists = false;
    int ret;

    if (endpoint_parse_key(cat->prefix, key, klen, service, instance, errmsg) < 0) {
        service[0] = instance[0] = '\0';
        cat->rejected++;
        return CATALOG_REJECTED;
    }
    out->key_ok = true;
    svc_exists = find_service(cat, service, &si);
    if (svc_exists) {
        svc = cat->services[si];
        ep_exists = find_endpoint(svc, instance, &ei);
        if (!ep_exists)
            held_exists = find_in(svc->held, svc->n_held, instance, &hi);
    }
    if (endpoint_parse_value_unknown(val, vlen, &ep, unknown, sizeof(unknown), errmsg) < 0) {
        /* A valid endpoint overwritten with garbage is gone: keeping the old
         * address would route to something etcd no longer vouches for. */
        cat->rejected++;
        if (ep_exists)
            remove_served(cat, svc, ei);
        else if (held_exists)
            unhold(cat, svc, hi);
        return CATALOG_REJECTED;
    }
    out->ep = ep;
    out->value_ok = true;
    if (ep_exists || held_exists) {
        ce = ep_exists ? svc->endpoints[ei] : svc->held[hi];
        ce->seen = true;
        ce->mod_revision = mod_revision;
        cat->puts++;
        note_unknown(cat, ce, key, klen, unknown);
        if (held_exists || endpoint_equal(&ce->ep, &ep)) {
            ce->ep = ep;
            return CATALOG_UNCHANGED; /* a held one's change serves nothing yet */
        }
        ce->ep = ep;
        svc->dirty = true;
        return CATALOG_UPDATED;
    }
    ret = cap_new_endpoint(cat, svc, si, service, instance, &ep, mod_revision, key, klen);
    if (ret == CATALOG_HELD) {
        cat->puts++;
        svc = cat->services[si];
        if (unknown[0] && find_in(svc->held, svc->n_held, instance, &hi))
            note_unknown(cat, svc->held[hi], key, klen, unknown);
        return ret;
    }
    if (ret == -ENOMEM)
        return ret;
    ret = add_endpoint(cat, svc_exists, si, ei, service, instance, &ep, mod_revision);
    if (ret >= 0) {
        cat->puts++;
        svc = cat->services[si];
        if (svc->n_endpoints == 1)
            recount(cat, svc, 0);
        if (unknown[0] && find_endpoint(svc, instance, &ei))
            note_unknown(cat, svc->endpoints[ei], key, klen, unknown);
    }
    return ret;
}

int catalog_put(struct catalog *cat, const char *key, size_t klen, const char *val, size_t vlen,
                int64_t mod_revision, char **errmsg)
{
    struct catalog_parsed parsed = {0};

    return put(cat, key, klen, val, vlen, mod_revision, &parsed, errmsg);
}

/* catalog_delete(), with the key's service and instance in *out. */
static int delete_key(struct catalog *cat, const char *key, size_t klen, struct catalog_parsed *out,
                      char **errmsg)
{
    char *service = out->service, *instance = out->instance;
    struct catalog_service *svc;
    size_t si, ei;

    if (endpoint_parse_key(cat->prefix, key, klen, service, instance, errmsg) < 0) {
        service[0] = instance[0] = '\0';
        cat->rejected++;
        return CATALOG_REJECTED;
    }
    out->key_ok = true;
    cat->deletes++;
    if (!find_service(cat, service, &si))
        return CATALOG_UNCHANGED;
    svc = cat->services[si];
    if (!find_endpoint(svc, instance, &ei)) {
        /* a held one: nothing served changes */
        if (find_in(svc->held, svc->n_held, instance, &ei))
            unhold(cat, svc, ei);
        return CATALOG_UNCHANGED;
    }
    remove_served(cat, svc, ei);
    return CATALOG_REMOVED;
}

/* Borrows key. */
int catalog_delete(struct catalog *cat, const char *key, size_t klen, char **errmsg)
{
    struct catalog_parsed parsed = {0};

    return delete_key(cat, key, klen, &parsed, errmsg);
}

int catalog_apply_event(struct catalog *cat, const struct etcd_kv *kv, struct catalog_parsed *out,
                        char **errmsg)
{
    memset(out, 0, sizeof(*out));
    if (kv->deleted)
        return delete_key(cat, kv->key, kv->key_len, out, errmsg);
    return put(cat, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision, out, errmsg);
}

void catalog_relist_begin(struct catalog *cat)
{
    cat->relisting = true;
    for (size_t i = 0; i < cat->n_services; i++) {
        struct catalog_service *svc = cat->services[i];

        for (size_t j = 0; j < svc->n_endpoints; j++)
            svc->endpoints[j]->seen = false;
        for (size_t j = 0; j < svc->n_held; j++)
            svc->held[j]->seen = false;
    }
}

/* One compaction pass per service, so sweeping many endpoints stays linear. */
size_t catalog_relist_end(struct catalog *cat)
{
    size_t removed = 0;

    if (!cat->relisting)
        return 0;
    for (size_t i = 0; i < cat->n_services; i++) {
        struct catalog_service *svc = cat->services[i];
        size_t kept = 0;

        /* held ones first: none that is gone may be taken on below */
        for (size_t j = svc->n_held; j-- > 0;)
            if (!svc->held[j]->seen) {
                unhold(cat, svc, j);
                removed++;
            }
        for (size_t j = 0; j < svc->n_endpoints; j++) {
            struct catalog_endpoint *ce = svc->endpoints[j];

            if (ce->seen) {
                svc->endpoints[kept++] = ce;
            } else {
                free(ce);
                removed++;
            }
        }
        if (kept != svc->n_endpoints) {
            size_t before = svc->n_endpoints;

            svc->n_endpoints = kept;
            svc->dirty = true;
            take_on_endpoints(cat, svc);
            recount(cat, svc, before);
        }
    }
    cat->relisting = false;
    take_on_services(cat);
    return removed;
}

struct catalog_service *catalog_find(const struct catalog *cat, const char *name)
{
    size_t at;

    return find_service(cat, name, &at) ? cat->services[at] : NULL;
}

size_t catalog_count(const struct catalog *cat)
{
    size_t n = 0;

    for (size_t i = 0; i < cat->n_services; i++)
        n += cat->services[i]->n_endpoints;
    return n;
}

struct catalog_service *catalog_take_dirty(struct catalog *cat, size_t *pos)
{
    while (*pos < cat->n_services) {
        struct catalog_service *s = cat->services[(*pos)++];

        if (s->dirty) {
            s->dirty = false;
            return s;
        }
    }
    return NULL;
}

void catalog_mark_dirty(struct catalog_service *s)
{
    s->dirty = true;
}
