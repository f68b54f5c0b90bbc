/* bulk-t - the cost model's types (bulk.h has the functions). */
#ifndef SLOTSYNC_BULK_T_H
#define SLOTSYNC_BULK_T_H

#include <stdbool.h>
#include <stddef.h>

/* haproxy.bulk_path */
enum bulk_path {
    BULK_PATH_AUTO = 0, /* the cost model decides */
    BULK_PATH_RUNTIME,  /* never a reload for a large plan */
    BULK_PATH_RELOAD,   /* a reload for every plan of BULK_MIN_COMMANDS or more */
};

struct bulk_input {
    size_t commands;     /* runtime commands the plan holds (an estimate) */
    size_t servers;      /* servers the rendered file would declare */
    double command_us;   /* HAProxy's time per runtime command */
    double server_us;    /* a reload's time per server in the file */
    bool reload_allowed; /* no reload in flight, min_reload_interval_ms passed, a way to reload */
    enum bulk_path path; /* haproxy.bulk_path */
};

struct bulk_choice {
    bool reload;      /* render and reload once; false: the runtime socket */
    double runtime_s; /* estimated: commands * command_us */
    double reload_s;  /* estimated: BULK_RELOAD_FIXED_US + servers * server_us */
    const char *why;  /* static text: the rule that decided */
};

/* A first listing's pages: held for the one reload its end decides, or
 * sent to HAProxy's empty slots as they are read. */
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

/* A figure learned from this HAProxy: samples so far and their moving
 * average. Zeroed: nothing learned. */
struct bulk_learned {
    double us;
    unsigned long long samples;
};

/* Where a figure the model uses came from. */
enum bulk_cost_source {
    BULK_COST_CONFIG,   /* set in the config: used as it is */
    BULK_COST_LEARNED,  /* measured on this HAProxy by slotsync */
    BULK_COST_VERSION,  /* measured for this HAProxy version on the bench machine */
    BULK_COST_FALLBACK, /* HAProxy's version not known yet: the oldest version's */
};

struct bulk_cost {
    double us;
    enum bulk_cost_source source;
};

#endif
