/* livefile - the services file and its Host map kept current between
 * reloads.
 *
 * Whatever starts or reloads HAProxy (a restart after a crash, a package
 * upgrade, an operator's "systemctl reload") loads the files on disk, so
 * they must hold what HAProxy runs now, not what the last reload rendered
 * (issue 23): every backend of ours that HAProxy runs, with the slots it has
 * (also those added with "add server") filled with the catalog's current
 * endpoints, and every spare bound at run time carrying its service's
 * slots, its route in the Host map. The files are rendered again after a
 * change (livefile_touch()), at most once per LIVEFILE_INTERVAL_S, and
 * written atomically only when their text changed; a reload is never asked
 * for. While a reload is in flight its own render writes them
 * (livefile_hold()). A failed write is retried with backoff (0.5 s to 30 s,
 * jitter) and reported as a failed render is. Structure that HAProxy does
 * not run yet (a new service waiting for its reload) is not written here:
 * the reload's render adds it.
 */
#ifndef SLOTSYNC_LIVEFILE_H
#define SLOTSYNC_LIVEFILE_H

#include <slotsync/livefile-t.h>

struct backend;

/* Everything is borrowed. 0 (no I/O is done yet). */
int livefile_init(struct livefile *lf, struct ev_loop *loop, const struct config *cfg,
                  struct catalog *cat, struct table *tab);
/* Stop the timer and free what lf owns. A zeroed lf is fine. */
void livefile_free(struct livefile *lf);
/* A config read again (SIGHUP); borrowed like the first. The next render
 * compares with the disk (the owner touches when it may render). */
void livefile_set_config(struct livefile *lf, const struct config *cfg);

/* Something HAProxy runs or the catalog holds may have changed: render
 * again, now or LIVEFILE_INTERVAL_S after the last render. */
void livefile_touch(struct livefile *lf);
/* held: a reload is in flight (its render writes the files: nothing is
 * written meanwhile). Released: what is on disk is read again before the
 * next comparison, and a render follows. */
void livefile_hold(struct livefile *lf, bool held);

/* Pure: the services file's and the Host map's text (map NULL and 0
 * without an HTTP frontend) for what HAProxy runs of be (n backends):
 * every backend that is ours and present (one added at run time on
 * HAProxy 3.4+ too, dynback.h), a bound one in its spare, its slots
 * assigned from cat (slots_assign(), as the applier assigns them: be's
 * slot tables are updated); dyn_defaults: the file ends with the defaults
 * section run-time backends come from (render_append_dynamic_defaults()).
 * New buffers, caller frees. 0, -EINVAL with *errmsg (a name the renderer
 * refuses) or -ENOMEM. */
int livefile_render(const struct config *cfg, struct backend *const *be, size_t n,
                    struct catalog *cat, bool dyn_defaults, char **text, size_t *len, char **map,
                    size_t *mlen, char **errmsg);

#endif
