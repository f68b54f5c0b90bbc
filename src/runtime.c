/* runtime - batches of commands over HAProxy's runtime socket, on the loop. */
#include <slotsync/runtime.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ev.h>

#include <slotsync/endpoint.h>
#include <slotsync/fdlimit.h>
#include <slotsync/log.h>
#include <slotsync/mem.h>
#include <slotsync/plan.h>
#include <slotsync/reply.h>
#include <slotsync/render.h>
#include <slotsync/spare.h>
#include <slotsync/timeouts.h>

#define RUNTIME_REPLY_MAX ((size_t)RUNTIME_REPLY_MAX_MIB << 20) /* a larger response is refused */

enum rt_phase { RT_IDLE = 0, RT_CONNECTING, RT_WRITING, RT_READING };

struct runtime {
    struct ev_loop *loop;
    ev_io io;
    ev_timer timer;
    double timeout_s;
    struct sockaddr_storage sa;
    socklen_t salen;
    enum rt_phase phase;
    int fd;
    bool raw; /* hand back the response unsplit */
    size_t n_cmds;
    char *out; /* the lines to send, one per connection */
    size_t out_len, out_off;
    size_t line_end; /* end of the line the current connection carries */
    char *in;        /* what came back */
    size_t in_len, in_cap;
    runtime_done_cb cb;
    void *arg;
    bool stale; /* timed out and called back; finished in the background */
    unsigned long stale_abandoned;
    /* sentinel connection */
    ev_io sentinel;
    int sentinel_fd;
    runtime_lost_cb lost;
    void *lost_arg;
};

/* ---- pure: lines ---- */

_Static_assert(PLAN_CMD_MAX + 1 <= RUNTIME_LINE_MAX, "a command fits in a CLI line");

int runtime_join_lines(const char *const *cmds, size_t n, size_t line_max, char **out, size_t *len)
{
    size_t total = 0, off = 0, line_len = 0;
    int lines = 1;
    char *buf;

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i][0] || strpbrk(cmds[i], ";\n\r"))
            return -EINVAL;
        total += strlen(cmds[i]) + 1;
    }
    buf = malloc(total + 1);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(cmds[i]);

        /* The separator before this command ends the line if the command,
         * after its ';' and with the line's '\n', would take the line past
         * line_max. */
        if (i > 0) {
            bool cut = line_len + 1 + l + 1 > line_max;

            buf[off++] = cut ? '\n' : ';';
            if (cut) {
                lines++;
                line_len = 0;
            } else {
                line_len++;
            }
        }
        memcpy(buf + off, cmds[i], l);
        off += l;
        line_len += l;
    }
    buf[off++] = '\n';
    buf[off] = '\0';
    *out = buf;
    *len = off;
    return lines;
}

/* ---- pure: replies ---- */

void runtime_replies_free(char **replies, size_t n)
{
    (void)n; /* the replies live in the response buffer */
    free(replies);
}

int runtime_split_replies(char *buf, size_t len, size_t n, char ***replies)
{
    char **r;
    size_t *end; /* where each reply's NUL goes, once all of them frame */
    size_t got = 0, start = 0, i = 0;

    *replies = NULL;
    r = calloc(n ? n : 1, sizeof(*r));
    end = calloc(n ? n : 1, sizeof(*end));
    if (!r || !end) {
        free(r);
        free(end);
        return -ENOMEM;
    }
    /* A reply is every line up to the next empty line. The first line of a
     * reply may itself be the empty line (an empty reply). */
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t line_end = nl ? (size_t)(nl - buf) : len;

        if (!nl)
            goto proto;      /* every reply ends with "\n\n" or is "\n" */
        if (line_end == i) { /* empty line closes the reply */
            if (got == n)
                goto proto;
            /* without its last '\n': the NUL goes there (for an empty
             * reply, on the empty line's own '\n') */
            r[got] = buf + start;
            end[got] = i > start ? i - 1 : i;
            got++;
            start = line_end + 1;
        }
        i = line_end + 1;
    }
    if (got != n || start != len)
        goto proto;
    for (size_t k = 0; k < n; k++)
        buf[end[k]] = '\0';
    free(end);
    *replies = r;
    return 0;
proto:
    free(r);
    free(end);
    return -EPROTO;
}

bool runtime_reply_ok(const char *cmd, const char *reply)
{
    return reply_judge(cmd, reply, NULL) == REPLY_OK;
}

static const char *const level_names[] = {"user", "operator", "admin"};

int runtime_cli_level(const char *reply)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(reply, level_names[i]) == 0)
            return i;
    return -EPROTO;
}

const char *runtime_level_name(enum runtime_level level)
{
    return (unsigned)level < 3 ? level_names[level] : "?";
}

/* ---- pure: show servers state ---- */

enum col {
    C_BE_ID,
    C_BE_NAME,
    C_SRV_ID,
    C_SRV_NAME,
    C_ADDR,
    C_OP,
    C_ADMIN,
    C_UWEIGHT,
    C_PORT,
    C_N
};

static const char *const col_names[C_N] = {
    "be_id",        "be_name",         "srv_id",      "srv_name", "srv_addr",
    "srv_op_state", "srv_admin_state", "srv_uweight", "srv_port",
};

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > HAPROXY_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-' || *s == ':'))
            return false;
    return true;
}

/* Decimal, no sign, no leading zeros beyond "0", at most max. */
static bool uint_ok(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Split line in place on spaces into at most max fields. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    for (char *t = strtok_r(line, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    return n;
}

static int parse_row(char **f, size_t nf, const int *idx, struct server_state *st)
{
    unsigned long v;
    bool ipv6;

    memset(st, 0, sizeof(*st));
    for (int c = 0; c < C_N; c++)
        if ((size_t)idx[c] >= nf)
            return -1;
    if (!name_ok(f[idx[C_BE_NAME]]) || !name_ok(f[idx[C_SRV_NAME]]))
        return -1;
    strcpy(st->backend, f[idx[C_BE_NAME]]);
    strcpy(st->server, f[idx[C_SRV_NAME]]);
    if (!uint_ok(f[idx[C_BE_ID]], 0x7fffffff, &v))
        return -1;
    st->backend_id = (int)v;
    if (!uint_ok(f[idx[C_SRV_ID]], 0x7fffffff, &v))
        return -1;
    st->server_id = (int)v;
    if (endpoint_parse_host(f[idx[C_ADDR]], st->addr, &ipv6) < 0)
        return -1;
    if (!uint_ok(f[idx[C_PORT]], 65535, &v))
        return -1;
    st->port = (unsigned)v;
    if (!uint_ok(f[idx[C_OP]], 3, &v))
        return -1;
    st->op_state = (int)v;
    if (!uint_ok(f[idx[C_ADMIN]], 0xffff, &v))
        return -1;
    st->admin_bits = (unsigned)v;
    if (v & SRV_ADMF_MAINT)
        st->admin = SERVER_MAINT;
    else if (v & SRV_ADMF_DRAIN)
        st->admin = SERVER_DRAIN;
    else
        st->admin = SERVER_READY;
    if (!uint_ok(f[idx[C_UWEIGHT]], 256, &v))
        return -1;
    st->weight = (int)v;
    return 0;
}

int runtime_parse_servers_state(const char *text, size_t len,
                                int (*row)(const struct server_state *st, void *arg), void *arg,
                                size_t *bad_rows)
{
    int idx[C_N];
    bool have_header = false;
    size_t bad = 0, pos;
    char *copy;
    int ret = 0;

    if (bad_rows)
        *bad_rows = 0;
    if (len < 1 || text[0] != '1' || (len > 1 && text[1] != '\n'))
        return -EPROTO;
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pos = 2;
    while (pos < len && ret == 0) {
        char *line = copy + pos, *nl = strchr(line, '\n');
        char *f[64];
        size_t nf;

        if (nl)
            *nl = '\0';
        pos = nl ? (size_t)(nl - copy) + 1 : len;
        if (!*line)
            continue;
        if (line[0] == '#') {
            nf = split_fields(line + 1, f, 64);
            for (int c = 0; c < C_N; c++) {
                idx[c] = -1;
                for (size_t k = 0; k < nf; k++)
                    if (strcmp(f[k], col_names[c]) == 0)
                        idx[c] = (int)k;
                if (idx[c] < 0) {
                    ret = -EPROTO;
                    break;
                }
            }
            have_header = ret == 0;
            continue;
        }
        if (!have_header) {
            ret = -EPROTO;
            break;
        }
        struct server_state st;

        nf = split_fields(line, f, 64);
        if (parse_row(f, nf, idx, &st) < 0) {
            bad++;
            continue;
        }
        ret = row(&st, arg);
    }
    free(copy);
    if (bad_rows)
        *bad_rows = bad;
    return ret;
}

/* ---- pure: show map, show backend ---- */

/* Calls fn(line, line_len, arg) for every line of text (split on '\n' only,
 * so no line can run into the next), the last one with or without its
 * '\n'; stops at the first non-zero return. */
static int each_line(const char *text, size_t len, int (*fn)(const char *, size_t, void *),
                     void *arg)
{
    size_t pos = 0;
    int ret = 0;

    while (pos < len && ret == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;

        ret = fn(text + pos, end - pos, arg);
        pos = end + 1;
    }
    return ret;
}

/* A field of a line: 1..max bytes of printable ASCII other than space. */
static bool field_ok(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

struct map_parse {
    int (*row)(const char *key, const char *value, void *arg);
    void *arg;
    size_t bad;
};

static int map_line(const char *line, size_t len, void *arg)
{
    struct map_parse *mp = arg;
    const char *sp1, *sp2, *end = line + len;
    char key[RUNTIME_MAP_KEY_MAX + 1], value[RUNTIME_MAP_VALUE_MAX + 1];
    size_t idn, kn, vn;

    if (len == 0)
        return 0;
    /* "<id> <key> <value>": exactly two single spaces. */
    sp1 = memchr(line, ' ', len);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!sp2 || memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1))) {
        mp->bad++;
        return 0;
    }
    idn = (size_t)(sp1 - line);
    kn = (size_t)(sp2 - sp1 - 1);
    vn = (size_t)(end - sp2 - 1);
    if (idn < 3 || idn > 18 || line[0] != '0' || line[1] != 'x' ||
        strspn(line + 2, "0123456789abcdefABCDEF") < idn - 2 ||
        !field_ok(sp1 + 1, kn, RUNTIME_MAP_KEY_MAX) ||
        !field_ok(sp2 + 1, vn, RUNTIME_MAP_VALUE_MAX)) {
        mp->bad++;
        return 0;
    }
    memcpy(key, sp1 + 1, kn);
    key[kn] = '\0';
    memcpy(value, sp2 + 1, vn);
    value[vn] = '\0';
    return mp->row(key, value, mp->arg);
}

int runtime_parse_map(const char *text, size_t len,
                      int (*row)(const char *key, const char *value, void *arg), void *arg,
                      size_t *bad_lines)
{
    struct map_parse mp = {row, arg, 0};
    int ret = each_line(text, len, map_line, &mp);

    if (bad_lines)
        *bad_lines = mp.bad;
    return ret;
}

struct backend_parse {
    int (*row)(const char *name, void *arg);
    void *arg;
    size_t bad;
    bool header;
};

static int backend_line(const char *line, size_t len, void *arg)
{
    struct backend_parse *bp = arg;
    char name[HAPROXY_NAME_MAX + 1];

    if (!bp->header) {
        if (len != 6 || memcmp(line, "# name", 6) != 0)
            return -EPROTO;
        bp->header = true;
        return 0;
    }
    if (len == 0)
        return 0;
    if (len > HAPROXY_NAME_MAX) {
        bp->bad++;
        return 0;
    }
    memcpy(name, line, len);
    name[len] = '\0';
    if (!name_ok(name)) {
        bp->bad++;
        return 0;
    }
    return bp->row(name, bp->arg);
}

int runtime_parse_backends(const char *text, size_t len, int (*row)(const char *name, void *arg),
                           void *arg, size_t *bad_lines)
{
    struct backend_parse bp = {row, arg, 0, false};
    int ret = each_line(text, len, backend_line, &bp);

    if (ret == 0 && !bp.header)
        ret = -EPROTO;
    if (bad_lines)
        *bad_lines = bp.bad;
    return ret;
}

/* ---- routes of the HTTP frontend's map ---- */

/* A map key as render_host_routes() writes it: a lower-cased host name. */
static bool map_host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG_HOSTNAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

static int cmp_route_host(const void *a, const void *b)
{
    return strcmp(((const struct host_route *)a)->host, ((const struct host_route *)b)->host);
}

struct map_read {
    struct host_route *r;
    size_t n, cap, bad;
};

/* One "show map" entry: kept only when it looks like a route we could have
 * written; its text never goes back into a command otherwise (the map only
 * ever holds what we rendered or added). */
static int map_row(const char *key, const char *value, void *arg)
{
    struct map_read *m = arg;

    if (!map_host_ok(key) || !spare_proxy_name_valid(value)) {
        m->bad++;
        return 0;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct host_route *nr = realloc(m->r, ncap * sizeof(*nr));

        if (!nr)
            return -ENOMEM;
        m->r = nr;
        m->cap = ncap;
    }
    /* lengths checked above */
    memcpy(m->r[m->n].host, key, strlen(key) + 1);
    memcpy(m->r[m->n].backend, value, strlen(value) + 1);
    m->n++;
    return 0;
}

int runtime_parse_routes(const char *text, size_t len, struct host_route **out, size_t *n,
                         size_t *bad)
{
    struct map_read m = {0};
    size_t bad_lines = 0;
    int r = runtime_parse_map(text, len, map_row, &m, &bad_lines);

    *out = NULL;
    *n = 0;
    if (r < 0) {
        free(m.r);
        return r;
    }
    if (bad)
        *bad = bad_lines + m.bad;
    /* A host listed twice: plan_map() deletes it and adds it once. */
    if (m.n)
        qsort(m.r, m.n, sizeof(*m.r), cmp_route_host);
    *out = m.r;
    *n = m.n;
    return 0;
}

/* ---- I/O ---- */

static int parse_addr(struct runtime *rt, const char *addr)
{
    memset(&rt->sa, 0, sizeof(rt->sa));
    if (strchr(addr, '/')) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&rt->sa;

        if (strlen(addr) >= sizeof(sun->sun_path))
            return -ENAMETOOLONG;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, addr);
        rt->salen = sizeof(*sun);
        return 0;
    }
    /* HOST:PORT with an IP literal ([v6] bracketed) or "localhost". */
    const char *colon = strrchr(addr, ':');
    char host[ENDPOINT_HOST_MAX + 2];
    unsigned long port;
    size_t hl;

    if (!colon || !uint_ok(colon + 1, 65535, &port) || port == 0)
        return -EINVAL;
    hl = (size_t)(colon - addr);
    if (hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return endpoint_sockaddr(host + 1, true, (unsigned short)port, &rt->sa, &rt->salen);
    }
    return endpoint_sockaddr(host, false, (unsigned short)port, &rt->sa, &rt->salen);
}

struct runtime *runtime_new(struct ev_loop *loop, const char *addr, double timeout_s)
{
    struct runtime *rt = calloc(1, sizeof(*rt));

    if (!rt)
        return NULL;
    if (parse_addr(rt, addr) < 0) {
        free(rt);
        return NULL;
    }
    rt->loop = loop;
    rt->fd = -1;
    rt->sentinel_fd = -1;
    rt->timeout_s = timeout_s > 0 ? timeout_s : RUNTIME_DEFAULT_TIMEOUT_S;
    return rt;
}

/* Close the connection and forget the exchange; returns the response buffer
 * (owned by the caller) so that a callback can still read it. */
static char *exchange_reset(struct runtime *rt, size_t *len)
{
    char *in = rt->in;

    ev_io_stop(rt->loop, &rt->io);
    ev_timer_stop(rt->loop, &rt->timer);
    if (rt->fd >= 0)
        close(rt->fd);
    rt->fd = -1;
    free(rt->out);
    mem_transient_freed(rt->out_len); /* a batch's line */
    rt->out = NULL;
    rt->in = NULL;
    *len = rt->in_len;
    rt->in_len = rt->in_cap = 0;
    rt->phase = RT_IDLE;
    rt->stale = false;
    return in;
}

static void exchange_finish(struct runtime *rt, int err)
{
    if (rt->stale) {
        /* Its caller was told long ago: just close it. */
        size_t len;

        free(exchange_reset(rt, &len));
        return;
    }
    runtime_done_cb cb = rt->cb;
    void *arg = rt->arg;
    size_t n = rt->n_cmds, len;
    bool raw = rt->raw;
    char **replies = NULL;
    char *in = exchange_reset(rt, &len);

    if (err == 0 && !raw) {
        static char none[1]; /* no reply at all: nothing is written there */

        err = runtime_split_replies(in ? in : none, len, n, &replies);
    }
    /* The callback may start the next exchange: rt is idle by now. */
    cb(err, replies, raw ? 0 : n, in, len, arg);
    runtime_replies_free(replies, n);
    free(in);
    mem_transient_freed(len); /* a resync's reply, say */
}

static void sentinel_close(struct runtime *rt)
{
    if (rt->sentinel_fd < 0)
        return;
    ev_io_stop(rt->loop, &rt->sentinel);
    close(rt->sentinel_fd);
    rt->sentinel_fd = -1;
}

void runtime_free(struct runtime *rt)
{
    size_t len;

    if (!rt)
        return;
    free(exchange_reset(rt, &len));
    sentinel_close(rt);
    free(rt);
}

void runtime_cancel(struct runtime *rt)
{
    size_t len;

    free(exchange_reset(rt, &len));
}

bool runtime_busy(const struct runtime *rt)
{
    return rt->phase != RT_IDLE;
}

bool runtime_stale(const struct runtime *rt)
{
    return rt->stale;
}

unsigned long runtime_stale_abandoned(const struct runtime *rt)
{
    return rt->stale_abandoned;
}

/* Closing a connection whose line HAProxy has not read yet does not cancel
 * it: a stopped HAProxy that resumes reads what is queued and runs it, after
 * whatever we did meanwhile. So once something was sent, the exchange is
 * finished in the background instead (writing the rest of the line too: a
 * half line would wait for its end), and nothing else goes out until it is
 * over. */
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct runtime *rt = w->data;
    runtime_done_cb cb = rt->cb;
    void *arg = rt->arg;

    if (rt->stale) {
        rt->stale_abandoned++;
        log_warn("runtime",
                 "a timed-out exchange got no end from HAProxy in %.0f s: closing it (its "
                 "commands may still run)",
                 RUNTIME_STALE_MAX_S);
        exchange_finish(rt, -ETIMEDOUT);
        return;
    }
    if (rt->phase == RT_CONNECTING) {
        exchange_finish(rt, -ETIMEDOUT);
        return;
    }
    rt->stale = true;
    ev_timer_stop(loop, &rt->timer);
    ev_timer_set(&rt->timer, RUNTIME_STALE_MAX_S, 0.);
    ev_timer_start(loop, &rt->timer);
    cb(-ETIMEDOUT, NULL, 0, NULL, 0, arg);
}

static void watch(struct runtime *rt, int events)
{
    ev_io_stop(rt->loop, &rt->io);
    ev_io_set(&rt->io, rt->fd, events);
    ev_io_start(rt->loop, &rt->io);
}

/* Send what is left of the line. Returns 1 when all is sent, 0 when the
 * socket is full, or a negative errno. */
static int send_some(struct runtime *rt)
{
    while (rt->out_off < rt->line_end) {
        ssize_t n = send(rt->fd, rt->out + rt->out_off, rt->line_end - rt->out_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -errno;
        }
        rt->out_off += (size_t)n;
    }
    return 1;
}

/* Read what is there. Returns 1 at end of stream, 0 when nothing more is
 * available now, or a negative errno. */
static int recv_some(struct runtime *rt)
{
    for (;;) {
        ssize_t n;

        if (rt->in_cap - rt->in_len < 4096) {
            size_t ncap = rt->in_cap ? rt->in_cap * 2 : 16384;
            char *nb;

            if (ncap > RUNTIME_REPLY_MAX)
                return -E2BIG;
            nb = realloc(rt->in, ncap);
            if (!nb)
                return -ENOMEM;
            rt->in = nb;
            rt->in_cap = ncap;
        }
        n = recv(rt->fd, rt->in + rt->in_len, rt->in_cap - rt->in_len - 1, 0);
        if (n > 0) {
            rt->in_len += (size_t)n;
            rt->in[rt->in_len] = '\0';
            continue;
        }
        if (n == 0)
            return 1;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* End of the line that starts at off (after its newline). */
static size_t line_end_from(const struct runtime *rt, size_t off)
{
    const char *nl = memchr(rt->out + off, '\n', rt->out_len - off);

    return nl ? (size_t)(nl - rt->out) + 1 : rt->out_len;
}

static int connect_start(const struct runtime *rt);

/* The connection of one line ended: the next line goes out on a new one,
 * its replies appended to the ones already read. */
static void next_line(struct runtime *rt)
{
    int fd;

    ev_io_stop(rt->loop, &rt->io);
    close(rt->fd);
    rt->fd = -1;
    fd = connect_start(rt);
    if (fd < 0) {
        exchange_finish(rt, fd);
        return;
    }
    rt->fd = fd;
    rt->line_end = line_end_from(rt, rt->out_off);
    rt->phase = RT_CONNECTING;
    ev_io_set(&rt->io, fd, EV_WRITE);
    ev_io_start(rt->loop, &rt->io);
}

/* Replies are read while the line is still being written: HAProxy stops
 * reading commands once enough replies wait unread, so a batch larger than
 * the socket buffers would otherwise stall both sides. */
static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct runtime *rt = w->data;
    int r;

    if (rt->phase == RT_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (getsockopt(rt->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            exchange_finish(rt, -soerr);
            return;
        }
        rt->phase = RT_WRITING;
        watch(rt, EV_READ | EV_WRITE);
        revents |= EV_WRITE;
    }
    if (rt->phase == RT_WRITING && (revents & EV_WRITE)) {
        r = send_some(rt);
        if (r < 0) {
            exchange_finish(rt, r);
            return;
        }
        if (r == 1) {
            /* The master CLI of 2.6 wants a half-close to act on "reload";
             * the worker CLI closes by itself after the line, and a
             * half-close there can make it reset a long batch. */
            if (rt->raw)
                shutdown(rt->fd, SHUT_WR);
            rt->phase = RT_READING;
            watch(rt, EV_READ);
        }
    }
    if (revents & EV_READ) {
        r = recv_some(rt);
        /* A timed-out (stale) exchange sends no further line. */
        if (r == 1 && rt->phase == RT_READING && rt->out_off < rt->out_len && !rt->stale)
            next_line(rt);
        else if (r != 0)
            exchange_finish(rt, r < 0 ? r : 0);
    }
}

/* A non-blocking socket with its connect started. Returns the fd or a
 * negative errno (a unix socket nobody listens on fails right here). */
static int connect_start(const struct runtime *rt)
{
    int fd = socket(rt->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), ret;

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&rt->sa, rt->salen) < 0 && errno != EINPROGRESS) {
        ret = -errno;
        close(fd);
        return ret;
    }
    return fd;
}

static int exchange_start(struct runtime *rt, char *line, size_t len, size_t n, bool raw,
                          runtime_done_cb cb, void *arg)
{
    int fd = connect_start(rt);

    if (fd < 0) {
        free(line);
        return fd;
    }
    rt->fd = fd;
    rt->out = line;
    rt->out_len = len;
    rt->out_off = 0;
    rt->line_end = line_end_from(rt, 0);
    rt->n_cmds = n;
    rt->raw = raw;
    rt->cb = cb;
    rt->arg = arg;
    rt->in = NULL;
    rt->in_len = rt->in_cap = 0;
    rt->phase = RT_CONNECTING;
    ev_io_init(&rt->io, on_io, fd, EV_WRITE);
    rt->io.data = rt;
    ev_io_start(rt->loop, &rt->io);
    ev_timer_init(&rt->timer, on_timeout, rt->timeout_s, 0.);
    rt->timer.data = rt;
    ev_timer_start(rt->loop, &rt->timer);
    return 0;
}

int runtime_send(struct runtime *rt, const char *const *cmds, size_t n, runtime_done_cb cb,
                 void *arg)
{
    size_t len;
    char *lines;
    int r;

    if (rt->phase != RT_IDLE)
        return -EBUSY;
    r = runtime_join_lines(cmds, n, RUNTIME_LINE_MAX, &lines, &len);
    if (r < 0)
        return r;
    return exchange_start(rt, lines, len, n, false, cb, arg);
}

int runtime_send_raw(struct runtime *rt, const char *cmd, runtime_done_cb cb, void *arg)
{
    size_t l = strlen(cmd);
    char *line;

    if (rt->phase != RT_IDLE)
        return -EBUSY;
    if (!l || strpbrk(cmd, "\n\r"))
        return -EINVAL;
    line = malloc(l + 2);
    if (!line)
        return -ENOMEM;
    memcpy(line, cmd, l);
    line[l] = '\n';
    line[l + 1] = '\0';
    return exchange_start(rt, line, l + 1, 1, true, cb, arg);
}

/* ---- sentinel ---- */

static void sentinel_lost(struct runtime *rt, int err)
{
    sentinel_close(rt);
    if (rt->lost)
        rt->lost(err, rt->lost_arg);
}

static void on_sentinel(struct ev_loop *loop, ev_io *w, int revents)
{
    struct runtime *rt = w->data;
    char buf[512];

    if (revents & EV_WRITE) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (getsockopt(rt->sentinel_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (!soerr && send(rt->sentinel_fd, "prompt\n", 7, MSG_NOSIGNAL) != 7)
            soerr = errno ? errno : EIO;
        if (soerr) {
            /* It never came up: a connect failure, not a process gone. */
            sentinel_lost(rt, -soerr);
            return;
        }
        ev_io_stop(loop, w);
        ev_io_set(w, rt->sentinel_fd, EV_READ);
        ev_io_start(loop, w);
        return;
    }
    for (;;) {
        ssize_t r = recv(rt->sentinel_fd, buf, sizeof(buf), 0);

        if (r > 0)
            continue; /* the prompt; nothing else is expected */
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    sentinel_lost(rt, 0);
}

int runtime_sentinel_connect(struct runtime *rt, runtime_lost_cb lost, void *arg)
{
    int fd;

    if (rt->sentinel_fd >= 0)
        return 0;
    fd = connect_start(rt);
    if (fd < 0)
        return fd;
    rt->sentinel_fd = fd;
    rt->lost = lost;
    rt->lost_arg = arg;
    ev_io_init(&rt->sentinel, on_sentinel, fd, EV_WRITE);
    rt->sentinel.data = rt;
    ev_io_start(rt->loop, &rt->sentinel);
    return 0;
}

bool runtime_sentinel_connected(const struct runtime *rt)
{
    return rt->sentinel_fd >= 0;
}

const char *runtime_strerror(int err)
{
    if (err == -E2BIG)
        return "reply larger than 64 MiB (refused, connection closed)";
    return fdlimit_strerror(err);
}
