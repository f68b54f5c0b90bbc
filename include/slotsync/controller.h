/* controller - the daemon: etcd sync -> catalog -> slots -> plan -> runtime.
 *
 * Owns the loop and every module instance. HAProxy is never started or owned
 * here: the controller attaches to its runtime socket, learns the slots each
 * backend has from "show servers state", and converges them to the catalog.
 * Nothing is sent to HAProxy before the first complete etcd listing, so a
 * restart of slotsync never empties a backend.
 */
#ifndef SLOTSYNC_CONTROLLER_H
#define SLOTSYNC_CONTROLLER_H

struct config;

/* Run until SIGTERM or SIGINT. cfg is borrowed and must stay valid. On SIGHUP
 * load_config (may be NULL) fills a new config the same way main built cfg;
 * the controller owns what it loads. Returns 0 after a clean stop, or a
 * negative errno with *errmsg when it cannot start. */
int controller_run(const struct config *cfg,
                   int (*load_config)(struct config *out, char **errmsg, void *arg), void *arg,
                   char **errmsg);

/* List etcd once, render the services file to out_path (NULL: the config's
 * services_file) and return. Fails with -ETIMEDOUT when etcd does not answer
 * within timeout_s. */
int controller_render(const struct config *cfg, const char *out_path, double timeout_s,
                      char **errmsg);

#endif
