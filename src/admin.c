/* admin - the admin HTTP endpoint: libmicrohttpd driven by the libev loop.
 *
 * slotsync owns the listening socket and accepts on it itself, handing each
 * connection to MHD (MHD_USE_NO_LISTEN_SOCKET + MHD_add_connection): so an
 * accept() that fails (EMFILE at the limit) rests the listener with a
 * backoff instead of MHD's busy-wait, the connection count stays within a
 * budget of descriptors, a connection that has not sent its request's
 * headers in time is closed whatever it trickles, and a full endpoint makes
 * room by closing the oldest connection that is still waiting for headers.
 */
#define _GNU_SOURCE /* accept4 */
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
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include <slotsync/clock.h>
#include <slotsync/admin_auth.h>
#include <slotsync/config.h>
#include <slotsync/fdlimit.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>
#include <slotsync/plan.h>
#include <slotsync/runtime.h>
#include <slotsync/secret.h>
#include <slotsync/timeouts.h>
#include <slotsync/tls.h>

#include "admin_page.h" /* generated from src/admin_page.html: ADMIN_PAGE */

#define MOD "admin"
#define STATUS_MAX_AGE_S 1.0 /* /status reads HAProxy at most this often */
#define PROBE_MAX_AGE_S 1.0  /* and /readyz */
#define WAITERS_MAX 32       /* /status requests held while HAProxy is read */
#define ACCEPT_BURST 16      /* accept()s per wake-up of the listener */
#define ACCEPT_BACKOFF_MIN_S 0.05
#define ACCEPT_BACKOFF_MAX_S 2.0
#define SWEEP_INTERVAL_S 0.25    /* how often header deadlines are looked at */
#define LISTEN_BACKLOG SOMAXCONN /* a flood fills a short one: a probe's SYN would be dropped */

enum refusal {
    REFUSED_NO_TOKEN,
    REFUSED_WRONG_TOKEN,
    REFUSED_NO_CLIENT_CERT,
    REFUSED_BAD_CLIENT_CERT,
    REFUSED_N
};

static const char *const refusal_names[REFUSED_N] = {"no_token", "wrong_token", "no_client_cert",
                                                     "bad_client_cert"};

/* One accepted connection, from accept() to MHD's "closed". */
struct admin_conn {
    struct admin_conn *prev, *next; /* in accept order: the oldest first */
    struct MHD_Connection *conn;    /* NULL until MHD took it */
    int fd;                         /* -1 once it must not be touched */
    char client[INET6_ADDRSTRLEN];
    double deadline; /* monotonic: its request's headers by then; 0 while in a request */
    bool closing;    /* shut down by us: no longer counted */
};

/* The TLS material and the token, as read from their files. */
struct admin_secrets {
    struct tls_files tls; /* cert, key, ca (the client CA); all NULL = plain HTTP */
    char *token;          /* NULL: no token asked */
};

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

    /* ---- connections (issue 20) ---- */
    int listen_fd;
    ev_io listen_io;
    ev_timer accept_timer; /* the listener's rest after a failed accept() */
    double accept_backoff; /* the last rest; 0 after a good accept() */
    bool full;             /* listener stopped: limit reached, nothing to close */
    ev_timer sweep;        /* header deadlines */
    struct admin_conn *head, *tail;
    struct admin_conn *adding; /* handed to MHD_add_connection() now */
    unsigned n_conns;          /* counted connections (not closing) */
    unsigned limit, per_client;
    struct {
        unsigned long long accepted, header_deadline, evicted, full, per_client;
        unsigned long long accept_fds, accept_other;
        unsigned long long refused[REFUSED_N];
    } stats;

    /* ---- protection (issue 20) ---- */
    struct admin_conf conf; /* paths owned (copied at start) */
    struct admin_secrets sec;
};

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
        else if (!(doc = a->ops->status(replies[0], replies[1], &why, a->arg)))
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

    if (!a->ops->ready(&why, a->arg))
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: %s\n", why);
    /* The controller's view is as old as its last exchange: ask HAProxy. */
    if (probe_first(a, conn, req_cls))
        return MHD_YES;
    if (a->haproxy_at > 0 && a->haproxy_ok) {
        char note[256] = "";

        if (a->ops->ready_note)
            a->ops->ready_note(note, sizeof(note), a->arg);
        return reply_text(conn, MHD_HTTP_OK, "ready%s%s\n", note[0] ? ": " : "", note);
    }
    return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "not ready: HAProxy's runtime socket does not answer\n");
}

/* The endpoint's own counters, after the controller's metrics. */
static int admin_metrics_text(const struct admin *a, char **text, size_t *len)
{
    char *more = NULL, *joined;
    size_t n;

    memprintf(&more,
              "# HELP slotsync_admin_connections Connections the admin endpoint holds now.\n"
              "# TYPE slotsync_admin_connections gauge\n"
              "slotsync_admin_connections %u\n"
              "# HELP slotsync_admin_connection_limit Connections the admin endpoint may hold "
              "(from RLIMIT_NOFILE, after what syncing needs).\n"
              "# TYPE slotsync_admin_connection_limit gauge\n"
              "slotsync_admin_connection_limit %u\n"
              "# HELP slotsync_admin_connections_closed_total Admin connections slotsync closed "
              "or refused, by reason.\n"
              "# TYPE slotsync_admin_connections_closed_total counter\n"
              "slotsync_admin_connections_closed_total{reason=\"header_deadline\"} %llu\n"
              "slotsync_admin_connections_closed_total{reason=\"evicted\"} %llu\n"
              "slotsync_admin_connections_closed_total{reason=\"full\"} %llu\n"
              "slotsync_admin_connections_closed_total{reason=\"per_client\"} %llu\n"
              "# HELP slotsync_admin_accept_failures_total accept() failures on the admin "
              "listener (fds: EMFILE or ENFILE).\n"
              "# TYPE slotsync_admin_accept_failures_total counter\n"
              "slotsync_admin_accept_failures_total{reason=\"fds\"} %llu\n"
              "slotsync_admin_accept_failures_total{reason=\"other\"} %llu\n"
              "# HELP slotsync_admin_refused_requests_total Admin requests refused for want of "
              "credentials, by reason.\n"
              "# TYPE slotsync_admin_refused_requests_total counter\n"
              "slotsync_admin_refused_requests_total{reason=\"%s\"} %llu\n"
              "slotsync_admin_refused_requests_total{reason=\"%s\"} %llu\n"
              "slotsync_admin_refused_requests_total{reason=\"%s\"} %llu\n"
              "slotsync_admin_refused_requests_total{reason=\"%s\"} %llu\n",
              a->n_conns, a->limit, a->stats.header_deadline, a->stats.evicted, a->stats.full,
              a->stats.per_client, a->stats.accept_fds, a->stats.accept_other, refusal_names[0],
              a->stats.refused[0], refusal_names[1], a->stats.refused[1], refusal_names[2],
              a->stats.refused[2], refusal_names[3], a->stats.refused[3]);
    if (!more)
        return -ENOMEM;
    n = strlen(more);
    joined = realloc(*text, *len + n + 1);
    if (!joined) {
        free(more);
        return -ENOMEM;
    }
    memcpy(joined + *len, more, n + 1);
    free(more);
    *text = joined;
    *len += n;
    return 0;
}

static enum MHD_Result serve_metrics(struct admin *a, struct MHD_Connection *conn, void **req_cls)
{
    struct metrics m;
    char *text;
    size_t len;

    if (probe_first(a, conn, req_cls))
        return MHD_YES;
    memset(&m, 0, sizeof(m));
    a->ops->metrics(&m, a->arg);
    m.haproxy_up = m.haproxy_up && a->haproxy_at > 0 && a->haproxy_ok;
    m.ready = m.ready && m.haproxy_up;
    if (metrics_render(&m, &text, &len) < 0)
        return MHD_NO;
    if (admin_metrics_text(a, &text, &len) < 0) {
        free(text);
        return MHD_NO;
    }
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, true);
}

/* ---- protection: bearer token and client certificates ---- */

static struct admin_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

/* With admin.tls.client_ca_file: a client certificate that the client CA
 * signed, valid now, for client authentication. Returns -1 (fine) or the
 * refusal. */
static int client_cert_refusal(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
    };
    unsigned int n = 0, status = 0;

    if (!session || !gnutls_certificate_get_peers(session, &n) || n == 0)
        return REFUSED_NO_CLIENT_CERT;
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0)
        return REFUSED_BAD_CLIENT_CERT;
    return -1;
}

static enum MHD_Result refuse(struct admin *a, struct MHD_Connection *conn, const char *url,
                              enum refusal why)
{
    struct admin_conn *ac = conn_of(conn);
    struct MHD_Response *r;
    enum MHD_Result ret;
    const char *text;

    a->stats.refused[why]++;
    /* Which check failed and from where; never what was sent. */
    log_warn(MOD, "refused %s from %s: %s", url, ac ? ac->client : "?", refusal_names[why]);
    if (why == REFUSED_NO_TOKEN || why == REFUSED_WRONG_TOKEN) {
        text = why == REFUSED_NO_TOKEN ? "unauthorized: a bearer token is required\n"
                                       : "unauthorized: wrong token\n";
        r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                why == REFUSED_NO_TOKEN ? "Bearer realm=\"slotsync\""
                                                        : "Bearer realm=\"slotsync\", "
                                                          "error=\"invalid_token\"");
        ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
        MHD_destroy_response(r);
        return ret;
    }
    return reply_text(conn, MHD_HTTP_FORBIDDEN, "forbidden: %s\n",
                      why == REFUSED_NO_CLIENT_CERT ? "a client certificate is required"
                                                    : "the client certificate is not trusted");
}

/* -1 when the request may go on, else the refusal. */
static int refusal_of(struct admin *a, struct MHD_Connection *conn, const char *url)
{
    unsigned bit = config_admin_path_bit(url);

    if (!bit || !(a->conf.protected_paths & bit))
        return -1;
    if (a->sec.tls.ca) {
        int r = client_cert_refusal(conn);

        if (r >= 0)
            return r;
    }
    if (a->sec.token) {
        const char *h =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

        switch (admin_bearer_check(h, a->sec.token)) {
        case ADMIN_BEARER_OK:
            break;
        case ADMIN_BEARER_MISSING:
            return REFUSED_NO_TOKEN;
        case ADMIN_BEARER_WRONG:
            return REFUSED_WRONG_TOKEN;
        }
    }
    return -1;
}

/* ---- routing ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct admin *a = cls;
    struct admin_conn *ac = conn_of(conn);
    int why;

    /* The headers are in: no deadline while the request is served. */
    if (ac)
        ac->deadline = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (*upload_data_size)
        return reply_text(conn, MHD_HTTP_BAD_REQUEST, "a GET has no body\n");
    if (!*req_cls && (why = refusal_of(a, conn, url)) >= 0)
        return refuse(a, conn, url, (enum refusal)why);
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

/* ---- connections: accept, limits, deadlines (issue 20) ---- */

static void listener_update(struct admin *a)
{
    bool want = !a->full && !ev_is_active(&a->accept_timer) && a->listen_fd >= 0;

    if (want && !ev_is_active(&a->listen_io))
        ev_io_start(a->loop, &a->listen_io);
    else if (!want && ev_is_active(&a->listen_io))
        ev_io_stop(a->loop, &a->listen_io);
}

static void sweep_update(struct admin *a)
{
    if (a->head && !ev_is_active(&a->sweep))
        ev_timer_start(a->loop, &a->sweep);
    else if (!a->head && ev_is_active(&a->sweep))
        ev_timer_stop(a->loop, &a->sweep);
}

static void conn_unlink(struct admin *a, struct admin_conn *ac)
{
    if (ac->prev)
        ac->prev->next = ac->next;
    else
        a->head = ac->next;
    if (ac->next)
        ac->next->prev = ac->prev;
    else
        a->tail = ac->prev;
    if (!ac->closing && a->n_conns)
        a->n_conns--;
    free(ac);
}

/* Close ac's connection: shut the socket down, so that MHD reads its end
 * and closes it on its next run (the descriptor stays MHD's to close). */
static void conn_close(struct admin *a, struct admin_conn *ac)
{
    if (ac->closing)
        return;
    ac->closing = true;
    if (a->n_conns)
        a->n_conns--;
    if (ac->fd >= 0)
        shutdown(ac->fd, SHUT_RDWR);
}

/* The oldest connection still waiting for its request's headers, from
 * client (NULL: any). */
static struct admin_conn *oldest_idle(struct admin *a, const char *client)
{
    for (struct admin_conn *ac = a->head; ac; ac = ac->next)
        if (!ac->closing && ac->conn && ac->deadline > 0 &&
            (!client || strcmp(ac->client, client) == 0))
            return ac;
    return NULL;
}

static unsigned client_conns(const struct admin *a, const char *client)
{
    unsigned n = 0;

    for (const struct admin_conn *ac = a->head; ac; ac = ac->next)
        n += !ac->closing && strcmp(ac->client, client) == 0;
    return n;
}

static void on_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                 enum MHD_ConnectionNotificationCode toe)
{
    struct admin *a = cls;
    struct admin_conn *ac;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = a->adding;
        if (a->adding)
            a->adding->conn = conn;
        a->adding = NULL;
        return;
    }
    ac = *socket_context;
    *socket_context = NULL;
    if (!ac)
        return;
    conn_unlink(a, ac);
    sweep_update(a);
    if (a->full && a->n_conns < a->limit) {
        a->full = false;
        listener_update(a);
    }
}

/* A request was answered: the next one's headers are due in time too. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct admin_conn *ac = conn_of(conn);

    if (ac)
        ac->deadline = mono_now() + ADMIN_HEADER_DEADLINE_S;
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct admin *a = w->data;
    double now = mono_now();
    unsigned closed = 0;

    for (struct admin_conn *ac = a->head; ac; ac = ac->next)
        if (!ac->closing && ac->conn && ac->deadline > 0 && now >= ac->deadline) {
            conn_close(a, ac);
            a->stats.header_deadline++;
            closed++;
        }
    if (closed) {
        log_debug(MOD, "closed %u connections that sent no complete request within %.0f s", closed,
                  ADMIN_HEADER_DEADLINE_S);
        run_mhd(a);
    }
}

/* accept() failed with err: the listener rests (backoff with a cap and
 * jitter) rather than trying again at once; a connection left in the
 * backlog waits for it. */
static void accept_failed(struct admin *a, int err)
{
    double rest;

    if (fdlimit_is_exhausted(err))
        a->stats.accept_fds++;
    else
        a->stats.accept_other++;
    a->accept_backoff = a->accept_backoff > 0 ? a->accept_backoff * 2 : ACCEPT_BACKOFF_MIN_S;
    if (a->accept_backoff > ACCEPT_BACKOFF_MAX_S)
        a->accept_backoff = ACCEPT_BACKOFF_MAX_S;
    rest = a->accept_backoff * jitter_around(0.2);
    log_warn(MOD,
             "cannot accept a connection: %s; not accepting for %.2f s (%u connections open, "
             "limit %u)",
             fdlimit_strerror(err), rest, a->n_conns, a->limit);
    ev_timer_set(&a->accept_timer, rest, 0.);
    ev_timer_start(a->loop, &a->accept_timer);
    listener_update(a);
}

static void on_accept_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    listener_update(w->data);
}

static void client_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    const void *addr = ss->ss_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

    if (!inet_ntop(ss->ss_family, addr, out, (socklen_t)size))
        snprintf(out, size, "?");
}

/* A new connection fd: make room or refuse, then hand it to MHD. */
static void take(struct admin *a, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
    char client[INET6_ADDRSTRLEN];
    struct admin_conn *ac, *victim;

    client_text(ss, client, sizeof(client));
    a->stats.accepted++;
    if (client_conns(a, client) >= a->per_client) {
        /* This address makes room among its own connections only. */
        if (!(victim = oldest_idle(a, client))) {
            a->stats.per_client++;
            log_warn(MOD, "refused a connection from %s: it holds %u, the most for one address",
                     client, a->per_client);
            close(fd);
            return;
        }
        conn_close(a, victim);
        a->stats.evicted++;
        MHD_run(a->mhd); /* MHD closes it now: its descriptor is free again */
    }
    if (a->n_conns >= a->limit) {
        if (!(victim = oldest_idle(a, NULL))) {
            /* Every connection is in a request: refuse this one and rest
             * the listener until one closes. */
            a->stats.full++;
            log_warn(MOD,
                     "refused a connection from %s: %u connections open (the limit) and all in "
                     "a request; not accepting until one closes",
                     client, a->n_conns);
            close(fd);
            if (a->n_conns == 0) {
                /* limit 0: nothing will close; try again after a rest. */
                ev_timer_set(&a->accept_timer, ACCEPT_BACKOFF_MAX_S, 0.);
                ev_timer_start(a->loop, &a->accept_timer);
            } else {
                a->full = true;
            }
            listener_update(a);
            return;
        }
        conn_close(a, victim);
        a->stats.evicted++;
        MHD_run(a->mhd);
    }
    if (!(ac = calloc(1, sizeof(*ac)))) {
        close(fd);
        return;
    }
    ac->fd = fd;
    snprintf(ac->client, sizeof(ac->client), "%s", client);
    ac->deadline = mono_now() + ADMIN_HEADER_DEADLINE_S;
    ac->prev = a->tail;
    if (a->tail)
        a->tail->next = ac;
    else
        a->head = ac;
    a->tail = ac;
    a->n_conns++;
    a->adding = ac;
    if (MHD_add_connection(a->mhd, fd, (const struct sockaddr *)ss, len) != MHD_YES) {
        /* MHD closed fd. Unless it took the connection before failing
         * (then its "closed" notice frees ac), ac goes now. */
        int err = errno;

        if (!ac->conn) {
            conn_unlink(a, ac);
        } else {
            ac->fd = -1;
            conn_close(a, ac);
        }
        log_warn(MOD, "libmicrohttpd did not take a connection from %s: %s", client,
                 fdlimit_strerror(err));
    }
    a->adding = NULL;
    sweep_update(a);
}

static void on_listen(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin *a = w->data;

    for (int i = 0; i < ACCEPT_BURST && ev_is_active(&a->listen_io); i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(a->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_failed(a, errno);
            break;
        }
        a->accept_backoff = 0;
        take(a, fd, &ss, len);
    }
    run_mhd(a);
}

/* ---- setup ---- */

static int open_listener(struct admin *a, const struct listen_addr *addr, const char *host,
                         char **errmsg)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int one = 1, err;

    memset(&ss, 0, sizeof(ss));
    if (addr->ipv6) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(addr->port);
        inet_pton(AF_INET6, host, &in6->sin6_addr);
        len = sizeof(*in6);
    } else {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(addr->port);
        inet_pton(AF_INET, host, &in4->sin_addr);
        len = sizeof(*in4);
    }
    a->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->listen_fd < 0)
        goto fail;
    setsockopt(a->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->ipv6)
        setsockopt(a->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(a->listen_fd, (struct sockaddr *)&ss, len) < 0 ||
        listen(a->listen_fd, LISTEN_BACKLOG) < 0)
        goto fail;
    len = sizeof(ss);
    if (getsockname(a->listen_fd, (struct sockaddr *)&ss, &len) == 0)
        a->port = ntohs(addr->ipv6 ? in6->sin6_port : in4->sin_port);
    return 0;
fail:
    err = errno;
    memprintf(errmsg, "admin.listen: cannot listen on %s%s%s:%u: %s", addr->ipv6 ? "[" : "", host,
              addr->ipv6 ? "]" : "", (unsigned)addr->port, fdlimit_strerror(err));
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    a->listen_fd = -1;
    return -err;
}

static int conf_copy(struct admin_conf *dst, const struct admin_conf *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->protected_paths = src->protected_paths;
    if ((src->tls_cert_file && !(dst->tls_cert_file = strdup(src->tls_cert_file))) ||
        (src->tls_key_file && !(dst->tls_key_file = strdup(src->tls_key_file))) ||
        (src->tls_client_ca_file && !(dst->tls_client_ca_file = strdup(src->tls_client_ca_file))) ||
        (src->token_file && !(dst->token_file = strdup(src->token_file))))
        return -ENOMEM;
    return 0;
}

static void conf_free(struct admin_conf *c)
{
    free(c->tls_cert_file);
    free(c->tls_key_file);
    free(c->tls_client_ca_file);
    free(c->token_file);
    memset(c, 0, sizeof(*c));
}

static void secrets_free(struct admin_secrets *s)
{
    tls_files_free(&s->tls);
    secret_free(s->token);
    s->token = NULL;
}

/* A warning when the admin certificate is outside its validity: clients
 * would refuse every handshake. */
static void cert_dates_check(const char *path, const struct tls_files *tls)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t pem = {(unsigned char *)tls->cert, (unsigned int)tls->cert_len};
    time_t now = time(NULL), t;

    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0) {
        if ((t = gnutls_x509_crt_get_expiration_time(crt)) != (time_t)-1 && t < now)
            log_warn(MOD, "admin.tls.cert_file %s: the certificate expired %.0f days ago", path,
                     difftime(now, t) / 86400.0);
        else if ((t = gnutls_x509_crt_get_activation_time(crt)) != (time_t)-1 && t > now)
            log_warn(MOD, "admin.tls.cert_file %s: the certificate is not valid yet", path);
    }
    gnutls_x509_crt_deinit(crt);
}

/* Read what conf names into *out (zeroed first). Warns about a key or token
 * file readable by group or others. 0 or a negative errno with *errmsg. */
static int secrets_load(const struct admin_conf *conf, struct admin_secrets *out, char **errmsg)
{
    struct tls_conf t = {
        .ca_file = conf->tls_client_ca_file,
        .cert_file = conf->tls_cert_file,
        .key_file = conf->tls_key_file,
    };
    bool too_open = false;
    int r;

    memset(out, 0, sizeof(*out));
    if (tls_conf_set(&t)) {
        char *why = NULL;

        r = tls_files_load(&t, &out->tls, &why);
        if (r < 0) {
            memprintf(errmsg, "admin.tls: %s", why ? why : "out of memory");
            free(why);
            return r;
        }
        cert_dates_check(t.cert_file, &out->tls);
        if (out->tls.key_too_open)
            log_warn(MOD, "admin.tls.key_file %s is readable by group or others", t.key_file);
    }
    if (conf->token_file) {
        r = admin_token_read(conf->token_file, &out->token, &too_open, errmsg);
        if (r < 0) {
            secrets_free(out);
            return r;
        }
        if (too_open)
            log_warn(MOD, "admin.token_file %s is readable by group or others", conf->token_file);
    }
    return 0;
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return (!a && !b) || (a && b && alen == blen && memcmp(a, b, alen) == 0);
}

static bool same_tls(const struct tls_files *a, const struct tls_files *b)
{
    return same_bytes(a->cert, a->cert_len, b->cert, b->cert_len) &&
           same_bytes(a->key, a->key_len, b->key, b->key_len) &&
           same_bytes(a->ca, a->ca_len, b->ca, b->ca_len);
}

/* A libmicrohttpd daemon on our connections (none yet), with tls (borrowed
 * for the call: MHD copies the PEM) or plain HTTP. */
static struct MHD_Daemon *daemon_start(struct admin *a, const struct tls_files *tls)
{
    unsigned flags =
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    /* MHD's own limit is a backstop above ours: a connection we shut down
     * is MHD's until its next run. */
    unsigned mhd_limit = 2 * a->limit + 2;
    struct MHD_OptionItem tls_opts[4];
    size_t n = 0;

    if (tls->cert) {
        flags |= MHD_USE_TLS;
        tls_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert};
        tls_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key};
        if (tls->ca)
            tls_opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, tls->ca};
    }
    tls_opts[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, a, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_NOTIFY_CONNECTION,
                            on_notify_connection, a, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                            MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
}

/* Watch mhd's epoll descriptor. */
static int daemon_watch(struct admin *a, char **errmsg)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);

    if (!info) {
        memprintf(errmsg, "admin: libmicrohttpd has no epoll descriptor");
        return -EINVAL;
    }
    ev_io_set(&a->io, info->epoll_fd, EV_READ);
    ev_io_start(a->loop, &a->io);
    schedule(a);
    return 0;
}

/* Stop mhd: its connections close (their "closed" notices empty our list). */
static void daemon_stop(struct admin *a)
{
    if (!a->mhd)
        return;
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->timer);
    /* Held requests must be resumed before MHD can close them. */
    for (size_t i = 0; i < a->n_waiting; i++)
        MHD_resume_connection(a->waiting[i]);
    a->n_waiting = 0;
    MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
}

struct admin *admin_start(struct ev_loop *loop, const struct listen_addr *addr,
                          const char *runtime_socket, const struct admin_conf *conf,
                          const struct admin_ops *ops, void *arg, char **errmsg)
{
    struct admin *a = calloc(1, sizeof(*a));
    const char *host = addr->host[0] ? addr->host : "127.0.0.1";
    unsigned long nofile = fdlimit_soft();
    int in_use;

    if (!a)
        goto oom;
    a->listen_fd = -1;
    a->loop = loop;
    a->ops = ops;
    a->arg = arg;
    ev_init(&a->io, on_io);
    a->io.data = a;
    ev_init(&a->timer, on_timer);
    a->timer.data = a;
    ev_init(&a->listen_io, on_listen);
    a->listen_io.data = a;
    ev_init(&a->accept_timer, on_accept_timer);
    a->accept_timer.data = a;
    ev_timer_init(&a->sweep, on_sweep, SWEEP_INTERVAL_S, SWEEP_INTERVAL_S);
    a->sweep.data = a;
    if (conf_copy(&a->conf, conf) < 0)
        goto oom;
    if (secrets_load(&a->conf, &a->sec, errmsg) < 0)
        goto fail;
    a->rt = runtime_new(loop, runtime_socket, ADMIN_RUNTIME_TIMEOUT_S);
    if (!a->rt)
        goto oom;
    in_use = fdlimit_in_use();
    a->limit = fdlimit_admin_budget(nofile, in_use > 0 ? (unsigned long)in_use : 0);
    a->per_client = fdlimit_per_client(a->limit);
    if (!(a->mhd = daemon_start(a, &a->sec.tls))) {
        memprintf(errmsg, "admin: libmicrohttpd did not start%s",
                  a->sec.tls.cert ? " (is admin.tls.key_file the key of admin.tls.cert_file?)"
                                  : "");
        goto fail;
    }
    if (open_listener(a, addr, host, errmsg) < 0 || daemon_watch(a, errmsg) < 0)
        goto fail;
    ev_io_set(&a->listen_io, a->listen_fd, EV_READ);
    if (a->limit == 0)
        log_error(MOD,
                  "no file descriptor left for admin connections (nofile %lu, %d in use, %d kept "
                  "for syncing): every connection is refused; raise the limit (LimitNOFILE=)",
                  nofile, in_use, FDLIMIT_RESERVE);
    else
        log_info(MOD,
                 "up to %u connections, %u per client address (nofile %lu, %d in use, %d kept "
                 "for syncing); a request's headers within %.0f s",
                 a->limit, a->per_client, nofile, in_use, FDLIMIT_RESERVE, ADMIN_HEADER_DEADLINE_S);
    listener_update(a);
    return a;
oom:
    memprintf(errmsg, "out of memory");
fail:
    admin_free(a);
    return NULL;
}

int admin_reload(struct admin *a, char **errmsg)
{
    struct admin_secrets sec;
    struct MHD_Daemon *mhd;
    int r;

    if (!a)
        return 0;
    r = secrets_load(&a->conf, &sec, errmsg);
    if (r < 0)
        return r;
    if (!same_tls(&sec.tls, &a->sec.tls)) {
        /* libmicrohttpd takes its certificate at start: a new daemon for
         * the new material, on the same listener; the old one's
         * connections are closed. */
        if (!(mhd = daemon_start(a, &sec.tls))) {
            memprintf(errmsg, "admin.tls: libmicrohttpd refused the new certificate or key");
            secrets_free(&sec);
            return -EINVAL;
        }
        daemon_stop(a);
        a->mhd = mhd;
        if ((r = daemon_watch(a, errmsg)) < 0) {
            secrets_free(&sec);
            return r;
        }
    }
    secrets_free(&a->sec);
    a->sec = sec;
    return 0;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    daemon_stop(a);
    ev_io_stop(a->loop, &a->listen_io);
    ev_timer_stop(a->loop, &a->accept_timer);
    ev_timer_stop(a->loop, &a->sweep);
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    /* MHD closed every connection it took; what is left never reached it. */
    while (a->head)
        conn_unlink(a, a->head);
    runtime_free(a->rt);
    json_decref(a->doc);
    free(a->error);
    secrets_free(&a->sec);
    conf_free(&a->conf);
    free(a);
}

unsigned admin_port(const struct admin *a)
{
    return a->port;
}
