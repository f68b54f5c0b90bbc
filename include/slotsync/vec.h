/* vec - one growable array: room for more elements, the capacity doubled.
 *
 * Pure (no I/O). Every array slotsync grows (commands, routes, rows, a
 * reply's bytes, a rendered file) grows the same way: from a first
 * capacity, doubled until what is wanted fits, with the multiplication
 * checked. The caller keeps its own pointer, count and capacity;
 * vec_reserve() only makes room.
 */
#ifndef SLOTSYNC_VEC_H
#define SLOTSYNC_VEC_H

#include <stddef.h>

/* The capacity room for want elements takes, from cap: cap itself when
 * want <= cap, else first (when cap is 0) or cap, doubled until it is at
 * least want. 0 when that would overflow a size_t. */
size_t vec_next_cap(size_t cap, size_t want, size_t first);

/* Make room for want elements of size bytes in the array *itemsp points to
 * (itemsp is the address of the caller's pointer, of any element type;
 * *cap its capacity in elements). When want <= *cap nothing changes; else
 * the array is reallocated to vec_next_cap(*cap, want, first) elements
 * (the first *cap kept) and *itemsp and *cap are updated. 0, or -ENOMEM
 * (overflow or no memory) with the array, *itemsp and *cap as they were. */
int vec_reserve(void *itemsp, size_t *cap, size_t want, size_t size, size_t first);

#endif
