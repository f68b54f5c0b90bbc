/* test_apply - the runtime applier against a canned HAProxy on a unix
 * socket of a temp dir: what a resync reads is adopted into the backends of
 * the table it is lent, a socket below level admin gets nothing, and
 * a socket that is not there is an outage with a retry. The decisions it
 * calls have their own suites (backend, plan, runtime). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <ev.h>

#include <slotsync/apply.h>
#include <slotsync/backend.h>
#include <slotsync/catalog.h>
#include <slotsync/log.h>
#include <slotsync/table.h>
#include <slotsync/view.h>

#define HEADER                                                                                     \
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "           \
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "   \
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "  \
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

/* api's slots s1..s3, and a server of the operator's own */
#define API_ROWS                                                                                   \
    "2 api 1 s1 127.0.0.1 2 0 10 10 1 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n"                          \
    "2 api 2 s2 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n"                                \
    "2 api 3 s3 0.0.0.0 0 5 1 1 1 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n"                                \
    "2 api 4 other 127.0.0.9 2 0 1 1 1 6 3 4 6 0 0 0 - 80 - 0 0 - - 0\n"

/* The owner: a backend table (HAProxy's proxies go there), and what the
 * applier told it. */
struct owner {
    struct table tab;
    size_t reloads;
    char last_reload[128];
    size_t proxies_calls;
};

static void own_want_reload(const char *why, const char *name, void *arg)
{
    struct owner *o = arg;

    o->reloads++;
    snprintf(o->last_reload, sizeof(o->last_reload), "%s %s", why, name);
}

static void own_proxies(void *arg)
{
    struct owner *o = arg;

    o->proxies_calls++;
}

static const struct apply_ops ops = {own_want_reload, own_proxies, NULL, NULL, NULL, NULL};

static char dir[64], sock[108];
static struct owner own;
static struct ev_loop *loop;
static struct config cfg;
static struct catalog *cat;
static struct metrics obs;
static struct apply ap;
static int lfd = -1;

static void setup(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    log_set_level(LOG_LEVEL_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/test_apply.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/admin.sock", dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(loop);
    cat = catalog_new("/svc/");
    cr_assert_not_null(cat);
    memset(&cfg, 0, sizeof(cfg));
    cfg.runtime_socket = sock;
    cfg.resync_interval_s = 30;
    memset(&own, 0, sizeof(own));
    table_init(&own.tab, &cfg, true);
    memset(&ap, 0, sizeof(ap));
}

static void teardown(void)
{
    apply_free(&ap);
    table_free(&own.tab);
    catalog_free(cat);
    if (loop)
        ev_loop_destroy(loop);
    loop = NULL;
    if (lfd >= 0)
        close(lfd);
    lfd = -1;
    unlink(sock);
    rmdir(dir);
}

TestSuite(apply, .init = setup, .fini = teardown);

static struct backend *add_backend(const char *name, bool configured)
{
    struct service_conf conf;
    struct backend *b;

    memset(&conf, 0, sizeof(conf));
    snprintf(conf.name, sizeof(conf.name), "%s", name);
    conf.opt.slots = 2;
    b = backend_insert(&own.tab.v, &own.tab.n, &conf, configured);
    cr_assert_not_null(b);
    b->claimed = true;
    return b;
}

static void stop_loop(struct ev_loop *l, ev_timer *w, int revents)
{
    ev_break(l, EVBREAK_ALL);
}

static void run_for(double s)
{
    ev_timer t;

    ev_timer_init(&t, stop_loop, s, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

/* Be HAProxy for one exchange: read the command line, answer with replies
 * (each ends with its empty line), close. Returns the command line. */
static void haproxy_answers(const char *replies, char *line, size_t size)
{
    int cfd;
    ssize_t got = -1;

    run_for(0.01); /* the applier connects */
    cfd = accept(lfd, NULL, NULL);
    cr_assert_geq(cfd, 0);
    cr_assert_eq(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
    /* ...and writes its line when the loop runs */
    for (int i = 0; i < 1000 && (got = read(cfd, line, size - 1)) < 0 && errno == EAGAIN; i++)
        run_for(0.01);
    cr_assert_gt(got, 0);
    cr_assert_eq(fcntl(cfd, F_SETFL, 0), 0);
    line[got] = '\0';
    cr_assert_eq(write(cfd, replies, strlen(replies)), (ssize_t)strlen(replies));
    close(cfd);
    for (int i = 0; i < 100 && apply_busy(&ap) && !ev_is_active(&ap.retry_timer); i++)
        run_for(0.01);
}

Test(apply, init_rejects_a_runtime_socket_it_cannot_use)
{
    char *err = NULL;

    cfg.runtime_socket = "host.example:80";
    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), -EINVAL);
    cr_assert_not_null(err);
    cr_expect_not_null(strstr(err, "haproxy.runtime_socket"), "%s", err);
    free(err);
}

Test(apply, resync_adopts_what_haproxy_has)
{
    struct backend *api = add_backend("api", true);
    struct backend *db = add_backend("db", true);
    char line[512], *err = NULL;

    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    cr_assert(apply_resync_due(&ap), "nothing read yet");
    apply_resync(&ap);
    haproxy_answers("admin\n\n"
                    "1\n" HEADER API_ROWS "\n"
                    "# name\nstats\napi\n\n"
                    "Name: HAProxy\nVersion: 2.6.12-1+deb12u1\n\n",
                    line, sizeof(line));
    cr_expect_str_eq(line, "show cli level;show servers state;show backend;show info\n");
    /* HAProxy's version comes with the level: 2.6 adds no backend at run time */
    cr_expect(ap.dyn.version_known);
    cr_expect_eq(ap.dyn.version.major, 2);
    cr_expect_eq(ap.dyn.version.minor, 6);
    cr_expect_not(apply_dynamic_usable(&ap));
    cr_assert(ap.synced);
    cr_expect(ap.level_ok);
    cr_expect_not(apply_resync_due(&ap));
    cr_expect_eq(ap.stats.resyncs, 1);
    cr_expect_gt(ap.last_resync_at, 0);
    /* the proxies went to the owner's table, and it was told */
    cr_expect_eq(own.tab.proxies.n, 2);
    cr_expect(backend_names_has(&own.tab.proxies, "api"));
    cr_expect(own.tab.proxies_known);
    cr_expect_eq(own.proxies_calls, 1);
    /* api: three slots, HAProxy's view, the operator's own server left out */
    cr_expect(api->present);
    cr_expect_eq(api->slots.n, 3);
    cr_expect(view_addr_is(&api->have[0], "127.0.0.1"));
    cr_expect_eq(api->have[0].port, 9001);
    cr_expect(api->dirty);
    /* db is configured and missing: a reload is asked for it, once */
    cr_expect_not(db->present);
    cr_expect_eq(own.reloads, 1);
    cr_expect_str_eq(own.last_reload, "backend missing in HAProxy: db");
    /* the next read asks no level (known now) and no second reload */
    ap.resync_wanted = true;
    apply_resync(&ap);
    haproxy_answers("1\n" HEADER API_ROWS "\n# name\nstats\napi\n\n", line, sizeof(line));
    cr_expect_str_eq(line, "show servers state;show backend\n");
    cr_expect_eq(own.reloads, 1, "%s", own.last_reload);
    cr_expect(api->present);
    cr_expect_eq(ap.stats.resyncs, 2);
    free(err);
}

Test(apply, socket_below_level_admin_gets_nothing)
{
    char line[512], *err = NULL;

    add_backend("api", true);
    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    apply_resync(&ap);
    haproxy_answers("operator\n\n1\n" HEADER "\n# name\napi\n\nName: HAProxy\nVersion: 3.4.7\n\n",
                    line, sizeof(line));
    cr_expect_not(ap.synced);
    cr_expect_not(ap.level_ok);
    cr_expect_eq(ap.stats.level_too_low, 1);
    cr_expect_eq(ap.stats.resyncs, 0);
    cr_expect(apply_busy(&ap), "asked again after a backoff");
    cr_expect_eq(own.tab.proxies.n, 0, "nothing read is used");
    cr_expect_eq(own.proxies_calls, 0);
    free(err);
}

Test(apply, missing_socket_is_an_outage_with_a_retry)
{
    char *err = NULL;

    unlink(sock);
    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    apply_resync(&ap);
    for (int i = 0; i < 100 && !ap.stats.runtime_errors; i++)
        run_for(0.01);
    cr_expect_eq(ap.stats.runtime_errors, 1);
    cr_expect(ap.runtime_down);
    cr_expect_not(ap.synced);
    cr_expect(ev_is_active(&ap.retry_timer));
    cr_expect(apply_busy(&ap), "nothing starts before the retry");
    cr_expect(apply_resync_due(&ap));
    free(err);
}

/* While a first listing is partly read: the page's endpoint goes into a slot
 * HAProxy has empty, and what HAProxy has in another slot (an endpoint not
 * listed yet, for all the applier knows) is left alone until the listing is
 * whole; then the full convergence empties it. */
Test(apply, a_partial_listing_only_adds)
{
    struct backend *api = add_backend("api", true);
    char line[512], *err = NULL;
    static const char b[] = "/svc/api/b";

    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    apply_resync(&ap);
    haproxy_answers("admin\n\n1\n" HEADER API_ROWS "\n# name\nstats\napi\n\nVersion: 3.4.7\n\n",
                    line, sizeof(line));
    cr_assert(ap.synced);
    cr_assert_eq(catalog_put(cat, b, strlen(b), "127.0.0.2:80", 12, 1, NULL), CATALOG_ADDED);
    apply_listed_page(&ap);
    cr_assert(api->page_dirty);
    apply_send_additions(&ap);
    haproxy_answers("IP changed from '0.0.0.0' to '127.0.0.2' by 'stats socket command'\n\n\n",
                    line, sizeof(line));
    cr_expect_str_eq(line,
                     "set server api/s2 addr 127.0.0.2 port 80;set server api/s2 state ready\n");
    cr_expect(view_addr_is(&api->have[0], "127.0.0.1"), "s1 kept");
    cr_expect_eq(api->have[0].port, 9001);
    cr_expect_not(api->page_dirty);
    cr_expect(api->dirty, "converged whole at the listing's end");
    /* nothing more to add */
    apply_send_additions(&ap);
    cr_expect_not(apply_busy(&ap));
    /* the listing is whole: s1's endpoint is not in it */
    apply_send(&ap);
    haproxy_answers("\nIP changed from '127.0.0.1' to '0.0.0.0' by 'stats socket command'\n\n",
                    line, sizeof(line));
    cr_expect_str_eq(line, "set server api/s1 state maint;set server api/s1 addr 0.0.0.0 port 0\n");
    cr_expect_not(api->dirty);
    cr_expect_eq(ap.stats.command_failures, 0);
    cr_expect_eq(ap.stats.batches, 2);
}

/* A refused command: HAProxy's state is read again after a delay that
 * starts near 1 s (REFUSAL_RESYNC_MIN_S, with +-20% jitter) and doubles
 * while refusals keep coming (issue 20, item 7: a first delay of 10 s
 * passed every other test). Read from the timer, not from a clock. */
Test(apply, a_refusal_resyncs_after_a_second_then_doubles)
{
    struct backend *api = add_backend("api", true);
    char line[512], *err = NULL;
    static const char b[] = "/svc/api/b";
    double first, second;

    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    apply_resync(&ap);
    haproxy_answers("admin\n\n1\n" HEADER API_ROWS "\n# name\nstats\napi\n\nVersion: 2.6.12\n\n", line,
                    sizeof(line));
    cr_assert(ap.synced);
    cr_assert_eq(catalog_put(cat, b, strlen(b), "127.0.0.2:80", 12, 1, NULL), CATALOG_ADDED);
    api->dirty = true;
    apply_send(&ap);
    haproxy_answers("No such server.\n\n\n", line, sizeof(line));
    cr_assert_eq(ap.stats.command_failures, 1, "%s", line);
    cr_assert(ev_is_active(&ap.refusal_timer));
    first = ev_timer_remaining(loop, &ap.refusal_timer);
    cr_expect(first > 0.75 && first <= 1.2, "first refusal resync in %.3f s, not about 1 s", first);
    cr_expect_float_eq(ap.refusal_delay, 1.0, 1e-9);
    /* the timer fires (stopped here, as it would be once expired): the
     * next refusal waits about twice as long */
    ev_timer_stop(loop, &ap.refusal_timer);
    cr_assert_eq(catalog_put(cat, b, strlen(b), "127.0.0.3:80", 12, 2, NULL), CATALOG_UPDATED);
    api->dirty = true;
    apply_send(&ap);
    haproxy_answers("No such server.\n\n\n", line, sizeof(line));
    cr_assert_eq(ap.stats.command_failures, 2, "%s", line);
    cr_assert(ev_is_active(&ap.refusal_timer));
    second = ev_timer_remaining(loop, &ap.refusal_timer);
    cr_expect_float_eq(ap.refusal_delay, 2.0, 1e-9);
    cr_expect(second > 1.5 && second <= 2.4, "second refusal resync in %.3f s, not about 2 s",
              second);
    free(err);
}

/* issue 19 item 4: a batch that never left (the socket gone, EMFILE) did
 * not change HAProxy; what the next read finds is what slotsync had not yet
 * set, not drift: nothing is counted or logged as "drift repaired". */
Test(apply, a_batch_that_never_left_is_not_drift_later)
{
    struct backend *api = add_backend("api", true);
    char line[512], *err = NULL;
    static const char b[] = "/svc/api/b";
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    apply_resync(&ap);
    haproxy_answers("admin\n\n1\n" HEADER API_ROWS "\n# name\nstats\napi\n\nVersion: 2.6.12\n\n", line,
                    sizeof(line));
    cr_assert(ap.synced);
    /* s1's endpoint (127.0.0.1:9001) is not in etcd: the batch empties s1
     * and fills s2, but the socket is gone when it is sent */
    cr_assert_eq(catalog_put(cat, b, strlen(b), "127.0.0.2:80", 12, 1, NULL), CATALOG_ADDED);
    api->dirty = true;
    close(lfd);
    unlink(sock);
    apply_send(&ap);
    for (int i = 0; i < 100 && !ap.stats.runtime_errors; i++)
        run_for(0.01);
    cr_assert_eq(ap.stats.runtime_errors, 1);
    /* HAProxy is back, with the state it had: read it again */
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    for (int i = 0; i < 200 && ev_is_active(&ap.retry_timer); i++)
        run_for(0.01);
    apply_resync(&ap);
    haproxy_answers("admin\n\n1\n" HEADER API_ROWS "\n# name\nstats\napi\n\nVersion: 2.6.12\n\n", line,
                    sizeof(line));
    cr_assert(ap.synced, "%s", line);
    for (size_t i = 0; i < api->slots.n; i++)
        cr_expect_not(api->drift[i], "s%zu marked as drift", i + 1);
    /* the batch that follows sets what it could not set before: not drift */
    apply_send(&ap);
    haproxy_answers("\n\nIP changed from '127.0.0.1' to '0.0.0.0' by 'stats socket command'.\n\n"
                    "IP changed from '0.0.0.0' to '127.0.0.2' by 'stats socket command'.\n\n\n\n",
                    line, sizeof(line));
    cr_expect_eq(ap.stats.drift_repairs, 0, "%s", line);
    free(err);
}

/* issue 19 item 4: a reply over the runtime reply cap is logged as what it
 * is, not as E2BIG's "Argument list too long". HAProxy is a child that
 * writes more than 64 MiB. */
Test(apply, a_reply_over_the_cap_is_named_as_such)
{
    char *err = NULL, *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    pid_t pid;
    int status;

    cr_assert_not_null(out);
    log_set_level(LOG_LEVEL_WARN);
    log_set_output(out);
    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        static char chunk[1 << 16];
        int cfd = accept(lfd, NULL, NULL);
        char line[512];

        memset(chunk, 'x', sizeof(chunk));
        chunk[sizeof(chunk) - 1] = '\n';
        if (cfd < 0 || read(cfd, line, sizeof(line)) <= 0)
            _exit(1);
        for (int i = 0; i < 66 * 16; i++)
            if (write(cfd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
                _exit(0); /* the reader gave up: that is the point */
        _exit(0);
    }
    apply_resync(&ap);
    for (int i = 0; i < 1000 && !ap.stats.runtime_errors; i++)
        run_for(0.01);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    log_set_output(NULL);
    fclose(out);
    cr_assert_eq(ap.stats.runtime_errors, 1);
    cr_expect_null(strstr(text, "Argument list too long"), "%s", text);
    cr_expect_not_null(strstr(text, "reply larger than 64 MiB"), "%s", text);
    free(text);
    free(err);
}

/* Commands in one batch line ("a;b;c\n"). */
static size_t commands_in(const char *line)
{
    size_t n = *line ? 1 : 0;

    for (const char *p = line; *p; p++)
        n += *p == ';';
    return n;
}

/* Issue 23: apply_estimate() counts what the next send would send (the
 * bulk choice weighs it against a reload) without sending anything or
 * changing HAProxy's view; under min_commands it gives its upper bound
 * without planning. */
Test(apply, estimate_counts_what_the_send_then_sends)
{
    struct backend *api = add_backend("api", true);
    char line[512], *err = NULL;
    static const char b[] = "/svc/api/b", c[] = "/svc/api/c";
    size_t commands = 99, servers = 99, bound = 0;

    cr_assert_eq(apply_init(&ap, loop, &cfg, cat, &own.tab, &obs, &ops, &own, &err), 0, "%s", err);
    /* nothing read yet: nothing present, nothing to send */
    cr_assert_eq(apply_estimate(&ap, false, 0, &commands, &servers), 0);
    cr_expect_eq(commands, 0);
    apply_resync(&ap);
    haproxy_answers("admin\n\n1\n" HEADER API_ROWS "\n# name\nstats\napi\n\nVersion: 2.6.12\n\n",
                    line, sizeof(line));
    cr_assert(ap.synced);
    cr_assert_eq(catalog_put(cat, b, strlen(b), "127.0.0.2:80", 12, 1, NULL), CATALOG_ADDED);
    cr_assert_eq(catalog_put(cat, c, strlen(c), "127.0.0.3:81", 12, 1, NULL), CATALOG_ADDED);
    apply_listed_page(&ap);

    /* additions only (a listing's page): b and c into the free s2, s3 */
    cr_assert_eq(apply_estimate(&ap, true, 0, &commands, &servers), 0);
    cr_expect_eq(commands, 4, "addr and state for s2 and s3: %zu", commands);
    cr_expect_geq(servers, 3, "the file declares api's three slots: %zu", servers);
    /* the bound: at most 4 commands a slot, without planning */
    cr_assert_eq(apply_estimate(&ap, false, 1024, &bound, &servers), 0);
    cr_expect_eq(bound, 12, "4 x 3 slots: %zu", bound);
    /* the whole plan: also s1 (its endpoint is not in etcd) to maint */
    cr_assert_eq(apply_estimate(&ap, false, 0, &commands, &servers), 0);
    cr_expect_eq(commands, 6, "%zu", commands);
    cr_expect_leq(commands, bound);
    /* nothing was sent and HAProxy's view is as it was read */
    cr_expect_not(apply_busy(&ap));
    cr_expect_eq(ap.stats.batches, 0);
    cr_expect(view_addr_is(&api->have[0], "127.0.0.1"));
    cr_expect_eq(api->have[0].port, 9001);
    cr_expect(view_addr_is(&api->have[1], "0.0.0.0"));
    /* the send then sends exactly what was counted */
    apply_send(&ap);
    haproxy_answers("\n\nIP changed from '0.0.0.0' to '127.0.0.2' by 'stats socket command'\n\n\n"
                    "IP changed from '0.0.0.0' to '127.0.0.3' by 'stats socket command'\n\n\n",
                    line, sizeof(line));
    cr_expect_eq(commands_in(line), commands, "%s", line);
    cr_expect_eq(ap.stats.batches, 1);
    /* in sync: nothing left to count */
    cr_assert_eq(apply_estimate(&ap, false, 0, &commands, &servers), 0);
    cr_expect_eq(commands, 0, "%zu", commands);
    free(err);
}
