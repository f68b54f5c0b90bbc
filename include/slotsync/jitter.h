/* jitter - the one source of randomness for retry delays.
 *
 * xorshift64*: jitter only (spreading retries so peers do not retry in step),
 * nothing that needs unpredictability. One state for the process, seeded
 * once by main(); unseeded (unit tests) it starts from a fixed state.
 */
#ifndef SLOTSYNC_JITTER_H
#define SLOTSYNC_JITTER_H

#include <stdint.h>

/* Seed the generator (0 is replaced by a fixed non-zero state). */
void jitter_seed(uint64_t seed);
/* Uniform in [0, 1). */
double jitter_unit(void);
/* A factor uniform in [1 - spread, 1 + spread): delay * jitter_around(0.2). */
double jitter_around(double spread);

#endif
