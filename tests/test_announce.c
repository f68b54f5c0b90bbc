/* Tests for announce's pure parts left in announce.c: the retry backoff.
 * The published value is test_announce_value.c, the key as read back
 * test_announce_key.c, the command line test_announce_opts.c. */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/announce.h>
#include <slotsync/endpoint.h>

/* ---- backoff ---- */

Test(announce_backoff, doubles_to_the_cap)
{
    /* r = 0 gives the lower bound d/2. */
    cr_expect_float_eq(announce_backoff(0, 0.25, 5, 0), 0.125, 1e-12);
    cr_expect_float_eq(announce_backoff(1, 0.25, 5, 0), 0.25, 1e-12);
    cr_expect_float_eq(announce_backoff(2, 0.25, 5, 0), 0.5, 1e-12);
    cr_expect_float_eq(announce_backoff(4, 0.25, 5, 0), 2.0, 1e-12);
    cr_expect_float_eq(announce_backoff(5, 0.25, 5, 0), 2.5, 1e-12, "capped at 5");
    cr_expect_float_eq(announce_backoff(1000, 0.25, 5, 0), 2.5, 1e-12);
    cr_expect_float_eq(announce_backoff(4294967295u, 0.25, 5, 0), 2.5, 1e-12);
}

Test(announce_backoff, jitter_stays_in_bounds)
{
    for (unsigned attempt = 0; attempt < 40; attempt++) {
        double d = fmin(5.0, 0.25 * pow(2, attempt));

        for (int k = 0; k <= 100; k++) {
            double r = k / 101.0;
            double v = announce_backoff(attempt, 0.25, 5.0, r);

            cr_expect_geq(v, d / 2 - 1e-12, "attempt %u r %f: %f", attempt, r, v);
            cr_expect_lt(v, d, "attempt %u r %f: %f", attempt, r, v);
            cr_expect_leq(v, 5.0);
        }
    }
}

Test(announce_backoff, bad_jitter_is_ignored)
{
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, NAN), 1.0, 1e-12);
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, -1), 1.0, 1e-12);
    cr_expect_float_eq(announce_backoff(3, 0.25, 5, 1), 1.0, 1e-12);
}
