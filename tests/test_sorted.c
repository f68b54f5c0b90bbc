/* Tests for sorted: the index found or where a key goes, every position of
 * arrays of every small length, and a key that is not an element. */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/sorted.h>

static int cmp_int(const void *key, const void *elem)
{
    int a = *(const int *)key, b = *(const int *)elem;

    return (a > b) - (a < b);
}

/* Arrays 0, 2, 4, ... of lengths 0..9: each even key is found at its
 * index, each odd key goes after the ones below it. */
Test(sorted, every_position)
{
    int v[9];

    for (size_t n = 0; n <= 9; n++) {
        for (size_t i = 0; i < n; i++)
            v[i] = (int)(2 * i);
        for (int key = -1; key <= (int)(2 * n); key++) {
            bool found = !(key % 2);
            size_t at = sorted_find(&key, v, n, sizeof(v[0]), cmp_int, &found);
            size_t want = key < 0 ? 0 : (size_t)(key + 1) / 2;
            bool want_found = key >= 0 && key % 2 == 0 && (size_t)key < 2 * n;

            cr_expect_eq(at, want, "n %zu key %d", n, key);
            cr_expect_eq(found, want_found, "n %zu key %d", n, key);
        }
    }
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* A key of another type than the elements (a name against an array of
 * pointers), and found left out. */
Test(sorted, names)
{
    static const char *const names[] = {"api", "db", "spare:0", "web"};
    bool found;

    cr_expect_eq(sorted_find("db", names, 4, sizeof(names[0]), cmp_name, &found), 1);
    cr_expect(found);
    cr_expect_eq(sorted_find("cache", names, 4, sizeof(names[0]), cmp_name, &found), 1);
    cr_expect_not(found);
    cr_expect_eq(sorted_find("zzz", names, 4, sizeof(names[0]), cmp_name, NULL), 4);
    cr_expect_eq(sorted_find("a", names, 4, sizeof(names[0]), cmp_name, NULL), 0);
    cr_expect_eq(sorted_find("a", names, 0, sizeof(names[0]), cmp_name, &found), 0);
    cr_expect_not(found);
}
