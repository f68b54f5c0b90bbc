/* spare - the pool of spare backends (spare.h). */
#include <slotsync/spare.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <slotsync/config-t.h>
#include <slotsync/endpoint.h>
#include <slotsync/routes-t.h>

int spare_pool_init(struct spare_pool *p, size_t n)
{
    *p = (struct spare_pool){0};
    return spare_pool_reset(p, n);
}

void spare_pool_free(struct spare_pool *p)
{
    free(p->bound);
    *p = (struct spare_pool){0};
}

int spare_pool_reset(struct spare_pool *p, size_t n)
{
    void *nb;

    if (n > SPARE_MAX)
        return -EINVAL;
    nb = calloc(n ? n : 1, sizeof(*p->bound));
    if (!nb)
        return -ENOMEM;
    free(p->bound);
    p->bound = nb;
    p->n = n;
    p->n_bound = 0;
    return 0;
}

size_t spare_count(const struct config *cfg)
{
    if (!cfg->http_bind.set || !cfg->http_domain || cfg->defaults.mode != MODE_HTTP ||
        cfg->spare_backends <= 0)
        return 0;
    return (size_t)cfg->spare_backends;
}

void spare_name(size_t i, char *out)
{
    snprintf(out, SPARE_NAME_SIZE, SPARE_PREFIX "%zu", i);
}

long spare_index(const char *proxy)
{
    size_t pl = strlen(SPARE_PREFIX);
    const char *d;
    long v = 0;

    if (!proxy || strncmp(proxy, SPARE_PREFIX, pl) != 0)
        return -1;
    d = proxy + pl;
    if (!*d || (d[0] == '0' && d[1]))
        return -1; /* empty, or a leading zero: not a name spare_name() writes */
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        v = v * 10 + (*d - '0');
        if (v >= SPARE_MAX)
            return -1;
    }
    return v;
}

bool spare_proxy_name_valid(const char *name)
{
    return endpoint_service_name_valid(name) || spare_index(name) >= 0;
}

long spare_find(const struct spare_pool *p, const char *service)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->bound[i][0] && strcasecmp(p->bound[i], service) == 0)
            return (long)i;
    return -1;
}

const char *spare_bound(const struct spare_pool *p, size_t i)
{
    return i < p->n && p->bound[i][0] ? p->bound[i] : NULL;
}

size_t spare_free_count(const struct spare_pool *p)
{
    return p->n - p->n_bound;
}

long spare_bind(struct spare_pool *p, const char *service, bool (*usable)(size_t i, void *arg),
                void *arg)
{
    long have = spare_find(p, service);

    if (have >= 0)
        return have;
    if (!endpoint_service_name_valid(service))
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        if (p->bound[i][0] || (usable && !usable(i, arg)))
            continue;
        snprintf(p->bound[i], sizeof(p->bound[i]), "%s", service);
        p->n_bound++;
        return (long)i;
    }
    return -1;
}

void spare_release(struct spare_pool *p, size_t i)
{
    if (i >= p->n || !p->bound[i][0])
        return;
    p->bound[i][0] = '\0';
    p->n_bound--;
}

void spare_rename(struct spare_pool *p, size_t i, const char *name)
{
    if (i < p->n && p->bound[i][0] && endpoint_service_name_valid(name))
        snprintf(p->bound[i], sizeof(p->bound[i]), "%s", name);
}

enum spare_refill spare_refill_plan(const struct spare_pool *p, size_t waiting)
{
    size_t free_n = spare_free_count(p);

    if (!p->n)
        return SPARE_REFILL_NONE;
    if (!free_n && waiting)
        return SPARE_REFILL_NOW;
    return free_n * 2 < p->n ? SPARE_REFILL_LATER : SPARE_REFILL_NONE;
}

/* The service of host "<service>.<domain>" into svc, or false. */
static bool host_service(const char *host, const char *domain, char *svc, size_t size)
{
    size_t hl = strlen(host), dl = strlen(domain);

    if (!dl || hl < dl + 2 || host[hl - dl - 1] != '.' || strcasecmp(host + hl - dl, domain) != 0 ||
        hl - dl - 1 >= size)
        return false;
    memcpy(svc, host, hl - dl - 1);
    svc[hl - dl - 1] = '\0';
    return endpoint_service_name_valid(svc);
}

void spare_adopt(struct spare_pool *p, const struct host_route *routes, size_t n,
                 const char *domain, struct spare_adoption *out)
{
    *out = (struct spare_adoption){0};
    for (size_t k = 0; k < n; k++) {
        long i = spare_index(routes[k].backend), j;
        char svc[SERVICE_NAME_MAX + 1];

        if (i < 0)
            continue;
        if ((size_t)i >= p->n || !domain ||
            !host_service(routes[k].host, domain, svc, sizeof(svc))) {
            out->ignored++;
            continue;
        }
        j = spare_find(p, svc);
        if (j == i) {
            out->kept++;
        } else if (j >= 0 || p->bound[i][0]) {
            out->conflicts++;
        } else {
            snprintf(p->bound[i], sizeof(p->bound[i]), "%s", svc);
            p->n_bound++;
            out->adopted++;
        }
    }
}

void spare_label(const char *service, const char *proxy, char *out, size_t size)
{
    if (proxy && proxy[0] && strcmp(proxy, service) != 0)
        snprintf(out, size, "%s (%s)", service, proxy);
    else
        snprintf(out, size, "%s", service);
}
