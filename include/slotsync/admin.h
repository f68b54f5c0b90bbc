/* admin - the daemon's admin HTTP endpoint on the loop (libmicrohttpd).
 *
 * libmicrohttpd parses HTTP; this module only routes, on the daemon's libev
 * loop: MHD runs in epoll mode without threads, its epoll descriptor is one
 * ev_io and its timeout one ev_timer.
 *
 *   /          the live page (self-contained HTML; fetches /status every s)
 *   /status    the same JSON document as `slotsync status --json`
 *   /metrics   Prometheus text format
 *   /healthz   200 while the process runs
 *   /readyz    200 after the first full sync while HAProxy answers, else 503;
 *              still 200 while etcd cannot be read (HAProxy serves the last
 *              known state, which is right for a sidecar), its body says so
 *
 * /status needs HAProxy's "show servers state" and "show stat", /readyz and
 * /metrics a fresh sign of life ("show info"): the module reads them on its
 * own runtime connection, at most once a second and only while someone
 * asks, holding the requests (MHD suspend/resume) meanwhile.
 * Nothing served holds a secret: of the config's etcd URLs only the
 * endpoint in use is shown, as host:port.
 *
 * Under load and abuse (issue 20): slotsync accepts connections itself and
 * hands them to MHD; the number held comes from RLIMIT_NOFILE after a
 * reserve for syncing (fdlimit.h), each client address gets a quarter, a
 * request's headers must arrive within ADMIN_HEADER_DEADLINE_S, and a full
 * endpoint closes its oldest connection still waiting for headers, so
 * that idle and slow clients cannot keep a probe out. A failed accept()
 * (EMFILE) rests the listener with a capped backoff.
 *
 * Protection: admin.tls (HTTPS; with client_ca_file, a client certificate
 * signed by it) and admin.token_file (Authorization: Bearer) guard
 * admin.protected_paths (by default all but /healthz and /readyz).
 * Refusals are counted in /metrics and logged without what was sent.
 */
#ifndef SLOTSYNC_ADMIN_H
#define SLOTSYNC_ADMIN_H

#include <slotsync/admin-t.h>

struct admin;
struct admin_conf;
struct ev_loop;
struct listen_addr;

/* Listen on addr (borrowed) and serve on loop; runtime_socket (copied) is
 * where /status reads HAProxy; conf (copied) says what protects it: its
 * TLS and token files are read now. ops and arg are borrowed for the
 * admin's life. Returns the admin, or NULL with *errmsg (e.g. the port is
 * taken, a file cannot be read). */
struct admin *admin_start(struct ev_loop *loop, const struct listen_addr *addr,
                          const char *runtime_socket, const struct admin_conf *conf,
                          const struct admin_ops *ops, void *arg, char **errmsg);

/* SIGHUP: read the TLS and token files again. New TLS material restarts
 * libmicrohttpd on the same listener (open connections are closed). On
 * failure everything in use is kept: a negative errno with *errmsg. NULL
 * ok (returns 0). */
int admin_reload(struct admin *a, char **errmsg);

/* Close every connection and the listener, stop the watchers, free. NULL ok. */
void admin_free(struct admin *a);

/* The port actually bound (useful with port 0 in tests). */
unsigned admin_port(const struct admin *a);

#endif
