/* runtime - HAProxy's runtime API (stats or master socket) on the loop.
 *
 * A batch of commands goes out as one line, ';'-joined, on one fresh
 * connection (HAProxy reads each ';'-separated command on its own, so the
 * line may be long). HAProxy answers each command with its output followed by
 * one empty line, then closes. The reply parser checks every reply; when the
 * framing does not add up (HAProxy omits the empty line after a few error
 * messages) the batch is reported as failed so the caller resyncs.
 *
 * What HAProxy's replies say (splitting, the verdict, the listings) is
 * reply.h's: this is the transport and the master socket's sentinel.
 */
#ifndef SLOTSYNC_RUNTIME_H
#define SLOTSYNC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/runtime-t.h>

struct ev_loop;
struct runtime;

/* ---- pure ---- */

/* Join n commands (borrowed) into lines for the CLI: ';' between the
 * commands of a line, '\n' after its last, each line at most line_max bytes
 * with its newline unless a single command is longer (it then has a line of
 * its own). On success returns the number of lines and sets *out (a
 * NUL-terminated buffer the caller frees) and *len (its length). Returns
 * -EINVAL when n is 0 or a command is empty or holds ';', '\n' or '\r'
 * (*out untouched), -ENOMEM on allocation failure. */
int runtime_join_lines(const char *const *cmds, size_t n, size_t line_max, char **out, size_t *len);

/* The text for an error a runtime exchange ended with (err < 0): -E2BIG
 * means the reply exceeded the reply cap (RUNTIME_REPLY_MAX_MIB), which
 * strerror() would call "Argument list too long"; any other is strerror's.
 * A static string. */
#define RUNTIME_REPLY_MAX_MIB 64
const char *runtime_strerror(int err);

/* ---- I/O ---- */

/* err is 0 when a complete response arrived; replies then has n entries
 * (borrowed until the callback returns). Otherwise err < 0 (connect failure,
 * timeout, -EPROTO for bad framing) and replies is NULL. raw/raw_len is the
 * whole response text (may be NULL); when replies are given it holds them,
 * NUL-terminated in place. */
typedef void (*runtime_done_cb)(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                                void *arg);

/* addr: a unix socket path (contains '/') or HOST:PORT. timeout_s bounds a
 * whole exchange: when it runs out the callback gets -ETIMEDOUT at once, but
 * an exchange whose line was (partly) sent is not closed: HAProxy may still
 * read and run it later (a stopped process that resumes), so it is finished
 * in the background, its replies read and dropped, until HAProxy closes it or
 * RUNTIME_STALE_MAX_S pass. runtime_busy() stays true meanwhile, so nothing
 * sent afterwards can be overtaken by it, and a state read after it sees its
 * effect. Returns NULL on ENOMEM or a bad address. */
struct runtime *runtime_new(struct ev_loop *loop, const char *addr, double timeout_s);
/* Aborts an exchange in flight without calling back, and frees. */
void runtime_free(struct runtime *rt);

/* Send n commands (borrowed; copied) as one batch: in lines of at most
 * RUNTIME_LINE_MAX bytes (runtime_join_lines()), one connection after the
 * other, their replies handed back together as if from one line; a batch
 * whose connection fails midway fails as a whole (some of it may have run).
 * One exchange at a time:
 * returns -EBUSY if one is in flight, -EINVAL for a command with '\n' or ';',
 * or another negative code when it cannot start (then cb is never called);
 * 0 when started. */
int runtime_send(struct runtime *rt, const char *const *cmds, size_t n, runtime_done_cb cb,
                 void *arg);

/* Send one raw line (e.g. "reload" on the master socket) and hand back the
 * whole response unsplit (replies NULL, n 0) when the peer closes. */
int runtime_send_raw(struct runtime *rt, const char *line, runtime_done_cb cb, void *arg);

#define RUNTIME_STALE_MAX_S 120.0

bool runtime_busy(const struct runtime *rt);

/* Whether a timed-out exchange is still being finished in the background. */
bool runtime_stale(const struct runtime *rt);

/* How many timed-out exchanges were given up after RUNTIME_STALE_MAX_S,
 * i.e. may still run in HAProxy at any time. */
unsigned long runtime_stale_abandoned(const struct runtime *rt);

/* Abort the exchange in flight, if any, without calling back. */
void runtime_cancel(struct runtime *rt);

/* A sentinel is an idle interactive ("prompt") connection to the same
 * socket, held open only to notice at once when the HAProxy process behind it
 * goes away or closes it. Use it on the master socket: the master closes it
 * on every reload and when HAProxy stops, while an idle connection to a
 * worker would keep an old worker alive after a reload. lost() is
 * called once per connection that ends; the sentinel is then disconnected
 * until runtime_sentinel_connect() is called again. err is 0 when a
 * connection that was up ended, a negative errno when it never came up (an
 * asynchronous connect failure). */
typedef void (*runtime_lost_cb)(int err, void *arg);

/* Connect the sentinel of rt (no-op if connected). 0 or a negative errno. */
int runtime_sentinel_connect(struct runtime *rt, runtime_lost_cb lost, void *arg);
bool runtime_sentinel_connected(const struct runtime *rt);

#endif
