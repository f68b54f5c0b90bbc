/* hafd - HAProxy's descriptor needs against this machine's limit
 * (hafd.h). */
#include <slotsync/hafd.h>

#include <stdlib.h>
#include <string.h>

/* The next whitespace-separated word of [*p, end) into w (at most size-1
 * bytes kept); false at the end of the line. */
static bool word(const char **p, const char *end, char *w, size_t size)
{
    const char *s = *p;
    size_t n = 0;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s >= end || *s == '#')
        return false;
    while (s < end && *s != ' ' && *s != '\t') {
        if (n + 1 < size)
            w[n++] = *s;
        s++;
    }
    w[n] = '\0';
    *p = s;
    return true;
}

static long number(const char *w)
{
    char *e;
    long v = strtol(w, &e, 10);

    return *w && !*e && v > 0 ? v : 0;
}

struct flags {
    bool check, agent;
};

/* The check flags of the words after the keyword on a server or
 * default-server line, starting from inherit. */
static struct flags line_flags(const char *p, const char *end, struct flags f)
{
    char w[64];

    while (word(&p, end, w, sizeof(w))) {
        if (strcmp(w, "check") == 0)
            f.check = true;
        else if (strcmp(w, "no-check") == 0)
            f.check = false;
        else if (strcmp(w, "agent-check") == 0)
            f.agent = true;
        else if (strcmp(w, "no-agent-check") == 0)
            f.agent = false;
    }
    return f;
}

void hafd_count_text(const char *text, size_t len, struct hafd_count *c)
{
    const char *p = text, *end = text + len;
    struct flags defaults = {0}, section = {0};
    bool in_global = false, in_defaults = false;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p;
        char kw[32], arg[32];

        if (!eol)
            eol = end;
        if (word(&q, eol, kw, sizeof(kw))) {
            bool top = p < eol && *p != ' ' && *p != '\t';

            if (top && (strcmp(kw, "global") == 0 || strcmp(kw, "defaults") == 0 ||
                        strcmp(kw, "backend") == 0 || strcmp(kw, "listen") == 0 ||
                        strcmp(kw, "frontend") == 0 || strcmp(kw, "peers") == 0 ||
                        strcmp(kw, "resolvers") == 0 || strcmp(kw, "userlist") == 0 ||
                        strcmp(kw, "program") == 0 || strcmp(kw, "ring") == 0)) {
                in_global = strcmp(kw, "global") == 0;
                in_defaults = strcmp(kw, "defaults") == 0;
                if (in_defaults)
                    defaults = (struct flags){0};
                section = defaults;
            } else if (strcmp(kw, "server") == 0) {
                struct flags f = line_flags(q, eol, section);

                c->servers++;
                c->checked += f.check;
                c->agents += f.agent;
            } else if (strcmp(kw, "default-server") == 0) {
                section = line_flags(q, eol, section);
                if (in_defaults)
                    defaults = section;
            } else if (strcmp(kw, "bind") == 0) {
                c->listeners++;
            } else if (in_global && strcmp(kw, "stats") == 0 && word(&q, eol, arg, sizeof(arg)) &&
                       strcmp(arg, "socket") == 0) {
                c->listeners++;
            } else if (in_global && word(&q, eol, arg, sizeof(arg))) {
                if (strcmp(kw, "maxconn") == 0 && number(arg))
                    c->maxconn = number(arg);
                else if (strcmp(kw, "nbthread") == 0 && number(arg))
                    c->nbthread = number(arg);
                else if (strcmp(kw, "fd-hard-limit") == 0 && number(arg))
                    c->fd_hard_limit = number(arg);
            }
        }
        p = eol + 1;
    }
}

unsigned long hafd_needed(const struct hafd_count *c, long threads)
{
    unsigned long maxconn = c->maxconn > 0 ? (unsigned long)c->maxconn : HAFD_MIN_MAXCONN;
    unsigned long t = c->nbthread > 0 ? (unsigned long)c->nbthread
                      : threads > 0   ? (unsigned long)threads
                                      : 1;

    return 2 * maxconn + c->checked + 2 * c->agents + c->listeners + HAFD_PER_THREAD * t +
           HAFD_FIXED;
}

unsigned long hafd_available(unsigned long hard, unsigned long nr_open, bool can_raise,
                                long fd_hard_limit)
{
    unsigned long a = can_raise && nr_open > hard ? nr_open : hard;

    if (fd_hard_limit > 0 && (unsigned long)fd_hard_limit < a)
        a = (unsigned long)fd_hard_limit;
    return a;
}
