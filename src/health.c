/* health - announce's health checks (TCP connect, HTTP GET) on the loop,
 * and the rise/fall counter of their results. */
#include <slotsync/health.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <slotsync/clock.h>
#include <slotsync/endpoint.h>
#include <slotsync/http.h>
#include <slotsync/timeouts.h>

#define CHECK_BODY_MAX (64 * 1024)

/* ---- rise/fall (pure) ---- */

void health_counter_init(struct health_counter *h, int rise, int fall)
{
    memset(h, 0, sizeof(*h));
    h->rise = rise > 0 ? rise : 1;
    h->fall = fall > 0 ? fall : 1;
}

enum health_change health_counter_report(struct health_counter *h, bool ok)
{
    if (ok) {
        h->failures = 0;
        if (h->successes < h->rise)
            h->successes++;
        if (!h->up && (!h->ever_up || h->successes >= h->rise)) {
            h->up = true;
            h->ever_up = true;
            return HEALTH_UP;
        }
        return HEALTH_SAME;
    }
    h->successes = 0;
    if (h->failures < h->fall)
        h->failures++;
    if (h->up && h->failures >= h->fall) {
        h->up = false;
        return HEALTH_DOWN;
    }
    return HEALTH_SAME;
}

/* ---- the check runner ---- */

static void check_cleanup(struct health_check *hc)
{
    ev_timer_stop(hc->loop, &hc->deadline);
    if (hc->fd >= 0) {
        ev_io_stop(hc->loop, &hc->io);
        close(hc->fd);
        hc->fd = -1;
    }
    if (hc->req) {
        http_cancel(hc->req);
        hc->req = NULL;
    }
    hc->running = false;
}

/* One check is over: report it, then schedule the next one an interval
 * after this one started, unless the callback stopped us. why (borrowed)
 * says what failed. */
static void check_finish(struct health_check *hc, bool ok, const char *why)
{
    ev_tstamp next;

    check_cleanup(hc);
    if (!hc->active)
        return;
    hc->cb(ok, ok ? NULL : why, hc->arg);
    if (!hc->active)
        return;
    next = hc->started + hc->interval_s - clock_mono();
    ev_timer_set(&hc->timer, next > 0 ? next : 0, 0.);
    ev_timer_start(hc->loop, &hc->timer);
}

static void check_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    check_finish(w->data, false, "timed out");
}

static void tcp_check_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct health_check *hc = w->data;
    socklen_t len = sizeof(int);
    int soerr = 0;

    if (getsockopt(hc->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    check_finish(hc, soerr == 0, soerr ? strerror(soerr) : NULL);
}

/* A non-blocking connect to --addr; connected = healthy. */
static void tcp_check_start(struct health_check *hc)
{
    const struct endpoint *ep = hc->addr;
    struct sockaddr_storage ss;
    struct sockaddr *sa = (struct sockaddr *)&ss;
    socklen_t slen;
    int fd, e;

    if (endpoint_sockaddr(ep->host, ep->ipv6, ep->port, &ss, &slen) < 0) {
        check_finish(hc, false, "not an IP address");
        return;
    }
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_finish(hc, false, strerror(errno));
        return;
    }
    if (connect(fd, sa, slen) == 0) {
        close(fd);
        check_finish(hc, true, NULL);
        return;
    }
    if (errno != EINPROGRESS) {
        e = errno;
        close(fd);
        check_finish(hc, false, strerror(e));
        return;
    }
    hc->fd = fd;
    ev_io_set(&hc->io, fd, EV_WRITE);
    ev_io_start(hc->loop, &hc->io);
}

static void http_check_done(struct http_request *req, int err, long status, const char *body,
                            size_t len, const char *errtext, void *arg)
{
    struct health_check *hc = arg;
    char why[64];

    hc->req = NULL; /* freed by the client once we return */
    if (err < 0) {
        check_finish(hc, false, errtext ? errtext : strerror(-err));
    } else if (status >= 200 && status < 400) {
        check_finish(hc, true, NULL);
    } else {
        snprintf(why, sizeof(why), "HTTP status %ld", status);
        check_finish(hc, false, why);
    }
}

static void http_check_start(struct health_check *hc)
{
    struct http_opts o;

    memset(&o, 0, sizeof(o));
    o.method = "GET";
    o.connect_timeout_ms = (long)(hc->timeout_s * 1000);
    o.timeout_ms = (long)(hc->timeout_s * 1000);
    o.max_body = CHECK_BODY_MAX;
    hc->req = http_request_start(hc->http, hc->url, &o, http_check_done, hc);
    if (!hc->req)
        check_finish(hc, false, "cannot start the request");
}

static void check_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct health_check *hc = w->data;

    if (!hc->active || hc->running)
        return;
    hc->running = true;
    hc->started = clock_mono();
    /* The deadline covers the whole check; check_finish stops it, even when
     * the check ends before the start function returns. */
    ev_timer_set(&hc->deadline, hc->timeout_s, 0.);
    ev_timer_start(loop, &hc->deadline);
    if (hc->kind == HEALTH_TCP)
        tcp_check_start(hc);
    else
        http_check_start(hc);
}

void health_check_init(struct health_check *hc, struct ev_loop *loop, struct http_client *http,
                       enum health_kind kind, const struct endpoint *addr, const char *url,
                       double interval_s, health_result_cb cb, void *arg)
{
    memset(hc, 0, sizeof(*hc));
    hc->loop = loop;
    hc->http = http;
    hc->kind = kind;
    hc->addr = addr;
    hc->url = url;
    hc->interval_s = interval_s;
    hc->timeout_s = fmin(CHECK_TIMEOUT_MAX_S, fmax(CHECK_TIMEOUT_MIN_S, interval_s));
    hc->cb = cb;
    hc->arg = arg;
    hc->fd = -1;
    ev_timer_init(&hc->timer, check_timer_cb, 0., 0.);
    ev_timer_init(&hc->deadline, check_deadline_cb, 0., 0.);
    ev_io_init(&hc->io, tcp_check_cb, -1, EV_WRITE);
    hc->timer.data = hc->deadline.data = hc->io.data = hc;
}

void health_check_start(struct health_check *hc)
{
    hc->active = true;
    ev_timer_set(&hc->timer, 0., 0.);
    ev_timer_start(hc->loop, &hc->timer);
}

void health_check_stop(struct health_check *hc)
{
    if (!hc->loop)
        return;
    hc->active = false;
    check_cleanup(hc);
    ev_timer_stop(hc->loop, &hc->timer);
}
