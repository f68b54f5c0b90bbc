/* Tests for the libcurl-on-libev client against a tiny HTTP server that runs
 * on the same loop (127.0.0.1, an ephemeral port). They check buffered and
 * streamed bodies, error mapping, and callbacks that start, cancel or free. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/http.h>

/* ---- the server ---- */

struct sconn {
    struct server *srv;
    int fd;
    ev_io io;
    ev_timer tick;
    char buf[65536];
    size_t len;
    int chunks_left;
    struct sconn *next;
};

struct server {
    struct ev_loop *loop;
    int lfd, port;
    ev_io accept_io;
    struct sconn *conns;
    int requests;
};

static void sconn_close(struct sconn *sc)
{
    struct server *srv = sc->srv;

    for (struct sconn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
        if (*pp == sc) {
            *pp = sc->next;
            break;
        }
    }
    ev_io_stop(srv->loop, &sc->io);
    ev_timer_stop(srv->loop, &sc->tick);
    close(sc->fd);
    free(sc);
}

static void say(struct sconn *sc, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(sc->fd, data, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void reply(struct sconn *sc, int status, const char *body, size_t len)
{
    char head[256];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, len);

    say(sc, head, (size_t)n);
    say(sc, body, len);
    sconn_close(sc);
}

static void chunk(struct sconn *sc, const char *data)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%zx\r\n", strlen(data));

    say(sc, head, (size_t)n);
    say(sc, data, strlen(data));
    say(sc, "\r\n", 2);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sconn *sc = w->data;

    if (sc->chunks_left-- > 0) {
        chunk(sc, "line\n");
        return;
    }
    say(sc, "0\r\n\r\n", 5);
    sconn_close(sc);
}

static void handle(struct sconn *sc, const char *path, const char *body, size_t body_len)
{
    sc->srv->requests++;
    if (strcmp(path, "/hello") == 0) {
        reply(sc, 200, "hello world", 11);
    } else if (strcmp(path, "/404") == 0) {
        reply(sc, 404, "nope", 4);
    } else if (strcmp(path, "/head") == 0) {
        /* the request head, so tests can see the headers sent */
        reply(sc, 200, sc->buf, (size_t)(body - sc->buf));
    } else if (strcmp(path, "/echo") == 0) {
        reply(sc, 200, body, body_len);
    } else if (strcmp(path, "/big") == 0) {
        static char big[100000];

        memset(big, 'b', sizeof(big));
        reply(sc, 200, big, sizeof(big));
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/forever") == 0) {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

        say(sc, head, strlen(head));
        chunk(sc, "first\n");
        sc->chunks_left = strcmp(path, "/stream") == 0 ? 5 : 1 << 30;
        ev_timer_init(&sc->tick, tick_cb, 0.01, 0.01);
        sc->tick.data = sc;
        ev_timer_start(sc->srv->loop, &sc->tick);
    }
    /* anything else (/hang): never answer */
}

static void sconn_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *sc = w->data;
    ssize_t n = read(sc->fd, sc->buf + sc->len, sizeof(sc->buf) - sc->len - 1);
    char *end, *cl, path[64];
    size_t head_len, body_len = 0;

    if (n <= 0) {
        sconn_close(sc);
        return;
    }
    sc->len += (size_t)n;
    sc->buf[sc->len] = '\0';
    end = strstr(sc->buf, "\r\n\r\n");
    if (!end || ev_is_active(&sc->tick))
        return;
    head_len = (size_t)(end - sc->buf) + 4;
    cl = strstr(sc->buf, "Content-Length:");
    if (cl && cl < end)
        body_len = strtoul(cl + 15, NULL, 10);
    if (sc->len < head_len + body_len)
        return;
    if (sscanf(sc->buf, "%*s %63s", path) != 1)
        path[0] = '\0';
    handle(sc, path, sc->buf + head_len, body_len);
}

static void server_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *srv = w->data;
    struct sconn *sc;
    int fd = accept(srv->lfd, NULL, NULL);

    if (fd < 0)
        return;
    sc = calloc(1, sizeof(*sc));
    cr_assert_not_null(sc);
    sc->srv = srv;
    sc->fd = fd;
    ev_io_init(&sc->io, sconn_read, fd, EV_READ);
    sc->io.data = sc;
    ev_init(&sc->tick, tick_cb);
    ev_io_start(loop, &sc->io);
    sc->next = srv->conns;
    srv->conns = sc;
}

static void server_open(struct server *srv, struct ev_loop *loop)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(srv->lfd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(srv->lfd, 64), 0);
    cr_assert_eq(getsockname(srv->lfd, (struct sockaddr *)&a, &len), 0);
    srv->port = ntohs(a.sin_port);
    ev_io_init(&srv->accept_io, server_accept, srv->lfd, EV_READ);
    srv->accept_io.data = srv;
    ev_io_start(loop, &srv->accept_io);
}

static void server_close(struct server *srv)
{
    while (srv->conns)
        sconn_close(srv->conns);
    ev_io_stop(srv->loop, &srv->accept_io);
    close(srv->lfd);
}

/* ---- fixture ---- */

struct result {
    bool done;
    int calls, err;
    long status;
    char body[128];
    size_t len;
    bool body_null;
    char errtext[256];
    size_t streamed;
    int chunks;
};

static struct ev_loop *loop;
static struct http_client *client;
static struct server srv;
static bool timed_out;

static void setup(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(loop);
    server_open(&srv, loop);
    client = http_client_new(loop);
    cr_assert_not_null(client);
}

static void teardown(void)
{
    http_client_free(client);
    server_close(&srv);
    ev_loop_destroy(loop);
}

static void deadline_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    timed_out = true;
}

/* Run the loop until *flag or the deadline. */
static bool run_until(const bool *flag, double seconds)
{
    ev_timer deadline;

    timed_out = false;
    ev_timer_init(&deadline, deadline_cb, seconds, 0.);
    ev_timer_start(loop, &deadline);
    while (!(flag && *flag) && !timed_out)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &deadline);
    return flag && *flag;
}

static void url(char *buf, size_t size, const char *path)
{
    snprintf(buf, size, "http://127.0.0.1:%d%s", srv.port, path);
}

static void done_cb(struct http_request *req, int err, long status, const char *body, size_t len,
                    const char *errtext, void *arg)
{
    struct result *r = arg;

    r->calls++;
    r->done = true;
    r->err = err;
    r->status = status;
    r->body_null = body == NULL;
    r->len = len;
    if (body) {
        cr_assert_eq(body[len], '\0', "body NUL-terminated");
        snprintf(r->body, sizeof(r->body), "%s", body);
    }
    snprintf(r->errtext, sizeof(r->errtext), "%s", errtext ? errtext : "");
    if (err)
        cr_assert(errtext && errtext[0], "error without text");
}

static struct http_request *get(const char *path, const struct http_opts *opts, struct result *r)
{
    char u[128];

    url(u, sizeof(u), path);
    return http_request_start(client, u, opts, done_cb, r);
}

/* ---- tests ---- */

TestSuite(http, .init = setup, .fini = teardown, .timeout = 20);

Test(http, buffered_get)
{
    struct result r = {0};

    cr_assert_not_null(get("/hello", NULL, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "hello world");
    cr_assert_eq(r.len, 11);
}

Test(http, status_is_not_an_error)
{
    struct result r = {0};

    cr_assert_not_null(get("/404", NULL, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body, "nope");
}

Test(http, post_body_with_nul)
{
    struct result r = {0};
    struct http_opts o = {.body = "a\0b", .body_len = 3};

    cr_assert_not_null(get("/echo", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.len, 3);
    cr_assert_str_eq(r.body, "a");
}

Test(http, extra_headers)
{
    struct result r = {0};
    const char *const headers[] = {"Grpc-Metadata-hasleader: true", "X-Two: 2", NULL};
    struct http_opts o = {.method = "GET", .headers = headers};

    cr_assert_not_null(get("/head", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, 0);
    cr_assert(strstr(r.body, "\r\nGrpc-Metadata-hasleader: true\r\n"), "%s", r.body);
    cr_assert(strstr(r.body, "\r\nX-Two: 2\r\n"), "%s", r.body);
}

Test(http, body_cap)
{
    struct result r = {0};
    struct http_opts o = {.max_body = 1000};

    cr_assert_not_null(get("/big", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, -EMSGSIZE);
    cr_assert(r.body_null);
}

Test(http, refused)
{
    struct result r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    char u[64];

    /* a port nobody listens on */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    cr_assert_not_null(http_request_start(client, u, NULL, done_cb, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, -ECONNREFUSED);
}

Test(http, timeout)
{
    struct result r = {0};
    struct http_opts o = {.timeout_ms = 200};

    cr_assert_not_null(get("/hang", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, -ETIMEDOUT);
}

static int count_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct result *r = arg;

    r->streamed += len;
    r->chunks++;
    return 0;
}

Test(http, stream)
{
    struct result r = {0};
    struct http_opts o = {.on_data = count_data};

    cr_assert_not_null(get("/stream", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.status, 200);
    cr_assert(r.body_null);
    cr_assert_eq(r.streamed, strlen("first\n") + 5 * strlen("line\n"));
    cr_assert_geq(r.chunks, 2);
}

static int abort_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct result *r = arg;

    r->chunks++;
    return r->chunks >= 2;
}

Test(http, stream_abort)
{
    struct result r = {0};
    struct http_opts o = {.on_data = abort_data};

    cr_assert_not_null(get("/forever", &o, &r));
    cr_assert(run_until(&r.done, 5));
    cr_assert_eq(r.err, -ECANCELED);
    cr_assert_eq(r.chunks, 2);
    cr_assert_eq(r.calls, 1);
}

Test(http, cancel_pending)
{
    struct result r = {0}, other = {0};
    struct http_request *req = get("/stream", NULL, &r);

    cr_assert_not_null(req);
    http_cancel(req);
    cr_assert_not_null(get("/hello", NULL, &other));
    cr_assert(run_until(&other.done, 5));
    run_until(NULL, 0.2);
    cr_assert_eq(r.calls, 0);
}

/* A done callback that starts one request and cancels another. */
struct chain {
    struct result first, second, victim;
    struct http_request *victim_req;
};

static void chain_done(struct http_request *req, int err, long status, const char *body, size_t len,
                       const char *errtext, void *arg)
{
    struct chain *c = arg;

    done_cb(req, err, status, body, len, errtext, &c->first);
    http_cancel(c->victim_req);
    http_cancel(req); /* a no-op from inside its own done */
    cr_assert_not_null(get("/hello", NULL, &c->second));
}

Test(http, done_starts_and_cancels)
{
    struct chain c = {0};
    char u[128];
    struct http_opts o = {.on_data = count_data};

    c.victim_req = get("/forever", &o, &c.victim);
    cr_assert_not_null(c.victim_req);
    url(u, sizeof(u), "/hello");
    cr_assert_not_null(http_request_start(client, u, NULL, chain_done, &c));
    cr_assert(run_until(&c.second.done, 5));
    cr_assert_eq(c.first.err, 0);
    cr_assert_str_eq(c.second.body, "hello world");
    run_until(NULL, 0.1);
    cr_assert_eq(c.victim.calls, 0);
    cr_assert_eq(c.first.calls, 1);
}

/* Data callbacks of two streams: the first cancels the second and starts a
 * buffered request, from inside on_data. */
struct cross {
    struct result a, b, c;
    struct http_request *b_req;
    bool started;
};

static int cross_data(struct http_request *req, const char *data, size_t len, void *arg)
{
    struct cross *x = arg;

    x->a.chunks++;
    if (!x->started && x->b.chunks > 0) {
        x->started = true;
        http_cancel(x->b_req);
        cr_assert_not_null(get("/hello", NULL, &x->c));
    }
    return 0;
}

Test(http, data_cb_cancels_and_starts)
{
    struct cross x = {0};
    struct http_opts oa = {.on_data = cross_data}, ob = {.on_data = count_data};
    char u[128];

    x.b_req = get("/forever", &ob, &x.b);
    cr_assert_not_null(x.b_req);
    url(u, sizeof(u), "/forever");
    cr_assert_not_null(http_request_start(client, u, &oa, done_cb, &x));
    cr_assert(run_until(&x.c.done, 5));
    cr_assert_str_eq(x.c.body, "hello world");
    cr_assert_eq(x.b.calls, 0);
}

/* Freeing the client from inside a done callback: the rest are dropped. */
static void free_in_done(struct http_request *req, int err, long status, const char *body,
                         size_t len, const char *errtext, void *arg)
{
    struct result *r = arg;

    done_cb(req, err, status, body, len, errtext, r);
    http_client_free(client);
    client = NULL;
}

Test(http, free_from_done)
{
    struct result r = {0}, other = {0};
    char u[128];
    struct http_opts o = {.on_data = count_data};

    cr_assert_not_null(get("/forever", &o, &other));
    url(u, sizeof(u), "/hello");
    cr_assert_not_null(http_request_start(client, u, NULL, free_in_done, &r));
    cr_assert(run_until(&r.done, 5));
    run_until(NULL, 0.1);
    cr_assert_eq(other.calls, 0);
    cr_assert_eq(r.calls, 1);
}

Test(http, free_with_pending)
{
    struct result r[8] = {{0}};
    struct http_opts o = {.on_data = count_data};

    for (int i = 0; i < 8; i++)
        cr_assert_not_null(get(i % 2 ? "/forever" : "/hang", &o, &r[i]));
    run_until(NULL, 0.1);
    http_client_free(client);
    client = NULL;
    run_until(NULL, 0.1);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(r[i].calls, 0);
}

static int n_done;
static bool all_done;

static void count_done(struct http_request *req, int err, long status, const char *body, size_t len,
                       const char *errtext, void *arg)
{
    done_cb(req, err, status, body, len, errtext, arg);
    if (++n_done == 50)
        all_done = true;
}

Test(http, many_at_once)
{
    enum { N = 50 };
    struct result r[N] = {{0}};
    char u[128];

    url(u, sizeof(u), "/hello");
    for (int i = 0; i < N; i++)
        cr_assert_not_null(http_request_start(client, u, NULL, count_done, &r[i]));
    cr_assert(run_until(&all_done, 10), "%d of %d done", n_done, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].err, 0, "request %d: %s", i, r[i].errtext);
        cr_assert_str_eq(r[i].body, "hello world");
    }
}
