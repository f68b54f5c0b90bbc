/* test_clock - the monotonic helper and the UTC stamps (clock.h). */
#include <criterion/criterion.h>

#include <string.h>
#include <time.h>

#include <slotsync/clock.h>

Test(clock, mono_is_clock_monotonic_and_never_goes_back)
{
    struct timespec ts;
    double prev = clock_mono(), mono, wall;

    cr_assert_gt(prev, 0);
    for (int i = 0; i < 10000; i++) {
        double t = clock_mono();

        cr_assert_geq(t, prev);
        prev = t;
    }
    /* the same clock as CLOCK_MONOTONIC, not the wall clock */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    mono = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    cr_expect_lt(mono - clock_mono(), 0.5);
    cr_expect_lt(clock_mono() - mono, 0.5);
    clock_gettime(CLOCK_REALTIME, &ts);
    wall = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    cr_expect_lt(wall - clock_wall(), 0.5);
    cr_expect_lt(clock_wall() - wall, 0.5);
}

Test(clock, age)
{
    static const struct {
        double now, then, want;
    } cases[] = {
        {100.0, 0.0, -1},  /* never */
        {100.0, -5.0, -1}, /* never */
        {100.0, 40.0, 60}, /* 60 s ago */
        {100.0, 100.0, 0}, /* just now */
        {100.0, 100.5, 0}, /* a stamp from a later read: not negative */
        {5000.5, 1.5, 4999},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_float_eq(clock_age(cases[i].now, cases[i].then), cases[i].want, 1e-9, "case %zu",
                           i);
}

Test(clock, wall_of_a_monotonic_stamp)
{
    /* 40 s ago on the monotonic clock is 40 s before the wall clock's now,
     * whatever the wall clock did meanwhile */
    cr_expect_float_eq(clock_wall_of(960.0, 1000.0, 1796608419.0), 1796608379.0, 1e-6);
    cr_expect_float_eq(clock_wall_of(0, 1000.0, 1796608419.0), 0, 1e-9);
}

Test(clock, format_utc_is_rfc3339_like_the_log)
{
    static const struct {
        double wall;
        const char *want;
    } cases[] = {
        {1796608419.123, "2026-12-07T01:53:39.123Z"},
        {1796608419.0, "2026-12-07T01:53:39.000Z"},
        {1.999, "1970-01-01T00:00:01.999Z"},
        {59.9996, "1970-01-01T00:01:00.000Z"},
        {951782400.5, "2000-02-29T00:00:00.500Z"},
        {0, "-"},
        {-3, "-"},
        {1e300, "-"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(clock_format_utc(cases[i].wall, buf, sizeof(buf)), cases[i].want,
                         "case %zu", i);
    /* too small a buffer: "-", never a cut stamp */
    cr_expect_str_eq(clock_format_utc(1796608419.0, buf, 10), "-");
}
