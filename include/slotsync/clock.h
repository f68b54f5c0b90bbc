/* clock - the two clocks: monotonic for durations, wall for times of day.
 *
 * Every "how long ago" and "how long since" is a difference of clock_mono()
 * readings (CLOCK_MONOTONIC): an NTP step or an operator's `date -s` moves
 * the wall clock, not the time that passed. libev's ev_now()/ev_time() are
 * wall time: right for its timers' bookkeeping, wrong for durations. The wall
 * clock (clock_wall()) is read only where a time of day is shown (the log's
 * stamps, the live page's "at" column), and shown as UTC RFC 3339.
 *
 * clock_mono() and clock_wall() read the clocks; the rest is pure.
 */
#ifndef SLOTSYNC_CLOCK_H
#define SLOTSYNC_CLOCK_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds: only differences mean anything. Always > 0
 * on Linux (it counts from boot), so 0 can stand for "never". */
double clock_mono(void);

/* CLOCK_REALTIME in seconds since the epoch: a time of day, never a
 * duration. */
double clock_wall(void);

/* How long ago then was at now (both clock_mono() readings), in seconds:
 * -1 when then <= 0 ("never"), and never below 0. */
double clock_age(double now, double then);

/* The wall time of a monotonic stamp then, given both clocks read at the
 * same moment (mono_now, wall_now): for showing when something happened. A
 * then <= 0 gives 0. */
double clock_wall_of(double then, double mono_now, double wall_now);

/* wall (seconds since the epoch) as UTC RFC 3339 with milliseconds, the
 * log's form: "2026-12-07T01:33:39.123Z", into buf (borrowed; 25 bytes
 * hold it). Returns buf; "-" when wall <= 0 or buf cannot hold it. */
const char *clock_format_utc(double wall, char *buf, size_t size);

#endif
