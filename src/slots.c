/* slots - which endpoint sits in which server slot of a backend.
 *
 * slots_assign() works in two phases so that -ENOMEM leaves the table as it
 * was: first it decides, in scratch arrays, what each slot will hold and
 * copies the new instance names; only then does it touch the table.
 *
 * Costs, for n slots and m endpoints: finding a slot's instance is a binary
 * search over the endpoints (sorted by instance), O(n log m); adoption by
 * observed address sorts the free slots by address once and binary-searches
 * them per new endpoint, O((n + m) log n); the lowest-free fallback is one
 * forward scan. Nothing is O(n * m).
 */
#include <slotsync/slots.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/endpoint.h>
#include <slotsync/sorted.h>
#include <slotsync/view.h>

/* "s" + up to 9 digits: far above any backend size, and cannot overflow a
 * long even where long is 32 bits. */
#define SLOT_INDEX_DIGITS_MAX 9

#define NO_ENDPOINT SIZE_MAX

/* What slots_assign() decided for one slot. */
enum slot_fate {
    SLOT_FREE = 0, /* stays or becomes free */
    SLOT_KEPT,     /* keeps its instance; ep updated in place */
    SLOT_NEW,      /* takes a new instance */
};

/* A free slot HAProxy already has an address for, as a candidate for
 * adoption. Sorted by (addr, port, slot) so that equal addresses are
 * adjacent and the lowest slot comes first. */
struct adoption {
    const struct server_view *at; /* borrowed from observed: address and port */
    size_t slot;
};

int slots_init(struct slot_table *t, size_t n)
{
    t->slots = NULL;
    t->n = 0;
    t->overflow = 0;
    return slots_grow(t, n);
}

int slots_grow(struct slot_table *t, size_t n)
{
    struct slot *s;

    if (n < t->n)
        return -EINVAL;
    if (n == t->n)
        return 0;
    if (n > SIZE_MAX / sizeof(*s))
        return -ENOMEM;
    s = realloc(t->slots, n * sizeof(*s));
    if (!s)
        return -ENOMEM;
    for (size_t i = t->n; i < n; i++)
        s[i] = (struct slot){0};
    t->slots = s;
    t->n = n;
    return 0;
}

void slots_shrink(struct slot_table *t, size_t n)
{
    for (size_t i = n; i < t->n; i++) {
        free(t->slots[i].instance);
        t->slots[i].instance = NULL;
    }
    if (n < t->n)
        t->n = n;
}

void slots_free(struct slot_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->slots[i].instance);
    free(t->slots);
    t->slots = NULL;
    t->n = 0;
    t->overflow = 0;
}

static int cmp_instance(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct catalog_endpoint *const *)elem)->instance);
}

/* Index of instance among the service's endpoints, or NO_ENDPOINT. */
static size_t find_instance(const struct catalog_service *svc, const char *instance)
{
    bool found;
    size_t at;

    if (!svc)
        return NO_ENDPOINT;
    at = sorted_find(instance, svc->endpoints, svc->n_endpoints, sizeof(*svc->endpoints),
                     cmp_instance, &found);
    return found ? at : NO_ENDPOINT;
}

static int adoption_cmp_addr(const struct adoption *a, const struct server_view *v)
{
    int c = (a->at->family > v->family) - (a->at->family < v->family);

    if (c)
        return c;
    if ((c = memcmp(a->at->addr, v->addr, sizeof(v->addr))))
        return c;
    return (a->at->port > v->port) - (a->at->port < v->port);
}

static int adoption_cmp(const void *pa, const void *pb)
{
    const struct adoption *a = pa, *b = pb;
    int c = adoption_cmp_addr(a, b->at);

    if (c)
        return c;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* A view (the key) against a candidate, by (addr, port). */
static int cmp_view_adoption(const void *key, const void *elem)
{
    int c = adoption_cmp_addr(elem, key);

    return (c < 0) - (c > 0);
}

/* First candidate whose (addr, port) is not below the given one. */
static size_t adoption_lower_bound(const struct adoption *cand, size_t n,
                                   const struct server_view *v)
{
    return sorted_find(v, cand, n, sizeof(*cand), cmp_view_adoption, NULL);
}

/* First candidate at or after k that is not taken. skip[k] == k means k is
 * free; a taken k points further right (path halving keeps chains short even
 * when many endpoints share one address). skip[n] == n is the sentinel. */
static size_t next_untaken(size_t *skip, size_t k)
{
    while (skip[k] != k) {
        skip[k] = skip[skip[k]];
        k = skip[k];
    }
    return k;
}

/* Borrows svc and observed; the table copies the instance names it keeps.
 * partial: slots_assign_partial(). */
static int assign(struct slot_table *t, const struct catalog_service *svc,
                  const struct server_view *observed, bool partial)
{
    size_t m = svc ? svc->n_endpoints : 0, n = t->n;
    unsigned char *fate = NULL, *placed = NULL;
    size_t *held = NULL, *skip = NULL;
    struct adoption *cand = NULL;
    char **names = NULL;
    size_t n_cand = 0, n_new = 0, overflow = 0, changed = 0, cursor, k;
    int ret = -ENOMEM;

    /* +1 so that empty tables and services still get a valid pointer */
    fate = calloc(n + 1, sizeof(*fate));
    held = calloc(n + 1, sizeof(*held));
    placed = calloc(m + 1, sizeof(*placed));
    if (!fate || !held || !placed)
        goto out;

    /* (1) and (2): a slot keeps its instance if the service still has it.
     * A second slot claiming an instance already placed is stale: free it. */
    for (size_t i = 0; i < n; i++) {
        size_t j;

        if (!t->slots[i].instance)
            continue;
        j = find_instance(svc, t->slots[i].instance);
        if (j == NO_ENDPOINT || placed[j])
            continue;
        placed[j] = 1;
        fate[i] = SLOT_KEPT;
        held[i] = j;
    }

    /* (3a) adoption: a new endpoint takes a free slot where HAProxy already
     * has its address and port. This runs for every new endpoint before any
     * takes a lowest-free slot, so that an endpoint without a match cannot
     * take a slot another one would have adopted (after a restart that would
     * turn a no-op into two address changes). */
    if (observed && m > 0) {
        cand = malloc((n + 1) * sizeof(*cand));
        if (!cand)
            goto out;
        for (size_t i = 0; i < n; i++) {
            if (fate[i] != SLOT_FREE || !view_known(&observed[i]) || observed[i].port == 0)
                continue;
            cand[n_cand++] = (struct adoption){&observed[i], i};
        }
    }
    if (n_cand > 0) {
        qsort(cand, n_cand, sizeof(*cand), adoption_cmp);
        skip = malloc((n_cand + 1) * sizeof(*skip));
        if (!skip)
            goto out;
        for (k = 0; k <= n_cand; k++)
            skip[k] = k;
        for (size_t j = 0; j < m; j++) {
            const struct endpoint *ep = &svc->endpoints[j]->ep;
            struct server_view at = {0};

            if (placed[j] || view_set_addr(&at, ep->host) < 0)
                continue;
            at.port = ep->port;
            k = adoption_lower_bound(cand, n_cand, &at);
            k = next_untaken(skip, k);
            if (k == n_cand || adoption_cmp_addr(&cand[k], &at) != 0)
                continue;
            skip[k] = k + 1;
            placed[j] = 1;
            fate[cand[k].slot] = SLOT_NEW;
            held[cand[k].slot] = j;
            n_new++;
        }
    }

    /* (3b) the rest, in instance order, take the lowest free slots (while
     * the endpoints are partly known, only those where HAProxy has no
     * address: one HAProxy has filled may hold an endpoint not known yet);
     * (4) whatever does not fit is overflow (none counted while partial:
     * it waits for the rest). */
    cursor = 0;
    for (size_t j = 0; j < m; j++) {
        if (placed[j])
            continue;
        while (cursor < n && (fate[cursor] != SLOT_FREE ||
                              (partial && observed && view_known(&observed[cursor]) &&
                               !view_empty(&observed[cursor]))))
            cursor++;
        if (cursor == n) {
            overflow += !partial;
            continue;
        }
        fate[cursor] = SLOT_NEW;
        held[cursor] = j;
        n_new++;
    }

    names = calloc(n_new + 1, sizeof(*names));
    if (!names)
        goto out;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (fate[i] != SLOT_NEW)
            continue;
        names[k] = strdup(svc->endpoints[held[i]]->instance);
        if (!names[k])
            goto out;
        k++;
    }

    /* Commit: nothing below can fail. */
    k = 0;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &t->slots[i];
        const struct endpoint *ep;

        switch ((enum slot_fate)fate[i]) {
        case SLOT_FREE:
            if (s->instance) {
                free(s->instance);
                *s = (struct slot){0};
                changed++;
            }
            break;
        case SLOT_KEPT:
            ep = &svc->endpoints[held[i]]->ep;
            if (!endpoint_equal(&s->ep, ep)) {
                s->ep = *ep;
                changed++;
            }
            break;
        case SLOT_NEW:
            free(s->instance);
            s->instance = names[k];
            names[k++] = NULL;
            s->ep = svc->endpoints[held[i]]->ep;
            changed++;
            break;
        }
    }
    t->overflow = overflow;
    ret = changed > INT_MAX ? INT_MAX : (int)changed;

out:
    if (names)
        for (k = 0; k < n_new; k++)
            free(names[k]);
    free(names);
    free(skip);
    free(cand);
    free(placed);
    free(held);
    free(fate);
    return ret;
}

long slots_index_of(const char *server_name)
{
    long v = 0;
    size_t digits = 0;

    if (!server_name || server_name[0] != 's' || server_name[1] < '1' || server_name[1] > '9')
        return -1;
    for (const char *c = server_name + 1; *c; c++) {
        if (*c < '0' || *c > '9' || ++digits > SLOT_INDEX_DIGITS_MAX)
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v - 1;
}

size_t slots_used(const struct slot_table *t)
{
    size_t used = 0;

    for (size_t i = 0; i < t->n; i++)
        used += t->slots[i].instance != NULL;
    return used;
}

int slots_assign(struct slot_table *t, const struct catalog_service *svc,
                 const struct server_view *observed)
{
    return assign(t, svc, observed, false);
}

int slots_assign_partial(struct slot_table *t, const struct catalog_service *svc,
                         const struct server_view *observed)
{
    return assign(t, svc, observed, true);
}
