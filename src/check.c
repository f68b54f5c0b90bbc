/* check - what `slotsync check` adds to a loaded config: warnings about
 * missing paths, and HAProxy's own verdict on base config + render. */
#include <slotsync/check.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <slotsync/backend.h>
#include <slotsync/hafd.h>
#include <slotsync/file.h>
#include <slotsync/log.h>
#include <slotsync/render.h>
#include <slotsync/spare.h>
#include <slotsync/vec.h>

#define CHECK_BASE_MAX (256u << 20)
#define STR_(x) #x
#define STR(x) STR_(x)

/* Report field's problem with path (escaped) and why. */
static unsigned warn_path(config_report_fn report, void *arg, const char *field, const char *what,
                          const char *path, size_t len, int err, const char *consequence)
{
    char q[LOG_QUOTE_MAX], *text = NULL;

    log_quote(path, len, q, sizeof(q));
    if (err == ENOENT)
        memprintf(&text, "%s: %s \"%s\" does not exist (%s)", field, what, q, consequence);
    else if (err == ENOTDIR && strcmp(what, "directory") == 0)
        memprintf(&text, "%s: \"%s\" is not a directory (%s)", field, q, consequence);
    else
        memprintf(&text, "%s: %s \"%s\": %s (%s)", field, what, q, strerror(err), consequence);
    report(false, text ? text : "out of memory", arg);
    free(text);
    return 1;
}

/* The directory a file will be written into: a warning when it is missing. */
static unsigned check_dir_of(const char *file, const char *field, config_report_fn report,
                             void *arg)
{
    const char *slash = strrchr(file, '/');
    char dir[4096];
    struct stat st;
    size_t len;

    if (!slash)
        return 0; /* the working directory: it exists */
    len = slash == file ? 1 : (size_t)(slash - file);
    if (len >= sizeof(dir))
        return 0;
    memcpy(dir, file, len);
    dir[len] = '\0';
    if (stat(dir, &st) < 0)
        return warn_path(report, arg, field, "directory", dir, len, errno,
                         "slotsync cannot write the file there");
    if (!S_ISDIR(st.st_mode))
        return warn_path(report, arg, field, "directory", dir, len, ENOTDIR,
                         "slotsync cannot write the file there");
    return 0;
}

unsigned check_paths(const struct config *cfg, config_report_fn report, void *arg)
{
    unsigned n = 0;
    struct stat st;

    if (cfg->base_config && stat(cfg->base_config, &st) < 0)
        n += warn_path(report, arg, "haproxy.base_config", "file", cfg->base_config,
                       strlen(cfg->base_config), errno, "haproxy -c before a reload will fail");
    if (cfg->services_file)
        n += check_dir_of(cfg->services_file, "haproxy.services_file", report, arg);
    if (cfg->http_bind.set && cfg->hosts_map)
        n += check_dir_of(cfg->hosts_map, "haproxy.hosts_map", report, arg);
    return n;
}

/* ---- spare backends' names ---- */

unsigned check_spares(const struct config *cfg, config_report_fn report, void *arg)
{
    struct names be = {0};
    size_t n = spare_count(cfg), len = 0;
    unsigned found = 0;
    char *text = NULL, msg[512];

    if (!n || !cfg->base_config || file_read(cfg->base_config, CHECK_BASE_MAX, &text, &len) < 0)
        return 0; /* a missing file is check_paths()'s */
    if (backend_proxy_names(text, len, &be, NULL) == 0) {
        for (size_t i = 0; i < be.n; i++) {
            long k = spare_index(be.v[i]);

            if (k < 0 || (size_t)k >= n)
                continue;
            snprintf(msg, sizeof(msg),
                     "haproxy.base_config: it declares a proxy named %s, the name of a spare "
                     "backend slotsync renders (http_frontend.spare_backends is %zu): rename "
                     "it, or lower spare_backends",
                     be.v[i], n);
            report(true, msg, arg);
            found++;
        }
    }
    backend_names_clear(&be);
    free(text);
    return found;
}

/* ---- haproxy -c on base config + render ---- */

/* Report one problem built from fmt. */
static unsigned reportf(config_report_fn report, void *arg, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static unsigned reportf(config_report_fn report, void *arg, bool error, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    report(error, text, arg);
    return 1;
}

/* Run argv with its output (stdout and stderr) read into *out (caller
 * frees), for at most timeout_s. Returns the exit status (>= 0), 127 when
 * the program cannot be run, or a negative errno (-ETIMEDOUT: killed). */
static int run_capture(char *const argv[], double timeout_s, char **out)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int fds[2], status = 0, r = 0;
    struct timespec start, now;
    pid_t pid;

    *out = NULL;
    if (!buf)
        return -ENOMEM;
    if (pipe(fds) < 0) {
        free(buf);
        return -errno;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        r = -errno;
        close(fds[0]);
        close(fds[1]);
        free(buf);
        return r;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        double left;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        left = timeout_s -
               ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9);
        if (left <= 0) {
            r = -ETIMEDOUT;
            break;
        }
        if (poll(&p, 1, (int)(left * 1000) + 1) < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (!p.revents)
            continue;
        /* Doubled up to 1 MiB; past that (or out of memory), enough: the
         * rest is not read. */
        if (len + 1 >= cap && (cap >= (1u << 20) || vec_reserve(&buf, &cap, cap + 1, 1, cap) < 0))
            break;
        n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    if (r < 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[len] = '\0';
    *out = buf;
    if (r < 0)
        return r;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static const struct service_conf *service_of(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

const char *check_field_of_line(const struct config *cfg, const char *rendered, unsigned line,
                                char *buf, size_t size)
{
    char section[16] = "", name[80] = "", kw[32] = "";
    const char *p = rendered;
    const struct service_conf *svc;

    if (!line)
        return NULL;
    for (unsigned n = 1; p && *p; n++) {
        const char *eol = strchr(p, '\n');

        if (*p != ' ' && *p != '\t' && *p != '#' && *p != '\n')
            if (sscanf(p, "%15s %79s", section, name) < 1)
                section[0] = '\0';
        if (n == line) {
            if (*p != ' ' && *p != '\t')
                return NULL;
            if (sscanf(p, " %31s", kw) != 1)
                return NULL;
            break;
        }
        p = eol ? eol + 1 : NULL;
    }
    if (!kw[0])
        return NULL;
    /* a frontend is named "fe:<service>" (render.h), a backend by its service */
    if (strcmp(section, "frontend") == 0 &&
        strncmp(name, RENDER_FRONTEND_PREFIX, strlen(RENDER_FRONTEND_PREFIX)) == 0)
        memmove(name, name + strlen(RENDER_FRONTEND_PREFIX),
                strlen(name) - strlen(RENDER_FRONTEND_PREFIX) + 1);
    svc = service_of(cfg, name);
    if (strcmp(section, "backend") == 0) {
        const char *key = strcmp(kw, "default-server") == 0 ? "server_options"
                          : strcmp(kw, "balance") == 0      ? "balance"
                          : strcmp(kw, "mode") == 0         ? "mode"
                                                            : NULL;
        bool own = false;

        if (!key)
            return NULL;
        /* A service's own value when it differs from defaults' (the
         * defaults fill what a service omits); spares use defaults. */
        if (svc && strcmp(key, "server_options") == 0)
            own = strcmp(svc->opt.server_options, cfg->defaults.server_options) != 0;
        else if (svc && strcmp(key, "balance") == 0)
            own = strcmp(svc->opt.balance, cfg->defaults.balance) != 0;
        else if (svc)
            own = svc->opt.mode != cfg->defaults.mode;
        if (own)
            snprintf(buf, size, "services.%s.%s", svc->name, key);
        else
            snprintf(buf, size, "defaults.%s", key);
        return buf;
    }
    if (strcmp(section, "frontend") == 0) {
        if (svc)
            snprintf(buf, size, "services.%s.listen", svc->name);
        else
            snprintf(buf, size, "http_frontend%s", strcmp(kw, "bind") == 0 ? ".bind" : "");
        return buf;
    }
    return NULL;
}

/* One problem of HAProxy's, and how many rendered lines gave it. */
struct haproxy_problem {
    bool error;
    char field[SERVICE_NAME_MAX + 40];
    char text[1024];
    unsigned count;
};

/* HAProxy's output, one problem per distinct [ALERT] or [WARNING] line,
 * each named by the config field its line of the render came from
 * (check_field_of_line) and reported once however many backends repeat it;
 * tmp (the temporary render's path) is shown as shown_as. HAProxy's closing
 * tally ("Fatal errors found ...") is left out when a problem was named. */
unsigned check_haproxy_report(const struct config *cfg, const char *rendered, char *text,
                              const char *tmp, const char *shown_as, config_report_fn report,
                              void *arg)
{
    struct haproxy_problem *v = NULL;
    size_t nv = 0, tlen = strlen(tmp), slen = strlen(shown_as);
    unsigned n = 0, tallies = 0;
    char tally_text[2][1024];
    bool tally_error[2];

    for (char *line = text, *next; line && *line; line = next) {
        struct haproxy_problem pr = {0};
        const char *body, *at;
        char fbuf[sizeof(pr.field)];
        const char *field = NULL;
        size_t o = 0;
        unsigned lno = 0;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "[ALERT]", 7) == 0)
            pr.error = true;
        else if (strncmp(line, "[WARNING]", 9) == 0)
            pr.error = false;
        else
            continue;
        /* "[ALERT]    (123) : config : ..." -> "config : ..." */
        body = strstr(line, ") : ");
        body = body ? body + 4 : line;
        /* "[<tmp>:<line>] : ": the line says which field it came from */
        at = strstr(body, tmp);
        if (at && at > body && at[-1] == '[' && at[tlen] == ':' &&
            sscanf(at + tlen + 1, "%u", &lno) == 1)
            field = rendered ? check_field_of_line(cfg, rendered, lno, fbuf, sizeof(fbuf)) : NULL;
        while (*body && o + 1 < sizeof(pr.text)) {
            if (field && body == at - 1) {
                /* drop "[path:N] : ": the field names the place */
                const char *end = strstr(at, "] : ");

                if (end) {
                    body = end + 4;
                    continue;
                }
            }
            if (strncmp(body, tmp, tlen) == 0 && o + slen + 1 < sizeof(pr.text)) {
                memcpy(pr.text + o, shown_as, slen);
                o += slen;
                body += tlen;
            } else {
                pr.text[o++] = *body++;
            }
        }
        pr.text[o] = '\0';
        if (strstr(pr.text, "Fatal errors found in configuration") ||
            strstr(pr.text, "Error(s) found in configuration file")) {
            if (tallies < 2) {
                snprintf(tally_text[tallies], sizeof(tally_text[0]), "%s", pr.text);
                tally_error[tallies++] = pr.error;
            }
            continue;
        }
        if (field)
            snprintf(pr.field, sizeof(pr.field), "%s", field);
        {
            size_t k;

            for (k = 0; k < nv; k++)
                if (v[k].error == pr.error && strcmp(v[k].field, pr.field) == 0 &&
                    strcmp(v[k].text, pr.text) == 0)
                    break;
            if (k < nv) {
                v[k].count++;
                continue;
            }
        }
        {
            struct haproxy_problem *nvv = realloc(v, (nv + 1) * sizeof(*v));

            if (!nvv) {
                n += reportf(report, arg, true, "haproxy -c: out of memory");
                break;
            }
            v = nvv;
            pr.count = 1;
            v[nv++] = pr;
        }
    }
    for (size_t k = 0; k < nv; k++) {
        char q[1200];

        log_quote(v[k].text, strlen(v[k].text), q, sizeof(q));
        if (v[k].field[0] && v[k].count > 1)
            n += reportf(report, arg, v[k].error, "%s: haproxy -c: %s (in %u rendered proxies)",
                         v[k].field, q, v[k].count);
        else if (v[k].field[0])
            n += reportf(report, arg, v[k].error, "%s: haproxy -c: %s", v[k].field, q);
        else
            n += reportf(report, arg, v[k].error, "haproxy -c: %s", q);
    }
    if (!nv)
        for (unsigned k = 0; k < tallies; k++) {
            char q[1200];

            log_quote(tally_text[k], strlen(tally_text[k]), q, sizeof(q));
            n += reportf(report, arg, tally_error[k], "haproxy -c: %s", q);
        }
    free(v);
    return n;
}

unsigned check_haproxy(const struct config *cfg, config_report_fn report, void *arg)
{
    char dir[] = "/tmp/slotsync-check-XXXXXX", *svc_path = NULL, *map_path = NULL;
    char *text = NULL, *map = NULL, *out = NULL, *errmsg = NULL, q[512];
    const char *bin = cfg->haproxy_bin ? cfg->haproxy_bin : "haproxy";
    struct config copy = *cfg;
    size_t len = 0, maplen = 0;
    unsigned n = 0;
    struct stat st;
    int r;

    if (cfg->base_config && stat(cfg->base_config, &st) < 0)
        return 0; /* check_paths said so */
    if (!mkdtemp(dir))
        return reportf(report, arg, false, "haproxy -c not run: temporary directory: %s",
                       strerror(errno));
    if (!memprintf(&svc_path, "%s/services.cfg", dir) ||
        !memprintf(&map_path, "%s/services.map", dir)) {
        n = reportf(report, arg, true, "haproxy -c not run: out of memory");
        goto out;
    }
    /* The render names the map it routes with: point it at ours. */
    copy.hosts_map = map_path;
    r = render_services_empty(&copy, &text, &len, &map, &maplen, &errmsg);
    if (r == 0)
        r = file_write_atomic(svc_path, text, len, &errmsg);
    if (r == 0 && map)
        r = file_write_atomic(map_path, map, maplen, &errmsg);
    if (r < 0) {
        n = reportf(report, arg, true, "haproxy -c not run: rendering: %s",
                    errmsg ? errmsg : strerror(-r));
        goto out;
    }
    {
        char *argv[] = {(char *)bin, "-c",     "-f", cfg->base_config ? cfg->base_config : svc_path,
                        "-f",        svc_path, NULL};

        if (!cfg->base_config)
            argv[4] = NULL;
        r = run_capture(argv, CHECK_HAPROXY_TIMEOUT_S, &out);
    }
    log_quote(bin, strlen(bin), q, sizeof(q));
    if (r == 127 && out && !strstr(out, "[ALERT]")) {
        n = reportf(report, arg, false,
                    "haproxy.haproxy_bin: \"%s\" cannot be run (not installed?): the rendered "
                    "services file was not checked with haproxy -c",
                    q);
    } else if (r < 0) {
        n = reportf(report, arg, true, "haproxy -c: \"%s\": %s", q,
                    r == -ETIMEDOUT ? "no answer in " STR(CHECK_HAPROXY_TIMEOUT_S) " s, killed"
                                    : strerror(-r));
    } else {
        n = check_haproxy_report(cfg, text, out ? out : (char *)"", svc_path, cfg->services_file,
                                 report, arg);
        /* 2: "no error but will not start (no listener)": valid; a base
         * config and services without a frontend are a legitimate stage. */
        if (r != 0 && r != 2 && n == 0)
            n = reportf(report, arg, true, "haproxy -c: \"%s\" failed with exit status %d", q, r);
    }
out:
    if (svc_path)
        unlink(svc_path);
    if (map_path)
        unlink(map_path);
    rmdir(dir);
    free(svc_path);
    free(map_path);
    free(text);
    free(map);
    free(out);
    free(errmsg);
    return n;
}

/* ---- file descriptors HAProxy needs for the servers rendered (issue 23) ---- */

/* Whether this process may raise its hard RLIMIT_NOFILE (CAP_SYS_RESOURCE
 * in /proc/self/status's CapEff), as HAProxy started as root may. */
static bool can_raise_nofile(void)
{
    char *text = NULL;
    size_t len = 0;
    bool can = false;

    if (file_read("/proc/self/status", 1 << 16, &text, &len) == 0) {
        const char *p = strstr(text, "\nCapEff:");
        unsigned long long eff = 0;

        if (p && sscanf(p + 8, "%llx", &eff) == 1)
            can = (eff >> 24) & 1; /* CAP_SYS_RESOURCE */
    }
    free(text);
    return can;
}

void check_fd_machine_read(struct check_fd_machine *m)
{
    struct rlimit rl;
    char *text = NULL;
    size_t len = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(m, 0, sizeof(*m));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        m->hard = rl.rlim_max == RLIM_INFINITY ? ~0UL : (unsigned long)rl.rlim_max;
    if (file_read("/proc/sys/fs/nr_open", 64, &text, &len) == 0)
        m->nr_open = strtoul(text, NULL, 10);
    free(text);
    m->can_raise = can_raise_nofile();
    m->cpus = cpus > 0 ? cpus : 1;
}

/* What c's servers and listeners cost in descriptors. */
static unsigned long fd_cost(const struct hafd_count *c)
{
    return c->checked + 2 * c->agents + c->listeners;
}

unsigned check_fds_on(const struct config *cfg, const struct check_fd_machine *m,
                      config_report_fn report, void *arg)
{
    struct hafd_count base = {0}, render = {0}, disk = {0}, *files;
    char *text = NULL, *map = NULL, hard[64] = "";
    size_t len = 0, mlen = 0;
    unsigned long need, avail;

    if (cfg->base_config && file_read(cfg->base_config, CHECK_BASE_MAX, &text, &len) == 0)
        hafd_count_text(text, len, &base);
    free(text);
    text = NULL;
    /* what a render from the config alone holds (every slot empty), and
     * what the services file on disk holds (etcd's services, slots grown) */
    if (render_services_empty(cfg, &text, &len, &map, &mlen, NULL) == 0)
        hafd_count_text(text, len, &render);
    free(text);
    free(map);
    text = NULL;
    if (cfg->services_file && file_read(cfg->services_file, CHECK_BASE_MAX, &text, &len) == 0)
        hafd_count_text(text, len, &disk);
    free(text);
    files = fd_cost(&disk) > fd_cost(&render) ? &disk : &render;
    base.servers += files->servers;
    base.checked += files->checked;
    base.agents += files->agents;
    base.listeners += files->listeners + (cfg->master_socket ? 2 : 0);
    need = hafd_needed(&base, m->cpus);
    avail = hafd_available(m->hard, m->nr_open, m->can_raise, base.fd_hard_limit);
    if (need <= avail)
        return 0;
    if (base.fd_hard_limit > 0 && (unsigned long)base.fd_hard_limit == avail)
        snprintf(hard, sizeof(hard), "fd-hard-limit %ld in haproxy.base_config",
                 base.fd_hard_limit);
    else if (m->can_raise && m->nr_open > m->hard)
        snprintf(hard, sizeof(hard), "fs.nr_open %lu", m->nr_open);
    else
        snprintf(hard, sizeof(hard), "hard RLIMIT_NOFILE %lu", m->hard);
    return reportf(report, arg, false,
                   "file descriptors: HAProxy 2.6 needs about %lu for what slotsync renders "
                   "(%lu servers, %lu with health checks, %lu with agent checks; maxconn %ld), "
                   "more than it can get on this machine (%s, as this process sees it): it "
                   "would refuse to start (\"Cannot raise FD limit\"). Raise LimitNOFILE= in "
                   "haproxy.service's drop-in (docs/deploy/systemd/haproxy-slotsync.conf) and "
                   "any fd-hard-limit in haproxy.cfg's global section above %lu, or lower "
                   "maxconn, the slots or the health checks",
                   need, base.servers, base.checked, base.agents,
                   base.maxconn > 0 ? base.maxconn : (long)HAFD_MIN_MAXCONN, hard, need);
}

unsigned check_fds(const struct config *cfg, config_report_fn report, void *arg)
{
    struct check_fd_machine m;

    check_fd_machine_read(&m);
    return check_fds_on(cfg, &m, report, arg);
}
