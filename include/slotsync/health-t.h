/* health-t - a health check's state (health.h has the functions). */
#ifndef SLOTSYNC_HEALTH_T_H
#define SLOTSYNC_HEALTH_T_H

#include <stdbool.h>
#include <ev.h>

struct endpoint;
struct http_client;
struct http_request;

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

#endif
