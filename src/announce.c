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
 * This file keeps the key (registration, read-back, withdrawal, the stop's
 * revoke); announce_run.c is the process around it (signals, the child,
 * the checks' verdicts, SIGHUP, start and teardown); announce-int.h is the
 * state both share.
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

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <slotsync/announce-int.h>
#include <slotsync/announce_key.h>
#include <slotsync/announce_opts.h>
#include <slotsync/announce_value-t.h>
#include <slotsync/clock.h>
#include <slotsync/etcd.h>
#include <slotsync/etcd_decode.h>
#include <slotsync/health.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/timeouts.h>

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

static const char *const op_names[] = {
    [OP_NONE] = "none",
    [OP_GRANT] = "lease grant",
    [OP_PUT] = "put",
    [OP_KEEPALIVE] = "lease keepalive",
    [OP_REVOKE] = "lease revoke",
};

static void stop_step(struct announcer *a);

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
double announce__op_timeout(const struct announcer *a)
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
    ev_timer_set(&a->op_timer, announce__op_timeout(a), 0.);
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
        announce__reg_step(a);
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
    announce__reg_step(a);
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
        announce__reg_step(a);
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
void announce__reg_step(struct announcer *a)
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
    announce__reg_step(w->data);
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
    long timeout_ms = (long)(announce__op_timeout(a) * 1000);

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
        announce__reg_step(a);
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

void announce__checks_stop(struct announcer *a)
{
    health_check_stop(&a->check);
}

/* sig: the signal to pass to the child once withdrawn (0: none, the child
 * exited). why is a static string. */
void announce__stop_begin(struct announcer *a, int sig, const char *why)
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
    announce__checks_stop(a);
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

void announce__timers_init(struct announcer *a)
{
    ev_timer_init(&a->op_timer, op_timer_cb, 0., 0.);
    ev_timer_init(&a->wake_timer, wake_timer_cb, 0., 0.);
    ev_timer_init(&a->stop_timer, stop_timer_cb, 0., 0.);
    ev_timer_init(&a->verify_timer, verify_timer_cb, verify_period(a->opt), verify_period(a->opt));
    a->verify_timer.data = a->op_timer.data = a->wake_timer.data = a->stop_timer.data = a;
}

void announce__calls_cancel(struct announcer *a)
{
    key_cancel(a);
    if (a->call)
        etcd_call_cancel(a->call);
    a->call = NULL;
}
