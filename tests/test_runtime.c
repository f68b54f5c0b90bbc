/* Tests for the pure half of runtime: reply framing, reply checks and the
 * "show servers state" parser. Texts are HAProxy 2.6's own answers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ev.h>

#include <slotsync/render.h>
#include <slotsync/runtime.h>

#define HEADER                                                                                     \
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "           \
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "   \
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "  \
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

struct split_case {
    const char *name;
    const char *text;
    size_t n;
    int ret;
    const char *replies[4];
};

static const struct split_case split_cases[] = {
    {"one empty reply", "\n", 1, 0, {""}},
    {"three empty replies", "\n\n\n", 3, 0, {"", "", ""}},
    {"text then empty",
     "IP changed from '0.0.0.0' to '127.0.0.2', port changed from '+0' to '9002' by 'stats "
     "socket command'\n\n\n",
     2,
     0,
     {"IP changed from '0.0.0.0' to '127.0.0.2', port changed from '+0' to '9002' by 'stats "
      "socket command'",
      ""}},
    {"multi-line reply",
     "1\n# h\n2 a 1 s1\n\nNo such server.\n\n",
     2,
     0,
     {"1\n# h\n2 a 1 s1", "No such server."}},
    {"error without the empty line shifts the count",
     "Empty weight string empty or preceded by garbage\n\n",
     2,
     -EPROTO,
     {NULL}},
    {"too many replies", "\n\n\n", 2, -EPROTO, {NULL}},
    {"too few replies", "\n", 2, -EPROTO, {NULL}},
    {"truncated: no final newline", "No such server.", 1, -EPROTO, {NULL}},
    {"truncated: reply without its empty line", "No such server.\n", 1, -EPROTO, {NULL}},
    {"nothing at all", "", 1, -EPROTO, {NULL}},
};

Test(runtime, split_replies_table)
{
    for (size_t k = 0; k < sizeof(split_cases) / sizeof(split_cases[0]); k++) {
        const struct split_case *tc = &split_cases[k];
        char **r = NULL;
        char *buf = strdup(tc->text);
        int ret;

        cr_assert_not_null(buf);
        ret = runtime_split_replies(buf, strlen(tc->text), tc->n, &r);
        cr_assert_eq(ret, tc->ret, "%s: ret %d, want %d", tc->name, ret, tc->ret);
        if (ret < 0) {
            cr_assert_null(r, "%s", tc->name);
            cr_assert_str_eq(buf, tc->text, "%s: the text is left as it was", tc->name);
            free(buf);
            continue;
        }
        for (size_t i = 0; i < tc->n; i++) {
            cr_assert_str_eq(r[i], tc->replies[i], "%s: reply %zu", tc->name, i);
            cr_assert(r[i] >= buf && r[i] <= buf + strlen(tc->text), "%s: in place", tc->name);
        }
        runtime_replies_free(r, tc->n);
        free(buf);
    }
}

struct ok_case {
    const char *cmd, *reply;
    bool ok;
};

static const struct ok_case ok_cases[] = {
    {"set server a/s1 addr 127.0.0.1 port 80",
     "IP changed from '0.0.0.0' to '127.0.0.1', port changed from '+0' to '80' by 'stats socket "
     "command'",
     true},
    {"set server a/s1 addr 127.0.0.1 port 80",
     "no need to change the addr, no need to change the port by 'stats socket command'", true},
    {"set server a/s1 addr 127.0.0.1 port 80", "No such server.", false},
    {"set server a/s1 addr 127.0.0.1 port 80", "Invalid addr '1.2.3.999' by 'stats socket command'",
     false},
    {"set server a/s1 addr 127.0.0.1 port 80", "", false},
    {"set server a/s1 addr 127.0.0.1 port 80", "IP changed from 'x'\nNo such server.", false},
    {"set server a/s1 weight 3", "", true},
    {"set server a/s1 weight 3", "Absolute weight can only be between 0 and 256 inclusive.", false},
    {"set server a/s1 state ready", "", true},
    {"set server a/s1 state ready", "No such server.", false},
    {"set server a/s1 state maint", "Require 'backend/server'.", false},
    {"show servers state", "1\n" HEADER "2 a 1 s1 0.0.0.0 0 5 1 1 1 1 0 0 8 0 0 0 - 0 - 0 0 - - 0",
     true},
    {"show servers state", "Can't find backend.", false},
    {"add server web/s17 0.0.0.0:0 check", "New server registered.", true},
    {"add server web/s17 0.0.0.0:0", "Already exists a server with the same name in backend.",
     false},
    {"add server st/s2 0.0.0.0:0",
     "Backend must use a dynamic load balancing to support dynamic "
     "servers.",
     false},
    {"enable health web/s17", "", true},
    {"enable health web/s17", "No such server.", false},
    {"add map /m a.test web", "", true},
    {"set map /m a.test web", "entry not found.", false},
    {"del map /m a.test", "Key not found.", false},
    {"del map /m a.test", "", true},
    {"show map /m", "0x55f8f2f168b0 web.local web", true},
    {"show map /m", "Unknown map identifier. Please use #<id> or <file>.", false},
};

Test(runtime, reply_ok_table)
{
    for (size_t k = 0; k < sizeof(ok_cases) / sizeof(ok_cases[0]); k++)
        cr_assert_eq(runtime_reply_ok(ok_cases[k].cmd, ok_cases[k].reply), ok_cases[k].ok,
                     "case %zu: %s -> %s", k, ok_cases[k].cmd, ok_cases[k].reply);
}

struct rows {
    struct server_state st[16];
    size_t n;
    int stop_after; /* return non-zero after this many rows; 0 = never */
};

static int collect(const struct server_state *st, void *arg)
{
    struct rows *r = arg;

    if (r->n < 16)
        r->st[r->n++] = *st;
    return r->stop_after && (int)r->n >= r->stop_after ? 42 : 0;
}

Test(runtime, servers_state_parses_haproxy_26_output)
{
    const char *text =
        "1\n" HEADER "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n"
        "2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n"
        "2 api 3 s3 ::1 2 12 0 1 0 6 3 2 6 0 0 0 - 8080 - 0 0 - - 0\n"
        "3 db 1 s1 127.0.0.2 2 4 5 1 0 1 0 2 6 0 0 0 - 5432 - 0 0 - - 0\n";
    struct rows r = {0};
    size_t bad = 99;

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0);
    cr_assert_eq(bad, 0);
    cr_assert_eq(r.n, 4);
    cr_assert_str_eq(r.st[0].backend, "api");
    cr_assert_str_eq(r.st[0].server, "s1");
    cr_assert_str_eq(r.st[0].addr, "127.0.0.1");
    cr_assert_eq(r.st[0].port, 9001);
    cr_assert_eq(r.st[0].weight, 10);
    cr_assert_eq(r.st[0].admin, SERVER_READY);
    cr_assert_eq(r.st[0].op_state, 2);
    cr_assert_str_eq(r.st[1].addr, "0.0.0.0");
    cr_assert_eq(r.st[1].admin, SERVER_MAINT, "admin 5 = FMAINT|CMAINT");
    cr_assert_str_eq(r.st[2].addr, "::1");
    cr_assert_eq(r.st[2].admin, SERVER_DRAIN, "admin 12 = FDRAIN|CMAINT");
    cr_assert_eq(r.st[2].weight, 0);
    cr_assert_eq(r.st[3].admin, SERVER_READY, "CMAINT alone is not maint");
    cr_assert_eq(r.st[3].backend_id, 3);
    cr_assert_eq(r.st[3].server_id, 1);
}

struct bad_row_case {
    const char *name, *row;
};

/* Each row is HAProxy's format with one field made hostile. */
static const struct bad_row_case bad_rows[] = {
    {"address not an IP", "2 api 1 s1 evil;host 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"address out of range", "2 api 1 s1 999.1.1.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"port too big", "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 70000 - 0 0 - - 0"},
    {"port not a number", "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 90x1 - 0 0 - - 0"},
    {"weight too big", "2 api 1 s1 127.0.0.1 2 0 257 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"negative weight", "2 api 1 s1 127.0.0.1 2 0 -1 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"op state too big", "2 api 1 s1 127.0.0.1 7 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"backend name with a slash",
     "2 a/b 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"server name with a control byte",
     "2 api 1 s\x01 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
    {"too few fields", "2 api 1 s1 127.0.0.1 2 0"},
    {"leading zero", "2 api 1 s1 127.0.0.1 2 0 010 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0"},
};

Test(runtime, servers_state_skips_hostile_rows)
{
    for (size_t k = 0; k < sizeof(bad_rows) / sizeof(bad_rows[0]); k++) {
        char text[2048];
        struct rows r = {0};
        size_t bad = 0;

        snprintf(text, sizeof(text),
                 "1\n" HEADER "%s\n2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n",
                 bad_rows[k].row);
        cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0, "%s",
                     bad_rows[k].name);
        cr_assert_eq(bad, 1, "%s: bad %zu", bad_rows[k].name, bad);
        cr_assert_eq(r.n, 1, "%s: the good row still counts", bad_rows[k].name);
        cr_assert_str_eq(r.st[0].server, "s2");
    }
}

Test(runtime, servers_state_rejects_other_formats)
{
    const char *texts[] = {
        "",
        "2\n" HEADER,
        "Can't find backend.",
        "1\n2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n", /* no header */
        "1\n# be_id be_name srv_id\n2 api 1\n", /* header without the columns we need */
    };
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        struct rows r = {0};

        cr_assert_eq(runtime_parse_servers_state(texts[k], strlen(texts[k]), collect, &r, NULL),
                     -EPROTO, "text %zu", k);
        cr_assert_eq(r.n, 0);
    }
}

Test(runtime, servers_state_columns_found_by_name)
{
    /* A future HAProxy may reorder or add columns: we locate them by name. */
    const char *text = "1\n# srv_port extra be_name srv_name srv_addr srv_op_state srv_admin_state "
                       "srv_uweight be_id srv_id\n"
                       "8080 x web s4 127.0.0.9 2 0 7 5 4\n";
    struct rows r = {0};

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, NULL), 0);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.st[0].backend, "web");
    cr_assert_str_eq(r.st[0].server, "s4");
    cr_assert_eq(r.st[0].port, 8080);
    cr_assert_eq(r.st[0].weight, 7);
}

Test(runtime, servers_state_callback_stops_the_walk)
{
    const char *text =
        "1\n" HEADER "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n"
        "2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n";
    struct rows r = {.stop_after = 1};

    cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, NULL), 42);
    cr_assert_eq(r.n, 1);
}

Test(runtime, new_rejects_bad_addresses)
{
    const char *bad[] = {"localhost",       "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
                         "host.example:80", "[::1]",      "[zz]:80"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        cr_assert_null(runtime_new(NULL, bad[k], 1), "%s", bad[k]);
    const char *good[] = {"/run/haproxy/admin.sock", "127.0.0.1:9999", "[::1]:9999",
                          "localhost:9999"};
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        struct runtime *rt = runtime_new(NULL, good[k], 1);

        cr_assert_not_null(rt, "%s", good[k]);
        runtime_free(rt);
    }
}

Test(runtime, send_refuses_command_injection)
{
    struct runtime *rt = runtime_new(NULL, "/nonexistent/sock", 1);
    const char *inj[] = {"set server a/s1 state ready;shutdown sessions server a/s1"};
    const char *nl[] = {"set server a/s1 state ready\nshow info"};
    const char *empty[] = {""};

    cr_assert_not_null(rt);
    cr_assert_eq(runtime_send(rt, inj, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send(rt, nl, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send(rt, empty, 1, NULL, NULL), -EINVAL);
    cr_assert_eq(runtime_send_raw(rt, "reload\nquit", NULL, NULL), -EINVAL);
    cr_assert_not(runtime_busy(rt));
    runtime_free(rt);
}

/* ---- show map, show backend ---- */

struct map_rows {
    char text[8][300];
    size_t n;
};

static int collect_map(const char *key, const char *value, void *arg)
{
    struct map_rows *m = arg;

    if (m->n < 8)
        snprintf(m->text[m->n], sizeof(m->text[0]), "%s=%s", key, value);
    m->n++;
    return 0;
}

struct map_case {
    const char *name;
    const char *text; /* NULL: built by the test (long fields) */
    size_t n, bad;
    const char *rows[3]; /* "key=value" */
};

static const struct map_case map_cases[] = {
    {"two lines",
     "0x55f8f2f168b0 a.test web\n0x55f8f2f168c0 b.test api",
     2,
     0,
     {"a.test=web", "b.test=api"}},
    {"trailing newline and blank line", "0x1 a.test web\n\n", 1, 0, {"a.test=web"}},
    {"empty", "", 0, 0, {NULL}},
    /* sscanf skipped the newline and made one entry of two lines */
    {"newline inside an entry", "0x1 a.test\nweb", 0, 2, {NULL}},
    {"value on the next line after id", "0x1\na.test web", 0, 2, {NULL}},
    {"four fields", "0x1 a.test web extra", 0, 1, {NULL}},
    {"double space", "0x1  a.test web", 0, 1, {NULL}},
    {"tab separator", "0x1\ta.test web", 0, 1, {NULL}},
    {"carriage return", "0x1 a.test web\r\n0x2 b.test api", 1, 1, {"b.test=api"}},
    {"id not hex", "0xg a.test web\n1 b.test web\n0x c.test web", 0, 3, {NULL}},
    {"control byte in the key", "0x1 a\x1b[2J.test web", 0, 1, {NULL}},
    {"non-ASCII in the value", "0x1 a.test w\xc3\xa9", 0, 1, {NULL}},
};

Test(runtime, parse_map_table)
{
    for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
        const struct map_case *mc = &map_cases[i];
        struct map_rows m = {0};
        size_t bad = 99;

        cr_assert_eq(runtime_parse_map(mc->text, strlen(mc->text), collect_map, &m, &bad), 0, "%s",
                     mc->name);
        cr_expect_eq(m.n, mc->n, "%s: %zu entries, wanted %zu", mc->name, m.n, mc->n);
        cr_expect_eq(bad, mc->bad, "%s: %zu bad lines, wanted %zu", mc->name, bad, mc->bad);
        for (size_t k = 0; k < mc->n && k < m.n; k++)
            cr_expect_str_eq(m.text[k], mc->rows[k], "%s: entry %zu", mc->name, k);
    }
}

/* A field longer than the limit is rejected whole, never split into two
 * entries (sscanf's "%254s" cut a long key and read its tail as the next
 * field). */
Test(runtime, parse_map_long_fields)
{
    char text[1200], key[RUNTIME_MAP_KEY_MAX + 2], value[RUNTIME_MAP_VALUE_MAX + 2];
    struct map_rows m = {0};
    size_t bad = 0;

    memset(key, 'k', sizeof(key));
    key[RUNTIME_MAP_KEY_MAX] = '\0';
    memset(value, 'v', sizeof(value));
    value[RUNTIME_MAP_VALUE_MAX] = '\0';
    /* at the limits: kept */
    snprintf(text, sizeof(text), "0x1 %s %s", key, value);
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 1);
    cr_expect_eq(bad, 0);
    /* one byte over, in the key or in the value: rejected */
    key[RUNTIME_MAP_KEY_MAX] = 'k';
    key[RUNTIME_MAP_KEY_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "0x1 %s web\n0x2 a.test %sv", key, value);
    m.n = 0;
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 0, "%zu entries", m.n);
    cr_expect_eq(bad, 2);
    /* a 300-byte key whose tail looks like "key value" */
    memset(text, 'x', sizeof(text));
    memcpy(text, "0x1 ", 4);
    snprintf(text + 4 + 254, sizeof(text) - 4 - 254, " evil.test web");
    m.n = 0;
    cr_assert_eq(runtime_parse_map(text, strlen(text), collect_map, &m, &bad), 0);
    cr_expect_eq(m.n, 0);
}

static int collect_name(const char *name, void *arg)
{
    struct map_rows *m = arg;

    if (m->n < 8)
        snprintf(m->text[m->n], sizeof(m->text[0]), "%s", name);
    m->n++;
    return 0;
}

Test(runtime, parse_backends)
{
    struct map_rows m = {0};
    size_t bad = 0;
    const char *ok = "# name\nstats\napp\nweb.v2\n";
    const char *hostile = "# name\nstats\nbad name\nx\x1b[0m\n";

    cr_assert_eq(runtime_parse_backends(ok, strlen(ok), collect_name, &m, &bad), 0);
    cr_assert_eq(m.n, 3);
    cr_expect_str_eq(m.text[0], "stats");
    cr_expect_str_eq(m.text[1], "app");
    cr_expect_str_eq(m.text[2], "web.v2");
    cr_expect_eq(bad, 0);
    m.n = 0;
    cr_assert_eq(runtime_parse_backends(hostile, strlen(hostile), collect_name, &m, &bad), 0);
    cr_expect_eq(m.n, 1);
    cr_expect_eq(bad, 2);
    cr_expect_eq(runtime_parse_backends("stats\n", 6, collect_name, &m, &bad), -EPROTO);
    cr_expect_eq(runtime_parse_backends("", 0, collect_name, &m, &bad), -EPROTO);
    cr_expect(runtime_reply_ok("show backend", "# name\nstats"));
    cr_expect(!runtime_reply_ok("show backend", "Unknown command"));
}

Test(runtime, cli_level)
{
    cr_assert_eq(runtime_cli_level("admin"), RUNTIME_LEVEL_ADMIN);
    cr_assert_eq(runtime_cli_level("operator"), RUNTIME_LEVEL_OPERATOR);
    cr_assert_eq(runtime_cli_level("user"), RUNTIME_LEVEL_USER);
    cr_assert_eq(runtime_cli_level(""), -EPROTO);
    cr_assert_eq(runtime_cli_level("admin\nadmin"), -EPROTO);
    cr_assert_eq(runtime_cli_level("Unknown command"), -EPROTO);
    cr_assert(runtime_reply_ok("show cli level", "operator"));
    cr_assert_not(runtime_reply_ok("show cli level", ""));
    cr_assert_str_eq(runtime_level_name(RUNTIME_LEVEL_OPERATOR), "operator");
}

/* ---- a timed-out exchange is finished, not dropped ---- */

struct stale_test {
    int calls, err;
};

static void stale_cb(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    struct stale_test *t = arg;

    t->calls++;
    t->err = err;
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void run_for(struct ev_loop *loop, double s)
{
    ev_timer t;

    ev_timer_init(&t, stop_loop, s, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

Test(runtime, timed_out_exchange_is_finished_in_the_background)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/test_runtime.XXXXXX", line[256];
    const char *cmds[] = {"set server b/s1 state ready"};
    struct stale_test t = {0};
    struct runtime *rt;
    int lfd, cfd;
    ssize_t got;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/admin.sock", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    rt = runtime_new(loop, sun.sun_path, 0.05);
    cr_assert_not_null(rt);
    /* A "stopped HAProxy": the connection waits in the backlog. */
    cr_assert_eq(runtime_send(rt, cmds, 1, stale_cb, &t), 0);
    run_for(loop, 0.2);
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.err, -ETIMEDOUT);
    cr_assert(runtime_busy(rt), "still finishing the old exchange");
    cr_assert(runtime_stale(rt));
    cr_assert_eq(runtime_send(rt, cmds, 1, stale_cb, &t), -EBUSY);
    /* It resumes: reads the whole line, answers and closes. */
    cfd = accept(lfd, NULL, NULL);
    cr_assert_geq(cfd, 0);
    got = read(cfd, line, sizeof(line) - 1);
    cr_assert_eq(got, (ssize_t)strlen(cmds[0]) + 1);
    cr_assert_eq(write(cfd, "\n", 1), 1);
    close(cfd);
    for (int i = 0; i < 50 && runtime_busy(rt); i++)
        run_for(loop, 0.01);
    cr_assert_not(runtime_busy(rt));
    cr_assert_not(runtime_stale(rt));
    cr_assert_eq(t.calls, 1, "no second callback");
    cr_assert_eq(runtime_stale_abandoned(rt), 0);
    runtime_free(rt);
    close(lfd);
    unlink(sun.sun_path);
    rmdir(dir);
    ev_loop_destroy(loop);
}

/* srv_admin_state bits folded into ready/drain/maint, every bit alone and a
 * few mixes, with HAProxy's values written out. */
Test(runtime, admin_bits_table)
{
    static const struct {
        unsigned bits;
        enum server_admin want;
    } cases[] = {
        {0x00, SERVER_READY},
        {0x01, SERVER_MAINT}, /* FMAINT */
        {0x02, SERVER_MAINT}, /* IMAINT */
        {0x04, SERVER_READY}, /* CMAINT alone */
        {0x08, SERVER_DRAIN}, /* FDRAIN */
        {0x10, SERVER_DRAIN}, /* IDRAIN */
        {0x20, SERVER_MAINT}, /* RMAINT */
        {0x40, SERVER_READY}, /* HMAINT */
        {0x09, SERVER_MAINT}, /* maint wins over drain */
        {0x0c, SERVER_DRAIN},
        {0x7f, SERVER_MAINT},
        {SRV_ADMF_DRAIN | SRV_ADMF_HMAINT, SERVER_DRAIN},
    };

    cr_assert_eq(SRV_ADMF_MAINT, 0x23);
    cr_assert_eq(SRV_ADMF_DRAIN, 0x18);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        struct rows r = {0};
        size_t bad = 0;

        snprintf(text, sizeof(text),
                 "1\n" HEADER
                 "2 api 1 s1 127.0.0.1 2 %u 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n",
                 cases[i].bits);
        cr_assert_eq(runtime_parse_servers_state(text, strlen(text), collect, &r, &bad), 0);
        cr_assert_eq(r.n, 1, "case %zu", i);
        cr_expect_eq(r.st[0].admin, cases[i].want, "case %zu (0x%02x)", i, cases[i].bits);
        cr_expect_eq(r.st[0].admin_bits, cases[i].bits, "case %zu", i);
    }
}

/* "show map" lines into routes: only what slotsync could have written. */
Test(runtime, parse_routes_table)
{
    const char *text = "0x55d1 web.example.com web\n"
                       "0x55d2 api.example.com api\n"
                       "0x55d3 UPPER.example.com web\n"    /* not lower case */
                       "0x55d4 api.example.com bad/name\n" /* not a service name */
                       "0x55d5 a.example.com db\n"
                       "not a map line\n"
                       "0x55d6 api.example.com api2\n"; /* listed twice: kept twice */
    static const char *const want[][2] = {{"a.example.com", "db"},
                                          {"api.example.com", "api"},
                                          {"api.example.com", "api2"},
                                          {"web.example.com", "web"}};
    struct host_route *routes = NULL;
    size_t n = 0, bad = 0;

    cr_assert_eq(runtime_parse_routes(text, strlen(text), &routes, &n, &bad), 0);
    cr_assert_eq(n, 4);
    cr_expect_eq(bad, 3);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(routes[i].host, want[i][0], "route %zu", i);
        /* same host: qsort order between the two is not fixed */
        if (strcmp(want[i][0], "api.example.com") != 0)
            cr_expect_str_eq(routes[i].backend, want[i][1], "route %zu", i);
    }
    free(routes);
    cr_assert_eq(runtime_parse_routes("", 0, &routes, &n, NULL), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(routes);
}

/* ---- batches cut into CLI lines (HAProxy 3.1+ refuses a line longer than
 * tune.bufsize) ---- */

struct join_case {
    const char *name;
    const char *cmds[4];
    size_t n, line_max;
    int ret;
    const char *text;
};

static const struct join_case join_cases[] = {
    {"one command", {"show info"}, 1, 64, 1, "show info\n"},
    {"all on one line", {"a b", "c d", "e"}, 3, 64, 1, "a b;c d;e\n"},
    /* "a b;c d\n" is 8 bytes: exactly line_max */
    {"exactly full", {"a b", "c d", "e"}, 3, 8, 2, "a b;c d\ne\n"},
    {"one byte short", {"a b", "c d", "e"}, 3, 7, 2, "a b\nc d;e\n"},
    {"a command longer than a line has its own",
     {"x", "0123456789", "y"},
     3,
     4,
     3,
     "x\n0123456789\ny\n"},
    {"empty command", {"a", ""}, 2, 64, -EINVAL, NULL},
    {"semicolon", {"a;b"}, 1, 64, -EINVAL, NULL},
    {"newline", {"a\nb"}, 1, 64, -EINVAL, NULL},
    {"carriage return", {"a\rb"}, 1, 64, -EINVAL, NULL},
    {"no command", {NULL}, 0, 64, -EINVAL, NULL},
};

Test(runtime, join_lines_table)
{
    for (size_t i = 0; i < sizeof(join_cases) / sizeof(join_cases[0]); i++) {
        const struct join_case *c = &join_cases[i];
        char *out = NULL;
        size_t len = 0;
        int r = runtime_join_lines(c->cmds, c->n, c->line_max, &out, &len);

        cr_assert_eq(r, c->ret, "%s: %d", c->name, r);
        if (r < 0) {
            cr_assert_null(out, "%s", c->name);
            continue;
        }
        cr_assert_str_eq(out, c->text, "%s", c->name);
        cr_assert_eq(len, strlen(c->text), "%s", c->name);
        free(out);
    }
}

/* A CLI as HAProxy 3.1+ has it: one line per connection, one empty reply
 * per command, and a line longer than its buffer refused as a whole. */
#define FAKE_BUFSIZE 16384

struct fake_cli {
    struct ev_loop *loop;
    ev_io accept_w, conn_w;
    int lfd, cfd;
    char buf[FAKE_BUFSIZE + 1];
    size_t len, connections, longest, commands;
    int calls, err;
    size_t replies;
};

static void fake_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_cli *f = w->data;
    ssize_t got = read(f->cfd, f->buf + f->len, sizeof(f->buf) - f->len);
    char *nl;

    if (got > 0)
        f->len += (size_t)got;
    nl = memchr(f->buf, '\n', f->len);
    if (!nl && f->len < sizeof(f->buf) && got > 0)
        return;
    if (!nl) {
        const char *msg = "The command line is too big for the buffer size. Please change "
                          "tune.bufsize in the configuration to use a bigger command.\n";

        cr_assert_eq(write(f->cfd, msg, strlen(msg)), (ssize_t)strlen(msg));
    } else {
        size_t line = (size_t)(nl - f->buf) + 1;

        if (line > f->longest)
            f->longest = line;
        for (char *p = f->buf; p < nl; p++)
            if (*p == ';')
                f->commands++;
        f->commands++;
        for (char *p = f->buf; p <= nl; p++)
            if (*p == ';' || *p == '\n')
                cr_assert_eq(write(f->cfd, "\n", 1), 1);
    }
    ev_io_stop(loop, w);
    close(f->cfd);
    f->cfd = -1;
    f->len = 0;
}

static void fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fake_cli *f = w->data;

    if (f->cfd >= 0)
        return; /* one at a time: the next waits in the backlog */
    f->cfd = accept(f->lfd, NULL, NULL);
    if (f->cfd < 0)
        return;
    f->connections++;
    ev_io_init(&f->conn_w, fake_conn, f->cfd, EV_READ);
    f->conn_w.data = f;
    ev_io_start(loop, &f->conn_w);
}

static void fake_done(int err, char **replies, size_t n, const char *raw, size_t raw_len, void *arg)
{
    struct fake_cli *f = arg;

    f->calls++;
    f->err = err;
    f->replies = replies ? n : 0;
    ev_break(f->loop, EVBREAK_ALL);
}

Test(runtime, a_batch_longer_than_a_cli_line_goes_out_in_lines)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/test_runtime.XXXXXX";
    enum { N = 3000 }; /* about 80 kB of commands */
    static char text[N][48];
    const char *cmds[N];
    struct fake_cli f = {.loop = loop, .cfd = -1};
    struct runtime *rt;

    for (size_t i = 0; i < N; i++) {
        snprintf(text[i], sizeof(text[i]), "set server web/s%zu addr 127.0.0.1 port 8080", i + 1);
        cmds[i] = text[i];
    }
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/admin.sock", dir);
    f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_geq(f.lfd, 0);
    cr_assert_eq(bind(f.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(f.lfd, 4), 0);
    ev_io_init(&f.accept_w, fake_accept, f.lfd, EV_READ);
    f.accept_w.data = &f;
    ev_io_start(loop, &f.accept_w);
    rt = runtime_new(loop, sun.sun_path, 5);
    cr_assert_not_null(rt);
    cr_assert_eq(runtime_send(rt, cmds, N, fake_done, &f), 0);
    ev_run(loop, 0);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.err, 0, "%d", f.err);
    cr_assert_eq(f.replies, N, "every reply, in one list");
    cr_assert_eq(f.commands, N);
    cr_assert_gt(f.connections, 1, "the batch was cut");
    cr_assert_leq(f.longest, RUNTIME_LINE_MAX);
    cr_assert_not(runtime_busy(rt));
    runtime_free(rt);
    ev_io_stop(loop, &f.accept_w);
    close(f.lfd);
    unlink(sun.sun_path);
    rmdir(dir);
    ev_loop_destroy(loop);
}
