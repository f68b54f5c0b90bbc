/* dnshosts - "<service>.<domain>" -> HAProxy's address, for dnsmasq. */
#include <slotsync/dnshosts.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <slotsync/endpoint.h>
#include <slotsync/file.h>
#include <slotsync/jitter.h>
#include <slotsync/log.h>
#include <slotsync/render.h>

#define MOD "dns"

bool dnshosts_name_ok(const char *name, char *out)
{
    size_t len = strnlen(name, SERVICE_NAME_MAX + 1), label = 0;

    if (len == 0 || len > SERVICE_NAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '.' || c == '\0') {
            if (label == 0 || out[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (label == 0 && c == '-')
                return false;
            label++;
        } else {
            return false;
        }
        out[i] = c;
    }
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dnshosts_render(const char *const *names, size_t n, const char *domain, const char *address,
                    char **out, size_t *outlen, size_t *skipped)
{
    char(*lower)[SERVICE_NAME_MAX + 1] = calloc(n ? n : 1, sizeof(*lower));
    char **sorted = calloc(n ? n : 1, sizeof(*sorted));
    size_t k = 0, cap, len;
    char *text = NULL;
    int r = -ENOMEM;

    *out = NULL;
    *outlen = 0;
    *skipped = 0;
    if (!lower || !sorted)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (dnshosts_name_ok(names[i], lower[k]))
            sorted[k] = lower[k], k++;
        else
            (*skipped)++;
    }
    qsort(sorted, k, sizeof(*sorted), cmp_name);
    cap =
        strlen(DNSHOSTS_MARKER) + 2 + k * (strlen(address) + SERVICE_NAME_MAX + strlen(domain) + 4);
    if (!(text = malloc(cap)))
        goto out;
    len = (size_t)snprintf(text, cap, "%s\n", DNSHOSTS_MARKER);
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        len += (size_t)snprintf(text + len, cap - len, "%s %s.%s\n", address, sorted[i], domain);
    }
    *out = text;
    *outlen = len;
    r = 0;
out:
    free(lower);
    free(sorted);
    return r;
}

unsigned long long dnshosts_hash(const char *const *names, size_t n)
{
    unsigned long long sum = n;

    for (size_t i = 0; i < n; i++) {
        unsigned long long h = 14695981039346656037ULL;

        for (const unsigned char *p = (const unsigned char *)names[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        sum += h;
    }
    return sum;
}

bool dnshosts_due(const struct dnshosts *d, const struct config *cfg, unsigned long long hash,
                  double now)
{
    if (!cfg->dns.hosts_file)
        return false;
    if (d->failing)
        return now >= d->retry_at;
    return !d->written || hash != d->names_hash || strcmp(d->written_path, cfg->dns.hosts_file);
}

void dnshosts_clear(struct dnshosts *d)
{
    free(d->written);
    free(d->written_path);
    memset(d, 0, sizeof(*d));
}

/* SIGHUP the pid in dns.reload_pid_file (a positive decimal, not ours). */
static void signal_reader(const struct config *cfg)
{
    const char *path = cfg->dns.reload_pid_file;
    char buf[32], *end, q[512];
    FILE *f;
    long pid;
    size_t n;

    if (!path)
        return;
    log_quote(path, strlen(path), q, sizeof(q));
    if (!(f = fopen(path, "r"))) {
        log_warn(MOD, "dns.reload_pid_file %s: %s: no SIGHUP sent", q, strerror(errno));
        return;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    errno = 0;
    pid = strtol(buf, &end, 10);
    while (*end == '\n' || *end == ' ')
        end++;
    if (errno || end == buf || *end || pid <= 1 || pid > 4194304 || (pid_t)pid == getpid()) {
        log_warn(MOD, "dns.reload_pid_file %s: not a process id: no SIGHUP sent", q);
        return;
    }
    if (kill((pid_t)pid, SIGHUP) < 0)
        log_warn(MOD, "dns.reload_pid_file %s: SIGHUP to %ld: %s", q, pid, strerror(errno));
    else
        log_debug(MOD, "SIGHUP sent to %ld", pid);
}

void dnshosts_update(struct dnshosts *d, const struct config *cfg, const char *const *names,
                     size_t n, double now)
{
    const char *path = cfg->dns.hosts_file;
    char *text = NULL, *why = NULL, *path_copy = NULL, q[512];
    size_t len = 0, skipped = 0, lines = 0;
    int r;

    if (!path || (d->failing && now < d->retry_at))
        return;
    if (dnshosts_render(names, n, cfg->dns.domain, cfg->dns.address, &text, &len, &skipped) < 0) {
        log_error(MOD, "hosts file: out of memory");
        return;
    }
    d->names_hash = dnshosts_hash(names, n);
    if (skipped != d->skipped_noted && skipped)
        log_warn(MOD, "hosts file: %zu service names are not host names and were left out",
                 skipped);
    d->skipped_noted = skipped;
    if (d->written && strcmp(d->written, text) == 0 && strcmp(d->written_path, path) == 0) {
        free(text);
        return;
    }
    log_quote(path, strlen(path), q, sizeof(q));
    r = file_write_atomic(path, text, len, &why);
    if (r == 0 && !(path_copy = strdup(path)))
        r = -ENOMEM;
    if (r < 0) {
        double jitter = jitter_around(0.2);

        d->retry_delay =
            d->retry_delay < DNSHOSTS_RETRY_MIN_S ? DNSHOSTS_RETRY_MIN_S : d->retry_delay * 2;
        if (d->retry_delay > DNSHOSTS_RETRY_MAX_S)
            d->retry_delay = DNSHOSTS_RETRY_MAX_S;
        d->retry_at = now + d->retry_delay * jitter;
        if (!d->failing)
            log_warn(MOD, "dns.hosts_file %s: %s (retrying with backoff)", q,
                     why ? why : strerror(-r));
        d->failing = true;
        free(why);
        free(text);
        return;
    }
    if (d->failing)
        log_info(MOD, "dns.hosts_file %s: written again", q);
    d->failing = false;
    d->retry_delay = 0;
    free(d->written);
    free(d->written_path);
    d->written = text;
    d->written_path = path_copy;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        lines++;
    log_info(MOD, "wrote %s: %zu names", q, lines ? lines - 1 : 0);
    signal_reader(cfg);
}
