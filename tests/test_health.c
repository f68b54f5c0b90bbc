/* test_health - the rise/fall counter (table-driven) and the TCP check
 * runner against a real listening socket on 127.0.0.1. */
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

#include <slotsync/endpoint.h>
#include <slotsync/health.h>

/* ---- rise / fall ---- */

struct health_case {
    int rise, fall;
    const char *results; /* 'o' ok, 'x' failed */
    const char *changes; /* per result: '.' same, 'U' up, 'D' down */
};

Test(health, sequences)
{
    static const struct health_case cases[] = {
        /* the very first success registers, whatever rise is */
        {2, 3, "o", "U"},
        {5, 3, "xxxxo", "....U"},
        {2, 3, "oooo", "U..."},
        /* fall consecutive failures withdraw */
        {2, 3, "oxxx", "U..D"},
        {2, 3, "oxxoxxoxx", "U........"},
        {2, 1, "ox", "UD"},
        /* after a withdrawal, rise consecutive successes are needed */
        {2, 3, "oxxxoo", "U..D.U"},
        {2, 3, "oxxxoxoo", "U..D...U"},
        {3, 2, "oxxooxooo", "U.D.....U"},
        {1, 1, "oxoxo", "UDUDU"},
        /* failures beyond fall while down change nothing */
        {2, 3, "oxxxxxxx", "U..D...."},
        /* never up: failures alone do nothing */
        {2, 3, "xxxxxx", "......"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct health_case *c = &cases[i];
        struct health_counter h;

        cr_assert_eq(strlen(c->results), strlen(c->changes), "case %zu is malformed", i);
        health_counter_init(&h, c->rise, c->fall);
        cr_expect_not(h.up);
        for (size_t k = 0; c->results[k]; k++) {
            enum health_change got = health_counter_report(&h, c->results[k] == 'o');
            char g = got == HEALTH_UP ? 'U' : got == HEALTH_DOWN ? 'D' : '.';

            cr_expect_eq(g, c->changes[k], "case %zu (%s) step %zu: got %c want %c", i, c->results,
                         k, g, c->changes[k]);
        }
    }
}

Test(health, up_flag_follows_changes)
{
    struct health_counter h;

    health_counter_init(&h, 2, 2);
    health_counter_report(&h, true);
    cr_expect(h.up);
    health_counter_report(&h, false);
    cr_expect(h.up);
    health_counter_report(&h, false);
    cr_expect_not(h.up);
    cr_expect(h.ever_up);
}

Test(health, counters_do_not_overflow)
{
    struct health_counter h;

    health_counter_init(&h, 3, 3);
    for (int i = 0; i < 100000; i++)
        health_counter_report(&h, false);
    cr_expect_leq(h.failures, 3);
    for (int i = 0; i < 100000; i++)
        health_counter_report(&h, true);
    cr_expect_leq(h.successes, 3);
    cr_expect(h.up);
}

/* ---- the runner ---- */

struct results {
    int ok, failed;
    char why[128];
    bool stop_after_one;
    struct health_check *hc;
};

static void on_result(bool ok, const char *why, void *arg)
{
    struct results *r = arg;

    if (ok)
        r->ok++;
    else
        r->failed++;
    snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
    if (r->stop_after_one || r->ok + r->failed >= 2) {
        health_check_stop(r->hc);
        ev_break(r->hc->loop, EVBREAK_ALL);
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* A listening socket on 127.0.0.1 and a free port; *port is its port. */
static int listener(unsigned short *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, 8), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void run_tcp(unsigned short port, struct results *r)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct health_check hc;
    struct endpoint ep;
    char text[32];
    ev_timer deadline;

    cr_assert_not_null(loop);
    memset(&ep, 0, sizeof(ep));
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    cr_assert_eq(endpoint_parse_hostport(text, strlen(text), &ep), 0);
    /* a short interval: the second check comes 0.05 s after the first */
    health_check_init(&hc, loop, NULL, HEALTH_TCP, &ep, NULL, 0.05, on_result, r);
    r->hc = &hc;
    ev_timer_init(&deadline, on_deadline, 10., 0.);
    ev_timer_start(loop, &deadline);
    health_check_start(&hc);
    ev_run(loop, 0);
    health_check_stop(&hc);
    ev_timer_stop(loop, &deadline);
    ev_loop_destroy(loop);
}

Test(health, tcp_check_passes_on_a_listener_twice)
{
    unsigned short port;
    int fd = listener(&port);
    struct results r = {0};

    run_tcp(port, &r);
    close(fd);
    cr_expect_eq(r.ok, 2, "ok %d failed %d (%s)", r.ok, r.failed, r.why);
    cr_expect_eq(r.failed, 0);
}

Test(health, tcp_check_fails_on_a_closed_port)
{
    unsigned short port;
    int fd = listener(&port);
    struct results r = {.stop_after_one = true};

    close(fd); /* nothing listens there now */
    run_tcp(port, &r);
    cr_expect_eq(r.failed, 1, "ok %d failed %d", r.ok, r.failed);
    cr_expect_eq(r.ok, 0);
    cr_expect_str_eq(r.why, strerror(ECONNREFUSED));
}

Test(health, stop_on_a_zeroed_check_is_safe)
{
    struct health_check hc;

    memset(&hc, 0, sizeof(hc));
    health_check_stop(&hc);
}
