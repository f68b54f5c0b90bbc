/* log - leveled one-line logging and memprintf. */
#include <slotsync/log.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

static enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
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

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    char line[2048], stamp[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;

    if (level > log_threshold)
        return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof(line), "%s.%03ld %-5s %s: ", stamp, (long)(tv.tv_usec / 1000),
                 log_level_name(level), module);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so that lines from concurrent processes do not mix. */
    fprintf(stderr, "%s\n", line);
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
