"""harness - the shared library of the slotsync integration tests.

Tests start real processes (etcd, haproxy, whoami backends, slotsync) on
127.0.0.1 only, wait on conditions, and always clean up. Standard library
only; run with /usr/bin/python3.

Writing a test
--------------
A test is a top-level function named test_* in integration/test_*.py. The
runner (integration/run.py) passes arguments by parameter name:

    env       a fresh Env (temporary directory + process registry), closed
              after the test whatever happens
    bin_path  the slotsync binary given with --bin (alias: bin)

    from harness import *

    def test_backend_answers(env, bin_path):
        etcd = env.start_etcd()
        etcd_put(etcd, "/slotsync/services/api/a", '{"addr": "127.0.0.1:8080"}')
        proc, port = env.start_whoami("a")
        status, body = http_get("http://127.0.0.1:%d/" % port)
        assert (status, body) == (200, "a\\n")

The default time limit is 120 s per test (SLOTSYNC_TEST_TIMEOUT overrides
it); @timeout(300) on a test, or TIMEOUT = 300 in its module, changes it.
Raise Skip("why") to skip. On failure the runner prints the traceback and the
last 40 lines of every log in the test's directory.

Set KEEP_TMP=1 to keep the temporary directories (their paths are printed).

Only 127.0.0.0/8 addresses may ever reach HAProxy: etcd_put() refuses keys
and values that contain another IPv4 address, and start_haproxy() refuses configuration
files that do (0.0.0.0 is allowed there, as a placeholder).

Waiting
-------
free_port(host="127.0.0.1") -> int
    A port nothing listens on right now (bind to port 0). Ports handed out
    are not handed out again by this process.
wait_for(predicate, timeout=10, interval=0.02, what=None, alive=()) -> value
    Calls predicate() until it returns something true and returns that.
    Exceptions from predicate count as "not yet" (the last one is quoted in
    the error). Raises WaitTimeout("timed out after 10s waiting for <what>").
    alive: processes (Popen) that must keep running; if one exits, raises
    ProcessDied at once instead of waiting for the timeout.

Env - one test's world (also a context manager: `with Env("demo") as env`)
---
env.tmp                      the temporary directory
env.path(*parts) -> str      a path inside env.tmp
env.write(relpath, text) -> str   write a file in env.tmp, return its path
env.spawn(name, argv, env=None, log=True, cwd=None, unset=()) -> Popen
    Starts argv in a new session, stdin from /dev/null, stdout and stderr
    appended to <tmp>/<name>.log (log=False: /dev/null), cwd env.tmp.
    env: variables added to the inherited environment; unset: names to
    remove ("ETCD*" removes a prefix). Proxy variables are always removed so
    that nothing talks to 127.0.0.1 through a proxy. The Popen gets .name
    and .log_path. Spawning the same name again appends to the same log.
env.proc(name) -> Popen      the latest process spawned under name
env.stop(proc, sig=SIGTERM, timeout=5) -> returncode
    Signals the process, waits, SIGKILLs it after timeout, then kills
    whatever is left of its session (children that outlived it).
env.kill_all(timeout=5)      stop every process spawned (done by close)
env.wait_exit(proc, timeout=10) -> returncode
env.close()                  kill_all, unmount, then remove tmp (unless KEEP_TMP=1)
env.mount_tmpfs(relpath, size_kb=256) -> str
    Mounts a tmpfs of size_kb KiB on the new directory <tmp>/relpath (a
    small filesystem a test can fill: ENOSPC for root too) and returns its
    path; unmounted by close(). Raises Skip when mounting is not allowed.
env.log_path(name), env.log_text(name) -> str, env.log_tail(name, n=40)
env.log_names() -> [name, ...]
env.wait_log(name, pattern, timeout=10, alive=(), since=0) -> re.Match
    Waits until the regular expression matches the log of name, from
    character since on (len(env.log_text(name)) taken before a restart under
    the same name: lines of the earlier run do not count).

env.start_etcd(name="etcd", log_level="warn", timeout=20) -> url
    A single-member etcd on free client and peer ports, data in
    <tmp>/<name>.data, ready when /health says true and a range answers
    (about 0.1 s; fast raft ticks, so leases as short as 1 s are granted).
    url is "http://127.0.0.1:PORT". env.etcd (the last one started) is an
    EtcdServer: .url .proc .client_port .peer_port .data_dir, .stop(sig),
    .start() (same ports and data, e.g. after .stop() to simulate an outage),
    .pause()/.resume() (SIGSTOP/SIGCONT: a hung member), .wipe() (remove
    the data dir of a stopped member: started again, it is a rebuilt cluster
    with the same id and revisions from 1).
env.start_etcd_cluster(n=3, name="etcd", log_level="warn", timeout=30)
    -> EtcdCluster
    n members etcd1..etcdN on free loopback ports, started together, ready
    when each answers. .members [EtcdServer], .urls, .endpoints (comma-
    separated, for --etcd or the config), .member(url), .stop().

env.start_grpc_proxy(endpoints, name="grpc-proxy", timeout=20) -> GrpcProxy
    "etcd grpc-proxy start" in front of the member URLs endpoints, on a free
    loopback port, ready when a range through it answers. gRPC only (the
    JSON gateway answers 404 through it). .url .port .proc, .stop(sig).

env.start_whoami(name, port=None, unhealthy=False) -> (proc, port)
    Starts integration/whoami.py (port None: the kernel picks it) and waits
    until it answers. SIGUSR1 toggles 503-everywhere, SIGUSR2 toggles the
    listening socket (see whoami.py); it logs "unhealthy", "healthy",
    "closed", "listening on ..." on each change.

env.start_haproxy(services_file=None, base_config=BASE_CONFIG, name="haproxy",
                  extra_args=(), timeout=15, socket_level=None) -> HAProxy
    Writes <tmp>/haproxy-base.cfg from the shipped haproxy/haproxy.cfg with
    only the runtime socket moved to <tmp>/admin.sock (and its "level admin"
    changed to socket_level, e.g. "operator", when given) and the stats
    listener moved to a free port, then runs
        haproxy -W -S <tmp>/master.sock -f <tmp>/haproxy-base.cfg -f services
    in the foreground (the pid held is the master's) and waits until both
    sockets answer. services_file None: an empty <tmp>/services.cfg.
    The HAProxy object has .proc .pid .master_sock .admin_sock .stats_port
    .stats_url .base_config .services_file, and:
        .cmd(line) -> str              runtime API (admin socket)
        .master_cmd(line) -> str       master CLI
        .reloads() -> (reloads, failed)
        .reload(timeout=15) -> (reloads, failed)  reload through the master
                                       CLI and wait for the count to move
        .servers_state(backend=None) -> [dict]    "show servers state"
        .stats() -> [dict]             "show stat" (CSV) rows
        .workers() -> [pid]            current workers from "show proc"
        .stop(sig=SIGTERM) -> returncode

env.start_slotsync(bin_path, config_path, extra_args=(), name="slotsync",
                   env=None) -> Popen
    Runs "BIN run -c CONFIG EXTRA..."; its output is env.log_text(name).
write_config(env, config, name="slotsync.json") -> path
    Writes the dict as JSON into env.tmp.

HAProxy sockets
---------------
haproxy_cmd(sock, line, timeout=5) -> str
    Sends one command on a UNIX socket path (or "HOST:PORT"), shuts the
    write side, reads to EOF.
master_reloads(master_sock) -> (reloads, failed)
    From the master line of "show proc" on the master CLI.
haproxy_check(*config_files) -> (ok, output)    haproxy -c -f ... -f ...

etcd (v3 JSON gateway, no etcdctl; keys and values are str or bytes, and a
dict or list value is sent as JSON)
----
etcd_put(url, key, value, lease=None) -> revision
etcd_get(url, key, revision=None) -> bytes or None
etcd_get_prefix(url, prefix, revision=None) -> {key str: value bytes}
etcd_delete(url, key) -> number deleted
etcd_delete_prefix(url, prefix) -> number deleted
etcd_revision(url) -> current revision
etcd_compact(url, revision, physical=True)
etcd_lease_grant(url, ttl) -> lease id
etcd_lease_keepalive(url, lease_id) -> new TTL
etcd_lease_revoke(url, lease_id)
etcd_lease_ttl(url, lease_id) -> remaining seconds, -1 if expired/unknown
Errors from etcd raise EtcdError (.status, .body); a request at a compacted
revision raises EtcdError whose message contains "compacted". A 503 while a
cluster elects a leader is tried again for up to ELECTION_RETRY_S first.

HTTP
----
http_get(url, timeout=2, headers=None) -> (status, body str)
http_request(url, method="GET", timeout=2, headers=None, body=None)
    -> Response(status, body, headers)     (headers: lower-case names)
    Both open a fresh connection, never use a proxy, raise OSError when the
    connection fails, and never raise on an HTTP status.
traffic(url, n, timeout=2, headers=None) -> Counter
    n requests in a row; keys are the stripped body for a 200, "<503>" (the
    status) for other answers, "<error>" when the request failed.
TrafficLoop(url, headers=None, timeout=2, interval=0, workers=1,
            keepalive=False, ok_statuses=(200,))
    Background requests until stopped, for zero-downtime checks:
        with TrafficLoop(url) as loop:          # or loop.start() / stop()
            loop.wait_results(50)
            ... change things ...
            mark = loop.mark()                  # a time.monotonic()
            loop.wait_results(20, since=mark)
        assert not loop.failures, loop.summary()
        loop.counts(since=mark)    # Counter like traffic(), of the requests
                                   # started after mark
    .results is a list of TrafficResult(t, latency, status, body, error)
    in completion order (t: time.monotonic() at the request's start);
    .since(mark) those started after mark; .failures those with an error or
    a status not in ok_statuses; .ok how many succeeded.

Browser
-------
chromium(env, url, dump_dom=True, screenshot=None, size=(1280, 800),
         budget_ms=4000, timeout=90) -> str
    Loads url in headless Chromium (Debian's chromium, run as root with
    --no-sandbox and a fresh profile under env.tmp, no network beyond the
    page), lets its scripts run for budget_ms of virtual time, and returns
    the rendered DOM (dump_dom) or writes a PNG to screenshot.

Exceptions: HarnessError (base), WaitTimeout, ProcessDied, EtcdError, Skip.

Environment variables: KEEP_TMP=1, SLOTSYNC_TEST_TIMEOUT (seconds),
HAPROXY_BIN, ETCD_BIN, ETCDCTL_BIN (binaries; default from PATH, then
/usr/sbin/haproxy, /usr/bin/etcd, /usr/bin/etcdctl).
"""

import atexit
import base64
import collections
import csv
import http.client
import io
import json
import os
import re
import secrets
import shutil
import signal
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = [
    "REPO", "BASE_CONFIG", "WHOAMI", "HAPROXY_BIN", "ETCD_BIN", "PYTHON",
    "HarnessError", "WaitTimeout", "ProcessDied", "EtcdError", "Skip",
    "timeout", "free_port", "wait_for", "Env", "EtcdServer", "EtcdCluster", "GrpcProxy",
    "HAProxy",
    "write_config", "haproxy_cmd", "master_reloads", "haproxy_check",
    "haproxy_version",
    "etcd_put", "etcd_get", "etcd_get_prefix", "etcd_delete",
    "etcd_delete_prefix", "etcd_revision", "etcd_compact", "etcd_lease_grant",
    "etcd_lease_keepalive", "etcd_lease_revoke", "etcd_lease_ttl",
    "http_get", "http_request", "Response", "traffic", "TrafficLoop",
    "TrafficResult", "assert_loopback_only", "install_signal_handlers",
    "chromium", "CHROMIUM_BIN",
    "TlsFiles", "etcdctl", "sanitized",
]

INTEGRATION = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(INTEGRATION)
BASE_CONFIG = os.path.join(REPO, "haproxy", "haproxy.cfg")
WHOAMI = os.path.join(INTEGRATION, "whoami.py")
PYTHON = sys.executable or "/usr/bin/python3"


def _find_bin(var, name, fallback):
    return os.environ.get(var) or shutil.which(name) or fallback


HAPROXY_BIN = _find_bin("HAPROXY_BIN", "haproxy", "/usr/sbin/haproxy")
ETCD_BIN = _find_bin("ETCD_BIN", "etcd", "/usr/bin/etcd")

# What the shipped base config must contain, and what tests put instead.
SHIPPED_ADMIN_SOCK = "/run/haproxy/admin.sock"
SHIPPED_STATS_BIND = "127.0.0.1:1936"

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy",
               "no_proxy")


class HarnessError(Exception):
    """Something the harness could not do."""


class WaitTimeout(HarnessError):
    """wait_for() ran out of time."""


class ProcessDied(HarnessError):
    """A process that had to keep running exited."""


class Skip(Exception):
    """Raise from a test to skip it, with the reason as message."""


def sanitized(bin_path):
    """Whether bin_path was built with AddressSanitizer (`make asan`): its
    dynamic section needs libasan."""
    try:
        out = subprocess.run(["ldd", bin_path], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return b"libasan" in out


class EtcdError(HarnessError):
    """etcd answered with an error."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


def timeout(seconds):
    """Decorator: this test's time limit in seconds (the runner reads it)."""

    def mark(fn):
        fn.timeout = seconds
        return fn

    return mark


# --------------------------------------------------------------------------
# Ports and waiting

_ports_given = set()
_ports_lock = threading.Lock()


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (client connections'
    source ports), 32768 when it cannot be read."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on now, never returned before by this
    process, below the ephemeral range: a port the kernel hands out (bind
    to 0) can be taken meanwhile as the source port of any connection, as
    HAProxy 3.0's HTTP frontend once found ("Address already in use") in
    make test-compat. Another test process may still take it before it is
    used: starters that bind it retry with a new port when that happens."""
    low = min(_ephemeral_low(), 65536)
    for _ in range(200):
        port = random.randrange(10000, low) if low > 11000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise HarnessError("no free port found")


def _describe(proc):
    name = getattr(proc, "name", None) or "pid %d" % proc.pid
    return "%s (pid %d)" % (name, proc.pid)


def wait_for(predicate, timeout=10, interval=0.02, what=None, alive=()):
    """Poll predicate() until it returns a true value; return that value.

    Exceptions raised by predicate mean "not yet". Raises WaitTimeout naming
    `what`, or ProcessDied as soon as a process in `alive` has exited."""
    if what is None:
        what = getattr(predicate, "__name__", "condition")
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
        except ProcessDied:
            raise
        except Exception as e:  # noqa: BLE001 - "not yet", reported below
            last_error = e
            value = None
        else:
            if value:
                return value
            last_error = None
        for proc in alive:
            if proc.poll() is not None:
                raise ProcessDied("%s exited with code %s while waiting for %s"
                                  % (_describe(proc), proc.returncode, what))
        if time.monotonic() >= deadline:
            msg = "timed out after %gs waiting for %s" % (timeout, what)
            if last_error is not None:
                msg += " (last error: %s: %s)" % (type(last_error).__name__,
                                                   last_error)
            raise WaitTimeout(msg)
        time.sleep(interval)


# --------------------------------------------------------------------------
# Address guard

_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d])")


def assert_loopback_only(text, where="text", allow_any=False):
    """Raise HarnessError if text holds an IPv4 address outside 127.0.0.0/8
    (0.0.0.0 too, unless allow_any). Tests must never hand HAProxy another
    address: it would health-check it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for m in _IPV4.finditer(text):
        addr = m.group(0)
        if m.group(1) == "127":
            continue
        if any(int(octet) > 255 for octet in m.groups()):
            continue  # not an address at all (e.g. a value meant to be refused)
        if allow_any and addr == "0.0.0.0":
            continue
        raise HarnessError("%s contains %s: tests may only use 127.0.0.0/8"
                           % (where, addr))


# --------------------------------------------------------------------------
# Processes: every Env is registered so that an interrupted or exiting runner
# still kills what it started.

_live_envs = set()
_live_lock = threading.RLock()
_handlers_installed = False
_defer_signals = 0      # main thread inside spawn(): handle signals after
_pending_signal = None


def _cleanup_all():
    with _live_lock:
        envs = list(_live_envs)
    for env in envs:
        try:
            # kill_all() even if a close() was under way when a signal
            # came: it may have been interrupted before killing everything.
            env.kill_all()
            env.unmount_all()
            env.close()
            if not env.keep:
                shutil.rmtree(env.tmp, ignore_errors=True)
        except Exception as e:  # noqa: BLE001 - keep cleaning the others
            sys.stderr.write("harness: cleanup of %s failed: %s\n" % (env.tmp, e))


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    global _pending_signal
    if _defer_signals:
        _pending_signal = signum
        return
    # Cleanup is bounded (SIGKILL after a timeout); a second signal must not
    # interrupt it halfway.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.write("\nharness: %s, stopping every process started\n"
                     % signal.Signals(signum).name)
    _cleanup_all()
    sys.stderr.flush()
    os._exit(128 + signum)


def install_signal_handlers():
    """Make SIGINT, SIGTERM and SIGHUP kill every process of every live Env
    before exiting. Main thread only; calling it again does nothing."""
    global _handlers_installed
    if _handlers_installed:
        return
    if threading.current_thread() is not threading.main_thread():
        raise HarnessError("install_signal_handlers() needs the main thread")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    _handlers_installed = True


def _child_environ(extra, unset=()):
    def dropped(k):
        if k.lower() in _PROXY_VARS:
            return True
        return any(k.startswith(u[:-1]) if u.endswith("*") else k == u
                   for u in unset)

    environ = {k: v for k, v in os.environ.items() if not dropped(k)}
    environ["PYTHONUNBUFFERED"] = "1"
    if extra:
        environ.update({k: str(v) for k, v in extra.items()})
    return environ


_subreaper = False


def _become_subreaper():
    """Have orphans of our process trees reparented to this process rather
    than to init, so that _kill_session() reaps them at once (no zombies
    left to a slow init). Linux only; harmless elsewhere."""
    global _subreaper
    if _subreaper or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        pass


def _reap_strays(sid):
    """Reap zombies of session sid that are our children (they are never
    Popen's: those lead their sessions)."""
    for pid in _session_members(sid, zombies=True):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _session_members(sid, zombies=False):
    """Pids whose session is sid, other than sid itself; zombies only if
    asked. A session id stays reserved while a member lives, so these are
    all ours."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit() or int(entry) == sid:
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == sid \
                and (fields[0] == "Z") == zombies:
            pids.append(int(entry))
    return pids


def _kill_session(sid, timeout=2.0):
    """Kill what is left of the session of a leader already reaped."""
    # While a member lives, the kernel keeps the number sid reserved; if a
    # process has that pid now, the session is gone and the number was given
    # to someone else, whose session is none of our business.
    if os.path.exists("/proc/%d" % sid):
        return
    pids = _session_members(sid)
    if not pids:
        _reap_strays(sid)
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _session_members(sid):
        time.sleep(0.02)
    for pid in _session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and _session_members(sid):
        time.sleep(0.02)
    _reap_strays(sid)


def _make_tmp(name):
    # UNIX socket paths are limited to 107 bytes: keep the directory short.
    base = tempfile.gettempdir()
    if len(base) > 40 and os.path.isdir("/tmp") and os.access("/tmp", os.W_OK):
        base = "/tmp"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:24]
    return tempfile.mkdtemp(prefix="slotsync-%s-" % safe, dir=base)


class Env:
    """A temporary directory and the processes started in it."""

    def __init__(self, name="env", keep=None):
        self.name = name
        self.tmp = _make_tmp(name)
        self.keep = (os.environ.get("KEEP_TMP") == "1") if keep is None else keep
        self.closed = False
        self.etcd = None
        self.etcd_cluster = None
        self.haproxy = None
        self._procs = []
        self._mounts = []
        self._lock = threading.RLock()
        with _live_lock:
            _live_envs.add(self)
        _become_subreaper()
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            install_signal_handlers()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<Env %s %s>" % (self.name, self.tmp)

    # -- files

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, relpath, text):
        text = with_etcd_transport(relpath, text)
        path = self.path(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(path, mode) as f:
            f.write(text)
        return path

    def log_path(self, name):
        return self.path(name + ".log")

    def log_text(self, name):
        try:
            with open(self.log_path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, name, n=40):
        return "\n".join(self.log_text(name).splitlines()[-n:])

    def log_names(self):
        try:
            names = os.listdir(self.tmp)
        except OSError:
            return []
        return sorted(n[:-4] for n in names if n.endswith(".log"))

    def wait_log(self, name, pattern, timeout=10, alive=(), since=0):
        regex = re.compile(pattern)
        return wait_for(lambda: regex.search(self.log_text(name), since),
                        timeout=timeout, interval=0.05, alive=alive,
                        what="%r in %s.log" % (pattern, name))

    # -- processes

    def spawn(self, name, argv, env=None, log=True, cwd=None, unset=()):
        global _defer_signals
        argv = announce_with_etcd_transport([str(a) for a in argv])
        main = threading.current_thread() is threading.main_thread()
        # Between the fork and the registration a signal handler running in
        # this thread would miss the new process: it waits until the end.
        # (Blocking the signals instead would leave them blocked in the
        # child.)
        if main:
            _defer_signals += 1
        try:
            with self._lock:
                if self.closed:
                    raise HarnessError("spawn(%s) on a closed Env" % name)
                log_path = self.log_path(name)
                out = subprocess.DEVNULL
                if log:
                    out = open(log_path, "ab")
                    out.write(("==== %s: %s\n" % (time.strftime("%H:%M:%S"),
                                                  " ".join(argv))).encode())
                    out.flush()
                try:
                    proc = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT,
                        env=_child_environ(env, unset),
                        cwd=cwd or self.tmp, start_new_session=True,
                        close_fds=True)
                finally:
                    if log:
                        out.close()
                proc.name = name
                proc.log_path = log_path
                proc.argv = argv
                self._procs.append(proc)
                return proc
        finally:
            if main:
                _defer_signals -= 1
                if _defer_signals == 0 and _pending_signal is not None:
                    _on_signal(_pending_signal, None)

    @property
    def procs(self):
        with self._lock:
            return list(self._procs)

    def proc(self, name):
        for p in reversed(self.procs):
            if p.name == name:
                return p
        raise KeyError(name)

    def stop(self, proc, sig=signal.SIGTERM, timeout=5):
        """Stop proc: sig, then SIGKILL after timeout; then whatever is left
        of its session. Returns the exit code (negative: killed by signal)."""
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        _kill_session(proc.pid)
        return proc.returncode

    def kill_all(self, timeout=5):
        """SIGTERM every live process at once, SIGKILL those still there
        after timeout, then sweep their sessions."""
        procs = self.procs
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                sys.stderr.write("harness: %s survived SIGKILL\n" % _describe(p))
            _kill_session(p.pid)

    def wait_exit(self, proc, timeout=10):
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout("timed out after %gs waiting for %s to exit"
                              % (timeout, _describe(proc))) from None

    def close(self):
        """Kill every process, then remove tmp unless kept. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            self.kill_all()
        finally:
            self.unmount_all()
            with _live_lock:
                _live_envs.discard(self)
            if self.keep:
                sys.stderr.write("harness: kept %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- filesystems

    def mount_tmpfs(self, relpath, size_kb=256):
        """A tmpfs of size_kb KiB on a new directory inside tmp."""
        path = self.path(relpath)
        os.makedirs(path, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0755" % size_kb,
                              "tmpfs", path], capture_output=True, text=True)
        if out.returncode != 0:
            raise Skip("cannot mount a tmpfs here: %s" % out.stderr.strip())
        with self._lock:
            self._mounts.append(path)
        return path

    def unmount_all(self):
        """Unmount (lazily) every tmpfs mount_tmpfs() made. Idempotent."""
        with self._lock:
            mounts, self._mounts = self._mounts, []
        for path in reversed(mounts):
            subprocess.run(["umount", "-l", path], capture_output=True)

    # -- etcd

    def start_etcd(self, name="etcd", log_level="warn", timeout=20, tls=None,
                   extra_args=()):
        """Start a single-member etcd; return its client URL. tls: a
        TlsFiles: https with that server certificate, clients must present
        a certificate signed by its CA."""
        last = None
        for _ in range(3):
            server = EtcdServer(self, name, free_port(), free_port(),
                                log_level=log_level, tls=tls, extra_args=extra_args)
            try:
                server.start(timeout=timeout)
            except ProcessDied as e:
                if "address already in use" not in self.log_text(name):
                    raise
                last = e  # lost a port race: new ports
                continue
            self.etcd = server
            return server.url
        raise last

    def start_etcd_cluster(self, n=3, name="etcd", log_level="warn",
                           timeout=30):
        """Start an n-member etcd cluster (members NAME1..NAMEn) on free
        loopback ports; return an EtcdCluster once every member answers."""
        last = None
        for _ in range(3):
            names = ["%s%d" % (name, i + 1) for i in range(n)]
            ports = [(free_port(), free_port()) for _ in names]
            initial = ",".join("%s=http://127.0.0.1:%d" % (nm, pp)
                               for nm, (_, pp) in zip(names, ports))
            token = "slotsync-test-" + secrets.token_hex(4)
            members = [EtcdServer(self, nm, cp, pp, log_level=log_level,
                                  initial_cluster=initial, token=token)
                       for nm, (cp, pp) in zip(names, ports)]
            try:
                for m in members:
                    m.start(wait=False)
                for m in members:
                    m.wait_ready(timeout)
            except ProcessDied as e:
                if not any("address already in use" in self.log_text(nm)
                           for nm in names):
                    raise
                last = e  # lost a port race: new ports
                for m in members:
                    m.stop(signal.SIGKILL)
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                continue
            self.etcd_cluster = EtcdCluster(members)
            return self.etcd_cluster
        raise last

    def start_grpc_proxy(self, endpoints, name="grpc-proxy", timeout=20):
        """Start "etcd grpc-proxy start" in front of endpoints (a list of
        member URLs) on a free loopback port; return a GrpcProxy once a
        range through it answers (etcdctl speaks gRPC, as the proxy does)."""
        last = None
        for _ in range(3):
            proxy = GrpcProxy(self, name, free_port(), endpoints)
            try:
                proxy.start(timeout)
            except ProcessDied as e:
                if "address already in use" not in self.log_text(name):
                    raise
                last = e  # lost a port race: a new port
                continue
            return proxy
        raise last

    # -- whoami

    def start_whoami(self, name, port=None, unhealthy=False, timeout=10):
        """Start a whoami backend; return (proc, port) once it answers."""
        argv = [PYTHON, WHOAMI, "--name", name, "--host", "127.0.0.1",
                "--port", str(port or 0)]
        if unhealthy:
            argv.append("--unhealthy")
        offset = len(self.log_text(name))
        proc = self.spawn(name, argv)
        if not port:
            m = wait_for(lambda: re.search(r"listening on 127\.0\.0\.1:(\d+)",
                                           self.log_text(name)[offset:]),
                         timeout=timeout, alive=[proc],
                         what="whoami %s to listen" % name)
            port = int(m.group(1))
        url = "http://127.0.0.1:%d/health" % port
        wait_for(lambda: http_get(url, timeout=1), timeout=timeout,
                 alive=[proc], what="whoami %s to answer on %d" % (name, port))
        return proc, port

    # -- haproxy

    def start_haproxy(self, services_file=None, base_config=BASE_CONFIG,
                      name="haproxy", extra_args=(), timeout=15,
                      socket_level=None, binary=None):
        """Start HAProxy (master-worker, foreground) on a test copy of the
        shipped base config; return an HAProxy once both sockets answer.
        binary: another HAProxy than HAPROXY_BIN."""
        if services_file is None:
            services_file = self.path("services.cfg")
            if not os.path.exists(services_file):
                self.write("services.cfg", "")
        with open(services_file) as f:
            assert_loopback_only(f.read(), services_file, allow_any=True)
        with open(base_config) as f:
            shipped = f.read()
        last = None
        for _ in range(3):
            hap = HAProxy(self, name, self.path("master.sock"),
                          self.path("admin.sock"), free_port(),
                          self.path("haproxy-base.cfg"), services_file,
                          binary=binary)
            self.write("haproxy-base.cfg",
                       _test_base_config(shipped, hap.admin_sock, hap.stats_port,
                                         socket_level))
            try:
                hap.start(extra_args, timeout)
            except ProcessDied as e:
                if "cannot bind socket" not in self.log_text(name):
                    raise
                last = e
                continue
            self.haproxy = hap
            return hap
        raise last

    # -- slotsync

    def start_slotsync(self, bin_path, config_path, extra_args=(),
                       name="slotsync", env=None):
        """Run "BIN run -c CONFIG EXTRA..."; return the Popen."""
        return self.spawn(name, [bin_path, "run", "-c", config_path]
                          + list(extra_args), env=env)


def etcd_transport_forced():
    """SLOTSYNC_TEST_ETCD_TRANSPORT ("grpc" or "json"), or None: then the
    configs and announce command lines are left alone, on slotsync's default."""
    t = os.environ.get("SLOTSYNC_TEST_ETCD_TRANSPORT") or None
    if t not in (None, "grpc", "json"):
        raise HarnessError("SLOTSYNC_TEST_ETCD_TRANSPORT=%r: grpc or json" % t)
    return t


def etcd_transport():
    """The etcd transport the tests run with: the forced one, or slotsync's
    default, "grpc"."""
    return etcd_transport_forced() or "grpc"


def json_gateway_only(why):
    """Skip the calling test on the gRPC transport: it reads or fakes the
    JSON gateway's bytes (why says which)."""
    if etcd_transport() == "grpc":
        raise Skip("JSON gateway only: " + why)


def with_etcd_transport(relpath, text):
    """A slotsync config (a .json file whose object has an "etcd" object
    without "transport") gets etcd.transport when etcd_transport_forced()
    is set; anything else is returned as it is."""
    t = etcd_transport_forced()
    if not t or not str(relpath).endswith(".json"):
        return text
    try:
        cfg = json.loads(text)
    except ValueError:
        return text  # a deliberately broken config stays broken
    if (not isinstance(cfg, dict) or not isinstance(cfg.get("etcd"), dict)
            or "transport" in cfg["etcd"]):
        return text
    cfg["etcd"]["transport"] = t
    out = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    return out.encode() if isinstance(text, bytes) else out


def announce_with_etcd_transport(argv):
    """"BIN announce ..." gets --etcd-transport when etcd_transport_forced()
    is set and the test gave none."""
    t = etcd_transport_forced()
    if (t and len(argv) > 1 and argv[1] == "announce"
            and "--etcd-transport" not in argv and "--" not in argv[:2]):
        return argv[:2] + ["--etcd-transport", t] + argv[2:]
    return argv


def write_config(env, config, name="slotsync.json"):
    """Write config (a dict) as JSON into env.tmp; return the path."""
    return env.write(name, json.dumps(config, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------
# etcd

class EtcdServer:
    """One etcd member of an Env (see Env.start_etcd)."""

    def __init__(self, env, name, client_port, peer_port, log_level="warn",
                 initial_cluster=None, token=None, tls=None, extra_args=()):
        self.env = env
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.log_level = log_level
        self.tls = tls
        self.extra_args = list(extra_args)
        self.user = None  # "name:password" for readiness checks once auth is on
        self.data_dir = env.path(name + ".data")
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", client_port)
        self.peer_url = "http://127.0.0.1:%d" % peer_port
        # Kept across restarts: a member started again on a wiped data dir
        # founds a cluster with the same id (a rebuilt cluster).
        self.initial_cluster = initial_cluster or "%s=%s" % (name, self.peer_url)
        self.token = token or "slotsync-test-" + secrets.token_hex(4)
        self.proc = None

    def argv(self):
        tls = []
        if self.tls:
            tls = ["--cert-file", self.tls.server_cert, "--key-file", self.tls.server_key,
                   "--trusted-ca-file", self.tls.ca, "--client-cert-auth"]
        return [ETCD_BIN] + tls + self.extra_args + [
            "--name", self.name, "--data-dir", self.data_dir,
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            # A single member needs no slack: fast ticks make it elect
            # itself in ~0.1 s instead of ~1 s, and lower the shortest lease
            # etcd grants from 2 s to 1 s.
            "--heartbeat-interval", "25", "--election-timeout", "250",
            "--logger", "zap", "--log-outputs", "stderr",
            "--log-level", self.log_level,
        ]

    def start(self, timeout=20, wait=True):
        """Start (or start again, same ports and data) and wait until
        ready (wait=False: return at once, e.g. for a cluster's members,
        which are ready only together)."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("etcd %s is already running" % self.name)
        # ETCD_* variables would silently change the member's flags.
        self.proc = self.env.spawn(self.name, self.argv(), unset=("ETCD*",))
        if wait:
            self.wait_ready(timeout)
        return self.url

    def wait_ready(self, timeout=20):
        wait_for(self._ready, timeout=timeout, interval=0.05,
                 alive=[self.proc], what="etcd on %s" % self.url)

    def wipe(self):
        """Remove the data directory (the member must be stopped): started
        again, it founds a new, empty cluster with the same id."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("etcd %s is running" % self.name)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def pause(self):
        """SIGSTOP: the member hangs (TCP still accepts, nothing answers)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def _ready(self):
        if self.tls or self.user:
            return etcdctl(self.url, "get", "/", tls=self.tls, user=self.user,
                           check=False, timeout=2).returncode == 0
        with _opener.open(self.url + "/health", timeout=1) as r:
            if json.loads(r.read()).get("health") != "true":
                return False
        etcd_revision(self.url, timeout=1)
        return True

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused member must hear sig
        return self.env.stop(self.proc, sig, timeout)


class EtcdCluster:
    """Members of one etcd cluster of an Env (see Env.start_etcd_cluster)."""

    def __init__(self, members):
        self.members = members
        self.urls = [m.url for m in members]
        self.endpoints = ",".join(self.urls)

    def member(self, url):
        """The member whose client URL is url."""
        for m in self.members:
            if m.url == url.rstrip("/"):
                return m
        raise HarnessError("no member at %s" % url)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        for m in self.members:
            m.stop(sig, timeout)


class GrpcProxy:
    """One "etcd grpc-proxy start" of an Env (see Env.start_grpc_proxy): it
    serves gRPC only (no JSON gateway) and coalesces identical watches into
    one watch on the cluster."""

    def __init__(self, env, name, port, endpoints):
        self.env = env
        self.name = name
        self.port = port
        self.endpoints = [u.rstrip("/") for u in endpoints]
        self.url = "http://127.0.0.1:%d" % port
        self.proc = None

    def argv(self):
        return [ETCD_BIN, "grpc-proxy", "start",
                "--endpoints=" + ",".join(u.split("://", 1)[1] for u in self.endpoints),
                "--listen-addr=127.0.0.1:%d" % self.port]

    def start(self, timeout=20):
        self.proc = self.env.spawn(self.name, self.argv())
        wait_for(lambda: etcdctl(self.url, "get", "/", check=False,
                                 timeout=2).returncode == 0,
                 timeout=timeout, alive=[self.proc],
                 what="grpc-proxy %s to answer on %d" % (self.name, self.port))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc is None:
            return None
        return self.env.stop(self.proc, sig, timeout)


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

ETCDCTL_BIN = _find_bin("ETCDCTL_BIN", "etcdctl", "/usr/bin/etcdctl")
OPENSSL_BIN = shutil.which("openssl") or "/usr/bin/openssl"


class TlsFiles:
    """A test PKI made with openssl in env's temp dir: a CA, a server
    certificate for 127.0.0.1 and the name etcd.test, a client certificate,
    and a second CA that signed nothing etcd trusts. name: the directory
    (a second TlsFiles with another name is a second, unrelated PKI)."""

    def __init__(self, env, name="pki"):
        self.dir = env.path(name)
        os.makedirs(self.dir, exist_ok=True)
        p = lambda name: os.path.join(self.dir, name)
        self.ca, self.ca_key = p("ca.pem"), p("ca.key")
        self.other_ca, self.other_ca_key = p("other-ca.pem"), p("other-ca.key")
        self.server_cert, self.server_key = p("server.pem"), p("server.key")
        self.client_cert, self.client_key = p("client.pem"), p("client.key")
        self._ca(self.ca, self.ca_key, "slotsync test CA")
        self._ca(self.other_ca, self.other_ca_key, "some other CA")
        self._leaf(self.server_cert, self.server_key, "etcd.test",
                   "subjectAltName=IP:127.0.0.1,DNS:etcd.test\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n")
        self._leaf(self.client_cert, self.client_key, "slotsync",
                   "extendedKeyUsage=clientAuth\n")

    def _run(self, *argv):
        out = subprocess.run([OPENSSL_BIN] + list(argv), capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise HarnessError("openssl %s: %s" % (argv[0], out.stderr))

    def _ca(self, cert, key, cn):
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                  "-out", cert, "-days", "2", "-subj", "/CN=" + cn)

    def _leaf(self, cert, key, cn, ext):
        csr, extfile = cert + ".csr", cert + ".ext"
        with open(extfile, "w") as f:
            f.write(ext)
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extfile)
        os.chmod(key, 0o600)


def etcdctl(url, *args, tls=None, check=True, timeout=10, user=None, input=None):
    """Run etcdctl (v3) against url; return the CompletedProcess. input:
    text for its stdin."""
    argv = [ETCDCTL_BIN, "--endpoints", url, "--command-timeout", "%ds" % timeout]
    if tls:
        argv += ["--cacert", tls.ca, "--cert", tls.client_cert, "--key", tls.client_key]
    if user:
        argv += ["--user", user]
    env = _child_environ({"ETCDCTL_API": "3"}, unset=("ETCDCTL_*",))
    env["ETCDCTL_API"] = "3"
    out = subprocess.run(argv + list(args), capture_output=True, text=True,
                         timeout=timeout + 5, env=env, input=input)
    if check and out.returncode != 0:
        raise EtcdError("etcdctl %s: %s" % (" ".join(args), out.stderr.strip()))
    return out


def _b64(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def _unb64(text):
    return base64.b64decode(text or "")


def _prefix_end(prefix):
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\0"


# A cluster electing a leader (a member paused and resumed, a loaded
# machine) answers 503 for a moment: such a call is tried again, for at most
# ELECTION_RETRY_S. Any other error is raised at once.
ELECTION_RETRY_S = 5.0
_ELECTION_ERRORS = ("leader changed", "no leader")


def _etcd_call(url, path, body, timeout=5):
    deadline = time.monotonic() + ELECTION_RETRY_S
    while True:
        try:
            return _etcd_call_once(url, path, body, timeout)
        except EtcdError as e:
            if (e.status != 503 or time.monotonic() > deadline
                    or not any(m in str(e) for m in _ELECTION_ERRORS)):
                raise
        time.sleep(0.05)


def _etcd_call_once(url, path, body, timeout):
    req = urllib.request.Request(url.rstrip("/") + path,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"},
                                 method="POST")
    try:
        with _opener.open(req, timeout=timeout) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            msg = json.loads(raw).get("message") or json.loads(raw).get("error")
        except ValueError:
            msg = raw.decode("utf-8", "replace")
        raise EtcdError("etcd %s: HTTP %d: %s" % (path, e.code, msg),
                        status=e.code, body=raw) from None
    doc = json.loads(raw or b"{}")
    if "error" in doc and "result" not in doc:
        raise EtcdError("etcd %s: %s" % (path, doc.get("message") or doc["error"]),
                        body=raw)
    return doc


def _as_bytes(key):
    return key.encode() if isinstance(key, str) else bytes(key)


def etcd_put(url, key, value, lease=None, timeout=5, allow_any=False):
    """Put key=value (str, bytes, or dict/list sent as JSON), optionally
    attached to a lease. Returns the new revision. Refuses keys and values
    that hold an IPv4 address outside 127.0.0.0/8; allow_any lets a value
    hold 0.0.0.0, the unspecified address (a value slotsync must refuse)."""
    encoded = _b64(value)
    assert_loopback_only(_as_bytes(key), "etcd key %r" % (key,))
    assert_loopback_only(base64.b64decode(encoded), "value of %r" % (key,),
                         allow_any=allow_any)
    body = {"key": _b64(_as_bytes(key)), "value": encoded}
    if lease is not None:
        body["lease"] = str(lease)
    doc = _etcd_call(url, "/v3/kv/put", body, timeout)
    return int(doc["header"]["revision"])


def _range(url, key, range_end=None, revision=None, timeout=5):
    body = {"key": _b64(_as_bytes(key))}
    if range_end is not None:
        body["range_end"] = _b64(range_end)
    if revision is not None:
        body["revision"] = str(revision)
    return _etcd_call(url, "/v3/kv/range", body, timeout)


def etcd_get(url, key, revision=None, timeout=5):
    """The value of key (bytes), or None if absent."""
    kvs = _range(url, key, revision=revision, timeout=timeout).get("kvs") or []
    return _unb64(kvs[0].get("value")) if kvs else None


def etcd_get_prefix(url, prefix, revision=None, timeout=5):
    """Every key under prefix: {key str: value bytes}, in key order."""
    doc = _range(url, prefix, _prefix_end(_as_bytes(prefix)), revision, timeout)
    return {_unb64(kv["key"]).decode("utf-8", "replace"): _unb64(kv.get("value"))
            for kv in doc.get("kvs") or []}


def etcd_delete(url, key, timeout=5):
    """Delete key; returns how many keys went (0 or 1)."""
    doc = _etcd_call(url, "/v3/kv/deleterange",
                     {"key": _b64(_as_bytes(key))}, timeout)
    return int(doc.get("deleted", 0))


def etcd_delete_prefix(url, prefix, timeout=5):
    """Delete every key under prefix; returns how many."""
    doc = _etcd_call(url, "/v3/kv/deleterange",
                     {"key": _b64(_as_bytes(prefix)),
                      "range_end": _b64(_prefix_end(_as_bytes(prefix)))},
                     timeout)
    return int(doc.get("deleted", 0))


def etcd_revision(url, timeout=5):
    """The store's current revision."""
    doc = _etcd_call(url, "/v3/kv/range",
                     {"key": _b64(b"\0"), "count_only": True}, timeout)
    return int(doc["header"]["revision"])


def etcd_compact(url, revision, physical=True, timeout=10):
    """Compact the history up to revision (older revisions become
    unreadable; watches from them fail with "compacted")."""
    _etcd_call(url, "/v3/kv/compaction",
               {"revision": str(revision), "physical": physical}, timeout)


def etcd_lease_grant(url, ttl, timeout=5):
    """A new lease of ttl seconds; returns its id (int)."""
    doc = _etcd_call(url, "/v3/lease/grant", {"TTL": str(ttl)}, timeout)
    return int(doc["ID"])


def etcd_lease_keepalive(url, lease_id, timeout=5):
    """Refresh a lease once; returns its TTL (0 or less: it is gone)."""
    doc = _etcd_call(url, "/v3/lease/keepalive", {"ID": str(lease_id)}, timeout)
    return int(doc.get("result", {}).get("TTL", 0))


def etcd_lease_revoke(url, lease_id, timeout=5):
    """Revoke a lease now (its keys are deleted)."""
    _etcd_call(url, "/v3/lease/revoke", {"ID": str(lease_id)}, timeout)


def etcd_lease_ttl(url, lease_id, timeout=5):
    """Seconds left on a lease, -1 if it expired or never existed."""
    doc = _etcd_call(url, "/v3/lease/timetolive", {"ID": str(lease_id)}, timeout)
    return int(doc.get("TTL", -1))


# --------------------------------------------------------------------------
# HAProxy

def _test_base_config(shipped, admin_sock, stats_port, socket_level=None):
    """The shipped base config with the runtime socket and the stats listener
    moved (and the socket's level changed, if socket_level is given);
    everything else is kept, so the shipped file is what is tested."""
    text, n_sock = re.subn(r"(?m)^(\s*stats\s+socket\s+)%s(?=\s)"
                           % re.escape(SHIPPED_ADMIN_SOCK),
                           lambda m: m.group(1) + admin_sock, shipped)
    text, n_bind = re.subn(r"(?m)^(\s*bind\s+)%s(?=\s|$)"
                           % re.escape(SHIPPED_STATS_BIND),
                           lambda m: m.group(1) + "127.0.0.1:%d" % stats_port,
                           text)
    if socket_level is not None:
        if socket_level not in ("user", "operator", "admin"):
            raise HarnessError("socket_level: user, operator or admin")
        text, n_level = re.subn(r"(?m)^(\s*stats\s+socket\s+%s\s.*\blevel\s+)admin\b"
                                % re.escape(admin_sock),
                                lambda m: m.group(1) + socket_level, text)
        if n_level != 1:
            raise HarnessError("haproxy/haproxy.cfg: no 'level admin' on the stats socket")
    if n_sock != 1 or n_bind != 1:
        raise HarnessError(
            "haproxy/haproxy.cfg must hold exactly one 'stats socket %s' "
            "(found %d) and one 'bind %s' (found %d)"
            % (SHIPPED_ADMIN_SOCK, n_sock, SHIPPED_STATS_BIND, n_bind))
    assert_loopback_only(text, "haproxy base config", allow_any=True)
    return text


def haproxy_cmd(sock, line, timeout=5):
    """Send one command to an HAProxy CLI socket (UNIX path, or HOST:PORT);
    return everything it answers."""
    if "/" not in sock and ":" in sock:
        host, port = sock.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = (host.strip("[]"), int(port))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        addr = sock
    with s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(line.rstrip("\n").encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


_MASTER_LINE = re.compile(r"(?m)^\s*(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]")


def master_reloads(master_sock, timeout=5):
    """(reloads, failed) from the master's line of "show proc"."""
    out = haproxy_cmd(master_sock, "show proc", timeout)
    m = _MASTER_LINE.search(out)
    if not m:
        raise HarnessError("no master line in 'show proc': %r" % out[:500])
    return int(m.group(2)), int(m.group(3))


CHROMIUM_BIN = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium(env, url, dump_dom=True, screenshot=None, size=(1280, 800), budget_ms=4000,
             timeout=90):
    """Headless Chromium on url: the rendered DOM, or a screenshot."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=env.tmp)
    argv = [CHROMIUM_BIN, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--hide-scrollbars", "--user-data-dir=" + profile,
            "--window-size=%d,%d" % size, "--virtual-time-budget=%d" % budget_ms]
    argv += ["--screenshot=" + screenshot] if screenshot else ["--dump-dom"]
    with open(env.path("chromium.log"), "ab") as log:
        proc = subprocess.Popen(argv + [url], stdout=subprocess.PIPE, stderr=log,
                                stdin=subprocess.DEVNULL, cwd=env.tmp,
                                env=_child_environ(None), start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        finally:
            # Chromium's helper processes share its session: end them all.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc.returncode != 0:
        raise HarnessError("chromium exited %d (see chromium.log)" % proc.returncode)
    return stdout.decode("utf-8", "replace")


_haproxy_version = None


def haproxy_version():
    """(major, minor) of HAPROXY_BIN, from its own "haproxy -v" line
    ("HAProxy version 3.0.11-... "); tests that depend on one version's
    wording branch on it."""
    global _haproxy_version
    if _haproxy_version is None:
        r = subprocess.run([HAPROXY_BIN, "-v"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        m = re.search(r"HA-?Proxy version (\d+)\.(\d+)",
                      r.stdout.decode("utf-8", "replace"))
        if not m:
            raise HarnessError("%s -v: no version in %r" % (HAPROXY_BIN, r.stdout[:200]))
        _haproxy_version = (int(m.group(1)), int(m.group(2)))
    return _haproxy_version


def haproxy_check(*config_files):
    """Run haproxy -c on the files; returns (ok, output)."""
    argv = [HAPROXY_BIN, "-c"]
    for f in config_files:
        argv += ["-f", f]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return r.returncode == 0, r.stdout.decode("utf-8", "replace")


class HAProxy:
    """An HAProxy master-worker of an Env (see Env.start_haproxy)."""

    def __init__(self, env, name, master_sock, admin_sock, stats_port,
                 base_config, services_file, binary=None):
        self.env = env
        self.binary = binary or HAPROXY_BIN
        self.name = name
        self.master_sock = master_sock
        self.admin_sock = admin_sock
        self.stats_port = stats_port
        self.stats_url = "http://127.0.0.1:%d/" % stats_port
        self.base_config = base_config
        self.services_file = services_file
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, extra_args=(), timeout=15):
        for sock in (self.master_sock, self.admin_sock):
            if os.path.exists(sock):
                os.unlink(sock)
        argv = [self.binary, "-W", "-S", self.master_sock,
                "-f", self.base_config, "-f", self.services_file]
        self.proc = self.env.spawn(self.name, argv + list(extra_args))
        wait_for(lambda: "Name: HAProxy" in self.cmd("show info", timeout=1),
                 timeout=timeout, alive=[self.proc],
                 what="haproxy runtime socket %s" % self.admin_sock)
        wait_for(lambda: self.reloads(), timeout=timeout, alive=[self.proc],
                 what="haproxy master socket %s" % self.master_sock)
        return self

    def cmd(self, line, timeout=5):
        return haproxy_cmd(self.admin_sock, line, timeout)

    def master_cmd(self, line, timeout=5):
        return haproxy_cmd(self.master_sock, line, timeout)

    def reloads(self):
        return master_reloads(self.master_sock)

    def reload(self, timeout=15):
        """Reload through the master CLI; wait until the master counted it.
        Returns (reloads, failed) after the reload."""
        before = sum(self.reloads())
        self.master_cmd("reload")

        def counted():
            now = self.reloads()
            return now if sum(now) > before else None

        return wait_for(counted, timeout=timeout, alive=[self.proc],
                        what="haproxy reload to be counted")

    def workers(self):
        """Pids of the current workers (not the ones left from reloads)."""
        out = self.master_cmd("show proc")
        pids = []
        for line in out.splitlines():
            if line.startswith("# old workers"):
                break
            m = re.match(r"\s*(\d+)\s+worker\s", line)
            if m:
                pids.append(int(m.group(1)))
        return pids

    def servers_state(self, backend=None):
        """Rows of "show servers state" as dicts keyed by the header names
        (be_name, srv_name, srv_addr, srv_op_state, srv_admin_state,
        srv_port, ...), values as strings."""
        out = self.cmd("show servers state" + (" " + backend if backend else ""))
        header = None
        rows = []
        for line in out.splitlines():
            if line.startswith("# "):
                header = line[2:].split()
            elif header and line.strip():
                values = line.split()
                rows.append(dict(zip(header, values)))
        return rows

    def stats(self):
        """Rows of "show stat" as dicts keyed by the CSV header (pxname,
        svname, status, scur, ...)."""
        out = self.cmd("show stat")
        if out.startswith("# "):
            out = out[2:]
        return [row for row in csv.DictReader(io.StringIO(out)) if row.get("pxname")]

    def stop(self, sig=signal.SIGTERM, timeout=5):
        return self.env.stop(self.proc, sig, timeout)


# --------------------------------------------------------------------------
# HTTP

Response = collections.namedtuple("Response", "status body headers")


def http_request(url, method="GET", timeout=2, headers=None, body=None):
    """One request on a fresh connection; returns Response(status, body str,
    headers dict with lower-case names). Raises OSError (or
    http.client.HTTPException) if no answer came."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        raise HarnessError("http_request: only http:// URLs: %s" % url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, data.decode("utf-8", "replace"), hdrs)
    finally:
        conn.close()


def http_get(url, timeout=2, headers=None):
    """GET url; returns (status, body str)."""
    r = http_request(url, timeout=timeout, headers=headers)
    return r.status, r.body


def _result_key(status, body, error):
    if error is not None:
        return "<error>"
    if status == 200:
        return body.strip()
    return "<%d>" % status


def traffic(url, n, timeout=2, headers=None):
    """n GETs in a row; a Counter keyed by stripped body for 200 answers,
    "<STATUS>" for other answers and "<error>" for failed requests."""
    counts = collections.Counter()
    for _ in range(n):
        try:
            status, body = http_get(url, timeout=timeout, headers=headers)
        except (OSError, http.client.HTTPException):
            counts["<error>"] += 1
        else:
            counts[_result_key(status, body, None)] += 1
    return counts


TrafficResult = collections.namedtuple("TrafficResult",
                                       "t latency status body error")


class TrafficLoop:
    """GETs url from background threads until stopped and records every
    result (see the module docstring)."""

    def __init__(self, url, headers=None, timeout=2, interval=0.0, workers=1,
                 keepalive=False, ok_statuses=(200,)):
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.interval = interval
        self.workers = workers
        self.keepalive = keepalive
        self.ok_statuses = tuple(ok_statuses)
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        u = urllib.parse.urlsplit(url)
        self._host, self._port = u.hostname, u.port or 80
        self._path = (u.path or "/") + ("?" + u.query if u.query else "")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if self._threads:
            raise HarnessError("TrafficLoop already started")
        for i in range(self.workers):
            t = threading.Thread(target=self._run, daemon=True,
                                 name="traffic-%d" % i)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout=10):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        return self

    def _one(self, conn):
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port,
                                              timeout=self.timeout)
        conn.request("GET", self._path, headers=self.headers)
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        if not self.keepalive or r.will_close:
            conn.close()
            conn = None
        return conn, r.status, body

    def _run(self):
        conn = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                conn, status, body = self._one(conn)
                res = TrafficResult(t0, time.monotonic() - t0, status,
                                    body.strip(), None)
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                    conn = None
                res = TrafficResult(t0, time.monotonic() - t0, None, None,
                                    "%s: %s" % (type(e).__name__, e))
            with self._lock:
                self.results.append(res)
            if self.interval:
                self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def _snapshot(self, since=None):
        with self._lock:
            results = list(self.results)
        if since is None:
            return results
        return [r for r in results if r.t >= since]

    def mark(self):
        """Now, as a point to pass to since=: what follows is the requests
        started after it (those in flight at mark() are left out)."""
        return time.monotonic()

    def since(self, mark):
        """The results of the requests started after mark."""
        return self._snapshot(mark)

    def is_failure(self, r):
        return r.error is not None or r.status not in self.ok_statuses

    @property
    def failures(self):
        return [r for r in self._snapshot() if self.is_failure(r)]

    @property
    def ok(self):
        return sum(1 for r in self._snapshot() if not self.is_failure(r))

    def counts(self, since=None):
        """Counter like traffic()'s, over the requests started after since
        (a mark()) or over all."""
        return collections.Counter(
            "<error>" if r.error else
            (r.body if r.status == 200 else "<%d>" % r.status)
            for r in self._snapshot(since))

    def wait_results(self, n, since=None, timeout=10):
        """Wait until at least n requests (started after since, a mark(), if
        given) have a result."""
        return wait_for(lambda: len(self._snapshot(since)) >= n,
                        timeout=timeout,
                        what="%d traffic results on %s" % (n, self.url))

    def summary(self, limit=10):
        """One text for assertion messages: totals and the first failures."""
        results = self._snapshot()
        fails = [r for r in results if self.is_failure(r)]
        start = results[0].t if results else 0.0
        lines = ["%d requests to %s, %d failed: %s"
                 % (len(results), self.url, len(fails), dict(self.counts()))]
        for r in fails[:limit]:
            lines.append("  +%.3fs %s" % (r.t - start,
                                          r.error or "HTTP %d %r" % (r.status, r.body)))
        return "\n".join(lines)
