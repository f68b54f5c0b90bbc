/* Tests for check: warnings about paths that do not exist on this machine. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <slotsync/check.h>
#include <slotsync/config.h>

struct collected {
    char lines[8][512];
    bool error[8];
    size_t n;
};

static void collect(bool error, const char *text, void *arg)
{
    struct collected *c = arg;

    if (c->n == 8)
        return; /* the first lines are what the tests read (a misspelt keyword is
                 * also reported in each spare backend) */
    snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", text);
    c->error[c->n++] = error;
}

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/slotsync-test-check-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/base.cfg", dir);
    unlink(path);
    rmdir(dir);
}

TestSuite(check, .init = make_dir, .fini = remove_dir);

Test(check, existing_paths_give_no_warning)
{
    char base[128], services[128], map[128];
    struct config cfg = {0};
    struct collected got = {0};
    FILE *f;

    snprintf(base, sizeof(base), "%s/base.cfg", dir);
    snprintf(services, sizeof(services), "%s/services.cfg", dir);
    snprintf(map, sizeof(map), "%s/services.cfg.map", dir);
    f = fopen(base, "w");
    cr_assert_not_null(f);
    fclose(f);
    cfg.base_config = base;
    cfg.services_file = services; /* need not exist: render creates it */
    cfg.hosts_map = map;
    cfg.http_bind.set = true;
    cr_expect_eq(check_paths(&cfg, collect, &got), 0);
    cr_expect_eq(got.n, 0, "%s", got.lines[0]);
    /* a relative services file lives in the working directory */
    cfg.services_file = "services.cfg";
    cr_expect_eq(check_paths(&cfg, collect, &got), 0);
}

Test(check, missing_paths_are_warnings_naming_the_field)
{
    char base[128], services[128], map[128];
    struct config cfg = {0};
    struct collected got = {0};

    snprintf(base, sizeof(base), "%s/nope/haproxy.cfg", dir);
    snprintf(services, sizeof(services), "%s/missing/services.cfg", dir);
    snprintf(map, sizeof(map), "%s/base.cfg/hosts.map", dir);
    /* base.cfg is a file here, so the map's "directory" is not one */
    {
        char file[128];
        FILE *f;

        snprintf(file, sizeof(file), "%s/base.cfg", dir);
        f = fopen(file, "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    cfg.base_config = base;
    cfg.services_file = services;
    cfg.hosts_map = map;
    cfg.http_bind.set = true;
    cr_expect_eq(check_paths(&cfg, collect, &got), 3);
    cr_assert_eq(got.n, 3);
    for (size_t i = 0; i < got.n; i++)
        cr_expect_not(got.error[i], "a warning, not an error: %s", got.lines[i]);
    cr_expect(strncmp(got.lines[0], "haproxy.base_config: file \"", 27) == 0, "%s", got.lines[0]);
    cr_expect(strstr(got.lines[0], "/nope/haproxy.cfg\" does not exist") != NULL, "%s",
              got.lines[0]);
    cr_expect(strncmp(got.lines[1], "haproxy.services_file: directory \"", 34) == 0, "%s",
              got.lines[1]);
    cr_expect(strstr(got.lines[1], "/missing\" does not exist") != NULL, "%s", got.lines[1]);
    cr_expect(strncmp(got.lines[2], "haproxy.hosts_map: ", 19) == 0, "%s", got.lines[2]);
}

/* ---- check_haproxy: the real HAProxy on base config + render ---- */

static void load_with_options(struct config *cfg, const char *base, const char *options)
{
    char json[1024], *errmsg = NULL;

    snprintf(json, sizeof(json),
             "{\"etcd\": {\"endpoints\": [\"http://127.0.0.1:2379\"], \"prefix\": \"/s/\"},"
             " \"haproxy\": {\"runtime_socket\": \"/tmp/x.sock\", \"base_config\": \"%s\","
             " \"services_file\": \"/etc/haproxy/services.cfg\"},"
             " \"defaults\": {\"server_options\": \"%s\"},"
             " \"services\": {\"web\": {\"listen\": \"127.0.0.1:18080\", \"slots\": 2}},"
             " \"http_frontend\": {\"bind\": \"127.0.0.1:18081\", \"domain\": \"svc.local\"}}",
             base, options);
    cr_assert_eq(config_load_string(json, cfg, &errmsg), 0, "%s", errmsg ? errmsg : "");
}

static void write_base(char *base, size_t size)
{
    FILE *f;

    snprintf(base, size, "%s/base.cfg", dir);
    f = fopen(base, "w");
    cr_assert_not_null(f);
    fputs("global\n    maxconn 100\ndefaults\n    mode http\n    timeout connect 1s\n"
          "    timeout client 1s\n    timeout server 1s\n",
          f);
    fclose(f);
}

Test(check, haproxy_accepts_a_good_render)
{
    char base[128];
    struct config cfg;
    struct collected got = {0};

    write_base(base, sizeof(base));
    load_with_options(&cfg, base, "check inter 2s");
    cr_expect_eq(check_haproxy(&cfg, collect, &got), 0, "%s", got.lines[0]);
    config_free(&cfg);
}

/* issue 19 item 10: one mistake, one error, named by the field it came
 * from: the misspelt defaults.server_options is rendered into web and both
 * spare backends, and HAProxy says so three times. */
Test(check, haproxy_catches_a_misspelt_keyword)
{
    char base[128];
    struct config cfg;
    struct collected got = {0};

    write_base(base, sizeof(base));
    load_with_options(&cfg, base, "chek inter 2s");
    cfg.spare_backends = 2;
    cr_assert_eq(check_haproxy(&cfg, collect, &got), 1, "%s | %s", got.lines[0], got.lines[1]);
    cr_expect(got.error[0]);
    /* HAProxy's own words, named by the field, not a temp path */
    cr_expect(strncmp(got.lines[0], "defaults.server_options: haproxy -c: ", 37) == 0, "%s",
              got.lines[0]);
    cr_expect_not_null(strstr(got.lines[0], "unknown keyword 'chek'"), "%s", got.lines[0]);
    cr_expect_not_null(strstr(got.lines[0], "(in 3 rendered proxies)"), "%s", got.lines[0]);
    cr_expect_null(strstr(got.lines[0], "slotsync-check-"), "%s", got.lines[0]);
    config_free(&cfg);
}

/* The same, pure: HAProxy's lines (2.6's wording) mapped to the fields of
 * the render they point at; a line no field produced keeps its place. */
Test(check, haproxy_lines_are_named_by_their_field_once)
{
    static const char rendered[] = "# Rendered by slotsync.\n"
                                   "\n"
                                   "backend api\n"
                                   "    mode http\n"
                                   "    balance roundrobin\n"
                                   "    default-server check frob\n"
                                   "    server s1 0.0.0.0:0 disabled\n"
                                   "\n"
                                   "frontend fe:api\n"
                                   "    bind 127.0.0.1:8001\n"
                                   "\n"
                                   "backend web\n"
                                   "    default-server chek\n"
                                   "\n"
                                   "backend spare:0\n"
                                   "    default-server chek\n"
                                   "\n"
                                   "frontend slotsync:http\n"
                                   "    bind 127.0.0.1:8080\n";
    char out[] = "[NOTICE]   (1) : haproxy version is 2.6.12\n"
                 "[ALERT]    (1) : config : [/tmp/r.cfg:6] : unknown keyword 'frob'.\n"
                 "[ALERT]    (1) : config : [/tmp/r.cfg:13] : unknown keyword 'chek'.\n"
                 "[ALERT]    (1) : config : [/tmp/r.cfg:16] : unknown keyword 'chek'.\n"
                 "[ALERT]    (1) : config : [/tmp/r.cfg:19] : cannot bind socket.\n"
                 "[ALERT]    (1) : config : [/tmp/r.cfg:10] : cannot bind socket.\n"
                 "[WARNING]  (1) : config : [/tmp/r.cfg:1] : odd.\n"
                 "[ALERT]    (1) : config : Error(s) found in configuration file : /tmp/r.cfg\n"
                 "[ALERT]    (1) : config : Fatal errors found in configuration.\n";
    struct config cfg = {0};
    struct service_conf svc[2] = {0};
    struct collected got = {0};

    snprintf(svc[0].name, sizeof(svc[0].name), "api");
    snprintf(svc[0].opt.server_options, sizeof(svc[0].opt.server_options), "check frob");
    snprintf(svc[0].opt.balance, sizeof(svc[0].opt.balance), "roundrobin");
    snprintf(svc[1].name, sizeof(svc[1].name), "web");
    snprintf(svc[1].opt.server_options, sizeof(svc[1].opt.server_options), "chek");
    snprintf(svc[1].opt.balance, sizeof(svc[1].opt.balance), "roundrobin");
    snprintf(cfg.defaults.server_options, sizeof(cfg.defaults.server_options), "chek");
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    cfg.services = svc;
    cfg.n_services = 2;
    cr_assert_eq(
        check_haproxy_report(&cfg, rendered, out, "/tmp/r.cfg", "/etc/s.cfg", collect, &got), 5);
    cr_expect_str_eq(got.lines[0], "services.api.server_options: haproxy -c: config : unknown "
                                   "keyword 'frob'.");
    cr_expect_str_eq(got.lines[1], "defaults.server_options: haproxy -c: config : unknown "
                                   "keyword 'chek'. (in 2 rendered proxies)");
    cr_expect_str_eq(got.lines[2], "http_frontend.bind: haproxy -c: config : cannot bind socket.");
    cr_expect_str_eq(got.lines[3], "services.api.listen: haproxy -c: config : cannot bind socket.");
    cr_expect_str_eq(got.lines[4], "haproxy -c: config : [/etc/s.cfg:1] : odd.");
    cr_expect_not(got.error[4]);
}

Test(check, haproxy_not_installed_is_a_warning)
{
    char base[128];
    struct config cfg;
    struct collected got = {0};

    write_base(base, sizeof(base));
    load_with_options(&cfg, base, "check");
    free(cfg.haproxy_bin);
    cfg.haproxy_bin = strdup("/nonexistent/haproxy");
    cr_expect_eq(check_haproxy(&cfg, collect, &got), 1);
    cr_expect(!got.error[0]);
    cr_expect_not_null(strstr(got.lines[0], "not checked with haproxy -c"), "%s", got.lines[0]);
    config_free(&cfg);
}

Test(check, a_base_config_proxy_named_like_a_spare_is_an_error)
{
    static const struct {
        const char *decl;
        unsigned errors;
    } cases[] = {
        {"backend spare:0\n", 1},
        {"listen spare:15\n", 1},
        {"backend spare:16\n", 0}, /* past the 16 spares rendered */
        {"backend spare\n", 0},
        {"frontend spare:1\n", 0}, /* a frontend's name is not a backend's */
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char base[128];
        struct config cfg;
        struct collected got = {0};
        FILE *f;

        write_base(base, sizeof(base));
        f = fopen(base, "a");
        cr_assert_not_null(f);
        fputs(cases[k].decl, f);
        fclose(f);
        load_with_options(&cfg, base, "check");
        cr_expect_eq(check_spares(&cfg, collect, &got), cases[k].errors, "%s", cases[k].decl);
        if (cases[k].errors)
            cr_expect(got.error[0] && strstr(got.lines[0], "spare_backends"), "%s", got.lines[0]);
        config_free(&cfg);
    }
}

/* ---- check_fds: descriptors for the servers rendered (issue 23) ---- */

Test(check, too_few_descriptors_for_the_servers_rendered_is_a_warning)
{
    static const struct {
        const char *global; /* added to base_config's global section */
        unsigned long hard, nr_open;
        bool can_raise;
        unsigned warnings;
        const char *says;
    } cases[] = {
        /* 2 x 4096 + 2,000 checked slots of web + 16 spares x 8 + ...: over 10,000 */
        {"    maxconn 4096\n", 10000, 1048576, false, 1, "hard RLIMIT_NOFILE 10000"},
        {"    maxconn 4096\n", 1048576, 1048576, false, 0, NULL},
        {"    maxconn 4096\n", 10000, 1048576, true, 0, NULL},
        {"    maxconn 4096\n    fd-hard-limit 9000\n", 10000, 1048576, true, 1,
         "fd-hard-limit 9000"},
        /* no maxconn: HAProxy fits it to the limit, down to 100 */
        {"", 10000, 1048576, false, 0, NULL},
        {"", 2000, 1048576, false, 1, "maxconn 100"},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char base[128], json[1024], *errmsg = NULL;
        struct check_fd_machine m = {cases[k].hard, cases[k].nr_open, cases[k].can_raise, 2};
        struct config cfg;
        struct collected got = {0};
        FILE *f;

        snprintf(base, sizeof(base), "%s/base.cfg", dir);
        f = fopen(base, "w");
        cr_assert_not_null(f);
        fprintf(f, "global\n%sdefaults\n    mode http\n", cases[k].global);
        fclose(f);
        snprintf(json, sizeof(json),
                 "{\"etcd\": {\"endpoints\": [\"http://127.0.0.1:2379\"], \"prefix\": \"/s/\"},"
                 " \"haproxy\": {\"runtime_socket\": \"/tmp/x.sock\", \"base_config\": \"%s\","
                 " \"services_file\": \"%s/none.cfg\"},"
                 " \"defaults\": {\"server_options\": \"check inter 2s\"},"
                 " \"services\": {\"web\": {\"listen\": \"127.0.0.1:18080\", \"slots\": 2000}},"
                 " \"http_frontend\": {\"bind\": \"127.0.0.1:18081\", \"domain\": \"svc.local\"}}",
                 base, dir);
        cr_assert_eq(config_load_string(json, &cfg, &errmsg), 0, "%s", errmsg ? errmsg : "");
        cr_expect_eq(check_fds_on(&cfg, &m, collect, &got), cases[k].warnings, "case %zu: %s", k,
                     got.lines[0]);
        if (cases[k].says) {
            cr_expect_not(got.error[0]);
            cr_expect(strstr(got.lines[0], cases[k].says), "case %zu: %s", k, got.lines[0]);
            cr_expect(strstr(got.lines[0], "LimitNOFILE="), "%s", got.lines[0]);
            cr_expect(strstr(got.lines[0], "2128 with health checks"), "%s", got.lines[0]);
        }
        config_free(&cfg);
    }
}
