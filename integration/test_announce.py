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
    wait_gone(url, key, timeout=6, what="key to expire with its lease")
    took = time.monotonic() - killed
    # The lease had between 2/3 of its TTL and all of it left.
    assert 1.0 <= took <= 3 + 1.5, "key expired %.2fs after SIGKILL (ttl 3)" % took


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
    assert "lease" in env.log_text("announce") and "revoked" in env.log_text("announce")
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
    start = time.monotonic()
    env.start_whoami("late", port=port)
    wait_key(url, key, proc=p, timeout=5)
    # The first success registers at once (rise applies after a withdrawal).
    assert time.monotonic() - start < 1.5


def test_child_exit_withdraws_and_exit_status_passes(env, bin_path):
    url = env.start_etcd()
    key = PREFIX + "web/child"
    p = announce(env, bin_path, url, key, "127.0.0.1:8081", "--ttl", "5",
                 command=["/bin/sh", "-c", "sleep 1; exit 7"])
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
