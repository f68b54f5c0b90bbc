/* log - leveled one-line logging, rate-limited per call site, and memprintf. */
#include <slotsync/log.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;
static bool log_local_time;
static bool log_unlimited;
static enum log_format log_shape;
static FILE *log_out;                /* NULL: stderr */
static double (*log_clock)(void);    /* NULL: CLOCK_MONOTONIC */
static long (*log_wall)(long *usec); /* NULL: gettimeofday */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

void log_set_local_time(bool local)
{
    log_local_time = local;
}

void log_set_format(enum log_format format)
{
    log_shape = format;
}

int log_format_parse(const char *name)
{
    static const char *const names[] = {"text", "logfmt", "json"};

    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

/* s appended to buf (size, *len used) as the inside of a double-quoted
 * logfmt or JSON string: quotes, backslashes and control characters
 * escaped; json also escapes bytes above 0x7f (\u00XX), so the line is
 * valid UTF-8 whatever s holds. What does not fit is cut. */
static void put_escaped(char *buf, size_t size, size_t *len, const char *s, bool json)
{
    for (const unsigned char *p = (const unsigned char *)s; *p && *len + 8 < size; p++) {
        int n;

        if (*p == '"' || *p == '\\')
            n = snprintf(buf + *len, size - *len, "\\%c", *p);
        else if (*p == '\n')
            n = snprintf(buf + *len, size - *len, "\\n");
        else if (*p == '\r')
            n = snprintf(buf + *len, size - *len, "\\r");
        else if (*p == '\t')
            n = snprintf(buf + *len, size - *len, "\\t");
        else if (*p < 0x20 || *p == 0x7f || (json && *p > 0x7f))
            n = snprintf(buf + *len, size - *len, json ? "\\u%04x" : "\\x%02x", *p);
        else
            n = snprintf(buf + *len, size - *len, "%c", *p);
        *len += n > 0 ? (size_t)n : 0;
    }
}

/* A field's key appended as it is when it is a plain name ([A-Za-z0-9_.-]),
 * with any other byte as '_'; a key that would shadow a record's own key
 * (ts, level, module, msg) gets a '_' after it. */
static void put_key(char *buf, size_t size, size_t *len, const char *key)
{
    static const char *const reserved[] = {"ts", "level", "module", "msg"};
    const char *p = key;

    for (; *p && *len + 2 < size; p++) {
        unsigned char ch = (unsigned char)*p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';

        buf[(*len)++] = plain ? (char)ch : '_';
    }
    if (p == key && *len + 2 < size)
        buf[(*len)++] = '_';
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(key, reserved[i]) == 0 && *len + 2 < size)
            buf[(*len)++] = '_';
    buf[*len] = '\0';
}

/* A logfmt value needs no quotes when it is not empty and holds only
 * printable ASCII other than space, '"', '=' and '\\'. */
static bool logfmt_bare(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
            return false;
    return true;
}

/* fmt's text appended to buf (size, *len used). */
static void put_raw(char *buf, size_t size, size_t *len, const char *text)
{
    int n = snprintf(buf + *len, size - *len, "%s", text);

    if (n > 0)
        *len = *len + (size_t)n < size ? *len + (size_t)n : size - 1;
}

void log_set_unlimited(bool unlimited)
{
    log_unlimited = unlimited;
}

void log_set_output(FILE *out)
{
    log_out = out;
}

void log_set_clock(double (*clock)(void), long (*wall)(long *usec))
{
    log_clock = clock;
    log_wall = wall;
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

static double monotonic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* RFC 3339 with milliseconds: "2026-12-01T05:15:00.123Z" in UTC, or with
 * the local offset ("...00.123-05:00") when local time was asked for. */
size_t log_format_time(long sec, long usec, bool local, char *out, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;
    char date[32], zone[8] = "Z";
    int n;

    if (local) {
        char z[8];

        localtime_r(&t, &tm);
        /* strftime's %z is "+hhmm"; RFC 3339 wants "+hh:mm". */
        if (strftime(z, sizeof(z), "%z", &tm) == 5)
            snprintf(zone, sizeof(zone), "%.3s:%.2s", z, z + 3);
    } else {
        gmtime_r(&t, &tm);
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(out, size, "%s.%03ld%s", date, usec / 1000, zone);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- rate limiting ---- */

bool log_rate_allow(struct log_rate *r, double now, unsigned long *summary)
{
    *summary = 0;
    if (r->lines == 0 && r->suppressed == 0) {
        r->window_start = now;
    } else if (now - r->window_start >= LOG_RATE_WINDOW_S || now < r->window_start) {
        /* The window is over: report what it hid, start a new one. */
        *summary = r->suppressed;
        r->window_start = now;
        r->lines = 0;
        r->suppressed = 0;
    }
    if (r->lines < LOG_RATE_LINES) {
        r->lines++;
        return true;
    }
    r->suppressed++;
    return false;
}

bool log_rate_flush(struct log_rate *r, double now, unsigned long *summary)
{
    *summary = 0;
    if (r->suppressed == 0 || (now - r->window_start < LOG_RATE_WINDOW_S && now >= r->window_start))
        return false;
    *summary = r->suppressed;
    r->suppressed = 0;
    r->lines = 0;
    return true;
}

/* One call site: a format string (its address identifies the log_msg() call
 * that passed it), with what its hidden lines need for their summary. */
struct log_site {
    const char *fmt; /* NULL: free */
    const char *module;
    enum log_level level;
    struct log_rate rate;
    char last[LOG_LINE_MAX]; /* the last hidden message */
};

#define LOG_SITES 128
static struct log_site log_sites[LOG_SITES];
static unsigned log_pending; /* sites with hidden lines */

static void write_line(enum log_level level, const char *module, const char *msg,
                       const struct log_field *fields, size_t n_fields)
{
    char stamp[48];
    long usec = 0, sec;

    if (log_wall) {
        sec = log_wall(&usec);
    } else {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        sec = (long)tv.tv_sec;
        usec = (long)tv.tv_usec;
    }
    log_format_time(sec, usec, log_local_time, stamp, sizeof(stamp));
    /* One write per line so that lines from concurrent processes do not mix. */
    FILE *out = log_out ? log_out : stderr;
    char line[LOG_LINE_MAX * 6 + 256];
    size_t len = 0;
    bool json = log_shape == LOG_FORMAT_JSON;

    if (log_shape == LOG_FORMAT_TEXT) {
        fprintf(out, "%s %-5s %s: %s\n", stamp, log_level_name(level), module, msg);
        fflush(out);
        return;
    }
    put_raw(line, sizeof(line), &len, json ? "{\"ts\":\"" : "ts=");
    put_raw(line, sizeof(line), &len, stamp);
    put_raw(line, sizeof(line), &len, json ? "\",\"level\":\"" : " level=");
    put_raw(line, sizeof(line), &len, log_level_name(level));
    put_raw(line, sizeof(line), &len, json ? "\",\"module\":\"" : " module=\"");
    put_escaped(line, sizeof(line), &len, module, json);
    put_raw(line, sizeof(line), &len, json ? "\",\"msg\":\"" : "\" msg=\"");
    put_escaped(line, sizeof(line) - 16, &len, msg, json);
    put_raw(line, sizeof(line), &len, "\"");
    for (size_t i = 0; i < n_fields; i++) {
        const char *v = fields[i].value;

        /* What does not fit is cut, but the record stays closed. */
        if (!fields[i].key || !v || len + 512 > sizeof(line))
            continue;
        put_raw(line, sizeof(line), &len, json ? ",\"" : " ");
        put_key(line, sizeof(line), &len, fields[i].key);
        if (json || !logfmt_bare(v)) {
            put_raw(line, sizeof(line), &len, json ? "\":\"" : "=\"");
            put_escaped(line, sizeof(line) - 16, &len, v, json);
            put_raw(line, sizeof(line), &len, "\"");
        } else {
            put_raw(line, sizeof(line), &len, "=");
            put_escaped(line, sizeof(line) - 16, &len, v, json);
        }
    }
    put_raw(line, sizeof(line), &len, json ? "}\n" : "\n");
    fputs(line, out);
    fflush(out);
}

static void write_summary(struct log_site *s, unsigned long n)
{
    char msg[LOG_LINE_MAX + 96];

    snprintf(msg, sizeof(msg), "+%lu similar lines in the last second (last: %s)", n, s->last);
    write_line(s->level, s->module, msg, NULL, 0);
    if (log_pending)
        log_pending--;
}

void log_flush(bool all)
{
    double now;

    if (!log_pending)
        return;
    now = log_clock ? log_clock() : monotonic_now();
    for (size_t i = 0; i < LOG_SITES && log_pending; i++) {
        struct log_site *s = &log_sites[i];
        unsigned long n;

        /* all: as if every window were over (at exit) */
        if (s->fmt && log_rate_flush(&s->rate, all ? now + LOG_RATE_WINDOW_S : now, &n))
            write_summary(s, n);
    }
}

/* The site of fmt, or a free one (a site idle for a whole window is free
 * again); NULL when every site is busy: then the line is not limited. */
static struct log_site *site_get(const char *fmt, double now)
{
    size_t h = ((size_t)(uintptr_t)fmt >> 3) % LOG_SITES;
    struct log_site *spare = NULL;

    for (size_t k = 0; k < LOG_SITES; k++) {
        struct log_site *s = &log_sites[(h + k) % LOG_SITES];

        if (s->fmt == fmt)
            return s;
        if (!s->fmt) {
            spare = spare ? spare : s;
            break;
        }
        if (!spare && s->rate.suppressed == 0 && now - s->rate.window_start >= LOG_RATE_WINDOW_S)
            spare = s;
    }
    if (spare) {
        memset(&spare->rate, 0, sizeof(spare->rate));
        spare->fmt = fmt;
    }
    return spare;
}

static void log_vmsg(enum log_level level, const char *module, bool limited,
                     const struct log_field *fields, size_t n_fields, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    struct log_site *site = NULL;

    /* What was asked for (log_msg_all) is printed at any threshold. */
    if (limited && level > log_threshold)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Debug lines are what a developer asked for: all of them. */
    if (limited && level < LOG_LEVEL_DEBUG && !log_unlimited) {
        double now = log_clock ? log_clock() : monotonic_now();
        unsigned long hidden;

        log_flush(false);
        site = site_get(fmt, now);
        if (site) {
            bool had = site->rate.suppressed > 0;
            bool ok = log_rate_allow(&site->rate, now, &hidden);

            site->module = module;
            site->level = level;
            if (hidden)
                write_summary(site, hidden);
            if (!ok) {
                if (!had)
                    log_pending++;
                memcpy(site->last, msg, sizeof(msg));
                return;
            }
        }
    }
    write_line(level, module, msg, fields, n_fields);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, module, true, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_msg_all(enum log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, module, false, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_fields(enum log_level level, const char *module, const struct log_field *fields,
                size_t n_fields, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, module, true, fields, n_fields, fmt, ap);
    va_end(ap);
}

char *log_quote(const char *text, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    static const char named_from[] = "\n\r\t\"\\", named_to[] = "nrt\"\\";
    size_t o = 0;

    if (outsz == 0)
        return out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char esc[5];
        size_t elen = 0;

        /* The C escapes for the few characters that have one. */
        const char *named = c ? strchr(named_from, (char)c) : NULL;

        if (named) {
            esc[0] = '\\';
            esc[1] = named_to[named - named_from];
            elen = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            elen = 4;
        } else {
            esc[0] = (char)c;
            elen = 1;
        }
        /* keep room for "..." and the NUL */
        if (o + elen + 4 > outsz) {
            if (outsz >= 4) {
                size_t at = o + 4 > outsz ? outsz - 4 : o;
                memcpy(out + at, "...", 3);
                o = at + 3;
            }
            break;
        }
        memcpy(out + o, esc, elen);
        o += elen;
    }
    out[o < outsz ? o : outsz - 1] = '\0';
    return out;
}

char *log_quote_str(const char *s, char *out, size_t outsz)
{
    return log_quote(s, strlen(s), out, outsz);
}

char *memprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    if (!out)
        return NULL;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        s = malloc((size_t)n + 1);
        if (s) {
            va_start(ap, fmt);
            vsnprintf(s, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    free(*out);
    *out = s;
    return s;
}

/* Seconds from the start of an outage to each "still" line; after the last,
 * one every LOG_OUTAGE_EVERY seconds. */
static const double outage_marks[] = {10, 30, 60};
#define LOG_OUTAGE_EVERY 300.0
#define N_MARKS (sizeof(outage_marks) / sizeof(outage_marks[0]))

static double outage_mark(unsigned step)
{
    if (step < N_MARKS)
        return outage_marks[step];
    return outage_marks[N_MARKS - 1] + LOG_OUTAGE_EVERY * (double)(step - N_MARKS + 1);
}

bool log_outage_begin(struct log_outage *o, double now)
{
    if (o->since > 0)
        return false;
    /* 0 is the "no outage" mark: a clock at 0 still starts one */
    o->since = now > 0 ? now : 1e-9;
    o->step = 0;
    o->next = o->since + outage_mark(0);
    return true;
}

bool log_outage_due(struct log_outage *o, double now, double *elapsed)
{
    if (o->since <= 0 || now < o->next)
        return false;
    /* A long gap between calls gives one line, not one per missed mark. */
    while (o->since + outage_mark(o->step) <= now)
        o->step++;
    o->next = o->since + outage_mark(o->step);
    if (elapsed)
        *elapsed = now - o->since;
    return true;
}

double log_outage_end(struct log_outage *o, double now)
{
    double len;

    if (o->since <= 0)
        return -1;
    len = now - o->since;
    o->since = 0;
    o->next = 0;
    o->step = 0;
    return len < 0 ? 0 : len;
}

size_t log_chomp(const char *text, size_t len)
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    return len;
}
