/* config-t.h - the configuration's types and limits (types only).
 *
 * What a loaded config holds (struct config, a service's options, the admin
 * endpoint's protection) apart from the functions that load and compare it
 * (config.h), so that a header which only passes a config along includes
 * this one. Every field's rule is config.c's.
 */
#ifndef SLOTSYNC_CONFIG_T_H
#define SLOTSYNC_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint-t.h>
#include <slotsync/tls-t.h>

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

/* One problem of a config: an error (the config cannot be used) or a
 * warning. text is borrowed for the call. */
typedef void (*config_report_fn)(bool error, const char *text, void *arg);

#endif
