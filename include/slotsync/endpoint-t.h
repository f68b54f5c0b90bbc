/* endpoint-t - an endpoint: host, port, weight, state (endpoint.h has the functions). */
#ifndef SLOTSYNC_ENDPOINT_T_H
#define SLOTSYNC_ENDPOINT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ENDPOINT_HOST_MAX 46 /* INET6_ADDRSTRLEN */
#define SERVICE_NAME_MAX 63
#define INSTANCE_NAME_MAX 255
#define ENDPOINT_VALUE_MAX 1024 /* longer values are rejected unparsed */
#define ENDPOINT_DEFAULT_WEIGHT 1
#define ENDPOINT_WEIGHT_MAX 256

enum endpoint_state { ENDPOINT_READY = 0, ENDPOINT_DRAIN, ENDPOINT_MAINT };

struct endpoint {
    char host[ENDPOINT_HOST_MAX]; /* canonical IPv4/IPv6 literal, no brackets */
    bool ipv6;
    unsigned short port;   /* 1..65535 */
    unsigned short weight; /* 0..256 */
    enum endpoint_state state;
};

#endif
