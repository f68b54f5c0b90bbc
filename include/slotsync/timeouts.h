/* timeouts - how long slotsync waits for each peer, in one table.
 *
 * Every bound on a wait for etcd, HAProxy (runtime and master sockets, the
 * reload and its config check), a health check or an HTTP connect is here,
 * so that their relations stay visible (a probe shorter than a call, a
 * reload longer than the master's answer, ...). Retry backoffs stay with
 * their module: they are policies, not waits.
 */
#ifndef SLOTSYNC_TIMEOUTS_H
#define SLOTSYNC_TIMEOUTS_H

/* etcd */
#define ETCD_CALL_TIMEOUT_MS 5000L /* a unary call without its own timeout */
/* One page of 1000 keys; a member that hangs mid-listing costs this much
 * before the page is asked of the next endpoint. */
#define ETCD_LIST_TIMEOUT_MS 10000L
/* Liveness probe of the watch's member (one every second): a hung member is
 * found within about 4 s. */
#define ETCD_PROBE_TIMEOUT_MS 3000L

/* HTTP (libcurl), when the caller gives no connect timeout */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 3000L

/* HAProxy */
#define RUNTIME_DEFAULT_TIMEOUT_S 5.0 /* a runtime exchange, when none is given */
/* the controller's runtime socket exchanges: haproxy.runtime_timeout_s's
 * default, and the range it accepts */
#define RUNTIME_TIMEOUT_S 10
#define RUNTIME_TIMEOUT_S_MIN 1
#define RUNTIME_TIMEOUT_S_MAX 300
/* the admin endpoint's reads for /status and /readyz: shorter than the
 * controller's, an operator's page should say "unreachable" soon */
#define ADMIN_RUNTIME_TIMEOUT_S 5.0
/* an admin connection's request headers (TLS handshake included), from its
 * accept or from the end of its previous request: a whole-request deadline,
 * not an idle timeout that each trickled line would reset (issue 20) */
#define ADMIN_HEADER_DEADLINE_S 5.0
#define MASTER_SENTINEL_TIMEOUT_S 5.0 /* the controller's watch on the master socket */
#define MASTER_TIMEOUT_S 10.0         /* the reloader's "show proc" and "reload" */
#define RELOAD_TIMEOUT_S 15.0         /* a whole reload, from check to new worker */
#define RELOAD_CHECK_TIMEOUT_S 30.0   /* the `haproxy -c` child or reload_command */

/* announce: one etcd call gets ttl/2 within these bounds (long enough for a
 * failover to the next endpoint, short enough to renew in time) */
#define ANNOUNCE_OP_TIMEOUT_MIN_S 1.0
#define ANNOUNCE_OP_TIMEOUT_MAX_S 5.0
/* the final revoke on a stop; then the key goes with its lease's TTL */
#define ANNOUNCE_STOP_REVOKE_TIMEOUT_S 2.0
/* a health check gets its interval within these bounds */
#define CHECK_TIMEOUT_MIN_S 1.0
#define CHECK_TIMEOUT_MAX_S 5.0

#endif
