/* runtime-t.h - what HAProxy says a server looks like (types only). */
#ifndef SLOTSYNC_RUNTIME_T_H
#define SLOTSYNC_RUNTIME_T_H

#include <stdbool.h>

#define HAPROXY_NAME_MAX 64     /* backend/server names we accept from the socket */
#define RUNTIME_MAP_KEY_MAX 253 /* a "show map" key: a host name */
#define RUNTIME_MAP_VALUE_MAX HAPROXY_NAME_MAX

/* The longest line slotsync writes to HAProxy's CLI, its newline included.
 * From 3.1 the CLI refuses a line longer than its buffer (tune.bufsize, 16384
 * bytes by default) as a whole ("The command line is too big for the buffer
 * size"), or resets the connection, where 2.6 and 3.0 read a line of any
 * length. A batch is therefore cut into lines of at most this size, one
 * connection each (the CLI runs one line per connection). A command is never
 * cut: PLAN_CMD_MAX + 1 fits (plan.c checks it at compile time). */
#define RUNTIME_LINE_MAX 12288

/* srv_admin_state bits, named and valued as HAProxy's enum srv_admin
 * (include/haproxy/server-t.h, HAProxy 2.6). */
#define SRV_ADMF_FMAINT 0x01 /* forced into maintenance */
#define SRV_ADMF_IMAINT 0x02 /* maintenance inherited from a tracked server */
#define SRV_ADMF_CMAINT 0x04 /* maintenance from the configuration ("disabled") */
#define SRV_ADMF_FDRAIN 0x08 /* forced into drain */
#define SRV_ADMF_IDRAIN 0x10 /* drain inherited from a tracked server */
#define SRV_ADMF_RMAINT 0x20 /* down after an address resolution failure */
#define SRV_ADMF_HMAINT 0x40 /* FQDN set from the socket */
/* HAProxy's masks: any maintenance (CMAINT is not in it), any drain */
#define SRV_ADMF_MAINT (SRV_ADMF_FMAINT | SRV_ADMF_IMAINT | SRV_ADMF_RMAINT)
#define SRV_ADMF_DRAIN (SRV_ADMF_FDRAIN | SRV_ADMF_IDRAIN)

/* The admin state slotsync cares about, folded from srv_admin_state bits:
 * any of SRV_ADMF_MAINT is maint, else any of SRV_ADMF_DRAIN is drain, else
 * ready. CMAINT ("disabled" in the config) alone is not maint once a runtime
 * "state ready" has cleared FMAINT. */
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
