/* tls - the files that secure the connection to etcd: a CA bundle, a client
 * certificate and its key, read into memory.
 *
 * Read at start and again on SIGHUP (certificate rotation without a
 * restart); libcurl gets the bytes, never a path it would read later on its
 * own. A key file readable by group or others gets a warning. Certificate
 * verification is never turned off: there is no switch for it.
 */
#ifndef SLOTSYNC_TLS_H
#define SLOTSYNC_TLS_H

#include <slotsync/tls-t.h>

/* true if any field of conf is set. */
bool tls_conf_set(const struct tls_conf *conf);

/* Check conf's fields (without reading the files): cert_file and key_file
 * together, server_name a host name. field names the config path for
 * messages ("etcd.tls"). 0 or -EINVAL with *errmsg. */
int tls_conf_check(const struct tls_conf *conf, const char *field, char **errmsg);

/* Deep copy (dst zeroed first). 0 or -ENOMEM. */
int tls_conf_copy(struct tls_conf *dst, const struct tls_conf *src);
void tls_conf_free(struct tls_conf *conf);
/* true if a and b name the same files and name. */
bool tls_conf_equal(const struct tls_conf *a, const struct tls_conf *b);

/* Read the files conf names into *out (zeroed first). 0, or a negative errno
 * with *errmsg naming the file and the reason; on failure *out holds nothing
 * to free. */
int tls_files_load(const struct tls_conf *conf, struct tls_files *out, char **errmsg);
void tls_files_free(struct tls_files *f);

#endif
