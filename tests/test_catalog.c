/* test_catalog - the desired state: puts, deletes, rejects, order, dirty
 * flags, re-list sweeps, counters and scale. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/catalog.h>
#include <slotsync/etcd-t.h>

#define PREFIX "/svc/"

static struct catalog *cat;

static void setup(void)
{
    cat = catalog_new(PREFIX);
    cr_assert_not_null(cat);
}

static void teardown(void)
{
    catalog_free(cat);
    cat = NULL;
}

TestSuite(catalog, .init = setup, .fini = teardown);

static int put(const char *key, const char *val, int64_t rev)
{
    return catalog_put(cat, key, strlen(key), val, strlen(val), rev, NULL);
}

static int del(const char *key)
{
    return catalog_delete(cat, key, strlen(key), NULL);
}

static const struct catalog_endpoint *lookup(const char *service, const char *instance)
{
    const struct catalog_service *svc = catalog_find(cat, service);

    if (!svc)
        return NULL;
    for (size_t i = 0; i < svc->n_endpoints; i++)
        if (strcmp(svc->endpoints[i]->instance, instance) == 0)
            return svc->endpoints[i];
    return NULL;
}

static void clear_dirty(void)
{
    for (size_t i = 0; i < cat->n_services; i++)
        cat->services[i]->dirty = false;
}

static bool dirty(const char *service)
{
    const struct catalog_service *svc = catalog_find(cat, service);

    cr_assert_not_null(svc, "service %s missing", service);
    return svc->dirty;
}

Test(catalog, new_is_empty)
{
    cr_assert_eq(cat->n_services, 0);
    cr_assert_eq(catalog_count(cat), 0);
    cr_assert_null(catalog_find(cat, "api"));
    cr_assert_str_eq(cat->prefix, PREFIX);
    cr_assert_eq(cat->puts + cat->deletes + cat->rejected, 0);
}

Test(catalog, add_update_unchanged_delete)
{
    const struct catalog_endpoint *ce;

    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 5), CATALOG_ADDED);
    ce = lookup("api", "a");
    cr_assert_not_null(ce);
    cr_assert_str_eq(ce->ep.host, "10.0.0.1");
    cr_assert_eq(ce->ep.port, 80);
    cr_assert_eq(ce->ep.weight, ENDPOINT_DEFAULT_WEIGHT);
    cr_assert_eq(ce->ep.state, ENDPOINT_READY);
    cr_assert_eq(ce->mod_revision, 5);
    cr_assert(ce->seen);

    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 6), CATALOG_UNCHANGED);
    cr_assert_eq(lookup("api", "a")->mod_revision, 6);

    cr_assert_eq(put("/svc/api/a", "{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":7}", 7),
                 CATALOG_UPDATED);
    ce = lookup("api", "a");
    cr_assert_eq(ce->ep.weight, 7);
    cr_assert_eq(ce->mod_revision, 7);

    cr_assert_eq(put("/svc/api/a",
                     "{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":7,"
                     "\"state\":\"drain\"}",
                     8),
                 CATALOG_UPDATED);
    cr_assert_eq(lookup("api", "a")->ep.state, ENDPOINT_DRAIN);

    cr_assert_eq(put("/svc/api/a", "[2001:db8:0::1]:443", 9), CATALOG_UPDATED);
    ce = lookup("api", "a");
    cr_assert_str_eq(ce->ep.host, "2001:db8::1");
    cr_assert(ce->ep.ipv6);
    cr_assert_eq(ce->ep.state, ENDPOINT_READY);

    cr_assert_eq(catalog_count(cat), 1);
    cr_assert_eq(del("/svc/api/a"), CATALOG_REMOVED);
    cr_assert_null(lookup("api", "a"));
    cr_assert_eq(catalog_count(cat), 0);
    cr_assert_eq(del("/svc/api/a"), CATALOG_UNCHANGED);
    cr_assert_eq(del("/svc/nosuch/a"), CATALOG_UNCHANGED);

    /* the emptied service is kept: its backend still has to be converged */
    cr_assert_not_null(catalog_find(cat, "api"));
    cr_assert_eq(catalog_find(cat, "api")->n_endpoints, 0);
}

Test(catalog, put_copies_borrowed_key_and_value)
{
    char key[] = "/svc/api/a", val[] = "10.0.0.1:80";

    cr_assert_eq(catalog_put(cat, key, strlen(key), val, strlen(val), 1, NULL), CATALOG_ADDED);
    memset(key, 'x', strlen(key));
    memset(val, 'x', strlen(val));
    cr_assert_not_null(lookup("api", "a"));
    cr_assert_str_eq(lookup("api", "a")->ep.host, "10.0.0.1");
}

Test(catalog, key_and_value_need_not_be_nul_terminated)
{
    const char key[] = "/svc/api/abcXXX", val[] = "10.0.0.1:8080999";

    cr_assert_eq(catalog_put(cat, key, 12, val, 13, 1, NULL), CATALOG_ADDED);
    cr_assert_not_null(lookup("api", "abc"));
    cr_assert_eq(lookup("api", "abc")->ep.port, 8080);
    cr_assert_eq(catalog_delete(cat, key, 12, NULL), CATALOG_REMOVED);
}

static const struct {
    const char *name;
    const char *key;
    size_t len; /* 0: strlen(key) */
} bad_keys[] = {
    {"other prefix", "/other/api/a", 0},
    {"prefix only", "/svc/", 0},
    {"no slash before prefix", "svc/api/a", 0},
    {"no instance", "/svc/api", 0},
    {"empty instance", "/svc/api/", 0},
    {"empty service", "/svc//a", 0},
    {"service bad char", "/svc/a$pi/a", 0},
    {"service space", "/svc/a pi/a", 0},
    {"service dot", "/svc/./a", 0},
    {"service dotdot", "/svc/../a", 0},
    {"service 64 bytes", "/svc/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/a",
     0},
    {"instance space", "/svc/api/a b", 0},
    {"instance tab", "/svc/api/a\tb", 0},
    {"instance newline", "/svc/api/a\nb", 0},
    {"instance non-ascii", "/svc/api/caf\xc3\xa9", 0},
    {"instance NUL", "/svc/api/a\0b", 11},
    {"empty key", "", 0},
};

Test(catalog, rejects_each_bad_key)
{
    unsigned long long rejected = 0;
    char longinst[5 + 4 + 256 + 1];

    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        size_t len = bad_keys[i].len ? bad_keys[i].len : strlen(bad_keys[i].key);
        char *err = NULL;

        cr_assert_eq(catalog_put(cat, bad_keys[i].key, len, "10.0.0.1:80", 11, 1, &err),
                     CATALOG_REJECTED, "put %s", bad_keys[i].name);
        cr_assert_not_null(err, "put %s: no reason", bad_keys[i].name);
        free(err);
        err = NULL;
        cr_assert_eq(catalog_delete(cat, bad_keys[i].key, len, &err), CATALOG_REJECTED, "delete %s",
                     bad_keys[i].name);
        cr_assert_not_null(err, "delete %s: no reason", bad_keys[i].name);
        free(err);
        rejected += 2;
        cr_assert_eq(cat->rejected, rejected, "%s", bad_keys[i].name);
    }
    /* 256-byte instance, and the 255-byte one that is fine */
    memcpy(longinst, "/svc/api/", 9);
    memset(longinst + 9, 'i', 256);
    longinst[9 + 256] = '\0';
    cr_assert_eq(put(longinst, "10.0.0.1:80", 1), CATALOG_REJECTED);
    longinst[9 + 255] = '\0';
    cr_assert_eq(put(longinst, "10.0.0.1:80", 1), CATALOG_ADDED);

    cr_assert_eq(cat->n_services, 1);
    cr_assert_eq(catalog_count(cat), 1);
    cr_assert_eq(cat->puts, 1);
    cr_assert_eq(cat->deletes, 0);
}

static const struct {
    const char *name;
    const char *val;
    size_t len; /* 0: strlen(val) */
} bad_values[] = {
    {"empty", "", 0},
    {"garbage", "hello", 0},
    {"no port", "10.0.0.1", 0},
    {"empty port", "10.0.0.1:", 0},
    {"port 0", "10.0.0.1:0", 0},
    {"port 65536", "10.0.0.1:65536", 0},
    {"port sign", "10.0.0.1:+80", 0},
    {"hostname", "example.com:80", 0},
    {"bad ipv4", "10.0.0.256:80", 0},
    {"unbracketed ipv6", "::1:80", 0},
    {"unclosed bracket", "[::1:80", 0},
    {"unspecified v4", "0.0.0.0:80", 0},
    {"unspecified v6", "[::]:80", 0},
    {"trailing space", "10.0.0.1:80 ", 0},
    {"newline", "10.0.0.1:80\n", 0},
    {"NUL inside", "10.0.0.1:80\0x", 13},
    {"json not object", "[1,2]", 0},
    {"json broken", "{\"host\":", 0},
    {"json no host", "{\"port\":80}", 0},
    {"json no port", "{\"host\":\"10.0.0.1\"}", 0},
    {"json port string", "{\"host\":\"10.0.0.1\",\"port\":\"80\"}", 0},
    {"json host name", "{\"host\":\"db\",\"port\":80}", 0},
    {"json weight 257", "{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":257}", 0},
    {"json weight -1", "{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":-1}", 0},
    {"json bad state", "{\"host\":\"10.0.0.1\",\"port\":80,\"state\":\"up\"}", 0},
    {"json duplicate key", "{\"host\":\"10.0.0.1\",\"port\":80,\"port\":81}", 0},
    {"json trailing text", "{\"host\":\"10.0.0.1\",\"port\":80} x", 0},
};

#define N_BAD_VALUES (sizeof(bad_values) / sizeof(bad_values[0]))

static size_t bad_value_len(size_t i)
{
    return bad_values[i].len ? bad_values[i].len : strlen(bad_values[i].val);
}

Test(catalog, rejects_each_bad_value)
{
    for (size_t i = 0; i < N_BAD_VALUES; i++) {
        char *err = NULL;

        cr_assert_eq(
            catalog_put(cat, "/svc/api/a", 10, bad_values[i].val, bad_value_len(i), 1, &err),
            CATALOG_REJECTED, "%s", bad_values[i].name);
        cr_assert_not_null(err, "%s: no reason", bad_values[i].name);
        free(err);
        cr_assert_eq(cat->rejected, i + 1);
    }
    /* nothing entered, not even the service */
    cr_assert_eq(cat->n_services, 0);
    cr_assert_eq(cat->puts, 0);
}

/* JSON padded with inner spaces to exactly len bytes */
static char *padded_json(size_t len)
{
    static const char body[] = "{\"host\":\"10.0.0.1\",\"port\":80";
    char *val = malloc(len + 1);

    cr_assert_not_null(val);
    memset(val, ' ', len);
    memcpy(val, body, sizeof(body) - 1);
    val[len - 1] = '}';
    val[len] = '\0';
    return val;
}

Test(catalog, value_length_limit)
{
    char *val = padded_json(ENDPOINT_VALUE_MAX);

    cr_assert_eq(put("/svc/api/a", val, 1), CATALOG_ADDED);
    free(val);
    val = padded_json(ENDPOINT_VALUE_MAX + 1);
    cr_assert_eq(put("/svc/api/a", val, 2), CATALOG_REJECTED);
    free(val);
    cr_assert_null(lookup("api", "a"));
}

Test(catalog, valid_then_bad_overwrite_removes)
{
    for (size_t i = 0; i < N_BAD_VALUES; i++) {
        char *err = NULL;

        cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED, "%s", bad_values[i].name);
        cr_assert_eq(put("/svc/api/b", "10.0.0.2:80", 1),
                     i == 0 ? CATALOG_ADDED : CATALOG_UNCHANGED);
        clear_dirty();
        cr_assert_eq(
            catalog_put(cat, "/svc/api/a", 10, bad_values[i].val, bad_value_len(i), 2, &err),
            CATALOG_REJECTED, "%s", bad_values[i].name);
        cr_assert_not_null(err);
        free(err);
        cr_assert_null(lookup("api", "a"), "%s: old endpoint kept", bad_values[i].name);
        cr_assert_not_null(lookup("api", "b"), "%s", bad_values[i].name);
        cr_assert(dirty("api"), "%s", bad_values[i].name);
        cr_assert_eq(catalog_count(cat), 1);
    }
    cr_assert_eq(cat->rejected, N_BAD_VALUES);
}

Test(catalog, bad_value_on_unknown_key_leaves_service_clean)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    clear_dirty();
    cr_assert_eq(put("/svc/api/z", "nope", 2), CATALOG_REJECTED);
    cr_assert_not(dirty("api"));
    cr_assert_eq(catalog_count(cat), 1);
}

Test(catalog, iteration_is_sorted)
{
    /* byte order differs from etcd's key order here: "a-b/" < "a/" as keys */
    static const char *const keys[] = {
        "/svc/web/b",   "/svc/a/x",   "/svc/a-b/y", "/svc/web/a/2", "/svc/Z/z",
        "/svc/web/a/1", "/svc/web/a", "/svc/a/w",   "/svc/web/c",   "/svc/0/k",
    };
    static const char *const want_services[] = {"0", "Z", "a", "a-b", "web"};
    static const char *const want_web[] = {"a", "a/1", "a/2", "b", "c"};
    const struct catalog_service *web;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_eq(put(keys[i], "10.0.0.1:80", (int64_t)i), CATALOG_ADDED, "%s", keys[i]);
    cr_assert_eq(cat->n_services, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(cat->services[i]->name, want_services[i]);
    web = catalog_find(cat, "web");
    cr_assert_not_null(web);
    cr_assert_eq(web->n_endpoints, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(web->endpoints[i]->instance, want_web[i]);
    cr_assert_str_eq(catalog_find(cat, "a")->endpoints[0]->instance, "w");
    cr_assert_str_eq(catalog_find(cat, "a")->endpoints[1]->instance, "x");

    cr_assert_eq(del("/svc/web/a/1"), CATALOG_REMOVED);
    cr_assert_eq(web->n_endpoints, 4);
    cr_assert_str_eq(web->endpoints[0]->instance, "a");
    cr_assert_str_eq(web->endpoints[1]->instance, "a/2");
    cr_assert_str_eq(web->endpoints[3]->instance, "c");
    cr_assert_null(catalog_find(cat, "b"));
    cr_assert_null(catalog_find(cat, "zz"));
    cr_assert_eq(catalog_count(cat), 9);
}

Test(catalog, dirty_flags)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/web/a", "10.0.0.2:80", 1), CATALOG_ADDED);
    cr_assert(dirty("api"));
    cr_assert(dirty("web"));
    clear_dirty();

    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 2), CATALOG_UNCHANGED);
    cr_assert_not(dirty("api"));
    cr_assert_eq(del("/svc/api/zz"), CATALOG_UNCHANGED);
    cr_assert_not(dirty("api"));

    cr_assert_eq(put("/svc/api/a", "10.0.0.1:81", 3), CATALOG_UPDATED);
    cr_assert(dirty("api"));
    cr_assert_not(dirty("web"));
    clear_dirty();

    cr_assert_eq(put("/svc/api/b", "10.0.0.3:80", 4), CATALOG_ADDED);
    cr_assert(dirty("api"));
    cr_assert_not(dirty("web"));
    clear_dirty();

    cr_assert_eq(del("/svc/web/a"), CATALOG_REMOVED);
    cr_assert(dirty("web"));
    cr_assert_not(dirty("api"));
}

Test(catalog, relist_sweeps_unseen)
{
    size_t removed;

    cr_assert_eq(put("/svc/api/a1", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/a2", "10.0.0.2:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/a3", "10.0.0.3:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/gone/g1", "10.0.1.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/same/s1", "10.0.2.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/upd/u1", "10.0.3.1:80", 1), CATALOG_ADDED);
    clear_dirty();

    catalog_relist_begin(cat);
    cr_assert(cat->relisting);
    cr_assert_not(lookup("api", "a1")->seen);
    cr_assert_eq(put("/svc/api/a1", "10.0.0.1:80", 50), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/api/a2", "10.0.0.2:80", 50), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/same/s1", "10.0.2.1:80", 50), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/upd/u1", "10.0.3.9:80", 50), CATALOG_UPDATED);
    cr_assert_eq(put("/svc/new/n1", "10.0.4.1:80", 50), CATALOG_ADDED);
    /* unchanged puts during a relist do not mark anything dirty */
    cr_assert_not(dirty("api"));
    cr_assert_not(dirty("same"));
    cr_assert(lookup("api", "a1")->seen);
    cr_assert_eq(lookup("api", "a1")->mod_revision, 50);

    removed = catalog_relist_end(cat);
    cr_assert_eq(removed, 2);
    cr_assert_not(cat->relisting);
    cr_assert_not_null(lookup("api", "a1"));
    cr_assert_not_null(lookup("api", "a2"));
    cr_assert_null(lookup("api", "a3"));
    cr_assert_null(lookup("gone", "g1"));
    cr_assert_eq(catalog_find(cat, "gone")->n_endpoints, 0);
    cr_assert_str_eq(lookup("upd", "u1")->ep.host, "10.0.3.9");
    cr_assert_not_null(lookup("new", "n1"));
    cr_assert_eq(catalog_count(cat), 5);

    cr_assert(dirty("api"));
    cr_assert(dirty("gone"));
    cr_assert(dirty("upd"));
    cr_assert(dirty("new"));
    cr_assert_not(dirty("same"));

    /* a relist that sees everything again changes nothing */
    clear_dirty();
    catalog_relist_begin(cat);
    cr_assert_eq(put("/svc/api/a1", "10.0.0.1:80", 60), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/api/a2", "10.0.0.2:80", 60), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/same/s1", "10.0.2.1:80", 60), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/upd/u1", "10.0.3.9:80", 60), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/new/n1", "10.0.4.1:80", 60), CATALOG_UNCHANGED);
    cr_assert_eq(catalog_relist_end(cat), 0);
    for (size_t i = 0; i < cat->n_services; i++)
        cr_assert_not(cat->services[i]->dirty, "%s", cat->services[i]->name);
}

Test(catalog, relist_empty_listing_removes_everything)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/b", "10.0.0.2:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/web/a", "10.0.0.3:80", 1), CATALOG_ADDED);
    clear_dirty();
    catalog_relist_begin(cat);
    cr_assert_eq(catalog_relist_end(cat), 3);
    cr_assert_eq(catalog_count(cat), 0);
    cr_assert_eq(cat->n_services, 2);
    cr_assert(dirty("api"));
    cr_assert(dirty("web"));
}

Test(catalog, relist_end_without_begin_removes_nothing)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(catalog_relist_end(cat), 0);
    cr_assert_eq(catalog_count(cat), 1);
}

Test(catalog, relist_delete_and_bad_value_during_listing)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/b", "10.0.0.2:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/c", "10.0.0.3:80", 1), CATALOG_ADDED);
    clear_dirty();
    catalog_relist_begin(cat);
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 9), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/api/b", "bad", 9), CATALOG_REJECTED);
    cr_assert_eq(put("/svc/api/c", "10.0.0.3:80", 9), CATALOG_UNCHANGED);
    cr_assert_eq(del("/svc/api/c"), CATALOG_REMOVED);
    cr_assert_eq(catalog_relist_end(cat), 0);
    cr_assert_eq(catalog_count(cat), 1);
    cr_assert_not_null(lookup("api", "a"));
    cr_assert(dirty("api"));
}

Test(catalog, counters)
{
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 1), CATALOG_ADDED);
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:80", 2), CATALOG_UNCHANGED);
    cr_assert_eq(put("/svc/api/a", "10.0.0.1:81", 3), CATALOG_UPDATED);
    cr_assert_eq(put("/svc/api/b", "nope", 4), CATALOG_REJECTED);
    cr_assert_eq(put("/elsewhere/a", "10.0.0.1:80", 5), CATALOG_REJECTED);
    cr_assert_eq(del("/svc/api/a"), CATALOG_REMOVED);
    cr_assert_eq(del("/svc/api/a"), CATALOG_UNCHANGED);
    cr_assert_eq(del("/svc/api"), CATALOG_REJECTED);
    cr_assert_eq(cat->puts, 3);
    cr_assert_eq(cat->deletes, 2);
    cr_assert_eq(cat->rejected, 3);
}

Test(catalog, hundred_thousand_sorted_keys)
{
    enum { N = 100000 };
    const struct catalog_service *svc;
    char key[64], val[32];

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), PREFIX "big/i%06d", i);
        snprintf(val, sizeof(val), "10.%d.%d.%d:80", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        cr_assert_eq(put(key, val, i + 1), CATALOG_ADDED, "%s", key);
    }
    cr_assert_eq(put(PREFIX "small/a", "10.9.9.9:80", 1), CATALOG_ADDED);
    cr_assert_eq(catalog_count(cat), N + 1);
    svc = catalog_find(cat, "big");
    cr_assert_not_null(svc);
    cr_assert_eq(svc->n_endpoints, N);
    for (size_t i = 1; i < svc->n_endpoints; i++)
        cr_assert(strcmp(svc->endpoints[i - 1]->instance, svc->endpoints[i]->instance) < 0);

    /* every key is found again (by the lookup inside put) */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), PREFIX "big/i%06d", i);
        snprintf(val, sizeof(val), "10.%d.%d.%d:80", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        cr_assert_eq(put(key, val, N + i), CATALOG_UNCHANGED, "%s", key);
    }
    cr_assert_str_eq(svc->endpoints[54321]->instance, "i054321");
    cr_assert_str_eq(svc->endpoints[54321]->ep.host, "10.0.212.49");

    /* out-of-order inserts land in place */
    cr_assert_eq(put(PREFIX "big/i050000x", "10.8.8.8:80", 1), CATALOG_ADDED);
    cr_assert_str_eq(svc->endpoints[50001]->instance, "i050000x");
    cr_assert_eq(put(PREFIX "big/a", "10.8.8.9:80", 1), CATALOG_ADDED);
    cr_assert_str_eq(svc->endpoints[0]->instance, "a");
    cr_assert_eq(del(PREFIX "big/i099999"), CATALOG_REMOVED);
    cr_assert_eq(del(PREFIX "big/i000000"), CATALOG_REMOVED);
    cr_assert_eq(svc->n_endpoints, N);
    cr_assert_str_eq(svc->endpoints[1]->instance, "i000001");
    cr_assert_str_eq(svc->endpoints[N - 1]->instance, "i099998");
}

Test(catalog, random_order_inserts_stay_sorted)
{
    enum { N = 3000 };
    const struct catalog_service *svc;
    unsigned x = 12345;
    char key[64];
    size_t added = 0;

    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        snprintf(key, sizeof(key), PREFIX "s%u/i%u", (x >> 8) % 7, (x >> 12) % 100000);
        if (put(key, "10.0.0.1:80", i) == CATALOG_ADDED)
            added++;
    }
    cr_assert_eq(catalog_count(cat), added);
    cr_assert_eq(cat->n_services, 7);
    for (size_t s = 0; s < cat->n_services; s++) {
        svc = cat->services[s];
        if (s > 0)
            cr_assert(strcmp(cat->services[s - 1]->name, svc->name) < 0);
        for (size_t i = 1; i < svc->n_endpoints; i++)
            cr_assert(strcmp(svc->endpoints[i - 1]->instance, svc->endpoints[i]->instance) < 0);
    }
}

/* An unknown JSON field (a typo of a known one, say) is accepted but
 * counted once per key, and again only when the key's unknown fields
 * change. */
Test(catalog, unknown_fields_counted_once_per_key)
{
    const char *typo = "{\"host\":\"10.0.0.1\",\"port\":80,\"wieght\":3}";

    cr_expect_eq(put("/svc/web/a", typo, 1), CATALOG_ADDED);
    cr_expect_eq(lookup("web", "a")->ep.weight, 1, "the default, as before");
    cr_expect_eq(cat->unknown_fields, 1);
    cr_expect_eq(put("/svc/web/a", typo, 2), CATALOG_UNCHANGED);
    cr_expect_eq(cat->unknown_fields, 1, "the same fields again: no second warning");
    cr_expect_eq(put("/svc/web/b", typo, 3), CATALOG_ADDED);
    cr_expect_eq(cat->unknown_fields, 2, "another key warns on its own");
    cr_expect_eq(put("/svc/web/a", "{\"host\":\"10.0.0.1\",\"port\":80,\"wegiht\":3}", 4),
                 CATALOG_UNCHANGED);
    cr_expect_eq(cat->unknown_fields, 3, "a different unknown field warns again");
    cr_expect_eq(put("/svc/web/a", "{\"host\":\"10.0.0.1\",\"port\":80,\"weight\":3}", 5),
                 CATALOG_UPDATED);
    cr_expect_eq(cat->unknown_fields, 3);
    cr_expect_eq(put("/svc/web/a", typo, 6), CATALOG_UPDATED);
    cr_expect_eq(cat->unknown_fields, 4, "the typo back after a fix warns again");
    cr_expect_eq(put("/svc/web/c", "10.0.0.3:80", 7), CATALOG_ADDED);
    cr_expect_eq(cat->unknown_fields, 4);
}

Test(catalog, take_dirty_walks_and_clears)
{
    static const char *const keys[] = {"/svc/web/a", "/svc/api/a", "/svc/db/a", "/svc/web/b"};
    static const char *const want[] = {"api", "db", "web"};
    struct catalog_service *s;
    size_t pos = 0, n = 0;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_eq(put(keys[i], "127.0.0.1:80", (int64_t)i + 1), CATALOG_ADDED);
    while ((s = catalog_take_dirty(cat, &pos))) {
        cr_assert_lt(n, 3);
        cr_assert_str_eq(s->name, want[n]);
        cr_assert_not(s->dirty);
        n++;
    }
    cr_assert_eq(n, 3);
    pos = 0;
    cr_assert_null(catalog_take_dirty(cat, &pos));
    /* handed back, then taken again; a change marks only its service */
    catalog_mark_dirty(catalog_find(cat, "db"));
    cr_assert_eq(del("/svc/web/a"), CATALOG_REMOVED);
    pos = 0;
    cr_assert_str_eq(catalog_take_dirty(cat, &pos)->name, "db");
    cr_assert_str_eq(catalog_take_dirty(cat, &pos)->name, "web");
    cr_assert_null(catalog_take_dirty(cat, &pos));
}

/* ---- caps: max_services and max_endpoints_per_service ---- */

static const char *exempt_names; /* space-separated, for the case being run */

static bool is_exempt(const char *service, void *arg)
{
    const char *p = arg;
    size_t n = strlen(service);

    for (; p && *p; p += strcspn(p, " "), p += *p == ' ')
        if (strncmp(p, service, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* "a=1,2 b=1": the served (held: the held) instances of each service that
 * has any, in catalog order. */
static void dump(bool held, char *out, size_t size)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cat->n_services; i++) {
        const struct catalog_service *svc = cat->services[i];
        struct catalog_endpoint *const *v = held ? svc->held : svc->endpoints;
        size_t n = held ? svc->n_held : svc->n_endpoints;

        if (!n)
            continue;
        len += snprintf(out + len, size - len, "%s%s=", len ? " " : "", svc->name);
        for (size_t j = 0; j < n; j++)
            len += snprintf(out + len, size - len, "%s%s", j ? "," : "", v[j]->instance);
    }
}

static void dump_waiting(char *out, size_t size)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cat->n_services; i++)
        if (cat->services[i]->waiting)
            len += snprintf(out + len, size - len, "%s%s", len ? " " : "", cat->services[i]->name);
}

struct cap_case {
    const char *name;
    size_t max_services, max_endpoints;
    const char *exempt;
    /* "+a/1" put, "-a/1" delete, "!a/1" a bad value, "L" re-list begins,
     * "E" it ends, "S<n>" max_services = n, "P<n>" max_endpoints = n,
     * "X<names>" exempt = names */
    const char *ops[24];
    const char *served, *held, *waiting;
    unsigned long long capped_services, capped_endpoints;
};

static const struct cap_case cap_cases[] = {
    {"no caps", 0, 0, NULL, {"+a/1", "+b/1", "+c/1", "+c/2"}, "a=1 b=1 c=1,2", "", "", 0, 0},
    {"third service refused",
     2,
     0,
     NULL,
     {"+a/1", "+b/1", "+c/1", "+c/2"},
     "a=1 b=1",
     "c=1,2",
     "c",
     1,
     0},
    {"more endpoints of a served service are no new service",
     2,
     0,
     NULL,
     {"+a/1", "+b/1", "+a/2", "+b/9"},
     "a=1,2 b=1,9",
     "",
     "",
     0,
     0},
    {"taken on when one leaves",
     2,
     0,
     NULL,
     {"+a/1", "+b/1", "+c/1", "-a/1"},
     "b=1 c=1",
     "",
     "",
     1,
     0},
    {"a service with another endpoint left keeps its place",
     2,
     0,
     NULL,
     {"+a/1", "+a/2", "+b/1", "+c/1", "-a/1"},
     "a=2 b=1",
     "c=1",
     "c",
     1,
     0},
    {"take-on in name order, not arrival",
     1,
     0,
     NULL,
     {"+m/1", "+z/1", "+b/1", "-m/1"},
     "b=1",
     "z=1",
     "z",
     2,
     0},
    {"a bad value frees a place like a delete",
     1,
     0,
     NULL,
     {"+a/1", "+b/1", "!a/1"},
     "b=1",
     "",
     "",
     1,
     0},
    {"a waiting service that leaves waits no more",
     1,
     0,
     NULL,
     {"+a/1", "+b/1", "-b/1", "-a/1"},
     "",
     "",
     "",
     1,
     0},
    {"a held endpoint's update is no second refusal",
     1,
     1,
     NULL,
     {"+a/1", "+a/2", "+a/2", "+b/1", "+b/1", "+b/2"},
     "a=1",
     "a=2 b=1,2",
     "b",
     1,
     1},
    {"config services are not counted and never refused",
     1,
     0,
     "cfg",
     {"+cfg/1", "+a/1", "+cfg/2", "+b/1"},
     "a=1 cfg=1,2",
     "b=1",
     "b",
     1,
     0},
    {"endpoints beyond the cap are held, taken on in instance order",
     0,
     2,
     NULL,
     {"+a/1", "+a/5", "+a/4", "+a/3", "-a/1"},
     "a=3,5",
     "a=4",
     "",
     0,
     2},
    {"the cap on endpoints applies to config services too",
     0,
     1,
     "cfg",
     {"+cfg/1", "+cfg/2"},
     "cfg=1",
     "cfg=2",
     "",
     0,
     1},
    {"a taken-on service gets only max_endpoints",
     1,
     2,
     NULL,
     {"+a/1", "+b/1", "+b/2", "+b/3", "-a/1"},
     "b=1,2",
     "b=3",
     "",
     1,
     0},
    {"a service emptied by its last delete takes its own held endpoint first",
     1,
     1,
     NULL,
     {"+a/1", "+a/2", "+b/1", "-a/1"},
     "a=2",
     "b=1",
     "b",
     1,
     1},
    {"a re-list drops what is gone, held ones too, then takes on",
     1,
     0,
     NULL,
     {"+a/1", "+b/1", "+c/1", "L", "+b/1", "+c/1", "E"},
     "b=1",
     "c=1",
     "c",
     2,
     0},
    {"a re-list keeps the served ones served",
     1,
     0,
     NULL,
     {"+b/1", "+a/1", "L", "+a/1", "+b/1", "E"},
     "b=1",
     "a=1",
     "a",
     1,
     0},
    {"raising the cap takes on",
     1,
     0,
     NULL,
     {"+a/1", "+b/1", "+c/1", "S2"},
     "a=1 b=1",
     "c=1",
     "c",
     2,
     0},
    {"no cap takes all on",
     1,
     1,
     NULL,
     {"+a/1", "+a/2", "+b/1", "S0", "P0"},
     "a=1,2 b=1",
     "",
     "",
     1,
     1},
    {"lowering a cap drops nothing served",
     0,
     0,
     NULL,
     {"+a/1", "+a/2", "+b/1", "S1", "P1", "+c/1", "+a/3"},
     "a=1,2 b=1",
     "a=3 c=1",
     "c",
     1,
     1},
    {"a waiting service named in the config is taken on",
     1,
     0,
     NULL,
     {"+a/1", "+b/1", "Xb"},
     "a=1 b=1",
     "",
     "",
     1,
     0},
    {"one place freed, one taken on",
     2,
     0,
     NULL,
     {"+a/1", "+b/1", "+c/1", "+d/1", "-b/1", "-a/1"},
     "c=1 d=1",
     "",
     "",
     2,
     0},
};

Test(catalog, caps_table)
{
    for (size_t k = 0; k < sizeof(cap_cases) / sizeof(cap_cases[0]); k++) {
        const struct cap_case *c = &cap_cases[k];
        struct catalog_limits l = {c->max_services, c->max_endpoints, is_exempt, NULL};
        char served[256], held[256], waiting[256], key[64];
        size_t n_waiting, n_held;

        catalog_free(cat);
        cat = catalog_new(PREFIX);
        cr_assert_not_null(cat);
        exempt_names = c->exempt;
        l.arg = (void *)exempt_names;
        catalog_set_limits(cat, &l);
        for (size_t i = 0; i < sizeof(c->ops) / sizeof(c->ops[0]) && c->ops[i]; i++) {
            const char *op = c->ops[i];

            snprintf(key, sizeof(key), PREFIX "%s", op + 1);
            switch (op[0]) {
            case '+':
                cr_assert_geq(put(key, "127.0.0.1:80", (int64_t)i + 1), 0, "%s: %s", c->name, op);
                break;
            case '-':
                cr_assert_geq(del(key), 0, "%s: %s", c->name, op);
                break;
            case '!':
                cr_assert_eq(put(key, "nope", (int64_t)i + 1), CATALOG_REJECTED, "%s", c->name);
                break;
            case 'L':
                catalog_relist_begin(cat);
                break;
            case 'E':
                catalog_relist_end(cat);
                break;
            case 'S':
                l.max_services = strtoul(op + 1, NULL, 10);
                catalog_set_limits(cat, &l);
                break;
            case 'P':
                l.max_endpoints = strtoul(op + 1, NULL, 10);
                catalog_set_limits(cat, &l);
                break;
            case 'X':
                l.arg = (void *)(op + 1);
                catalog_set_limits(cat, &l);
                break;
            }
        }
        dump(false, served, sizeof(served));
        dump(true, held, sizeof(held));
        dump_waiting(waiting, sizeof(waiting));
        cr_expect_str_eq(served, c->served, "%s: served", c->name);
        cr_expect_str_eq(held, c->held, "%s: held", c->name);
        cr_expect_str_eq(waiting, c->waiting, "%s: waiting", c->name);
        cr_expect_eq(cat->capped_services, c->capped_services, "%s: services refused %llu", c->name,
                     cat->capped_services);
        cr_expect_eq(cat->capped_endpoints, c->capped_endpoints, "%s: endpoints refused %llu",
                     c->name, cat->capped_endpoints);
        catalog_held(cat, &n_waiting, &n_held);
        cr_expect_eq(n_waiting, cat->n_waiting, "%s", c->name);
        cr_expect_eq(n_held + n_waiting * 0, n_held);
    }
}

/* What a consumer sees of a held endpoint: nothing (no dirty flag, no
 * count), then a dirty service when it is taken on. */
Test(catalog, caps_held_is_invisible_until_taken_on)
{
    struct catalog_limits l = {1, 0, NULL, NULL};
    size_t pos = 0;
    struct catalog_service *s;

    catalog_set_limits(cat, &l);
    cr_assert_eq(put(PREFIX "a/1", "127.0.0.1:80", 1), CATALOG_ADDED);
    clear_dirty();
    cr_assert_eq(put(PREFIX "b/1", "127.0.0.1:81", 2), CATALOG_HELD);
    cr_assert_eq(put(PREFIX "b/1", "127.0.0.1:82", 3), CATALOG_UNCHANGED);
    cr_expect_eq(catalog_count(cat), 1);
    cr_expect_not(dirty("b"));
    cr_expect_eq(catalog_find(cat, "b")->n_endpoints, 0);
    cr_assert_eq(del(PREFIX "a/1"), CATALOG_REMOVED);
    cr_expect(dirty("b"));
    cr_expect_eq(catalog_count(cat), 1);
    /* the held value's last update is what is served */
    cr_expect_eq(lookup("b", "1")->ep.port, 82);
    while ((s = catalog_take_dirty(cat, &pos)))
        ;
    cr_expect_eq(cat->n_counted, 1);
}

/* catalog_apply_event(): what it read is handed back, so feed's log line
 * parses nothing again (issue 22). */
struct event_case {
    const char *name;
    const char *key, *value; /* value NULL: a delete */
    int result;
    bool key_ok, value_ok;
    const char *service, *instance;
    unsigned weight; /* when value_ok */
};

static const struct event_case events[] = {
    {"a new key", "/svc/web/a", "{\"host\":\"127.0.0.1\",\"port\":80,\"weight\":7}", CATALOG_ADDED,
     true, true, "web", "a", 7},
    {"an update", "/svc/web/a", "127.0.0.1:81", CATALOG_UPDATED, true, true, "web", "a", 1},
    {"the same value", "/svc/web/a", "127.0.0.1:81", CATALOG_UNCHANGED, true, true, "web", "a", 1},
    {"a bad value", "/svc/web/b", "not an address", CATALOG_REJECTED, true, false, "web", "b", 0},
    {"a bad key", "/svc/web/", "127.0.0.1:80", CATALOG_REJECTED, false, false, "", "", 0},
    {"outside the prefix", "/other/web/a", "127.0.0.1:80", CATALOG_REJECTED, false, false, "", "",
     0},
    {"a delete", "/svc/web/a", NULL, CATALOG_REMOVED, true, false, "web", "a", 0},
    {"a delete of nothing", "/svc/web/zz", NULL, CATALOG_UNCHANGED, true, false, "web", "zz", 0},
    {"a delete of a bad key", "/svc/bad name/x", NULL, CATALOG_REJECTED, false, false, "", "", 0},
};

Test(catalog, apply_event_hands_back_what_it_parsed)
{
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        const struct event_case *t = &events[i];
        struct etcd_kv kv = {
            .key = (char *)t->key,
            .key_len = strlen(t->key),
            .value = (char *)t->value,
            .value_len = t->value ? strlen(t->value) : 0,
            .mod_revision = (int64_t)i + 1,
            .deleted = !t->value,
        };
        struct catalog_parsed p;
        char *err = NULL;

        cr_expect_eq(catalog_apply_event(cat, &kv, &p, &err), t->result, "%s", t->name);
        cr_expect_eq(p.key_ok, t->key_ok, "%s", t->name);
        cr_expect_eq(p.value_ok, t->value_ok, "%s", t->name);
        cr_expect_str_eq(p.service, t->service, "%s", t->name);
        cr_expect_str_eq(p.instance, t->instance, "%s", t->name);
        if (t->value_ok)
            cr_expect_eq(p.ep.weight, t->weight, "%s", t->name);
        cr_expect_eq(err != NULL, t->result == CATALOG_REJECTED, "%s", t->name);
        free(err);
    }
}
