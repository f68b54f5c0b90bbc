/* secret - the etcd password, read from a file (never from the config or
 * the command line, where ps and shell histories would show it).
 */
#ifndef SLOTSYNC_SECRET_H
#define SLOTSYNC_SECRET_H

#include <stdbool.h>
#include <stddef.h>

struct config;

struct etcd_client;

#define SECRET_PASSWORD_MAX 1024

/* What the secret files share: up to size-1 bytes of path into buf (NUL
 * terminated), *len the length of its first line (without its line end).
 * *too_open (optional) is set when the file is readable by group or others.
 * 0, or a negative errno with *errmsg naming the file as "<what> <path>"
 * (never its content). The caller zeroes buf when done. */
int secret_read_line(const char *path, const char *what, char *buf, size_t size, size_t *len,
                     bool *too_open, char **errmsg);

/* The first line of path (without its line end) into *out (caller frees
 * with secret_free). *too_open (optional) is set when the file is readable
 * by group or others. 0, or a negative errno with *errmsg naming the file
 * (never its content). */
int secret_read_password_file(const char *path, char **out, bool *too_open, char **errmsg);

/* Give etcd cfg's etcd.username with the first line of etcd.password_file,
 * read now; a file readable by group or others gets a warning. What run,
 * render and status share. 0 or a negative errno with *errmsg. */
int secret_set_etcd_auth(struct etcd_client *etcd, const struct config *cfg, char **errmsg);

/* Zero and free a secret. */
void secret_free(char *s);

#endif
