/* test_badvalues - every hostile key and value of tests/data/bad-values/
 * through the real pipeline: catalog -> slots -> plan -> the bytes written to
 * a runtime socket (a unix socket this test listens on and records) and the
 * rendered services file and Host map.
 *
 * A case "<name>.value" is put at <prefix>web/<name>; a case "<name>.key" is
 * the key after the prefix, with a valid value. Each must be refused, counted
 * once, and change nothing: the socket bytes, the services file and the map
 * are byte for byte those of the same catalog without the case. A value case
 * is also put over a valid endpoint, which must then go as if deleted. */
#define _GNU_SOURCE /* memmem, asprintf */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/catalog.h>
#include <slotsync/config.h>
#include <slotsync/file.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/runtime.h>
#include <slotsync/slots.h>

#define CORPUS "tests/data/bad-values"
#define PREFIX "/services/"

static const char config_json[] =
    "{\"etcd\": {\"endpoints\": [\"http://127.0.0.1:2379\"], \"prefix\": \"/services/\"},"
    " \"haproxy\": {\"runtime_socket\": \"/run/haproxy/admin.sock\","
    "  \"services_file\": \"/etc/haproxy/services.cfg\"},"
    " \"defaults\": {\"slots\": 4},"
    " \"services\": {\"web\": {\"listen\": \"127.0.0.1:8000\", \"hosts\": [\"web.example.com\"]},"
    "  \"api\": {\"slots\": 2}},"
    " \"http_frontend\": {\"bind\": \"127.0.0.1:8080\", \"domain\": \"svc.local\"}}";

/* ---- the recording runtime socket ---- */

struct recorder {
    struct ev_loop *loop;
    char dir[64], path[96];
    int lfd;
    ev_io accept_io, conn_io;
    int cfd;
    char *wire; /* everything the client wrote on its connection */
    size_t wire_len;
    bool done;
};

static struct recorder rec;

static void conn_close(void)
{
    ev_io_stop(rec.loop, &rec.conn_io);
    close(rec.cfd);
    rec.cfd = -1;
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    char buf[65536];
    ssize_t r = read(rec.cfd, buf, sizeof(buf));

    if (r <= 0) {
        conn_close();
        return;
    }
    rec.wire = realloc(rec.wire, rec.wire_len + (size_t)r + 1);
    cr_assert_not_null(rec.wire);
    memcpy(rec.wire + rec.wire_len, buf, (size_t)r);
    rec.wire_len += (size_t)r;
    rec.wire[rec.wire_len] = '\0';
    if (memchr(buf, '\n', (size_t)r)) {
        /* One empty reply per ';'-separated command, then close: HAProxy's
         * framing for commands that succeed silently. */
        size_t n = 1;

        for (size_t i = 0; i < rec.wire_len; i++)
            n += rec.wire[i] == ';';
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(write(rec.cfd, "\n", 1), 1);
        conn_close();
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    int fd = accept(rec.lfd, NULL, NULL);

    if (fd < 0)
        return;
    cr_assert_eq(rec.cfd, -1, "one connection per batch");
    rec.cfd = fd;
    ev_io_init(&rec.conn_io, on_conn, fd, EV_READ);
    ev_io_start(loop, &rec.conn_io);
}

static void setup(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    rec.loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(rec.loop);
    snprintf(rec.dir, sizeof(rec.dir), "/tmp/slotsync-bad.XXXXXX");
    cr_assert_not_null(mkdtemp(rec.dir));
    snprintf(rec.path, sizeof(rec.path), "%s/admin.sock", rec.dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", rec.path);
    rec.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(rec.lfd, 0);
    cr_assert_eq(bind(rec.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(rec.lfd, 4), 0);
    rec.cfd = -1;
    ev_io_init(&rec.accept_io, on_accept, rec.lfd, EV_READ);
    ev_io_start(rec.loop, &rec.accept_io);
}

static void teardown(void)
{
    if (rec.cfd >= 0)
        conn_close();
    ev_io_stop(rec.loop, &rec.accept_io);
    close(rec.lfd);
    unlink(rec.path);
    rmdir(rec.dir);
    ev_loop_destroy(rec.loop);
    free(rec.wire);
    memset(&rec, 0, sizeof(rec));
}

TestSuite(badvalues, .init = setup, .fini = teardown, .timeout = 120);

static void on_sent(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    rec.done = true;
    ev_break(rec.loop, EVBREAK_ALL);
}

/* Send cmds as one batch through runtime.c and return what reached the
 * socket (owned by rec until the next call). */
static const char *send_and_record(char **cmds, size_t n, size_t *len)
{
    struct runtime *rt = runtime_new(rec.loop, rec.path, 5.0);

    cr_assert_not_null(rt);
    free(rec.wire);
    rec.wire = NULL;
    rec.wire_len = 0;
    rec.done = false;
    cr_assert_eq(runtime_send(rt, (const char *const *)cmds, n, on_sent, NULL), 0);
    ev_run(rec.loop, 0);
    cr_assert(rec.done);
    runtime_free(rt);
    *len = rec.wire_len;
    return rec.wire ? rec.wire : "";
}

/* ---- the pipeline ---- */

struct output {
    char *wire; /* the batch as written to the socket */
    size_t wire_len;
    char *services; /* the rendered services file */
    size_t services_len;
    char *map; /* the rendered Host map */
    size_t map_len;
};

static void output_free(struct output *o)
{
    free(o->wire);
    free(o->services);
    free(o->map);
}

/* The configured backends, their slots filled from cat, planned against an
 * unknown HAProxy (every command emitted), sent, and rendered. */
static void pipeline(const struct config *cfg, const struct catalog *cat, struct output *out)
{
    struct slot_table tables[8];
    struct render_backend rb[8];
    struct host_route *routes = NULL;
    struct plan plan;
    size_t n = cfg->n_services, n_routes = 0, len;
    const char *wire;
    char *err = NULL;

    cr_assert_leq(n, 8);
    plan_init(&plan);
    for (size_t i = 0; i < n; i++) {
        const struct service_conf *svc = &cfg->services[i];

        cr_assert_eq(slots_init(&tables[i], (size_t)svc->opt.slots), 0);
        cr_assert_geq(slots_assign(&tables[i], catalog_find(cat, svc->name), NULL), 0);
        cr_assert_geq(plan_backend(&plan, svc->name, &tables[i], NULL), 0);
        rb[i].svc = svc;
        rb[i].slots = &tables[i];
        rb[i].proxy = NULL;
    }
    cr_assert_eq(render_host_routes(cfg, rb, n, &routes, &n_routes), 0);
    cr_assert_geq(plan_map(&plan, cfg->hosts_map, routes, n_routes, NULL, 0), 0);
    cr_assert_eq(render_services(cfg, rb, n, &out->services, &out->services_len, &err), 0, "%s",
                 err ? err : "");
    cr_assert_eq(render_hosts_map(routes, n_routes, &out->map, &out->map_len), 0);
    cr_assert_gt(plan.n, 0);

    wire = send_and_record(plan.cmds, plan.n, &len);
    out->wire = malloc(len + 1);
    cr_assert_not_null(out->wire);
    memcpy(out->wire, wire, len + 1);
    out->wire_len = len;

    free(routes);
    plan_free(&plan);
    for (size_t i = 0; i < n; i++)
        slots_free(&tables[i]);
}

/* The catalog every case is added to: one endpoint per configured service. */
static struct catalog *baseline_catalog(void)
{
    static const char k1[] = PREFIX "web/good", v1[] = "{\"host\":\"127.0.0.2\",\"port\":8080,"
                                                       "\"weight\":5}";
    static const char k2[] = PREFIX "api/good", v2[] = "127.0.0.3:9090";
    struct catalog *cat = catalog_new(PREFIX);

    cr_assert_not_null(cat);
    cr_assert_eq(catalog_put(cat, k1, strlen(k1), v1, strlen(v1), 1, NULL), CATALOG_ADDED);
    cr_assert_eq(catalog_put(cat, k2, strlen(k2), v2, strlen(v2), 2, NULL), CATALOG_ADDED);
    return cat;
}

/* The socket stream is one line; each rendered text is lines. Neither may
 * hold a control byte other than the line ends, and the stream's ';' only
 * separates commands (checked by comparing with the baseline). */
static void assert_clean(const char *what, const char *text, size_t len, bool one_line)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c == '\n') {
            if (one_line)
                cr_assert_eq(i, len - 1, "%s: line break inside the batch", what);
            continue;
        }
        cr_assert(c >= 0x20 && c != 0x7f, "%s: control byte 0x%02x at %zu", what, c, i);
    }
}

static void assert_same(const char *name, const char *what, const char *got, size_t got_len,
                        const char *want, size_t want_len)
{
    cr_assert(got_len == want_len && memcmp(got, want, got_len) == 0,
              "%s: %s differs from the baseline:\n--- got\n%s\n--- baseline\n%s", name, what, got,
              want);
}

/* No run of 8 bytes of the payload (or the whole, if shorter and >= 4 bytes)
 * that the baseline does not hold appears in got. */
static void assert_no_payload(const char *name, const char *what, const char *got, size_t got_len,
                              const char *base, size_t base_len, const char *payload, size_t plen)
{
    size_t w = plen < 8 ? plen : 8;

    if (w < 4)
        return;
    for (size_t i = 0; i + w <= plen; i++) {
        if (memmem(base, base_len, payload + i, w))
            continue;
        cr_assert_null(memmem(got, got_len, payload + i, w), "%s: bytes %zu..%zu of the case in %s",
                       name, i, i + w, what);
    }
}

/* One corpus file whole, through the file module's reader. Caller frees. */
static char *read_case(const char *name, size_t *len)
{
    char path[512], *buf = NULL;
    int r;

    snprintf(path, sizeof(path), CORPUS "/%s", name);
    r = file_read(path, (size_t)1 << 24, &buf, len);
    cr_assert_eq(r, 0, "cannot read %s: %s", path, strerror(-r));
    return buf;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t l = strlen(s), sl = strlen(suffix);

    return l > sl && strcmp(s + l - sl, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_cases(char ***names)
{
    DIR *d = opendir(CORPUS);
    struct dirent *de;
    size_t n = 0;

    cr_assert_not_null(d, "cannot open " CORPUS " (run from the top directory)");
    *names = NULL;
    while ((de = readdir(d))) {
        if (!has_suffix(de->d_name, ".value") && !has_suffix(de->d_name, ".key"))
            continue;
        *names = realloc(*names, (n + 1) * sizeof(**names));
        cr_assert_not_null(*names);
        (*names)[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(*names, n, sizeof(**names), cmp_names);
    return n;
}

static void check_output(const char *name, const struct output *got, const struct output *base,
                         const char *payload, size_t plen)
{
    assert_clean("socket", got->wire, got->wire_len, true);
    assert_clean("services file", got->services, got->services_len, false);
    assert_clean("map", got->map, got->map_len, false);
    assert_same(name, "socket stream", got->wire, got->wire_len, base->wire, base->wire_len);
    assert_same(name, "services file", got->services, got->services_len, base->services,
                base->services_len);
    assert_same(name, "map", got->map, got->map_len, base->map, base->map_len);
    assert_no_payload(name, "the socket stream", got->wire, got->wire_len, base->wire,
                      base->wire_len, payload, plen);
    assert_no_payload(name, "the services file", got->services, got->services_len, base->services,
                      base->services_len, payload, plen);
    assert_no_payload(name, "the map", got->map, got->map_len, base->map, base->map_len, payload,
                      plen);
}

/* Put one case into a catalog; returns catalog_put's result. */
static int put_case(struct catalog *cat, const char *name, const char *data, size_t len,
                    char **errmsg)
{
    static const char good[] = "127.0.0.4:7070";
    char *key;
    size_t klen;
    int r;

    if (has_suffix(name, ".key")) {
        klen = strlen(PREFIX) + len;
        key = malloc(klen + 1);
        cr_assert_not_null(key);
        memcpy(key, PREFIX, strlen(PREFIX));
        memcpy(key + strlen(PREFIX), data, len);
        r = catalog_put(cat, key, klen, good, strlen(good), 10, errmsg);
    } else {
        klen = (size_t)asprintf(&key, PREFIX "web/%.*s", (int)(strlen(name) - 6), name);
        r = catalog_put(cat, key, klen, data, len, 10, errmsg);
    }
    free(key);
    return r;
}

Test(badvalues, corpus_has_enough_cases)
{
    char **names;
    size_t n = list_cases(&names);

    cr_assert_geq(n, 60, "only %zu cases in " CORPUS, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

Test(badvalues, every_case_is_refused_counted_and_reaches_nothing)
{
    struct config cfg;
    struct output base = {0};
    struct catalog *cat;
    char **names, *err = NULL;
    size_t n;

    cr_assert_eq(config_load_string(config_json, &cfg, &err), 0, "%s", err ? err : "");
    cat = baseline_catalog();
    pipeline(&cfg, cat, &base);
    catalog_free(cat);
    /* the baseline itself is what we expect HAProxy to be told */
    cr_assert_not_null(strstr(base.wire, "set server web/s1 addr 127.0.0.2 port 8080;"));
    assert_clean("baseline socket", base.wire, base.wire_len, true);

    n = list_cases(&names);
    for (size_t i = 0; i < n; i++) {
        struct output got = {0};
        size_t len;
        char *data = read_case(names[i], &len);
        int r;

        /* 1: the case alone, next to the baseline */
        cat = baseline_catalog();
        r = put_case(cat, names[i], data, len, &err);
        cr_assert_eq(r, CATALOG_REJECTED, "%s: not refused (%d)", names[i], r);
        cr_assert_not_null(err, "%s: refused without a reason", names[i]);
        cr_assert_eq(cat->rejected, 1, "%s: counted %llu times", names[i], cat->rejected);
        cr_assert_eq(catalog_count(cat), 2, "%s: the catalog changed", names[i]);
        cr_assert_eq(cat->n_services, 2, "%s: a service appeared", names[i]);
        free(err);
        err = NULL;
        pipeline(&cfg, cat, &got);
        check_output(names[i], &got, &base, data, len);
        output_free(&got);
        catalog_free(cat);

        /* 2: a value case over a valid endpoint removes it */
        if (has_suffix(names[i], ".value")) {
            static const char good[] = "127.0.0.5:6060";
            char *key;
            int klen = asprintf(&key, PREFIX "web/%.*s", (int)(strlen(names[i]) - 6), names[i]);

            cat = baseline_catalog();
            cr_assert_eq(catalog_put(cat, key, (size_t)klen, good, strlen(good), 5, NULL),
                         CATALOG_ADDED);
            free(key);
            r = put_case(cat, names[i], data, len, NULL);
            cr_assert_eq(r, CATALOG_REJECTED, "%s over a valid endpoint: %d", names[i], r);
            cr_assert_eq(cat->rejected, 1);
            cr_assert_eq(catalog_count(cat), 2, "%s: the old endpoint stayed", names[i]);
            memset(&got, 0, sizeof(got));
            pipeline(&cfg, cat, &got);
            check_output(names[i], &got, &base, data, len);
            output_free(&got);
            catalog_free(cat);
        }
        free(data);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    output_free(&base);
    config_free(&cfg);
}
