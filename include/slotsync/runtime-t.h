/* runtime-t.h - what HAProxy says a server looks like (types only). */
#ifndef SLOTSYNC_RUNTIME_T_H
#define SLOTSYNC_RUNTIME_T_H

#include <stdbool.h>

#define HAPROXY_NAME_MAX 64     /* backend/server names we accept from the socket */
#define RUNTIME_MAP_KEY_MAX 253 /* a "show map" key: a host name */
#define RUNTIME_MAP_VALUE_MAX HAPROXY_NAME_MAX

/* The admin state slotsync cares about, folded from srv_admin_state bits:
 * any of FMAINT|IMAINT|RMAINT (0x23) is maint, else FDRAIN|IDRAIN (0x18) is
 * drain, else ready. CMAINT (0x04, "disabled" in the config) alone is not
 * maint once a runtime "state ready" has cleared FMAINT. */
enum server_admin { SERVER_READY = 0, SERVER_DRAIN, SERVER_MAINT };

/* One row of "show servers state", validated. */
struct server_state {
    char backend[HAPROXY_NAME_MAX + 1];
    char server[HAPROXY_NAME_MAX + 1];
    int backend_id;
    int server_id;
    char addr[46]; /* canonical IP literal; "0.0.0.0" for an empty slot */
    unsigned port; /* 0..65535 */
    int op_state;  /* 0 stopped, 1 starting, 2 running, 3 stopping */
    unsigned admin_bits;
    enum server_admin admin;
    int weight; /* srv_uweight, 0..256 */
};

#endif
