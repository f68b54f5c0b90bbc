/* test_bulk - the socket-or-reload cost model, table-driven. */
#include <criterion/criterion.h>

#include <slotsync/bulk.h>

Test(bulk, choose_table)
{
    static const struct {
        struct bulk_input in;
        bool reload;
        const char *why;
    } cases[] = {
        /* 100,000 endpoints into empty slots: 200,000 commands (7.6 s) vs
         * a file of 102,400 servers (6.3 s) */
        {{200000, 102400, 38, 60, true, BULK_PATH_AUTO}, true, "a reload is cheaper"},
        /* the same plan while min_reload_interval_ms forbids a reload */
        {{200000, 102400, 38, 60, false, BULK_PATH_AUTO}, false, "no reload allowed now"},
        /* forced either way */
        {{200000, 102400, 38, 60, true, BULK_PATH_RUNTIME}, false, "bulk_path is runtime"},
        {{2000, 102400, 38, 60, true, BULK_PATH_RELOAD}, true, "bulk_path is reload"},
        /* forced reload still waits for the interval */
        {{2000, 102400, 38, 60, false, BULK_PATH_RELOAD}, false, "no reload allowed now"},
        /* a few changes never reload, whatever the model or the knob says */
        {{1023, 0, 1000000, 1, true, BULK_PATH_AUTO}, false, "smaller than one batch"},
        {{10, 10, 38, 60, true, BULK_PATH_RELOAD}, false, "smaller than one batch"},
        {{0, 0, 38, 60, true, BULK_PATH_RELOAD}, false, "smaller than one batch"},
        /* 10,000 endpoints in 128-slot backends: 20,000 commands (0.76 s)
         * vs 12,800 servers (0.92 s) */
        {{20000, 12800, 38, 60, true, BULK_PATH_AUTO}, false, "the runtime socket is cheaper"},
        /* a mass move of 1,000 endpoints in a big file: the socket */
        {{2000, 102400, 38, 60, true, BULK_PATH_AUTO}, false, "the runtime socket is cheaper"},
        /* equal costs: the socket (no reload for nothing) */
        {{1250, 1000, 200, 100, true, BULK_PATH_AUTO}, false, "the runtime socket is cheaper"},
        /* one microsecond cheaper: the reload */
        {{1250, 999, 200, 100, true, BULK_PATH_AUTO}, true, "a reload is cheaper"},
        /* a slow HAProxy socket (configured constant): a few thousand reload */
        {{6000, 4096, 1000, 60, true, BULK_PATH_AUTO}, true, "a reload is cheaper"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bulk_choice c;

        memset(&c, 0xa5, sizeof(c));
        bulk_choose(&cases[i].in, &c);
        cr_expect_eq(c.reload, cases[i].reload, "case %zu", i);
        cr_expect_str_eq(c.why, cases[i].why, "case %zu", i);
        cr_expect_float_eq(c.runtime_s, cases[i].in.commands * (double)cases[i].in.command_us / 1e6,
                           1e-9, "case %zu", i);
        cr_expect_float_eq(
            c.reload_s,
            (BULK_RELOAD_FIXED_US + cases[i].in.servers * (double)cases[i].in.server_us) / 1e6,
            1e-9, "case %zu", i);
    }
}

Test(bulk, path_names_round_trip)
{
    cr_expect_eq(bulk_path_parse("auto"), BULK_PATH_AUTO);
    cr_expect_eq(bulk_path_parse("runtime"), BULK_PATH_RUNTIME);
    cr_expect_eq(bulk_path_parse("reload"), BULK_PATH_RELOAD);
    cr_expect_eq(bulk_path_parse("Reload"), -1);
    cr_expect_eq(bulk_path_parse(""), -1);
    cr_expect_eq(bulk_path_parse(NULL), -1);
    for (int p = BULK_PATH_AUTO; p <= BULK_PATH_RELOAD; p++)
        cr_expect_eq(bulk_path_parse(bulk_path_name(p)), p);
}

Test(bulk, listing_step_table)
{
    static const struct {
        struct bulk_listing_facts f;
        enum bulk_listing_step step;
    } cases[] = {
        /* forced: whatever is known */
        {{BULK_PATH_RELOAD, false, 0, 0}, BULK_LISTING_HOLD},
        {{BULK_PATH_RELOAD, true, 100000, 1000}, BULK_LISTING_HOLD},
        {{BULK_PATH_RUNTIME, true, 100000, 1000}, BULK_LISTING_SEND},
        /* auto: only with HAProxy's state, etcd's count and a valid key */
        {{BULK_PATH_AUTO, false, 100000, 1000}, BULK_LISTING_SEND},
        {{BULK_PATH_AUTO, true, 0, 1000}, BULK_LISTING_SEND},
        {{BULK_PATH_AUTO, true, 100000, 0}, BULK_LISTING_SEND},
        {{BULK_PATH_AUTO, true, 100000, 1000}, BULK_LISTING_ESTIMATE},
        {{BULK_PATH_AUTO, true, 1, 1}, BULK_LISTING_ESTIMATE},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(bulk_listing_step(&cases[i].f), cases[i].step, "case %zu", i);
}

Test(bulk, listing_scale_table)
{
    static const struct {
        size_t commands, servers, valid, count;
        size_t out_commands, out_servers;
    } cases[] = {
        /* the first page of 1,000 keys of 100,000 (2 commands a key), its
         * render 102,400 slots: 200,000 commands, the render as it is */
        {2000, 102400, 1000, 100000, 200000, 102400},
        /* a render smaller than the listing: a slot per key at least */
        {2000, 1024, 1000, 100000, 200000, 100000},
        /* the whole listing read already: nothing scaled */
        {2000, 1024, 1000, 1000, 2000, 1024},
        /* etcd's count below the valid keys (keys deleted meanwhile) */
        {2000, 1024, 1000, 500, 2000, 1024},
        /* invalid keys are in etcd's count: scaled by the valid ones */
        {1000, 0, 500, 1000, 2000, 1000},
        /* a page that needs no command (HAProxy holds it already) */
        {0, 102400, 1000, 100000, 0, 102400},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t c = 7, s = 7;

        bulk_listing_scale(cases[i].commands, cases[i].servers, cases[i].valid, cases[i].count,
                           &c, &s);
        cr_expect_eq(c, cases[i].out_commands, "case %zu", i);
        cr_expect_eq(s, cases[i].out_servers, "case %zu", i);
    }
}
