/* report - the daemon's self-report (report.h): readiness, the /metrics
 * snapshot, the /status document's daemon fields, the SIGUSR1 dump. */
#include <slotsync/report.h>

#include <errno.h>
#include <stdlib.h>

#include <slotsync/log.h>
#include <slotsync/slots.h>
#include <slotsync/status.h>

bool report_ready(const struct report_state *s, const char **why)
{
    if (!s->listed)
        *why = "the first etcd listing is not done";
    else if (!s->synced || s->runtime_down || s->last_resync_at <= 0)
        *why = "HAProxy's runtime socket does not answer";
    else
        return true;
    return false;
}

void report_metrics(const struct report_state *s, struct metrics *m, struct metrics_backend **rows)
{
    const char *why;
    struct metrics_backend *mb;

    *m = *s->obs;
    if (s->etcd) {
        m->etcd_events = s->etcd->events;
        m->etcd_watch_starts = s->etcd->watch_starts;
        m->etcd_revision = s->etcd->revision;
    }
    m->commands = s->commands;
    m->command_failures = s->command_failures;
    m->batches = s->batches;
    m->runtime_errors = s->runtime_errors;
    m->runtime_added_servers = s->runtime_added_servers;
    m->resyncs = s->resyncs;
    m->drift_repairs = s->drift_repairs;
    m->reloads = s->reloads;
    m->reload_failures = s->reload_failures;
    m->check_failures = s->check_failures;
    m->haproxy_up = s->synced && !s->runtime_down;
    m->ready = report_ready(s, &why);
    m->since_resync_s = s->last_resync_at > 0 ? s->now - s->last_resync_at : -1;
    m->capped[METRICS_CAP_SERVICES] = s->cat->capped_services;
    m->capped[METRICS_CAP_ENDPOINTS] = s->cat->capped_endpoints;
    catalog_held(s->cat, &m->held[METRICS_CAP_SERVICES], &m->held[METRICS_CAP_ENDPOINTS]);
    mb = realloc(*rows, (s->n_backends + 1) * sizeof(*mb));
    if (!mb)
        return; /* no per-backend lines this time */
    *rows = mb;
    for (size_t i = 0; i < s->n_backends; i++) {
        mb[i].name = backend_label(s->backends[i]);
        mb[i].used = slots_used(&s->backends[i]->slots);
        mb[i].total = s->backends[i]->slots.n;
    }
    m->backends = mb;
    m->n_backends = s->n_backends;
}

json_t *report_status(const struct report_state *s, const char *state_text, const char *stat_text,
                      char **errmsg)
{
    const char **names = calloc(s->n_backends + 1, sizeof(*names));
    struct status_alias *al = calloc(s->n_backends + 1, sizeof(*al)); /* spares (pool.h) */
    size_t n_al = 0;
    const char *why;
    json_t *doc = NULL;

    if (!names || !al) {
        free(names);
        free(al);
        memprintf(errmsg, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < s->n_backends; i++) {
        names[i] = s->backends[i]->conf.name;
        if (backend_is_spare(s->backends[i]))
            al[n_al++] = (struct status_alias){names[i], backend_proxy(s->backends[i])};
    }
    if (status_build(s->cat, s->etcd ? s->etcd->revision : 0, names, s->n_backends, al, n_al,
                     state_text, stat_text, &doc, errmsg) == 0 &&
        (json_object_set_new(doc, "ready", json_boolean(report_ready(s, &why))) < 0 ||
         json_object_set_new(
             doc, "last_reload",
             json_pack("{s:o,s:b,s:I}", "ago_s",
                       s->last_reload_at > 0 ? json_real(s->now - s->last_reload_at) : json_null(),
                       "failed", s->last_reload_failed, "reloads", (json_int_t)s->reloads)) < 0 ||
         (s->recent && status_add_recent(doc, s->recent) < 0))) {
        memprintf(errmsg, "out of memory");
        json_decref(doc);
        doc = NULL;
    }
    free(names);
    free(al);
    return doc;
}

int report_dump(const struct report_state *s, void (*line)(const char *text, void *arg), void *arg)
{
    struct status_dump_backend *db = calloc(s->n_backends + 1, sizeof(*db));
    struct status_dump d = {
        .now = s->now,
        .revision = s->etcd ? s->etcd->revision : 0,
        .watching = s->etcd && s->etcd->watching,
        .listed = s->listed,
        .endpoints = catalog_count(s->cat),
        .services = s->cat->n_services,
        .rejected = s->cat->rejected,
        .unknown_fields = s->cat->unknown_fields,
        .synced = s->synced,
        .last_resync_at = s->last_resync_at,
        .resyncs = s->resyncs,
        .last_reload_at = s->last_reload_at,
        .reloads = s->reloads,
        .reload_failures = s->reload_failures,
        .check_failures = s->check_failures,
        .reloading = s->reloading,
        .batches = s->batches,
        .commands = s->commands,
        .refused = s->command_failures,
        .backends = db,
        .n_backends = s->n_backends,
    };
    int r;

    for (size_t i = 0; db && i < s->n_backends; i++) {
        const struct backend *b = s->backends[i];
        const struct catalog_service *svc = catalog_find(s->cat, b->conf.name);

        db[i] = (struct status_dump_backend){backend_label(b),  slots_used(&b->slots),
                                             b->slots.n,        svc ? svc->n_endpoints : 0,
                                             b->slots.overflow, b->present,
                                             b->configured};
    }
    r = db ? status_dump(&d, line, arg) : -ENOMEM;
    free(db);
    return r;
}
