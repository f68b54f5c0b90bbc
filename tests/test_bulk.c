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

/* The figures measured per HAProxy version: the closest version at or
 * below, the oldest one below them all (2.6 for anything older). */
Test(bulk, version_costs_table)
{
    static const struct {
        unsigned major, minor;
        double command_us, server_us;
    } cases[] = {
        {1, 8, 14, 34}, {2, 4, 14, 34}, {2, 6, 14, 34}, {2, 8, 14, 34}, {2, 9, 14, 34},
        {3, 0, 13, 22}, {3, 1, 13, 22}, {3, 2, 9, 18},  {3, 3, 9, 18},  {3, 4, 9, 31},
        {3, 5, 9, 31},  {4, 0, 9, 31},  {0, 0, 14, 34},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double cmd = -1, srv = -1;

        bulk_version_costs(cases[i].major, cases[i].minor, &cmd, &srv);
        cr_expect_float_eq(cmd, cases[i].command_us, 1e-9, "%u.%u", cases[i].major, cases[i].minor);
        cr_expect_float_eq(srv, cases[i].server_us, 1e-9, "%u.%u", cases[i].major, cases[i].minor);
    }
}

Test(bulk, samples_need_enough_work)
{
    /* batches: 2,000 commands in 27.6 ms is 13.8 us; under 256 no sample */
    cr_expect_float_eq(bulk_batch_sample(2000, 0.0276), 13.8, 1e-9);
    cr_expect_float_eq(bulk_batch_sample(BULK_SAMPLE_MIN_COMMANDS, 0.000256), 1.0, 1e-9);
    cr_expect_lt(bulk_batch_sample(BULK_SAMPLE_MIN_COMMANDS - 1, 1.0), 0);
    cr_expect_lt(bulk_batch_sample(0, 0), 0);
    cr_expect_lt(bulk_batch_sample(1000, -1), 0);
    /* reloads: 3.667 s for 102,400 servers, less 0.15 s, is 34.3 us each */
    cr_expect_float_eq(bulk_reload_sample(102400, 3.667),
                       (3.667e6 - BULK_RELOAD_FIXED_US) / 102400, 1e-9);
    /* a reload faster than the fixed part still costs 1 us a server */
    cr_expect_float_eq(bulk_reload_sample(BULK_SAMPLE_MIN_SERVERS, 0.1), 1.0, 1e-9);
    cr_expect_lt(bulk_reload_sample(BULK_SAMPLE_MIN_SERVERS - 1, 10.0), 0);
}

Test(bulk, learn_moving_average)
{
    struct bulk_learned l = {0};

    bulk_learn(&l, -1); /* no sample: nothing learned */
    bulk_learn(&l, 0);
    cr_expect_eq(l.samples, 0);
    bulk_learn(&l, 10); /* the first replaces */
    cr_expect_eq(l.samples, 1);
    cr_expect_float_eq(l.us, 10, 1e-9);
    bulk_learn(&l, 20);
    cr_expect_float_eq(l.us, 10 + BULK_LEARN_WEIGHT * 10, 1e-9);
    cr_expect_eq(l.samples, 2);
    for (int i = 0; i < 100; i++)
        bulk_learn(&l, 5);
    cr_expect_float_eq(l.us, 5, 1e-6);
}

Test(bulk, cost_sources_in_order)
{
    const struct bulk_learned none = {0}, learned = {7.5, 3};
    struct bulk_cost k;

    /* the config wins over everything */
    k = bulk_cost(true, 1000, &learned, true, 3, 4);
    cr_expect_float_eq(k.us, 1000, 1e-9);
    cr_expect_eq(k.source, BULK_COST_CONFIG);
    /* then what was measured here */
    k = bulk_cost(false, BULK_COST_MEASURED, &learned, true, 3, 4);
    cr_expect_float_eq(k.us, 7.5, 1e-9);
    cr_expect_eq(k.source, BULK_COST_LEARNED);
    /* then the version's figures */
    k = bulk_cost(true, BULK_COST_MEASURED, &none, true, 3, 4);
    cr_expect_float_eq(k.us, 9, 1e-9);
    cr_expect_eq(k.source, BULK_COST_VERSION);
    k = bulk_cost(false, BULK_COST_MEASURED, NULL, true, 3, 0);
    cr_expect_float_eq(k.us, 22, 1e-9);
    cr_expect_eq(k.source, BULK_COST_VERSION);
    /* version unknown: the oldest version's */
    k = bulk_cost(false, BULK_COST_MEASURED, &none, false, 3, 4);
    cr_expect_float_eq(k.us, 34, 1e-9);
    cr_expect_eq(k.source, BULK_COST_FALLBACK);
    cr_expect_str_eq(bulk_cost_source_name(BULK_COST_LEARNED), "measured here");
    cr_expect_str_eq(bulk_cost_source_name(BULK_COST_FALLBACK), "a default");
}

/* The cold start of the bench at 100,000 endpoints (200,000 commands, a file
 * of 102,400 servers) by each version's figures: the socket on 2.6, 3.2 and
 * 3.4, one reload on 3.0, as the bench measured them (docs/PERFORMANCE.md). */
Test(bulk, cold_start_choice_per_version)
{
    static const struct {
        unsigned major, minor;
        bool reload;
    } cases[] = {{2, 6, false}, {3, 0, true}, {3, 2, false}, {3, 4, false}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bulk_input in = {200000, 102400, 0, 0, true, BULK_PATH_AUTO};
        struct bulk_choice out;

        bulk_version_costs(cases[i].major, cases[i].minor, &in.command_us, &in.server_us);
        bulk_choose(&in, &out);
        cr_expect_eq(out.reload, cases[i].reload, "%u.%u", cases[i].major, cases[i].minor);
    }
}
