/* config - the JSON configuration file, validated field by field.
 *
 * Every value is untrusted: config_load() checks each one and fails with a
 * message naming the field ("services.api.slots: must be between 1 and
 * 4096"). Unknown keys are errors. Whatever the loaded config holds is safe to
 * place in a rendered HAProxy file.
 */
#ifndef SLOTSYNC_CONFIG_H
#define SLOTSYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint.h>
#include <slotsync/tls.h>

#define CONFIG_SLOTS_MAX 4096
#define CONFIG_OPTIONS_MAX 512 /* server_options length */
#define CONFIG_HOSTS_MAX 32    /* extra host names per service */
#define CONFIG_HOSTNAME_MAX 253
/* http_frontend.domain: short enough that "<service>.<domain>" is a host
 * name for every valid service name (63 + 1 + 189 = 253), so a service from
 * etcd can never make a route too long. */
#define CONFIG_DOMAIN_MAX (CONFIG_HOSTNAME_MAX - SERVICE_NAME_MAX - 1)
#define CONFIG_PATH_MAX 4096 /* file paths, haproxy.hosts_map included */

enum service_mode { MODE_HTTP = 0, MODE_TCP };

/* A listen address: "IPv4:port", "[IPv6]:port", "*:port" or ":port". */
struct listen_addr {
    bool set;
    char host[ENDPOINT_HOST_MAX]; /* "" for any address */
    bool ipv6;
    unsigned short port;
};

/* What a backend is built from. Defaults fill every field a service omits. */
/* ---- the admin endpoint's protection (admin.*, issue 20) ---- */

/* The admin endpoint's paths, as bits of admin_conf.protected_paths. */
#define ADMIN_PATH_PAGE (1u << 0)    /* "/" */
#define ADMIN_PATH_STATUS (1u << 1)  /* "/status" */
#define ADMIN_PATH_METRICS (1u << 2) /* "/metrics" */
#define ADMIN_PATH_HEALTHZ (1u << 3) /* "/healthz" */
#define ADMIN_PATH_READYZ (1u << 4)  /* "/readyz" */
/* By default the probes stay open (a kubelet sends no token). */
#define ADMIN_PATHS_PROTECTED_DEFAULT (ADMIN_PATH_PAGE | ADMIN_PATH_STATUS | ADMIN_PATH_METRICS)

struct admin_conf {
    char *tls_cert_file;      /* admin.tls.cert_file: NULL = plain HTTP */
    char *tls_key_file;       /* admin.tls.key_file, with cert_file */
    char *tls_client_ca_file; /* admin.tls.client_ca_file: NULL = no client certificates */
    char *token_file;         /* admin.token_file: NULL = no bearer token */
    unsigned protected_paths; /* ADMIN_PATH_* bits that need the token / client cert */
};

/* The bit of an admin path ("/metrics"), or 0 if it is none of them. */
unsigned config_admin_path_bit(const char *path);

/* Same admin.tls, admin.token_file and admin.protected_paths. */
bool config_same_admin(const struct admin_conf *a, const struct admin_conf *b);

/* What a backend is built from. Defaults fill every field a service omits. */
struct service_options {
    int slots; /* 1..CONFIG_SLOTS_MAX */
    enum service_mode mode;
    char balance[32];                        /* one of the allowed algorithms */
    char server_options[CONFIG_OPTIONS_MAX]; /* "" or safe tokens, see config.c */
    int slot_growth;                         /* 0 = double, else add this many */
};

struct service_conf {
    char name[SERVICE_NAME_MAX + 1];
    struct service_options opt;
    struct listen_addr listen;
    char **hosts; /* extra Host names routed by the HTTP frontend */
    size_t n_hosts;
};

struct config {
    char **etcd_endpoints; /* "http://host:port" URLs */
    size_t n_etcd_endpoints;
    char *etcd_prefix;        /* starts and ends with '/' */
    struct tls_conf etcd_tls; /* etcd.tls; all NULL when absent */
    char *etcd_username;      /* NULL: no authentication */
    char *etcd_password_file; /* with etcd_username */
    int etcd_transport;       /* etcd.transport: enum etcd_transport (etcd-t.h), default grpc */
    /* etcd.watch_check_interval_s: the watch stall detector's period
     * (etcd_sync_set_check_interval), 1..3600, default 30 */
    int etcd_watch_check_interval_s;

    char *runtime_socket; /* unix path or HOST:PORT */
    char *master_socket;  /* NULL if none */
    char *base_config;    /* NULL if none */
    char *services_file;
    char *reload_command; /* NULL if none */
    char *haproxy_bin;    /* for "haproxy -c"; default "haproxy" (PATH) */
    char *hosts_map;      /* the HTTP frontend's map; default <services_file>.map */
    int min_reload_interval_ms;
    int runtime_timeout_s; /* one exchange on runtime_socket (a batch, a read) */
    /* a large plan: the socket or one reload (bulk.h), and the cost model */
    int bulk_path; /* enum bulk_path */
    int runtime_command_us, reload_server_us;

    struct service_options defaults;
    struct service_conf *services; /* sorted by name */
    size_t n_services;

    struct listen_addr http_bind; /* set = HTTP frontend routing by Host */
    char *http_domain;            /* NULL if none */
    int spare_backends;           /* spare backends in the services file (spare.h) */

    struct listen_addr admin_listen; /* set = the admin HTTP endpoint is on */
    struct admin_conf admin;         /* admin.tls, admin.token_file, ... (issue 20) */

    int resync_interval_s;
    int log_level; /* enum log_level */
    /* A full etcd listing with no valid key empties HAProxy's backends only
     * when this is set; by default such a listing is held back. */
    bool allow_empty_registry;

    /* caps on what etcd can create (catalog.h); 0 = no cap */
    int max_services;              /* services the config does not name */
    int max_endpoints_per_service; /* every service's */

    int log_format; /* enum log_format, "log_format" */
    /* "dns": the hosts file for dnsmasq's addn-hosts; hosts_file NULL = off */
    struct {
        char *hosts_file;      /* "<address> <service>.<domain>" lines */
        char *domain;          /* lower case; default "service.local" */
        char *address;         /* HAProxy's address, an IP literal; default 127.0.0.1 */
        char *reload_pid_file; /* SIGHUP the pid it holds after a write; NULL = none */
    } dns;
};

/* Load and validate path into *cfg (zeroed first). Returns 0, or a negative
 * errno with the reason in *errmsg (caller frees). On failure *cfg holds
 * nothing to free. */
int config_load(const char *path, struct config *cfg, char **errmsg);

/* One problem of a config: an error (the config cannot be used) or a
 * warning. text is borrowed for the call. */
typedef void (*config_report_fn)(void *arg, bool error, const char *text);

/* Like config_load(), but reads on after an error: every block (etcd,
 * haproxy, defaults, each service, http_frontend, the top-level fields, the
 * cross checks) reports its first error through report, so that one run
 * lists every problem. Returns 0 with *cfg loaded, or minus the number of
 * errors reported (then *cfg holds nothing to free). */
int config_load_all(const char *path, struct config *cfg, config_report_fn report, void *arg);

/* Same, from a JSON text (for tests and for reload on SIGHUP). */
int config_load_string(const char *json, struct config *cfg, char **errmsg);

/* Command-line overrides, validated like the file's fields. Each returns 0 or
 * -EINVAL with *errmsg set. value is borrowed. */
int config_set_etcd(struct config *cfg, const char *urls_comma_separated, char **errmsg);
int config_set_prefix(struct config *cfg, const char *prefix, char **errmsg);
int config_set_runtime_socket(struct config *cfg, const char *addr, char **errmsg);
int config_set_log_level(struct config *cfg, const char *level, char **errmsg);

/* Validators shared with the command line and announce. 0 or -EINVAL. */
int config_check_etcd_url(const char *url, char **errmsg);
int config_check_socket_addr(const char *addr, char **errmsg);
/* An etcd key prefix: 1-255 printable characters, no whitespace,
 * starting and ending with '/'. The reason names no field. */
int config_check_prefix(const char *prefix, char **errmsg);
int config_parse_listen(const char *text, struct listen_addr *out, char **errmsg);

/* The config of a named service, or NULL. Borrowed. */
const struct service_conf *config_find_service(const struct config *cfg, const char *name);

/* true if a backend with this balance algorithm accepts "add server" at
 * runtime in HAProxy 2.6 (roundrobin, leastconn, first, random). */
bool config_balance_is_dynamic(const char *balance);

/* true if HAProxy 2.6 refuses run-time weights for this algorithm other than
 * 0% and 100% of the configured one ("static-rr", and "source", which is
 * map-based, i.e. static, as slotsync renders it: no hash-type). */
bool config_balance_is_static(const char *balance);

/* Report one warning per service (and for the defaults) whose algorithm
 * makes etcd weights ineffective: a static one (weights are not sent at run
 * time; 0 still drains) or "first" (HAProxy ignores weights). A warning
 * source of `check`. Returns how many. */
unsigned config_weight_warnings(const struct config *cfg, config_report_fn report, void *arg);

void config_free(struct config *cfg);

/* ---- comparing configs (SIGHUP) ---- */

/* Whether the fields that need a restart (etcd endpoints and prefix,
 * sockets, paths, haproxy binary, reload_command) are the same in a and b. */
bool config_same_restart_fields(const struct config *a, const struct config *b);

/* The fields config_same_restart_fields() compares that differ between nc
 * and oc, as "etcd.endpoints, haproxy.runtime_socket" into buf (cut to
 * size); returns how many differ. */
size_t config_restart_fields_changed(const struct config *nc, const struct config *oc, char *buf,
                                     size_t size);
/* Same http_frontend (bind address and domain): else the services file
 * changes. */
bool config_same_http_frontend(const struct config *a, const struct config *b);
/* Same bind address (both unset counts as the same). */
bool config_same_listen(const struct listen_addr *a, const struct listen_addr *b);
/* Same options that change a rendered backend (mode, balance,
 * server_options, slot_growth); slots is not one of them: a raised count is
 * applied at run time, a lowered one removes nothing. */
bool config_same_options(const struct service_options *a, const struct service_options *b);

#endif
