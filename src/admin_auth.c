/* admin_auth - the admin endpoint's bearer token. */
#include <slotsync/admin_auth.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <slotsync/log.h>
#include <slotsync/secret.h>

int admin_token_read(const char *path, char **out, bool *too_open, char **errmsg)
{
    char buf[ADMIN_TOKEN_MAX + 2];
    size_t len;
    int ret;

    *out = NULL;
    ret = secret_read_line(path, "admin.token_file", buf, sizeof(buf), &len, too_open, errmsg);
    for (size_t i = 0; ret == 0 && i < len; i++)
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            memprintf(errmsg,
                      "admin.token_file %s: the token has a space, control or non-ASCII "
                      "character at byte %zu",
                      path, i + 1);
            ret = -EINVAL;
        }
    if (ret == 0 && (len < ADMIN_TOKEN_MIN || len > ADMIN_TOKEN_MAX)) {
        memprintf(errmsg, "admin.token_file %s: the token (first line) must be %d-%d characters",
                  path, ADMIN_TOKEN_MIN, ADMIN_TOKEN_MAX);
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

enum admin_bearer admin_bearer_check(const char *authorization, const char *token)
{
    size_t n, m = strlen(token);
    unsigned char diff;
    const char *given;

    /* RFC 6750: the scheme is case-insensitive, then one or more spaces. */
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return ADMIN_BEARER_MISSING;
    given = authorization + 7;
    while (*given == ' ')
        given++;
    n = strlen(given);
    /* Every byte of what was given is looked at, against the token's
     * byte at the same place (or its first when past its end): no early
     * exit, no length-dependent branch on the token. */
    diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)token[m ? i % m : 0];
    return diff ? ADMIN_BEARER_WRONG : ADMIN_BEARER_OK;
}
