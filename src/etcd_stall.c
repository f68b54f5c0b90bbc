/* etcd_stall - the pure comparison of the watch stall detector (see
 * etcd_stall.h; the checks themselves are made by etcd_sync.c). */
#include <slotsync/etcd_stall.h>

#include <stddef.h>

bool etcd_stall_ahead(const struct etcd_stall_sample *s)
{
    if (s->etcd_top > s->applied_rev)
        return true; /* a put the watch did not deliver */
    /* A count is only comparable at a revision the watch has reached or
     * not passed: an event newer than the answer may already be applied. */
    return s->applied_rev <= s->etcd_rev && s->etcd_count != s->applied_keys;
}

enum etcd_stall_verdict etcd_stall_compare(const struct etcd_stall_sample *prev,
                                           const struct etcd_stall_sample *now)
{
    if (!etcd_stall_ahead(now))
        return now->applied_rev > now->etcd_rev ? ETCD_STALL_BEHIND : ETCD_STALL_EQUAL;
    if (!prev || !etcd_stall_ahead(prev))
        return ETCD_STALL_AHEAD;
    if (now->applied_rev == prev->applied_rev || now->applied_rev < prev->etcd_top)
        return ETCD_STALL_STALLED;
    return ETCD_STALL_AHEAD; /* the watch moved: new changes, not a stall */
}

const char *etcd_stall_verdict_name(enum etcd_stall_verdict v)
{
    switch (v) {
    case ETCD_STALL_EQUAL:
        return "equal";
    case ETCD_STALL_BEHIND:
        return "behind";
    case ETCD_STALL_AHEAD:
        return "ahead";
    case ETCD_STALL_STALLED:
        return "stalled";
    }
    return "?";
}
