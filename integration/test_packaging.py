"""Integration tests of the production packaging (issue 13): systemd
readiness through a real NOTIFY_SOCKET, `render --offline-ok` with etcd down,
`check` running HAProxy's own check; with real etcd and HAProxy on 127.0.0.1."""

import os
import re
import socket
import subprocess

from harness import Env, etcd_put, free_port, haproxy_cmd, wait_for, write_config
from test_daemon import PREFIX


def run(bin_path, *args, env=None, timeout=60):
    full = dict(os.environ, **(env or {}))
    return subprocess.run([bin_path] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=full)


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, env, name="notify.sock"):
        self.path = env.path(name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def has(self, pattern):
        return any(re.search(pattern, m) for m in self.poll())

    def close(self):
        self.sock.close()


def packaging_config(env, etcd_url, **extra):
    cfg = {
        "etcd": {"endpoints": [etcd_url], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "services_file": env.path("services.cfg")},
        "defaults": {"slots": 2, "server_options": "check inter 500ms"},
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port()}},
        "resync_interval_s": 30,
    }
    cfg.update(extra)
    return write_config(env, cfg)


def test_boot_without_etcd_then_ready_when_applied(env, bin_path):
    """etcd down at boot: render --offline-ok writes a file HAProxy starts
    from; `run` reports "waiting for etcd" and no READY=1; READY=1 comes once
    etcd answers; after a restart READY=1 comes only once the endpoint is in
    HAProxy's slot."""
    etcd = env.start_etcd()
    env.etcd.stop()
    config = packaging_config(env, etcd)
    services = env.path("services.cfg")

    out = run(bin_path, "render", "-c", config, "--timeout", "1", "--offline-ok")
    assert out.returncode == 0, out
    assert "--offline-ok: wrote" in out.stderr, out.stderr
    with open(services) as f:
        text = f.read()
    assert "server s1 0.0.0.0:0 disabled" in text and "server s2 " in text, text
    # without --offline-ok the same is a failure
    assert run(bin_path, "render", "-c", config, "--timeout", "1").returncode == 1
    # an existing file is kept as it is
    os.utime(services, (1000000000, 1000000000))
    out = run(bin_path, "render", "-c", config, "--timeout", "1", "--offline-ok")
    assert out.returncode == 0 and "kept the existing" in out.stderr, out
    assert os.stat(services).st_mtime == 1000000000
    with open(services) as f:
        assert f.read() == text

    hap = env.start_haproxy(services)
    notify = NotifySocket(env)
    proc = env.start_slotsync(bin_path, config, env={"NOTIFY_SOCKET": notify.path,
                                                     "WATCHDOG_USEC": "400000"})
    env.wait_log("slotsync", r"etcd watch lost", alive=[proc])
    wait_for(lambda: notify.has(r"^STATUS=waiting for etcd"), alive=[proc],
             what="STATUS=waiting for etcd")
    wait_for(lambda: notify.has(r"^WATCHDOG=1$"), alive=[proc], what="WATCHDOG=1")
    assert not notify.has(r"READY=1"), notify.messages

    env.etcd.start()
    wait_for(lambda: notify.has(r"^READY=1\nSTATUS=in sync: 0 endpoints"), timeout=20,
             alive=[proc], what="READY=1 once etcd answers")
    assert sum("READY=1" in m for m in notify.poll()) == 1, notify.messages
    env.stop(proc)
    assert notify.has(r"^STOPPING=1")

    # A restart with an endpoint in etcd: READY=1 only once HAProxy has it.
    etcd_put(etcd, PREFIX + "web/a", "127.0.0.1:4242")
    notify.messages.clear()
    proc = env.start_slotsync(bin_path, config, env={"NOTIFY_SOCKET": notify.path},
                              name="slotsync2")
    wait_for(lambda: notify.has(r"READY=1"), timeout=20, alive=[proc], what="READY=1")
    state = haproxy_cmd(hap.admin_sock, "show servers state web")
    assert re.search(r" web \d+ s1 127\.0\.0\.1 ", state), state
    ready = [m for m in notify.messages if "READY=1" in m][0]
    assert ready == "READY=1\nSTATUS=in sync: 1 endpoint in 1 service", ready
    notify.close()


def test_check_runs_haproxy_check(env, bin_path):
    """`check` renders from the config alone and runs haproxy -c on base
    config + render: a misspelt server option is caught there."""
    base = env.path("base.cfg")
    with open(os.path.join(os.path.dirname(__file__), "..", "haproxy", "haproxy.cfg")) as f:
        env.write("base.cfg", f.read())
    good = packaging_config(env, "http://127.0.0.1:2379",
                            defaults={"server_options": "check inter 2s"})
    with open(good) as f:
        text = f.read()
    env.write("good.json", text.replace('"services_file"',
                                        '"base_config": "%s", "services_file"' % base))
    env.write("bad.json", text.replace("check inter 2s", "chek inter 2s")
              .replace('"services_file"', '"base_config": "%s", "services_file"' % base))
    out = run(bin_path, "check", "-c", env.path("good.json"))
    assert out.returncode == 0 and ": ok (1 services, 0 warnings)" in out.stdout, out
    out = run(bin_path, "check", "-c", env.path("bad.json"))
    assert out.returncode == 1, out
    assert re.search(r"(?m)^slotsync check: error: haproxy -c: config : \[.*services\.cfg:\d+\] : "
                     r"unknown keyword 'chek'", out.stderr), out.stderr
    assert "slotsync-check-" not in out.stderr, out.stderr


# ---- the dns hosts file, read by a real dnsmasq

def dns_query_a(port, name, timeout=2.0):
    """A tiny stdlib DNS client: the IPv4 addresses 127.0.0.1:port answers
    for name (an A query over UDP), [] for NXDOMAIN or no answer."""
    import random
    import struct
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\x00" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    assert rid == qid
    if flags & 0x000F:
        return []
    pos = 12
    for _ in range(qd):  # skip the question
        while data[pos]:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return out


def test_dns_hosts_file_resolves_in_dnsmasq(env, bin_path):
    """slotsync keeps the hosts file; dnsmasq (addn-hosts, SIGHUP through
    dns.reload_pid_file) resolves <service>.<domain> right after the
    service appears in etcd, and stops when it goes."""
    import shutil
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    etcd = env.start_etcd()
    hosts = env.path("hosts")
    pid_file = env.path("dnsmasq.pid")
    env.write("hosts", "")
    port = free_port()
    proc = env.spawn("dnsmasq", [
        dnsmasq, "--keep-in-foreground", "--port=%d" % port, "--listen-address=127.0.0.1",
        "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
        "--addn-hosts=" + hosts, "--pid-file=" + pid_file, "--user=root", "--group=root",
        "--log-facility=-"])
    wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
             alive=[proc], what="dnsmasq's pid file")
    config = packaging_config(env, etcd, dns={"hosts_file": hosts, "domain": "service.local",
                                              "address": "127.0.0.1",
                                              "reload_pid_file": pid_file})
    subprocess.run([bin_path, "render", "-c", config], check=True, capture_output=True)
    env.start_haproxy(env.path("services.cfg"))
    slotsync = env.start_slotsync(bin_path, config)
    # the configured service at once, after the first listing
    wait_for(lambda: dns_query_a(port, "web.service.local") == ["127.0.0.1"],
             alive=[proc, slotsync], what="web.service.local in dnsmasq")
    assert dns_query_a(port, "api.service.local") == []
    etcd_put(etcd, PREFIX + "api/a1", "127.0.0.1:4243")
    wait_for(lambda: dns_query_a(port, "api.service.local") == ["127.0.0.1"],
             alive=[proc, slotsync], what="api.service.local once it appears in etcd")
    with open(hosts) as f:
        text = f.read()
    assert "127.0.0.1 api.service.local\n127.0.0.1 web.service.local\n" in text, text
    from harness import etcd_delete
    etcd_delete(etcd, PREFIX + "api/a1")
    wait_for(lambda: dns_query_a(port, "api.service.local") == [],
             alive=[proc, slotsync], what="api.service.local gone with its last endpoint")


# ---- make install / uninstall

def make_env():
    """The environment for a nested make: none of an outer make's flags."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def tree(root):
    """Every file (and symlink) under root, as paths relative to it."""
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def test_make_install_and_uninstall_with_destdir(env, bin_path):
    """`make install` puts the binary, man pages, units, sysusers file, base
    HAProxy config and example config in Debian's places under DESTDIR;
    `make uninstall` removes exactly that (an operator's file stays)."""
    from harness import REPO
    dest = env.path("root")
    build = env.path("build")
    args = ["make", "--no-print-directory", "-C", REPO, "DESTDIR=" + dest, "PREFIX=/usr/local",
            "BIN=" + bin_path, "-o", bin_path, "BUILD=" + build]
    out = subprocess.run(args + ["install"], capture_output=True, text=True, timeout=120,
                         env=make_env())
    assert out.returncode == 0, out.stdout + out.stderr
    want = {
        "usr/local/bin/slotsync",
        "usr/local/share/man/man8/slotsync.8",
        "usr/local/share/man/man5/slotsync.json.5",
        "usr/local/share/slotsync/haproxy.cfg",
        "usr/local/lib/systemd/system/slotsync.service",
        "usr/local/lib/systemd/system/slotsync-render.service",
        "usr/local/lib/systemd/system/slotsync-announce@.service",
        "usr/local/lib/sysusers.d/slotsync.conf",
        "usr/local/share/doc/slotsync/examples/haproxy-slotsync.conf",
        "usr/local/share/doc/slotsync/examples/announce-web-1.conf",
        "etc/slotsync/slotsync.json.example",
    }
    assert tree(dest) == want, sorted(tree(dest) ^ want)
    assert os.stat(os.path.join(dest, "usr/local/bin/slotsync")).st_mode & 0o777 == 0o755
    with open(os.path.join(dest, "usr/local/lib/systemd/system/slotsync.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/local/bin/slotsync run -c /etc/slotsync/slotsync.json\n" in unit
    assert "@BINDIR@" not in unit
    man = subprocess.run(["man", "--warnings", "-l",
                          os.path.join(dest, "usr/local/share/man/man8/slotsync.8")],
                         capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80"))
    assert man.returncode == 0 and not man.stderr and "OPTIONS FILE" in man.stdout, man.stderr
    # an operator's own config survives an uninstall, with its directory
    with open(os.path.join(dest, "etc/slotsync/slotsync.json"), "w") as f:
        f.write("{}\n")
    out = subprocess.run(args + ["uninstall"], capture_output=True, text=True, timeout=60,
                         env=make_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert tree(dest) == {"etc/slotsync/slotsync.json"}, tree(dest)
    for gone in ("usr/local/share/slotsync", "usr/local/share/doc/slotsync",
                 "etc/slotsync/announce"):
        assert not os.path.exists(os.path.join(dest, gone)), gone
