/* test_jitter - the one jitter source: ranges, seeding, spread. */
#include <criterion/criterion.h>

#include <slotsync/jitter.h>

Test(jitter, unit_and_around_stay_in_range)
{
    static const double spreads[] = {0.0, 0.1, 0.2, 0.5};
    double lo = 1, hi = 0;

    jitter_seed(12345);
    for (int i = 0; i < 100000; i++) {
        double u = jitter_unit();

        cr_assert(u >= 0.0 && u < 1.0, "%f", u);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    /* spread over the whole interval, not stuck */
    cr_expect_lt(lo, 0.01);
    cr_expect_gt(hi, 0.99);
    for (size_t s = 0; s < sizeof(spreads) / sizeof(spreads[0]); s++)
        for (int i = 0; i < 10000; i++) {
            double f = jitter_around(spreads[s]);

            cr_assert(f >= 1.0 - spreads[s] && f <= 1.0 + spreads[s], "spread %f: %f", spreads[s],
                      f);
        }
}

Test(jitter, same_seed_same_sequence_zero_seed_works)
{
    double a[8], b[8];

    jitter_seed(42);
    for (int i = 0; i < 8; i++)
        a[i] = jitter_unit();
    jitter_seed(42);
    for (int i = 0; i < 8; i++)
        b[i] = jitter_unit();
    for (int i = 0; i < 8; i++)
        cr_expect_eq(a[i], b[i]);
    jitter_seed(43);
    cr_expect_neq(jitter_unit(), a[0]);
    jitter_seed(0); /* replaced by a non-zero state: xorshift would stick at 0 */
    cr_expect_neq(jitter_unit(), jitter_unit());
}
