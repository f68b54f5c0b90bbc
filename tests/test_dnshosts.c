/* Tests for dnshosts: host-name checks, the hosts file text, and the writer
 * (only on change, SIGHUP to the reload pid, backoff after a failure). */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <slotsync/config-t.h>
#include <slotsync/dnshosts.h>
#include <slotsync/log.h>

Test(dnshosts, name_ok_table)
{
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"web", "web"}, {"API", "api"}, {"web-2", "web-2"}, {"eu.web", "eu.web"}, {"-web", NULL},
        {"web-", NULL}, {"a..b", NULL}, {".web", NULL},     {"web.", NULL},       {"we_b", NULL},
        {"", NULL},     {"a b", NULL},  {"web\nx", NULL},   {"w\xc3\xa9", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        bool ok = dnshosts_name_ok(cases[i].in, out);

        cr_expect_eq(ok, cases[i].out != NULL, "case %zu (%s)", i, cases[i].in);
        if (ok && cases[i].out)
            cr_expect_str_eq(out, cases[i].out, "case %zu", i);
    }
}

Test(dnshosts, render_sorted_distinct_skips_bad_names)
{
    const char *names[] = {"web", "API", "db", "web", "bad_name", "api"};
    char *text = NULL;
    size_t len = 0, skipped = 9;

    cr_assert_eq(dnshosts_render(names, 6, "service.local", "127.0.0.1", &text, &len, &skipped), 0);
    cr_expect_str_eq(text, DNSHOSTS_MARKER "\n"
                                           "127.0.0.1 api.service.local\n"
                                           "127.0.0.1 db.service.local\n"
                                           "127.0.0.1 web.service.local\n");
    cr_expect_eq(len, strlen(text));
    cr_expect_eq(skipped, 1);
    free(text);
    cr_assert_eq(dnshosts_render(NULL, 0, "x", "::1", &text, &len, &skipped), 0);
    cr_expect_str_eq(text, DNSHOSTS_MARKER "\n");
    free(text);
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(dnshosts, writes_on_change_and_signals_the_reader)
{
    char dir[] = "/tmp/slotsync-test-dns-XXXXXX", hosts[128], pidf[128], *got;
    struct config cfg = {0};
    struct dnshosts d = {0};
    const char *one[] = {"web"}, *two[] = {"web", "db"};
    int fds[2], status;
    struct stat st1, st2;
    FILE *f;
    pid_t child;

    log_set_level(LOG_LEVEL_ERROR);
    cr_assert_not_null(mkdtemp(dir));
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    snprintf(pidf, sizeof(pidf), "%s/reader.pid", dir);
    cfg.dns.hosts_file = hosts;
    cfg.dns.domain = "svc.local";
    cfg.dns.address = "127.0.0.2";
    cfg.dns.reload_pid_file = pidf;
    /* the "reader": exits 7 on SIGHUP */
    cr_assert_eq(pipe(fds), 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        signal(SIGHUP, _exit);
        close(fds[0]);
        close(fds[1]);
        pause();
        _exit(1);
    }
    close(fds[1]);
    f = fopen(pidf, "w");
    fprintf(f, "%d\n", (int)child);
    fclose(f);

    cr_expect(dnshosts_due(&d, &cfg, dnshosts_hash(one, 1), 10.0));
    dnshosts_update(&d, &cfg, one, 1, 10.0);
    got = slurp(hosts);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, DNSHOSTS_MARKER "\n127.0.0.2 web.svc.local\n");
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == SIGHUP, "status %d", status);

    /* the same names: not due, and an update writes nothing */
    cr_expect(!dnshosts_due(&d, &cfg, dnshosts_hash(one, 1), 11.0));
    stat(hosts, &st1);
    unlink(pidf);
    dnshosts_update(&d, &cfg, one, 1, 11.0);
    stat(hosts, &st2);
    cr_expect_eq(st1.st_ino, st2.st_ino);

    /* a new service: due, written */
    cr_expect(dnshosts_due(&d, &cfg, dnshosts_hash(two, 2), 12.0));
    dnshosts_update(&d, &cfg, two, 2, 12.0);
    cr_expect_str_eq(slurp(hosts),
                     DNSHOSTS_MARKER "\n127.0.0.2 db.svc.local\n127.0.0.2 web.svc.local\n");

    /* a failed write backs off */
    cfg.dns.hosts_file = "/nonexistent-dir/hosts";
    dnshosts_update(&d, &cfg, one, 1, 20.0);
    cr_expect(d.failing);
    cr_expect(!dnshosts_due(&d, &cfg, dnshosts_hash(one, 1), 20.5));
    cr_expect(dnshosts_due(&d, &cfg, dnshosts_hash(one, 1), 20.0 + DNSHOSTS_RETRY_MIN_S * 1.3));
    cfg.dns.hosts_file = hosts;
    dnshosts_update(&d, &cfg, one, 1, 30.0);
    cr_expect(!d.failing);
    cr_expect_str_eq(slurp(hosts), DNSHOSTS_MARKER "\n127.0.0.2 web.svc.local\n");

    dnshosts_clear(&d);
    close(fds[0]);
    unlink(hosts);
    rmdir(dir);
}
