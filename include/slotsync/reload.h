/* reload - check a candidate services file with "haproxy -c" and make HAProxy
 * load it, without ever blocking the loop.
 *
 * The check runs "<haproxy> -c -f <base_config> -f <candidate>" as a child
 * watched by ev_child, its output captured for the log. The reload goes
 * through the master socket ("reload": HAProxy 2.6 answers nothing and closes,
 * so success is read from the reload and failure counters of "show proc"), or
 * through haproxy.reload_command run by /bin/sh when there is no master socket.
 */
#ifndef SLOTSYNC_RELOAD_H
#define SLOTSYNC_RELOAD_H

#include <stdbool.h>

struct ev_loop;
struct reloader;

/* Parse the master line of "show proc":
 * "<pid> master <reloads> [failed: <n>] <uptime> <version>".
 * 0, or -EPROTO when there is no such line or a field is not a number. */
int reload_parse_show_proc(const char *text, unsigned long *reloads, unsigned long *failed);

/* The uptime in seconds of the newest worker under "# workers" of "show
 * proc" (its start is HAProxy's last reload, or its start): "<pid> worker
 * <reloads> <d>d<hh>h<mm>m<ss>s <version>". "# old workers" (still
 * finishing connections) do not count. 0, or -EPROTO when there is no such
 * line or its uptime is not HAProxy's format. */
int reload_parse_worker_uptime(const char *text, long *uptime_s);

/* err is 0 on success; otherwise errtext (borrowed for the call) says why:
 * HAProxy's own messages for a failed check. */
typedef void (*reload_done_cb)(int err, const char *errtext, void *arg);

/* haproxy_bin: the binary for checks (borrowed string, copied); master_socket
 * or reload_command (one of them, or neither: reloads then fail at once);
 * base_config may be NULL. NULL on ENOMEM or a bad master socket address. */
struct reloader *reloader_new(struct ev_loop *loop, const char *haproxy_bin,
                              const char *base_config, const char *master_socket,
                              const char *reload_command);
/* Kills a child still running, stops every watcher, frees. No callback. */
void reloader_free(struct reloader *r);

/* Start a check of candidate. One operation (check or reload) at a time:
 * -EBUSY otherwise. cb is not called when this returns an error. */
int reloader_check(struct reloader *r, const char *candidate, reload_done_cb cb, void *arg);

/* Start a reload and confirm it (up to timeout_s). */
int reloader_reload(struct reloader *r, double timeout_s, reload_done_cb cb, void *arg);

bool reloader_busy(const struct reloader *r);
bool reloader_can_reload(const struct reloader *r);

#endif
