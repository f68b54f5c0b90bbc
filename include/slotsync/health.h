/* health - announce's health checks: a TCP connect or an HTTP GET, one at a
 * time on the loop, every interval, each bounded by a timeout; and the
 * rise/fall counter that turns their results into up and down.
 */
#ifndef SLOTSYNC_HEALTH_H
#define SLOTSYNC_HEALTH_H

#include <stdbool.h>

#include <ev.h>

#include <slotsync/endpoint.h>

struct http_client;
struct http_request;

/* ---- rise/fall (pure) ---- */

/* Health checks as a rise/fall counter. Until the first success the endpoint
 * is down and one success is enough to bring it up; after it has gone down,
 * rise consecutive successes are needed; fall consecutive failures bring an
 * up endpoint down. */
struct health_counter {
    int rise, fall;
    int successes, failures; /* consecutive */
    bool up;
    bool ever_up;
};

enum health_change { HEALTH_SAME = 0, HEALTH_UP, HEALTH_DOWN };

void health_counter_init(struct health_counter *h, int rise, int fall);
/* Count one check result; returns the transition it causes, if any. */
enum health_change health_counter_report(struct health_counter *h, bool ok);

/* ---- the check runner ---- */

enum health_kind { HEALTH_TCP = 0, HEALTH_HTTP };

/* ok: the check passed; why (borrowed, NULL when ok) says what failed. The
 * callback may call health_check_stop(). */
typedef void (*health_result_cb)(bool ok, const char *why, void *arg);

/* Embedded in its owner; every field is the runner's. */
struct health_check {
    struct ev_loop *loop;
    struct http_client *http;
    enum health_kind kind;
    const struct endpoint *addr; /* HEALTH_TCP: connect here */
    const char *url;             /* HEALTH_HTTP: GET this; 2xx or 3xx is ok */
    double interval_s, timeout_s;
    health_result_cb cb;
    void *arg;
    bool active; /* between start and stop */
    bool running;
    ev_tstamp started;
    ev_timer timer;    /* next check */
    ev_timer deadline; /* the running check's timeout */
    ev_io io;          /* TCP check: the connecting socket */
    int fd;
    struct http_request *req;
};

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
