/* dynback - new backends created at run time (HAProxy 3.4+): when slotsync
 * may, and what a reply means.
 *
 * Pure (no I/O). HAProxy 3.4 can create a backend from a named defaults
 * section on the runtime CLI ("add backend NAME from DEFAULTS mode http"),
 * and delete one ("del backend NAME", once it is unpublished and has no
 * server left). slotsync uses that for a new HTTP service routed by Host:
 * its own backend at once, its slots added with "add server", no spare
 * and no reload. The services file carries the named defaults those
 * backends come from (DYNBACK_DEFAULTS, rendered after every proxy, "from"
 * the base config's DYNBACK_BASE_DEFAULTS), so they get the base config's
 * settings and slotsync's balance. The capability is read from HAProxy
 * ("show info"'s Version line), never guessed (docs/DESIGN.md, "New
 * backends at run time").
 */
#ifndef SLOTSYNC_DYNBACK_H
#define SLOTSYNC_DYNBACK_H

#include <slotsync/dynback-t.h>

struct backend;
struct config;

/* The Version line of a "show info" reply (len bytes): "Version: " then
 * MAJOR.MINOR, optionally .PATCH and a suffix that starts with '-' or '+'
 * or '~'. 0, or -EPROTO (no such line, or one that does not read so). */
int dynback_parse_version(const char *text, size_t len, struct haproxy_version *out);

/* Whether v has "add backend" / "del backend" (3.4 or later). */
bool dynback_version_ok(const struct haproxy_version *v);

/* Whether cfg routes new services by Host into backends from its defaults:
 * an HTTP frontend with a domain, HTTP defaults with a dynamic algorithm
 * (a backend from DYNBACK_DEFAULTS takes "add server" only then). */
bool dynback_config_ok(const struct config *cfg);

/* Whether a new service may get a backend at run time now. */
bool dynback_usable(const struct dynback_state *s, const struct config *cfg);

/* Whether b, a service HAProxy runs no backend for, can get one at run
 * time: built from the defaults (not in the config file), HTTP, without a
 * listen address (a frontend would need a reload), not in a spare. */
bool dynback_fits(const struct backend *b);

/* Whether b, whose service has no endpoint left, is removed from HAProxy
 * at run time ("del backend"): it fits (above), slotsync owns it and
 * HAProxy runs it in its own proxy. */
bool dynback_removable(const struct backend *b, size_t endpoints);

enum dynback_reply dynback_add_reply(const char *reply);

/* Whether reply is the success of "del backend": its last line is
 * "Backend deleted." (3.4 prints the notices queued before it first). */
bool dynback_deleted_reply(const char *reply);

#endif
