/* hafd - how many file descriptors HAProxy asks for, and whether this
 * machine can give them (issue 23, part 3).
 *
 * Pure. HAProxy 2.6 computes "maxsock" at start-up and raises its
 * RLIMIT_NOFILE to it, refusing to start when it cannot ("Cannot raise FD
 * limit to N, limit is L"). Measured on HAProxy 2.6.12 (docs/DESIGN.md):
 * maxsock = 2 x maxconn (maxconn: global's, or when unset computed from the
 * limit, at least 100) + 1 per server with a health check + 2 more per
 * server with an agent check + 1 per listener (bind lines, stats sockets)
 * + 3 per thread + 20; a server without a check costs nothing. So 100,000
 * checked slots need more than 100,000 descriptors.
 */
#ifndef SLOTSYNC_HAFD_H
#define SLOTSYNC_HAFD_H

#include <stdbool.h>
#include <stddef.h>

#define HAFD_FIXED 20     /* HAProxy's own descriptors beyond the terms below */
#define HAFD_PER_THREAD 3 /* a poller and a wake-up pipe per thread */
#define HAFD_MIN_MAXCONN 100

/* What a config file (or several) holds that costs descriptors. */
struct hafd_count {
    unsigned long servers;   /* server lines */
    unsigned long checked;   /* of those, with "check" (on the line or its default-server) */
    unsigned long agents;    /* with "agent-check" */
    unsigned long listeners; /* bind lines and "stats socket" lines */
    long maxconn;            /* global "maxconn", 0: not set */
    long nbthread;           /* global "nbthread", 0: not set */
    long fd_hard_limit;      /* global "fd-hard-limit", 0: not set */
};

/* Add what text (len bytes, an HAProxy config) holds to *c: its server,
 * bind and stats socket lines, and the global maxconn, nbthread and
 * fd-hard-limit when set (a later file's wins). A server line inherits
 * "check" and "agent-check" from its section's default-server line (or
 * the defaults section's); "no-check" on the line cancels it. */
void hafd_count_text(const char *text, size_t len, struct hafd_count *c);

/* The descriptors HAProxy asks for with c, on threads threads (c->nbthread
 * when set). */
unsigned long hafd_needed(const struct hafd_count *c, long threads);

/* What HAProxy can get: the hard RLIMIT_NOFILE it starts with, or
 * fs.nr_open when it may raise the hard limit (CAP_SYS_RESOURCE), lowered
 * to fd_hard_limit when that is set (> 0). */
unsigned long hafd_available(unsigned long hard, unsigned long nr_open, bool can_raise,
                                long fd_hard_limit);

#endif
