/* controller_report - what the daemon says about itself: the modules'
 * state gathered into a struct report_state for report.h (the admin
 * endpoint's /readyz, /metrics and /status, SIGUSR1's dump) and the summary
 * at the end of the loop (controller-int.h). */
#include <slotsync/controller-int.h>

#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>
#include <slotsync/report.h>
#include <slotsync/spare.h>

#define MOD CONTROLLER_MOD

/* What the modules know now, for report.h (borrowed until the loop runs
 * again). */
static struct report_state report_of(const struct ctl *c)
{
    return (struct report_state){
        .now = clock_mono(),
        .etcd = c->sync ? etcd_sync_stats(c->sync) : NULL,
        .listed = c->listed,
        .cat = c->cat,
        .synced = c->ap.synced,
        .runtime_down = c->ap.runtime_down,
        .last_resync_at = c->ap.last_resync_at,
        .batches = c->ap.stats.batches,
        .commands = c->ap.stats.commands,
        .command_failures = c->ap.stats.command_failures,
        .runtime_errors = c->ap.stats.runtime_errors,
        .runtime_added_servers = c->ap.stats.grown,
        .resyncs = c->ap.stats.resyncs,
        .drift_repairs = c->ap.stats.drift_repairs,
        .last_reload_at =
            c->ro.last_reload_start > 0 ? c->ro.last_reload_start : c->ro.haproxy_last_reload_at,
        .last_reload_by_haproxy = c->ro.last_reload_start <= 0 && c->ro.haproxy_last_reload_at > 0,
        .last_reload_cause =
            c->ro.last_reload_start > 0 ? metrics_cause_name(c->ro.reload_cause) : NULL,
        .haproxy_reloads = c->ro.haproxy_reloads,
        .last_reload_failed = c->ro.last_reload_failed,
        .reloading = c->ro.reloading,
        .reloads = c->ro.stats.reloads,
        .reload_failures = c->ro.stats.reload_failures,
        .check_failures = c->ro.stats.check_failures,
        .bulk_reloads = c->stats.bulk_reloads,
        .backends = c->tab.v,
        .n_backends = c->tab.n,
        .obs = &c->obs,
        .recent = c->recent,
        .etcd_up = c->etcd_up,
        .etcd_since = c->etcd_since,
        .etcd_endpoint = c->sync ? etcd_sync_endpoint(c->sync) : NULL,
        .etcd_error = c->etcd_last_error,
        .wall_now = clock_wall(),
        .cfg = c->cfg,
        .spares = c->pool.sp.n,
        .spares_free = spare_free_count(&c->pool.sp),
    };
}

static bool admin_ready(const char **why, void *arg)
{
    struct report_state s = report_of(arg);

    return report_ready(&s, why);
}

static void admin_metrics(struct metrics *m, void *arg)
{
    struct ctl *c = arg;
    struct report_state s = report_of(c);

    report_metrics(&s, m, &c->obs_backends);
}

static json_t *admin_status(const char *state_text, const char *stat_text, char **errmsg, void *arg)
{
    struct report_state s = report_of(arg);

    return report_status(&s, state_text, stat_text, errmsg);
}

/* /readyz's body while ready: what it serves when etcd cannot be read. */
static void admin_ready_note(char *buf, size_t size, void *arg)
{
    struct report_state s = report_of(arg);

    report_etcd_note(&s, buf, size);
}

const struct admin_ops controller__admin_ops = {
    .ready = admin_ready,
    .ready_note = admin_ready_note,
    .metrics = admin_metrics,
    .status = admin_status,
};

static void dump_line(const char *text, void *arg)
{
    log_msg_all(LOG_LEVEL_INFO, MOD, "%s", text);
}

/* SIGUSR1: what the daemon knows (report_dump()), written to the log
 * whatever its level, never rate-limited (one line per backend). */
void controller__on_dump_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct report_state s = report_of(w->data);

    if (report_dump(&s, dump_line, NULL) < 0)
        log_error(MOD, "state dump: out of memory");
}

void controller__log_stopped(const struct ctl *c)
{
    log_info(MOD,
             "stopped: %llu batches, %llu commands, %llu refused, %llu resyncs, "
             "%llu reloads (%llu failed, %llu checks failed), %llu values rejected, "
             "%llu services refused, %llu drift repairs, "
             "%llu static-algorithm weights not sent, %llu reads below level admin",
             c->ap.stats.batches, c->ap.stats.commands, c->ap.stats.command_failures,
             c->ap.stats.resyncs, c->ro.stats.reloads, c->ro.stats.reload_failures,
             c->ro.stats.check_failures, c->cat->rejected, c->tab.refused_services,
             c->ap.stats.drift_repairs, c->ap.stats.static_weights_ignored,
             c->ap.stats.level_too_low);
    if (c->ro.stats.io_failures)
        log_info(MOD, "%llu renders or reloads failed on I/O and were retried%s",
                 c->ro.stats.io_failures, c->ro.write_outage.since > 0 ? " (still failing)" : "");
    if (c->live.stats.failures)
        log_info(MOD,
                 "%llu writes of the services file between reloads failed and were "
                 "retried%s",
                 c->live.stats.failures, c->live.outage.since > 0 ? " (still failing)" : "");
    if (c->stats.empty_listings_held)
        log_info(MOD, "empty etcd registry held back %llu times%s", c->stats.empty_listings_held,
                 c->empty_held ? " (still held: HAProxy was left as it was)" : "");
}
