/* vec - one growable array (vec.h). */
#include <slotsync/vec.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t vec_next_cap(size_t cap, size_t want, size_t first)
{
    size_t ncap;

    if (want <= cap)
        return cap;
    ncap = cap ? cap : first ? first : 1;
    while (ncap < want) {
        if (ncap > SIZE_MAX / 2)
            return 0;
        ncap *= 2;
    }
    return ncap;
}

int vec_reserve(void *itemsp, size_t *cap, size_t want, size_t size, size_t first)
{
    void *items, *bigger;
    size_t ncap;

    if (want <= *cap)
        return 0;
    ncap = vec_next_cap(*cap, want, first);
    if (ncap == 0 || size == 0 || ncap > SIZE_MAX / size)
        return -ENOMEM;
    /* The caller's pointer is copied in and out rather than cast to
     * void **: its type is the caller's element type. */
    memcpy(&items, itemsp, sizeof(items));
    bigger = realloc(items, ncap * size);
    if (!bigger)
        return -ENOMEM;
    memcpy(itemsp, &bigger, sizeof(bigger));
    *cap = ncap;
    return 0;
}
