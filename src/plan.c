/* plan - runtime commands from "what HAProxy has" to "what we want".
 *
 * Every function here either succeeds completely or leaves the plan (and the
 * caller's view of HAProxy) as it was: a half-planned slot whose expected
 * state was already recorded would make the next pass believe HAProxy has
 * something it was never told.
 */
#include <slotsync/plan.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/config-t.h>
#include <slotsync/endpoint.h>
#include <slotsync/names.h>
#include <slotsync/routes-t.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots-t.h>
#include <slotsync/spare.h>
#include <slotsync/vec.h>
#include <slotsync/view.h>

/* "s" + the digits of a size_t + NUL */
#define SLOT_NAME_SIZE 24

#define EMPTY_ADDR "0.0.0.0"

/* runtime.c cuts a batch into CLI lines of RUNTIME_LINE_MAX bytes and never
 * cuts a command: the longest one, with its newline, fits in one line. */
_Static_assert(PLAN_CMD_MAX + 1 <= RUNTIME_LINE_MAX, "a command fits in a CLI line");

void plan_init(struct plan *p)
{
    memset(p, 0, sizeof(*p));
}

/* Free the commands from index n on, and the changes they carried. */
static void plan_truncate(struct plan *p, size_t n)
{
    while (p->n > n)
        free(p->cmds[--p->n]);
    while (p->n_changes && p->changes[p->n_changes - 1].first >= n)
        free(p->changes[--p->n_changes].instance);
}

void plan_reset(struct plan *p)
{
    plan_truncate(p, 0);
}

void plan_free(struct plan *p)
{
    plan_reset(p);
    free(p->cmds);
    free(p->changes);
    free(p->origin);
    plan_init(p);
}

/* The worst case of validated input: "add map <path> <host> <service>". */
_Static_assert(sizeof("add map ") + CONFIG_PATH_MAX + 1 + CONFIG_HOSTNAME_MAX + 1 +
                       SERVICE_NAME_MAX <=
                   PLAN_CMD_MAX,
               "the longest map command must fit in PLAN_CMD_MAX");
/* "add server <service>/s<slot> 0.0.0.0:0 <server_options>" */
_Static_assert(sizeof("add server /s 0.0.0.0:0 ") + SERVICE_NAME_MAX + 20 + CONFIG_OPTIONS_MAX <=
                   PLAN_CMD_MAX,
               "the longest add server command must fit in PLAN_CMD_MAX");

/* The text is formatted into memory of its own size, then checked, so no
 * argument, whatever it holds, can smuggle a second command onto the runtime
 * socket, and none is cut short. Empty commands are refused too: one would
 * read as a blank line in the batch. */
int plan_add(struct plan *p, const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len <= 0 || len > PLAN_CMD_MAX)
        return -EINVAL;
    if (p->n == p->cap) {
        /* cmds and origin grow together; cap is theirs once both did. */
        size_t cmds_cap = p->cap, origin_cap = p->cap;

        if (vec_reserve(&p->cmds, &cmds_cap, p->n + 1, sizeof(*p->cmds), 16) < 0 ||
            vec_reserve(&p->origin, &origin_cap, p->n + 1, sizeof(*p->origin), 16) < 0)
            return -ENOMEM;
        p->cap = cmds_cap;
    }
    cmd = malloc((size_t)len + 1);
    if (!cmd)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(cmd, (size_t)len + 1, fmt, ap);
    va_end(ap);
    /* len, not strlen(): a "%c" of NUL must be caught, not cut */
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)cmd[i];

        if (c < 0x20 || c >= 0x7f || c == ';') {
            free(cmd);
            return -EINVAL;
        }
    }
    memset(&p->origin[p->n], 0, sizeof(p->origin[p->n]));
    p->origin[p->n].slot = -1;
    p->cmds[p->n++] = cmd;
    return 0;
}

static enum server_admin admin_of(enum endpoint_state state)
{
    switch (state) {
    case ENDPOINT_DRAIN:
        return SERVER_DRAIN;
    case ENDPOINT_MAINT:
        return SERVER_MAINT;
    case ENDPOINT_READY:
    default:
        return SERVER_READY;
    }
}

static bool known(const struct server_view *have)
{
    return view_known(have);
}

static const char *admin_name(enum server_admin admin)
{
    return admin == SERVER_MAINT ? "maint" : admin == SERVER_DRAIN ? "drain" : "ready";
}

/* Append " "-separated text to a PLAN_STATE_TEXT buffer (sized for the
 * longest it gets: an address, a weight and a state). */
static void state_text(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void state_text(char *buf, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;

    if (len && len + 1 < PLAN_STATE_TEXT)
        buf[len++] = ' ';
    va_start(ap, fmt);
    vsnprintf(buf + len, PLAN_STATE_TEXT - len, fmt, ap);
    va_end(ap);
}

static const char *bracket_open(const char *ip)
{
    return strchr(ip, ':') ? "[" : "";
}

static const char *bracket_close(const char *ip)
{
    return strchr(ip, ':') ? "]" : "";
}

/* Record what the commands cmds[first..p->n-1] change in one slot. */
static int note_change(struct plan *p, const char *backend, size_t index, size_t first,
                       const struct slot *want, const struct server_view *have)
{
    bool unknown = !known(have);
    const char *waddr = want->instance ? want->ep.host : EMPTY_ADDR;
    unsigned wport = want->instance ? want->ep.port : 0;
    enum server_admin wadmin = want->instance ? admin_of(want->ep.state) : SERVER_MAINT;
    struct plan_change *ch;

    if (vec_reserve(&p->changes, &p->cap_changes, p->n_changes + 1, sizeof(*p->changes), 16) < 0)
        return -ENOMEM;
    ch = &p->changes[p->n_changes];
    memset(ch, 0, sizeof(*ch));
    if (want->instance && !(ch->instance = strdup(want->instance)))
        return -ENOMEM;
    snprintf(ch->backend, sizeof(ch->backend), "%s", backend);
    ch->slot = index;
    ch->first = first;
    ch->n = p->n - first;
    ch->known = !unknown;
    if (unknown || !view_addr_is(have, waddr) || have->port != wport) {
        char haddr[VIEW_ADDR_TEXT];

        /* haddr is filled before the call that reads it: C leaves the
         * order of a call's arguments unspecified (issue 19). */
        if (!unknown) {
            view_addr(have, haddr);
            state_text(ch->had, "addr %s%s%s:%u", bracket_open(haddr), haddr, bracket_close(haddr),
                       (unsigned)have->port);
        }
        state_text(ch->want, "addr %s%s%s:%u", bracket_open(waddr), waddr, bracket_close(waddr),
                   wport);
    }
    if (want->instance && (unknown || have->weight != (int)want->ep.weight)) {
        if (!unknown)
            state_text(ch->had, "weight %d", have->weight);
        state_text(ch->want, "weight %u", (unsigned)want->ep.weight);
    }
    if (unknown || have->admin != wadmin) {
        if (!unknown)
            state_text(ch->had, "%s", admin_name(have->admin));
        state_text(ch->want, "%s", want->instance ? endpoint_state_name(want->ep.state) : "maint");
    }
    p->n_changes++;
    return 0;
}

/* The admin state wanted for ep. With a static algorithm weight 0 cannot be
 * sent as such: a ready endpoint of weight 0 drains instead. */
static enum server_admin admin_wanted(const struct endpoint *ep, const struct plan_opts *opts)
{
    if (opts && opts->static_weights && ep->weight == 0 && ep->state == ENDPOINT_READY)
        return SERVER_DRAIN;
    return admin_of(ep->state);
}

static void seen_of(const struct server_view *have, struct server_view *out)
{
    memset(out, 0, sizeof(*out));
    if (known(have))
        *out = *have;
}

static bool same_want(const struct plan_refusal *r, const struct slot *want)
{
    if (!r->instance || !want->instance)
        return !r->instance && !want->instance;
    return strcmp(r->instance, want->instance) == 0 && endpoint_equal(&r->ep, &want->ep);
}

bool plan_refused(const struct plan_refusal *refused, size_t n, size_t slot, const char *cmd,
                  const struct slot *want, const struct server_view *have)
{
    struct server_view seen;

    seen_of(have, &seen);
    for (size_t i = 0; i < n; i++) {
        const struct plan_refusal *r = &refused[i];

        if (r->slot == slot && strcmp(r->cmd, cmd) == 0 && same_want(r, want) &&
            view_same(&r->before, &seen))
            return true;
    }
    return false;
}

void plan_refusal_clear(struct plan_refusal *r)
{
    free(r->instance);
    memset(r, 0, sizeof(*r));
}

/* The fields of a slot a command sets. */
enum { FIELD_ADDR = 1, FIELD_WEIGHT = 2, FIELD_STATE = 4 };

static unsigned cmd_field(const char *cmd)
{
    static const char prefix[] = PLAN_SET_SERVER;
    const char *p;

    if (strncmp(cmd, prefix, sizeof(prefix) - 1) != 0 ||
        !(p = strchr(cmd + sizeof(prefix) - 1, ' ')))
        return 0;
    if (strncmp(p, " addr ", 6) == 0)
        return FIELD_ADDR;
    if (strncmp(p, " weight ", 8) == 0)
        return FIELD_WEIGHT;
    if (strncmp(p, " state ", 7) == 0)
        return FIELD_STATE;
    return 0;
}

int plan_refusal_set(struct plan_refusal *r, const char *cmd, const struct plan_origin *o,
                     const struct slot *want, struct server_view *have)
{
    unsigned field = cmd_field(cmd);
    char *inst = NULL;

    if (o->slot < 0 || !field || strlen(cmd) > PLAN_CMD_MAX)
        return -EINVAL;
    if (want->instance && !(inst = strdup(want->instance)))
        return -ENOMEM;
    plan_refusal_clear(r);
    r->slot = (size_t)o->slot;
    snprintf(r->cmd, sizeof(r->cmd), "%s", cmd);
    r->instance = inst;
    if (inst)
        r->ep = want->ep;
    r->before = o->before;
    if (known(have) && known(&o->before)) {
        if (field == FIELD_ADDR) {
            memcpy(have->addr, o->before.addr, sizeof(have->addr));
            have->family = o->before.family;
            have->port = o->before.port;
        } else if (field == FIELD_WEIGHT) {
            have->weight = o->before.weight;
        } else {
            have->admin = o->before.admin;
        }
        seen_of(have, &r->before);
    }
    return 0;
}

/* Append the commands for one slot, reading have only, and the change they
 * make. On failure the plan is back where it was. Returns the number of
 * commands added or a negative errno. */
static int slot_commands(struct plan *p, const char *backend, size_t index, const struct slot *want,
                         const struct server_view *have, const struct plan_opts *opts,
                         unsigned *held)
{
    bool static_weights = opts && opts->static_weights;
    const struct endpoint *ep = &want->ep;
    bool unknown = !known(have);
    size_t start = p->n;
    int ret = 0;

    if (opts && opts->additions_only && (!want->instance || !view_empty(have))) {
        *held = FIELD_ADDR | FIELD_WEIGHT | FIELD_STATE; /* nothing planned: nothing expected */
        return 0;
    }
    if (!want->instance) {
        if (unknown || have->admin != SERVER_MAINT)
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " state maint", backend, index + 1);
        if (ret == 0 && (unknown || !view_addr_is(have, EMPTY_ADDR) || have->port != 0))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " addr " EMPTY_ADDR " port 0", backend,
                           index + 1);
    } else {
        if (unknown || !view_addr_is(have, ep->host) || have->port != ep->port)
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " addr %s port %u", backend, index + 1,
                           ep->host, (unsigned)ep->port);
        if (ret == 0 && !static_weights && (unknown || have->weight != (int)ep->weight))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " weight %u", backend, index + 1,
                           (unsigned)ep->weight);
        if (ret == 0 && (unknown || have->admin != admin_wanted(ep, opts)))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " state %s", backend, index + 1,
                           admin_wanted(ep, opts) == SERVER_DRAIN ? "drain"
                                                                  : endpoint_state_name(ep->state));
    }
    if (ret < 0) {
        plan_truncate(p, start);
        return ret;
    }
    /* Drop what HAProxy refused under the same conditions (the fields they
     * set are not expected to change), and note where the rest came from. */
    *held = 0;
    for (size_t i = start; i < p->n;) {
        if (opts && plan_refused(opts->refused, opts->n_refused, index, p->cmds[i], want, have)) {
            *held |= cmd_field(p->cmds[i]);
            free(p->cmds[i]);
            memmove(p->cmds + i, p->cmds + i + 1, (p->n - i - 1) * sizeof(*p->cmds));
            memmove(p->origin + i, p->origin + i + 1, (p->n - i - 1) * sizeof(*p->origin));
            p->n--;
            continue;
        }
        snprintf(p->origin[i].backend, sizeof(p->origin[i].backend), "%s", backend);
        p->origin[i].slot = (long)index;
        seen_of(have, &p->origin[i].before);
        i++;
    }
    if (p->n > start && (ret = note_change(p, backend, index, start, want, have)) < 0) {
        plan_truncate(p, start);
        return ret;
    }
    return (int)(p->n - start);
}

/* What HAProxy will have once slot_commands()' output is applied. Only the
 * fields the commands set are touched: op_state and admin_bits are left for
 * the next "show servers state" to report. */
static void expect_state(struct server_view *have, const struct slot *want,
                         const struct plan_opts *opts, unsigned held)
{
    if (held == (FIELD_ADDR | FIELD_WEIGHT | FIELD_STATE))
        return; /* nothing was planned for it */
    if (!known(have)) {
        /* Known from now on; a field no command set (the weight of an
         * emptied slot) stays 0, which the next plan does not trust. */
        memset(have, 0, sizeof(*have));
        have->family = VIEW_IPV4;
    }
    if (!(held & FIELD_ADDR)) {
        /* validated input: an endpoint's host is an IP literal */
        if (view_set_addr(have, want->instance ? want->ep.host : EMPTY_ADDR) < 0)
            memset(have, 0, sizeof(*have)); /* unknown: the next plan sends everything */
        have->port = want->instance ? want->ep.port : 0;
    }
    if (!known(have))
        return;
    if (!want->instance) {
        if (!(held & FIELD_STATE))
            have->admin = SERVER_MAINT;
        return;
    }
    if ((!opts || !opts->static_weights) && !(held & FIELD_WEIGHT))
        have->weight = want->ep.weight;
    if (!(held & FIELD_STATE))
        have->admin = admin_wanted(&want->ep, opts);
}

/* Borrows everything; updates *have on success. Returns the number of
 * commands added, -EINVAL for a backend name that is not a valid service
 * name or a spare's (or a field that would make an invalid command), or -ENOMEM. */
int plan_slot(struct plan *p, const char *backend, size_t index, const struct slot *want,
              struct server_view *have)
{
    int ret;

    if (!spare_proxy_name_valid(backend))
        return -EINVAL;
    unsigned held = 0;

    ret = slot_commands(p, backend, index, want, have, NULL, &held);
    if (ret >= 0 && have)
        expect_state(have, want, NULL, held);
    return ret;
}

/* Plans every slot before updating any entry of have, so that a failure
 * halfway leaves both the plan and have untouched. */
int plan_backend(struct plan *p, const char *backend, const struct slot_table *t,
                 struct server_view *have)
{
    return plan_backend_opts(p, backend, t, have, NULL);
}

int plan_backend_opts(struct plan *p, const char *backend, const struct slot_table *t,
                      struct server_view *have, const struct plan_opts *opts)
{
    unsigned char *held = NULL; /* per slot: fields held back by a refusal */
    size_t start = p->n;
    unsigned h = 0;
    int ret;

    if (!spare_proxy_name_valid(backend))
        return -EINVAL;
    if (have && opts && (opts->n_refused || opts->additions_only) &&
        !(held = calloc(t->n ? t->n : 1, 1)))
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        ret = slot_commands(p, backend, i, &t->slots[i], have ? &have[i] : NULL, opts, &h);
        if (ret < 0) {
            plan_truncate(p, start);
            free(held);
            return ret;
        }
        if (held)
            held[i] = (unsigned char)h;
    }
    if (have)
        for (size_t i = 0; i < t->n; i++)
            expect_state(&have[i], &t->slots[i], opts, held ? held[i] : 0);
    free(held);
    if (p->n - start > INT_MAX)
        return INT_MAX;
    return (int)(p->n - start);
}

int plan_map(struct plan *p, const char *map_path, const struct host_route *want, size_t n_want,
             const struct host_route *have, size_t n_have)
{
    size_t start = p->n, i = 0, j = 0;
    int ret = 0;

    /* Both sorted by host: walked together, every entry is looked at, and
     * the first failure undoes the whole map plan (never half of it). A host
     * HAProxy lists twice is deleted ("del map" removes every entry of a
     * key) and, if wanted, added once again. */
    while (ret == 0 && (i < n_want || j < n_have)) {
        size_t dup = 1;
        int cmp;

        while (j < n_have && j + dup < n_have && strcmp(have[j].host, have[j + dup].host) == 0)
            dup++;
        cmp = i == n_want ? 1 : j == n_have ? -1 : strcmp(want[i].host, have[j].host);
        if (cmp < 0) {
            ret = plan_add(p, "add map %s %s %s", map_path, want[i].host, want[i].backend);
            i++;
        } else if (cmp > 0) {
            ret = plan_add(p, "del map %s %s", map_path, have[j].host);
            j += dup;
        } else {
            if (dup > 1) {
                ret = plan_add(p, "del map %s %s", map_path, have[j].host);
                if (ret == 0)
                    ret = plan_add(p, "add map %s %s %s", map_path, want[i].host, want[i].backend);
            } else if (strcmp(want[i].backend, have[j].backend) != 0) {
                ret = plan_add(p, "set map %s %s %s", map_path, want[i].host, want[i].backend);
            }
            i++;
            j += dup;
        }
    }
    if (ret < 0) {
        plan_truncate(p, start);
        return ret;
    }
    if (p->n - start > INT_MAX)
        return INT_MAX;
    return (int)(p->n - start);
}

static bool has_token(const char *options, const char *token)
{
    size_t tl = strlen(token);

    for (const char *p = options; (p = strstr(p, token)); p += tl)
        if ((p == options || p[-1] == ' ') && (p[tl] == ' ' || p[tl] == '\0'))
            return true;
    return false;
}

int plan_resync(struct plan *p, bool level, const char *map_path)
{
    int r = 0;

    if ((level && (r = plan_add(p, PLAN_SHOW_LEVEL)) < 0) ||
        (r = plan_add(p, PLAN_SHOW_STATE)) < 0 || (r = plan_add(p, PLAN_SHOW_BACKENDS)) < 0 ||
        (map_path && (r = plan_add(p, PLAN_SHOW_MAP "%s", map_path)) < 0))
        return r;
    return 0;
}

int plan_inspect(struct plan *p, const char *map_path)
{
    int r = 0;

    if ((r = plan_add(p, PLAN_SHOW_STATE)) < 0 || (r = plan_add(p, PLAN_SHOW_STAT)) < 0 ||
        (map_path && (r = plan_add(p, PLAN_SHOW_MAP "%s", map_path)) < 0))
        return r;
    return 0;
}

int plan_add_slots(struct plan *p, const char *backend, size_t from, size_t to,
                   const char *server_options)
{
    const char *opts = server_options;
    bool check = has_token(opts, "check");
    int r;

    for (size_t i = from; i < to; i++) {
        r = plan_add(p, "add server %s/" SLOT_NAME_FMT " 0.0.0.0:0%s%s", backend, i + 1,
                     opts[0] ? " " : "", opts);
        if (r == 0 && check)
            r = plan_add(p, "enable health %s/" SLOT_NAME_FMT, backend, i + 1);
        if (r < 0)
            return r;
    }
    return 0;
}

/* "add backend <service> from slotsync:dynamic mode http" */
_Static_assert(sizeof("add backend  from " DYNBACK_DEFAULTS " mode http") + SERVICE_NAME_MAX <=
                   PLAN_CMD_MAX,
               "the add backend command must fit in PLAN_CMD_MAX");

int plan_create_backend(struct plan *p, const char *backend, size_t slots,
                        const char *server_options)
{
    size_t start = p->n;
    int r;

    if (!endpoint_service_name_valid(backend))
        return -EINVAL;
    r = plan_add(p, PLAN_ADD_BACKEND "%s from " DYNBACK_DEFAULTS " mode http", backend);
    if (r == 0)
        r = plan_add_slots(p, backend, 0, slots, server_options);
    if (r < 0)
        plan_truncate(p, start);
    return r;
}

int plan_publish_backend(struct plan *p, const char *backend)
{
    if (!endpoint_service_name_valid(backend))
        return -EINVAL;
    return plan_add(p, PLAN_PUBLISH_BACKEND "%s", backend);
}

int plan_delete_backend(struct plan *p, const char *backend, size_t slots)
{
    size_t start = p->n;
    int r;

    if (!endpoint_service_name_valid(backend))
        return -EINVAL;
    r = plan_add(p, PLAN_UNPUBLISH_BACKEND "%s", backend);
    for (size_t i = slots; r == 0 && i > 0; i--) {
        r = plan_add(p, "set server %s/" SLOT_NAME_FMT " state maint", backend, i);
        if (r == 0)
            r = plan_add(p, PLAN_DEL_SERVER "%s/" SLOT_NAME_FMT, backend, i);
    }
    if (r == 0)
        r = plan_add(p, PLAN_DEL_BACKEND "%s", backend);
    if (r < 0)
        plan_truncate(p, start);
    return r;
}
