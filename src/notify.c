/* notify - readiness, status and watchdog messages to systemd. */
#include <slotsync/notify.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include <slotsync/clock.h>
#include <slotsync/log.h>

#define MOD "notify"
#define NOTIFY_STATUS_MAX 128
#define NOTIFY_MIN_GAP_S 1.0 /* between two STATUS= lines of the same phase */

struct notify {
    struct ev_loop *loop;
    ev_timer watchdog;
    bool ready;
    bool failed_noted;            /* a failed send was logged */
    char last[NOTIFY_STATUS_MAX]; /* the last STATUS= text sent */
    int last_phase;               /* -1: none sent yet */
    double last_at;               /* clock_mono() of the last STATUS= */
};

enum { PHASE_ETCD, PHASE_HAPROXY, PHASE_APPLYING, PHASE_SYNC };

static int phase_of(const struct notify_state *st)
{
    if (!st->listed)
        return PHASE_ETCD;
    if (!st->haproxy_known)
        return PHASE_HAPROXY;
    if (!st->settled)
        return PHASE_APPLYING;
    return PHASE_SYNC;
}

bool notify_status_text(const struct notify_state *st, char *buf, size_t size)
{
    switch (phase_of(st)) {
    case PHASE_ETCD:
        snprintf(buf, size, "waiting for etcd (first listing)");
        return false;
    case PHASE_HAPROXY:
        snprintf(buf, size, "waiting for HAProxy (runtime socket)");
        return false;
    case PHASE_APPLYING:
        snprintf(buf, size, "applying changes: %zu endpoint%s in %zu service%s", st->endpoints,
                 st->endpoints == 1 ? "" : "s", st->services, st->services == 1 ? "" : "s");
        return false;
    default:
        snprintf(buf, size, "in sync: %zu endpoint%s in %zu service%s", st->endpoints,
                 st->endpoints == 1 ? "" : "s", st->services, st->services == 1 ? "" : "s");
        return true;
    }
}

/* sd_notify returns > 0 when sent, 0 when NOTIFY_SOCKET is unset. A failure
 * is logged once: systemd will say the rest (a timeout, a watchdog kill). */
static void send_msg(struct notify *n, const char *msg)
{
    int r = sd_notify(0, msg);

    if (r < 0 && !n->failed_noted) {
        n->failed_noted = true;
        log_warn(MOD, "cannot tell systemd \"%.32s\": %s", msg, strerror(-r));
    }
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    send_msg(w->data, "WATCHDOG=1");
}

struct notify *notify_new(struct ev_loop *loop)
{
    struct notify *n = calloc(1, sizeof(*n));
    uint64_t usec = 0;

    if (!n)
        return NULL;
    n->loop = loop;
    n->last_phase = -1;
    ev_timer_init(&n->watchdog, on_watchdog, 0., 0.);
    n->watchdog.data = n;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        double every = (double)usec / 2e6;

        ev_timer_set(&n->watchdog, 0., every);
        ev_timer_start(loop, &n->watchdog);
        log_info(MOD, "systemd watchdog: WATCHDOG=1 every %.1f s", every);
    }
    return n;
}

void notify_update(struct notify *n, const struct notify_state *st)
{
    char text[NOTIFY_STATUS_MAX], msg[NOTIFY_STATUS_MAX + 16];
    bool ready;
    int phase;
    double now;

    if (!n)
        return;
    ready = notify_status_text(st, text, sizeof(text));
    phase = phase_of(st);
    now = clock_mono();
    if (strcmp(text, n->last) != 0 &&
        (phase != n->last_phase || now - n->last_at >= NOTIFY_MIN_GAP_S)) {
        /* READY=1 with the status that made it true, in one datagram. */
        snprintf(msg, sizeof(msg), "%sSTATUS=%s", ready && !n->ready ? "READY=1\n" : "", text);
        send_msg(n, msg);
        if (ready && !n->ready)
            log_info(MOD, "ready: first etcd listing applied to HAProxy (%s)", text);
        n->ready = n->ready || ready;
        memcpy(n->last, text, sizeof(text));
        n->last_phase = phase;
        n->last_at = now;
    }
}

bool notify_ready_sent(const struct notify *n)
{
    return n && n->ready;
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    ev_timer_stop(n->loop, &n->watchdog);
    send_msg(n, "STOPPING=1\nSTATUS=stopping");
    free(n);
}
