"""Integration tests of the admin endpoint under abuse and beyond loopback
(issue 20): descriptors that run out (no busy-wait), idle floods that must
not starve syncing, slowloris against the probes, and TLS, mutual TLS and a
bearer token checked with real curl clients. Real etcd, HAProxy and
slotsync on 127.0.0.1; the floods come from 127.0.0.2 and 127.0.0.3 (still
loopback) so that the per-address limit is what keeps the probes' room."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import *
from test_daemon import Cluster

CURL = shutil.which("curl") or "/usr/bin/curl"
PRLIMIT = shutil.which("prlimit") or "/usr/bin/prlimit"
TOKEN = "s3cr3t-token-0123456789abcdef"


def start_limited(c, nofile=None, name="slotsync"):
    """Start c's slotsync, under `prlimit --nofile=N:N` when nofile is
    given; wait for its first sync."""
    argv = [c.bin, "run", "-c", c.config_path]
    if nofile:
        argv = [PRLIMIT, "--nofile=%d:%d" % (nofile, nofile)] + argv
    since = len(c.env.log_text(name))
    c.slotsync = c.env.spawn(name, argv)
    c.env.wait_log(name, r"etcd listing applied", alive=[c.slotsync], since=since)
    c.env.wait_log(name, r"HAProxy state read", alive=[c.slotsync], since=since)
    return c.slotsync


def cluster(env, bin_path, admin=None, nofile=None, **kw):
    port = free_port()
    conf = dict({"listen": "127.0.0.1:%d" % port}, **(admin or {}))
    c = Cluster(env, bin_path, extra={"admin": conf}, start=False, **kw)
    c.admin_port = port
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    start_limited(c, nofile)
    return c


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def curl(*args, timeout=5):
    """Run curl -sS with args; return (exit code, HTTP status or 0, body)."""
    out = subprocess.run([CURL, "-sS", "-o", "-", "-w", "\n%{http_code}"] + list(args),
                         capture_output=True, text=True, timeout=timeout + 5)
    body, _, code = out.stdout.rpartition("\n")
    return out.returncode, int(code or 0), body + out.stderr


def probe(url, timeout=1.0):
    """GET url with a client deadline: (status, body) or (None, reason)."""
    try:
        return http_get(url, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return None, repr(e)


def put_applied(c, instance, backend):
    """Register instance on backend's port; wait until HAProxy serves it."""
    c.put(instance, backend)
    port = c.backends[backend]
    wait_for(lambda: ("127.0.0.1", port) in c.live(), timeout=15,
             what="%s live in HAProxy" % instance, alive=[c.slotsync])


class Flood:
    """Connections to port from source address src: idle ones (connect, send
    nothing) and slowloris ones (a header line every `every` s, never the
    end); each reopened when slotsync closes it, until stop()."""

    def __init__(self, port, src, idle=0, slow=0, every=1.0):
        self.port, self.src, self.every = port, src, every
        self.stop_evt = threading.Event()
        self.reopened = 0
        self.threads = [threading.Thread(target=self._run, args=(False,), daemon=True)
                        for _ in range(idle)]
        self.threads += [threading.Thread(target=self._run, args=(True,), daemon=True)
                         for _ in range(slow)]
        for t in self.threads:
            t.start()

    def _connect(self):
        s = socket.socket()
        s.settimeout(2)
        s.bind((self.src, 0))
        s.connect(("127.0.0.1", self.port))
        return s

    def _run(self, slow):
        s = None
        while not self.stop_evt.is_set():
            try:
                if s is None:
                    s = self._connect()
                    if slow:
                        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                if slow:
                    s.sendall(b"X-a: b\r\n")
                else:
                    # An idle connection: only notice when it is closed.
                    s.settimeout(self.every)
                    try:
                        if s.recv(1) == b"":
                            raise ConnectionError("closed")
                    except socket.timeout:
                        pass
                    continue
            except (OSError, ConnectionError):
                if s is not None:
                    s.close()
                    self.reopened += 1
                s = None
            self.stop_evt.wait(self.every)
        if s is not None:
            s.close()

    def stop(self):
        self.stop_evt.set()
        for t in self.threads:
            t.join(timeout=5)


# ---- item 1: no busy-wait when descriptors run out ----

@timeout(90)
def test_no_busy_wait_when_descriptors_run_out(env, bin_path):
    """With every descriptor in use, a connection to the admin endpoint
    makes accept() fail with EMFILE: the listener rests with a backoff (low
    CPU, a few log lines naming EMFILE), and once descriptors are back a put
    is applied and the endpoint answers. (libmicrohttpd's own accept
    busy-waited here: a core at 100% and 600,000 log lines a second.)"""
    c = cluster(env, bin_path)
    pid = c.slotsync.pid
    base = "http://127.0.0.1:%d" % c.admin_port
    # No request before: libmicrohttpd busy-waited when accept() failed
    # with no connection open ("at FIRST connection").
    wait_for(lambda: re.search(r"file descriptors: (soft limit raised|limit)",
                               env.log_text("slotsync")), what="the nofile line")
    # All descriptors in use: the limit down to what is open now.
    n = open_fds(pid)
    subprocess.run([PRLIMIT, "--pid", str(pid), "--nofile=%d:" % n], check=True)
    since = len(env.log_text("slotsync"))
    client = subprocess.Popen([CURL, "-sS", "--max-time", "2", base + "/metrics"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.wait_log("slotsync", r"cannot accept a connection: out of file descriptors \(EMFILE",
                 alive=[c.slotsync], since=since)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    client.wait(timeout=10)
    wait_for(lambda: time.monotonic() - t0 >= 3, timeout=10, what="3 s watched")
    cpu = cpu_seconds(pid) - cpu0
    wall = time.monotonic() - t0
    log = env.log_text("slotsync")[since:]
    # A spin takes a core (about wall seconds of CPU); resting takes almost none.
    assert cpu < 0.25 * wall, "slotsync used %.2f s of CPU in %.2f s" % (cpu, wall)
    assert "busy waiting" not in log and "similar lines" not in log, log[-2000:]
    assert len(log.splitlines()) < 200, "%d log lines in %.1f s" % (len(log.splitlines()), wall)
    # Descriptors back: the waiting connection is taken, a put is applied.
    subprocess.run([PRLIMIT, "--pid", str(pid), "--nofile=4096:"], check=True)
    put_applied(c, "e1", "w1")
    wait_for(lambda: probe(base + "/healthz")[0] == 200, timeout=10, what="/healthz again")
    code, body = http_get(base + "/metrics")
    assert code == 200
    m = re.search(r'^slotsync_admin_accept_failures_total\{reason="fds"\} (\d+)$', body, re.M)
    assert m and int(m.group(1)) >= 1, body[-1500:]


@timeout(60)
def test_tiny_nofile_refuses_admin_connections_without_spinning(env, bin_path):
    """At --nofile=13:13 (the issue's repro) nothing is left for admin
    clients after syncing's reserve: the start says so, a curl is refused
    without a spin, and a put is still applied."""
    c = cluster(env, bin_path, nofile=13)
    pid = c.slotsync.pid
    env.wait_log("slotsync", r"no file descriptor left for admin connections \(nofile 13",
                 alive=[c.slotsync])
    since = len(env.log_text("slotsync"))
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    subprocess.run([CURL, "-sS", "--max-time", "2", "http://127.0.0.1:%d/metrics"
                    % c.admin_port], capture_output=True, timeout=10)
    put_applied(c, "e1", "w1")
    wait_for(lambda: time.monotonic() - t0 >= 3, timeout=10, what="3 s watched")
    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    log = env.log_text("slotsync")[since:]
    assert cpu < 0.25 * wall, "slotsync used %.2f s of CPU in %.2f s" % (cpu, wall)
    assert "busy waiting" not in log, log[-2000:]
    assert len(log.splitlines()) < 200, log[-2000:]


# ---- item 2: admin clients cannot starve syncing ----

@timeout(90)
def test_idle_flood_at_small_nofile_leaves_syncing_its_descriptors(env, bin_path):
    """At --nofile=64, 150 idle connections to the admin endpoint: slotsync
    holds at most its budget of them, no runtime batch fails for want of a
    descriptor, and puts are applied while the flood goes on. (Before, 44
    idle connections at nofile 24 made batches fail with 'Too many open
    files' until libmicrohttpd's idle timeout.)"""
    c = cluster(env, bin_path, nofile=64)
    pid = c.slotsync.pid
    m = re.search(r"up to (\d+) connections, (\d+) per client address \(nofile 64",
                  env.log_text("slotsync"))
    assert m, env.log_tail("slotsync")
    limit = int(m.group(1))
    assert 0 < limit < 64 - 24
    since = len(env.log_text("slotsync"))
    floods = [Flood(c.admin_port, "127.0.0.2", idle=75), Flood(c.admin_port, "127.0.0.3", idle=75)]
    try:
        wait_for(lambda: sum(f.reopened for f in floods) >= 50, timeout=30,
                 what="the flood pushed past the limit", alive=[c.slotsync])
        assert open_fds(pid) < 64 - 8, open_fds(pid)
        for i, name in enumerate(["w1", "w2", "w3"]):
            put_applied(c, "e%d" % i, name)
        assert probe("http://127.0.0.1:%d/healthz" % c.admin_port)[0] == 200
    finally:
        for f in floods:
            f.stop()
    log = env.log_text("slotsync")[since:]
    assert "Too many open files" not in log and "out of file descriptors" not in log, \
        [l for l in log.splitlines() if "file" in l][:10]


# ---- item 3: slowloris and idle floods do not lock out the probes ----

@timeout(90)
def test_probes_answer_under_slowloris_and_idle_flood(env, bin_path):
    """70 slowloris connections (a header line a second, never the end) and
    300 idle ones, from three other loopback addresses: for 8 s (longer than
    the header deadline) /healthz and /readyz answer within a 1 s client
    deadline every time, a put is applied, and the slowloris connections are
    closed by the whole-request deadline, not kept by their trickle."""
    c = cluster(env, bin_path)
    base = "http://127.0.0.1:%d" % c.admin_port
    wait_for(lambda: probe(base + "/readyz")[0] == 200, what="/readyz 200")
    # 127.0.0.2 and .3 hold more than one address's share (they churn among
    # their own connections); .4's few slowloris connections fit in its
    # share, so only the header deadline closes them.
    floods = [Flood(c.admin_port, "127.0.0.2", slow=60, every=1.0),
              Flood(c.admin_port, "127.0.0.3", idle=300, every=1.0),
              Flood(c.admin_port, "127.0.0.4", slow=10, every=1.0)]
    try:
        time.sleep(1.0)  # let the flood arrive before probing (the waits below are bounded)
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < 8:
            for path in ("/healthz", "/readyz"):
                code, body = probe(base + path, timeout=1.0)
                assert code == 200, "%s: %s after %.1f s" % (path, body, time.monotonic() - t0)
                n += 1
            time.sleep(0.2)
        put_applied(c, "e1", "w1")
        code, body = http_get(base + "/metrics")
    finally:
        for f in floods:
            f.stop()
    m = re.search(r'^slotsync_admin_connections_closed_total\{reason="header_deadline"\} (\d+)$',
                  body, re.M)
    assert m and int(m.group(1)) > 0, body[-1500:]
    m = re.search(r'^slotsync_admin_connections_closed_total\{reason="evicted"\} (\d+)$',
                  body, re.M)
    assert m and int(m.group(1)) > 0, body[-1500:]
    assert n >= 10


# ---- item 4: TLS, mutual TLS, bearer token ----

def make_cert(pki, name, cn, ext, expired=False):
    """A leaf signed by pki's CA: (cert, key) paths; expired: valid only
    on 2020-01-01 (openssl ca with explicit dates)."""
    cert, key = os.path.join(pki.dir, name + ".pem"), os.path.join(pki.dir, name + ".key")
    csr, extfile = cert + ".csr", cert + ".ext"
    with open(extfile, "w") as f:
        f.write(ext)
    pki._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    if not expired:
        pki._run("x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extfile)
    else:
        db = os.path.join(pki.dir, "ca-db")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as f:
            f.write("1000\n")
        cnf = os.path.join(db, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                    "serial = %s/serial\ndefault_md = sha256\npolicy = p\n"
                    "[p]\ncommonName = supplied\n" % (db, db, db))
        pki._run("ca", "-batch", "-config", cnf, "-cert", pki.ca, "-keyfile", pki.ca_key,
                 "-in", csr, "-out", cert, "-startdate", "20200101000000Z", "-enddate",
                 "20200102000000Z", "-extfile", extfile, "-notext")
    os.chmod(key, 0o600)
    return cert, key


def write_token(env, text, name="admin.token"):
    path = env.path(name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


@timeout(90)
def test_admin_tls_and_token_with_curl(env, bin_path):
    """admin.tls + admin.token_file: curl with the right CA and token gets
    /metrics; a wrong CA and an expired server certificate fail the
    handshake; a missing or wrong token is refused (401, counted, never
    logged); /healthz and /readyz stay open; SIGHUP takes a new token."""
    pki = TlsFiles(env)
    token_file = write_token(env, TOKEN)
    c = cluster(env, bin_path, admin={
        "tls": {"cert_file": pki.server_cert, "key_file": pki.server_key},
        "token_file": token_file})
    url = "https://127.0.0.1:%d" % c.admin_port
    ok = ["--cacert", pki.ca, "--max-time", "3"]
    rc, code, body = curl(*ok, "-H", "Authorization: Bearer " + TOKEN, url + "/metrics")
    assert (rc, code) == (0, 200) and "slotsync_admin_connections" in body, body[:500]
    assert curl(*ok, url + "/healthz")[:2] == (0, 200)
    wait_for(lambda: curl(*ok, url + "/readyz")[:2] == (0, 200), what="/readyz over TLS")
    # Plain HTTP to the TLS port is no way in.
    assert probe("http://127.0.0.1:%d/metrics" % c.admin_port)[0] != 200
    # Wrong CA: curl refuses the server (60: peer certificate cannot be verified).
    assert curl("--cacert", pki.other_ca, "--max-time", "3", url + "/healthz")[0] == 60
    # Missing and wrong tokens.
    rc, code, body = curl(*ok, url + "/metrics")
    assert code == 401 and "token" in body, body
    rc, code, body = curl(*ok, "-H", "Authorization: Bearer wrong-" + TOKEN, url + "/status")
    assert code == 401, body
    rc, code, body = curl(*ok, "-H", "Authorization: Basic " + TOKEN, url + "/")
    assert code == 401, body
    rc, code, body = curl(*ok, "-H", "Authorization: Bearer " + TOKEN, url + "/metrics")
    for reason, n in (("no_token", 2), ("wrong_token", 1)):
        assert re.search(r'^slotsync_admin_refused_requests_total\{reason="%s"\} %d$'
                         % (reason, n), body, re.M), body[-1500:]
    log = env.log_text("slotsync")
    assert "refused /metrics from 127.0.0.1: no_token" in log
    assert TOKEN not in log, "the token is in the log"
    # SIGHUP: a rotated token replaces the old one.
    new = "rotated-token-fedcba9876543210"
    write_token(env, new)
    since = len(env.log_text("slotsync"))
    c.slotsync.send_signal(signal.SIGHUP)
    env.wait_log("slotsync", r"SIGHUP: admin token and TLS files read again",
                 alive=[c.slotsync], since=since)
    assert curl(*ok, "-H", "Authorization: Bearer " + TOKEN, url + "/metrics")[1] == 401
    assert curl(*ok, "-H", "Authorization: Bearer " + new, url + "/metrics")[1] == 200
    assert new not in env.log_text("slotsync")
    # SIGHUP: a rotated certificate is served on the same port.
    cert, key = make_cert(pki, "rotated", "admin-rotated",
                          "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    shutil.copyfile(cert, pki.server_cert)
    shutil.copyfile(key, pki.server_key)
    since = len(env.log_text("slotsync"))
    c.slotsync.send_signal(signal.SIGHUP)
    env.wait_log("slotsync", r"SIGHUP: admin token and TLS files read again",
                 alive=[c.slotsync], since=since)
    rc, code, body = curl(*ok, "-v", url + "/healthz")
    assert (rc, code) == (0, 200) and "CN=admin-rotated" in body, body[-1500:]


@timeout(90)
def test_admin_expired_server_certificate_is_refused_by_curl(env, bin_path):
    """An expired admin certificate: curl (right CA) refuses the handshake."""
    pki = TlsFiles(env)
    cert, key = make_cert(pki, "expired", "admin.test",
                          "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
                          expired=True)
    c = cluster(env, bin_path, admin={"tls": {"cert_file": cert, "key_file": key}})
    rc, code, body = curl("--cacert", pki.ca, "--max-time", "3",
                          "https://127.0.0.1:%d/healthz" % c.admin_port)
    assert rc == 60 and "expired" in body.lower(), (rc, body)
    assert re.search(r"admin.tls.cert_file .*: the certificate expired \d+ days ago",
                     env.log_text("slotsync")), env.log_tail("slotsync")


@timeout(90)
def test_admin_mutual_tls_with_curl(env, bin_path):
    """admin.tls.client_ca_file: protected paths need a client certificate
    the client CA signed and valid now; without one (or with an expired
    one, or one from another CA) they get 403; the probes stay open."""
    pki = TlsFiles(env)
    other = TlsFiles(env, name="other-pki")
    expired_cert, expired_key = make_cert(pki, "client-expired", "old",
                                          "extendedKeyUsage=clientAuth\n", expired=True)
    c = cluster(env, bin_path, admin={
        "tls": {"cert_file": pki.server_cert, "key_file": pki.server_key,
                "client_ca_file": pki.ca}})
    url = "https://127.0.0.1:%d" % c.admin_port
    ok = ["--cacert", pki.ca, "--max-time", "3"]
    rc, code, body = curl(*ok, "--cert", pki.client_cert, "--key", pki.client_key,
                          url + "/metrics")
    assert (rc, code) == (0, 200), (rc, code, body[:300])
    assert curl(*ok, url + "/healthz")[:2] == (0, 200)
    rc, code, body = curl(*ok, url + "/metrics")
    assert code == 403 and "client certificate is required" in body, (rc, code, body)
    rc, code, body = curl(*ok, "--cert", expired_cert, "--key", expired_key, url + "/status")
    assert code == 403 or rc != 0, (rc, code, body)
    rc, code, body = curl(*ok, "--cert", other.client_cert, "--key", other.client_key,
                          url + "/status")
    assert code == 403 or rc != 0, (rc, code, body)
    body = curl(*ok, "--cert", pki.client_cert, "--key", pki.client_key, url + "/metrics")[2]
    assert re.search(r'^slotsync_admin_refused_requests_total\{reason="no_client_cert"\} 1$',
                     body, re.M), body[-1500:]


def test_admin_bad_protection_values_are_named(env, bin_path):
    """Each bad admin.* field is refused at start with its name."""
    pki = TlsFiles(env)
    short = write_token(env, "short", name="short.token")
    cases = [
        ({"tls": {"cert_file": pki.server_cert}}, "admin.tls.key_file: required"),
        ({"tls": {"cert_file": pki.server_cert, "key_file": pki.server_key, "ca": "x"}},
         "admin.tls.ca: unknown key"),
        ({"protected_paths": ["/metrics"]}, "admin.protected_paths: needs admin.token_file"),
        ({"token_file": short, "protected_paths": ["/nope"]}, "admin.protected_paths[0]"),
        ({"token_file": short}, "admin.token_file %s: the token" % short),
        ({"token_file": env.path("missing.token")}, "admin.token_file %s" % env.path(
            "missing.token")),
    ]
    for admin, expect in cases:
        port = free_port()
        cfg = write_config(env, {
            "etcd": {"endpoints": ["http://127.0.0.1:1"], "prefix": "/services/"},
            "haproxy": {"runtime_socket": env.path("admin.sock"),
                        "services_file": env.path("services.cfg")},
            "admin": dict({"listen": "127.0.0.1:%d" % port}, **admin)}, name="bad.json")
        out = subprocess.run([bin_path, "run", "-c", cfg], capture_output=True, text=True,
                             timeout=20)
        assert out.returncode != 0 and expect in out.stderr, (admin, out.returncode,
                                                             out.stderr[-800:])


@timeout(90)
def test_etcd_reconnect_out_of_descriptors_is_named(env, bin_path):
    """etcd restarts while slotsync has no descriptor left: the reconnect's
    socket() fails with EMFILE, and the log says "out of file descriptors"
    rather than "Couldn't connect to server" (which pointed at a healthy
    etcd); with descriptors back, the sync resumes and a put is applied."""
    c = cluster(env, bin_path)
    pid = c.slotsync.pid
    since = len(env.log_text("slotsync"))
    env.etcd.stop()
    env.wait_log("slotsync", r"sync /services/: ", alive=[c.slotsync], since=since)
    # Below what is open: every new descriptor fails.
    subprocess.run([PRLIMIT, "--pid", str(pid), "--nofile=3:"], check=True)
    env.etcd.start()
    env.wait_log("slotsync", r"out of file descriptors \(EMFILE", timeout=20,
                 alive=[c.slotsync], since=since)
    subprocess.run([PRLIMIT, "--pid", str(pid), "--nofile=4096:"], check=True)
    put_applied(c, "e1", "w1")
    log = env.log_text("slotsync")[since:]
    assert "Couldn't connect to server" not in log[log.find("EMFILE"):], log[-2000:]
    assert not [l for l in log.splitlines() if "out of file descriptors" in l
                and "etcd still unreachable" in l], log[-2000:]
