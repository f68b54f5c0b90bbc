/* report - the daemon's self-report (report.h): readiness, the /metrics
 * snapshot, the /status document's daemon fields, the SIGUSR1 dump. */
#include <slotsync/report.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/etcd.h>
#include <slotsync/log.h>
#include <slotsync/metrics-t.h>
#include <slotsync/render.h>
#include <slotsync/routes-t.h>
#include <slotsync/slots.h>
#include <slotsync/status.h>
#include <slotsync/version.h>

/* An etcd URL as shown: host:port, without scheme, credentials or path
 * (nothing served holds a secret). "" for NULL. */
static const char *endpoint_shown(const char *url, char *buf, size_t size)
{
    const char *p = url ? strstr(url, "://") : NULL, *at, *end;
    size_t n;

    if (!url) {
        buf[0] = '\0';
        return buf;
    }
    p = p ? p + 3 : url;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    n = (size_t)(end - p);
    snprintf(buf, size, "%.*s", (int)n, p);
    return buf;
}

const char *report_etcd_note(const struct report_state *s, char *buf, size_t size)
{
    double down = clock_age(s->now, s->etcd_since);

    if (s->etcd_up || !s->etcd)
        snprintf(buf, size, "%s", "");
    else if (!s->listed)
        snprintf(buf, size, "etcd not read yet (%.0f s): nothing from it is served", down);
    else
        snprintf(buf, size,
                 "etcd unreachable for %.0f s: serving the last known state (revision %lld)", down,
                 (long long)s->etcd->revision);
    return buf;
}

/* A listen address as the services file binds it: "127.0.0.1:8080",
 * "[::1]:8080", "*:8080". */
static void listen_shown(const struct listen_addr *l, char *buf, size_t size)
{
    if (!l->host[0])
        snprintf(buf, size, "*:%u", l->port);
    else
        snprintf(buf, size, l->ipv6 ? "[%s]:%u" : "%s:%u", l->host, l->port);
}

static json_t *age_or_null(double age)
{
    return age >= 0 ? json_real(age) : json_null();
}

/* etcd.transport as configured ("grpc" or "json"), NULL without a config. */
static const char *report_etcd_transport(const struct report_state *s)
{
    return s->cfg ? etcd_transport_name((enum etcd_transport)s->cfg->etcd_transport) : NULL;
}

/* "etcd": the connection as the daemon knows it. */
static json_t *etcd_doc(const struct report_state *s)
{
    char ep[300], note[200], since[32];
    double down = clock_age(s->now, s->etcd_since);
    double contact = s->etcd ? clock_age(s->now, s->etcd->last_contact_at) : -1;

    endpoint_shown(s->etcd_endpoint, ep, sizeof(ep));
    report_etcd_note(s, note, sizeof(note));
    clock_format_utc(s->wall_now > 0 ? clock_wall_of(s->etcd_since, s->now, s->wall_now) : 0, since,
                     sizeof(since));
    json_t *doc = json_pack(
        "{s:b,s:s?,s:s?,s:o,s:s?,s:o,s:s?,s:I,s:b,s:s?}", "connected", s->etcd_up, "endpoint",
        ep[0] ? ep : NULL, "transport", report_etcd_transport(s), "since_s", age_or_null(down),
        "since", strcmp(since, "-") ? since : NULL, "last_contact_s", age_or_null(contact),
        "last_error", s->etcd_error, "revision", (json_int_t)(s->etcd ? s->etcd->revision : 0),
        "listed", s->listed, "note", note[0] ? note : NULL);

    /* the stall detector: how often etcd stayed ahead of the watch, when
     * last, and what the last check (how long ago) found */
    if (doc && s->etcd &&
        json_object_set_new(
            doc, "watch_check",
            json_pack("{s:I,s:I,s:o,s:o,s:b}", "checks", (json_int_t)s->etcd->watch_checks,
                      "stalls", (json_int_t)s->etcd->watch_stalls, "last_check_s",
                      age_or_null(clock_age(s->now, s->etcd->last_check_at)), "last_stall_s",
                      age_or_null(clock_age(s->now, s->etcd->last_stall_at)), "ahead",
                      s->etcd->check_ahead)) < 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* "routes" (the HTTP frontend's Host names, each to its backend as the
 * page names it) and each backend's "listen". */
static int add_routes(const struct report_state *s, json_t *doc)
{
    struct render_backend *rb = calloc(s->n_backends + 1, sizeof(*rb));
    struct host_route *routes = NULL;
    size_t n_routes = 0;
    json_t *arr = json_array(), *b;
    size_t i;
    int r = -ENOMEM;

    if (!rb || !arr)
        goto out;
    for (i = 0; i < s->n_backends; i++)
        rb[i] = (struct render_backend){
            s->backends[i]->svc ? s->backends[i]->svc : &s->backends[i]->conf, NULL,
            backend_is_spare(s->backends[i]) ? backend_proxy(s->backends[i]) : NULL};
    if (s->cfg && render_host_routes(s->cfg, rb, s->n_backends, &routes, &n_routes) < 0)
        goto out;
    for (size_t k = 0; k < n_routes; k++) {
        const char *to = routes[k].backend;

        for (i = 0; i < s->n_backends; i++)
            if (strcmp(backend_proxy(s->backends[i]), routes[k].backend) == 0)
                to = backend_label(s->backends[i]);
        if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "host", routes[k].host, "backend",
                                                 to, "proxy", routes[k].backend)) < 0)
            goto out;
    }
    json_array_foreach(json_object_get(doc, "backends"), i, b)
    {
        const char *name = json_string_value(json_object_get(b, "name"));
        const struct backend *be = name ? backend_lookup(s->backends, s->n_backends, name) : NULL;
        char addr[ENDPOINT_HOST_MAX + 10];

        if (be && be->conf.listen.set) {
            listen_shown(&be->conf.listen, addr, sizeof(addr));
            json_object_set_new(b, "listen", json_string(addr));
        } else {
            json_object_set_new(b, "listen", json_null());
        }
    }
    r = json_object_set_new(doc, "routes", arr) < 0 ? -ENOMEM : 0;
    arr = NULL;
out:
    json_decref(arr);
    free(routes);
    free(rb);
    return r;
}

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
        m->etcd_watch_checks = s->etcd->watch_checks;
        m->etcd_watch_stalls = s->etcd->watch_stalls;
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
    m->bulk_reloads = s->bulk_reloads;
    m->haproxy_up = s->synced && !s->runtime_down;
    m->ready = report_ready(s, &why);
    m->since_resync_s = clock_age(s->now, s->last_resync_at);
    m->etcd_up = s->etcd && s->etcd_up;
    m->etcd_last_contact_s = s->etcd ? clock_age(s->now, s->etcd->last_contact_at) : -1;
    m->version = SLOTSYNC_VERSION;
    m->spares_total = s->spares;
    m->spares_free = s->spares_free;
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
        mb[i].unrouted = s->backends[i]->unrouted;
    }
    m->backends = mb;
    m->n_backends = s->n_backends;
}

static bool backend_routed(const char *name, void *arg)
{
    const struct report_state *s = arg;
    const struct backend *b = backend_lookup(s->backends, s->n_backends, name);

    return !b || !b->unrouted;
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
             json_pack("{s:o,s:b,s:I,s:s,s:I,s:o}", "ago_s",
                       s->last_reload_at > 0 ? json_real(s->now - s->last_reload_at) : json_null(),
                       "failed", s->last_reload_failed, "reloads", (json_int_t)s->reloads, "source",
                       s->last_reload_by_haproxy ? "haproxy" : "slotsync", "haproxy_reloads",
                       (json_int_t)s->haproxy_reloads, "cause",
                       s->last_reload_cause ? json_string(s->last_reload_cause) : json_null())) <
             0 ||
         (s->recent && status_add_recent(doc, s->recent) < 0) ||
         status_mark_routed(doc, backend_routed, (void *)s) < 0 ||
         json_object_set_new(doc, "etcd", etcd_doc(s)) < 0 ||
         json_object_set_new(doc, "version", json_string(SLOTSYNC_VERSION)) < 0 ||
         json_object_set_new(doc, "spares",
                             json_pack("{s:I,s:I}", "total", (json_int_t)s->spares, "free",
                                       (json_int_t)s->spares_free)) < 0 ||
         add_routes(s, doc) < 0)) {
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
    char ep[300];
    int r;

    d.etcd_up = s->etcd && s->etcd_up;
    d.etcd_since = s->etcd_since;
    d.etcd_last_contact = s->etcd ? s->etcd->last_contact_at : 0;
    d.etcd_endpoint = endpoint_shown(s->etcd_endpoint, ep, sizeof(ep));
    d.etcd_error = s->etcd_error;
    d.etcd_transport = report_etcd_transport(s);
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
