/* announce_key - what a read of announce's key means (pure).
 *
 * While registered, announce reads its key back; at a withdrawal it reads
 * it once more before it may delete a copy a foreign put detached from the
 * lease. These functions say what was found and whether it is ours to
 * delete; announce.c acts on it.
 */
#ifndef SLOTSYNC_ANNOUNCE_KEY_H
#define SLOTSYNC_ANNOUNCE_KEY_H

#include <slotsync/announce_key-t.h>

struct endpoint;

/* Classify the key as read (present, value of len bytes, lease; value
 * borrowed, may hold NUL bytes) against ours (NUL-terminated) and our_lease. */
enum announce_key_verdict announce_key_classify(bool present, const char *value, size_t len,
                                                int64_t lease, const char *ours, int64_t our_lease);

/* "ours", "gone", "detached", "overwritten", "taken". */
const char *announce_key_verdict_name(enum announce_key_verdict v);

/* Whether a withdrawal deletes the key found holding value (len bytes,
 * borrowed) under lease: only when it is under no lease or under our_lease
 * and names our endpoint (same address and port, whatever its weight or
 * state). A value naming another endpoint, an unreadable value or a key
 * under another lease belongs to someone else and is left alone. */
bool announce_key_deletable(const char *value, size_t len, int64_t lease, int64_t our_lease,
                            const struct endpoint *ours);

#endif
