/* slots-t - the slot table (slots.h has the functions). */
#ifndef SLOTSYNC_SLOTS_T_H
#define SLOTSYNC_SLOTS_T_H

#include <stddef.h>

#include <slotsync/endpoint-t.h>

/* Slot i is HAProxy server "s<i+1>" of its backend. */
#define SLOT_NAME_FMT "s%zu"

struct slot {
    char *instance; /* owned; NULL when the slot is free */
    struct endpoint ep;
};

struct slot_table {
    struct slot *slots;
    size_t n;
    size_t overflow; /* endpoints that found no slot at the last assign */
};

#endif
