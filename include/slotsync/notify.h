/* notify - what systemd hears from the daemon (Type=notify): READY=1 once,
 * when the first complete etcd listing has been applied to HAProxy; STATUS=
 * lines when the state changes; WATCHDOG=1 every half WatchdogSec while the
 * loop turns; STOPPING=1 on the way out.
 *
 * Messages go through libsystemd's sd_notify(), which does nothing (returns
 * 0) when NOTIFY_SOCKET is not set, so the module costs nothing outside
 * systemd. The status text is pure logic (notify_status_text) so that it can
 * be tested without a socket.
 */
#ifndef SLOTSYNC_NOTIFY_H
#define SLOTSYNC_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

/* What the controller knows, as the status line tells it. */
struct notify_state {
    bool listed;        /* a complete etcd listing has been applied to the catalog */
    bool haproxy_known; /* HAProxy's state was read through the runtime socket */
    bool settled;       /* nothing is waiting to go to HAProxy (no batch, no reload) */
    size_t endpoints;   /* endpoints in the catalog */
    size_t services;    /* services in the catalog */
};

/* The STATUS= text for st into buf ("waiting for etcd", "waiting for
 * HAProxy", "applying changes", "in sync: N endpoints in M services").
 * Returns true when st counts as ready (listed, HAProxy known, settled). */
bool notify_status_text(const struct notify_state *st, char *buf, size_t size);

struct notify;

/* A notifier on loop. When systemd asked for a watchdog (WATCHDOG_USEC for
 * this pid) a timer sends WATCHDOG=1 every half interval. Returns NULL on
 * out of memory. The caller frees with notify_free(). */
struct notify *notify_new(struct ev_loop *loop);

/* Tell systemd about st: STATUS= when the text changed (at most one a
 * second unless the phase changed; a change held back goes out with a later
 * call), and READY=1 the first time st is ready. n may be NULL. */
void notify_update(struct notify *n, const struct notify_state *st);

/* true once READY=1 was sent. */
bool notify_ready_sent(const struct notify *n);

/* Send STOPPING=1 (when systemd is listening), stop the timer, free n.
 * NULL is fine. */
void notify_free(struct notify *n);

#endif
