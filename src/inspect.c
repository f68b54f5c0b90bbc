/* inspect - `slotsync status` on a short-lived loop. */
#include <slotsync/inspect.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include <slotsync/catalog.h>
#include <slotsync/config.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_sync.h>
#include <slotsync/http.h>
#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/render.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>
#include <slotsync/secret.h>
#include <slotsync/spare.h>
#include <slotsync/status.h>
#include <slotsync/tls.h>
#include <slotsync/validate.h>

#define MOD "status"

struct inspect {
    struct ev_loop *loop;
    const struct config *cfg;
    struct catalog *cat;
    struct http_client *http;
    struct etcd_client *etcd;
    struct etcd_sync *sync;
    struct runtime *rt;
    ev_timer deadline;
    bool listed;
    int64_t revision;
    char *etcd_error; /* the last reason etcd did not answer */
    int rt_err;       /* 1 = pending, 0 = done, < 0 failed */
    char *state_text, *stat_text;
    struct host_route *routes; /* the Host map, when spares may be bound */
    size_t n_routes;
    bool admin_mode;
    int admin_err; /* 1 = pending */
    json_t *admin_doc;
    char *admin_error;
};

static void maybe_done(struct inspect *in)
{
    if (in->admin_mode ? in->admin_err != 1 : in->listed && in->rt_err != 1)
        ev_break(in->loop, EVBREAK_ALL);
}

static void on_list_begin(void *arg)
{
    struct inspect *in = arg;

    catalog_relist_begin(in->cat);
}

static void on_kv(const struct etcd_kv *kv, void *arg)
{
    struct inspect *in = arg;

    if (in->listed)
        return; /* watch events after the listing: not ours to show */
    if (!kv->deleted)
        catalog_put(in->cat, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision,
                    NULL);
}

static void on_list_end(int64_t revision, void *arg)
{
    struct inspect *in = arg;

    catalog_relist_end(in->cat);
    in->revision = revision;
    in->listed = true;
    maybe_done(in);
}

static void on_batch_end(int64_t revision, void *arg)
{
}

static void on_connected(bool up, const char *why, void *arg)
{
    struct inspect *in = arg;

    if (!up && why) {
        free(in->etcd_error);
        in->etcd_error = strdup(why);
    }
}

static const struct etcd_sync_ops sync_ops = {
    .list_begin = on_list_begin,
    .kv = on_kv,
    .list_end = on_list_end,
    .batch_end = on_batch_end,
    .connected = on_connected,
};

static void on_runtime(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                       void *arg)
{
    struct inspect *in = arg;

    if (err == 0 && n >= 2) {
        in->state_text = strdup(replies[0]);
        in->stat_text = strdup(replies[1]);
        err = in->state_text && in->stat_text ? 0 : -ENOMEM;
    }
    /* An unknown map only means no spare is bound. */
    if (err == 0 && n == 3 && runtime_reply_ok(PLAN_SHOW_MAP, replies[2])) {
        size_t bad = 0;

        err =
            runtime_parse_routes(replies[2], strlen(replies[2]), &in->routes, &in->n_routes, &bad);
    }
    in->rt_err = err < 0 ? err : 0;
    maybe_done(in);
}

static void on_admin(struct http_request *req, int err, long status, const char *body, size_t len,
                     const char *errtext, void *arg)
{
    struct inspect *in = arg;
    json_error_t jerr;

    in->admin_err = -EIO;
    if (err < 0)
        memprintf(&in->admin_error, "%s", errtext ? errtext : strerror(-err));
    else if (status != 200)
        memprintf(&in->admin_error, "/status answered HTTP %ld", status);
    else if (!(in->admin_doc = json_loadb(body, len, 0, &jerr)) ||
             !json_is_array(json_object_get(in->admin_doc, "backends")))
        memprintf(&in->admin_error, "/status did not answer a status document");
    else
        in->admin_err = 0;
    maybe_done(in);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* The admin address must be HOST:PORT with an IP literal or localhost. */
static int admin_url(const char *addr, char *url, size_t size, char **errmsg)
{
    if (strchr(addr, '/') || validate_socket_addr(addr, NULL) < 0) {
        memprintf(errmsg, "--admin: must be HOST:PORT (an IPv4 literal, [IPv6] literal or "
                          "localhost, and a port)");
        return -EINVAL;
    }
    snprintf(url, size, "http://%s/status", addr);
    return 0;
}

static int gather(struct inspect *in, const struct inspect_opts *o, json_t **doc, char **errmsg)
{
    const char **names = NULL;
    struct status_alias *al = NULL;
    struct spare_pool sp = {0};
    struct plan cmds;
    size_t n_al = 0;
    int r;

    if (o->admin) {
        char url[300];
        struct http_opts ho = {.timeout_ms = (long)(o->timeout_s * 1000)};

        if ((r = admin_url(o->admin, url, sizeof(url), errmsg)) < 0)
            return r;
        in->admin_mode = true;
        in->admin_err = 1;
        if (!http_request_start(in->http, url, &ho, on_admin, in))
            goto oom;
        ev_run(in->loop, 0);
        if (in->admin_err) {
            memprintf(errmsg, "admin endpoint %s: %s", o->admin,
                      in->admin_error ? in->admin_error : "no answer in time");
            return -ETIMEDOUT;
        }
        *doc = json_incref(in->admin_doc);
        return 0;
    }
    in->rt = runtime_new(in->loop, in->cfg->runtime_socket, o->timeout_s);
    in->etcd =
        etcd_client_new(in->loop, in->http, in->cfg->etcd_endpoints, in->cfg->n_etcd_endpoints);
    if (!in->rt || !in->etcd)
        goto oom;
    etcd_client_set_transport(in->etcd, (enum etcd_transport)in->cfg->etcd_transport);
    /* etcd as run reaches it: TLS files and credentials of the config */
    if ((tls_conf_set(&in->cfg->etcd_tls) &&
         (r = http_client_set_tls(in->http, &in->cfg->etcd_tls, errmsg)) < 0) ||
        (in->cfg->etcd_username && (r = secret_set_etcd_auth(in->etcd, in->cfg, errmsg)) < 0))
        return r;
    in->rt_err = 1;
    plan_init(&cmds);
    r = plan_inspect(&cmds, spare_count(in->cfg) ? in->cfg->hosts_map : NULL);
    if (r == 0)
        r = runtime_send(in->rt, (const char *const *)cmds.cmds, cmds.n, on_runtime, in);
    plan_free(&cmds);
    if (r < 0)
        in->rt_err = r;
    in->sync = etcd_sync_start(in->etcd, in->cfg->etcd_prefix, &sync_ops, in);
    if (!in->sync)
        goto oom;
    ev_run(in->loop, 0);
    if (in->rt_err) {
        memprintf(errmsg, "HAProxy runtime socket %s: %s", in->cfg->runtime_socket,
                  in->rt_err == 1 ? "no answer in time" : runtime_strerror(in->rt_err));
        return -EHOSTUNREACH;
    }
    if (!in->listed) {
        char q[256] = "";

        /* retried with backoff until --timeout: say so, and the last
         * reason (issue 19) */
        if (in->etcd_error)
            log_quote(in->etcd_error, strlen(in->etcd_error), q, sizeof(q));
        memprintf(errmsg, "etcd: no complete listing within %g s (retried with backoff)%s%s",
                  o->timeout_s, q[0] ? "; last error: " : "", q);
        return -EHOSTUNREACH;
    }
    names = calloc(in->cfg->n_services + 1, sizeof(*names));
    if (!names || spare_pool_init(&sp, spare_count(in->cfg)) < 0 ||
        !(al = calloc(sp.n + 1, sizeof(*al)))) {
        free(names);
        spare_pool_free(&sp);
        goto oom;
    }
    for (size_t i = 0; i < in->cfg->n_services; i++)
        names[i] = in->cfg->services[i].name;
    /* Services bound to spare backends, as the live map routes them. */
    struct spare_adoption ad;
    char(*spare_names)[SPARE_NAME_SIZE] = calloc(sp.n + 1, sizeof(*spare_names));

    spare_adopt(&sp, in->routes, in->n_routes, in->cfg->http_domain, &ad);
    for (size_t i = 0; spare_names && i < sp.n; i++) {
        if (!spare_bound(&sp, i))
            continue;
        spare_name(i, spare_names[i]);
        al[n_al++] = (struct status_alias){spare_bound(&sp, i), spare_names[i]};
    }
    r = status_build(in->cat, in->revision, names, in->cfg->n_services, al, n_al, in->state_text,
                     in->stat_text, doc, errmsg);
    free(spare_names);
    free(al);
    spare_pool_free(&sp);
    free(names);
    return r;
oom:
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

/* Whether a frontend reaches the backend name: its configured service, or
 * one from etcd with the defaults (render_service_routed). */
static bool name_routed(const char *name, void *arg)
{
    const struct config *cfg = arg;
    struct service_conf conf;

    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return render_service_routed(cfg, &cfg->services[i]);
    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt = cfg->defaults;
    return render_service_routed(cfg, &conf);
}

int inspect_status(const struct config *cfg, const struct inspect_opts *o, FILE *out, char **errmsg)
{
    struct inspect in = {0};
    json_t *doc = NULL;
    char *text = NULL;
    int r;

    in.cfg = cfg;
    in.loop = ev_loop_new(EVFLAG_AUTO);
    in.cat = catalog_new(cfg->etcd_prefix);
    in.http = in.loop ? http_client_new(in.loop) : NULL;
    if (!in.loop || !in.cat || !in.http) {
        memprintf(errmsg, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    ev_timer_init(&in.deadline, on_deadline, o->timeout_s, 0.);
    ev_timer_start(in.loop, &in.deadline);
    r = gather(&in, o, &doc, errmsg);
    if (r < 0)
        goto out;
    /* read directly (not --admin, whose document says it already) */
    if (!o->admin && status_mark_routed(doc, name_routed, (void *)cfg) < 0) {
        memprintf(errmsg, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    if (o->service && status_filter(doc, o->service) < 0) {
        char q[128];

        log_quote(o->service, strlen(o->service), q, sizeof(q));
        memprintf(errmsg, "--service: no backend named \"%s\"", q);
        r = -ENOENT;
        goto out;
    }
    if (o->json)
        text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    else if (status_render_table(doc, o->all, &text) < 0)
        text = NULL;
    if (!text) {
        memprintf(errmsg, o->json ? "out of memory" : "the status document is not usable");
        r = -ENOMEM;
        goto out;
    }
    fputs(text, out);
    if (o->json)
        fputc('\n', out);
    if (fflush(out) != 0) {
        memprintf(errmsg, "standard output: %s", strerror(errno));
        r = -EIO;
        goto out;
    }
    r = status_etcd_down(doc)     ? INSPECT_ETCD_DOWN
        : status_drift_count(doc) ? INSPECT_DRIFT
                                  : INSPECT_IN_SYNC;
out:
    free(text);
    json_decref(doc);
    if (in.loop)
        ev_timer_stop(in.loop, &in.deadline);
    if (in.sync)
        etcd_sync_stop(in.sync);
    if (in.etcd)
        etcd_client_free(in.etcd);
    if (in.rt)
        runtime_free(in.rt);
    if (in.http)
        http_client_free(in.http);
    catalog_free(in.cat);
    json_decref(in.admin_doc);
    free(in.admin_error);
    free(in.etcd_error);
    free(in.state_text);
    free(in.stat_text);
    free(in.routes);
    if (in.loop)
        ev_loop_destroy(in.loop);
    return r;
}
