/* routes-t.h - a Host route of the HTTP frontend (types only).
 *
 * What render (the Host map), reply (the map HAProxy runs), spare (the
 * bindings adopted from it), plan (the map diff) and backend (the routes
 * of the table) pass to each other.
 */
#ifndef SLOTSYNC_ROUTES_T_H
#define SLOTSYNC_ROUTES_T_H

#include <slotsync/config-t.h>

/* One Host name routed to a backend by the HTTP frontend. */
struct host_route {
    char host[CONFIG_HOSTNAME_MAX + 1]; /* lower case */
    char backend[SERVICE_NAME_MAX + 1];
};

#endif
