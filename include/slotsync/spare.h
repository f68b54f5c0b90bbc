/* spare - the pool of spare backends: which service each spare carries.
 *
 * Pure (no I/O). The services file carries N spare backends named
 * "spare:0".."spare:N-1": ':' is never in a service name (endpoint.h:
 * [A-Za-z0-9._-]) but is allowed in an HAProxy proxy name, so no service can
 * collide with a spare. A new HTTP service is bound to a free spare: its
 * endpoints go into the spare's slots and its Host name into the Host map,
 * at run time. The next render gives every bound service a backend of its
 * own and a fresh pool (docs/DESIGN.md, "Spare backends").
 */
#ifndef SLOTSYNC_SPARE_H
#define SLOTSYNC_SPARE_H

#include <slotsync/spare-t.h>

struct config;
struct host_route;

/* A pool of n free spares (n <= SPARE_MAX). 0 or -ENOMEM, -EINVAL. */
int spare_pool_init(struct spare_pool *p, size_t n);
void spare_pool_free(struct spare_pool *p);
/* Every spare free again, and n of them (a render made them). 0 or as init. */
int spare_pool_reset(struct spare_pool *p, size_t n);

/* The spares a services file for cfg carries: http_frontend.spare_backends
 * with a domain to route by and HTTP defaults, else 0. */
size_t spare_count(const struct config *cfg);

/* "spare:<i>" into out (SPARE_NAME_SIZE bytes). */
void spare_name(size_t i, char *out);
/* The index of a spare's proxy name (canonical decimal, below SPARE_MAX),
 * or -1 for any other name. */
long spare_index(const char *proxy);
/* A name a runtime command or the map may carry: a service name or a
 * spare's name. */
bool spare_proxy_name_valid(const char *name);

/* The spare carrying service (case-insensitive: the live map has it lower
 * cased), or -1. */
long spare_find(const struct spare_pool *p, const char *service);
/* The service spare i carries, or NULL (free, or i out of range). */
const char *spare_bound(const struct spare_pool *p, size_t i);
size_t spare_free_count(const struct spare_pool *p);

/* Bind service to the first free spare that usable() accepts (NULL: any).
 * Returns its index, the index it already has, or -1 (none free). */
long spare_bind(struct spare_pool *p, const char *service, bool (*usable)(size_t i, void *arg),
                void *arg);
/* Spare i is free again. */
void spare_release(struct spare_pool *p, size_t i);
/* The service spare i carries is named exactly name now (after a
 * case-insensitive adoption). */
void spare_rename(struct spare_pool *p, size_t i, const char *name);

enum spare_refill spare_refill_plan(const struct spare_pool *p, size_t waiting);

/* Take the bindings HAProxy's live map holds: a route "<service>.<domain>
 * spare:<i>" binds service to spare i. Routes to other backends are not
 * looked at. *out is always set. */
void spare_adopt(struct spare_pool *p, const struct host_route *routes, size_t n,
                 const char *domain, struct spare_adoption *out);

/* How slotsync names a backend to people: "web (spare:3)" when service
 * lives in another proxy, else "web". */
void spare_label(const char *service, const char *proxy, char *out, size_t size);

#endif
