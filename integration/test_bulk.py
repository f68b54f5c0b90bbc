"""Issue 23, part 1: a large plan at start (a cold start with empty slots)
goes through one reload instead of the runtime socket when the cost model
(haproxy.bulk_path, runtime_command_us, reload_server_us) says so; a change
put meanwhile is applied over the socket after it; bulk_path "runtime" and
min_reload_interval_ms keep the socket. Real etcd and HAProxy."""

import collections
import json
import os
import signal
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
    line = env.wait_log("slotsync", r"bulk: one reload for \d+ runtime commands.*", timeout=30,
                        alive=[c.slotsync]).group(0)
    # a figure set in the config is the one used, and the line says so
    assert "1000.0 us a command (the config)" in line, line
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


def port_counts(c):
    """{port: ready slots} of backend web: what HAProxy serves."""
    return collections.Counter(p for a, p, st, w in c.slots().values()
                               if st == "ready" and a == "127.0.0.1")


def restart_with_stale_file(env, c, moved):
    """Converged on N endpoints; kill -9 HAProxy's master and workers; while
    it is down every endpoint moves to the other backend (moved: {key:
    port}); HAProxy starts again from the file of before the move (the one
    a package's or an operator's copy could hold), so the plan at its
    restart is N address changes. Returns the log offset at the restart."""
    stale = open(c.services_file).read()
    for pid in c.haproxy.workers():
        os.kill(pid, signal.SIGKILL)
    c.haproxy.stop(signal.SIGKILL)
    etcd_put_many(c.etcd, [(PREFIX + k, "127.0.0.1:%d" % p) for k, p in moved.items()])
    # slotsync keeps the file current (livefile): let it write the move,
    # then put the old text back, as a copy from before the move would be
    wait_for(lambda: open(c.services_file).read() != stale, timeout=10,
             what="the services file holding the move", alive=[c.slotsync])
    since = len(env.log_text("slotsync"))
    with open(c.services_file, "w") as f:
        f.write(stale)
    c.haproxy = env.start_haproxy(c.services_file)
    return since


def converge_cold(env, bin_path, **kw):
    c = cold_start(env, bin_path, {"bulk_path": "auto", "runtime_command_us": 1000}, **kw)
    ports = list(c.backends.values())
    want = collections.Counter(ports[i % 2] for i in range(N))
    wait_for(lambda: port_counts(c) == want, timeout=30, what="%d ready slots" % N,
             alive=[c.slotsync])
    wait_for(lambda: metric(c.admin_url, "slotsync_bulk_reloads_total") == 1, timeout=10,
             what="the cold start's one reload", alive=[c.slotsync])
    # in sync includes that reload confirmed: HAProxy's new worker serves the
    # endpoints before its master has counted the reload for slotsync, and a
    # HAProxy killed in between leaves the reload to its deadline
    wait_for(lambda: metric(c.admin_url, 'slotsync_reloads_total{result="ok"}') == 1,
             timeout=20, what="the cold start's reload confirmed", alive=[c.slotsync])
    moved = {"web/e%04d" % i: ports[(i + 1) % 2] for i in range(N)}
    return c, ports, moved


def test_restart_with_many_changes_takes_one_reload(env, bin_path):
    """HAProxy killed and started again on a file that misses N changes: the
    choice at its new process is one reload (not N runtime commands), after
    which HAProxy equals etcd and a later change flows over the socket."""
    c, ports, moved = converge_cold(env, bin_path)
    since = restart_with_stale_file(env, c, moved)
    env.wait_log("slotsync", r"bulk: one reload for \d+ runtime commands", since=since,
                 timeout=30, alive=[c.slotsync])
    want = collections.Counter(moved.values())
    wait_for(lambda: port_counts(c) == want, timeout=30, what="HAProxy equal to etcd",
             alive=[c.slotsync])
    wait_for(lambda: c.haproxy.reloads()[0] >= 1, timeout=10, what="one reload")
    assert c.haproxy.reloads() == (1, 0), c.haproxy.reloads()
    assert metric(c.admin_url, "slotsync_bulk_reloads_total") == 2
    assert metric(c.admin_url, 'slotsync_reload_requests_total{cause="bulk"}') == 2
    etcd_put(c.etcd, PREFIX + "web/late", "127.0.0.1:%d" % ports[0])
    want[ports[0]] += 1
    wait_for(lambda: port_counts(c) == want, timeout=30, what="the later change",
             alive=[c.slotsync])
    assert c.haproxy.reloads() == (1, 0), c.haproxy.reloads()


def test_min_reload_interval_keeps_the_socket_and_loses_no_change(env, bin_path):
    """The same restart inside min_reload_interval_ms of the cold start's
    reload: no reload is chosen (the model would take one), the N changes go
    through the runtime socket, and a change put while they are applied is
    there at the end. HAProxy's new master counts no reload."""
    c, ports, moved = converge_cold(env, bin_path, min_reload_ms=600000)
    since = restart_with_stale_file(env, c, moved)
    etcd_put(c.etcd, PREFIX + "web/late", "127.0.0.1:%d" % ports[1])
    want = collections.Counter(moved.values())
    want[ports[1]] += 1
    wait_for(lambda: port_counts(c) == want, timeout=30, what="HAProxy equal to etcd",
             alive=[c.slotsync])
    line = env.wait_log("slotsync", r"bulk: the runtime socket for \d+ runtime commands.*",
                        since=since, timeout=10, alive=[c.slotsync]).group(0)
    assert "no reload allowed now" in line, line
    assert c.haproxy.reloads() == (0, 0), c.haproxy.reloads()
    assert metric(c.admin_url, "slotsync_bulk_reloads_total") == 1
    assert "a reload is needed" not in env.log_text("slotsync")[since:]


def test_cold_start_holds_the_listing_pages_for_one_reload(env, bin_path):
    """HAProxy up with every slot empty before slotsync starts: the first
    listing's pages (1,000 keys each) would go to the empty slots as they
    are read, leaving a plan at the listing's end too small for a reload.
    At the first page, etcd's count of the prefix scales the plan to the
    whole listing: one reload wins, the pages wait, one reload, and the
    socket carries almost nothing (before: 2,000+ commands for the first
    pages, then a reload or the socket for the rest)."""
    admin_port = free_port()
    c = Cluster(env, bin_path, slots=N + 48, backends=2, server_options="", start=False,
                extra={"admin": {"listen": "127.0.0.1:%d" % admin_port}})
    c.config["haproxy"].update({"bulk_path": "auto", "runtime_command_us": 1000})
    c.config_path = write_config(env, c.config)
    c.admin_url = "http://127.0.0.1:%d/" % admin_port
    ports = list(c.backends.values())
    c.render()  # no endpoint yet: every slot empty
    c.haproxy = env.start_haproxy(c.services_file)
    etcd_put_many(c.etcd, [(PREFIX + "web/e%04d" % i, "127.0.0.1:%d" % ports[i % 2])
                           for i in range(N)])
    c.slotsync = env.start_slotsync(bin_path, c.config_path, name="slotsync")
    want = collections.Counter(ports[i % 2] for i in range(N))
    wait_for(lambda: port_counts(c) == want, timeout=30, what="%d ready slots" % N,
             alive=[c.slotsync])
    sent = metric(c.admin_url, "slotsync_runtime_commands_total")
    assert sent < N, "%d runtime commands beside the reload" % sent
    wait_for(lambda: c.haproxy.reloads()[0] >= 1, timeout=10, what="one reload")
    assert c.haproxy.reloads() == (1, 0), c.haproxy.reloads()
    assert metric(c.admin_url, "slotsync_bulk_reloads_total") == 1
    assert re.search(r"bulk: the first etcd listing holds %d keys.*its pages wait" % N,
                     env.log_text("slotsync"))


def test_cost_figures_are_measured_on_this_haproxy(env, bin_path):
    """No figure in the config: the first decision uses the figures measured
    for HAProxy's version (bulk.c's table), and the next one the time per
    command slotsync measured in its own batches to this HAProxy; each
    decision's line says where its figures came from."""
    c = cold_start(env, bin_path, {"bulk_path": "auto"})
    ports = list(c.backends.values())
    first = env.wait_log("slotsync", r"bulk: .* for \d+ runtime commands.*", timeout=30,
                         alive=[c.slotsync]).group(0)
    assert re.search(r"by [\d.]+ us a command \(HAProxy's version\), [\d.]+ us a server "
                     r"\(HAProxy's version\)", first), first
    want = collections.Counter(ports[i % 2] for i in range(N))
    wait_for(lambda: port_counts(c) == want, timeout=30, what="%d ready slots" % N,
             alive=[c.slotsync])
    moved = {"web/e%04d" % i: ports[(i + 1) % 2] for i in range(N)}
    since = restart_with_stale_file(env, c, moved)
    line = env.wait_log("slotsync", r"bulk: .* for \d+ runtime commands.*", since=since,
                        timeout=30, alive=[c.slotsync]).group(0)
    m = re.search(r"by ([\d.]+) us a command \(measured here\), [\d.]+ us a server "
                  r"\((HAProxy's version|measured here)\)", line)
    assert m, line
    assert 0 < float(m.group(1)) < 100000, line
    want = collections.Counter(moved.values())
    wait_for(lambda: port_counts(c) == want, timeout=30, what="HAProxy equal to etcd",
             alive=[c.slotsync])
