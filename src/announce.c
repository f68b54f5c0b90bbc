/* announce - the registration sidekick.
 *
 * "slotsync announce" keeps one key, <prefix><service>/<instance>, in etcd
 * while the endpoint it names is healthy: it grants a lease, puts the key
 * under it and renews the lease every TTL/3. Whatever happens to announce
 * (crash, SIGKILL, host lost), the key goes away within the TTL, because
 * nothing renews the lease any more.
 *
 * Withdrawal revokes the lease first: one request removes the key and ends
 * the renewals, and if that request fails (etcd down) the lease simply
 * expires since nobody keeps it alive. Then it reads the key back, because
 * a put by someone else (an operator's etcdctl put) detaches the key from
 * the lease and it would stay forever: a key under no lease that still
 * names our endpoint is deleted, conditional on the revision read; one
 * under another lease or naming another endpoint belongs to someone else
 * and is left, with a line saying so.
 *
 * While registered, the key is read back every TTL/3 (1-10 s; a second call
 * slot beside the registration's): a foreign write is logged at warn once
 * and not undone, unless it only lost the lease (same bytes), which is put
 * back under it. SIGUSR1/SIGUSR2 put our (drain/ready) value back.
 *
 * Drain: the value with "state":"drain", put under the same lease, on
 * SIGUSR1 and, with --drain-seconds, for that long before a stop.
 *
 * Everything runs on the default libev loop (ev_child needs it): the etcd
 * calls and HTTP checks go through libcurl on that loop, a TCP check is a
 * non-blocking connect watched by an ev_io, the child is watched by an
 * ev_child. At most one etcd call is in flight; reg_step() looks at what is
 * wanted (healthy or not, stopping or not) and what is (lease, key put) and
 * starts the one call that brings them closer, or arms a timer for the next
 * keepalive or retry.
 */
#include <slotsync/announce.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include <slotsync/announce_key.h>
#include <slotsync/announce_value.h>
#include <slotsync/clock.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/health.h>
#include <slotsync/http.h>
#include <slotsync/secret.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/timeouts.h>

extern char **environ;

#define MOD "announce"

/* Retry delays after a failed etcd call: 0.25 s doubling up to 5 s. The cap
 * bounds how long a key stays away after etcd comes back. */
#define RETRY_BASE_S 0.25
#define RETRY_CAP_S 5.0

/* ---- backoff (pure) ---- */

double announce_backoff(unsigned attempt, double base, double cap, double r)
{
    double d = base;

    for (unsigned i = 0; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (!(r >= 0) || r >= 1)
        r = 0;
    return d / 2 + d / 2 * r;
}

/* ---- the sidekick on the loop ---- */

enum reg_op { OP_NONE = 0, OP_GRANT, OP_PUT, OP_KEEPALIVE, OP_REVOKE };

/* Reads and deletes of the key, beside the registration: a periodic verify,
 * and a withdrawal's read and conditional delete. */
enum key_op { KOP_NONE = 0, KOP_VERIFY, KOP_READ, KOP_DELETE };

static const char *const op_names[] = {
    [OP_NONE] = "none",
    [OP_GRANT] = "lease grant",
    [OP_PUT] = "put",
    [OP_KEEPALIVE] = "lease keepalive",
    [OP_REVOKE] = "lease revoke",
};

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

static void reg_step(struct announcer *a);
static void stop_step(struct announcer *a);
static void stop_begin(struct announcer *a, int sig, const char *why);

/* Lease IDs are logged in hex, as etcdctl prints them. */
static unsigned long long lease_hex(int64_t lease)
{
    return (unsigned long long)lease;
}

static void lease_forget(struct announcer *a)
{
    a->lease = 0;
    a->lease_ttl = 0;
    a->lease_expires = 0;
    a->registered = false;
}

static void wake_at(struct announcer *a, ev_tstamp when)
{
    ev_tstamp delay = when - clock_mono();

    ev_timer_stop(a->loop, &a->wake_timer);
    ev_timer_set(&a->wake_timer, delay > 0 ? delay : 0, 0.);
    ev_timer_start(a->loop, &a->wake_timer);
}

/* How long one etcd call may take before it is abandoned: long enough for a
 * failover to the next endpoint, short enough to renew in time. */
static double op_timeout(const struct announcer *a)
{
    return fmin(ANNOUNCE_OP_TIMEOUT_MAX_S, fmax(ANNOUNCE_OP_TIMEOUT_MIN_S, a->opt->ttl_s / 2.0));
}

static void reg_done(int err, const struct json_t *reply, const char *errtext, void *arg);
static void withdraw_finish(struct announcer *a, const char *note);

/* The value the key should hold now. */
static const char *wanted_value(const struct announcer *a)
{
    return a->drain_wanted && a->opt->format == ANNOUNCE_FORMAT_JSON ? a->drain_value : a->value;
}

/* Returns false if the call could not be started (no callback then). */
static bool start_op(struct announcer *a, enum reg_op op)
{
    struct etcd_call *call = NULL;

    switch (op) {
    case OP_GRANT:
        call = etcd_lease_grant(a->etcd, a->opt->ttl_s, reg_done, a);
        break;
    case OP_PUT:
        a->put_value = wanted_value(a);
        a->put_gen++;
        call = etcd_put(a->etcd, a->opt->key, a->put_value, a->lease, reg_done, a);
        break;
    case OP_KEEPALIVE:
        call = etcd_lease_keepalive(a->etcd, a->lease, reg_done, a);
        break;
    case OP_REVOKE:
        call = etcd_lease_revoke(a->etcd, a->lease, reg_done, a);
        break;
    case OP_NONE:
        break;
    }
    if (!call)
        return false;
    a->call = call;
    a->op = op;
    a->op_sent = clock_mono();
    ev_timer_set(&a->op_timer, op_timeout(a), 0.);
    ev_timer_start(a->loop, &a->op_timer);
    log_debug(MOD, "etcd %s (lease %llx)", op_names[op], lease_hex(a->lease));
    return true;
}

/* A failed call: back off, or act on what the failure says about the lease:
 * -ENOENT is etcd's NOT_FOUND, here a lease that is gone. why is borrowed. */
static void reg_failed(struct announcer *a, enum reg_op op, int err, const char *why)
{
    char why_q[LOG_QUOTE_MAX];
    bool lease_gone = err == -ENOENT;
    double delay, elapsed;

    log_quote(why, strlen(why), why_q, sizeof(why_q));
    if (a->stopping) {
        if (op == OP_REVOKE && lease_gone) {
            withdraw_finish(a, "was already gone");
        } else {
            if (op == OP_REVOKE)
                log_warn(MOD, "could not revoke lease %llx (%s): %s goes when the lease expires",
                         lease_hex(a->lease), why_q, a->key_q);
            /* A detached copy would not expire: still look for it. */
            a->revoked_lease = a->lease;
            a->revoke_note = "not revoked (it expires with its TTL)";
            a->cleanup_wanted = a->ever_put;
            lease_forget(a);
        }
        stop_step(a);
        return;
    }
    if (lease_gone && op != OP_GRANT) {
        /* etcd answered, so no backoff: the lease is what is gone. */
        if (op == OP_REVOKE) {
            withdraw_finish(a, "was already gone");
        } else {
            log_warn(MOD, "lease %llx lost (%s): granting a new one", lease_hex(a->lease), why_q);
            a->lease_lost = true;
        }
        lease_forget(a);
        reg_step(a);
        return;
    }
    delay = announce_backoff(a->etcd_failures, RETRY_BASE_S, RETRY_CAP_S, jitter_unit());
    if (log_outage_begin(&a->etcd_outage, clock_mono()))
        log_warn(MOD, "etcd %s failed (%s): retrying with backoff, first in %.2f s", op_names[op],
                 why_q, delay);
    else if (log_outage_due(&a->etcd_outage, clock_mono(), &elapsed))
        log_warn(MOD, "etcd still unreachable after %.0f s (%s: %s)", elapsed, op_names[op], why_q);
    else
        log_debug(MOD, "etcd %s failed again (%s): retrying in %.2f s", op_names[op], why_q, delay);
    if (a->etcd_failures < 64)
        a->etcd_failures++;
    a->retry_at = clock_mono() + delay;
    reg_step(a);
}

static void reg_done(int err, const struct json_t *reply, const char *errtext, void *arg)
{
    struct announcer *a = arg;
    enum reg_op op = a->op;
    int64_t id = 0, ttl = 0;
    double elapsed;

    a->call = NULL;
    a->op = OP_NONE;
    ev_timer_stop(a->loop, &a->op_timer);
    if (err < 0) {
        reg_failed(a, op, err, errtext ? errtext : strerror(-err));
        return;
    }
    if (!reply) {
        reg_failed(a, op, -EBADMSG, "empty answer");
        return;
    }
    elapsed = log_outage_end(&a->etcd_outage, clock_mono());
    if (elapsed >= 0)
        log_info(MOD, "etcd answers again after %.0f s", elapsed);
    a->etcd_failures = 0;
    a->retry_at = 0;

    switch (op) {
    case OP_GRANT:
        if (etcd_parse_lease_grant(reply, &id, &ttl) < 0) {
            reg_failed(a, op, -EBADMSG, "lease grant answer without a lease ID");
            return;
        }
        a->lease = id;
        a->lease_ttl = ttl > 0 ? ttl : a->opt->ttl_s;
        a->lease_expires = a->op_sent + (ev_tstamp)a->lease_ttl;
        a->next_keepalive = clock_mono() + (ev_tstamp)a->lease_ttl / 3.0;
        a->registered = false;
        log_info(MOD, "granted lease %llx (ttl %lld s)%s", lease_hex(id), (long long)a->lease_ttl,
                 a->lease_lost ? " to replace the lost one" : "");
        a->lease_lost = false;
        break;
    case OP_PUT:
        /* A SIGUSR1/SIGUSR2 during the put wants the other value. */
        a->registered = a->put_value == wanted_value(a);
        a->ever_put = true;
        a->put_gen++;
        a->verdict = ANNOUNCE_KEY_OURS;
        a->warned_rev = 0;
        log_info(MOD, "registered %s = %s (lease %llx, ttl %lld s)", a->key_q, a->put_value,
                 lease_hex(a->lease), (long long)a->lease_ttl);
        break;
    case OP_KEEPALIVE:
        if (etcd_parse_lease_keepalive(reply, &ttl) < 0) {
            reg_failed(a, op, -EBADMSG, "lease keepalive answer with a bad TTL");
            return;
        }
        if (ttl <= 0) {
            /* The gateway omits a zero TTL: the lease expired or was revoked
             * behind our back, and the key went with it. */
            log_warn(MOD, "lease %llx lost (expired in etcd): %s is gone, granting a new lease",
                     lease_hex(a->lease), a->key_q);
            a->lease_lost = true;
            lease_forget(a);
            break;
        }
        a->lease_expires = a->op_sent + (ev_tstamp)ttl;
        a->next_keepalive = clock_mono() + (ev_tstamp)a->lease_ttl / 3.0;
        log_debug(MOD, "lease %llx renewed (ttl %lld s)", lease_hex(a->lease), (long long)ttl);
        break;
    case OP_REVOKE:
        withdraw_finish(a, "revoked");
        break;
    case OP_NONE:
        break;
    }
    if (a->stopping)
        stop_step(a);
    else
        reg_step(a);
}

static void op_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct announcer *a = w->data;
    enum reg_op op = a->op;

    if (!a->call)
        return;
    etcd_call_cancel(a->call);
    a->call = NULL;
    a->op = OP_NONE;
    reg_failed(a, op, -ETIMEDOUT, "timed out");
}

/* Start the one call that brings etcd closer to what is wanted, or arm the
 * wake timer for when there will be one. */
static void reg_step(struct announcer *a)
{
    ev_tstamp now = clock_mono();
    enum reg_op op;

    if (a->call || a->stopping)
        return;
    ev_timer_stop(a->loop, &a->wake_timer);
    if (a->lease && now >= a->lease_expires) {
        log_warn(MOD,
                 "lease %llx presumed expired (not renewed within its %lld s TTL): %s may be gone, "
                 "granting a new lease",
                 lease_hex(a->lease), (long long)a->lease_ttl, a->key_q);
        a->lease_lost = true;
        lease_forget(a);
    }
    if (a->healthy && !a->admin_out)
        op = !a->lease                  ? OP_GRANT
             : !a->registered           ? OP_PUT
             : now >= a->next_keepalive ? OP_KEEPALIVE
                                        : OP_NONE;
    else
        op = a->lease ? OP_REVOKE : OP_NONE;
    if (op == OP_NONE) {
        if (a->lease)
            wake_at(a, a->next_keepalive);
        return;
    }
    if (now < a->retry_at) {
        wake_at(a, a->lease ? fmin(a->retry_at, a->lease_expires) : a->retry_at);
        return;
    }
    if (!start_op(a, op))
        reg_failed(a, op, -ENOMEM, "cannot start the request");
}

static void wake_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    reg_step(w->data);
}

/* ---- the key read back: verify and withdrawal clean-up ---- */

/* How often the key is read back: every TTL/3 like the renewals, but at
 * least every 10 s (a long TTL should not hide a hand edit for minutes) and
 * at most every second. */
static double verify_period(const struct announce_opts *opt)
{
    return fmin(10.0, fmax(1.0, opt->ttl_s / 3.0));
}

static void key_done(int err, const struct json_t *reply, const char *errtext, void *arg);

static void key_cancel(struct announcer *a)
{
    if (a->kcall)
        etcd_call_cancel(a->kcall);
    a->kcall = NULL;
    a->kop = KOP_NONE;
}

/* A range of the key, or (mod_rev > 0) a transaction deleting it only if it
 * is still at mod_rev. Returns false if the call could not be started. */
static bool key_start(struct announcer *a, enum key_op op, int64_t mod_rev)
{
    long timeout_ms = (long)(op_timeout(a) * 1000);

    /* The delete is conditional on the revision read, so that a put landing
     * between the read and the delete (announce itself after a rise, or
     * another writer) is never deleted. */
    if (op == KOP_DELETE)
        a->kcall = etcd_delete_if_mod(a->etcd, a->opt->key, mod_rev, timeout_ms, key_done, a);
    else
        a->kcall = etcd_get(a->etcd, a->opt->key, timeout_ms, key_done, a);
    if (!a->kcall)
        return false;
    a->kop = op;
    a->kcall_gen = a->put_gen;
    return true;
}

static void verify_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct announcer *a = w->data;

    /* Only a settled registration is compared: during a put the key is
     * about to change under us. */
    if (a->stopping || a->kcall || !a->lease || !a->registered || a->op == OP_PUT)
        return;
    if (!key_start(a, KOP_VERIFY, 0))
        log_debug(MOD, "cannot start reading %s back", a->key_q);
}

/* The key as read back while registered: warn once per foreign write (each
 * has its own mod_revision; a delete counts as one), and put ours back only
 * when nothing of the other write would be lost. */
static void verify_result(struct announcer *a, const struct etcd_kv *kv)
{
    enum announce_key_verdict v;
    char found_q[LOG_QUOTE_MAX];
    int64_t occurrence;

    v = announce_key_classify(kv != NULL, kv ? kv->value : NULL, kv ? kv->value_len : 0,
                              kv ? kv->lease : 0, a->put_value, a->lease);
    a->verdict = v;
    if (v == ANNOUNCE_KEY_OURS) {
        if (a->warned_rev)
            log_info(MOD, "%s holds our value under lease %llx again", a->key_q,
                     lease_hex(a->lease));
        a->warned_rev = 0;
        return;
    }
    occurrence = kv ? kv->mod_revision : -1;
    if (occurrence == a->warned_rev) {
        log_debug(MOD, "%s is still %s", a->key_q, announce_key_verdict_name(v));
        return;
    }
    a->warned_rev = occurrence;
    if (kv)
        log_quote(kv->value, kv->value_len, found_q, sizeof(found_q));
    switch (v) {
    case ANNOUNCE_KEY_GONE:
        log_warn(MOD,
                 "%s was deleted by someone else while lease %llx is alive: leaving it so "
                 "(SIGUSR2 or SIGUSR1 puts it back)",
                 a->key_q, lease_hex(a->lease));
        break;
    case ANNOUNCE_KEY_DETACHED:
        /* Same bytes, only the lease is lost: putting them back under the
         * lease undoes nothing anybody meant, and the key goes with
         * announce again. */
        log_warn(MOD,
                 "%s was put again without our lease %llx (same value, revision %lld): putting "
                 "it back under the lease",
                 a->key_q, lease_hex(a->lease), (long long)kv->mod_revision);
        a->registered = false;
        reg_step(a);
        break;
    case ANNOUNCE_KEY_OVERWRITTEN:
        log_warn(MOD,
                 "%s was overwritten by someone else (revision %lld, %s, now %s): not undoing "
                 "it; withdrawal deletes it if it still names %s",
                 a->key_q, (long long)kv->mod_revision,
                 kv->lease ? "under our lease" : "detached from our lease", found_q, a->addr_text);
        break;
    case ANNOUNCE_KEY_TAKEN:
        log_warn(MOD,
                 "%s was taken over under another lease %llx (revision %lld, now %s): leaving "
                 "it to its new owner",
                 a->key_q, lease_hex(kv->lease), (long long)kv->mod_revision, found_q);
        break;
    case ANNOUNCE_KEY_OURS:
        break;
    }
}

/* The withdrawal's clean-up is over (done or given up): say what happened
 * to the key once, and go on stopping if that is what we are doing. */
static void cleanup_end(struct announcer *a, bool warn, const char *what)
{
    a->cleanup_wanted = false;
    log_msg(warn ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, MOD, "withdrawn %s (%s): lease %llx %s, %s",
            a->key_q, a->withdraw_why, lease_hex(a->revoked_lease),
            a->revoke_note ? a->revoke_note : "ended", what);
    if (a->stopping)
        stop_step(a);
}

/* After the read: delete the key if it is still ours to delete. */
static void cleanup_read(struct announcer *a, const struct etcd_kv *kv)
{
    char found_q[LOG_QUOTE_MAX];

    if (!kv) {
        cleanup_end(a, false, "the key is gone");
        return;
    }
    if (a->lease && kv->lease == a->lease) {
        /* Registered again meanwhile (a rise): that key is the new one. */
        cleanup_end(a, false, "the key is registered again");
        return;
    }
    if (announce_key_deletable(kv->value, kv->value_len, kv->lease, a->revoked_lease,
                               &a->opt->addr)) {
        if (key_start(a, KOP_DELETE, kv->mod_revision))
            return;
        cleanup_end(a, true, "but cannot start deleting the detached key: it stays");
        return;
    }
    log_quote(kv->value, kv->value_len, found_q, sizeof(found_q));
    log_warn(MOD, "%s is not ours to delete: it holds %s under %s; left in place", a->key_q,
             found_q, kv->lease ? "another writer's lease" : "no lease, naming another endpoint");
    cleanup_end(a, false, "the key was left to its other writer");
}

static void key_done(int err, const struct json_t *reply, const char *errtext, void *arg)
{
    struct announcer *a = arg;
    enum key_op op = a->kop;
    struct etcd_range_reply range;
    char *reason = NULL;
    char why_q[LOG_QUOTE_MAX];
    bool stale = a->kcall_gen != a->put_gen;

    a->kcall = NULL;
    a->kop = KOP_NONE;
    memset(&range, 0, sizeof(range));
    if (err == 0 && op != KOP_DELETE && etcd_parse_range(reply, &range, &reason) < 0)
        err = -EBADMSG;
    if (err < 0) {
        const char *why = reason ? reason : errtext ? errtext : strerror(-err);

        log_quote(why, strlen(why), why_q, sizeof(why_q));
        if (op == KOP_VERIFY) {
            /* The registration's own calls report an unreachable etcd. */
            log_debug(MOD, "reading %s back failed: %s", a->key_q, why_q);
        } else {
            log_warn(MOD,
                     "cannot %s %s to finish the withdrawal (%s): a copy detached from the "
                     "lease, if any, stays",
                     op == KOP_READ ? "read" : "delete", a->key_q, why_q);
            cleanup_end(a, false, "the key was not checked");
        }
        goto out;
    }
    switch (op) {
    case KOP_VERIFY:
        if (!stale && !a->stopping && a->registered && a->lease)
            verify_result(a, range.n_kvs ? &range.kvs[0] : NULL);
        break;
    case KOP_READ:
        cleanup_read(a, range.n_kvs ? &range.kvs[0] : NULL);
        break;
    case KOP_DELETE:
        if (etcd_txn_succeeded(reply))
            cleanup_end(a, false, "key deleted (a put had detached it from the lease)");
        else
            cleanup_end(a, true, "but the key changed between read and delete: left in place");
        break;
    case KOP_NONE:
        break;
    }
out:
    etcd_range_reply_free(&range);
    free(reason);
}

/* The lease is gone (note: "revoked", "was already gone"): what was under
 * it went with it, but a put by someone else may have detached the key
 * from it; look for that. */
static void withdraw_finish(struct announcer *a, const char *note)
{
    a->revoked_lease = a->lease;
    a->revoke_note = note;
    lease_forget(a);
    if (!a->ever_put) {
        log_info(MOD, "withdrawn %s (%s): lease %llx %s", a->key_q, a->withdraw_why,
                 lease_hex(a->revoked_lease), note);
        return;
    }
    a->cleanup_wanted = true;
    if (a->kop == KOP_VERIFY)
        key_cancel(a);
    if (a->kcall)
        return; /* a clean-up in flight; stop_step or the next one runs this one */
    if (!key_start(a, KOP_READ, 0))
        cleanup_end(a, true, "but the key cannot be read: a copy detached from the lease stays");
}

/* ---- stopping ---- */

/* The key is withdrawn (or given up on): pass the signal to the child and
 * wait for it, or end the loop. */
static void stop_withdrawn(struct announcer *a)
{
    if (a->withdrawn)
        return;
    a->withdrawn = true;
    ev_timer_stop(a->loop, &a->stop_timer);
    if (a->child_running) {
        if (a->stop_signal) {
            log_info(MOD, "passing signal %d to child %ld, waiting for it to exit", a->stop_signal,
                     (long)a->child);
            kill(a->child, a->stop_signal);
        }
        return; /* child_cb ends the loop */
    }
    ev_break(a->loop, EVBREAK_ALL);
}

/* Revoke the lease, then delete a copy of the key detached from it, then
 * stop_withdrawn(). */
static void stop_step(struct announcer *a)
{
    if (a->call || a->withdrawn)
        return;
    if (a->lease) {
        if (start_op(a, OP_REVOKE))
            return;
        log_warn(MOD, "cannot revoke lease %llx: %s goes when the lease expires",
                 lease_hex(a->lease), a->key_q);
        lease_forget(a);
    }
    if (a->kop == KOP_VERIFY)
        key_cancel(a);
    if (a->kcall)
        return; /* the clean-up's end comes back here */
    if (a->cleanup_wanted) {
        if (key_start(a, KOP_READ, 0))
            return;
        log_warn(MOD, "cannot start reading %s: a copy detached from the lease, if any, stays",
                 a->key_q);
        a->cleanup_wanted = false;
    }
    stop_withdrawn(a);
}

static void checks_stop(struct announcer *a);

/* sig: the signal to pass to the child once withdrawn (0: none, the child
 * exited). why is a static string. */
static void stop_begin(struct announcer *a, int sig, const char *why)
{
    if (a->stopping) {
        /* A second signal goes straight to the child. */
        if (sig && a->child_running && a->withdrawn) {
            log_info(MOD, "passing signal %d to child %ld", sig, (long)a->child);
            kill(a->child, sig);
        }
        return;
    }
    a->stopping = true;
    a->stop_signal = sig;
    a->withdraw_why = why;
    log_info(MOD, "stopping (%s)%s", why, a->lease ? ": revoking the lease" : "");
    checks_stop(a);
    ev_timer_stop(a->loop, &a->wake_timer);
    ev_timer_stop(a->loop, &a->drain_timer);
    ev_timer_stop(a->loop, &a->verify_timer);
    /* Without a lease the key may still be there, detached from an old
     * one by someone's put: look for it too. */
    if (!a->lease && a->ever_put) {
        a->cleanup_wanted = true;
        a->revoke_note = "was already gone";
    }
    if (a->call && a->op != OP_REVOKE) {
        /* If a put was on its way, the revoke removes its key too. */
        etcd_call_cancel(a->call);
        a->call = NULL;
        a->op = OP_NONE;
        ev_timer_stop(a->loop, &a->op_timer);
    }
    ev_timer_set(&a->stop_timer, ANNOUNCE_STOP_REVOKE_TIMEOUT_S, 0.);
    ev_timer_start(a->loop, &a->stop_timer);
    stop_step(a);
}

static void stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct announcer *a = w->data;

    if (a->call) {
        etcd_call_cancel(a->call);
        a->call = NULL;
        a->op = OP_NONE;
        ev_timer_stop(loop, &a->op_timer);
    }
    if (a->lease)
        log_warn(MOD,
                 "revoking lease %llx took over %.0f s: giving up, %s goes when the lease "
                 "expires",
                 lease_hex(a->lease), ANNOUNCE_STOP_REVOKE_TIMEOUT_S, a->key_q);
    else if (a->cleanup_wanted)
        log_warn(MOD,
                 "checking %s for a copy detached from the lease took over %.0f s: giving up, "
                 "such a copy stays",
                 a->key_q, ANNOUNCE_STOP_REVOKE_TIMEOUT_S);
    key_cancel(a);
    a->cleanup_wanted = false;
    lease_forget(a);
    stop_withdrawn(a);
}

/* SIGTERM/SIGINT: with --drain-seconds and a registered key, put it with
 * state drain and wait; a second signal, the child's exit or the drain
 * timer then stops. */
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct announcer *a = w->data;
    const char *name = w->signum == SIGTERM ? "SIGTERM" : "SIGINT";

    if (a->stop_draining && !a->stopping) {
        log_info(MOD, "%s during the drain: withdrawing now", name);
        stop_begin(a, a->drain_signal, a->drain_why);
        return;
    }
    if (a->stopping || a->opt->drain_s <= 0 || !a->lease || !a->healthy || a->admin_out) {
        stop_begin(a, w->signum, name);
        return;
    }
    if (a->verdict == ANNOUNCE_KEY_TAKEN) {
        /* Putting drain would overwrite the other writer's key. */
        log_info(MOD, "%s: %s belongs to another writer now: no drain", name, a->key_q);
        stop_begin(a, w->signum, name);
        return;
    }
    a->stop_draining = true;
    a->drain_signal = w->signum;
    a->drain_why = name;
    a->drain_wanted = true;
    a->registered = false; /* put drain_value (again: it may have been overwritten) */
    log_info(MOD, "%s: draining %s for %.1f s before withdrawing it", name, a->key_q,
             a->opt->drain_s);
    ev_timer_set(&a->drain_timer, a->opt->drain_s, 0.);
    ev_timer_start(loop, &a->drain_timer);
    reg_step(a);
}

static void drain_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct announcer *a = w->data;

    log_info(MOD, "drained %s for %.1f s: withdrawing it", a->key_q, a->opt->drain_s);
    stop_begin(a, a->drain_signal, a->drain_why);
}

/* SIGUSR1 drains, SIGUSR2 makes ready again; both put our value back even
 * if it was the one wanted already, so they also undo a hand edit. */
static void admin_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct announcer *a = w->data;
    bool drain = w->signum == SIGUSR1;
    const char *name = drain ? "SIGUSR1" : "SIGUSR2";

    if (a->stopping || a->stop_draining) {
        log_info(MOD, "%s ignored: stopping", name);
        return;
    }
    if (a->opt->format == ANNOUNCE_FORMAT_PLAIN) {
        /* HOST:PORT has no state: out of rotation is the nearest thing. */
        a->admin_out = drain;
        if (drain) {
            a->withdraw_why = "SIGUSR1";
            log_info(MOD,
                     "SIGUSR1: a plain value cannot carry the drain state: withdrawing %s "
                     "until SIGUSR2",
                     a->key_q);
        } else {
            log_info(MOD, "SIGUSR2: ready again: registering %s", a->key_q);
        }
    } else {
        a->drain_wanted = drain;
        log_info(MOD, "%s: %s %s", name, drain ? "draining" : "ready again:", a->key_q);
    }
    a->registered = false;
    reg_step(a);
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct announcer *a = w->data;
    int st = w->rstatus;

    ev_child_stop(loop, w);
    a->child_running = false;
    if (WIFEXITED(st)) {
        a->exit_status = WEXITSTATUS(st);
        log_info(MOD, "child %ld exited with status %d", (long)w->rpid, a->exit_status);
    } else if (WIFSIGNALED(st)) {
        a->exit_status = 128 + WTERMSIG(st);
        log_info(MOD, "child %ld killed by signal %d", (long)w->rpid, WTERMSIG(st));
    } else {
        a->exit_status = 1;
    }
    if (!a->stopping) {
        if (a->stop_draining)
            log_info(MOD, "child exited during the drain: withdrawing now");
        stop_begin(a, 0, "child exited");
    } else if (a->withdrawn)
        ev_break(loop, EVBREAK_ALL);
}

/* Run the command with default signal dispositions and an empty mask (the
 * loop's handlers and our ignored SIGPIPE are not the child's business). */
static int child_spawn(struct announcer *a, char **errmsg)
{
    static const int reset[] = {SIGPIPE, SIGTERM, SIGINT,  SIGCHLD,
                                SIGHUP,  SIGQUIT, SIGUSR1, SIGUSR2};
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    pid_t pid;
    int r;

    r = posix_spawnattr_init(&attr);
    if (r) {
        memprintf(errmsg, "cannot run %s: %s", a->opt->command[0], strerror(r));
        return -r;
    }
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        sigaddset(&dfl, reset[i]);
    r = posix_spawnattr_setsigmask(&attr, &none);
    if (!r)
        r = posix_spawnattr_setsigdefault(&attr, &dfl);
    if (!r)
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!r)
        r = posix_spawnp(&pid, a->opt->command[0], NULL, &attr, a->opt->command, environ);
    posix_spawnattr_destroy(&attr);
    if (r) {
        memprintf(errmsg, "cannot run %s: %s", a->opt->command[0], strerror(r));
        return -r;
    }
    a->child = pid;
    a->child_running = true;
    ev_child_set(&a->child_w, pid, 0);
    ev_child_start(a->loop, &a->child_w);
    log_info(MOD, "started child %ld: %s", (long)pid, a->opt->command[0]);
    return 0;
}

/* ---- health checks (run by health.c) ---- */

static void checks_stop(struct announcer *a)
{
    health_check_stop(&a->check);
}

/* One check is over: count it, act on a transition. why (borrowed) says
 * what failed. health.c schedules the next one an interval after this one
 * started, unless checks_stop() was called. */
static void check_result(void *arg, bool ok, const char *why)
{
    struct announcer *a = arg;
    enum health_change change;
    char why_q[LOG_QUOTE_MAX / 2];

    if (a->stopping)
        return;
    change = health_counter_report(&a->health, ok);
    if (ok && a->last_check != 1) {
        log_info(MOD, "check of %s ok", a->check_target);
    } else if (!ok) {
        log_quote(why ? why : "failed", why ? strlen(why) : 6, why_q, sizeof(why_q));
        log_msg(a->last_check != 0 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, MOD,
                "check of %s failed: %s (%d in a row)", a->check_target, why_q, a->health.failures);
    }
    a->last_check = ok ? 1 : 0;
    if (change == HEALTH_UP) {
        log_info(MOD, "%s is healthy: registering %s", a->addr_text, a->key_q);
        a->healthy = true;
        reg_step(a);
    } else if (change == HEALTH_DOWN) {
        log_warn(MOD, "%s is unhealthy after %d failed checks: withdrawing %s", a->addr_text,
                 a->health.failures, a->key_q);
        a->healthy = false;
        a->withdraw_why = "check failing";
        reg_step(a);
    }
}

/* ---- setup and teardown ---- */

/* --password-file, read at start and on SIGHUP: the token in use is
 * dropped, the next request authenticates with the password read. */
static int set_auth(struct announcer *a, char **errmsg)
{
    char *password = NULL;
    bool too_open = false;
    int r = secret_read_password_file(a->opt->password_file, &password, &too_open, errmsg);

    if (r < 0)
        return r;
    if (too_open)
        log_warn(MOD, "--password-file %s is readable by group or others (chmod 600 it)",
                 a->opt->password_file);
    r = etcd_client_set_auth(a->etcd, a->opt->user, password);
    secret_free(password);
    if (r < 0)
        memprintf(errmsg, "out of memory");
    return r;
}

/* SIGHUP: read --cacert/--cert/--key-file and --password-file again
 * (rotation without a restart). The lease and the registration go on; what
 * cannot be read keeps what is in use. */
static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct announcer *a = w->data;
    const char *tls = "", *pw = "";
    char *err = NULL;

    if (tls_conf_set(&a->opt->tls)) {
        if (http_client_set_tls(a->http, &a->opt->tls, &err) < 0)
            log_error(MOD, "SIGHUP: TLS files not read again, keeping the ones in use: %s",
                      err ? err : "out of memory");
        else
            tls = " TLS files (--cacert/--cert/--key-file)";
        free(err);
        err = NULL;
    }
    if (a->opt->user) {
        if (set_auth(a, &err) < 0)
            log_error(MOD, "SIGHUP: password not read again, keeping the one in use: %s",
                      err ? err : "out of memory");
        else
            pw = " password (--password-file; authenticating again)";
        free(err);
    }
    if (*tls || *pw)
        log_info(MOD, "SIGHUP: read again:%s%s%s", tls, *tls && *pw ? "," : "", pw);
    else if (!tls_conf_set(&a->opt->tls) && !a->opt->user)
        log_info(MOD, "SIGHUP: no TLS or password file to read again");
}

static int announcer_init(struct announcer *a, const struct announce_opts *opt, char **errmsg)
{
    int n;

    a->opt = opt;
    a->last_check = -1;
    a->withdraw_why = "stopping";
    n = announce_format_value(&opt->addr, opt->weight_set, opt->format, a->value, sizeof(a->value));
    if (n < 0) {
        memprintf(errmsg, "cannot format the value");
        return n;
    }
    if (opt->format == ANNOUNCE_FORMAT_JSON) {
        struct endpoint drained = opt->addr;

        drained.state = ENDPOINT_DRAIN;
        n = announce_format_value(&drained, opt->weight_set, opt->format, a->drain_value,
                                  sizeof(a->drain_value));
        if (n < 0) {
            memprintf(errmsg, "cannot format the drain value");
            return n;
        }
    }
    a->put_value = a->value;
    log_quote(opt->key, strlen(opt->key), a->key_q, sizeof(a->key_q));
    endpoint_format(&opt->addr, a->addr_text, sizeof(a->addr_text));
    a->check_target = opt->check == ANNOUNCE_CHECK_HTTP ? opt->check_url : a->addr_text;
    health_counter_init(&a->health, opt->rise, opt->fall);
    a->healthy = opt->check == ANNOUNCE_CHECK_NONE;

    ev_timer_init(&a->op_timer, op_timer_cb, 0., 0.);
    ev_timer_init(&a->wake_timer, wake_timer_cb, 0., 0.);
    ev_timer_init(&a->stop_timer, stop_timer_cb, 0., 0.);
    ev_child_init(&a->child_w, child_cb, 0, 0);
    ev_signal_init(&a->sig_term, signal_cb, SIGTERM);
    ev_signal_init(&a->sig_int, signal_cb, SIGINT);
    ev_signal_init(&a->sig_usr1, admin_signal_cb, SIGUSR1);
    ev_signal_init(&a->sig_usr2, admin_signal_cb, SIGUSR2);
    ev_signal_init(&a->sig_hup, hup_cb, SIGHUP);
    ev_timer_init(&a->drain_timer, drain_timer_cb, 0., 0.);
    ev_timer_init(&a->verify_timer, verify_timer_cb, verify_period(opt), verify_period(opt));
    a->sig_usr1.data = a->sig_usr2.data = a->sig_hup.data = a->drain_timer.data =
        a->verify_timer.data = a;
    a->op_timer.data = a->wake_timer.data = a->stop_timer.data = a;
    a->child_w.data = a->sig_term.data = a->sig_int.data = a;

    /* ev_child only works on the default loop. */
    a->loop = ev_default_loop(0);
    if (!a->loop) {
        memprintf(errmsg, "cannot create the event loop");
        return -ENOMEM;
    }
    a->http = http_client_new(a->loop);
    if (!a->http) {
        memprintf(errmsg, "cannot create the HTTP client");
        return -ENOMEM;
    }
    if (tls_conf_set(&opt->tls)) {
        int r = http_client_set_tls(a->http, &opt->tls, errmsg);

        if (r < 0)
            return r;
    }
    health_check_init(&a->check, a->loop, a->http,
                      opt->check == ANNOUNCE_CHECK_HTTP ? HEALTH_HTTP : HEALTH_TCP, &opt->addr,
                      opt->check_url, opt->check_interval_s, check_result, a);
    a->etcd = etcd_client_new(a->loop, a->http, opt->etcd_endpoints, opt->n_etcd_endpoints);
    if (!a->etcd) {
        memprintf(errmsg, "cannot create the etcd client");
        return -ENOMEM;
    }
    etcd_client_set_transport(a->etcd, (enum etcd_transport)opt->etcd_transport);
    /* Half the op timeout per attempt: a member that hangs (accepts, never
     * answers) times out inside the call, and the client moves on to the
     * next endpoint while there is time to renew the lease there. */
    etcd_client_set_call_timeout(a->etcd, (long)(op_timeout(a) * 1000.0 / 2.0));
    if (opt->user)
        return set_auth(a, errmsg);
    return 0;
}

/* Stops every watcher and frees what a holds (not a itself). */
static void announcer_close(struct announcer *a)
{
    if (!a->loop)
        return;
    ev_timer_stop(a->loop, &a->op_timer);
    ev_timer_stop(a->loop, &a->wake_timer);
    ev_timer_stop(a->loop, &a->stop_timer);
    checks_stop(a);
    ev_child_stop(a->loop, &a->child_w);
    ev_signal_stop(a->loop, &a->sig_term);
    ev_signal_stop(a->loop, &a->sig_int);
    ev_signal_stop(a->loop, &a->sig_usr1);
    ev_signal_stop(a->loop, &a->sig_usr2);
    ev_signal_stop(a->loop, &a->sig_hup);
    ev_timer_stop(a->loop, &a->drain_timer);
    ev_timer_stop(a->loop, &a->verify_timer);
    key_cancel(a);
    if (a->call)
        etcd_call_cancel(a->call);
    a->call = NULL;
    if (a->etcd)
        etcd_client_free(a->etcd);
    if (a->http)
        http_client_free(a->http);
    ev_loop_destroy(a->loop);
    a->loop = NULL;
}

static const char *check_text(const struct announce_opts *opt)
{
    switch (opt->check) {
    case ANNOUNCE_CHECK_TCP:
        return "tcp";
    case ANNOUNCE_CHECK_HTTP:
        return opt->check_url;
    default:
        return "none";
    }
}

int announce_main(int argc, char **argv)
{
    struct announce_opts opt;
    struct announcer *a = NULL;
    char *errmsg = NULL;
    int ret, status = 1;

    ret = announce_parse_args(argc, argv, &opt, &errmsg);
    if (ret < 0) {
        fprintf(stderr, "slotsync announce: %s\n", errmsg ? errmsg : strerror(-ret));
        fprintf(stderr, "'slotsync announce --help' lists the options.\n");
        free(errmsg);
        return 2;
    }
    if (opt.help) {
        fputs(announce_usage(), stdout);
        return 0;
    }
    log_set_level((enum log_level)opt.log_level);

    a = calloc(1, sizeof(*a));
    if (!a) {
        log_error(MOD, "out of memory");
        goto out;
    }
    ret = announcer_init(a, &opt, &errmsg);
    if (ret < 0) {
        log_error(MOD, "%s", errmsg ? errmsg : strerror(-ret));
        goto out;
    }
    /* Signals first, so that a stop during the start is seen. */
    ev_signal_start(a->loop, &a->sig_term);
    ev_signal_start(a->loop, &a->sig_int);
    ev_signal_start(a->loop, &a->sig_usr1);
    ev_signal_start(a->loop, &a->sig_usr2);
    ev_signal_start(a->loop, &a->sig_hup);
    log_info(MOD, "announcing %s = %s (ttl %d s, check %s, etcd %s%s)", a->key_q, a->value,
             opt.ttl_s, check_text(&opt), opt.etcd_endpoints[0],
             opt.n_etcd_endpoints > 1 ? ",..." : "");
    if (opt.command) {
        ret = child_spawn(a, &errmsg);
        if (ret < 0) {
            log_error(MOD, "%s", errmsg);
            status = ret == -ENOENT ? 127 : 126;
            goto out;
        }
    }
    if (opt.check != ANNOUNCE_CHECK_NONE)
        health_check_start(&a->check); /* first check at once */
    ev_timer_start(a->loop, &a->verify_timer);
    reg_step(a);
    ev_run(a->loop, 0);
    status = a->exit_status;
out:
    if (a)
        announcer_close(a);
    free(a);
    free(errmsg);
    announce_opts_free(&opt);
    return status;
}
