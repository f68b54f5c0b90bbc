/* spare-t - the spare pool (spare.h has the functions). */
#ifndef SLOTSYNC_SPARE_T_H
#define SLOTSYNC_SPARE_T_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint-t.h>
#include <slotsync/names-t.h>

/* "web (spare:3)": a service name, the spare's and the decoration */
#define SPARE_LABEL_SIZE (SERVICE_NAME_MAX + SPARE_NAME_SIZE + 4)

struct spare_pool {
    size_t n;                            /* spares in the file HAProxy runs */
    char (*bound)[SERVICE_NAME_MAX + 1]; /* n entries: the service, or "" when free */
    size_t n_bound;
};

/* What the pool asks for after a change. */
enum spare_refill {
    SPARE_REFILL_NONE,  /* at least half the spares are free */
    SPARE_REFILL_LATER, /* fewer than half: one reload, coalesced */
    SPARE_REFILL_NOW,   /* none free and a service waits for one */
};

/* What spare_adopt() did. */
struct spare_adoption {
    size_t adopted;   /* bindings taken from the map */
    size_t kept;      /* already the pool's */
    size_t conflicts; /* the map disagreed with the pool: the pool's stays */
    size_t ignored;   /* a spare out of range or a host that is not <service>.<domain> */
};

#endif
