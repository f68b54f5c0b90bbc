/* status - what etcd says next to what HAProxy does, and where they differ.
 *
 * Pure: joins a catalog (etcd's listing) with HAProxy's "show servers state"
 * and "show stat" replies into one JSON document (the one `slotsync status
 * --json` prints and the admin endpoint serves at /status), and renders that
 * document as aligned tables for people. No I/O.
 *
 * The join is by address: an etcd endpoint is in the slot of its backend
 * that has its address and port. A slot in maint that no endpoint claims is
 * free. Drift is any disagreement: an endpoint without a slot, a slot
 * serving an address etcd does not have, or an admin state or weight that
 * differs from etcd's.
 */
#ifndef SLOTSYNC_STATUS_H
#define SLOTSYNC_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct metrics_recent;

struct catalog;

/* A service whose backend lives in a proxy of another name: a spare
 * backend it is bound to (spare.h). */
struct status_alias {
    const char *service, *proxy; /* borrowed */
};

/* Build the document. backends (n, borrowed) names the backends to show (the
 * config's services); services of the catalog are added to them. HAProxy's
 * rows of an alias's proxy count as its service's, whose entry gets
 * "proxy" (the table prints "web (spare:3)"). state_text
 * is the "show servers state" reply, stat_text the "show stat" reply (NULL:
 * no session or check columns). Returns 0 and a new reference in *out, or
 * -EPROTO (state_text is not version 1 output) or -ENOMEM with *errmsg. */
int status_build(const struct catalog *cat, int64_t revision, const char *const *backends,
                 size_t n_backends, const struct status_alias *aliases, size_t n_aliases,
                 const char *state_text, const char *stat_text, json_t **out, char **errmsg);

/* Keep only the backend named service in doc (borrowed, changed in place).
 * Returns 0, or -ENOENT when doc has no such backend. */
int status_filter(json_t *doc, const char *service);

/* The tables for doc (borrowed) into *out (owned, free()). all: list free
 * slots one by one instead of summarising them. Returns 0 or -ENOMEM
 * (-EINVAL if doc is not a status document). */
int status_render_table(const json_t *doc, bool all, char **out);

/* Add "recent": the changes of r (borrowed), newest first, to doc. Returns
 * 0 or -ENOMEM. */
int status_add_recent(json_t *doc, const struct metrics_recent *r);

/* Set "routed" on each backend of doc: routed(name, arg) says whether a
 * frontend reaches it (issue 19: a backend nothing routes to is marked,
 * and the table says NOT ROUTED). Returns 0 or -ENOMEM. */
int status_mark_routed(json_t *doc, bool (*routed)(const char *name, void *arg), void *arg);

/* Number of drifts in doc; 0 means etcd and HAProxy agree. */
size_t status_drift_count(const json_t *doc);

/* true when doc (a daemon's /status) says the daemon cannot read etcd: its
 * "etcd" object has "connected": false. A document without one (`status`
 * reading etcd itself) is never. */
bool status_etcd_down(const json_t *doc);

/* ---- the daemon's state dump (SIGUSR1) ---- */

struct status_dump_backend {
    const char *name; /* borrowed */
    size_t used, slots, endpoints, overflow;
    bool present, configured;
};

/* What the daemon knows, as the dump says it. Times are clock_mono() seconds;
 * a time <= 0 is "never". */
struct status_dump {
    double now;
    int64_t revision;
    bool watching, listed;
    size_t endpoints, services;
    unsigned long long rejected, unknown_fields;
    bool synced;
    double last_resync_at;
    unsigned long long resyncs;
    double last_reload_at;
    unsigned long long reloads, reload_failures, check_failures;
    bool reloading;
    unsigned long long batches, commands, refused;
    const struct status_dump_backend *backends; /* borrowed */
    size_t n_backends;
    /* etcd's connection: up, since when (changed), its last answer, the
     * endpoint (host:port) and the last error (borrowed, NULL: none) */
    bool etcd_up;
    double etcd_since, etcd_last_contact;
    const char *etcd_endpoint, *etcd_error;
    const char *etcd_transport; /* "grpc", "json"; NULL: not known */
};

/* The dump's lines, in order, each given to line() (no newline; text is
 * borrowed for the call). Returns 0, or -ENOMEM (some lines may have been
 * given). */
int status_dump(const struct status_dump *d, void (*line)(const char *text, void *arg), void *arg);

#endif
