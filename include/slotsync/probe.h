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

struct config;

/* Returns the number of endpoints that failed (0: all answered), or a
 * negative errno when the probe could not run (then *errmsg says why). */
int probe_etcd(const struct config *cfg, double timeout_s, FILE *out, char **errmsg);

/* Ask haproxy.runtime_socket "show cli level" once, bounded by timeout_s,
 * and print one line on out: "SOCKET: ok (level admin)", "SOCKET: level
 * operator, slotsync needs level admin" or what failed. Returns 0 for
 * level admin, 1 for anything else, a negative errno when it could not
 * run (issue 19). */
int probe_runtime(const struct config *cfg, double timeout_s, FILE *out, char **errmsg);

#endif
