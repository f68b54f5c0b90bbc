/* test_tls - the TLS files and the password file: what is read, what is
 * refused, and the permission flag. (The TLS handshake itself is tested
 * against a real etcd in integration/test_tls.py.) */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slotsync/secret.h>
#include <slotsync/tls.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/slotsync-tls.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tls, .init = setup, .fini = teardown);

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = NULL;
    FILE *f;

    cr_assert_gt(asprintf(&path, "%s/%s", dir, name), 0);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
    return path;
}

Test(tls, conf_check)
{
    struct tls_conf ok = {
        .ca_file = "/ca", .cert_file = "/c", .key_file = "/k", .server_name = "etcd-1.example.com"};
    struct tls_conf cert_only = {.cert_file = "/c"}, key_only = {.key_file = "/k"};
    struct tls_conf bad_name = {.server_name = "etcd;x"}, ip_name = {.server_name = "::1"};
    char *err = NULL;

    cr_assert_eq(tls_conf_check(&ok, "etcd.tls", &err), 0);
    cr_assert_eq(tls_conf_check(&ip_name, "etcd.tls", &err), 0);
    cr_assert_eq(tls_conf_check(&cert_only, "etcd.tls", &err), -EINVAL);
    cr_assert(strstr(err, "go together"), "%s", err);
    free(err);
    err = NULL;
    cr_assert_eq(tls_conf_check(&key_only, "etcd.tls", NULL), -EINVAL);
    cr_assert_eq(tls_conf_check(&bad_name, "etcd.tls", &err), -EINVAL);
    cr_assert(strstr(err, "etcd.tls.server_name"), "%s", err);
    free(err);
    cr_assert(tls_conf_set(&ok) && !tls_conf_set(&(struct tls_conf){0}));
}

Test(tls, files_load_and_permissions)
{
#define PEM(x) "-----BEGIN " x "-----\n"
    char *ca = write_file("ca.pem", PEM("CA"), 0644), *cert = write_file("c.pem", PEM("C"), 0644);
    char *key = write_file("k.pem", PEM("K"), 0600),
         *open_key = write_file("o.pem", PEM("K"), 0640);
    char *not_pem = write_file("der.pem", "0\x82\x01\n", 0644);
    struct tls_conf conf = {.ca_file = ca, .cert_file = cert, .key_file = key};
    struct tls_files f;
    char *err = NULL, *missing = NULL;

    cr_assert_eq(tls_files_load(&conf, &f, &err), 0, "%s", err ? err : "");
    cr_assert_eq(f.ca_len, strlen(PEM("CA")));
    cr_assert_str_eq(f.cert, PEM("C"));
    cr_assert_str_eq(f.key, PEM("K"));
    cr_assert(!f.key_too_open);
    tls_files_free(&f);

    conf.key_file = open_key;
    cr_assert_eq(tls_files_load(&conf, &f, &err), 0);
    cr_assert(f.key_too_open);
    tls_files_free(&f);

    cr_assert_gt(asprintf(&missing, "%s/nope.pem", dir), 0);
    conf.ca_file = missing;
    cr_assert_eq(tls_files_load(&conf, &f, &err), -ENOENT);
    cr_assert(strstr(err, "CA file") && strstr(err, "nope.pem"), "%s", err);
    cr_assert_null(f.ca);
    free(err);
    err = NULL;

    conf.ca_file = write_file("empty.pem", "", 0644);
    cr_assert_eq(tls_files_load(&conf, &f, &err), -EINVAL);
    cr_assert(strstr(err, "empty"), "%s", err);
    free(err);
    err = NULL;

    /* not PEM (DER, say): refused when read, not at the first handshake */
    free(conf.ca_file);
    conf.ca_file = ca;
    conf.key_file = not_pem;
    cr_assert_eq(tls_files_load(&conf, &f, &err), -EINVAL);
    cr_assert(strstr(err, "key file") && strstr(err, "der.pem: not PEM"), "%s", err);
    cr_assert_null(f.key);
    free(err);
    free(not_pem);
    free(ca);
    free(cert);
    free(key);
    free(open_key);
    free(missing);
}

Test(tls, password_file)
{
    char *one = write_file("pw1", "s3cret\nsecond line\n", 0600);
    char *crlf = write_file("pw2", "s3cret\r\n", 0644);
    char *empty = write_file("pw3", "\nx\n", 0600);
    char *pw = NULL, *err = NULL;
    bool too_open = true;

    cr_assert_eq(secret_read_password_file(one, &pw, &too_open, &err), 0);
    cr_assert_str_eq(pw, "s3cret");
    cr_assert(!too_open);
    secret_free(pw);

    cr_assert_eq(secret_read_password_file(crlf, &pw, &too_open, &err), 0);
    cr_assert_str_eq(pw, "s3cret");
    cr_assert(too_open);
    secret_free(pw);

    cr_assert_eq(secret_read_password_file(empty, &pw, NULL, &err), -EINVAL);
    cr_assert_null(pw);
    /* the message names the file, never its content */
    cr_assert(strstr(err, "pw3") && !strstr(err, "x\n"), "%s", err);
    free(err);
    free(one);
    free(crlf);
    free(empty);
}

/* Which modes of the password file are "readable by group or others" (a
 * warning at start and on SIGHUP): any bit of group or others. A mask of
 * the others' bits alone passed the 0644 case above (issue 20, item 7). */
Test(tls, password_file_modes)
{
    static const struct {
        mode_t mode;
        bool too_open;
    } cases[] = {
        {0600, false}, {0400, false}, {0700, false}, {0640, true}, {0620, true},
        {0610, true},  {0604, true},  {0602, true},  {0660, true}, {0644, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[16], *path, *pw = NULL, *err = NULL;
        bool too_open = !cases[i].too_open;

        snprintf(name, sizeof(name), "pwm%zu", i);
        path = write_file(name, "s3cret\n", cases[i].mode);
        cr_assert_eq(secret_read_password_file(path, &pw, &too_open, &err), 0, "%s", err);
        cr_expect_eq(too_open, cases[i].too_open, "mode %04o: too_open %d", (unsigned)cases[i].mode,
                     too_open);
        secret_free(pw);
        free(path);
    }
}
