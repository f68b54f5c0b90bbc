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

#include <slotsync/log.h>
#include <slotsync/plan.h>
#include <slotsync/runtime.h>
#include <slotsync/timeouts.h>

#define MOD "reload"
#define CHECK_OUTPUT_MAX 8192
#define CONFIRM_POLL_S 0.05

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
                           void *arg)
{
    struct reloader *r = arg;

    /* HAProxy 2.6 closes without a word: whatever happened, confirm it. */
    r->phase = R_PROC_AFTER;
    poll_proc(r);
}

static void on_proc_before(int err, char **replies, size_t n, const char *raw, size_t raw_len,
                           void *arg)
{
    struct reloader *r = arg;
    int ret;

    if (err < 0) {
        finish(r, err, "master socket unreachable");
        return;
    }
    if (!raw || reload_parse_show_proc(raw, &r->reloads_before, &r->failed_before) < 0) {
        finish(r, -EPROTO, "master socket: unexpected show proc output");
        return;
    }
    r->phase = R_RELOAD;
    ret = runtime_send_raw(r->master, PLAN_MASTER_RELOAD, on_reload_sent, r);
    if (ret < 0)
        finish(r, ret, "master socket: cannot send reload");
}

int reloader_reload(struct reloader *r, double timeout_s, reload_done_cb cb, void *arg)
{
    int ret;

    if (r->phase != R_IDLE)
        return -EBUSY;
    r->cb = cb;
    r->arg = arg;
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
