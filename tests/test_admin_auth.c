/* admin_auth: the bearer token file and its constant-time check. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slotsync/admin_auth.h>
#include <slotsync/secret.h>

#define TOKEN "0123456789abcdef-token"

Test(admin_auth, bearer)
{
    static const struct {
        const char *header;
        enum admin_bearer want;
    } cases[] = {
        {"Bearer " TOKEN, ADMIN_BEARER_OK},
        {"bearer " TOKEN, ADMIN_BEARER_OK}, /* the scheme is case-insensitive */
        {"Bearer   " TOKEN, ADMIN_BEARER_OK},
        {NULL, ADMIN_BEARER_MISSING},
        {"", ADMIN_BEARER_MISSING},
        {"Basic " TOKEN, ADMIN_BEARER_MISSING},
        {"Bearer" TOKEN, ADMIN_BEARER_MISSING},
        {"Bearer ", ADMIN_BEARER_WRONG},
        {"Bearer " TOKEN "x", ADMIN_BEARER_WRONG},
        {"Bearer 0123456789abcdef-toke", ADMIN_BEARER_WRONG},
        {"Bearer 0123456789abcdef-tokeN", ADMIN_BEARER_WRONG},
        {"Bearer x123456789abcdef-token", ADMIN_BEARER_WRONG},
        {"Bearer " TOKEN TOKEN, ADMIN_BEARER_WRONG}, /* the token twice */
        {"Bearer " TOKEN " ", ADMIN_BEARER_WRONG},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(admin_bearer_check(cases[i].header, TOKEN), cases[i].want, "case %zu", i);
}

static char *write_file(const char *text, mode_t mode)
{
    char *path = strdup("/tmp/test_admin_auth.XXXXXX");
    int fd;

    cr_assert_not_null(path);
    fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

Test(admin_auth, token_file)
{
    static const struct {
        const char *text;
        mode_t mode;
        int want;
        bool too_open;
        const char *token, *msg;
    } cases[] = {
        {TOKEN "\n", 0600, 0, false, TOKEN, NULL},
        {TOKEN "\r\nsecond line\n", 0400, 0, false, TOKEN, NULL},
        {TOKEN, 0640, 0, true, TOKEN, NULL},
        {TOKEN "\n", 0604, 0, true, TOKEN, NULL},
        {"short\n", 0600, -EINVAL, false, NULL, "must be 16-1024 characters"},
        {"\n" TOKEN "\n", 0600, -EINVAL, false, NULL, "must be 16-1024 characters"},
        {"0123456789 abcdef\n", 0600, -EINVAL, false, NULL, "at byte 11"},
        {"0123456789\tabcdef\n", 0600, -EINVAL, false, NULL, "control or non-ASCII"},
        {"0123456789abcdef\xc3\xa9\n", 0600, -EINVAL, false, NULL, "at byte 17"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_file(cases[i].text, cases[i].mode), *out = NULL, *err = NULL;
        bool too_open = false;
        int r = admin_token_read(path, &out, &too_open, &err);

        cr_expect_eq(r, cases[i].want, "case %zu: %d %s", i, r, err ? err : "");
        if (cases[i].token) {
            cr_expect_str_eq(out, cases[i].token, "case %zu", i);
            cr_expect_eq(too_open, cases[i].too_open, "case %zu", i);
        } else {
            cr_expect_null(out);
            cr_assert_not_null(err);
            cr_expect(strstr(err, "admin.token_file"), "case %zu: %s", i, err);
            cr_expect(strstr(err, cases[i].msg), "case %zu: %s", i, err);
            /* the message never holds the file's text */
            cr_expect_null(strstr(err, "0123456789"), "case %zu: %s", i, err);
        }
        secret_free(out);
        free(err);
        unlink(path);
        free(path);
    }
}

Test(admin_auth, token_file_missing)
{
    char *out = NULL, *err = NULL;

    cr_expect_eq(admin_token_read("/nonexistent/token", &out, NULL, &err), -ENOENT);
    cr_expect_null(out);
    cr_expect(strstr(err, "admin.token_file /nonexistent/token"), "%s", err);
    free(err);
}
