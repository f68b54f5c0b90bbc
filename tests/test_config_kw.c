/* Tests for config_kw: the keyword tables and their reader (issue 22).
 *
 * The tables are data, so these tests hold them to what the loader does:
 * every field the walk lists is a key the loader reads (a wrong type of it
 * is refused naming exactly that field), the SIGHUP classes are the ones
 * controller.c relies on, and the did-you-mean picks the known key. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <slotsync/config.h>
#include <slotsync/config_kw.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define MINIMAL                                                                                    \
    "{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\"},"             \
    "\"haproxy\":{\"runtime_socket\":\"/run/haproxy/admin.sock\","                                 \
    "\"services_file\":\"/etc/haproxy/services.cfg\"}}"

/* MINIMAL with every block's required field set */
#define EVERY_BLOCK                                                                                \
    "{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\"},"             \
    "\"haproxy\":{\"runtime_socket\":\"/run/haproxy/admin.sock\","                                 \
    "\"services_file\":\"/etc/haproxy/services.cfg\"},"                                            \
    "\"http_frontend\":{\"bind\":\"127.0.0.1:8080\"},\"admin\":{\"listen\":\":9100\"},"            \
    "\"dns\":{\"hosts_file\":\"/var/lib/slotsync/hosts\"}}"

struct fields {
    char path[96][64];
    const struct config_kw *kw[96];
    size_t n;
};

static void collect_field(const char *path, const struct config_kw *kw, void *arg)
{
    struct fields *f = arg;

    cr_assert_lt(f->n, N_ELEMS(f->path));
    snprintf(f->path[f->n], sizeof(f->path[0]), "%s", path);
    f->kw[f->n++] = kw;
}

static bool has_field(const struct fields *f, const char *path)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->path[i], path) == 0)
            return true;
    return false;
}

Test(config_kw, distance)
{
    static const struct {
        const char *a, *b;
        size_t d;
    } cases[] = {
        {"prefix", "prefix", 0},     {"prefx", "prefix", 1},  {"prefixx", "prefix", 1},
        {"perfix", "prefix", 1},     {"pxefix", "prefix", 1}, {"", "abc", 3},
        {"slots", "slot_growth", 7}, {"abcdef", "badcfe", 3}, {"mode", "node", 1},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t d = config_kw_distance(cases[i].a, cases[i].b);

        cr_expect_eq(d, cases[i].d, "case %zu: %s/%s: %zu", i, cases[i].a, cases[i].b, d);
        cr_expect_eq(config_kw_distance(cases[i].b, cases[i].a), d, "case %zu symmetric", i);
    }
    /* counted up to the maximum + 1 only */
    cr_expect_gt(config_kw_distance("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"),
                 CONFIG_KW_DISTANCE_MAX);
    {
        char longer[80];

        memset(longer, 'a', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        cr_expect_eq(config_kw_distance(longer, "a"), CONFIG_KW_DISTANCE_MAX + 1);
    }
}

Test(config_kw, suggest)
{
    static const struct {
        const struct config_kw *table;
        const char *key, *want; /* want NULL: no suggestion */
    } cases[] = {
        {config_kw_root, "resync_intreval_s", "resync_interval_s"},
        {config_kw_root, "log_levl", "log_level"},
        {config_kw_root, "log_", "log_level"}, /* a prefix of two: the first row */
        {config_kw_root, "max_", "max_services"},
        {config_kw_root, "etc", "etcd"},
        {config_kw_root, "x", NULL},
        {config_kw_root, "zzzzzzzz", NULL},
        {config_kw_root, "http", "http_frontend"},
        {config_kw_service_options, "slot", "slots"},
        {config_kw_service_options, "slot_", "slots"},
        {config_kw_service_options, "balanse", "balance"},
        {config_kw_service_options, "server_option", "server_options"},
        {config_kw_admin_conf, "token", "token_file"},
        {config_kw_admin_conf, "protected", "protected_paths"},
        {config_kw_http_frontend, "bnd", "bind"},
        {config_kw_http_frontend, "spare", "spare_backends"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const char *got = config_kw_suggest(cases[i].table, cases[i].key);

        if (!cases[i].want)
            cr_expect_null(got, "case %zu: %s -> %s", i, cases[i].key, got);
        else
            cr_expect(got && strcmp(got, cases[i].want) == 0, "case %zu: %s -> %s, not %s", i,
                      cases[i].key, got ? got : "nothing", cases[i].want);
    }
}

/* Every field the walk lists is one the loader reads: a config with
 * every block and that field set to a value of no type any row takes (an array of
 * objects) is refused, naming that field. */
Test(config_kw, every_listed_field_is_read)
{
    struct fields f = {.n = 0};
    size_t tried = 0;

    config_kw_walk(config_kw_root, "", collect_field, &f);
    cr_assert_gt(f.n, 50);
    for (size_t i = 0; i < f.n; i++) {
        char path[64], *dot, *err = NULL;
        json_t *root = json_loads(EVERY_BLOCK, 0, NULL), *obj = root;
        const char *key = path;
        struct config cfg;
        char *text;
        int ret;

        cr_assert_not_null(root);
        snprintf(path, sizeof(path), "%s", f.path[i]);
        /* services.NAME.x: a service named NAME */
        while ((dot = strchr(key, '.'))) {
            json_t *next;

            *dot = '\0';
            next = json_object_get(obj, key);
            if (!next) {
                next = json_object();
                json_object_set_new(obj, key, next);
            }
            obj = next;
            key = dot + 1;
        }
        json_object_set_new(obj, key, json_pack("[{}]"));
        text = json_dumps(root, JSON_COMPACT);
        ret = config_load_string(text, &cfg, &err);
        cr_expect_eq(ret, -EINVAL, "%s: loaded", f.path[i]);
        /* "<path>: ..." or, for a list, "<path>[0]: ..." */
        cr_expect(err && strncmp(err, f.path[i], strlen(f.path[i])) == 0 &&
                      strchr(":[", err[strlen(f.path[i])]),
                  "%s: refused as '%s'", f.path[i], err ? err : "");
        free(err);
        free(text);
        json_decref(root);
        tried++;
    }
    cr_expect_eq(tried, f.n);
    /* and the walk lists what the man page's headings name */
    cr_expect(has_field(&f, "etcd.tls.server_name"));
    cr_expect(has_field(&f, "services.NAME.hosts"));
    cr_expect(has_field(&f, "admin.protected_paths"));
    cr_expect(has_field(&f, "max_endpoints_per_service"));
    cr_expect_not(has_field(&f, "services.NAME"));
}

static void collect_restart(const char *path, const struct config_kw *kw, void *arg)
{
    struct fields *f = arg;

    /* a KW_WHOLE block is one field: its rows are not named apart */
    if (kw->hup == HUP_RESTART && !strstr(path, "etcd.tls."))
        collect_field(path, kw, f);
}

/* What a SIGHUP refuses: the fields that controller.c's on_hup cannot
 * take without a restart (where slotsync connects to, what it writes). */
Test(config_kw, restart_fields)
{
    static const char *const want[] = {
        "etcd.endpoints",
        "etcd.prefix",
        "etcd.tls",
        "etcd.username",
        "etcd.password_file",
        "etcd.transport",
        "etcd.watch_check_interval_s",
        "haproxy.runtime_socket",
        "haproxy.master_socket",
        "haproxy.base_config",
        "haproxy.services_file",
        "haproxy.reload_command",
        "haproxy.binary",
        "haproxy.hosts_map",
        "haproxy.runtime_timeout_s",
    };
    struct fields f = {.n = 0};

    config_kw_walk(config_kw_root, "", collect_restart, &f);
    cr_assert_eq(f.n, N_ELEMS(want), "%zu restart fields", f.n);
    for (size_t i = 0; i < N_ELEMS(want); i++)
        cr_expect_str_eq(f.path[i], want[i]);
}

/* Each restart field changed alone is named alone by
 * config_restart_fields_changed(). */
Test(config_kw, each_restart_field_is_named)
{
    static const struct {
        const char *json, *named;
    } cases[] = {
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2380\"],\"prefix\":\"/services/\"}}",
         "etcd.endpoints"},
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/s/\"}}",
         "etcd.prefix"},
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\","
         "\"tls\":{\"server_name\":\"e\"}}}",
         "etcd.tls"},
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\","
         "\"username\":\"u\",\"password_file\":\"/p\"}}",
         "etcd.username, etcd.password_file"},
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\","
         "\"transport\":\"json\"}}",
         "etcd.transport"},
        {"{\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"],\"prefix\":\"/services/\","
         "\"watch_check_interval_s\":5}}",
         "etcd.watch_check_interval_s"},
    };
    struct config a;
    char *err = NULL;

    cr_assert_eq(config_load_string(MINIMAL, &a, &err), 0, "%s", err);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        /* the case's etcd block over the minimal config's haproxy block */
        json_t *root = json_loads(MINIMAL, 0, NULL), *c = json_loads(cases[i].json, 0, NULL);
        char *text, fields[256];
        struct config b;

        cr_assert(root && c, "case %zu", i);
        json_object_update(root, c);
        text = json_dumps(root, JSON_COMPACT);
        cr_assert_eq(config_load_string(text, &b, &err), 0, "case %zu: %s", i, err);
        cr_expect_not(config_same_restart_fields(&a, &b), "case %zu", i);
        cr_expect_gt(config_restart_fields_changed(&b, &a, fields, sizeof(fields)), 0, "case %zu",
                     i);
        cr_expect_str_eq(fields, cases[i].named, "case %zu", i);
        config_free(&b);
        free(text);
        json_decref(c);
        json_decref(root);
    }
    config_free(&a);
}

/* Set from the command line through the rows: the same checks and
 * messages as in the file. */
Test(config_kw, set_through_rows)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(config_load_string(MINIMAL, &cfg, &err), 0, "%s", err);
    cr_expect_eq(config_set_prefix(&cfg, NULL, &err), -EINVAL);
    cr_expect_str_eq(err, "etcd.prefix: required");
    cr_expect_eq(config_set_runtime_socket(&cfg, NULL, &err), -EINVAL);
    cr_expect_str_eq(err, "haproxy.runtime_socket: must not be empty");
    cr_expect_eq(config_set_log_level(&cfg, "warning", &err), -EINVAL);
    cr_expect_str_eq(err, "log_level: must be one of error, warn, info, debug");
    cr_expect_eq(config_set_prefix(&cfg, "/x/", &err), 0);
    cr_expect_str_eq(cfg.etcd_prefix, "/x/");
    free(err);
    config_free(&cfg);
}
