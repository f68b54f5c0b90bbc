/* test_dynback - run-time backends (HAProxy 3.4+): the version read from
 * "show info", the base config's named defaults, the decision, HAProxy's
 * replies (3.4.7's wording, from src/proxy.c and a live 3.4.7), the
 * commands plan.c builds for them and the services file's defaults
 * section; table-driven. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/dynback.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>

Test(dynback, version_from_show_info)
{
    static const struct {
        const char *info;
        int ret;
        unsigned major, minor, patch;
        bool ok;
    } cases[] = {
        {"Name: HAProxy\nVersion: 3.4.7-1\nRelease_date: 2026/10/14\n", 0, 3, 4, 7, true},
        {"Name: HAProxy\nVersion: 2.6.12-1+deb12u1\n", 0, 2, 6, 12, false},
        {"Name: HAProxy\nVersion: 3.0.11-1\n", 0, 3, 0, 11, false},
        {"Name: HAProxy\nVersion: 3.2.26-1\n", 0, 3, 2, 26, false},
        {"Version: 3.4.0\n", 0, 3, 4, 0, true},
        {"Version: 3.5-dev5", 0, 3, 5, 0, true},
        {"Version: 4.0.1~rc1\n", 0, 4, 0, 1, true},
        {"Version: 3.3.0\n", 0, 3, 3, 0, false},
        {"Name: HAProxy\n", -EPROTO, 0, 0, 0, false},
        {"Version: 3\n", -EPROTO, 0, 0, 0, false},
        {"Version: 3.\n", -EPROTO, 0, 0, 0, false},
        {"Version: x.4\n", -EPROTO, 0, 0, 0, false},
        {"Version: 3.4x\n", -EPROTO, 0, 0, 0, false},
        {"Version: 99999.4\n", -EPROTO, 0, 0, 0, false},
        {" Version: 3.4.7\n", -EPROTO, 0, 0, 0, false},
        {"Version:3.4.7\n", -EPROTO, 0, 0, 0, false},
        {"", -EPROTO, 0, 0, 0, false},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct haproxy_version v;
        int r = dynback_parse_version(cases[k].info, strlen(cases[k].info), &v);

        cr_expect_eq(r, cases[k].ret, "%s: %d", cases[k].info, r);
        cr_expect_eq(v.major, cases[k].major, "%s", cases[k].info);
        cr_expect_eq(v.minor, cases[k].minor, "%s", cases[k].info);
        cr_expect_eq(v.patch, cases[k].patch, "%s", cases[k].info);
        cr_expect_eq(r == 0 && dynback_version_ok(&v), cases[k].ok, "%s", cases[k].info);
    }
}

static void http_config(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->http_bind.set = true;
    cfg->http_domain = "service.local";
    cfg->defaults.mode = MODE_HTTP;
    snprintf(cfg->defaults.balance, sizeof(cfg->defaults.balance), "roundrobin");
    cfg->defaults.slots = 4;
}

Test(dynback, usable_only_when_everything_says_so)
{
    struct config cfg;
    struct dynback_state s = {true, {3, 4, 7}, true, true};

    http_config(&cfg);
    cr_expect(dynback_usable(&s, &cfg));
    s.version = (struct haproxy_version){3, 2, 26};
    cr_expect_not(dynback_usable(&s, &cfg), "3.2 has no add backend");
    s.version = (struct haproxy_version){3, 4, 0};
    s.version_known = false;
    cr_expect_not(dynback_usable(&s, &cfg), "never guessed");
    s.version_known = true;
    s.base_declares = false;
    cr_expect_not(dynback_usable(&s, &cfg), "nothing to inherit from");
    s.base_declares = true;
    s.running_has_defaults = false;
    cr_expect_not(dynback_usable(&s, &cfg), "HAProxy said it has no slotsync:dynamic");
    s.running_has_defaults = true;
    cr_expect(dynback_usable(&s, &cfg));
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "source");
    cr_expect_not(dynback_usable(&s, &cfg), "a static algorithm takes no add server");
    http_config(&cfg);
    cfg.http_domain = NULL;
    cr_expect_not(dynback_usable(&s, &cfg), "nothing routes to it");
    http_config(&cfg);
    cfg.defaults.mode = MODE_TCP;
    cr_expect_not(dynback_usable(&s, &cfg));
    http_config(&cfg);
    cfg.http_bind.set = false;
    cr_expect_not(dynback_usable(&s, &cfg));
}

Test(dynback, which_backends_fit)
{
    struct backend b;

    memset(&b, 0, sizeof(b));
    snprintf(b.conf.name, sizeof(b.conf.name), "api");
    b.conf.opt.mode = MODE_HTTP;
    b.claimed = true;
    b.present = true;
    cr_expect(dynback_fits(&b));
    cr_expect(dynback_removable(&b, 0));
    cr_expect_not(dynback_removable(&b, 1), "it still has an endpoint");
    b.present = false;
    cr_expect_not(dynback_removable(&b, 0), "HAProxy does not run it");
    b.present = true;
    b.foreign = true;
    cr_expect_not(dynback_removable(&b, 0), "not ours");
    b.foreign = false;
    b.configured = true;
    cr_expect_not(dynback_fits(&b), "the config file's services keep their reload");
    b.configured = false;
    b.conf.listen.set = true;
    cr_expect_not(dynback_fits(&b), "a listen address needs a frontend");
    b.conf.listen.set = false;
    b.conf.opt.mode = MODE_TCP;
    cr_expect_not(dynback_fits(&b));
    b.conf.opt.mode = MODE_HTTP;
    snprintf(b.proxy, sizeof(b.proxy), "spare:3");
    cr_expect_not(dynback_fits(&b), "it lives in a spare");
    cr_expect_not(dynback_removable(&b, 0));
}

Test(dynback, replies_of_haproxy_34)
{
    static const struct {
        const char *reply;
        enum dynback_reply kind;
    } add[] = {
        {"New backend registered.", DYNBACK_CREATED},
        {"New backend registered (no support for dynamic servers: backend 'x' uses a non "
         "dynamic load balancing method).",
         DYNBACK_NO_DYNAMIC_SRV},
        {"Error during backend creation : name is already used by other proxy 'backend api'.",
         DYNBACK_EXISTS},
        {"Error during backend creation : name is already used by other proxy 'frontend api'.",
         DYNBACK_REFUSED},
        {"Error during backend creation : name is already used by other proxy 'defaults api'.",
         DYNBACK_REFUSED},
        {"Cannot find default proxy 'slotsync:dynamic'.", DYNBACK_NO_DEFAULTS},
        {"Cannot find default proxy 'other'.", DYNBACK_REFUSED},
        {"Require backend name.", DYNBACK_REFUSED},
        {"Usage: add backend <name> from <defproxy>.", DYNBACK_REFUSED},
        {"Unknown command: 'add backend'", DYNBACK_REFUSED},
        {"Permission denied", DYNBACK_REFUSED},
        {"New backend registered.\nNew backend registered.", DYNBACK_REFUSED},
        {"", DYNBACK_REFUSED},
    };
    static const struct {
        const char *cmd, *reply;
        bool ok;
    } ok[] = {
        {"add backend api from slotsync:dynamic mode http", "New backend registered.", true},
        {"add backend api from slotsync:dynamic mode http",
         "Error during backend creation : name is already used by other proxy 'backend api'.",
         true},
        {"add backend api from slotsync:dynamic mode http",
         "Cannot find default proxy 'slotsync:dynamic'.", false},
        {"add backend api from slotsync:dynamic mode http", "", false},
        {"publish backend api", "Backend published.", true},
        {"publish backend api", "No such backend.", false},
        {"publish backend api", "", false},
        {"unpublish backend api", "Backend unpublished.", true},
        {"unpublish backend api", "No effect on a disabled backend.", false},
        {"del server api/s1", "Server deleted.", true},
        {"del server api/s1", "Only servers in maintenance mode can be deleted.", false},
        {"del server api/s1", "Server still has connections attached to it, cannot remove it.",
         false},
        /* 3.4.7 prints the notices queued before it (it does not clear them) */
        {"del backend api", "Backend deleted.", true},
        {"del backend api",
         "Server api/s1 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 "
         "sessions active, 0 requeued, 0 remaining in queue.\nbackend 'api' has no server "
         "available!\nServer deleted.\nServer deleted.\nBackend deleted.",
         true},
        {"del backend api", "Backend must be unpublished prior to its deletion.", false},
        {"del backend api", "Only a backend without server can be deleted.", false},
        {"del backend api", "Backend still has attached streams on it.", false},
        {"del backend api", "No such backend.", false},
        {"del backend api", "Not Backend deleted.", false},
        {"del backend api", "", false},
    };

    for (size_t k = 0; k < sizeof(add) / sizeof(add[0]); k++)
        cr_expect_eq(dynback_add_reply(add[k].reply), add[k].kind, "%s", add[k].reply);
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        cr_expect_eq(runtime_reply_ok(ok[k].cmd, ok[k].reply), ok[k].ok, "%s: %s", ok[k].cmd,
                     ok[k].reply);
    }
}

static void expect_cmds(const struct plan *p, const char *const *want, size_t n)
{
    cr_assert_eq(p->n, n, "%zu commands, want %zu", p->n, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(p->cmds[i], want[i]);
}

Test(dynback, create_commands)
{
    static const char *const want[] = {
        "add backend api from slotsync:dynamic mode http",
        "add server api/s1 0.0.0.0:0 check inter 1s",
        "enable health api/s1",
        "add server api/s2 0.0.0.0:0 check inter 1s",
        "enable health api/s2",
        "publish backend api",
    };
    struct plan p;

    plan_init(&p);
    cr_assert_eq(plan_create_backend(&p, "api", 2, "check inter 1s"), 0);
    cr_assert_eq(plan_publish_backend(&p, "api"), 0);
    expect_cmds(&p, want, sizeof(want) / sizeof(want[0]));
    plan_reset(&p);
    /* only a service's name: never a spare's, never one that breaks the line */
    cr_expect_eq(plan_create_backend(&p, "spare:1", 1, ""), -EINVAL);
    cr_expect_eq(plan_create_backend(&p, "a b", 1, ""), -EINVAL);
    cr_expect_eq(plan_create_backend(&p, "a;del backend b", 1, ""), -EINVAL);
    cr_expect_eq(plan_publish_backend(&p, "a\nb"), -EINVAL);
    cr_expect_eq(plan_delete_backend(&p, "", 1), -EINVAL);
    cr_expect_eq(p.n, 0);
    /* a bad option leaves nothing half-planned */
    cr_expect_eq(plan_create_backend(&p, "api", 2, "check;x"), -EINVAL);
    cr_expect_eq(p.n, 0);
    plan_free(&p);
}

Test(dynback, delete_commands_in_the_order_haproxy_requires)
{
    static const char *const want[] = {
        "unpublish backend api", "set server api/s3 state maint",
        "del server api/s3",     "set server api/s2 state maint",
        "del server api/s2",     "set server api/s1 state maint",
        "del server api/s1",     "del backend api",
    };
    struct plan p;

    plan_init(&p);
    cr_assert_eq(plan_delete_backend(&p, "api", 3), 0);
    expect_cmds(&p, want, sizeof(want) / sizeof(want[0]));
    plan_reset(&p);
    cr_assert_eq(plan_delete_backend(&p, "api", 0), 0);
    cr_expect_eq(p.n, 2);
    cr_expect_str_eq(p.cmds[1], "del backend api");
    plan_free(&p);
}

Test(dynback, services_file_ends_with_the_named_defaults)
{
    struct config cfg;
    char *text = strdup("# Rendered by slotsync.\n"), *tail;
    size_t len = strlen(text);

    http_config(&cfg);
    snprintf(cfg.defaults.balance, sizeof(cfg.defaults.balance), "leastconn");
    cr_assert_eq(render_append_dynamic_defaults(&cfg, &text, &len), 0);
    cr_expect_eq(strlen(text), len);
    tail = strstr(text, "\ndefaults " DYNBACK_DEFAULTS " from " DYNBACK_BASE_DEFAULTS "\n");
    cr_assert_not_null(tail, "%s", text);
    cr_expect_str_eq(tail, "\ndefaults slotsync:dynamic from slotsync:base\n    mode http\n"
                           "    balance leastconn\n");
    /* the file's own backends are still read back: the defaults is none of them */
    {
        struct render_file_backend *fb = NULL;
        size_t n = 0;

        cr_assert_eq(render_parse_backends(text, len, &fb, &n), 0);
        cr_expect_eq(n, 0);
        free(fb);
    }
    free(text);
}
