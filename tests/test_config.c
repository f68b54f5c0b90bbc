/* Tests for config: every field, every default, every way to get it wrong.
 *
 * Inline fixtures are written with single quotes for readability; load()
 * turns them into double quotes before parsing (a real quote inside a JSON
 * string is written \u0027). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slotsync/bulk.h>
#include <slotsync/config.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/tls.h>
#include <slotsync/validate.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define EP "'endpoints':['http://127.0.0.1:2379']"
#define PF "'prefix':'/services/'"
#define RS "'runtime_socket':'/run/haproxy/admin.sock'"
#define SF "'services_file':'/etc/haproxy/services.cfg'"
#define ETCD "'etcd':{" EP "," PF "}"
#define HAPROXY "'haproxy':{" RS "," SF "}"
#define MINIMAL "{" ETCD "," HAPROXY "}"
/* the minimal config plus top-level members */
#define CFG(extra) "{" ETCD "," HAPROXY "," extra "}"
#define CFG_ETCD(members) "{'etcd':{" members "}," HAPROXY "}"
#define CFG_HAPROXY(members) "{" ETCD ",'haproxy':{" members "}}"
#define CFG_DEFAULTS(members) CFG("'defaults':{" members "}")
#define CFG_SERVICE(name, members) CFG("'services':{'" name "':{" members "}}")
#define CFG_HTTP(members) CFG("'http_frontend':{" members "}")

static char *dq(const char *s)
{
    char *d = strdup(s);

    cr_assert_not_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static int load(const char *squoted, struct config *cfg, char **errmsg)
{
    char *json = dq(squoted);
    int ret = config_load_string(json, cfg, errmsg);

    free(json);
    return ret;
}

static bool is_zeroed(const struct config *cfg)
{
    static const struct config zero;

    return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

/* Messages are one printable line: nothing raw from the input. */
static void check_message(const char *msg, size_t i)
{
    cr_assert_not_null(msg, "case %zu: errmsg set", i);
    for (const char *p = msg; *p; p++)
        cr_expect(*p >= 0x20 && *p < 0x7f, "case %zu: byte 0x%02x in \"%s\"", i, (unsigned char)*p,
                  msg);
}

/* Path of a fixture next to this file: tests/data/config/<name>. */
static void data_path(char *buf, size_t size, const char *name)
{
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__ + 1) : 0;

    snprintf(buf, size, "%.*sdata/config/%s", dir, __FILE__, name);
}

/* ---- good configs ---- */

static void check_full(const struct config *c)
{
    const struct service_conf *s;

    cr_assert_eq(c->n_etcd_endpoints, 3);
    cr_expect_str_eq(c->etcd_endpoints[0], "http://127.0.0.1:2379", "trailing '/' dropped");
    cr_expect_str_eq(c->etcd_endpoints[1], "http://etcd-1.example.com:2379");
    cr_expect_str_eq(c->etcd_endpoints[2], "http://[::1]:2379");
    cr_expect_str_eq(c->etcd_prefix, "/services/");

    cr_expect_str_eq(c->runtime_socket, "/run/haproxy/admin.sock");
    cr_expect_str_eq(c->master_socket, "127.0.0.1:9999");
    cr_expect_str_eq(c->base_config, "/etc/haproxy/haproxy.cfg");
    cr_expect_str_eq(c->services_file, "/etc/haproxy/services.cfg");
    cr_expect_str_eq(c->reload_command, "systemctl reload haproxy");
    cr_expect_eq(c->min_reload_interval_ms, 5000);

    cr_expect_eq(c->defaults.slots, 16);
    cr_expect_eq(c->defaults.mode, MODE_HTTP);
    cr_expect_str_eq(c->defaults.balance, "leastconn");
    cr_expect_str_eq(c->defaults.server_options, "check inter 5s rise 2 fall 3");
    cr_expect_eq(c->defaults.slot_growth, 4);

    /* sorted by name */
    cr_assert_eq(c->n_services, 3);
    cr_expect_str_eq(c->services[0].name, "admin");
    cr_expect_str_eq(c->services[1].name, "api");
    cr_expect_str_eq(c->services[2].name, "web");

    s = &c->services[0]; /* admin: all from defaults */
    cr_expect_eq(s->opt.slots, 16);
    cr_expect_eq(s->opt.mode, MODE_HTTP);
    cr_expect_str_eq(s->opt.balance, "leastconn");
    cr_expect_str_eq(s->opt.server_options, "check inter 5s rise 2 fall 3");
    cr_expect_eq(s->opt.slot_growth, 4);
    cr_expect(!s->listen.set);
    cr_expect_eq(s->n_hosts, 0);
    cr_expect_null(s->hosts);

    s = &c->services[1]; /* api */
    cr_expect_eq(s->opt.slots, 4);
    cr_expect_eq(s->opt.mode, MODE_HTTP);
    cr_expect_str_eq(s->opt.balance, "first");
    cr_expect_str_eq(s->opt.server_options, "check inter 5s rise 2 fall 3");
    cr_expect_eq(s->opt.slot_growth, 0);
    cr_expect(s->listen.set);
    cr_expect_str_eq(s->listen.host, "::");
    cr_expect(s->listen.ipv6);
    cr_expect_eq(s->listen.port, 8443);
    cr_assert_eq(s->n_hosts, 2);
    cr_expect_str_eq(s->hosts[0], "api.example.com", "lowercased");
    cr_expect_str_eq(s->hosts[1], "api-v2.example.com");

    s = &c->services[2]; /* web */
    cr_expect_eq(s->opt.slots, 16);
    cr_expect_eq(s->opt.mode, MODE_TCP);
    cr_expect_str_eq(s->opt.server_options, "", "empty options allowed");
    cr_expect(s->listen.set);
    cr_expect_str_eq(s->listen.host, "");
    cr_expect_eq(s->listen.port, 8080);

    cr_expect(c->http_bind.set);
    cr_expect_str_eq(c->http_bind.host, "10.0.0.1");
    cr_expect(!c->http_bind.ipv6);
    cr_expect_eq(c->http_bind.port, 80);
    cr_expect_str_eq(c->http_domain, "svc.example.com");

    cr_expect_eq(c->resync_interval_s, 60);
    cr_expect_eq(c->log_level, LOG_LEVEL_DEBUG);
}

Test(config, full_file)
{
    struct config cfg;
    char path[512], *err = NULL;

    data_path(path, sizeof(path), "full.json");
    cr_assert_eq(config_load(path, &cfg, &err), 0, "%s", err ? err : "");
    check_full(&cfg);
    config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
    free(err);
}

/* The same text loaded from a string gives the same config, and what was
 * stored passes the exported validators again. */
Test(config, full_string_round_trip)
{
    struct config cfg;
    char path[512], *text, *err = NULL;
    FILE *f;
    long n;

    data_path(path, sizeof(path), "full.json");
    f = fopen(path, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    cr_assert_eq(config_load_string(text, &cfg, &err), 0, "%s", err ? err : "");
    check_full(&cfg);
    for (size_t i = 0; i < cfg.n_etcd_endpoints; i++)
        cr_expect_eq(validate_etcd_url(cfg.etcd_endpoints[i], NULL), 0);
    cr_expect_eq(validate_socket_addr(cfg.runtime_socket, NULL), 0);
    cr_expect_eq(validate_socket_addr(cfg.master_socket, NULL), 0);
    config_free(&cfg);
    free(text);
    free(err);
}

Test(config, defaults)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &cfg, &err), 0, "%s", err ? err : "");
    cr_assert_eq(cfg.n_etcd_endpoints, 1);
    cr_expect_str_eq(cfg.etcd_endpoints[0], "http://127.0.0.1:2379");
    cr_expect_str_eq(cfg.etcd_prefix, "/services/");
    cr_expect_str_eq(cfg.runtime_socket, "/run/haproxy/admin.sock");
    cr_expect_str_eq(cfg.services_file, "/etc/haproxy/services.cfg");
    cr_expect_null(cfg.master_socket);
    cr_expect_null(cfg.base_config);
    cr_expect_null(cfg.reload_command);
    cr_expect_eq(cfg.min_reload_interval_ms, 1000);
    cr_expect_eq(cfg.runtime_timeout_s, 10);
    cr_expect_eq(cfg.bulk_path, BULK_PATH_AUTO);
    cr_expect_eq(cfg.runtime_command_us, BULK_COST_MEASURED);
    cr_expect_eq(cfg.reload_server_us, BULK_COST_MEASURED);
    cr_expect_eq(cfg.defaults.slots, 8);
    cr_expect_eq(cfg.defaults.mode, MODE_HTTP);
    cr_expect_str_eq(cfg.defaults.balance, "roundrobin");
    cr_expect_str_eq(cfg.defaults.server_options, "check inter 2s");
    cr_expect_eq(cfg.defaults.slot_growth, 0);
    cr_expect_eq(cfg.n_services, 0);
    cr_expect_null(cfg.services);
    cr_expect(!cfg.http_bind.set);
    cr_expect_null(cfg.http_domain);
    cr_expect_eq(cfg.resync_interval_s, 30);
    cr_expect_eq(cfg.log_level, LOG_LEVEL_INFO);
    cr_expect(!cfg.allow_empty_registry);
    cr_expect_eq(cfg.etcd_transport, ETCD_TRANSPORT_GRPC);
    cr_expect_eq(cfg.etcd_watch_check_interval_s, 30);
    config_free(&cfg);
    free(err);
}

/* etcd.watch_check_interval_s: the stall detector's period, whole seconds
 * from 1 to 3600 (issue 24). */
Test(config, etcd_watch_check_interval)
{
    static const struct {
        const char *text;
        int ret, seconds;
    } cases[] = {
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':1"), 0, 1},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':60"), 0, 60},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':3600"), 0, 3600},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':0"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':3601"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':2.5"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'watch_check_interval_s':'30'"), -EINVAL, 0},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;
        int ret = load(cases[i].text, &cfg, &err);

        cr_expect_eq(ret, cases[i].ret, "case %zu: %d (%s)", i, ret, err ? err : "");
        if (ret == 0)
            cr_expect_eq(cfg.etcd_watch_check_interval_s, cases[i].seconds, "case %zu", i);
        else
            cr_expect(err && strstr(err, "etcd.watch_check_interval_s"), "case %zu: %s", i,
                      err ? err : "");
        config_free(&cfg);
        free(err);
    }
}

/* etcd.transport: gRPC unless the gateway is asked for; anything else is
 * refused by name. */
Test(config, etcd_transport)
{
    static const struct {
        const char *text;
        int ret, transport;
    } cases[] = {
        {CFG_ETCD(EP "," PF ",'transport':'grpc'"), 0, ETCD_TRANSPORT_GRPC},
        {CFG_ETCD(EP "," PF ",'transport':'json'"), 0, ETCD_TRANSPORT_JSON},
        {CFG_ETCD(EP "," PF ",'transport':'GRPC'"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'transport':'http2'"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'transport':''"), -EINVAL, 0},
        {CFG_ETCD(EP "," PF ",'transport':1"), -EINVAL, 0},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;
        int ret = load(cases[i].text, &cfg, &err);

        cr_expect_eq(ret, cases[i].ret, "case %zu: %d (%s)", i, ret, err ? err : "");
        if (ret == 0)
            cr_expect_eq(cfg.etcd_transport, cases[i].transport, "case %zu", i);
        else
            cr_expect(err && strstr(err, "etcd.transport"), "case %zu: %s", i, err ? err : "");
        config_free(&cfg);
        free(err);
    }
}

Test(config, allow_empty_registry)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'allow_empty_registry':true"), &cfg, &err), 0, "%s", err ? err : "");
    cr_expect(cfg.allow_empty_registry);
    config_free(&cfg);
    cr_assert_eq(load(CFG("'allow_empty_registry':false"), &cfg, &err), 0, "%s", err ? err : "");
    cr_expect(!cfg.allow_empty_registry);
    config_free(&cfg);
    free(err);
}

/* The caps on what etcd can create (issue 20): defaults, 0 for none, and
 * what is out of range, each refused naming the field. */
Test(config, caps)
{
    static const struct {
        const char *json;
        int services, endpoints; /* -1: refused */
        const char *error;
    } cases[] = {
        {"'log_level':'info'", 1000, 4096, NULL},
        {"'max_services':0,'max_endpoints_per_service':0", 0, 0, NULL},
        {"'max_services':5,'max_endpoints_per_service':1", 5, 1, NULL},
        {"'max_services':1000000", 1000000, 4096, NULL},
        {"'max_services':-1", -1, -1, "max_services: must be between 0 and 1000000"},
        {"'max_services':1000001", -1, -1, "max_services: must be between 0 and 1000000"},
        {"'max_endpoints_per_service':'10'", -1, -1,
         "max_endpoints_per_service: must be an integer"},
        {"'max_endpoints_per_service':1.5", -1, -1,
         "max_endpoints_per_service: must be an integer"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        char *err = NULL, json[256];

        snprintf(json, sizeof(json), CFG("%s"), cases[i].json);
        if (cases[i].error) {
            cr_expect_eq(load(json, &cfg, &err), -EINVAL, "%s", cases[i].json);
            cr_expect(err && strstr(err, cases[i].error), "%s: %s", cases[i].json, err);
        } else {
            cr_assert_eq(load(json, &cfg, &err), 0, "%s: %s", cases[i].json, err);
            cr_expect_eq(cfg.max_services, cases[i].services, "%s", cases[i].json);
            cr_expect_eq(cfg.max_endpoints_per_service, cases[i].endpoints, "%s", cases[i].json);
            config_free(&cfg);
        }
        free(err);
    }
}

Test(config, service_defaults_follow_defaults_block)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'services':{'api':{}},'defaults':{'slots':32,'mode':'tcp',"
                          "'balance':'source','server_options':'check','slot_growth':2}"),
                      &cfg, &err),
                 0, "%s", err ? err : "");
    cr_assert_eq(cfg.n_services, 1);
    cr_expect_eq(cfg.services[0].opt.slots, 32);
    cr_expect_eq(cfg.services[0].opt.mode, MODE_TCP);
    cr_expect_str_eq(cfg.services[0].opt.balance, "source");
    cr_expect_str_eq(cfg.services[0].opt.server_options, "check");
    cr_expect_eq(cfg.services[0].opt.slot_growth, 2);
    config_free(&cfg);
    free(err);
}

/* Accepted variants of single fields. */
static const char *const good_cases[] = {
    CFG_ETCD("'endpoints':['http://etcd.example.com:2379/'],'prefix':'/'"),
    CFG_ETCD("'endpoints':['http://[2001:db8::1]:2379','http://10.0.0.1:65535'],"
             "'prefix':'/a/b.c_d-e/'"),
    CFG_ETCD("'endpoints':['http://ETCD-1.Example.com:1'],'prefix':'/x!~@/'"),
    CFG_HAPROXY("'runtime_socket':'127.0.0.1:9999'," SF),
    CFG_HAPROXY("'runtime_socket':'[::1]:9999'," SF),
    CFG_HAPROXY("'runtime_socket':'localhost:9999'," SF),
    CFG_HAPROXY("'runtime_socket':'./haproxy.sock'," SF),
    CFG_HAPROXY(RS "," SF ",'master_socket':'/run/haproxy-master.sock'"),
    CFG_HAPROXY(RS "," SF ",'reload_command':'/usr/sbin/haproxy -f /etc/haproxy.cfg -sf $PID'"),
    CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':0"),
    CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':600000"),
    CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':1"),
    CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':300"),
    CFG_HAPROXY(RS "," SF ",'bulk_path':'auto','runtime_command_us':1,'reload_server_us':1"),
    CFG_HAPROXY(RS "," SF ",'runtime_command_us':0,'reload_server_us':0"),
    CFG_HAPROXY(RS "," SF ",'bulk_path':'runtime','runtime_command_us':1000000"),
    CFG_HAPROXY(RS "," SF ",'bulk_path':'reload','reload_server_us':1000000"),
    CFG_DEFAULTS("'slots':1,'slot_growth':4096"),
    CFG_DEFAULTS("'slots':4096,'slot_growth':0"),
    CFG_DEFAULTS("'server_options':'check inter 2s ssl verify none ca-file /etc/ssl/ca.pem'"),
    CFG_DEFAULTS("'server_options':''"),
    CFG_DEFAULTS("'server_options':'backup check'"),
    CFG_DEFAULTS("'server_options':'check port 8081 maxconn 100 on-marked-down "
                 "shutdown-sessions alpn h2,http/1.1 send-proxy-v2 proto h2 check-sni a.b'"),
    CFG_DEFAULTS("'balance':'static-rr'"),
    CFG_DEFAULTS("'balance':'random'"),
    CFG_SERVICE("a.b_c-D", "'listen':':9000'"),
    CFG_SERVICE("api", "'listen':'0.0.0.0:9000','hosts':[]"),
    CFG_SERVICE("api", "'hosts':['a','a-b.c-d.example','xn--caf-dma.example','1a.example']"),
    CFG("'services':{'a':{'listen':'10.0.0.1:80'},'b':{'listen':'10.0.0.2:80'},"
        "'c':{'listen':'[::1]:80'},'d':{'listen':'*:81'}}"),
    CFG("'services':{'a':{'hosts':['a.example']},'b':{'hosts':['b.example']}}"),
    CFG("'http_frontend':{'bind':'*:80'}"),
    CFG("'http_frontend':{'bind':'[::1]:80','domain':'example.com'}"),
    CFG("'resync_interval_s':1"),
    CFG("'resync_interval_s':86400"),
    CFG("'log_level':'error'"),
    CFG("'services':{}"),
    CFG("'defaults':{}"),
};

Test(config, good_variants)
{
    for (size_t i = 0; i < N_ELEMS(good_cases); i++) {
        struct config cfg;
        char *err = NULL;

        cr_expect_eq(load(good_cases[i], &cfg, &err), 0, "case %zu: %s", i, err ? err : "");
        config_free(&cfg);
        free(err);
    }
}

Test(config, admin_listen)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'resync_interval_s':30"), &cfg, &err), 0);
    cr_expect_not(cfg.admin_listen.set, "off when absent");
    config_free(&cfg);
    cr_assert_eq(load(CFG("'admin':{'listen':'127.0.0.1:9180'}"), &cfg, &err), 0, "%s",
                 err ? err : "");
    cr_expect(cfg.admin_listen.set);
    cr_expect_str_eq(cfg.admin_listen.host, "127.0.0.1");
    cr_expect_eq(cfg.admin_listen.port, 9180);
    config_free(&cfg);
    cr_assert_eq(load(CFG("'admin':{'listen':':9181'}"), &cfg, &err), 0, "%s", err ? err : "");
    cr_expect_str_eq(cfg.admin_listen.host, "127.0.0.1", "no address: loopback");
    cr_expect_eq(cfg.admin_listen.port, 9181);
    config_free(&cfg);
    cr_assert_eq(load(CFG("'admin':{'listen':'[::1]:9180'}"), &cfg, &err), 0, "%s", err ? err : "");
    cr_expect(cfg.admin_listen.ipv6);
    config_free(&cfg);
}

struct bad_case {
    const char *json;
    const char *err; /* expected substring of *errmsg */
};

static const struct bad_case bad_cases[] = {
    /* document */
    {"", "line 1"},
    {"{", "line 1"},
    {"[]", "must be a JSON object"},
    {"{'etcd':1,'etcd':2}", "duplicate"},
    {MINIMAL " x", "line 1"},
    {CFG("'bogus':1"), "bogus: unknown key"},
    {CFG("'Etcd':{}"), "Etcd: unknown key"},
    {CFG("'a\\nb':1"), "a\\nb: unknown key"},
    {CFG("'a\\u0027b':1"), "a'b: unknown key"},
    {CFG("'a\\\"b':1"), "a\\\"b: unknown key"},
    {CFG("'log_level':'info','log_level':'debug'"), "duplicate"},

    /* etcd */
    {"{" HAPROXY "}", "etcd: required"},
    {"{'etcd':[]," HAPROXY "}", "etcd: must be an object"},
    {"{'etcd':null," HAPROXY "}", "etcd: must be an object"},
    {CFG_ETCD(PF), "etcd.endpoints: required"},
    {CFG_ETCD(EP), "etcd.prefix: required"},
    {CFG_ETCD(EP "," PF ",'prefixx':'/'"), "etcd.prefixx: unknown key; did you mean \"prefix\"?"},
    /* issue 19: the closest known key, and a required one that is missing */
    {"{'etcd':{" EP "," PF "},'haproxy':{'runtime_sock':'/run/a.sock','services_file':'/tmp/s'}}",
     "haproxy.runtime_sock: unknown key; did you mean \"runtime_socket\"? "
     "(haproxy.runtime_socket is required and not set)"},
    {"{'etcd':{" EP ",'prefx':'/s/'},'haproxy':{'runtime_socket':'/a','services_file':'/s'}}",
     "etcd.prefx: unknown key; did you mean \"prefix\"? (etcd.prefix is required and not set)"},
    {CFG("'resync_intreval_s':5"), "resync_intreval_s: unknown key; did you mean "
                                   "\"resync_interval_s\"?"},
    {CFG("'zzzz':5"), "zzzz: unknown key"},
    {CFG_ETCD("'endpoints':'http://127.0.0.1:2379'," PF), "etcd.endpoints: must be an array"},
    {CFG_ETCD("'endpoints':{'a':'http://127.0.0.1:2379'}," PF), "etcd.endpoints: must be an array"},
    {CFG_ETCD("'endpoints':[]," PF), "etcd.endpoints: must list 1 to 16 URLs"},
    {CFG_ETCD("'endpoints':[1]," PF), "etcd.endpoints[0]: must be a string"},
    {CFG_ETCD("'endpoints':[null]," PF), "etcd.endpoints[0]: must be a string"},
    {CFG_ETCD("'endpoints':['']," PF), "etcd.endpoints[0]: empty URL"},
    {CFG_ETCD("'endpoints':['ftp://127.0.0.1:2379']," PF),
     "etcd.endpoints[0]: URL must start with http://"},
    {CFG_ETCD("'endpoints':['HTTP://127.0.0.1:2379']," PF), "must start with http://"},
    {CFG_ETCD("'endpoints':['127.0.0.1:2379']," PF), "must start with http://"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1']," PF), "etcd.endpoints[0]: URL needs a port"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1/']," PF), "URL needs a port"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:']," PF), "URL port must be 1-65535"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:0']," PF), "URL port must be 1-65535"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:65536']," PF), "URL port must be 1-65535"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:02379']," PF), "URL port must be 1-65535"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379//']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379/v3']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379?x']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379 ']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379\\n']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379,http://x:1']," PF), "unexpected text after"},
    {CFG_ETCD("'endpoints':['http://user@etcd:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://999.1.1.1:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://1.2.3:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://-etcd.example:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://etcd-.example:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://etcd..example:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://.etcd:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://etcd_1:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://::1:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://[fe80::1%eth0]:2379']," PF), "IPv6 literal"},
    {CFG_ETCD("'endpoints':['http://[1.2.3.4]:2379']," PF), "IPv6 literal"},
    {CFG_ETCD("'endpoints':['http://[::1]2379']," PF), "URL needs a port"},
    {CFG_ETCD("'endpoints':['http://[::1:2379']," PF), "IPv6 literal"},
    {CFG_ETCD("'endpoints':['http://caf\\u00e9:2379']," PF), "URL host must be"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379','http://a b:1']," PF),
     "etcd.endpoints[1]: URL host must be"},
    {CFG_ETCD(EP ",'prefix':'services/'"), "etcd.prefix: must start and end with '/'"},
    {CFG_ETCD(EP ",'prefix':'/services'"), "etcd.prefix: must start and end with '/'"},
    {CFG_ETCD(EP ",'prefix':''"), "etcd.prefix: must be 1-255 printable ASCII"},
    {CFG_ETCD(EP ",'prefix':'/ser vices/'"), "etcd.prefix: must be 1-255 printable ASCII"},
    {CFG_ETCD(EP ",'prefix':'/s\\t/'"), "etcd.prefix: must be 1-255 printable ASCII"},
    {CFG_ETCD(EP ",'prefix':'/caf\\u00e9/'"), "etcd.prefix: must be 1-255 printable ASCII"},
    {CFG_ETCD(EP ",'prefix':'/a\\u0000b/'"), "u0000"},
    {CFG_ETCD(EP ",'prefix':7"), "etcd.prefix: must be a string"},
    {CFG_ETCD(EP ",'prefix':['/']"), "etcd.prefix: must be a string"},

    /* haproxy */
    {"{" ETCD "}", "haproxy: required"},
    {"{" ETCD ",'haproxy':'/run/haproxy.sock'}", "haproxy: must be an object"},
    {CFG_HAPROXY(SF), "haproxy.runtime_socket: required"},
    {CFG_HAPROXY(RS), "haproxy.services_file: required"},
    {CFG_HAPROXY(RS "," SF ",'runtme_socket':'/x'"), "haproxy.runtme_socket: unknown key"},
    {CFG_HAPROXY("'runtime_socket':''," SF), "haproxy.runtime_socket: must not be empty"},
    {CFG_HAPROXY("'runtime_socket':'haproxy.sock'," SF),
     "haproxy.runtime_socket: must be a unix socket path"},
    {CFG_HAPROXY("'runtime_socket':'127.0.0.1:0'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'127.0.0.1'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'example.com:9999'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'localhost:09999'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'localhost:'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'::1:9999'," SF), "haproxy.runtime_socket: must be"},
    {CFG_HAPROXY("'runtime_socket':'/run/ha proxy.sock'," SF),
     "haproxy.runtime_socket: unix socket path must be printable ASCII without whitespace"},
    {CFG_HAPROXY("'runtime_socket':'/run/h\\naproxy.sock'," SF),
     "haproxy.runtime_socket: unix socket path must be printable"},
    {CFG_HAPROXY("'runtime_socket':3," SF), "haproxy.runtime_socket: must be a string"},
    {CFG_HAPROXY(RS "," SF ",'master_socket':'master'"), "haproxy.master_socket: must be"},
    {CFG_HAPROXY(RS "," SF ",'master_socket':null"), "haproxy.master_socket: must be a string"},
    {CFG_HAPROXY(RS "," SF ",'base_config':'/etc/ha proxy.cfg'"),
     "haproxy.base_config: must be 1-4096 printable ASCII characters, no whitespace"},
    {CFG_HAPROXY(RS "," SF ",'base_config':''"), "haproxy.base_config: must be 1-4096"},
    {CFG_HAPROXY(RS ",'services_file':''"), "haproxy.services_file: must be 1-4096"},
    {CFG_HAPROXY(RS ",'services_file':'/x\\ty'"), "haproxy.services_file: must be 1-4096"},
    {CFG_HAPROXY(RS ",'services_file':'/caf\\u00e9'"), "haproxy.services_file: must be 1-4096"},
    {CFG_HAPROXY(RS ",'services_file':['/x']"), "haproxy.services_file: must be a string"},
    {CFG_HAPROXY(RS ",'services_file':'/etc/h.cfg','base_config':'/etc/h.cfg'"),
     "haproxy.services_file: must differ from base_config"},
    {CFG_HAPROXY(RS "," SF ",'reload_command':''"), "haproxy.reload_command: must be 1-4096"},
    {CFG_HAPROXY(RS "," SF ",'reload_command':'reload\\nrm -rf /'"),
     "haproxy.reload_command: must be 1-4096 printable ASCII characters"},
    {CFG_HAPROXY(RS "," SF ",'reload_command':'a\\tb'"), "haproxy.reload_command: must be"},
    {CFG_HAPROXY(RS "," SF ",'reload_command':'a\\u007fb'"), "haproxy.reload_command: must be"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':-1"),
     "haproxy.min_reload_interval_ms: must be between 0 and 600000"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':600001"),
     "haproxy.min_reload_interval_ms: must be between 0 and 600000"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':1000.0"),
     "haproxy.min_reload_interval_ms: must be an integer"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':'1000'"),
     "haproxy.min_reload_interval_ms: must be an integer"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':true"),
     "haproxy.min_reload_interval_ms: must be an integer"},
    {CFG_HAPROXY(RS "," SF ",'bulk_path':'never'"),
     "haproxy.bulk_path: must be one of auto, runtime, reload"},
    {CFG_HAPROXY(RS "," SF ",'bulk_path':1"), "haproxy.bulk_path: must be a string"},
    {CFG_HAPROXY(RS "," SF ",'runtime_command_us':-1"),
     "haproxy.runtime_command_us: must be between 0 and 1000000"},
    {CFG_HAPROXY(RS "," SF ",'reload_server_us':1000001"),
     "haproxy.reload_server_us: must be between 0 and 1000000"},
    {CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':0"),
     "haproxy.runtime_timeout_s: must be between 1 and 300"},
    {CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':301"),
     "haproxy.runtime_timeout_s: must be between 1 and 300"},
    {CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':2.5"),
     "haproxy.runtime_timeout_s: must be an integer"},
    {CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':'10'"),
     "haproxy.runtime_timeout_s: must be an integer"},

    /* defaults */
    {CFG("'defaults':[]"), "defaults: must be an object"},
    {CFG_DEFAULTS("'bogus':1"), "defaults.bogus: unknown key"},
    {CFG_DEFAULTS("'hosts':[]"), "defaults.hosts: unknown key"},
    {CFG_DEFAULTS("'listen':':80'"), "defaults.listen: unknown key"},
    {CFG_DEFAULTS("'slots':0"), "defaults.slots: must be between 1 and 4096"},
    {CFG_DEFAULTS("'slots':4097"), "defaults.slots: must be between 1 and 4096"},
    {CFG_DEFAULTS("'slots':-8"), "defaults.slots: must be between 1 and 4096"},
    {CFG_DEFAULTS("'slots':9223372036854775807"), "defaults.slots: must be between 1 and 4096"},
    {CFG_DEFAULTS("'slots':99999999999999999999"), "too big"},
    {CFG_DEFAULTS("'slots':8.0"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slots':1e1"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slots':'8'"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slots':true"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slots':null"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slots':[8]"), "defaults.slots: must be an integer"},
    {CFG_DEFAULTS("'slot_growth':-1"), "defaults.slot_growth: must be between 0 and 4096"},
    {CFG_DEFAULTS("'slot_growth':4097"), "defaults.slot_growth: must be between 0 and 4096"},
    {CFG_DEFAULTS("'slot_growth':'double'"), "defaults.slot_growth: must be an integer"},
    {CFG_DEFAULTS("'mode':'HTTP'"), "defaults.mode: must be \"http\" or \"tcp\""},
    {CFG_DEFAULTS("'mode':'udp'"), "defaults.mode: must be"},
    {CFG_DEFAULTS("'mode':0"), "defaults.mode: must be a string"},
    {CFG_DEFAULTS("'balance':'uri'"), "defaults.balance: must be one of"},
    {CFG_DEFAULTS("'balance':'roundrobin '"), "defaults.balance: must be one of"},
    {CFG_DEFAULTS("'balance':'RoundRobin'"), "defaults.balance: must be one of"},
    {CFG_DEFAULTS("'balance':'roundrobin\\nbackend x'"), "defaults.balance: must be one of"},
    {CFG_DEFAULTS("'server_options':'check weight 10'"),
     "defaults.server_options: token 'weight' is managed by slotsync"},
    {CFG_DEFAULTS("'server_options':'disabled'"), "token 'disabled' is managed by slotsync"},
    {CFG_DEFAULTS("'server_options':'check enabled'"), "token 'enabled' is managed by slotsync"},
    {CFG_DEFAULTS("'server_options':'id 5'"), "token 'id' is managed by slotsync"},
    {CFG_DEFAULTS("'server_options':'init-addr none'"), "token 'init-addr' is managed"},
    {CFG_DEFAULTS("'server_options':'resolvers dns'"), "token 'resolvers' is managed"},
    {CFG_DEFAULTS("'server_options':'track other/s1'"), "token 'track' is managed"},
    {CFG_DEFAULTS("'server_options':'agent-check agent-port 9'"), "token 'agent-check' is"},
    {CFG_DEFAULTS("'server_options':'check  inter 2s'"),
     "defaults.server_options: tokens must be separated by single spaces"},
    {CFG_DEFAULTS("'server_options':' check'"), "separated by single spaces"},
    {CFG_DEFAULTS("'server_options':'check '"), "separated by single spaces"},
    {CFG_DEFAULTS("'server_options':' '"), "separated by single spaces"},
    {CFG_DEFAULTS("'server_options':'check;quit'"),
     "defaults.server_options: invalid character at byte 6"},
    {CFG_DEFAULTS("'server_options':'check\\ninter 2s'"), "invalid character at byte 6"},
    {CFG_DEFAULTS("'server_options':'check\\tinter'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':'check #x'"), "invalid character at byte 7"},
    {CFG_DEFAULTS("'server_options':'sni \\\"x\\\"'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':'sni req.hdr(host)'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':'a\\\\b'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':'check caf\\u00e9'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':'check$x'"), "invalid character"},
    {CFG_DEFAULTS("'server_options':null"), "defaults.server_options: must be a string"},

    /* services */
    {CFG("'services':[]"), "services: must be an object"},
    {CFG("'services':{'api':[]}"), "services.api: must be an object"},
    {CFG("'services':{'api':'x'}"), "services.api: must be an object"},
    {CFG("'services':{'a/b':{}}"), "services: invalid service name \"a/b\""},
    {CFG("'services':{'.':{}}"), "services: invalid service name"},
    {CFG("'services':{'..':{}}"), "services: invalid service name"},
    {CFG("'services':{'':{}}"), "services: invalid service name \"\""},
    {CFG("'services':{'a b':{}}"), "services: invalid service name"},
    {CFG("'services':{'api\\nbackend evil':{}}"), "invalid service name \"api\\nbackend evil\""},
    {CFG("'services':{'caf\\u00e9':{}}"), "invalid service name \"caf\\xc3\\xa9\""},
    {CFG("'services':{'1234567890123456789012345678901234567890123456789012345678901234':{}}"),
     "services: invalid service name"},
    {CFG("'services':{'api':{},'api':{}}"), "duplicate"},
    {CFG_SERVICE("api", "'bogus':1"), "services.api.bogus: unknown key"},
    {CFG_SERVICE("api", "'weight':1"), "services.api.weight: unknown key"},
    {CFG_SERVICE("api", "'slots':0"), "services.api.slots: must be between 1 and 4096"},
    {CFG_SERVICE("api", "'slots':4097"), "services.api.slots: must be between 1 and 4096"},
    {CFG_SERVICE("api", "'slots':2.5"), "services.api.slots: must be an integer"},
    {CFG_SERVICE("api", "'slot_growth':-1"), "services.api.slot_growth: must be between"},
    {CFG_SERVICE("api", "'mode':'health'"), "services.api.mode: must be"},
    {CFG_SERVICE("api", "'balance':'hdr(host)'"), "services.api.balance: must be one of"},
    {CFG_SERVICE("api", "'server_options':'weight 3'"),
     "services.api.server_options: token 'weight' is managed by slotsync"},
    {CFG_SERVICE("api", "'listen':'10.0.0.1'"), "services.api.listen: must be IPv4:PORT"},
    {CFG_SERVICE("api", "'listen':'10.0.0.1:0'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'*:'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'*:080'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':':65536'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'*:80 '"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'localhost:80'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'::1:80'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'[fe80::1%eth0]:80'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':'*'"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':''"), "services.api.listen: must be"},
    {CFG_SERVICE("api", "'listen':80"), "services.api.listen: must be a string"},
    {CFG_SERVICE("api", "'hosts':'a.example'"), "services.api.hosts: must be an array"},
    {CFG_SERVICE("api", "'hosts':[1]"), "services.api.hosts[0]: must be a host name"},
    {CFG_SERVICE("api", "'hosts':['']"), "services.api.hosts[0]: must be a host name"},
    {CFG_SERVICE("api", "'hosts':['ok.example','bad host']"),
     "services.api.hosts[1]: must be a host name"},
    {CFG_SERVICE("api", "'hosts':['-a.example']"), "services.api.hosts[0]: must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a-.example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a..example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['.a.example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a.example.']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a_b.example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a.example:80']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['*.example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['10.0.0.1']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['caf\\u00e9.example']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['a.example\\n']"), "must be a host name"},
    {CFG_SERVICE("api", "'hosts':['A.example','a.EXAMPLE']"),
     "services.api.hosts[1]: duplicate host name 'a.example'"},
    {CFG_SERVICE("api", "'mode':'tcp','hosts':['a.example']"),
     "services.api.hosts: only allowed with mode http"},
    {CFG("'services':{'b':{'hosts':['x.example']},'a':{'hosts':['X.example']}}"),
     "services.b.hosts: host name 'x.example' is already used by services.a"},
    {CFG("'services':{'a':{'listen':'*:8080'},'b':{'listen':'10.0.0.1:8080'}}"),
     "services.b.listen: port 8080 is already used by services.a.listen"},
    {CFG("'services':{'a':{'listen':'10.0.0.1:8080'},'b':{'listen':'10.0.0.1:8080'}}"),
     "services.b.listen: port 8080 is already used by services.a.listen"},
    {CFG("'services':{'a':{'listen':'10.0.0.1:8080'},'b':{'listen':'0.0.0.0:8080'}}"),
     "services.b.listen: port 8080 is already used by services.a.listen"},
    {CFG("'services':{'a':{'listen':':80'}},'http_frontend':{'bind':'*:80'}"),
     "services.a.listen: port 80 is already used by http_frontend.bind"},

    /* http_frontend */
    {CFG("'http_frontend':true"), "http_frontend: must be an object"},
    {CFG_HTTP(""), "http_frontend.bind: required"},
    {CFG_HTTP("'domain':'example.com'"), "http_frontend.bind: required"},
    {CFG_HTTP("'bind':'*:80','bogus':1"), "http_frontend.bogus: unknown key"},
    {CFG_HTTP("'bind':'80'"), "http_frontend.bind: must be IPv4:PORT"},
    {CFG_HTTP("'bind':[':80']"), "http_frontend.bind: must be a string"},
    {CFG_HTTP("'bind':'*:80','domain':'exa mple.com'"), "http_frontend.domain: must be a host"},
    {CFG_HTTP("'bind':'*:80','domain':'.example.com'"), "http_frontend.domain: must be a host"},
    {CFG_HTTP("'bind':'*:80','domain':''"), "http_frontend.domain: must be a host"},
    {CFG_HTTP("'bind':'*:80','domain':5"), "http_frontend.domain: must be a string"},

    /* admin */
    {CFG("'admin':true"), "admin: must be an object"},
    {CFG("'admin':{}"), "admin.listen: required"},
    {CFG("'admin':{'listen':'127.0.0.1:9180','token':'x'}"), "admin.token: unknown key"},
    {CFG("'admin':{'listen':'localhost:9180'}"), "admin.listen: must be IPv4:PORT"},
    {CFG("'admin':{'listen':'127.0.0.1:0'}"), "admin.listen: must be IPv4:PORT"},
    {CFG("'admin':{'listen':'*:9180'}"), "admin.listen: '*' is not accepted"},
    {CFG("'admin':{'listen':9180}"), "admin.listen: must be a string"},
    {CFG("'services':{'a':{'listen':'127.0.0.1:9180'}},'admin':{'listen':'127.0.0.1:9180'}"),
     "services.a.listen: port 9180 is already used by admin.listen"},

    /* top-level scalars */
    {CFG("'resync_interval_s':0"), "resync_interval_s: must be between 1 and 86400"},
    {CFG("'resync_interval_s':86401"), "resync_interval_s: must be between 1 and 86400"},
    {CFG("'resync_interval_s':'30'"), "resync_interval_s: must be an integer"},
    {CFG("'resync_interval_s':30.5"), "resync_interval_s: must be an integer"},
    {CFG("'resync_interval_s':false"), "resync_interval_s: must be an integer"},
    {CFG("'log_level':'verbose'"), "log_level: must be one of error, warn, info, debug"},
    {CFG("'log_level':'INFO'"), "log_level: must be one of"},
    {CFG("'log_level':''"), "log_level: must be one of"},
    {CFG("'log_level':3"), "log_level: must be a string"},
    {CFG("'allow_empty_registry':1"), "allow_empty_registry: must be true or false"},
    {CFG("'allow_empty_registry':'true'"), "allow_empty_registry: must be true or false"},
    {CFG("'allow_empty_registry':null"), "allow_empty_registry: must be true or false"},
};

Test(config, bad_cases)
{
    for (size_t i = 0; i < N_ELEMS(bad_cases); i++) {
        struct config cfg;
        char *err = NULL;
        int ret;

        memset(&cfg, 0x5a, sizeof(cfg));
        ret = load(bad_cases[i].json, &cfg, &err);
        cr_expect_eq(ret, -EINVAL, "case %zu: accepted (%s)", i, bad_cases[i].json);
        cr_expect(is_zeroed(&cfg), "case %zu: nothing left to free", i);
        if (ret != 0) {
            check_message(err, i);
            cr_expect_not_null(strstr(err, bad_cases[i].err), "case %zu: \"%s\" lacks \"%s\"", i,
                               err, bad_cases[i].err);
        } else {
            config_free(&cfg);
        }
        free(err);
    }
}

/* A message never carries a raw control byte from the input, even where it
 * names the bad key. */
Test(config, unknown_key_is_escaped)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'x\\n2024-01-01 error forged: y\\u001b[2J':1"), &cfg, &err), -EINVAL);
    cr_expect_null(strchr(err, '\n'));
    cr_expect_null(strchr(err, '\x1b'));
    cr_expect_not_null(strstr(err, "x\\n2024"), "%s", err);
    cr_expect_not_null(strstr(err, "\\x1b[2J"), "%s", err);
    free(err);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Bad cases whose text is too long to write inline. */
Test(config, length_limits)
{
    struct {
        char *json;
        const char *err; /* NULL: accepted */
    } cases[20];
    size_t n = 0;
    char *s, *t, *u;

    /* prefix: 255 ok, 256 not */
    s = repeat('p', 253);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_ETCD(EP ",'prefix':'/%s/'"), s);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_ETCD(EP ",'prefix':'/%sp/'"), s);
    cases[n++].err = "etcd.prefix: must be 1-255";
    free(s);

    /* unix socket path: 107 ok, 108 not */
    s = repeat('s', 106);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_HAPROXY("'runtime_socket':'/%s'," SF), s);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_HAPROXY("'runtime_socket':'/%ss'," SF), s);
    cases[n++].err = "haproxy.runtime_socket: unix socket path longer than 107 bytes";
    free(s);

    /* paths and commands: 4096 ok, 4097 not */
    s = repeat('f', 4095);
    cases[n].json = malloc(8192);
    snprintf(cases[n].json, 8192, CFG_HAPROXY(RS ",'services_file':'/%s'"), s);
    cases[n++].err = NULL;
    cases[n].json = malloc(8192);
    snprintf(cases[n].json, 8192, CFG_HAPROXY(RS ",'services_file':'/%sf'"), s);
    cases[n++].err = "haproxy.services_file: must be 1-4096";
    cases[n].json = malloc(8192);
    snprintf(cases[n].json, 8192, CFG_HAPROXY(RS "," SF ",'reload_command':'%sff'"), s);
    cases[n++].err = "haproxy.reload_command: must be 1-4096";
    free(s);

    /* server_options: 511 ok, 512 not */
    s = repeat('o', 511);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_DEFAULTS("'server_options':'%s'"), s);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_DEFAULTS("'server_options':'%so'"), s);
    cases[n++].err = "defaults.server_options: longer than 511 bytes";
    free(s);

    /* host names: labels up to 63, names up to 253 */
    s = repeat('l', 63);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_SERVICE("api", "'hosts':['%s.example']"), s);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_SERVICE("api", "'hosts':['%sl.example']"), s);
    cases[n++].err = "services.api.hosts[0]: must be a host name";
    free(s);
    /* 4 labels of 63 + 3 dots = 255; 61 + 63*3 + 3 = 253 */
    s = repeat('a', 63);
    t = repeat('b', 61);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_SERVICE("api", "'hosts':['%s.%s.%s.%s']"), t, s, s, s);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_SERVICE("api", "'hosts':['b%s.%s.%s.%s']"), t, s, s, s);
    cases[n++].err = "services.api.hosts[0]: must be a host name";
    free(s);
    free(t);

    /* http_frontend.domain: 189 ok (63 + "." + 189 = 253), 190 not, so that
     * <service>.<domain> is a host name for every service name */
    s = repeat('a', 63);
    t = repeat('b', 63);
    u = repeat('c', 61);
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_HTTP("'bind':'*:80','domain':'%s.%s.%s'"), s, t, u);
    cases[n++].err = NULL;
    cases[n].json = malloc(1024);
    snprintf(cases[n].json, 1024, CFG_HTTP("'bind':'*:80','domain':'%s.%s.c%s'"), s, t, u);
    cases[n++].err = "http_frontend.domain: must be at most 189 characters";
    free(s);
    free(t);
    free(u);

    cr_assert_leq(n, N_ELEMS(cases));
    for (size_t i = 0; i < n; i++) {
        struct config cfg;
        char *err = NULL;
        int ret = load(cases[i].json, &cfg, &err);

        if (!cases[i].err) {
            cr_expect_eq(ret, 0, "case %zu: %s", i, err ? err : "");
        } else {
            cr_expect_eq(ret, -EINVAL, "case %zu: accepted", i);
            if (err)
                cr_expect_not_null(strstr(err, cases[i].err), "case %zu: \"%s\" lacks \"%s\"", i,
                                   err, cases[i].err);
        }
        config_free(&cfg);
        free(err);
        free(cases[i].json);
    }
}

/* Array sizes: 16 etcd endpoints, 32 hosts. */
Test(config, count_limits)
{
    char json[4096], list[2048];
    struct config cfg;
    char *err = NULL;
    size_t o;

    o = 0;
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s'http://10.0.0.%d:2379'", i ? "," : "",
                              i + 1);
    snprintf(json, sizeof(json), CFG_ETCD("'endpoints':[%s]," PF), list);
    cr_expect_eq(load(json, &cfg, &err), 0, "%s", err ? err : "");
    cr_expect_eq(cfg.n_etcd_endpoints, 16);
    config_free(&cfg);
    snprintf(json, sizeof(json), CFG_ETCD("'endpoints':[%s,'http://10.0.1.1:2379']," PF), list);
    cr_expect_eq(load(json, &cfg, &err), -EINVAL);
    cr_expect_not_null(strstr(err, "etcd.endpoints: must list 1 to 16 URLs"), "%s", err);

    o = 0;
    for (int i = 0; i < 32; i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s'h%d.example'", i ? "," : "", i);
    snprintf(json, sizeof(json), CFG_SERVICE("api", "'hosts':[%s]"), list);
    cr_expect_eq(load(json, &cfg, &err), 0, "%s", err ? err : "");
    cr_assert_eq(cfg.n_services, 1);
    cr_expect_eq(cfg.services[0].n_hosts, 32);
    config_free(&cfg);
    snprintf(json, sizeof(json), CFG_SERVICE("api", "'hosts':[%s,'x.example']"), list);
    cr_expect_eq(load(json, &cfg, &err), -EINVAL);
    cr_expect_not_null(strstr(err, "services.api.hosts: at most 32 host names"), "%s", err);
    free(err);
}

/* A failure late in the file, after services with hosts were allocated,
 * frees everything (ASan checks). */
Test(config, late_failure_frees_everything)
{
    struct config cfg;
    char *err = NULL;

    cr_expect_eq(load(CFG("'services':{'a':{'hosts':['a.example','b.example']},"
                          "'b':{'hosts':['c.example']}},'log_level':'loud'"),
                      &cfg, &err),
                 -EINVAL);
    cr_expect(is_zeroed(&cfg));
    cr_expect_not_null(strstr(err, "log_level"), "%s", err);
    free(err);
}

Test(config, many_services_sorted_and_found)
{
    char *json = malloc(1 << 16), *err = NULL;
    struct config cfg;
    size_t o;

    cr_assert_not_null(json);
    o = (size_t)snprintf(json, 1 << 16, "{" ETCD "," HAPROXY ",'services':{");
    /* written in reverse order */
    for (int i = 499; i >= 0; i--)
        o += (size_t)snprintf(json + o, (1 << 16) - o, "%s'svc-%03d':{'slots':%d}",
                              i == 499 ? "" : ",", i, i % 4096 + 1);
    snprintf(json + o, (1 << 16) - o, "}}");
    cr_assert_eq(load(json, &cfg, &err), 0, "%s", err ? err : "");
    cr_assert_eq(cfg.n_services, 500);
    for (size_t i = 1; i < cfg.n_services; i++)
        cr_assert_lt(strcmp(cfg.services[i - 1].name, cfg.services[i].name), 0);
    for (int i = 0; i < 500; i++) {
        char name[16];
        const struct service_conf *s;

        snprintf(name, sizeof(name), "svc-%03d", i);
        s = config_find_service(&cfg, name);
        cr_assert_not_null(s, "%s", name);
        cr_expect_str_eq(s->name, name);
        cr_expect_eq(s->opt.slots, i + 1);
    }
    cr_expect_null(config_find_service(&cfg, "svc-500"));
    cr_expect_null(config_find_service(&cfg, "svc"));
    cr_expect_null(config_find_service(&cfg, ""));
    cr_expect_null(config_find_service(&cfg, NULL));
    config_free(&cfg);
    free(json);
    free(err);
}

Test(config, find_service_on_empty)
{
    struct config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cr_expect_null(config_find_service(&cfg, "api"));
    cr_expect_null(config_find_service(NULL, "api"));
}

Test(config, free_is_idempotent)
{
    struct config cfg;
    char path[512], *err = NULL;

    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
    config_free(NULL);

    data_path(path, sizeof(path), "full.json");
    cr_assert_eq(config_load(path, &cfg, &err), 0, "%s", err ? err : "");
    config_free(&cfg);
    config_free(&cfg);
    cr_expect(is_zeroed(&cfg));
    free(err);
}

/* ---- files ---- */

Test(config, file_minimal)
{
    struct config cfg;
    char path[512], *err = NULL;

    data_path(path, sizeof(path), "minimal.json");
    cr_assert_eq(config_load(path, &cfg, &err), 0, "%s", err ? err : "");
    cr_expect_eq(cfg.defaults.slots, 8);
    cr_expect_eq(cfg.n_services, 0);
    config_free(&cfg);
    free(err);
}

Test(config, file_errors)
{
    static const struct {
        const char *name;
        int ret;
        const char *err;
    } cases[] = {
        {"duplicate-key.json", -EINVAL, "duplicate"},
        {"syntax-error.json", -EINVAL, "line 3"},
        {"bad-slots.json", -EINVAL, "services.api.slots: must be between 1 and 4096"},
        {"does-not-exist.json", -ENOENT, "does-not-exist.json"},
        /* the directory itself: said so (issue 19), not a JSON error */
        {"", -EISDIR, "config/\": is a directory"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char path[512], *err = NULL;
        int ret;

        data_path(path, sizeof(path), cases[i].name);
        ret = config_load(path, &cfg, &err);
        cr_expect_eq(ret, cases[i].ret, "case %zu", i);
        cr_expect(is_zeroed(&cfg), "case %zu", i);
        check_message(err, i);
        cr_expect_not_null(strstr(err, cases[i].err), "case %zu: \"%s\" lacks \"%s\"", i, err,
                           cases[i].err);
        free(err);
    }
}

Test(config, file_path_is_escaped)
{
    struct config cfg;
    char *err = NULL;

    cr_expect_eq(config_load("/nonexistent/a\nb\x1b", &cfg, &err), -ENOENT);
    check_message(err, 0);
    cr_expect_not_null(strstr(err, "a\\nb\\x1b"), "%s", err);
    free(err);
    err = NULL;
    cr_expect_eq(config_load(NULL, &cfg, &err), -EINVAL);
    free(err);
    err = NULL;
    cr_expect_eq(config_load_string(NULL, &cfg, &err), -EINVAL);
    free(err);
}

/* ---- command-line overrides ---- */

Test(config, set_etcd)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &cfg, &err), 0);
    cr_expect_eq(
        config_set_etcd(&cfg, "http://a.example:1,http://[::1]:2/,http://10.0.0.1:3", &err), 0,
        "%s", err ? err : "");
    cr_assert_eq(cfg.n_etcd_endpoints, 3);
    cr_expect_str_eq(cfg.etcd_endpoints[0], "http://a.example:1");
    cr_expect_str_eq(cfg.etcd_endpoints[1], "http://[::1]:2");
    cr_expect_str_eq(cfg.etcd_endpoints[2], "http://10.0.0.1:3");

    static const struct {
        const char *urls;
        const char *err;
    } bad[] = {
        {"", "etcd.endpoints: required"},
        {NULL, "etcd.endpoints: required"},
        {",", "etcd.endpoints[0]: empty URL"},
        {"http://a:1,", "etcd.endpoints[1]: empty URL"},
        {"http://a:1,,http://b:2", "etcd.endpoints[1]: empty URL"},
        {"http://a:1, http://b:2", "etcd.endpoints[1]: URL must start with"},
        {"http://a:1;http://b:2", "etcd.endpoints[0]: unexpected text after the URL port"},
        {"http://a:1\nhttp://b:2", "etcd.endpoints[0]: unexpected text after the URL port"},
        {"http://a", "etcd.endpoints[0]: URL needs a port"},
        {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "must list 1 to 16"},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        cr_expect_eq(config_set_etcd(&cfg, bad[i].urls, &err), -EINVAL, "case %zu", i);
        check_message(err, i);
        cr_expect_not_null(strstr(err, bad[i].err), "case %zu: \"%s\" lacks \"%s\"", i, err,
                           bad[i].err);
        /* the previous list stays */
        cr_expect_eq(cfg.n_etcd_endpoints, 3, "case %zu", i);
        cr_expect_str_eq(cfg.etcd_endpoints[0], "http://a.example:1");
    }

    char list[1024];
    size_t o = 0;
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%shttp://e%d:2379", i ? "," : "", i);
    cr_expect_eq(config_set_etcd(&cfg, list, &err), 0);
    cr_expect_eq(cfg.n_etcd_endpoints, 16);
    config_free(&cfg);
    free(err);
}

Test(config, set_etcd_on_zeroed_config)
{
    struct config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cr_expect_eq(config_set_etcd(&cfg, "http://127.0.0.1:2379", NULL), 0);
    cr_expect_eq(config_set_prefix(&cfg, "/p/", NULL), 0);
    cr_expect_eq(config_set_runtime_socket(&cfg, "/run/h.sock", NULL), 0);
    cr_expect_eq(config_set_log_level(&cfg, "warn", NULL), 0);
    cr_expect_eq(cfg.log_level, LOG_LEVEL_WARN);
    config_free(&cfg);
}

Test(config, set_prefix)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &cfg, &err), 0);
    cr_expect_eq(config_set_prefix(&cfg, "/sd/prod/", &err), 0);
    cr_expect_str_eq(cfg.etcd_prefix, "/sd/prod/");

    static const char *const bad[] = {"", "sd/", "/sd", "/s d/", "/s\n/", "/caf\xc3\xa9/", NULL};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        cr_expect_eq(config_set_prefix(&cfg, bad[i], &err), -EINVAL, "case %zu", i);
        check_message(err, i);
        cr_expect_not_null(strstr(err, "etcd.prefix"), "case %zu: %s", i, err);
        cr_expect_str_eq(cfg.etcd_prefix, "/sd/prod/");
    }
    config_free(&cfg);
    free(err);
}

Test(config, set_runtime_socket)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &cfg, &err), 0);
    cr_expect_eq(config_set_runtime_socket(&cfg, "127.0.0.1:9999", &err), 0);
    cr_expect_str_eq(cfg.runtime_socket, "127.0.0.1:9999");

    static const char *const bad[] = {"", "sock", "127.0.0.1:0", "/a b", "host:1", NULL};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        cr_expect_eq(config_set_runtime_socket(&cfg, bad[i], &err), -EINVAL, "case %zu", i);
        check_message(err, i);
        cr_expect_not_null(strstr(err, "haproxy.runtime_socket: "), "case %zu: %s", i, err);
        cr_expect_str_eq(cfg.runtime_socket, "127.0.0.1:9999");
    }
    config_free(&cfg);
    free(err);
}

Test(config, set_log_level)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &cfg, &err), 0);
    cr_expect_eq(config_set_log_level(&cfg, "debug", &err), 0);
    cr_expect_eq(cfg.log_level, LOG_LEVEL_DEBUG);
    cr_expect_eq(config_set_log_level(&cfg, "error", &err), 0);
    cr_expect_eq(cfg.log_level, LOG_LEVEL_ERROR);
    cr_expect_eq(config_set_log_level(&cfg, "loud", &err), -EINVAL);
    cr_expect_not_null(strstr(err, "log_level: must be one of"), "%s", err);
    cr_expect_eq(config_set_log_level(&cfg, NULL, &err), -EINVAL);
    cr_expect_eq(cfg.log_level, LOG_LEVEL_ERROR);
    config_free(&cfg);
    free(err);
}

Test(config, balance_is_dynamic)
{
    static const struct {
        const char *balance;
        bool dynamic;
    } cases[] = {
        {"roundrobin", true}, {"leastconn", true}, {"first", true},        {"random", true},
        {"static-rr", false}, {"source", false},   {"uri", false},         {"", false},
        {"RANDOM", false},    {NULL, false},       {"roundrobin ", false},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++)
        cr_expect_eq(config_balance_is_dynamic(cases[i].balance), cases[i].dynamic, "case %zu", i);
}

/* ---- config_load_all: every problem, not only the first ---- */

struct collected {
    char lines[16][256];
    bool error[16];
    size_t n;
};

static void collect(bool error, const char *text, void *arg)
{
    struct collected *c = arg;

    cr_assert_lt(c->n, N_ELEMS(c->lines));
    snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", text);
    c->error[c->n++] = error;
}

static char *write_temp(const char *squoted)
{
    static char path[64];
    char *json = dq(squoted);
    int fd;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/slotsync-test-config-XXXXXX");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    free(json);
    return path;
}

Test(config, load_all_reports_every_problem)
{
    const char *path =
        write_temp("{'etcd':{'endpoints':['ftp://127.0.0.1:2379'],'prefix':'/services/'}," HAPROXY
                   ",'services':{'api':{'slots':0},'db':{'mode':'udp'},'ok':{}},"
                   "'log_level':'loud','bogus':1}");
    static const char *const want[] = {
        "bogus: unknown key",
        "etcd.endpoints[0]: URL must start with http:// or https://",
        "services.api.slots: must be between 1 and 4096",
        "services.db.mode: must be \"http\" or \"tcp\"",
        "log_level: must be one of error, warn, info, debug",
    };
    struct collected got = {0};
    struct config cfg;

    cr_expect_eq(config_load_all(path, &cfg, collect, &got), -5);
    unlink(path);
    cr_assert_eq(got.n, N_ELEMS(want));
    for (size_t i = 0; i < got.n; i++) {
        cr_expect(got.error[i]);
        cr_expect_str_eq(got.lines[i], want[i]);
    }
    cr_expect(is_zeroed(&cfg), "nothing left to free");
}

Test(config, load_all_good_and_unreadable)
{
    const char *path = write_temp(MINIMAL);
    struct collected got = {0};
    struct config cfg;

    cr_expect_eq(config_load_all(path, &cfg, collect, &got), 0);
    cr_expect_eq(got.n, 0);
    cr_expect_str_eq(cfg.etcd_prefix, "/services/");
    config_free(&cfg);
    /* a syntax error or a missing file is one error: nothing else to read */
    cr_expect_eq(config_load_all(path, &cfg, collect, &got), 0);
    config_free(&cfg);
    unlink(path);
    cr_expect_eq(config_load_all(path, &cfg, collect, &got), -1);
    cr_assert_eq(got.n, 1);
    cr_expect(strstr(got.lines[0], "cannot open") != NULL, "%s", got.lines[0]);
    config_free(&cfg);
}

/* config_load still stops at the first error, with that error's text. */
Test(config, load_still_stops_at_first_error)
{
    struct config cfg;
    char *err = NULL;

    cr_expect_eq(load(CFG("'services':{'api':{'slots':0},'db':{'mode':'udp'}}"), &cfg, &err),
                 -EINVAL);
    cr_expect_str_eq(err, "services.api.slots: must be between 1 and 4096");
    free(err);
}

Test(config, weight_warnings_name_static_and_first)
{
    static const struct {
        const char *text;
        size_t warnings;
    } cases[] = {
        {MINIMAL, 0},
        {CFG("'services':{'a':{'balance':'static-rr'},'b':{'balance':'leastconn'}}"), 1},
        {CFG("'services':{'a':{'balance':'source'},'b':{'balance':'first'}}"), 2},
        /* the defaults are said once, not again for each service using them */
        {CFG("'defaults':{'balance':'static-rr'},'services':{'a':{},'b':{'balance':'first'}}"), 2},
    };

    cr_assert(config_balance_is_static("static-rr"));
    cr_assert(config_balance_is_static("source"));
    cr_assert_not(config_balance_is_static("first"));
    cr_assert_not(config_balance_is_static("roundrobin"));
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;

        cr_assert_eq(load(cases[i].text, &cfg, &err), 0, "case %zu: %s", i, err ? err : "");
        struct collected got = {0};

        cr_expect_eq(config_weight_warnings(&cfg, collect, &got), cases[i].warnings, "case %zu", i);
        cr_expect_eq(got.n, cases[i].warnings, "case %zu: reported", i);
        for (size_t k = 0; k < got.n; k++)
            cr_expect_not(got.error[k], "case %zu: a warning, not an error", i);
        config_free(&cfg);
    }
}

/* ---- log_format and dns (issue 13) ---- */

static const struct bad_case packaging_bad_cases[] = {
    {CFG("'log_format':'xml'"), "log_format: must be one of text, logfmt, json"},
    {CFG("'log_format':1"), "log_format: must be a string"},
    {CFG("'dns':{}"), "dns.hosts_file: required"},
    {CFG("'dns':{'hosts_file':'/var/lib/slotsync/hosts','bogus':1}"), "dns.bogus: unknown key"},
    {CFG("'dns':{'hosts_file':'/h','domain':'a b'}"), "dns.domain: must be a host name"},
    {CFG("'dns':{'hosts_file':'/h','address':'localhost'}"), "dns.address: must be an IPv4"},
    {CFG("'dns':{'hosts_file':'/h','address':'10.0.0.1 evil'}"), "dns.address: must be an IPv4"},
    {CFG("'dns':{'hosts_file':'/h\\nx'}"), "dns.hosts_file"},
};

Test(config, packaging_bad_cases)
{
    for (size_t i = 0; i < N_ELEMS(packaging_bad_cases); i++) {
        struct config cfg;
        char *err = NULL;
        int ret;

        memset(&cfg, 0x5a, sizeof(cfg));
        ret = load(packaging_bad_cases[i].json, &cfg, &err);
        cr_expect_eq(ret, -EINVAL, "case %zu: accepted", i);
        cr_expect(is_zeroed(&cfg), "case %zu: nothing left to free", i);
        if (ret != 0)
            cr_expect_not_null(strstr(err, packaging_bad_cases[i].err),
                               "case %zu: \"%s\" lacks \"%s\"", i, err, packaging_bad_cases[i].err);
        else
            config_free(&cfg);
        free(err);
    }
}

Test(config, log_format_and_dns)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'log_level':'info'"), &cfg, &err), 0, "%s", err ? err : "");
    cr_expect_eq(cfg.log_format, LOG_FORMAT_TEXT);
    cr_expect_null(cfg.dns.hosts_file);
    config_free(&cfg);
    cr_assert_eq(
        load(CFG("'log_format':'json','dns':{'hosts_file':'/var/lib/slotsync/hosts'}"), &cfg, &err),
        0, "%s", err ? err : "");
    cr_expect_eq(cfg.log_format, LOG_FORMAT_JSON);
    cr_expect_str_eq(cfg.dns.hosts_file, "/var/lib/slotsync/hosts");
    cr_expect_str_eq(cfg.dns.domain, "service.local");
    cr_expect_str_eq(cfg.dns.address, "127.0.0.1");
    cr_expect_null(cfg.dns.reload_pid_file);
    config_free(&cfg);
    cr_assert_eq(load(CFG("'log_format':'logfmt','dns':{'hosts_file':'/h','domain':'Svc.Local',"
                          "'address':'::1','reload_pid_file':'/run/dnsmasq/dnsmasq.pid'}"),
                      &cfg, &err),
                 0, "%s", err ? err : "");
    cr_expect_eq(cfg.log_format, LOG_FORMAT_LOGFMT);
    cr_expect_str_eq(cfg.dns.domain, "svc.local");
    cr_expect_str_eq(cfg.dns.address, "::1");
    cr_expect_str_eq(cfg.dns.reload_pid_file, "/run/dnsmasq/dnsmasq.pid");
    config_free(&cfg);
}

/* ---- etcd.tls, etcd.username, etcd.password_file (issue 11) ---- */

Test(config, etcd_tls_and_user)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG_ETCD(EP "," PF ",'tls':{'ca_file':'/etc/ssl/ca.pem','cert_file':'/c.pem',"
                                  "'key_file':'/k.pem','server_name':'etcd.test'},"
                                  "'username':'daemon','password_file':'/etc/pw'"),
                      &cfg, &err),
                 0, "%s", err ? err : "");
    cr_assert_str_eq(cfg.etcd_tls.ca_file, "/etc/ssl/ca.pem");
    cr_assert_str_eq(cfg.etcd_tls.cert_file, "/c.pem");
    cr_assert_str_eq(cfg.etcd_tls.key_file, "/k.pem");
    cr_assert_str_eq(cfg.etcd_tls.server_name, "etcd.test");
    cr_assert_str_eq(cfg.etcd_username, "daemon");
    cr_assert_str_eq(cfg.etcd_password_file, "/etc/pw");
    config_free(&cfg);

    /* all optional: https with the system's CAs */
    cr_assert_eq(
        load(CFG_ETCD("'endpoints':['https://etcd.example.com:2379']," PF ",'tls':{}"), &cfg, &err),
        0, "%s", err ? err : "");
    cr_assert(!tls_conf_set(&cfg.etcd_tls));
    config_free(&cfg);
}

Test(config, etcd_tls_and_user_bad)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {CFG_ETCD(EP "," PF ",'tls':{'cert_file':'/c.pem'}"), "etcd.tls: cert_file and key_file"},
        {CFG_ETCD(EP "," PF ",'tls':{'key_file':'/k.pem'}"), "etcd.tls: cert_file and key_file"},
        {CFG_ETCD(EP "," PF ",'tls':{'server_name':'a b'}"), "etcd.tls.server_name"},
        {CFG_ETCD(EP "," PF ",'tls':{'server_name':''}"), "etcd.tls.server_name"},
        {CFG_ETCD(EP "," PF ",'tls':{'insecure':true}"), "etcd.tls.insecure: unknown key"},
        {CFG_ETCD(EP "," PF ",'tls':'/ca.pem'"), "etcd.tls: must be an object"},
        {CFG_ETCD(EP "," PF ",'username':'u'"), "etcd.username: goes with etcd.password_file"},
        {CFG_ETCD(EP "," PF ",'password_file':'/pw'"), "goes with etcd.password_file"},
        {CFG_ETCD(EP "," PF ",'username':'a b','password_file':'/pw'"), "etcd.username"},
        {CFG_ETCD(EP "," PF ",'username':'u','password':'x','password_file':'/pw'"),
         "etcd.password: unknown key"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;

        cr_assert_eq(load(cases[i].json, &cfg, &err), -EINVAL, "case %zu loaded", i);
        cr_assert_not_null(err);
        cr_assert(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        cr_assert(is_zeroed(&cfg));
        free(err);
    }
}

/* ---- comparing configs (SIGHUP) ---- */

struct same_case {
    const char *b; /* compared with MINIMAL */
    bool restart, http, options;
    const char *changed; /* the restart fields named, when not NULL */
};

static const struct same_case same_cases[] = {
    {MINIMAL, true, true, true, NULL},
    {CFG("'resync_interval_s':5"), true, true, true, NULL},
    {CFG_DEFAULTS("'slots':64"), true, true, true, NULL},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2380']," PF), false, true, true, "etcd.endpoints"},
    {CFG_ETCD("'endpoints':['http://127.0.0.1:2379','http://127.0.0.1:2380']," PF), false, true,
     true, NULL},
    {CFG_ETCD(EP ",'prefix':'/other/'"), false, true, true, "etcd.prefix"},
    /* issue 22: named (it needs a restart, and the SIGHUP said only "a
     * field that needs a restart changed") */
    {CFG_ETCD(EP "," PF ",'transport':'json'"), false, true, true, "etcd.transport"},
    {CFG_HAPROXY("'runtime_socket':'/tmp/x.sock'," SF), false, true, true,
     "haproxy.runtime_socket"},
    {CFG_HAPROXY(RS ",'services_file':'/tmp/s.cfg'"), false, true, true,
     "haproxy.services_file, haproxy.hosts_map"},
    {CFG_HAPROXY(RS "," SF ",'master_socket':'/run/m.sock'"), false, true, true, NULL},
    {CFG_HAPROXY(RS "," SF ",'base_config':'/etc/haproxy/haproxy.cfg'"), false, true, true, NULL},
    {CFG_HAPROXY(RS "," SF ",'reload_command':'/bin/true'"), false, true, true,
     "haproxy.reload_command"},
    {CFG_HAPROXY(RS "," SF ",'min_reload_interval_ms':0"), true, true, true, NULL},
    {CFG_HAPROXY(RS "," SF ",'runtime_timeout_s':2"), false, true, true, NULL},
    {CFG_HTTP("'bind':'127.0.0.1:8080'"), true, false, true, NULL},
    {CFG_DEFAULTS("'balance':'leastconn'"), true, true, false, NULL},
    {CFG_DEFAULTS("'server_options':'check'"), true, true, false, NULL},
    {CFG_DEFAULTS("'slot_growth':2"), true, true, false, NULL},
    {CFG_DEFAULTS("'mode':'tcp'"), true, true, false, NULL},
};

Test(config, same_fields)
{
    struct config a;
    char *err = NULL;

    cr_assert_eq(load(MINIMAL, &a, &err), 0, "%s", err ? err : "");
    for (size_t i = 0; i < N_ELEMS(same_cases); i++) {
        const struct same_case *c = &same_cases[i];
        struct config b;

        cr_assert_eq(load(c->b, &b, &err), 0, "case %zu: %s", i, err ? err : "");
        cr_expect_eq(config_same_restart_fields(&a, &b), c->restart, "case %zu", i);
        cr_expect_eq(config_same_restart_fields(&b, &a), c->restart, "case %zu", i);
        {
            char fields[256];

            /* issue 19: SIGHUP names what changed */
            cr_expect_eq(config_restart_fields_changed(&b, &a, fields, sizeof(fields)) == 0,
                         c->restart, "case %zu: %s", i, fields);
            if (c->changed)
                cr_expect_str_eq(fields, c->changed, "case %zu", i);
        }
        cr_expect_eq(config_same_http_frontend(&a, &b), c->http, "case %zu", i);
        cr_expect_eq(config_same_options(&a.defaults, &b.defaults), c->options, "case %zu", i);
        cr_expect(config_same_listen(&b.http_bind, &b.http_bind), "case %zu", i);
        config_free(&b);
    }
    config_free(&a);
}

/* ---- admin.tls, admin.token_file, admin.protected_paths (issue 20) ---- */

#define CFG_ADMIN(members) CFG("'admin':{'listen':'10.0.0.1:9100'," members "}")

Test(config, admin_protection)
{
    struct config cfg;
    char *err = NULL;

    cr_assert_eq(load(CFG("'admin':{'listen':':9100'}"), &cfg, &err), 0, "%s", err);
    cr_expect_eq(cfg.admin.protected_paths, ADMIN_PATHS_PROTECTED_DEFAULT);
    cr_expect_null(cfg.admin.tls_cert_file);
    cr_expect_null(cfg.admin.token_file);
    config_free(&cfg);

    cr_assert_eq(load(CFG_ADMIN("'tls':{'cert_file':'/c.pem','key_file':'/k.pem',"
                                "'client_ca_file':'/ca.pem'},'token_file':'/t',"
                                "'protected_paths':['/metrics','/healthz']"),
                      &cfg, &err),
                 0, "%s", err);
    cr_expect_str_eq(cfg.admin.tls_cert_file, "/c.pem");
    cr_expect_str_eq(cfg.admin.tls_key_file, "/k.pem");
    cr_expect_str_eq(cfg.admin.tls_client_ca_file, "/ca.pem");
    cr_expect_str_eq(cfg.admin.token_file, "/t");
    cr_expect_eq(cfg.admin.protected_paths, ADMIN_PATH_METRICS | ADMIN_PATH_HEALTHZ);
    config_free(&cfg);

    /* An empty list: nothing protected, even with a token. */
    cr_assert_eq(load(CFG_ADMIN("'token_file':'/t','protected_paths':[]"), &cfg, &err), 0, "%s",
                 err);
    cr_expect_eq(cfg.admin.protected_paths, 0u);
    config_free(&cfg);

    cr_expect_eq(config_admin_path_bit("/"), ADMIN_PATH_PAGE);
    cr_expect_eq(config_admin_path_bit("/readyz"), ADMIN_PATH_READYZ);
    cr_expect_eq(config_admin_path_bit("/readyz/"), 0u);
    cr_expect_eq(config_admin_path_bit("/METRICS"), 0u);
}

Test(config, admin_protection_bad)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {CFG_ADMIN("'tls':{'cert_file':'/c.pem'}"), "admin.tls.key_file: required"},
        {CFG_ADMIN("'tls':{'key_file':'/k.pem'}"), "admin.tls.cert_file: required"},
        {CFG_ADMIN("'tls':{'client_ca_file':'/ca.pem'}"), "admin.tls.cert_file: required"},
        {CFG_ADMIN("'tls':{'cert_file':'/c.pem','key_file':'/k.pem','verify':false}"),
         "admin.tls.verify: unknown key"},
        {CFG_ADMIN("'tls':'/c.pem'"), "admin.tls: must be an object"},
        {CFG_ADMIN("'tls':{'cert_file':'','key_file':'/k.pem'}"), "admin.tls.cert_file"},
        {CFG_ADMIN("'tls':{'cert_file':'/c.pem','key_file':7}"), "admin.tls.key_file"},
        {CFG_ADMIN("'token_file':''"), "admin.token_file"},
        {CFG_ADMIN("'token_file':['/t']"), "admin.token_file: must be a string"},
        {CFG_ADMIN("'token':'abc'"), "admin.token: unknown key"},
        {CFG_ADMIN("'protected_paths':['/metrics']"),
         "admin.protected_paths: needs admin.token_file or admin.tls.client_ca_file"},
        {CFG_ADMIN("'token_file':'/t','protected_paths':'/metrics'"),
         "admin.protected_paths: must be an array"},
        {CFG_ADMIN("'token_file':'/t','protected_paths':['/metrics','/nope']"),
         "admin.protected_paths[1]: must be one of"},
        {CFG_ADMIN("'token_file':'/t','protected_paths':['/status','/status']"),
         "admin.protected_paths[1]: /status is listed twice"},
        {CFG_ADMIN("'token_file':'/t','protected_paths':[3]"),
         "admin.protected_paths[0]: must be a string"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;

        cr_assert_eq(load(cases[i].json, &cfg, &err), -EINVAL, "case %zu loaded", i);
        check_message(err, i);
        cr_assert(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        cr_assert(is_zeroed(&cfg), "case %zu: config not zeroed", i);
        free(err);
    }
}

Test(config, admin_same)
{
    struct admin_conf a = {.token_file = "/t", .protected_paths = ADMIN_PATH_METRICS};
    struct admin_conf b = a;

    cr_expect(config_same_admin(&a, &b));
    b.token_file = "/u";
    cr_expect_not(config_same_admin(&a, &b));
    b = a;
    b.protected_paths |= ADMIN_PATH_STATUS;
    cr_expect_not(config_same_admin(&a, &b));
    b = a;
    b.tls_cert_file = "/c";
    cr_expect_not(config_same_admin(&a, &b));
}

/* ---- two errors at once: which one is said first (issue 22) ---- */

/* The keyword tables keep the order in which the hand-written loaders
 * checked a block's fields (KW_TYPE and KW_REQUIRED_LATE rows), so a
 * config with two errors says the same one first as before. */
Test(config, first_of_two_errors_keeps_its_order)
{
    static const struct {
        const char *json, *first;
    } cases[] = {
        {CFG_HTTP("'bind':5,'spare_backends':-1"), "http_frontend.bind: must be a string"},
        {CFG_HTTP("'spare_backends':-1"), "http_frontend.bind: required"},
        {CFG_HTTP("'bind':'x','spare_backends':-1"),
         "http_frontend.spare_backends: must be between 0 and 1024"},
        {CFG("'dns':{'domain':'a b'}"), "dns.hosts_file: required"},
        {CFG("'dns':{'address':7}"), "dns.address: must be a string"},
        {CFG("'dns':{'reload_pid_file':'a b'}"),
         "dns.reload_pid_file: must be 1-4096 printable ASCII characters, no whitespace"},
        {CFG_HAPROXY(SF ",'master_socket':'x'"), "haproxy.master_socket: must be a unix socket"},
        {CFG_HAPROXY("'services_file':'a b'"),
         "haproxy.services_file: must be 1-4096 printable ASCII characters, no whitespace"},
        {CFG_HAPROXY("'master_socket':'/m'"), "haproxy.runtime_socket: required"},
        {CFG_HAPROXY(RS ",'min_reload_interval_ms':-1"), "haproxy.services_file: required"},
        {CFG("'log_level':'loud','dns':{}"), "dns.hosts_file: required"},
        {CFG("'log_level':5,'dns':{}"), "log_level: must be a string"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct config cfg;
        char *err = NULL;

        cr_assert_eq(load(cases[i].json, &cfg, &err), -EINVAL, "case %zu loaded", i);
        cr_expect(err && strncmp(err, cases[i].first, strlen(cases[i].first)) == 0,
                  "case %zu: '%s', not '%s'", i, err ? err : "", cases[i].first);
        free(err);
    }
}

/* config_load_all: a log_level of the wrong type is said once, in its
 * place; a bad value after the blocks before the caps. */
Test(config, load_all_says_log_level_once_in_its_place)
{
    static const struct {
        const char *json;
        const char *lines[3];
    } cases[] = {
        {CFG("'log_level':5,'dns':{},'max_services':-1"),
         {"log_level: must be a string", "dns.hosts_file: required",
          "max_services: must be between 0 and 1000000"}},
        {CFG("'log_level':'loud','dns':{},'max_services':-1"),
         {"dns.hosts_file: required", "max_services: must be between 0 and 1000000",
          "log_level: must be one of error, warn, info, debug"}},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct collected got = {.n = 0};
        char *path = write_temp(cases[i].json);
        struct config cfg;

        cr_expect_eq(config_load_all(path, &cfg, collect, &got), -3, "case %zu", i);
        unlink(path);
        cr_assert_eq(got.n, 3, "case %zu: %zu lines", i, got.n);
        for (size_t k = 0; k < 3; k++)
            cr_expect_str_eq(got.lines[k], cases[i].lines[k], "case %zu line %zu", i, k);
    }
}
