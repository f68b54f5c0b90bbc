/* reload - "haproxy -c" as a watched child, and reloads through the master
 * socket (confirmed by "show proc") or a reload command. */
#define _GNU_SOURCE /* memfd_create */
#include <slotsync/reload.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <ev.h>

#include <slotsync/clock.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/runtime.h>
#include <slotsync/timeouts.h>

#define MOD "reload"
#define CHECK_OUTPUT_MAX 8192
#define CONFIRM_POLL_S 0.05
#define BUSY_RETRY_MIN_S 0.2 /* "Another reload is still in progress." */
#define BUSY_RETRY_MAX_S 2.0
/* A reload whose answer outlasts MASTER_TIMEOUT_S is still running (3.1+
 * answers once the new worker is ready): it is confirmed by "show proc"
 * for up to this long from its start before it counts as failed. */
#define RELOAD_SLOW_MAX_S RUNTIME_STALE_MAX_S

enum phase { R_IDLE = 0, R_CHECK, R_COMMAND, R_PROC_BEFORE, R_RELOAD, R_PROC_AFTER };

struct reloader {
    struct ev_loop *loop;
    char *haproxy_bin, *base_config, *reload_command;
    struct runtime *master; /* NULL without a master socket */
    enum phase phase;
    ev_child child;
    ev_timer timer; /* poll interval while confirming */
    ev_timer deadline;
    pid_t pid;
    int out_fd; /* the child's captured output: a memfd, no file anywhere, -1 if none */
    unsigned long reloads_before, failed_before;
    double started;    /* monotonic seconds: when reloader_reload() began */
    double busy_delay; /* the next wait after "Another reload is still in progress." */
    bool slow;         /* the reply outlasted MASTER_TIMEOUT_S */
    reload_done_cb cb;
    void *arg;
};

int reload_parse_show_proc(const char *text, unsigned long *reloads, unsigned long *failed)
{
    const char *line = text;

    while (line && *line) {
        unsigned long pid, rl, fl;
        char type[16];

        if (sscanf(line, "%lu %15s %lu [failed: %lu]", &pid, type, &rl, &fl) == 4 &&
            strcmp(type, "master") == 0) {
            *reloads = rl;
            *failed = fl;
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -EPROTO;
}

/* "0d00h05m12s" (HAProxy's human uptime) in seconds, or -1. */
static long parse_uptime(const char *t)
{
    long d, h, m, sec;
    int n = 0;

    if (sscanf(t, "%ldd%2ldh%2ldm%2lds%n", &d, &h, &m, &sec, &n) != 4 || n == 0 ||
        (t[n] && t[n] != ' ' && t[n] != '\t') || d < 0 || d > 100000 || h < 0 || h > 23 || m < 0 ||
        m > 59 || sec < 0 || sec > 59)
        return -1;
    return ((d * 24 + h) * 60 + m) * 60 + sec;
}

int reload_parse_worker_uptime(const char *text, long *uptime_s)
{
    const char *line = text;
    bool in_workers = false;
    long best = -1;

    while (line && *line) {
        unsigned long pid, rl;
        char type[16], up[32];

        if (strncmp(line, "# workers", 9) == 0)
            in_workers = true;
        else if (line[0] == '#')
            in_workers = false; /* "# old workers", "# programs", the header */
        else if (in_workers && sscanf(line, "%lu %15s %lu %31s", &pid, type, &rl, up) == 4 &&
                 strcmp(type, "worker") == 0) {
            long u = parse_uptime(up);

            if (u < 0)
                return -EPROTO;
            if (best < 0 || u < best)
                best = u; /* the newest current worker */
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (best < 0)
        return -EPROTO;
    *uptime_s = best;
    return 0;
}

#define RELOAD_BUSY_TEXT "Another reload is still in progress."

/* The next line of [*p, end): its start and length; *p moves past it. */
static bool next_line(const char **p, const char *end, const char **line, size_t *ll)
{
    const char *nl;

    if (*p >= end)
        return false;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *ll = (size_t)((nl ? nl : end) - *p);
    *p = nl ? nl + 1 : end;
    return true;
}

static bool line_is(const char *line, size_t ll, const char *s)
{
    return ll == strlen(s) && memcmp(line, s, ll) == 0;
}

static bool line_has(const char *line, size_t ll, const char *s)
{
    size_t sl = strlen(s);

    for (size_t i = 0; i + sl <= ll; i++)
        if (memcmp(line + i, s, sl) == 0)
            return true;
    return false;
}

/* The startup log's lines in [p, end) that carry tag (or, with tag NULL,
 * every non-empty line but [NOTICE]), joined by " | ", appended to out. */
static size_t join_lines(const char *p, const char *end, const char *tag, char *out)
{
    const char *line;
    size_t ll, o = 0;

    while (next_line(&p, end, &line, &ll)) {
        if (!ll || (tag ? !line_has(line, ll, tag) : line_has(line, ll, "[NOTICE]")))
            continue;
        if (o) {
            memcpy(out + o, " | ", 3);
            o += 3;
        }
        memcpy(out + o, line, ll);
        o += ll;
    }
    out[o] = '\0';
    return o;
}

int reload_parse_reply(const char *text, size_t len, struct reload_reply *out)
{
    const char *p = text, *end = text + len, *line, *log;
    size_t ll;
    bool ok;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        return 0; /* RELOAD_REPLY_NONE */
    out->verdict = RELOAD_REPLY_UNKNOWN;
    if (!next_line(&p, end, &line, &ll))
        return 0;
    if (line_is(line, ll, "Success=1"))
        ok = true;
    else if (line_is(line, ll, "Success=0"))
        ok = false;
    else
        return 0;
    if (next_line(&p, end, &line, &ll) && !line_is(line, ll, "--"))
        return 0; /* only "--" may follow the verdict */
    log = p;
    if (!ok) {
        const char *q = log, *l2;
        size_t n2;

        if (next_line(&q, end, &line, &ll) && line_is(line, ll, RELOAD_BUSY_TEXT) &&
            (!next_line(&q, end, &l2, &n2) || (n2 == 0 && q == end))) {
            out->verdict = RELOAD_REPLY_BUSY;
            return 0;
        }
    }
    out->verdict = ok ? RELOAD_REPLY_OK : RELOAD_REPLY_FAILED;
    if (log < end) {
        /* each '\n' may become " | " */
        char *buf = malloc(3 * (size_t)(end - log) + 1);

        if (!buf)
            return -ENOMEM;
        if (!join_lines(log, end, "[ALERT]", buf) && !join_lines(log, end, NULL, buf)) {
            free(buf);
            buf = NULL;
        }
        out->log = buf;
    }
    return 0;
}

void reload_reply_clear(struct reload_reply *r)
{
    free(r->log);
    r->log = NULL;
}

struct reloader *reloader_new(struct ev_loop *loop, const char *haproxy_bin,
                              const char *base_config, const char *master_socket,
                              const char *reload_command)
{
    struct reloader *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->out_fd = -1;
    r->loop = loop;
    r->haproxy_bin = strdup(haproxy_bin ? haproxy_bin : "haproxy");
    r->base_config = base_config ? strdup(base_config) : NULL;
    r->reload_command = reload_command ? strdup(reload_command) : NULL;
    if (!r->haproxy_bin || (base_config && !r->base_config) ||
        (reload_command && !r->reload_command))
        goto fail;
    if (master_socket) {
        r->master = runtime_new(loop, master_socket, MASTER_TIMEOUT_S);
        if (!r->master)
            goto fail;
    }
    r->pid = -1;
    ev_timer_init(&r->timer, NULL, 0., 0.);
    ev_timer_init(&r->deadline, NULL, 0., 0.);
    return r;
fail:
    reloader_free(r);
    return NULL;
}

static void stop_all(struct reloader *r)
{
    if (r->master)
        runtime_cancel(r->master);
    ev_child_stop(r->loop, &r->child);
    ev_timer_stop(r->loop, &r->timer);
    ev_timer_stop(r->loop, &r->deadline);
}

void reloader_free(struct reloader *r)
{
    if (!r)
        return;
    stop_all(r);
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    if (r->out_fd >= 0)
        close(r->out_fd);
    runtime_free(r->master);
    free(r->haproxy_bin);
    free(r->base_config);
    free(r->reload_command);
    free(r);
}

bool reloader_busy(const struct reloader *r)
{
    return r->phase != R_IDLE;
}

bool reloader_can_reload(const struct reloader *r)
{
    return r->master || r->reload_command;
}

static void finish(struct reloader *r, int err, const char *errtext)
{
    reload_done_cb cb = r->cb;

    stop_all(r);
    r->phase = R_IDLE;
    r->pid = -1;
    cb(err, errtext, r->arg);
}

/* The child's output, trimmed to its HAProxy ALERT/WARNING lines when there
 * are any (the NOTICE lines say nothing about the failure). */
static char *read_output(struct reloader *r)
{
    char raw[CHECK_OUTPUT_MAX + 1], *out;
    size_t n = 0, o = 0;
    int fd = r->out_fd;

    if (fd >= 0) {
        ssize_t k;

        while (n < CHECK_OUTPUT_MAX && (k = pread(fd, raw + n, CHECK_OUTPUT_MAX - n, (off_t)n)) > 0)
            n += (size_t)k;
        close(fd);
    }
    r->out_fd = -1;
    raw[n] = '\0';
    out = malloc(3 * n + 1); /* each '\n' may become " | " */
    if (!out)
        return NULL;
    for (char *line = raw, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strstr(line, "[NOTICE]") || !*line)
            continue;
        o += (size_t)sprintf(out + o, "%s%s", o ? " | " : "", line);
    }
    out[o] = '\0';
    return out;
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    struct reloader *r = w->data;
    int status = w->rstatus;
    char *text = read_output(r);
    char *why = NULL;

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        free(text);
        finish(r, 0, NULL);
        return;
    }
    if (WIFEXITED(status))
        memprintf(&why, "%s exited with %d%s%s",
                  r->phase == R_CHECK ? "haproxy -c" : "reload_command", WEXITSTATUS(status),
                  text && *text ? ": " : "", text ? text : "");
    else
        memprintf(&why, "%s killed by signal %d",
                  r->phase == R_CHECK ? "haproxy -c" : "reload_command", WTERMSIG(status));
    free(text);
    finish(r, -EIO, why ? why : "failed");
    free(why);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct reloader *r = w->data;

    if (r->pid > 0)
        kill(r->pid, SIGKILL); /* on_child reports it */
    else
        finish(r, -ETIMEDOUT, "HAProxy did not confirm the reload in time");
}

static int spawn(struct reloader *r, char *const argv[], double timeout_s)
{
    int fd;
    pid_t pid;

    /* An anonymous memory file: a killed slotsync leaves nothing behind. */
    fd = memfd_create("slotsync-check", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);

        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    r->out_fd = fd;
    r->pid = pid;
    ev_child_init(&r->child, on_child, pid, 0);
    r->child.data = r;
    ev_child_start(r->loop, &r->child);
    ev_timer_init(&r->deadline, on_deadline, timeout_s, 0.);
    r->deadline.data = r;
    ev_timer_start(r->loop, &r->deadline);
    return 0;
}

int reloader_check(struct reloader *r, const char *candidate, reload_done_cb cb, void *arg)
{
    char *argv[8];
    int i = 0, ret;

    if (r->phase != R_IDLE)
        return -EBUSY;
    argv[i++] = r->haproxy_bin;
    argv[i++] = "-c";
    if (r->base_config) {
        argv[i++] = "-f";
        argv[i++] = r->base_config;
    }
    argv[i++] = "-f";
    argv[i++] = (char *)candidate;
    argv[i] = NULL;
    r->cb = cb;
    r->arg = arg;
    ret = spawn(r, argv, RELOAD_CHECK_TIMEOUT_S);
    if (ret == 0)
        r->phase = R_CHECK;
    return ret;
}

static void on_proc_after(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                          void *arg);

static void on_poll_timer(struct ev_loop *loop, ev_timer *w, int revents);

static void poll_later(struct reloader *r)
{
    ev_timer_init(&r->timer, on_poll_timer, CONFIRM_POLL_S, 0.);
    r->timer.data = r;
    ev_timer_start(r->loop, &r->timer);
}

static void poll_proc(struct reloader *r)
{
    /* While the master re-executes itself its socket refuses us: the
     * deadline bounds the retries. */
    if (runtime_send_raw(r->master, PLAN_MASTER_SHOW_PROC, on_proc_after, r) < 0)
        poll_later(r);
}

static void on_poll_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    poll_proc(w->data);
}

static void on_proc_after(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                          void *arg)
{
    struct reloader *r = arg;
    unsigned long rl, fl;

    if (err == 0 && raw && reload_parse_show_proc(raw, &rl, &fl) == 0 && rl > r->reloads_before) {
        if (fl > r->failed_before)
            finish(r, -EIO,
                   "HAProxy refused the new configuration (show proc counts a failed "
                   "reload); the previous worker keeps serving");
        else
            finish(r, 0, NULL);
        return;
    }
    poll_later(r);
}

static void on_reload_sent(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg);

static void send_reload(struct reloader *r)
{
    int ret;

    r->phase = R_RELOAD;
    ret = runtime_send_raw(r->master, PLAN_MASTER_RELOAD, on_reload_sent, r);
    if (ret < 0)
        finish(r, ret, "master socket: cannot send reload");
}

static void on_busy_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    send_reload(w->data);
}

/* "Another reload is still in progress.": nothing was done, ask again with
 * backoff (capped, jittered) until the deadline. */
static void busy_retry(struct reloader *r)
{
    double d = r->busy_delay ? r->busy_delay : BUSY_RETRY_MIN_S;

    if (!r->busy_delay)
        log_info(MOD, "HAProxy: another reload is still in progress; asking again in %.1f s", d);
    else
        log_debug(MOD, "HAProxy: another reload is still in progress; asking again in %.1f s", d);
    r->busy_delay = d * 2 > BUSY_RETRY_MAX_S ? BUSY_RETRY_MAX_S : d * 2;
    r->phase = R_RELOAD;
    ev_timer_init(&r->timer, on_busy_timer, d * jitter_around(0.2), 0.);
    r->timer.data = r;
    ev_timer_start(r->loop, &r->timer);
}

static void on_reload_sent(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg)
{
    struct reloader *r = arg;
    struct reload_reply rr;

    if (err == 0 && reload_parse_reply(raw ? raw : "", raw ? raw_len : 0, &rr) == 0) {
        enum reload_verdict v = rr.verdict;
        char *why = NULL;

        if (v == RELOAD_REPLY_FAILED)
            memprintf(&why,
                      "HAProxy refused the new configuration (its reload answered Success=0)%s%s; "
                      "the previous worker keeps serving",
                      rr.log ? ": " : "", rr.log ? rr.log : "");
        reload_reply_clear(&rr);
        switch (v) {
        case RELOAD_REPLY_OK:
            finish(r, 0, NULL);
            return;
        case RELOAD_REPLY_FAILED:
            finish(r, -EIO, why ? why : "HAProxy refused the new configuration");
            free(why);
            return;
        case RELOAD_REPLY_BUSY:
            busy_retry(r);
            return;
        case RELOAD_REPLY_UNKNOWN:
            log_warn(MOD, "HAProxy's answer to reload is none slotsync knows; confirming it "
                          "with show proc");
            break;
        case RELOAD_REPLY_NONE:
            break; /* 2.6 closes without a word */
        }
    } else if (err == -ETIMEDOUT && !r->slow) {
        /* Still running (3.1+ answers when the new worker is ready): not a
         * failure yet. The runtime finishes the exchange in the background;
         * "show proc" confirms it, up to RELOAD_SLOW_MAX_S from the start. */
        double left = RELOAD_SLOW_MAX_S - (clock_mono() - r->started);

        r->slow = true;
        log_info(MOD,
                 "HAProxy's reload has not answered in %.0f s: still running, confirming it "
                 "with show proc for up to %.0f s more",
                 MASTER_TIMEOUT_S, left > 0 ? left : 0);
        if (left > 0 && left > ev_timer_remaining(r->loop, &r->deadline)) {
            ev_timer_stop(r->loop, &r->deadline);
            ev_timer_set(&r->deadline, left, 0.);
            ev_timer_start(r->loop, &r->deadline);
        }
    }
    r->phase = R_PROC_AFTER;
    poll_proc(r);
}

static void on_proc_before(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg)
{
    struct reloader *r = arg;

    if (err < 0) {
        finish(r, err, "master socket unreachable");
        return;
    }
    if (!raw || reload_parse_show_proc(raw, &r->reloads_before, &r->failed_before) < 0) {
        finish(r, -EPROTO, "master socket: unexpected show proc output");
        return;
    }
    send_reload(r);
}

int reloader_reload(struct reloader *r, double timeout_s, reload_done_cb cb, void *arg)
{
    int ret;

    if (r->phase != R_IDLE)
        return -EBUSY;
    r->cb = cb;
    r->arg = arg;
    r->started = clock_mono();
    r->busy_delay = 0;
    r->slow = false;
    if (r->master) {
        ret = runtime_send_raw(r->master, PLAN_MASTER_SHOW_PROC, on_proc_before, r);
        if (ret < 0)
            return ret;
        r->phase = R_PROC_BEFORE;
        ev_timer_init(&r->deadline, on_deadline, timeout_s, 0.);
        r->deadline.data = r;
        ev_timer_start(r->loop, &r->deadline);
        return 0;
    }
    if (r->reload_command) {
        char *argv[] = {"/bin/sh", "-c", r->reload_command, NULL};

        ret = spawn(r, argv, timeout_s);
        if (ret == 0)
            r->phase = R_COMMAND;
        return ret;
    }
    return -ENOTSUP;
}
