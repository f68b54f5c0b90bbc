/* file - slotsync's file I/O: the atomic fsync'ed writer of the services
 * file and host map, `render -o` output, reading a file back whole, and the
 * removal of temp files a dead writer left. (render.c only formats.) */
#include <slotsync/file.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <slotsync/fdlimit.h>
#include <slotsync/log.h>
#include <slotsync/vec.h>

int file_write_atomic(const char *path, const char *data, size_t len, char **errmsg)
{
    char *tmp = NULL, *dircopy = NULL;
    int fd = -1, dfd = -1, ret = 0;
    size_t off = 0;

    if (!memprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()))
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        memprintf(errmsg, "%s: %s", tmp, fdlimit_strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            memprintf(errmsg, "%s: write: %s", tmp, strerror(errno));
            goto out_unlink;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0) {
        ret = -errno;
        memprintf(errmsg, "%s: fsync: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        ret = -errno;
        memprintf(errmsg, "%s: close: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        ret = -errno;
        memprintf(errmsg, "rename %s to %s: %s", tmp, path, strerror(errno));
        goto out_unlink;
    }
    /* Make the rename itself durable. */
    dircopy = strdup(path);
    if (dircopy) {
        dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    free(dircopy);
    free(tmp);
    return ret;
}

/* ---- `render -o PATH` ---- */

static int write_all_fd(int fd, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        off += (size_t)w;
    }
    return 0;
}

int file_write_output(const char *path, const char *data, size_t len, char **errmsg)
{
    char q[LOG_QUOTE_MAX], *target = NULL;
    struct stat st;
    int ret;

    if (strcmp(path, "-") == 0) {
        ret = write_all_fd(STDOUT_FILENO, data, len);
        if (ret < 0)
            memprintf(errmsg, "standard output: %s", strerror(-ret));
        return ret;
    }
    log_quote(path, strlen(path), q, sizeof(q));
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT) {
            ret = -errno;
            memprintf(errmsg, "%s: %s", q, fdlimit_strerror(errno));
            return ret;
        }
        return file_write_atomic(path, data, len, errmsg); /* a new file */
    }
    if (S_ISLNK(st.st_mode)) {
        /* A symlink to a regular file: replace the file it points to and
         * keep the link (renaming over the link would turn it into a file). */
        target = realpath(path, NULL);
        if (!target || stat(target, &st) < 0) {
            ret = errno ? -errno : -ENOENT;
            memprintf(errmsg, "%s: a symlink to nothing that can be written (%s)", q,
                      strerror(-ret));
            free(target);
            return ret;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        memprintf(errmsg,
                  "%s%s is not a regular file: refused (render replaces a file; '-o -' writes "
                  "to standard output)",
                  q, target ? " points to what" : "");
        free(target);
        return -EINVAL;
    }
    ret = file_write_atomic(target ? target : path, data, len, errmsg);
    free(target);
    return ret;
}

/* Copy the rest of line after prefix into dst (size dsz) when line starts
 * with prefix and the rest fits. */
int file_read(const char *path, size_t max, char **out, size_t *outlen)
{
    struct {
        char *p;
        size_t len, cap;
    } b = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

    *out = NULL;
    *outlen = 0;
    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t r;

        /* 4096 bytes to read at least, and the final NUL (cap counts it) */
        if (vec_reserve(&b.p, &b.cap, b.len + 4096 + 1, 1, 16384) < 0) {
            ret = -ENOMEM;
            break;
        }
        r = read(fd, b.p + b.len, b.cap - b.len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = -errno;
            break;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
        if (b.len > max) {
            ret = -EFBIG;
            break;
        }
    }
    close(fd);
    if (ret < 0) {
        free(b.p);
        return ret;
    }
    if (!b.p && !(b.p = malloc(1)))
        return -ENOMEM;
    b.p[b.len] = '\0';
    *out = b.p;
    *outlen = b.len;
    return 0;
}

/* "<base>.tmp.<pid>" with pid all digits: the pid, else 0. */
static long temp_pid(const char *name, const char *base)
{
    size_t bl = strlen(base);
    long pid = 0;
    const char *p;

    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0)
        return 0;
    p = name + bl + 5;
    if (!*p || strlen(p) > 9)
        return 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

int file_remove_stale_temps(const char *path, void (*removed)(const char *file, void *arg),
                            void *arg)
{
    char *dircopy = strdup(path), *basecopy = strdup(path), *file = NULL;
    const char *dir, *base;
    struct dirent *de;
    DIR *d = NULL;
    int count = 0;

    if (!dircopy || !basecopy) {
        count = -ENOMEM;
        goto out;
    }
    dir = dirname(dircopy);
    base = basename(basecopy);
    d = opendir(dir);
    if (!d) {
        count = -errno;
        goto out;
    }
    while ((de = readdir(d))) {
        long pid = temp_pid(de->d_name, base);

        /* A writer that is still running owns its temp file. */
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (!memprintf(&file, "%s/%s", dir, de->d_name)) {
            count = -ENOMEM;
            goto out;
        }
        if (unlink(file) == 0) {
            count++;
            if (removed)
                removed(file, arg);
        }
    }
out:
    if (d)
        closedir(d);
    free(file);
    free(dircopy);
    free(basecopy);
    return count;
}
