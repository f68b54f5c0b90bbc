/* probe - try each etcd endpoint once and say how it went. */
#include <slotsync/probe.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include <slotsync/config-t.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/http.h>
#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>
#include <slotsync/secret.h>
#include <slotsync/tls.h>

struct probe_one {
    struct etcd_client *client;
    struct etcd_call *call;
    const char *url; /* borrowed from the config */
    char *result;    /* owned: the line's text after "URL: " */
    bool ok, done;
    size_t *pending;
    struct ev_loop *loop;
};

static void on_reply(int err, const json_t *reply, const char *errtext, void *arg)
{
    struct probe_one *p = arg;
    int64_t rev = 0;

    p->call = NULL;
    p->done = true;
    if (err == 0) {
        const json_t *hdr = json_object_get(reply, "header");

        if (hdr)
            etcd_json_int64(hdr, "revision", &rev);
        p->ok = true;
        memprintf(&p->result, "ok (revision %lld)", (long long)rev);
    } else {
        memprintf(&p->result, "%s", errtext ? errtext : strerror(-err));
    }
    if (--*p->pending == 0)
        ev_break(p->loop, EVBREAK_ALL);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* {"key": prefix, "range_end": end, "limit": 1, "keys_only": true} */
static json_t *range_body(const char *prefix)
{
    size_t len = strlen(prefix), elen, klen, relen;
    char *end = etcd_prefix_range_end(prefix, len, &elen), *k = NULL, *re = NULL;
    json_t *body = NULL;

    if (end && etcd_b64_encode(prefix, len, &k, &klen) == 0 &&
        etcd_b64_encode(end, elen, &re, &relen) == 0)
        body = json_pack("{s:s, s:s, s:s, s:b}", "key", k, "range_end", re, "limit", "1",
                         "keys_only", 1);
    free(end);
    free(k);
    free(re);
    return body;
}

int probe_etcd(const struct config *cfg, double timeout_s, FILE *out, char **errmsg)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    size_t n = cfg->n_etcd_endpoints, pending = 0;
    struct probe_one *probes = calloc(n, sizeof(*probes));
    struct http_client *http = NULL;
    char *password = NULL;
    ev_timer deadline;
    int failed = 0, ret;

    if (!loop || !probes || !(http = http_client_new(loop))) {
        memprintf(errmsg, "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    if (tls_conf_set(&cfg->etcd_tls) &&
        (ret = http_client_set_tls(http, &cfg->etcd_tls, errmsg)) < 0)
        goto out;
    if (cfg->etcd_username &&
        (ret = secret_read_password_file(cfg->etcd_password_file, &password, NULL, errmsg)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct probe_one *p = &probes[i];
        json_t *body = range_body(cfg->etcd_prefix);

        p->url = cfg->etcd_endpoints[i];
        p->pending = &pending;
        p->loop = loop;
        p->client = etcd_client_new(loop, http, &cfg->etcd_endpoints[i], 1);
        etcd_client_set_transport(p->client, (enum etcd_transport)cfg->etcd_transport);
        if (p->client && cfg->etcd_username &&
            etcd_client_set_auth(p->client, cfg->etcd_username, password) < 0) {
            json_decref(body);
            body = NULL;
        }
        if (!body || !p->client) {
            json_decref(body);
            memprintf(errmsg, "out of memory");
            ret = -ENOMEM;
            goto out;
        }
        p->call = etcd_call(p->client, "/v3/kv/range", body, (long)(timeout_s * 1000), on_reply, p);
        if (!p->call) {
            memprintf(errmsg, "out of memory");
            ret = -ENOMEM;
            goto out;
        }
        pending++;
    }
    ev_timer_init(&deadline, on_timeout, timeout_s + 1, 0.);
    ev_timer_start(loop, &deadline);
    ev_run(loop, 0);
    ev_timer_stop(loop, &deadline);
    for (size_t i = 0; i < n; i++) {
        struct probe_one *p = &probes[i];

        if (!p->done)
            memprintf(&p->result, "no answer within %.0f s", timeout_s);
        if (!p->ok)
            failed++;
        fprintf(out, "%s: %s\n", p->url, p->result ? p->result : "?");
    }
    ret = failed;
out:
    for (size_t i = 0; probes && i < n; i++) {
        etcd_call_cancel(probes[i].call);
        etcd_client_free(probes[i].client);
        free(probes[i].result);
    }
    free(probes);
    secret_free(password);
    http_client_free(http);
    if (loop)
        ev_loop_destroy(loop);
    return ret;
}

/* ---- the runtime socket: "show cli level" once ---- */

struct probe_rt {
    struct ev_loop *loop;
    int err; /* 1: pending */
    int level;
};

static void on_level(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    struct probe_rt *p = arg;

    p->err = err;
    p->level = err == 0 && n == 1 ? runtime_cli_level(replies[0]) : -EPROTO;
    ev_break(p->loop, EVBREAK_ALL);
}

static void on_rt_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

int probe_runtime(const struct config *cfg, double timeout_s, FILE *out, char **errmsg)
{
    static const char *const cmds[] = {PLAN_SHOW_LEVEL};
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct probe_rt p = {loop, 1, -1};
    struct runtime *rt = loop ? runtime_new(loop, cfg->runtime_socket, timeout_s) : NULL;
    char q[512];
    ev_timer deadline;
    int r;

    if (!rt) {
        if (loop)
            ev_loop_destroy(loop);
        memprintf(errmsg, "out of memory");
        return -ENOMEM;
    }
    log_quote(cfg->runtime_socket, strlen(cfg->runtime_socket), q, sizeof(q));
    r = runtime_send(rt, cmds, 1, on_level, &p);
    if (r < 0) {
        p.err = r;
    } else {
        ev_timer_init(&deadline, on_rt_timeout, timeout_s + 1, 0.);
        ev_timer_start(loop, &deadline);
        ev_run(loop, 0);
        ev_timer_stop(loop, &deadline);
    }
    if (p.err == 0 && p.level == RUNTIME_LEVEL_ADMIN) {
        fprintf(out, "%s: ok (level admin)\n", q);
        r = 0;
    } else if (p.err == 0 && p.level >= 0) {
        fprintf(out, "%s: level %s, slotsync needs level admin\n", q,
                runtime_level_name((enum runtime_level)p.level));
        r = 1;
    } else {
        fprintf(out, "%s: %s\n", q,
                p.err == 1   ? "no answer in time"
                : p.err == 0 ? "not HAProxy's runtime API (unexpected reply to show cli level)"
                             : runtime_strerror(p.err));
        r = 1;
    }
    runtime_free(rt);
    ev_loop_destroy(loop);
    return r;
}
