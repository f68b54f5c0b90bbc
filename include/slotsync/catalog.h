/* catalog - the desired state: which endpoints each service has, as etcd says.
 *
 * Pure logic, no I/O. Every key and value goes through endpoint.h's rules; a
 * bad one is refused with a reason and counted, and never enters the catalog.
 * A valid endpoint overwritten with a bad value is removed, as if deleted.
 * A JSON value with unknown fields is accepted, with one warning per key
 * naming them (logged here) and a counter.
 * Services and their endpoints are kept sorted by name, so iteration order is
 * stable.
 */
#ifndef SLOTSYNC_CATALOG_H
#define SLOTSYNC_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/endpoint.h>

struct catalog_endpoint {
    char *instance; /* owned, NUL-terminated */
    struct endpoint ep;
    int64_t mod_revision;
    bool seen;             /* for mark-and-sweep during a re-list */
    uint32_t unknown_hash; /* of its value's unknown JSON fields; 0 = none */
};

struct catalog_service {
    char name[SERVICE_NAME_MAX + 1];
    struct catalog_endpoint **endpoints; /* sorted by instance */
    size_t n_endpoints, cap;
    bool dirty; /* endpoints changed since the consumer last cleared it */
};

struct catalog {
    char *prefix;
    struct catalog_service **services; /* sorted by name; empty ones are kept */
    size_t n_services, cap;
    bool relisting;
    /* counters */
    unsigned long long rejected; /* keys or values refused */
    unsigned long long puts, deletes;
    unsigned long long unknown_fields; /* values warned about for unknown JSON fields */
};

enum catalog_change {
    CATALOG_UNCHANGED = 0,
    CATALOG_ADDED,
    CATALOG_UPDATED,
    CATALOG_REMOVED,  /* deleted, or overwritten with a bad value */
    CATALOG_REJECTED, /* bad key or value; *errmsg says why */
};

/* New empty catalog for keys under prefix (copied). NULL on ENOMEM. */
struct catalog *catalog_new(const char *prefix);
void catalog_free(struct catalog *cat);

/* Apply a put of key (klen bytes) = val (vlen bytes) at mod_revision.
 * Returns a catalog_change (>= 0) or -ENOMEM. On CATALOG_REJECTED the reason
 * is in *errmsg (optional, caller frees) and the counter is bumped; if the
 * key named a valid endpoint before, it is removed (and the service marked
 * dirty) but CATALOG_REJECTED is still returned. */
int catalog_put(struct catalog *cat, const char *key, size_t klen, const char *val, size_t vlen,
                int64_t mod_revision, char **errmsg);

/* Apply a delete. Returns CATALOG_REMOVED, CATALOG_UNCHANGED (unknown key)
 * or CATALOG_REJECTED (a key that could never have been valid). */
int catalog_delete(struct catalog *cat, const char *key, size_t klen, char **errmsg);

/* Re-list: catalog_relist_begin() clears every endpoint's seen flag; the
 * listing's puts set it again; catalog_relist_end() removes every endpoint
 * not seen and returns how many it removed. */
void catalog_relist_begin(struct catalog *cat);
size_t catalog_relist_end(struct catalog *cat);

/* The service of that name, or NULL. Borrowed. */
struct catalog_service *catalog_find(const struct catalog *cat, const char *name);

/* The consumer's walk over changed services: start with *pos = 0; each
 * call returns the next dirty service (borrowed) and clears its flag, or
 * NULL at the end. A service the consumer could not take in (out of
 * memory) is handed back with catalog_mark_dirty(). */
struct catalog_service *catalog_take_dirty(struct catalog *cat, size_t *pos);
void catalog_mark_dirty(struct catalog_service *s);

/* Total endpoints over all services. */
size_t catalog_count(const struct catalog *cat);

#endif
