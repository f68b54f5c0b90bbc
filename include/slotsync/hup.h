/* hup - what a SIGHUP does with a config read again: a pure decision.
 *
 * From the config in use, the new one and the backend table, hup_decide()
 * says what to do, as a list of actions the controller carries out in
 * order: refuse the file (it changes a field that needs a restart), add a
 * backend for a service new in the config, give each backend its part of
 * the new config (backend_reconfigure(), with the outcome it will have),
 * warn that admin.* waits for a restart, reload for a new HTTP frontend.
 * Nothing is changed here; the TLS, token and password files, the base
 * config's names and the settling that follows are the controller's.
 */
#ifndef SLOTSYNC_HUP_H
#define SLOTSYNC_HUP_H

#include <stdbool.h>
#include <stddef.h>

#include <slotsync/backend-t.h>

struct table;

struct config;

enum hup_kind {
    HUP_REFUSE,        /* a restart field changed (fields): nothing else is done */
    HUP_ADD,           /* sc is new: a configured backend, settled; claimed: a reload */
    HUP_RECONFIGURE,   /* backend service takes sc (NULL: the defaults); reconf says how */
    HUP_ADMIN_KEPT,    /* admin.* changed: kept until a restart, with a warning */
    HUP_LOG_FORMAT_KEPT, /* log_format changed: kept until a restart, with a warning */
    HUP_HTTP_FRONTEND, /* the HTTP frontend changed: a reload */
};

struct hup_action {
    enum hup_kind kind;
    const char *service;           /* borrowed from the new config or the table */
    const struct service_conf *sc; /* the new config's service, or NULL */
    enum backend_reconf reconf;    /* HUP_RECONFIGURE: backend_reconfigure()'s answer */
    int old_slots, new_slots;      /* HUP_RECONFIGURE with BACKEND_RECONF_SLOTS */
};

struct hup_plan {
    struct hup_action *v; /* owned: hup_plan_free() */
    size_t n;
    bool changed;     /* a backend or the HTTP frontend changed ("no backend changed" else) */
    char fields[512]; /* HUP_REFUSE: the restart fields that changed ("" if not named) */
};

/* SIGHUP's decision for nc replacing oc over t (all borrowed, nothing
 * changed). *out gets the actions in the order they are to be carried out:
 * a single HUP_REFUSE, or the new config's services in its order (HUP_ADD
 * or HUP_RECONFIGURE), then every other backend of t in t's order
 * (HUP_RECONFIGURE: every backend gets the new config, even unchanged),
 * then HUP_ADMIN_KEPT, HUP_LOG_FORMAT_KEPT and HUP_HTTP_FRONTEND when they
 * apply. 0 or -ENOMEM
 * (*out empty). */
int hup_decide(const struct config *oc, const struct config *nc, const struct table *t,
               struct hup_plan *out);
void hup_plan_free(struct hup_plan *p);

#endif
