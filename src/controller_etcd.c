/* controller_etcd - the etcd sync's callbacks (etcd_sync.h): each key into
 * the catalog (feed.h), a listing's summary, the catalog's caps, and the
 * hold on an empty listing; the catalog's changes onto the backend table
 * (controller-int.h). */
#include <slotsync/controller-int.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <slotsync/apply.h>
#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/config.h>
#include <slotsync/etcd.h>
#include <slotsync/feed.h>
#include <slotsync/log.h>
#include <slotsync/mem.h>
#include <slotsync/metrics.h>
#include <slotsync/rollout.h>
#include <slotsync/table.h>

#define MOD CONTROLLER_MOD

/* Move the catalog's dirty flags onto the backends. */
void controller__collect_dirty(struct ctl *c)
{
    struct catalog_service *s;
    size_t pos = 0;

    while ((s = catalog_take_dirty(c->cat, &pos))) {
        struct backend *b = table_find(&c->tab, s->name);

        if (b) {
            b->dirty = true;
        } else if (s->n_endpoints) {
            /* A service the config does not name: a backend from defaults,
             * if no proxy slotsync does not own has its name. */
            if (!(b = table_add_service(&c->tab, s->name))) {
                log_error(MOD, "service %s: out of memory", s->name);
                catalog_mark_dirty(s);
                continue;
            }
            /* Claimed: HAProxy runs it already (our services file) and a
             * resync adopts its slots, or it needs a reload. */
            if (table_settle(&c->tab, b) && !c->render_only) {
                if (backend_names_has(&c->tab.proxies, s->name))
                    c->ap.resync_wanted = true;
                else
                    controller__place(c, b);
            }
        }
    }
    c->ap.map_dirty = true;
}

/* A service the config names is always served, and not counted. */
static bool cap_exempt(const char *service, void *arg)
{
    const struct ctl *c = arg;

    return config_find_service(c->cfg, service) != NULL;
}

/* Give the catalog c->cfg's caps (at start and on SIGHUP). */
void controller__set_caps(struct ctl *c)
{
    const struct catalog_limits l = {(size_t)c->cfg->max_services,
                                     (size_t)c->cfg->max_endpoints_per_service, cap_exempt, c};

    catalog_set_limits(c->cat, &l);
}

/* The services file (or -o's) from the first listing, then stop. */
static void render_now(struct ctl *c)
{
    c->render_err =
        rollout_render_file(c->cfg, c->tab.v, c->tab.n, c->cat, c->render_path, &c->render_errmsg);
    ev_break(c->loop, EVBREAK_ALL);
}

static void on_list_begin(void *arg)
{
    struct ctl *c = arg;

    c->listing = true;
    c->list_valid = 0;
    c->bulk_hold = c->bulk_hold_decided = false;
    catalog_relist_begin(c->cat);
}

static void on_kv(const struct etcd_kv *kv, void *arg)
{
    struct ctl *c = arg;
    int r = feed_kv(c->cat, kv, c->listing, c->render_only, c->obs.rejected);

    if (c->listing && !kv->deleted && r >= 0 && r != CATALOG_REJECTED)
        c->list_valid++;
    /* A change from the watch: its event-to-applied time starts now. */
    if (!c->listing && !c->render_only &&
        (r == CATALOG_ADDED || r == CATALOG_UPDATED || r == CATALOG_REMOVED))
        metrics_pending_add(&c->ap.events_pending, clock_mono());
    if (r == CATALOG_ADDED || r == CATALOG_UPDATED || r == CATALOG_REMOVED)
        c->live_changed = true;
}

/* Keys are there again after an empty listing: converge to them. */
static void registry_filled(struct ctl *c)
{
    if (c->empty_held)
        log_info(MOD, "etcd registry has %zu %s again: converging HAProxy to it",
                 catalog_count(c->cat), LOG_PLURAL(catalog_count(c->cat), "endpoint", "endpoints"));
    c->registry_empty = false;
    c->empty_held = false;
    c->listed = true;
    table_mark_dirty(&c->tab);
    c->ap.map_dirty = true;
}

/* A page of a first listing is in and more follow: its endpoints go to
 * slots HAProxy has empty while the rest is read (apply.h). */
static void on_list_page(void *arg)
{
    struct ctl *c = arg;

    if (!c->listed && !c->render_only)
        apply_listed_page(&c->ap);
}

static void on_list_end(int64_t revision, void *arg)
{
    struct ctl *c = arg;
    size_t removed = catalog_relist_end(c->cat);

    c->listing = false;
    log_info(MOD, "etcd listing applied: %zu %s in %zu %s at revision %lld%s",
             catalog_count(c->cat), LOG_PLURAL(catalog_count(c->cat), "endpoint", "endpoints"),
             c->cat->n_services, LOG_PLURAL(c->cat->n_services, "service", "services"),
             (long long)revision,
             removed ? " (some endpoints were removed while we were away)" : "");
    controller__collect_dirty(c);
    c->live_changed = true;
    if (c->render_only) {
        c->listed = true;
        render_now(c);
        return;
    }
    if (c->list_valid == 0 && !c->cfg->allow_empty_registry) {
        /* Decided in controller__on_prepare() once HAProxy's state is read again. */
        c->registry_empty = true;
        c->listed = false;
        c->empty_seen_resyncs = ~0ULL;
        return;
    }
    if (c->registry_empty)
        registry_filled(c);
    c->listed = true;
    c->bulk_due = true;
}

static void on_batch_end(int64_t revision, void *arg)
{
    struct ctl *c = arg;

    controller__collect_dirty(c);
    /* Watch events apply one by one as always (a service scaled to zero is
     * emptied); only a key that appears ends an empty listing's hold. */
    if (c->registry_empty && !c->listing && catalog_count(c->cat) > 0)
        registry_filled(c);
}

static void on_connected(bool up, const char *why, void *arg)
{
    struct ctl *c = arg;

    if (up)
        log_info(MOD, "etcd watch established (%s)",
                 etcd_transport_name((enum etcd_transport)c->cfg->etcd_transport));
    else
        /* the etcd module has said why, at warn, with its outage lines */
        log_info(MOD, "etcd watch lost (retrying)");
    if (!up && why)
        memprintf(&c->etcd_last_error, "%s", why);
    /* Down from the start until the first report: the clock runs from then. */
    if (up != c->etcd_up)
        c->etcd_since = clock_mono();
    c->etcd_up = up;
    /* render: a TLS failure or refused credentials will not go away by
     * waiting */
    if (!up && why && c->render_only &&
        (strstr(why, "TLS: ") || strstr(why, "etcd authentication as user"))) {
        c->render_err = -EPROTO;
        memprintf(&c->render_errmsg, "%s", why);
        ev_break(c->loop, EVBREAK_ALL);
    }
}

const struct etcd_sync_ops controller__sync_ops = {
    .list_begin = on_list_begin,
    .kv = on_kv,
    .list_page = on_list_page,
    .list_end = on_list_end,
    .batch_end = on_batch_end,
    .connected = on_connected,
};
