/* names-t - the prefixes and sizes of the names slotsync gives proxies and sections (names.h has
 * the functions). */
#ifndef SLOTSYNC_NAMES_T_H
#define SLOTSYNC_NAMES_T_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/endpoint-t.h>

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

#define SPARE_MAX 1024
#define SPARE_PREFIX "spare:"
#define SPARE_NAME_SIZE 16 /* "spare:1023" and its NUL, with room */

/* The named defaults section the services file ends with: what "add
 * backend ... from" names. ':' is in no service name (endpoint.h), so it
 * cannot collide with a backend slotsync renders or creates. */
#define DYNBACK_DEFAULTS "slotsync:dynamic"
/* The named defaults section of haproxy.base_config the one above inherits
 * from (haproxy/haproxy.cfg declares it). Without it, no run-time backend. */
#define DYNBACK_BASE_DEFAULTS "slotsync:base"

#endif
