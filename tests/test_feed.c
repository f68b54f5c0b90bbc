/* test_feed - etcd keys into the catalog: what each one does and which
 * rejection counter it counts in, table-driven, no etcd. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/etcd-t.h>
#include <slotsync/feed.h>
#include <slotsync/log.h>
#include <slotsync/metrics.h>

struct feed_case {
    const char *name;
    const char *key, *value; /* value NULL: a delete */
    bool listing, quiet;
    int result;
    unsigned long long bad_keys, bad_values; /* counters after this step */
    size_t endpoints;                        /* in the catalog after this step */
};

/* One catalog, in order. */
static const struct feed_case steps[] = {
    {"a new key", "/svc/web/a", "127.0.0.1:8080", true, false, CATALOG_ADDED, 0, 0, 1},
    {"the same value", "/svc/web/a", "127.0.0.1:8080", false, false, CATALOG_UNCHANGED, 0, 0, 1},
    {"a new value", "/svc/web/a", "{\"host\":\"127.0.0.1\",\"port\":8081,\"weight\":3}", false,
     false, CATALOG_UPDATED, 0, 0, 1},
    {"a bad value", "/svc/web/b", "not an address", false, false, CATALOG_REJECTED, 0, 1, 1},
    {"a bad key", "/svc/web/", "127.0.0.1:80", false, false, CATALOG_REJECTED, 1, 1, 1},
    {"a bad key, quiet: still counted", "/svc/bad name/x", "127.0.0.1:80", false, true,
     CATALOG_REJECTED, 2, 1, 1},
    {"a second key, quiet", "/svc/api/x", "127.0.0.2:80", false, true, CATALOG_ADDED, 2, 1, 2},
    {"a delete", "/svc/web/a", NULL, false, false, CATALOG_REMOVED, 2, 1, 1},
    {"a delete of nothing", "/svc/web/zz", NULL, false, false, CATALOG_UNCHANGED, 2, 1, 1},
};

Test(feed, keys_in_order)
{
    struct catalog *cat = catalog_new("/svc/");
    unsigned long long rejected[METRICS_REJECTS] = {0};

    cr_assert_not_null(cat);
    log_set_level(LOG_LEVEL_ERROR);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct feed_case *t = &steps[i];
        struct etcd_kv kv = {
            .key = (char *)t->key,
            .key_len = strlen(t->key),
            .value = (char *)t->value,
            .value_len = t->value ? strlen(t->value) : 0,
            .mod_revision = (int64_t)i + 1,
            .deleted = !t->value,
        };

        cr_expect_eq(feed_kv(cat, &kv, t->listing, t->quiet, rejected), t->result, "%s", t->name);
        cr_expect_eq(rejected[METRICS_REJECT_KEY], t->bad_keys, "%s", t->name);
        cr_expect_eq(rejected[METRICS_REJECT_VALUE], t->bad_values, "%s", t->name);
        cr_expect_eq(catalog_count(cat), t->endpoints, "%s", t->name);
    }
    catalog_free(cat);
}
