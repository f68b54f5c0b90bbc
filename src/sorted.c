/* sorted - one binary search over a sorted array (sorted.h). */
#include <slotsync/sorted.h>

size_t sorted_find(const void *key, const void *base, size_t n, size_t size,
                   int (*cmp)(const void *key, const void *elem), bool *found)
{
    const char *b = base;
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cmp(key, b + mid * size) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (found)
        *found = lo < n && cmp(key, b + lo * size) == 0;
    return lo;
}
