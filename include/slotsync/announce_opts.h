/* announce_opts - the command line of "slotsync announce" (pure).
 *
 * Parsed by hand (no getopt: no global state, nothing after "--" is
 * permuted, every error names its option) and validated with the same
 * checks as the daemon's config: etcd URLs and prefix (config.h), the key
 * and the address (endpoint.h), TLS files (tls.h). What announce will
 * publish is formatted and parsed back here, so a value the daemon would
 * refuse is refused at the command line.
 */
#ifndef SLOTSYNC_ANNOUNCE_OPTS_H
#define SLOTSYNC_ANNOUNCE_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/announce_value-t.h>
#include <slotsync/endpoint-t.h>
#include <slotsync/tls-t.h>

#define ANNOUNCE_DEFAULT_PREFIX "/services/"
#define ANNOUNCE_DEFAULT_TTL 10
#define ANNOUNCE_TTL_MIN 2
#define ANNOUNCE_TTL_MAX 3600
#define ANNOUNCE_DEFAULT_INTERVAL 2.0
#define ANNOUNCE_INTERVAL_MIN 0.1
#define ANNOUNCE_INTERVAL_MAX 3600.0
#define ANNOUNCE_DEFAULT_RISE 2
#define ANNOUNCE_DEFAULT_FALL 3
#define ANNOUNCE_RISE_FALL_MAX 100
#define ANNOUNCE_ETCD_MAX 16 /* --etcd endpoints */
#define ANNOUNCE_CHECK_URL_MAX 1024
#define ANNOUNCE_DRAIN_MAX 3600.0 /* --drain-seconds */

enum announce_check { ANNOUNCE_CHECK_NONE = 0, ANNOUNCE_CHECK_TCP, ANNOUNCE_CHECK_HTTP };

/* The validated command line. Strings are owned unless marked borrowed. */
struct announce_opts {
    char **etcd_endpoints; /* "http://host:port" URLs */
    size_t n_etcd_endpoints;
    struct tls_conf tls;       /* --cacert, --cert, --key-file */
    const char *user;          /* --user, borrowed from argv; NULL: no auth */
    const char *password_file; /* --password-file, borrowed from argv */
    int etcd_transport;        /* --etcd-transport: enum etcd_transport, default grpc */
    char *prefix;              /* starts and ends with '/' */
    const char *key;           /* borrowed from argv; parses under prefix */
    struct endpoint addr;      /* host and port from --addr; weight set when weight_set */
    bool weight_set;
    int ttl_s; /* ANNOUNCE_TTL_MIN..ANNOUNCE_TTL_MAX */
    enum announce_format format;
    enum announce_check check;
    char *check_url; /* ANNOUNCE_CHECK_HTTP only */
    double check_interval_s;
    int rise, fall; /* 1..ANNOUNCE_RISE_FALL_MAX */
    int log_level;  /* enum log_level */
    double drain_s; /* --drain-seconds: 0..ANNOUNCE_DRAIN_MAX, JSON format only */
    char **command; /* borrowed from argv, NULL-terminated; NULL = no child */
    bool help;      /* --help was given: nothing else is filled in */
};

/* Parse and validate argv (argv[0] is "announce", not looked at). Fills *out
 * (zeroed first) with defaults for what is not given. Returns 0, or -EINVAL
 * with one message naming the option in *errmsg (caller frees), or -ENOMEM.
 * On failure *out holds nothing to free. The result borrows argv. Free with
 * announce_opts_free(). */
int announce_parse_args(int argc, char **argv, struct announce_opts *out, char **errmsg);
void announce_opts_free(struct announce_opts *opts);

/* The usage text of "slotsync announce". */
const char *announce_usage(void);

#endif
