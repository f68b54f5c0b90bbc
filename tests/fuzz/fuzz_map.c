/* fuzz_map - HAProxy's "show map" reply (runtime.c) and the map plan.
 *
 * The reply is read as the controller reads it: entries that are not a route
 * slotsync could have written are dropped, the rest sorted by host
 * (duplicates kept). Oracles: every entry passed on has one-token key and
 * value; the commands that turn it into a fixed set of routes are clean, and
 * applying them to a model of HAProxy's map (add, set, and del removing every
 * entry of a key) gives exactly those routes, against which planning again
 * gives nothing. */
#include <stdbool.h>

#include <slotsync/endpoint.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/reply.h>
#include <slotsync/routes-t.h>
#include <slotsync/runtime.h>

#include "fuzz.h"

#define MAP_PATH "/etc/haproxy/services.cfg.map"

struct map {
    struct host_route *r;
    size_t n, cap;
};

static bool host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG_HOSTNAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

static void map_add(struct map *m, const char *host, const char *backend)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->r = realloc(m->r, m->cap * sizeof(*m->r));
        FUZZ_ASSERT(m->r, "ENOMEM");
    }
    snprintf(m->r[m->n].host, sizeof(m->r[m->n].host), "%s", host);
    snprintf(m->r[m->n].backend, sizeof(m->r[m->n].backend), "%s", backend);
    m->n++;
}

static int on_entry(const char *key, const char *value, void *arg)
{
    struct map *m = arg;
    size_t kl = strlen(key), vl = strlen(value);

    FUZZ_ASSERT(kl >= 1 && kl <= RUNTIME_MAP_KEY_MAX && vl >= 1 && vl <= RUNTIME_MAP_VALUE_MAX,
                "entry lengths %zu %zu", kl, vl);
    for (const char *c = key; *c; c++)
        FUZZ_ASSERT(*c > 0x20 && *c < 0x7f, "byte 0x%02x in a key", (unsigned char)*c);
    for (const char *c = value; *c; c++)
        FUZZ_ASSERT(*c > 0x20 && *c < 0x7f, "byte 0x%02x in a value", (unsigned char)*c);
    if (host_ok(key) && endpoint_service_name_valid(value))
        map_add(m, key, value);
    return 0;
}

static int cmp_host(const void *a, const void *b)
{
    return strcmp(((const struct host_route *)a)->host, ((const struct host_route *)b)->host);
}

/* Apply one planned command to the model. */
static void apply(struct map *m, const char *cmd)
{
    char verb[8], host[CONFIG_HOSTNAME_MAX + 1], backend[SERVICE_NAME_MAX + 1];
    static const char path[] = " map " MAP_PATH " ";
    const char *rest;
    int n;

    FUZZ_ASSERT(sscanf(cmd, "%7s", verb) == 1, "'%s'", cmd);
    rest = cmd + strlen(verb);
    FUZZ_ASSERT(strncmp(rest, path, strlen(path)) == 0, "'%s' not on the map", cmd);
    rest += strlen(path);
    n = sscanf(rest, "%253s %63s", host, backend);
    if (strcmp(verb, "del") == 0) {
        size_t j = 0;

        FUZZ_ASSERT(n == 1, "'%s'", cmd);
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->r[i].host, host) != 0)
                m->r[j++] = m->r[i];
        m->n = j;
        return;
    }
    FUZZ_ASSERT(n == 2, "'%s'", cmd);
    if (strcmp(verb, "set") == 0) {
        bool found = false;

        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->r[i].host, host) == 0) {
                snprintf(m->r[i].backend, sizeof(m->r[i].backend), "%s", backend);
                found = true;
            }
        FUZZ_ASSERT(found, "'%s' on a missing key", cmd);
        return;
    }
    FUZZ_ASSERT(strcmp(verb, "add") == 0, "'%s'", cmd);
    map_add(m, host, backend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct host_route want[] = {
        {"a.test", "web"}, {"api.svc.local", "api"}, {"b.test", "api"}, {"web.svc.local", "web"}};
    const size_t n_want = sizeof(want) / sizeof(want[0]);
    struct map have = {0};
    size_t bad = 0;
    struct plan p;
    int r;

    runtime_parse_map((const char *)data, size, on_entry, &have, &bad);
    if (have.n)
        qsort(have.r, have.n, sizeof(*have.r), cmp_host);

    plan_init(&p);
    r = plan_map(&p, MAP_PATH, want, n_want, have.r, have.n);
    FUZZ_ASSERT(r >= 0, "plan_map refused (%d)", r);
    fuzz_check_plan(&p);
    for (size_t i = 0; i < p.n; i++)
        apply(&have, p.cmds[i]);
    if (have.n)
        qsort(have.r, have.n, sizeof(*have.r), cmp_host);
    FUZZ_ASSERT(have.n == n_want, "%zu entries after apply, want %zu", have.n, n_want);
    for (size_t i = 0; i < n_want; i++)
        FUZZ_ASSERT(strcmp(have.r[i].host, want[i].host) == 0 &&
                        strcmp(have.r[i].backend, want[i].backend) == 0,
                    "entry %zu is '%s %s'", i, have.r[i].host, have.r[i].backend);
    plan_reset(&p);
    r = plan_map(&p, MAP_PATH, want, n_want, have.r, have.n);
    FUZZ_ASSERT(r == 0, "replan after apply gave %d commands", r);
    plan_free(&p);
    free(have.r);
    return 0;
}
