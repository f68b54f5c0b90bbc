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
 * backend names that passed endpoint_service_name_valid().
 */
#ifndef SLOTSYNC_PLAN_H
#define SLOTSYNC_PLAN_H

#include <stddef.h>

#include <slotsync/runtime-t.h>
#include <slotsync/slots.h>

#define PLAN_CMD_MAX 160

struct plan {
    char **cmds; /* owned, NUL-terminated, no '\n' or ';' */
    size_t n, cap;
};

void plan_init(struct plan *p);
/* Drop all commands, keep the storage. */
void plan_reset(struct plan *p);
void plan_free(struct plan *p);

/* Append one command (printf-style). 0 or -ENOMEM, -EINVAL if the text would
 * contain '\n' or ';' or exceed PLAN_CMD_MAX. */
int plan_add(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append the commands for one slot. want is the slot we want (want->instance
 * NULL = empty); have is HAProxy's view of it, or NULL when unknown. After
 * success, if have is not NULL it is updated to what it will be once the
 * commands are applied. Returns the number of commands added, -ENOMEM, or
 * -EINVAL (backend not a valid service name, or a field that would make an
 * unsafe command); on error nothing is added and have is untouched. */
int plan_slot(struct plan *p, const char *backend, size_t index, const struct slot *want,
              struct server_state *have);

/* plan_slot() over a whole table. have, if not NULL, has t->n entries (an
 * entry with server[0] == '\0' counts as unknown). Returns commands added,
 * -ENOMEM or -EINVAL as plan_slot(); on error nothing is added and have is
 * untouched. */
int plan_backend(struct plan *p, const char *backend, const struct slot_table *t,
                 struct server_state *have);

#endif
