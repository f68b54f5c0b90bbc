/* announce - the registration sidekick: keeps one endpoint's key alive in
 * etcd under a lease while the service is healthy (and, with -- CMD, while
 * its child process lives).
 *
 * Its command line is announce_opts.h; the other pure parts (value, key
 * verdicts, backoff) are exported here so that they can be tested without a
 * loop; announce_main() wires them to the loop, the etcd client and the
 * checks (health.h).
 */
#ifndef SLOTSYNC_ANNOUNCE_H
#define SLOTSYNC_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/announce_opts.h>
#include <slotsync/endpoint.h>

/* The value published for ep: {"host":"H","port":P[,"weight":W][,"state":S]}
 * (weight only when with_weight, state only when ep->state is not ready) or,
 * with ANNOUNCE_FORMAT_PLAIN, "H:P" / "[H]:P" (neither weight nor a state
 * other than ready is representable there: -EINVAL). Writes a
 * NUL-terminated string to buf. Returns its length, -ENOSPC if size is too
 * small, or -EINVAL. */
int announce_format_value(const struct endpoint *ep, bool with_weight, enum announce_format format,
                          char *buf, size_t size);

/* Delay in seconds before retry number attempt (0 = first retry): the
 * exponential base * 2^attempt capped at cap, of which the upper half is
 * scaled by r in [0, 1) (jitter), so the result is in [d/2, d). */
double announce_backoff(unsigned attempt, double base, double cap, double r);

/* What a periodic read of the key found, against what announce last put. */
enum announce_key_verdict {
    ANNOUNCE_KEY_OURS = 0,    /* our value under our lease */
    ANNOUNCE_KEY_GONE,        /* deleted by someone else */
    ANNOUNCE_KEY_DETACHED,    /* our value, but under no lease (a put without --lease) */
    ANNOUNCE_KEY_OVERWRITTEN, /* another value, under no lease or under ours */
    ANNOUNCE_KEY_TAKEN,       /* under another live lease: another writer owns it */
};

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

/* Entry point for "slotsync announce ...": argv[0] is "announce". Returns the
 * process exit status: 2 for a bad command line, the child's status with
 * -- CMD (128 + signal if it was killed), else 0 after a clean stop on
 * SIGTERM/SIGINT, 1 on a fatal error. SIGUSR1 drains and SIGUSR2 makes the
 * endpoint ready again without stopping. */
int announce_main(int argc, char **argv);

#endif
