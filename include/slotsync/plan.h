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

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint.h>
#include <slotsync/routes-t.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

/* The longest command plan_add() accepts. Commands are built in memory of
 * their own size (no fixed buffer can cut one short); this bound only keeps
 * a command well inside HAProxy's CLI buffer (tune.bufsize, 16 kB by
 * default). The longest command validated input can make ("add map" with a
 * CONFIG_PATH_MAX path, a CONFIG_HOSTNAME_MAX host and a service name) fits,
 * which plan.c checks at compile time. */
#define PLAN_CMD_MAX 8192

/* One slot's change, for the log: which commands carry it and what HAProxy
 * had and will have in the fields that change ("addr 10.0.0.1:80 weight 3
 * maint"). */
#define PLAN_STATE_TEXT 96
struct plan_change {
    char backend[SERVICE_NAME_MAX + 1];
    size_t slot;     /* index: server s<slot+1> */
    size_t first, n; /* cmds[first .. first+n-1] */
    char *instance;  /* owned copy; NULL when the slot is emptied */
    bool known;      /* HAProxy's state of the slot was known */
    bool drift;      /* set by the caller: HAProxy's state was not what we set */
    char had[PLAN_STATE_TEXT], want[PLAN_STATE_TEXT];
};

/* Where a command came from: slot -1 for one that is not a slot's (map
 * changes, "add server"). */
struct plan_origin {
    char backend[SERVICE_NAME_MAX + 1];
    long slot;
    struct server_view before; /* HAProxy's side when the command was planned */
};

struct plan {
    char **cmds;                /* owned, NUL-terminated, no '\n' or ';' */
    struct plan_origin *origin; /* n entries, parallel to cmds */
    size_t n, cap;
    struct plan_change *changes; /* owned; one per slot plan_slot/plan_backend changed */
    size_t n_changes, cap_changes;
};

/* A command HAProxy refused, and the conditions it was refused under. */
struct plan_refusal {
    size_t slot;
    char cmd[PLAN_CMD_MAX + 1];
    char *instance;     /* owned copy; NULL for an empty slot */
    struct endpoint ep; /* the endpoint wanted (zero for an empty slot) */
    struct server_view before;
    /* the caller's, for rate-limiting its log line */
    char reason[128];
    double warned_at;
};

struct plan_opts {
    bool static_weights; /* never send a weight; weight 0 = drain */
    /* Fill empty slots only: a slot is planned only when it is to hold an
     * endpoint and HAProxy's side of it is known and empty (view_empty());
     * nothing is emptied, moved or changed. For a listing only partly read:
     * what is not listed yet may still be wanted. */
    bool additions_only;
    const struct plan_refusal *refused;
    size_t n_refused;
};

void plan_init(struct plan *p);
/* Drop all commands, keep the storage. */
void plan_reset(struct plan *p);
void plan_free(struct plan *p);

/* Append one command (printf-style). 0 or -ENOMEM, -EINVAL if the text would
 * contain '\n', ';' or another control byte, or exceed PLAN_CMD_MAX. */
int plan_add(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The inspection's read: "show stat" (counters and check state per server),
 * asked after PLAN_SHOW_STATE by `slotsync status` and the admin endpoint. */
#define PLAN_SHOW_STAT "show stat"
/* The admin endpoint's liveness probe of the runtime socket. */
#define PLAN_SHOW_INFO "show info"

/* The prefixes of the slot commands plan.c writes, by which
 * runtime_reply_ok() tells which reply a command expects. */
#define PLAN_SET_SERVER "set server "
#define PLAN_ADD_SERVER "add server "

/* The master socket's commands (reload.c): the workers it runs, and a
 * reload of them all. */
#define PLAN_MASTER_SHOW_PROC "show proc"
#define PLAN_MASTER_RELOAD "reload"

/* The resync's read commands, in the order of their replies: "show cli
 * level" first when level is set, then PLAN_SHOW_STATE, PLAN_SHOW_BACKENDS
 * and, when map_path is not NULL, "show map <map_path>". Their replies are
 * checked with runtime_reply_ok(PLAN_SHOW_*, reply). 0 or as plan_add(); on
 * error p may hold some of them. */
#define PLAN_SHOW_LEVEL "show cli level"
#define PLAN_SHOW_STATE "show servers state"
#define PLAN_SHOW_BACKENDS "show backend"
#define PLAN_SHOW_MAP "show map "
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

/* New backends at run time (dynback.h, HAProxy 3.4+). The prefixes by
 * which replies are told apart. */
#define PLAN_ADD_BACKEND "add backend "
#define PLAN_PUBLISH_BACKEND "publish backend "
#define PLAN_UNPUBLISH_BACKEND "unpublish backend "
#define PLAN_DEL_SERVER "del server "
#define PLAN_DEL_BACKEND "del backend "

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
