/* endpoint - the pure rules for what an etcd key and value may be.
 *
 * Key layout: <prefix><service>/<instance>. The service is the first segment
 * after the prefix ([A-Za-z0-9._-]{1,63}); the instance is the rest (it may
 * contain '/'): 1 to 255 printable ASCII bytes, no whitespace.
 *
 * Value: "host:port", "[ipv6]:port", or JSON
 * {"host": "10.0.0.5", "port": 8080, "weight": 10, "state": "ready|drain|maint"}
 * where host is an IPv4 or IPv6 literal, port 1-65535, weight 0-256 (default
 * ENDPOINT_DEFAULT_WEIGHT) and state defaults to ready. Other JSON fields are
 * accepted and reported (endpoint_parse_value_unknown). Anything else is
 * rejected. A parsed endpoint only holds canonical text (inet_ntop form), so
 * it is safe to place in a runtime command or a rendered file.
 */
#ifndef SLOTSYNC_ENDPOINT_H
#define SLOTSYNC_ENDPOINT_H

#include <slotsync/endpoint-t.h>

/* Parse a value of len bytes (not NUL-terminated, may contain NUL bytes).
 * Returns 0 and fills *ep, or -EINVAL with the reason in *errmsg (optional,
 * caller frees; the reason never echoes the raw value). */
int endpoint_parse_value(const char *val, size_t len, struct endpoint *ep, char **errmsg);

/* The same, and the JSON form's unknown fields (accepted, for forward
 * compatibility): their names escaped with log_quote, each in double quotes,
 * joined by ", " into unknown (unknown_size bytes; "" when there are none,
 * a cut ends with "..."). unknown may be NULL. */
int endpoint_parse_value_unknown(const char *val, size_t len, struct endpoint *ep, char *unknown,
                                 size_t unknown_size, char **errmsg);

/* Split a key of keylen bytes under prefix into service and instance, copied
 * NUL-terminated into the caller's buffers (SERVICE_NAME_MAX + 1 and
 * INSTANCE_NAME_MAX + 1 bytes). Returns 0, or -EINVAL with the reason in
 * *errmsg (optional, caller frees). */
int endpoint_parse_key(const char *prefix, const char *key, size_t keylen, char *service,
                       char *instance, char **errmsg);

/* true if name (NUL-terminated) is a valid service name. */
bool endpoint_service_name_valid(const char *name);

/* Parse "IPv4:port", "[IPv6]:port" (port 1-65535) into host/port/ipv6 of ep,
 * leaving weight and state alone. Returns 0 or -EINVAL. */
int endpoint_parse_hostport(const char *text, size_t len, struct endpoint *ep);

/* Parse an IPv4 or IPv6 literal (NUL-terminated) into canonical text in out
 * (ENDPOINT_HOST_MAX bytes). Returns 0 and sets *ipv6, or -EINVAL. */
int endpoint_parse_host(const char *text, char *out, bool *ipv6);

/* A decimal port of len bytes: 1-65535, digits only, no sign, no leading
 * zero. 0 and *port (port may be NULL), or -EINVAL with the reason in
 * *errmsg (may be NULL). The one port rule of config, announce and keys. */
int endpoint_parse_port(const char *s, size_t len, unsigned short *port, char **errmsg);

/* The socket address of IP literal host (IPv6 without brackets when ipv6)
 * and port, into *sa and *len. 0 or -EINVAL (not a literal of that family).
 * The one builder of announce's checks and the runtime socket. */
int endpoint_sockaddr(const char *host, bool ipv6, unsigned short port, struct sockaddr_storage *sa,
                      socklen_t *len);

/* "host:port" or "[host]:port" into buf. Returns snprintf's result. */
int endpoint_format(const struct endpoint *ep, char *buf, size_t size);

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b);

/* "ready", "drain", "maint". */
const char *endpoint_state_name(enum endpoint_state state);
/* Returns the state or -1. */
int endpoint_state_parse(const char *name);

#endif
