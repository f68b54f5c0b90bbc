/* sorted - one binary search over a sorted array.
 *
 * Pure (no I/O). The tables slotsync keeps sorted (backends by name, a
 * service's endpoints by instance, adoption candidates by address) are
 * searched with this one loop, which also says where a missing key goes.
 */
#ifndef SLOTSYNC_SORTED_H
#define SLOTSYNC_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/* The index of the first of the n elements at base (size bytes each,
 * sorted by cmp) that is not below key: where key is, or where it would be
 * inserted (n when every element is below it). cmp(key, elem), as
 * bsearch()'s, is < 0, 0 or > 0 as key sorts before, with or after elem.
 * *found (optional) says whether that element equals key. Borrows
 * everything. */
size_t sorted_find(const void *key, const void *base, size_t n, size_t size,
                   int (*cmp)(const void *key, const void *elem), bool *found);

#endif
