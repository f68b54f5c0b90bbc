/* fuzz_servers_state - HAProxy's "show servers state" and "show backend"
 * replies (runtime.c) and the reply framing, as a hostile socket could send
 * them.
 *
 * Oracles: every row passed on holds only validated fields (names of HAProxy
 * name characters, a canonical IP literal, ranges); a row of a slot, taken as
 * what HAProxy has, plans into clean commands, and once they are applied,
 * planning again gives nothing (for a filled and an emptied slot); framing
 * never yields more replies than asked for. */
#include <stdbool.h>

#include <slotsync/endpoint.h>
#include <slotsync/plan.h>
#include <slotsync/reply.h>
#include <slotsync/runtime.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

#include "fuzz.h"

static void check_name(const char *what, const char *s)
{
    size_t n = strlen(s);

    FUZZ_ASSERT(n >= 1 && n <= HAPROXY_NAME_MAX, "%s of %zu bytes", what, n);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        FUZZ_ASSERT((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '_' || c == ':' || c == '-',
                    "byte 0x%02x in %s", (unsigned char)c, what);
    }
}

static void apply_replan(const char *backend, long index, const struct slot *want,
                         struct server_view *have)
{
    struct plan p;
    int r;

    plan_init(&p);
    r = plan_slot(&p, backend, (size_t)index, want, have);
    FUZZ_ASSERT(r >= 0, "plan_slot refused a validated row (%d)", r);
    fuzz_check_plan(&p);
    plan_reset(&p);
    r = plan_slot(&p, backend, (size_t)index, want, have);
    FUZZ_ASSERT(r == 0, "replan after apply gave %d commands, first '%s'", r, p.cmds[0]);
    plan_free(&p);
}

static int on_row(const struct server_state *st, void *arg)
{
    static char instance[] = "i1";
    struct slot want = {.instance = instance};
    struct slot empty = {0};
    struct server_view have;
    char canon[ENDPOINT_HOST_MAX];
    bool v6;
    long index;

    (*(size_t *)arg)++;
    FUZZ_ASSERT(view_from_state(&have, st) == 0, "a validated row does not fit the view");
    check_name("backend", st->backend);
    check_name("server", st->server);
    FUZZ_ASSERT(endpoint_parse_host(st->addr, canon, &v6) == 0 && strcmp(canon, st->addr) == 0,
                "address '%s' not canonical", st->addr);
    FUZZ_ASSERT(st->port <= 65535 && st->weight >= 0 && st->weight <= 256, "range");
    FUZZ_ASSERT(st->admin <= SERVER_MAINT, "admin %d", (int)st->admin);

    index = slots_index_of(st->server);
    if (index < 0 || !endpoint_service_name_valid(st->backend))
        return 0;
    snprintf(want.ep.host, sizeof(want.ep.host), "127.0.0.9");
    want.ep.port = 8080;
    want.ep.weight = 3;
    want.ep.state = ENDPOINT_DRAIN;
    apply_replan(st->backend, index, &want, &have);
    FUZZ_ASSERT(view_from_state(&have, st) == 0, "view");
    apply_replan(st->backend, index, &empty, &have);
    return 0;
}

static int on_backend(const char *name, void *arg)
{
    check_name("proxy", name);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t rows = 0, bad = 0;
    char **replies;

    runtime_parse_servers_state(text, size, on_row, &rows, &bad);
    runtime_parse_backends(text, size, on_backend, NULL, &bad);
    for (size_t n = 1; n <= 3; n++) {
        char *copy = malloc(size + 1); /* split in place: a copy per try */

        if (!copy)
            return 0;
        memcpy(copy, text, size);
        copy[size] = '\0';
        if (runtime_split_replies(copy, size, n, &replies) == 0) {
            for (size_t i = 0; i < n; i++) {
                FUZZ_ASSERT(replies[i], "reply %zu missing", i);
                runtime_reply_ok("show servers state", replies[i]);
                runtime_reply_ok("set server web/s1 addr 127.0.0.1 port 80", replies[i]);
            }
            runtime_replies_free(replies, n);
        } else {
            FUZZ_ASSERT(memcmp(copy, text, size) == 0, "a failed split changed the text");
        }
        free(copy);
    }
    return 0;
}
