/* Tests for runtime: the transport (addresses, refused commands, batches cut
 * into CLI lines, an exchange finished in the background). What HAProxy's
 * replies say is tests/test_reply.c's. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ev.h>

#include <slotsync/runtime.h>

Test(runtime, new_rejects_bad_addresses)
{
    const char *bad[] = {"localhost",       "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
                         "host.example:80", "[::1]",      "[zz]:80"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        cr_assert_null(runtime_new(NULL, bad[k], 1), "%s", bad[k]);
    const char *good[] = {"/run/haproxy/admin.sock", "127.0.0.1:9999", "[::1]:9999",
                          "localhost:9999"};
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        struct runtime *rt = runtime_new(NULL, good[k], 1);

        cr_assert_not_null(rt, "%s", good[k]);
        runtime_free(rt);
    }
}

Test(runtime, send_refuses_command_injection)
{
    struct runtime *rt = runtime_new(NULL, "/nonexistent/sock", 1);
    const char *inj[] = {"set server a/s1 state ready;shutdown sessions server a/s1"};
    const char *nl[] = {"set server a/s1 state ready\nshow info"};
    const char *empty[] = {""};

    cr_assert_not_null(rt);
    cr_assert_eq(runtime_send(rt, inj, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send(rt, nl, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send(rt, empty, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send_raw(rt, "reload\nquit", NULL, NULL), -EINVAL);
    cr_assert_not(runtime_busy(rt));
    runtime_free(rt);
}

/* ---- a timed-out exchange is finished, not dropped ---- */

struct stale_test {
    int calls, err;
};

static void stale_cb(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    struct stale_test *t = arg;

    t->calls++;
    t->err = err;
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void run_for(struct ev_loop *loop, double s)
{
    ev_timer t;

    ev_timer_init(&t, stop_loop, s, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

Test(runtime, timed_out_exchange_is_finished_in_the_background)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/test_runtime.XXXXXX", line[256];
    const char *cmds[] = {"set server b/s1 state ready"};
    struct stale_test t = {0};
    struct runtime *rt;
    int lfd, cfd;
    ssize_t got;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/admin.sock", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    rt = runtime_new(loop, sun.sun_path, 0.05);
    cr_assert_not_null(rt);
    /* A "stopped HAProxy": the connection waits in the backlog. */
    cr_assert_eq(runtime_send(rt, cmds, 1, stale_cb, &t), 0);
    run_for(loop, 0.2);
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.err, -ETIMEDOUT);
    cr_assert(runtime_busy(rt), "still finishing the old exchange");
    cr_assert(runtime_stale(rt));
    cr_assert_eq(runtime_send(rt, cmds, 1, stale_cb, &t), -EBUSY);
    /* It resumes: reads the whole line, answers and closes. */
    cfd = accept(lfd, NULL, NULL);
    cr_assert_geq(cfd, 0);
    got = read(cfd, line, sizeof(line) - 1);
    cr_assert_eq(got, (ssize_t)strlen(cmds[0]) + 1);
    cr_assert_eq(write(cfd, "\n", 1), 1);
    close(cfd);
    for (int i = 0; i < 50 && runtime_busy(rt); i++)
        run_for(loop, 0.01);
    cr_assert_not(runtime_busy(rt));
    cr_assert_not(runtime_stale(rt));
    cr_assert_eq(t.calls, 1, "no second callback");
    cr_assert_eq(runtime_stale_abandoned(rt), 0);
    runtime_free(rt);
    close(lfd);
    unlink(sun.sun_path);
    rmdir(dir);
    ev_loop_destroy(loop);
}

/* ---- batches cut into CLI lines (HAProxy 3.1+ refuses a line longer than
 * tune.bufsize) ---- */

struct join_case {
    const char *name;
    const char *cmds[4];
    size_t n, line_max;
    int ret;
    const char *text;
};

static const struct join_case join_cases[] = {
    {"one command", {"show info"}, 1, 64, 1, "show info\n"},
    {"all on one line", {"a b", "c d", "e"}, 3, 64, 1, "a b;c d;e\n"},
    /* "a b;c d\n" is 8 bytes: exactly line_max */
    {"exactly full", {"a b", "c d", "e"}, 3, 8, 2, "a b;c d\ne\n"},
    {"one byte short", {"a b", "c d", "e"}, 3, 7, 2, "a b\nc d;e\n"},
    {"a command longer than a line has its own",
     {"x", "0123456789", "y"},
     3,
     4,
     3,
     "x\n0123456789\ny\n"},
    {"empty command", {"a", ""}, 2, 64, -EINVAL, NULL},
    {"semicolon", {"a;b"}, 1, 64, -EINVAL, NULL},
    {"newline", {"a\nb"}, 1, 64, -EINVAL, NULL},
    {"carriage return", {"a\rb"}, 1, 64, -EINVAL, NULL},
    {"no command", {NULL}, 0, 64, -EINVAL, NULL},
};

Test(runtime, join_lines_table)
{
    for (size_t i = 0; i < sizeof(join_cases) / sizeof(join_cases[0]); i++) {
        const struct join_case *c = &join_cases[i];
        char *out = NULL;
        size_t len = 0;
        int r = runtime_join_lines(c->cmds, c->n, c->line_max, &out, &len);

        cr_assert_eq(r, c->ret, "%s: %d", c->name, r);
        if (r < 0) {
            cr_assert_null(out, "%s", c->name);
            continue;
        }
        cr_assert_str_eq(out, c->text, "%s", c->name);
        cr_assert_eq(len, strlen(c->text), "%s", c->name);
        free(out);
    }
}

/* A CLI as HAProxy 3.1+ has it: one line per connection, one empty reply
 * per command, and a line longer than its buffer refused as a whole. */
#define FAKE_BUFSIZE 16384

struct fake_cli {
    struct ev_loop *loop;
    ev_io accept_w, conn_w;
    int lfd, cfd;
    char buf[FAKE_BUFSIZE + 1];
    size_t len, connections, longest, commands;
    int calls, err;
    size_t replies;
};

static void fake_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_cli *f = w->data;
    ssize_t got = read(f->cfd, f->buf + f->len, sizeof(f->buf) - f->len);
    char *nl;

    if (got > 0)
        f->len += (size_t)got;
    nl = memchr(f->buf, '\n', f->len);
    if (!nl && f->len < sizeof(f->buf) && got > 0)
        return;
    if (!nl) {
        const char *msg = "The command line is too big for the buffer size. Please change "
                          "tune.bufsize in the configuration to use a bigger command.\n";

        cr_assert_eq(write(f->cfd, msg, strlen(msg)), (ssize_t)strlen(msg));
    } else {
        size_t line = (size_t)(nl - f->buf) + 1;

        if (line > f->longest)
            f->longest = line;
        for (char *p = f->buf; p < nl; p++)
            if (*p == ';')
                f->commands++;
        f->commands++;
        for (char *p = f->buf; p <= nl; p++)
            if (*p == ';' || *p == '\n')
                cr_assert_eq(write(f->cfd, "\n", 1), 1);
    }
    ev_io_stop(loop, w);
    close(f->cfd);
    f->cfd = -1;
    f->len = 0;
}

static void fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_cli *f = w->data;

    if (f->cfd >= 0)
        return; /* one at a time: the next waits in the backlog */
    f->cfd = accept(f->lfd, NULL, NULL);
    if (f->cfd < 0)
        return;
    f->connections++;
    ev_io_init(&f->conn_w, fake_conn, f->cfd, EV_READ);
    f->conn_w.data = f;
    ev_io_start(loop, &f->conn_w);
}

static void fake_done(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    struct fake_cli *f = arg;

    f->calls++;
    f->err = err;
    f->replies = replies ? n : 0;
    ev_break(f->loop, EVBREAK_ALL);
}

Test(runtime, a_batch_longer_than_a_cli_line_goes_out_in_lines)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/test_runtime.XXXXXX";
    enum { N = 3000 }; /* about 80 kB of commands */
    static char text[N][48];
    const char *cmds[N];
    struct fake_cli f = {.loop = loop, .cfd = -1};
    struct runtime *rt;

    for (size_t i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "set server web/s%zu addr 127.0.0.1 port 8080", i + 1);
        cmds[i] = text[i];
    }
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/admin.sock", dir);
    f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_geq(f.lfd, 0);
    cr_assert_eq(bind(f.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(f.lfd, 4), 0);
    ev_io_init(&f.accept_w, fake_accept, f.lfd, EV_READ);
    f.accept_w.data = &f;
    ev_io_start(loop, &f.accept_w);
    rt = runtime_new(loop, sun.sun_path, 5);
    cr_assert_not_null(rt);
    cr_assert_eq(runtime_send(rt, cmds, N, fake_done, &f), 0);
    ev_run(loop, 0);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.err, 0, "%d", f.err);
    cr_assert_eq(f.replies, N, "every reply, in one list");
    cr_assert_eq(f.commands, N);
    cr_assert_gt(f.connections, 1, "the batch was cut");
    cr_assert_leq(f.longest, RUNTIME_LINE_MAX);
    cr_assert_not(runtime_busy(rt));
    runtime_free(rt);
    ev_io_stop(loop, &f.accept_w);
    close(f.lfd);
    unlink(sun.sun_path);
    rmdir(dir);
    ev_loop_destroy(loop);
}
