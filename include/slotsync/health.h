/* health - announce's health checks: a TCP connect or an HTTP GET, one at a
 * time on the loop, every interval, each bounded by a timeout; and the
 * rise/fall counter that turns their results into up and down.
 */
#ifndef SLOTSYNC_HEALTH_H
#define SLOTSYNC_HEALTH_H

#include <slotsync/health-t.h>

struct http_client;
struct http_request;

/* ---- rise/fall (pure) ---- */

void health_counter_init(struct health_counter *h, int rise, int fall);
/* Count one check result; returns the transition it causes, if any. */
enum health_change health_counter_report(struct health_counter *h, bool ok);

/* ---- the check runner ---- */

/* Set hc up; addr, url, http and arg are borrowed and must outlive it. The
 * timeout of each check is interval_s, kept within 1..5 s. */
void health_check_init(struct health_check *hc, struct ev_loop *loop, struct http_client *http,
                       enum health_kind kind, const struct endpoint *addr, const char *url,
                       double interval_s, health_result_cb cb, void *arg);
/* Run the first check at once, then one every interval (counted from each
 * check's start). */
void health_check_start(struct health_check *hc);
/* Abandon a running check (no callback) and stop. Safe on a zeroed or
 * stopped hc. */
void health_check_stop(struct health_check *hc);

#endif
