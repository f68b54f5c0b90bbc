/* hup - what a SIGHUP does with a config read again (hup.h). */
#include <slotsync/hup.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/backend.h>
#include <slotsync/config.h>
#include <slotsync/table.h>

static struct hup_action *push(struct hup_plan *p, enum hup_kind kind, const char *service,
                               const struct service_conf *sc)
{
    struct hup_action *a = &p->v[p->n++];

    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->service = service;
    a->sc = sc;
    return a;
}

static void reconfigure(struct hup_plan *p, const struct backend *b, const struct service_conf *sc,
                        const struct service_options *defaults)
{
    struct hup_action *a = push(p, HUP_RECONFIGURE, b->conf.name, sc);

    a->reconf = backend_reconf_of(b, sc, defaults);
    a->old_slots = b->conf.opt.slots;
    a->new_slots = sc ? sc->opt.slots : defaults->slots;
    if (a->reconf != BACKEND_RECONF_SAME)
        p->changed = true;
}

int hup_decide(const struct config *oc, const struct config *nc, const struct table *t,
               struct hup_plan *out)
{
    memset(out, 0, sizeof(*out));
    /* every service and backend once, and three more */
    out->v = calloc(nc->n_services + t->n + 3, sizeof(*out->v));
    if (!out->v)
        return -ENOMEM;
    if (!config_same_restart_fields(nc, oc)) {
        /* Name what changed (issue 19), not the whole list. */
        if (!config_restart_fields_changed(nc, oc, out->fields, sizeof(out->fields)))
            out->fields[0] = '\0';
        push(out, HUP_REFUSE, NULL, NULL);
        return 0;
    }
    for (size_t i = 0; i < nc->n_services; i++) {
        const struct service_conf *sc = &nc->services[i];
        const struct backend *b = table_find(t, sc->name);

        if (b) {
            reconfigure(out, b, sc, &nc->defaults);
        } else {
            push(out, HUP_ADD, sc->name, sc);
            out->changed = true;
        }
    }
    for (size_t i = 0; i < t->n; i++)
        if (!config_find_service(nc, t->v[i]->conf.name))
            reconfigure(out, t->v[i], NULL, &nc->defaults);
    if (!config_same_listen(&nc->admin_listen, &oc->admin_listen) ||
        !config_same_admin(&nc->admin, &oc->admin))
        push(out, HUP_ADMIN_KEPT, NULL, NULL);
    if (nc->log_format != oc->log_format)
        push(out, HUP_LOG_FORMAT_KEPT, NULL, NULL);
    if (!config_same_http_frontend(nc, oc)) {
        push(out, HUP_HTTP_FRONTEND, NULL, NULL);
        out->changed = true;
    }
    return 0;
}

void hup_plan_free(struct hup_plan *p)
{
    free(p->v);
    p->v = NULL;
    p->n = 0;
}
