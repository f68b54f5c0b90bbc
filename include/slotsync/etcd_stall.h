/* etcd_stall - does etcd hold changes the watch has not delivered? The pure
 * comparison behind the watch stall detector (issue 24).
 *
 * A watch can stop delivering events while its connection stays up and its
 * endpoint keeps answering other calls (etcd's grpc-proxy has such bugs:
 * etcd#9988, etcd#21813). So the sync asks etcd now and then, beside the
 * watch, for the prefix's newest key by mod_revision and its key count (one
 * linearizable, keys-only, limit-1 range) and compares the answer with what
 * it has applied. One answer ahead may be an event in flight; two in a row,
 * with the watch not having delivered since what etcd had at the first, is
 * a stall.
 */
#ifndef SLOTSYNC_ETCD_STALL_H
#define SLOTSYNC_ETCD_STALL_H

#include <stdbool.h>
#include <stdint.h>

/* One check: etcd's answer and what the sync had applied when it came. */
struct etcd_stall_sample {
    int64_t etcd_rev;     /* the answer's header revision */
    int64_t etcd_top;     /* highest mod_revision of a key under the prefix; 0: none */
    int64_t etcd_count;   /* keys under the prefix at etcd_rev */
    int64_t applied_rev;  /* highest revision the sync applied (listing or event) */
    int64_t applied_keys; /* keys under the prefix as the sync applied them */
};

enum etcd_stall_verdict {
    ETCD_STALL_EQUAL,   /* etcd holds nothing the watch has not delivered */
    ETCD_STALL_BEHIND,  /* the answer is older than what was applied: nothing to compare */
    ETCD_STALL_AHEAD,   /* etcd is ahead once: maybe an event in flight */
    ETCD_STALL_STALLED, /* ahead twice, the watch delivered nothing of it meanwhile */
};

/* etcd is ahead of what was applied in this sample: a key newer than the
 * applied revision, or (when the answer is not older than what was
 * applied) a different key count, as a missed delete leaves. */
bool etcd_stall_ahead(const struct etcd_stall_sample *s);

/* The verdict on now, given the previous check's sample (NULL: none, e.g.
 * the first check of a watch). STALLED needs both samples ahead and the
 * watch not to have moved in between: nothing applied since prev
 * (applied_rev unchanged), or still below the newest key etcd had at prev.
 * A busy prefix whose watch works is ahead at many checks, but it has
 * delivered what etcd had at the previous one. Both are borrowed. */
enum etcd_stall_verdict etcd_stall_compare(const struct etcd_stall_sample *prev,
                                           const struct etcd_stall_sample *now);

/* "equal", "behind", "ahead", "stalled". */
const char *etcd_stall_verdict_name(enum etcd_stall_verdict v);

#endif
