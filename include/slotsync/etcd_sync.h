/* etcd_sync - a prefix of etcd kept in sync on the loop: list the prefix in
 * pages, then watch from the listing's revision + 1; on a broken stream
 * reconnect with capped exponential backoff and jitter and resume from the
 * last revision seen; when that revision was compacted, list again (the
 * consumer diffs). Built on the etcd client (etcd.h), whose endpoints,
 * failover and authentication it shares.
 */
#ifndef SLOTSYNC_ETCD_SYNC_H
#define SLOTSYNC_ETCD_SYNC_H

struct etcd_sync_ops;
struct etcd_sync_stats;

struct etcd_client;
struct etcd_sync;

/* The consumer sees a listing as list_begin, kv* (deleted
 * false), list_end; then watch events as kv* (deleted set for deletes),
 * each watch message closed by batch_end. A re-list after compaction or a
 * lost revision repeats list_begin..list_end, so the consumer can diff.
 * Each page of a listing is delivered as soon as it is read (its kv calls,
 * then list_page when more pages follow) and freed: until list_end the
 * consumer has part of the listing. A listing that fails or is compacted
 * part way starts again with list_begin (no list_end in between).
 * connected(false) reports a broken stream (kept trying in the background);
 * its why is safe to log as it is (see etcd_reply_cb in etcd.h).
 *
 * While watching, the member the watch is on is probed every second on a
 * connection of its own (a linearizable one-key range, 3 s timeout); a
 * member that does not answer is hung: the watch moves to the next endpoint
 * and resumes after the last revision. The watch also asks for a leader
 * (gRPC metadata hasleader), so a member cut off from the cluster cancels
 * it. A probe whose header revision is below one already seen, or whose
 * cluster id changed, means a rebuilt or restored cluster: one warning and a
 * full re-list. The callbacks (struct etcd_sync_ops) and counters are in
 * etcd-t.h. */

/* Start syncing prefix (copied). ops and arg are borrowed. NULL on ENOMEM. */
struct etcd_sync *etcd_sync_start(struct etcd_client *c, const char *prefix,
                                  const struct etcd_sync_ops *ops, void *arg);
void etcd_sync_stop(struct etcd_sync *s);
/* The stall detector's period (etcd.watch_check_interval_s; 30 s unless
 * set; 0 turns it off), from the next check on. While a watch runs, each
 * period one linearizable, keys-only, limit-1 range of the prefix sorted by
 * mod_revision (newest key, and the prefix's key count) is compared with
 * what was applied (etcd_stall.h); etcd ahead at two checks in a row with
 * the watch not moving is a stall: one warning, stats.watch_stalls, and
 * the watch restarts on the next endpoint after the last revision applied. */
void etcd_sync_set_check_interval(struct etcd_sync *s, double seconds);
const struct etcd_sync_stats *etcd_sync_stats(const struct etcd_sync *s);
/* The endpoint URL (borrowed from the client) the watch runs on, or the
 * one it tries next while it does not; NULL if the client has none. */
const char *etcd_sync_endpoint(const struct etcd_sync *s);

#endif
