/* metrics - counters, histograms and the Prometheus text exposition format. */
#include <slotsync/metrics.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const double metrics_bucket_bounds[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static const char *const cause_names[METRICS_CAUSES] = {
    "new_service", "backend_missing", "http_frontend", "slots", "config", "bulk", "other",
};

static const char *const reject_names[METRICS_REJECTS] = {"key", "value"};

const char *metrics_cause_name(enum metrics_reload_cause cause)
{
    return (unsigned)cause < METRICS_CAUSES ? cause_names[cause] : "other";
}

void metrics_observe(struct metrics_histogram *h, double seconds, unsigned long long n)
{
    size_t i;

    if (!n || !(seconds >= 0) || isinf(seconds))
        return;
    for (i = 0; i < METRICS_BUCKETS; i++)
        if (seconds <= metrics_bucket_bounds[i])
            break;
    if (i < METRICS_BUCKETS)
        h->buckets[i] += n;
    h->count += n;
    h->sum += seconds * (double)n;
}

void metrics_pending_add(struct metrics_pending *p, double at)
{
    if (p->len && p->at[p->len - 1] == at) {
        p->n[p->len - 1]++;
        return;
    }
    if (p->len == METRICS_PENDING_GROUPS) {
        p->n[p->len - 1]++;
        return;
    }
    p->at[p->len] = at;
    p->n[p->len++] = 1;
}

void metrics_pending_move(struct metrics_pending *dst, struct metrics_pending *src)
{
    for (size_t i = 0; i < src->len; i++) {
        if (dst->len && dst->at[dst->len - 1] == src->at[i]) {
            dst->n[dst->len - 1] += src->n[i];
        } else if (dst->len == METRICS_PENDING_GROUPS) {
            dst->n[dst->len - 1] += src->n[i];
        } else {
            dst->at[dst->len] = src->at[i];
            dst->n[dst->len++] = src->n[i];
        }
    }
    src->len = 0;
}

double metrics_pending_observe(struct metrics_pending *p, struct metrics_histogram *h, double now)
{
    double oldest = p->len ? now - p->at[0] : 0;

    for (size_t i = 0; i < p->len; i++)
        metrics_observe(h, now - p->at[i], p->n[i]);
    p->len = 0;
    return oldest;
}

void metrics_recent_add(struct metrics_recent *r, const struct metrics_change *ch)
{
    r->ring[r->next] = *ch;
    r->next = (r->next + 1) % METRICS_RECENT_MAX;
    if (r->len < METRICS_RECENT_MAX)
        r->len++;
}

const struct metrics_change *metrics_recent_get(const struct metrics_recent *r, size_t i)
{
    if (i >= r->len)
        return NULL;
    return &r->ring[(r->next + METRICS_RECENT_MAX - 1 - i) % METRICS_RECENT_MAX];
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *help, unsigned long long v)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "gauge", help);
    fprintf(f, "%s %.17g\n", name, v);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void histogram(FILE *f, const char *name, const char *help,
                      const struct metrics_histogram *h)
{
    unsigned long long cum = 0;

    family(f, name, "histogram", help);
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->buckets[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_bucket_bounds[i], cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, h->count);
    fprintf(f, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, h->count);
}

static void per_backend(FILE *f, const char *name, const char *help, const struct metrics *m,
                        bool used)
{
    family(f, name, "gauge", help);
    for (size_t i = 0; i < m->n_backends; i++) {
        fprintf(f, "%s{backend=\"", name);
        label_value(f, m->backends[i].name);
        fprintf(f, "\"} %zu\n", used ? m->backends[i].used : m->backends[i].total);
    }
}

/* The caps on what etcd can create: refusals, and what waits now. */
static void caps(FILE *f, const struct metrics *m)
{
    static const char *const names[METRICS_CAPS] = {"max_services", "max_endpoints_per_service"};

    family(f, "slotsync_capped_total", "counter",
           "New etcd services or endpoints refused by a cap, by cap (config field).");
    for (size_t i = 0; i < METRICS_CAPS; i++)
        fprintf(f, "slotsync_capped_total{limit=\"%s\"} %llu\n", names[i], m->capped[i]);
    family(f, "slotsync_capped", "gauge",
           "etcd services or endpoints refused by a cap and waiting for room now, by cap.");
    for (size_t i = 0; i < METRICS_CAPS; i++)
        fprintf(f, "slotsync_capped{limit=\"%s\"} %zu\n", names[i], m->held[i]);
}

int metrics_render(const struct metrics *m, char **out, size_t *len)
{
    FILE *f;

    *out = NULL;
    *len = 0;
    f = open_memstream(out, len);
    if (!f)
        return -ENOMEM;
    counter(f, "slotsync_etcd_events_total", "Watch events received from etcd.", m->etcd_events);
    counter(f, "slotsync_etcd_watch_starts_total",
            "Watches started on etcd (the first one and every reconnect).", m->etcd_watch_starts);
    counter(f, "slotsync_etcd_watch_checks_total",
            "Checks of the watch against etcd's newest key and key count (stall detector).",
            m->etcd_watch_checks);
    counter(f, "slotsync_etcd_watch_stalls_total",
            "Watches restarted because etcd stayed ahead of them at two checks in a row.",
            m->etcd_watch_stalls);
    gauge(f, "slotsync_etcd_revision", "The last etcd revision applied.", (double)m->etcd_revision);
    family(f, "slotsync_values_rejected_total", "counter",
           "etcd keys or values refused, by reason.");
    for (size_t i = 0; i < METRICS_REJECTS; i++)
        fprintf(f, "slotsync_values_rejected_total{reason=\"%s\"} %llu\n", reject_names[i],
                m->rejected[i]);
    counter(f, "slotsync_runtime_commands_total", "Runtime API commands sent to HAProxy.",
            m->commands);
    counter(f, "slotsync_runtime_command_failures_total", "Runtime API commands HAProxy refused.",
            m->command_failures);
    counter(f, "slotsync_runtime_batches_total", "Batches of runtime commands sent.", m->batches);
    counter(f, "slotsync_runtime_errors_total",
            "Runtime socket exchanges that failed (connect, timeout, framing).", m->runtime_errors);
    histogram(f, "slotsync_batch_duration_seconds",
              "Round trip of a batch: sent to HAProxy's complete reply.", &m->batch_seconds);
    histogram(f, "slotsync_event_to_applied_seconds",
              "From an etcd event's arrival to HAProxy's reply to the batch that applied it.",
              &m->event_to_applied);
    family(f, "slotsync_reloads_total", "counter", "HAProxy reloads, by result.");
    fprintf(f, "slotsync_reloads_total{result=\"ok\"} %llu\n", m->reloads);
    fprintf(f, "slotsync_reloads_total{result=\"failed\"} %llu\n", m->reload_failures);
    fprintf(f, "slotsync_reloads_total{result=\"check_failed\"} %llu\n", m->check_failures);
    counter(f, "slotsync_bulk_reloads_total",
            "Reloads chosen over the runtime socket for a large plan (haproxy.bulk_path).",
            m->bulk_reloads);
    family(f, "slotsync_reload_requests_total", "counter", "Reasons a reload was asked for.");
    for (size_t i = 0; i < METRICS_CAUSES; i++)
        fprintf(f, "slotsync_reload_requests_total{cause=\"%s\"} %llu\n", cause_names[i],
                m->reload_requests[i]);
    per_backend(f, "slotsync_slots_used", "Slots holding an endpoint, per backend.", m, true);
    per_backend(f, "slotsync_slots_total", "Slots HAProxy has, per backend.", m, false);
    family(f, "slotsync_backend_routed", "gauge",
           "1 if a frontend slotsync renders reaches the backend (its listen, or the HTTP "
           "frontend's Host routing), 0 if nothing routes to it.");
    for (size_t i = 0; i < m->n_backends; i++) {
        fprintf(f, "slotsync_backend_routed{backend=\"");
        label_value(f, m->backends[i].name);
        fprintf(f, "\"} %d\n", m->backends[i].unrouted ? 0 : 1);
    }
    counter(f, "slotsync_runtime_added_servers_total",
            "Slots added to running backends with \"add server\".", m->runtime_added_servers);
    counter(f, "slotsync_resyncs_total", "Complete reads of HAProxy's state.", m->resyncs);
    counter(f, "slotsync_drift_repairs_total",
            "Slots found different from what slotsync had set, and set again.", m->drift_repairs);
    gauge(f, "slotsync_haproxy_up", "1 if HAProxy's runtime socket answered last time.",
          m->haproxy_up ? 1 : 0);
    gauge(f, "slotsync_ready", "1 after the first full sync while HAProxy answers.",
          m->ready ? 1 : 0);
    caps(f, m);
    family(f, "slotsync_seconds_since_last_resync", "gauge",
           "Seconds since the last complete read of HAProxy's state (absent before the first).");
    if (m->since_resync_s >= 0)
        fprintf(f, "slotsync_seconds_since_last_resync %.3f\n", m->since_resync_s);
    gauge(f, "slotsync_etcd_up",
          "1 while the etcd watch runs and its member answers; 0 while slotsync serves the last "
          "known state.",
          m->etcd_up ? 1 : 0);
    family(f, "slotsync_etcd_last_contact_seconds", "gauge",
           "Seconds since etcd last answered anything (absent before its first answer).");
    if (m->etcd_last_contact_s >= 0)
        fprintf(f, "slotsync_etcd_last_contact_seconds %.3f\n", m->etcd_last_contact_s);
    gauge(f, "slotsync_spare_backends", "Spare backends in the services file HAProxy runs.",
          (double)m->spares_total);
    gauge(f, "slotsync_spare_backends_free",
          "Spare backends no service is bound to: new services that can come without a reload.",
          (double)m->spares_free);
    if (m->version) {
        family(f, "slotsync_build_info", "gauge", "Always 1; the version is in its label.");
        fprintf(f, "slotsync_build_info{version=\"");
        label_value(f, m->version);
        fprintf(f, "\"} 1\n");
    }
    if (fclose(f) != 0 || !*out) {
        free(*out);
        *out = NULL;
        *len = 0;
        return -ENOMEM;
    }
    return 0;
}
