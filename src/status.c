/* status - join etcd's listing with HAProxy's state; render it for people. */
#include <slotsync/status.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/endpoint.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>
#include <slotsync/reply.h>
#include <slotsync/slots.h>
#include <slotsync/vec.h>

/* ---- HAProxy's replies ---- */

struct haproxy_view {
    struct server_state *servers;
    size_t n, cap;
    struct reply_stat_row *stats;
    size_t n_stats;
};

static int collect_server(const struct server_state *st, void *arg)
{
    struct haproxy_view *v = arg;

    if (vec_reserve(&v->servers, &v->cap, v->n + 1, sizeof(*v->servers), 32) < 0)
        return -ENOMEM;
    v->servers[v->n++] = *st;
    return 0;
}

/* ---- the join ---- */

static const char *admin_name(enum server_admin a)
{
    return a == SERVER_MAINT ? "maint" : a == SERVER_DRAIN ? "drain" : "ready";
}

static const char *oper_name(int op)
{
    static const char *const names[] = {"stopped", "starting", "running", "stopping"};

    return op >= 0 && op <= 3 ? names[op] : "unknown";
}

static int cmp_slot(const void *a, const void *b)
{
    long x = slots_index_of((*(const struct server_state *const *)a)->server);
    long y = slots_index_of((*(const struct server_state *const *)b)->server);

    return (x > y) - (x < y);
}

static bool same_addr(const struct server_state *st, const struct endpoint *ep)
{
    return st->port == ep->port && strcmp(st->addr, ep->host) == 0;
}

static const char *etcd_admin(enum endpoint_state s)
{
    return endpoint_state_name(s);
}

static json_t *server_row(const struct server_state *st, const struct reply_stat_row *sr,
                          const struct catalog_endpoint *ce, const char *drift, bool free_slot)
{
    json_t *o = json_object();
    char addr[ENDPOINT_HOST_MAX + 10];

    if (!o)
        return NULL;
    json_object_set_new(o, "slot", st ? json_string(st->server) : json_null());
    json_object_set_new(o, "instance", ce ? json_string(ce->instance) : json_null());
    if (st && strcmp(st->addr, "0.0.0.0") != 0) {
        snprintf(addr, sizeof(addr), strchr(st->addr, ':') ? "[%s]:%u" : "%s:%u", st->addr,
                 st->port);
        json_object_set_new(o, "address", json_string(addr));
    } else if (!st && ce) {
        endpoint_format(&ce->ep, addr, sizeof(addr));
        json_object_set_new(o, "address", json_string(addr));
    } else {
        json_object_set_new(o, "address", json_null());
    }
    json_object_set_new(o, "weight", st ? json_integer(st->weight) : json_null());
    json_object_set_new(o, "admin", st ? json_string(admin_name(st->admin)) : json_null());
    json_object_set_new(o, "operational", st ? json_string(oper_name(st->op_state)) : json_null());
    json_object_set_new(o, "check", sr && sr->check[0] ? json_string(sr->check) : json_null());
    json_object_set_new(o, "status", sr && sr->status[0] ? json_string(sr->status) : json_null());
    json_object_set_new(o, "sessions_current",
                        sr && sr->scur >= 0 ? json_integer(sr->scur) : json_null());
    json_object_set_new(o, "sessions_total",
                        sr && sr->stot >= 0 ? json_integer(sr->stot) : json_null());
    json_object_set_new(o, "etcd",
                        ce ? json_pack("{s:s,s:i}", "state", etcd_admin(ce->ep.state), "weight",
                                       (json_int_t)ce->ep.weight)
                           : json_null());
    json_object_set_new(o, "free", json_boolean(free_slot));
    json_object_set_new(o, "drift", drift ? json_string(drift) : json_null());
    return o;
}

/* One backend's object: its slots in order, then endpoints without a slot. */
static json_t *backend_doc(const char *name, const struct catalog_service *svc,
                           const struct haproxy_view *v, size_t *drifts)
{
    const struct server_state **slots = NULL;
    size_t n = 0, used = 0, nd = 0, free_n = 0;
    bool present = false, *claimed = NULL;
    json_t *o = json_object(), *rows = json_array();
    char drift[300], eaddr[ENDPOINT_HOST_MAX + 10];

    if (!o || !rows)
        goto oom;
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->servers[i].backend, name) != 0)
            continue;
        present = true;
        if (slots_index_of(v->servers[i].server) >= 0)
            n++;
    }
    slots = calloc(n + 1, sizeof(*slots));
    claimed = calloc((svc ? svc->n_endpoints : 0) + 1, sizeof(*claimed));
    if (!slots || !claimed)
        goto oom;
    n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->servers[i].backend, name) == 0 && slots_index_of(v->servers[i].server) >= 0)
            slots[n++] = &v->servers[i];
    qsort(slots, n, sizeof(*slots), cmp_slot);

    for (size_t i = 0; i < n; i++) {
        const struct server_state *st = slots[i];
        const struct catalog_endpoint *ce = NULL;
        const char *d = NULL;
        bool is_free = false;

        for (size_t k = 0; svc && k < svc->n_endpoints; k++) {
            if (!claimed[k] && same_addr(st, &svc->endpoints[k]->ep)) {
                claimed[k] = true;
                ce = svc->endpoints[k];
                break;
            }
        }
        if (ce) {
            endpoint_format(&ce->ep, eaddr, sizeof(eaddr));
            if ((int)ce->ep.state != (int)st->admin) {
                snprintf(drift, sizeof(drift), "etcd: %s %s, haproxy: %s", eaddr,
                         etcd_admin(ce->ep.state), admin_name(st->admin));
                d = drift;
            } else if (ce->ep.state != ENDPOINT_MAINT && ce->ep.weight != st->weight) {
                snprintf(drift, sizeof(drift), "etcd: %s weight %u, haproxy: weight %d", eaddr,
                         ce->ep.weight, st->weight);
                d = drift;
            }
            used++;
        } else if (st->admin == SERVER_MAINT) {
            is_free = true;
            free_n++;
        } else {
            snprintf(drift, sizeof(drift), "etcd: nothing, haproxy: %s%s",
                     strcmp(st->addr, "0.0.0.0") == 0 ? "no address " : "", admin_name(st->admin));
            d = drift;
        }
        nd += d != NULL;
        if (json_array_append_new(
                rows, server_row(st, reply_find_stat(v->stats, v->n_stats, name, st->server), ce, d,
                                 is_free)) < 0)
            goto oom;
    }
    for (size_t k = 0; svc && k < svc->n_endpoints; k++) {
        const struct catalog_endpoint *ce = svc->endpoints[k];
        const char *d = NULL;

        if (claimed[k])
            continue;
        /* An endpoint in maint needs no slot: nothing to serve. */
        if (ce->ep.state != ENDPOINT_MAINT) {
            endpoint_format(&ce->ep, eaddr, sizeof(eaddr));
            snprintf(drift, sizeof(drift), "etcd: %s %s, haproxy: %s", eaddr,
                     etcd_admin(ce->ep.state), present ? "no slot" : "no backend");
            d = drift;
            nd++;
        }
        if (json_array_append_new(rows, server_row(NULL, NULL, ce, d, false)) < 0)
            goto oom;
    }
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "present", json_boolean(present));
    json_object_set_new(o, "slots_total", json_integer((json_int_t)n));
    json_object_set_new(o, "slots_used", json_integer((json_int_t)used));
    json_object_set_new(o, "slots_free", json_integer((json_int_t)free_n));
    json_object_set_new(o, "endpoints", json_integer(svc ? (json_int_t)svc->n_endpoints : 0));
    json_object_set_new(o, "drift", json_integer((json_int_t)nd));
    if (json_object_set_new(o, "servers", rows) < 0) {
        rows = NULL;
        goto oom;
    }
    free(slots);
    free(claimed);
    *drifts += nd;
    return o;
oom:
    free(slots);
    free(claimed);
    json_decref(rows);
    json_decref(o);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The rows of each alias's proxy become its service's. */
static void apply_aliases(struct haproxy_view *v, const struct status_alias *al, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (strlen(al[k].service) > HAPROXY_NAME_MAX)
            continue;
        for (size_t i = 0; i < v->n; i++)
            if (strcmp(v->servers[i].backend, al[k].proxy) == 0)
                strcpy(v->servers[i].backend, al[k].service);
        for (size_t i = 0; i < v->n_stats; i++)
            if (strcmp(v->stats[i].px, al[k].proxy) == 0)
                strcpy(v->stats[i].px, al[k].service);
    }
}

int status_build(const struct catalog *cat, int64_t revision, const char *const *backends,
                 size_t n_backends, const struct status_alias *aliases, size_t n_aliases,
                 const char *state_text, const char *stat_text, json_t **out, char **errmsg)
{
    struct haproxy_view v = {0};
    const char **names = NULL;
    size_t n = 0, drifts = 0, bad = 0;
    json_t *doc = NULL, *arr = NULL;
    int r;

    *out = NULL;
    r = runtime_parse_servers_state(state_text, strlen(state_text), collect_server, &v, &bad);
    if (r < 0) {
        memprintf(errmsg, "HAProxy's \"show servers state\" reply %s",
                  r == -EPROTO ? "is not format version 1" : "could not be read");
        goto out;
    }
    if (stat_text && (r = reply_parse_stat(stat_text, &v.stats, &v.n_stats)) < 0)
        goto oom;
    apply_aliases(&v, aliases, n_aliases);
    names = calloc(n_backends + cat->n_services + 1, sizeof(*names));
    if (!names)
        goto oom;
    for (size_t i = 0; i < n_backends; i++)
        names[n++] = backends[i];
    for (size_t i = 0; i < cat->n_services; i++)
        names[n++] = cat->services[i]->name;
    qsort(names, n, sizeof(*names), cmp_str);
    doc = json_object();
    arr = json_array();
    if (!doc || !arr)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        json_t *b;

        if (i && strcmp(names[i], names[i - 1]) == 0)
            continue;
        b = backend_doc(names[i], catalog_find(cat, names[i]), &v, &drifts);
        for (size_t k = 0; b && k < n_aliases; k++)
            if (strcmp(aliases[k].service, names[i]) == 0)
                json_object_set_new(b, "proxy", json_string(aliases[k].proxy));
        if (!b || json_array_append_new(arr, b) < 0)
            goto oom;
    }
    json_object_set_new(doc, "etcd_revision", json_integer(revision));
    json_object_set_new(doc, "haproxy_rows_ignored", json_integer((json_int_t)bad));
    json_object_set_new(doc, "drift", json_integer((json_int_t)drifts));
    json_object_set_new(doc, "in_sync", json_boolean(drifts == 0));
    if (json_object_set_new(doc, "backends", arr) < 0) {
        arr = NULL;
        goto oom;
    }
    *out = doc;
    doc = NULL;
    r = 0;
    goto out;
oom:
    json_decref(arr);
    memprintf(errmsg, "out of memory");
    r = -ENOMEM;
out:
    json_decref(doc);
    free(names);
    free(v.servers);
    free(v.stats);
    return r;
}

int status_filter(json_t *doc, const char *service)
{
    json_t *arr = json_object_get(doc, "backends"), *keep = NULL, *b;
    size_t i;

    json_array_foreach(arr, i, b)
    {
        if (json_is_string(json_object_get(b, "name")) &&
            strcmp(json_string_value(json_object_get(b, "name")), service) == 0)
            keep = json_incref(b);
    }
    if (!keep)
        return -ENOENT;
    json_array_clear(arr);
    json_array_append_new(arr, keep);
    json_object_set_new(doc, "drift",
                        json_integer(json_integer_value(json_object_get(keep, "drift"))));
    json_object_set_new(doc, "in_sync",
                        json_boolean(json_integer_value(json_object_get(keep, "drift")) == 0));
    return 0;
}

int status_add_recent(json_t *doc, const struct metrics_recent *r)
{
    json_t *arr = json_array();
    const struct metrics_change *ch;

    if (!arr)
        return -ENOMEM;
    for (size_t i = 0; (ch = metrics_recent_get(r, i)); i++) {
        json_t *o = json_pack("{s:f,s:s,s:s,s:s,s:s,s:b,s:o}", "at", ch->at, "backend", ch->backend,
                              "slot", ch->slot, "instance", ch->instance, "change", ch->what,
                              "drift", ch->drift, "latency_ms",
                              ch->latency_s >= 0 ? json_real(ch->latency_s * 1e3) : json_null());

        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    return json_object_set_new(doc, "recent", arr) < 0 ? -ENOMEM : 0;
}

size_t status_drift_count(const json_t *doc)
{
    json_int_t d = json_integer_value(json_object_get(doc, "drift"));

    return d > 0 ? (size_t)d : 0;
}

bool status_etcd_down(const json_t *doc)
{
    const json_t *e = json_object_get(doc, "etcd");

    return json_is_object(e) && json_is_false(json_object_get(e, "connected"));
}

/* ---- the table ---- */

#define NCOLS 10

static const char *const headers[NCOLS] = {"SLOT", "INSTANCE", "ADDRESS", "WEIGHT", "ADMIN",
                                           "OPER", "CHECK",    "CUR",     "TOTAL",  "DRIFT"};
static const char *const keys[NCOLS] = {
    "slot",        "instance", "address",          "weight",         "admin",
    "operational", "check",    "sessions_current", "sessions_total", "drift"};

/* A cell's text: untrusted strings are escaped (an instance key may hold
 * anything printable; a terminal control byte must not reach the screen). */
static void cell(const json_t *row, int col, char *buf, size_t size)
{
    const json_t *v = json_object_get(row, keys[col]);

    if (json_is_string(v))
        log_quote(json_string_value(v), json_string_length(v), buf, size);
    else if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, size, "-");
}

static void print_backend(FILE *f, const json_t *b, bool all)
{
    const json_t *rows = json_object_get(b, "servers"), *row;
    size_t width[NCOLS], i, shown = 0;
    char buf[600];
    json_int_t total = json_integer_value(json_object_get(b, "slots_total"));
    json_int_t nfree = json_integer_value(json_object_get(b, "slots_free"));
    const char *name = json_string_value(json_object_get(b, "name"));

    const char *proxy = json_string_value(json_object_get(b, "proxy"));

    log_quote(name ? name : "?", name ? strlen(name) : 1, buf, sizeof(buf));
    fprintf(f, "backend %s", buf);
    if (proxy) {
        log_quote(proxy, strlen(proxy), buf, sizeof(buf));
        fprintf(f, " (%s)", buf); /* a spare backend it is bound to */
    }
    fprintf(f, ": ");
    if (!json_is_true(json_object_get(b, "present")))
        fprintf(f, "not in HAProxy");
    else
        fprintf(f, "%lld of %lld %s used, %lld free",
                (long long)json_integer_value(json_object_get(b, "slots_used")), (long long)total,
                LOG_PLURAL(total, "slot", "slots"), (long long)nfree);
    fprintf(
        f, ", %lld %s in etcd", (long long)json_integer_value(json_object_get(b, "endpoints")),
        LOG_PLURAL(json_integer_value(json_object_get(b, "endpoints")), "endpoint", "endpoints"));
    if (json_integer_value(json_object_get(b, "drift")))
        fprintf(f, ", %lld DRIFT", (long long)json_integer_value(json_object_get(b, "drift")));
    if (json_is_false(json_object_get(b, "routed")))
        fprintf(f, ", NOT ROUTED (no listen, no http_frontend)");
    fputc('\n', f);
    for (int c = 0; c < NCOLS; c++)
        width[c] = strlen(headers[c]);
    json_array_foreach(rows, i, row)
    {
        if (!all && json_is_true(json_object_get(row, "free")))
            continue;
        shown++;
        for (int c = 0; c < NCOLS; c++) {
            cell(row, c, buf, sizeof(buf));
            if (strlen(buf) > width[c])
                width[c] = strlen(buf);
        }
    }
    if (shown) {
        for (int c = 0; c < NCOLS - 1; c++)
            fprintf(f, "%-*s  ", (int)width[c], headers[c]);
        fprintf(f, "%s\n", headers[NCOLS - 1]);
        json_array_foreach(rows, i, row)
        {
            if (!all && json_is_true(json_object_get(row, "free")))
                continue;
            for (int c = 0; c < NCOLS; c++) {
                cell(row, c, buf, sizeof(buf));
                if (c == NCOLS - 1)
                    fprintf(f, "%s\n", buf);
                else
                    fprintf(f, "%-*s  ", (int)width[c], buf);
            }
        }
    }
    if (!all && nfree)
        fprintf(f, "(%lld of %lld slots free, not listed; --all lists them)\n", (long long)nfree,
                (long long)total);
}

int status_render_table(const json_t *doc, bool all, char **out)
{
    const json_t *arr = json_object_get(doc, "backends"), *b;
    size_t len, i, drift = status_drift_count(doc);
    FILE *f;

    *out = NULL;
    if (!json_is_array(arr))
        return -EINVAL;
    f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    json_array_foreach(arr, i, b)
    {
        if (i)
            fputc('\n', f);
        print_backend(f, b, all);
    }
    fprintf(f, "\netcd revision %lld: ",
            (long long)json_integer_value(json_object_get(doc, "etcd_revision")));
    if (status_etcd_down(doc)) {
        /* The daemon's state is etcd's last known one: say so, and why. */
        const json_t *e = json_object_get(doc, "etcd");
        const char *note = json_string_value(json_object_get(e, "note"));
        const char *err = json_string_value(json_object_get(e, "last_error"));
        char q[600];

        if (drift)
            fprintf(f, "%zu drift%s between the last known etcd state and HAProxy\n", drift,
                    drift == 1 ? "" : "s");
        else
            fprintf(f, "HAProxy matches the last known etcd state\n");
        log_quote(note ? note : "etcd unreachable", note ? strlen(note) : 16, q, sizeof(q));
        fprintf(f, "%s", q);
        if (err) {
            log_quote(err, strlen(err), q, sizeof(q));
            fprintf(f, "; last error: %s", q);
        }
        fputc('\n', f);
    } else if (drift) {
        fprintf(f, "%zu drift%s between etcd and HAProxy\n", drift, drift == 1 ? "" : "s");
    } else {
        fprintf(f, "etcd and HAProxy agree\n");
    }
    if (fclose(f) != 0 || !*out) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- the daemon's state dump ---- */

/* "12.3 s ago" or "never" into buf. */
static const char *ago(char *buf, size_t size, double now, double then)
{
    if (then <= 0)
        snprintf(buf, size, "never");
    else
        snprintf(buf, size, "%.1f s ago", now - then);
    return buf;
}

/* One line, formatted, to line(). 0 or -ENOMEM. */
static int dump_line(void (*line)(const char *, void *), void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dump_line(void (*line)(const char *, void *), void *arg, const char *fmt, ...)
{
    va_list ap;
    char *text;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || !(text = malloc((size_t)len + 1)))
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    line(text, arg);
    free(text);
    return 0;
}

int status_dump(const struct status_dump *d, void (*line)(const char *text, void *arg), void *arg)
{
    char resync[32], reload[32];
    int r;

    r = dump_line(line, arg,
                  "state dump (SIGUSR1): etcd revision %lld (%s, %s), %zu %s in %zu "
                  "%s, %llu %s rejected, %llu with unknown JSON fields",
                  (long long)d->revision, d->watching ? "watching" : "not watching",
                  d->listed ? "listed" : "first listing not done", d->endpoints,
                  LOG_PLURAL(d->endpoints, "endpoint", "endpoints"), d->services,
                  LOG_PLURAL(d->services, "service", "services"), d->rejected,
                  LOG_PLURAL(d->rejected, "value", "values"), d->unknown_fields);
    if (r == 0)
        r = dump_line(line, arg,
                      "state dump: HAProxy state %s; last resync %s (%llu %s); last reload %s "
                      "(%llu done, %llu failed, %llu %s failed%s); %llu %s, %llu %s "
                      "(%llu refused)",
                      d->synced ? "known" : "not known yet",
                      ago(resync, sizeof(resync), d->now, d->last_resync_at), d->resyncs,
                      LOG_PLURAL(d->resyncs, "resync", "resyncs"),
                      ago(reload, sizeof(reload), d->now, d->last_reload_at), d->reloads,
                      d->reload_failures, d->check_failures,
                      LOG_PLURAL(d->check_failures, "check", "checks"),
                      d->reloading ? ", one in flight" : "", d->batches,
                      LOG_PLURAL(d->batches, "batch", "batches"), d->commands,
                      LOG_PLURAL(d->commands, "command", "commands"), d->refused);
    if (r == 0) {
        char contact[32];

        ago(contact, sizeof(contact), d->now, d->etcd_last_contact);
        if (d->etcd_up)
            r = dump_line(
                line, arg, "state dump: etcd connected through %s%s%s for %.1f s, last answer %s",
                d->etcd_endpoint && d->etcd_endpoint[0] ? d->etcd_endpoint : "?",
                d->etcd_transport ? " over " : "", d->etcd_transport ? d->etcd_transport : "",
                d->etcd_since > 0 ? d->now - d->etcd_since : 0, contact);
        else
            r = dump_line(line, arg,
                          "state dump: etcd unreachable (%s) for %.1f s, last answer %s, last "
                          "error: %s; serving the last known state (revision %lld)",
                          d->etcd_endpoint && d->etcd_endpoint[0] ? d->etcd_endpoint : "?",
                          d->etcd_since > 0 ? d->now - d->etcd_since : 0, contact,
                          d->etcd_error ? d->etcd_error : "none", (long long)d->revision);
    }
    for (size_t i = 0; r == 0 && i < d->n_backends; i++) {
        const struct status_dump_backend *b = &d->backends[i];

        r = dump_line(line, arg,
                      "state dump: backend %s: %zu %s used, %zu free (%zu %s, %zu "
                      "without a slot)%s%s",
                      b->name, b->used, LOG_PLURAL(b->used, "slot", "slots"), b->slots - b->used,
                      b->endpoints, LOG_PLURAL(b->endpoints, "endpoint", "endpoints"), b->overflow,
                      b->present ? "" : ", not in HAProxy",
                      b->configured ? "" : ", from etcd only");
    }
    if (r == 0)
        r = dump_line(line, arg, "state dump: end (%zu %s)", d->n_backends,
                      LOG_PLURAL(d->n_backends, "backend", "backends"));
    return r;
}

int status_mark_routed(json_t *doc, bool (*routed)(const char *name, void *arg), void *arg)
{
    json_t *arr = json_object_get(doc, "backends"), *b;
    size_t i;

    json_array_foreach(arr, i, b)
    {
        const char *name = json_string_value(json_object_get(b, "name"));

        if (name && json_object_set_new(b, "routed", json_boolean(routed(name, arg))) < 0)
            return -ENOMEM;
    }
    return 0;
}
