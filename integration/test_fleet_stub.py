"""fleet_stub.py, the runtime sockets of make bench-fleet's hosts past the
first few real HAProxy processes (issue 24 item 5), checked against what it
stands for: the same lines sent to a real HAProxy and to the stub get the
same bytes back (only the clock-dependent parts masked), a relay socket
gives HAProxy's own bytes, and a real "slotsync run" on a stub socket ends
with the stub's servers equal to etcd after puts, a port change and a
delete."""

import json
import os
import re
import socket
import subprocess

from harness import *
from harness import etcd_put, etcd_delete, write_config

STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fleet_stub.py")
PREFIX = "/services/"

# What slotsync sends (its resync line, a change's batch) and the refusals
# and framings around it: pipelined lines, an empty line, prompt mode.
LINES = [
    "show cli level;show servers state;show backend;show info\n",
    "set server web/s1 addr 0.0.0.0 port 0\n",
    "set server web/s1 addr 127.0.0.1 port 8080;set server web/s1 weight 7;"
    "set server web/s1 state ready\n",
    "set server web/s1 addr 127.0.0.1 port 8080\n",
    "set server web/s1 addr 127.0.0.2 port 8080\n",
    "set server web/s1 addr 127.0.0.2 port 8081\n",
    "set server web/s2 addr 127.0.0.1 port 0\n",
    "set server web/s2 state drain;show servers state\n",
    "set server web/s2 state maint;set server web/s1 state maint;show servers state\n",
    "set server web/s1 addr 0.0.0.0 port 0;show servers state\n",
    "set server web/s1 state ready;set server web/s2 state ready;show servers state web\n",
    "set server web/s1 state drain;set server web/s2 state maint;show servers state\n",
    "set server web/s9 state ready;set server nope/s1 state ready;set server web/s1 weight x;"
    "set server web/s1 state bogus\n",
    "set server web/s1 weight 300;set server web/s1 weight 0;show servers state\n",
    "show cli level\nshow cli level\n",
    "prompt\nshow cli level\nprompt\nshow cli level\n",
    "show map /nonexistent.map\n",
]


def exchange(path, line, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode())
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out.decode()
            out += d
    finally:
        s.close()


def masked(text):
    """The parts that depend on the clock or the process: show info's
    fields past Name (only Version is kept) and srv_time_since_last_change."""
    text = re.sub(r"(Name: HAProxy\nVersion: [^\n]*\n)(?:[^\n]+\n)+", r"\1...\n", text)
    return re.sub(r"^(\d+ \S+ \d+ \S+ \S+ \d+ \d+ \d+ \d+) \d+ ", r"\1 T ", text, flags=re.M)


def start_stub(env, n, forward=()):
    d = env.path("stub")
    os.makedirs(d, exist_ok=True)
    argv = [PYTHON, STUB, "--dir", d, "--n", str(n), "--backend", "web:2:3", "--proxy", "stats"]
    for i, path in forward:
        argv += ["--forward", "%d=%s" % (i, path)]
    proc = env.spawn("stub", argv)
    env.wait_log("stub", r"^ready$|\nready\n", alive=[proc])
    return proc, d


def ctl_line(d, line, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(d, "ctl.sock"))
        s.sendall((line + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()
    finally:
        s.close()


def web_config(env, url, sock, services):
    return write_config(env, {
        "etcd": {"endpoints": [url], "prefix": PREFIX},
        "haproxy": {"runtime_socket": sock, "services_file": services},
        "defaults": {"slots": 2, "server_options": ""},
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port()}},
        "resync_interval_s": 30,
        "log_level": "debug",
    })


def test_stub_answers_as_haproxy_2_6(env, bin_path):
    """Every line of LINES, sent to a real HAProxy (the shipped base config
    and a services file slotsync rendered: backend web, two slots) and to a
    stub socket, gets the same bytes; a relay socket in front of the real
    HAProxy gives its bytes too (its servers are the real one's)."""
    url = env.start_etcd()
    services = env.path("services.cfg")
    cfg = web_config(env, url, env.path("admin.sock"), services)
    out = subprocess.run([bin_path, "render", "-c", cfg], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    hap = env.start_haproxy(services)
    version = exchange(hap.admin_sock, "show info\n")
    if "Version: 2.6." not in version:
        raise Skip("the stub answers as HAProxy 2.6; this one is %s"
                   % re.search(r"Version: (\S+)", version).group(1))
    _, d = start_stub(env, 2, forward=[(1, hap.admin_sock)])
    stub, relay = os.path.join(d, "admin0.sock"), os.path.join(d, "admin1.sock")
    for line in LINES:
        want = masked(exchange(hap.admin_sock, line))
        assert masked(exchange(stub, line)) == want, line
    # Through the relay: HAProxy's own state, and a change that reaches it.
    line = "show servers state\n"
    assert masked(exchange(relay, line)) == masked(exchange(hap.admin_sock, line))
    got = exchange(relay, "set server web/s2 addr 127.0.0.3 port 9000\n")
    assert got == ("IP changed from '127.0.0.1' to '127.0.0.3', port changed from '+0' to "
                   "'9000' by 'stats socket command'\n\n"), got
    assert re.search(r"^3 web 2 s2 127\.0\.0\.3 .* 9000 ", exchange(hap.admin_sock, line),
                     re.M), "the relay's change reached HAProxy"
    stats = json.loads(ctl_line(d, "stats", 5))
    assert stats["relay_errors"] == 0, stats
    times = json.loads(ctl_line(d, "wait 9000 1", 5))
    assert times[0] is None and isinstance(times[1], float), times


def stub_servers(d, i=0):
    """{(addr, port)} of socket i's ready slots in backend web."""
    st = json.loads(ctl_line(d, "state %d" % i, 5))
    return {(a, p) for a, p, op, admin, w in st["web"] if not admin & 0x21}


def etcd_endpoints(url):
    from harness import etcd_get_prefix
    out = set()
    for _, v in etcd_get_prefix(url, PREFIX + "web/").items():
        h, p = v.decode().rsplit(":", 1)
        out.add((h, int(p)))
    return out


def test_real_slotsync_on_stub_sockets_equals_etcd(env, bin_path):
    """Two "slotsync run" on two sockets of one stub: after two puts, a port
    change and a delete, each socket's ready slots equal etcd's endpoints,
    and "wait PORT" times the port change on both sockets."""
    url = env.start_etcd()
    _, d = start_stub(env, 2)
    procs = []
    for i in range(2):
        services = env.path("services%d.cfg" % i)
        cfg = web_config(env, url, os.path.join(d, "admin%d.sock" % i), services)
        os.rename(cfg, env.path("slotsync%d.json" % i))
        procs.append(env.start_slotsync(bin_path, env.path("slotsync%d.json" % i),
                                        name="slotsync%d" % i))
    for i, p in enumerate(procs):
        env.wait_log("slotsync%d" % i, r"HAProxy state read", alive=[p])
    etcd_put(url, PREFIX + "web/a", "127.0.0.1:7001")
    etcd_put(url, PREFIX + "web/b", "127.0.0.1:7002")
    for i in range(2):
        wait_for(lambda: stub_servers(d, i) == etcd_endpoints(url), timeout=10, alive=procs,
                 what="socket %d equal to etcd after the puts" % i)
    etcd_put(url, PREFIX + "web/a", "127.0.0.1:7003")
    times = json.loads(ctl_line(d, "wait 7003 10", 15))
    assert all(isinstance(t, float) for t in times), times
    etcd_delete(url, PREFIX + "web/b")
    for i in range(2):
        wait_for(lambda: stub_servers(d, i) == etcd_endpoints(url) == {("127.0.0.1", 7003)},
                 timeout=10, alive=procs, what="socket %d equal to etcd after the delete" % i)
    for i in range(2):
        log = env.log_text("slotsync%d" % i)
        assert "unexpected reply" not in log and "refused" not in log, env.log_tail(
            "slotsync%d" % i)
    assert json.loads(ctl_line(d, "stats", 5))["unknown"] == 0
