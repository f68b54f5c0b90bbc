"""etcd username/password authentication (issue 11): etcd with auth enabled
and --auth-token-ttl 3, a read-only user for the daemon, a readwrite user for
announce; tokens that expire or vanish (etcd restart) are replaced without
losing the watch position; wrong credentials fail clearly; the password and
the token never appear in any output."""

import os
import re
import signal
import subprocess
import time

from harness import *

PREFIX = "/services/"
ROOT = "root:r00t-secret-pw"
DAEMON_PW = "d43mon-secret-pw"
ANNOUNCE_PW = "ann0unce-secret-pw"
# etcd's simple tokens: 16 letters, a dot, a counter
TOKEN_RE = re.compile(r"\b[A-Za-z]{16}\.[0-9]+\b")


def start_auth_etcd(env):
    url = env.start_etcd(extra_args=["--auth-token-ttl", "3"])
    ctl = lambda *a, **kw: etcdctl(url, *a, user=ROOT, **kw)
    etcdctl(url, "user", "add", ROOT)
    etcdctl(url, "auth", "enable")
    env.etcd.user = ROOT
    ctl("role", "add", "reader")
    ctl("role", "grant-permission", "--prefix=true", "reader", "read", PREFIX)
    ctl("user", "add", "daemon:" + DAEMON_PW)
    ctl("user", "grant-role", "daemon", "reader")
    ctl("role", "add", "writer")
    ctl("role", "grant-permission", "--prefix=true", "writer", "readwrite", PREFIX)
    ctl("user", "add", "announcer:" + ANNOUNCE_PW)
    ctl("user", "grant-role", "announcer", "writer")
    return url, ctl


def password_file(env, name, password):
    path = env.write(name, password + "\n")
    os.chmod(path, 0o600)
    return path


def daemon_config(env, etcd, pwfile, user="daemon"):
    return {
        "etcd": {"endpoints": [etcd], "prefix": PREFIX, "username": user,
                 "password_file": pwfile},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "master_socket": env.path("master.sock"),
                    "services_file": env.path("services.cfg")},
        "defaults": {"slots": 2, "server_options": "check inter 500ms fall 1 rise 1"},
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port()}},
        "admin": {"listen": "127.0.0.1:%d" % free_port()},
        "log_level": "debug",
    }


def assert_no_secrets(texts):
    for where, text in texts.items():
        for secret in (DAEMON_PW, ANNOUNCE_PW, ROOT.split(":")[1]):
            assert secret not in text, "password in %s" % where
        m = TOKEN_RE.search(text)
        assert not m, "token-like %r in %s" % (m.group(0), where)


def in_haproxy(hap, port):
    return any(r["srv_port"] == str(port) and int(r["srv_admin_state"]) & 0x23 == 0
               for r in hap.servers_state("web"))


def test_auth_run_survives_token_expiry_and_etcd_restart(env, bin_path):
    etcd, ctl = start_auth_etcd(env)
    pw = password_file(env, "daemon.pw", DAEMON_PW)
    cfg = daemon_config(env, etcd, pw)
    path = write_config(env, cfg)
    out = subprocess.run([bin_path, "render", "-c", path], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    hap = env.start_haproxy(env.path("services.cfg"))
    proc = env.start_slotsync(bin_path, path)
    env.wait_log("slotsync", r"etcd listing applied", alive=[proc])
    _, p1 = env.start_whoami("w1")
    ctl("put", PREFIX + "web/w1", "127.0.0.1:%d" % p1)
    wait_for(lambda: in_haproxy(hap, p1), timeout=10, alive=[proc], what="w1 in HAProxy")

    # the token's TTL is 3 s: let it expire, then change something
    time.sleep(4)
    _, p2 = env.start_whoami("w2")
    ctl("put", PREFIX + "web/w2", "127.0.0.1:%d" % p2)
    wait_for(lambda: in_haproxy(hap, p2), timeout=10, alive=[proc],
             what="w2 in HAProxy after the token expired")

    # a restarted etcd knows no token: the watch reconnects, is refused,
    # authenticates again and resumes where it was (no second listing)
    env.etcd.stop()
    env.etcd.start()
    _, p3 = env.start_whoami("w3")
    ctl("put", PREFIX + "web/w3", "127.0.0.1:%d" % p3)
    wait_for(lambda: in_haproxy(hap, p3), timeout=20, alive=[proc],
             what="w3 in HAProxy after etcd restarted")
    log = env.log_text("slotsync")
    assert len(re.findall(r"sync: etcd listing applied", log)) == 1, log

    # status reads etcd with the same credentials (a read-only user), and
    # neither it nor the admin endpoint shows a secret
    st = subprocess.run([bin_path, "status", "-c", path, "--json"], capture_output=True,
                        text=True, timeout=30)
    assert st.returncode in (0, 1), st.stderr
    assert "127.0.0.1:%d" % p3 in st.stdout or '"port": %d' % p3 in st.stdout, st.stdout
    admin = "http://%s" % cfg["admin"]["listen"]
    pages = {}
    for page in ("/", "/status", "/metrics", "/healthz", "/readyz"):
        code, body = http_get(admin + page)
        assert code == 200, (page, code, body)
        pages["admin " + page] = body
    assert_no_secrets(dict(pages, **{"slotsync.log": log, "render": out.stdout + out.stderr,
                                     "status": st.stdout + st.stderr}))


def test_auth_announce_keeps_lease_across_token_expiry(env, bin_path):
    etcd, ctl = start_auth_etcd(env)
    pw = password_file(env, "announce.pw", ANNOUNCE_PW)
    key = PREFIX + "web/a1"
    proc = env.spawn("announce", [bin_path, "announce", "--etcd", etcd, "--key", key,
                                  "--addr", "127.0.0.1:9", "--ttl", "3", "--user", "announcer",
                                  "--password-file", pw, "--log-level", "debug"])

    def lease():
        out = ctl("get", key, "-w", "json")
        m = re.search(r'"lease":(\d+)', out.stdout)
        return m and m.group(1)
    first = wait_for(lease, timeout=10, alive=[proc], what="the key registered")
    time.sleep(5)  # longer than the lease TTL and the token TTL
    assert lease() == first, env.log_tail("announce")
    proc.send_signal(signal.SIGTERM)
    assert env.wait_exit(proc, timeout=10) == 0, env.log_tail("announce")
    assert ctl("get", key, "--print-value-only").stdout.strip() == ""
    assert_no_secrets({"announce.log": env.log_text("announce")})


def test_auth_wrong_password_fails_clearly(env, bin_path):
    etcd, ctl = start_auth_etcd(env)
    pw = password_file(env, "wrong.pw", "not-the-password")
    path = write_config(env, daemon_config(env, etcd, pw))
    out = subprocess.run([bin_path, "render", "-c", path, "--timeout", "20"],
                         capture_output=True, text=True, timeout=40)
    assert out.returncode != 0, out.stderr
    assert "authentication as user daemon failed" in out.stderr, out.stderr
    assert etcd[len("http://"):] in out.stderr, out.stderr
    assert "did not answer within" not in out.stderr, out.stderr

    out2 = subprocess.run([bin_path, "check", "-c", path, "--connect"], capture_output=True,
                          text=True, timeout=40)
    assert out2.returncode == 1 and "authentication as user daemon failed" in out2.stdout, \
        out2.stdout + out2.stderr

    # a read-only user cannot write: announce as the daemon's user fails
    # clearly and keeps retrying with backoff
    good = password_file(env, "daemon.pw", DAEMON_PW)
    bad = env.spawn("announce-ro", [bin_path, "announce", "--etcd", etcd, "--key",
                                    PREFIX + "web/x", "--addr", "127.0.0.1:9", "--user", "daemon",
                                    "--password-file", good])
    env.wait_log("announce-ro", r"permission denied", alive=[bad])
    env.stop(bad)
    assert_no_secrets({"render": out.stdout + out.stderr, "check": out2.stdout + out2.stderr,
                       "announce-ro.log": env.log_text("announce-ro")})


def test_auth_announce_password_rotated_on_sighup(env, bin_path):
    """The user's password changed with etcdctl, the file replaced, SIGHUP:
    announce authenticates with the new one and its lease survives token
    expiry; an unreadable file on SIGHUP keeps the password in use."""
    etcd, ctl = start_auth_etcd(env)
    pw = password_file(env, "announce.pw", ANNOUNCE_PW)
    new_pw = "r0tated-secret-pw"
    key = PREFIX + "web/a1"
    proc = env.spawn("announce", [bin_path, "announce", "--etcd", etcd, "--key", key,
                                  "--addr", "127.0.0.1:9", "--ttl", "10", "--user", "announcer",
                                  "--password-file", pw, "--log-level", "debug"])

    def lease():
        out = ctl("get", key, "-w", "json")
        m = re.search(r'"lease":(\d+)', out.stdout)
        return m and m.group(1)
    first = wait_for(lease, timeout=10, alive=[proc], what="the key registered")

    # a missing file: an error line, the password in use is kept
    os.rename(pw, pw + ".away")
    proc.send_signal(signal.SIGHUP)
    env.wait_log("announce", r"SIGHUP: password not read again, keeping the one in use: "
                 r"password file .*announce\.pw: No such file", alive=[proc])
    os.rename(pw + ".away", pw)

    ctl("user", "passwd", "announcer", "--interactive=false", input=new_pw + "\n")
    env.write("announce.pw", new_pw + "\n")
    os.chmod(pw, 0o644)  # readable by others: a warning, as at start
    proc.send_signal(signal.SIGHUP)
    env.wait_log("announce", r"SIGHUP: read again: password", alive=[proc])
    env.wait_log("announce", r"--password-file .*announce\.pw is readable by group or others",
                 alive=[proc])
    # longer than the token TTL (3 s): renewals need tokens the new password
    # gave; the lease (10 s) is the first one
    time.sleep(7)
    assert proc.poll() is None and lease() == first, env.log_tail("announce")
    # (a renewal between etcdctl's change and the SIGHUP may fail with the
    # old password: only what follows the reload counts)
    after = env.log_text("announce").split("SIGHUP: read again: password", 1)[1]
    assert "authentication as user" not in after, env.log_tail("announce")
    proc.send_signal(signal.SIGTERM)
    assert env.wait_exit(proc, timeout=10) == 0, env.log_tail("announce")
    assert ctl("get", key, "--print-value-only").stdout.strip() == ""
    log = env.log_text("announce")
    assert new_pw not in log, "the new password in announce.log"
    assert_no_secrets({"announce.log": log})
