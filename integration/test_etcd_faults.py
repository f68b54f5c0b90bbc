"""etcd faults with real processes: a hung member (SIGSTOP: TCP still
accepts, nothing answers) under the daemon's watch and under announce's
keepalives, and an etcd rebuilt with lower revisions under the daemon, all
on 127.0.0.1 with real etcd 3.4 and HAProxy 2.6."""

import re
import signal
import time

from harness import *
from harness import etcd_transport
from test_announce import announce, key_entry, wait_key
from test_daemon import PREFIX, Cluster


def daemon_on(env, bin_path, cluster, **kw):
    """A Cluster (etcd members + backends + HAProxy + slotsync) whose
    slotsync knows every member of the etcd cluster."""
    c = Cluster(env, bin_path, etcd_url=cluster.urls[0], start=False, **kw)
    c.config["etcd"]["endpoints"] = list(cluster.urls)
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()
    return c


def settled(fn, *args):
    """Run an etcd write until it succeeds: with the leader hung, a write
    in flight may time out while the others elect a new one."""
    return wait_for(lambda: fn(*args) or True, timeout=30,
                    what="%s%r to succeed" % (fn.__name__, args))


def watch_member(env, cluster, name="slotsync"):
    """The member the daemon's watch runs on now (from its debug log)."""
    found = re.findall(r"watch through (http://\S+) from revision", env.log_text(name))
    assert found, "no watch started yet"
    return cluster.member(found[-1])


def test_hung_member_moves_the_watch(env, bin_path):
    """SIGSTOP the member the watch is on, then change keys through another
    member: one warning names the hung endpoint, the watch moves and resumes
    from its last revision, and every change reaches HAProxy."""
    cluster = env.start_etcd_cluster(3)
    c = daemon_on(env, bin_path, cluster)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    # The watch is on the first endpoint until something fails.
    assert "switching to endpoint" not in env.log_text("slotsync")
    hung = cluster.members[0]
    other = next(u for u in cluster.urls if u != hung.url)
    hung.pause()
    try:
        paused = time.monotonic()
        # Several revisions while the watch is stuck: none may be missed.
        settled(etcd_put, other, PREFIX + "web/c", "127.0.0.1:%d" % c.backends["w3"])
        settled(etcd_delete, other, PREFIX + "web/a")
        settled(etcd_put, other, PREFIX + "web/b", "127.0.0.1:%d" % c.backends["w2"])
        wait_for(lambda: c.live() == {("127.0.0.1", c.backends[n]) for n in ("w2", "w3")},
                 timeout=20, alive=[c.slotsync],
                 what="changes applied while the watched member hangs")
        took = time.monotonic() - paused
        # Acceptance: detected within 5 s; generous margin for a busy box.
        assert took < 15.0, "changes took %.1f s with a hung member" % took
        log = env.log_text("slotsync")
        warnings = [line for line in log.splitlines() if " warn " in line]
        assert len(warnings) == 1, warnings
        assert hung.url in warnings[0], warnings[0]
        assert watch_member(env, cluster) is not hung
        assert "listing applied" not in log.split(warnings[0], 1)[1], \
            "the watch resumed from its revision, no re-list"
        c.assert_no_reload()
    finally:
        hung.resume()


def test_hung_member_does_not_expire_announce_lease(env, bin_path):
    """announce's keepalives go to a member that hangs: they move to another
    endpoint before the lease runs out, so the key stays under its lease."""
    cluster = env.start_etcd_cluster(3)
    key = PREFIX + "web/a"
    p = announce(env, bin_path, cluster.endpoints, key, "127.0.0.1:8081", "--ttl", "4",
                 "--log-level", "debug")
    # Calls go to the first endpoint until one fails.
    hung = cluster.members[0]
    other = cluster.urls[1]
    value, lease = wait_key(other, key, proc=p)
    env.wait_log("announce", r"lease [0-9a-f]+ renewed", alive=[p])
    hung.pause()
    try:
        env.wait_log("announce", r"switching to endpoint", timeout=10, alive=[p])
        # Three TTLs after the switch (which must come first): the key and
        # its lease stay.
        end = time.monotonic() + 12
        while time.monotonic() < end:
            assert key_entry(other, key) == (value, lease), "key lost its lease"
            time.sleep(0.2)
        log = env.log_text("announce")
        assert "presumed expired" not in log and "lost" not in log, log
        warnings = [line for line in log.splitlines() if " warn " in line]
        assert len(warnings) == 1 and hung.url in warnings[0], warnings
        assert p.poll() is None
    finally:
        hung.resume()


def test_rebuilt_etcd_is_listed_again(env, bin_path):
    """etcd killed, its data wiped, started again with the same name and
    URLs (same cluster id, revisions from 1): keys put there reach HAProxy,
    the stale ones go, and one warning says the cluster was rebuilt."""
    etcd = env.start_etcd()
    c = Cluster(env, bin_path, etcd_url=etcd)
    c.put("a", "w1")
    c.put("b", "w2")
    for i in range(30):  # revisions well past what the new cluster will have
        c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    old_rev = etcd_revision(etcd)
    # slotsync held still meanwhile, so it meets the rebuilt etcd with a key
    # in it whichever way its reconnects fall (an empty registry is another
    # story).
    c.slotsync.send_signal(signal.SIGSTOP)
    try:
        env.etcd.stop()
        env.etcd.wipe()
        env.etcd.start()
        rev = c.put("c", "w3")
        assert rev < old_rev
    finally:
        c.slotsync.send_signal(signal.SIGCONT)
    c.wait_live(["w3"], what="the rebuilt etcd's key applied, the stale ones gone")
    log = env.log_text("slotsync")
    rebuilt = [line for line in log.splitlines() if "rebuilt or restored" in line]
    assert len(rebuilt) == 1, rebuilt
    assert " warn " in rebuilt[0]
    # Later changes on the new cluster flow as events.
    c.put("d", "w1")
    c.wait_live(["w1", "w3"])
    assert env.log_text("slotsync").count("rebuilt or restored") == 1


def test_outage_lines_for_daemon_and_announce(env, bin_path):
    """etcd down for over 10 s: the daemon and announce each say it once,
    then "still unreachable after N s" (the first at 10 s), then one line
    when it answers again."""
    etcd = env.start_etcd()
    c = Cluster(env, bin_path, etcd_url=etcd)
    key = PREFIX + "web/x"
    p = announce(env, bin_path, etcd, key, "127.0.0.1:8081", "--ttl", "30")
    wait_key(etcd, key, proc=p)
    env.etcd.stop()
    for name in ("slotsync", "announce"):
        env.wait_log(name, r"etcd still unreachable after 1\d s", timeout=30,
                     alive=[c.slotsync, p])
    env.etcd.start()
    env.wait_log("slotsync", r"etcd answers again after \d+ s", timeout=15, alive=[c.slotsync])
    env.wait_log("announce", r"etcd answers again after \d+ s", timeout=15, alive=[p])
    for name in ("slotsync", "announce"):
        log = env.log_text(name)
        still = re.findall(r"still unreachable after (\d+) s", log)
        assert still and all(int(n) >= 10 for n in still), still
        assert len(still) <= 2, still  # 10 s, maybe 30 s: not one per retry
    c.put("a", "w1")
    wait_for(lambda: ("127.0.0.1", c.backends["w1"]) in c.live(), timeout=10,
             alive=[c.slotsync], what="a change after the outage applied")


def test_other_cluster_at_same_url_is_listed_again(env, bin_path):
    """Another cluster (another id) behind the same URL, already past the
    revisions seen: only the cluster id tells, and it means a re-list."""
    etcd = env.start_etcd()
    c = Cluster(env, bin_path, etcd_url=etcd)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    old_rev = etcd_revision(etcd)
    c.slotsync.send_signal(signal.SIGSTOP)
    try:
        env.etcd.stop()
        env.etcd.wipe()
        env.etcd.token += "-other"  # a new cluster id
        env.etcd.start()
        c.put("c", "w3")
        for _ in range(old_rev + 5):
            etcd_put(etcd, "/elsewhere/x", "1")
        assert etcd_revision(etcd) > old_rev
    finally:
        c.slotsync.send_signal(signal.SIGCONT)
    c.wait_live(["w3"], what="the other cluster's key applied, the stale ones gone")
    rebuilt = [line for line in env.log_text("slotsync").splitlines()
               if "rebuilt or restored" in line]
    assert len(rebuilt) == 1 and "cluster id" in rebuilt[0], rebuilt


def test_stalled_watch_is_found_and_resumes(env, bin_path):
    """A watch that stops delivering while its connection stays up and its
    endpoint keeps answering (etcd's grpc-proxy bugs, issue 24): a relay in
    front of the endpoint stops forwarding the watch connection's
    server->client bytes, nothing else. The liveness probe cannot see it
    (through a grpc-proxy it is a range on a connection of its own, as on
    the JSON gateway). The stall detector (a check of etcd's newest key
    and key count each watch_check_interval_s, here 1 s) finds etcd ahead
    twice: one warning, the watch restarts on the next endpoint after the
    last revision applied (no re-list), the missed put reaches HAProxy; a
    second stall there misses a delete, which only the key count shows,
    and is found the same way; a busy prefix afterwards is no alarm.
    /metrics and /status count both stalls."""
    import json
    from stall_relay import StallRelay
    from test_status import metrics

    member = env.start_etcd()
    if etcd_transport() == "grpc":
        # where the bug lives; the proxy drops progress requests, so the
        # watch's liveness is a range a second on connections of their own
        upstream = env.start_grpc_proxy([member]).url
    else:
        upstream = member  # the gateway's liveness is a range already
    relays = [StallRelay(upstream), StallRelay(upstream)]
    try:
        admin = free_port()
        c = Cluster(env, bin_path, etcd_url=member, start=False,
                    extra={"admin": {"listen": "127.0.0.1:%d" % admin}})
        c.admin_url = "http://127.0.0.1:%d" % admin
        c.config["etcd"]["endpoints"] = [r.url for r in relays]
        c.config["etcd"]["watch_check_interval_s"] = 1
        c.config_path = write_config(env, c.config)
        c.render()
        c.haproxy = env.start_haproxy(c.services_file)
        c.start_slotsync()
        rev_a = c.put("a", "w1")
        c.put("c", "w3")
        c.wait_live(["w1", "w3"])
        if etcd_transport() == "grpc":
            env.wait_log("slotsync", r"does not answer progress requests", timeout=15,
                         alive=[c.slotsync])
        rev_c = etcd_revision(member)
        since = len(env.log_text("slotsync"))

        # 1: a put the stalled watch does not deliver
        assert wait_for(lambda: relays[0].stall(), timeout=5, what="the watch's connection")
        c.put("b", "w2")
        c.wait_live(["w1", "w2", "w3"], what="the put missed by the stalled watch")
        log = env.log_text("slotsync")[since:]
        stalls = [l for l in log.splitlines() if " warn " in l and "stalled" in l]
        assert len(stalls) == 1, log
        assert relays[0].url in stalls[0] and relays[1].url in stalls[0], stalls[0]
        assert "not answering" not in log, "the liveness probe saw it, not the detector"
        resumed = re.findall(r"watch through (\S+) from revision (\d+)", log)
        assert resumed[-1] == (relays[1].url, str(rev_c + 1)), (resumed, rev_a, rev_c)
        assert "listing applied" not in log, "the watch resumed, no re-list"

        # 2: on the next endpoint, a delete missed: only the count tells
        since = len(env.log_text("slotsync"))
        assert wait_for(lambda: relays[1].stall(), timeout=5, what="the new watch's connection")
        c.delete("a")
        c.wait_live(["w2", "w3"], what="the delete missed by the stalled watch")
        log = env.log_text("slotsync")[since:]
        assert len([l for l in log.splitlines() if " warn " in l and "stalled" in l]) == 1, log
        assert "listing applied" not in log and "not answering" not in log, log

        # a busy prefix is no alarm: changes throughout several checks, each
        # one delivered, make etcd ahead at some checks, never a stall
        checks = metrics(c)["slotsync_etcd_watch_checks_total"]
        end = time.monotonic() + 3.5
        i = 0
        while time.monotonic() < end:
            c.put("busy%d" % (i % 4), "w3")
            if i % 3 == 2:
                c.delete("busy%d" % ((i - 1) % 4))
            i += 1
            time.sleep(0.05)  # spreads the churn over the checks
        wait_for(lambda: metrics(c)["slotsync_etcd_watch_checks_total"] >= checks + 4,
                 timeout=15, alive=[c.slotsync], what="four checks during and after the churn")
        m = metrics(c)
        assert m["slotsync_etcd_watch_stalls_total"] == 2, m
        log = env.log_text("slotsync")[since:]
        assert len([l for l in log.splitlines() if " warn " in l and "stalled" in l]) == 1, log
        code, body = http_get(c.admin_url + "/status")
        assert code == 200, (code, body)
        wc = json.loads(body)["etcd"]["watch_check"]
        assert wc["stalls"] == 2 and wc["last_stall_s"] >= 0, wc
        c.assert_no_reload()
    finally:
        for r in relays:
            r.close()
