/* admin - the admin HTTP endpoint: libmicrohttpd driven by the libev loop. */
#include <slotsync/admin.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ev.h>
#include <microhttpd.h>

#include <slotsync/clock.h>
#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/runtime.h>
#include <slotsync/timeouts.h>

#include "admin_page.h" /* generated from src/admin_page.html: ADMIN_PAGE */

#define MOD "admin"
#define STATUS_MAX_AGE_S 1.0 /* /status reads HAProxy at most this often */
#define PROBE_MAX_AGE_S 1.0  /* and /readyz */
#define WAITERS_MAX 32       /* /status requests held while HAProxy is read */

struct admin {
    struct ev_loop *loop;
    struct MHD_Daemon *mhd;
    const struct admin_ops *ops;
    void *arg;
    ev_io io;       /* MHD's epoll descriptor */
    ev_timer timer; /* MHD's timeout */
    struct runtime *rt;
    unsigned port;
    /* /status */
    json_t *doc; /* the last document built */
    double doc_at;
    char *error;       /* why the last /status read failed */
    int reading;       /* enum read_kind in flight */
    double haproxy_at; /* when the last read ended; 0 = never */
    bool haproxy_ok;   /* and whether HAProxy answered it */
    struct MHD_Connection *waiting[WAITERS_MAX];
    size_t n_waiting;
};

static void schedule(struct admin *a);
static void run_mhd(struct admin *a);

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *fmt,
                                  ...)
{
    char text[512], *body;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0 || !(body = strdup(text)))
        return MHD_NO;
    return reply(conn, status, "text/plain; charset=utf-8", body, strlen(body), true);
}

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, const json_t *doc)
{
    char *body = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);

    if (!body)
        return MHD_NO;
    return reply(conn, status, "application/json", body, strlen(body), true);
}

/* ---- reading HAProxy: /status and /readyz ---- */

enum read_kind { READ_NONE = 0, READ_STATUS, READ_PROBE };

static void on_haproxy(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                       void *arg)
{
    struct admin *a = arg;
    enum read_kind kind = a->reading;
    char *why = NULL;
    json_t *doc = NULL;

    log_debug(MOD, "HAProxy read for %s: %s (%zu requests held)",
              kind == READ_STATUS ? "/status" : "/readyz", err < 0 ? strerror(-err) : "ok",
              a->n_waiting);
    a->reading = READ_NONE;
    a->haproxy_at = clock_mono();
    a->haproxy_ok = err == 0 && n == (kind == READ_STATUS ? 2u : 1u) &&
                    (kind == READ_STATUS || strncmp(replies[0], "Name: ", 6) == 0);
    if (kind == READ_STATUS) {
        free(a->error);
        a->error = NULL;
        if (!a->haproxy_ok)
            memprintf(&a->error, "HAProxy's runtime socket: %s",
                      runtime_strerror(err < 0 ? err : -EPROTO));
        else if (!(doc = a->ops->status(a->arg, replies[0], replies[1], &why)))
            memprintf(&a->error, "%s", why ? why : "cannot build the status");
        free(why);
        json_decref(a->doc);
        a->doc = doc;
        a->doc_at = a->haproxy_at;
    }
    for (size_t i = 0; i < a->n_waiting; i++)
        MHD_resume_connection(a->waiting[i]);
    a->n_waiting = 0;
    /* Let MHD take the resumed requests now rather than on its next event. */
    run_mhd(a);
}

/* Hold conn until HAProxy has been read (kind), starting the read unless
 * one is in flight (then the request is looked at again when it ends).
 * Returns 0, or a negative errno when the request must be answered now. */
static int hold(struct admin *a, struct MHD_Connection *conn, void **req_cls, enum read_kind kind)
{
    static const char *const status_cmds[] = {PLAN_SHOW_STATE, PLAN_SHOW_STAT};
    static const char *const probe_cmds[] = {PLAN_SHOW_INFO};
    uintptr_t waits = (uintptr_t)*req_cls;

    /* Twice is enough: once behind a read of the other kind, once for ours. */
    if (waits >= 2 || a->n_waiting == WAITERS_MAX)
        return -EBUSY;
    if (!a->reading) {
        int r = kind == READ_STATUS ? runtime_send(a->rt, status_cmds, 2, on_haproxy, a)
                                    : runtime_send(a->rt, probe_cmds, 1, on_haproxy, a);

        if (r < 0)
            return r;
        a->reading = kind;
    }
    *req_cls = (void *)(waits + 1);
    a->waiting[a->n_waiting++] = conn;
    MHD_suspend_connection(conn);
    return 0;
}

static enum MHD_Result serve_status(struct admin *a, struct MHD_Connection *conn, void **req_cls)
{
    json_t *err;
    enum MHD_Result ret;
    int r;

    if (a->doc && clock_mono() - a->doc_at < STATUS_MAX_AGE_S)
        return reply_json(conn, MHD_HTTP_OK, a->doc);
    if (!(a->doc_at > 0 && a->doc_at >= a->haproxy_at && !a->doc && (uintptr_t)*req_cls) &&
        (r = hold(a, conn, req_cls, READ_STATUS)) == 0)
        return MHD_YES;
    /* Read and failed, or cannot wait: say why, don't hold on. */
    err = json_pack("{s:s}", "error", a->error ? a->error : "busy, try again");
    ret = err ? reply_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, err) : MHD_NO;
    json_decref(err);
    return ret;
}

/* HAProxy's reachability as /readyz sees it: probed unless fresh. Returns
 * true when conn is held for the probe. */
static bool probe_first(struct admin *a, struct MHD_Connection *conn, void **req_cls)
{
    bool fresh = a->haproxy_at > 0 && clock_mono() - a->haproxy_at < PROBE_MAX_AGE_S;
    bool waited = (uintptr_t)*req_cls > 0 && !a->reading;
    int r;

    if (fresh || waited)
        return false;
    r = hold(a, conn, req_cls, READ_PROBE);
    if (r == 0)
        return true;
    if (r != -EBUSY) { /* could not even connect */
        a->haproxy_ok = false;
        a->haproxy_at = clock_mono();
    }
    return false;
}

static enum MHD_Result serve_readyz(struct admin *a, struct MHD_Connection *conn, void **req_cls)
{
    const char *why = "not ready";

    if (!a->ops->ready(a->arg, &why))
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: %s\n", why);
    /* The controller's view is as old as its last exchange: ask HAProxy. */
    if (probe_first(a, conn, req_cls))
        return MHD_YES;
    if (a->haproxy_at > 0 && a->haproxy_ok) {
        char note[256] = "";

        if (a->ops->ready_note)
            a->ops->ready_note(a->arg, note, sizeof(note));
        return reply_text(conn, MHD_HTTP_OK, "ready%s%s\n", note[0] ? ": " : "", note);
    }
    return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "not ready: HAProxy's runtime socket does not answer\n");
}

static enum MHD_Result serve_metrics(struct admin *a, struct MHD_Connection *conn, void **req_cls)
{
    struct metrics m;
    char *text;
    size_t len;

    if (probe_first(a, conn, req_cls))
        return MHD_YES;
    memset(&m, 0, sizeof(m));
    a->ops->metrics(a->arg, &m);
    m.haproxy_up = m.haproxy_up && a->haproxy_at > 0 && a->haproxy_ok;
    m.ready = m.ready && m.haproxy_up;
    if (metrics_render(&m, &text, &len) < 0)
        return MHD_NO;
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, true);
}

/* ---- routing ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct admin *a = cls;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (*upload_data_size)
        return reply_text(conn, MHD_HTTP_BAD_REQUEST, "a GET has no body\n");
    if (strcmp(url, "/healthz") == 0)
        return reply_text(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return serve_readyz(a, conn, req_cls);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(a, conn, req_cls);
    if (strcmp(url, "/status") == 0)
        return serve_status(a, conn, req_cls);
    if (strcmp(url, "/") == 0)
        return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)ADMIN_PAGE,
                     sizeof(ADMIN_PAGE) - 1, false);
    return reply_text(conn, MHD_HTTP_NOT_FOUND,
                      "not found: try /, /status, /metrics, /healthz, /readyz\n");
}

/* ---- the loop ---- */

static void run_mhd(struct admin *a)
{
    MHD_run(a->mhd);
    schedule(a);
}

/* Arm the timer with MHD's timeout (0: work is waiting, e.g. a resumed
 * connection; none: only the epoll descriptor matters). */
static void schedule(struct admin *a)
{
    MHD_UNSIGNED_LONG_LONG ms;

    ev_timer_stop(a->loop, &a->timer);
    if (MHD_get_timeout(a->mhd, &ms) == MHD_YES) {
        ev_timer_set(&a->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(a->loop, &a->timer);
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    run_mhd(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    run_mhd(w->data);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[256], q[512];
    int n = vsnprintf(text, sizeof(text), fmt, ap);

    if (n < 0)
        return;
    /* its messages end in "\n": one log line, not a quoted newline */
    log_quote(text, log_chomp(text, strnlen(text, sizeof(text))), q, sizeof(q));
    log_warn(MOD, "libmicrohttpd: %s", q);
}

struct admin *admin_start(struct ev_loop *loop, const struct listen_addr *addr,
                          const char *runtime_socket, const struct admin_ops *ops, void *arg,
                          char **errmsg)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct admin *a = calloc(1, sizeof(*a));
    const char *host = addr->host[0] ? addr->host : "127.0.0.1";

    if (!a)
        goto oom;
    memset(&ss, 0, sizeof(ss));
    if (addr->ipv6) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(addr->port);
        inet_pton(AF_INET6, host, &in6->sin6_addr);
        flags |= MHD_USE_IPv6;
    } else {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(addr->port);
        inet_pton(AF_INET, host, &in4->sin_addr);
    }
    a->loop = loop;
    a->ops = ops;
    a->arg = arg;
    a->rt = runtime_new(loop, runtime_socket, ADMIN_RUNTIME_TIMEOUT_S);
    if (!a->rt)
        goto oom;
    a->mhd = MHD_start_daemon(flags, addr->port, NULL, NULL, on_request, a,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!a->mhd) {
        memprintf(errmsg, "admin.listen: cannot listen on %s%s%s:%u", addr->ipv6 ? "[" : "", host,
                  addr->ipv6 ? "]" : "", (unsigned)addr->port);
        goto fail;
    }
    info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        memprintf(errmsg, "admin: libmicrohttpd has no epoll descriptor");
        goto fail;
    }
    a->port = addr->port;
    {
        const union MHD_DaemonInfo *pi = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);

        if (pi)
            a->port = pi->port;
    }
    ev_io_init(&a->io, on_io, info->epoll_fd, EV_READ);
    a->io.data = a;
    ev_io_start(loop, &a->io);
    ev_init(&a->timer, on_timer);
    a->timer.data = a;
    schedule(a);
    return a;
oom:
    memprintf(errmsg, "out of memory");
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    if (a->mhd) {
        ev_io_stop(a->loop, &a->io);
        ev_timer_stop(a->loop, &a->timer);
        /* Held requests must be resumed before MHD can close them. */
        for (size_t i = 0; i < a->n_waiting; i++)
            MHD_resume_connection(a->waiting[i]);
        MHD_stop_daemon(a->mhd);
    }
    runtime_free(a->rt);
    json_decref(a->doc);
    free(a->error);
    free(a);
}

unsigned admin_port(const struct admin *a)
{
    return a->port;
}
