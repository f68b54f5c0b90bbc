/* fdlimit - file descriptors as a budget: the process's limit raised at
 * start, the admin endpoint's share of it, and EMFILE/ENFILE said as such.
 *
 * slotsync needs a few descriptors at rest (etcd, the runtime and master
 * sockets, the loop) and a few more at moments (a reload's `haproxy -c`
 * and its pipes, a file written beside its temp file, a runtime batch).
 * Admin clients get what is left, so that no number of them can starve
 * syncing.
 */
#ifndef SLOTSYNC_FDLIMIT_H
#define SLOTSYNC_FDLIMIT_H

#include <stdbool.h>

/* The most connections the admin endpoint ever holds, whatever the limit. */
#define FDLIMIT_ADMIN_MAX 64
/* Descriptors kept free for syncing beyond those in use at rest: etcd's
 * reconnects and failovers (a few per endpoint), runtime batches and the
 * admin's own runtime reads, the master socket, `haproxy -c` (a child and
 * its pipes), a written file with its temp file and directory. */
#define FDLIMIT_RESERVE 24

struct fdlimit {
    unsigned long soft_before; /* the soft limit found at start */
    unsigned long soft, hard;  /* after fdlimit_raise() */
    bool raised;               /* soft was raised */
    int err;                   /* setrlimit's negative errno, or 0 */
};

/* Raise RLIMIT_NOFILE's soft limit to the hard limit. Fills *out (also on
 * failure). Returns 0 or a negative errno. */
int fdlimit_raise(struct fdlimit *out);

/* The soft limit now (RLIMIT_NOFILE), or 0 if it cannot be read. */
unsigned long fdlimit_soft(void);

/* Descriptors open in this process now (from /proc/self/fd), or a negative
 * errno. */
int fdlimit_in_use(void);

/* Pure: how many connections the admin endpoint may hold with the soft
 * limit nofile and in_use descriptors open: what is left after the reserve,
 * at most FDLIMIT_ADMIN_MAX, possibly 0. */
unsigned fdlimit_admin_budget(unsigned long nofile, unsigned long in_use);

/* Pure: a client address's share of limit connections (at least 1). */
unsigned fdlimit_per_client(unsigned limit);

/* true for EMFILE and ENFILE (positive or negative). */
bool fdlimit_is_exhausted(int err);

/* strerror(), but EMFILE and ENFILE name themselves and what ran out:
 * "out of file descriptors (EMFILE: the process's limit, nofile N)". err
 * positive or negative. Static or thread-local text: use it at once. */
const char *fdlimit_strerror(int err);

#endif
