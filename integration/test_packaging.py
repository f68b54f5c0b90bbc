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
