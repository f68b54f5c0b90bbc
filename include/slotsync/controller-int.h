/* controller-int - what the controller's files share, for them only: the
 * owning context of the daemon's loop (struct ctl) and the functions that
 * cross between controller.c (setup, signals, SIGHUP, render mode),
 * controller_etcd.c (the etcd sync's callbacks into the catalog and the
 * table), controller_haproxy.c (the loop's ev_prepare and the callbacks of
 * apply, pool, rollout and livefile) and controller_report.c (the admin
 * endpoint's and SIGUSR1's view). */
#ifndef SLOTSYNC_CONTROLLER_INT_H
#define SLOTSYNC_CONTROLLER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <slotsync/admin-t.h>
#include <slotsync/apply-t.h>
#include <slotsync/bulk-t.h>
#include <slotsync/dnshosts-t.h>
#include <slotsync/etcd-t.h>
#include <slotsync/livefile-t.h>
#include <slotsync/metrics-t.h>
#include <slotsync/pool-t.h>
#include <slotsync/rollout-t.h>
#include <slotsync/table-t.h>

struct admin;
struct config;
struct etcd_client;
struct etcd_sync;
struct http_client;
struct notify;

#define CONTROLLER_MOD "sync" /* the module name of every controller line */

struct ctl {
    struct ev_loop *loop;
    const struct config *cfg;
    struct http_client *http;
    struct etcd_client *etcd;
    struct etcd_sync *sync;
    struct catalog *cat;
    struct table tab;         /* the backends and who owns which proxy name (table.h) */
    struct config *owned_cfg; /* a config loaded on SIGHUP */
    int (*load_config)(struct config *out, char **errmsg, void *arg);
    void *load_arg;
    struct rollout ro;  /* reloads: when, what is rendered, retries (rollout.h) */
    bool base_defaults; /* base_config declares DYNBACK_BASE_DEFAULTS (dynback.h) */
    struct apply ap;    /* HAProxy's state read, batches sent (apply.h) */
    struct pool pool;   /* spare backends: new services without a reload (pool.h) */
    /* the services file and Host map kept current between reloads (livefile.h) */
    struct livefile live;
    unsigned long long live_sig; /* batches, resyncs, reloads, bindings at the last look */
    bool live_changed;           /* a key changed since the last touch */
    bool live_known;             /* HAProxy's state has been read once: present is known */
    ev_prepare flush;
    ev_timer resync_timer, deadline;
    ev_signal sig_term, sig_int, sig_hup;
    ev_signal sig_usr1;    /* state dump */
    ev_timer log_timer;    /* prints the log's rate-limit summaries */
    struct notify *notify; /* systemd readiness, status, watchdog */
    struct dnshosts dns;   /* the "dns" hosts file */
    bool listed;           /* a complete etcd listing has been applied */
    bool listing;          /* a listing is being applied: one summary, not a line a key */
    /* issue 23: the socket or one reload for a large plan (bulk.h), decided
     * once when a listing ends and once per read of HAProxy's state: a
     * restart found by the runtime socket's reconnect keeps the applier's
     * epoch, so every read counts (ap.stats.resyncs), not only a new epoch */
    bool bulk_due;
    /* a first listing's pages are held for one reload (bulk_hold_listing) */
    bool bulk_hold, bulk_hold_decided;
    unsigned long long bulk_resyncs; /* ap.stats.resyncs at the last decision */
    /* the cost model's figures as learned from this HAProxy (bulk.h), the
     * applier's and the rollout's counters they were last fed from, and
     * the version they were learned on (a new version starts over) */
    struct bulk_learned bulk_cmd, bulk_srv;
    unsigned long long bulk_fed_commands, bulk_fed_reloads;
    double bulk_fed_seconds;
    unsigned bulk_major, bulk_minor;

    /* The last full listing had no valid key and none came since. Until
     * HAProxy is known to hold no filled slot (or keys appear), listed stays
     * false: nothing is planned, rendered or sent. */
    size_t list_valid; /* valid keys in the listing being applied */
    bool registry_empty;
    bool empty_held;                       /* HAProxy's filled slots are being kept (the gauge) */
    unsigned long long empty_seen_resyncs; /* stats.resyncs at the last decision */

    /* render mode */
    bool render_only;
    const char *render_path;
    int render_err;
    char *render_errmsg;
    char *etcd_last_error; /* the last reason the etcd sync gave for being down */
    bool etcd_up;          /* the sync's last connected() report said up */
    double etcd_since;     /* clock_mono() of that report, or of the start */
    struct {
        unsigned long long empty_listings_held, bulk_reloads;
    } stats; /* the applier's are in ap.stats, the reloads' in ro.stats, the table's in tab */
    /* inspection: the admin endpoint and what only it needs */
    struct admin *admin;
    struct metrics obs; /* histograms and labelled counters; the rest comes from stats */
    struct metrics_recent *recent;
    struct metrics_backend *obs_backends;
};

/* controller_etcd.c */
extern const struct etcd_sync_ops controller__sync_ops;
/* Give the catalog c->cfg's caps (at start and on SIGHUP). */
void controller__set_caps(struct ctl *c);
/* Move the catalog's dirty flags onto the backends (new services get
 * theirs, settled and placed). */
void controller__collect_dirty(struct ctl *c);

/* controller_haproxy.c */
extern const struct apply_ops controller__apply_ops;
extern const struct pool_ops controller__pool_ops;
extern const struct rollout_ops controller__rollout_ops;
/* A claimed service HAProxy runs no backend for: a run-time backend, a
 * spare, or a reload. */
void controller__place(struct ctl *c, struct backend *b);
/* A reload is needed (rollout_want()); arg is the struct ctl. */
void controller__want_reload(const char *why, const char *name, void *arg);
/* The loop's ev_prepare: once per iteration, everything that changed goes
 * out as one batch. */
void controller__on_prepare(struct ev_loop *loop, ev_prepare *w, int revents);

/* controller_report.c */
extern const struct admin_ops controller__admin_ops;
/* SIGUSR1: the state dump. */
void controller__on_dump_signal(struct ev_loop *loop, ev_signal *w, int revents);
/* The "stopped" summary lines at the end of the loop. */
void controller__log_stopped(const struct ctl *c);

#endif
