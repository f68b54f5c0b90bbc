/* backend-t - the types of a service's backend (backend.h) and of the
 * backend table (table.h), for the modules that hold or lend them. Types
 * only. */
#ifndef SLOTSYNC_BACKEND_T_H
#define SLOTSYNC_BACKEND_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* service_conf, slot_table, server_view and the spares' name sizes are
 * embedded: their headers until they have -t.h ones of their own */
#include <slotsync/config-t.h>
#include <slotsync/slots-t.h>
#include <slotsync/spare-t.h>
#include <slotsync/view-t.h>

struct plan_refusal;

/* One row of "show servers state" for a slot of a backend, while a resync
 * is read. */
struct backend_row {
    uint32_t slot; /* index: server s<slot+1> */
    struct server_view view;
};

/* A sorted set of proxy names. */
struct names {
    char **v;
    size_t n;
};

/* A service's backend and HAProxy's side of it. */
struct backend {
    struct service_conf conf;       /* copy; conf.hosts borrowed from the current config */
    const struct service_conf *svc; /* &conf */
    bool configured;                /* from the config file, else built from defaults */
    bool claimed;                   /* ours: configured, in our services file, or created */
    bool foreign;                   /* its name belongs to a proxy slotsync does not own */
    struct slot_table slots;        /* as many slots as HAProxy has for it */
    struct server_view *have;       /* slots.n entries: HAProxy's view */
    bool *drift;                    /* slots.n entries: HAProxy differed from what we set */
    bool present;                   /* seen in HAProxy at the last resync */
    bool missing_noted;             /* its absence already asked for a reload */
    bool dirty;                     /* needs converging */
    bool page_dirty;                /* endpoints came in a page of a listing in progress */
    bool grow_by_reload;            /* "add server" is not possible or failed */
    size_t want_slots;              /* slots the next render gives it, at least */
    size_t added_to;                /* slots.n after the last runtime growth */
    bool left_out;                  /* not in the file of the reload in flight */
    size_t last_overflow;
    /* commands HAProxy refused, held back until something changes */
    struct plan_refusal *refused;
    size_t n_refused;
    /* static algorithm: instances already warned about for their weight */
    char **weight_warned;
    size_t n_weight_warned;
    /* filled while parsing a resync, freed once adopted */
    struct backend_row *seen;
    size_t n_seen, cap_seen;
    bool seen_backend;
    /* the spare it is bound to (spare.h): "" = its own backend */
    char proxy[SPARE_NAME_SIZE];
    char label[SPARE_LABEL_SIZE]; /* "web (spare:3)" while bound, else "" */
    bool unrouted;                /* no frontend reaches it (render_service_routed) */
    /* run-time backends (dynback.h, HAProxy 3.4+) */
    bool dyn_create;      /* its "add backend" (and slots, publish) goes in the next batch */
    bool dyn_created;     /* HAProxy runs it from "add backend": no reload loaded it yet */
    bool dyn_removing;    /* its "del backend" is in the batch in flight */
    bool dyn_unpublished; /* a removal unpublished it and may have stopped half-way */
};

/* What backend_adopt() did, for the caller's log lines. */
struct backend_adoption {
    size_t contiguous; /* HAProxy has slot servers s1..s<contiguous> without a gap */
    bool gap;          /* rows past a gap in the slot numbers were ignored */
    bool runtime_lost; /* slots added at run time are gone: grow_by_reload is now set */
    bool changed;      /* presence in HAProxy or the slot count changed */
    size_t slots;      /* the slot count now */
    bool missing;      /* not in HAProxy and noted now: a reload should add it */
};

enum backend_grow {
    BACKEND_GROW_NONE,    /* it has the slots, or a reload for them was asked already */
    BACKEND_GROW_RUNTIME, /* "add server" adds them (plan_add_slots(), backend_add_slots()) */
    BACKEND_GROW_RELOAD,  /* a render must: want_slots is set now, so asked once per count */
};

enum backend_reconf {
    BACKEND_RECONF_SAME,     /* nothing that matters changed */
    BACKEND_RECONF_OPTIONS,  /* configured now, or its options or listen changed: reload */
    BACKEND_RECONF_SLOTS,    /* only the slot count changed (*old_slots: from what) */
    BACKEND_RECONF_LEFT,     /* it left the config: built from the defaults now, reload */
    BACKEND_RECONF_DEFAULTS, /* not configured, and the defaults changed: reload */
};

/* The name sets that decide who owns a proxy name (all borrowed). */
struct backend_owners {
    const struct names *base_be; /* backend/listen names of base_config */
    const struct names *base_fe; /* frontend/listen names of base_config */
    const struct names *proxies; /* every backend HAProxy listed */
    const struct names *owned;   /* backends of the services file HAProxy runs */
    bool proxies_known;          /* proxies holds a "show backend" reply */
};

/* What backend_settle() changed, for the caller's log lines. */
struct backend_settling {
    const char *refused_by; /* refused now: who holds the name (static text), else NULL */
    bool freed;             /* was refused, its name is free now */
};

#endif
