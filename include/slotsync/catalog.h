/* catalog - the desired state: which endpoints each service has, as etcd says.
 *
 * Pure logic, no I/O. Every key and value goes through endpoint.h's rules; a
 * bad one is refused with a reason and counted, and never enters the catalog.
 * A valid endpoint overwritten with a bad value is removed, as if deleted.
 * A JSON value with unknown fields is accepted, with one warning per key
 * naming them (logged here) and a counter.
 * Services and their endpoints are kept sorted by name, so iteration order is
 * stable.
 *
 * Caps (catalog_set_limits()): a new service beyond max_services, or a new
 * endpoint beyond max_endpoints_per_service, is refused: held aside (not in
 * endpoints[], so no consumer sees it), warned about once (logged here) and
 * counted. Held ones are taken on when room frees, in name order (services
 * by name, a service's endpoints by instance), and logged then. What is
 * served is never dropped for a cap, not even when a cap is lowered.
 */
#ifndef SLOTSYNC_CATALOG_H
#define SLOTSYNC_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/endpoint-t.h>

struct etcd_kv;

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
    /* refused by a cap (catalog_set_limits()): sorted by instance, not served */
    struct catalog_endpoint **held;
    size_t n_held, cap_held;
    bool waiting; /* refused by max_services: every endpoint is held, none served */
};

/* The caps on what etcd can create (0: no cap). exempt (optional) names the
 * services that are always served and not counted against max_services
 * (the configured ones); it is asked again whenever a service gets its
 * first endpoint or loses its last. */
struct catalog_limits {
    size_t max_services;
    size_t max_endpoints; /* per service */
    bool (*exempt)(const char *service, void *arg);
    void *arg;
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
    /* caps */
    struct catalog_limits limits;
    size_t n_counted;                    /* services with endpoints counted against max_services */
    size_t n_waiting;                    /* services refused by max_services now */
    unsigned long long capped_services;  /* services refused by max_services */
    unsigned long long capped_endpoints; /* endpoints refused by max_endpoints */
};

enum catalog_change {
    CATALOG_UNCHANGED = 0,
    CATALOG_ADDED,
    CATALOG_UPDATED,
    CATALOG_REMOVED,  /* deleted, or overwritten with a bad value */
    CATALOG_REJECTED, /* bad key or value; *errmsg says why */
    CATALOG_HELD,     /* a new endpoint refused by a cap (warned about here) */
};

/* New empty catalog for keys under prefix (copied). NULL on ENOMEM. */
struct catalog *catalog_new(const char *prefix);
void catalog_free(struct catalog *cat);

/* Apply a put of key (klen bytes) = val (vlen bytes) at mod_revision.
 * Returns a catalog_change (>= 0) or -ENOMEM. On CATALOG_REJECTED the reason
 * is in *errmsg (optional, caller frees) and the counter is bumped; if the
 * key named a valid endpoint before, it is removed (and the service marked
 * dirty) but CATALOG_REJECTED is still returned. A new endpoint refused by
 * a cap returns CATALOG_HELD; a put of an endpoint held already updates it
 * aside and returns CATALOG_UNCHANGED. */
int catalog_put(struct catalog *cat, const char *key, size_t klen, const char *val, size_t vlen,
                int64_t mod_revision, char **errmsg);

/* Apply a delete. Returns CATALOG_REMOVED, CATALOG_UNCHANGED (unknown key)
 * or CATALOG_REJECTED (a key that could never have been valid). */
int catalog_delete(struct catalog *cat, const char *key, size_t klen, char **errmsg);

/* What catalog_apply_event() read from a key and its value: the caller's
 * log line needs no second parse of either. */
struct catalog_parsed {
    bool key_ok;                          /* the key names a service and an instance (below) */
    bool value_ok;                        /* a put's value is a valid endpoint (ep) */
    char service[SERVICE_NAME_MAX + 1];   /* "" unless key_ok */
    char instance[INSTANCE_NAME_MAX + 1]; /* "" unless key_ok */
    struct endpoint ep;                   /* set when value_ok */
};

/* One key from etcd (kv borrowed): catalog_delete() for a deleted one, else
 * catalog_put(); returns theirs. *out is always set (zeroed first). */
int catalog_apply_event(struct catalog *cat, const struct etcd_kv *kv, struct catalog_parsed *out,
                        char **errmsg);

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

/* Total endpoints over all services (served ones: not those held). */
size_t catalog_count(const struct catalog *cat);

/* Set the caps (copied; l->arg borrowed) and apply them: what is held and
 * now has room is taken on (services marked dirty); nothing served is
 * dropped. Counts are taken again (exempt may answer differently now). */
void catalog_set_limits(struct catalog *cat, const struct catalog_limits *l);

/* What the caps hold now: services refused by max_services (*services) and
 * endpoints refused by max_endpoints in services that are served
 * (*endpoints). Walks every service. */
void catalog_held(const struct catalog *cat, size_t *services, size_t *endpoints);

#endif
