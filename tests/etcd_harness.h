/* etcd_harness - what the etcd client's suites share (test_etcd.c for the
 * calls, test_etcd_sync.c for the prefix sync): one real etcd started for the
 * whole run on free 127.0.0.1 ports (skipped without /usr/bin/etcd) and
 * shared by tests that take turns on it; a small TCP proxy on the loop that
 * can hold traffic back or cut connections; a fake etcd on the loop that
 * plays one gone wrong; a consumer recording what a sync delivers. Included
 * by one suite per test binary (its hooks start and stop the shared etcd).
 * Helpers are static inline: not every suite uses every one. */
#ifndef SLOTSYNC_TESTS_ETCD_HARNESS_H
#define SLOTSYNC_TESTS_ETCD_HARNESS_H

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <ev.h>
#include <jansson.h>

#include <slotsync/etcd.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/http.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- I/O against a real etcd ---- */

#define ETCD_BIN "/usr/bin/etcd"

static pid_t etcd_pid = -1;
static char etcd_dir[64];

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void etcd_kill(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGCONT);
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
        etcd_pid = -1;
    }
    if (etcd_dir[0]) {
        nftw(etcd_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        etcd_dir[0] = '\0';
    }
}

/* A port nothing listens on now; -1 on failure (usable outside a test). */
static inline int free_port_raw(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline int free_port(void)
{
    int port = free_port_raw();

    cr_assert_gt(port, 0);
    return port;
}

/* Start etcd; it dies with us (PDEATHSIG) even if the test is killed. */
static inline int etcd_spawn(int client_port, int peer_port)
{
    char data[128], log[128], curl[64], purl[64], cluster[96];
    pid_t pid;

    snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/slotsync-etcd-XXXXXX");
    if (!mkdtemp(etcd_dir)) {
        etcd_dir[0] = '\0';
        return -1;
    }
    snprintf(data, sizeof(data), "%s/data", etcd_dir);
    snprintf(log, sizeof(log), "%s/log", etcd_dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", client_port);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", peer_port);
    snprintf(cluster, sizeof(cluster), "default=%s", purl);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(ETCD_BIN, "etcd", "--data-dir", data, "--listen-client-urls", curl,
              "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
              "--experimental-watch-progress-notify-interval", "1s", (char *)NULL);
        _exit(127);
    }
    etcd_pid = pid;
    return 0;
}

static inline bool port_accepts(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    if (fd < 0)
        return false;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static inline bool etcd_log_has(const char *what)
{
    char path[160], buf[8192];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/log", etcd_dir);
    if (!(f = fopen(path, "r")))
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

/* Start etcd on free ports. free_port() binds and closes, so another
 * process may take a port before etcd binds it: etcd then exits with
 * "address already in use", and we start it again on new ports. 0 once its
 * client port accepts connections, -1 if it never came up. Usable outside a
 * test (the runner's PRE_ALL hook). */
static inline int etcd_start_raw(int *client_port, int *peer_port)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        *client_port = free_port_raw();
        *peer_port = free_port_raw();
        if (*client_port < 0 || *peer_port < 0 || *client_port == *peer_port)
            continue;
        if (etcd_spawn(*client_port, *peer_port) < 0)
            return -1;
        for (int i = 0; i < 300; i++) {
            if (waitpid(etcd_pid, NULL, WNOHANG) == etcd_pid) {
                etcd_pid = -1;
                break;
            }
            if (port_accepts(*client_port))
                return 0;
            usleep(100 * 1000);
        }
        if (etcd_pid > 0 || !etcd_log_has("address already in use")) {
            etcd_kill();
            return -1;
        }
        etcd_kill();
    }
    return -1;
}

/* A TCP proxy on the loop that can hold traffic (pause) or cut connections. */
struct pconn {
    struct proxy *proxy;
    int cfd, ufd;
    char tail[16]; /* end of the previous chunk from upstream, for matching */
    size_t tail_len;
    ev_io cio, uio;
    struct pconn *next;
};

struct proxy {
    struct ev_loop *loop;
    int lfd, port, upstream_port;
    ev_io accept_io;
    bool paused;
    bool pause_on_more;    /* one shot: pause after passing on "more":true */
    unsigned long results; /* "result" objects seen going to the client */
    struct pconn *conns;
};

static inline void pconn_close(struct pconn *pc)
{
    struct proxy *p = pc->proxy;

    for (struct pconn **pp = &p->conns; *pp; pp = &(*pp)->next) {
        if (*pp == pc) {
            *pp = pc->next;
            break;
        }
    }
    ev_io_stop(p->loop, &pc->cio);
    ev_io_stop(p->loop, &pc->uio);
    close(pc->cfd);
    close(pc->ufd);
    free(pc);
}

static inline bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static inline size_t count_in(const char *buf, size_t len, const char *what)
{
    size_t n = 0, wl = strlen(what);

    for (size_t i = 0; i + wl <= len; i++)
        if (memcmp(buf + i, what, wl) == 0)
            n++;
    return n;
}

static void proxy_pause(struct proxy *p, bool pause);

static inline void pconn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pconn *pc = w->data;
    struct proxy *p = pc->proxy;
    bool from_client = w == &pc->cio;
    char buf[sizeof(pc->tail) + 16384], *data = buf + sizeof(pc->tail);
    ssize_t n = read(w->fd, data, 16384);
    size_t seen;

    if (n <= 0 || !send_all(from_client ? pc->ufd : pc->cfd, data, (size_t)n)) {
        pconn_close(pc);
        return;
    }
    if (from_client)
        return;
    /* Match across chunk boundaries: previous tail + this chunk, counting
     * only matches that end inside this chunk. */
    memcpy(data - pc->tail_len, pc->tail, pc->tail_len);
    seen = pc->tail_len + (size_t)n;
    p->results += count_in(data - pc->tail_len, seen, "\"result\"") -
                  count_in(pc->tail, pc->tail_len, "\"result\"");
    if (p->pause_on_more && count_in(data - pc->tail_len, seen, "\"more\":true") >
                                count_in(pc->tail, pc->tail_len, "\"more\":true")) {
        p->pause_on_more = false;
        proxy_pause(p, true);
    }
    pc->tail_len = seen < sizeof(pc->tail) ? seen : sizeof(pc->tail);
    memmove(pc->tail, data + n - pc->tail_len, pc->tail_len);
}

static inline void proxy_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct proxy *p = w->data;
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct pconn *pc;
    int cfd = accept(p->lfd, NULL, NULL), ufd;

    if (cfd < 0)
        return;
    ufd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)p->upstream_port);
    /* A loopback connect completes at once; fine for a test helper. */
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(cfd);
        if (ufd >= 0)
            close(ufd);
        return;
    }
    pc = calloc(1, sizeof(*pc));
    cr_assert_not_null(pc);
    pc->proxy = p;
    pc->cfd = cfd;
    pc->ufd = ufd;
    ev_io_init(&pc->cio, pconn_io, cfd, EV_READ);
    ev_io_init(&pc->uio, pconn_io, ufd, EV_READ);
    pc->cio.data = pc->uio.data = pc;
    if (!p->paused) {
        ev_io_start(loop, &pc->cio);
        ev_io_start(loop, &pc->uio);
    }
    pc->next = p->conns;
    p->conns = pc;
}

static inline void proxy_open(struct proxy *p, struct ev_loop *loop, int upstream_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int one = 1;

    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->upstream_port = upstream_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(p->lfd, 0);
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(p->lfd, 16), 0);
    cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
    p->port = ntohs(a.sin_port);
    ev_io_init(&p->accept_io, proxy_accept, p->lfd, EV_READ);
    p->accept_io.data = p;
    ev_io_start(loop, &p->accept_io);
}

static inline void proxy_pause(struct proxy *p, bool pause)
{
    p->paused = pause;
    for (struct pconn *pc = p->conns; pc; pc = pc->next) {
        if (pause) {
            ev_io_stop(p->loop, &pc->cio);
            ev_io_stop(p->loop, &pc->uio);
        } else {
            ev_io_start(p->loop, &pc->cio);
            ev_io_start(p->loop, &pc->uio);
        }
    }
}

static inline void proxy_close(struct proxy *p)
{
    while (p->conns)
        pconn_close(p->conns);
    ev_io_stop(p->loop, &p->accept_io);
    close(p->lfd);
}

/* What the consumer of a sync believes is in etcd. */
struct entry {
    char *key, *value;
    size_t value_len;
};

struct kvset {
    struct entry *e;
    size_t n, cap;
};

static inline struct entry *kvset_find(struct kvset *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].key, key) == 0)
            return &s->e[i];
    return NULL;
}

static inline void kvset_put(struct kvset *s, const char *key, const char *value, size_t len)
{
    struct entry *e = kvset_find(s, key);

    if (!e) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            s->e = realloc(s->e, s->cap * sizeof(*s->e));
            cr_assert_not_null(s->e);
        }
        e = &s->e[s->n++];
        e->key = strdup(key);
        e->value = NULL;
    }
    free(e->value);
    e->value = malloc(len + 1);
    cr_assert_not_null(e->value);
    memcpy(e->value, value, len + 1);
    e->value_len = len;
}

static inline void kvset_del(struct kvset *s, const char *key)
{
    struct entry *e = kvset_find(s, key);

    if (!e)
        return;
    free(e->key);
    free(e->value);
    *e = s->e[--s->n];
}

static inline void kvset_clear(struct kvset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].key);
        free(s->e[i].value);
    }
    free(s->e);
    memset(s, 0, sizeof(*s));
}

struct consumer {
    struct kvset state, listing;
    bool listing_open;
    int list_begins, list_ends, batches, ups, downs, kvs;
    int list_pages;         /* list_page calls: pages delivered before the last */
    int list_restarts;      /* list_begin again inside a listing (it started over) */
    size_t first_page_keys; /* keys of the listing when the first list_page came */
    int64_t list_rev, batch_rev, last_event_rev;
    bool up;
    int reported; /* 0 never, 1 up, 2 down */
    char why[256];
    /* self-stopping consumer */
    struct etcd_sync *self;
    int stop_when; /* 0 never, 1 first kv, 2 first watch event */
    bool stopped;
    int after_stop;
};

static inline void c_list_begin(void *arg)
{
    struct consumer *c = arg;

    /* inside a listing: it failed or was compacted part way, and starts
     * over from its first page */
    if (c->listing_open)
        c->list_restarts++;
    c->listing_open = true;
    c->list_begins++;
    kvset_clear(&c->listing);
}

static inline void c_kv(const struct etcd_kv *kv, void *arg)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    c->kvs++;
    cr_assert_eq(kv->key[kv->key_len], '\0');
    cr_assert_eq(strncmp(kv->key, "/svc/", 5), 0, "key outside the prefix: %s", kv->key);
    if (c->listing_open) {
        cr_assert(!kv->deleted);
        kvset_put(&c->listing, kv->key, kv->value, kv->value_len);
    } else {
        /* after the listing, in revision order (a transaction's events
         * share one revision) */
        cr_assert_gt(kv->mod_revision, c->list_rev);
        cr_assert_geq(kv->mod_revision, c->last_event_rev);
        c->last_event_rev = kv->mod_revision;
        if (kv->deleted) {
            cr_assert_null(kv->value);
            kvset_del(&c->state, kv->key);
        } else {
            kvset_put(&c->state, kv->key, kv->value, kv->value_len);
        }
    }
    if (c->stop_when == 1 || (c->stop_when == 2 && !c->listing_open)) {
        etcd_sync_stop(c->self);
        c->self = NULL;
        c->stopped = true;
    }
}

static inline void c_list_page(void *arg)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(c->listing_open, "list_page outside a listing");
    if (!c->list_pages++)
        c->first_page_keys = c->listing.n;
}

static inline void c_list_end(int64_t revision, void *arg)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(c->listing_open);
    c->listing_open = false;
    c->list_ends++;
    c->list_rev = revision;
    c->last_event_rev = revision;
    kvset_clear(&c->state);
    c->state = c->listing;
    memset(&c->listing, 0, sizeof(c->listing));
}

static inline void c_batch_end(int64_t revision, void *arg)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(!c->listing_open);
    cr_assert_gt(revision, c->batch_rev);
    c->batches++;
    c->batch_rev = revision;
}

static inline void c_connected(bool up, const char *why, void *arg)
{
    struct consumer *c = arg;

    if (c->stopped) {
        c->after_stop++;
        return;
    }
    cr_assert(c->reported == 0 || (c->reported == 1) != up, "connected() reports changes");
    c->reported = up ? 1 : 2;
    c->up = up;
    if (up)
        c->ups++;
    else
        c->downs++;
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
}

static const struct etcd_sync_ops consumer_ops = {
    .list_begin = c_list_begin,
    .kv = c_kv,
    .list_page = c_list_page,
    .list_end = c_list_end,
    .batch_end = c_batch_end,
    .connected = c_connected,
};

/* Waiting on the loop for a condition, with a deadline. */
struct io_test {
    struct ev_loop *loop;
    struct http_client *http;
    struct etcd_client *direct; /* straight to etcd */
    struct etcd_client *synced; /* dead endpoint, then the proxy */
    struct proxy proxy;
    struct consumer cons, quitter, pager;
    bool timed_out;
    unsigned long mark;
};

static inline void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

static inline bool wait_until(struct io_test *t, bool (*cond)(struct io_test *), double seconds)
{
    ev_timer deadline;
    bool ok;

    t->timed_out = false;
    ev_timer_init(&deadline, deadline_cb, seconds, 0.);
    deadline.data = &t->timed_out;
    ev_timer_start(t->loop, &deadline);
    while (!(ok = cond(t)) && !t->timed_out)
        ev_run(t->loop, EVRUN_ONCE);
    ev_timer_stop(t->loop, &deadline);
    return ok;
}

static inline bool never(struct io_test *t)
{
    return false;
}

struct reply {
    bool done;
    int err;
    json_t *json;
    char errtext[512];
};

static inline void reply_cb(int err, const json_t *json, const char *errtext, void *arg)
{
    struct reply *r = arg;

    r->done = true;
    r->err = err;
    r->json = json ? json_deep_copy(json) : NULL;
    snprintf(r->errtext, sizeof(r->errtext), "%s", errtext ? errtext : "");
}

static struct reply *pending_reply;

static inline bool reply_done(struct io_test *t)
{
    return pending_reply->done;
}

/* Run a call to completion; r->json must be released by the caller. */
static inline int finish(struct io_test *t, struct etcd_call *call, struct reply *r)
{
    cr_assert_not_null(call);
    pending_reply = r;
    cr_assert(wait_until(t, reply_done, 15), "call did not finish");
    return r->err;
}

static inline void reply_clear(struct reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static inline json_t *b64(const char *data, size_t len)
{
    char *s;
    json_t *j;

    cr_assert_eq(etcd_b64_encode(data, len, &s, NULL), 0);
    j = json_string(s);
    free(s);
    return j;
}

static inline int64_t current_revision(struct io_test *t)
{
    struct reply r = {0};
    int64_t rev;

    cr_assert_eq(finish(t,
                        etcd_call(t->direct, "/v3/kv/range", json_pack("{s:o}", "key", b64("x", 1)),
                                  0, reply_cb, &r),
                        &r),
                 0, "%s", r.errtext);
    cr_assert_eq(etcd_json_int64(json_object_get(r.json, "header"), "revision", &rev), 0);
    reply_clear(&r);
    return rev;
}

/* Put count keys /svc/kNNNN in transactions of 100. */
static inline void put_many(struct io_test *t, int count)
{
    for (int base = 0; base < count; base += 100) {
        json_t *ops = json_array();
        struct reply r = {0};

        for (int i = base; i < count && i < base + 100; i++) {
            char key[32], value[32];

            snprintf(key, sizeof(key), "/svc/k%04d", i);
            snprintf(value, sizeof(value), "127.0.0.%d:80", i % 250);
            json_array_append_new(ops, json_pack("{s:{s:o,s:o}}", "request_put", "key",
                                                 b64(key, strlen(key)), "value",
                                                 b64(value, strlen(value))));
        }
        cr_assert_eq(finish(t,
                            etcd_call(t->direct, "/v3/kv/txn", json_pack("{s:o}", "success", ops),
                                      0, reply_cb, &r),
                            &r),
                     0, "%s", r.errtext);
        reply_clear(&r);
    }
}

static inline void put(struct io_test *t, const char *key, const char *value)
{
    struct reply r = {0};

    cr_assert_eq(finish(t, etcd_put(t->direct, key, value, 0, reply_cb, &r), &r), 0, "%s",
                 r.errtext);
    reply_clear(&r);
}

static inline void del(struct io_test *t, const char *key)
{
    struct reply r = {0};

    cr_assert_eq(finish(t, etcd_delete(t->direct, key, reply_cb, &r), &r), 0, "%s", r.errtext);
    reply_clear(&r);
}

/* The consumer's state must equal a direct range over the prefix. */
static inline void check_state_matches_etcd(struct io_test *t, const struct kvset *state)
{
    struct reply r = {0};
    struct etcd_range_reply rr;
    char *errmsg = NULL;

    cr_assert_eq(finish(t,
                        etcd_call(t->direct, "/v3/kv/range",
                                  json_pack("{s:o,s:o}", "key", b64("/svc/", 5), "range_end",
                                            b64("/svc0", 5)),
                                  0, reply_cb, &r),
                        &r),
                 0, "%s", r.errtext);
    cr_assert_eq(etcd_parse_range(r.json, &rr, &errmsg), 0, "%s", errmsg);
    cr_assert_eq(rr.n_kvs, state->n, "etcd has %zu keys, consumer %zu", rr.n_kvs, state->n);
    for (size_t i = 0; i < rr.n_kvs; i++) {
        struct entry *e = kvset_find((struct kvset *)state, rr.kvs[i].key);

        cr_assert_not_null(e, "consumer lacks %s", rr.kvs[i].key);
        cr_assert_eq(e->value_len, rr.kvs[i].value_len);
        cr_assert_eq(memcmp(e->value, rr.kvs[i].value, e->value_len), 0);
    }
    etcd_range_reply_free(&rr);
    reply_clear(&r);
}

/* Poll until etcd answers, for at most about 30 s. */
static inline bool etcd_ready(struct io_test *t)
{
    for (int attempt = 0; attempt < 150; attempt++) {
        struct reply r = {0};
        bool ok;

        pending_reply = &r;
        cr_assert_not_null(etcd_call(t->direct, "/v3/kv/range",
                                     json_pack("{s:o}", "key", b64("x", 1)), 1000, reply_cb, &r));
        cr_assert(wait_until(t, reply_done, 5));
        ok = r.err == 0;
        reply_clear(&r);
        if (ok)
            return true;
        wait_until(t, never, 0.2);
    }
    return false;
}

/* ---- one etcd for every etcd_io test ----
 *
 * The runner starts it once (PRE_ALL) and passes its port to the tests in
 * the environment; each test takes an exclusive lock on it, so tests running
 * in parallel take turns, and wipes the keys the tests use before it
 * starts. */

#define SHARED_ETCD_ENV "SLOTSYNC_TEST_ETCD_PORT"
#define SHARED_ETCD_LOCK_ENV "SLOTSYNC_TEST_ETCD_LOCK"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    char port_text[16], lock[128];
    int port, peer;

    (void)set;
    if (access(ETCD_BIN, X_OK) != 0 || getenv(SHARED_ETCD_ENV))
        return;
    if (etcd_start_raw(&port, &peer) < 0) {
        fprintf(stderr, "test_etcd: the shared etcd did not start\n");
        return;
    }
    snprintf(port_text, sizeof(port_text), "%d", port);
    snprintf(lock, sizeof(lock), "%s/lock", etcd_dir);
    setenv(SHARED_ETCD_ENV, port_text, 1);
    setenv(SHARED_ETCD_LOCK_ENV, lock, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    etcd_kill();
}

static int io_lock_fd = -1;

/* Connect t to the shared etcd (directly, and through a dead endpoint then
 * the proxy), wait until it answers and delete the keys tests use. */
static inline void io_setup(struct io_test *t)
{
    const char *port_text = getenv(SHARED_ETCD_ENV), *lock = getenv(SHARED_ETCD_LOCK_ENV);
    char direct_url[64], dead_url[64], proxy_url[64];
    int port, dead;

    if (access(ETCD_BIN, X_OK) != 0)
        cr_skip_test("%s not installed", ETCD_BIN);
    cr_assert(port_text && lock, "the shared etcd did not start (see the runner's output)");
    port = atoi(port_text);
    io_lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(io_lock_fd, 0);
    cr_assert_eq(flock(io_lock_fd, LOCK_EX), 0);
    dead = free_port(); /* nothing listens there: connection refused */
    cr_assert(port != dead);

    t->loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(t->loop);
    t->http = http_client_new(t->loop);
    cr_assert_not_null(t->http);
    proxy_open(&t->proxy, t->loop, port);
    snprintf(direct_url, sizeof(direct_url), "http://127.0.0.1:%d/", port);
    snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d", dead);
    snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", t->proxy.port);
    {
        char *direct[] = {direct_url};
        char *synced[] = {dead_url, proxy_url};

        t->direct = etcd_client_new(t->loop, t->http, direct, 1);
        t->synced = etcd_client_new(t->loop, t->http, synced, 2);
    }
    cr_assert_not_null(t->direct);
    cr_assert_not_null(t->synced);
    cr_assert(etcd_ready(t), "etcd did not come up");
    /* every key a test writes: /svc..., /svd..., /lease/... */
    {
        struct reply r = {0};

        cr_assert_eq(
            finish(t,
                   etcd_call(t->direct, "/v3/kv/deleterange",
                             json_pack("{s:o,s:o}", "key", b64("/", 1), "range_end", b64("0", 1)),
                             0, reply_cb, &r),
                   &r),
            0, "%s", r.errtext);
        reply_clear(&r);
    }
}

static inline void io_teardown(struct io_test *t)
{
    if (t->synced)
        etcd_client_free(t->synced);
    if (t->direct)
        etcd_client_free(t->direct);
    if (t->http)
        http_client_free(t->http);
    if (t->loop) {
        proxy_close(&t->proxy);
        ev_loop_destroy(t->loop);
    }
    kvset_clear(&t->cons.state);
    kvset_clear(&t->cons.listing);
    kvset_clear(&t->quitter.state);
    kvset_clear(&t->quitter.listing);
    kvset_clear(&t->pager.state);
    kvset_clear(&t->pager.listing);
    if (io_lock_fd >= 0) {
        close(io_lock_fd); /* drops the lock */
        io_lock_fd = -1;
    }
}

static inline void compact_now(struct io_test *t)
{
    struct reply r = {0};
    int64_t rev = current_revision(t);

    cr_assert_eq(
        finish(t,
               etcd_call(t->direct, "/v3/kv/compaction",
                         json_pack("{s:I,s:b}", "revision", (json_int_t)rev, "physical", 1), 0,
                         reply_cb, &r),
               &r),
        0, "%s", r.errtext);
    reply_clear(&r);
}

/* ---- against a fake etcd on the loop ----
 *
 * A small HTTP server that answers each request from a table the test sets:
 * enough to play an etcd gone wrong (bad revisions, a listing that never
 * ends, bytes jansson cannot parse) without a real one. */

struct fconn {
    struct fake *fake;
    int fd;
    ev_io io;
    char buf[8192];
    size_t len;
    struct fconn *next;
};

struct fake {
    struct ev_loop *loop;
    int lfd, port;
    ev_io accept_io;
    struct fconn *conns;
    int ranges, pages, probes, watches, puts;
    /* what to answer */
    const char *put_reply;
    int mode; /* 0: listing without progress, 1: bad watch revision, 2: late probe */
    /* mode 2: the first probe, held until a newer event went out */
    struct fconn *watch_fc, *held_probe;
    ev_timer late;
};

static inline void fconn_close(struct fconn *fc)
{
    struct fake *f = fc->fake;

    for (struct fconn **pp = &f->conns; *pp; pp = &(*pp)->next) {
        if (*pp == fc) {
            *pp = fc->next;
            break;
        }
    }
    ev_io_stop(f->loop, &fc->io);
    close(fc->fd);
    free(fc);
}

static inline void fsay(struct fconn *fc, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fc->fd, data, len, MSG_NOSIGNAL);

        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static inline void freply(struct fconn *fc, const char *body)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));

    fsay(fc, head, (size_t)n);
    fsay(fc, body, strlen(body));
    fconn_close(fc);
}

static inline void fchunk(struct fconn *fc, const char *line)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%zx\r\n", strlen(line) + 1);

    fsay(fc, head, (size_t)n);
    fsay(fc, line, strlen(line));
    fsay(fc, "\n\r\n", 3);
}

#define FHDR "\"header\":{\"cluster_id\":\"7\",\"revision\":\"5\"}"
/* "/svc/a" and "/svc/b" in base64 */
#define B64_PA "L3N2Yy9h"
#define B64_PB "L3N2Yy9i"

static inline void fake_handle(struct fconn *fc, const char *path, const char *body)
{
    struct fake *f = fc->fake;

    if (strcmp(path, "/v3/kv/put") == 0) {
        f->puts++;
        freply(fc, f->put_reply);
    } else if (strcmp(path, "/v3/kv/range") == 0 && strstr(body, "count_only")) {
        f->probes++;
        if (f->mode == 2 && f->probes == 1 && f->watch_fc) {
            /* Served at revision 5, but its answer is late: the watch
             * delivers revision 6 first, then the answer follows. */
            f->held_probe = fc;
            fchunk(f->watch_fc, "{\"result\":{" FHDR ",\"events\":[{\"kv\":{\"key\":\"" B64_PB
                                "\",\"mod_revision\":\"6\",\"value\":\"eQ==\"}}]}}");
            ev_timer_start(f->loop, &f->late);
            return;
        }
        freply(fc, "{" FHDR ",\"count\":\"0\"}");
    } else if (strcmp(path, "/v3/kv/range") == 0) {
        f->ranges++;
        if (f->mode >= 1)
            freply(fc, "{" FHDR "}");
        else if (strstr(body, "\"key\":\"L3N2Yy9hAA==\"")) /* the page after "/svc/a" */
            freply(fc, "{" FHDR ",\"more\":true,\"count\":\"3\"}");
        else
            freply(fc, "{" FHDR ",\"kvs\":[{\"key\":\"" B64_PA "\",\"mod_revision\":\"2\","
                       "\"value\":\"eA==\"}],\"more\":true,\"count\":\"3\"}");
    } else if (strcmp(path, "/v3/watch") == 0) {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

        f->watches++;
        fsay(fc, head, strlen(head));
        fchunk(fc, "{\"result\":{" FHDR ",\"created\":true}}");
        if (f->mode == 2) {
            f->watch_fc = fc; /* events come with the late probe */
            return;
        }
        if (f->watches == 1)
            fchunk(fc, "{\"result\":{" FHDR ",\"events\":[{\"kv\":{\"key\":\"" B64_PA "\","
                       "\"mod_revision\":\"9223372036854775807\",\"value\":\"eA==\"}}]}}");
        fchunk(fc, "{\"result\":{" FHDR ",\"events\":[{\"kv\":{\"key\":\"" B64_PB "\","
                   "\"mod_revision\":\"6\",\"value\":\"eQ==\"}}]}}");
        /* the stream stays open */
    } else {
        freply(fc, "{}");
    }
}

static inline void fake_late_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fake *f = w->data;

    if (f->held_probe)
        freply(f->held_probe, "{" FHDR ",\"count\":\"0\"}");
    f->held_probe = NULL;
}

static inline void fconn_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fconn *fc = w->data;
    ssize_t n = read(fc->fd, fc->buf + fc->len, sizeof(fc->buf) - fc->len - 1);
    char *end, *cl, path[64];
    size_t head_len, body_len = 0;

    if (n <= 0) {
        fconn_close(fc);
        return;
    }
    fc->len += (size_t)n;
    fc->buf[fc->len] = '\0';
    end = strstr(fc->buf, "\r\n\r\n");
    if (!end)
        return;
    head_len = (size_t)(end - fc->buf) + 4;
    cl = strstr(fc->buf, "Content-Length:");
    if (cl && cl < end)
        body_len = strtoul(cl + 15, NULL, 10);
    if (fc->len < head_len + body_len)
        return;
    if (sscanf(fc->buf, "%*s %63s", path) != 1)
        path[0] = '\0';
    ev_io_stop(loop, w);
    ev_io_set(w, fc->fd, EV_READ);
    fake_handle(fc, path, fc->buf + head_len);
}

/* After a request, only a close is expected: reading on would mistake it. */
static inline void fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake *f = w->data;
    struct fconn *fc;
    int fd = accept(f->lfd, NULL, NULL);

    if (fd < 0)
        return;
    fc = calloc(1, sizeof(*fc));
    cr_assert_not_null(fc);
    fc->fake = f;
    fc->fd = fd;
    ev_io_init(&fc->io, fconn_read, fd, EV_READ);
    fc->io.data = fc;
    ev_io_start(loop, &fc->io);
    fc->next = f->conns;
    f->conns = fc;
}

static inline void fake_open(struct fake *f, struct ev_loop *loop)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    memset(f, 0, sizeof(*f));
    f->loop = loop;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(f->lfd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(f->lfd, 64), 0);
    cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    ev_io_init(&f->accept_io, fake_accept, f->lfd, EV_READ);
    f->accept_io.data = f;
    ev_io_start(loop, &f->accept_io);
}

static inline void fake_close(struct fake *f)
{
    while (f->conns)
        fconn_close(f->conns);
    ev_io_stop(f->loop, &f->accept_io);
    close(f->lfd);
}

struct fake_test {
    struct io_test t;
    struct fake fake;
    struct consumer cons;
};

static inline void fake_setup(struct fake_test *ft, int mode)
{
    char url[64];

    memset(ft, 0, sizeof(*ft));
    ft->t.loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(ft->t.loop);
    ft->t.http = http_client_new(ft->t.loop);
    cr_assert_not_null(ft->t.http);
    fake_open(&ft->fake, ft->t.loop);
    ft->fake.mode = mode;
    ev_timer_init(&ft->fake.late, fake_late_probe, 0.05, 0.);
    ft->fake.late.data = &ft->fake;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ft->fake.port);
    {
        char *eps[] = {url};

        ft->t.direct = etcd_client_new(ft->t.loop, ft->t.http, eps, 1);
    }
    cr_assert_not_null(ft->t.direct);
}

static inline void fake_teardown(struct fake_test *ft)
{
    ev_timer_stop(ft->t.loop, &ft->fake.late);
    etcd_client_free(ft->t.direct);
    http_client_free(ft->t.http);
    fake_close(&ft->fake);
    ev_loop_destroy(ft->t.loop);
    kvset_clear(&ft->cons.state);
    kvset_clear(&ft->cons.listing);
}

#endif
