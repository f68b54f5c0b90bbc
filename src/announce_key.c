/* announce_key - what a read of announce's key means (announce_key.h). */
#include <slotsync/announce_key.h>

#include <slotsync/endpoint.h>

#include <string.h>

static const char *const verdict_names[] = {
    [ANNOUNCE_KEY_OURS] = "ours",         [ANNOUNCE_KEY_GONE] = "gone",
    [ANNOUNCE_KEY_DETACHED] = "detached", [ANNOUNCE_KEY_OVERWRITTEN] = "overwritten",
    [ANNOUNCE_KEY_TAKEN] = "taken",
};

const char *announce_key_verdict_name(enum announce_key_verdict v)
{
    return (unsigned)v < sizeof(verdict_names) / sizeof(verdict_names[0]) ? verdict_names[v] : "?";
}

enum announce_key_verdict announce_key_classify(bool present, const char *value, size_t len,
                                                int64_t lease, const char *ours, int64_t our_lease)
{
    bool same;

    if (!present)
        return ANNOUNCE_KEY_GONE;
    if (lease != 0 && lease != our_lease)
        return ANNOUNCE_KEY_TAKEN;
    same = value && ours && len == strlen(ours) && memcmp(value, ours, len) == 0;
    if (!same)
        return ANNOUNCE_KEY_OVERWRITTEN;
    return lease == our_lease ? ANNOUNCE_KEY_OURS : ANNOUNCE_KEY_DETACHED;
}

bool announce_key_deletable(const char *value, size_t len, int64_t lease, int64_t our_lease,
                            const struct endpoint *ours)
{
    struct endpoint found;

    if (!value || !ours || (lease != 0 && lease != our_lease))
        return false;
    memset(&found, 0, sizeof(found));
    if (endpoint_parse_value(value, len, &found, NULL) < 0)
        return false;
    return found.ipv6 == ours->ipv6 && found.port == ours->port &&
           strcmp(found.host, ours->host) == 0;
}
