/* render - the HAProxy services file, rendered to a buffer and written
 * atomically. */
#include <slotsync/render.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <slotsync/config.h>
#include <slotsync/endpoint.h>
#include <slotsync/file.h>
#include <slotsync/log.h>
#include <slotsync/names.h>
#include <slotsync/routes-t.h>
#include <slotsync/slots.h>
#include <slotsync/spare.h>
#include <slotsync/vec.h>

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (vec_reserve(&b->p, &b->cap, b->len + (size_t)n + 1, 1, 4096) < 0) {
            b->oom = true;
            return;
        }
    }
}

static const char *mode_name(enum service_mode m)
{
    return m == MODE_TCP ? "tcp" : "http";
}

static void render_bind(struct buf *b, const struct listen_addr *l)
{
    if (l->ipv6)
        buf_printf(b, "    bind [%s]:%u\n", l->host, l->port);
    else
        buf_printf(b, "    bind %s:%u\n", l->host[0] ? l->host : "*", l->port);
}

static void render_slot(struct buf *b, size_t i, const struct slot *s)
{
    const struct endpoint *ep = &s->ep;
    char addr[ENDPOINT_HOST_MAX + 10];

    if (!s->instance) {
        buf_printf(b, "    server " SLOT_NAME_FMT " 0.0.0.0:0 disabled\n", i + 1);
        return;
    }
    endpoint_format(ep, addr, sizeof(addr));
    /* The config has no "drain" keyword: weight 0 takes no new traffic, and
     * the resync after the reload restores the weight with state drain. */
    buf_printf(b, "    server " SLOT_NAME_FMT " %s weight %u%s\n", i + 1, addr,
               ep->state == ENDPOINT_DRAIN ? 0u : ep->weight,
               ep->state == ENDPOINT_MAINT ? " disabled" : "");
}

/* The spare (index below ns) that rb's proxy names, or -1: rb is rendered
 * as a backend of its own. */
static long render_spare_of(const struct render_backend *rb, size_t ns)
{
    long i = rb->proxy ? spare_index(rb->proxy) : -1;

    return i >= 0 && (size_t)i < ns ? i : -1;
}

int render_services(const struct config *cfg, const struct render_backend *backends, size_t n,
                    char **out, size_t *outlen, char **errmsg)
{
    struct buf b = {0};

    *out = NULL;
    *outlen = 0;
    buf_printf(&b, RENDER_MARKER
               " Do not edit: slotsync rewrites this file.\n"
               "# Server slots s1..sN are filled at run time through the runtime API.\n");
    for (size_t k = 0; k < n; k++) {
        const struct service_conf *svc = backends[k].svc;
        const struct slot_table *t = backends[k].slots;

        if (!endpoint_service_name_valid(svc->name)) {
            memprintf(errmsg, "service name refused by the renderer");
            free(b.p);
            return -EINVAL;
        }
        if (render_spare_of(&backends[k], spare_count(cfg)) >= 0)
            continue; /* rendered in its spare below */
        buf_printf(&b, "\nbackend %s\n", svc->name);
        buf_printf(&b, "    mode %s\n", mode_name(svc->opt.mode));
        buf_printf(&b, "    balance %s\n", svc->opt.balance);
        if (svc->opt.server_options[0])
            buf_printf(&b, "    default-server %s\n", svc->opt.server_options);
        for (size_t i = 0; i < t->n; i++)
            render_slot(&b, i, &t->slots[i]);
        if (svc->listen.set) {
            char fe[RENDER_FRONTEND_NAME_SIZE];

            names_frontend(svc->name, fe);
            buf_printf(&b, "\nfrontend %s\n", fe);
            buf_printf(&b, "    mode %s\n", mode_name(svc->opt.mode));
            render_bind(&b, &svc->listen);
            buf_printf(&b, "    default_backend %s\n", svc->name);
        }
    }
    /* Spare backends (spare.h): the defaults' options and slots, all empty,
     * bound to new services at run time. */
    for (size_t k = 0, ns = spare_count(cfg); k < ns; k++) {
        char name[SPARE_NAME_SIZE];

        const struct slot_table *bound = NULL;

        spare_name(k, name);
        for (size_t j = 0; j < n && !bound; j++)
            if (render_spare_of(&backends[j], ns) == (long)k)
                bound = backends[j].slots;
        buf_printf(&b, "\nbackend %s\n    mode http\n    balance %s\n", name,
                   cfg->defaults.balance);
        if (cfg->defaults.server_options[0])
            buf_printf(&b, "    default-server %s\n", cfg->defaults.server_options);
        /* A spare bound at run time carries its service's slots (the
         * spare's, and any added with "add server"), so a reload that
         * slotsync did not start keeps it serving (issue 23). */
        if (bound) {
            for (size_t i = 0; i < bound->n; i++)
                render_slot(&b, i, &bound->slots[i]);
            continue;
        }
        for (int i = 0; i < cfg->defaults.slots; i++)
            buf_printf(&b, "    server " SLOT_NAME_FMT " 0.0.0.0:0 disabled\n", (size_t)i + 1);
    }
    if (cfg->http_bind.set) {
        /* Host header, lower-cased and without its port, looked up in the
         * map that slotsync keeps in sync at run time. No match: 503. */
        buf_printf(&b, "\nfrontend " RENDER_HTTP_FRONTEND "\n    mode http\n");
        render_bind(&b, &cfg->http_bind);
        buf_printf(&b, "    use_backend %%[req.hdr(host),lower,word(1,:),map(%s)]\n",
                   cfg->hosts_map);
    }
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

static int cmp_route(const void *a, const void *b)
{
    const struct host_route *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    return c ? c : strcmp(x->backend, y->backend);
}

static void lower_copy(char *dst, size_t size, const char *a, const char *sep, const char *b)
{
    size_t o = 0;

    for (const char *parts[3] = {a, sep, b}, **p = parts; p < parts + 3; p++)
        for (const char *q = *p; q && *q && o + 1 < size; q++)
            dst[o++] = (*q >= 'A' && *q <= 'Z') ? (char)(*q - 'A' + 'a') : *q;
    dst[o] = '\0';
}

int render_host_routes(const struct config *cfg, const struct render_backend *backends, size_t n,
                       struct host_route **out, size_t *n_out)
{
    struct host_route *r = NULL;
    size_t cap = 0, k = 0, w = 0;

    *out = NULL;
    *n_out = 0;
    if (!cfg->http_bind.set)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct service_conf *svc = backends[i].svc;
        size_t need = k + svc->n_hosts + 1;

        if (svc->opt.mode != MODE_HTTP)
            continue;
        if (vec_reserve(&r, &cap, need, sizeof(*r), 16) < 0) {
            free(r);
            return -ENOMEM;
        }
        if (cfg->http_domain) {
            lower_copy(r[k].host, sizeof(r[k].host), svc->name, ".", cfg->http_domain);
            snprintf(r[k].backend, sizeof(r[k].backend), "%s",
                     backends[i].proxy ? backends[i].proxy : svc->name);
            /* A name longer than a host name may be cannot be routed. */
            if (strlen(svc->name) + 1 + strlen(cfg->http_domain) <= CONFIG_HOSTNAME_MAX)
                k++;
        }
        for (size_t h = 0; h < svc->n_hosts; h++, k++) {
            lower_copy(r[k].host, sizeof(r[k].host), svc->hosts[h], NULL, NULL);
            snprintf(r[k].backend, sizeof(r[k].backend), "%s",
                     backends[i].proxy ? backends[i].proxy : svc->name);
        }
    }
    /* Backends come sorted by name: a host claimed twice goes to the first
     * name, and the duplicates after it are dropped. */
    if (k)
        qsort(r, k, sizeof(*r), cmp_route);
    for (size_t i = 0; i < k; i++)
        if (w == 0 || strcmp(r[w - 1].host, r[i].host) != 0)
            r[w++] = r[i];
    if (!w) {
        free(r);
        return 0;
    }
    *out = r;
    *n_out = w;
    return 0;
}

int render_hosts_map(const struct host_route *routes, size_t n, char **out, size_t *outlen)
{
    struct buf b = {0};

    buf_printf(&b, "# Rendered by slotsync: Host -> backend. Kept in sync at run time.\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s %s\n", routes[i].host, routes[i].backend);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

static bool take_field(const char *line, size_t ll, const char *prefix, char *dst, size_t dsz)
{
    size_t pl = strlen(prefix);

    if (ll <= pl || ll - pl >= dsz || memcmp(line, prefix, pl) != 0)
        return false;
    memcpy(dst, line + pl, ll - pl);
    dst[ll - pl] = '\0';
    return true;
}

int render_parse_backends(const char *text, size_t len, struct render_file_backend **out, size_t *n)
{
    const char *p = text, *end = text + len;
    struct render_file_backend *list = NULL, *cur = NULL;
    size_t k = 0, cap = 0;

    *out = NULL;
    *n = 0;
    if (len < strlen(RENDER_MARKER) || memcmp(text, RENDER_MARKER, strlen(RENDER_MARKER)) != 0)
        return 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)((nl ? nl : end) - p);
        char name[SERVICE_NAME_MAX + 1];

        if (ll && p[0] != ' ') {
            /* A section header: only a backend with a valid name is read. */
            cur = NULL;
            if (take_field(p, ll, "backend ", name, sizeof(name)) &&
                endpoint_service_name_valid(name)) {
                if (vec_reserve(&list, &cap, k + 1, sizeof(*list), 16) < 0) {
                    free(list);
                    return -ENOMEM;
                }
                cur = &list[k++];
                memset(cur, 0, sizeof(*cur));
                memcpy(cur->name, name, sizeof(name));
            }
        } else if (cur) {
            if (!take_field(p, ll, "    mode ", cur->mode, sizeof(cur->mode)) &&
                !take_field(p, ll, "    balance ", cur->balance, sizeof(cur->balance)))
                take_field(p, ll, "    default-server ", cur->server_options,
                           sizeof(cur->server_options));
        }
        p = nl ? nl + 1 : end;
    }
    *out = list;
    *n = k;
    return 0;
}

bool render_backend_matches(const struct render_file_backend *fb, const struct service_options *opt)
{
    return strcmp(fb->mode, mode_name(opt->mode)) == 0 && strcmp(fb->balance, opt->balance) == 0 &&
           strcmp(fb->server_options, opt->server_options) == 0;
}
int render_services_empty(const struct config *cfg, char **out, size_t *outlen, char **map,
                          size_t *maplen, char **errmsg)
{
    size_t n = cfg->n_services;
    struct render_backend *rb = calloc(n ? n : 1, sizeof(*rb));
    struct slot_table *tables = calloc(n ? n : 1, sizeof(*tables));
    struct host_route *routes = NULL;
    size_t n_routes = 0;
    int r = -ENOMEM;

    *out = NULL;
    *outlen = 0;
    if (map) {
        *map = NULL;
        *maplen = 0;
    }
    if (!rb || !tables)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((r = slots_init(&tables[i], (size_t)cfg->services[i].opt.slots)) < 0)
            goto out;
        rb[i] = (struct render_backend){&cfg->services[i], &tables[i], NULL};
    }
    r = render_services(cfg, rb, n, out, outlen, errmsg);
    if (r == 0 && map && cfg->http_bind.set) {
        r = render_host_routes(cfg, rb, n, &routes, &n_routes);
        if (r == 0)
            r = render_hosts_map(routes, n_routes, map, maplen);
    }
    if (r < 0) {
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
out:
    for (size_t i = 0; tables && i < n; i++)
        slots_free(&tables[i]);
    free(tables);
    free(rb);
    free(routes);
    return r;
}

/* true when path is (or links to) a regular file. */
static bool regular_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int render_write_offline(const struct config *cfg, const char *out_path, bool *kept, char **errmsg)
{
    const char *path = out_path ? out_path : cfg->services_file;
    char *text = NULL, *map = NULL;
    size_t len = 0, maplen = 0;
    bool with_map = !out_path && cfg->http_bind.set && !regular_file(cfg->hosts_map);
    int r;

    *kept = strcmp(path, "-") != 0 && regular_file(path);
    if (*kept && !with_map)
        return 0;
    r = render_services_empty(cfg, &text, &len, with_map ? &map : NULL, &maplen, errmsg);
    if (r == 0 && render_base_declares_dynamic(cfg))
        r = render_append_dynamic_defaults(cfg, &text, &len);
    if (r == 0 && with_map)
        r = file_write_atomic(cfg->hosts_map, map, maplen, errmsg);
    if (r == 0 && !*kept)
        r = file_write_output(path, text, len, errmsg);
    free(text);
    free(map);
    return r;
}

bool render_service_routed(const struct config *cfg, const struct service_conf *svc)
{
    if (svc->listen.set)
        return true;
    if (!cfg->http_bind.set || svc->opt.mode != MODE_HTTP)
        return false;
    if (svc->n_hosts)
        return true;
    return cfg->http_domain &&
           strlen(svc->name) + 1 + strlen(cfg->http_domain) <= CONFIG_HOSTNAME_MAX;
}

bool render_base_declares_dynamic(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    bool yes;

    if (!cfg->base_config || file_read(cfg->base_config, 256u << 20, &text, &len) < 0)
        return false;
    yes = names_defaults_declared(text, len, DYNBACK_BASE_DEFAULTS);
    free(text);
    return yes;
}

int render_append_dynamic_defaults(const struct config *cfg, char **text, size_t *len)
{
    struct buf b = {*text, *len, *len + 1, false};

    /* A defaults section with "from" is explicitly referenced and nothing
     * uses it implicitly: HAProxy warns about neither. */
    buf_printf(&b,
               "\n# Backends added at run time (HAProxy 3.4+: add backend NAME from %s)\n"
               "defaults %s from %s\n    mode %s\n    balance %s\n",
               DYNBACK_DEFAULTS, DYNBACK_DEFAULTS, DYNBACK_BASE_DEFAULTS,
               mode_name(cfg->defaults.mode), cfg->defaults.balance);
    *text = b.p; /* a realloc may have moved it, even when a later step failed */
    if (b.oom) {
        (*text)[*len] = '\0';
        return -ENOMEM;
    }
    *len = b.len;
    return 0;
}
