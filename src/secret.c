/* secret - the etcd password file. */
#include <slotsync/secret.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slotsync/config-t.h>
#include <slotsync/etcd.h>
#include <slotsync/log.h>

int secret_read_line(const char *path, const char *what, char *buf, size_t size, size_t *len,
                     bool *too_open, char **errmsg)
{
    size_t n = 0;
    struct stat st;
    int fd, ret = 0;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        ret = -errno;
        memprintf(errmsg, "%s %s: %s", what, path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        memprintf(errmsg, "%s %s: not a regular file", what, path);
        close(fd);
        return -EINVAL;
    }
    if (too_open)
        *too_open = (st.st_mode & 077) != 0;
    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, size - 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = -errno;
            memprintf(errmsg, "%s %s: %s", what, path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = strcspn(buf, "\r\n");
    return ret;
}

int secret_read_password_file(const char *path, char **out, bool *too_open, char **errmsg)
{
    char buf[SECRET_PASSWORD_MAX + 2];
    size_t len;
    int ret;

    *out = NULL;
    ret = secret_read_line(path, "password file", buf, sizeof(buf), &len, too_open, errmsg);
    if (ret == 0 && len == 0) {
        memprintf(errmsg, "password file %s: the first line is empty", path);
        ret = -EINVAL;
    } else if (ret == 0 && len > SECRET_PASSWORD_MAX) {
        memprintf(errmsg, "password file %s: the first line is longer than %d bytes", path,
                  SECRET_PASSWORD_MAX);
        ret = -EINVAL;
    } else if (ret == 0 && memchr(buf, '\0', len)) {
        memprintf(errmsg, "password file %s: the first line holds a NUL byte", path);
        ret = -EINVAL;
    }
    if (ret == 0) {
        buf[len] = '\0';
        if (!(*out = strdup(buf))) {
            memprintf(errmsg, "out of memory");
            ret = -ENOMEM;
        }
    }
    memset(buf, 0, sizeof(buf));
    return ret;
}

void secret_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

int secret_set_etcd_auth(struct etcd_client *etcd, const struct config *cfg, char **errmsg)
{
    char *password = NULL;
    bool too_open = false;
    int r = secret_read_password_file(cfg->etcd_password_file, &password, &too_open, errmsg);

    if (r < 0)
        return r;
    if (too_open)
        log_warn("secret", "etcd.password_file %s is readable by group or others (chmod 600 it)",
                 cfg->etcd_password_file);
    r = etcd_client_set_auth(etcd, cfg->etcd_username, password);
    secret_free(password);
    if (r < 0)
        memprintf(errmsg, "out of memory");
    return r;
}
