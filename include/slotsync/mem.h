/* mem - the heap given back to the system after a large transient buffer.
 *
 * glibc keeps what is freed in its heap: after a 51 MiB listing page (its
 * body, its JSON tree, its decoded keys) RSS stayed at five times its idle
 * figure, after 10 MiB runtime replies at twice. Each place that frees a
 * transient buffer (an HTTP reply or stream chunk, a runtime reply or
 * batch line) says how big it was; one of at least MEM_TRIM_MIN bytes owes
 * a malloc_trim(0), which hands every free page of the heap back (the top
 * with sbrk, the middle with MADV_DONTNEED). A trim walks the heap, so it
 * runs at most once per MEM_TRIM_EVERY_S (monotonic clock); one owed
 * meanwhile is paid by mem_trim_owed(), which the daemon calls once a
 * second. Small buffers never trim: the heap they leave is reused.
 */
#ifndef SLOTSYNC_MEM_H
#define SLOTSYNC_MEM_H

#include <stdbool.h>
#include <stddef.h>

#define MEM_TRIM_MIN (1u << 20)
#define MEM_TRIM_EVERY_S 1.0

/* The decision, pure: a trim is owed (owed), and when the last one ran. */
struct mem_trim_state {
    bool owed;
    double last_at; /* monotonic seconds; 0 = never */
    unsigned long long trims;
};

/* A transient buffer of bytes was freed at now: true if a trim is due now
 * (then the caller trims and calls mem__trimmed()). */
bool mem__freed(struct mem_trim_state *s, size_t bytes, double now);
/* The timer's question: true if a trim is owed and allowed at now. */
bool mem__owed_due(const struct mem_trim_state *s, double now);
void mem__trimmed(struct mem_trim_state *s, double now);

/* A transient buffer of bytes was just freed: trims the heap if it was
 * large and the last trim is old enough, else remembers the debt. */
void mem_transient_freed(size_t bytes);
/* Pay a trim owed since the last one, if allowed now (called once a
 * second). Returns whether it trimmed. */
bool mem_trim_owed(void);
/* Trims done since start. */
unsigned long long mem_trims(void);

#endif
