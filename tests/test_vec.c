/* Tests for vec: capacities (first, doubling, overflow) and reserve. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/vec.h>

Test(vec, next_cap_table)
{
    static const struct {
        size_t cap, want, first, next;
    } cases[] = {
        {0, 0, 16, 0},   /* nothing wanted: nothing changes */
        {0, 1, 16, 16},  /* the first capacity */
        {0, 17, 16, 32}, /* doubled from the first until it fits */
        {0, 1, 0, 1},    /* no first: one */
        {16, 16, 8, 16}, /* fits already */
        {16, 17, 8, 32}, /* doubled from cap, not from first */
        {16, 100, 8, 128},
        {4096, 4097, 4096, 8192},
        {SIZE_MAX / 2 + 1, SIZE_MAX, 1, 0}, /* doubling would overflow */
        {1, SIZE_MAX / 2 + 2, 1, 0},        /* 2^63 is the last doubling, too small */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(vec_next_cap(cases[i].cap, cases[i].want, cases[i].first), cases[i].next,
                     "case %zu", i);
}

struct item {
    int v;
    char name[24];
};

Test(vec, reserve_keeps_the_elements)
{
    struct item *items = NULL;
    size_t n = 0, cap = 0;

    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(vec_reserve(&items, &cap, n + 1, sizeof(*items), 16), 0);
        cr_assert_geq(cap, n + 1);
        items[n].v = i;
        snprintf(items[n].name, sizeof(items[n].name), "i%d", i);
        n++;
    }
    cr_expect_eq(cap, 1024);
    for (size_t i = 0; i < n; i++) {
        char want[24];

        snprintf(want, sizeof(want), "i%zu", i);
        cr_expect_eq(items[i].v, (int)i);
        cr_expect_str_eq(items[i].name, want);
    }
    /* room enough: nothing moves */
    struct item *before = items;

    cr_expect_eq(vec_reserve(&items, &cap, 10, sizeof(*items), 16), 0);
    cr_expect_eq(items, before);
    cr_expect_eq(cap, 1024);
    free(items);
}

Test(vec, reserve_refuses_overflow_and_leaves_the_array)
{
    char *bytes = NULL;
    size_t cap = 0;

    cr_assert_eq(vec_reserve(&bytes, &cap, 10, 1, 4096), 0);
    cr_expect_eq(cap, 4096);
    memcpy(bytes, "kept", 5);
    char *before = bytes;

    cr_expect_eq(vec_reserve(&bytes, &cap, SIZE_MAX, 1, 4096), -ENOMEM);
    cr_expect_eq(vec_reserve(&bytes, &cap, SIZE_MAX / 8, 16, 4096), -ENOMEM);
    cr_expect_eq(bytes, before);
    cr_expect_eq(cap, 4096);
    cr_expect_str_eq(bytes, "kept");
    free(bytes);
}
