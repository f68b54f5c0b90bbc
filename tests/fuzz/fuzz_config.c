/* fuzz_config - the config loader (config.c) and what it lets through to
 * render and plan.
 *
 * The input is a config text. Oracles: a loaded config renders a services
 * file and a Host map whose every line is clean; the commands for its empty
 * slots and its map are clean, and planning the map against itself gives
 * nothing; each listen address formats and parses back to itself. The input
 * is also tried as a listen address, an etcd URL and a socket address. */
#include <slotsync/config.h>
#include <slotsync/endpoint.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/slots.h>
#include <slotsync/validate.h>

#include "fuzz.h"

#define MAX_SLOTS_RENDERED 20000 /* keep one input's work bounded */

static void listen_roundtrip(const struct listen_addr *l)
{
    struct listen_addr back;
    char buf[80];

    if (!l->set)
        return;
    if (!l->host[0])
        snprintf(buf, sizeof(buf), "*:%u", (unsigned)l->port);
    else if (l->ipv6)
        snprintf(buf, sizeof(buf), "[%s]:%u", l->host, (unsigned)l->port);
    else
        snprintf(buf, sizeof(buf), "%s:%u", l->host, (unsigned)l->port);
    FUZZ_ASSERT(validate_listen(buf, &back, NULL) == 0, "'%s' does not parse", buf);
    FUZZ_ASSERT(back.set && back.port == l->port && back.ipv6 == l->ipv6 &&
                    strcmp(back.host, l->host) == 0,
                "'%s' parses to something else", buf);
}

static void check_loaded(const struct config *cfg)
{
    struct slot_table *tables;
    struct render_backend *rb;
    struct host_route *routes = NULL;
    size_t n = cfg->n_services, n_routes = 0, total = 0, len;
    struct plan p;
    char *text = NULL, *err = NULL;

    for (size_t i = 0; i < n; i++)
        total += (size_t)cfg->services[i].opt.slots;
    if (total > MAX_SLOTS_RENDERED)
        return;
    listen_roundtrip(&cfg->http_bind);
    tables = calloc(n + 1, sizeof(*tables));
    rb = calloc(n + 1, sizeof(*rb));
    FUZZ_ASSERT(tables && rb, "ENOMEM");
    plan_init(&p);
    for (size_t i = 0; i < n; i++) {
        const struct service_conf *svc = &cfg->services[i];

        FUZZ_ASSERT(endpoint_service_name_valid(svc->name), "service '%s'", svc->name);
        listen_roundtrip(&svc->listen);
        FUZZ_ASSERT(slots_init(&tables[i], (size_t)svc->opt.slots) == 0, "ENOMEM");
        rb[i].svc = svc;
        rb[i].slots = &tables[i];
        FUZZ_ASSERT(plan_backend(&p, svc->name, &tables[i], NULL) >= 0, "plan refused %s",
                    svc->name);
    }
    FUZZ_ASSERT(render_services(cfg, rb, n, &text, &len, &err) == 0, "render refused: %s",
                err ? err : "");
    fuzz_check_lines(text, len);
    free(text);
    FUZZ_ASSERT(render_host_routes(cfg, rb, n, &routes, &n_routes) == 0, "routes");
    FUZZ_ASSERT(render_hosts_map(routes, n_routes, &text, &len) == 0, "map");
    fuzz_check_lines(text, len);
    free(text);
    FUZZ_ASSERT(plan_map(&p, cfg->hosts_map, routes, n_routes, NULL, 0) >= 0, "plan_map refused");
    fuzz_check_plan(&p);
    plan_reset(&p);
    FUZZ_ASSERT(plan_map(&p, cfg->hosts_map, routes, n_routes, routes, n_routes) == 0,
                "the map planned against itself gives commands");
    plan_free(&p);
    free(routes);
    for (size_t i = 0; i < n; i++)
        slots_free(&tables[i]);
    free(tables);
    free(rb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strdup(data, size), *err = NULL;
    struct config cfg;
    struct listen_addr l;

    if (config_load_string(text, &cfg, &err) == 0) {
        check_loaded(&cfg);
        config_free(&cfg);
    } else {
        FUZZ_ASSERT(err != NULL, "refused without a reason");
    }
    free(err);
    err = NULL;
    if (validate_listen(text, &l, &err) == 0)
        listen_roundtrip(&l);
    free(err);
    err = NULL;
    validate_etcd_url(text, &err);
    free(err);
    err = NULL;
    validate_socket_addr(text, &err);
    free(err);
    free(text);
    return 0;
}
