/* policy - the controller's own choices, pure: where a new service goes,
 * and whether an empty etcd listing applies.
 *
 * No I/O, no clock, no state of its own: the controller gathers the facts
 * (from apply, pool, rollout, the table and the config), asks here, and
 * carries the answer out. The cost model for a large plan is bulk.h's.
 */
#ifndef SLOTSYNC_POLICY_H
#define SLOTSYNC_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* A claimed service HAProxy runs no backend for. */
struct policy_place_facts {
    bool render_only;    /* slotsync render: no socket to add anything through */
    bool dynamic_usable; /* HAProxy adds backends at run time (dynback.h) */
    bool dynamic_fits;   /* dynback_fits(): a service that may be one */
    bool ours;           /* claimed by slotsync, not a foreign proxy's name */
    bool reload_busy;    /* a reload is asked for or under way */
};

/* The ways to try, in this order; the last one, a reload, always comes
 * when the others did not take it. */
struct policy_place {
    bool dynamic;    /* its own backend at the next batch ("add backend") */
    bool spare_bind; /* a free spare may be bound to it (a spare already
                      * carrying its name is used either way) */
};

void policy_place(const struct policy_place_facts *f, struct policy_place *out);

/* After an etcd listing with no valid key, HAProxy's state read. */
enum policy_empty {
    POLICY_EMPTY_APPLY, /* apply the empty registry (empties our backends) */
    POLICY_EMPTY_HOLD,  /* keep HAProxy as it is until keys appear */
};

struct policy_empty_out {
    enum policy_empty act;
    bool log; /* a line is due: the hold starts, or a hold ends */
    /* POLICY_EMPTY_APPLY: static text, why it applies */
    const char *why;
};

/* filled: filled slots HAProxy holds in our backends; allow:
 * allow_empty_registry; held: the hold is on now. */
void policy_empty_registry(size_t filled, bool allow, bool held, struct policy_empty_out *out);

#endif
