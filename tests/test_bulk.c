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
