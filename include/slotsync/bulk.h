/* bulk - the runtime socket or one reload for a large plan (issue 23).
 *
 * Pure: no I/O, no clock. A plan is what the planner would send to HAProxy
 * now. HAProxy applies runtime commands one by one (about 38 us each on
 * 2.6 when a backend holds 1,000 slots: it walks the backend's list to find
 * a server) while a reload parses the whole services file twice ("haproxy
 * -c", then the new worker: about 60 us per server in the file, 3 s a parse
 * at 102,400 servers). A cold start with empty slots, a restarted HAProxy or
 * a mass move can cost more commands than one reload; bulk_choose() says
 * which path is cheaper by these figures. docs/DESIGN.md has the model.
 */
#ifndef SLOTSYNC_BULK_H
#define SLOTSYNC_BULK_H

#include <stdbool.h>
#include <stddef.h>

/* haproxy.bulk_path */
enum bulk_path {
    BULK_PATH_AUTO = 0, /* the cost model decides */
    BULK_PATH_RUNTIME,  /* never a reload for a large plan */
    BULK_PATH_RELOAD,   /* a reload for every plan of BULK_MIN_COMMANDS or more */
};

/* A plan smaller than one batch always goes through the socket: a reload
 * for a few changes is what slotsync exists to avoid. */
#define BULK_MIN_COMMANDS 1024
/* Cost model defaults, measured on HAProxy 2.6 on the bench machine
 * (docs/PERFORMANCE.md). */
#define BULK_COMMAND_US_DEFAULT 38
#define BULK_RELOAD_SERVER_US_DEFAULT 60
/* Whatever a reload costs besides the servers: the render, forking
 * "haproxy -c", the master's reload, reading the new worker's state. */
#define BULK_RELOAD_FIXED_US 150000

struct bulk_input {
    size_t commands;     /* runtime commands the plan holds (an estimate) */
    size_t servers;      /* servers the rendered file would declare */
    unsigned command_us; /* HAProxy's time per runtime command */
    unsigned server_us;  /* a reload's time per server in the file */
    bool reload_allowed; /* no reload in flight, min_reload_interval_ms passed, a way to reload */
    enum bulk_path path; /* haproxy.bulk_path */
};

struct bulk_choice {
    bool reload;      /* render and reload once; false: the runtime socket */
    double runtime_s; /* estimated: commands * command_us */
    double reload_s;  /* estimated: BULK_RELOAD_FIXED_US + servers * server_us */
    const char *why;  /* static text: the rule that decided */
};

/* Which path in applies; fills *out (every field). */
void bulk_choose(const struct bulk_input *in, struct bulk_choice *out);
/* A first listing's pages (issue 23): held for the one reload its end
 * decides, or sent to HAProxy's empty slots as they are read. Asked at
 * each page until it says ESTIMATE, then decided once by the estimate. */
enum bulk_listing_step {
    BULK_LISTING_SEND,     /* send this page; ask again at the next one */
    BULK_LISTING_HOLD,     /* hold the pages (bulk_path is reload) */
    BULK_LISTING_ESTIMATE, /* estimate the whole listing now and decide */
};

struct bulk_listing_facts {
    enum bulk_path path; /* haproxy.bulk_path */
    bool state_known;    /* HAProxy's state read (the plan means something) */
    size_t etcd_count;   /* etcd's count of keys under the prefix; 0: not known */
    size_t valid;        /* valid keys in the pages read so far */
};

enum bulk_listing_step bulk_listing_step(const struct bulk_listing_facts *f);
/* The plan for the pages read so far (commands, servers, for valid keys)
 * scaled to the whole listing of count keys: the commands in proportion,
 * the servers at least one slot per key. */
void bulk_listing_scale(size_t commands, size_t servers, size_t valid, size_t count,
                        size_t *out_commands, size_t *out_servers);
/* "auto", "runtime", "reload" -> enum bulk_path; -1 for anything else. */
int bulk_path_parse(const char *name);
/* The config spelling of p. */
const char *bulk_path_name(enum bulk_path p);

#endif
