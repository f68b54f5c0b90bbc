/* check - what `slotsync check` adds to loading a config: warnings about
 * the machine it is checked on (paths that do not exist yet).
 *
 * A warning does not make the config unusable: the file may be checked on
 * another machine than the one it runs on, or before the directories are
 * made. Each source reports through config.h's config_report_fn, one
 * problem per call.
 */
#ifndef SLOTSYNC_CHECK_H
#define SLOTSYNC_CHECK_H

#include <stdbool.h>

#include <slotsync/config-t.h>

/* Warn when haproxy.base_config does not exist, or the directory of
 * haproxy.services_file (or of haproxy.hosts_map, with an HTTP frontend)
 * does not. Returns the number of warnings. cfg is borrowed. */
unsigned check_paths(const struct config *cfg, config_report_fn report, void *arg);

/* An error for each proxy haproxy.base_config declares with the name of a
 * spare backend cfg renders (spare.h): HAProxy would refuse the pair, and
 * slotsync never binds a service to a spare whose name base_config holds.
 * Returns the number of errors. */
unsigned check_spares(const struct config *cfg, config_report_fn report, void *arg);

/* Render the services file from cfg alone (every slot empty, no etcd) into
 * a temporary directory and run "<haproxy.haproxy_bin> -c -f <base_config>
 * -f <render>" on it, as a reload would. Each [ALERT] line of HAProxy's is
 * reported as an error and each [WARNING] as a warning, HAProxy's own text
 * with the temporary path replaced by haproxy.services_file; a failure with
 * no such line is one error with the exit status. HAProxy not installed (or
 * a base_config that does not exist, already warned about) is a warning and
 * nothing is run. Waits at most CHECK_HAPROXY_TIMEOUT_S for HAProxy. Returns
 * the number of problems reported. */
#define CHECK_HAPROXY_TIMEOUT_S 30
unsigned check_haproxy(const struct config *cfg, config_report_fn report, void *arg);

/* The config field line (1-based) of rendered (cfg's render) came from:
 * "defaults.server_options" for a default-server line a service inherits,
 * "services.web.server_options" for one of its own, ".balance", ".mode",
 * "services.web.listen" for its frontend, "http_frontend.bind"; into buf.
 * NULL for a line no field produced. Pure. */
const char *check_field_of_line(const struct config *cfg, const char *rendered, unsigned line,
                                char *buf, size_t size);

/* HAProxy's -c output (text, modified in place) as problems: one per
 * distinct [ALERT] (error) or [WARNING] (warning), named by the field its
 * line came from, with the number of rendered proxies that repeat it; tmp
 * (the path HAProxy was given) shown as shown_as. Returns the number
 * reported. Pure. */
unsigned check_haproxy_report(const struct config *cfg, const char *rendered, char *text,
                              const char *tmp, const char *shown_as, config_report_fn report,
                              void *arg);

/* This machine as HAProxy would find it: the hard RLIMIT_NOFILE and
 * fs.nr_open, whether the hard limit may be raised (CAP_SYS_RESOURCE), and
 * the CPUs online (HAProxy's default thread count). */
struct check_fd_machine {
    unsigned long hard, nr_open;
    bool can_raise;
    long cpus;
};
void check_fd_machine_read(struct check_fd_machine *m);

/* A warning when the servers slotsync renders (cfg's render with every
 * slot empty, or the services file on disk when it holds more), with
 * haproxy.base_config's own servers, listeners and maxconn, need more
 * descriptors than HAProxy can get on m (hafd.h's model; fd-hard-limit
 * in base_config caps it), saying how to raise the limit. Returns the
 * number of warnings (0 or 1). check_fds() reads this machine. */
unsigned check_fds_on(const struct config *cfg, const struct check_fd_machine *m,
                      config_report_fn report, void *arg);
unsigned check_fds(const struct config *cfg, config_report_fn report, void *arg);

#endif
