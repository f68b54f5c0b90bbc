"""Integration tests of issue 23, part 2: HAProxy restarted or reloaded by
someone else starts from a services file (and Host map) that holds today's
endpoints and what slotsync did at run time (servers added with "add
server", spares bound to new services). Real etcd, real HAProxy 2.6, real
backends on 127.0.0.1, a bounded Python client loop for load."""

import os
import re
import signal
import threading
import time

from harness import *
import test_daemon
from test_daemon import PREFIX
from test_reload import DOMAIN, http_cluster
from test_spares import put_svc, routes, spare_rows

TIMEOUT = 120


def file_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def refused(r):
    """HAProxy was not listening yet (before it was started again)."""
    return r.error is not None and "ConnectionRefused" in r.error


def test_killed_haproxy_starts_from_a_current_file(env, bin_path):
    """kill -9 of HAProxy's master and worker; endpoints change while it is
    down (one removed and its backend stopped, one added, one reweighted);
    the services file holds the change before HAProxy starts again on it.
    Under a client loop, no request fails once HAProxy accepts connections,
    none reaches the removed endpoint, and HAProxy equals etcd as soon as its
    runtime socket answers. Later changes flow (the sockets were found again).
    Before issue 23 the file still held the slots of the last render (here:
    empty) and every request got 503 until slotsync's backoff let it
    reconnect."""
    c = test_daemon.Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    ports = c.backends
    workers = c.haproxy.workers()
    assert workers, c.haproxy.master_cmd("show proc")
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    c.haproxy.stop(signal.SIGKILL)
    c.delete("a")
    env.stop(env.proc("w1"))  # a stale "a" in the file would fail requests
    c.put("c", "w3")
    c.put("b", value='{"host":"127.0.0.1","port":%d,"weight":7}' % ports["w2"])

    def current():
        t = file_text(c.services_file)
        return ("127.0.0.1:%d weight 7" % ports["w2"] in t
                and "127.0.0.1:%d weight 1" % ports["w3"] in t
                and "127.0.0.1:%d " % ports["w1"] not in t)
    wait_for(current, timeout=10, what="the services file holding etcd's endpoints",
             alive=[c.slotsync])
    since = len(env.log_text("slotsync"))
    with TrafficLoop(c.url, timeout=3, interval=0.005) as load:
        c.haproxy = env.start_haproxy(c.services_file)
        settled = {("127.0.0.1", ports["w2"], "ready", 7), ("127.0.0.1", ports["w3"], "ready", 1)}
        got = {(a, p, st, w) for a, p, st, w in c.slots().values() if st == "ready"}
        assert got == settled, got
        env.wait_log("slotsync", r"HAProxy state read", since=since, alive=[c.slotsync])
        # later changes reach the restarted HAProxy
        c.put("b", value='{"host":"127.0.0.1","port":%d,"weight":3}' % ports["w2"])
        wait_for(lambda: ("127.0.0.1", ports["w2"], "ready", 3) in c.slots().values(),
                 what="weight 3 in the restarted HAProxy", alive=[c.slotsync])
        mark = load.mark()
        load.wait_results(50, since=mark)
    served = [r for r in load.results if not refused(r)]
    assert served, load.summary()
    bad = [r for r in served if r.error or r.status != 200 or r.body not in ("w2", "w3")]
    assert not bad, load.summary()
    c.assert_no_reload()


def test_foreign_reload_storm_keeps_spares_and_added_servers(env, bin_path):
    """A service bound to a spare at run time and a backend grown with "add
    server"; 10 reloads through the master socket in 5 s while weights
    churn. The bound spare keeps its endpoints and its route at every
    reload (no request by its Host fails), the added servers stay, and
    slotsync asks for no reload of its own. Before issue 23 each reload
    brought the spare back empty (503s) and the added servers were gone
    ("growing by reload instead")."""
    c = http_cluster(env, bin_path, spares=4, min_reload_ms=600000, slots=2)
    for name in ("w1", "w2", "w3"):
        c.put(name, name)  # 3 endpoints in 2 slots: "add server"
    c.wait_live(["w1", "w2", "w3"])
    rows = c.haproxy.servers_state("web")
    assert len(rows) >= 3, rows
    put_svc(c, "api", "i1", "w1")
    put_svc(c, "api", "i2", "w2")
    spare = wait_for(lambda: routes(c).get("api." + DOMAIN), what="api bound to a spare",
                     alive=[c.slotsync])
    assert spare.startswith("spare:"), spare
    wait_for(lambda: {r[1] for r in spare_rows(c, spare).values() if r[2] == "ready"}
             == {c.backends["w1"], c.backends["w2"]}, what="api's endpoints in " + spare,
             alive=[c.slotsync])
    assert c.haproxy.reloads() == (0, 0)
    # the file must hold the binding before the storm starts
    wait_for(lambda: ("127.0.0.1:%d" % c.backends["w2"]) in
             file_text(c.services_file).split("backend " + spare + "\n", 1)[-1].split(
                 "\nbackend ", 1)[0]
             and ("api.%s %s" % (DOMAIN, spare)) in file_text(c.services_file + ".map"),
             what="the binding in the services file and map", alive=[c.slotsync])

    stop = threading.Event()

    def churn():
        w = 1
        while not stop.is_set():
            w = w % 5 + 1
            put_svc(c, "api", "i2", "w2", weight=w)
            c.put("w3", value='{"host":"127.0.0.1","port":%d,"weight":%d}'
                  % (c.backends["w3"], w))
            stop.wait(0.1)

    since = len(env.log_text("slotsync"))
    api = TrafficLoop(c.http_url, headers={"Host": "api." + DOMAIN}, timeout=3, interval=0.002)
    web = TrafficLoop(c.url, timeout=3, interval=0.002)
    t = threading.Thread(target=churn, daemon=True)
    with api, web:
        t.start()
        try:
            start = time.monotonic()
            for i in range(10):
                c.haproxy.reload()
                # pacing, not a guard: 10 reloads spread over 5 s
                pause = start + 0.5 * (i + 1) - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        finally:
            stop.set()
            t.join(10)
        assert c.haproxy.reloads() == (10, 0), c.haproxy.reloads()
        mark = api.mark()
        api.wait_results(20, since=mark)
        web.wait_results(20, since=web.mark())
    assert not api.failures, api.summary()
    assert not web.failures, web.summary()
    assert set(api.counts()) == {"w1", "w2"}, api.summary()
    assert routes(c).get("api." + DOMAIN) == spare
    assert len(c.haproxy.servers_state("web")) >= 3
    log = env.log_text("slotsync")[since:]
    assert "reload is needed" not in log, log[-3000:]
    assert "added at run time are gone" not in log, log[-3000:]
    assert c.haproxy.reloads() == (10, 0)
