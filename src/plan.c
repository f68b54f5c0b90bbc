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

#include <slotsync/endpoint.h>

/* "s" + the digits of a size_t + NUL */
#define SLOT_NAME_SIZE 24

#define EMPTY_ADDR "0.0.0.0"

void plan_init(struct plan *p)
{
    p->cmds = NULL;
    p->n = 0;
    p->cap = 0;
}

/* Free the commands from index n on. */
static void plan_truncate(struct plan *p, size_t n)
{
    while (p->n > n)
        free(p->cmds[--p->n]);
}

void plan_reset(struct plan *p)
{
    plan_truncate(p, 0);
}

void plan_free(struct plan *p)
{
    plan_reset(p);
    free(p->cmds);
    plan_init(p);
}

/* The text is checked after formatting, so no argument, whatever it holds,
 * can smuggle a second command onto the runtime socket. Empty commands are
 * refused too: one would read as a blank line in the batch. */
int plan_add(struct plan *p, const char *fmt, ...)
{
    char buf[PLAN_CMD_MAX + 1], *cmd;
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (len <= 0 || len > PLAN_CMD_MAX)
        return -EINVAL;
    /* len, not strlen(): a "%c" of NUL must be caught, not cut */
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c < 0x20 || c >= 0x7f || c == ';')
            return -EINVAL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        char **cmds;

        if (p->cap > SIZE_MAX / 2 / sizeof(*cmds))
            return -ENOMEM;
        cmds = realloc(p->cmds, cap * sizeof(*cmds));
        if (!cmds)
            return -ENOMEM;
        p->cmds = cmds;
        p->cap = cap;
    }
    cmd = malloc((size_t)len + 1);
    if (!cmd)
        return -ENOMEM;
    memcpy(cmd, buf, (size_t)len + 1);
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

static bool known(const struct server_state *have)
{
    return have && have->server[0] != '\0';
}

/* Append the commands for one slot, reading have only. On failure the plan
 * is back where it was. Returns the number added or a negative errno. */
static int slot_commands(struct plan *p, const char *backend, size_t index, const struct slot *want,
                         const struct server_state *have)
{
    const struct endpoint *ep = &want->ep;
    bool unknown = !known(have);
    size_t start = p->n;
    int ret = 0;

    if (!want->instance) {
        if (unknown || have->admin != SERVER_MAINT)
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " state maint", backend, index + 1);
        if (ret == 0 && (unknown || strcmp(have->addr, EMPTY_ADDR) != 0 || have->port != 0))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " addr " EMPTY_ADDR " port 0", backend,
                           index + 1);
    } else {
        if (unknown || strcmp(have->addr, ep->host) != 0 || have->port != ep->port)
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " addr %s port %u", backend, index + 1,
                           ep->host, (unsigned)ep->port);
        if (ret == 0 && (unknown || have->weight != (int)ep->weight))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " weight %u", backend, index + 1,
                           (unsigned)ep->weight);
        if (ret == 0 && (unknown || have->admin != admin_of(ep->state)))
            ret = plan_add(p, "set server %s/" SLOT_NAME_FMT " state %s", backend, index + 1,
                           endpoint_state_name(ep->state));
    }
    if (ret < 0) {
        plan_truncate(p, start);
        return ret;
    }
    return (int)(p->n - start);
}

/* What HAProxy will have once slot_commands()' output is applied. Only the
 * fields the commands set are touched: op_state and admin_bits are left for
 * the next "show servers state" to report. */
static void expect_state(struct server_state *have, const char *backend, size_t index,
                         const struct slot *want)
{
    if (have->server[0] == '\0') {
        snprintf(have->server, sizeof(have->server), SLOT_NAME_FMT, index + 1);
        snprintf(have->backend, sizeof(have->backend), "%s", backend);
    }
    if (!want->instance) {
        snprintf(have->addr, sizeof(have->addr), "%s", EMPTY_ADDR);
        have->port = 0;
        have->admin = SERVER_MAINT;
        return;
    }
    snprintf(have->addr, sizeof(have->addr), "%s", want->ep.host);
    have->port = want->ep.port;
    have->weight = want->ep.weight;
    have->admin = admin_of(want->ep.state);
}

/* Borrows everything; updates *have on success. Returns the number of
 * commands added, -EINVAL for a backend name that is not a valid service
 * name (or a field that would make an invalid command), or -ENOMEM. */
int plan_slot(struct plan *p, const char *backend, size_t index, const struct slot *want,
              struct server_state *have)
{
    int ret;

    if (!endpoint_service_name_valid(backend))
        return -EINVAL;
    ret = slot_commands(p, backend, index, want, have);
    if (ret >= 0 && have)
        expect_state(have, backend, index, want);
    return ret;
}

/* Plans every slot before updating any entry of have, so that a failure
 * halfway leaves both the plan and have untouched. */
int plan_backend(struct plan *p, const char *backend, const struct slot_table *t,
                 struct server_state *have)
{
    size_t start = p->n;
    int ret;

    if (!endpoint_service_name_valid(backend))
        return -EINVAL;
    for (size_t i = 0; i < t->n; i++) {
        ret = slot_commands(p, backend, i, &t->slots[i], have ? &have[i] : NULL);
        if (ret < 0) {
            plan_truncate(p, start);
            return ret;
        }
    }
    if (have)
        for (size_t i = 0; i < t->n; i++)
            expect_state(&have[i], backend, i, &t->slots[i]);
    if (p->n - start > INT_MAX)
        return INT_MAX;
    return (int)(p->n - start);
}
