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
    assert out.returncode == 0 and ": ok (1 service, 0 warnings)" in out.stdout, out
    out = run(bin_path, "check", "-c", env.path("bad.json"))
    assert out.returncode == 1, out
    # one error for one mistake, named by the field it came from (issue 19)
    assert re.findall(r"(?m)^slotsync check: error: defaults\.server_options: haproxy -c: "
                      r"config : unknown keyword 'chek'", out.stderr) == [
        "slotsync check: error: defaults.server_options: haproxy -c: config : unknown keyword "
        "'chek'"], out.stderr
    assert out.stderr.count("slotsync check: error:") == 1, out.stderr
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
    # systemd itself reads the installed units without a complaint (an
    # unknown or misspelt key is one); ExecStart's binary must exist for it
    import shutil
    if shutil.which("systemd-analyze"):
        units = env.path("units")
        os.mkdir(units)
        for u in ("slotsync.service", "slotsync-render.service", "slotsync-announce@.service"):
            with open(os.path.join(dest, "usr/local/lib/systemd/system", u)) as f:
                text = f.read().replace("/usr/local/bin/slotsync", bin_path)
            env.write(os.path.join("units", u.replace("@.", "@web-1.")), text)
        out = subprocess.run(["systemd-analyze", "verify", "--man=no", "slotsync.service",
                              "slotsync-render.service", "slotsync-announce@web-1.service"],
                             capture_output=True, text=True, timeout=60, cwd=units)
        assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out
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


# ---- docs/deploy: the files parse, and their paths and ports agree

DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "deploy")
SHIPPED_HAPROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "haproxy",
                               "haproxy.cfg")


def load_json(path):
    import json
    with open(path) as f:
        return json.load(f)


def parse_unit(path):
    """A systemd unit as {section: {key: [values]}} (keys may repeat)."""
    sections, cur = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            key, sep, value = line.partition("=")
            assert sep and cur is not None, (path, line)
            cur.setdefault(key.strip(), []).append(value.strip())
    return sections


def shipped_runtime_socket():
    with open(SHIPPED_HAPROXY) as f:
        m = re.search(r"(?m)^\s*stats socket (\S+) ", f.read())
    return m.group(1)


def check_config_agrees(bin_path, env, cfg_path, name):
    """The config loads (`check`: no error), and its sockets are the
    shipped base config's."""
    cfg = load_json(cfg_path)
    out = run(bin_path, "check", "-c", cfg_path)
    assert out.returncode == 0, (name, out.stderr)
    assert cfg["haproxy"]["runtime_socket"] == shipped_runtime_socket(), name
    assert cfg["haproxy"]["base_config"] == "/etc/haproxy/haproxy.cfg", name
    return cfg


def haproxy_argv_agrees(argv, cfg, name):
    """HAProxy's command line: -S is master_socket, the -f files are
    base_config then services_file."""
    s = argv.index("-S")
    assert argv[s + 1].split(",")[0] == cfg["haproxy"]["master_socket"], (name, argv)
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
    assert files == [cfg["haproxy"]["base_config"], cfg["haproxy"]["services_file"]], (name, argv)


def listen_ports(cfg):
    ports = set()
    for svc in cfg.get("services", {}).values():
        if "listen" in svc:
            ports.add(int(svc["listen"].rsplit(":", 1)[1]))
    if "http_frontend" in cfg:
        ports.add(int(cfg["http_frontend"]["bind"].rsplit(":", 1)[1]))
    return ports


def test_deploy_kubernetes_pod_agrees(env, bin_path):
    import yaml
    cfg = check_config_agrees(bin_path, env, os.path.join(DEPLOY, "kubernetes", "slotsync.json"),
                              "kubernetes")
    with open(os.path.join(DEPLOY, "kubernetes", "pod.yaml")) as f:
        pod = yaml.safe_load(f)
    assert pod["kind"] == "Pod"
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    cons = {c["name"]: c for c in spec["containers"] + spec["initContainers"]}
    assert set(cons) == {"render", "haproxy", "slotsync"}
    run_dir = os.path.dirname(cfg["haproxy"]["runtime_socket"])
    assert os.path.dirname(cfg["haproxy"]["master_socket"]) == run_dir
    svc_dir = os.path.dirname(cfg["haproxy"]["services_file"])

    def mounts(c):
        return {m["mountPath"]: m for m in c.get("volumeMounts", [])}

    for name in ("haproxy", "slotsync"):
        m = mounts(cons[name])
        assert m[run_dir]["name"] == "sockets", name
        assert m[svc_dir]["name"] == "services", name
    assert "emptyDir" in volumes["sockets"] and "emptyDir" in volumes["services"]
    assert mounts(cons["render"])[svc_dir]["name"] == "services"
    for name in ("render", "slotsync"):
        m = mounts(cons[name])["/etc/slotsync/slotsync.json"]
        assert m["name"] == "config" and m["subPath"] == "slotsync.json"
        assert cons[name]["command"][:4] == ["slotsync", name if name == "render" else "run",
                                             "-c", "/etc/slotsync/slotsync.json"]
    assert "--offline-ok" in cons["render"]["command"]
    base = mounts(cons["haproxy"])[cfg["haproxy"]["base_config"]]
    assert base["name"] == "config" and base["subPath"] == "haproxy.cfg"
    haproxy_argv_agrees(cons["haproxy"]["command"], cfg, "kubernetes")
    ports = {p["containerPort"] for p in cons["haproxy"]["ports"]}
    assert ports == listen_ports(cfg), (ports, listen_ports(cfg))
    assert cons["haproxy"]["readinessProbe"]["tcpSocket"]["port"] in ports
    # slotsync's probes: /readyz and /healthz on admin.listen's port, which
    # listens on every address (the kubelet probes the pod's IP)
    host, admin_port = cfg["admin"]["listen"].rsplit(":", 1)
    assert host == "0.0.0.0", cfg["admin"]
    sync = cons["slotsync"]
    assert [p["containerPort"] for p in sync["ports"]] == [int(admin_port)], sync["ports"]
    # Off loopback the endpoint is HTTPS with a token (issue 20): the probes
    # say HTTPS, their paths are not protected (admin.protected_paths'
    # default: all but /readyz and /healthz, or the config's list), and the
    # token and TLS files come from secret volumes mounted where the config
    # reads them.
    admin = cfg["admin"]
    assert admin.get("tls") and admin.get("token_file"), admin
    protected = admin.get("protected_paths", ["/", "/status", "/metrics"])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert sync[probe]["httpGet"] == {"path": path, "port": int(admin_port),
                                          "scheme": "HTTPS"}, sync[probe]
        assert path not in protected, (path, protected)
    assert "/metrics" in protected
    m = mounts(sync)
    for f in (admin["tls"]["cert_file"], admin["tls"]["key_file"], admin["token_file"]):
        mount = m[os.path.dirname(f)]
        assert "secret" in volumes[mount["name"]], (f, mount)


def test_deploy_compose_agrees(env, bin_path):
    import yaml
    cfg = check_config_agrees(bin_path, env, os.path.join(DEPLOY, "compose", "slotsync.json"),
                              "compose")
    with open(os.path.join(DEPLOY, "compose", "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    svcs = compose["services"]
    assert {"etcd", "render", "haproxy", "slotsync"} <= set(svcs)
    run_dir = os.path.dirname(cfg["haproxy"]["runtime_socket"])
    svc_dir = os.path.dirname(cfg["haproxy"]["services_file"])
    here = os.path.join(DEPLOY, "compose")

    def mounts(s):
        out = {}
        for v in s.get("volumes", []):
            src, dst = v.split(":")[:2]
            out[dst] = src
        return out

    for name in ("haproxy", "slotsync"):
        m = mounts(svcs[name])
        assert m[run_dir] == "sockets" and m[svc_dir] == "services", name
    assert mounts(svcs["render"])[svc_dir] == "services"
    for name in ("render", "slotsync"):
        src = mounts(svcs[name])["/etc/slotsync/slotsync.json"]
        assert os.path.samefile(os.path.join(here, src),
                                os.path.join(here, "slotsync.json")), name
    src = mounts(svcs["haproxy"])[cfg["haproxy"]["base_config"]]
    assert os.path.samefile(os.path.join(here, src), SHIPPED_HAPROXY)
    haproxy_argv_agrees(svcs["haproxy"]["command"], cfg, "compose")
    published = {int(p.split(":")[-1]) for p in svcs["haproxy"]["ports"]}
    assert published == listen_ports(cfg), (published, listen_ports(cfg))
    # the etcd the config names is the compose service
    assert cfg["etcd"]["endpoints"] == ["http://etcd:2379"]
    assert os.path.exists(os.path.join(here, svcs["render"]["build"]["context"],
                                       svcs["render"]["build"]["dockerfile"]))


def test_deploy_systemd_units_agree(env, bin_path):
    sysd = os.path.join(DEPLOY, "systemd")
    cfg = check_config_agrees(bin_path, env, os.path.join(sysd, "slotsync.json"), "systemd")
    main = parse_unit(os.path.join(sysd, "slotsync.service.in"))
    render = parse_unit(os.path.join(sysd, "slotsync-render.service.in"))
    announce = parse_unit(os.path.join(sysd, "slotsync-announce@.service.in"))
    dropin = parse_unit(os.path.join(sysd, "haproxy-slotsync.conf"))
    svc = main["Service"]
    assert svc["Type"] == ["notify"] and svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert svc["Restart"] == ["on-failure"] and svc["WatchdogSec"]
    assert svc["ExecStart"] == ["@BINDIR@/slotsync run -c /etc/slotsync/slotsync.json"]
    assert svc["NoNewPrivileges"] == ["yes"] and svc["ProtectSystem"] == ["strict"]
    assert svc["User"] == ["slotsync"] and svc["Group"] == ["haproxy"]
    state = "/var/lib/" + svc["StateDirectory"][0]
    writable = {p.lstrip("-") for v in svc["ReadWritePaths"] for p in v.split()} | {state}
    assert os.path.dirname(cfg["haproxy"]["services_file"]) in writable
    assert os.path.dirname(cfg["haproxy"]["runtime_socket"]) in writable
    assert os.path.dirname(cfg["haproxy"]["master_socket"]) in writable
    assert "haproxy.service" in main["Unit"]["After"][0].split()
    # render before HAProxy, with --offline-ok
    rs = render["Service"]
    assert rs["Type"] == ["oneshot"]
    assert rs["ExecStart"][0].startswith("@BINDIR@/slotsync render -c /etc/slotsync/slotsync.json")
    assert "--offline-ok" in rs["ExecStart"][0].split()
    assert "haproxy.service" in render["Unit"]["Before"][0].split()
    assert render["Install"]["WantedBy"] == ["haproxy.service"]
    # the drop-in: the master socket and the services file on HAProxy's line
    assert "slotsync-render.service" in dropin["Unit"]["After"][0].split()
    env_line = dropin["Service"]["Environment"][0].strip('"')
    assert env_line.startswith("EXTRAOPTS=")
    haproxy_argv_agrees(["-f", cfg["haproxy"]["base_config"]]
                        + env_line[len("EXTRAOPTS="):].split(), cfg, "drop-in")
    # announce@ reads /etc/slotsync/announce/%i.conf; the example parses
    assert announce["Service"]["ExecStart"] == [
        "@BINDIR@/slotsync announce --options-file /etc/slotsync/announce/%i.conf"]
    with open(os.path.join(sysd, "announce-web-1.conf")) as f:
        example = f.read()
    assert re.search(r"(?m)^key %sweb/" % re.escape(cfg["etcd"]["prefix"]), example)
    # the options file is read by announce itself: a bad option is named
    env.write("bad.conf", example + "wieght 3\n")
    out = run(bin_path, "announce", "--options-file", env.path("bad.conf"), timeout=10)
    assert out.returncode == 2 and "unknown option '--wieght'" in out.stderr, out


# ---- docs/examples: the migration configs load and render

def render_example(env, bin_path, name, etcd, keys):
    """Put keys in etcd, check and render docs/examples/<name>.json against
    it; return (config, rendered text)."""
    path = os.path.join(DEPLOY, "..", "examples", name + ".json")
    cfg = load_json(path)
    out = run(bin_path, "check", "-c", path)
    assert out.returncode == 0, (name, out.stderr)
    for key, value in keys.items():
        etcd_put(etcd, key, value)
    target = env.path(name + ".cfg")
    out = run(bin_path, "render", "-c", path, "--etcd", etcd, "-o", target, "--timeout", "10")
    assert out.returncode == 0, (name, out.stderr)
    with open(target) as f:
        return cfg, f.read()


def test_migration_examples_render(env, bin_path):
    etcd = env.start_etcd()
    cfg, text = render_example(env, bin_path, "paz", etcd, {
        "/paz/services/web/1.0.0/1": "127.0.0.1:4101",
        "/paz/services/web/1.0.1/1": "127.0.0.1:4102",
        "/paz/services/api/2/1": "127.0.0.1:4103",
    })
    assert cfg["etcd"]["prefix"] == "/paz/services/"
    assert re.search(r"backend web\n(.*\n)*?    server s\d+ 127\.0\.0\.1:4101 ", text), text
    assert re.search(r"    server s\d+ 127\.0\.0\.1:4102 ", text), text
    assert "backend api\n" in text, text
    assert re.search(r"frontend slotsync:http\n    mode http\n    bind \*:80\n", text), text
    # Host routing <svc>.paz: the same map run keeps (render's routes)
    assert cfg["http_frontend"]["domain"] == "paz" and cfg["dns"]["domain"] == "paz"

    cfg, text = render_example(env, bin_path, "docker-register", etcd, {
        "/backends/web/0123456789ab": "127.0.0.1:4201",
        "/backends/redis/ba9876543210": "127.0.0.1:4202",
    })
    assert "frontend fe:web\n    mode tcp\n    bind *:8000\n" in text, text
    assert "frontend fe:redis\n    mode tcp\n    bind *:6379\n" in text, text
    assert re.search(r"    server s1 127\.0\.0\.1:4201 ", text), text

    cfg, text = render_example(env, bin_path, "synapse", etcd, {
        "/services/service1/i-1": '{"host": "127.0.0.1", "port": 4301, "weight": 5}',
    })
    assert "frontend fe:service1\n    mode http\n    bind 127.0.0.1:3213\n" in text, text
    assert "backend service2\n    mode tcp\n    balance leastconn\n" in text, text
    assert "default-server check inter 2s rise 3 fall 2\n" in text, text
    assert re.search(r"    server s1 127\.0\.0\.1:4301 weight 5", text), text


# ---- --log-format

def test_log_formats_are_one_record_a_line(env, bin_path):
    """json: every line parses as one object; logfmt: ts= level= module=
    msg="..." with the message escaped; the config's log_format is used when
    the command line says nothing; text stays as it was."""
    import json
    etcd = env.start_etcd()
    # a value that is refused: its warning line quotes untrusted text
    etcd_put(etcd, PREFIX + 'web/a"b', 'not an "endpoint"\nlevel=error')
    config = packaging_config(env, etcd)
    out = run(bin_path, "render", "-c", config, "-o", env.path("out.cfg"), "--log-format", "json")
    assert out.returncode == 0, out
    records = [json.loads(line) for line in out.stderr.splitlines()]
    assert records and all(list(r)[:4] == ["ts", "level", "module", "msg"]
                           and all(isinstance(v, str) for v in r.values())
                           for r in records), records
    rejected = [r for r in records if r["level"] == "warn" and 'web/a\\"b' in r["msg"]]
    # the rejected key's fields: the key as quoted, its service and the reason
    assert rejected and rejected[0]["event"] == "rejected", records
    assert rejected[0]["key"].endswith('web/a\\"b') and rejected[0]["service"] == "web", rejected
    assert rejected[0]["reason"] in rejected[0]["msg"], rejected
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["ts"]) for r in records)

    value = r'([^\s"=\\]+|"([^"\\]|\\.)*")'
    logfmt = re.compile(r'^ts=\S+Z level=(error|warn|info|debug) module="[a-z]+" '
                        r'msg="([^"\\]|\\.)*"( [a-z_.]+=%s)*$' % value)
    config2 = packaging_config(env, etcd, log_format="logfmt")
    out = run(bin_path, "render", "-c", config2, "-o", env.path("out.cfg"))
    assert out.returncode == 0, out
    lines = out.stderr.splitlines()
    assert lines and all(logfmt.match(line) for line in lines), lines
    # the command line wins over the config
    out = run(bin_path, "render", "-c", config2, "-o", env.path("out.cfg"), "--log-format", "text")
    assert out.returncode == 0 and not out.stderr.startswith("ts="), out.stderr
    out = run(bin_path, "render", "-c", config2, "--log-format", "yaml")
    assert out.returncode == 2 and "--log-format: must be text, logfmt or json" in out.stderr

    # run: a per-change line carries service, instance, addr and slot as
    # their own keys, in logfmt and in json; text keeps the line people read
    out = run(bin_path, "render", "-c", config, "-o", env.path("services.cfg"))
    assert out.returncode == 0, out
    env.start_haproxy(env.path("services.cfg"))
    for n, fmt in enumerate(["logfmt", "json"]):
        port = free_port()
        name = "slotsync-" + fmt
        proc = env.start_slotsync(bin_path, config, ["--log-format", fmt], name=name)
        env.wait_log(name, r"in sync|applied", timeout=20, alive=[proc])
        etcd_put(etcd, PREFIX + "web/c%d" % n, "127.0.0.1:%d" % port)
        env.wait_log(name, r"web/s\d+ \(c%d\)" % n, timeout=20, alive=[proc])
        env.stop(proc)
        lines = [line for line in env.log_text(name).splitlines()
                 if not line.startswith("==== ")]  # the harness's header
        if fmt == "logfmt":
            assert lines and all(logfmt.match(line) for line in lines), lines
            change = [line for line in lines if "(c%d)" % n in line]
            assert re.search(r' service=web slot=s\d+ instance=c%d addr=127\.0\.0\.1:%d '
                             r'had="[^"]*" want="[^"]*" drift=false$' % (n, port),
                             change[0]), change
            added = [line for line in lines if "event=added" in line]
            assert added and ' service=web instance=c%d addr=127.0.0.1:%d ' % (n, port) \
                in added[0], added
        else:
            records = [json.loads(line) for line in lines]
            change = [r for r in records if "(c%d)" % n in r["msg"]]
            assert change, records
            assert {k: change[0][k] for k in ("service", "instance", "addr", "drift")} == \
                {"service": "web", "instance": "c%d" % n, "addr": "127.0.0.1:%d" % port,
                 "drift": "false"}, change
            assert re.fullmatch(r"s\d+", change[0]["slot"]), change
            assert change[0]["msg"].startswith("web/%s (c%d): " % (change[0]["slot"], n)), change


# ---- Debian's haproxy.service with the drop-in, started from the render

DEBIAN_HAPROXY_UNIT = "/lib/systemd/system/haproxy.service"


def test_debian_haproxy_unit_starts_from_the_render(env, bin_path):
    """Debian's haproxy.service ExecStart, with $CONFIG, $PIDFILE and the
    drop-in's $EXTRAOPTS expanded as systemd does (split on blanks), and
    the shipped paths moved into a temp dir: it starts from what
    slotsync-render.service wrote with etcd down, its master socket is
    mode 660 group haproxy, and slotsync run then fills the slots."""
    import grp
    import shlex
    from harness import HAPROXY_BIN, REPO, _test_base_config, master_reloads
    if not os.path.exists(DEBIAN_HAPROXY_UNIT):
        from harness import Skip
        raise Skip("no " + DEBIAN_HAPROXY_UNIT)
    unit = parse_unit(DEBIAN_HAPROXY_UNIT)
    dropin = parse_unit(os.path.join(DEPLOY, "systemd", "haproxy-slotsync.conf"))
    render_unit = parse_unit(os.path.join(DEPLOY, "systemd", "slotsync-render.service.in"))
    moved = {"/run/haproxy/master.sock": env.path("master.sock"),
             "/run/haproxy/admin.sock": env.path("admin.sock"),
             "/var/lib/slotsync/services.cfg": env.path("services.cfg"),
             "/etc/slotsync/slotsync.json": env.path("slotsync.json"),
             "@BINDIR@/slotsync": bin_path}

    def move(text):
        for a, b in moved.items():
            text = text.replace(a, b)
        return text

    etcd = env.start_etcd()
    env.etcd.stop()
    write_config(env, {
        "etcd": {"endpoints": [etcd], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "base_config": env.path("haproxy.cfg"),
                    "services_file": env.path("services.cfg")},
        "defaults": {"slots": 2, "server_options": "check inter 500ms"},
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port()}},
    })
    with open(os.path.join(REPO, "haproxy", "haproxy.cfg")) as f:
        env.write("haproxy.cfg", _test_base_config(f.read(), env.path("admin.sock"), free_port()))
    # slotsync-render.service's ExecStart, etcd down
    out = subprocess.run(shlex.split(move(render_unit["Service"]["ExecStart"][0]))
                         + ["--timeout", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--offline-ok: wrote" in out.stderr, out
    # haproxy.service's ExecStart as systemd expands it
    variables = {}
    for line in unit["Service"].get("Environment", []) + dropin["Service"]["Environment"]:
        for assignment in shlex.split(line):
            k, _, v = assignment.partition("=")
            variables[k] = move(v)
    # Debian's own values for these, moved into the temp dir
    assert variables["CONFIG"] == "/etc/haproxy/haproxy.cfg", variables
    variables.update(CONFIG=env.path("haproxy.cfg"), PIDFILE=env.path("haproxy.pid"))
    argv = []
    for word in unit["Service"]["ExecStart"][0].split():
        if word.startswith("$"):
            argv += variables[word[1:]].split()
        else:
            argv.append(word)
    assert argv[0].endswith("/haproxy") and "-f" in argv
    argv[0] = HAPROXY_BIN
    hap = env.spawn("haproxy", argv)
    wait_for(lambda: master_reloads(env.path("master.sock"), timeout=1) is not None,
             alive=[hap], what="HAProxy's master socket")
    st = os.stat(env.path("master.sock"))
    assert st.st_mode & 0o777 == 0o660 and st.st_gid == grp.getgrnam("haproxy").gr_gid

    # From 3.1 the master answers before its worker has read the config and
    # bound the runtime socket (2.6 and 3.0 load it in the master first).
    def backends():
        try:
            return haproxy_cmd(env.path("admin.sock"), "show backend").split()
        except OSError:
            return []
    wait_for(lambda: "web" in backends(), alive=[hap],
             what="backend web on the worker's runtime socket")
    # slotsync.service's ExecStart: fills the slot once etcd is up
    main_unit = parse_unit(os.path.join(DEPLOY, "systemd", "slotsync.service.in"))
    env.etcd.start()
    etcd_put(etcd, PREFIX + "web/a", "127.0.0.1:4444")
    proc = env.spawn("slotsync", shlex.split(move(main_unit["Service"]["ExecStart"][0])))
    wait_for(lambda: re.search(r" web \d+ s1 127\.0\.0\.1 ",
                               haproxy_cmd(env.path("admin.sock"), "show servers state web")),
             timeout=20, alive=[proc, hap], what="slot s1 filled from etcd")
