/* Tests for render: the services file against golden files. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slotsync/endpoint.h>
#include <slotsync/file.h>
#include <slotsync/names.h>
#include <slotsync/render.h>
#include <slotsync/routes-t.h>
#include <slotsync/slots.h>

/* The whole file, through the file module's reader. Caller frees. */
static char *read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    int r = file_read(path, (size_t)1 << 24, &buf, len);

    cr_assert_eq(r, 0, "cannot read %s: %s", path, strerror(-r));
    return buf;
}

/* Compare with tests/data/render/<name>/expected.cfg; UPDATE_GOLDEN=1
 * rewrites the golden file instead (then review the diff). */
static void check_golden(const char *name, const char *text, size_t len)
{
    char path[256];
    size_t elen;
    char *expected;

    snprintf(path, sizeof(path), "tests/data/render/%s/expected.cfg", name);
    if (getenv("UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f);
        fwrite(text, 1, len, f);
        fclose(f);
    }
    expected = read_file(path, &elen);
    cr_assert_eq(len, elen, "%s: length %zu, golden %zu:\n%s", name, len, elen, text);
    cr_assert_eq(memcmp(text, expected, len), 0, "%s differs from golden:\n%s", name, text);
    free(expected);
}

static struct service_conf make_svc(const char *name, enum service_mode mode, const char *listen,
                                    unsigned short port)
{
    struct service_conf s;

    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.opt.slots = 4;
    s.opt.mode = mode;
    snprintf(s.opt.balance, sizeof(s.opt.balance), "roundrobin");
    snprintf(s.opt.server_options, sizeof(s.opt.server_options), "check inter 2s");
    if (listen) {
        s.listen.set = true;
        snprintf(s.listen.host, sizeof(s.listen.host), "%s", listen);
        s.listen.ipv6 = strchr(listen, ':') != NULL;
        s.listen.port = port;
    }
    return s;
}

static void fill(struct slot_table *t, size_t i, const char *inst, const char *host, bool v6,
                 unsigned short port, unsigned short weight, enum endpoint_state st)
{
    t->slots[i].instance = strdup(inst);
    snprintf(t->slots[i].ep.host, sizeof(t->slots[i].ep.host), "%s", host);
    t->slots[i].ep.ipv6 = v6;
    t->slots[i].ep.port = port;
    t->slots[i].ep.weight = weight;
    t->slots[i].ep.state = st;
}

Test(render, basic_golden)
{
    struct config cfg;
    struct service_conf api = make_svc("api", MODE_HTTP, "127.0.0.1", 8000);
    struct service_conf db = make_svc("db", MODE_TCP, NULL, 0);
    struct service_conf v6 = make_svc("v6", MODE_TCP, "::1", 5433);
    struct service_conf any = make_svc("any", MODE_HTTP, "", 8080);
    struct slot_table t_api, t_db, t_v6, t_any;
    struct render_backend rb[4];
    char *out = NULL, *err = NULL;
    size_t len;

    memset(&cfg, 0, sizeof(cfg));
    snprintf(db.opt.balance, sizeof(db.opt.balance), "leastconn");
    db.opt.server_options[0] = '\0';
    cr_assert_eq(slots_init(&t_api, 4), 0);
    cr_assert_eq(slots_init(&t_db, 2), 0);
    cr_assert_eq(slots_init(&t_v6, 1), 0);
    cr_assert_eq(slots_init(&t_any, 1), 0);
    fill(&t_api, 0, "a", "127.0.0.1", false, 9001, 1, ENDPOINT_READY);
    fill(&t_api, 2, "c", "127.0.0.3", false, 9003, 10, ENDPOINT_DRAIN);
    fill(&t_api, 3, "d", "127.0.0.4", false, 9004, 5, ENDPOINT_MAINT);
    fill(&t_db, 1, "x", "::1", true, 5432, 256, ENDPOINT_READY);
    rb[0] = (struct render_backend){&any, &t_any, NULL};
    rb[1] = (struct render_backend){&api, &t_api, NULL};
    rb[2] = (struct render_backend){&db, &t_db, NULL};
    rb[3] = (struct render_backend){&v6, &t_v6, NULL};
    cr_assert_eq(render_services(&cfg, rb, 4, &out, &len, &err), 0, "%s", err ? err : "");
    cr_assert_eq(strlen(out), len);
    check_golden("basic", out, len);
    free(out);
    slots_free(&t_api);
    slots_free(&t_db);
    slots_free(&t_v6);
    slots_free(&t_any);
}

Test(render, refuses_an_invalid_name)
{
    struct config cfg;
    struct service_conf bad = make_svc("api\nbackend evil", MODE_HTTP, NULL, 0);
    struct slot_table t;
    struct render_backend rb;
    char *out = NULL, *err = NULL;
    size_t len;

    memset(&cfg, 0, sizeof(cfg));
    cr_assert_eq(slots_init(&t, 1), 0);
    rb = (struct render_backend){&bad, &t, NULL};
    cr_assert_eq(render_services(&cfg, &rb, 1, &out, &len, &err), -EINVAL);
    cr_assert_null(out);
    cr_assert_not_null(err);
    free(err);
    slots_free(&t);
}

Test(render, empty_list_is_just_the_header)
{
    struct config cfg;
    char *out = NULL;
    size_t len;

    memset(&cfg, 0, sizeof(cfg));
    cr_assert_eq(render_services(&cfg, NULL, 0, &out, &len, NULL), 0);
    cr_assert_not_null(strstr(out, "Rendered by slotsync"));
    cr_assert_null(strstr(out, "backend"));
    free(out);
}

Test(render, host_routes_domain_hosts_and_duplicates)
{
    struct config cfg;
    struct service_conf api = make_svc("Api", MODE_HTTP, NULL, 0);
    struct service_conf db = make_svc("db", MODE_TCP, NULL, 0);
    struct service_conf web = make_svc("web", MODE_HTTP, NULL, 0);
    char *api_hosts[] = {"www.example.test", "shared.example.test"};
    char *web_hosts[] = {"shared.example.test"};
    struct slot_table t;
    struct render_backend rb[3];
    struct host_route *r = NULL;
    size_t n = 0, len = 0;
    char *map = NULL;

    memset(&cfg, 0, sizeof(cfg));
    cr_assert_eq(slots_init(&t, 1), 0);
    api.hosts = api_hosts;
    api.n_hosts = 2;
    web.hosts = web_hosts;
    web.n_hosts = 1;
    rb[0] = (struct render_backend){&api, &t, NULL};
    rb[1] = (struct render_backend){&db, &t, NULL};
    rb[2] = (struct render_backend){&web, &t, NULL};
    /* no HTTP frontend: no routes */
    cr_assert_eq(render_host_routes(&cfg, rb, 3, &r, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(r);

    cfg.http_bind.set = true;
    cfg.http_bind.port = 8080;
    cfg.http_domain = "service.local";
    cr_assert_eq(render_host_routes(&cfg, rb, 3, &r, &n), 0);
    /* api.service.local, shared (first claimant: Api), web.service.local, www;
     * db is tcp: no route */
    cr_assert_eq(n, 4);
    cr_assert_str_eq(r[0].host, "api.service.local");
    cr_assert_str_eq(r[0].backend, "Api");
    cr_assert_str_eq(r[1].host, "shared.example.test");
    cr_assert_str_eq(r[1].backend, "Api");
    cr_assert_str_eq(r[2].host, "web.service.local");
    cr_assert_str_eq(r[3].host, "www.example.test");
    cr_assert_eq(render_hosts_map(r, n, &map, &len), 0);
    cr_assert_eq(strlen(map), len);
    cr_assert_not_null(strstr(map, "\napi.service.local Api\nshared.example.test Api\n"
                                   "web.service.local web\nwww.example.test Api\n"));
    free(map);
    free(r);
    slots_free(&t);
}

Test(render, http_frontend_golden)
{
    struct config cfg;
    struct service_conf web = make_svc("web", MODE_HTTP, NULL, 0);
    struct slot_table t;
    struct render_backend rb;
    char *out = NULL;
    size_t len;

    memset(&cfg, 0, sizeof(cfg));
    cfg.http_bind.set = true;
    snprintf(cfg.http_bind.host, sizeof(cfg.http_bind.host), "127.0.0.1");
    cfg.http_bind.port = 8080;
    cfg.hosts_map = "/etc/haproxy/services.cfg.map";
    cr_assert_eq(slots_init(&t, 2), 0);
    fill(&t, 1, "x", "127.0.0.1", false, 9000, 3, ENDPOINT_READY);
    rb = (struct render_backend){&web, &t, NULL};
    cr_assert_eq(render_services(&cfg, &rb, 1, &out, &len, NULL), 0);
    check_golden("http_frontend", out, len);
    free(out);
    slots_free(&t);
}

struct parse_case {
    const char *text;
    const char *want; /* "name|mode|balance|options" of each backend, ';'-separated */
};

static const struct parse_case parse_cases[] = {
    {RENDER_MARKER " Do not edit.\n\nbackend api\n    mode http\n    balance roundrobin\n"
                   "    default-server check inter 2s\n    server s1 0.0.0.0:0 disabled\n"
                   "\nfrontend api\n    mode tcp\n    balance first\nbackend db\n    mode tcp\n",
     "api|http|roundrobin|check inter 2s;db|tcp||"},
    {RENDER_MARKER "\nbackend a.b_c-D\nfrontend a.b_c-D\nbackend x", "a.b_c-D|||;x|||"},
    /* today's naming: the frontend's own name is not a backend's */
    {RENDER_MARKER
     "\nbackend api\n    mode tcp\n\nfrontend fe:api\n    mode http\n    balance first\n"
     "\nfrontend slotsync:http\n    mode http\n",
     "api|tcp||"},
    /* not a file slotsync rendered: nothing is claimed */
    {"global\nbackend app\n", ""},
    {"", ""},
    {"# Rendered by someone else\nbackend app\n", ""},
    /* names a render could not have written are skipped, with their lines */
    {RENDER_MARKER "\nbackend evil name\n    mode tcp\nbackend \nbackend ok\n  backend indented\n",
     "ok|||"},
    {RENDER_MARKER "\nbackend "
                   "a234567890123456789012345678901234567890123456789012345678901234\n"
                   "backend a23456789012345678901234567890123456789012345678901234567890123\n",
     "a23456789012345678901234567890123456789012345678901234567890123|||"},
    {RENDER_MARKER "\r\nbackend crlf\r\nbackend lf\n    mode toolongmode\n", "lf|||"},
};

Test(render, parse_backends_table)
{
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        struct render_file_backend *fb = NULL;
        char got[1024] = "";
        size_t n = 99, o = 0;

        cr_assert_eq(
            render_parse_backends(parse_cases[i].text, strlen(parse_cases[i].text), &fb, &n), 0);
        for (size_t k = 0; k < n; k++)
            o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s|%s|%s|%s", k ? ";" : "",
                                  fb[k].name, fb[k].mode, fb[k].balance, fb[k].server_options);
        free(fb);
        cr_expect_str_eq(got, parse_cases[i].want, "case %zu", i);
    }
}

Test(render, parse_backends_reads_what_render_wrote)
{
    struct config cfg;
    struct service_conf a = make_svc("alpha", MODE_HTTP, "127.0.0.1", 8000);
    struct service_conf b = make_svc("beta", MODE_TCP, NULL, 0);
    struct service_options other;
    struct render_file_backend *fb = NULL;
    struct slot_table t;
    struct render_backend rb[2];
    char *out = NULL;
    size_t len, n = 0;

    memset(&cfg, 0, sizeof(cfg));
    b.opt.server_options[0] = '\0';
    cr_assert_eq(slots_init(&t, 2), 0);
    rb[0] = (struct render_backend){&a, &t, NULL};
    rb[1] = (struct render_backend){&b, &t, NULL};
    cr_assert_eq(render_services(&cfg, rb, 2, &out, &len, NULL), 0);
    cr_assert_eq(render_parse_backends(out, len, &fb, &n), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(fb[0].name, "alpha");
    cr_expect_str_eq(fb[1].name, "beta");
    cr_expect(render_backend_matches(&fb[0], &a.opt));
    cr_expect(render_backend_matches(&fb[1], &b.opt));
    cr_expect(!render_backend_matches(&fb[0], &b.opt));
    other = a.opt;
    snprintf(other.balance, sizeof(other.balance), "leastconn");
    cr_expect(!render_backend_matches(&fb[0], &other));
    other = a.opt;
    snprintf(other.server_options, sizeof(other.server_options), "check inter 1s");
    cr_expect(!render_backend_matches(&fb[0], &other));
    other = a.opt;
    other.slots = 99; /* the slot count is HAProxy's to tell */
    cr_expect(render_backend_matches(&fb[0], &other));
    free(fb);
    free(out);
    slots_free(&t);
}

/* issue 19 item 5: which backends a rendered frontend reaches. */
Test(render, service_routed_table)
{
    static const struct {
        bool listen, http_bind, domain, tcp;
        size_t hosts;
        bool routed;
    } cases[] = {
        {true, false, false, false, 0, true},   /* its own listen */
        {true, false, false, true, 0, true},    /* tcp with a listen */
        {false, false, false, false, 0, false}, /* nothing: the field report's case */
        {false, true, true, false, 0, true},    /* Host <name>.<domain> */
        {false, true, false, false, 0, false},  /* a frontend, no domain, no hosts */
        {false, true, false, false, 1, true},   /* a frontend and its own hosts */
        {false, true, true, true, 0, false},    /* tcp: the HTTP frontend cannot */
    };
    char domain[] = "svc.local";

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        struct service_conf svc;
        char *hosts[] = {"www.example.test"};

        memset(&cfg, 0, sizeof(cfg));
        memset(&svc, 0, sizeof(svc));
        snprintf(svc.name, sizeof(svc.name), "api");
        svc.listen.set = cases[i].listen;
        svc.opt.mode = cases[i].tcp ? MODE_TCP : MODE_HTTP;
        svc.hosts = cases[i].hosts ? hosts : NULL;
        svc.n_hosts = cases[i].hosts;
        cfg.http_bind.set = cases[i].http_bind;
        cfg.http_domain = cases[i].domain ? domain : NULL;
        cr_expect_eq(render_service_routed(&cfg, &svc), cases[i].routed, "case %zu", i);
    }
}

/* HAProxy 3.3+ refuses a frontend and a backend of the same name: whatever
 * the services, every frontend rendered has a name no backend can take. A
 * service named like the HTTP frontend once was ("slotsync_http") too. */
Test(render, frontends_never_share_a_backend_name)
{
    static const char *const names[] = {"api",      "slotsync_http", "fe",
                                        "slotsync", "spare",         "a.b-c_D"};
    struct service_conf svc[6];
    struct slot_table t[6];
    struct render_backend rb[6];
    struct config cfg;
    char *out = NULL, *err = NULL, be[64][80], fe[64][80];
    size_t len, nb = 0, nf = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.http_bind.set = true;
    snprintf(cfg.http_bind.host, sizeof(cfg.http_bind.host), "127.0.0.1");
    cfg.http_bind.port = 8080;
    cfg.hosts_map = "/m";
    cfg.http_domain = "service.local";
    cfg.defaults.mode = MODE_HTTP;
    cfg.spare_backends = 2;
    cfg.defaults.slots = 1;
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "roundrobin");
    for (size_t i = 0; i < 6; i++) {
        svc[i] = make_svc(names[i], MODE_HTTP, "127.0.0.1", (unsigned short)(8000 + i));
        cr_assert_eq(slots_init(&t[i], 1), 0);
        rb[i] = (struct render_backend){&svc[i], &t[i], NULL};
    }
    cr_assert_eq(render_services(&cfg, rb, 6, &out, &len, &err), 0, "%s", err ? err : "");
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char kw[16], name[80];

        if (*p == ' ' || *p == '\n' || sscanf(p, "%15s %79s", kw, name) != 2)
            continue;
        if (strcmp(kw, "backend") == 0 && nb < 64)
            snprintf(be[nb++], sizeof(be[0]), "%s", name);
        if (strcmp(kw, "frontend") == 0 && nf < 64)
            snprintf(fe[nf++], sizeof(fe[0]), "%s", name);
    }
    cr_expect_eq(nb, 8, "6 services and 2 spares");
    cr_expect_eq(nf, 7, "6 listen addresses and the HTTP frontend");
    for (size_t i = 0; i < nf; i++) {
        cr_expect(names_frontend_valid(fe[i]), "%s", fe[i]);
        cr_expect_not(endpoint_service_name_valid(fe[i]), "%s could be a service's name", fe[i]);
        for (size_t k = 0; k < nb; k++)
            cr_expect_str_neq(fe[i], be[k], "frontend and backend %s", be[k]);
    }
    cr_expect_not_null(strstr(out, "\nfrontend fe:api\n    mode http\n    bind 127.0.0.1:8000\n"
                                   "    default_backend api\n"));
    cr_expect_not_null(strstr(out, "\nfrontend slotsync:http\n"));
    cr_expect_not_null(strstr(out, "\nbackend slotsync_http\n"));
    free(out);
    for (size_t i = 0; i < 6; i++)
        slots_free(&t[i]);
}
