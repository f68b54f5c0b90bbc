/* table-t - the backend table and name ownership (table.h has the functions). */
#ifndef SLOTSYNC_TABLE_T_H
#define SLOTSYNC_TABLE_T_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/backend-t.h>

struct table {
    const struct config *cfg; /* borrowed: defaults, etcd_prefix, routing */
    struct backend **v;       /* owned, sorted by name */
    size_t n;
    bool need_proxies;    /* the daemon: an etcd-only service waits for "show backend" */
    struct names owned;   /* backends of the services file HAProxy runs */
    struct names base_be; /* backend/listen names of base_config */
    struct names base_fe; /* frontend/listen names of base_config */
    struct names proxies; /* every backend HAProxy listed at the last resync */
    bool proxies_known;   /* proxies holds a "show backend" reply */
    unsigned long long refused_services;
};

#endif
