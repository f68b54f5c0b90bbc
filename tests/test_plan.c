/* test_plan - the exact runtime commands per slot and per backend, their
 * order, and what the planner assumes HAProxy has afterwards. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/config-t.h>
#include <slotsync/plan.h>
#include <slotsync/routes-t.h>
#include <slotsync/runtime-t.h>
#include <slotsync/slots.h>
#include <slotsync/view.h>

static struct plan plan;

static void setup(void)
{
    plan_init(&plan);
}

static void teardown(void)
{
    plan_free(&plan);
}

TestSuite(plan, .init = setup, .fini = teardown);

static void assert_plan(const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < plan.n; i++)
        cr_assert_str_eq(plan.cmds[i], want[i], "command %zu", i);
    cr_assert_eq(plan.n, n, "%zu commands, wanted %zu", plan.n, n);
}

#define ASSERT_PLAN(...)                                                                           \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        assert_plan(want_, sizeof(want_) / sizeof(want_[0]));                                      \
    } while (0)

static char inst_a[] = "a";
static char inst_other[] = "other";

static struct slot filled(const char *host, unsigned short port, unsigned short weight,
                          enum endpoint_state state)
{
    struct slot s = {.instance = inst_a};

    snprintf(s.ep.host, sizeof(s.ep.host), "%s", host);
    s.ep.ipv6 = strchr(host, ':') != NULL;
    s.ep.port = port;
    s.ep.weight = weight;
    s.ep.state = state;
    return s;
}

static const struct slot empty = {0};

/* HAProxy's view of b/s3 */
static struct server_view have(const char *addr, unsigned port, int weight, enum server_admin admin)
{
    struct server_view st = {0};

    cr_assert_eq(view_set_addr(&st, addr), 0, "%s", addr);
    st.port = (uint16_t)port;
    st.weight = (uint16_t)weight;
    st.admin = (uint8_t)admin;
    return st;
}

Test(plan, fill_empty_slot)
{
    struct slot want = filled("127.0.0.1", 8080, 10, ENDPOINT_READY);
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 3);
    /* never ready before the address is set */
    ASSERT_PLAN("set server b/s3 addr 127.0.0.1 port 8080", "set server b/s3 weight 10",
                "set server b/s3 state ready");
}

Test(plan, refill_from_maint_same_weight)
{
    struct slot want = filled("10.0.0.7", 80, 1, ENDPOINT_READY);
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 2);
    ASSERT_PLAN("set server b/s3 addr 10.0.0.7 port 80", "set server b/s3 state ready");
}

Test(plan, remove_is_maint_then_clear)
{
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 2);
    ASSERT_PLAN("set server b/s3 state maint", "set server b/s3 addr 0.0.0.0 port 0");
}

Test(plan, remove_from_drain)
{
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_DRAIN);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 2);
    ASSERT_PLAN("set server b/s3 state maint", "set server b/s3 addr 0.0.0.0 port 0");
}

Test(plan, remove_already_in_maint_only_clears)
{
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 1);
    ASSERT_PLAN("set server b/s3 addr 0.0.0.0 port 0");
}

Test(plan, empty_slot_with_stray_port_is_cleared)
{
    struct server_view st = have("0.0.0.0", 80, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 1);
    ASSERT_PLAN("set server b/s3 addr 0.0.0.0 port 0");
}

Test(plan, empty_slot_out_of_maint_is_put_back)
{
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 1);
    ASSERT_PLAN("set server b/s3 state maint");
}

Test(plan, empty_slot_already_empty)
{
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, &st), 0);
    cr_assert_eq(plan.n, 0);
}

Test(plan, move_port_only)
{
    struct slot want = filled("10.0.0.1", 81, 5, ENDPOINT_READY);
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 addr 10.0.0.1 port 81");
    cr_assert_eq(st.port, 81);
}

Test(plan, move_addr_only)
{
    struct slot want = filled("10.0.0.2", 80, 5, ENDPOINT_READY);
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 addr 10.0.0.2 port 80");
    cr_assert(view_addr_is(&st, "10.0.0.2"));
}

Test(plan, weight_only)
{
    struct slot want = filled("10.0.0.1", 80, 0, ENDPOINT_READY);
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 weight 0");
    cr_assert_eq(st.weight, 0);

    plan_reset(&plan);
    want.ep.weight = 256;
    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 weight 256");
}

static const struct {
    enum server_admin have;
    enum endpoint_state want;
    const char *cmd; /* NULL: none */
    enum server_admin after;
} transitions[] = {
    {SERVER_READY, ENDPOINT_READY, NULL, SERVER_READY},
    {SERVER_READY, ENDPOINT_DRAIN, "set server b/s3 state drain", SERVER_DRAIN},
    {SERVER_READY, ENDPOINT_MAINT, "set server b/s3 state maint", SERVER_MAINT},
    {SERVER_DRAIN, ENDPOINT_READY, "set server b/s3 state ready", SERVER_READY},
    {SERVER_DRAIN, ENDPOINT_DRAIN, NULL, SERVER_DRAIN},
    {SERVER_DRAIN, ENDPOINT_MAINT, "set server b/s3 state maint", SERVER_MAINT},
    {SERVER_MAINT, ENDPOINT_READY, "set server b/s3 state ready", SERVER_READY},
    {SERVER_MAINT, ENDPOINT_DRAIN, "set server b/s3 state drain", SERVER_DRAIN},
    {SERVER_MAINT, ENDPOINT_MAINT, NULL, SERVER_MAINT},
};

Test(plan, state_transitions)
{
    for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
        struct slot want = filled("10.0.0.1", 80, 5, transitions[i].want);
        struct server_view st = have("10.0.0.1", 80, 5, transitions[i].have);
        int n = transitions[i].cmd ? 1 : 0;

        plan_reset(&plan);
        cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), n, "case %zu", i);
        cr_assert_eq(plan.n, (size_t)n, "case %zu", i);
        if (n)
            cr_assert_str_eq(plan.cmds[0], transitions[i].cmd, "case %zu", i);
        cr_assert_eq(st.admin, transitions[i].after, "case %zu", i);
    }
}

Test(plan, addr_weight_state_all_change_in_order)
{
    struct slot want = filled("10.0.0.2", 90, 3, ENDPOINT_DRAIN);
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 3);
    ASSERT_PLAN("set server b/s3 addr 10.0.0.2 port 90", "set server b/s3 weight 3",
                "set server b/s3 state drain");
}

Test(plan, unknown_have_emits_everything)
{
    struct slot want = filled("10.0.0.1", 80, 1, ENDPOINT_READY);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, NULL), 3);
    ASSERT_PLAN("set server b/s3 addr 10.0.0.1 port 80", "set server b/s3 weight 1",
                "set server b/s3 state ready");
    plan_reset(&plan);
    cr_assert_eq(plan.n, 0);
    cr_assert_eq(plan_slot(&plan, "b", 2, &empty, NULL), 2);
    ASSERT_PLAN("set server b/s3 state maint", "set server b/s3 addr 0.0.0.0 port 0");
}

Test(plan, unknown_entry_is_filled_in)
{
    struct slot want = filled("10.0.0.1", 80, 1, ENDPOINT_DRAIN);
    struct server_view st = {0};

    /* an entry that is not view_known() is unknown */
    cr_assert_eq(plan_slot(&plan, "web", 6, &want, &st), 3);
    ASSERT_PLAN("set server web/s7 addr 10.0.0.1 port 80", "set server web/s7 weight 1",
                "set server web/s7 state drain");
    cr_assert(view_known(&st));
    cr_assert(view_addr_is(&st, "10.0.0.1"));
    cr_assert_eq(st.port, 80);
    cr_assert_eq(st.weight, 1);
    cr_assert_eq(st.admin, SERVER_DRAIN);

    plan_reset(&plan);
    cr_assert_eq(plan_slot(&plan, "web", 6, &want, &st), 0);
}

Test(plan, no_op_when_have_equals_want)
{
    struct slot want = filled("10.0.0.1", 80, 5, ENDPOINT_DRAIN);
    struct server_view st = have("10.0.0.1", 80, 5, SERVER_DRAIN);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 0);
    cr_assert_eq(plan.n, 0);
}

Test(plan, ipv6)
{
    struct slot want = filled("::1", 8080, 1, ENDPOINT_READY);
    struct server_view st = have("::1", 8080, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "b", 2, &want, NULL), 3);
    ASSERT_PLAN("set server b/s3 addr ::1 port 8080", "set server b/s3 weight 1",
                "set server b/s3 state ready");
    plan_reset(&plan);
    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 state ready");
    plan_reset(&plan);
    want = filled("2001:db8::2", 443, 1, ENDPOINT_READY);
    cr_assert_eq(plan_slot(&plan, "b", 2, &want, &st), 1);
    ASSERT_PLAN("set server b/s3 addr 2001:db8::2 port 443");
    cr_assert(view_addr_is(&st, "2001:db8::2"));
}

Test(plan, have_updated_so_replanning_is_a_no_op)
{
    static const struct {
        const char *addr; /* NULL: unknown */
        unsigned port;
        int weight;
        enum server_admin admin;
        bool filled;
    } cases[] = {
        {"10.0.0.1", 80, 5, SERVER_READY, true},  {"0.0.0.0", 0, 0, SERVER_MAINT, true},
        {"10.0.0.1", 80, 5, SERVER_READY, false}, {"10.9.9.9", 9, 0, SERVER_DRAIN, false},
        {NULL, 0, 0, SERVER_READY, true},         {NULL, 0, 0, SERVER_READY, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct slot want = filled("10.0.0.2", 81, 7, ENDPOINT_DRAIN);
        struct server_view st = {0};
        const struct slot *w = cases[i].filled ? &want : &empty;

        if (cases[i].addr)
            st = have(cases[i].addr, cases[i].port, cases[i].weight, cases[i].admin);
        plan_reset(&plan);
        cr_assert_gt(plan_slot(&plan, "b", 2, w, &st), 0, "case %zu", i);
        plan_reset(&plan);
        cr_assert_eq(plan_slot(&plan, "b", 2, w, &st), 0, "case %zu: %zu commands: %s", i, plan.n,
                     plan.n ? plan.cmds[0] : "");
        cr_assert(view_known(&st), "case %zu", i);
    }
}

Test(plan, slot_names_follow_index)
{
    struct slot want = filled("10.0.0.1", 80, 1, ENDPOINT_READY);
    struct server_view st = have("10.0.0.1", 80, 1, SERVER_MAINT);

    cr_assert_eq(plan_slot(&plan, "api.v2_x-y", 0, &want, &st), 1);
    st.admin = SERVER_MAINT;
    cr_assert_eq(plan_slot(&plan, "api.v2_x-y", 4095, &want, &st), 1);
    ASSERT_PLAN("set server api.v2_x-y/s1 state ready", "set server api.v2_x-y/s4096 state ready");
}

Test(plan, backend_whole_table)
{
    struct slot_table t;
    struct server_view st[4] = {0};
    int n;

    cr_assert_eq(slots_init(&t, 4), 0);
    t.slots[0].instance = strdup("a");
    t.slots[0].ep = filled("10.0.0.1", 80, 1, ENDPOINT_READY).ep;
    t.slots[2].instance = strdup("c");
    t.slots[2].ep = filled("10.0.0.3", 80, 2, ENDPOINT_DRAIN).ep;

    /* s1 already right, s2 to be emptied, s3 refilled, s4 unknown empty */
    st[0] = have("10.0.0.1", 80, 1, SERVER_READY);
    st[1] = have("10.0.0.2", 80, 1, SERVER_READY);
    st[2] = have("0.0.0.0", 0, 1, SERVER_MAINT);

    n = plan_backend(&plan, "b", &t, st);
    ASSERT_PLAN("set server b/s2 state maint", "set server b/s2 addr 0.0.0.0 port 0",
                "set server b/s3 addr 10.0.0.3 port 80", "set server b/s3 weight 2",
                "set server b/s3 state drain", "set server b/s4 state maint",
                "set server b/s4 addr 0.0.0.0 port 0");
    cr_assert_eq(n, 7);
    cr_assert(view_known(&st[3]));
    cr_assert(view_empty(&st[3]));

    /* have now reflects the plan: nothing left to do */
    plan_reset(&plan);
    cr_assert_eq(plan_backend(&plan, "b", &t, st), 0);
    cr_assert_eq(plan.n, 0);

    /* unknown have: every command, slot by slot */
    cr_assert_eq(plan_backend(&plan, "b", &t, NULL), 10);
    cr_assert_str_eq(plan.cmds[0], "set server b/s1 addr 10.0.0.1 port 80");
    cr_assert_str_eq(plan.cmds[3], "set server b/s2 state maint");
    cr_assert_str_eq(plan.cmds[9], "set server b/s4 addr 0.0.0.0 port 0");

    /* commands are appended after what the plan already holds */
    cr_assert_eq(plan_backend(&plan, "other", &t, NULL), 10);
    cr_assert_eq(plan.n, 20);
    cr_assert_str_eq(plan.cmds[10], "set server other/s1 addr 10.0.0.1 port 80");
    slots_free(&t);
}

Test(plan, invalid_backend_is_refused)
{
    static const char *const bad[] = {"", "b;x", "b/s1", "b x", "b\nx", ".", ".."};
    struct slot_table t;
    struct slot want = filled("10.0.0.1", 80, 1, ENDPOINT_READY);
    struct server_view st = {0};

    cr_assert_eq(slots_init(&t, 2), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(plan_backend(&plan, bad[i], &t, &st), -EINVAL, "\"%s\"", bad[i]);
        cr_assert_eq(plan_slot(&plan, bad[i], 0, &want, &st), -EINVAL, "\"%s\"", bad[i]);
    }
    cr_assert_eq(plan.n, 0);
    cr_assert_not(view_known(&st), "have touched");
    slots_free(&t);
}

/* A slot filled by hand with text no endpoint parser would produce: the
 * command is refused and nothing of the backend is planned or assumed. */
Test(plan, bad_field_rolls_back_backend)
{
    struct slot_table t;
    struct server_view st[3] = {0};

    cr_assert_eq(slots_init(&t, 3), 0);
    t.slots[0].instance = strdup("a");
    t.slots[0].ep = filled("10.0.0.1", 80, 1, ENDPOINT_READY).ep;
    t.slots[2].instance = strdup("c");
    t.slots[2].ep = filled("10.0.0.3;shutdown", 80, 1, ENDPOINT_READY).ep;

    cr_assert_eq(plan_add(&plan, "show info"), 0);
    cr_assert_eq(plan_backend(&plan, "b", &t, st), -EINVAL);
    ASSERT_PLAN("show info");
    for (size_t i = 0; i < 3; i++)
        cr_assert_not(view_known(&st[i]), "have[%zu] touched", i);

    cr_assert_eq(plan_slot(&plan, "b", 2, &t.slots[2], &st[2]), -EINVAL);
    ASSERT_PLAN("show info");
    cr_assert_not(view_known(&st[2]));
    slots_free(&t);
}

Test(plan, add_rejects_unsafe_text)
{
    char big[PLAN_CMD_MAX + 2];

    cr_assert_eq(plan_add(&plan, "set server b/s1 state %s", "ready"), 0);
    cr_assert_eq(plan_add(&plan, "show info; shutdown sessions"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "set server %s/s1 state ready", "b;x"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show info\nshutdown"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show %s", "info\n"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show info\r"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show\tinfo"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show info\x7f"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show caf\xc3\xa9"), -EINVAL);
    cr_assert_eq(plan_add(&plan, "show %c info", '\0'), -EINVAL);
    cr_assert_eq(plan_add(&plan, "%s", ""), -EINVAL);

    memset(big, 'x', sizeof(big));
    big[PLAN_CMD_MAX + 1] = '\0';
    cr_assert_eq(plan_add(&plan, "%s", big), -EINVAL);
    big[PLAN_CMD_MAX] = '\0';
    cr_assert_eq(plan_add(&plan, "%s", big), 0);

    cr_assert_eq(plan.n, 2);
    cr_assert_str_eq(plan.cmds[0], "set server b/s1 state ready");
    cr_assert_eq(strlen(plan.cmds[1]), PLAN_CMD_MAX);
}

Test(plan, reset_keeps_storage_and_free_clears)
{
    char **cmds;
    size_t cap;

    for (int i = 0; i < 40; i++)
        cr_assert_eq(plan_add(&plan, "set server b/s%d state ready", i + 1), 0);
    cr_assert_eq(plan.n, 40);
    cr_assert_str_eq(plan.cmds[39], "set server b/s40 state ready");
    cmds = plan.cmds;
    cap = plan.cap;
    plan_reset(&plan);
    cr_assert_eq(plan.n, 0);
    cr_assert_eq(plan.cap, cap);
    cr_assert_eq(plan.cmds, cmds);
    cr_assert_eq(plan_add(&plan, "show info"), 0);
    cr_assert_str_eq(plan.cmds[0], "show info");
    plan_free(&plan);
    cr_assert_null(plan.cmds);
    cr_assert_eq(plan.n, 0);
    cr_assert_eq(plan.cap, 0);
}

/* ---- commands as long as validated input makes them ---- */

/* The longest map command a valid config and a valid service can make is
 * built whole (a 160-byte buffer used to refuse it, and map convergence
 * stopped there without a word). */
Test(plan, longest_validated_commands_fit)
{
    char path[CONFIG_PATH_MAX + 1], host[CONFIG_HOSTNAME_MAX + 1], svc[SERVICE_NAME_MAX + 1];
    char opts[CONFIG_OPTIONS_MAX];

    memset(path, 'p', sizeof(path));
    path[0] = '/';
    path[CONFIG_PATH_MAX] = '\0';
    memset(host, 'h', sizeof(host));
    host[CONFIG_HOSTNAME_MAX] = '\0';
    memset(svc, 's', sizeof(svc));
    svc[SERVICE_NAME_MAX] = '\0';
    memset(opts, 'o', sizeof(opts));
    opts[CONFIG_OPTIONS_MAX - 1] = '\0';
    cr_assert_eq(plan_add(&plan, "show map %s", path), 0);
    cr_assert_eq(plan_add(&plan, "add map %s %s %s", path, host, svc), 0);
    cr_assert_eq(plan_add(&plan, "add server %s/s4096 0.0.0.0:0 %s", svc, opts), 0);
    cr_assert_eq(plan.n, 3);
    cr_assert_eq(strlen(plan.cmds[0]), 9 + CONFIG_PATH_MAX);
    cr_assert_eq(strlen(plan.cmds[1]),
                 8 + CONFIG_PATH_MAX + 1 + CONFIG_HOSTNAME_MAX + 1 + SERVICE_NAME_MAX);
}

/* HAProxy's map after the commands: add appends, set changes every entry
 * of the key, del removes every entry of the key (as HAProxy 2.6 does). */
static size_t apply_map(struct host_route *m, size_t n, size_t cap, const char *path)
{
    for (size_t i = 0; i < plan.n; i++) {
        char verb[8], p[CONFIG_PATH_MAX + 1], host[CONFIG_HOSTNAME_MAX + 2],
            backend[SERVICE_NAME_MAX + 2] = "";
        int f = sscanf(plan.cmds[i], "%7s map %4096s %254s %64s", verb, p, host, backend);

        cr_assert_geq(f, 3, "command %s", plan.cmds[i]);
        cr_assert_str_eq(p, path);
        if (strcmp(verb, "add") == 0) {
            cr_assert_lt(n, cap);
            cr_assert_leq(strlen(host), CONFIG_HOSTNAME_MAX);
            cr_assert_leq(strlen(backend), SERVICE_NAME_MAX);
            memcpy(m[n].host, host, strlen(host) + 1);
            memcpy(m[n].backend, backend, strlen(backend) + 1);
            n++;
            continue;
        }
        for (size_t k = 0; k < n;) {
            if (strcmp(m[k].host, host) != 0) {
                k++;
            } else if (strcmp(verb, "set") == 0) {
                cr_assert_leq(strlen(backend), SERVICE_NAME_MAX);
                memcpy(m[k].backend, backend, strlen(backend) + 1);
                k++;
            } else {
                memmove(m + k, m + k + 1, (n - k - 1) * sizeof(*m));
                n--;
            }
        }
    }
    return n;
}

static int cmp_route(const void *a, const void *b)
{
    return strcmp(((const struct host_route *)a)->host, ((const struct host_route *)b)->host);
}

struct map_plan_case {
    const char *name;
    const char *want[5]; /* "host backend", sorted by host */
    const char *have[5]; /* sorted by host */
};

static const struct map_plan_case map_plan_cases[] = {
    {"empty to two", {"a.test web", "b.test api"}, {NULL}},
    {"two to empty", {NULL}, {"a.test web", "b.test api"}},
    {"unchanged", {"a.test web"}, {"a.test web"}},
    {"moved", {"a.test api"}, {"a.test web"}},
    {"mixed", {"a.test web", "c.test web", "d.test x"}, {"b.test web", "c.test api", "d.test x"}},
    {"duplicate wanted", {"a.test web", "b.test api"}, {"a.test web", "a.test web", "b.test x"}},
    {"duplicate not wanted", {"b.test api"}, {"a.test web", "a.test api", "b.test api"}},
    {"long host", {"LONG web", "z.test web"}, {"z.test api"}},
};

static size_t load_routes(struct host_route *r, const char *const *text, const char *long_host)
{
    size_t n = 0;

    for (; n < 5 && text[n]; n++) {
        char h[CONFIG_HOSTNAME_MAX + 1];

        cr_assert_eq(sscanf(text[n], "%253s %63s", h, r[n].backend), 2);
        snprintf(r[n].host, sizeof(r[n].host), "%s", strcmp(h, "LONG") == 0 ? long_host : h);
    }
    return n;
}

/* Property: the commands take HAProxy's map to the wanted one, and planning
 * again from there yields nothing. Hosts of 253 characters and a map path
 * of 4096 make the longest commands. */
Test(plan, map_apply_then_replan_is_empty)
{
    char path[CONFIG_PATH_MAX + 1], long_host[CONFIG_HOSTNAME_MAX + 1];

    memset(path, 'm', sizeof(path));
    path[0] = '/';
    path[CONFIG_PATH_MAX] = '\0';
    memset(long_host, 'h', sizeof(long_host));
    long_host[CONFIG_HOSTNAME_MAX] = '\0';
    for (size_t c = 0; c < sizeof(map_plan_cases) / sizeof(map_plan_cases[0]); c++) {
        const struct map_plan_case *mc = &map_plan_cases[c];
        struct host_route want[5], have[16];
        size_t nw = load_routes(want, mc->want, long_host);
        size_t nh = load_routes(have, mc->have, long_host);
        int r;

        plan_reset(&plan);
        r = plan_map(&plan, path, want, nw, have, nh);
        cr_assert_geq(r, 0, "%s: %d", mc->name, r);
        cr_assert_eq((size_t)r, plan.n, "%s", mc->name);
        nh = apply_map(have, nh, 16, path);
        if (nh)
            qsort(have, nh, sizeof(*have), cmp_route);
        cr_assert_eq(nh, nw, "%s: %zu entries after applying, wanted %zu", mc->name, nh, nw);
        for (size_t i = 0; i < nw; i++) {
            cr_assert_str_eq(have[i].host, want[i].host, "%s", mc->name);
            cr_assert_str_eq(have[i].backend, want[i].backend, "%s", mc->name);
        }
        plan_reset(&plan);
        cr_assert_eq(plan_map(&plan, path, want, nw, have, nh), 0, "%s: replan", mc->name);
        cr_assert_eq(plan.n, 0, "%s: replan gave %s", mc->name, plan.cmds[0]);
    }
}

/* A map command that cannot be built undoes the whole map plan. */
Test(plan, map_failure_adds_nothing)
{
    struct host_route want[2] = {{"a.test", "web"}, {"b;x", "web"}};

    cr_assert_eq(plan_add(&plan, "show info"), 0);
    cr_assert_eq(plan_map(&plan, "/m", want, 2, NULL, 0), -EINVAL);
    ASSERT_PLAN("show info");
}

/* Property for slots: applying a backend's plan and planning again yields
 * nothing, and each changed slot is described once, with its commands. */
Test(plan, backend_apply_then_replan_is_empty_and_changes_described)
{
    struct slot_table t;
    struct server_view st[3];

    memset(st, 0, sizeof(st));
    cr_assert_eq(slots_init(&t, 3), 0);
    t.slots[0] = filled("127.0.0.1", 8080, 1, ENDPOINT_READY);
    t.slots[2] = filled("::1", 8081, 5, ENDPOINT_DRAIN);
    st[0] = have("127.0.0.1", 8080, 1, SERVER_MAINT); /* drifted into maint */
    st[1] = have("127.0.0.9", 80, 1, SERVER_READY);   /* emptied */
    cr_assert_eq(plan_backend(&plan, "api", &t, st), 6);
    cr_assert_eq(plan.n_changes, 3);
    cr_assert_str_eq(plan.changes[0].backend, "api");
    cr_assert_eq(plan.changes[0].slot, 0);
    cr_assert_eq(plan.changes[0].first, 0);
    cr_assert_eq(plan.changes[0].n, 1);
    cr_assert_str_eq(plan.changes[0].instance, "a");
    cr_assert(plan.changes[0].known);
    cr_assert_str_eq(plan.changes[0].had, "maint");
    cr_assert_str_eq(plan.changes[0].want, "ready");
    cr_assert_eq(plan.changes[1].slot, 1);
    cr_assert_null(plan.changes[1].instance);
    cr_assert_str_eq(plan.changes[1].had, "addr 127.0.0.9:80 ready");
    cr_assert_str_eq(plan.changes[1].want, "addr 0.0.0.0:0 maint");
    cr_assert_eq(plan.changes[2].slot, 2);
    cr_assert_eq(plan.changes[2].first, 3);
    cr_assert_eq(plan.changes[2].n, 3);
    cr_assert(!plan.changes[2].known);
    cr_assert_str_eq(plan.changes[2].want, "addr [::1]:8081 weight 5 drain");
    plan_reset(&plan);
    cr_assert_eq(plan.n_changes, 0);
    cr_assert_eq(plan_backend(&plan, "api", &t, st), 0);
    cr_assert_eq(plan.n, 0);
    cr_assert_eq(plan.n_changes, 0);
    t.slots[0].instance = NULL; /* borrowed from the test */
    t.slots[2].instance = NULL;
    slots_free(&t);
}

/* ---- static algorithms and refused commands ---- */

Test(plan, static_algorithm_sends_no_weight)
{
    struct slot want = filled("127.0.0.1", 8080, 10, ENDPOINT_READY);
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_MAINT);
    struct slot_table t = {&want, 1, 0};
    struct plan_opts opts = {.static_weights = true};

    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 2);
    ASSERT_PLAN("set server b/s1 addr 127.0.0.1 port 8080", "set server b/s1 state ready");
    cr_assert_eq(st.weight, 1, "the weight HAProxy keeps is not assumed changed");
    /* planned again: nothing, weight 10 is never sent */
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 0);
}

Test(plan, static_algorithm_weight_zero_drains)
{
    struct slot want = filled("127.0.0.1", 8080, 0, ENDPOINT_READY);
    struct server_view st = have("127.0.0.1", 8080, 1, SERVER_READY);
    struct slot_table t = {&want, 1, 0};
    struct plan_opts opts = {.static_weights = true};

    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 1);
    ASSERT_PLAN("set server b/s1 state drain");
    cr_assert_eq(st.admin, SERVER_DRAIN);
    /* weight back to 1: ready again */
    want.ep.weight = 1;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 1);
    ASSERT_PLAN("set server b/s1 state ready");
    /* weight 0 of a maint endpoint stays maint */
    want.ep.weight = 0;
    want.ep.state = ENDPOINT_MAINT;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 1);
    ASSERT_PLAN("set server b/s1 state maint");
}

Test(plan, dynamic_algorithm_sends_weight_zero)
{
    struct slot want = filled("127.0.0.1", 8080, 0, ENDPOINT_READY);
    struct server_view st = have("127.0.0.1", 8080, 1, SERVER_READY);
    struct slot_table t = {&want, 1, 0};
    struct plan_opts opts = {0};

    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 1);
    ASSERT_PLAN("set server b/s1 weight 0");
}

Test(plan, origins_name_backend_slot_and_what_haproxy_had)
{
    struct slot slots[2] = {empty, filled("127.0.0.1", 8080, 5, ENDPOINT_READY)};
    struct server_view st[2] = {have("0.0.0.0", 0, 1, SERVER_MAINT),
                                have("127.0.0.1", 8080, 1, SERVER_READY)};
    struct slot_table t = {slots, 2, 0};

    cr_assert_eq(plan_add(&plan, "show map x"), 0);
    cr_assert_eq(plan_backend_opts(&plan, "web", &t, st, NULL), 1);
    ASSERT_PLAN("show map x", "set server web/s2 weight 5");
    cr_assert_eq(plan.origin[0].slot, -1);
    cr_assert_str_eq(plan.origin[1].backend, "web");
    cr_assert_eq(plan.origin[1].slot, 1);
    cr_assert(view_known(&plan.origin[1].before));
    cr_assert_eq(plan.origin[1].before.weight, 1);
}

/* A refusal of "weight 10" for s1, taken from a real plan's origin. */
static void refuse_weight(struct plan_refusal *r, struct slot *want, struct server_view *st)
{
    struct slot_table t = {want, 1, 0};
    struct server_view copy = *st;

    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, NULL), 1);
    cr_assert_str_eq(plan.cmds[0], "set server b/s1 weight 10");
    cr_assert_eq(plan_refusal_set(r, plan.cmds[0], &plan.origin[0], want, NULL), 0);
    plan_reset(&plan);
}

Test(plan, refused_command_is_held_back_until_something_changes)
{
    struct slot want = filled("127.0.0.1", 8080, 10, ENDPOINT_READY);
    struct server_view st = have("127.0.0.1", 8080, 1, SERVER_READY);
    struct slot_table t = {&want, 1, 0};
    struct plan_refusal r = {0};
    struct plan_opts opts = {.refused = &r, .n_refused = 1};
    struct server_view copy;

    refuse_weight(&r, &want, &st);
    /* same endpoint, same HAProxy side: nothing is sent */
    copy = st;
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, &opts), 0);
    /* the rest of the slot is still planned: a state change goes out */
    want.ep.state = ENDPOINT_DRAIN;
    copy = st;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, &opts), 2,
                 "the endpoint changed: its weight is tried again");
    want.ep.state = ENDPOINT_READY;
    /* HAProxy's side changed (an operator set another weight) */
    copy = st;
    copy.weight = 3;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, &opts), 1);
    ASSERT_PLAN("set server b/s1 weight 10");
    /* another endpoint in the slot, same values */
    want.instance = inst_other;
    copy = st;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, &opts), 1);
    /* another slot */
    want.instance = inst_a;
    r.slot = 1;
    copy = st;
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &copy, &opts), 1);
    plan_refusal_clear(&r);
}

Test(plan, refused_is_pure_lookup)
{
    struct slot want = filled("127.0.0.1", 8080, 10, ENDPOINT_READY);
    struct server_view st = have("127.0.0.1", 8080, 1, SERVER_READY);
    struct plan_refusal r = {0};

    refuse_weight(&r, &want, &st);
    cr_assert(plan_refused(&r, 1, 0, "set server b/s1 weight 10", &want, &st));
    cr_assert_not(plan_refused(&r, 1, 0, "set server b/s1 weight 11", &want, &st));
    cr_assert_not(plan_refused(&r, 1, 0, "set server b/s1 weight 10", &want, NULL),
                  "HAProxy's side unknown is not the side it was refused on");
    cr_assert_not(plan_refused(&r, 0, 0, "set server b/s1 weight 10", &want, &st));
    cr_assert_not(plan_refused(&r, 1, 0, "set server b/s1 weight 10", &empty, &st));
    plan_refusal_clear(&r);
    cr_assert_null(r.instance);
}

Test(plan, refusal_puts_back_what_haproxy_kept)
{
    struct slot want = filled("127.0.0.1", 8080, 10, ENDPOINT_READY);
    struct server_view st = have("0.0.0.0", 0, 1, SERVER_MAINT);
    struct slot_table t = {&want, 1, 0};
    struct plan_refusal r = {0};
    struct plan_opts opts = {.refused = &r, .n_refused = 1};
    struct server_view real;

    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, NULL), 3);
    cr_assert_str_eq(plan.cmds[1], "set server b/s1 weight 10");
    cr_assert_eq(st.weight, 10, "the view assumes the batch applied");
    /* only the weight was refused: addr and state did apply */
    cr_assert_eq(plan_refusal_set(&r, plan.cmds[1], &plan.origin[1], &want, &st), 0);
    cr_assert_eq(st.weight, 1, "the refused field is what HAProxy kept");
    cr_assert(view_addr_is(&st, "127.0.0.1"));
    cr_assert_eq(st.admin, SERVER_READY);
    /* what a resync then reads is the side it was refused on: nothing sent */
    real = have("127.0.0.1", 8080, 1, SERVER_READY);
    plan_reset(&plan);
    cr_assert_eq(plan_backend_opts(&plan, "b", &t, &real, &opts), 0);
    cr_assert_eq(real.weight, 1, "a held-back weight is not assumed applied");
    cr_assert_eq(plan_refusal_set(&r, "show map x", &plan.origin[0], &want, NULL), -EINVAL);
    plan_refusal_clear(&r);
}

Test(plan, resync_commands)
{
    cr_assert_eq(plan_resync(&plan, true, "/etc/haproxy/hosts.map"), 0);
    ASSERT_PLAN("show cli level", "show servers state", "show backend",
                "show map /etc/haproxy/hosts.map");
    plan_reset(&plan);
    cr_assert_eq(plan_resync(&plan, false, NULL), 0);
    ASSERT_PLAN("show servers state", "show backend");
    plan_reset(&plan);
    cr_assert_eq(plan_resync(&plan, false, "/m;x"), -EINVAL);
}

Test(plan, add_slots)
{
    cr_assert_eq(plan_add_slots(&plan, "web", 2, 4, "check inter 1s"), 0);
    ASSERT_PLAN("add server web/s3 0.0.0.0:0 check inter 1s", "enable health web/s3",
                "add server web/s4 0.0.0.0:0 check inter 1s", "enable health web/s4");
    plan_reset(&plan);
    cr_assert_eq(plan_add_slots(&plan, "web", 0, 1, ""), 0);
    ASSERT_PLAN("add server web/s1 0.0.0.0:0");
    plan_reset(&plan);
    /* "check" only as a whole word */
    cr_assert_eq(plan_add_slots(&plan, "web", 0, 1, "checks agent-check"), 0);
    ASSERT_PLAN("add server web/s1 0.0.0.0:0 checks agent-check");
    plan_reset(&plan);
    cr_assert_eq(plan_add_slots(&plan, "web", 3, 3, "check"), 0);
    cr_assert_eq(plan.n, 0);
}

/* Additions only (a listing partly read): a slot is planned only when it is
 * to hold an endpoint and HAProxy has it known and empty; everything else is
 * left as it is, and so is the view of it. */
Test(plan, additions_only_fills_empty_slots_only)
{
    static const struct {
        const char *name;
        bool want_filled;
        const char *had; /* HAProxy's address (port 80, or 0 for 0.0.0.0); NULL: unknown */
        int commands;
    } cases[] = {
        {"filled into an empty slot", true, "0.0.0.0", 3},
        {"filled, HAProxy has another endpoint: not moved", true, "10.9.9.9", 0},
        {"filled, HAProxy has it already", true, "10.0.0.1", 0},
        {"filled, HAProxy's side unknown", true, NULL, 0},
        {"emptied: not before the listing's end", false, "10.9.9.9", 0},
        {"empty and empty", false, "0.0.0.0", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct slot want = cases[i].want_filled ? filled("10.0.0.1", 80, 2, ENDPOINT_READY) : empty;
        struct slot_table t = {&want, 1, 0};
        struct plan_opts opts = {.additions_only = true};
        struct server_view st = {0}, before;
        bool zero = cases[i].had && strcmp(cases[i].had, "0.0.0.0") == 0;

        if (cases[i].had)
            st = have(cases[i].had, zero ? 0 : 80, 1, zero ? SERVER_MAINT : SERVER_READY);
        before = st;
        plan_reset(&plan);
        cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), cases[i].commands, "%s",
                     cases[i].name);
        if (!cases[i].commands) {
            cr_assert(memcmp(&st, &before, sizeof(st)) == 0, "%s: view touched", cases[i].name);
            continue;
        }
        ASSERT_PLAN("set server b/s1 addr 10.0.0.1 port 80", "set server b/s1 weight 2",
                    "set server b/s1 state ready");
        cr_assert(view_addr_is(&st, "10.0.0.1"), "%s", cases[i].name);
        /* planned again, additions only or whole: nothing left */
        plan_reset(&plan);
        cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, &opts), 0, "%s", cases[i].name);
        cr_assert_eq(plan_backend_opts(&plan, "b", &t, &st, NULL), 0, "%s", cases[i].name);
    }
}

/* issue 19 item 7: a change's "had" text brackets HAProxy's IPv6 address
 * and only an IPv6 one, whatever the address before it in the same plan
 * (the bracket was once decided from the buffer before it was filled: C
 * leaves the order of a call's arguments unspecified). */
Test(plan, change_text_brackets_haproxys_address_by_its_own_family)
{
    static const struct {
        const char *had, *text;
    } cases[] = {
        {"::2", "addr [::2]:80"},           {"127.0.0.9", "addr 127.0.0.9:80"},
        {"fe80::1", "addr [fe80::1]:80"},   {"fe80::1", "addr [fe80::1]:80"},
        {"127.0.0.8", "addr 127.0.0.8:80"}, {"127.0.0.7", "addr 127.0.0.7:80"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    struct slot_table t;
    struct server_view st[6];

    cr_assert_eq(slots_init(&t, n), 0);
    for (size_t i = 0; i < n; i++) {
        t.slots[i] = filled("127.0.0.1", 8080, 1, ENDPOINT_READY);
        t.slots[i].instance = strdup("a");
        st[i] = have(cases[i].had, 80, 1, SERVER_READY);
    }
    cr_assert_gt(plan_backend(&plan, "api", &t, st), 0);
    cr_assert_eq(plan.n_changes, n);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(plan.changes[i].had, cases[i].text, "%zu: had %s", i, cases[i].had);
        cr_expect_str_eq(plan.changes[i].want, "addr 127.0.0.1:8080", "%zu", i);
    }
    slots_free(&t);
}
