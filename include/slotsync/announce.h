/* announce - the registration sidekick: keeps one endpoint's key alive in
 * etcd under a lease while the service is healthy (and, with -- CMD, while
 * its child process lives).
 *
 * The pure parts (command line, value, backoff) are exported
 * so that they can be tested without a loop; announce_main() wires them to
 * the loop, the etcd client and the checks.
 */
#ifndef SLOTSYNC_ANNOUNCE_H
#define SLOTSYNC_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slotsync/endpoint.h>
#include <slotsync/tls.h>

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

enum announce_format { ANNOUNCE_FORMAT_JSON = 0, ANNOUNCE_FORMAT_PLAIN };

enum announce_check { ANNOUNCE_CHECK_NONE = 0, ANNOUNCE_CHECK_TCP, ANNOUNCE_CHECK_HTTP };

/* The validated command line. Strings are owned unless marked borrowed. */
struct announce_opts {
    char **etcd_endpoints; /* "http://host:port" URLs */
    size_t n_etcd_endpoints;
    struct tls_conf tls;       /* --cacert, --cert, --key-file */
    const char *user;          /* --user, borrowed from argv; NULL: no auth */
    const char *password_file; /* --password-file, borrowed from argv */
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

/* The value published for ep: {"host":"H","port":P[,"weight":W][,"state":S]}
 * (weight only when with_weight, state only when ep->state is not ready) or,
 * with ANNOUNCE_FORMAT_PLAIN, "H:P" / "[H]:P" (neither weight nor a state
 * other than ready is representable there: -EINVAL). Writes a
 * NUL-terminated string to buf. Returns its length, -ENOSPC if size is too
 * small, or -EINVAL. */
int announce_format_value(const struct endpoint *ep, bool with_weight, enum announce_format format,
                          char *buf, size_t size);

/* Delay in seconds before retry number attempt (0 = first retry): the
 * exponential base * 2^attempt capped at cap, of which the upper half is
 * scaled by r in [0, 1) (jitter), so the result is in [d/2, d). */
double announce_backoff(unsigned attempt, double base, double cap, double r);

/* What a periodic read of the key found, against what announce last put. */
enum announce_key_verdict {
    ANNOUNCE_KEY_OURS = 0,    /* our value under our lease */
    ANNOUNCE_KEY_GONE,        /* deleted by someone else */
    ANNOUNCE_KEY_DETACHED,    /* our value, but under no lease (a put without --lease) */
    ANNOUNCE_KEY_OVERWRITTEN, /* another value, under no lease or under ours */
    ANNOUNCE_KEY_TAKEN,       /* under another live lease: another writer owns it */
};

/* Classify the key as read (present, value of len bytes, lease; value
 * borrowed, may hold NUL bytes) against ours (NUL-terminated) and our_lease. */
enum announce_key_verdict announce_key_classify(bool present, const char *value, size_t len,
                                                int64_t lease, const char *ours, int64_t our_lease);

/* "ours", "gone", "detached", "overwritten", "taken". */
const char *announce_key_verdict_name(enum announce_key_verdict v);

/* Whether a withdrawal deletes the key found holding value (len bytes,
 * borrowed) under lease: only when it is under no lease or under our_lease
 * and names our endpoint (same address and port, whatever its weight or
 * state). A value naming another endpoint, an unreadable value or a key
 * under another lease belongs to someone else and is left alone. */
bool announce_key_deletable(const char *value, size_t len, int64_t lease, int64_t our_lease,
                            const struct endpoint *ours);

/* Entry point for "slotsync announce ...": argv[0] is "announce". Returns the
 * process exit status: 2 for a bad command line, the child's status with
 * -- CMD (128 + signal if it was killed), else 0 after a clean stop on
 * SIGTERM/SIGINT, 1 on a fatal error. SIGUSR1 drains and SIGUSR2 makes the
 * endpoint ready again without stopping. */
int announce_main(int argc, char **argv);

#endif
