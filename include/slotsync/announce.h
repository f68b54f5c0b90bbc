/* announce - the registration sidekick: keeps one endpoint's key alive in
 * etcd under a lease while the service is healthy (and, with -- CMD, while
 * its child process lives).
 *
 * Its command line is announce_opts.h, the value it publishes
 * announce_value.h, what a read of the key means announce_key.h (all pure);
 * the backoff is exported here so that it can be tested without a loop;
 * announce_main() wires them to the loop, the etcd client and the checks
 * (health.h).
 */
#ifndef SLOTSYNC_ANNOUNCE_H
#define SLOTSYNC_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Delay in seconds before retry number attempt (0 = first retry): the
 * exponential base * 2^attempt capped at cap, of which the upper half is
 * scaled by r in [0, 1) (jitter), so the result is in [d/2, d). */
double announce_backoff(unsigned attempt, double base, double cap, double r);

/* Entry point for "slotsync announce ...": argv[0] is "announce". Returns the
 * process exit status: 2 for a bad command line, the child's status with
 * -- CMD (128 + signal if it was killed), else 0 after a clean stop on
 * SIGTERM/SIGINT, 1 on a fatal error. SIGUSR1 drains and SIGUSR2 makes the
 * endpoint ready again without stopping. */
int announce_main(int argc, char **argv);

#endif
