/* backend - a service's backend as slotsync sees it, and the table of them.
 *
 * Pure: the sorted table (position, lookup, insert), the slot table sized to
 * HAProxy's (resize, the growth rule, fit), the ownership name sets and the
 * memory of refused commands. No I/O, no loop: tests/test_backend.c.
 */
#include <slotsync/backend.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/config.h>
#include <slotsync/names.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/slots.h>
#include <slotsync/sorted.h>
#include <slotsync/spare.h>
#include <slotsync/vec.h>
#include <slotsync/view.h>

static int cmp_backend(const void *key, const void *elem)
{
    return strcmp(key, (*(struct backend *const *)elem)->conf.name);
}

/* Index of the backend named name, or where it would go (*found false). */
size_t backend_pos(struct backend *const *v, size_t n, const char *name, bool *found)
{
    return sorted_find(name, v, n, sizeof(*v), cmp_backend, found);
}

struct backend *backend_lookup(struct backend *const *v, size_t n, const char *name)
{
    bool found;
    size_t i = backend_pos(v, n, name, &found);

    return found ? v[i] : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void backend_names_clear(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Add a copy of name (call backend_names_sort() once all are in). 0 or -ENOMEM. */
int backend_names_add(struct names *s, const char *name)
{
    char **nv = realloc(s->v, (s->n + 1) * sizeof(*nv));

    if (!nv)
        return -ENOMEM;
    s->v = nv;
    if (!(s->v[s->n] = strdup(name)))
        return -ENOMEM;
    s->n++;
    return 0;
}

void backend_names_sort(struct names *s)
{
    if (s->n)
        qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

bool backend_names_has(const struct names *s, const char *name)
{
    return s->n && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

int backend_proxy_names(const char *text, size_t len, struct names *be, struct names *fe)
{
    const char *p = text, *end = text + len;
    int r = 0;

    while (r == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[256], kw[16], name[RENDER_FRONTEND_NAME_SIZE + 1];

        const char *q = p;

        p += ll + 1;
        /* only the keyword and the name after the indentation matter */
        while (ll && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\v' || *q == '\f')) {
            q++;
            ll--;
        }
        snprintf(line, sizeof(line), "%.*s", (int)(ll < sizeof(line) - 1 ? ll : sizeof(line) - 1),
                 q);
        if (sscanf(line, " %15s %67s", kw, name) != 2 ||
            (!spare_proxy_name_valid(name) && !names_frontend_valid(name)))
            continue;
        if (be && (strcmp(kw, "backend") == 0 || strcmp(kw, "listen") == 0))
            r = backend_names_add(be, name);
        if (r == 0 && fe && (strcmp(kw, "frontend") == 0 || strcmp(kw, "listen") == 0))
            r = backend_names_add(fe, name);
    }
    if (be)
        backend_names_sort(be);
    if (fe)
        backend_names_sort(fe);
    return r;
}

/* Who holds the name of b's proxies if slotsync does not: a text for the
 * log, or NULL when the name is free or ours. */
const char *backend_name_taken(const struct backend *b, const struct backend_owners *o)
{
    const char *name = b->conf.name;

    if (backend_names_has(o->base_be, name))
        return "a backend or listen section of haproxy.base_config";
    if (b->conf.listen.set && backend_names_has(o->base_fe, name))
        return "a frontend or listen section of haproxy.base_config";
    if (b->conf.listen.set) {
        char fe[RENDER_FRONTEND_NAME_SIZE];

        /* the name of the frontend slotsync renders for it */
        names_frontend(name, fe);
        if (backend_names_has(o->base_fe, fe) || backend_names_has(o->base_be, fe))
            return "a proxy of haproxy.base_config with the name of its frontend";
    }
    if (!b->configured && o->proxies_known && backend_names_has(o->proxies, name) &&
        !backend_names_has(o->owned, name))
        return "a proxy of HAProxy's running configuration that slotsync did not render";
    return NULL;
}

/* A backend slotsync may touch (and render). */
bool backend_ours(const struct backend *b)
{
    return b->claimed && !b->foreign;
}

/* A new backend for conf (copied), inserted in order. NULL on ENOMEM. */
struct backend *backend_insert(struct backend ***v, size_t *n, const struct service_conf *conf,
                               bool configured)
{
    bool found;
    size_t i = backend_pos(*v, *n, conf->name, &found);
    struct backend *b, **nb;

    if (found)
        return (*v)[i];
    b = calloc(1, sizeof(*b));
    nb = realloc(*v, (*n + 1) * sizeof(*nb));
    if (!b || !nb) {
        free(b);
        if (nb)
            *v = nb;
        return NULL;
    }
    *v = nb;
    memmove(nb + i + 1, nb + i, (*n - i) * sizeof(*nb));
    nb[i] = b;
    (*n)++;
    b->conf = *conf;
    b->svc = &b->conf;
    b->configured = configured;
    b->dirty = true;
    return b;
}

void backend_free(struct backend *b)
{
    for (size_t i = 0; i < b->n_refused; i++)
        plan_refusal_clear(&b->refused[i]);
    free(b->refused);
    for (size_t i = 0; i < b->n_weight_warned; i++)
        free(b->weight_warned[i]);
    free(b->weight_warned);
    slots_free(&b->slots);
    free(b->have);
    free(b->drift);
    free(b->seen);
    free(b);
}

/* Size b's slot table (and HAProxy view) to n slots; new ones are unknown. */
int backend_resize(struct backend *b, size_t n)
{
    struct server_view *have;
    bool *drift;
    size_t old = b->slots.n;
    int r;

    if (n == old && b->have)
        return 0;
    if (n > old) {
        r = b->slots.slots ? slots_grow(&b->slots, n) : slots_init(&b->slots, n);
        if (r < 0)
            return r;
    } else {
        slots_shrink(&b->slots, n);
    }
    have = realloc(b->have, (n ? n : 1) * sizeof(*have));
    if (!have)
        return -ENOMEM;
    b->have = have;
    drift = realloc(b->drift, (n ? n : 1) * sizeof(*drift));
    if (!drift)
        return -ENOMEM;
    b->drift = drift;
    if (n > old) {
        memset(have + old, 0, (n - old) * sizeof(*have));
        memset(drift + old, 0, (n - old) * sizeof(*drift));
    }
    return 0;
}

int backend_add_slots(struct backend *b, size_t n)
{
    size_t old = b->slots.n;
    int r = backend_resize(b, n);

    if (r < 0)
        return r;
    /* A dynamic server starts in maintenance with no address. */
    for (size_t i = old; i < n; i++)
        view_set_new_slot(&b->have[i]);
    b->added_to = n;
    return 0;
}

/* The next slot count by the growth rule (slot_growth 0 = double). */
size_t backend_grow_step(const struct backend *b, size_t n)
{
    size_t step = b->conf.opt.slot_growth ? (size_t)b->conf.opt.slot_growth : (n ? n : 1);

    return n + step;
}

size_t backend_fit_slots(const struct backend *b, size_t n, size_t endpoints)
{
    if (n == 0)
        n = (size_t)b->conf.opt.slots;
    while (n < endpoints)
        n = backend_grow_step(b, n);
    return n;
}

/* Length of a slot command's kind ("set server B/sN weight"), so that a new
 * refusal of the same kind replaces the old one. */
static size_t cmd_kind_len(const char *cmd)
{
    const char *p = cmd;

    for (int spaces = 0; *p; p++)
        if (*p == ' ' && ++spaces == 4)
            break;
    return (size_t)(p - cmd);
}

struct plan_refusal *backend_refusal_find(struct backend *b, size_t slot, const char *cmd)
{
    size_t kl = cmd_kind_len(cmd);

    for (size_t i = 0; i < b->n_refused; i++)
        if (b->refused[i].slot == slot && cmd_kind_len(b->refused[i].cmd) == kl &&
            strncmp(b->refused[i].cmd, cmd, kl) == 0)
            return &b->refused[i];
    return NULL;
}

void backend_refusal_forget(struct backend *b, size_t slot, const char *cmd)
{
    struct plan_refusal *r = backend_refusal_find(b, slot, cmd);

    if (!r)
        return;
    plan_refusal_clear(r);
    *r = b->refused[--b->n_refused];
}

bool backend_refusal_note(struct backend *b, const struct plan_origin *o, const char *cmd,
                          const char *reason, double now, double warn_every)
{
    double warned_at = 0;
    struct plan_refusal *r;
    bool recent = false, added;

    if (o->slot < 0 || (size_t)o->slot >= b->slots.n)
        return false;
    r = backend_refusal_find(b, (size_t)o->slot, cmd);
    added = !r;
    if (added) {
        struct plan_refusal *nr = realloc(b->refused, (b->n_refused + 1) * sizeof(*nr));

        if (!nr)
            return false;
        b->refused = nr;
        r = &b->refused[b->n_refused++];
        memset(r, 0, sizeof(*r));
    }
    for (size_t i = 0; i < b->n_refused; i++)
        if (b->refused[i].slot == (size_t)o->slot && strcmp(b->refused[i].reason, reason) == 0 &&
            now - b->refused[i].warned_at < warn_every) {
            recent = true;
            warned_at = b->refused[i].warned_at;
        }
    if (plan_refusal_set(r, cmd, o, &b->slots.slots[o->slot], &b->have[o->slot]) < 0) {
        if (added) /* the zeroed entry just made: drop it */
            *r = b->refused[--b->n_refused];
        return recent;
    }
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->warned_at = recent ? warned_at : now;
    return recent;
}

/* ---- adopting HAProxy's state ---- */

static int cmp_row_by_slot(const void *a, const void *b)
{
    uint32_t x = ((const struct backend_row *)a)->slot;
    uint32_t y = ((const struct backend_row *)b)->slot;

    return (x > y) - (x < y);
}

int backend_seen_add(struct backend *b, size_t slot, const struct server_view *v)
{
    if (slot > UINT32_MAX)
        return 0; /* no HAProxy has that many: never contiguous */
    if (vec_reserve(&b->seen, &b->cap_seen, b->n_seen + 1, sizeof(*b->seen), 16) < 0)
        return -ENOMEM;
    b->seen[b->n_seen].slot = (uint32_t)slot;
    b->seen[b->n_seen].view = *v;
    b->n_seen++;
    return 0;
}

/* The rows read are adopted: their storage goes (a backend of 100,000
 * slots would otherwise keep 2.8 MB between resyncs). */
static void seen_drop(struct backend *b)
{
    free(b->seen);
    b->seen = NULL;
    b->n_seen = b->cap_seen = 0;
}

int backend_adopt(struct backend *b, bool trusted, size_t endpoints, struct backend_adoption *out)
{
    size_t k = 0, n_before = b->slots.n;
    bool was_present = b->present;

    memset(out, 0, sizeof(*out));
    if (!backend_ours(b))
        return 0;
    if (b->n_seen)
        qsort(b->seen, b->n_seen, sizeof(*b->seen), cmp_row_by_slot);
    while (k < b->n_seen && b->seen[k].slot == k)
        k++;
    out->gap = k < b->n_seen;
    out->contiguous = k;
    if (b->added_to && k < b->added_to) {
        out->runtime_lost = true;
        b->grow_by_reload = true;
    }
    b->added_to = 0;
    /* Not in HAProxy (yet): keep the table a pending render was built on. */
    if (!b->seen_backend && b->slots.n && !was_present)
        k = b->slots.n;
    else if (backend_resize(b, k) < 0) {
        seen_drop(b);
        return -ENOMEM;
    }
    /* What HAProxy has that we did not set (nothing failed, no reload or
     * restart since we last read it): drift, repaired and logged as such. */
    for (size_t i = 0; i < b->slots.n; i++)
        b->drift[i] = trusted && was_present && b->seen_backend && i < k && i < n_before &&
                      view_known(&b->have[i]) && !view_same(&b->have[i], &b->seen[i].view);
    if (b->seen_backend && k)
        for (size_t i = 0; i < k; i++)
            b->have[i] = b->seen[i].view;
    else if (b->slots.n)
        memset(b->have, 0, b->slots.n * sizeof(*b->have));
    seen_drop(b);
    out->changed = was_present != b->seen_backend || n_before != k;
    out->slots = k;
    b->present = b->seen_backend;
    if (b->present) {
        b->missing_noted = false;
    } else if (!b->missing_noted && (b->configured || endpoints)) {
        b->missing_noted = true;
        out->missing = true;
    }
    b->dirty = true;
    return 0;
}

/* ---- converging ---- */

/* The slot count b needs (*n) and whether growing to it can be done at
 * run time; false when b has the slots. */
static bool growth_needed(const struct backend *b, size_t endpoints, size_t *n, bool *runtime)
{
    *n = b->slots.n;
    /* A configured slot count above HAProxy's is honoured (a lower one
     * never takes a slot away: it may hold an endpoint). */
    if (*n < (size_t)b->conf.opt.slots)
        *n = (size_t)b->conf.opt.slots;
    if (endpoints > *n)
        *n = backend_fit_slots(b, *n, endpoints);
    *runtime = !b->grow_by_reload && config_balance_is_dynamic(b->conf.opt.balance);
    return *n > b->slots.n;
}

enum backend_grow backend_growth_additions(struct backend *b, size_t endpoints, size_t *n)
{
    bool runtime;

    if (growth_needed(b, endpoints, n, &runtime) && runtime)
        return BACKEND_GROW_RUNTIME;
    *n = b->slots.n;
    return BACKEND_GROW_NONE;
}

enum backend_grow backend_growth(struct backend *b, size_t endpoints, size_t *n)
{
    bool runtime;

    if (!growth_needed(b, endpoints, n, &runtime))
        return BACKEND_GROW_NONE;
    if (runtime)
        return BACKEND_GROW_RUNTIME;
    if (b->want_slots >= *n)
        return BACKEND_GROW_NONE;
    b->want_slots = *n;
    return BACKEND_GROW_RELOAD;
}

const struct plan_opts *backend_plan_opts(const struct backend *b, struct plan_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->static_weights = config_balance_is_static(b->conf.opt.balance);
    o->refused = b->refused;
    o->n_refused = b->n_refused;
    return o;
}

void backend_static_weights(struct backend *b,
                            void (*warn)(const struct backend *b, const struct slot *s, void *arg),
                            void *arg)
{
    char **warned = calloc(b->slots.n ? b->slots.n : 1, sizeof(*warned));
    size_t n = 0;

    for (size_t i = 0; warned && i < b->slots.n; i++) {
        const struct slot *s = &b->slots.slots[i];
        bool known = false;

        if (!s->instance || s->ep.weight == 0 || s->ep.weight == ENDPOINT_DEFAULT_WEIGHT)
            continue;
        for (size_t k = 0; k < b->n_weight_warned && !known; k++)
            known = b->weight_warned[k] && strcmp(b->weight_warned[k], s->instance) == 0;
        if (!known)
            warn(b, s, arg);
        if (!(warned[n] = strdup(s->instance)))
            break;
        n++;
    }
    for (size_t k = 0; k < b->n_weight_warned; k++)
        free(b->weight_warned[k]);
    free(b->weight_warned);
    b->weight_warned = warned;
    b->n_weight_warned = warned ? n : 0;
}

/* ---- settling ownership ---- */

bool backend_settle(struct backend *b, const struct backend_owners *o, bool need_proxies,
                    struct backend_settling *out)
{
    const char *by = backend_name_taken(b, o);

    memset(out, 0, sizeof(*out));
    if (by) {
        if (!b->foreign) {
            b->foreign = true;
            b->claimed = false;
            out->refused_by = by;
        }
        return false;
    }
    if (b->claimed)
        return false;
    out->freed = b->foreign;
    b->foreign = false;
    /* Without a list of HAProxy's proxies yet, an etcd service waits. */
    if (!b->configured && need_proxies && !o->proxies_known)
        return false;
    b->claimed = true;
    return true;
}

/* ---- a config read again ---- */

enum backend_reconf backend_reconf_of(const struct backend *b, const struct service_conf *sc,
                                      const struct service_options *defaults)
{
    if (sc) {
        if (!b->configured || !config_same_options(&b->conf.opt, &sc->opt) ||
            !config_same_listen(&b->conf.listen, &sc->listen))
            return BACKEND_RECONF_OPTIONS;
        if (b->conf.opt.slots != sc->opt.slots)
            return BACKEND_RECONF_SLOTS;
        return BACKEND_RECONF_SAME;
    }
    if (b->configured)
        return BACKEND_RECONF_LEFT;
    if (!config_same_options(&b->conf.opt, defaults))
        return BACKEND_RECONF_DEFAULTS;
    if (b->conf.opt.slots != defaults->slots)
        return BACKEND_RECONF_SLOTS;
    return BACKEND_RECONF_SAME;
}

enum backend_reconf backend_reconfigure(struct backend *b, const struct service_conf *sc,
                                        const struct service_options *defaults, int *old_slots)
{
    enum backend_reconf r = backend_reconf_of(b, sc, defaults);

    *old_slots = b->conf.opt.slots;
    if (sc) {
        if (r == BACKEND_RECONF_OPTIONS) {
            b->conf = *sc;
            b->configured = true;
            b->grow_by_reload = false;
        } else if (r == BACKEND_RECONF_SLOTS) {
            b->conf.opt.slots = sc->opt.slots;
        }
        b->conf.hosts = sc->hosts;
        b->conf.n_hosts = sc->n_hosts;
        return r;
    }
    switch (r) {
    case BACKEND_RECONF_LEFT: {
        struct service_conf conf = {0};

        snprintf(conf.name, sizeof(conf.name), "%s", b->conf.name);
        conf.opt = *defaults;
        b->conf = conf;
        b->configured = false;
        break;
    }
    case BACKEND_RECONF_DEFAULTS:
        b->conf.opt = *defaults;
        break;
    case BACKEND_RECONF_SLOTS:
        b->conf.opt.slots = defaults->slots;
        break;
    case BACKEND_RECONF_SAME:
    case BACKEND_RECONF_OPTIONS:
        break;
    }
    return r;
}

/* ---- spare backends ---- */

const char *backend_proxy(const struct backend *b)
{
    return b->proxy[0] ? b->proxy : b->conf.name;
}

bool backend_is_spare(const struct backend *b)
{
    return b->proxy[0] != '\0';
}

const char *backend_label(const struct backend *b)
{
    return b->label[0] ? b->label : b->conf.name;
}

void backend_set_proxy(struct backend *b, const char *proxy)
{
    if (!proxy || strcmp(proxy, b->conf.name) == 0 || strlen(proxy) >= sizeof(b->proxy)) {
        b->proxy[0] = b->label[0] = '\0';
        return;
    }
    snprintf(b->proxy, sizeof(b->proxy), "%s", proxy);
    spare_label(b->conf.name, b->proxy, b->label, sizeof(b->label));
}

int backend_host_routes(const struct config *cfg, struct backend *const *be, size_t n,
                        bool ours_only, struct host_route **out, size_t *n_out)
{
    struct render_backend *rb = calloc(n ? n : 1, sizeof(*rb));
    size_t k = 0;
    int r;

    if (!rb)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (be[i]->present && (!ours_only || backend_ours(be[i])))
            rb[k++] = (struct render_backend){be[i]->svc, &be[i]->slots, backend_proxy(be[i])};
    r = render_host_routes(cfg, rb, k, out, n_out);
    free(rb);
    return r;
}
