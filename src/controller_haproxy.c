/* controller_haproxy - HAProxy's side of the loop: the ev_prepare that
 * hands the changes to apply (one batch per iteration) and the reloads to
 * rollout, the callbacks of apply, pool, rollout and livefile, and
 * systemd's and the hosts file's view (controller-int.h). Where a new
 * service goes and whether an empty listing applies are policy.h's
 * answers, the one reload for a large plan bulk.h's; this file gathers
 * their facts and carries the answers out. */
#include <slotsync/controller-int.h>

#include <stdio.h>
#include <stdlib.h>

#include <slotsync/apply.h>
#include <slotsync/backend.h>
#include <slotsync/bulk.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/config.h>
#include <slotsync/dnshosts.h>
#include <slotsync/dynback.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/livefile.h>
#include <slotsync/log.h>
#include <slotsync/notify.h>
#include <slotsync/policy.h>
#include <slotsync/pool.h>
#include <slotsync/rollout.h>
#include <slotsync/runtime.h>
#include <slotsync/table.h>

#define MOD CONTROLLER_MOD

/* b's own backend at the next batch ("add backend", its slots, publish),
 * no spare, no reload (dynback.h). Returns whether it is done so. */
static bool dyn_place(struct ctl *c, struct backend *b)
{
    if (table_own(&c->tab, b->conf.name) < 0)
        return false;  /* no memory: a reload then */
    b->present = true; /* HAProxy runs it once the batch is answered */
    b->missing_noted = false;
    b->dyn_create = true;
    b->dirty = true;
    c->ap.map_dirty = true;
    return true;
}

/* The ways policy_place() allows for b (policy.h). */
static void place_ways(struct ctl *c, const struct backend *b, struct policy_place *w)
{
    const struct policy_place_facts f = {
        .render_only = c->render_only,
        .dynamic_usable = apply_dynamic_usable(&c->ap),
        .dynamic_fits = dynback_fits(b),
        .ours = backend_ours(b),
        .reload_busy = c->ro.reloading || rollout_pending(&c->ro),
    };

    policy_place(&f, w);
}

/* A claimed service HAProxy runs no backend for: a backend added at run
 * time, a spare (pool.h) or a reload, as policy_place() says. */
void controller__place(struct ctl *c, struct backend *b)
{
    struct policy_place w;

    place_ways(c, b, &w);
    if (w.dynamic && dyn_place(c, b))
        return;
    if (!pool_place(&c->pool, b, &c->tab.proxies, &c->tab.base_be, w.spare_bind))
        rollout_want(&c->ro, "new service", b->conf.name);
}

void controller__want_reload(const char *why, const char *name, void *arg)
{
    struct ctl *c = arg;

    rollout_want(&c->ro, why, name);
}

/* "show backend": every backend-capable proxy HAProxy runs. Services
 * waiting for it are settled: claimed, or refused when a proxy slotsync does
 * not own has their name. */
static void ap_proxies(void *arg)
{
    struct ctl *c = arg;

    for (size_t i = 0; i < c->tab.n; i++) {
        struct backend *b = c->tab.v[i];

        if ((!b->claimed || b->foreign) && !b->configured && table_settle(&c->tab, b) &&
            !backend_names_has(&c->tab.proxies, b->conf.name))
            controller__place(c, b);
    }
}

/* "show map": the spares' bindings HAProxy holds (pool.h). */
static void ap_spares_read(const struct host_route *routes, size_t n, void *arg)
{
    struct ctl *c = arg;

    pool_adopt(&c->pool, routes, n);
}

/* A backend of ours that HAProxy lost (or never loaded) is created at run
 * time again where it can be. */
static bool ap_dyn_missing(struct backend *b, void *arg)
{
    struct policy_place w;

    place_ways(arg, b, &w);
    return w.dynamic && dyn_place(arg, b);
}

/* HAProxy removed b at run time, or added it (apply.h): livefile writes
 * what HAProxy runs now. */
static void ap_runs_changed(void *arg)
{
    struct ctl *c = arg;

    c->live_changed = true;
}

/* HAProxy refused b's "add backend": it goes where it would have gone
 * without run-time backends. */
static void ap_dyn_refused(struct backend *b, void *arg)
{
    controller__place(arg, b);
}

const struct apply_ops controller__apply_ops = {
    .want_reload = controller__want_reload,
    .proxies = ap_proxies,
    .spares_read = ap_spares_read,
    .dyn_missing = ap_dyn_missing,
    .runs_changed = ap_runs_changed,
    .dyn_refused = ap_dyn_refused,
};

const struct pool_ops controller__pool_ops = {
    .want_reload = controller__want_reload,
};

/* HAProxy runs a new worker with the render: the file it runs declares the
 * backends slotsync owns. */
static void ro_loaded(void *arg)
{
    struct ctl *c = arg;

    c->ap.epoch++; /* a new worker: any read still in flight is stale */
    /* The render carries the run-time backends' defaults section (when the
     * base config allows it), and every backend HAProxy runs is rendered. */
    c->ap.dyn.running_has_defaults = true;
    for (size_t i = 0; i < c->tab.n; i++)
        c->tab.v[i]->dyn_created = false;
}

static void ro_resync(void *arg)
{
    struct ctl *c = arg;

    c->ap.resync_wanted = true;
}

const struct rollout_ops controller__rollout_ops = {
    .loaded = ro_loaded,
    .resync = ro_resync,
};

/* systemd's view (notify.h): ready once the listing went to HAProxy and
 * nothing more is waiting to go there. */
static void notify_controller(struct ctl *c)
{
    bool settled = c->ap.synced && !c->ap.resync_wanted && !c->ro.reloading &&
                   !rollout_pending(&c->ro) && !runtime_busy(c->ap.rt) && !c->ap.map_dirty;

    for (size_t i = 0; settled && i < c->tab.n; i++)
        settled = !c->tab.v[i]->dirty;
    notify_update(c->notify, &(struct notify_state){c->listed, c->ap.synced, settled,
                                                    catalog_count(c->cat), c->cat->n_services});
}

/* The "dns" hosts file (dnshosts.h): every configured service and every
 * discovered one with endpoints, once etcd was listed. */
static void dns_controller(struct ctl *c)
{
    const char **names;
    size_t n = 0;
    unsigned long long hash;

    if (!c->listed || !c->cfg->dns.hosts_file)
        return;
    names = calloc(c->cfg->n_services + c->cat->n_services + 1, sizeof(*names));
    if (!names)
        return; /* the next iteration tries again */
    for (size_t i = 0; i < c->cfg->n_services; i++)
        names[n++] = c->cfg->services[i].name;
    for (size_t i = 0; i < c->cat->n_services; i++)
        if (c->cat->services[i]->n_endpoints)
            names[n++] = c->cat->services[i]->name;
    hash = dnshosts_hash(names, n);
    if (dnshosts_due(&c->dns, c->cfg, hash, clock_mono()))
        dnshosts_update(&c->dns, c->cfg, names, n, clock_mono());
    free(names);
}

/* The services file on disk follows what HAProxy runs (livefile.h): once
 * etcd is listed and HAProxy's state was read, a key, a batch, a read of
 * HAProxy's state, a reload or a spare's binding renders it again. Never
 * while a reload is in flight: its render writes the file. */
static void live_controller(struct ctl *c)
{
    unsigned long long sig = c->ap.stats.batches + c->ap.stats.resyncs + c->ro.stats.reloads +
                             c->pool.stats.bound + c->pool.stats.adopted;

    livefile_hold(&c->live, c->ro.reloading);
    if (c->ap.synced)
        c->live_known = true;
    if (sig != c->live_sig) {
        c->live_sig = sig;
        c->live_changed = true;
    }
    if (!c->live_changed || !c->listed || !c->live_known || c->ro.reloading)
        return;
    c->live_changed = false;
    livefile_touch(&c->live);
}

/* The cost model's two figures (bulk.h), after feeding it what the applier
 * and the rollout measured since the last decision: the batches' time per
 * command, the last reload's time per server. A new HAProxy version starts
 * over from its own figures. Writes into figures a log fragment naming
 * where each came from. */
static void bulk_figures(struct ctl *c, struct bulk_input *in, char *figures, size_t len)
{
    const struct dynback_state *d = &c->ap.dyn;
    const struct apply_stats *as = &c->ap.stats;
    const struct rollout_stats *rs = &c->ro.stats;
    struct bulk_cost cmd, srv;

    if (d->version_known && (d->version.major != c->bulk_major || d->version.minor != c->bulk_minor)) {
        c->bulk_major = d->version.major;
        c->bulk_minor = d->version.minor;
        c->bulk_cmd = (struct bulk_learned){0};
        c->bulk_srv = (struct bulk_learned){0};
    }
    if (as->sampled_commands > c->bulk_fed_commands)
        bulk_learn(&c->bulk_cmd, bulk_batch_sample(as->sampled_commands - c->bulk_fed_commands,
                                                   as->sampled_seconds - c->bulk_fed_seconds));
    c->bulk_fed_commands = as->sampled_commands;
    c->bulk_fed_seconds = as->sampled_seconds;
    if (rs->reloads > c->bulk_fed_reloads && rs->last_reload_s > 0)
        bulk_learn(&c->bulk_srv, bulk_reload_sample(rs->last_reload_servers, rs->last_reload_s));
    c->bulk_fed_reloads = rs->reloads;
    cmd = bulk_cost(true, c->cfg->runtime_command_us, &c->bulk_cmd, d->version_known,
                    d->version.major, d->version.minor);
    srv = bulk_cost(false, c->cfg->reload_server_us, &c->bulk_srv, d->version_known,
                    d->version.major, d->version.minor);
    in->command_us = cmd.us;
    in->server_us = srv.us;
    snprintf(figures, len, "%.1f us a command (%s), %.1f us a server (%s)", cmd.us,
             bulk_cost_source_name(cmd.source), srv.us, bulk_cost_source_name(srv.source));
}

/* Issue 23: when a listing ended, or HAProxy's state was read (a restart, a
 * reload, a reconnect, the periodic resync), weigh the plan over the runtime socket
 * against one reload (bulk.h) and log the choice. A reload renders every
 * backend with its desired endpoints; its end reads HAProxy's state again,
 * so the planner sends only what changed meanwhile. Returns true when a
 * reload was asked: nothing is sent now. */
static bool bulk_controller(struct ctl *c)
{
    struct bulk_input in = {0};
    struct bulk_choice out;
    size_t commands = 0, servers = 0;
    char figures[160];

    if (!c->ap.adopted)
        return false;
    if (!c->bulk_due && c->bulk_resyncs == c->ap.stats.resyncs)
        return false;
    c->bulk_due = false;
    c->bulk_resyncs = c->ap.stats.resyncs;
    if (apply_estimate(&c->ap, false, BULK_MIN_COMMANDS, &commands, &servers) < 0)
        return false; /* out of memory: the socket, as before */
    in.commands = commands;
    in.servers = servers;
    bulk_figures(c, &in, figures, sizeof(figures));
    in.reload_allowed = rollout_can_start(&c->ro);
    in.path = (enum bulk_path)c->cfg->bulk_path;
    bulk_choose(&in, &out);
    if (commands < BULK_MIN_COMMANDS && !out.reload)
        return false; /* a small plan: the socket, no line */
    log_info(MOD,
             "bulk: %s for %zu runtime %s (%.2f s estimated) against one reload of %zu "
             "servers (%.2f s estimated): %s; by %s",
             out.reload ? "one reload" : "the runtime socket", commands,
             LOG_PLURAL(commands, "command", "commands"), out.runtime_s, servers, out.reload_s,
             out.why, figures);
    if (!out.reload)
        return false;
    c->stats.bulk_reloads++;
    rollout_want(&c->ro, "large plan, one reload for", "every backend");
    rollout_maybe_start(&c->ro, true);
    return true;
}

/* Issue 23: a first listing's pages go to HAProxy's empty slots as they are
 * read, so by the listing's end the plan left is small and the socket wins
 * although one reload would have been cheaper for the whole listing. So at
 * its first page (HAProxy's state known), the listing's size (etcd's count
 * for the prefix) scales this page's plan to the whole listing; when one
 * reload wins by that estimate, the pages are held and the listing's end
 * decides on the real plan (bulk_controller): nothing is lost if the
 * estimate was wrong, the socket takes it then. Returns true: hold. */
static bool bulk_hold_listing(struct ctl *c)
{
    const struct etcd_sync_stats *st = c->sync ? etcd_sync_stats(c->sync) : NULL;
    const struct bulk_listing_facts f = {
        .path = (enum bulk_path)c->cfg->bulk_path,
        .state_known = c->ap.adopted,
        .etcd_count = st && st->list_count > 0 ? (size_t)st->list_count : 0,
        .valid = c->list_valid,
    };
    struct bulk_input in = {0};
    struct bulk_choice out;
    size_t commands = 0, servers = 0;
    char figures[160];

    if (c->bulk_hold_decided)
        return c->bulk_hold;
    switch (bulk_listing_step(&f)) {
    case BULK_LISTING_HOLD:
        return true;
    case BULK_LISTING_SEND:
        return false;
    case BULK_LISTING_ESTIMATE:
        break;
    }
    c->bulk_hold_decided = true;
    if (apply_estimate(&c->ap, true, 0, &commands, &servers) < 0)
        return false;
    bulk_listing_scale(commands, servers, f.valid, f.etcd_count, &in.commands, &in.servers);
    bulk_figures(c, &in, figures, sizeof(figures));
    in.reload_allowed = rollout_can_start(&c->ro);
    in.path = BULK_PATH_AUTO;
    bulk_choose(&in, &out);
    c->bulk_hold = out.reload;
    if (in.commands >= BULK_MIN_COMMANDS)
        log_info(MOD,
                 "bulk: the first etcd listing holds %zu %s (etcd's count): about %zu runtime "
                 "commands (%.2f s estimated) against one reload of %zu servers (%.2f s "
                 "estimated): %s; %s; by %s",
                 f.etcd_count, LOG_PLURAL(f.etcd_count, "key", "keys"), in.commands,
                 out.runtime_s, in.servers, out.reload_s, out.why,
                 out.reload ? "its pages wait for the listing's end" : "its pages go out as read",
                 figures);
    return c->bulk_hold;
}

/* After an empty listing, with HAProxy's state read: hold while HAProxy has
 * a filled slot in one of our backends (a wiped etcd, or the wrong one, must
 * not empty every backend), apply the empty listing when it has none. Once
 * per read of HAProxy's state. */
static void decide_empty_registry(struct ctl *c)
{
    struct policy_empty_out d;
    size_t filled, backends = 0;

    if (c->empty_seen_resyncs == c->ap.stats.resyncs)
        return;
    c->empty_seen_resyncs = c->ap.stats.resyncs;
    filled = table_filled_slots(&c->tab, &backends);
    policy_empty_registry(filled, c->cfg->allow_empty_registry, c->empty_held, &d);
    if (d.act == POLICY_EMPTY_APPLY) {
        if (d.log)
            log_info(MOD, "%s: the empty etcd registry applies", d.why);
        c->empty_held = false;
        c->registry_empty = false;
        c->listed = true;
        table_mark_dirty(&c->tab);
        c->ap.map_dirty = true;
        return;
    }
    if (!d.log)
        return; /* held already */
    c->empty_held = true;
    c->stats.empty_listings_held++;
    log_error(MOD,
              "etcd registry is empty (no valid key under %s): HAProxy is kept as it is "
              "(%zu filled slots in %zu backends) until keys appear; set "
              "allow_empty_registry to apply an empty registry",
              c->cfg->etcd_prefix, filled, backends);
}

/* Runs once per loop iteration, before the loop blocks: everything that
 * changed during the iteration goes out as one batch. */
void controller__on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct ctl *c = w->data;

    if (c->render_only)
        return;
    notify_controller(c);
    dns_controller(c);
    live_controller(c);
    rollout_maybe_start(&c->ro, c->listed && c->ap.synced);
    /* During a reload the socket may reach the old worker or the new one:
     * what we read or change there could be lost or mistaken (a backend of
     * the new file "missing"). Hold everything; the reload's end resyncs. */
    if (c->ro.reloading || apply_busy(&c->ap))
        return;
    if (apply_resync_due(&c->ap)) {
        apply_resync(&c->ap);
        return;
    }
    if (c->registry_empty && !c->listed)
        decide_empty_registry(c);
    if (!c->listed) {
        /* part of a first listing: additions only, unless they wait for
         * the one reload the listing's end decides (bulk_hold_listing) */
        if (c->listing && !bulk_hold_listing(c))
            apply_send_additions(&c->ap);
        return;
    }
    if (bulk_controller(c))
        return;
    apply_send(&c->ap);
}
