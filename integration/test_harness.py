"""Tests of the harness itself, which also check the machine: etcd, haproxy
with the shipped base config, whoami, and the cleanup. None needs slotsync."""

import os
import signal
import subprocess
import time

from harness import (BASE_CONFIG, PYTHON, REPO, EtcdError, HarnessError,
                     ProcessDied, TrafficLoop, WaitTimeout, etcd_compact, etcd_delete,
                     etcd_delete_prefix, etcd_get, etcd_get_prefix,
                     etcd_lease_grant, etcd_lease_keepalive, etcd_lease_revoke,
                     etcd_lease_ttl, etcd_put, etcd_revision, free_port,
                     haproxy_check, http_get, http_request, traffic, wait_for)


def test_deps_script_is_silent_when_all_present():
    r = subprocess.run(["sh", os.path.join(REPO, "integration", "deps.sh")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == b"", r.stdout


def test_wait_for_reports_what_and_dead_processes(env):
    try:
        wait_for(lambda: False, timeout=0.1, what="the moon")
    except WaitTimeout as e:
        assert "the moon" in str(e), e
    else:
        raise AssertionError("wait_for did not time out")

    def boom():
        raise ValueError("not ready")

    try:
        wait_for(boom, timeout=0.1, what="boom")
    except WaitTimeout as e:
        assert "not ready" in str(e), e

    proc = env.spawn("false", ["false"])
    try:
        wait_for(lambda: False, timeout=10, what="never", alive=[proc])
    except ProcessDied as e:
        assert "false" in str(e) and "never" in str(e), e
    else:
        raise AssertionError("wait_for ignored a dead process")

    assert free_port() != free_port()


def test_etcd_kv_prefix_lease_compaction(env):
    url = env.start_etcd()
    assert url.startswith("http://127.0.0.1:")

    rev1 = etcd_put(url, "/t/a", "1")
    assert etcd_get(url, "/t/a") == b"1"
    rev2 = etcd_put(url, "/t/a", b"2")
    assert rev2 > rev1
    etcd_put(url, "/t/b", {"addr": "127.0.0.1:80"})
    etcd_put(url, "/t0", "outside")  # "/t0" sorts after "/t/" but is not in it
    assert etcd_get_prefix(url, "/t/") == {"/t/a": b"2",
                                           "/t/b": b'{"addr": "127.0.0.1:80"}'}
    assert etcd_get(url, "/t/a", revision=rev1) == b"1"
    assert etcd_get(url, "/missing") is None

    assert etcd_delete(url, "/t/a") == 1
    assert etcd_delete(url, "/t/a") == 0
    assert etcd_get(url, "/t/a") is None
    assert etcd_delete_prefix(url, "/t/") == 1
    assert etcd_get_prefix(url, "/t/") == {}
    assert etcd_get(url, "/t0") == b"outside"

    # Old revisions are readable until compacted, then refused.
    now = etcd_revision(url)
    assert now >= rev2 + 4
    etcd_compact(url, now)
    try:
        etcd_get(url, "/t/a", revision=rev1)
    except EtcdError as e:
        assert "compacted" in str(e), e
    else:
        raise AssertionError("read at a compacted revision succeeded")

    # Leases: keys go with their lease.
    lease = etcd_lease_grant(url, 30)
    assert 0 < etcd_lease_ttl(url, lease) <= 30
    assert etcd_lease_keepalive(url, lease) == 30
    etcd_put(url, "/t/leased", "x", lease=lease)
    etcd_lease_revoke(url, lease)
    assert etcd_get(url, "/t/leased") is None
    assert etcd_lease_ttl(url, lease) == -1

    # The loopback guard.
    try:
        etcd_put(url, "/t/bad", '{"addr": "10.1.2.3:80"}')
    except HarnessError:
        pass
    else:
        raise AssertionError("etcd_put accepted a non-loopback address")


def test_etcd_restart_keeps_data(env):
    url = env.start_etcd()
    etcd_put(url, "/k", "v")
    env.etcd.stop()
    try:
        etcd_get(url, "/k", timeout=1)
    except OSError:
        pass
    else:
        raise AssertionError("etcd still answers after stop")
    env.etcd.start()
    assert etcd_get(url, "/k") == b"v"


def test_etcd_wipe_and_cluster(env):
    url = env.start_etcd()
    etcd_put(url, "/k", "v")
    env.etcd.stop()
    env.etcd.wipe()
    env.etcd.start()
    assert etcd_get(url, "/k") is None and etcd_revision(url) == 1

    cluster = env.start_etcd_cluster(3)
    assert len(set(cluster.urls)) == 3 and cluster.endpoints.count(",") == 2
    etcd_put(cluster.urls[0], "/k", "v")
    for u in cluster.urls:
        wait_for(lambda: etcd_get(u, "/k") == b"v", timeout=5, what="/k on " + u)
    hung = cluster.member(cluster.urls[2] + "/")
    hung.pause()
    try:
        etcd_get(hung.url, "/k", timeout=0.5)
    except OSError:
        pass
    else:
        raise AssertionError("a paused member answers")
    finally:
        hung.resume()
    assert etcd_get(hung.url, "/k") == b"v"


def test_shipped_haproxy_config_is_valid(env):
    empty = env.write("empty.cfg", "")
    ok, out = haproxy_check(BASE_CONFIG, empty)
    assert ok, out


def test_haproxy_base_config_starts_without_reloads(env):
    hap = env.start_haproxy()
    assert hap.reloads() == (0, 0)
    assert "Name: HAProxy" in hap.cmd("show info")
    assert len(hap.workers()) == 1

    status, body = http_get(hap.stats_url)
    assert status == 200, status
    assert "Statistics Report" in body

    # A reload through the master is counted and leaves one current worker.
    old = hap.workers()
    assert hap.reload() == (1, 0)
    wait_for(lambda: hap.workers() and hap.workers() != old,
             what="a new haproxy worker")
    assert http_get(hap.stats_url)[0] == 200


def test_haproxy_routes_to_whoami(env):
    _, port_a = env.start_whoami("a")
    _, port_b = env.start_whoami("b")
    front = free_port()
    services = env.write("services.cfg", """
frontend fe_test
    bind 127.0.0.1:%d
    default_backend be_test

backend be_test
    balance roundrobin
    server a 127.0.0.1:%d
    server b 127.0.0.1:%d
""" % (front, port_a, port_b))
    hap = env.start_haproxy(services)
    url = "http://127.0.0.1:%d/" % front

    counts = traffic(url, 20)
    assert counts == {"a": 10, "b": 10}, counts

    names = {r["srv_name"]: r for r in hap.servers_state("be_test")}
    assert set(names) == {"a", "b"}
    assert names["a"]["srv_addr"] == "127.0.0.1"
    rows = [r for r in hap.stats() if r["pxname"] == "be_test"]
    assert {r["svname"] for r in rows} >= {"a", "b", "BACKEND"}

    # Draining b through the runtime API while traffic flows loses nothing.
    with TrafficLoop(url, workers=2) as loop:
        loop.wait_results(20)
        hap.cmd("set server be_test/b state maint")
        mark = loop.mark()
        loop.wait_results(20, since=mark)
    assert not loop.failures, loop.summary()
    assert set(loop.counts(since=mark)) == {"a"}, loop.summary()


def test_whoami_modes(env):
    proc, port = env.start_whoami("w")
    base = "http://127.0.0.1:%d" % port

    r = http_request(base + "/")
    assert (r.status, r.body, r.headers.get("x-whoami")) == (200, "w\n", "w")
    assert http_get(base + "/health") == (200, "ok\n")
    assert http_request(base + "/", method="OPTIONS").status == 200
    t0 = time.monotonic()
    assert http_get(base + "/slow?ms=200") == (200, "w\n")
    assert time.monotonic() - t0 >= 0.2

    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: http_get(base + "/health")[0] == 503, what="503 mode")
    assert http_get(base + "/")[0] == 503
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: http_get(base + "/health")[0] == 200, what="healthy again")

    def refused():
        try:
            http_get(base + "/", timeout=1)
        except ConnectionRefusedError:
            return True
        return False

    proc.send_signal(signal.SIGUSR2)
    wait_for(refused, what="listening socket closed")
    proc.send_signal(signal.SIGUSR2)
    wait_for(lambda: http_get(base + "/")[1] == "w\n", what="socket reopened")

    assert env.stop(proc) == 0


def test_cleanup_kills_orphaned_children(env):
    # The shell leaves a grandchild behind when it is killed; stop() must
    # find it through the session.
    marker = env.path("child.pid")
    proc = env.spawn("tree", ["sh", "-c", "sleep 300 & echo $! > %s; wait"
                              % marker])
    wait_for(lambda: os.path.exists(marker) and open(marker).read().strip(),
             what="grandchild pid")
    child = int(open(marker).read())
    os.kill(child, 0)
    env.stop(proc, sig=signal.SIGKILL)

    wait_for(lambda: _gone(child), timeout=5,
             what="grandchild %d to be killed" % child)


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_interrupted_script_kills_its_processes(env):
    # A script using Env (as run.py and demo.py do) that gets SIGTERM must
    # stop what it started before exiting.
    script = env.write("interrupted.py", """
import sys, time
sys.path.insert(0, %r)
import harness
with harness.Env("inner") as inner:
    p = inner.spawn("sleeper", ["sleep", "300"])
    print("ready", p.pid, inner.tmp, flush=True)
    time.sleep(300)
""" % os.path.join(REPO, "integration"))
    proc = env.spawn("script", [PYTHON, script])
    m = env.wait_log("script", r"ready (\d+) (\S+)", alive=[proc])
    sleeper, inner_tmp = int(m.group(1)), m.group(2)
    proc.send_signal(signal.SIGTERM)
    assert env.wait_exit(proc) == 128 + signal.SIGTERM
    wait_for(lambda: _gone(sleeper), timeout=5, what="sleep %d to die" % sleeper)
    assert not os.path.exists(inner_tmp)
