"""etcd over TLS with client certificates (issue 11): certificates made by
the test with openssl, etcd with --client-cert-auth, slotsync run, render,
check and announce against it."""

import os
import re
import signal
import subprocess
import time

from harness import *

PREFIX = "/services/"


def tls_config(env, etcd, tls, services_file, extra_tls=None, endpoints=None):
    t = {"ca_file": tls.ca, "cert_file": tls.client_cert, "key_file": tls.client_key}
    t.update(extra_tls or {})
    t = {k: v for k, v in t.items() if v is not None}
    return {
        "etcd": {"endpoints": endpoints or [etcd], "prefix": PREFIX, "tls": t},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "services_file": services_file},
        "defaults": {"slots": 2, "server_options": "check inter 500ms fall 1 rise 1"},
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port()}},
        "log_level": "debug",
    }


def render(env, bin_path, config, name, timeout=10):
    path = write_config(env, config, name=name + ".json")
    return subprocess.run([bin_path, "render", "-c", path, "--timeout", str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 20)


def test_tls_run_applies_etcdctl_puts(env, bin_path):
    """etcd with --client-cert-auth; render, then run applies a put made
    with etcdctl and a delete."""
    tls = TlsFiles(env)
    etcd = env.start_etcd(tls=tls)
    assert etcd.startswith("https://")
    _, port = env.start_whoami("w1")
    services = env.path("services.cfg")
    config = tls_config(env, etcd, tls, services)
    out = render(env, bin_path, config, "run")
    assert out.returncode == 0, out.stderr
    hap = env.start_haproxy(services)
    proc = env.start_slotsync(bin_path, env.path("run.json"))
    env.wait_log("slotsync", r"etcd listing applied", alive=[proc])

    etcdctl(etcd, "put", PREFIX + "web/w1", "127.0.0.1:%d" % port, tls=tls)

    def ready():
        rows = [r for r in hap.servers_state("web") if r["srv_addr"] == "127.0.0.1"]
        return rows and rows[0]["srv_port"] == str(port) and int(rows[0]["srv_admin_state"]) & 0x23 == 0
    wait_for(ready, timeout=10, alive=[proc], what="w1 ready in HAProxy")

    etcdctl(etcd, "del", PREFIX + "web/w1", tls=tls)
    wait_for(lambda: not any(r["srv_addr"] == "127.0.0.1" for r in hap.servers_state("web")),
             timeout=10, alive=[proc], what="w1 gone from HAProxy")
    assert "TLS" not in env.log_text("slotsync")


def test_tls_errors_are_clear_and_name_the_endpoint(env, bin_path):
    """Wrong CA, no client certificate, a name mismatch: render fails at once
    with a message that says which and names the endpoint; server_name
    fixes the name; check --connect reports the same."""
    tls = TlsFiles(env)
    etcd = env.start_etcd(tls=tls)
    hostport = etcd[len("https://"):]
    services = env.path("services.cfg")

    cases = [
        ("wrong-ca", {"ca_file": tls.other_ca}, None, "not signed by a trusted CA"),
        ("no-client-cert", {"cert_file": None, "key_file": None}, None,
         "requires a client certificate and none is configured"),
        ("name-mismatch", {"server_name": "wrong.test"}, None, "not valid for this host name"),
    ]
    for name, extra, endpoints, want in cases:
        config = tls_config(env, etcd, tls, services, extra_tls=extra, endpoints=endpoints)
        out = render(env, bin_path, config, name, timeout=30)
        assert out.returncode != 0, (name, out.stderr)
        assert "TLS: " in out.stderr and want in out.stderr, (name, out.stderr)
        assert hostport in out.stderr, (name, out.stderr)
        assert "did not answer within" not in out.stderr, (name, out.stderr)

    # the certificate holds etcd.test: that name verifies against 127.0.0.1
    config = tls_config(env, etcd, tls, services, extra_tls={"server_name": "etcd.test"})
    out = render(env, bin_path, config, "server-name")
    assert out.returncode == 0, out.stderr

    # a key readable by others is used, with a warning
    os.chmod(tls.client_key, 0o644)
    out = render(env, bin_path, tls_config(env, etcd, tls, services), "open-key")
    assert out.returncode == 0, out.stderr
    assert "readable by group or others" in out.stderr, out.stderr
    os.chmod(tls.client_key, 0o600)

    # a missing file is an error naming it, before any connection
    config = tls_config(env, etcd, tls, services, extra_tls={"ca_file": env.path("nope.pem")})
    out = render(env, bin_path, config, "missing-ca")
    assert out.returncode != 0 and "nope.pem" in out.stderr, out.stderr


def test_tls_announce_registers_and_withdraws(env, bin_path):
    tls = TlsFiles(env)
    etcd = env.start_etcd(tls=tls)
    key = PREFIX + "web/a1"
    proc = env.spawn("announce", [bin_path, "announce", "--etcd", etcd, "--key", key,
                                  "--addr", "127.0.0.1:9", "--ttl", "3", "--cacert", tls.ca,
                                  "--cert", tls.client_cert, "--key-file", tls.client_key])

    def value():
        out = etcdctl(etcd, "get", key, "--print-value-only", tls=tls)
        return out.stdout.strip()
    wait_for(lambda: value() == '{"host":"127.0.0.1","port":9}', timeout=10, alive=[proc],
             what="the key registered over TLS")
    proc.send_signal(signal.SIGTERM)
    assert env.wait_exit(proc, timeout=10) == 0, env.log_tail("announce")
    assert value() == ""

    # without a client certificate: a clear error, not a silent retry loop
    bad = env.spawn("announce-nocert", [bin_path, "announce", "--etcd", etcd, "--key", key,
                                        "--addr", "127.0.0.1:9", "--cacert", tls.ca])
    env.wait_log("announce-nocert", r"TLS: .*requires a client certificate", alive=[bad])
    env.stop(bad)


def test_check_connect_reports_each_endpoint(env, bin_path):
    tls = TlsFiles(env)
    etcd = env.start_etcd(tls=tls)
    services = env.path("services.cfg")
    path = write_config(env, tls_config(env, etcd, tls, services), name="good.json")
    # --connect also asks HAProxy's runtime socket its level (issue 19)
    hap = env.start_haproxy()  # an empty services file of its own
    out = subprocess.run([bin_path, "check", "-c", path, "--connect"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "%s: ok (revision " % etcd in out.stdout, out.stdout
    assert "%s: ok (level admin)" % hap.admin_sock in out.stdout, out.stdout

    # a second endpoint that refuses connections, and the wrong CA
    dead = "https://127.0.0.1:%d" % free_port()
    config = tls_config(env, etcd, tls, services, extra_tls={"ca_file": tls.other_ca},
                        endpoints=[etcd, dead])
    path = write_config(env, config, name="bad.json")
    out = subprocess.run([bin_path, "check", "-c", path, "--connect", "--timeout", "5"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not signed by a trusted CA" in out.stdout and dead in out.stdout, out.stdout
    assert "2 of 2 etcd endpoints failed" in out.stderr, out.stderr


def test_tls_files_read_again_on_sighup(env, bin_path):
    """run starts with the wrong CA in ca_file: TLS errors, retried; the
    right CA is written to the same path and SIGHUP picks it up."""
    tls = TlsFiles(env)
    etcd = env.start_etcd(tls=tls)
    _, port = env.start_whoami("w1")
    services = env.path("services.cfg")
    ca_path = env.path("rotating-ca.pem")
    with open(tls.other_ca) as f:
        env.write("rotating-ca.pem", f.read())
    config = tls_config(env, etcd, tls, services, extra_tls={"ca_file": ca_path})
    env.write("services.cfg", "")
    hap = env.start_haproxy(services)
    path = write_config(env, config, name="run.json")
    proc = env.start_slotsync(bin_path, path)
    env.wait_log("slotsync", r"not signed by a trusted CA", alive=[proc])
    etcdctl(etcd, "put", PREFIX + "web/w1", "127.0.0.1:%d" % port, tls=tls)

    with open(tls.ca) as f:
        env.write("rotating-ca.pem", f.read())
    proc.send_signal(signal.SIGHUP)
    env.wait_log("slotsync", r"etcd TLS files read again", alive=[proc])
    env.wait_log("slotsync", r"etcd listing applied", alive=[proc], timeout=20)
    wait_for(lambda: any(r["srv_port"] == str(port) for r in hap.servers_state("web")),
             timeout=15, alive=[proc], what="w1 in HAProxy after the CA was rotated")


def test_tls_announce_rotates_ca_on_sighup(env, bin_path):
    """announce runs with CA A's client certificate; a file that cannot be
    used on SIGHUP keeps the old ones; etcd restarted with CA B's
    certificates, announce's files replaced and SIGHUP sent: announce stays
    up and keeps (or gains again) its registration."""
    a, b = TlsFiles(env), TlsFiles(env, name="pki-b")
    etcd = env.start_etcd(tls=a)
    key = PREFIX + "web/a1"
    files = {"ca": "ann-ca.pem", "cert": "ann-cert.pem", "key": "ann-key.pem"}

    def install(pki):
        for src, dst in ((pki.ca, files["ca"]), (pki.client_cert, files["cert"]),
                         (pki.client_key, files["key"])):
            with open(src) as f:
                os.chmod(env.write(dst, f.read()), 0o600)
    install(a)
    proc = env.spawn("announce", [bin_path, "announce", "--etcd", etcd, "--key", key,
                                  "--addr", "127.0.0.1:9", "--ttl", "3",
                                  "--cacert", env.path(files["ca"]),
                                  "--cert", env.path(files["cert"]),
                                  "--key-file", env.path(files["key"])])

    def value(pki):
        out = etcdctl(etcd, "get", key, "--print-value-only", tls=pki, check=False)
        return out.stdout.strip()
    want = '{"host":"127.0.0.1","port":9}'
    wait_for(lambda: value(a) == want, timeout=10, alive=[proc], what="registered with CA A")

    # an empty key file and a CA file that is not PEM: refused, the files in
    # use are kept, and the registration goes on
    env.write(files["key"], "")
    proc.send_signal(signal.SIGHUP)
    env.wait_log("announce", r"SIGHUP: TLS files not read again, keeping the ones in use: "
                 r"key file .*ann-key\.pem: empty", alive=[proc])
    install(a)
    env.write(files["ca"], "not a certificate\n")
    proc.send_signal(signal.SIGHUP)
    env.wait_log("announce", r"SIGHUP: TLS files not read again, keeping the ones in use: "
                 r"CA file .*ann-ca\.pem: not PEM", alive=[proc])
    install(a)
    mark = len(env.log_text("announce"))
    # keep-alives every TTL/3 = 1 s still pass with the material in use
    time.sleep(2.5)
    assert proc.poll() is None and value(a) == want, env.log_tail("announce")
    assert "TLS: " not in env.log_text("announce")[mark:], env.log_tail("announce")

    # CA B: etcd restarted with it; announce now fails the handshake
    env.etcd.stop()
    env.etcd.tls = b
    env.etcd.start()
    # While etcd is unreachable announce logs one line, then "still
    # unreachable" at the first retry past 10 s (retries up to 5 s apart):
    # the handshake error shows up to about 15 s after the outage began.
    env.wait_log("announce", r"TLS: ", alive=[proc], timeout=30, since=mark)

    # rotated files, SIGHUP: registered again under CA B (a key readable by
    # others is used, with a warning, as at start)
    install(b)
    os.chmod(env.path(files["key"]), 0o644)
    proc.send_signal(signal.SIGHUP)
    env.wait_log("announce", r"SIGHUP: read again: TLS files", alive=[proc])
    assert re.search(r"key file .*ann-key\.pem is readable by group or others",
                     env.log_text("announce")), env.log_tail("announce")
    wait_for(lambda: value(b) == want, timeout=20, alive=[proc],
             what="registered again under CA B")
    time.sleep(3.5)  # longer than the lease TTL: renewals go on under CA B
    assert proc.poll() is None and value(b) == want, env.log_tail("announce")
    proc.send_signal(signal.SIGTERM)
    assert env.wait_exit(proc, timeout=10) == 0, env.log_tail("announce")
    assert value(b) == ""
