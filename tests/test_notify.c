/* Tests for notify: the status text, and the datagrams systemd would get
 * (a real AF_UNIX datagram socket stands in for NOTIFY_SOCKET). */
#include <criterion/criterion.h>

#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <slotsync/log.h>
#include <slotsync/notify.h>

struct status_case {
    struct notify_state st;
    bool ready;
    const char *text;
};

Test(notify, status_text)
{
    static const struct status_case cases[] = {
        {{false, false, false, 0, 0}, false, "waiting for etcd (first listing)"},
        {{false, true, true, 3, 1}, false, "waiting for etcd (first listing)"},
        {{true, false, true, 3, 1}, false, "waiting for HAProxy (runtime socket)"},
        {{true, true, false, 3, 2}, false, "applying changes: 3 endpoints in 2 services"},
        {{true, true, true, 1, 1}, true, "in sync: 1 endpoint in 1 service"},
        {{true, true, true, 0, 0}, true, "in sync: 0 endpoints in 0 services"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[128];
        bool ready = notify_status_text(&cases[i].st, buf, sizeof(buf));

        cr_expect_eq(ready, cases[i].ready, "case %zu", i);
        cr_expect_str_eq(buf, cases[i].text, "case %zu", i);
    }
}

static int sock_fd = -1;
static char sock_path[108];

static void open_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(sock_path, sizeof(sock_path), "/tmp/slotsync-notify-%d.sock", (int)getpid());
    unlink(sock_path);
    sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    cr_assert(sock_fd >= 0);
    strcpy(sa.sun_path, sock_path);
    cr_assert(bind(sock_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    setenv("NOTIFY_SOCKET", sock_path, 1);
    log_set_level(LOG_LEVEL_ERROR);
}

static void close_socket(void)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (sock_fd >= 0)
        close(sock_fd);
    unlink(sock_path);
}

/* The next datagram, or "" when there is none. */
static const char *next_msg(void)
{
    static char buf[512];
    ssize_t n = recv(sock_fd, buf, sizeof(buf) - 1, 0);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

TestSuite(notify_socket, .init = open_socket, .fini = close_socket);

Test(notify_socket, ready_once_after_sync_status_on_change)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct notify *n = notify_new(loop);

    cr_assert(n);
    notify_update(n, &(struct notify_state){false, false, false, 0, 0});
    cr_expect_str_eq(next_msg(), "STATUS=waiting for etcd (first listing)");
    /* the same state again: nothing */
    notify_update(n, &(struct notify_state){false, false, false, 0, 0});
    cr_expect_str_eq(next_msg(), "");
    notify_update(n, &(struct notify_state){true, false, false, 2, 1});
    cr_expect_str_eq(next_msg(), "STATUS=waiting for HAProxy (runtime socket)");
    notify_update(n, &(struct notify_state){true, true, false, 2, 1});
    cr_expect_str_eq(next_msg(), "STATUS=applying changes: 2 endpoints in 1 service");
    cr_expect(!notify_ready_sent(n));
    notify_update(n, &(struct notify_state){true, true, true, 2, 1});
    cr_expect_str_eq(next_msg(), "READY=1\nSTATUS=in sync: 2 endpoints in 1 service");
    cr_expect(notify_ready_sent(n));
    /* back to applying and in sync again: no second READY=1 */
    notify_update(n, &(struct notify_state){true, true, false, 3, 1});
    cr_expect_str_eq(next_msg(), "STATUS=applying changes: 3 endpoints in 1 service");
    notify_update(n, &(struct notify_state){true, true, true, 3, 1});
    cr_expect_str_eq(next_msg(), "STATUS=in sync: 3 endpoints in 1 service");
    /* a count change in the same phase within a second is held back */
    notify_update(n, &(struct notify_state){true, true, true, 4, 1});
    cr_expect_str_eq(next_msg(), "");
    notify_free(n);
    cr_expect_str_eq(next_msg(), "STOPPING=1\nSTATUS=stopping");
    ev_loop_destroy(loop);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

Test(notify_socket, watchdog_when_asked)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char pid[32];
    struct notify *n;
    ev_timer stop;

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "100000", 1); /* 0.1 s: a ping every 0.05 s */
    setenv("WATCHDOG_PID", pid, 1);
    n = notify_new(loop);
    cr_assert(n);
    ev_timer_init(&stop, on_stop, 0.3, 0.);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    cr_expect_str_eq(next_msg(), "WATCHDOG=1");
    cr_expect_str_eq(next_msg(), "WATCHDOG=1");
    notify_free(n);
    ev_timer_stop(loop, &stop);
    ev_loop_destroy(loop);
}

Test(notify_socket, no_watchdog_for_another_pid)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct notify *n;
    ev_timer stop;

    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    n = notify_new(loop);
    cr_assert(n);
    ev_timer_init(&stop, on_stop, 0.2, 0.);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    cr_expect_str_eq(next_msg(), "");
    notify_free(n);
    ev_loop_destroy(loop);
}
