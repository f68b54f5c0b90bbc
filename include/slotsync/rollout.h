/* rollout - when HAProxy gets a new services file, and what it holds.
 *
 * The policy of reloads, on the loop; reload.h is the mechanism it drives
 * ("haproxy -c", the master socket). A structural change (a new backend,
 * options changed, a backend missing in HAProxy) asks for a reload
 * (rollout_want()): that bumps a generation. Once per loop iteration the
 * owner calls rollout_maybe_start(): at most one reload per
 * min_reload_interval_ms, so a burst coalesces into one render of whatever
 * is wanted by then. The render sizes every backend slotsync owns (never
 * fewer slots than HAProxy has), leaves out the discovered ones with no
 * endpoint left, writes the Host map and the candidate, checks it, renames
 * it over the services file and reloads. A check or reload HAProxy refuses
 * marks the generation failed: only a newer change tries again. A failure of
 * this machine (a write, the check not started, the master not reached) is
 * retried for the same generation with backoff. The end of a good reload
 * puts the rendered names in the backend table it is lent (table.h: they
 * are what slotsync owns now) and drops the backends left out from it; the
 * owner (controller) hears about the ends through struct rollout_ops.
 *
 * rollout_render_file() is the one-shot render of "slotsync render".
 */
#ifndef SLOTSYNC_ROLLOUT_H
#define SLOTSYNC_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/rollout-t.h>
#include <slotsync/metrics-t.h>

struct backend;
struct config;
struct pool;
struct table;

struct catalog;

/* Set ro up on loop (a reloader for cfg's haproxy_bin, base_config,
 * master_socket and reload_command; candidate beside cfg's services_file).
 * Everything is borrowed. Returns 0 or -ENOMEM (also for a master socket
 * address reload.h cannot use); ro is then ready for rollout_free(). */
int rollout_init(struct rollout *ro, struct ev_loop *loop, const struct config *cfg,
                 struct catalog *cat, struct table *tab, struct pool *pool, struct metrics *obs,
                 const struct rollout_ops *ops, void *arg);
/* Stop the timer, kill a check or reload command still running (no
 * callback), remove the candidate and free what ro owns. A zeroed ro is
 * fine. */
void rollout_free(struct rollout *ro);
/* A config read again (SIGHUP); borrowed like the first. */
void rollout_set_config(struct rollout *ro, const struct config *cfg);

/* Structure changed: the services file must be rendered and loaded again.
 * why and name make the log line ("<why> <name>: a reload is needed") and
 * the cause counted in obs. */
void rollout_want(struct rollout *ro, const char *why, const char *name);

/* The reload cause counted for why: matched by its exact text (the texts
 * the callers pass are listed in rollout.c); any other is
 * METRICS_CAUSE_OTHER. */
enum metrics_reload_cause rollout_cause(const char *why);
/* A reload is wanted that HAProxy neither runs nor refused. */
bool rollout_pending(const struct rollout *ro);
/* Once per loop iteration. ready: etcd was listed and HAProxy's state is
 * known. Starts the pending reload when none runs and
 * min_reload_interval_ms since the last start has passed (else the timer
 * waits for it; its end wakes the loop for the next call). */
void rollout_maybe_start(struct rollout *ro, bool ready);

/* A reload could start now: none is in flight or waiting (interval or
 * backoff), min_reload_interval_ms has passed since the last start, there is
 * a way to reload, and the last reload did not fail. bulk.h asks this before
 * it picks a reload for a large plan. */
bool rollout_can_start(const struct rollout *ro);

/* Ask the master socket "show proc" once (none configured: nothing to
 * ask): how often HAProxy was reloaded and how long ago the last time, into
 * haproxy_reloads and haproxy_last_reload_at, with a log line. */
void rollout_read_haproxy_reloads(struct rollout *ro);
/* "slotsync render": every backend slotsync owns in v (n of them), sized
 * for its endpoints in cat, rendered to out_path ("-": standard output) or,
 * when out_path is NULL, to cfg's services_file with the Host map beside
 * it. Returns 0 (and logs the write) or a negative errno with *errmsg when
 * one was given. v's backends are resized and assigned. */
int rollout_render_file(const struct config *cfg, struct backend **v, size_t n, struct catalog *cat,
                        const char *out_path, char **errmsg);

#endif
