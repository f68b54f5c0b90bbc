/* Tests for reload: the "show proc" parser (pure) and the check child on a
 * real loop with the real haproxy binary when it is installed. */
#include <criterion/criterion.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ev.h>

#include <slotsync/clock.h>
#include <slotsync/reload.h>
#include <slotsync/timeouts.h>

#define HAPROXY "/usr/sbin/haproxy"

struct proc_case {
    const char *name, *text;
    int ret;
    unsigned long reloads, failed;
};

static const struct proc_case proc_cases[] = {
    {"fresh",
     "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
     "2469            master          0 [failed: 0]   0d00h00m16s     2.6.12-1+deb12u4\n"
     "# workers\n"
     "2470            worker          0               0d00h00m16s     2.6.12-1+deb12u4\n"
     "# programs\n\n",
     0, 0, 0},
    {"after a failed reload",
     "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
     "30486           master          1 [failed: 1]   0d00h00m04s     2.6.12-1+deb12u4\n"
     "# workers\n"
     "30487           worker          1               0d00h00m04s     2.6.12-1+deb12u4\n",
     0, 1, 1},
    {"worker line first", "7 worker 3 0d 2.6\n8 master 12 [failed: 2] 0d 2.6\n", 0, 12, 2},
    {"no master line", "# workers\n2470 worker 0 0d00h00m16s 2.6\n", -EPROTO, 0, 0},
    {"garbage counters", "2469 master x [failed: 0] 0d 2.6\n", -EPROTO, 0, 0},
    {"empty", "", -EPROTO, 0, 0},
    {"an error message", "Unknown command: 'show proc'\n", -EPROTO, 0, 0},
};

Test(reload, parse_show_proc_table)
{
    for (size_t k = 0; k < sizeof(proc_cases) / sizeof(proc_cases[0]); k++) {
        const struct proc_case *tc = &proc_cases[k];
        unsigned long r = 99, f = 99;

        cr_assert_eq(reload_parse_show_proc(tc->text, &r, &f), tc->ret, "%s", tc->name);
        if (tc->ret == 0) {
            cr_assert_eq(r, tc->reloads, "%s: reloads %lu", tc->name, r);
            cr_assert_eq(f, tc->failed, "%s: failed %lu", tc->name, f);
        }
    }
}

/* The master CLI's answers to "reload" (src/mworker.c cli_parse_reload()
 * and the startup-log dump after it), by version. */
struct reply_case {
    const char *version, *name, *text;
    enum reload_verdict verdict;
    const char *log; /* NULL: none */
};

#define NOTICE_START "[NOTICE]   (4242) : haproxy version is 3.0.11-9e587df\n"
#define ALERT_KW                                                                                   \
    "[ALERT]    (4242) : config : parsing [/tmp/services.cfg:7] : unknown keyword 'balanse' in "   \
    "'backend' section\n"
#define ALERT_FATAL "[ALERT]    (4242) : config : Fatal errors found in configuration.\n"

static const struct reply_case reply_cases[] = {
    {"2.6", "closes without a word", "", RELOAD_REPLY_NONE, NULL},
    {"3.0", "success, no startup log kept", "Success=1\n", RELOAD_REPLY_OK, NULL},
    {"3.0", "success and its log",
     "Success=1\n--\n" NOTICE_START "[NOTICE]   (4242) : path to executable is /usr/sbin/haproxy\n",
     RELOAD_REPLY_OK, NULL},
    {"3.0", "success with a warning",
     "Success=1\n--\n" NOTICE_START
     "[WARNING]  (4242) : config : missing timeouts for backend 'x'.\n",
     RELOAD_REPLY_OK, "[WARNING]  (4242) : config : missing timeouts for backend 'x'."},
    {"3.0", "failure: HAProxy's own error lines",
     "Success=0\n--\n" NOTICE_START ALERT_KW ALERT_FATAL, RELOAD_REPLY_FAILED,
     "[ALERT]    (4242) : config : parsing [/tmp/services.cfg:7] : unknown keyword 'balanse' in "
     "'backend' section | [ALERT]    (4242) : config : Fatal errors found in configuration."},
    {"3.2", "failure without a log", "Success=0\n", RELOAD_REPLY_FAILED, NULL},
    {"3.2", "another reload in progress", "Success=0\n--\nAnother reload is still in progress.\n",
     RELOAD_REPLY_BUSY, NULL},
    {"3.4", "another reload in progress", "Success=0\n--\nAnother reload is still in progress.\n",
     RELOAD_REPLY_BUSY, NULL},
    {"3.4", "success once the worker is ready",
     "Success=1\n--\n" NOTICE_START "[NOTICE]   (4243) : Loading success.\n", RELOAD_REPLY_OK,
     NULL},
    /* what no version says */
    {"any", "busy text after a success", "Success=1\n--\nAnother reload is still in progress.\n",
     RELOAD_REPLY_OK, "Another reload is still in progress."},
    {"any", "busy text and more",
     "Success=0\n--\nAnother reload is still in progress.\n" ALERT_FATAL, RELOAD_REPLY_FAILED,
     "[ALERT]    (4242) : config : Fatal errors found in configuration."},
    {"any", "verdict with a tail", "Success=1 maybe\n", RELOAD_REPLY_UNKNOWN, NULL},
    {"any", "no separator", "Success=1\n" NOTICE_START, RELOAD_REPLY_UNKNOWN, NULL},
    {"any", "an error message", "Permission denied\n", RELOAD_REPLY_UNKNOWN, NULL},
    {"any", "Success=2", "Success=2\n", RELOAD_REPLY_UNKNOWN, NULL},
};

Test(reload, parse_reload_reply_table)
{
    for (size_t k = 0; k < sizeof(reply_cases) / sizeof(reply_cases[0]); k++) {
        const struct reply_case *tc = &reply_cases[k];
        struct reload_reply rr;

        cr_assert_eq(reload_parse_reply(tc->text, strlen(tc->text), &rr), 0);
        cr_expect_eq(rr.verdict, tc->verdict, "HAProxy %s, %s: verdict %d", tc->version, tc->name,
                     rr.verdict);
        if (tc->log)
            cr_expect(rr.log && strcmp(rr.log, tc->log) == 0, "HAProxy %s, %s: log \"%s\"",
                      tc->version, tc->name, rr.log ? rr.log : "(none)");
        else
            cr_expect_null(rr.log, "HAProxy %s, %s: log \"%s\"", tc->version, tc->name, rr.log);
        reload_reply_clear(&rr);
    }
}

struct outcome {
    bool called;
    int err;
    char text[2048];
};

static void on_done(int err, const char *errtext, void *arg)
{
    struct outcome *o = arg;

    o->called = true;
    o->err = err;
    snprintf(o->text, sizeof(o->text), "%s", errtext ? errtext : "");
    ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* Run the check of a candidate holding text; returns what the callback saw. */
static struct outcome run_check(const char *bin, const char *text)
{
    struct ev_loop *loop = EV_DEFAULT;
    char path[] = "/tmp/slotsync-test-candidate-XXXXXX";
    struct outcome o = {0};
    struct reloader *r;
    ev_timer guard;
    char pattern[64];
    glob_t g;
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    r = reloader_new(loop, bin, NULL, NULL, NULL);
    cr_assert_not_null(r);
    cr_assert_not(reloader_can_reload(r));
    cr_assert_eq(reloader_check(r, path, on_done, &o), 0);
    cr_assert(reloader_busy(r));
    /* The output goes to memory: a SIGKILL now would leave no file. */
    snprintf(pattern, sizeof(pattern), "/tmp/slotsync-check.%ld.*", (long)getpid());
    cr_assert_eq(glob(pattern, 0, NULL, &g), GLOB_NOMATCH, "the check's output is in a file");
    globfree(&g);
    cr_assert_eq(reloader_check(r, path, on_done, &o), -EBUSY);
    ev_timer_init(&guard, on_timeout, 20., 0.);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    ev_timer_stop(loop, &guard);
    cr_assert(o.called, "the check never finished");
    cr_assert_not(reloader_busy(r));
    reloader_free(r);
    unlink(path);
    return o;
}

Test(reload, check_accepts_a_valid_file)
{
    struct outcome o;

    if (access(HAPROXY, X_OK) != 0)
        cr_skip_test("no %s", HAPROXY);
    o = run_check(HAPROXY,
                  "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                  "    timeout server 1s\nbackend web\n    server s1 0.0.0.0:0 disabled\n"
                  "frontend web\n    bind 127.0.0.1:1\n    default_backend web\n");
    cr_assert_eq(o.err, 0, "%s", o.text);
}

Test(reload, check_reports_haproxys_own_error)
{
    struct outcome o;

    if (access(HAPROXY, X_OK) != 0)
        cr_skip_test("no %s", HAPROXY);
    o = run_check(HAPROXY, "backend web\n    server s1 0.0.0.0:0 check inter notatime\n");
    cr_assert_lt(o.err, 0);
    cr_assert_not_null(strstr(o.text, "ALERT"), "%s", o.text);
    cr_assert_not_null(strstr(o.text, "inter"), "%s", o.text);
    cr_assert_null(strstr(o.text, "NOTICE"), "notices are trimmed: %s", o.text);
}

Test(reload, check_refuses_a_file_haproxy_could_not_start_with)
{
    struct outcome o;

    if (access(HAPROXY, X_OK) != 0)
        cr_skip_test("no %s", HAPROXY);
    /* valid syntax, but no listener: HAProxy would not start (exit 2) */
    o = run_check(HAPROXY, "backend web\n    server s1 0.0.0.0:0 disabled\n");
    cr_assert_lt(o.err, 0);
    cr_assert_not_null(strstr(o.text, "exited with 2"), "%s", o.text);
}

Test(reload, check_reports_a_missing_binary)
{
    struct outcome o = run_check("/nonexistent/haproxy", "backend web\n");

    cr_assert_lt(o.err, 0);
    cr_assert_not_null(strstr(o.text, "127"), "%s", o.text);
}

Test(reload, reload_without_a_way_is_refused)
{
    struct reloader *r = reloader_new(EV_DEFAULT, "haproxy", NULL, NULL, NULL);
    struct outcome o = {0};

    cr_assert_not_null(r);
    cr_assert_eq(reloader_reload(r, 1.0, on_done, &o), -ENOTSUP);
    cr_assert_not(o.called);
    reloader_free(r);
}

Test(reload, reload_command_runs_and_reports_its_status)
{
    struct ev_loop *loop = EV_DEFAULT;
    const char *cmds[] = {"exit 0", "echo broken >&2; exit 3"};

    for (int k = 0; k < 2; k++) {
        struct reloader *r = reloader_new(loop, "haproxy", NULL, NULL, cmds[k]);
        struct outcome o = {0};

        cr_assert(reloader_can_reload(r));
        cr_assert_eq(reloader_reload(r, 10.0, on_done, &o), 0);
        ev_run(loop, 0);
        cr_assert(o.called);
        if (k == 0) {
            cr_assert_eq(o.err, 0, "%s", o.text);
        } else {
            cr_assert_lt(o.err, 0);
            cr_assert_not_null(strstr(o.text, "exited with 3"), "%s", o.text);
            cr_assert_not_null(strstr(o.text, "broken"), "%s", o.text);
        }
        reloader_free(r);
    }
}

Test(reload, a_bad_master_address_is_refused)
{
    cr_assert_null(reloader_new(EV_DEFAULT, "haproxy", NULL, "not-an-address", NULL));
}

/* issue 19 item 4: the last reload as HAProxy knows it, for a slotsync that
 * (re)started after it: the newest current worker's uptime. */
Test(reload, parse_worker_uptime_table)
{
    static const struct {
        const char *name, *text;
        int ret;
        long uptime;
    } cases[] = {
        {"2.6 after a reload",
         "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
         "3545            master          1 [failed: 0]   0d00h00m03s     2.6.12-1+deb12u4\n"
         "# workers\n"
         "3600            worker          0               0d00h00m02s     2.6.12-1+deb12u4\n"
         "# programs\n\n",
         0, 2},
        {"old workers still finishing",
         "#<PID> <type> <reloads> <uptime> <version>\n"
         "1 master 4 [failed: 0] 2d03h04m05s 3.0.5\n"
         "# workers\n"
         "9 worker 0 0d01h02m03s 3.0.5\n"
         "# old workers\n"
         "7 worker 1 0d05h00m00s 3.0.5\n"
         "# programs\n",
         0, 3723},
        {"two current workers: the newest",
         "# workers\n9 worker 0 1d00h00m00s 3.1\n"
         "10 worker 0 0d00h00m30s 3.1\n",
         0, 30},
        {"no worker", "1 master 0 [failed: 0] 0d00h00m01s 2.6\n# workers\n# programs\n", -EPROTO,
         0},
        {"bad uptime", "# workers\n9 worker 0 yesterday 2.6\n", -EPROTO, 0},
        {"minutes out of range", "# workers\n9 worker 0 0d00h75m00s 2.6\n", -EPROTO, 0},
        {"an error", "Unknown command: 'show proc'\n", -EPROTO, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long up = -7;

        cr_expect_eq(reload_parse_worker_uptime(cases[i].text, &up), cases[i].ret, "%s",
                     cases[i].name);
        if (cases[i].ret == 0)
            cr_expect_eq(up, cases[i].uptime, "%s: %ld", cases[i].name, up);
    }
}

/* ---- the master socket's reply, on a fake master ---- */

/* One unix socket that answers "show proc" with a master line and each
 * "reload" with the next of its replies (the last one again when they run
 * out), then closes, as HAProxy's master does. */
struct fake_master {
    char path[108];
    int lfd;
    ev_io accept_w;
    const char *replies[4];
    size_t n_replies, reloads_asked;
    unsigned long reloads, failed;
    bool silent_counts; /* 2.6: an empty reply, the master line counts it */
    /* A reload slower than the master socket timeout, as 3.1+ answers
     * once the new worker is ready: "reload" is answered "Success=1" only
     * count_after_s after it was asked, and "show proc" counts it then. */
    bool hold_reload;
    double count_after_s;
    int held_fd;
    ev_timer late;
};

struct fake_conn {
    struct fake_master *m;
    ev_io w;
    char buf[64];
    size_t len;
};

/* false: the connection is held open, unanswered */
static bool fake_answer(struct fake_conn *c, int fd)
{
    struct fake_master *m = c->m;
    char out[512];
    int n = 0;

    if (m->hold_reload && strncmp(c->buf, "reload\n", 7) == 0) {
        m->reloads_asked++;
        m->held_fd = fd;
        ev_timer_start(EV_DEFAULT, &m->late);
        return false;
    }
    if (strncmp(c->buf, "show proc\n", 10) == 0) {
        n = snprintf(out, sizeof(out),
                     "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
                     "100             master          %lu [failed: %lu]   0d00h00m01s     3.2.0\n"
                     "# workers\n",
                     m->reloads, m->failed);
    } else if (strncmp(c->buf, "reload\n", 7) == 0) {
        const char *rep =
            m->replies[m->reloads_asked < m->n_replies ? m->reloads_asked : m->n_replies - 1];

        m->reloads_asked++;
        if (strncmp(rep, "Success=1", 9) == 0 || (!rep[0] && m->silent_counts))
            m->reloads++;
        else if (strstr(rep, "in progress") == NULL && strncmp(rep, "Success=0", 9) == 0) {
            m->reloads++;
            m->failed++;
        }
        n = snprintf(out, sizeof(out), "%s", rep);
    }
    if (n > 0 && write(fd, out, (size_t)n) < 0)
        cr_log_warn("fake master: write: %s", strerror(errno));
    return true;
}

static void on_fake_late(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fake_master *m = w->data;
    static const char ok[] = "Success=1\n--\n";

    m->reloads = 1;
    if (write(m->held_fd, ok, sizeof(ok) - 1) < 0)
        cr_log_warn("fake master: write: %s", strerror(errno));
    close(m->held_fd);
    m->held_fd = -1;
}

static void on_fake_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_conn *c = w->data;
    ssize_t k = read(w->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);

    if (k > 0) {
        c->len += (size_t)k;
        c->buf[c->len] = '\0';
        if (!strchr(c->buf, '\n') && c->len < sizeof(c->buf) - 1)
            return;
        if (!fake_answer(c, w->fd)) {
            ev_io_stop(loop, w); /* held: fake_stop closes it */
            free(c);
            return;
        }
    }
    ev_io_stop(loop, w);
    close(w->fd);
    free(c);
}

static void on_fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_master *m = w->data;
    int fd = accept(m->lfd, NULL, NULL);
    struct fake_conn *c;

    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->m = m;
    ev_io_init(&c->w, on_fake_read, fd, EV_READ);
    c->w.data = c;
    ev_io_start(loop, &c->w);
}

static void fake_start(struct fake_master *m, struct ev_loop *loop)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/test_reload.XXXXXX";

    cr_assert_not_null(mkdtemp(dir));
    snprintf(m->path, sizeof(m->path), "%s/master.sock", dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m->path);
    m->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(m->lfd, 0);
    cr_assert_eq(bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(m->lfd, 8), 0);
    ev_io_init(&m->accept_w, on_fake_accept, m->lfd, EV_READ);
    m->accept_w.data = m;
    m->held_fd = -1;
    ev_timer_init(&m->late, on_fake_late, m->count_after_s, 0.);
    m->late.data = m;
    ev_io_start(loop, &m->accept_w);
}

static void fake_stop(struct fake_master *m, struct ev_loop *loop)
{
    char dir[sizeof(m->path)];

    ev_io_stop(loop, &m->accept_w);
    close(m->lfd);
    ev_timer_stop(loop, &m->late);
    if (m->held_fd >= 0)
        close(m->held_fd);
    unlink(m->path);
    snprintf(dir, sizeof(dir), "%s", m->path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static struct outcome reload_on_fake_within(struct fake_master *m, double timeout_s)
{
    struct ev_loop *loop = EV_DEFAULT;
    struct outcome o = {0};
    struct reloader *r;

    fake_start(m, loop);
    r = reloader_new(loop, "haproxy", NULL, m->path, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(reloader_reload(r, timeout_s, on_done, &o), 0);
    ev_run(loop, 0);
    cr_assert(o.called);
    reloader_free(r);
    fake_stop(m, loop);
    return o;
}

static struct outcome reload_on_fake(struct fake_master *m)
{
    return reload_on_fake_within(m, 10.0);
}

/* 3.1+: "Another reload is still in progress." is asked again, with
 * backoff, until the master takes it. */
Test(reload, another_reload_in_progress_is_retried)
{
    struct fake_master m = {.replies = {"Success=0\n--\nAnother reload is still in progress.\n",
                                        "Success=0\n--\nAnother reload is still in progress.\n",
                                        "Success=1\n--\n[NOTICE]   (101) : Loading success.\n"},
                            .n_replies = 3};
    struct outcome o = reload_on_fake(&m);

    cr_expect_eq(o.err, 0, "%s", o.text);
    cr_expect_eq(m.reloads_asked, 3);
}

/* 3.0+: the verdict and HAProxy's own error lines, from the reply. */
Test(reload, a_refused_reload_says_haproxys_words)
{
    struct fake_master m = {
        .replies = {"Success=0\n--\n[NOTICE]   (101) : haproxy version is 3.2.0\n"
                    "[ALERT]    (101) : config : parsing [s.cfg:3] : unknown keyword 'balanse'\n"},
        .n_replies = 1};
    struct outcome o = reload_on_fake(&m);

    cr_expect_eq(o.err, -EIO);
    cr_expect_not_null(strstr(o.text, "Success=0"), "%s", o.text);
    cr_expect_not_null(strstr(o.text, "unknown keyword 'balanse'"), "%s", o.text);
    cr_expect_null(strstr(o.text, "NOTICE"), "%s", o.text);
    cr_expect_eq(m.reloads_asked, 1);
}

Test(reload, an_accepted_reload_needs_no_show_proc_after)
{
    struct fake_master m = {.replies = {"Success=1\n"}, .n_replies = 1};
    struct outcome o = reload_on_fake(&m);

    cr_expect_eq(o.err, 0, "%s", o.text);
    cr_expect_eq(m.reloads_asked, 1);
}

/* 2.6: nothing in the reply; "show proc" counts tell. */
Test(reload, a_silent_reload_is_confirmed_by_show_proc)
{
    struct fake_master m = {.replies = {""}, .n_replies = 1, .silent_counts = true};
    struct outcome o = reload_on_fake(&m);

    cr_expect_eq(o.err, 0, "%s", o.text);
    cr_expect_eq(m.reloads_asked, 1);
}

/* 3.1+ answers "reload" once the new worker is ready: a reload slower than
 * the master socket's timeout (10 s) is still running, not failed. Here the
 * answer comes 1.5 s after that timeout, past the reload's own deadline (the
 * timeout + 0.5 s), and show proc counts the reload from then on:
 * confirmed, not a failure. */
Test(reload, a_reload_slower_than_the_master_timeout_is_not_failed, .timeout = 60)
{
    struct fake_master m = {.replies = {""},
                            .n_replies = 1,
                            .hold_reload = true,
                            .count_after_s = MASTER_TIMEOUT_S + 1.5};
    struct outcome o = reload_on_fake_within(&m, MASTER_TIMEOUT_S + 0.5);

    cr_expect_eq(o.err, 0, "%s", o.text);
    cr_expect_eq(m.reloads_asked, 1);
    cr_expect_eq(m.reloads, 1);
}
