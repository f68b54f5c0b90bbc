/* Tests for announce's command line (announce_opts): what parses, what is
 * refused with which message, and that every accepted command line gives a
 * value the daemon takes. */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/announce.h>
#include <slotsync/announce_opts.h>
#include <slotsync/announce_value.h>
#include <slotsync/endpoint.h>
#include <slotsync/etcd-t.h>
#include <slotsync/log.h>

#define MAX_ARGS 32

/* argv for announce_parse_args: "announce" then args up to NULL. */
struct argv_buf {
    char *v[MAX_ARGS + 2];
    int c;
};

static void make_argv(struct argv_buf *b, const char *const *args)
{
    b->c = 0;
    b->v[b->c++] = (char *)"announce";
    for (size_t i = 0; args[i]; i++) {
        cr_assert_lt(b->c, MAX_ARGS, "too many arguments in a test case");
        b->v[b->c++] = (char *)args[i];
    }
    b->v[b->c] = NULL;
}

/* The parsed options borrow argv (o->command points into it), so it lives
 * until the next parse. */
static struct argv_buf last_argv;

static int parse(const char *const *args, struct announce_opts *o, char **errmsg)
{
    make_argv(&last_argv, args);
    return announce_parse_args(last_argv.c, last_argv.v, o, errmsg);
}

#define BASE                                                                                       \
    "--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:8080"

/* ---- command line: accepted ---- */

Test(announce_args, defaults)
{
    const char *const args[] = {BASE, NULL};
    struct announce_opts o;
    char *err = NULL;

    cr_assert_eq(parse(args, &o, &err), 0, "error: %s", err ? err : "");
    cr_expect_eq(o.n_etcd_endpoints, 1);
    cr_expect_str_eq(o.etcd_endpoints[0], "http://127.0.0.1:2379");
    cr_expect_str_eq(o.prefix, "/services/");
    cr_expect_str_eq(o.key, "/services/web/a");
    cr_expect_str_eq(o.addr.host, "10.0.0.5");
    cr_expect_eq(o.addr.port, 8080);
    cr_expect_not(o.addr.ipv6);
    cr_expect_not(o.weight_set);
    cr_expect_eq(o.ttl_s, ANNOUNCE_DEFAULT_TTL);
    cr_expect_eq(o.ttl_s, 10);
    cr_expect_eq(o.format, ANNOUNCE_FORMAT_JSON);
    cr_expect_eq(o.etcd_transport, ETCD_TRANSPORT_GRPC);
    cr_expect_eq(o.check, ANNOUNCE_CHECK_NONE);
    cr_expect_null(o.check_url);
    cr_expect_float_eq(o.check_interval_s, 2.0, 1e-9);
    cr_expect_eq(o.rise, 2);
    cr_expect_eq(o.fall, 3);
    cr_expect_eq(o.log_level, LOG_LEVEL_INFO);
    cr_expect_null(o.command);
    cr_expect_not(o.help);
    cr_expect_null(err);
    announce_opts_free(&o);
}

Test(announce_args, everything)
{
    const char *const args[] = {"--etcd",
                                "http://127.0.0.1:2379,http://127.0.0.1:2380",
                                "--prefix=/sd/",
                                "--key",
                                "/sd/api.v2/host-1:8080/x",
                                "--addr",
                                "[2001:DB8::1]:443",
                                "--ttl",
                                "3600",
                                "--weight",
                                "0",
                                "--format",
                                "json",
                                "--check",
                                "http://127.0.0.1:9000/health?full=1",
                                "--check-interval",
                                "0.1",
                                "--rise=1",
                                "--fall",
                                "100",
                                "--log-level",
                                "debug",
                                "--",
                                "/bin/sh",
                                "-c",
                                "exec sleep 1",
                                NULL};
    struct announce_opts o;
    char *err = NULL;

    cr_assert_eq(parse(args, &o, &err), 0, "error: %s", err ? err : "");
    cr_expect_eq(o.n_etcd_endpoints, 2);
    cr_expect_str_eq(o.etcd_endpoints[1], "http://127.0.0.1:2380");
    cr_expect_str_eq(o.prefix, "/sd/");
    cr_expect_str_eq(o.addr.host, "2001:db8::1", "canonical form");
    cr_expect(o.addr.ipv6);
    cr_expect_eq(o.addr.port, 443);
    cr_expect(o.weight_set);
    cr_expect_eq(o.addr.weight, 0);
    cr_expect_eq(o.ttl_s, 3600);
    cr_expect_eq(o.check, ANNOUNCE_CHECK_HTTP);
    cr_expect_str_eq(o.check_url, "http://127.0.0.1:9000/health?full=1");
    cr_expect_float_eq(o.check_interval_s, 0.1, 1e-9);
    cr_expect_eq(o.rise, 1);
    cr_expect_eq(o.fall, 100);
    cr_expect_eq(o.log_level, LOG_LEVEL_DEBUG);
    cr_assert_not_null(o.command);
    cr_expect_str_eq(o.command[0], "/bin/sh");
    cr_expect_str_eq(o.command[2], "exec sleep 1");
    cr_expect_null(o.command[3]);
    announce_opts_free(&o);
}

struct check_case {
    const char *arg;
    enum announce_check kind;
    const char *url; /* canonical, NULL for tcp */
};

Test(announce_args, check_forms)
{
    static const struct check_case cases[] = {
        {"tcp", ANNOUNCE_CHECK_TCP, NULL},
        {"http://127.0.0.1:80", ANNOUNCE_CHECK_HTTP, "http://127.0.0.1:80/"},
        {"http://127.0.0.1:8080/", ANNOUNCE_CHECK_HTTP, "http://127.0.0.1:8080/"},
        {"http://[::1]:8080/ready", ANNOUNCE_CHECK_HTTP, "http://[::1]:8080/ready"},
        {"http://[0:0::1]:8080/a/b", ANNOUNCE_CHECK_HTTP, "http://[::1]:8080/a/b"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const args[] = {BASE, "--check", cases[i].arg, NULL};
        struct announce_opts o;
        char *err = NULL;

        cr_assert_eq(parse(args, &o, &err), 0, "case %zu: %s", i, err ? err : "");
        cr_expect_eq(o.check, cases[i].kind, "case %zu", i);
        if (cases[i].url)
            cr_expect_str_eq(o.check_url, cases[i].url, "case %zu", i);
        else
            cr_expect_null(o.check_url, "case %zu", i);
        announce_opts_free(&o);
    }
}

Test(announce_args, plain_format)
{
    const char *const args[] = {BASE, "--format", "plain", NULL};
    struct announce_opts o;
    char *err = NULL;

    cr_assert_eq(parse(args, &o, &err), 0, "error: %s", err ? err : "");
    cr_expect_eq(o.format, ANNOUNCE_FORMAT_PLAIN);
    announce_opts_free(&o);
}

Test(announce_args, help)
{
    static const char *const helps[] = {"--help", "-h"};

    for (size_t i = 0; i < 2; i++) {
        /* --help wins over anything wrong around it. */
        const char *const args[] = {"--ttl", "1", helps[i], "--bogus", NULL};
        struct announce_opts o;
        char *err = NULL;

        cr_assert_eq(parse(args, &o, &err), 0);
        cr_expect(o.help);
        cr_expect_null(err);
        announce_opts_free(&o);
    }
    cr_expect_not_null(strstr(announce_usage(), "--check-interval"));
}

Test(announce_args, command_args_are_not_options)
{
    const char *const args[] = {BASE, "--", "prog", "--ttl", "1", "--", "x", NULL};
    struct announce_opts o;
    char *err = NULL;

    cr_assert_eq(parse(args, &o, &err), 0, "error: %s", err ? err : "");
    cr_expect_eq(o.ttl_s, 10, "--ttl after -- belongs to the command");
    cr_assert_not_null(o.command);
    cr_expect_str_eq(o.command[0], "prog");
    cr_expect_str_eq(o.command[1], "--ttl");
    cr_expect_str_eq(o.command[4], "x");
    cr_expect_null(o.command[5]);
    announce_opts_free(&o);
}

/* ---- command line: refused, with the option named ---- */

struct bad_case {
    const char *args[12];
    const char *needle; /* must appear in the error */
};

Test(announce_args, refused)
{
    static const struct bad_case cases[] = {
        /* required */
        {{"--key", "/services/web/a", "--addr", "10.0.0.5:80"}, "--etcd is required"},
        {{"--etcd", "http://127.0.0.1:2379", "--addr", "10.0.0.5:80"}, "--key is required"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a"}, "--addr is required"},
        /* syntax */
        {{BASE, "--bogus", "1"}, "unknown option '--bogus'"},
        {{BASE, "-x"}, "unknown option '-x'"},
        {{BASE, "stray"}, "unexpected argument 'stray'"},
        {{BASE, "--ttl"}, "--ttl needs a value"},
        {{BASE, "--ttl", "5", "--ttl", "6"}, "--ttl given twice"},
        {{BASE, "--"}, "a command must follow"},
        /* --etcd */
        {{"--etcd", "127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:80"},
         "--etcd:"},
        {{"--etcd", "http://127.0.0.1:2379,", "--key", "/services/web/a", "--addr", "10.0.0.5:80"},
         "--etcd: empty URL"},
        {{"--etcd", "ftp://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:80"},
         "--etcd:"},
        /* --key and --prefix */
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/other/web/a", "--addr", "10.0.0.5:80"},
         "--key:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web", "--addr", "10.0.0.5:80"},
         "--key:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/", "--addr", "10.0.0.5:80"},
         "--key:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/w b/a", "--addr", "10.0.0.5:80"},
         "--key:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a b", "--addr", "10.0.0.5:80"},
         "--key:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:80",
          "--prefix", "services/"},
         "--prefix:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:80",
          "--prefix", "/services"},
         "--prefix:"},
        /* --addr */
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5"},
         "--addr:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "localhost:80"},
         "--addr:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "10.0.0.5:0"},
         "--addr:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr",
          "10.0.0.5:65536"},
         "--addr:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "::1:80"},
         "--addr:"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "0.0.0.0:80"},
         "--addr: host is the unspecified address"},
        {{"--etcd", "http://127.0.0.1:2379", "--key", "/services/web/a", "--addr", "[::]:80"},
         "--addr: host is the unspecified address"},
        /* numbers */
        {{BASE, "--ttl", "1"}, "--ttl:"},
        {{BASE, "--ttl", "3601"}, "--ttl:"},
        {{BASE, "--ttl", "10s"}, "--ttl:"},
        {{BASE, "--ttl", "-5"}, "--ttl:"},
        {{BASE, "--ttl", " 5"}, "--ttl:"},
        {{BASE, "--ttl", "99999999999999999999"}, "--ttl:"},
        {{BASE, "--weight", "257"}, "--weight:"},
        {{BASE, "--weight", "-1"}, "--weight:"},
        {{BASE, "--weight", "1.5"}, "--weight:"},
        {{BASE, "--format", "plain", "--weight", "5"}, "--weight:"},
        {{BASE, "--format", "yaml"}, "--format:"},
        /* checks */
        {{BASE, "--check", "udp"}, "--check:"},
        {{BASE, "--check", "https://127.0.0.1:80/"}, "--check:"},
        {{BASE, "--check", "http://localhost:80/"}, "--check:"},
        {{BASE, "--check", "http://127.0.0.1/"}, "--check:"},
        {{BASE, "--check", "http://127.0.0.1:80/a b"}, "--check:"},
        {{BASE, "--check", "http://127.0.0.1:80/a#b"}, "--check:"},
        {{BASE, "--check", "tcp", "--check-interval", "0.05"}, "--check-interval:"},
        {{BASE, "--check", "tcp", "--check-interval", "3601"}, "--check-interval:"},
        {{BASE, "--check", "tcp", "--check-interval", "nan"}, "--check-interval:"},
        {{BASE, "--check", "tcp", "--check-interval", "inf"}, "--check-interval:"},
        {{BASE, "--check", "tcp", "--check-interval", ""}, "--check-interval:"},
        {{BASE, "--check", "tcp", "--rise", "0"}, "--rise:"},
        {{BASE, "--check", "tcp", "--fall", "101"}, "--fall:"},
        {{BASE, "--rise", "2"}, "--rise: needs --check"},
        {{BASE, "--check-interval", "1"}, "--check-interval: needs --check"},
        {{BASE, "--log-level", "loud"}, "--log-level:"},
        /* --drain-seconds */
        {{BASE, "--drain-seconds", "-1"}, "--drain-seconds: must be a number of seconds 0-3600"},
        {{BASE, "--drain-seconds", "3601"}, "--drain-seconds: must be"},
        {{BASE, "--drain-seconds", "1e9"}, "--drain-seconds: must be"},
        {{BASE, "--drain-seconds", "nan"}, "--drain-seconds: must be"},
        {{BASE, "--drain-seconds", "5s"}, "--drain-seconds: must be"},
        {{BASE, "--drain-seconds", ""}, "--drain-seconds: must be"},
        {{BASE, "--format", "plain", "--drain-seconds", "5"},
         "--drain-seconds: a plain HOST:PORT value cannot carry the drain state"},
        {{BASE, "--drain-seconds", "5", "--drain-seconds", "6"}, "--drain-seconds given twice"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct announce_opts o;
        char *err = NULL;
        int r = parse(cases[i].args, &o, &err);

        cr_expect_eq(r, -EINVAL, "case %zu (%s): returned %d", i, cases[i].needle, r);
        cr_expect_not_null(err, "case %zu: no message", i);
        if (err)
            cr_expect_not_null(strstr(err, cases[i].needle), "case %zu: \"%s\" lacks \"%s\"", i,
                               err, cases[i].needle);
        /* nothing to free on failure */
        cr_expect_null(o.etcd_endpoints, "case %zu", i);
        cr_expect_null(o.prefix, "case %zu", i);
        cr_expect_null(o.check_url, "case %zu", i);
        free(err);
    }
}

struct drain_case {
    const char *args[12];
    double drain_s;
};

Test(announce_args, drain_seconds)
{
    static const struct drain_case cases[] = {
        {{BASE, NULL}, 0},
        {{BASE, "--drain-seconds", "0", NULL}, 0},
        {{BASE, "--drain-seconds", "2.5", NULL}, 2.5},
        {{BASE, "--drain-seconds=3600", NULL}, 3600},
        {{BASE, "--format", "json", "--drain-seconds", ".5", NULL}, 0.5},
        /* Zero is no drain, so plain may say it. */
        {{BASE, "--format", "plain", "--drain-seconds", "0", NULL}, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct announce_opts o;
        char *err = NULL;

        cr_assert_eq(parse(cases[i].args, &o, &err), 0, "case %zu: %s", i, err ? err : "");
        cr_expect_float_eq(o.drain_s, cases[i].drain_s, 1e-9, "case %zu", i);
        announce_opts_free(&o);
    }
}

Test(announce_args, help_names_drain_and_signals)
{
    const char *u = announce_usage();

    cr_expect_not_null(strstr(u, "--drain-seconds"));
    cr_expect_not_null(strstr(u, "SIGUSR1"));
    cr_expect_not_null(strstr(u, "SIGUSR2"));
    cr_expect_not_null(strstr(u, "SIGTERM"));
}

/* Every command line that parses gives a value the daemon takes. */
Test(announce_value, parsed_options_round_trip)
{
    static const char *const addrs[] = {"127.0.0.1:80", "[::1]:8080", "192.168.1.254:65535",
                                        "[fe80::1]:1"};
    static const char *const formats[] = {"json", "plain"};

    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        for (size_t f = 0; f < 2; f++) {
            const char *const args[] = {"--etcd",   "http://127.0.0.1:2379",
                                        "--key",    "/services/web/a",
                                        "--addr",   addrs[i],
                                        "--format", formats[f],
                                        NULL};
            struct announce_opts o;
            struct endpoint back;
            char buf[ENDPOINT_VALUE_MAX + 1], *err = NULL;
            int n;

            cr_assert_eq(parse(args, &o, &err), 0, "%s %s: %s", addrs[i], formats[f],
                         err ? err : "");
            n = announce_format_value(&o.addr, o.weight_set, o.format, buf, sizeof(buf));
            cr_assert_gt(n, 0);
            cr_expect_eq(endpoint_parse_value(buf, (size_t)n, &back, NULL), 0, "%s", buf);
            cr_expect_str_eq(back.host, o.addr.host);
            cr_expect_eq(back.port, o.addr.port);
            announce_opts_free(&o);
        }
    }
}
