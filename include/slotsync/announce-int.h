/* announce-int.h - the state "slotsync announce" keeps, shared by
 * announce.c (the key: registration, read-back, withdrawal) and
 * announce_run.c (the process around it: signals, child, checks, SIGHUP,
 * setup). Private to those two files; nothing else includes it.
 */
#ifndef SLOTSYNC_ANNOUNCE_INT_H
#define SLOTSYNC_ANNOUNCE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>

#include <slotsync/announce_key-t.h>
#include <slotsync/endpoint-t.h>
#include <slotsync/health-t.h>
#include <slotsync/log-t.h>

struct announce_opts;

struct etcd_call;
struct etcd_client;
struct http_client;

enum reg_op { OP_NONE = 0, OP_GRANT, OP_PUT, OP_KEEPALIVE, OP_REVOKE };

/* Reads and deletes of the key, beside the registration: a periodic verify,
 * and a withdrawal's read and conditional delete. */
enum key_op { KOP_NONE = 0, KOP_VERIFY, KOP_READ, KOP_DELETE };

struct announcer {
    struct ev_loop *loop;
    const struct announce_opts *opt;
    char value[ENDPOINT_VALUE_MAX + 1];       /* ready */
    char drain_value[ENDPOINT_VALUE_MAX + 1]; /* state drain; JSON format only */
    char key_q[2400];                         /* the key, quoted for logs */
    char addr_text[ENDPOINT_HOST_MAX + 8];
    const char *check_target; /* what the check looks at, for logs */
    struct http_client *http;
    struct etcd_client *etcd;

    /* registration: at most one call in flight */
    struct etcd_call *call;
    enum reg_op op;
    ev_tstamp op_sent;
    int64_t lease;           /* 0 = none */
    int64_t lease_ttl;       /* as granted */
    ev_tstamp lease_expires; /* counted from when the last renewal was sent */
    ev_tstamp next_keepalive;
    ev_tstamp retry_at;       /* no call before this (backoff) */
    bool registered;          /* the key is put under lease */
    bool lease_lost;          /* the next grant replaces a lost lease */
    unsigned etcd_failures;   /* consecutive; the backoff attempt */
    const char *withdraw_why; /* reason logged when the revoke completes */
    ev_timer op_timer;        /* bounds the call in flight */
    ev_timer wake_timer;      /* next keepalive or retry */

    /* what is wanted besides health: SIGUSR1/SIGUSR2 and the stop's drain */
    bool drain_wanted;     /* put drain_value (JSON format) */
    bool admin_out;        /* SIGUSR1 with --format plain: withdrawn until SIGUSR2 */
    const char *put_value; /* value or drain_value: the put in flight or last done */
    bool ever_put;         /* a put succeeded: withdrawals clean the key up */
    unsigned put_gen;      /* bumped when a put starts or ends */
    bool stop_draining;    /* SIGTERM/SIGINT with --drain-seconds: waiting */
    int drain_signal;      /* the signal that started that wait */
    const char *drain_why; /* "SIGTERM" or "SIGINT" */
    ev_timer drain_timer;  /* ends that wait */
    ev_signal sig_usr1, sig_usr2;
    ev_signal sig_hup; /* read the TLS files and the password file again */

    /* the key read back: a second call slot, beside the registration's */
    struct etcd_call *kcall;
    enum key_op kop;
    unsigned kcall_gen;                /* put_gen when the verify started */
    ev_timer verify_timer;             /* periodic read of the key */
    int64_t warned_rev;                /* the foreign write last warned about; -1 deleted, 0 none */
    enum announce_key_verdict verdict; /* of the last read */
    bool cleanup_wanted;               /* a withdrawal still has to look for a detached copy */
    int64_t revoked_lease;             /* the lease the withdrawal ended */
    const char *revoke_note;           /* how it ended, for the withdrawn line */
    int64_t cleanup_rev;               /* mod_revision the delete is conditional on */

    /* etcd outages, told as "still unreachable after N s" lines */
    struct log_outage etcd_outage;

    /* health */
    struct health_counter health;
    bool healthy;   /* the verdict; always true without --check */
    int last_check; /* -1 none yet, 0 failed, 1 ok */
    struct health_check check;

    /* child and stop */
    pid_t child;
    bool child_running;
    ev_child child_w;
    ev_signal sig_term, sig_int;
    bool stopping;
    bool withdrawn;      /* the final revoke is over (or given up) */
    int stop_signal;     /* forwarded to the child; 0 if it exited by itself */
    ev_timer stop_timer; /* bounds the final revoke */
    int exit_status;
};

/* ---- announce.c, for announce_run.c ---- */

/* Start the one etcd call that brings the key closer to what is wanted,
 * or arm the timer for the next keepalive or retry. */
void announce__reg_step(struct announcer *a);
/* Begin the stop: sig is the signal to pass to the child once withdrawn
 * (0: none, the child exited); why is a static string. */
void announce__stop_begin(struct announcer *a, int sig, const char *why);
/* Stop the health checks (no more results). */
void announce__checks_stop(struct announcer *a);
/* How long one etcd call may take before it is abandoned. */
double announce__op_timeout(const struct announcer *a);
/* Initialise the registration's timers (call, wake-up, stop, read-back). */
void announce__timers_init(struct announcer *a);
/* Cancel the etcd calls in flight (registration and read-back), without
 * their callbacks. */
void announce__calls_cancel(struct announcer *a);

#endif
