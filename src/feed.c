/* feed - etcd's keys into the catalog, each said in the log (feed.h). */
#include <slotsync/feed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>

#define MOD "sync"

/* The catalog parses the key and the value once (catalog_apply_event());
 * the log line's fields come from what it read. */
int feed_kv(struct catalog *cat, const struct etcd_kv *kv, bool listing, bool quiet,
            unsigned long long *rejected)
{
    char qkey[300], *why = NULL;
    struct catalog_parsed p;
    const char *svc = p.service, *inst = p.instance;
    int r = catalog_apply_event(cat, kv, &p, &why);

    log_quote(kv->key, kv->key_len, qkey, sizeof(qkey));
    switch (r) {
    case CATALOG_REJECTED: {
        bool bad_key = !p.key_ok;

        rejected[bad_key ? METRICS_REJECT_KEY : METRICS_REJECT_VALUE]++;
        struct log_field f[] = {
            {"event", "rejected"},
            {"key", qkey},
            {"service", svc[0] ? svc : NULL},
            {"instance", inst[0] ? inst : NULL},
            {"reason", why ? why : "invalid"},
        };

        log_fields(LOG_LEVEL_WARN, MOD, f, sizeof(f) / sizeof(f[0]), "etcd key \"%s\" rejected: %s",
                   qkey, why ? why : "invalid");
        break;
    }
    case CATALOG_ADDED:
    case CATALOG_UPDATED: {
        const struct endpoint *ep = &p.ep;
        char addr[ENDPOINT_HOST_MAX + 10], weight[16];

        /* The value was accepted: log what it means (only when the line
         * is logged: a listing's keys are debug lines). */
        if (quiet || (listing && log_get_level() < LOG_LEVEL_DEBUG) || !p.value_ok)
            break;
        endpoint_format(ep, addr, sizeof(addr));
        snprintf(weight, sizeof(weight), "%u", ep->weight);
        struct log_field f[] = {
            {"event", r == CATALOG_ADDED ? "added" : "updated"},
            {"key", qkey},
            {"service", svc[0] ? svc : NULL},
            {"instance", inst[0] ? inst : NULL},
            {"addr", addr},
            {"weight", weight},
            {"state", endpoint_state_name(ep->state)},
        };

        log_fields(listing ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, MOD, f, sizeof(f) / sizeof(f[0]),
                   "etcd key \"%s\" %s: %s weight %u %s", qkey,
                   r == CATALOG_ADDED ? "added" : "updated", addr, ep->weight,
                   endpoint_state_name(ep->state));
        break;
    }
    case CATALOG_REMOVED: {
        if (quiet)
            break;
        struct log_field f[] = {
            {"event", "removed"},
            {"key", qkey},
            {"service", svc[0] ? svc : NULL},
            {"instance", inst[0] ? inst : NULL},
        };

        log_fields(listing ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, MOD, f, sizeof(f) / sizeof(f[0]),
                   "etcd key \"%s\" removed", qkey);
        break;
    }
    case CATALOG_UNCHANGED:
    case CATALOG_HELD: /* the catalog warned, once per service or key */
        break;
    default:
        log_error(MOD, "etcd key \"%s\": %s", qkey, strerror(-r));
        /* Out of memory: a later re-list repairs what was lost. */
        break;
    }
    free(why);
    return r;
}
