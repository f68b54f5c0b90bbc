/* test_view - the compact per-slot view: addresses in binary, rows of
 * "show servers state" folded in, equality as planning reads it. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <slotsync/runtime-t.h>
#include <slotsync/view.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

Test(view, size_is_compact)
{
    cr_assert_leq(sizeof(struct server_view), 24);
}

Test(view, zeroed_is_unknown)
{
    struct server_view v = {0};
    char buf[VIEW_ADDR_TEXT];

    cr_assert_not(view_known(&v));
    cr_assert_not(view_known(NULL));
    cr_assert_not(view_empty(&v), "unknown is not empty");
    cr_assert_not(view_addr_is(&v, "0.0.0.0"));
    cr_assert_str_eq(view_addr(&v, buf), "");
}

static const struct {
    const char *in;    /* an address as text */
    int ret;           /* view_set_addr() */
    const char *canon; /* view_addr() after it */
    enum view_family family;
    bool empty; /* with port 0 */
} addr_cases[] = {
    {"10.0.0.1", 0, "10.0.0.1", VIEW_IPV4, false},
    {"0.0.0.0", 0, "0.0.0.0", VIEW_IPV4, true},
    {"127.255.255.254", 0, "127.255.255.254", VIEW_IPV4, false},
    {"::1", 0, "::1", VIEW_IPV6, false},
    {"::", 0, "::", VIEW_IPV6, true},
    {"2001:db8:0:0::7", 0, "2001:db8::7", VIEW_IPV6, false},
    {"2001:DB8::7", 0, "2001:db8::7", VIEW_IPV6, false},
    {"::ffff:10.0.0.1", 0, "::ffff:10.0.0.1", VIEW_IPV6, false},
    {"", -EINVAL, NULL, VIEW_UNKNOWN, false},
    {"10.0.0", -EINVAL, NULL, VIEW_UNKNOWN, false},
    {"10.0.0.256", -EINVAL, NULL, VIEW_UNKNOWN, false},
    {"host.example", -EINVAL, NULL, VIEW_UNKNOWN, false},
    {"[::1]", -EINVAL, NULL, VIEW_UNKNOWN, false},
    {"10.0.0.1 ", -EINVAL, NULL, VIEW_UNKNOWN, false},
};

Test(view, addresses_in_binary)
{
    for (size_t i = 0; i < ARRAY_SIZE(addr_cases); i++) {
        struct server_view v = {0};
        char buf[VIEW_ADDR_TEXT];

        cr_assert_eq(view_set_addr(&v, addr_cases[i].in), addr_cases[i].ret, "\"%s\"",
                     addr_cases[i].in);
        cr_assert_eq(v.family, addr_cases[i].family, "\"%s\"", addr_cases[i].in);
        if (addr_cases[i].ret < 0) {
            cr_assert_not(view_known(&v), "\"%s\": left untouched", addr_cases[i].in);
            continue;
        }
        cr_assert_str_eq(view_addr(&v, buf), addr_cases[i].canon, "\"%s\"", addr_cases[i].in);
        cr_assert(view_addr_is(&v, addr_cases[i].in), "\"%s\"", addr_cases[i].in);
        cr_assert(view_addr_is(&v, addr_cases[i].canon), "\"%s\"", addr_cases[i].in);
        cr_assert_eq(view_empty(&v), addr_cases[i].empty, "\"%s\"", addr_cases[i].in);
        v.port = 80;
        cr_assert_not(view_empty(&v), "\"%s\": a port is not empty", addr_cases[i].in);
    }
}

Test(view, addr_is_compares_family_and_bytes)
{
    struct server_view v = {0};

    cr_assert_eq(view_set_addr(&v, "10.0.0.1"), 0);
    cr_assert_not(view_addr_is(&v, "10.0.0.2"));
    cr_assert_not(view_addr_is(&v, "::ffff:10.0.0.1"), "a mapped address is another family");
    cr_assert_not(view_addr_is(&v, "not an address"));
    cr_assert_eq(view_set_addr(&v, "::"), 0);
    cr_assert_not(view_addr_is(&v, "0.0.0.0"));
    /* a failed set keeps the old address */
    cr_assert_eq(view_set_addr(&v, "nope"), -EINVAL);
    cr_assert(view_addr_is(&v, "::"));
}

static struct server_state state(const char *addr, unsigned port, int weight, int op,
                                 enum server_admin admin)
{
    struct server_state st;

    memset(&st, 0, sizeof(st));
    snprintf(st.backend, sizeof(st.backend), "web");
    snprintf(st.server, sizeof(st.server), "s1");
    snprintf(st.addr, sizeof(st.addr), "%s", addr);
    st.port = port;
    st.weight = weight;
    st.op_state = op;
    st.admin = admin;
    return st;
}

Test(view, rows_of_show_servers_state)
{
    static const struct {
        const char *addr;
        unsigned port;
        int weight, op;
        enum server_admin admin;
        int ret;
    } cases[] = {
        {"127.0.0.1", 8080, 1, 2, SERVER_READY, 0},
        {"0.0.0.0", 0, 1, 0, SERVER_MAINT, 0},
        {"2001:db8::1", 65535, 256, 3, SERVER_DRAIN, 0},
        {"127.0.0.1", 65536, 1, 2, SERVER_READY, -EINVAL},
        {"127.0.0.1", 80, -1, 2, SERVER_READY, -EINVAL},
        {"127.0.0.1", 80, 70000, 2, SERVER_READY, -EINVAL},
        {"127.0.0.1", 80, 1, -1, SERVER_READY, -EINVAL},
        {"127.0.0.1", 80, 1, 2, (enum server_admin)7, -EINVAL},
        {"fqdn.example", 80, 1, 2, SERVER_READY, -EINVAL},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct server_state st =
            state(cases[i].addr, cases[i].port, cases[i].weight, cases[i].op, cases[i].admin);
        struct server_view v = {0};

        cr_assert_eq(view_from_state(&v, &st), cases[i].ret, "case %zu", i);
        if (cases[i].ret < 0) {
            cr_assert_not(view_known(&v), "case %zu: untouched", i);
            continue;
        }
        cr_assert(view_known(&v), "case %zu", i);
        cr_assert(view_addr_is(&v, cases[i].addr), "case %zu", i);
        cr_assert_eq(v.port, cases[i].port, "case %zu", i);
        cr_assert_eq(v.weight, cases[i].weight, "case %zu", i);
        cr_assert_eq(v.op_state, cases[i].op, "case %zu", i);
        cr_assert_eq(v.admin, cases[i].admin, "case %zu", i);
    }
}

Test(view, same_compares_what_planning_reads)
{
    struct server_state st = state("10.0.0.1", 80, 5, 2, SERVER_READY);
    struct server_view a, b, unknown = {0};

    cr_assert_eq(view_from_state(&a, &st), 0);
    b = a;
    cr_assert(view_same(&a, &b));
    b.op_state = 0;
    cr_assert(view_same(&a, &b), "the operational state is HAProxy's, not ours");
    b = a;
    b.port = 81;
    cr_assert_not(view_same(&a, &b));
    b = a;
    b.weight = 4;
    cr_assert_not(view_same(&a, &b));
    b = a;
    b.admin = SERVER_DRAIN;
    cr_assert_not(view_same(&a, &b));
    b = a;
    cr_assert_eq(view_set_addr(&b, "10.0.0.2"), 0);
    cr_assert_not(view_same(&a, &b));
    cr_assert_not(view_same(&a, &unknown));
    cr_assert(view_same(&unknown, &unknown));
}

Test(view, new_slot_is_a_dynamic_server_in_maintenance)
{
    struct server_view v;

    memset(&v, 0xff, sizeof(v));
    view_set_new_slot(&v);
    cr_assert(view_known(&v));
    cr_assert(view_empty(&v));
    cr_assert(view_addr_is(&v, "0.0.0.0"));
    cr_assert_eq(v.weight, 1);
    cr_assert_eq(v.admin, SERVER_MAINT);
}
