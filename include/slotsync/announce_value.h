/* announce_value - the value "slotsync announce" publishes for its
 * endpoint (pure).
 *
 * One formatter for announce (the value put under the lease, and its drain
 * form) and announce_opts (which formats it once and parses it back with the
 * daemon's endpoint_parse_value(), so a value the daemon would refuse is
 * refused at the command line).
 */
#ifndef SLOTSYNC_ANNOUNCE_VALUE_H
#define SLOTSYNC_ANNOUNCE_VALUE_H

#include <slotsync/announce_value-t.h>

struct endpoint;

/* The value published for ep: {"host":"H","port":P[,"weight":W][,"state":S]}
 * (weight only when with_weight, state only when ep->state is not ready) or,
 * with ANNOUNCE_FORMAT_PLAIN, "H:P" / "[H]:P" (neither weight nor a state
 * other than ready is representable there: -EINVAL). Writes a
 * NUL-terminated string to buf. Returns its length, -ENOSPC if size is too
 * small, or -EINVAL. */
int announce_format_value(const struct endpoint *ep, bool with_weight, enum announce_format format,
                          char *buf, size_t size);

#endif
