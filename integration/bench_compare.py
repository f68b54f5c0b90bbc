"""bench_compare - slotsync side by side with the alternatives users run.

Used by integration/bench.py (section "Side by side"). Three strategies, each
started in turn on the same Env: the same etcd, the same base config (the
harness's copy of haproxy/haproxy.cfg), the same backends (whoami), the same
load, the same service layout; only the update strategy differs:

  slotsync      slotsync run: runtime API batches, reloads only for new
                backends
  reload        integration/bench_alt.py reload: on every watch message
                render the whole file, haproxy -c, rename, reload through
                the master socket (confd in watch mode, docker-discover, Paz)
  dns-default   HAProxy's own discovery: server-template + resolvers asking
  dns-tight     bench_alt.py dns (SRV + A from etcd's state), with HAProxy's
                default timers, then with the tightest sensible ones

Every wait here is bounded by a count and a time; every process is started
through the Env (its own session) and stopped by pid.
"""

import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_load import FAILED, read_records, summarize  # noqa: E402
from harness import (HAPROXY_BIN, PYTHON, HarnessError, etcd_delete,  # noqa: E402
                     etcd_delete_prefix, etcd_put, free_port, haproxy_cmd, http_get, wait_for,
                     write_config)

HERE = os.path.dirname(os.path.abspath(__file__))
ALT = os.path.join(HERE, "bench_alt.py")
LOAD = os.path.join(HERE, "bench_load.py")
PREFIX = "/services/"
DOMAIN = "bench.local"
OUT_BITS = 0x23 | 0x18
STRATEGIES = ("slotsync", "reload", "dns-default", "dns-tight")
NEW_SPARES = 16             # section 4: http_frontend.spare_backends' default
# section 4's HAProxy 3.4 row (backends added at run time): this binary,
# HAPROXY_34_BIN, or the one `make test-compat` builds; without one, no row
COMPAT_34 = os.path.expanduser("~/.cache/slotsync/compat/bin/haproxy-3.4")


def haproxy34_bin():
    """An HAProxy 3.4+ binary, or None."""
    for b in (os.environ.get("HAPROXY_34_BIN"), COMPAT_34):
        if not b or not os.access(b, os.X_OK):
            continue
        try:
            out = subprocess.run([b, "-v"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"HAProxy version (\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (3, 4):
            return b
    return None


DNS_TIMERS = {
    "dns-default": "",      # timeout resolve 1s, hold valid 10s
    "dns-tight": ("    timeout resolve 100ms\n    timeout retry 100ms\n"
                  "    hold valid 100ms\n    hold obsolete 0s\n"),
}


class CompareFailure(Exception):
    pass


def progress(text):
    sys.stderr.write("bench: %s\n" % text)
    sys.stderr.flush()


def pct(values, q):
    s = sorted(values)
    return s[max(1, -(-len(s) * q // 100)) - 1]


def ms(s):
    return s * 1e3


def proc_cpu(pid, children=True):
    """utime + stime (+ reaped children's) of pid in seconds, 0 if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / tick


def proc_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def master_cmd(hap, line, timeout=10):
    """A master CLI command; while the master re-executes (a reload) its
    socket refuses connections: retried every 10 ms for up to timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return hap.master_cmd(line)
        except (ConnectionError, FileNotFoundError, socket.timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def hap_reloads(hap, timeout=10):
    """Reloads counted by the master (asked again while it re-executes)."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(r"(?m)^\s*\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]",
                      master_cmd(hap, "show proc"))
        if m:
            return int(m.group(1))
        if time.monotonic() > deadline:
            raise CompareFailure("no master line in show proc for %d s" % timeout)
        time.sleep(0.01)


def hap_pids(hap):
    """Every worker's pid (current and old) from show proc."""
    out = master_cmd(hap, "show proc")
    pids = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(worker|master)\s", line)
        if m and m.group(2) == "worker":
            pids.append(int(m.group(1)))
    return pids


def hap_cpu(hap):
    """CPU of the master, of the workers it reaped, and of live workers."""
    return proc_cpu(hap.pid) + sum(proc_cpu(p, children=False) for p in hap_pids(hap))


def hap_rss_kib(hap):
    return proc_kib(hap.pid, "VmRSS") + sum(proc_kib(p, "VmRSS") for p in hap_pids(hap))


def state_rows(sock, backend=None, timeout=5):
    """[(backend, slot, addr, port, in_rotation)] from show servers state."""
    out = haproxy_cmd(sock, "show servers state" + (" " + backend if backend else ""),
                      timeout=timeout)
    rows, cols = [], None
    for line in out.splitlines():
        if line.startswith("# "):
            h = line[2:].split()
            cols = (h.index("be_name"), h.index("srv_name"), h.index("srv_addr"),
                    h.index("srv_admin_state"), h.index("srv_port"))
            continue
        if cols is None or not line.strip():
            continue
        f = line.split()
        if len(f) <= max(cols):
            continue
        up = f[cols[2]] == "127.0.0.1" and not int(f[cols[3]]) & OUT_BITS
        rows.append((f[cols[0]], f[cols[1]], f[cols[2]], int(f[cols[4]]), up))
    return rows


def ready_ports(sock, backend, timeout=5):
    return {r[3] for r in state_rows(sock, backend, timeout) if r[4]}


def ready_count(sock):
    return sum(1 for r in state_rows(sock, timeout=60) if r[4])


class WatchClock:
    """The bench's own etcd watch on a prefix: when each put's event arrives."""

    def __init__(self, url, prefix):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        import base64
        body = {"create_request": {"key": base64.b64encode(prefix.encode()).decode(),
                                   "range_end": base64.b64encode(end.encode()).decode()}}
        self.conn.request("POST", "/v3/watch", json.dumps(body),
                          {"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        self.events = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                n = len(json.loads(line).get("result", {}).get("events", []))
                with self.cond:
                    self.events += n
                    self.cond.notify_all()
        except Exception:   # closed under it by close(): the end
            return

    def wait(self, n, timeout=5):
        with self.cond:
            return self.cond.wait_for(lambda: self.events >= n, timeout)

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


# --------------------------------------------------------------------------
# One strategy: HAProxy + whatever updates it

class Setup:
    """HAProxy and its updater for one strategy, on services {name: slots}
    (backends "name", frontends on listen ports for `listen` names, one Host
    frontend when http is true)."""

    def __init__(self, bench, strategy, services, listen=(), http=False, tag="", spares=0,
                 haproxy_bin=None):
        self.b = bench
        self.spares = spares    # slotsync's spare backends (http only)
        self.haproxy_bin = haproxy_bin  # another HAProxy than HAPROXY_BIN (slotsync only)
        self.env = bench.env
        self.strategy = strategy
        self.services = services
        self.listen = {s: "127.0.0.1:%d" % free_port() for s in listen}
        self.http_bind = "127.0.0.1:%d" % free_port() if http else None
        self.tag = tag or strategy
        self.ctrl = None
        self.hap = None

    def start(self, timeout=180):
        env, st = self.env, self.strategy
        name = "%s-%s" % (self.tag, st)
        self.name = name
        t0 = time.monotonic()
        if st in ("slotsync", "slotsync-runtime"):
            cfg = {
                "etcd": {"endpoints": [self.b.etcd.url], "prefix": PREFIX},
                "haproxy": {"runtime_socket": env.path("admin.sock"),
                            "master_socket": env.path("master.sock"),
                            "base_config": env.path("haproxy-base.cfg"),
                            "services_file": env.path(name + ".cfg")},
                "defaults": {"server_options": "", "slots": 8},
                "services": {s: dict({"slots": n},
                                     **({"listen": self.listen[s]} if s in self.listen else {}))
                             for s, n in self.services.items()},
                "log_level": "info",
            }
            if st == "slotsync-runtime":   # the cost model's choice forced to the socket
                cfg["haproxy"]["bulk_path"] = "runtime"
            if self.http_bind:
                cfg["http_frontend"] = {"bind": self.http_bind, "domain": DOMAIN,
                                        "spare_backends": self.spares}
            path = write_config(env, cfg, name=name + ".json")
            # the file HAProxy starts on: configured backends, slots empty
            # (rendered with etcd's keys out of the way is not possible
            # here: render lists etcd, so it is rendered, then the filled
            # slots are what a warm start has; the bench wants a cold one)
            empty = env.path(name + ".cfg")
            with open(empty, "w") as f:
                f.write(self._slotsync_empty())
            open(empty + ".map", "w").close()
            self.hap = env.start_haproxy(empty, name="haproxy-" + name, timeout=timeout,
                                         binary=self.haproxy_bin)
            self.ctrl = env.start_slotsync(self.b.bin, path, name=name,
                                           extra_args=["--log-unlimited"])
            env.wait_log(name, r"HAProxy state read", timeout=timeout, alive=[self.ctrl])
        elif st == "reload":
            f = env.path(name + ".cfg")
            open(f, "w").close()
            self.hap = env.start_haproxy(f, name="haproxy-" + name, timeout=timeout)
            argv = [PYTHON, ALT, "reload", "--etcd", self.b.etcd.url, "--prefix", PREFIX,
                    "--base", self.hap.base_config, "--file", f,
                    "--master", self.hap.master_sock, "--domain", DOMAIN]
            for s, addr in self.listen.items():
                argv += ["--service", "%s=%s" % (s, addr)]
            for s in self.services:
                if s not in self.listen:
                    argv += ["--service", "%s=" % s]
            if self.http_bind:
                argv += ["--http-bind", self.http_bind]
            self.ctrl = env.spawn(name, argv)
            env.wait_log(name, r"(?m)^ready$", timeout=timeout, alive=[self.ctrl])
        else:
            port = free_port()
            self.ctrl = env.spawn(name, [PYTHON, ALT, "dns", "--etcd", self.b.etcd.url,
                                         "--prefix", PREFIX, "--port", port,
                                         "--domain", DOMAIN])
            env.wait_log(name, r"(?m)^ready$", timeout=timeout, alive=[self.ctrl])
            f = env.path(name + ".cfg")
            with open(f, "w") as out:
                out.write(self._dns_config(port, DNS_TIMERS[st]))
            with open(f + ".map", "w") as out:
                out.write("".join("%s.%s %s\n" % (s, DOMAIN, s) for s in self.services))
            self.hap = env.start_haproxy(f, name="haproxy-" + name, timeout=timeout)
        self.start_s = time.monotonic() - t0
        return self

    def _slotsync_empty(self):
        out = []
        for s, n in self.services.items():
            out.append("backend %s\n    mode http\n    balance roundrobin\n" % s)
            out.extend("    server s%d 0.0.0.0:0 disabled\n" % (i + 1) for i in range(n))
            out.append("\n")
            if s in self.listen:
                out.append("frontend %s\n    mode http\n    bind %s\n    default_backend %s\n\n"
                           % (s, self.listen[s], s))
        # the spare backends a render carries (defaults: 8 slots, roundrobin)
        for i in range(self.spares if self.http_bind else 0):
            out.append("backend spare:%d\n    mode http\n    balance roundrobin\n" % i)
            out.extend("    server s%d 0.0.0.0:0 disabled\n" % (k + 1) for k in range(8))
            out.append("\n")
        if self.http_bind:
            out.append("frontend slotsync_http\n    mode http\n    bind %s\n"
                       "    use_backend %%[req.hdr(host),lower,word(1,:),map(%s)]\n"
                       % (self.http_bind, self.env.path(self.name + ".cfg.map")))
        if self.haproxy_bin:
            # what "add backend" names on 3.4+ (the base config declares
            # slotsync:base), as every services file slotsync writes ends
            out.append("\ndefaults slotsync:dynamic from slotsync:base\n    mode http\n"
                       "    balance roundrobin\n")
        return "".join(out)

    def _dns_config(self, port, timers):
        out = ["resolvers benchdns\n    nameserver ns1 127.0.0.1:%d\n"
               "    accepted_payload_size 65535\n%s\n" % (port, timers)]
        for s, n in self.services.items():
            out.append("backend %s\n    mode http\n    balance roundrobin\n"
                       "    server-template s %d _%s._tcp.%s resolvers benchdns "
                       "init-addr none resolve-prefer ipv4\n\n" % (s, n, s, DOMAIN))
            if s in self.listen:
                out.append("frontend %s\n    mode http\n    bind %s\n    default_backend %s\n\n"
                           % (s, self.listen[s], s))
        if self.http_bind:
            out.append("frontend bench_http\n    mode http\n    bind %s\n"
                       "    use_backend %%[req.hdr(host),lower,word(1,:),map(%s)]\n"
                       % (self.http_bind, self.env.path(self.name + ".cfg.map")))
        if self.haproxy_bin:
            # what "add backend" names on 3.4+ (the base config declares
            # slotsync:base), as every services file slotsync writes ends
            out.append("\ndefaults slotsync:dynamic from slotsync:base\n    mode http\n"
                       "    balance roundrobin\n")
        return "".join(out)

    def ctrl_cpu(self):
        return proc_cpu(self.ctrl.pid)

    def ctrl_hwm(self):
        return proc_kib(self.ctrl.pid, "VmHWM")

    def reloads(self):
        return hap_reloads(self.hap)

    def stop(self):
        if self.ctrl is not None:
            self.env.stop(self.ctrl)
        if self.hap is not None:
            self.hap.stop()


# --------------------------------------------------------------------------
# The measurements

class Compare:
    def __init__(self, bench):
        self.b = bench
        self.env = bench.env
        self.quick = bench.quick
        self.r = {}
        self.rng = random.Random(14)
        self.whoami = []
        self.fast = []          # ports of the backend HAProxy (fast_backends())
        self.failures = []

    @property
    def etcd(self):
        return self.b.etcd

    def clear(self):
        etcd_delete_prefix(self.etcd.url, PREFIX, timeout=60)

    def run(self):
        self.r["strategies"] = list(STRATEGIES)
        for i in range(6):
            self.whoami.append(self.env.start_whoami("cmp-whoami%d" % i)[1])
        for section, run in (("floor", self.floor), ("changes", self.changes),
                             ("churn", self.churn), ("new", self.new_services),
                             ("scale", self.scale), ("restart", self.restart)):
            if self.b.wants(section):
                run()
        return self.r

    # 1. floor
    def floor(self):
        n = 40 if self.quick else 200
        progress("side by side 1. floor: %d watched puts, %d socket round trips" % (n, n))
        self.clear()
        setup = Setup(self.b, "slotsync", {"lat": 16}, tag="floor").start()
        try:
            clock = WatchClock(self.etcd.url, "/floor/")
            time.sleep(0.2)
            ev = []
            for i in range(n):
                t0 = time.monotonic()
                etcd_put(self.etcd.url, "/floor/k", "v%d" % i)
                if not clock.wait(i + 1, timeout=5):
                    raise CompareFailure("watch event %d never came" % i)
                ev.append(ms(time.monotonic() - t0))
            clock.close()
            rtt = []
            for _ in range(n):
                t0 = time.monotonic()
                haproxy_cmd(setup.hap.admin_sock, "show servers state lat")
                rtt.append(ms(time.monotonic() - t0))
        finally:
            setup.stop()
        self.r["floor"] = {"n": n, "watch_p50": pct(ev, 50), "watch_p99": pct(ev, 99),
                           "rtt_p50": pct(rtt, 50), "rtt_p99": pct(rtt, 99)}

    # 2. event -> applied
    def change_plan(self, n):
        """n changes (add, move, remove) keeping 2..8 live endpoints in a
        16-slot backend; ports unique. Returns [(op, instance, port)]."""
        live, ports, plan, next_i, next_port = {}, set(), [], 0, 30000
        for _ in range(4):
            live["e%d" % next_i] = next_port
            next_i += 1
            next_port += 1
        start = dict(live)
        for _ in range(n):
            op = self.rng.choice(("add", "move", "remove"))
            if len(live) <= 2:
                op = "add"
            elif len(live) >= 8:
                op = "remove"
            if op == "add":
                inst = "e%d" % next_i
                next_i += 1
            else:
                inst = self.rng.choice(sorted(live))
            if op == "remove":
                del live[inst]
                plan.append((op, inst, None))
            else:
                live[inst] = next_port
                plan.append((op, inst, next_port))
                next_port += 1
        return start, plan

    def changes(self):
        counts = ({"slotsync": 60, "reload": 30, "dns-default": 5, "dns-tight": 30}
                  if self.quick else
                  {"slotsync": 500, "reload": 500, "dns-default": 40, "dns-tight": 500})
        budget = 20 if self.quick else 100
        self.r["changes"] = {}
        for st in STRATEGIES:
            n = counts[st]
            progress("side by side 2. %s: up to %d changes (%d s at most)" % (st, n, budget))
            start, plan = self.change_plan(n)
            self.clear()
            for inst, port in start.items():
                etcd_put(self.etcd.url, PREFIX + "lat/" + inst, "127.0.0.1:%d" % port)
            setup = Setup(self.b, st, {"lat": 16}, tag="chg").start()
            try:
                sock = setup.hap.admin_sock
                live = dict(start)
                wait_for(lambda: ready_ports(sock, "lat") == set(live.values()),
                         timeout=30, what="%s: initial endpoints" % st)
                lat, t_end = [], time.monotonic() + budget
                for op, inst, port in plan:
                    if time.monotonic() > t_end:
                        break
                    key = PREFIX + "lat/" + inst
                    if op == "remove":
                        del live[inst]
                        etcd_delete(self.etcd.url, key)
                    else:
                        live[inst] = port
                        etcd_put(self.etcd.url, key, "127.0.0.1:%d" % port)
                    t0 = time.monotonic()
                    want = set(live.values())
                    while ready_ports(sock, "lat") != want:
                        if time.monotonic() - t0 > 30:
                            raise CompareFailure("%s: %s %s not in HAProxy after 30 s"
                                                 % (st, op, inst))
                    lat.append(ms(time.monotonic() - t0))
                self.r["changes"][st] = {
                    "n": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99),
                    "max": max(lat), "reloads": setup.reloads()}
            finally:
                setup.stop()

    def fast_backends(self, n=6):
        """n backend ports served by one more HAProxy, each answering
        `http-request return status 200` with its name (as whoami does):
        tens of thousands of requests per second, so the churn rows measure
        the strategies, not the Python backends. Started once."""
        if self.fast:
            return self.fast
        ports = [free_port() for _ in range(n)]
        path = self.env.path("fast-backends.cfg")
        with open(path, "w") as f:
            f.write("global\n    maxconn 4000\n\ndefaults\n    mode http\n"
                    "    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n")
            for i, port in enumerate(ports):
                f.write("\nfrontend fast%d\n    bind 127.0.0.1:%d\n"
                        "    http-request return status 200 content-type text/plain "
                        "string fast%d\n" % (i, port, i))
        proc = self.env.spawn("fast-backends", [HAPROXY_BIN, "-f", path])
        for port in ports:
            wait_for(lambda: http_get("http://127.0.0.1:%d/" % port, timeout=1)[0] == 200,
                     timeout=15, alive=[proc], what="backend HAProxy on port %d" % port)
        self.fast = ports
        return ports

    # 3. churn under wrk
    def wrk(self, url, seconds):
        out = subprocess.run(["wrk", "-t1", "-c8", "-d%ds" % seconds, "--latency",
                              "--timeout", "5s", url],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=seconds + 60).stdout
        res = {"raw": out}
        m = re.search(r"(\d+) requests in", out)
        res["requests"] = int(m.group(1)) if m else 0
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        res["rps"] = float(m.group(1)) if m else 0.0
        m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        res["p99_ms"] = (float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
                         if m else None)
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        non2xx = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out)
        sock_err = sum(int(x) for x in m.groups()) if m else 0
        res["connect_err"] = int(m.group(1)) if m else 0
        res["non2xx"], res["sock_err"] = non2xx, sock_err
        res["failed"] = non2xx + sock_err
        return res

    def churn(self):
        seconds = 5 if self.quick else 30
        rate = 10
        self.r["churn"] = {"seconds": seconds, "rate": rate}
        pool = self.fast_backends()
        for st in ("reference",) + STRATEGIES:
            progress("side by side 3. churn under wrk: %s (%d s)" % (st, seconds))
            self.clear()
            live = set(pool[:4])
            for p in live:
                etcd_put(self.etcd.url, PREFIX + "web/w%d" % p, "127.0.0.1:%d" % p)
            setup = Setup(self.b, "slotsync" if st == "reference" else st, {"web": 16},
                          listen=("web",), tag="churn-" + st).start()
            try:
                sock = setup.hap.admin_sock
                wait_for(lambda: ready_ports(sock, "web") == live, timeout=30,
                         what="%s: churn endpoints" % st)
                r0, hc0, cc0 = setup.reloads(), hap_cpu(setup.hap), setup.ctrl_cpu()
                result = {}
                t = threading.Thread(target=lambda: result.update(
                    self.wrk("http://%s/" % setup.listen["web"], seconds)))
                t.start()
                t0, i = time.monotonic(), 0
                while t.is_alive() and i < seconds * rate + rate:
                    if st == "reference":
                        etcd_put(self.etcd.url, "/unwatched/k%d" % (i % 16), "127.0.0.1:%d"
                                 % pool[i % len(pool)])
                    elif i % 2 == 0:
                        p = self.rng.choice(sorted(live))
                        live.discard(p)
                        etcd_delete(self.etcd.url, PREFIX + "web/w%d" % p)
                    else:
                        p = self.rng.choice(sorted(set(pool) - live))
                        live.add(p)
                        etcd_put(self.etcd.url, PREFIX + "web/w%d" % p, "127.0.0.1:%d" % p)
                    i += 1
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                t.join(seconds + 90)
                res = dict(result)
                res.pop("raw", None)
                res["changes"] = i
                res["reloads"] = setup.reloads() - r0
                res["hap_procs"] = 1 + len(hap_pids(setup.hap))
                res["hap_cpu"] = hap_cpu(setup.hap) - hc0
                res["ctrl_cpu"] = setup.ctrl_cpu() - cc0
                if not result.get("requests"):
                    raise CompareFailure("%s: wrk made no request: %s"
                                         % (st, result.get("raw", "")[-300:]))
                self.r["churn"][st] = res
            finally:
                setup.stop()

    # 4. new services in a burst
    def wait_200(self, url, names, t0, deadline_s=120):
        """{service: seconds after t0 of its first 200 by Host}; every pending
        service asked in turn, deadline_s at most."""
        pending, took = set(names), {}
        deadline = t0 + deadline_s
        u = urllib.parse.urlsplit(url)
        while pending and time.monotonic() < deadline:
            for s in sorted(pending):
                try:
                    c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
                    c.request("GET", "/", headers={"Host": "%s.%s" % (s, DOMAIN)})
                    ok = c.getresponse().status == 200
                    c.close()
                except OSError:
                    ok = False
                if ok:
                    took[s] = time.monotonic() - t0
                    pending.discard(s)
        return took

    def new_services(self):
        n = 20 if self.quick else 100
        self.r["new"] = {"n": n, "spares": NEW_SPARES}
        # (row, strategy, slotsync's spare backends, HAProxy binary)
        rows = [("slotsync-spares", "slotsync", NEW_SPARES, None), ("slotsync", "slotsync", 0, None),
                ("reload", "reload", 0, None), ("dns-tight", "dns-tight", 0, None)]
        hap34 = haproxy34_bin()
        if hap34:
            rows.insert(2, ("slotsync-34", "slotsync", 0, hap34))
        else:
            progress("side by side 4.: no HAProxy 3.4 (HAPROXY_34_BIN or %s): no 3.4 row"
                     % COMPAT_34)
        for row, st, spares, hap_bin in rows:
            progress("side by side 4. %d new services in a burst: %s" % (n, row))
            self.clear()
            names = ["new%03d" % i for i in range(n)]
            # DNS cannot create a backend: the services are declared in advance
            declared = {s: 2 for s in names + ["single"]} if st.startswith("dns") else {}
            setup = Setup(self.b, st, dict(declared, base=2), http=True,
                          tag="new", spares=spares, haproxy_bin=hap_bin).start()
            try:
                if st == "slotsync":
                    # settled: what is timed is the new service, not slotsync's start
                    setup.env.wait_log(setup.name, r"etcd watch established", timeout=30,
                                        alive=[setup.ctrl])
                if hap_bin:
                    # the row is what it says: HAProxy 3.4 adds the backends
                    setup.env.wait_log(setup.name, r"new HTTP services get a backend of their "
                                       r"own at run time", timeout=30, alive=[setup.ctrl])
                r0 = setup.reloads()
                url = "http://%s/" % setup.http_bind
                # one new service alone: its put's reply -> its first 200
                t1 = time.monotonic()
                etcd_put(self.etcd.url, PREFIX + "single/e1", "127.0.0.1:%d" % self.whoami[0])
                single = self.wait_200(url, ["single"], t1).get("single")
                r1 = setup.reloads()
                t0 = time.monotonic()
                put_at = {}
                for i, s in enumerate(names):
                    p = self.whoami[i % len(self.whoami)]
                    etcd_put(self.etcd.url, PREFIX + "%s/e1" % s, "127.0.0.1:%d" % p)
                    put_at[s] = time.monotonic() - t0
                put_s = time.monotonic() - t0
                took = self.wait_200(url, names, t0)
                times = sorted(took.values())
                own = sorted(took[s] - put_at[s] for s in took)
                self.r["new"][row] = {
                    "answered": len(took), "put_s": put_s,
                    "single": ms(single) if single is not None else None,
                    "single_reloads": r1 - r0,
                    "p50": ms(pct(times, 50)) if times else None,
                    "own_p50": ms(pct(own, 50)) if own else None,
                    "last": ms(times[-1]) if times else None,
                    "reloads": setup.reloads() - r1, "declared": bool(declared)}
                if single is None:
                    self.failures.append("%s: the single new service never answered" % row)
                if pending := set(names) - set(took):
                    self.failures.append("%s: %d of %d new services never answered"
                                         % (row, len(pending), n))
            finally:
                setup.stop()

    # 5 + 6. scale and cost growth
    def scale(self):
        sizes = self.b.sizes or ([(1, 100), (10, 100), (100, 100)] if self.quick else
                                 [(1, 100), (10, 100), (100, 100), (1000, 10), (100, 1000)])
        budget = 60 if self.quick else 150
        self.r["scale"] = []
        for n_svc, per in sizes:
            total = n_svc * per
            slots = 16 if per <= 10 else (128 if per <= 100 else 1024)
            names = ["s%04d" % i for i in range(n_svc)]
            progress("side by side 5./6. %d x %d endpoints" % (n_svc, per))
            self.clear()
            from bench import etcd_load
            etcd_load(self.etcd.url, [(PREFIX + "%s/e%04d" % (s, i),
                                       "127.0.0.1:%d" % (10000 + i))
                                      for s in names for i in range(per)])
            row = {"services": n_svc, "per": per, "total": total, "slots": slots}
            for st in ("slotsync", "slotsync-runtime", "reload", "dns-default"):
                if self.b.strategies and st not in self.b.strategies:
                    continue
                if st.startswith("dns") and per > 100:
                    row[st] = {"skipped": "an SRV answer for %d endpoints is about %d KB, "
                               "over UDP's 64 KB (HAProxy 2.6 resolvers have no TCP)"
                               % (per, per * 86 // 1000)}
                    continue
                t0 = time.monotonic()
                setup = Setup(self.b, st, {s: slots for s in names},
                              tag="scale%d" % total).start(timeout=budget)
                try:
                    sock = setup.hap.admin_sock
                    got = 0
                    while time.monotonic() - t0 < budget:
                        got = ready_count(sock)
                        if got >= total:
                            break
                        time.sleep(0.2)
                    conv = time.monotonic() - t0
                    res = {"converged": got >= total, "got": got, "start_s": conv,
                           "hap_start_s": setup.start_s,
                           "ctrl_cpu": setup.ctrl_cpu(), "ctrl_kib": setup.ctrl_hwm(),
                           "hap_kib": hap_rss_kib(setup.hap), "reloads": setup.reloads()}
                    # cost of one change at this size: 20 moves in s0000 (5 quick)
                    lat = []
                    if got >= total:
                        s = names[0]
                        t_moves = time.monotonic()
                        for i in range(5 if self.quick else 20):
                            if time.monotonic() - t_moves > 60 and len(lat) >= 3:
                                break   # a slow strategy: fewer moves, p50 of those
                            port = 40000 + i
                            etcd_put(self.etcd.url, PREFIX + "%s/e0000" % s,
                                     "127.0.0.1:%d" % port)
                            t1 = time.monotonic()
                            while port not in ready_ports(sock, s, timeout=30):
                                if time.monotonic() - t1 > 60:
                                    break
                            else:
                                lat.append(ms(time.monotonic() - t1))
                                continue
                            # an alternative that lost a change: noted, not fatal
                            fail = "%s at {:,} endpoints: a move not applied in 60 s".format(
                                total) % st
                            if st == "slotsync":
                                raise CompareFailure(fail)
                            self.failures.append(fail)
                            break
                        if lat:
                            res["chg_p50"] = pct(lat, 50)
                    res["ctrl_kib"] = max(res["ctrl_kib"], setup.ctrl_hwm())
                    row[st] = res
                finally:
                    setup.stop()
            self.r["scale"].append(row)


    # 7. HAProxy restarted under load
    def restart(self):
        """kill -9 of HAProxy under load (integration/bench_load.py, every
        request time-stamped), endpoints changed while it is down, HAProxy
        started again on the same files: the requests that failed once its
        listener accepted connections again, by outcome, and the time from
        the listener's and the runtime socket's return until HAProxy equals
        etcd."""
        seconds = 10 if self.quick else 20
        down_s = 3
        budget = 60
        procs, threads = 2, 4
        fast = self.fast_backends()
        self.r["restart"] = rs = {"seconds": seconds, "down_s": down_s,
                                  "procs": procs, "threads": threads}
        for st in ("slotsync", "reload", "dns-default"):
            if self.b.strategies and st not in self.b.strategies:
                continue
            progress("side by side 7. HAProxy restarted under load: %s" % st)
            self.clear()
            gone = [self.env.start_whoami("restart-%s-w%d" % (st, i)) for i in range(2)]
            live = {"web/f0": fast[0], "web/f1": fast[1],
                    "web/g0": gone[0][1], "web/g1": gone[1][1]}
            for k, port in live.items():
                etcd_put(self.etcd.url, PREFIX + k, "127.0.0.1:%d" % port)
            setup = Setup(self.b, st, {"web": 16}, listen=("web",),
                          tag="restart-" + st).start()
            loads = []
            try:
                sock = setup.hap.admin_sock
                want = set(live.values())
                wait_for(lambda: ready_ports(sock, "web") == want, timeout=30,
                         what="%s: the endpoints before the restart" % st)
                host, port = setup.listen["web"].rsplit(":", 1)
                for i in range(procs):
                    out = self.env.path("restart-%s-load%d.bin" % (st, i))
                    loads.append((out, self.env.spawn(
                        "restart-%s-load%d" % (st, i),
                        [PYTHON, LOAD, "--host", host, "--port", port,
                         "--seconds", seconds, "--threads", threads, "--out", out])))
                time.sleep(3)   # load before the kill (a timing of the bench, not a guard)
                pids = [setup.hap.pid] + hap_pids(setup.hap)
                t_kill = time.monotonic()
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                setup.hap.stop(9)
                # the kill is done when the listener refuses: from then on a
                # connect that succeeds is the new HAProxy's
                t_gone = wait_for(lambda: refused_at(host, int(port)), timeout=10,
                                  interval=0.005, what="%s: the killed HAProxy's "
                                  "listener to refuse" % st)
                for (proc, _), k in zip(gone, ("web/g0", "web/g1")):
                    self.env.stop(proc)
                    etcd_delete(self.etcd.url, PREFIX + k)
                    del live[k]
                for k, p in (("web/f2", fast[2]), ("web/f3", fast[3])):
                    etcd_put(self.etcd.url, PREFIX + k, "127.0.0.1:%d" % p)
                    live[k] = p
                time.sleep(down_s)
                want = set(live.values())
                watch = SocketWatch(sock, "web", want, budget).start()
                t_start = time.monotonic()
                setup.hap.start(timeout=30)
                watch.join(budget + 10)
                for out, proc in loads:
                    wait_for(lambda: proc.poll() is not None, timeout=seconds + 30,
                             what="%s: the load client %s to end" % (st, proc.name))
                records = []
                for out, proc in loads:
                    if proc.returncode != 0 or not os.path.exists(out):
                        raise CompareFailure("%s: %s exited %s: %s"
                                             % (st, proc.name, proc.returncode,
                                                self.env.log_tail(proc.name, 3)))
                    records.extend(read_records(out))
                if not records:
                    raise CompareFailure("%s: the load client made no request" % st)
                res = summarize(records, t_kill, t_gone)
                res["requests"] = len(records)
                res["t_start"] = t_start - t_kill
                back = res["back"]
                res["back_s"] = back - t_kill if back is not None else None
                res["sock_s"] = watch.t_sock - back if watch.t_sock and back else None
                res["conv_from_back"] = (watch.t_conv - back
                                         if watch.t_conv and back else None)
                res["conv_from_sock"] = (watch.t_conv - watch.t_sock
                                         if watch.t_conv and watch.t_sock else None)
                res["converged"] = watch.t_conv is not None
                res["budget_s"] = budget
                res["reloads"] = setup.reloads()
                rs[st] = res
                if watch.t_conv is None:
                    self.failures.append("%s: HAProxy restarted did not equal etcd in %d s"
                                         % (st, budget))
            finally:
                for _, proc in loads:
                    self.env.stop(proc)
                setup.stop()
                for proc, _ in gone:
                    self.env.stop(proc)


def refused_at(host, port):
    """time.monotonic() when a connect to host:port was refused, or None
    (it was accepted: the listener is still there)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return time.monotonic()
    except OSError:
        return None
    finally:
        s.close()
    return None


class SocketWatch:
    """Polls HAProxy's runtime socket from a thread (every 10 ms, for budget
    seconds at most): t_sock is when it first answered `show servers state`,
    t_conv when backend's slots in rotation first were exactly want (both
    time.monotonic(), None when not seen)."""

    def __init__(self, sock, backend, want, budget):
        self.sock, self.backend, self.want, self.budget = sock, backend, want, budget
        self.t_sock = self.t_conv = None
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def join(self, timeout):
        self._t.join(timeout)

    def _run(self):
        end = time.monotonic() + self.budget
        while time.monotonic() < end:
            try:
                ports = ready_ports(self.sock, self.backend, timeout=1)
            except (OSError, HarnessError):
                time.sleep(0.01)
                continue
            now = time.monotonic()
            if self.t_sock is None:
                self.t_sock = now
            if ports == self.want:
                self.t_conv = now
                return
            time.sleep(0.01)


# --------------------------------------------------------------------------
# Report

LABEL = {
    "slotsync": "slotsync (runtime API)",
    "slotsync-runtime": "slotsync, bulk_path runtime (no bulk reload)",
    "slotsync-spares": "slotsync, spare backends",
    "slotsync-34": "slotsync on HAProxy 3.4, backends added at run time",
    "reload": "reload per change",
    "dns-default": "DNS, HAProxy's default timers",
    "dns-tight": "DNS, tight timers (100 ms)",
    "reference": "reference (no watched change)",
}


def f_ms(v):
    if v is None:
        return "-"
    if v < 10:
        return "%.2f ms" % v
    if v < 1000:
        return "%.0f ms" % v
    return "%.2f s" % (v / 1e3)


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "-"
    x = a / b
    return ("%.0fx" % x) if x >= 100 else ("%.1fx" % x) if x >= 10 else ("%.2fx" % x)


def kib_text(k):
    return "%.1f MiB" % (k / 1024.0)


def bytes_per_endpoint(rows, st):
    """Peak RSS growth per endpoint from the smallest size: [(total, B/ep)]."""
    base = None
    out = []
    for row in rows:
        res = row.get(st, {})
        if "ctrl_kib" not in res:
            continue
        if base is None:
            base = (row["total"], res["ctrl_kib"])
            continue
        out.append((row["total"], (res["ctrl_kib"] - base[1]) * 1024.0
                    / (row["total"] - base[0])))
    return base, out


def new_services_lines(nw):
    """Markdown lines of section 4 (Compare.new_services()' results)."""
    L = []
    add = L.append
    add("## 4. New services in a burst")
    add("")
    add("First one new service alone: timed from its etcd put's reply until `GET /` "
        "with `Host: single.%s` through the Host frontend answers 200. Then %d "
        "services, one endpoint each, put one after the other as fast as etcd takes "
        "them; each timed until its Host answers 200, from the first put (p50, last) "
        "and from its own put (own p50); every pending service is asked in turn, 120 s "
        "at most. slotsync runs twice: with %d spare backends (`http_frontend."
        "spare_backends`' default: a new service is bound to a free spare at run "
        "time, and one reload renders the bound ones and a fresh pool when fewer than "
        "half are free) and with `spare_backends: 0` (a reload creates each backend; "
        "bursts coalesce). HAProxy's DNS discovery cannot create a backend: its row "
        "has the backends declared in advance (server-template and Host map in the "
        "file HAProxy started with); the others start with none of them. Reloads "
        "are counted separately for the single service and for the burst. The "
        "HAProxy 3.4 row (when a 3.4 binary is there: `HAPROXY_34_BIN` or `make "
        "test-compat`'s) is slotsync with `spare_backends: 0` on HAProxy 3.4, "
        "which adds each new service's backend at run time (`add backend`); every "
        "other row runs `HAPROXY_BIN`."
        % (DOMAIN, nw["n"], nw.get("spares", 16)))
    add("")
    add("| strategy | one new service: put -> 200 | its reloads | burst: answered | p50 "
        "| own p50 | last | last / slotsync's | burst reloads |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = nw.get("slotsync-spares") or nw.get("slotsync")
    for st in ("slotsync-spares", "slotsync", "slotsync-34", "reload", "dns-tight"):
        c = nw.get(st)
        if not c:
            continue
        label = LABEL[st]
        if st == "slotsync-spares":
            label = "slotsync, %d spare backends" % nw.get("spares", 16)
        elif st == "slotsync":
            label = "slotsync, `spare_backends: 0`"
        elif st == "slotsync-34":
            label = "slotsync on HAProxy 3.4, backends added at run time"
        add("| %s%s | %s | %s | %d of %d | %s | %s | %s | %s | %d |"
            % (label, " (backends declared in advance)" if c["declared"] else "",
               f_ms(c.get("single")), c.get("single_reloads", "-"), c["answered"], nw["n"],
               f_ms(c["p50"]), f_ms(c.get("own_p50")), f_ms(c["last"]),
               ratio(c["last"], base["last"]), c["reloads"]))
    add("")
    return L


def scale_lines(rows):
    """Markdown lines of sections 5 and 6 for the rows measured; also the
    peak RSS per endpoint added (bytes_per_endpoint()). Returns (lines,
    per_ep, base)."""
    L = []
    add = L.append
    add("## 5. Scale and 6. cost growth")
    add("")
    add("For each size: etcd holds the keys first; then, from nothing running, "
        "HAProxy and the strategy's updater are started (slotsync: HAProxy on its "
        "backends with empty slots, then `slotsync run`; reload per change: HAProxy on "
        "an empty file, then the updater renders and reloads; DNS: the DNS server, "
        "then HAProxy on server-templates), timed until every endpoint is in rotation. "
        "Then 5-20 moves of one endpoint are timed (event -> applied p50 at that "
        "size; at least 3, fewer than 20 when they take over 60 s). Peak RSS is the controller's VmHWM (the Python updaters' figures are "
        "the interpreter's, given for completeness); HAProxy's RSS is master + "
        "workers at the end. DNS runs with HAProxy's default timers here.")
    add("")
    add("| endpoints (services x each) | strategy | start -> converged (vs slotsync) "
        "| controller CPU | controller peak RSS | HAProxy RSS | reloads | change p50 |")
    add("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        size = "{:,} ({:,} x {:,})".format(row["total"], row["services"], row["per"])
        base = row.get("slotsync", {}).get("start_s")
        for st in ("slotsync", "slotsync-runtime", "reload", "dns-default"):
            c = row.get(st)
            if c is None:
                continue
            if "skipped" in c:
                add("| %s | %s | not run: %s | | | | | |" % (size, LABEL[st], c["skipped"]))
                continue
            conv = ("%.2f s (%s)" % (c["start_s"], ratio(c["start_s"], base))
                    if c["converged"] else "**not converged**: {:,} after {:.0f} s".format(
                        c["got"], c["start_s"]))
            label = LABEL[st]
            if st == "slotsync":  # what its cost model chose at this size (issue 23)
                label = "slotsync (cost model: %s)" % ("one reload" if c["reloads"] else
                                                       "the socket")
            add("| %s | %s | %s | %.2f s | %s | %s | %d | %s |"
                % (size, label, conv, c["ctrl_cpu"], kib_text(c["ctrl_kib"]),
                   kib_text(c["hap_kib"]), c["reloads"], f_ms(c.get("chg_p50"))))
    add("")
    base, per_ep = bytes_per_endpoint(rows, "slotsync")
    if per_ep:
        add("slotsync's peak RSS above its figure at {:,} endpoints ({}), per endpoint "
            "added: {}.".format(base[0], kib_text(base[1]), ", ".join(
                "{:,.0f} B at {:,}".format(b, n) for n, b in per_ep)))
        add("")

    growth = []
    for st in ("slotsync", "reload", "dns-default"):
        pts = [(row["total"], row[st]) for row in rows
               if "chg_p50" in row.get(st, {})]
        if len(pts) < 2:
            continue
        (n0, a), (n1, b) = pts[0], pts[-1]
        x = b["chg_p50"] / a["chg_p50"] if a["chg_p50"] > 0 else 0
        shape = ("flat" if x < 3 else "roughly linear" if x > (n1 / n0) / 3
                 else "growing, less than linearly")
        growth.append("%s: change p50 %s at {:,} -> %s at {:,} endpoints (%.1fx for "
                      "%.0fx the endpoints: %s)".format(n0, n1)
                      % (LABEL[st], f_ms(a["chg_p50"]), f_ms(b["chg_p50"]), x, n1 / n0,
                         shape))
    if growth:
        add("Cost growth (event -> applied p50 from the smallest to the largest size "
            "measured): " + "; ".join(growth) + ". A flat p50 is what a runtime-API "
            "update should give; a reload re-reads the whole configuration, so its "
            "cost grows with the size of the file; DNS is bound by its polling timer, "
            "not by the size.")
        add("")

    return L, per_ep, base


def target_misses(rows, alone):
    """The issue's targets that the measurements missed, as report lines.
    rows: the scale rows (may be empty); alone: bench.py's r (its "c", the
    100,000-key startup, when it ran)."""
    misses = []
    base, per_ep = bytes_per_endpoint(rows, "slotsync")
    if per_ep:
        n_last, b_last = per_ep[-1]
        if b_last > 400:
            misses.append(
                "**Memory: at most 400 bytes per endpoint above a fixed base** - missed: "
                "{:,.0f} B per endpoint between {:,} and {:,} endpoints (peak RSS {} at "
                "{:,}). What limits it: see \"Where slotsync's memory goes\" below."
                .format(b_last, base[0], n_last, kib_text(rows[-1]["slotsync"]["ctrl_kib"]),
                        n_last))
        at10k = [row for row in rows if row["total"] == 10000 and "ctrl_kib" in
                 row.get("slotsync", {})]
        if at10k and at10k[0]["slotsync"]["ctrl_kib"] > 12 * 1024:
            misses.append("**10,000 endpoints under 12 MB** - missed: %s peak RSS at "
                          "10,000 (%d x %d, %d slots each), %s above the %s slotsync "
                          "has at {:,} endpoints. What limits it: that base, most of "
                          "it the pages of the shared libraries, leaves almost nothing "
                          "under 12 MB, and above it the slot tables, the catalog and "
                          "the transient buffers of the listing, the resync and the "
                          "batches (see \"Where slotsync's memory goes\" below)."
                          .format(base[0])
                          % (kib_text(at10k[0]["slotsync"]["ctrl_kib"]),
                             at10k[0]["services"], at10k[0]["per"], at10k[0]["slots"],
                             kib_text(at10k[0]["slotsync"]["ctrl_kib"] - base[1]),
                             kib_text(base[1])))
    if alone and alone.get("c"):
        cold, warm = alone["c"]["cold"], alone["c"]["warm"]
        if cold.get("converged") and cold.get("done_s"):
            x = cold["done_s"] / warm["listed_s"]
            in_hap = sum(b[3] for b in cold["batches"]) / 1e3
            n_cmds = sum(b[1] for b in cold["batches"])
            if x > 1.2:
                misses.append(
                    "**Cold start within 1.2x of the listing alone** - missed: start -> "
                    "converged %.2f s against %.2f s for the listing (%.2fx) at {:,} "
                    "keys. What limits it: HAProxy applying the commands. The listing "
                    "is applied page by page while it is read, so the two overlap, but "
                    "the %s batches' {:,} commands were in HAProxy for %.2f s in all "
                    "(%.0f us a command, %.0f%% of start -> converged), more than the "
                    "listing itself takes. Two commands an endpoint (address, then "
                    "state) is the least HAProxy 2.6's runtime API allows, and it finds "
                    "a server by walking its backend's list: measured by hand on an idle "
                    "HAProxy 2.6 (2026-12-02), `set server` took 5.7 us a command on the "
                    "first of 1,000 servers and 17-19 us on the last, so backends of "
                    "1,000 slots are its slowest case."
                    .format(alone["c"]["keys"], n_cmds)
                    % (cold["done_s"], warm["listed_s"], x, len(cold["batches"]), in_hap,
                       in_hap * 1e6 / n_cmds if n_cmds else 0,
                       100 * in_hap / cold["done_s"]))
    return misses


def churn_lines(cu, strategies):
    """Markdown lines of section 3 (Compare.churn()'s results)."""
    L = []
    add = L.append
    ref = cu["reference"]
    add("## 3. Churn under load")
    add("")
    add("`wrk -t1 -c8 -d%ds --latency` through a frontend of a 16-slot backend, 6 "
        "backends (ports of a second HAProxy answering `http-request return status "
        "200`, so that the backends are not the bottleneck; 4 registered at a time), "
        "while the "
        "endpoints churn at %d changes/s (one removed, then one added; never fewer "
        "than 3 live). Reference: slotsync running, the same etcd write rate on keys "
        "nobody watches. CPU seconds are those spent during the wrk run; HAProxy's "
        "include its master, the workers it reaped and the live ones; the "
        "controller's include its children (`haproxy -c`)."
        % (cu["seconds"], cu["rate"]))
    add("")
    add("| strategy | changes | failed requests (non-2xx + socket errors) | req/s "
        "(vs reference) | p99 (vs reference) | reloads | HAProxy processes at the end "
        "| controller CPU | HAProxy CPU |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for st in ("reference",) + tuple(strategies):
        c = cu[st]
        add("| %s | %d | %d (%d + %d) of %d | %.0f (%s) | %s (%s) | %d | %d | %.2f s | %.2f s |"
            % (LABEL[st], c["changes"], c["failed"], c["non2xx"], c["sock_err"],
               c["requests"], c["rps"], ratio(c["rps"], ref["rps"]), f_ms(c["p99_ms"]),
               ratio(c["p99_ms"], ref["p99_ms"]), c["reloads"], c["hap_procs"],
               c["ctrl_cpu"], c["hap_cpu"]))
    add("")
    return L


# A section of docs/PERFORMANCE.md between these markers can be written by
# a run of that section alone (bench.py --section NAME --write PATH) without
# touching the rest of the file; a whole run writes every marker itself.
SECTION_BEGIN = "<!-- bench %s: begin (integration/bench.py --section %s writes this) -->"
SECTION_END = "<!-- bench %s: end -->"


def marked(name, lines):
    """lines between the markers of section name."""
    return [SECTION_BEGIN % (name, name), ""] + list(lines) + [SECTION_END % name, ""]


def replace_section(text, name, block, before=None):
    """text with section name's marked block replaced by block (lines from
    marked()); without that block in text, block is inserted before the
    first line that starts with `before` (when given and present), else
    appended. Everything outside the block is kept byte for byte."""
    begin, end = SECTION_BEGIN % (name, name), SECTION_END % name
    body = "\n".join(block).rstrip("\n") + "\n"
    if begin in text and end in text[text.index(begin):]:
        a = text.index(begin)
        b = text.index(end, a) + len(end)
        if text[b:b + 1] == "\n":
            b += 1
        return text[:a] + body + text[b:]
    if before:
        if text.startswith(before):
            return body + "\n" + text
        i = text.find("\n" + before)
        if i >= 0:
            return text[:i + 1] + body + "\n" + text[i + 1:]
    if not text:
        return body
    return text.rstrip("\n") + "\n\n" + body


def restart_lines(rs):
    """Markdown lines of section 7 (Compare.restart()'s results)."""
    L = []
    add = L.append
    add("## 7. HAProxy restarted under load")
    add("")
    add("Load: `integration/bench_load.py`, %d processes x %d threads, %d s, one request "
        "per connection (`Connection: close`, no keep-alive: every request goes through "
        "connect(), so a refused connect says HAProxy's listener was not there and the "
        "first connect that succeeds after the kill dates its return), through a frontend "
        "of a 16-slot backend with 4 endpoints (2 on a second HAProxy answering 200, 2 on "
        "whoami backends). Every request's outcome is time-stamped (CLOCK_MONOTONIC) and "
        "classed: ok (2xx), 5xx, reset (closed or reset without a status line), refused, "
        "timeout (5 s), other status, other error. 3 s into the load HAProxy's master and "
        "workers are killed with `kill -9`; while it is down the 2 whoami backends are stopped and their keys "
        "deleted, and 2 other endpoints of the second HAProxy are registered; %.0f s later "
        "HAProxy is started again on the same files."
        % (rs.get("procs", 0), rs.get("threads", 0), rs.get("seconds", 0),
           rs.get("down_s", 0)))
    add("")
    add("- **back**: the first connect() that succeeded of a request started after the "
        "frontend port was seen refusing (HAProxy's listener again); **after back**: "
        "every request whose connect() succeeded from then on or that started after it, "
        "i.e. the requests HAProxy accepted again: a failure among them is one the "
        "restart and the strategy caused, not the down time (the refused connects while "
        "it was down are in the \"while down\" column); **ok p50 / p99**: the duration "
        "of the ok requests after back")
    add("- HAProxy's base config (haproxy/haproxy.cfg) has `retries 3` and "
        "`option redispatch`: a request sent to a stale endpoint (nobody listening "
        "there) is retried on another server, so on loopback stale endpoints cost "
        "retries, not failures, unless every server a request tries is stale or none "
        "is there yet; the converged columns say how long stale or missing endpoints "
        "were in HAProxy")
    add("- **socket answers**: the bench's first `show servers state` answered on the "
        "new runtime socket (polled every 10 ms from the start), after back; "
        "**converged**: the first poll that shows exactly etcd's 4 endpoints in rotation, "
        "timed from back and from the runtime socket's first answer")
    add("")
    add("| strategy | requests | while down: refused (other) | after back: requests "
        "| after back: failed | of which 5xx / reset / timeout / refused / other "
        "| last failure after back | after back: ok p50 / p99 | kill -> back "
        "| back -> socket answers | back -> converged | socket -> converged | reloads |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for st in ("slotsync", "reload", "dns-default"):
        c = rs.get(st)
        if not c:
            continue
        after, down = c["after"], c["down"]
        failed = sum(after[k] for k in FAILED)
        other = after["other-status"] + after["error"]

        def s_(v):
            return "%.3f s" % v if v is not None else "-"
        conv_b = s_(c["conv_from_back"]) if c["converged"] else \
            "**not converged** in %.0f s" % c["budget_s"]
        conv_s = s_(c["conv_from_sock"]) if c["converged"] else "-"
        p50, p99 = c.get("after_ok_ms", (None, None))
        add("| %s | %d | %d (%d) | %d | %d | %d / %d / %d / %d / %d | %s | %s | %s | %s "
            "| %s | %s | %d |"
            % (LABEL[st], c["requests"], down["refused"],
               sum(down.values()) - down["refused"], sum(after.values()), failed,
               after["5xx"], after["reset"], after["timeout"], after["refused"], other,
               s_(c["last_failure"]) if c["last_failure"] is not None else "none",
               "%s / %s" % (f_ms(p50), f_ms(p99)),
               s_(c["back_s"]), s_(c["sock_s"]), conv_b, conv_s, c["reloads"]))
    add("")
    add("Before the kill the requests were: %s; in flight at the kill (started before, "
        "ended after): %s."
        % ("; ".join("%s %s" % (LABEL[st], ", ".join(
            "%d %s" % (n, k) for k, n in rs[st]["before"].items() if n))
            for st in ("slotsync", "reload", "dns-default") if rs.get(st)),
           ", ".join("%s %d" % (LABEL[st], rs[st]["in_flight"])
                     for st in ("slotsync", "reload", "dns-default") if rs.get(st))))
    add("")
    return L


def report_lines(r, alone):
    """Markdown lines of the side-by-side sections; alone: bench.py's r
    (for the cold-start target). Returns (lines, headline, misses)."""
    L = []
    add = L.append
    fl = r["floor"]
    floor = fl["watch_p50"] + fl["rtt_p50"]
    ch = r["changes"]
    s_p50 = ch["slotsync"]["p50"]
    add("## 1. Floor")
    add("")
    add("What no strategy can beat on this machine: the bench's own etcd watch, "
        "from sending a put until its event arrives (%d puts), and one runtime-socket "
        "round trip (connect, `show servers state` of a 16-slot backend, read the reply)."
        % fl["n"])
    add("")
    add("| measure | p50 | p99 |")
    add("|---|---:|---:|")
    add("| etcd put -> watch event | %s | %s |" % (f_ms(fl["watch_p50"]), f_ms(fl["watch_p99"])))
    add("| runtime-socket round trip | %s | %s |" % (f_ms(fl["rtt_p50"]), f_ms(fl["rtt_p99"])))
    add("| floor (sum of the p50s) | %s | |" % f_ms(floor))
    add("")
    add("## 2. Event -> applied")
    add("")
    add("Single changes of one 16-slot backend (add, move, remove, mixed, 2 to 8 "
        "endpoints live; the same sequence for every strategy), each timed from the "
        "put's (or delete's) reply until `show servers state` shows exactly the "
        "expected endpoints in rotation. Each strategy stops at its count or after its "
        "time budget, whichever comes first (the count reached is in the table).")
    add("")
    add("| strategy | changes | p50 | p99 | max | p50 / floor | p50 / slotsync's | reloads |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for st in r["strategies"]:
        c = ch[st]
        add("| %s | %d | %s | %s | %s | %s | %s | %d |"
            % (LABEL[st], c["n"], f_ms(c["p50"]), f_ms(c["p99"]), f_ms(c["max"]),
               ratio(c["p50"], floor), ratio(c["p50"], s_p50), c["reloads"]))
    add("")
    L.extend(marked("churn", churn_lines(r["churn"], r["strategies"])))
    L.extend(marked("new", new_services_lines(r["new"])))
    scale, per_ep, base = scale_lines(r["scale"])
    L.extend(marked("scale", scale))
    if r.get("restart"):
        L.extend(marked("restart", restart_lines(r["restart"])))

    # headline ratios
    cu = r["churn"]
    ref = cu["reference"]
    head = []
    for st in ("reload", "dns-tight", "dns-default"):
        head.append("event -> applied p50: %s is %s slotsync's (%s vs %s)"
                    % (LABEL[st], ratio(ch[st]["p50"], s_p50), f_ms(ch[st]["p50"]),
                       f_ms(s_p50)))
    head.append("under churn: %d failed requests with slotsync, %d with reload per "
                "change, %d / %d with DNS (default / tight); req/s vs reference: %s, %s, "
                "%s / %s; reloads: %d, %d, %d / %d"
                % (cu["slotsync"]["failed"], cu["reload"]["failed"],
                   cu["dns-default"]["failed"], cu["dns-tight"]["failed"],
                   ratio(cu["slotsync"]["rps"], ref["rps"]),
                   ratio(cu["reload"]["rps"], ref["rps"]),
                   ratio(cu["dns-default"]["rps"], ref["rps"]),
                   ratio(cu["dns-tight"]["rps"], ref["rps"]),
                   cu["slotsync"]["reloads"], cu["reload"]["reloads"],
                   cu["dns-default"]["reloads"], cu["dns-tight"]["reloads"]))
    head.append("controller CPU under churn: reload per change %s slotsync's, "
                "HAProxy CPU %s slotsync's"
                % (ratio(cu["reload"]["ctrl_cpu"], cu["slotsync"]["ctrl_cpu"]),
                   ratio(cu["reload"]["hap_cpu"], cu["slotsync"]["hap_cpu"])))
    nw = r["new"]
    sp, s0 = nw.get("slotsync-spares", {}), nw.get("slotsync", {})
    if sp.get("single") and s0.get("single"):
        head.append("one new service, put -> first 200 by Host: %s with %d spare backends "
                    "(reloads: %s), %s with `spare_backends: 0` (reloads: %s): %s"
                    % (f_ms(sp["single"]), nw.get("spares", 16), sp.get("single_reloads", "-"),
                       f_ms(s0["single"]), s0.get("single_reloads", "-"),
                       ratio(s0["single"], sp["single"])))
    best = sp if sp.get("last") else s0
    if nw.get("reload", {}).get("last") and best.get("last"):
        head.append("%d new services all answering: reload per change %s slotsync's "
                    "(%d vs %d reloads)"
                    % (nw["n"], ratio(nw["reload"]["last"], best["last"]),
                       nw["reload"]["reloads"], best["reloads"]))

    misses = target_misses(r["scale"], alone)
    return L, head, misses
