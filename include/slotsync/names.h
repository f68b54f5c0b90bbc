/* names - the names slotsync gives HAProxy's proxies and sections, and
 * the rules that tell them apart.
 *
 * Pure (no I/O). A service's backend keeps the service's own name
 * (endpoint_service_name_valid(): [A-Za-z0-9._-]); everything else slotsync
 * names holds a ':', a byte no service name may hold, so it can never share
 * a name with a backend: the frontends ("fe:<service>", "slotsync:http"),
 * the spare backends ("spare:N", spare.h) and the named defaults sections
 * run-time backends come from (dynback.h). render, spare, dynback, plan and
 * backend all use these names; none of them owns the others.
 */
#ifndef SLOTSYNC_NAMES_H
#define SLOTSYNC_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint.h>

/* A service's frontend (its listen address) and the HTTP frontend are named
 * with a ':', a byte no service name may hold (endpoint_service_name_valid()),
 * so that no frontend ever shares a name with a backend: HAProxy 3.3+ refuses
 * a frontend and a backend of the same name ("... is no longer supported as
 * of 3.3"). Spares use ':' the same way ("spare:N"). The backend keeps the
 * service's own name: HAProxy's stats page, logs and metrics name the
 * service plainly in its backend and servers (api/s1). */
#define RENDER_FRONTEND_PREFIX "fe:"
#define RENDER_HTTP_FRONTEND "slotsync:http"
#define RENDER_FRONTEND_NAME_SIZE (sizeof(RENDER_FRONTEND_PREFIX) + SERVICE_NAME_MAX)

/* "fe:<service>" into out (RENDER_FRONTEND_NAME_SIZE bytes). */
void names_frontend(const char *service, char *out);

/* Whether name is a frontend name render_services() writes: "fe:" and a
 * valid service name, or RENDER_HTTP_FRONTEND. */
bool names_frontend_valid(const char *name);

/* ---- spare backends (spare.h) ---- */

#define SPARE_MAX 1024
#define SPARE_PREFIX "spare:"
#define SPARE_NAME_SIZE 16 /* "spare:1023" and its NUL, with room */

/* ---- the named defaults of run-time backends (dynback.h) ---- */

/* The named defaults section the services file ends with: what "add
 * backend ... from" names. ':' is in no service name (endpoint.h), so it
 * cannot collide with a backend slotsync renders or creates. */
#define DYNBACK_DEFAULTS "slotsync:dynamic"
/* The named defaults section of haproxy.base_config the one above inherits
 * from (haproxy/haproxy.cfg declares it). Without it, no run-time backend. */
#define DYNBACK_BASE_DEFAULTS "slotsync:base"

/* Whether a config text (len bytes) declares "defaults <name>" (with or
 * without "from ..."). Section headers start a line; comments are not. */
bool names_defaults_declared(const char *text, size_t len, const char *name);

#endif
