/* tls - the CA, client certificate and key files, read into memory. */
#include <slotsync/tls.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slotsync/log.h>

bool tls_conf_set(const struct tls_conf *conf)
{
    return conf && (conf->ca_file || conf->cert_file || conf->key_file || conf->server_name);
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':';
}

int tls_conf_check(const struct tls_conf *conf, const char *field, char **errmsg)
{
    if (!conf)
        return 0;
    if (!conf->cert_file != !conf->key_file) {
        memprintf(errmsg, "%s: cert_file and key_file go together", field);
        return -EINVAL;
    }
    if (conf->server_name) {
        size_t n = strlen(conf->server_name);

        if (n == 0 || n > TLS_SERVER_NAME_MAX) {
            memprintf(errmsg, "%s.server_name: must be 1-%d characters", field,
                      TLS_SERVER_NAME_MAX);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
            if (!host_char_ok(conf->server_name[i])) {
                memprintf(errmsg,
                          "%s.server_name: invalid character at byte %zu (a host name "
                          "or an IP address)",
                          field, i + 1);
                return -EINVAL;
            }
    }
    return 0;
}

static int dup_or_null(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = strdup(src)))
        return -ENOMEM;
    return 0;
}

int tls_conf_copy(struct tls_conf *dst, const struct tls_conf *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src)
        return 0;
    if (dup_or_null(&dst->ca_file, src->ca_file) < 0 ||
        dup_or_null(&dst->cert_file, src->cert_file) < 0 ||
        dup_or_null(&dst->key_file, src->key_file) < 0 ||
        dup_or_null(&dst->server_name, src->server_name) < 0) {
        tls_conf_free(dst);
        return -ENOMEM;
    }
    return 0;
}

void tls_conf_free(struct tls_conf *conf)
{
    if (!conf)
        return;
    free(conf->ca_file);
    free(conf->cert_file);
    free(conf->key_file);
    free(conf->server_name);
    memset(conf, 0, sizeof(*conf));
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool tls_conf_equal(const struct tls_conf *a, const struct tls_conf *b)
{
    return str_eq(a->ca_file, b->ca_file) && str_eq(a->cert_file, b->cert_file) &&
           str_eq(a->key_file, b->key_file) && str_eq(a->server_name, b->server_name);
}

/* The whole of path into *out (NUL-terminated, *len without the NUL). */
static int read_file(const char *what, const char *path, char **out, size_t *len, bool *too_open,
                     char **errmsg)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd, ret;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        ret = -errno;
        memprintf(errmsg, "%s %s: %s", what, path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        memprintf(errmsg, "%s %s: not a regular file", what, path);
        ret = -EINVAL;
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > TLS_FILE_MAX) {
        memprintf(errmsg, "%s %s: %s", what, path, st.st_size <= 0 ? "empty" : "larger than 1 MiB");
        ret = -EINVAL;
        goto out;
    }
    if (too_open)
        *too_open = (st.st_mode & 077) != 0;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        ret = -ENOMEM;
        memprintf(errmsg, "out of memory");
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            memprintf(errmsg, "%s %s: %s", what, path, r < 0 ? strerror(errno) : "short read");
            ret = -EIO;
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    ret = 0;
out:
    free(buf);
    close(fd);
    return ret;
}

static int not_pem(const char *what, const char *path, char **errmsg)
{
    memprintf(errmsg, "%s %s: not PEM (no -----BEGIN line)", what, path);
    return -EINVAL;
}

int tls_files_load(const struct tls_conf *conf, struct tls_files *out, char **errmsg)
{
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (conf->ca_file)
        ret = read_file("CA file", conf->ca_file, &out->ca, &out->ca_len, NULL, errmsg);
    if (ret == 0 && conf->cert_file)
        ret = read_file("certificate file", conf->cert_file, &out->cert, &out->cert_len, NULL,
                        errmsg);
    if (ret == 0 && conf->key_file)
        ret = read_file("key file", conf->key_file, &out->key, &out->key_len, &out->key_too_open,
                        errmsg);
    /* libcurl is given PEM: anything else would fail only at the first
     * handshake, after a reload had replaced the material in use. */
    if (ret == 0 && conf->ca_file && !strstr(out->ca, "-----BEGIN "))
        ret = not_pem("CA file", conf->ca_file, errmsg);
    if (ret == 0 && conf->cert_file && !strstr(out->cert, "-----BEGIN "))
        ret = not_pem("certificate file", conf->cert_file, errmsg);
    if (ret == 0 && conf->key_file && !strstr(out->key, "-----BEGIN "))
        ret = not_pem("key file", conf->key_file, errmsg);
    if (ret == 0 && conf->server_name && !(out->server_name = strdup(conf->server_name))) {
        memprintf(errmsg, "out of memory");
        ret = -ENOMEM;
    }
    if (ret < 0)
        tls_files_free(out);
    return ret;
}

void tls_files_free(struct tls_files *f)
{
    if (!f)
        return;
    /* the key is a secret: don't leave it in freed memory */
    if (f->key)
        memset(f->key, 0, f->key_len);
    free(f->ca);
    free(f->cert);
    free(f->key);
    free(f->server_name);
    memset(f, 0, sizeof(*f));
}
