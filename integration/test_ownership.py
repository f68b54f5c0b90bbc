"""Integration tests of what slotsync may touch and how it tells about it:
proxies it does not own are left alone (issue 8 §1), a raised slot count is
honoured (§6), and every applied change and drift repair is logged (§8).
Real etcd, HAProxy 2.6 and whoami backends, all on 127.0.0.1."""

import os
import re
import signal
import subprocess
import time

from harness import *
from test_daemon import Cluster, PREFIX


def operator_base(env, c):
    """The shipped base config plus a backend of the operator's own, "app",
    with two servers of its own (w1 and w2)."""
    with open(BASE_CONFIG) as f:
        text = f.read()
    text += ("\nbackend app\n"
             "    server web1 127.0.0.1:%d\n"
             "    server web2 127.0.0.1:%d\n"
             % (c.backends["w1"], c.backends["w2"]))
    return env.write("operator-base.cfg", text)


def app_servers(c):
    return sorted((r["srv_name"], r["srv_addr"], r["srv_port"])
                  for r in c.haproxy.servers_state("app"))


def refused_line(name):
    return r"warn\s+sync: etcd service \"%s\" \(keys %s%s/\.\.\.\) refused: the name is taken " \
           % (name, re.escape(PREFIX), name)


def test_foreign_proxies_are_left_alone(env, bin_path):
    """An etcd service named like the operator's backend (app) or the base
    config's listen section (stats) is refused with one warning and a
    counter; HAProxy's proxies are untouched, and a new service of slotsync's
    own still gets its backend by a reload that works. After a restart the
    service slotsync created is still its own, the others still are not."""
    c = Cluster(env, bin_path, start=False)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file, base_config=operator_base(env, c))
    c.start_slotsync()
    before = app_servers(c)
    assert [s[0] for s in before] == ["web1", "web2"], before

    etcd_put(c.etcd, PREFIX + "app/evil", "127.0.0.7:80")
    etcd_put(c.etcd, PREFIX + "stats/evil", "127.0.0.7:81")
    env.wait_log("slotsync", refused_line("app"), alive=[c.slotsync])
    env.wait_log("slotsync", refused_line("stats"), alive=[c.slotsync])
    # a service of its own: one reload, which must pass haproxy -c
    etcd_put(c.etcd, PREFIX + "api/a", "127.0.0.1:%d" % c.backends["w3"])
    wait_for(lambda: c.haproxy.reloads() == (1, 0), what="one good reload",
             alive=[c.slotsync])
    wait_for(lambda: [(r["srv_name"], r["srv_port"]) for r in c.haproxy.servers_state("api")
                      if r["srv_addr"] != "0.0.0.0"] == [("s1", str(c.backends["w3"]))],
             what="api/s1 filled", alive=[c.slotsync])
    # more keys of the refused services: no second warning, nothing sent
    etcd_put(c.etcd, PREFIX + "app/evil2", "127.0.0.7:82")
    env.wait_log("slotsync", r"etcd key \"%sapp/evil2\" added" % re.escape(PREFIX),
                 alive=[c.slotsync])
    assert app_servers(c) == before
    assert [r for r in c.haproxy.servers_state("stats")] == []
    with open(c.services_file) as f:
        rendered = f.read()
    assert "backend api" in rendered
    assert "backend app" not in rendered and "backend stats" not in rendered, rendered
    text = env.log_text("slotsync")
    assert len(re.findall(refused_line("app"), text)) == 1, text
    assert not re.search(r"set server (app|stats)/|add server (app|stats)/", text)

    # a restart: api is still slotsync's (from the services file it wrote),
    # app and stats are still not
    env.stop(c.slotsync)
    env.wait_log("slotsync", r"stopped: .*2 services refused")
    c.start_slotsync()
    env.wait_log("slotsync", refused_line("app") + r"(.|\n)*" + refused_line("app"),
                 alive=[c.slotsync])
    etcd_put(c.etcd, PREFIX + "api/b", "127.0.0.1:%d" % c.backends["w1"])
    wait_for(lambda: sorted(r["srv_port"] for r in c.haproxy.servers_state("api")
                            if r["srv_addr"] != "0.0.0.0")
             == sorted([str(c.backends["w1"]), str(c.backends["w3"])]),
             what="api/s2 filled after the restart", alive=[c.slotsync])
    assert c.haproxy.reloads() == (1, 0)
    assert app_servers(c) == before


def test_render_and_reload_skip_base_config_names(env, bin_path):
    """With haproxy.base_config set, `slotsync render` leaves out services
    named like a base-config section, so the file passes haproxy -c."""
    c = Cluster(env, bin_path, start=False)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file, base_config=operator_base(env, c))
    c.config["haproxy"]["base_config"] = c.haproxy.base_config
    c.config_path = write_config(env, c.config)
    etcd_put(c.etcd, PREFIX + "stats/evil", "127.0.0.7:80")
    etcd_put(c.etcd, PREFIX + "app/evil", "127.0.0.7:81")
    etcd_put(c.etcd, PREFIX + "api/a", "127.0.0.1:%d" % c.backends["w3"])
    out_path = env.path("rendered.cfg")
    out = subprocess.run([bin_path, "render", "-c", c.config_path, "-o", out_path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    with open(out_path) as f:
        rendered = f.read()
    assert "backend api" in rendered
    assert "backend stats" not in rendered and "backend app" not in rendered, rendered
    assert re.search(r"etcd service \"stats\" .*refused: the name is taken by a backend or "
                     r"listen section of haproxy.base_config", out.stderr), out.stderr
    ok, text = haproxy_check(c.haproxy.base_config, out_path)
    assert ok, text


def servers(c, backend="web"):
    return sorted(r["srv_name"] for r in c.haproxy.servers_state(backend))


def set_slots(c, n, balance=None):
    web = dict(c.config["services"]["web"], slots=n)
    if balance:
        web["balance"] = balance
    c.config["services"] = dict(c.config["services"], web=web)
    write_config(c.env, c.config)


def test_raised_slots_are_added_at_run_time(env, bin_path):
    """roundrobin: slots 4 -> 6 plus SIGHUP adds s5, s6 with "add server",
    no reload; 6 -> 8 while slotsync is down is applied when it starts; a
    lower count drops no filled slot."""
    c = Cluster(env, bin_path, slots=4)
    c.put("a", "w1")
    c.wait_live(["w1"])
    assert servers(c) == ["s1", "s2", "s3", "s4"]
    set_slots(c, 6)
    c.slotsync.send_signal(signal.SIGHUP)
    wait_for(lambda: servers(c) == ["s%d" % i for i in range(1, 7)], what="6 slots",
             alive=[c.slotsync])
    env.wait_log("slotsync", r"slots raised for web \(4 -> 6\)")
    c.assert_no_reload()

    env.stop(c.slotsync)
    set_slots(c, 8)
    c.start_slotsync()
    wait_for(lambda: len(servers(c)) == 8, what="8 slots after a restart", alive=[c.slotsync])
    c.assert_no_reload()

    set_slots(c, 2)
    c.slotsync.send_signal(signal.SIGHUP)
    env.wait_log("slotsync", r"slots lowered for web \(8 -> 2\)", alive=[c.slotsync])
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    assert len(servers(c)) == 8
    c.assert_no_reload()


def test_raised_slots_by_reload_when_balance_is_static(env, bin_path):
    """static-rr cannot take "add server": slots 4 -> 6 plus SIGHUP is one
    reload, after which HAProxy and the services file have 6 slots, and the
    endpoint keeps its slot."""
    c = Cluster(env, bin_path, slots=4, web={"balance": "static-rr"})
    c.put("a", "w1")
    c.wait_live(["w1"])
    set_slots(c, 6)
    c.slotsync.send_signal(signal.SIGHUP)
    wait_for(lambda: c.haproxy.reloads() == (1, 0), what="one reload", alive=[c.slotsync])
    wait_for(lambda: servers(c) == ["s%d" % i for i in range(1, 7)], what="6 slots",
             alive=[c.slotsync])
    with open(c.services_file) as f:
        assert "server s6 " in f.read()
    c.wait_live(["w1"])


def test_changes_and_drift_repairs_are_logged(env, bin_path):
    """Each applied change has an info line naming backend/slot, instance and
    what changed; a slot put into maint by hand is repaired at the next
    resync, and the log says so."""
    c = Cluster(env, bin_path, extra={"resync_interval_s": 1, "log_level": "info"})
    c.put("i1", "w1")
    c.wait_live(["w1"])
    port = c.backends["w1"]
    env.wait_log("slotsync", r"info\s+sync: web/s1 \(i1\): addr 0\.0\.0\.0:0 maint -> "
                 r"addr 127\.0\.0\.1:%d ready" % port)
    c.haproxy.cmd("set server web/s1 state maint")
    env.wait_log("slotsync", r"info\s+sync: drift repaired: web/s1 \(i1\): haproxy had maint, "
                 r"etcd says ready", timeout=15, alive=[c.slotsync])
    c.wait_live(["w1"])
    c.put("i1", value="127.0.0.1:%d" % c.backends["w2"])
    env.wait_log("slotsync", r"info\s+sync: web/s1 \(i1\): addr 127\.0\.0\.1:%d -> "
                 r"addr 127\.0\.0\.1:%d" % (port, c.backends["w2"]), alive=[c.slotsync])
    c.delete("i1")
    env.wait_log("slotsync", r"info\s+sync: web/s1 \(emptied\): addr 127\.0\.0\.1:%d ready -> "
                 r"addr 0\.0\.0\.0:0 maint" % c.backends["w2"], alive=[c.slotsync])
    # a change made by slotsync itself is never called drift
    assert len(re.findall(r"drift repaired", env.log_text("slotsync"))) == 1


def test_many_changes_are_summarised(env, bin_path):
    """More than 20 changes in one batch: 20 info lines, the rest at debug,
    and a summary counting all of them."""
    c = Cluster(env, bin_path, slots=64, extra={"log_level": "info"}, start=False)
    for i in range(40):
        etcd_put(c.etcd, PREFIX + "web/n%02d" % i, "127.0.0.%d:%d" % (i + 2, c.backends["w1"]))
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()
    # the rendered file already holds them; move them all at once
    env.stop(c.slotsync)
    for i in range(40):
        etcd_put(c.etcd, PREFIX + "web/n%02d" % i, "127.0.0.%d:%d" % (i + 2, c.backends["w2"]))
    c.start_slotsync()
    m = env.wait_log("slotsync", r"applied \d+ runtime commands? \(0 failed\) in [\d.]+ ms: "
                     r"(\d+) changes, 0 drift repairs \(the lines past the first 20 are at debug "
                     r"level\)", alive=[c.slotsync])
    assert int(m.group(1)) == 40, m.group(0)
    lines = re.findall(r"info\s+sync: web/s\d+ \(n\d\d\): ", env.log_text("slotsync"))
    assert len(lines) == 20, lines
