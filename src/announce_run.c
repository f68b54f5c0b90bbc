/* announce_run - the process around announce's key: SIGTERM/SIGINT (with
 * the drain), SIGUSR1/SIGUSR2, the child of "-- CMD", the checks' verdicts,
 * SIGHUP's re-read of the TLS and password files, and the start and
 * teardown of the loop (announce_main). The key itself is announce.c's.
 */
#include <slotsync/announce.h>

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <ev.h>

#include <slotsync/announce-int.h>
#include <slotsync/announce_opts.h>
#include <slotsync/announce_value.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd.h>
#include <slotsync/health.h>
#include <slotsync/http.h>
#include <slotsync/log.h>
#include <slotsync/secret.h>
#include <slotsync/tls.h>

extern char **environ;

#define MOD "announce"

/* SIGTERM/SIGINT: with --drain-seconds and a registered key, put it with
 * state drain and wait; a second signal, the child's exit or the drain
 * timer then stops. */
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct announcer *a = w->data;
    const char *name = w->signum == SIGTERM ? "SIGTERM" : "SIGINT";

    if (a->stop_draining && !a->stopping) {
        log_info(MOD, "%s during the drain: withdrawing now", name);
        announce__stop_begin(a, a->drain_signal, a->drain_why);
        return;
    }
    if (a->stopping || a->opt->drain_s <= 0 || !a->lease || !a->healthy || a->admin_out) {
        announce__stop_begin(a, w->signum, name);
        return;
    }
    if (a->verdict == ANNOUNCE_KEY_TAKEN) {
        /* Putting drain would overwrite the other writer's key. */
        log_info(MOD, "%s: %s belongs to another writer now: no drain", name, a->key_q);
        announce__stop_begin(a, w->signum, name);
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
    announce__reg_step(a);
}

static void drain_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct announcer *a = w->data;

    log_info(MOD, "drained %s for %.1f s: withdrawing it", a->key_q, a->opt->drain_s);
    announce__stop_begin(a, a->drain_signal, a->drain_why);
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
    announce__reg_step(a);
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
        announce__stop_begin(a, 0, "child exited");
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

/* One check is over: count it, act on a transition. why (borrowed) says
 * what failed. health.c schedules the next one an interval after this one
 * started, unless announce__checks_stop() was called. */
static void check_result(bool ok, const char *why, void *arg)
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
        announce__reg_step(a);
    } else if (change == HEALTH_DOWN) {
        log_warn(MOD, "%s is unhealthy after %d failed checks: withdrawing %s", a->addr_text,
                 a->health.failures, a->key_q);
        a->healthy = false;
        a->withdraw_why = "check failing";
        announce__reg_step(a);
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

    ev_child_init(&a->child_w, child_cb, 0, 0);
    ev_signal_init(&a->sig_term, signal_cb, SIGTERM);
    ev_signal_init(&a->sig_int, signal_cb, SIGINT);
    ev_signal_init(&a->sig_usr1, admin_signal_cb, SIGUSR1);
    ev_signal_init(&a->sig_usr2, admin_signal_cb, SIGUSR2);
    ev_signal_init(&a->sig_hup, hup_cb, SIGHUP);
    ev_timer_init(&a->drain_timer, drain_timer_cb, 0., 0.);
    announce__timers_init(a);
    a->sig_usr1.data = a->sig_usr2.data = a->sig_hup.data = a->drain_timer.data = a;
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
    etcd_client_set_call_timeout(a->etcd, (long)(announce__op_timeout(a) * 1000.0 / 2.0));
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
    announce__checks_stop(a);
    ev_child_stop(a->loop, &a->child_w);
    ev_signal_stop(a->loop, &a->sig_term);
    ev_signal_stop(a->loop, &a->sig_int);
    ev_signal_stop(a->loop, &a->sig_usr1);
    ev_signal_stop(a->loop, &a->sig_usr2);
    ev_signal_stop(a->loop, &a->sig_hup);
    ev_timer_stop(a->loop, &a->drain_timer);
    ev_timer_stop(a->loop, &a->verify_timer);
    announce__calls_cancel(a);
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
    announce__reg_step(a);
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
