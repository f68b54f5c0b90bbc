/* render - the services file HAProxy loads after the base config.
 *
 * Pure rendering to a buffer (writing it out is file.h's job). One backend per
 * service with one server line per slot ("s1".."sN"): a filled slot carries
 * its endpoint's address, port, weight and state, so a reload resets nothing;
 * an empty slot is "0.0.0.0:0 disabled". A service with a listen address also
 * gets a frontend, "fe:<service>" (RENDER_FRONTEND_PREFIX). Everything placed in the file comes
 * from a validated config or validated endpoints; render re-checks names anyway.
 */
#ifndef SLOTSYNC_RENDER_H
#define SLOTSYNC_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/config-t.h>

struct host_route;
struct slot_table;

/* The first line of every services file slotsync renders: what marks the
 * file (and so the backends it declares) as slotsync's (tests/test_render.c
 * checks render_services() writes it). */
#define RENDER_MARKER "# Rendered by slotsync."

struct render_backend {
    const struct service_conf *svc; /* borrowed */
    const struct slot_table *slots; /* borrowed */
    const char *proxy;              /* the proxy it lives in (a spare's), NULL: svc->name */
};

/* Render the services file for backends (in the given order, under their
 * own names), then spare_count(cfg) spare backends (spare.h): free ones
 * empty, and one that a backend's proxy names (bound at run time) with
 * that backend's slots, which then gets no backend of its own; into a new NUL-terminated buffer *out of *outlen bytes (caller frees). Returns 0, or
 * -EINVAL with *errmsg (a name that fails validation), or -ENOMEM. */
int render_services(const struct config *cfg, const struct render_backend *backends, size_t n,
                    char **out, size_t *outlen, char **errmsg);

/* The services file of cfg's configured services alone, every slot empty
 * (what `check` feeds to haproxy -c and `render --offline-ok` writes when
 * etcd cannot be reached), into *out as render_services() does; with map
 * not NULL and an HTTP frontend configured, also the Host map's text (NULL
 * and 0 without a frontend). Caller frees both. 0, -EINVAL or -ENOMEM. */
int render_services_empty(const struct config *cfg, char **out, size_t *outlen, char **map,
                          size_t *maplen, char **errmsg);

/* The routes of the HTTP frontend (cfg->http_bind set): "<service>.<domain>"
 * (to the backend's proxy: its own name or a spare's) for every backend when cfg->http_domain is
 * set, plus each service's extra hosts; sorted by host, a host claimed twice goes to the backend
 * whose name sorts first. *out is a new array (caller frees; NULL when there are none). 0 or
 * -ENOMEM. */
int render_host_routes(const struct config *cfg, const struct render_backend *backends, size_t n,
                       struct host_route **out, size_t *n_out);

/* The map file's text for routes: "host backend\n" lines. Caller frees. */
int render_hosts_map(const struct host_route *routes, size_t n, char **out, size_t *outlen);

/* A backend as a services file render_services() wrote has it: the options
 * it was rendered with ("" where the file has none). */
struct render_file_backend {
    char name[SERVICE_NAME_MAX + 1];
    char mode[8];
    char balance[32];
    char server_options[CONFIG_OPTIONS_MAX];
};

/* The backends of text (len bytes), a services file as render_services()
 * wrote it; for any other text (no RENDER_MARKER first), none. Backends whose
 * name fails endpoint_service_name_valid() are skipped. *out is a new array
 * in file order (caller frees; NULL when *n is 0). 0 or -ENOMEM. Pure. */
int render_parse_backends(const char *text, size_t len, struct render_file_backend **out,
                          size_t *n);

/* Whether fb was rendered with opt's mode, balance and server options. */
bool render_backend_matches(const struct render_file_backend *fb,
                            const struct service_options *opt);

/* `render --offline-ok` when etcd did not answer: out_path (NULL: the
 * services file) is kept when it exists as a regular file (*kept = true),
 * else cfg's empty render (render_services_empty) is written there as
 * file_write_output() writes. Without out_path the Host map, with an HTTP
 * frontend, is written the same way when it does not exist. 0 or a negative
 * errno with *errmsg (caller frees). */
int render_write_offline(const struct config *cfg, const char *out_path, bool *kept, char **errmsg);

/* Whether any frontend slotsync renders reaches svc's backend: its own
 * listen, or the HTTP frontend's Host routing (http mode, a domain or
 * hosts). A backend that is not routed is created all the same, and said
 * so (issue 19). Pure. */
bool render_service_routed(const struct config *cfg, const struct service_conf *svc);

/* The named defaults section that backends created at run time come from
 * (dynback.h): "defaults <DYNBACK_DEFAULTS> from <DYNBACK_BASE_DEFAULTS>"
 * with cfg's defaults' mode and balance, appended to the services file
 * *text (*len bytes, as render_services() made it; reallocated). It goes
 * after every proxy, so it is the defaults of none of them. Only for a
 * base config that declares DYNBACK_BASE_DEFAULTS (HAProxy refuses a
 * "from" it cannot find). 0, or -ENOMEM with *text as it was (it may have
 * moved). */
int render_append_dynamic_defaults(const struct config *cfg, char **text, size_t *len);
/* Whether cfg's haproxy.base_config declares DYNBACK_BASE_DEFAULTS (reads
 * the file; one that cannot be read does not): the services files that
 * "slotsync render" writes then carry the section above. */
bool render_base_declares_dynamic(const struct config *cfg);

#endif
