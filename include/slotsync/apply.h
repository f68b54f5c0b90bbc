/* apply - the runtime applier: HAProxy's state read and the planned changes
 * sent, on the loop.
 *
 * An I/O adapter between the controller and HAProxy's runtime API. It reads
 * HAProxy's state ("show cli level", "show servers state", "show backend",
 * "show map") and adopts it into the controller's backends, plans each
 * dirty backend and the Host map (plan.c) and sends the batch, then reads
 * the replies: applied changes are logged, refused commands remembered and
 * HAProxy's state read again with backoff. It keeps the runtime socket's
 * outage and backoff, and the sentinel on the master socket that notices a
 * reload or restart. It works on the backend table it is lent (table.h)
 * and puts HAProxy's proxy names there; the controller owns the table and
 * the catalog, hands a wanted reload to rollout.h and hears the rest
 * through struct apply_ops.
 */
#ifndef SLOTSYNC_APPLY_H
#define SLOTSYNC_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/apply-t.h>

struct config;
struct metrics;
struct table;

struct catalog;

/* Set a up on loop for cfg's runtime and master sockets (cfg, cat, tab,
 * obs and ops borrowed). Returns 0, or -EINVAL (a runtime socket that cannot be
 * used) or -ENOMEM with *errmsg; a is then ready for apply_free(). */
int apply_init(struct apply *a, struct ev_loop *loop, const struct config *cfg, struct catalog *cat,
               struct table *tab, struct metrics *obs, const struct apply_ops *ops, void *arg,
               char **errmsg);
/* Stop a's watchers and free what it owns. A zeroed a is fine. */
void apply_free(struct apply *a);
/* A config read again (SIGHUP); borrowed like the first. */
void apply_set_config(struct apply *a, const struct config *cfg);

/* Whether a new service may get a backend at run time now (dynback.h). */
bool apply_dynamic_usable(const struct apply *a);

/* An exchange is in flight or a retry is waiting: start nothing. */
bool apply_busy(const struct apply *a);
/* HAProxy's state must be read before a batch can be planned. */
bool apply_resync_due(const struct apply *a);
/* Read HAProxy's state (and the socket's level, when not known yet). */
void apply_resync(struct apply *a);
/* Plan every dirty backend and, if dirty, the Host map, and send the batch
 * (whole backends until it holds 1024 commands or more; the rest stays
 * dirty for the next call). */
void apply_send(struct apply *a);

/* While the first listing is only partly read: mark the backends whose
 * service got endpoints in the page just delivered (catalog dirty flags,
 * left set for the listing's end), ... */
void apply_listed_page(struct apply *a);
/* ... and send what they can take now: endpoints into slots HAProxy has
 * empty, run-time growth ("add server"). Nothing is emptied, moved or
 * changed, no reload is asked and the Host map waits: an endpoint not listed
 * yet may be what HAProxy has. The listing's end converges them whole. */
void apply_send_additions(struct apply *a);

/* What a plan would cost now (bulk.h's inputs): the runtime commands
 * apply_send() (additions: apply_send_additions()) would send over every
 * backend it would plan, all batches together, and the servers a render
 * would declare. The dirty backends' slots are assigned as the send would
 * assign them; nothing is sent and HAProxy's view is left as it is. An
 * upper bound is taken first: when it is under min_commands, the plan is
 * not built and *commands is that bound. 0 or -ENOMEM. */
int apply_estimate(struct apply *a, bool additions, size_t min_commands, size_t *commands,
                   size_t *servers);

#endif
