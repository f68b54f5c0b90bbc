/* Tests for file: the atomic write, reading back, stale temp files. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slotsync/file.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

Test(file, write_atomic_replaces_and_leaves_no_temp)
{
    char dir[] = "/tmp/slotsync-file-XXXXXX", path[256], *err = NULL;
    size_t len;
    char *got;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/services.cfg", dir);
    cr_assert_eq(file_write_atomic(path, "one\n", 4, &err), 0);
    cr_assert_eq(file_write_atomic(path, "two\n", 4, &err), 0);
    got = read_file(path, &len);
    cr_assert_str_eq(got, "two\n");
    free(got);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(dir), 0, "a temp file was left behind");
}

Test(file, write_atomic_reports_a_missing_directory)
{
    char *err = NULL;

    cr_assert_eq(file_write_atomic("/nonexistent-dir/x.cfg", "x", 1, &err), -ENOENT);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(err, "/nonexistent-dir/x.cfg"));
    free(err);
}

Test(file, read_file_whole_and_bounded)
{
    char dir[] = "/tmp/slotsync-file-XXXXXX", path[256], *text = NULL;
    size_t len = 0;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/services.cfg", dir);
    cr_assert_eq(file_read(path, 100, &text, &len), -ENOENT);
    cr_assert_eq(file_write_atomic(path, "hello\n", 6, NULL), 0);
    cr_assert_eq(file_read(path, 100, &text, &len), 0);
    cr_expect_eq(len, 6);
    cr_expect_str_eq(text, "hello\n");
    free(text);
    cr_assert_eq(file_read(path, 3, &text, &len), -EFBIG);
    cr_assert_null(text);
    unlink(path);
    rmdir(dir);
}

static void count_removed(const char *file, void *arg)
{
    (*(int *)arg)++;
}

Test(file, remove_stale_temps_only_of_dead_writers)
{
    char dir[] = "/tmp/slotsync-file-XXXXXX", path[256], f[300];
    const char *keep[] = {"services.cfg", "services.cfg.tmp.abc", "services.cfg.tmp.",
                          "other.cfg.tmp.999999999", "services.cfgx.tmp.999999999"};
    int removed = 0;
    pid_t child = fork();

    cr_assert(child >= 0);
    if (child == 0)
        _exit(0);
    cr_assert_eq(waitpid(child, NULL, 0), child); /* a pid that is no process now */
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/services.cfg", dir);
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(f, sizeof(f), "%s/%s", dir, keep[i]);
        cr_assert_eq(file_write_atomic(f, "x", 1, NULL), 0);
    }
    snprintf(f, sizeof(f), "%s.tmp.%ld", path, (long)getpid()); /* a live writer: ours */
    cr_assert_eq(file_write_atomic(f, "x", 1, NULL), 0);
    snprintf(f, sizeof(f), "%s.tmp.%ld", path, (long)child);
    cr_assert_eq(file_write_atomic(f, "x", 1, NULL), 0);
    cr_assert_eq(file_remove_stale_temps(path, count_removed, &removed), 1);
    cr_expect_eq(removed, 1);
    cr_expect_neq(access(f, F_OK), 0, "the dead writer's temp file is gone");
    snprintf(f, sizeof(f), "%s.tmp.%ld", path, (long)getpid());
    cr_expect_eq(access(f, F_OK), 0, "a live writer's temp file stays");
    unlink(f);
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        snprintf(f, sizeof(f), "%s/%s", dir, keep[i]);
        cr_expect_eq(unlink(f), 0, "%s kept", keep[i]);
    }
    cr_expect_eq(rmdir(dir), 0);
    cr_expect_eq(file_remove_stale_temps("/nonexistent-dir/x.cfg", NULL, NULL), -ENOENT);
}
