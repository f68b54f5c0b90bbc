/* livefile - the services file and its Host map kept current between
 * reloads (livefile.h). */
#include <slotsync/livefile.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/clock.h>
#include <slotsync/file.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/slots.h>
#include <slotsync/table-t.h>

#define MOD "sync"
#define RETRY_MIN_S 0.5
#define RETRY_MAX_S 30.0
#define RETRY_JITTER 0.2
#define READ_MAX (256u << 20) /* a services file of 1,000,000 servers is ~60 MB */
#define WRITE_FAILED "cannot write the services file"

int livefile_render(const struct config *cfg, struct backend *const *be, size_t n,
                    struct catalog *cat, bool dyn_defaults, char **text, size_t *len, char **map,
                    size_t *mlen, char **errmsg)
{
    struct render_backend *rb = calloc(n ? n : 1, sizeof(*rb));
    struct host_route *routes = NULL;
    size_t k = 0, n_routes = 0;
    int r = -ENOMEM;

    *text = *map = NULL;
    *len = *mlen = 0;
    if (!rb)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct backend *b = be[i];

        if (!b->present || !backend_ours(b))
            continue; /* HAProxy does not run it, or it is not ours to write */
        r = slots_assign(&b->slots, catalog_find(cat, b->conf.name), b->have);
        if (r < 0)
            goto out;
        rb[k++] = (struct render_backend){b->svc, &b->slots, b->proxy[0] ? b->proxy : NULL};
    }
    r = render_services(cfg, rb, k, text, len, errmsg);
    if (r == 0 && dyn_defaults)
        r = render_append_dynamic_defaults(cfg, text, len);
    if (r == 0 && cfg->http_bind.set) {
        /* routes to the proxies HAProxy runs: a spare's for a bound one */
        for (size_t i = 0; i < k; i++)
            rb[i].proxy = rb[i].proxy ? rb[i].proxy : rb[i].svc->name;
        r = render_host_routes(cfg, rb, k, &routes, &n_routes);
        if (r == 0)
            r = render_hosts_map(routes, n_routes, map, mlen);
    }
    if (r < 0) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
out:
    free(routes);
    free(rb);
    return r;
}

/* The file at path holds exactly text (len bytes). */
static bool holds(const char *path, const char *text, size_t len)
{
    char *have = NULL;
    size_t hlen = 0;
    bool same =
        file_read(path, READ_MAX, &have, &hlen) == 0 && hlen == len && memcmp(have, text, len) == 0;

    free(have);
    return same;
}

/* Write text to path unless *cache (or, with none, the file) holds it
 * already; *cache becomes text (taken) once it is on disk. 1 written, 0
 * unchanged, or a negative errno with *errmsg. */
static int write_if_changed(const char *path, char **cache, size_t *clen, char *text, size_t len,
                            char **errmsg)
{
    int r;

    if (*cache ? *clen == len && memcmp(*cache, text, len) == 0 : holds(path, text, len)) {
        free(*cache);
        *cache = text;
        *clen = len;
        return 0;
    }
    r = file_write_atomic(path, text, len, errmsg);
    if (r < 0) {
        free(text);
        return r;
    }
    free(*cache);
    *cache = text;
    *clen = len;
    return 1;
}

static void arm(struct livefile *lf, double after)
{
    ev_timer_stop(lf->loop, &lf->timer);
    ev_timer_set(&lf->timer, after > 0 ? after : 0., 0.);
    ev_timer_start(lf->loop, &lf->timer);
}

static void write_failed(struct livefile *lf, const char *why)
{
    double now = clock_mono(), elapsed = 0;

    lf->stats.failures++;
    lf->delay = lf->delay < RETRY_MIN_S ? RETRY_MIN_S : lf->delay * 2;
    if (lf->delay > RETRY_MAX_S)
        lf->delay = RETRY_MAX_S;
    if (log_outage_begin(&lf->outage, now))
        log_error(MOD,
                  "%s: %s; HAProxy keeps running, but a restart or a reload of HAProxy would "
                  "start from an older file until it is written (retrying with backoff)",
                  WRITE_FAILED, why);
    else if (log_outage_due(&lf->outage, now, &elapsed))
        log_error(MOD, "%s, still after %.0f s: %s", WRITE_FAILED, elapsed, why);
    else
        log_debug(MOD, "%s, still: %s (retry in %.1f s)", WRITE_FAILED, why, lf->delay);
    lf->wanted = true;
    arm(lf, lf->delay * jitter_around(RETRY_JITTER));
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct livefile *lf = w->data;
    size_t n = 0, len = 0, mlen = 0;
    struct backend **be;
    char *text = NULL, *map = NULL, *err = NULL;
    int r, wrote = 0;

    (void)loop;
    (void)revents;
    if (lf->held || !lf->wanted)
        return;
    lf->wanted = false;
    lf->last = clock_mono();
    lf->stats.renders++;
    be = lf->tab->v;
    n = lf->tab->n;
    r = livefile_render(lf->cfg, be, n, lf->cat, lf->dyn_defaults, &text, &len, &map, &mlen, &err);
    if (r == -EINVAL) {
        /* validated input cannot get here: say so, retry at the next change */
        log_error(MOD, "cannot render the services file: %s", err ? err : strerror(-r));
        lf->stats.failures++;
        goto out;
    }
    if (r < 0) {
        write_failed(lf, strerror(-r));
        goto out;
    }
    /* The map first: a restart between the two writes finds the routes of
     * the backends both files declare (a spare's route names a proxy that
     * every services file slotsync renders declares). */
    if (map) {
        r = write_if_changed(lf->cfg->hosts_map, &lf->map, &lf->mlen, map, mlen, &err);
        map = NULL; /* taken */
        if (r < 0) {
            write_failed(lf, err ? err : strerror(-r));
            goto out;
        }
        wrote += r;
    }
    r = write_if_changed(lf->cfg->services_file, &lf->text, &lf->len, text, len, &err);
    text = NULL; /* taken */
    if (r < 0) {
        write_failed(lf, err ? err : strerror(-r));
        goto out;
    }
    wrote += r;
    lf->delay = 0;
    double down = log_outage_end(&lf->outage, clock_mono());

    if (down >= 0)
        log_info(MOD, "services file %s written again after %.0f s", lf->cfg->services_file, down);
    if (wrote) {
        lf->stats.writes++;
        log_debug(MOD, "services file %s and host map brought up to date", lf->cfg->services_file);
    } else {
        lf->stats.unchanged++;
    }
out:
    free(err);
    free(text);
    free(map);
}

int livefile_init(struct livefile *lf, struct ev_loop *loop, const struct config *cfg,
                  struct catalog *cat, struct table *tab)
{
    memset(lf, 0, sizeof(*lf));
    lf->loop = loop;
    lf->cfg = cfg;
    lf->cat = cat;
    lf->tab = tab;
    ev_timer_init(&lf->timer, on_timer, 0., 0.);
    lf->timer.data = lf;
    return 0;
}

void livefile_free(struct livefile *lf)
{
    if (lf->loop)
        ev_timer_stop(lf->loop, &lf->timer);
    free(lf->text);
    free(lf->map);
    lf->text = lf->map = NULL;
}

void livefile_set_config(struct livefile *lf, const struct config *cfg)
{
    lf->cfg = cfg;
    /* the paths may be the same, the text is not: compare with the disk */
    free(lf->text);
    free(lf->map);
    lf->text = lf->map = NULL;
}

void livefile_touch(struct livefile *lf)
{
    double due;

    lf->wanted = true;
    if (lf->held || ev_is_active(&lf->timer))
        return; /* the hold's end, a pending render or a retry comes first */
    due = lf->last > 0 ? lf->last + LIVEFILE_INTERVAL_S - clock_mono() : 0;
    arm(lf, due);
}

void livefile_hold(struct livefile *lf, bool held)
{
    if (lf->held == held)
        return;
    lf->held = held;
    if (held) {
        ev_timer_stop(lf->loop, &lf->timer);
        return;
    }
    /* The reload's render wrote the files (or left them): read them again */
    free(lf->text);
    free(lf->map);
    lf->text = lf->map = NULL;
    lf->delay = 0;
    livefile_touch(lf);
}
