/* pool - the spare backends on the loop (pool.h). */
#include <slotsync/pool.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/clock.h>
#include <slotsync/file.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/spare.h>
#include <slotsync/table.h>

#define MOD "spare"
#define MAP_RETRY_MIN_S 0.5
#define MAP_RETRY_MAX_S 30.0
#define RETRY_JITTER 0.2

static void map_arm(struct pool *p, double after)
{
    ev_timer_stop(p->loop, &p->map_timer);
    ev_timer_set(&p->map_timer, after, 0.);
    ev_timer_start(p->loop, &p->map_timer);
}

/* The map file is written at the next loop iteration (bindings made in one
 * iteration share a write), unless a retry is waiting. */
static void map_dirty(struct pool *p)
{
    p->map_wanted = true;
    if (!p->holding && !ev_is_active(&p->map_timer))
        map_arm(p, 0.);
}

/* The routes the map file holds: every backend of ours HAProxy runs, in
 * its proxy (a backend whose name slotsync does not own gets no route from
 * it, as a render would write none). */
static int routes_now(struct pool *p, struct host_route **out, size_t *n_out)
{
    return backend_host_routes(p->cfg, p->tab->v, p->tab->n, true, out, n_out);
}

static void on_map_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pool *p = w->data;
    struct host_route *routes = NULL;
    size_t n = 0, len = 0;
    char *text = NULL, *err = NULL;
    double now = clock_mono(), elapsed = 0;
    int r;

    (void)loop;
    (void)revents;
    if (p->holding || !p->map_wanted)
        return;
    r = routes_now(p, &routes, &n);
    if (r == 0)
        r = render_hosts_map(routes, n, &text, &len);
    if (r == 0)
        r = file_write_atomic(p->cfg->hosts_map, text, len, &err);
    free(routes);
    free(text);
    if (r == 0) {
        double down = log_outage_end(&p->map_outage, now);

        if (down >= 0)
            log_info(MOD, "host map %s written again after %.0f s", p->cfg->hosts_map, down);
        p->stats.map_writes++;
        p->map_wanted = false;
        p->map_delay = 0;
        free(err);
        return;
    }
    p->stats.map_write_failures++;
    p->map_delay = p->map_delay < MAP_RETRY_MIN_S ? MAP_RETRY_MIN_S : p->map_delay * 2;
    if (p->map_delay > MAP_RETRY_MAX_S)
        p->map_delay = MAP_RETRY_MAX_S;
    if (log_outage_begin(&p->map_outage, now))
        log_error(MOD,
                  "cannot write the host map %s: %s (HAProxy runs the routes; a restart of "
                  "HAProxy would miss the spares' routes until it is written; retrying with "
                  "backoff)",
                  p->cfg->hosts_map, err ? err : strerror(-r));
    else if (log_outage_due(&p->map_outage, now, &elapsed))
        log_error(MOD, "cannot write the host map %s, still after %.0f s: %s", p->cfg->hosts_map,
                  elapsed, err ? err : strerror(-r));
    free(err);
    map_arm(p, p->map_delay * jitter_around(RETRY_JITTER));
}

static void on_refill_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pool *p = w->data;

    (void)loop;
    (void)revents;
    if (p->holding || spare_refill_plan(&p->sp, 0) == SPARE_REFILL_NONE)
        return;
    p->stats.refills++;
    p->ops->want_reload("spare pool low:", p->cfg->services_file, p->arg);
}

int pool_init(struct pool *p, struct ev_loop *loop, const struct config *cfg, struct table *tab,
              const struct pool_ops *ops, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->cfg = cfg;
    p->tab = tab;
    p->ops = ops;
    p->arg = arg;
    ev_timer_init(&p->refill_timer, on_refill_timer, 0., 0.);
    p->refill_timer.data = p;
    ev_timer_init(&p->map_timer, on_map_timer, 0., 0.);
    p->map_timer.data = p;
    return spare_pool_init(&p->sp, spare_count(cfg));
}

void pool_free(struct pool *p)
{
    if (p->loop) {
        ev_timer_stop(p->loop, &p->refill_timer);
        ev_timer_stop(p->loop, &p->map_timer);
    }
    spare_pool_free(&p->sp);
}

void pool_set_config(struct pool *p, const struct config *cfg)
{
    p->cfg = cfg;
}

struct usable {
    const struct names *proxies, *base;
};

/* Whether HAProxy runs spare i ("show backend" listed it) and it is ours
 * (base_config does not declare a proxy of its name). */
static bool spare_runs(size_t i, void *arg)
{
    const struct usable *u = arg;
    char name[SPARE_NAME_SIZE];

    spare_name(i, name);
    return backend_names_has(u->proxies, name) && !backend_names_has(u->base, name);
}

/* b lives in spare i now. */
static void live_in(struct backend *b, size_t i)
{
    char name[SPARE_NAME_SIZE];

    spare_name(i, name);
    backend_set_proxy(b, name);
}

bool pool_place(struct pool *p, struct backend *b, const struct names *proxies,
                const struct names *base, bool may_bind)
{
    struct usable u = {proxies, base};
    long i = spare_find(&p->sp, b->conf.name);
    char name[SPARE_NAME_SIZE];

    if (i >= 0) {
        spare_rename(&p->sp, (size_t)i, b->conf.name);
        live_in(b, (size_t)i);
        return true;
    }
    /* Only a service built from the defaults fits a spare, and only HTTP
     * ones are routed by Host. */
    if (!may_bind || b->configured || b->conf.opt.mode != MODE_HTTP || b->conf.listen.set)
        return false;
    i = spare_bind(&p->sp, b->conf.name, spare_runs, &u);
    if (i < 0) {
        if (p->sp.n)
            log_info(MOD, "service %s: no free spare backend (%zu in the pool): a reload adds it",
                     b->conf.name, p->sp.n);
        return false;
    }
    /* The spare's slots as every render leaves a free spare: empty, in
     * maintenance (what a dynamic server starts as), so that only the
     * filled ones are sent. */
    if (backend_resize(b, 0) < 0 || backend_add_slots(b, (size_t)p->cfg->defaults.slots) < 0) {
        spare_release(&p->sp, (size_t)i);
        return false;
    }
    live_in(b, (size_t)i);
    spare_name((size_t)i, name);
    b->present = true; /* HAProxy runs the spare; the next resync reads its slots */
    b->missing_noted = false;
    b->dirty = true;
    p->stats.bound++;
    log_info(MOD, "service %s: bound to spare backend %s, no reload (%zu of %zu spares free)",
             b->conf.name, name, spare_free_count(&p->sp), p->sp.n);
    map_dirty(p);
    if (spare_refill_plan(&p->sp, 0) != SPARE_REFILL_NONE && !ev_is_active(&p->refill_timer)) {
        log_info(MOD,
                 "fewer than half the spare backends are free: a reload renders fresh ones "
                 "in %d ms",
                 p->cfg->min_reload_interval_ms);
        ev_timer_set(&p->refill_timer, p->cfg->min_reload_interval_ms / 1e3, 0.);
        ev_timer_start(p->loop, &p->refill_timer);
    }
    return true;
}

void pool_adopt(struct pool *p, const struct host_route *routes, size_t n)
{
    struct spare_adoption a;

    if (!p->sp.n || p->holding)
        return;
    spare_adopt(&p->sp, routes, n, p->cfg->http_domain, &a);
    if (a.adopted || a.conflicts)
        log_info(MOD,
                 "HAProxy's host map: %zu services live in spare backends (%zu taken from it, "
                 "%zu routes disagreed and are set again)",
                 p->sp.n_bound, a.adopted, a.conflicts);
    p->stats.adopted += a.adopted;
    for (size_t i = 0; i < p->sp.n; i++) {
        const char *svc = spare_bound(&p->sp, i);
        struct backend *b;

        if (!svc)
            continue;
        /* A service that lost its endpoints while slotsync was away keeps
         * its spare (emptied) until the next render. */
        if ((b = table_add_service(p->tab, svc)))
            live_in(b, i);
    }
    if (a.adopted)
        map_dirty(p);
}

void pool_reload_started(struct pool *p)
{
    if (!p->ops)
        return;
    p->holding = true;
    ev_timer_stop(p->loop, &p->map_timer);
    ev_timer_stop(p->loop, &p->refill_timer);
}

void pool_reload_ended(struct pool *p, bool ok)
{
    if (!p->ops)
        return; /* render mode: no pool */
    p->holding = false;
    if (!ok) {
        if (p->sp.n)
            map_dirty(p);
        return;
    }
    for (size_t i = 0; i < p->tab->n; i++)
        backend_set_proxy(p->tab->v[i], NULL);
    if (spare_pool_reset(&p->sp, spare_count(p->cfg)) < 0)
        log_error(MOD, "spare backends: out of memory; none are bound until the next reload");
    p->map_wanted = false; /* the render wrote it */
}
