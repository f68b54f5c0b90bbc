/* jitter - the one source of randomness for retry delays (xorshift64*). */
#include <slotsync/jitter.h>

#define JITTER_DEFAULT_STATE 0x9E3779B97F4A7C15ULL

static uint64_t state = JITTER_DEFAULT_STATE;

void jitter_seed(uint64_t seed)
{
    state = seed ? seed : JITTER_DEFAULT_STATE;
}

double jitter_unit(void)
{
    uint64_t x = state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
}

double jitter_around(double spread)
{
    return 1.0 - spread + 2.0 * spread * jitter_unit();
}
