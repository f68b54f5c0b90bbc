/* metrics - the daemon's counters and histograms, and their Prometheus text.
 *
 * Pure: the controller increments a struct metrics; metrics_render() turns a
 * snapshot into the text exposition format (version 0.0.4) served at the
 * admin endpoint's /metrics. No I/O, no clock: times are passed in.
 */
#ifndef SLOTSYNC_METRICS_H
#define SLOTSYNC_METRICS_H

#include <slotsync/metrics-t.h>

/* Upper bounds (seconds) of the histogram buckets; +Inf is implied. */
extern const double metrics_bucket_bounds[METRICS_BUCKETS];

void metrics_pending_add(struct metrics_pending *p, double at);
/* Append src's groups to dst and empty src. */
void metrics_pending_move(struct metrics_pending *dst, struct metrics_pending *src);
/* Observe now - arrival for every event of p into h, then empty p. Returns
 * the oldest event's latency (0 when p was empty). */
double metrics_pending_observe(struct metrics_pending *p, struct metrics_histogram *h, double now);

/* Append a change (strings copied, cut to fit). */
void metrics_recent_add(struct metrics_recent *r, const struct metrics_change *ch);
/* The i-th most recent change (0 = newest), or NULL. Borrowed. */
const struct metrics_change *metrics_recent_get(const struct metrics_recent *r, size_t i);

/* Count n observations of value seconds (n events applied together). */
void metrics_observe(struct metrics_histogram *h, double seconds, unsigned long long n);

/* The exposition text of m into *out (owned, NUL-terminated, free()), its
 * length in *len. Returns 0 or -ENOMEM. */
int metrics_render(const struct metrics *m, char **out, size_t *len);

const char *metrics_cause_name(enum metrics_reload_cause cause);

#endif
