/* dynback-t - backends added at run time: their state (dynback.h has the functions). */
#ifndef SLOTSYNC_DYNBACK_T_H
#define SLOTSYNC_DYNBACK_T_H

#include <stdbool.h>
#include <stddef.h>

/* The first version with "add backend" (without experimental mode). */
#define DYNBACK_MIN_MAJOR 3
#define DYNBACK_MIN_MINOR 4

/* HAProxy's version as "show info" says it ("Version: 3.4.7-1"). */
struct haproxy_version {
    unsigned major, minor, patch;
};

/* What the owner knows, and the decision it takes from it. */
struct dynback_state {
    bool version_known; /* "show info" was read from this HAProxy */
    struct haproxy_version version;
    bool base_declares;        /* base_config declares DYNBACK_BASE_DEFAULTS */
    bool running_has_defaults; /* false once HAProxy said it has no DYNBACK_DEFAULTS */
};

/* What HAProxy's answer to "add backend" means. */
enum dynback_reply {
    DYNBACK_CREATED,        /* "New backend registered." */
    DYNBACK_EXISTS,         /* the name is taken: it runs already (read it) */
    DYNBACK_NO_DEFAULTS,    /* HAProxy runs no DYNBACK_DEFAULTS (an older file) */
    DYNBACK_NO_DYNAMIC_SRV, /* created, but it takes no "add server" */
    DYNBACK_REFUSED,        /* anything else */
};

#endif
