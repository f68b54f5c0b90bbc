/* admin-t - the admin endpoint's callbacks (admin.h has the functions). */
#ifndef SLOTSYNC_ADMIN_T_H
#define SLOTSYNC_ADMIN_T_H

#include <stdbool.h>
#include <jansson.h>

struct metrics;

struct admin_ops {
    /* Ready for traffic: why (static text) says what is missing when not. */
    bool (*ready)(const char **why, void *arg);
    /* Fill *m with a snapshot; borrowed pointers in it stay valid until the
     * loop runs again. */
    void (*metrics)(struct metrics *m, void *arg);
    /* The /status document from HAProxy's two replies (borrowed). A new
     * reference, or NULL with *errmsg. */
    json_t *(*status)(const char *state_text, const char *stat_text, char **errmsg, void *arg);
    /* While ready: what /readyz's body adds (e.g. that etcd cannot be read
     * and the last known state is served) into buf, "" for nothing.
     * Optional. */
    void (*ready_note)(char *buf, size_t size, void *arg);
};

#endif
