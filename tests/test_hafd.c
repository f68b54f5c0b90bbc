/* test_hafd - HAProxy's descriptor needs: the config counter and the
 * model, against figures measured on HAProxy 2.6.12 ("Cannot raise FD limit
 * to N" with ulimit -n 500, docs/DESIGN.md), and what this machine gives. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotsync/hafd.h>

/* A config like the one each figure was measured on: a stats socket, two
 * binds, one backend of n servers with options opt, maybe global lines. */
static char *measured_config(const char *global, size_t n, const char *opt)
{
    size_t cap = 512 + n * 64, len = 0;
    char *t = malloc(cap);

    cr_assert_not_null(t);
    len += (size_t)snprintf(t + len, cap - len,
                            "global\n    stats socket /tmp/a.sock mode 600 level admin\n%s"
                            "defaults\n    mode http\n    timeout connect 1s\n"
                            "frontend f\n    bind 127.0.0.1:47999\n    bind 127.0.0.1:47998\n"
                            "    default_backend b\nbackend b\n",
                            global);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(t + len, cap - len, "    server s%zu 0.0.0.0:0 %s\n", i + 1, opt);
    return t;
}

Test(hafd, the_model_gives_haproxys_measured_figures)
{
    static const struct {
        const char *global;
        size_t servers;
        const char *opt;
        long cpus;
        unsigned long want; /* HAProxy 2.6.12: "Cannot raise FD limit to <want>" */
    } cases[] = {
        {"    maxconn 4096\n    nbthread 1\n", 1000, "check", 2, 9218},
        {"    maxconn 4096\n    nbthread 1\n", 2000, "check", 2, 10218},
        {"    maxconn 4096\n    nbthread 4\n", 1000, "check", 2, 9227},
        {"    maxconn 4096\n    nbthread 1\n", 1000, "disabled", 2, 8218},
        {"    nbthread 1\n", 1000, "check", 2, 1226},
        {"    maxconn 4096\n    nbthread 1\n", 1000, "check agent-check agent-port 1", 2, 11218},
        {"    maxconn 4096\n    nbthread 1\n", 1000, "check disabled", 2, 9218},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char *t = measured_config(cases[k].global, cases[k].servers, cases[k].opt);
        struct hafd_count c = {0};

        hafd_count_text(t, strlen(t), &c);
        cr_expect_eq(c.servers, cases[k].servers, "case %zu", k);
        cr_expect_eq(c.listeners, 3, "case %zu", k);
        cr_expect_eq(hafd_needed(&c, cases[k].cpus), cases[k].want, "case %zu: %lu", k,
                     hafd_needed(&c, cases[k].cpus));
        free(t);
    }
}

Test(hafd, checks_come_from_default_server_lines_and_sections)
{
    static const struct {
        const char *text;
        unsigned long servers, checked, agents;
    } cases[] = {
        /* a rendered backend: "check" on its default-server line */
        {"backend web\n    default-server check inter 2s\n    server s1 0.0.0.0:0 disabled\n"
         "    server s2 10.0.0.1:80 weight 1\n",
         2, 2, 0},
        /* the defaults' default-server applies to later sections only */
        {"backend a\n    server s1 1.2.3.4:80\ndefaults\n    default-server check\n"
         "backend b\n    server s1 1.2.3.4:80\n    server s2 1.2.3.4:81 no-check\n",
         3, 1, 0},
        /* a backend's default-server does not leak into the next backend */
        {"backend a\n    default-server check agent-check\n    server s1 1.2.3.4:80\n"
         "backend b\n    server s1 1.2.3.4:80\n",
         2, 1, 1},
        /* "check-ssl", "checkx" and comments are not "check" */
        {"backend a\n    server s1 1.2.3.4:80 check-ssl # check\n    server s2 1.2.3.4:80 checkx\n",
         2, 0, 0},
        {"", 0, 0, 0},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct hafd_count c = {0};

        hafd_count_text(cases[k].text, strlen(cases[k].text), &c);
        cr_expect_eq(c.servers, cases[k].servers, "case %zu servers %lu", k, c.servers);
        cr_expect_eq(c.checked, cases[k].checked, "case %zu checked %lu", k, c.checked);
        cr_expect_eq(c.agents, cases[k].agents, "case %zu agents %lu", k, c.agents);
    }
}

Test(hafd, global_settings_are_read_from_the_global_section_only)
{
    const char *t = "global\n    maxconn 2000\n    nbthread 3\n    fd-hard-limit 50000\n"
                    "    stats socket /a level admin\n    stats timeout 2m\n"
                    "frontend f\n    maxconn 10\n    bind :80\n";
    struct hafd_count c = {0};

    hafd_count_text(t, strlen(t), &c);
    cr_expect_eq(c.maxconn, 2000);
    cr_expect_eq(c.nbthread, 3);
    cr_expect_eq(c.fd_hard_limit, 50000);
    cr_expect_eq(c.listeners, 2);
    /* bad numbers are not taken */
    struct hafd_count d = {0};
    const char *bad = "global\n    maxconn -5\n    nbthread x\n";

    hafd_count_text(bad, strlen(bad), &d);
    cr_expect_eq(d.maxconn, 0);
    cr_expect_eq(d.nbthread, 0);
}

Test(hafd, what_haproxy_can_get)
{
    cr_expect_eq(hafd_available(20000, 1048576, false, 0), 20000);
    cr_expect_eq(hafd_available(20000, 1048576, true, 0), 1048576);
    cr_expect_eq(hafd_available(20000, 1048576, true, 50000), 50000);
    cr_expect_eq(hafd_available(20000, 1048576, false, 50000), 20000);
    cr_expect_eq(hafd_available(2000000, 1048576, true, 0), 2000000);
}
