/* slots - which endpoint sits in which server slot of a backend.
 *
 * Pure logic. Rules: an endpoint keeps its slot for as long as it exists
 * (address, weight or state changes are made in place); a removed endpoint
 * frees its slot; a new endpoint takes, in order of preference, a free slot
 * whose observed HAProxy address and port equal its own (so a restarted
 * slotsync adopts what HAProxy already has), else the lowest free slot.
 * Endpoints that do not fit are counted as overflow, never dropped silently.
 */
#ifndef SLOTSYNC_SLOTS_H
#define SLOTSYNC_SLOTS_H

#include <slotsync/slots-t.h>

struct catalog_service;
struct server_view;

/* Make a table of n free slots. 0 or -ENOMEM. */
int slots_init(struct slot_table *t, size_t n);
/* Grow to n slots (n >= t->n), new ones free. 0 or -ENOMEM. */
int slots_grow(struct slot_table *t, size_t n);
/* Shrink to n slots (n <= t->n; a larger n does nothing): the dropped
 * slots' entries are freed, the storage is kept. */
void slots_shrink(struct slot_table *t, size_t n);
void slots_free(struct slot_table *t);

/* Assign the service's endpoints (svc may be NULL: no endpoints) to slots by
 * the rules above. observed, if not NULL, holds t->n entries, entry i being
 * what HAProxy has in slot i (an entry that is not view_known() is unknown).
 * Returns the number of slots whose content changed (>= 0) or -ENOMEM;
 * t->overflow is set to the count that did not fit. */
int slots_assign(struct slot_table *t, const struct catalog_service *svc,
                 const struct server_view *observed);
/* slots_assign() while the service's endpoints are only partly known (a
 * listing partly read): a new endpoint without an observed match takes only
 * a free slot where HAProxy has no address (or an unknown one), since a slot
 * HAProxy has filled may hold an endpoint not listed yet; one that finds
 * none stays out for now and is not counted as overflow. */
int slots_assign_partial(struct slot_table *t, const struct catalog_service *svc,
                         const struct server_view *observed);

/* Parse a server name "s<N>" (N >= 1, no leading zero) into slot index N-1.
 * Returns the index or -1. */
long slots_index_of(const char *server_name);

/* How many slots hold an endpoint. */
size_t slots_used(const struct slot_table *t);

#endif
