/* feed - etcd's keys into the catalog, each said in the log.
 *
 * A key from a listing or a watch event is put into (or deleted from) the
 * catalog, which validates it and hands back what it parsed
 * (catalog_apply_event(): the key is parsed once); what it did is one log
 * line with the key's fields (logfmt/json): a rejection at warn with the reason, a change at
 * info (debug during a listing, whose summary the controller logs). No
 * other I/O: the controller calls it from the etcd sync's callbacks.
 */
#ifndef SLOTSYNC_FEED_H
#define SLOTSYNC_FEED_H

#include <stdbool.h>

struct etcd_kv;

struct catalog;

/* Apply kv (borrowed) to cat and log it. listing: kv comes from a listing
 * (its lines are debug). quiet: say only rejections and errors (render
 * mode). rejected: METRICS_REJECTS counters (metrics.h), the one for a bad
 * key or a bad value is incremented on a rejection. Returns the catalog's
 * CATALOG_* result, or a negative errno (logged; a later listing repairs
 * what was lost). */
int feed_kv(struct catalog *cat, const struct etcd_kv *kv, bool listing, bool quiet,
            unsigned long long *rejected);

#endif
