/* plan - the runtime commands that take HAProxy from what it has to what we
 * want, one backend at a time.
 *
 * Pure logic. Per slot, in this order:
 *  - slot now empty: "state maint" first, only then "addr 0.0.0.0 port 0"
 *    (clearing the address of a server still in rotation would send traffic
 *    to a dead address);
 *  - slot filled or changed: "addr IP port P" if it differs, "weight W" if it
 *    differs, then "state ready|drain|maint" if it differs.
 * When HAProxy's state is unknown every command is emitted (they are all
 * idempotent). Command text is built only from validated endpoint fields and
 * backend names that passed spare_proxy_name_valid() (a service or a spare).
 *
 * Two things can hold a command back (struct plan_opts):
 *  - a static algorithm (static-rr, source): HAProxy 2.6 refuses any run-time
 *    weight but 0% and 100% of the configured one, so no weight is sent; an
 *    endpoint of weight 0 in state ready is put in drain instead;
 *  - a refusal: a command HAProxy refused is not planned again for as long as
 *    the slot's desired endpoint and HAProxy's side of it (addr, port, weight,
 *    admin state) are what they were when it was planned.
 */
#ifndef SLOTSYNC_PLAN_H
#define SLOTSYNC_PLAN_H

#include <slotsync/plan-t.h>

struct host_route;
struct slot;
struct slot_table;

void plan_init(struct plan *p);
/* Drop all commands, keep the storage. */
void plan_reset(struct plan *p);
void plan_free(struct plan *p);

/* Append one command (printf-style). 0 or -ENOMEM, -EINVAL if the text would
 * contain '\n', ';' or another control byte, or exceed PLAN_CMD_MAX. */
int plan_add(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int plan_resync(struct plan *p, bool level, const char *map_path);
/* `slotsync status`'s reads: PLAN_SHOW_STATE, PLAN_SHOW_STAT and, when
 * map_path is not NULL (spare backends), "show map <map_path>". 0 or as
 * plan_add(). */
int plan_inspect(struct plan *p, const char *map_path);

/* Slots from+1..to of a running backend, added with "add server B/sN
 * 0.0.0.0:0 <server_options>" (a dynamic server starts in maintenance),
 * each followed by "enable health" when server_options has a "check" word.
 * 0 or as plan_add(). */
int plan_add_slots(struct plan *p, const char *backend, size_t from, size_t to,
                   const char *server_options);

/* A new backend for a service: "add backend B from <DYNBACK_DEFAULTS> mode
 * http" (created unpublished), then slots 1..slots as plan_add_slots()
 * adds them. The caller plans the slots' contents after these, then
 * plan_publish_backend(). backend: a service name. 0, -EINVAL (a name
 * that is not a service's) or as plan_add(); on error nothing is added. */
int plan_create_backend(struct plan *p, const char *backend, size_t slots,
                        const char *server_options);
/* "publish backend B": content switching may choose it. 0 or as above. */
int plan_publish_backend(struct plan *p, const char *backend);
/* The removal of a backend created at run time, in the order HAProxy
 * requires it ("del backend" refuses a published backend or one with a
 * server; "del server" refuses a server not in maintenance): "unpublish
 * backend B", per slot "set server B/sN state maint" and "del server
 * B/sN" (last slot first), then "del backend B". 0 or as above. */
int plan_delete_backend(struct plan *p, const char *backend, size_t slots);

/* Append the commands for one slot. want is the slot we want (want->instance
 * NULL = empty); have is HAProxy's view of it, or NULL when unknown. After
 * success, if have is not NULL it is updated to what it will be once the
 * commands are applied. Returns the number of commands added, -ENOMEM, or
 * -EINVAL (backend not a valid service name, or a field that would make an
 * unsafe command); on error nothing is added and have is untouched. */
int plan_slot(struct plan *p, const char *backend, size_t index, const struct slot *want,
              struct server_view *have);

/* plan_slot() over a whole table. have, if not NULL, has t->n entries (an
 * entry that is not view_known() counts as unknown). Returns commands added,
 * -ENOMEM or -EINVAL as plan_slot(); on error nothing is added and have is
 * untouched. */
int plan_backend(struct plan *p, const char *backend, const struct slot_table *t,
                 struct server_view *have);

/* The map commands ("add map", "set map", "del map" on map_path) that turn
 * have into want; both sorted by host, hosts unique (as render_host_routes()
 * makes them and runtime_parse_map() + sorting reads them). Once they are
 * applied, HAProxy's map is want, and planning want against want adds
 * nothing. Returns the number of commands added, -ENOMEM, or -EINVAL (a
 * field that would make an unsafe or over-long command); on error nothing is
 * added. Borrows everything. */
int plan_map(struct plan *p, const char *map_path, const struct host_route *want, size_t n_want,
             const struct host_route *have, size_t n_have);

/* plan_backend() with options (opts may be NULL: none). Every command added
 * gets its origin (backend, slot, HAProxy's side before it). */
int plan_backend_opts(struct plan *p, const char *backend, const struct slot_table *t,
                      struct server_view *have, const struct plan_opts *opts);

/* Fill r (its old instance is freed) from a refused command's origin and the
 * slot it was planned for (borrowed; copied). have, if not NULL, is the
 * caller's view of that slot, which assumed the command applied: the field
 * the command sets is put back to what HAProxy had (o->before), and that
 * view is what r remembers as HAProxy's side (so the rest of the batch,
 * which did apply, does not count as a change). 0, -EINVAL (not a slot
 * command) or -ENOMEM. */
int plan_refusal_set(struct plan_refusal *r, const char *cmd, const struct plan_origin *o,
                     const struct slot *want, struct server_view *have);
/* Free what r owns; r is left zeroed. */
void plan_refusal_clear(struct plan_refusal *r);

/* Whether cmd, planned for slot want over have (NULL = unknown), is held back
 * by one of the refusals. */
bool plan_refused(const struct plan_refusal *refused, size_t n, size_t slot, const char *cmd,
                  const struct slot *want, const struct server_view *have);

#endif
