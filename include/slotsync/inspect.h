/* inspect - `slotsync status`: read etcd and HAProxy once, say where they
 * differ.
 *
 * A short-lived loop lists etcd's prefix and asks HAProxy for "show servers
 * state" and "show stat" at the same time (or, with an admin address, fetches
 * a running daemon's /status), joins them with status.h and prints a table or
 * the JSON document. It works whether or not the daemon runs.
 */
#ifndef SLOTSYNC_INSPECT_H
#define SLOTSYNC_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

struct config;

struct inspect_opts {
    const char *service; /* NULL: every backend */
    const char *admin;   /* HOST:PORT of a daemon's admin endpoint, or NULL */
    bool json, all;
    double timeout_s;
};

/* Exit codes of `slotsync status`. INSPECT_ETCD_DOWN: with --admin, the
 * daemon answered but cannot read etcd (it serves the last known state);
 * it wins over INSPECT_DRIFT, since a drift from a stale state says little. */
enum { INSPECT_IN_SYNC = 0, INSPECT_DRIFT = 1, INSPECT_UNREACHABLE = 2, INSPECT_ETCD_DOWN = 3 };

/* Print the status of cfg's services (cfg and o borrowed) to out. Returns
 * INSPECT_IN_SYNC, INSPECT_DRIFT, INSPECT_ETCD_DOWN, or a negative errno with *errmsg when
 * etcd, HAProxy or the admin endpoint could not be read (or the service is
 * unknown: -ENOENT). */
int inspect_status(const struct config *cfg, const struct inspect_opts *o, FILE *out,
                   char **errmsg);

#endif
