/* plan-t - a batch of commands, its parts, and the names of HAProxy's commands (plan.h has the
 * functions). */
#ifndef SLOTSYNC_PLAN_T_H
#define SLOTSYNC_PLAN_T_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint-t.h>
#include <slotsync/view-t.h>

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

/* New backends at run time (dynback.h, HAProxy 3.4+). The prefixes by
 * which replies are told apart. */
#define PLAN_ADD_BACKEND "add backend "
#define PLAN_PUBLISH_BACKEND "publish backend "
#define PLAN_UNPUBLISH_BACKEND "unpublish backend "
#define PLAN_DEL_SERVER "del server "
#define PLAN_DEL_BACKEND "del backend "

#endif
