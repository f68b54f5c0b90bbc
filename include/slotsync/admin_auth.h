/* admin_auth - the admin endpoint's bearer token: read from admin.token_file
 * and compared in constant time.
 *
 * Pure apart from reading the file. Nothing here logs or returns the token
 * or what a client sent: a refusal says only which check failed.
 */
#ifndef SLOTSYNC_ADMIN_AUTH_H
#define SLOTSYNC_ADMIN_AUTH_H

#include <stdbool.h>

#define ADMIN_TOKEN_MIN 16   /* shorter tokens are refused: guessable */
#define ADMIN_TOKEN_MAX 1024 /* and longer ones too */

/* The first line of path (the token) into *out (caller frees with
 * secret_free()). A token is ADMIN_TOKEN_MIN..ADMIN_TOKEN_MAX printable
 * ASCII characters without spaces. *too_open (optional) is set when the
 * file is readable by group or others. 0, or a negative errno with *errmsg
 * naming admin.token_file and the file (never its content). */
int admin_token_read(const char *path, char **out, bool *too_open, char **errmsg);

/* What a request's Authorization header (NULL when absent) says against
 * token. */
enum admin_bearer {
    ADMIN_BEARER_OK = 0,
    ADMIN_BEARER_MISSING, /* no header, or not "Bearer ..." */
    ADMIN_BEARER_WRONG,   /* "Bearer" with another token */
};

/* Compares in time that depends on the header's length only, not on where
 * it differs from token. */
enum admin_bearer admin_bearer_check(const char *authorization, const char *token);

#endif
