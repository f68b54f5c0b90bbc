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

#include <slotsync/names-t.h>

/* "fe:<service>" into out (RENDER_FRONTEND_NAME_SIZE bytes). */
void names_frontend(const char *service, char *out);

/* Whether name is a frontend name render_services() writes: "fe:" and a
 * valid service name, or RENDER_HTTP_FRONTEND. */
bool names_frontend_valid(const char *name);

/* ---- spare backends (spare.h) ---- */

/* ---- the named defaults of run-time backends (dynback.h) ---- */

/* Whether a config text (len bytes) declares "defaults <name>" (with or
 * without "from ..."). Section headers start a line; comments are not. */
bool names_defaults_declared(const char *text, size_t len, const char *name);

#endif
