/* Tests for metrics: the histogram, and the exposition text checked line by
 * line against the Prometheus text format's rules. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/metrics.h>

#define MAX_FAMILIES 64

struct family {
    char name[128];
    char type[16];
    bool help;
};

struct parser {
    struct family fam[MAX_FAMILIES];
    size_t n;
    char last_hist[128];
    double last_le;
    double last_bucket;
    char samples[256][200]; /* name + labels, to catch duplicates */
    size_t n_samples;
};

static bool metric_name_ok(const char *s, size_t len)
{
    if (!len || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

static struct family *find_family(struct parser *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->fam[i].name) == len && memcmp(p->fam[i].name, name, len) == 0)
            return &p->fam[i];
    return NULL;
}

static double parse_value(const char *s)
{
    char *end;
    double v;

    if (strcmp(s, "+Inf") == 0)
        return INFINITY;
    if (strcmp(s, "-Inf") == 0)
        return -INFINITY;
    if (strcmp(s, "NaN") == 0)
        return NAN;
    v = strtod(s, &end);
    cr_assert(end != s && *end == '\0', "bad sample value '%s'", s);
    return v;
}

/* One sample line: name[{label="value",...}] value */
static void check_sample(struct parser *p, const char *line)
{
    const char *s = line, *name = s;
    size_t nlen;
    char le[128] = "";
    struct family *f = NULL;
    double v;

    while (*s && *s != '{' && *s != ' ')
        s++;
    nlen = (size_t)(s - name);
    cr_assert(metric_name_ok(name, nlen), "bad metric name in '%s'", line);
    if (*s == '{') {
        s++;
        while (*s != '}') {
            const char *ln = s;
            char val[128];
            size_t vl = 0;

            while (isalnum((unsigned char)*s) || *s == '_')
                s++;
            cr_assert(s > ln && !isdigit((unsigned char)*ln), "bad label name in '%s'", line);
            cr_assert(s[0] == '=' && s[1] == '"', "label without =\" in '%s'", line);
            s += 2;
            while (*s != '"') {
                cr_assert(*s, "unterminated label value in '%s'", line);
                if (*s == '\\') {
                    s++;
                    cr_assert(*s == '\\' || *s == '"' || *s == 'n', "bad escape in '%s'", line);
                }
                cr_assert(vl < sizeof(val) - 1);
                val[vl++] = *s++;
            }
            val[vl] = '\0';
            if ((size_t)(s - ln) > 4 && strncmp(ln, "le=", 3) == 0)
                snprintf(le, sizeof(le), "%s", val);
            s++;
            if (*s == ',')
                s++;
            else
                cr_assert(*s == '}', "labels not closed in '%s'", line);
        }
        s++;
    }
    cr_assert(*s == ' ' && s[1] && s[1] != ' ', "no single space before the value in '%s'", line);
    v = parse_value(s + 1);
    cr_assert(p->n_samples < 256);
    for (size_t i = 0; i < p->n_samples; i++)
        cr_assert(strncmp(p->samples[i], line, (size_t)(s - line)) != 0 ||
                      strlen(p->samples[i]) != (size_t)(s - line),
                  "duplicate sample '%s'", line);
    snprintf(p->samples[p->n_samples++], 200, "%.*s", (int)(s - line), line);

    /* The family: the name, or for a histogram the name less its suffix. */
    f = find_family(p, name, nlen);
    if (!f) {
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};

        for (size_t i = 0; i < 3 && !f; i++) {
            size_t sl = strlen(suffixes[i]);

            if (nlen > sl && memcmp(name + nlen - sl, suffixes[i], sl) == 0) {
                f = find_family(p, name, nlen - sl);
                if (f)
                    cr_assert_str_eq(f->type, "histogram", "'%s' suffix on a %s", line, f->type);
            }
        }
    }
    cr_assert_not_null(f, "sample before its # TYPE: '%s'", line);
    cr_assert(f == &p->fam[p->n - 1], "sample '%s' not grouped with its family", line);
    if (strcmp(f->type, "counter") == 0)
        cr_assert(v >= 0, "negative counter '%s'", line);
    if (strcmp(f->type, "histogram") == 0 && le[0]) {
        double bound = parse_value(le);

        if (strcmp(p->last_hist, f->name) != 0) {
            snprintf(p->last_hist, sizeof(p->last_hist), "%s", f->name);
            p->last_le = -INFINITY;
            p->last_bucket = 0;
        }
        cr_assert(bound > p->last_le, "buckets not in increasing order at '%s'", line);
        cr_assert(v >= p->last_bucket, "bucket counts not cumulative at '%s'", line);
        p->last_le = bound;
        p->last_bucket = v;
    } else if (strcmp(f->type, "histogram") == 0 && strstr(name, "_count") == name + nlen - 6) {
        cr_assert(p->last_le == INFINITY, "no +Inf bucket before '%s'", line);
        cr_assert(v == p->last_bucket, "_count differs from the +Inf bucket at '%s'", line);
    }
}

static void check_exposition(const char *text, struct parser *p)
{
    char *copy = strdup(text), *save = NULL;

    cr_assert_not_null(copy);
    cr_assert(text[0] && text[strlen(text) - 1] == '\n', "text must end with a newline");
    memset(p, 0, sizeof(*p));
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            char *name = line + 7, *sp = strchr(name, ' ');
            struct family *f;

            cr_assert_not_null(sp, "no text after the name in '%s'", line);
            cr_assert(metric_name_ok(name, (size_t)(sp - name)), "bad name in '%s'", line);
            f = find_family(p, name, (size_t)(sp - name));
            if (!f) {
                cr_assert(p->n < MAX_FAMILIES);
                f = &p->fam[p->n++];
                snprintf(f->name, sizeof(f->name), "%.*s", (int)(sp - name), name);
            } else {
                cr_assert(f == &p->fam[p->n - 1], "family '%s' split", f->name);
            }
            if (help) {
                cr_assert(!f->help, "second HELP for %s", f->name);
                f->help = true;
            } else {
                cr_assert(!f->type[0], "second TYPE for %s", f->name);
                cr_assert(strcmp(sp + 1, "counter") == 0 || strcmp(sp + 1, "gauge") == 0 ||
                              strcmp(sp + 1, "histogram") == 0,
                          "unknown type in '%s'", line);
                snprintf(f->type, sizeof(f->type), "%s", sp + 1);
            }
            continue;
        }
        cr_assert(line[0] != '#', "comment that is not HELP or TYPE: '%s'", line);
        check_sample(p, line);
    }
    free(copy);
}

static const char *sample_value(const char *text, const char *key)
{
    static char buf[64];
    size_t kl = strlen(key);

    for (const char *s = text; (s = strstr(s, key)); s += kl) {
        if ((s == text || s[-1] == '\n') && s[kl] == ' ') {
            sscanf(s + kl + 1, "%63s", buf);
            return buf;
        }
    }
    return NULL;
}

Test(metrics, exposition_format_line_by_line)
{
    struct metrics_backend be[] = {{"web", 3, 16, false}, {"we\"ird\\", 0, 4, true}};
    struct metrics m = {0};
    struct parser p;
    char *text;
    size_t len;

    m.etcd_events = 7;
    m.etcd_watch_starts = 2;
    m.etcd_revision = 42;
    m.rejected[METRICS_REJECT_VALUE] = 1;
    m.commands = 12;
    m.batches = 3;
    m.reloads = 1;
    m.reload_requests[METRICS_CAUSE_NEW_SERVICE] = 1;
    m.reload_requests[METRICS_CAUSE_BULK] = 3;
    m.haproxy_up = true;
    m.since_resync_s = 1.5;
    m.capped[METRICS_CAP_SERVICES] = 5;
    m.held[METRICS_CAP_ENDPOINTS] = 2;
    m.backends = be;
    m.n_backends = 2;
    metrics_observe(&m.batch_seconds, 0.002, 1);
    metrics_observe(&m.batch_seconds, 0.2, 2);
    metrics_observe(&m.event_to_applied, 30, 4); /* beyond the last bound: +Inf only */
    cr_assert_eq(metrics_render(&m, &text, &len), 0);
    cr_assert_eq(strlen(text), len);
    check_exposition(text, &p);
    cr_assert_geq(p.n, 20);
    for (size_t i = 0; i < p.n; i++) {
        cr_assert(p.fam[i].help && p.fam[i].type[0], "%s lacks HELP or TYPE", p.fam[i].name);
        cr_assert(strncmp(p.fam[i].name, "slotsync_", 9) == 0);
    }
    cr_assert_str_eq(sample_value(text, "slotsync_etcd_events_total"), "7");
    cr_assert_str_eq(sample_value(text, "slotsync_etcd_revision"), "42");
    cr_assert_str_eq(sample_value(text, "slotsync_values_rejected_total{reason=\"value\"}"), "1");
    cr_assert_str_eq(sample_value(text, "slotsync_slots_used{backend=\"web\"}"), "3");
    cr_assert_str_eq(sample_value(text, "slotsync_slots_total{backend=\"we\\\"ird\\\\\"}"), "4");
    /* issue 19 item 5: a backend nothing routes to */
    cr_assert_str_eq(sample_value(text, "slotsync_backend_routed{backend=\"web\"}"), "1");
    cr_assert_str_eq(sample_value(text, "slotsync_backend_routed{backend=\"we\\\"ird\\\\\"}"), "0");
    cr_assert_str_eq(sample_value(text, "slotsync_batch_duration_seconds_bucket{le=\"0.0025\"}"),
                     "1");
    cr_assert_str_eq(sample_value(text, "slotsync_batch_duration_seconds_bucket{le=\"0.25\"}"),
                     "3");
    cr_assert_str_eq(sample_value(text, "slotsync_event_to_applied_seconds_bucket{le=\"10\"}"),
                     "0");
    cr_assert_str_eq(sample_value(text, "slotsync_event_to_applied_seconds_count"), "4");
    cr_assert_str_eq(sample_value(text, "slotsync_haproxy_up"), "1");
    cr_assert_str_eq(sample_value(text, "slotsync_seconds_since_last_resync"), "1.500");
    cr_assert_str_eq(sample_value(text, "slotsync_reload_requests_total{cause=\"new_service\"}"),
                     "1");
    /* issue 23: a large plan's reload is "bulk", not "other" */
    cr_assert_str_eq(sample_value(text, "slotsync_reload_requests_total{cause=\"bulk\"}"), "3");
    cr_assert_str_eq(sample_value(text, "slotsync_reload_requests_total{cause=\"other\"}"), "0");
    cr_assert_str_eq(sample_value(text, "slotsync_capped_total{limit=\"max_services\"}"), "5");
    cr_assert_str_eq(
        sample_value(text, "slotsync_capped_total{limit=\"max_endpoints_per_service\"}"), "0");
    cr_assert_str_eq(sample_value(text, "slotsync_capped{limit=\"max_endpoints_per_service\"}"),
                     "2");
    free(text);
}

Test(metrics, no_resync_yet_leaves_the_gauge_without_a_sample)
{
    struct metrics m = {0};
    struct parser p;
    char *text;
    size_t len;

    m.since_resync_s = -1;
    cr_assert_eq(metrics_render(&m, &text, &len), 0);
    check_exposition(text, &p);
    cr_assert_null(sample_value(text, "slotsync_seconds_since_last_resync"));
    free(text);
}

Test(metrics, etcd_build_and_spare_gauges)
{
    struct metrics m = {0};
    struct parser p;
    char *text;
    size_t len;

    m.since_resync_s = -1;
    m.etcd_up = false;
    m.etcd_last_contact_s = 40.25;
    m.version = "0.1.0";
    m.spares_total = 4;
    m.spares_free = 3;
    cr_assert_eq(metrics_render(&m, &text, &len), 0);
    check_exposition(text, &p);
    cr_assert_str_eq(sample_value(text, "slotsync_etcd_up"), "0");
    cr_assert_str_eq(sample_value(text, "slotsync_etcd_last_contact_seconds"), "40.250");
    cr_assert_str_eq(sample_value(text, "slotsync_build_info{version=\"0.1.0\"}"), "1");
    cr_assert_str_eq(sample_value(text, "slotsync_spare_backends"), "4");
    cr_assert_str_eq(sample_value(text, "slotsync_spare_backends_free"), "3");
    free(text);

    /* connected; never heard from etcd yet: no sample, as before a resync */
    m.etcd_up = true;
    m.etcd_last_contact_s = -1;
    cr_assert_eq(metrics_render(&m, &text, &len), 0);
    check_exposition(text, &p);
    cr_assert_str_eq(sample_value(text, "slotsync_etcd_up"), "1");
    cr_assert_null(sample_value(text, "slotsync_etcd_last_contact_seconds"));
    free(text);
}

Test(metrics, observe_ignores_nonsense)
{
    struct metrics_histogram h = {0};

    metrics_observe(&h, -1, 1);
    metrics_observe(&h, NAN, 1);
    metrics_observe(&h, 0.001, 0);
    cr_assert_eq(h.count, 0);
    metrics_observe(&h, 0.001, 3);
    cr_assert_eq(h.count, 3);
    cr_assert_eq(h.buckets[1], 3);
}

Test(metrics, pending_events_are_observed_at_their_own_arrival)
{
    struct metrics_pending pending = {0}, in_flight = {0};
    struct metrics_histogram h = {0};

    metrics_pending_add(&pending, 10.0);
    metrics_pending_add(&pending, 10.0);
    metrics_pending_add(&pending, 10.5);
    cr_assert_eq(pending.len, 2);
    metrics_pending_move(&in_flight, &pending);
    cr_assert_eq(pending.len, 0);
    metrics_pending_add(&pending, 11.0); /* arrives while the batch is out */
    cr_assert_float_eq(metrics_pending_observe(&in_flight, &h, 10.6), 0.6, 1e-9);
    cr_assert_eq(h.count, 3);
    cr_assert_float_eq(h.sum, 2 * 0.6 + 0.1, 1e-9);
    cr_assert_eq(in_flight.len, 0);
    cr_assert_eq(pending.len, 1);
    for (int i = 0; i < 100; i++)
        metrics_pending_add(&pending, 12.0 + i);
    cr_assert_eq(pending.len, METRICS_PENDING_GROUPS);
    metrics_pending_observe(&pending, &h, 200);
    cr_assert_eq(h.count, 3 + 101); /* none lost when the groups ran out */
}

Test(metrics, recent_ring_keeps_the_last_hundred)
{
    static struct metrics_recent r;
    struct metrics_change ch = {0};

    cr_assert_null(metrics_recent_get(&r, 0));
    for (int i = 0; i < 150; i++) {
        ch.at = i;
        metrics_recent_add(&r, &ch);
    }
    cr_assert_eq(r.len, METRICS_RECENT_MAX);
    cr_assert_float_eq(metrics_recent_get(&r, 0)->at, 149, 1e-9);
    cr_assert_float_eq(metrics_recent_get(&r, 99)->at, 50, 1e-9);
    cr_assert_null(metrics_recent_get(&r, 100));
}
