/* pool - the spare backends on the loop: binding new services, adopting
 * the live map's bindings, the Host map file, and the refill reload.
 *
 * I/O glue around spare.h (the pure pool). A new HTTP service that HAProxy
 * has no backend for is bound to a free spare (pool_place()): its backend
 * lives in the spare's proxy (backend_proxy()), so the applier fills the
 * spare's slots and routes "<service>.<domain>" to it at run time, with no
 * reload. Every binding change rewrites the map file (atomically, with
 * backoff), so a restarted HAProxy routes the same way. When fewer than
 * half the spares are free one reload is asked for, min_reload_interval_ms
 * later (coalesced with any other); its render gives every bound service a
 * backend of its own and a fresh pool (pool_reload_ended()). It is lent
 * the backend table (table.h): a service a spare carries gets its backend
 * there (table_add_service()).
 */
#ifndef SLOTSYNC_POOL_H
#define SLOTSYNC_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/pool-t.h>

struct backend;
struct config;
struct host_route;
struct names;
struct table;

/* spare_count(cfg) free spares: what a services file rendered for cfg
 * carries. 0 or -ENOMEM. */
int pool_init(struct pool *p, struct ev_loop *loop, const struct config *cfg, struct table *tab,
              const struct pool_ops *ops, void *arg);
/* Stop the timers and free what p owns. A zeroed p is fine. */
void pool_free(struct pool *p);
/* A config read again (SIGHUP): a new pool size takes effect at the next
 * render (the http_frontend change asks for one). */
void pool_set_config(struct pool *p, const struct config *cfg);

/* b: a service HAProxy runs no backend for. If a spare carries it already
 * (adopted from the live map), b lives there again; else, when may_bind, it
 * is bound to a free spare that HAProxy runs (proxies, from "show
 * backend") and base_config does not declare (base): b is present, sized to the spare's slots with
 * HAProxy's view unknown, dirty. Returns whether b lives in a spare now; false: a reload must
 * create its backend. */
bool pool_place(struct pool *p, struct backend *b, const struct names *proxies,
                const struct names *base, bool may_bind);

/* The bindings HAProxy's live map holds ("show map"): adopted (spare.h), and
 * every service a spare carries gets its backend (table_add_service(): not
 * claimed yet, the next "show backend" settles it) living there. */
void pool_adopt(struct pool *p, const struct host_route *routes, size_t n);

/* A reload starts: its render un-binds every spare, and writes the map. */
void pool_reload_started(struct pool *p);
/* It ended. ok: HAProxy runs the render, every bound service has its own
 * backend and the pool is fresh (every backend's proxy is its own again).
 * Not ok: HAProxy runs the old file: the map file is written again from
 * the bindings. */
void pool_reload_ended(struct pool *p, bool ok);

#endif
