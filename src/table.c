/* table - the backend table, and who owns which proxy name (table.h). */
#include <slotsync/table.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/config.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/view.h>

#define MOD "sync"

void table_init(struct table *t, const struct config *cfg, bool need_proxies)
{
    memset(t, 0, sizeof(*t));
    t->cfg = cfg;
    t->need_proxies = need_proxies;
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        backend_free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
    backend_names_clear(&t->owned);
    backend_names_clear(&t->base_be);
    backend_names_clear(&t->base_fe);
    backend_names_clear(&t->proxies);
}

struct backend *table_find(const struct table *t, const char *name)
{
    return backend_lookup(t->v, t->n, name);
}

void table_note_routing(const struct table *t, struct backend *b)
{
    bool unrouted = t->cfg && !render_service_routed(t->cfg, &b->conf);

    if (unrouted && !b->unrouted)
        log_warn(MOD,
                 "backend %s: nothing routes to it (no services.%s.listen, and no "
                 "http_frontend bind and domain for it): HAProxy gets the backend, no frontend "
                 "reaches it",
                 b->conf.name, b->conf.name);
    b->unrouted = unrouted;
}

struct backend *table_add(struct table *t, const struct service_conf *conf, bool configured)
{
    struct backend *b = backend_insert(&t->v, &t->n, conf, configured);

    if (b)
        table_note_routing(t, b);
    return b;
}

struct backend *table_add_service(struct table *t, const char *service)
{
    struct service_conf conf;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", service);
    conf.opt = t->cfg->defaults;
    return table_add(t, &conf, false);
}

void table_mark_dirty(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->v[i]->dirty = true;
}

size_t table_filled_slots(const struct table *t, size_t *backends)
{
    size_t filled = 0;

    *backends = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct backend *b = t->v[i];
        size_t k = 0;

        for (size_t j = 0; b->present && j < b->slots.n; j++)
            if (!view_empty(&b->have[j])) /* an unknown slot counts as filled */
                k++;
        filled += k;
        *backends += k != 0;
    }
    return filled;
}

void table_drop(struct table *t, struct backend *b)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i] != b)
            continue;
        backend_free(b);
        memmove(t->v + i, t->v + i + 1, (t->n - i - 1) * sizeof(*t->v));
        t->n--;
        return;
    }
}

struct backend_owners table_owners(const struct table *t)
{
    return (struct backend_owners){&t->base_be, &t->base_fe, &t->proxies, &t->owned,
                                   t->proxies_known};
}

const char *table_name_taken(const struct table *t, const struct backend *b)
{
    const struct backend_owners o = table_owners(t);

    return backend_name_taken(b, &o);
}

/* A refused backend is left alone: nothing is sent to its proxy, nothing
 * of it is rendered. */
bool table_settle(struct table *t, struct backend *b)
{
    const struct backend_owners o = table_owners(t);
    struct backend_settling s;
    bool claimed = backend_settle(b, &o, t->need_proxies, &s);

    if (s.refused_by) {
        t->refused_services++;
        if (b->configured)
            log_error(MOD,
                      "services.%s refused: the name is taken by %s; slotsync leaves that "
                      "proxy alone and renders nothing for it",
                      b->conf.name, s.refused_by);
        else
            log_warn(MOD,
                     "etcd service \"%s\" (keys %s%s/...) refused: the name is taken by %s; "
                     "slotsync leaves that proxy alone and renders nothing for it",
                     b->conf.name, t->cfg->etcd_prefix, b->conf.name, s.refused_by);
    }
    if (s.freed)
        log_info(MOD, "service %s: its name is free again: slotsync takes it", b->conf.name);
    return claimed;
}

int table_own(struct table *t, const char *name)
{
    int r = backend_names_add(&t->owned, name);

    if (r == 0)
        backend_names_sort(&t->owned);
    return r;
}

void table_set_owned(struct table *t, struct names *rendered)
{
    backend_names_clear(&t->owned);
    t->owned = *rendered;
    *rendered = (struct names){0};
}

void table_set_proxies(struct table *t, struct names *listed)
{
    backend_names_clear(&t->proxies);
    t->proxies = *listed;
    *listed = (struct names){0};
    t->proxies_known = true;
}

void table_set_base_names(struct table *t, struct names *be, struct names *fe)
{
    backend_names_clear(&t->base_be);
    backend_names_clear(&t->base_fe);
    t->base_be = *be;
    t->base_fe = *fe;
    *be = (struct names){0};
    *fe = (struct names){0};
}

void table_settle_again(struct table *t,
                        void (*want_reload)(const char *why, const char *name, void *arg),
                        void *arg)
{
    for (size_t i = 0; i < t->n; i++) {
        struct backend *b = t->v[i];
        bool was_refused = b->foreign;

        table_note_routing(t, b);
        b->claimed = b->claimed && !table_name_taken(t, b);
        if (table_settle(t, b) && was_refused && !backend_names_has(&t->proxies, b->conf.name))
            want_reload("name free again for", b->conf.name, arg);
        if (b->foreign)
            b->present = false;
    }
}

int table_take_rendered(struct table *t, const char *path, const char *text, size_t len,
                        void (*want_reload)(const char *why, const char *name, void *arg),
                        void *arg)
{
    struct render_file_backend *fb = NULL;
    size_t n = 0, added = 0;
    int r;

    r = render_parse_backends(text, len, &fb, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct backend *b;

        r = backend_names_add(&t->owned, fb[i].name);
        if (r < 0 || table_find(t, fb[i].name))
            continue;
        if (!(b = table_add_service(t, fb[i].name))) {
            r = -ENOMEM;
            break;
        }
        added++;
        /* The defaults changed while slotsync was away. */
        if (!render_backend_matches(&fb[i], &b->conf.opt))
            want_reload("defaults changed for", b->conf.name, arg);
    }
    backend_names_sort(&t->owned);
    if (added)
        log_info(MOD, "%s: %zu backends of services named only in etcd", path, added);
    for (size_t i = 0, old = 0; r == 0 && i < n; i++) {
        char line[SERVICE_NAME_MAX + 16];

        /* An older slotsync named a frontend after its backend (3.3+ cannot
         * load that): it is adopted as it runs, renamed at the next reload. */
        snprintf(line, sizeof(line), "\nfrontend %s\n", fb[i].name);
        if (strstr(text, line) && !old++)
            log_info(MOD,
                     "%s: frontends named as their backends (an older slotsync's naming, "
                     "refused by HAProxy 3.3+); adopted as they run, written as "
                     "\"frontend " RENDER_FRONTEND_PREFIX "<service>\" at the next reload",
                     path);
    }
    free(fb);
    return r;
}
