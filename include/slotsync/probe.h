/* probe - "slotsync check --connect": try every etcd endpoint once.
 *
 * One read of the prefix per endpoint (a range with limit 1, keys only),
 * all at once on a loop of its own, each bounded by timeout_s. Reports one
 * line per endpoint on out: "URL: ok (revision N)" or "URL: <reason>", the
 * reason saying what failed (connection, TLS, HTTP status, etcd's error).
 */
#ifndef SLOTSYNC_PROBE_H
#define SLOTSYNC_PROBE_H

#include <stdio.h>

#include <slotsync/config.h>

/* Returns the number of endpoints that failed (0: all answered), or a
 * negative errno when the probe could not run (then *errmsg says why). */
int probe_etcd(const struct config *cfg, double timeout_s, FILE *out, char **errmsg);

#endif
