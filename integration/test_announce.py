"""Integration tests of `slotsync announce`, the registration sidekick,
against a real etcd (and, end to end, the daemon and HAProxy), all on
127.0.0.1."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.request

from harness import *

PREFIX = "/services/"

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _gateway(url, path, body, timeout=5):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"},
                                 method="POST")
    with _opener.open(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def _b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


def key_entry(url, key):
    """(value str, lease id int) of key, or None if absent."""
    import base64
    doc = _gateway(url, "/v3/kv/range", {"key": _b64(key)})
    kvs = doc.get("kvs") or []
    if not kvs:
        return None
    return (base64.b64decode(kvs[0].get("value", "")).decode(),
            int(kvs[0].get("lease", 0)))


def lease_info(url, lease):
    """(remaining TTL, granted TTL) of a lease; remaining -1 if gone."""
    doc = _gateway(url, "/v3/lease/timetolive", {"ID": str(lease)})
    return int(doc.get("TTL", -1)), int(doc.get("grantedTTL", 0))


def announce(env, bin_path, etcd, key, addr, *extra, name="announce", command=()):
    argv = [bin_path, "announce", "--etcd", etcd, "--key", key, "--addr", addr]
    argv += list(extra)
    if command:
        argv += ["--"] + list(command)
    return env.spawn(name, argv)


def wait_key(url, key, value=None, proc=None, timeout=10, what=None):
    """Wait until key exists (with value, if given); return (value, lease)."""
    def present():
        e = key_entry(url, key)
        if e and (value is None or e[0] == value):
            return e
        return None
    return wait_for(present, timeout=timeout, alive=[proc] if proc else (),
                    what=what or "key %s%s" % (key, "" if value is None else " = " + value))


def wait_gone(url, key, timeout=10, what=None):
    """Wait until key is absent; return the seconds it took."""
    start = time.monotonic()
    wait_for(lambda: key_entry(url, key) is None, timeout=timeout,
             interval=0.01, what=what or "key %s to go" % key)
    return time.monotonic() - start


def test_registers_with_lease_in_both_formats(env, bin_path):
    """JSON (with weight, after failing over from a dead endpoint) and
    plain values, each under a lease of the requested TTL that is kept
    alive past the TTL."""
    url = env.start_etcd()
    dead = "http://127.0.0.1:%d" % free_port()
    a = announce(env, bin_path, dead + "," + url, PREFIX + "web/a", "127.0.0.1:8081",
                 "--ttl", "3", "--weight", "5", name="ann-json")
    b = announce(env, bin_path, url, PREFIX + "web/b", "[::1]:8082", "--ttl", "4",
                 "--format", "plain", name="ann-plain")
    c = announce(env, bin_path, url, PREFIX + "api/c", "127.0.0.1:8083", name="ann-default")

    value_a, lease_a = wait_key(url, PREFIX + "web/a", proc=a)
    assert json.loads(value_a) == {"host": "127.0.0.1", "port": 8081, "weight": 5}, value_a
    assert value_a == '{"host":"127.0.0.1","port":8081,"weight":5}', value_a
    value_b, lease_b = wait_key(url, PREFIX + "web/b", proc=b)
    assert value_b == "[::1]:8082", value_b
    value_c, lease_c = wait_key(url, PREFIX + "api/c", proc=c)
    assert value_c == '{"host":"127.0.0.1","port":8083}', value_c

    for lease, ttl in ((lease_a, 3), (lease_b, 4), (lease_c, 10)):
        assert lease != 0
        remaining, granted = lease_info(url, lease)
        assert granted == ttl, (lease, granted, ttl)
        assert 0 < remaining <= ttl, (lease, remaining, ttl)

    # Renewed: after more than a TTL the keys are still there, same lease.
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        assert key_entry(url, PREFIX + "web/a") == (value_a, lease_a)
        assert key_entry(url, PREFIX + "web/b") == (value_b, lease_b)
        assert a.poll() is None and b.poll() is None
        time.sleep(0.1)
    assert lease_info(url, lease_a)[0] > 0

    for p in (a, b, c):
        assert env.stop(p) == 0
    log = env.log_text("ann-json")
    assert re.search(r"info  announce: registered /services/web/a = ", log), log
    assert "withdrawn /services/web/a (SIGTERM)" in log, log


def test_sigterm_withdraws_at_once_sigkill_waits_for_ttl(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3")
    _, lease = wait_key(url, key, proc=p)
    start = time.monotonic()
    p.send_signal(signal.SIGTERM)
    gone = wait_gone(url, key, timeout=5)
    assert gone < 1.0, "key still there %.2fs after SIGTERM" % gone
    assert env.wait_exit(p, timeout=5) == 0
    assert time.monotonic() - start < 2.0
    assert lease_info(url, lease)[0] == -1, "lease revoked"

    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3",
                 "--log-level", "debug", name="announce2")
    _, lease = wait_key(url, key, proc=p)
    # Let one renewal happen, so that renewals are known to work.
    env.wait_log("announce2", r"lease [0-9a-f]+ renewed", alive=[p])
    p.send_signal(signal.SIGKILL)
    env.wait_exit(p)
    killed = time.monotonic()
    assert key_entry(url, key) is not None, "key must outlive a SIGKILL"
    wait_gone(url, key, timeout=10, what="key to expire with its lease")
    took = time.monotonic() - killed
    # The lease had between 2/3 of its TTL and all of it left; etcd revokes
    # an expired lease on its own schedule (a lessor pass every 500 ms, then
    # raft), late on a loaded machine: 3 s of slack, still well short of the
    # default TTL (10 s) a lost --ttl would give.
    assert 1.0 <= took <= 3 + 3, "key expired %.2fs after SIGKILL (ttl 3)" % took


def test_check_fall_withdraws_rise_registers(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/w1"
    w1, port = env.start_whoami("w1")
    p = announce(env, bin_path, url, key, "127.0.0.1:%d" % port, "--ttl", "5",
                 "--check", "http://127.0.0.1:%d/health" % port,
                 "--check-interval", "0.2", "--fall", "3", "--rise", "2")
    wait_key(url, key, proc=p)

    # 503 everywhere: withdrawn after 3 failures (~0.6 s), not at the first.
    bad = time.monotonic()
    w1.send_signal(signal.SIGUSR1)
    wait_gone(url, key, timeout=5)
    gone = time.monotonic() - bad
    # 3 failures 0.2 s apart take at least 0.4 s.
    assert gone >= 0.3, "withdrawn %.2fs after the backend turned bad" % gone
    env.wait_log("w1", r"\bunhealthy\b")
    env.wait_log("announce", r"unhealthy after 3 failed checks: withdrawing")
    # The line comes once the withdrawal has also looked for a detached copy.
    env.wait_log("announce", r"withdrawn \S+ \(check failing\): lease [0-9a-f]+ revoked, the key "
                 r"is gone")
    # Healthy again: back after 2 good checks.
    w1.send_signal(signal.SIGUSR1)
    wait_key(url, key, proc=p, timeout=5)
    log = env.log_text("announce")
    after = log[log.index("withdrawing"):]
    first_ok = re.search(r"T(\d\d):(\d\d):(\d\d\.\d+)Z? info  announce: check of \S+ ok", after)
    healthy = re.search(r"T(\d\d):(\d\d):(\d\d\.\d+)Z? info  announce: \S+ is healthy", after)
    assert first_ok and healthy, after

    def secs(m):
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    assert secs(healthy) - secs(first_ok) >= 0.15, "rise 2 needs a second good check"

    # TCP check: the backend goes away, then comes back on the same port.
    key2 = PREFIX + "web/w2"
    w2, port2 = env.start_whoami("w2")
    p2 = announce(env, bin_path, url, key2, "127.0.0.1:%d" % port2, "--ttl", "5",
                  "--check", "tcp", "--check-interval", "0.2", "--fall", "2",
                  "--rise", "2", name="announce-tcp")
    wait_key(url, key2, proc=p2)
    env.stop(w2)
    wait_gone(url, key2, timeout=5)
    env.wait_log("announce-tcp", r"unhealthy after 2 failed checks")
    env.start_whoami("w2", port=port2)
    wait_key(url, key2, proc=p2, timeout=5)
    assert p.poll() is None and p2.poll() is None


def test_nothing_registered_before_first_success(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/late"
    port = free_port()
    p = announce(env, bin_path, url, key, "127.0.0.1:%d" % port, "--check", "tcp",
                 "--check-interval", "0.1", "--rise", "5", "--log-level", "debug")
    # Several failed rounds (the count stops at --fall): still nothing.
    env.wait_log("announce", r"check of 127\.0\.0\.1:%d failed: .*\(3 in a row\)" % port,
                 alive=[p])
    assert key_entry(url, key) is None
    assert "etcd lease grant" not in env.log_text("announce")
    env.start_whoami("late", port=port)
    # From when the backend answers (start_whoami waited for that): starting
    # a Python process is no part of the time measured.
    start = time.monotonic()
    wait_key(url, key, proc=p, timeout=5)
    # The first success registers at once (rise applies after a withdrawal):
    # no other check between the first good one and the registration.
    assert time.monotonic() - start < 1.5
    log = env.log_text("announce")
    first_ok = log.index("check of 127.0.0.1:%d ok" % port)
    healthy = log.index("is healthy: registering", first_ok)
    assert "check of" not in log[first_ok + len("check of"):healthy], log[first_ok:]


def test_child_exit_withdraws_and_exit_status_passes(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/child"
    # The key exists only while the child runs (both start together): 2 s
    # for the poll below to see it, with a loaded machine's registration.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "5",
                 command=["/bin/sh", "-c", "sleep 2; exit 7"])
    wait_key(url, key, proc=p)
    assert env.wait_exit(p, timeout=10) == 7
    assert key_entry(url, key) is None, "withdrawn before announce exits"
    env.wait_log("announce", r"child \d+ exited with status 7")

    # Killed by a signal: 128 + signal.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", name="announce-kill",
                 command=["/bin/sh", "-c", "sleep 0.5; kill -9 $$"])
    assert env.wait_exit(p, timeout=10) == 128 + 9
    assert key_entry(url, key) is None

    # SIGTERM to announce: withdraw first, then the child gets it.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", name="announce-term",
                 command=["sleep", "60"])
    wait_key(url, key, proc=p)
    child = int(env.wait_log("announce-term", r"started child (\d+)").group(1))
    p.send_signal(signal.SIGTERM)
    assert env.wait_exit(p, timeout=5) == 128 + signal.SIGTERM
    assert key_entry(url, key) is None
    assert not os.path.exists("/proc/%d" % child) or \
        open("/proc/%d/stat" % child).read().split()[2] == "Z", "child must be gone"
    log = env.log_text("announce-term")
    assert log.index("withdrawn") < log.index("passing signal 15"), log

    # A command that does not exist: 127, nothing registered.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", name="announce-missing",
                 command=["/nonexistent/command"])
    assert env.wait_exit(p, timeout=5) == 127
    assert key_entry(url, key) is None


@timeout(90)
def test_etcd_outage_longer_than_ttl(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "2")
    value, lease = wait_key(url, key, proc=p)
    env.etcd.stop()
    # Down for longer than the TTL: announce sees its lease as lost.
    env.wait_log("announce", r"lease [0-9a-f]+ presumed expired", timeout=10, alive=[p])
    time.sleep(1.0)  # the outage goes on a little longer (not a guard)
    env.etcd.start()
    back = time.monotonic()
    _, new_lease = wait_for(lambda: (lambda e: e if e and e[1] != lease else None)(
        key_entry(url, key)), timeout=15, alive=[p], what="key back under a new lease")
    took = time.monotonic() - back
    assert took < 7.0, "key back %.1fs after etcd (backoff cap is 5 s)" % took
    assert key_entry(url, key)[0] == value
    env.wait_log("announce", r"granted lease [0-9a-f]+ \(ttl 2 s\) to replace the lost one")
    # The old lease (revived by etcd's restart) expires without taking the key.
    wait_for(lambda: lease_info(url, lease)[0] == -1, timeout=10, what="old lease expiry")
    assert key_entry(url, key) == (value, new_lease)
    assert p.poll() is None


def test_stop_is_bounded_when_etcd_hangs(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "10")
    wait_key(url, key, proc=p)
    os.kill(env.etcd.proc.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert env.wait_exit(p, timeout=10) == 0
        took = time.monotonic() - start
        assert took < 3.0, "stop took %.1fs with etcd hung" % took
    finally:
        os.kill(env.etcd.proc.pid, signal.SIGCONT)
    assert re.search(r"could not revoke|giving up", env.log_text("announce"))


BAD_ARGS = [
    ([], "--etcd is required"),
    (["--etcd", "URL", "--addr", "127.0.0.1:80"], "--key is required"),
    (["--etcd", "URL", "--key", "/services/web/a"], "--addr is required"),
    (["--etcd", "127.0.0.1:2379", "--key", "/services/web/a", "--addr", "127.0.0.1:80"],
     "--etcd:"),
    (["--etcd", "URL", "--key", "/services/w b/a", "--addr", "127.0.0.1:80"], "--key:"),
    (["--etcd", "URL", "--key", "/services/web", "--addr", "127.0.0.1:80"], "--key:"),
    (["--etcd", "URL", "--key", "/other/web/a", "--addr", "127.0.0.1:80"], "--key:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "localhost:80"], "--addr:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:0"], "--addr:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "0.0.0.0:80"], "--addr:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80", "--ttl", "1"],
     "--ttl:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80", "--weight", "300"],
     "--weight:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80", "--check", "udp"],
     "--check:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80", "--check", "tcp",
      "--check-interval", "0"], "--check-interval:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80", "--"], "--:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80",
      "--drain-seconds", "3601"], "--drain-seconds:"),
    (["--etcd", "URL", "--key", "/services/web/a", "--addr", "127.0.0.1:80",
      "--format", "plain", "--drain-seconds", "5"], "--drain-seconds: a plain HOST:PORT"),
]


def test_bad_arguments_exit_2(env, bin_path):
    url = "http://127.0.0.1:%d" % free_port()
    for args, needle in BAD_ARGS:
        args = [url if a == "URL" else a for a in args]
        out = subprocess.run([bin_path, "announce"] + args, capture_output=True,
                             text=True, timeout=10)
        assert out.returncode == 2, (args, out.returncode, out.stderr)
        assert needle in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) <= 2, out.stderr
    out = subprocess.run([bin_path, "announce", "--help"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 0 and "--check-interval" in out.stdout, out
    for needle in ("--drain-seconds", "SIGTERM", "SIGUSR1", "SIGUSR2"):
        assert needle in out.stdout, (needle, out.stdout)


@timeout(180)
def test_end_to_end_with_daemon(env, bin_path):
    """Three announced backends behind HAProxy through the daemon; SIGTERM
    to one announce takes it out of rotation without a failed request or a
    reload."""
    url = env.start_etcd()
    listen = free_port()
    services_file = env.path("services.cfg")
    config = {
        "etcd": {"endpoints": [url], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "services_file": services_file},
        "defaults": {"slots": 8, "server_options": "check inter 1s"},
        "services": {"web": {"listen": "127.0.0.1:%d" % listen}},
        "resync_interval_s": 2,
        "log_level": "debug",
    }
    config_path = write_config(env, config)
    out = subprocess.run([bin_path, "render", "-c", config_path], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    hap = env.start_haproxy(services_file)
    daemon = env.start_slotsync(bin_path, config_path)

    backends, announcers = {}, {}
    for name in ("w1", "w2", "w3"):
        _, port = env.start_whoami(name)
        backends[name] = port
        announcers[name] = announce(
            env, bin_path, url, PREFIX + "web/" + name, "127.0.0.1:%d" % port,
            "--ttl", "3", "--check", "http://127.0.0.1:%d/health" % port,
            "--check-interval", "0.2", name="announce-" + name)
    for name in backends:
        wait_key(url, PREFIX + "web/" + name, proc=announcers[name])

    web = "http://127.0.0.1:%d/" % listen

    def reaches(names):
        def ok():
            got = traffic(web, 4 * len(names))
            return set(got) == set(names) and got
        return ok
    wait_for(reaches(["w1", "w2", "w3"]), timeout=20, alive=[daemon],
             what="traffic reaching w1, w2 and w3")

    def w2_out():
        rows = hap.servers_state("web")
        return not any(int(r["srv_port"]) == backends["w2"] and
                       not int(r["srv_admin_state"]) & 0x23 for r in rows)

    with TrafficLoop(web) as loop:
        loop.wait_results(20)
        announcers["w2"].send_signal(signal.SIGTERM)
        assert env.wait_exit(announcers["w2"], timeout=5) == 0
        assert key_entry(url, PREFIX + "web/w2") is None
        wait_for(w2_out, timeout=10, alive=[daemon], what="w2's slot out of rotation")
        mark = loop.mark()
        loop.wait_results(40, since=mark)
        got = loop.counts(since=mark)
        assert "w2" not in got, got
        assert set(got) == {"w1", "w3"}, got
    assert not loop.failures, loop.summary()
    assert hap.reloads() == (0, 0), hap.reloads()


# ---- drain, withdrawal of a detached key, the key read back ----

READY = '{"host":"127.0.0.1","port":8081}'
DRAIN = '{"host":"127.0.0.1","port":8081,"state":"drain"}'


def test_sigterm_with_drain_seconds_drains_then_withdraws(env, bin_path):
    """SIGTERM with --drain-seconds: the key is put with state drain under
    the same lease, kept alive for the drain (longer than the TTL), then
    withdrawn."""
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "2",
                 "--drain-seconds", "3.5")
    _, lease = wait_key(url, key, value=READY, proc=p)
    p.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, drain_lease = wait_key(url, key, value=DRAIN, proc=p, timeout=5)
    assert drain_lease == lease, "drained under the same lease"
    # Until announce says the drain is over, the key stays, drained, also
    # past the lease's TTL (2 s): the renewals go on.
    seen_after_ttl = False
    while not re.search(r"drained \S+ for 3\.5 s: withdrawing", env.log_text("announce")):
        entry = key_entry(url, key)
        if entry is None and re.search(r"drained \S+ for", env.log_text("announce")):
            break
        assert entry == (DRAIN, lease), entry
        if time.monotonic() - signalled > 2.5:
            seen_after_ttl = True
        assert time.monotonic() - signalled < 15, "drain never ended"
        time.sleep(0.05)
    assert seen_after_ttl, "key drained past its TTL"
    wait_gone(url, key, timeout=5)
    assert env.wait_exit(p, timeout=5) == 0
    assert lease_info(url, lease)[0] == -1
    log = env.log_text("announce")
    assert log.index("SIGTERM: draining") < log.index("registered %s = %s" % (key, DRAIN)) \
        < log.index("drained") < log.index("withdrawn %s (SIGTERM)" % key), log

    # A second SIGTERM cuts the drain short.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--drain-seconds", "60",
                 name="announce-twice")
    wait_key(url, key, value=READY, proc=p)
    p.send_signal(signal.SIGTERM)
    wait_key(url, key, value=DRAIN, proc=p)
    p.send_signal(signal.SIGTERM)
    assert env.wait_exit(p, timeout=5) == 0
    assert key_entry(url, key) is None
    env.wait_log("announce-twice", r"SIGTERM during the drain: withdrawing now")

    # The child exiting ends the drain; the child got no signal meanwhile.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--drain-seconds", "60",
                 name="announce-child", command=["/bin/sh", "-c",
                                                 "trap 'exit 9' TERM; sleep 2 & wait; exit 3"])
    wait_key(url, key, value=READY, proc=p)
    p.send_signal(signal.SIGTERM)
    wait_key(url, key, value=DRAIN, proc=p)
    assert env.wait_exit(p, timeout=10) == 3
    assert key_entry(url, key) is None
    env.wait_log("announce-child", r"child exited during the drain: withdrawing now")

    # Nothing registered (the check never passed): no drain, a stop at once.
    port = free_port()
    p = announce(env, bin_path, url, key, "127.0.0.1:%d" % port, "--drain-seconds", "60",
                 "--check", "tcp", name="announce-down")
    env.wait_log("announce-down", r"check of \S+ failed", alive=[p])
    p.send_signal(signal.SIGINT)
    assert env.wait_exit(p, timeout=5) == 0
    assert "draining" not in env.log_text("announce-down")


def test_operator_put_detached_key_is_deleted_on_sigterm(env, bin_path):
    """issue 8 §7: an operator's put of the key (state drain, no lease)
    detaches it from announce's lease; SIGTERM used to log "withdrawn ...
    lease revoked" and leave the key forever. Now it is gone."""
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3")
    _, lease = wait_key(url, key, value=READY, proc=p)
    etcd_put(url, key, DRAIN)
    assert key_entry(url, key) == (DRAIN, 0), "detached from the lease"
    p.send_signal(signal.SIGTERM)
    assert env.wait_exit(p, timeout=5) == 0
    assert key_entry(url, key) is None, "the detached key must go with the withdrawal"
    assert lease_info(url, lease)[0] == -1
    assert re.search(r"withdrawn %s \(SIGTERM\): lease [0-9a-f]+ revoked, key deleted"
                     % re.escape(key), env.log_text("announce")), env.log_text("announce")

    # The same after a failing check withdrew the key: the detached copy
    # is deleted at that withdrawal already.
    _, port = env.start_whoami("w1")
    p = announce(env, bin_path, url, key, "127.0.0.1:%d" % port, "--ttl", "3", "--check",
                 "tcp", "--check-interval", "0.2", "--fall", "1", name="announce-check")
    wait_key(url, key, proc=p)
    etcd_put(url, key, '{"host":"127.0.0.1","port":%d,"state":"drain"}' % port)
    env.stop(env.proc("w1"))
    wait_gone(url, key, timeout=5)
    env.wait_log("announce-check", r"withdrawn \S+ \(check failing\): .*key deleted", alive=[p])
    assert p.poll() is None
    assert env.stop(p) == 0


def test_overwritten_key_is_warned_once(env, bin_path):
    """announce reads its key back: a foreign write is warned about once
    (per write, not per read) and not undone; a put of our own bytes
    without the lease is put back under it."""
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3",
                 "--log-level", "debug")
    wait_key(url, key, value=READY, proc=p)
    rev = etcd_put(url, key, DRAIN)
    env.wait_log("announce", r"warn  announce: %s was overwritten by someone else \(revision %d, "
                 r"detached from our lease" % (re.escape(key), rev), alive=[p])
    # Once per occurrence: two more reads find the same write, no new warning.
    wait_for(lambda: env.log_text("announce").count("%s is still overwritten" % key) >= 2,
             timeout=10, alive=[p], what="two more reads of the key")
    assert env.log_text("announce").count("was overwritten by someone else") == 1
    assert key_entry(url, key) == (DRAIN, 0), "the operator's value is not undone"
    # A second write is a second occurrence.
    rev2 = etcd_put(url, key, '{"host":"127.0.0.1","port":8081,"weight":0}')
    env.wait_log("announce", r"was overwritten by someone else \(revision %d," % rev2, alive=[p])
    assert env.log_text("announce").count("was overwritten by someone else") == 2
    # SIGUSR2 puts ours back.
    p.send_signal(signal.SIGUSR2)
    wait_key(url, key, value=READY, proc=p)
    assert env.stop(p) == 0
    assert key_entry(url, key) is None

    # A put of our very bytes without the lease is put back under the
    # lease (nothing the writer meant is lost), so SIGKILL still takes the
    # key with the lease.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "2", name="announce-same")
    _, lease = wait_key(url, key, value=READY, proc=p)
    etcd_put(url, key, READY)
    env.wait_log("announce-same", r"warn  announce: %s was put again without our lease"
                 % re.escape(key), alive=[p])
    wait_for(lambda: key_entry(url, key) == (READY, lease), timeout=5, alive=[p],
             what="key back under lease %x" % lease)
    p.kill()
    env.wait_exit(p)
    # ttl 2, and etcd revokes expired leases late on a loaded machine
    wait_gone(url, key, timeout=10, what="key to go with the lease after SIGKILL")


def test_key_taken_over_or_deleted_by_others_is_left_alone(env, bin_path):
    """Another announce takes the key (its own lease, another address): the
    first one warns once and its withdrawal leaves the new owner's key. A
    detached key naming another endpoint is not deleted either."""
    url = env.start_etcd()
    key = PREFIX + "web/a"
    a = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3", name="ann-a")
    _, lease_a = wait_key(url, key, value=READY, proc=a)
    b = announce(env, bin_path, url, key, "127.0.0.1:8082", "--ttl", "3", name="ann-b")
    value_b, lease_b = wait_key(url, key, value='{"host":"127.0.0.1","port":8082}', proc=b)
    assert lease_b != lease_a
    env.wait_log("ann-a", r"warn  announce: %s was taken over under another lease %x"
                 % (re.escape(key), lease_b), alive=[a])
    a.send_signal(signal.SIGTERM)
    assert env.wait_exit(a, timeout=5) == 0
    assert key_entry(url, key) == (value_b, lease_b), "the new owner's key stays"
    assert env.log_text("ann-a").count("was taken over") == 1
    assert "is not ours to delete" in env.log_text("ann-a")
    assert env.stop(b) == 0
    assert key_entry(url, key) is None

    # Detached and naming another endpoint: left at the withdrawal.
    c = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3", name="ann-c")
    wait_key(url, key, value=READY, proc=c)
    other = '{"host":"127.0.0.1","port":9999}'
    etcd_put(url, key, other)
    env.wait_log("ann-c", r"was overwritten by someone else", alive=[c])
    assert env.stop(c) == 0
    assert key_entry(url, key) == (other, 0)
    etcd_delete(url, key)

    # Deleted by someone: one warning, not put back until SIGUSR2.
    d = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3", "--log-level",
                 "debug", name="ann-d")
    _, lease_d = wait_key(url, key, value=READY, proc=d)
    etcd_delete(url, key)
    env.wait_log("ann-d", r"warn  announce: %s was deleted by someone else" % re.escape(key),
                 alive=[d])
    wait_for(lambda: env.log_text("ann-d").count("%s is still gone" % key) >= 1,
             timeout=10, alive=[d], what="another read of the key")
    assert key_entry(url, key) is None
    assert env.log_text("ann-d").count("was deleted by someone else") == 1
    d.send_signal(signal.SIGUSR2)
    wait_key(url, key, value=READY, proc=d)
    assert key_entry(url, key) == (READY, lease_d)
    assert env.stop(d) == 0
    assert key_entry(url, key) is None


def test_sigusr1_drains_sigusr2_makes_ready(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/a"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "3", "--weight", "4")
    ready = '{"host":"127.0.0.1","port":8081,"weight":4}'
    drain = '{"host":"127.0.0.1","port":8081,"weight":4,"state":"drain"}'
    _, lease = wait_key(url, key, value=ready, proc=p)
    for _ in range(2):
        p.send_signal(signal.SIGUSR1)
        assert wait_key(url, key, value=drain, proc=p) == (drain, lease)
        p.send_signal(signal.SIGUSR2)
        assert wait_key(url, key, value=ready, proc=p) == (ready, lease)
    # Drained when stopped: withdrawn all the same.
    p.send_signal(signal.SIGUSR1)
    wait_key(url, key, value=drain, proc=p)
    assert env.stop(p) == 0
    assert key_entry(url, key) is None
    env.wait_log("announce", r"SIGUSR1: draining")
    env.wait_log("announce", r"SIGUSR2: ready again")

    # Plain format has no state: SIGUSR1 withdraws, SIGUSR2 registers again.
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--format", "plain",
                 name="announce-plain")
    wait_key(url, key, value="127.0.0.1:8081", proc=p)
    p.send_signal(signal.SIGUSR1)
    wait_gone(url, key)
    env.wait_log("announce-plain", r"SIGUSR1: a plain value cannot carry the drain state")
    time.sleep(0.3)  # nothing comes back by itself (not a guard: the wait above was)
    assert key_entry(url, key) is None and p.poll() is None
    p.send_signal(signal.SIGUSR2)
    wait_key(url, key, value="127.0.0.1:8081", proc=p)
    assert env.stop(p) == 0
    assert key_entry(url, key) is None


@timeout(180)
def test_drain_shows_in_haproxy_before_the_server_goes(env, bin_path):
    """Through the daemon: SIGTERM with --drain-seconds puts the server in
    DRAIN in HAProxy (no new traffic, no failed request), then out of
    rotation, without a reload."""
    url = env.start_etcd()
    listen = free_port()
    services_file = env.path("services.cfg")
    config = {
        "etcd": {"endpoints": [url], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "services_file": services_file},
        "defaults": {"slots": 4},
        "services": {"web": {"listen": "127.0.0.1:%d" % listen}},
        "resync_interval_s": 2,
    }
    config_path = write_config(env, config)
    out = subprocess.run([bin_path, "render", "-c", config_path], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    hap = env.start_haproxy(services_file)
    daemon = env.start_slotsync(bin_path, config_path)
    ports, anns = {}, {}
    for name in ("w1", "w2"):
        _, ports[name] = env.start_whoami(name)
        anns[name] = announce(env, bin_path, url, PREFIX + "web/" + name,
                              "127.0.0.1:%d" % ports[name], "--drain-seconds", "4",
                              name="announce-" + name)
    web = "http://127.0.0.1:%d/" % listen
    wait_for(lambda: set(traffic(web, 8)) == {"w1", "w2"}, timeout=20, alive=[daemon],
             what="traffic reaching w1 and w2")

    def w2_status():
        for row in hap.stats():
            if row.get("pxname") == "web" and row.get("addr") == "127.0.0.1:%d" % ports["w2"]:
                return row.get("status")
        return None

    with TrafficLoop(web) as loop:
        loop.wait_results(10)
        anns["w2"].send_signal(signal.SIGTERM)
        wait_for(lambda: w2_status() == "DRAIN", timeout=10, interval=0.05,
                 alive=[daemon, anns["w2"]], what="w2 in DRAIN in HAProxy")
        assert anns["w2"].poll() is None, "announce still draining"
        mark = loop.mark()
        loop.wait_results(20, since=mark)
        assert loop.counts(since=mark).get("w2", 0) == 0, loop.counts(since=mark)
        assert env.wait_exit(anns["w2"], timeout=15) == 0
        assert key_entry(url, PREFIX + "web/w2") is None
        wait_for(lambda: w2_status() in (None, "MAINT"), timeout=10, alive=[daemon],
                 what="w2 out of rotation")
    assert not loop.failures, loop.summary()
    assert hap.reloads() == (0, 0), hap.reloads()
