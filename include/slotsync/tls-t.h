/* tls-t - a TLS client's files and name (tls.h has the functions). */
#ifndef SLOTSYNC_TLS_T_H
#define SLOTSYNC_TLS_T_H

#include <stdbool.h>
#include <stddef.h>

#define TLS_FILE_MAX (1024 * 1024) /* a PEM bundle larger than this is refused */
#define TLS_SERVER_NAME_MAX 253

/* What the config or the command line says (paths owned by the holder). */
struct tls_conf {
    char *ca_file;   /* NULL: the system's CAs */
    char *cert_file; /* with key_file, or neither */
    char *key_file;
    char *server_name; /* NULL: the endpoint URL's host */
};

/* The files' bytes. */
struct tls_files {
    char *ca, *cert, *key; /* owned; NULL when not configured */
    size_t ca_len, cert_len, key_len;
    char *server_name; /* owned copy, or NULL */
    bool key_too_open; /* the key file is readable by group or others */
};

#endif
