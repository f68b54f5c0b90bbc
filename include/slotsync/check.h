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

#include <slotsync/config.h>

/* Warn when haproxy.base_config does not exist, or the directory of
 * haproxy.services_file (or of haproxy.hosts_map, with an HTTP frontend)
 * does not. Returns the number of warnings. cfg is borrowed. */
unsigned check_paths(const struct config *cfg, config_report_fn report, void *arg);

#endif
