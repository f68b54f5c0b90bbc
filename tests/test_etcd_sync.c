/* Tests for the etcd prefix sync (listing in pages, failover, watch, silent
 * streams, compaction, cut connections, bad replies, probes) against the
 * shared real etcd, through the proxy, and a fake one (tests/etcd_harness.h).
 * The client's calls are tested in test_etcd.c. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "etcd_harness.h"

static bool first_list(struct io_test *t)
{
    return t->cons.list_ends >= 1 && t->cons.up;
}

static bool saw_new_and_delete(struct io_test *t)
{
    return kvset_find(&t->cons.state, "/svc/new") && !kvset_find(&t->cons.state, "/svc/k0000") &&
           t->cons.batches >= 2;
}

static bool quitter_stopped(struct io_test *t)
{
    return t->quitter.stopped;
}

static bool two_progress(struct io_test *t)
{
    return t->proxy.results >= t->mark + 2;
}

static bool went_down(struct io_test *t)
{
    return !t->cons.up && t->cons.downs >= 1;
}

static bool relisted(struct io_test *t)
{
    return t->cons.list_ends >= 2 && t->cons.up;
}

static bool proxy_paused(struct io_test *t)
{
    return t->proxy.paused;
}

static bool pager_listed(struct io_test *t)
{
    return t->pager.list_ends >= 1 && t->pager.up;
}

static bool pager_stopped(struct io_test *t)
{
    return t->pager.stopped;
}

static bool saw_after(struct io_test *t)
{
    return kvset_find(&t->cons.state, "/svc/after") != NULL;
}

/* Start t->cons's sync of /svc/ through the dead endpoint and the proxy,
 * and wait for its first listing. */
static struct etcd_sync *sync_listed(struct io_test *t)
{
    struct etcd_sync *sync = etcd_sync_start(t->synced, "/svc/", &consumer_ops, &t->cons);

    cr_assert_not_null(sync);
    cr_assert(wait_until(t, first_list, 20), "no listing (list_ends %d, why %s)", t->cons.list_ends,
              t->cons.why);
    return sync;
}

Test(etcd_io, listing_pages_fails_over_then_watches, .timeout = 60)
{
    struct io_test t = {0};
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;
    struct reply r = {0};
    int64_t rev;
    const int n_keys = 1205; /* more than one page of 1000 */

    io_setup(&t);
    /* Data: more than a page, a binary value, a key just outside. */
    put_many(&t, n_keys);
    {
        json_t *body = json_pack("{s:o,s:o}", "key", b64("/svc/bin", 8), "value", b64("a\0b\n", 4));

        cr_assert_eq(finish(&t, etcd_call(t.direct, "/v3/kv/put", body, 0, reply_cb, &r), &r), 0,
                     "%s", r.errtext);
        reply_clear(&r);
    }
    put(&t, "/svd/outside", "x");
    put(&t, "/svc", "no trailing slash: outside");

    /* The listing must fail over from the dead endpoint, page through 1000+
     * keys and skip what is outside the prefix. */
    t.quitter.stop_when = 1;
    t.quitter.self = etcd_sync_start(t.synced, "/svc/", &consumer_ops, &t.quitter);
    cr_assert_not_null(t.quitter.self);
    sync = sync_listed(&t);
    cr_assert_eq(t.cons.list_begins, 1);
    cr_assert_eq(t.cons.state.n, (size_t)n_keys + 1);
    /* the first page went to the consumer before the second was read */
    cr_assert_eq(t.cons.list_pages, 1);
    cr_assert_eq(t.cons.first_page_keys, 1000);
    {
        struct entry *e = kvset_find(&t.cons.state, "/svc/bin");

        cr_assert_not_null(e);
        cr_assert_eq(e->value_len, 4);
        cr_assert_eq(memcmp(e->value, "a\0b\n", 4), 0);
    }
    rev = current_revision(&t);
    cr_assert_eq(t.cons.list_rev, rev);
    st = etcd_sync_stats(sync);
    cr_assert_eq(st->lists, 1);
    cr_assert_eq(st->revision, rev);
    check_state_matches_etcd(&t, &t.cons.state);

    /* The quitter stopped itself in its first kv: nothing after that. */
    cr_assert(wait_until(&t, quitter_stopped, 10));
    cr_assert_eq(t.quitter.kvs, 1);

    /* Watch: a put and a delete arrive as events. */
    put(&t, "/svc/new", "127.0.0.4:80");
    del(&t, "/svc/k0000");
    put(&t, "/svd/outside", "y");
    cr_assert(wait_until(&t, saw_new_and_delete, 10), "watch events missing");
    cr_assert_eq(t.quitter.after_stop, 0);
    cr_assert(st->watching);
    cr_assert_geq(st->events, 2);
    check_state_matches_etcd(&t, &t.cons.state);

    /* Let the loop run a little with everything quiet: still consistent. */
    put(&t, "/svc/final", "127.0.0.13:80");
    wait_until(&t, never, 0.3);
    cr_assert_eq(t.quitter.after_stop, 0);
    cr_assert(kvset_find(&t.cons.state, "/svc/final"));
    etcd_sync_stop(sync);
    io_teardown(&t);
}

Test(etcd_io, silent_watch_restarts_and_compaction_relists, .timeout = 60)
{
    struct io_test t = {0};
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;

    io_setup(&t);
    put_many(&t, 20);
    sync = sync_listed(&t);
    st = etcd_sync_stats(sync);

    /* Progress notifications (every 1 s here) teach the sync etcd's
     * interval; then the proxy holds everything back. The silent stream must
     * be declared dead, and meanwhile we change keys and compact, so the
     * resumed watch finds its revision gone and lists again. */
    t.mark = t.proxy.results;
    cr_assert(wait_until(&t, two_progress, 10), "no progress notifications");
    t.mark = t.proxy.results;
    cr_assert(wait_until(&t, two_progress, 10), "no progress notifications");
    proxy_pause(&t.proxy, true);
    put(&t, "/svc/paused", "127.0.0.5:80");
    del(&t, "/svc/k0001");
    compact_now(&t);

    cr_assert(wait_until(&t, went_down, 15), "silent watch not detected");
    /* the idle watchdog or the probe of the member, whichever is first */
    cr_assert(strstr(t.cons.why, "silent") || strstr(t.cons.why, "not answering"), "%s",
              t.cons.why);
    proxy_pause(&t.proxy, false);
    cr_assert(wait_until(&t, relisted, 20), "no re-list after compaction (why %s)", t.cons.why);
    cr_assert_eq(t.cons.list_begins, 2);
    cr_assert(kvset_find(&t.cons.state, "/svc/paused"));
    cr_assert_null(kvset_find(&t.cons.state, "/svc/k0001"));
    check_state_matches_etcd(&t, &t.cons.state);
    cr_assert_geq(st->compactions, 1);
    cr_assert_geq(st->reconnects, 1);
    cr_assert_geq(st->lists, 2);
    etcd_sync_stop(sync);
    io_teardown(&t);
}

Test(etcd_io, cut_connection_resumes_without_listing, .timeout = 60)
{
    struct io_test t = {0};
    struct etcd_sync *sync;
    int lists;

    io_setup(&t);
    put_many(&t, 20);
    sync = sync_listed(&t);
    lists = t.cons.list_begins;
    while (t.proxy.conns)
        pconn_close(t.proxy.conns);
    put(&t, "/svc/after", "127.0.0.9:80");
    cr_assert(wait_until(&t, saw_after, 15), "no event after a cut (why %s)", t.cons.why);
    cr_assert_eq(t.cons.list_begins, lists);
    check_state_matches_etcd(&t, &t.cons.state);
    etcd_sync_stop(sync);
    io_teardown(&t);
}

/* A snapshot compacted between two pages: the listing starts over (the
 * consumer got the first page, then list_begin again) and ends once. Then
 * this consumer stops its sync from inside a watch event. */
Test(etcd_io, compaction_between_pages_restarts_the_listing, .timeout = 60)
{
    struct io_test t = {0};
    const struct etcd_sync_stats *pst;

    io_setup(&t);
    put_many(&t, 1205);
    t.proxy.pause_on_more = true;
    t.pager.stop_when = 2;
    t.pager.self = etcd_sync_start(t.synced, "/svc/", &consumer_ops, &t.pager);
    cr_assert_not_null(t.pager.self);
    pst = etcd_sync_stats(t.pager.self);
    cr_assert(wait_until(&t, proxy_paused, 15), "first page never seen");
    put(&t, "/svc/between", "127.0.0.11:80");
    compact_now(&t);
    proxy_pause(&t.proxy, false);
    cr_assert(wait_until(&t, pager_listed, 20), "pager did not list");
    cr_assert_eq(t.pager.list_begins, 2);
    cr_assert_eq(t.pager.list_restarts, 1);
    cr_assert_eq(t.pager.list_ends, 1);
    cr_assert_eq(pst->compactions, 1);
    cr_assert_eq(pst->lists, 1);
    cr_assert(kvset_find(&t.pager.state, "/svc/between"));
    check_state_matches_etcd(&t, &t.pager.state);
    put(&t, "/svc/last", "127.0.0.12:80");
    cr_assert(wait_until(&t, pager_stopped, 10));
    cr_assert_eq(t.pager.batches, 0, "stopped before batch_end");
    wait_until(&t, never, 0.3);
    cr_assert_eq(t.pager.after_stop, 0);
    io_teardown(&t);
}

static bool down_no_progress(struct io_test *t)
{
    struct fake_test *ft = (struct fake_test *)t;

    return ft->cons.downs >= 1 && strstr(ft->cons.why, "no progress");
}

/* "more": true on a page without keys: asking again gets the same page, so
 * it is an error, retried with backoff, never a tight loop (nor a listing
 * delivered as complete). */
Test(etcd_fake, listing_without_progress_backs_off)
{
    struct fake_test ft;
    struct etcd_sync *sync;

    fake_setup(&ft, 0);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    cr_assert(wait_until(&ft.t, down_no_progress, 5), "no error for a listing without progress");
    wait_until(&ft.t, never, 1.5);
    cr_assert_eq(ft.cons.list_ends, 0, "an incomplete listing was delivered");
    /* backoff from 0.1 s doubling: a handful of tries in 1.5 s, not a spin */
    cr_assert_lt(ft.fake.ranges, 30, "%d range requests", ft.fake.ranges);
    cr_assert_geq(etcd_sync_stats(sync)->errors, 2);
    etcd_sync_stop(sync);
    fake_teardown(&ft);
}

static bool got_b(struct io_test *t)
{
    struct fake_test *ft = (struct fake_test *)t;

    return kvset_find(&ft->cons.state, "/svc/b") != NULL;
}

/* An event at revision INT64_MAX is refused (and counted) instead of making
 * every later event look like a replay; the event after it still arrives. */
Test(etcd_fake, watch_revision_out_of_range)
{
    struct fake_test ft;
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;

    fake_setup(&ft, 1);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    st = etcd_sync_stats(sync);
    cr_assert(wait_until(&ft.t, got_b, 10), "event after the bad one lost (watches %d)",
              ft.fake.watches);
    cr_assert_null(kvset_find(&ft.cons.state, "/svc/a"), "the bad event was applied");
    cr_assert_eq(st->revision, 6);
    cr_assert_geq(st->bad_revisions, 1);
    cr_assert_geq(ft.fake.watches, 2);
    etcd_sync_stop(sync);
    fake_teardown(&ft);
}

static bool probe_answered_late(struct io_test *t)
{
    struct fake_test *ft = (struct fake_test *)t;

    /* the late answer is in, and the probe after it went out */
    return ft->fake.probes >= 2 && !ft->fake.held_probe;
}

/* A probe answered after a newer watch event (served at revision 5, the
 * event at 6 delivered first) is no sign of a rebuilt etcd: the answer is
 * compared with what had been seen when the probe was sent. */
Test(etcd_fake, late_probe_is_not_a_rebuilt_cluster)
{
    struct fake_test ft;
    struct etcd_sync *sync;
    const struct etcd_sync_stats *st;
    int ranges;

    fake_setup(&ft, 2);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    st = etcd_sync_stats(sync);
    cr_assert(wait_until(&ft.t, got_b, 10), "the event at revision 6 never came (probes %d)",
              ft.fake.probes);
    ranges = ft.fake.ranges;
    cr_assert(wait_until(&ft.t, probe_answered_late, 10), "no second probe (probes %d)",
              ft.fake.probes);
    cr_expect_eq(st->new_clusters, 0, "a late probe taken for a rebuilt etcd");
    cr_expect_eq(ft.fake.ranges, ranges, "listed again");
    cr_expect_eq(ft.fake.watches, 1, "the watch was restarted");
    cr_expect_eq(st->revision, 6);
    etcd_sync_stop(sync);
    fake_teardown(&ft);
}

/* A client is not freed under a sync (issue 22): etcd_client_free() refuses
 * with -EBUSY and changes nothing, as libuv's uv_loop_close() refuses a
 * loop with active handles; the sync keeps working, and once it is stopped
 * the client frees. */
Test(etcd_fake, client_free_refused_while_a_sync_runs)
{
    struct fake_test ft;
    struct etcd_sync *sync;

    fake_setup(&ft, 0);
    sync = etcd_sync_start(ft.t.direct, "/svc/", &consumer_ops, &ft.cons);
    cr_assert_not_null(sync);
    cr_assert_eq(etcd_client_free(ft.t.direct), -EBUSY);
    /* still alive: the sync runs on it (and fails its listing there) */
    cr_assert(wait_until(&ft.t, down_no_progress, 5), "the sync stopped working");
    cr_expect_not_null(etcd_sync_endpoint(sync));
    etcd_sync_stop(sync);
    cr_assert_eq(etcd_client_free(ft.t.direct), 0);
    ft.t.direct = NULL;
    cr_assert_eq(etcd_client_free(NULL), 0);
    fake_teardown(&ft);
}
