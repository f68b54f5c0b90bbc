/* fdlimit: the admin endpoint's budget of descriptors and the names of
 * EMFILE and ENFILE. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <slotsync/fdlimit.h>

Test(fdlimit, admin_budget)
{
    static const struct {
        unsigned long nofile, in_use;
        unsigned want;
    } cases[] = {
        {13, 12, 0},  /* the repro: nothing left after the reserve */
        {24, 10, 0},  /* reserve not even met */
        {34, 10, 0},  /* exactly the reserve */
        {35, 10, 1},  /* one */
        {64, 12, 28}, /* a small limit: the rest */
        {1024, 12, FDLIMIT_ADMIN_MAX},
        {1048576, 12, FDLIMIT_ADMIN_MAX},
        {(unsigned long)-1, 12, FDLIMIT_ADMIN_MAX}, /* RLIM_INFINITY */
        {0, 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(fdlimit_admin_budget(cases[i].nofile, cases[i].in_use), cases[i].want,
                     "case %zu: nofile %lu in use %lu: %u", i, cases[i].nofile, cases[i].in_use,
                     fdlimit_admin_budget(cases[i].nofile, cases[i].in_use));
}

Test(fdlimit, per_client)
{
    cr_expect_eq(fdlimit_per_client(0), 1u);
    cr_expect_eq(fdlimit_per_client(3), 1u);
    cr_expect_eq(fdlimit_per_client(28), 7u);
    cr_expect_eq(fdlimit_per_client(64), 16u);
}

Test(fdlimit, names)
{
    char want[64];

    cr_expect(fdlimit_is_exhausted(EMFILE));
    cr_expect(fdlimit_is_exhausted(-ENFILE));
    cr_expect_not(fdlimit_is_exhausted(-ECONNREFUSED));
    cr_expect_not(fdlimit_is_exhausted(0));
    snprintf(want, sizeof(want), "nofile %lu)", fdlimit_soft());
    cr_expect(strstr(fdlimit_strerror(-EMFILE), "out of file descriptors (EMFILE"));
    cr_expect(strstr(fdlimit_strerror(EMFILE), want), "%s", fdlimit_strerror(EMFILE));
    cr_expect(strstr(fdlimit_strerror(ENFILE), "out of file descriptors (ENFILE"));
    cr_expect_str_eq(fdlimit_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
}

Test(fdlimit, raise_and_count)
{
    struct fdlimit fl;
    struct rlimit rl;
    int n = fdlimit_in_use();

    cr_assert(n >= 3, "%d descriptors", n); /* stdin, stdout, stderr at least */
    cr_assert_eq(fdlimit_raise(&fl), 0);
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_expect_eq((unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
    cr_expect_eq(fl.soft, fl.hard);
    cr_expect_eq(fl.raised, fl.soft_before != fl.soft);
}
