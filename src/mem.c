/* mem - the heap given back after a large transient buffer (mem.h). */
#include <slotsync/mem.h>

#include <malloc.h>
#include <time.h>

#include <slotsync/log.h>

/* The allocator is the process's: so is its trim state. */
static struct mem_trim_state state;

static double mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool mem__owed_due(const struct mem_trim_state *s, double now)
{
    return s->owed && (s->last_at <= 0 || now - s->last_at >= MEM_TRIM_EVERY_S);
}

bool mem__freed(struct mem_trim_state *s, size_t bytes, double now)
{
    if (bytes >= MEM_TRIM_MIN)
        s->owed = true;
    return mem__owed_due(s, now);
}

void mem__trimmed(struct mem_trim_state *s, double now)
{
    s->owed = false;
    s->last_at = now;
    s->trims++;
}

static void trim(double now)
{
    int released = malloc_trim(0);

    mem__trimmed(&state, now);
    log_debug("mem", "heap trimmed after a large transient buffer (%s)",
              released ? "memory given back" : "nothing to give back");
}

void mem_transient_freed(size_t bytes)
{
    double now;

    if (bytes < MEM_TRIM_MIN && !state.owed)
        return; /* the common case: no clock read */
    now = mono_now();
    if (mem__freed(&state, bytes, now))
        trim(now);
}

bool mem_trim_owed(void)
{
    double now;

    if (!state.owed)
        return false;
    now = mono_now();
    if (!mem__owed_due(&state, now))
        return false;
    trim(now);
    return true;
}

unsigned long long mem_trims(void)
{
    return state.trims;
}
