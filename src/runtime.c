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
#include <slotsync/reply.h>
#include <slotsync/timeouts.h>
#include <slotsync/vec.h>

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
    unsigned short port;
    size_t hl;

    if (!colon || endpoint_parse_port(colon + 1, strlen(colon + 1), &port, NULL) < 0)
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
        return endpoint_sockaddr(host + 1, true, port, &rt->sa, &rt->salen);
    }
    return endpoint_sockaddr(host, false, port, &rt->sa, &rt->salen);
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
            size_t want = rt->in_len + 4096;

            if (vec_next_cap(rt->in_cap, want, 16384) > RUNTIME_REPLY_MAX)
                return -E2BIG;
            if (vec_reserve(&rt->in, &rt->in_cap, want, 1, 16384) < 0)
                return -ENOMEM;
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
