/* test_hup - SIGHUP's decision, table-driven: one row per branch of what a
 * config read again does (refused for a restart field, a new service,
 * options, listen or slots changed, a service that left the config, new
 * defaults for an etcd-only service, admin.* kept, log_format kept, a new
 * HTTP frontend, nothing changed), each with the actions in order and whether anything
 * changed. Nothing is carried out here: the table is left as it was. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/config.h>
#include <slotsync/hup.h>
#include <slotsync/log.h>
#include <slotsync/table.h>

#define ETCD "'etcd':{'endpoints':['http://127.0.0.1:2379'],'prefix':'/svc/'}"
#define HAPROXY                                                                                    \
    "'haproxy':{'runtime_socket':'/run/haproxy/admin.sock','services_file':'/etc/haproxy/s.cfg'}"
#define WEB "'web':{'listen':'127.0.0.1:9000','slots':2}"
#define DEFAULTS "'defaults':{'slots':3,'balance':'roundrobin'}"
#define CFG(services, extra) "{" ETCD "," HAPROXY ",'services':{" services "}," DEFAULTS extra "}"
#define OLD CFG(WEB, "")

struct hup_case {
    const char *name;
    const char *config;  /* the new config, ' for " */
    const char *actions; /* what hup_decide() says, in order (describe()): the new
                          * config's services by name, then the table's others */
    bool changed;
};

static const struct hup_case cases[] = {
    {"nothing changed", OLD, "web:same api:same", false},
    {"a restart field changed",
     "{'etcd':{'endpoints':['http://127.0.0.1:2379'],'prefix':'/other/'}," HAPROXY
     ",'services':{" WEB "}," DEFAULTS "}",
     "refuse(etcd.prefix)", false},
    {"a new service in the config", CFG(WEB ",'db':{}", ""), "add(db) web:same api:same", true},
    {"options changed",
     CFG("'web':{'listen':'127.0.0.1:9000','slots':2,'balance':'leastconn'}", ""),
     "web:options api:same", true},
    {"listen changed", CFG("'web':{'listen':'127.0.0.1:9001','slots':2}", ""),
     "web:options api:same", true},
    {"slots raised", CFG("'web':{'listen':'127.0.0.1:9000','slots':4}", ""),
     "web:slots(2->4) api:same", true},
    {"slots lowered", CFG("'web':{'listen':'127.0.0.1:9000','slots':1}", ""),
     "web:slots(2->1) api:same", true},
    {"a service left the config", CFG("", ""), "api:same web:left", true},
    {"an etcd-only service is configured now", CFG(WEB ",'api':{}", ""), "api:options web:same",
     true},
    {"defaults changed for an etcd-only service",
     "{" ETCD "," HAPROXY ",'services':{" WEB "},'defaults':{'slots':3,'balance':'leastconn'}}",
     "web:options api:defaults", true}, /* web's balance came from the defaults */
    {"only the defaults' slots changed",
     "{" ETCD "," HAPROXY ",'services':{" WEB "},'defaults':{'slots':5,'balance':'roundrobin'}}",
     "web:same api:slots(3->5)", true},
    {"admin.* changed", CFG(WEB, ",'admin':{'listen':'127.0.0.1:9180'}"),
     "web:same api:same admin-kept", false},
    {"log_format changed", CFG(WEB, ",'log_format':'json'"), "web:same api:same log-format-kept",
     false},
    {"a new HTTP frontend",
     CFG(WEB, ",'http_frontend':{'bind':'127.0.0.1:8080','domain':'svc.local'}"),
     "web:same api:same http-frontend", true},
};

static void load(const char *squoted, struct config *cfg)
{
    char *json = strdup(squoted), *err = NULL;

    cr_assert_not_null(json);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    cr_assert_eq(config_load_string(json, cfg, &err), 0, "%s: %s", squoted, err ? err : "");
    free(json);
}

static const char *reconf_name(enum backend_reconf r)
{
    switch (r) {
    case BACKEND_RECONF_SAME:
        return "same";
    case BACKEND_RECONF_OPTIONS:
        return "options";
    case BACKEND_RECONF_SLOTS:
        return "slots";
    case BACKEND_RECONF_LEFT:
        return "left";
    case BACKEND_RECONF_DEFAULTS:
        return "defaults";
    }
    return "?";
}

/* The plan in one line: "web:same add(db) refuse(fields) ...". */
static void describe(const struct hup_plan *p, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < p->n && len < size; i++) {
        const struct hup_action *a = &p->v[i];
        const char *sep = i ? " " : "";

        switch (a->kind) {
        case HUP_REFUSE:
            len += (size_t)snprintf(buf + len, size - len, "%srefuse(%s)", sep, p->fields);
            break;
        case HUP_ADD:
            len += (size_t)snprintf(buf + len, size - len, "%sadd(%s)", sep, a->service);
            break;
        case HUP_RECONFIGURE:
            if (a->reconf == BACKEND_RECONF_SLOTS)
                len += (size_t)snprintf(buf + len, size - len, "%s%s:slots(%d->%d)", sep,
                                        a->service, a->old_slots, a->new_slots);
            else
                len += (size_t)snprintf(buf + len, size - len, "%s%s:%s", sep, a->service,
                                        reconf_name(a->reconf));
            break;
        case HUP_ADMIN_KEPT:
            len += (size_t)snprintf(buf + len, size - len, "%sadmin-kept", sep);
            break;
        case HUP_LOG_FORMAT_KEPT:
            len += (size_t)snprintf(buf + len, size - len, "%slog-format-kept", sep);
            break;
        case HUP_HTTP_FRONTEND:
            len += (size_t)snprintf(buf + len, size - len, "%shttp-frontend", sep);
            break;
        }
    }
}

Test(hup, every_branch_of_a_sighup_is_a_row)
{
    struct config oc;

    log_set_level(LOG_LEVEL_ERROR);
    load(OLD, &oc);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hup_case *t = &cases[i];
        struct config nc;
        struct table tab;
        struct hup_plan plan;
        struct backend *web, *api;
        char got[512];

        load(t->config, &nc);
        table_init(&tab, &oc, true);
        web = table_add(&tab, config_find_service(&oc, "web"), true);
        api = table_add_service(&tab, "api");
        cr_assert(web && api);
        cr_assert_eq(hup_decide(&oc, &nc, &tab, &plan), 0, "%s", t->name);
        describe(&plan, got, sizeof(got));
        cr_expect_str_eq(got, t->actions, "%s", t->name);
        cr_expect_eq(plan.changed, t->changed, "%s", t->name);
        /* pure: the table is as it was */
        cr_expect(web->configured && web->conf.opt.slots == 2, "%s", t->name);
        cr_expect(!api->configured && api->conf.opt.slots == 3, "%s", t->name);
        for (size_t k = 0; k < plan.n; k++) {
            const struct hup_action *a = &plan.v[k];
            struct backend *b;
            int old = 0;

            /* carried out, each one does what it said */
            if (a->kind == HUP_RECONFIGURE && (b = table_find(&tab, a->service)))
                cr_expect_eq(backend_reconfigure(b, a->sc, &nc.defaults, &old), a->reconf, "%s: %s",
                             t->name, a->service);
        }
        hup_plan_free(&plan);
        table_free(&tab);
        config_free(&nc);
    }
    config_free(&oc);
}
