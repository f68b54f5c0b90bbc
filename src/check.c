/* check - warnings about the paths a valid config names. */
#include <slotsync/check.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <slotsync/log.h>

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
    report(arg, false, text ? text : "out of memory");
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
