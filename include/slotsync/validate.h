/* validate - the checks a value from the config file, the command line or
 * announce's options must pass before it is used: etcd URLs, HAProxy
 * socket addresses, listen addresses, etcd key prefixes, host names.
 *
 * Pure: no I/O. Each check returns 0 or -EINVAL; a reason (without a field
 * name: the caller adds the one it read) goes to *errmsg when errmsg is
 * not NULL (caller frees). Every argument is borrowed.
 */
#ifndef SLOTSYNC_VALIDATE_H
#define SLOTSYNC_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

struct listen_addr;

/* "http://HOST:PORT" or "https://HOST:PORT", an optional trailing '/':
 * HOST an IPv4 literal, an [IPv6] literal (no zone) or a host name; at
 * most VALIDATE_URL_MAX bytes. */
#define VALIDATE_URL_MAX 300 /* "https://" + 253-byte host + ":65535/" fits */
int validate_etcd_url(const char *url, char **errmsg);

/* A HAProxy socket: a unix path (it holds a '/') or HOST:PORT with an IPv4
 * literal, an [IPv6] literal or localhost. */
int validate_socket_addr(const char *addr, char **errmsg);

/* An etcd key prefix: 1-255 printable characters, no whitespace,
 * starting and ending with '/'. */
#define VALIDATE_PREFIX_MAX 255
int validate_prefix(const char *prefix, char **errmsg);

/* "IPv4:port", "[IPv6]:port", "*:port" or ":port" into *out (set on
 * success only). */
int validate_listen(const char *text, struct listen_addr *out, char **errmsg);

/* Two set listen addresses on the same port where one is a wildcard or
 * both the same address: HAProxy binds with SO_REUSEPORT, so that would not
 * fail at start but silently split connections between two frontends. */
bool validate_listen_overlap(const struct listen_addr *a, const struct listen_addr *b);

/* An RFC 1123 host name of len bytes: labels of [A-Za-z0-9-], 1-63 bytes,
 * not starting or ending with '-', joined by single dots; at most 253
 * bytes; the last label not all digits (so "999.1.1.1" is no name). */
bool validate_hostname(const char *s, size_t len);

/* validate_hostname() on the string s, lower-cased into out (253 + 1
 * bytes). */
bool validate_hostname_lower(const char *s, char *out);

/* A file path: 1-VALIDATE_PATH_MAX printable ASCII bytes, no whitespace. */
#define VALIDATE_PATH_MAX 4096
int validate_file_path(const char *path, char **errmsg);

/* A command for /bin/sh -c: 1-VALIDATE_COMMAND_MAX printable ASCII bytes,
 * spaces allowed. */
#define VALIDATE_COMMAND_MAX 4096
int validate_command(const char *command, char **errmsg);

/* HAProxy server keywords for every slot: "" or tokens of [A-Za-z0-9._:/@=,+-]
 * separated by single spaces, shorter than CONFIG_OPTIONS_MAX, none of the
 * keywords slotsync manages itself (weight, disabled, ...). */
int validate_server_options(const char *options, char **errmsg);

/* An IPv4 or IPv6 address literal. */
int validate_ip_literal(const char *addr, char **errmsg);

/* Every byte of s (len bytes) in 0x21..0x7e, or 0x20..0x7e with spaces. */
bool validate_printable(const char *s, size_t len, bool spaces);

#endif
