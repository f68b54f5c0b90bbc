/* Tests for reload: the "show proc" parser (pure) and the check child on a
 * real loop with the real haproxy binary when it is installed. */
#include <criterion/criterion.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/reload.h>

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
