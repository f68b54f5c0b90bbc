/* dnshosts - the optional hosts file ("dns" in the config) that maps
 * "<service>.<domain>" to HAProxy's address for every configured and every
 * discovered service, for dnsmasq's addn-hosts (or hostsdir), Paz-style.
 *
 * dnshosts_render() is pure: names in, file text out. A struct dnshosts
 * keeps what it last wrote and rewrites the file (atomically) only when the
 * text changes, then sends SIGHUP to the pid in dns.reload_pid_file if one
 * is configured. A failed write is retried with a capped, jittered backoff.
 */
#ifndef SLOTSYNC_DNSHOSTS_H
#define SLOTSYNC_DNSHOSTS_H

#include <slotsync/dnshosts-t.h>

struct config;

/* true when name, lower-cased, is a host name label sequence that can go in
 * a hosts file ([a-z0-9-] labels separated by dots, no label empty or
 * starting or ending with '-'); the lower-cased name goes to out (size >=
 * SERVICE_NAME_MAX + 1). */
bool dnshosts_name_ok(const char *name, char *out);

/* The hosts file for names (n of them, any order, duplicates allowed): the
 * marker line, then "<address> <name>.<domain>" per distinct usable name,
 * sorted. Names that cannot be host names are left out and counted in
 * *skipped. *out is new (caller frees). 0 or -ENOMEM. */
int dnshosts_render(const char *const *names, size_t n, const char *domain, const char *address,
                    char **out, size_t *outlen, size_t *skipped);

/* A hash of a set of names, for dnshosts_due(): FNV-1a over each name,
 * summed (so the order does not matter). */
unsigned long long dnshosts_hash(const char *const *names, size_t n);

/* Cheap: true when the names (by their hash), the config's dns block or a
 * due retry may need a write: then build the names and call
 * dnshosts_update(). */
bool dnshosts_due(const struct dnshosts *d, const struct config *cfg, unsigned long long hash,
                  double now);

/* The services are now names (n of them) at now (seconds, monotonic): write
 * cfg->dns.hosts_file if its text changed (or a failed write's retry is
 * due), then SIGHUP dns.reload_pid_file's pid. Without a dns block, nothing
 * happens. cfg and names are borrowed. */
void dnshosts_update(struct dnshosts *d, const struct config *cfg, const char *const *names,
                     size_t n, double now);

/* Free what d holds; d is zeroed. */
void dnshosts_clear(struct dnshosts *d);

#endif
