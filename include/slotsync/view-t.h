/* view-t - HAProxy's side of a slot (view.h has the functions). */
#ifndef SLOTSYNC_VIEW_T_H
#define SLOTSYNC_VIEW_T_H

#include <stdbool.h>
#include <stdint.h>

/* The longest address text view_addr() writes, with its NUL (as
 * INET6_ADDRSTRLEN). */
#define VIEW_ADDR_TEXT 46

enum view_family { VIEW_UNKNOWN = 0, VIEW_IPV4, VIEW_IPV6 };

struct server_view {
    uint8_t addr[16]; /* IPv4 in the first 4 bytes; all zero for an empty slot */
    uint16_t port;    /* 0..65535 */
    uint16_t weight;  /* srv_uweight, 0..256 */
    uint8_t family;   /* enum view_family; VIEW_UNKNOWN: HAProxy's side is not known */
    uint8_t admin;    /* enum server_admin */
    uint8_t op_state; /* 0 stopped, 1 starting, 2 running, 3 stopping */
    uint8_t reserved;
};

#endif
