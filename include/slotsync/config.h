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

#include <slotsync/config-t.h>

/* The bit of an admin path ("/metrics"), or 0 if it is none of them. */
unsigned config_admin_path_bit(const char *path);

/* Same admin.tls, admin.token_file and admin.protected_paths. */
bool config_same_admin(const struct admin_conf *a, const struct admin_conf *b);

/* Load and validate path into *cfg (zeroed first). Returns 0, or a negative
 * errno with the reason in *errmsg (caller frees). On failure *cfg holds
 * nothing to free. */
int config_load(const char *path, struct config *cfg, char **errmsg);

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

/* The validators shared with the command line and announce (etcd URLs,
 * sockets, prefixes, listen addresses, host names) are validate.h's. */

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

/* ---- comparing configs (SIGHUP): config_same.c, from each field's SIGHUP
 * class in the keyword tables (config_kw.h) ---- */

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
