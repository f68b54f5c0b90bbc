/* config - the JSON configuration file, read from keyword tables.
 *
 * The file is as untrusted as etcd: every field is checked against a narrow
 * character set and range before it is stored, unknown keys are errors, and
 * an error names the field by its path ("services.api.slots"). Path parts are
 * known key names, names that already passed validation, or untrusted names
 * passed through log_quote(); the offending value itself is never echoed raw.
 *
 * Each block of the file is a table of rows (config_kw.h), one a field,
 * in the order they are read: config_kw.c's reader takes a row's member,
 * checks its type, range or validator (validate.h), applies its default
 * and stores it at its offset. What ties fields together is a KW_CHECK
 * row, placed where it runs; what is not one value (a list, a set of
 * bits, the named services) is a KW_CUSTOM row's function below.
 *
 * Loading goes into the caller's struct directly; on any failure the struct
 * is freed and zeroed, so the caller has nothing to clean up.
 */
#include <slotsync/config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <slotsync/bulk.h>
#include <slotsync/config_kw.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>
#include <slotsync/names.h>
#include <slotsync/timeouts.h>
#include <slotsync/tls.h>
#include <slotsync/validate.h>

#define ETCD_ENDPOINTS_MAX 16
/* etcd.watch_check_interval_s: the watch stall detector's period (issue 24) */
#define ETCD_WATCH_CHECK_S 30
#define ETCD_WATCH_CHECK_S_MIN 1
#define ETCD_WATCH_CHECK_S_MAX 3600
#define MIN_RELOAD_INTERVAL_MS_MAX 600000
#define BULK_COST_US_MAX 1000000 /* runtime_command_us, reload_server_us: 1 s at most; 0 = measured */
#define RESYNC_INTERVAL_S_MAX 86400
#define FIELD_PATH_SIZE 256
#define QUOTE_SIZE 100 /* an untrusted name quoted into a message */

#define DEFAULT_SLOTS 8
#define DEFAULT_BALANCE "roundrobin"
#define DEFAULT_SERVER_OPTIONS "check inter 2s"
#define DEFAULT_MIN_RELOAD_INTERVAL_MS 1000
#define DEFAULT_SPARE_BACKENDS 16
#define DEFAULT_RESYNC_INTERVAL_S 30
/* Caps on what a writer to the etcd prefix can create (issue 20). Each
 * service etcd alone names costs a backend (a reload past the spares, and
 * a services file and every later reload that grow with it); each endpoint
 * a slot, and past the slots a doubling of them. The defaults sit above
 * every deployment measured (docs/PERFORMANCE.md: 1,000 services, 1,000
 * endpoints in a backend) and stop a runaway writer at about 1,000 backends
 * and 4,096 slots a backend. */
#define DEFAULT_MAX_SERVICES 1000
#define DEFAULT_MAX_ENDPOINTS_PER_SERVICE 4096
#define CAP_MAX 1000000

static const char *const balance_names[] = {"roundrobin", "static-rr", "leastconn",
                                            "first",      "source",    "random"};
static const char *const dynamic_balance_names[] = {"roundrobin", "leastconn", "first", "random"};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static int oom(char **errmsg)
{
    memprintf(errmsg, "out of memory");
    return -ENOMEM;
}

static void free_string_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* ---- validators of string rows: 0, or -EINVAL with a reason ---- */

static int check_balance(const char *s, char **reason)
{
    if (in_list(s, balance_names, ARRAY_SIZE(balance_names)))
        return 0;
    memprintf(reason, "must be one of roundrobin, static-rr, leastconn, first, source, random");
    return -EINVAL;
}

/* http_frontend.domain: "<service>.<domain>" must be a host name for any
 * service etcd may bring: 63 + 1 + CONFIG_DOMAIN_MAX = 253. */
static int check_http_domain(const char *s, char **reason)
{
    size_t len = strnlen(s, CONFIG_HOSTNAME_MAX + 1);

    if (!validate_hostname(s, len))
        memprintf(reason,
                  "must be a host name (A-Z a-z 0-9 . -, labels of 1-63 characters, at most %d "
                  "in all)",
                  CONFIG_HOSTNAME_MAX);
    else if (len > CONFIG_DOMAIN_MAX)
        memprintf(reason,
                  "must be at most %d characters, so that <service>.<domain> stays a host name "
                  "(at most %d) for every service name (up to %d)",
                  CONFIG_DOMAIN_MAX, CONFIG_HOSTNAME_MAX, SERVICE_NAME_MAX);
    else
        return 0;
    return -EINVAL;
}

static int check_dns_domain(const char *s, char **reason)
{
    size_t len = strnlen(s, CONFIG_HOSTNAME_MAX + 1);

    if (validate_hostname(s, len) && len <= CONFIG_DOMAIN_MAX)
        return 0;
    memprintf(reason, "must be a host name of at most %d characters", CONFIG_DOMAIN_MAX);
    return -EINVAL;
}

static int parse_mode(const char *s)
{
    return strcmp(s, "http") == 0 ? MODE_HTTP : strcmp(s, "tcp") == 0 ? MODE_TCP : -1;
}

/* etcd.transport: "grpc" (etcd's native protocol, the default: it is what
 * etcd's grpc-proxy carries) or "json" (the gateway, where HTTP/2 cannot pass). */
static int parse_transport(const char *s)
{
    return strcmp(s, "grpc") == 0   ? ETCD_TRANSPORT_GRPC
           : strcmp(s, "json") == 0 ? ETCD_TRANSPORT_JSON
                                    : -1;
}

/* ---- rows read by a function of their own ---- */

/* Validate url (len bytes) as etcd.endpoints[idx] and append it without its
 * trailing '/' to list. */
static int add_etcd_url(char **list, size_t *n, const char *url, size_t len, size_t idx,
                        char **errmsg)
{
    char fp[FIELD_PATH_SIZE], *copy, *reason = NULL;

    snprintf(fp, sizeof(fp), "etcd.endpoints[%zu]", idx);
    if (len == 0)
        return config_kw_error(errmsg, fp, "empty URL");
    copy = strndup(url, len);
    if (!copy)
        return oom(errmsg);
    if (validate_etcd_url(copy, &reason) < 0) {
        free(copy);
        return config_kw_reason_error(errmsg, fp, reason);
    }
    if (len > 0 && copy[len - 1] == '/')
        copy[len - 1] = '\0';
    list[(*n)++] = copy;
    return 0;
}

static int load_etcd_endpoints(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                               json_t *eps, char **errmsg)
{
    struct config *cfg = ctx->cfg;

    if (!json_is_array(eps))
        return config_kw_error(errmsg, "etcd.endpoints", "must be an array of URLs");
    if (json_array_size(eps) < 1 || json_array_size(eps) > ETCD_ENDPOINTS_MAX)
        return config_kw_error(errmsg, "etcd.endpoints", "must list 1 to %d URLs",
                               ETCD_ENDPOINTS_MAX);
    cfg->etcd_endpoints = calloc(json_array_size(eps), sizeof(char *));
    if (!cfg->etcd_endpoints)
        return oom(errmsg);
    for (size_t i = 0; i < json_array_size(eps); i++) {
        json_t *j = json_array_get(eps, i);
        int ret;

        if (!json_is_string(j) || json_string_length(j) != strlen(json_string_value(j))) {
            char fp[FIELD_PATH_SIZE];

            snprintf(fp, sizeof(fp), "etcd.endpoints[%zu]", i);
            return config_kw_error(errmsg, fp, "must be a string");
        }
        ret = add_etcd_url(cfg->etcd_endpoints, &cfg->n_etcd_endpoints, json_string_value(j),
                           json_string_length(j), i, errmsg);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static void free_etcd_endpoints(void *base)
{
    struct config *cfg = base;

    free_string_list(cfg->etcd_endpoints, cfg->n_etcd_endpoints);
}

static bool same_etcd_endpoints(const void *a, const void *b)
{
    const struct config *x = a, *y = b;

    if (x->n_etcd_endpoints != y->n_etcd_endpoints)
        return false;
    for (size_t i = 0; i < x->n_etcd_endpoints; i++)
        if (strcmp(x->etcd_endpoints[i], y->etcd_endpoints[i]) != 0)
            return false;
    return true;
}

/* services.NAME.hosts: extra Host names, http mode only, each once. */
static int load_hosts(const struct config_kw_ctx *ctx, const struct config_kw *kw, json_t *arr,
                      char **errmsg)
{
    struct service_conf *svc = ctx->base;
    char fp[FIELD_PATH_SIZE];

    config_kw_join(fp, sizeof(fp), ctx->path, "hosts");
    if (!json_is_array(arr))
        return config_kw_error(errmsg, fp, "must be an array of host names");
    if (json_array_size(arr) > CONFIG_HOSTS_MAX)
        return config_kw_error(errmsg, fp, "at most %d host names", CONFIG_HOSTS_MAX);
    if (json_array_size(arr) > 0 && svc->opt.mode != MODE_HTTP)
        return config_kw_error(errmsg, fp, "only allowed with mode http");
    if (json_array_size(arr) == 0)
        return 0;
    svc->hosts = calloc(json_array_size(arr), sizeof(char *));
    if (!svc->hosts)
        return oom(errmsg);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char name[CONFIG_HOSTNAME_MAX + 1], efp[FIELD_PATH_SIZE + 24];
        json_t *j = json_array_get(arr, i);

        snprintf(efp, sizeof(efp), "%s[%zu]", fp, i);
        if (!json_is_string(j) || json_string_length(j) != strlen(json_string_value(j)) ||
            !validate_hostname_lower(json_string_value(j), name))
            return config_kw_error(errmsg, efp,
                                   "must be a host name (A-Z a-z 0-9 . -, labels of 1-63 "
                                   "characters, at most %d in all)",
                                   CONFIG_HOSTNAME_MAX);
        for (size_t k = 0; k < svc->n_hosts; k++)
            if (strcmp(svc->hosts[k], name) == 0)
                return config_kw_error(errmsg, efp, "duplicate host name '%s'", name);
        svc->hosts[svc->n_hosts] = strdup(name);
        if (!svc->hosts[svc->n_hosts])
            return oom(errmsg);
        svc->n_hosts++;
    }
    return 0;
}

static void free_hosts(void *base)
{
    struct service_conf *svc = base;

    free_string_list(svc->hosts, svc->n_hosts);
}

/* admin.protected_paths: a non-empty array of the endpoint's paths, each
 * once. */
static int load_admin_paths(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                            json_t *arr, char **errmsg)
{
    char fp[FIELD_PATH_SIZE];
    unsigned bits = 0;
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return config_kw_error(errmsg, "admin.protected_paths", "must be an array of paths");
    json_array_foreach(arr, i, v)
    {
        const char *path = json_string_value(v);
        unsigned bit;

        snprintf(fp, sizeof(fp), "admin.protected_paths[%zu]", i);
        if (!json_is_string(v) || json_string_length(v) != strlen(path))
            return config_kw_error(errmsg, fp, "must be a string");
        bit = config_admin_path_bit(path);
        if (!bit)
            return config_kw_error(errmsg, fp,
                                   "must be one of /, /status, /metrics, /healthz, /readyz");
        if (bits & bit)
            return config_kw_error(errmsg, fp, "%s is listed twice", path);
        bits |= bit;
    }
    *(unsigned *)((char *)ctx->base + kw->offset) = bits;
    return 0;
}

static bool same_admin_paths(const void *a, const void *b)
{
    return ((const struct admin_conf *)a)->protected_paths ==
           ((const struct admin_conf *)b)->protected_paths;
}

/* admin.listen: ":PORT" means loopback; every other address, 0.0.0.0
 * included, must be written out (what is served off loopback is open
 * unless admin.tls / admin.token_file protect it). */
static int check_admin_listen(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                              json_t *value, char **errmsg)
{
    struct listen_addr *l = &ctx->cfg->admin_listen;

    if (!l->host[0] && json_string_value(value)[0] == ':') {
        /* No address: loopback, not every interface. */
        snprintf(l->host, sizeof(l->host), "127.0.0.1");
    } else if (!l->host[0]) {
        l->set = false;
        return config_kw_error(errmsg, "admin.listen",
                               "'*' is not accepted: write 0.0.0.0:PORT to listen on every "
                               "address, or :PORT for loopback");
    }
    return 0;
}

static void free_services(void *base);
static int load_services(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                         json_t *services, char **errmsg);

/* ---- checks of a block, where its table places them ---- */

/* etcd.username and etcd.password_file, together. The user name is what
 * etcd accepts (printable, no spaces); the password is only ever read from
 * the file (by the etcd client, at start and on SIGHUP). */
static int check_etcd_user(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                           json_t *value, char **errmsg)
{
    const char *user = ctx->cfg->etcd_username;

    if (!user != !ctx->cfg->etcd_password_file)
        return config_kw_error(errmsg, "etcd.username", "goes with etcd.password_file");
    if (!user)
        return 0;
    if (!user[0] || strlen(user) > 255)
        return config_kw_error(errmsg, "etcd.username", "must be 1-255 characters");
    for (const char *p = user; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return config_kw_error(errmsg, "etcd.username",
                                   "invalid character at byte %zu (printable ASCII, no spaces)",
                                   (size_t)(p - user) + 1);
    return 0;
}

/* etcd.tls: cert_file and key_file together. The files are read by the
 * etcd client (at start and on SIGHUP), not here. */
static int check_etcd_tls(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                          json_t *value, char **errmsg)
{
    return tls_conf_check(ctx->base, ctx->path, errmsg);
}

static int check_haproxy_files(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                               json_t *value, char **errmsg)
{
    struct config *cfg = ctx->cfg;

    /* Writing the services file over the base config would destroy it. */
    if (cfg->base_config && strcmp(cfg->base_config, cfg->services_file) == 0)
        return config_kw_error(errmsg, "haproxy.services_file", "must differ from base_config");
    /* The map the HTTP frontend routes with sits beside the services file. */
    if (!cfg->hosts_map && !memprintf(&cfg->hosts_map, "%s.map", cfg->services_file))
        return -ENOMEM;
    /* The map path goes into the rendered file (inside map(...)) and into
     * runtime commands: only plain path characters. */
    for (const char *p = cfg->hosts_map; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == '/'))
            return config_kw_error(errmsg, "haproxy.hosts_map",
                                   "may only use A-Z a-z 0-9 . _ - / (it defaults to "
                                   "services_file + \".map\", so check that path too)");
    return 0;
}

/* admin.tls: cert_file and key_file together, client_ca_file only with
 * them (mutual TLS). The files are read by the admin endpoint at start and
 * on SIGHUP. */
static int check_admin_tls(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                           json_t *value, char **errmsg)
{
    const struct admin_conf *ac = ctx->base;

    if (!ac->tls_cert_file)
        return config_kw_required(errmsg, "admin.tls", "cert_file");
    if (!ac->tls_key_file)
        return config_kw_required(errmsg, "admin.tls", "key_file");
    return 0;
}

/* A list of protected paths with nothing to protect them would read as
 * protection that is not there. */
static int check_admin_protection(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                                  json_t *value, char **errmsg)
{
    const struct admin_conf *ac = &ctx->cfg->admin;

    if (json_object_get(ctx->obj, "protected_paths") && ac->protected_paths && !ac->token_file &&
        !ac->tls_client_ca_file)
        return config_kw_error(errmsg, "admin.protected_paths",
                               "needs admin.token_file or admin.tls.client_ca_file");
    return 0;
}

static int check_listen_conflicts(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                                  json_t *value, char **errmsg)
{
    const struct config *cfg = ctx->cfg;
    char fp[FIELD_PATH_SIZE];

    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct service_conf *a = &cfg->services[i];

        if (!a->listen.set)
            continue;
        snprintf(fp, sizeof(fp), "services.%s.listen", a->name);
        if (validate_listen_overlap(&a->listen, &cfg->http_bind))
            return config_kw_error(errmsg, fp, "port %u is already used by http_frontend.bind",
                                   (unsigned)a->listen.port);
        if (validate_listen_overlap(&a->listen, &cfg->admin_listen))
            return config_kw_error(errmsg, fp, "port %u is already used by admin.listen",
                                   (unsigned)a->listen.port);
        for (size_t k = 0; k < i; k++)
            if (validate_listen_overlap(&a->listen, &cfg->services[k].listen))
                return config_kw_error(errmsg, fp, "port %u is already used by services.%s.listen",
                                       (unsigned)a->listen.port, cfg->services[k].name);
    }
    return 0;
}

struct host_owner {
    const char *host;
    const char *service;
};

static int host_owner_cmp(const void *a, const void *b)
{
    const struct host_owner *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    return c ? c : strcmp(x->service, y->service);
}

/* A Host routed to two backends would be a configuration error in the
 * rendered frontend; catch it here with a useful message. */
static int check_host_conflicts(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                                json_t *value, char **errmsg)
{
    const struct config *cfg = ctx->cfg;
    struct host_owner *all;
    size_t n = 0;
    int ret = 0;

    for (size_t i = 0; i < cfg->n_services; i++)
        n += cfg->services[i].n_hosts;
    if (n < 2)
        return 0;
    all = calloc(n, sizeof(*all));
    if (!all)
        return oom(errmsg);
    n = 0;
    for (size_t i = 0; i < cfg->n_services; i++)
        for (size_t k = 0; k < cfg->services[i].n_hosts; k++) {
            all[n].host = cfg->services[i].hosts[k];
            all[n].service = cfg->services[i].name;
            n++;
        }
    qsort(all, n, sizeof(*all), host_owner_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(all[i].host, all[i - 1].host) == 0) {
            char fp[FIELD_PATH_SIZE];

            snprintf(fp, sizeof(fp), "services.%s.hosts", all[i].service);
            ret = config_kw_error(errmsg, fp, "host name '%s' is already used by services.%s",
                                  all[i].host, all[i - 1].service);
            break;
        }
    }
    free(all);
    return ret;
}

/* ---- the tables: one row per field, in the order they are read ---- */

#define AT(st, f) offsetof(st, f)
#define OPT(f) AT(struct service_options, f)
#define CFG(f) AT(struct config, f)
#define TLS(f) AT(struct tls_conf, f)
#define ADM(f) AT(struct admin_conf, f)

/* struct service_options: defaults.* and every services.NAME. A raised
 * slots count is applied at run time, a lowered one removes nothing; the
 * others change the rendered backend. */
const struct config_kw config_kw_service_options[] = {
    ROW_INT("slots", OPT(slots), 1, CONFIG_SLOTS_MAX, DEFAULT_SLOTS, HUP_LIVE),
    ROW_INT("slot_growth", OPT(slot_growth), 0, CONFIG_SLOTS_MAX, 0, HUP_RENDER),
    ROW_ENUM("mode", OPT(mode), parse_mode, "must be \"http\" or \"tcp\"", MODE_HTTP, HUP_RENDER),
    ROW_CHARS("balance", OPT(balance), sizeof(((struct service_options *)0)->balance),
              check_balance, DEFAULT_BALANCE, HUP_RENDER),
    ROW_CHARS("server_options", OPT(server_options), CONFIG_OPTIONS_MAX, validate_server_options,
              DEFAULT_SERVER_OPTIONS, HUP_RENDER),
    ROW_END,
};

/* struct service_conf: services.NAME */
static const struct config_kw service_rows[] = {
    ROW_INLINE(AT(struct service_conf, opt), config_kw_service_options),
    ROW_LISTEN("listen", AT(struct service_conf, listen), NULL, 0, HUP_RENDER),
    {.name = "hosts",
     .type = KW_CUSTOM,
     .load = load_hosts,
     .release = free_hosts,
     .hup = HUP_RENDER},
    ROW_END,
};

/* struct tls_conf: etcd.tls, compared as one field */
static const struct config_kw etcd_tls_rows[] = {
    ROW_STR("ca_file", TLS(ca_file), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_STR("cert_file", TLS(cert_file), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_STR("key_file", TLS(key_file), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_STR("server_name", TLS(server_name), NULL, NULL, 0, HUP_RESTART),
    ROW_CHECK(check_etcd_tls),
    ROW_END,
};

static const struct config_kw etcd_rows[] = {
    {.name = "endpoints",
     .type = KW_CUSTOM,
     .load = load_etcd_endpoints,
     .same = same_etcd_endpoints,
     .release = free_etcd_endpoints,
     .flags = KW_REQUIRED,
     .hup = HUP_RESTART},
    ROW_STR("prefix", CFG(etcd_prefix), validate_prefix, NULL, KW_REQUIRED, HUP_RESTART),
    ROW_BLOCK("tls", CFG(etcd_tls), etcd_tls_rows, KW_WHOLE, HUP_RESTART),
    ROW_STR("username", CFG(etcd_username), NULL, NULL, 0, HUP_RESTART),
    ROW_STR("password_file", CFG(etcd_password_file), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_CHECK(check_etcd_user),
    ROW_ENUM("transport", CFG(etcd_transport), parse_transport, "must be \"grpc\" or \"json\"",
             ETCD_TRANSPORT_GRPC, HUP_RESTART),
    /* the watch stall detector's period (issue 24): two checks ahead make a
     * stall, so a stall is found within two of these */
    ROW_INT("watch_check_interval_s", CFG(etcd_watch_check_interval_s), ETCD_WATCH_CHECK_S_MIN,
            ETCD_WATCH_CHECK_S_MAX, ETCD_WATCH_CHECK_S, HUP_RESTART),
    ROW_END,
};

static const struct config_kw haproxy_rows[] = {
    ROW_STR("runtime_socket", CFG(runtime_socket), validate_socket_addr, NULL, KW_REQUIRED_LATE,
            HUP_RESTART),
    ROW_STR("master_socket", CFG(master_socket), validate_socket_addr, NULL, 0, HUP_RESTART),
    ROW_STR("base_config", CFG(base_config), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_STR("services_file", CFG(services_file), validate_file_path, NULL, KW_REQUIRED_LATE,
            HUP_RESTART),
    ROW_STR("reload_command", CFG(reload_command), validate_command, NULL, 0, HUP_RESTART),
    ROW_STR("binary", CFG(haproxy_bin), validate_file_path, "haproxy", 0, HUP_RESTART),
    ROW_STR("hosts_map", CFG(hosts_map), validate_file_path, NULL, 0, HUP_RESTART),
    ROW_CHECK(check_haproxy_files),
    ROW_INT("min_reload_interval_ms", CFG(min_reload_interval_ms), 0, MIN_RELOAD_INTERVAL_MS_MAX,
            DEFAULT_MIN_RELOAD_INTERVAL_MS, HUP_LIVE),
    /* issue 23: the socket or one reload for a large plan (bulk.h) */
    ROW_ENUM("bulk_path", CFG(bulk_path), bulk_path_parse, "must be one of auto, runtime, reload",
             BULK_PATH_AUTO, HUP_LIVE),
    ROW_INT("runtime_command_us", CFG(runtime_command_us), BULK_COST_MEASURED,
            BULK_COST_US_MAX, BULK_COST_MEASURED, HUP_LIVE),
    ROW_INT("reload_server_us", CFG(reload_server_us), BULK_COST_MEASURED, BULK_COST_US_MAX,
            BULK_COST_MEASURED, HUP_LIVE),
    ROW_INT("runtime_timeout_s", CFG(runtime_timeout_s), RUNTIME_TIMEOUT_S_MIN,
            RUNTIME_TIMEOUT_S_MAX, RUNTIME_TIMEOUT_S, HUP_RESTART),
    ROW_END,
};

const struct config_kw config_kw_http_frontend[] = {
    ROW_TYPE("bind", KW_REQUIRED),
    ROW_INT("spare_backends", CFG(spare_backends), 0, SPARE_MAX, DEFAULT_SPARE_BACKENDS,
            HUP_RENDER),
    ROW_LISTEN("bind", CFG(http_bind), NULL, KW_REQUIRED, HUP_RENDER),
    ROW_STR("domain", CFG(http_domain), check_http_domain, NULL, KW_LOWER, HUP_RENDER),
    ROW_END,
};

/* struct admin_conf: taken at start only (a SIGHUP reads the files again) */
static const struct config_kw admin_tls_rows[] = {
    ROW_STR("cert_file", ADM(tls_cert_file), validate_file_path, NULL, 0, HUP_KEPT),
    ROW_STR("key_file", ADM(tls_key_file), validate_file_path, NULL, 0, HUP_KEPT),
    ROW_STR("client_ca_file", ADM(tls_client_ca_file), validate_file_path, NULL, 0, HUP_KEPT),
    ROW_CHECK(check_admin_tls),
    ROW_END,
};

const struct config_kw config_kw_admin_conf[] = {
    ROW_BLOCK("tls", 0, admin_tls_rows, 0, HUP_KEPT),
    ROW_STR("token_file", ADM(token_file), validate_file_path, NULL, 0, HUP_KEPT),
    ROW_CUSTOM("protected_paths", ADM(protected_paths), load_admin_paths, same_admin_paths,
               ADMIN_PATHS_PROTECTED_DEFAULT, 0, HUP_KEPT),
    ROW_END,
};

static const struct config_kw admin_rows[] = {
    ROW_INLINE(CFG(admin), config_kw_admin_conf),
    ROW_CHECK(check_admin_protection),
    ROW_LISTEN("listen", CFG(admin_listen), check_admin_listen, KW_REQUIRED, HUP_KEPT),
    ROW_END,
};

/* "dns": the hosts file for dnsmasq */
static const struct config_kw dns_rows[] = {
    ROW_STR("hosts_file", CFG(dns.hosts_file), validate_file_path, NULL, KW_REQUIRED_LATE,
            HUP_LIVE),
    ROW_STR("reload_pid_file", CFG(dns.reload_pid_file), validate_file_path, NULL, 0, HUP_LIVE),
    ROW_TYPE("domain", 0),
    ROW_TYPE("address", 0),
    ROW_CHECK(NULL), /* dns.hosts_file: required */
    ROW_STR("domain", CFG(dns.domain), check_dns_domain, "service.local", KW_LOWER, HUP_LIVE),
    ROW_STR("address", CFG(dns.address), validate_ip_literal, "127.0.0.1", 0, HUP_LIVE),
    ROW_END,
};

/* The top level: each row is one step; config_load_all() reports a step's
 * error and goes on with the next. */
const struct config_kw config_kw_root[] = {
    ROW_BLOCK("etcd", 0, etcd_rows, KW_REQUIRED, HUP_LIVE),
    ROW_BLOCK("haproxy", 0, haproxy_rows, KW_REQUIRED, HUP_LIVE),
    ROW_BLOCK("defaults", CFG(defaults), config_kw_service_options, KW_ALWAYS, HUP_LIVE),
    {.name = "services",
     .type = KW_CUSTOM,
     .load = load_services,
     .release = free_services,
     .sub = service_rows,
     .flags = KW_NAMED,
     .hup = HUP_RENDER},
    ROW_BLOCK("http_frontend", 0, config_kw_http_frontend, 0, HUP_LIVE),
    ROW_BLOCK("admin", 0, admin_rows, KW_ALWAYS, HUP_LIVE),
    ROW_INT("resync_interval_s", CFG(resync_interval_s), 1, RESYNC_INTERVAL_S_MAX,
            DEFAULT_RESYNC_INTERVAL_S, HUP_LIVE),
    ROW_TYPE("log_level", 0), /* its value is checked after the caps */
    {.name = "allow_empty_registry", .type = KW_BOOL, .offset = CFG(allow_empty_registry)},
    /* text (default), logfmt or json (log.h): read at start only */
    ROW_ENUM("log_format", CFG(log_format), log_format_parse, "must be one of text, logfmt, json",
             LOG_FORMAT_TEXT, HUP_KEPT),
    ROW_BLOCK("dns", 0, dns_rows, 0, HUP_LIVE),
    /* the caps on what etcd can create (0 = no cap); one step */
    ROW_INT("max_services", CFG(max_services), 0, CAP_MAX, DEFAULT_MAX_SERVICES, HUP_LIVE),
    {.name = "max_endpoints_per_service",
     .type = KW_INT,
     .offset = CFG(max_endpoints_per_service),
     .max = CAP_MAX,
     .def = DEFAULT_MAX_ENDPOINTS_PER_SERVICE,
     .flags = KW_WITH_PREV},
    ROW_ENUM("log_level", CFG(log_level), log_level_parse,
             "must be one of error, warn, info, debug", LOG_LEVEL_INFO, HUP_LIVE),
    ROW_CHECK(check_listen_conflicts),
    ROW_CHECK(check_host_conflicts),
    ROW_END,
};

static int load_service(json_t *obj, const char *name, struct config *cfg, struct service_conf *svc,
                        const struct config_kw *rows, char **errmsg)
{
    char path[sizeof("services.") + SERVICE_NAME_MAX];
    struct config_kw_ctx ctx = {obj, path, svc, cfg, NULL};
    int ret;

    /* name already passed endpoint_service_name_valid() */
    snprintf(path, sizeof(path), "services.%s", name);
    snprintf(svc->name, sizeof(svc->name), "%s", name);
    svc->opt = cfg->defaults;
    if (!json_is_object(obj))
        return config_kw_error(errmsg, path, "must be an object");
    ret = config_kw_check_keys(obj, path, rows, errmsg);
    if (ret < 0)
        return ret;
    return config_kw_load(&ctx, rows, false, errmsg);
}

static void free_services(void *base)
{
    struct config *cfg = base;

    for (size_t i = 0; i < cfg->n_services; i++)
        config_kw_release(service_rows, &cfg->services[i]);
    free(cfg->services);
}

static int service_cmp(const void *a, const void *b)
{
    return strcmp(((const struct service_conf *)a)->name, ((const struct service_conf *)b)->name);
}

/* services: each member a service_rows block named by its key, read on
 * after one's error with a collector. */
static int load_services(const struct config_kw_ctx *ctx, const struct config_kw *kw,
                         json_t *services, char **errmsg)
{
    struct config *cfg = ctx->cfg;
    int ret;

    if (!json_is_object(services))
        return config_kw_error(errmsg, "services", "must be an object");
    if (json_object_size(services) == 0)
        return 0;
    cfg->services = calloc(json_object_size(services), sizeof(*cfg->services));
    if (!cfg->services)
        return oom(errmsg);
    for (void *it = json_object_iter(services); it; it = json_object_iter_next(services, it)) {
        const char *name = json_object_iter_key(it);

        if (!endpoint_service_name_valid(name)) {
            char q[QUOTE_SIZE];

            ret = config_kw_error(errmsg, "services",
                                  "invalid service name \"%s\" (allowed: A-Z a-z 0-9 . _ -, "
                                  "1-63 chars)",
                                  log_quote_str(name, q, sizeof(q)));
            if ((ret = config_kw_keep_going(ctx->problems, ret, errmsg)) < 0)
                return ret;
            continue;
        }
        /* counted first, so that config_free() sees what a failure left */
        ret = load_service(json_object_iter_value(it), name, cfg, &cfg->services[cfg->n_services++],
                           kw->sub, errmsg);
        if ((ret = config_kw_keep_going(ctx->problems, ret, errmsg)) < 0)
            return ret;
    }
    qsort(cfg->services, cfg->n_services, sizeof(*cfg->services), service_cmp);
    return 0;
}

/* Row by row; with a collector (config_load_all) each row's error is
 * reported and the next row is still read. */
static int load_root(json_t *root, struct config *cfg, struct config_kw_problems *p, char **errmsg)
{
    struct config_kw_ctx ctx = {root, "", cfg, cfg, p};

    if (!json_is_object(root)) {
        memprintf(errmsg, "the configuration must be a JSON object");
        return -EINVAL;
    }
    return config_kw_load_steps(&ctx, config_kw_root, errmsg);
}

/* jansson's message may quote the offending input: escape it. */
static int json_load_error(const json_error_t *jerr, const char *source, char **errmsg)
{
    char q[LOG_QUOTE_MAX];

    log_quote(jerr->text, strnlen(jerr->text, sizeof(jerr->text)), q, sizeof(q));
    if (source)
        memprintf(errmsg, "%s: line %d column %d: %s", source, jerr->line, jerr->column, q);
    else
        memprintf(errmsg, "line %d column %d: %s", jerr->line, jerr->column, q);
    return -EINVAL;
}

static int load_json(json_t *root, struct config *cfg, struct config_kw_problems *p, char **errmsg)
{
    int ret = load_root(root, cfg, p, errmsg);

    json_decref(root);
    if (ret < 0)
        config_free(cfg);
    return ret;
}

static int load_file(const char *path, struct config *cfg, struct config_kw_problems *p,
                     char **errmsg)
{
    char q[QUOTE_SIZE * 2];
    json_error_t jerr;
    json_t *root;
    FILE *fp;
    int err;

    memset(cfg, 0, sizeof(*cfg));
    if (!path) {
        memprintf(errmsg, "no configuration file");
        return -EINVAL;
    }
    log_quote_str(path, q, sizeof(q));
    fp = fopen(path, "r");
    if (!fp) {
        err = errno;
        memprintf(errmsg, "cannot open \"%s\": %s", q, strerror(err));
        return -err;
    }
    {
        /* A directory opens for reading on Linux, and reads as EISDIR:
         * say so, not "unable to read" (issue 19). */
        struct stat st;

        if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
            fclose(fp);
            memprintf(errmsg, "cannot read \"%s\": is a directory", q);
            return -EISDIR;
        }
    }
    root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    fclose(fp);
    if (!root)
        return json_load_error(&jerr, q, errmsg);
    return load_json(root, cfg, p, errmsg);
}

int config_load(const char *path, struct config *cfg, char **errmsg)
{
    return load_file(path, cfg, NULL, errmsg);
}

int config_load_all(const char *path, struct config *cfg, config_report_fn report, void *arg)
{
    struct config_kw_problems p = {report, arg, 0};
    char *errmsg = NULL;
    int ret = load_file(path, cfg, &p, &errmsg);

    /* What stopped the load before any block was read (the file, its JSON,
     * memory) has not been reported yet. */
    if (ret < 0 && p.errors == 0) {
        report(true, errmsg ? errmsg : strerror(-ret), arg);
        p.errors++;
    }
    free(errmsg);
    return ret < 0 ? -(int)p.errors : 0;
}

int config_load_string(const char *json, struct config *cfg, char **errmsg)
{
    json_error_t jerr;
    json_t *root;

    memset(cfg, 0, sizeof(*cfg));
    if (!json) {
        memprintf(errmsg, "no configuration text");
        return -EINVAL;
    }
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return json_load_error(&jerr, NULL, errmsg);
    return load_json(root, cfg, NULL, errmsg);
}

/* ---- command-line overrides ---- */

int config_set_etcd(struct config *cfg, const char *urls, char **errmsg)
{
    char **list;
    size_t n = 0, count = 1;
    const char *p;
    int ret;

    if (!urls || !urls[0])
        return config_kw_required(errmsg, "etcd", "endpoints");
    for (p = urls; *p; p++)
        if (*p == ',')
            count++;
    if (count > ETCD_ENDPOINTS_MAX)
        return config_kw_error(errmsg, "etcd.endpoints", "must list 1 to %d URLs",
                               ETCD_ENDPOINTS_MAX);
    list = calloc(count, sizeof(char *));
    if (!list)
        return oom(errmsg);
    p = urls;
    for (size_t i = 0; i < count; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        ret = add_etcd_url(list, &n, p, len, i, errmsg);
        if (ret < 0) {
            free_string_list(list, n);
            return ret;
        }
        p += len + 1;
    }
    free_string_list(cfg->etcd_endpoints, cfg->n_etcd_endpoints);
    cfg->etcd_endpoints = list;
    cfg->n_etcd_endpoints = n;
    return 0;
}

int config_set_prefix(struct config *cfg, const char *prefix, char **errmsg)
{
    return config_kw_set(etcd_rows, cfg, "etcd", "prefix", prefix, errmsg);
}

int config_set_runtime_socket(struct config *cfg, const char *addr, char **errmsg)
{
    return config_kw_set(haproxy_rows, cfg, "haproxy", "runtime_socket", addr, errmsg);
}

int config_set_log_level(struct config *cfg, const char *level, char **errmsg)
{
    return config_kw_set(config_kw_root, cfg, "", "log_level", level, errmsg);
}

/* ---- queries ---- */

static const struct {
    const char *path;
    unsigned bit;
} admin_paths[] = {
    {"/", ADMIN_PATH_PAGE},           {"/status", ADMIN_PATH_STATUS},
    {"/metrics", ADMIN_PATH_METRICS}, {"/healthz", ADMIN_PATH_HEALTHZ},
    {"/readyz", ADMIN_PATH_READYZ},
};

unsigned config_admin_path_bit(const char *path)
{
    for (size_t i = 0; i < ARRAY_SIZE(admin_paths); i++)
        if (strcmp(path, admin_paths[i].path) == 0)
            return admin_paths[i].bit;
    return 0;
}

static int service_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct service_conf *)elem)->name);
}

const struct service_conf *config_find_service(const struct config *cfg, const char *name)
{
    if (!cfg || !name || !cfg->services)
        return NULL;
    return bsearch(name, cfg->services, cfg->n_services, sizeof(*cfg->services), service_key_cmp);
}

bool config_balance_is_dynamic(const char *balance)
{
    return balance && in_list(balance, dynamic_balance_names, ARRAY_SIZE(dynamic_balance_names));
}

bool config_balance_is_static(const char *balance)
{
    return balance && (strcmp(balance, "static-rr") == 0 || strcmp(balance, "source") == 0);
}

static const char *weight_problem(const char *balance)
{
    if (config_balance_is_static(balance))
        return "HAProxy cannot change weights at run time with it: etcd weights other than 0 "
               "(drain) are not applied until a reload";
    if (strcmp(balance, "first") == 0)
        return "HAProxy ignores server weights with it: etcd weights have no effect";
    return NULL;
}

unsigned config_weight_warnings(const struct config *cfg, config_report_fn report, void *arg)
{
    const char *why = weight_problem(cfg->defaults.balance);
    bool defaults_warned = why != NULL;
    char *text = NULL;
    unsigned n = 0;

    /* The defaults apply to every service that etcd names and the config
     * does not. */
    if (why) {
        memprintf(&text, "defaults.balance is %s: %s", cfg->defaults.balance, why);
        report(false, text ? text : "out of memory", arg);
        n++;
    }
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct service_conf *sc = &cfg->services[i];

        why = weight_problem(sc->opt.balance);
        if (!why || (defaults_warned && strcmp(sc->opt.balance, cfg->defaults.balance) == 0))
            continue; /* said for the defaults already */
        memprintf(&text, "services.%s.balance is %s: %s", sc->name, sc->opt.balance, why);
        report(false, text ? text : "out of memory", arg);
        n++;
    }
    free(text);
    return n;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    config_kw_release(config_kw_root, cfg);
    memset(cfg, 0, sizeof(*cfg));
}
