"""Issue 23, part 1: a large plan at start (a cold start with empty slots)
goes through one reload instead of the runtime socket when the cost model
(haproxy.bulk_path, runtime_command_us, reload_server_us) says so; a change
put meanwhile is applied over the socket after it; bulk_path "runtime" and
min_reload_interval_ms keep the socket. Real etcd and HAProxy."""

import json
import re

from harness import *
from test_daemon import Cluster, PREFIX, etcd_put_many

N = 2000


def metric(url, name):
    body = http_get(url + "metrics", timeout=5)[1]
    if isinstance(body, bytes):
        body = body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    assert m, body[-2000:]
    return int(m.group(1))


def cold_start(env, bin_path, haproxy_conf, min_reload_ms=0):
    """N endpoints in etcd, HAProxy's slots empty (a stale file), slotsync
    listing etcd before HAProxy is up: the whole plan is known at once."""
    admin_port = free_port()
    c = Cluster(env, bin_path, slots=N + 48, backends=2, server_options="", start=False,
                extra={"admin": {"listen": "127.0.0.1:%d" % admin_port}})
    c.config["haproxy"].update(haproxy_conf, min_reload_interval_ms=min_reload_ms)
    c.config_path = write_config(env, c.config)
    c.admin_url = "http://127.0.0.1:%d/" % admin_port
    ports = list(c.backends.values())
    etcd_put_many(c.etcd, [(PREFIX + "web/e%04d" % i, "127.0.0.1:%d" % ports[i % 2])
                           for i in range(N)])
    c.render()
    with open(c.services_file) as f:
        text = f.read()
    for p in ports:
        text = text.replace("127.0.0.1:%d weight 1" % p, "0.0.0.0:0 disabled")
    with open(c.services_file, "w") as f:
        f.write(text)
    c.slotsync = env.start_slotsync(bin_path, c.config_path, name="slotsync")
    env.wait_log("slotsync", r"etcd listing applied", alive=[c.slotsync])
    c.haproxy = env.start_haproxy(c.services_file)
    return c


def ready_slots(c):
    return sum(1 for v in c.slots().values() if v[2] == "ready" and v[0] == "127.0.0.1")


def test_cold_start_takes_one_reload_and_keeps_a_change_put_meanwhile(env, bin_path):
    # A slow runtime command in the model: one reload is cheaper.
    c = cold_start(env, bin_path, {"bulk_path": "auto", "runtime_command_us": 1000})
    line = env.wait_log("slotsync", r"bulk: one reload for \d+ runtime commands", timeout=30,
                        alive=[c.slotsync])
    assert line
    # a change while the reload is in flight, or right after its decision
    etcd_put(c.etcd, PREFIX + "web/late", "127.0.0.1:%d" % c.backends["w1"])
    wait_for(lambda: ready_slots(c) == N + 1, timeout=30, what="%d ready slots" % (N + 1),
             alive=[c.slotsync])
    wait_for(lambda: c.haproxy.reloads()[0] >= 1, timeout=10, what="one reload")
    assert c.haproxy.reloads() == (1, 0), c.haproxy.reloads()
    assert metric(c.admin_url, "slotsync_bulk_reloads_total") == 1
    # its own cause, not "other" (issue 23 part 1)
    assert metric(c.admin_url, 'slotsync_reload_requests_total{cause="bulk"}') == 1
    assert metric(c.admin_url, 'slotsync_reload_requests_total{cause="other"}') == 0
    st = json.loads(http_get(c.admin_url + "status", timeout=5)[1])
    assert st["last_reload"]["cause"] == "bulk", st["last_reload"]
    log = env.log_text("slotsync")
    assert "HAProxy refused" not in log, log[-2000:]


def test_bulk_path_runtime_never_reloads(env, bin_path):
    c = cold_start(env, bin_path, {"bulk_path": "runtime", "runtime_command_us": 1000})
    wait_for(lambda: ready_slots(c) == N, timeout=30, what="%d ready slots" % N,
             alive=[c.slotsync])
    env.wait_log("slotsync", r"bulk: the runtime socket for \d+ runtime commands.*bulk_path",
                 timeout=10, alive=[c.slotsync])
    assert c.haproxy.reloads() == (0, 0), c.haproxy.reloads()
    assert metric(c.admin_url, "slotsync_bulk_reloads_total") == 0
