#!/usr/bin/python3
"""bench_fleet.py - what a fleet of slotsync hosts costs etcd (issue 24 item 5).

    bench_fleet.py --bin PATH [--sizes 50,200,1000] [--ways json,grpc,proxy]
                   [--changes 100] [--real 20] [--idle 10] [--phase-cap 300]
                   [--write docs/PERFORMANCE.md]

For each way and each N (a phase, on a fresh 3-member etcd 3.4 cluster made
by harness.start_etcd_cluster(3)): N real "slotsync run" processes watch the
same prefix, each with a runtime socket of its own. The first --real of them
get a real HAProxy (the shipped base config, a services file slotsync
rendered) behind a relay socket of fleet_stub.py; the others get a stub
socket of that same fleet_stub.py process (one selectors loop for all),
which answers as HAProxy 2.6 does (test_fleet_stub.py checks it byte for
byte against a real one). The ways:

  json   etcd.transport json, the hosts spread over the 3 members
  grpc   etcd.transport grpc, the hosts spread over the 3 members
  proxy  etcd.transport grpc through two "etcd grpc-proxy" instances in front
         of the 3 members (half the hosts list one first, half the other)

Measured per phase:
  - etcd members' CPU per change, net of idle: utime+stime of the 3 member
    processes (/proc/PID/stat) over each change (put to the next put) less
    the idle rate times its duration, the mean over the changes with a 95%
    confidence half-width; the idle rate is the mean of --idle seconds of
    2 s samples with the N hosts idle right before the changes and as many
    right after (net_per_change());
  - the same idle included (the members' CPU over the changes / changes,
    the figure of earlier runs), and the proxies' CPU that way;
  - Watch messages and gRPC bytes the members send per change: their
    /metrics counters grpc_server_msg_sent_total (Watch) and
    etcd_network_client_grpc_sent_bytes_total over the changes, less their
    idle rate over the two idle windows, / changes (for json the in-process
    gateway is the members' gRPC client and is what these count);
  - etcd RSS per host: the members' RSS with the N hosts watching minus
    before the first host started, divided by N (the proxies' too);
  - idle etcd CPU per host per second: the members' CPU over --idle seconds
    with N idle hosts, minus the same window before any host ran, / N / s;
  - event -> applied: each change is a put (to a member) that gives endpoint
    a a new port P; the stub times, per socket, the reply to the first
    "set server ... port P" (CLOCK_MONOTONIC, as this script's
    time.monotonic() taken just before the put); per change the median
    host's and the last host's delay; over the changes their p50 and p99.
    A host that has not applied a change within --change-wait counts it as
    missed; a host behind by more than that applies only the newest port
    when it catches up, so one stall counts as several misses without any
    loss (and without a log line at level warn);
  - at the end, every stub socket against etcd's last port: right after the
    last change, then again within a bounded --settle wait (late hosts catch
    up; a socket still off after it lost something).

--log-level sets the hosts' log_level; --stall K --stall-s S stops (SIGSTOP)
K stub hosts for S seconds a third into the changes (slow consumers).

--results FILE saves a run's figures (JSON); --report-from F1,F2 runs
nothing and writes the section from saved runs (e.g. 50 and 200 in one run,
1000 in another).

Every phase is capped (--phase-cap seconds for the changes, bounded waits
everywhere); what did not finish is reported as such. Processes are ended
by pid (harness.Env), everything is on 127.0.0.1 in temp dirs.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import (Env, HAProxy, _test_base_config, free_port, wait_for,  # noqa: E402
                     etcd_put, write_config, BASE_CONFIG, PYTHON, ETCD_BIN, HAPROXY_BIN)

STUB = os.path.join(HERE, "fleet_stub.py")
PREFIX = "/services/"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BEGIN = "<!-- bench-fleet: begin (integration/bench_fleet.py writes this section) -->"
END = "<!-- bench-fleet: end -->"


def progress(text):
    sys.stderr.write("bench-fleet %s: %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def cpu_s(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/statm" % pid) as f:
            total += int(f.read().split()[1]) * PAGE
    return total


def private_kib(pid):
    """Private (not shared) memory of a process: what one more host costs."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            return sum(int(l.split()[1]) for l in f
                       if l.startswith(("Private_Clean:", "Private_Dirty:")))
    except OSError:
        return None


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


# etcd's own counters (its /metrics, on 3.4 and 3.5): what the members
# send their gRPC clients. For etcd.transport json the gateway is in-process
# and speaks gRPC to its own member, so those streams are counted here too
# (in protobuf bytes, not the JSON the hosts receive).
COUNTERS = {
    "watch_msgs": ("grpc_server_msg_sent_total",
                   {"grpc_method": "Watch", "grpc_service": "etcdserverpb.Watch"}),
    "msgs": ("grpc_server_msg_sent_total", {}),
    "bytes": ("etcd_network_client_grpc_sent_bytes_total", {}),
}


def parse_counters(text):
    """{name: value} of COUNTERS, summed over the label sets that match,
    from a Prometheus text exposition; a counter that is absent is None."""
    out = {k: None for k in COUNTERS}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        got = dict(kv.split("=", 1) for kv in labels.rstrip("}").split(",") if "=" in kv)
        got = {k: v.strip('"') for k, v in got.items()}
        for key, (metric, want) in COUNTERS.items():
            if name == metric and all(got.get(a) == b for a, b in want.items()):
                try:
                    out[key] = (out[key] or 0) + float(value)
                except ValueError:
                    pass
    return out


def etcd_counters(urls):
    """COUNTERS summed over the members at urls (None: one did not say)."""
    total = {k: 0.0 for k in COUNTERS}
    for url in urls:
        status, body = harness.http_get(url + "/metrics", timeout=10)
        if status != 200:
            raise harness.HarnessError("%s/metrics answered %d" % (url, status))
        for k, v in parse_counters(body).items():
            total[k] = None if v is None or total[k] is None else total[k] + v
    return total


def net_per_change(window, idle_rates):
    """The marginal cost of a change and its 95% confidence half-width.

    window: [(cost, seconds)] of each change (the members' CPU seconds, or a
    counter, from one change's put until the next one's); idle_rates: the
    same cost per second measured in windows with the hosts idle (before
    and after the changes). The cost of change k less what the idle rate
    accounts for over its duration; the mean over the changes, and
    1.96 * sqrt(var_k / n + (se_idle * mean duration)^2), se_idle being the
    standard error of the idle rate over its samples. Returns (mean, half
    width, idle rate), or (None, None, None) without changes or idle."""
    if not window or not idle_rates:
        return None, None, None
    rate = sum(idle_rates) / len(idle_rates)
    net = [c - rate * s for c, s in window]
    n, m = len(net), sum(net) / len(net)
    var = sum((x - m) ** 2 for x in net) / (n - 1) if n > 1 else 0.0
    k = len(idle_rates)
    sd_idle = (sum((x - rate) ** 2 for x in idle_rates) / (k - 1)) ** 0.5 if k > 1 else 0.0
    dur = sum(s for _, s in window) / n
    half = 1.96 * (var / n + (sd_idle / k ** 0.5 * dur) ** 2) ** 0.5
    return m, half, rate


def idle_samples(pids, seconds, sample_s=2.0):
    """The CPU rate (s/s) of pids over consecutive samples of sample_s
    filling seconds (at least two); returns (rates, whole-window rate)."""
    k = max(2, int(round(seconds / sample_s)))
    rates = []
    c0 = c = cpu_s(pids)
    t0 = t = time.monotonic()
    for _ in range(k):
        time.sleep(seconds / k)
        c1, t1 = cpu_s(pids), time.monotonic()
        rates.append((c1 - c) / (t1 - t))
        c, t = c1, t1
    return rates, (c - c0) / (t - t0)


def put_retrying(url, key, value, attempts=3, timeout=30):
    """etcd_put; when etcd answers an error even after the harness's own
    retries (a put that timed out in raft on an overloaded machine), again
    after 2 s, then 4 s. Putting the same value again is harmless here (the
    hosts see the same port once more). Returns the retries it took; raises
    the last error after attempts."""
    for k in range(attempts):
        try:
            etcd_put(url, key, value, timeout=timeout)
            return k
        except harness.EtcdError:
            if k + 1 == attempts:
                raise
            time.sleep(2 * 2 ** k)
    return attempts


class Ctl:
    """A connection to fleet_stub.py's control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = b""

    def ask(self, line, timeout=30):
        self.s.settimeout(timeout)
        self.s.sendall((line + "\n").encode())
        while b"\n" not in self.buf:
            d = self.s.recv(1 << 20)
            if not d:
                raise harness.HarnessError("fleet_stub closed its control socket")
            self.buf += d
        out, self.buf = self.buf.split(b"\n", 1)
        return json.loads(out)

    def close(self):
        self.s.close()


class Phase:
    def __init__(self, args, way, n):
        self.args = args
        self.way = way
        self.n = n
        self.r = {"way": way, "n": n, "notes": []}

    def note(self, text):
        progress("%s N=%d: %s" % (self.way, self.n, text))
        self.r["notes"].append(text)

    def config(self, env, i, sock, services, listen_port, endpoints):
        cfg = {
            "etcd": {"endpoints": endpoints, "prefix": PREFIX,
                     "transport": "json" if self.way == "json" else "grpc"},
            "haproxy": {"runtime_socket": sock, "services_file": services},
            "defaults": {"slots": 4, "server_options": ""},
            "services": {"web": {"listen": "127.0.0.1:%d" % listen_port}},
            "resync_interval_s": 300,
            "log_level": self.args.log_level,
        }
        return write_config(env, cfg, name="hosts/%d/slotsync.json" % i)

    def run(self):
        args = self.args
        with Env("fleet-%s-%d" % (self.way, self.n)) as env:
            self.env = env
            try:
                self._run(env)
            except harness.HarnessError as e:
                self.note("phase stopped: %s" % e)
            except OSError as e:
                self.note("phase stopped: %s" % e)
            finally:
                t = time.monotonic()
                env.kill_all(timeout=10)
                self.r["stop_s"] = time.monotonic() - t
        return self.r

    def _run(self, env):
        args, n = self.args, self.n
        cluster = env.start_etcd_cluster(3)
        members = [m.proc.pid for m in cluster.members]
        urls = cluster.urls
        proxies = []
        if self.way == "proxy":
            proxies = [env.start_grpc_proxy(urls, name="grpc-proxy%d" % (k + 1))
                       for k in range(2)]
        ppids = [p.proc.pid for p in proxies]

        # the services file every stub host starts from (slotsync renders it)
        stub_listen = free_port()
        os.makedirs(env.path("hosts", "0"), exist_ok=True)
        cfg0 = self.config(env, 0, env.path("unused.sock"), env.path("stub-services.cfg"),
                           stub_listen, urls[:1])
        out = subprocess.run([args.bin, "render", "-c", cfg0], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise harness.HarnessError("slotsync render: %s" % out.stderr.strip())

        # real HAProxy hosts first
        real = min(args.real, n)
        with open(BASE_CONFIG) as f:
            shipped = f.read()
        forwards = []
        haps = []
        for i in range(real):
            d = env.path("hosts", str(i))
            os.makedirs(d, exist_ok=True)
            services = os.path.join(d, "services.cfg")
            cfg = self.config(env, i, os.path.join(d, "admin.sock"), services, free_port(),
                              urls[:1])
            out = subprocess.run([args.bin, "render", "-c", cfg], capture_output=True,
                                 text=True, timeout=60)
            if out.returncode != 0:
                raise harness.HarnessError("slotsync render: %s" % out.stderr.strip())
            hap = HAProxy(env, "haproxy%d" % i, os.path.join(d, "master.sock"),
                          os.path.join(d, "admin.sock"), free_port(),
                          os.path.join(d, "haproxy-base.cfg"), services)
            with open(hap.base_config, "w") as f:
                f.write(_test_base_config(shipped, hap.admin_sock, hap.stats_port))
            hap.start((), 20)
            haps.append(hap)
            forwards += ["--forward", "%d=%s" % (i, hap.admin_sock)]
        self.r["real"] = real
        # the endpoints after the renders: every host (real or stub) starts
        # from empty slots and applies them through its socket
        etcd_put(urls[0], PREFIX + "web/a", "127.0.0.1:10000")
        etcd_put(urls[0], PREFIX + "web/b", "127.0.0.1:10001")

        sdir = env.path("stub")
        os.makedirs(sdir)
        stub = env.spawn("stub", [PYTHON, STUB, "--dir", sdir, "--n", str(n),
                                  "--backend", "web:4:3", "--proxy", "stats"] + forwards)
        env.wait_log("stub", r"ready", timeout=60, alive=[stub])
        ctl = Ctl(os.path.join(sdir, "ctl.sock"))

        # before any host: the members' idle CPU and RSS
        time.sleep(1)
        c0, t0 = cpu_s(members), time.monotonic()
        time.sleep(args.idle / 2)
        base_idle = (cpu_s(members) - c0) / (time.monotonic() - t0)
        rss0, prss0 = rss_bytes(members), rss_bytes(ppids)

        # the hosts, in batches
        procs = []
        start = time.monotonic()
        mem0 = mem_available()
        for i in range(n):
            d = env.path("hosts", str(i))
            if i >= real:
                os.makedirs(d, exist_ok=True)
                services = os.path.join(d, "services.cfg")
                shutil.copyfile(env.path("stub-services.cfg"), services)
                if self.way == "proxy":
                    eps = [p.url for p in (proxies if i % 2 == 0 else proxies[::-1])]
                else:
                    eps = urls[i % 3:] + urls[:i % 3]
                self.config(env, i, os.path.join(sdir, "admin%d.sock" % i), services,
                            stub_listen, eps)
            else:
                if self.way == "proxy":
                    eps = [p.url for p in (proxies if i % 2 == 0 else proxies[::-1])]
                else:
                    eps = urls[i % 3:] + urls[:i % 3]
                # the real host's config again, now on the relay socket
                with open(env.path("hosts", str(i), "slotsync.json")) as f:
                    cfg = json.load(f)
                cfg["haproxy"]["runtime_socket"] = os.path.join(sdir, "admin%d.sock" % i)
                cfg["etcd"]["endpoints"] = eps
                write_config(env, cfg, name="hosts/%d/slotsync.json" % i)
            procs.append(env.spawn("host%d" % i, [args.bin, "run", "-c",
                                                  os.path.join(d, "slotsync.json")],
                                   log=True))
            if (i + 1) % args.batch == 0 or i + 1 == n:
                # the batch has applied the listing (both endpoints) before the next
                want = i + 1
                try:
                    wait_for(lambda: sum(t is not None for t in ctl.ask("wait 10001 0")) >= want,
                             timeout=args.start_wait, interval=0.2,
                             what="%d hosts to apply the listing" % want)
                except harness.WaitTimeout:
                    got = sum(t is not None for t in ctl.ask("wait 10001 0"))
                    dead = sum(p.poll() is not None for p in procs)
                    self.note("only %d of %d hosts applied the listing within %d s (%d exited)"
                              % (got, want, args.start_wait, dead))
                    if got == 0:
                        raise
                if mem_available() < args.mem_floor * (1 << 30):
                    self.note("stopped starting hosts at %d: less than %d GiB available"
                              % (i + 1, args.mem_floor))
                    break
        self.r["hosts"] = len(procs)
        self.r["start_s"] = time.monotonic() - start
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            self.note("%d hosts exited during the start (%s: %s)" % (
                len(dead), dead[0].name, env.log_tail(dead[0].name, 3)))
        privs = [private_kib(p.pid) for p in procs[real:real + 20]]
        privs = [x for x in privs if x is not None]
        self.r["host_private_kib"] = sum(privs) / len(privs) if privs else None
        self.r["host_rss_kib"] = (rss_bytes([procs[-1].pid]) / 1024) if procs else None
        self.r["mem_used_gib"] = (mem0 - mem_available()) / (1 << 30)
        hosts = len(procs)

        # idle, with the hosts
        time.sleep(2)
        self.r["rss_per_host_kib"] = (rss_bytes(members) - rss0) / hosts / 1024
        self.r["proxy_rss_per_host_kib"] = ((rss_bytes(ppids) - prss0) / hosts / 1024
                                            if ppids else None)
        m0, tm0 = etcd_counters(urls), time.monotonic()
        pc0, t0 = cpu_s(ppids), time.monotonic()
        idle_before, idle = idle_samples(members, args.idle)
        dt = time.monotonic() - t0
        m1, tm1 = etcd_counters(urls), time.monotonic()
        self.r["idle_before_ms_s"] = [x * 1000 for x in idle_before]
        self.r["idle_ms_per_host_s"] = (idle - base_idle) / hosts * 1000
        self.r["idle_members_ms_s"] = idle * 1000
        self.r["base_idle_ms_s"] = base_idle * 1000
        self.r["proxy_idle_ms_per_host_s"] = ((cpu_s(ppids) - pc0) / dt / hosts * 1000
                                              if ppids else None)

        # the changes
        med, last, missed = [], [], 0
        hpids = [p.pid for p in procs if p.poll() is None]
        c0, pc0, t0 = cpu_s(members), cpu_s(ppids), time.monotonic()
        hc0, sc0 = cpu_s(hpids), cpu_s([stub.pid])
        window = []     # (members' CPU s, seconds) of each change
        puts_retried = 0
        ck, tk = c0, t0
        done = 0
        late = {}
        stalled = []
        for k in range(args.changes):
            if args.stall and k == args.changes // 3:
                # slow consumers: a few stub hosts stopped for --stall-s seconds
                step = max(1, (len(procs) - real) // args.stall)
                stalled = [p for p in procs[real::step][:args.stall] if p.poll() is None]
                for p in stalled:
                    os.kill(p.pid, signal.SIGSTOP)
                stall_until = time.monotonic() + args.stall_s
                self.note("stopped %s for %g s at change %d"
                          % (",".join(p.name for p in stalled), args.stall_s, k))
            if stalled and time.monotonic() >= stall_until:
                for p in stalled:
                    os.kill(p.pid, signal.SIGCONT)
                stalled = []
            if time.monotonic() - t0 > args.phase_cap:
                self.note("stopped after %d of %d changes: phase cap of %d s"
                          % (done, args.changes, args.phase_cap))
                break
            port = 20000 + k
            ts = time.monotonic()
            retried = put_retrying(urls[k % 3], PREFIX + "web/a", "127.0.0.1:%d" % port)
            if retried:
                puts_retried += 1
            seen = ctl.ask("wait %d %g" % (port, args.change_wait),
                           timeout=args.change_wait + 30)[:hosts]
            lat = sorted(t - ts for t in seen if t is not None)
            missed += hosts - len(lat)
            for i, t in enumerate(seen):
                if t is None:
                    late[i] = late.get(i, 0) + 1
            if lat:
                med.append(lat[len(lat) // 2])
            if len(lat) == hosts:
                last.append(lat[-1])
            done += 1
            c1, t1 = cpu_s(members), time.monotonic()
            window.append((c1 - ck, t1 - tk))
            ck, tk = c1, t1
        for p in stalled:
            os.kill(p.pid, signal.SIGCONT)
        dt = time.monotonic() - t0
        cpu = cpu_s(members) - c0
        m2, tm2 = etcd_counters(urls), time.monotonic()
        self.r["changes"] = done
        self.r["changes_s"] = dt
        if puts_retried:
            self.note("%d puts were retried after etcd answered an error (its delay counts "
                      "from the first attempt)" % puts_retried)
        if done:
            self.r["cpu_ms_per_change"] = cpu / done * 1000
            self.r["hosts_cpu_ms_per_change"] = (cpu_s(hpids) - hc0) / done * 1000
            self.r["stub_cpu_ms_per_change"] = (cpu_s([stub.pid]) - sc0) / done * 1000
            self.r["members_busy_pct"] = cpu / dt * 100
            self.r["proxy_cpu_ms_per_change"] = ((cpu_s(ppids) - pc0) / done * 1000
                                                 if ppids else None)
        self.r["missed"] = missed
        self.r["last_complete"] = len(last)
        for name, series in (("med", med), ("last", last)):
            self.r[name + "_p50_ms"] = pct(series, 50) * 1000 if series else None
            self.r[name + "_p99_ms"] = pct(series, 99) * 1000 if series else None
        if missed:
            self.note("%d host-changes not applied within %g s each" % (missed, args.change_wait))
            for i in sorted(late)[:3]:
                self.note("host%d missed %d changes%s; its log: %s" % (
                    i, late[i], " (a real HAProxy)" if i < real else "",
                    env.log_tail("host%d" % i, 3).replace("\n", " | ")[-600:]))
        st = ctl.ask("stats")
        self.r["stub"] = st
        if st["relay_errors"] or st["unknown"]:
            self.note("stub: %d relay errors, %d unknown commands"
                      % (st["relay_errors"], st["unknown"]))
        # the stub's servers equal etcd at the end, on every socket checked
        want = ["127.0.0.1", 20000 + done - 1]
        bad = 0
        for i in range(real, hosts, max(1, (hosts - real) // 50)):
            rows = ctl.ask("state %d" % i)["web"]
            if want not in [[a, p] for a, p, op, adm, w in rows if not adm & 0x21]:
                bad += 1
        self.r["state_mismatch"] = bad
        if bad:
            self.note("%d sampled sockets do not hold etcd's last port" % bad)

        # every stub socket, again after a bounded settle: a host that was
        # only late (behind by more than --change-wait) catches up; one that
        # stays off etcd lost an event
        def off():
            return [i for i in range(real, hosts)
                    if want not in [[a, p] for a, p, op, adm, w in ctl.ask("state %d" % i)["web"]
                                    if not adm & 0x21]]
        off0 = off()
        offs = off0
        t_end = time.monotonic() + args.settle
        while offs and time.monotonic() < t_end:
            time.sleep(1)
            offs = off()
        # idle again, right after the changes (and the settle): the idle rate
        # the changes' marginal cost is taken net of is the mean of both
        m3, tm3 = etcd_counters(urls), time.monotonic()
        idle_after, _ = idle_samples(members, args.idle)
        m4, tm4 = etcd_counters(urls), time.monotonic()
        self.r["idle_after_ms_s"] = [x * 1000 for x in idle_after]
        if done:
            mean, half, rate = net_per_change(window, idle_before + idle_after)
            self.r["net_cpu_ms_per_change"] = mean * 1000
            self.r["net_cpu_ci_ms"] = half * 1000
            self.r["idle_rate_ms_s"] = rate * 1000
            for key in COUNTERS:
                vals = (m0[key], m1[key], m2[key], m3[key], m4[key])
                if None in vals:
                    self.r[key + "_per_change"] = None
                    continue
                idle_rate = ((m1[key] - m0[key]) + (m4[key] - m3[key])) / (
                    (tm1 - tm0) + (tm4 - tm3))
                raw = m2[key] - m1[key]
                self.r[key + "_raw_per_change"] = raw / done
                self.r[key + "_per_change"] = (raw - idle_rate * (tm2 - tm1)) / done
                self.r[key + "_idle_per_host_s"] = idle_rate / hosts
        self.r["off_at_end"] = len(off0)
        self.r["off_after_settle"] = len(offs)
        if off0:
            self.note("%d of %d stub sockets off etcd's last port right after the changes, "
                      "%d after %g s more (%s)" % (len(off0), hosts - real, len(offs),
                                                   args.settle, ",".join("host%d" % i
                                                                         for i in offs[:10])))
        for i in offs[:3]:
            lines = [ln for ln in env.log_text("host%d" % i).splitlines()
                     if "watch" in ln or "sync" in ln or "etcd" in ln]
            self.note("host%d still off; its etcd log lines: %s"
                      % (i, " | ".join(lines[-8:])[-1200:]))
            # its TCP connections (to the proxies): a Recv-Q that stays
            # full says the host does not read, an empty one that nothing
            # arrives
            pid = procs[i].pid
            out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True).stdout
            conns = [ln.split()[:5] for ln in out.splitlines() if "pid=%d," % pid in ln]
            with open("/proc/%d/stat" % pid) as f:
                pstate = f.read().rsplit(")", 1)[1].split()[0]
            self.note("host%d (state %s) connections [state recv-q send-q local peer]: %s"
                      % (i, pstate, conns))
        ctl.close()
        alive = sum(p.poll() is None for p in procs)
        self.r["alive_at_end"] = alive
        errors = 0
        for p in procs[:: max(1, hosts // 100)]:
            errors += env.log_text(p.name).count(" error ")
        self.r["sampled_error_lines"] = errors


def fmt(v, spec="%.2f", none="-"):
    return none if v is None else spec % v


def fmt_ci(mean, half, spec="%.1f"):
    if mean is None:
        return "-"
    return (spec + " ± " + spec + " ms") % (mean, half or 0)


def fmt_count(v):
    if v is None:
        return "-"
    return "{:,.0f}".format(v) if abs(v) >= 10 else "%.1f" % v


def cpu_verdict(a, ha, b, hb):
    """met / missed / not decided: a (+- ha) against b (+- hb) / 20. An
    interval wholly below zero is no cost measured but a baseline that
    moved (the members' idle work is time-driven and gets skipped when the
    machine is overloaded during the changes): not decided either."""
    if a + ha < 0 or b + hb < 0:
        return ("not decided (a net figure below zero: the members' idle rate during "
                "the changes was lower than in the idle windows, by more than the "
                "change cost; this measure does not resolve it here)")
    if a + ha <= (b - hb) / 20:
        return "met"
    if a - ha > (b + hb) / 20:
        return "missed"
    return "not decided (the confidence intervals straddle the 5% line)"


def merge_results(runs):
    """The phases of runs in order, a later run's (way, N) replacing an
    earlier one's in place; returns (results, [(way, n, run replaced, run
    kept, the replaced row)])."""
    results, where, replaced = [], {}, []
    for i, run in enumerate(runs):
        for r in run["results"]:
            key = (r["way"], r["n"])
            if key in where:
                j, first = where[key]
                replaced.append((key[0], key[1], first, i, results[j]))
                results[j] = r
                where[key] = (j, i)
            else:
                where[key] = (len(results), i)
                results.append(r)
    return results, replaced


def other_msgs_rates(r):
    """(during the changes, idle) rates per second of the members' gRPC
    messages other than Watch replies and the replies to the bench's puts,
    from a phase's figures; (None, None)
    without them. When the first is well below the second the hosts' own
    periodic traffic slowed down during the changes (starved of CPU), and
    the idle rate overstates the background the net CPU figure takes off."""
    need = ("msgs_raw_per_change", "watch_msgs_raw_per_change", "msgs_idle_per_host_s",
            "watch_msgs_idle_per_host_s", "changes_s", "changes", "hosts")
    if any(r.get(k) is None for k in need) or not r["changes"] or not r["changes_s"]:
        return None, None
    # less the reply to the bench's own put, one a change
    during = ((r["msgs_raw_per_change"] - r["watch_msgs_raw_per_change"] - 1) * r["changes"]
              / r["changes_s"])
    idle = (r["msgs_idle_per_host_s"] - r["watch_msgs_idle_per_host_s"]) * r["hosts"]
    return during, idle


def run_command(a):
    return ("python3 integration/bench_fleet.py --bin bin/slotsync --sizes %s --ways %s "
            "--changes %d --real %d --idle %g --phase-cap %d"
            % (a["sizes"], a["ways"], a["changes"], a["real"], a["idle"], a["phase_cap"]))


def report(runs):
    """The fleet section of docs/PERFORMANCE.md from one or more runs: each
    {"args": vars(args), "started", "load0", "load1", "elapsed", "results"}."""
    args = argparse.Namespace(**runs[0]["args"])
    results, replaced = merge_results(runs)
    out = []
    add = out.append
    add(BEGIN)
    add("")
    add("# Fleet: N slotsync hosts watching one etcd (`make bench-fleet`)")
    add("")
    add("Generated by `integration/bench_fleet.py` (issue 24 item 5); run it again with:")
    add("")
    add("    make bench-fleet")
    add("    # = python3 integration/bench_fleet.py --bin bin/slotsync --sizes 50,200,1000 "
        "--ways json,grpc,proxy --write docs/PERFORMANCE.md")
    add("")
    if len(runs) > 1:
        add("The rows below come from %d runs, put together with `--report-from` (each "
            "run saved by `--results FILE`):" % len(runs))
        add("")
    ver = subprocess.run([ETCD_BIN, "--version"], capture_output=True, text=True).stdout
    hv = subprocess.run([HAPROXY_BIN, "-v"], capture_output=True, text=True).stdout
    for run in runs:
        add("- `%s`: %s UTC, %.0f s; load average (1, 5, 15 min) before: %s, after: %s"
            % (run_command(run["args"]), run["started"], run["elapsed"], run["load0"],
               run["load1"]))
    ways = sorted({r["way"] for r in results}, key=("json", "grpc", "proxy").index)
    sizes = sorted({r["n"] for r in results})
    have = {(r["way"], r["n"]) for r in results}
    missing = ["%s N=%d" % (w, n) for n in sizes for w in ways if (w, n) not in have]
    if missing:
        add("- not run in these runs: %s" % ", ".join(missing))
    for way, n, first, then, old in replaced:
        add("- %s N=%d: the row of run %d (%d changes; its notes: %s) is replaced by "
            "run %d's" % (way, n, first + 1, old.get("changes", 0),
                          "; ".join(old["notes"]) or "none", then + 1))
    add("- machine: %d CPUs, %.0f GiB RAM, shared with other work (other sessions' builds, "
        "tests and benchmarks ran meanwhile: the CPU figures are noisy, the message and "
        "byte counts are not)"
        % (os.cpu_count(), os.sysconf("SC_PHYS_PAGES") * PAGE / (1 << 30)))
    add("- etcd %s, 3 members on 127.0.0.1 (harness `start_etcd_cluster(3)`: heartbeat "
        "25 ms, election 250 ms, data in a temp dir); `etcd grpc-proxy start` x2 for `proxy`"
        % (ver.split("\n")[0].split()[-1] if ver else "?"))
    add("- hosts: real `slotsync run` processes, `log_level warn`, one service `web` of 4 slots, "
        "2 endpoints; the first %d of each phase on a real %s (its socket behind a relay of "
        "`integration/fleet_stub.py`), the rest on stub sockets of one `fleet_stub.py` process "
        "that answers as HAProxy 2.6 (checked against a real one by "
        "`integration/test_fleet_stub.py`)" % (args.real, hv.split("\n")[0][:40]))
    add("- ways: `json` = etcd.transport json, hosts spread over the 3 members; `grpc` = "
        "etcd.transport grpc, spread the same way; `proxy` = grpc through the two proxies "
        "(half the hosts list one first, half the other)")
    add("- a change: a put to a member giving endpoint `a` a new port; applied = the reply to "
        "that host's `set server web/sN addr 127.0.0.1 port P` leaves its socket (CLOCK_MONOTONIC, "
        "from just before the put); %d changes a phase, one at a time (the next once every "
        "host applied the last or %g s passed)" % (args.changes, args.change_wait))
    add("- missed = host-changes not applied within %g s: a host behind by more than that "
        "applies only the newest port once it catches up, so one late host counts several "
        "misses without losing anything; at the end every stub socket is checked against "
        "etcd's last port, then again after up to %g s more (late hosts catch up; one still "
        "off lost an event)" % (args.change_wait, args.settle))
    add("- **etcd CPU / change, net of idle**: the members' utime+stime (`/proc/PID/stat`, "
        "3 members) over each change (from its put until the next change's) less the idle "
        "rate times the change's duration, averaged over the changes; the idle rate is the "
        "members' CPU with the N hosts connected and idle, in %d samples of %g s right "
        "before the changes and %d right after (their mean; both are in the notes). The "
        "95%% confidence half-width combines the spread of the per-change figures and the "
        "standard error of the idle rate. What it leaves out is what the hosts cost etcd "
        "whether or not anything changes (their liveness checks, the members' own "
        "heartbeats): that is the idle column. It assumes the members' idle work goes "
        "on at the same rate during the changes; when the hosts' wake-ups overload the "
        "machine it need not (etcd's timers skip ticks when it is starved of CPU), which "
        "can push a small figure below zero: the verdict then says the measure did not "
        "resolve it"
        % (max(2, int(round(args.idle / 2))), args.idle / max(2, int(round(args.idle / 2))),
           max(2, int(round(args.idle / 2)))))
    add("- **etcd CPU / change, idle included**: the figure earlier runs published (the "
        "members' CPU over the changes / changes), kept so that runs stay comparable; on "
        "this machine a change takes 0.02-2.5 s, so most of it can be idle")
    add("- **Watch msgs / change** and **gRPC bytes / change**: the members' "
        "`grpc_server_msg_sent_total{grpc_service=\"etcdserverpb.Watch\",grpc_method=\"Watch\"}` "
        "and `etcd_network_client_grpc_sent_bytes_total` (all methods) from their /metrics, "
        "over the changes, less the idle rate of the same counter (measured over the two "
        "idle windows), / changes, and in parentheses without taking the idle off. They "
        "count what the members send, not CPU, so another session's load does not move "
        "them much; but the idle part is the hosts' own time-driven traffic (progress "
        "requests on gRPC, a range a second on JSON), which slows down when the hosts are "
        "starved of CPU, so taking it off can take off too much (JSON direct at 1000: "
        "its idle is all Range replies, so its Watch messages need no correction). For `json` the JSON gateway runs inside each "
        "member and is a gRPC client of that member: its streams are counted here (as "
        "protobuf bytes; the JSON the hosts receive is larger); for `proxy` the clients "
        "the members see are the two proxies")
    add("- the proxies', the hosts' (all `slotsync run`) and the stub's CPU: over the "
        "changes / changes, idle included; RSS per host = members' RSS with the hosts minus "
        "before the first one started, / N; idle = members' CPU over %g s with the hosts "
        "idle minus %g s before any host ran, / N" % (args.idle, args.idle / 2))
    add("")
    add("| way | N | etcd CPU / change, net of idle (95% CI) | etcd CPU / change, idle "
        "included | Watch msgs / change | gRPC bytes / change | proxies' CPU / change "
        "| hosts' CPU / change | stub's CPU / change | etcd RSS / host "
        "| idle etcd CPU / host / s | median host p50 / p99 | last host p50 / p99 "
        "| changes | missed |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        idle = r.get("idle_ms_per_host_s")
        idle = ("%.3f ms" % idle if idle >= 0 else "~0 (below the members' "
                "own idle noise)") if idle is not None else "-"
        def net_raw(key):
            net, raw = r.get(key + "_per_change"), r.get(key + "_raw_per_change")
            return fmt_count(net) + (" (%s raw)" % fmt_count(raw) if raw is not None else "")
        add("| %s | %d | %s | %s ms | %s | %s | %s | %s ms | %s ms | %s KiB | %s "
            "| %s / %s ms | %s / %s ms | %s | %s |"
            % (r["way"], r.get("hosts", r["n"]),
               fmt_ci(r.get("net_cpu_ms_per_change"), r.get("net_cpu_ci_ms")),
               fmt(r.get("cpu_ms_per_change")),
               net_raw("watch_msgs"), net_raw("bytes"),
               fmt(r.get("proxy_cpu_ms_per_change"), "%.0f ms"),
               fmt(r.get("hosts_cpu_ms_per_change"), "%.0f"),
               fmt(r.get("stub_cpu_ms_per_change"), "%.0f"),
               fmt(r.get("rss_per_host_kib"), "%.1f"), idle,
               fmt(r.get("med_p50_ms"), "%.1f"), fmt(r.get("med_p99_ms"), "%.1f"),
               fmt(r.get("last_p50_ms"), "%.1f"), fmt(r.get("last_p99_ms"), "%.1f"),
               r.get("changes", 0), r.get("missed", "-")))
    add("")
    # the target
    add("## Target")
    add("")
    by = dict(((r["way"], r.get("hosts", r["n"])), r) for r in results)
    proxied = [r for r in results if r["way"] == "proxy" and r.get("changes")]
    if proxied:
        top = max(proxied, key=lambda r: r["hosts"])
        j = by.get(("json", top["hosts"]))
        add("At the largest N through the proxies (%d hosts):" % top["hosts"])
        add("")
        if j and j.get("changes"):
            a, ha = top.get("net_cpu_ms_per_change"), top.get("net_cpu_ci_ms")
            b, hb = j.get("net_cpu_ms_per_change"), j.get("net_cpu_ci_ms")
            verdict = None
            if a is not None and b:
                verdict = cpu_verdict(a, ha, b, hb)
                add("- etcd members' CPU per change, net of idle: %s through the proxies, "
                    "%s JSON direct: %s (target at most 5%%; decided on the "
                    "confidence intervals): **%s**"
                    % (fmt_ci(a, ha), fmt_ci(b, hb),
                       "%.1f%% of it" % (100 * a / b) if a >= 0 and b > 0
                       else "no meaningful ratio", verdict))
            a0, b0 = top.get("cpu_ms_per_change"), j.get("cpu_ms_per_change")
            if a0 is not None and b0:
                add("- idle included (the figure earlier runs published): %.1f ms through "
                    "the proxies, %.1f ms JSON direct: %.1f%%; it is not the measure of the "
                    "target, since through the proxies a change's window is mostly the "
                    "members' own idle" % (a0, b0, 100 * a0 / b0))
            wa, wb = top.get("watch_msgs_per_change"), j.get("watch_msgs_per_change")
            ba, bb = top.get("bytes_per_change"), j.get("bytes_per_change")
            if wa is not None and wb and ba is not None and bb:
                add("- what the members send per change (counts, not CPU): %s Watch messages "
                    "and %s gRPC bytes through the proxies, %s and %s JSON direct: %.2f%% "
                    "and %.2f%% of it"
                    % (fmt_count(wa), fmt_count(ba), fmt_count(wb), fmt_count(bb),
                       100 * wa / wb, 100 * ba / bb))
        else:
            add("- etcd CPU per change: no JSON-direct phase with the same N finished, so the "
                "ratio is not measured")
        lp = top.get("last_p99_ms")
        add("- the last host applies a change within %s ms p99 (target 50 ms): **%s**"
            % (fmt(lp, "%.1f"), "met" if lp is not None and lp <= 50 else "missed"))
        cpu_ok = bool(j and j.get("changes") and verdict == "met")
        lat_ok = lp is not None and lp <= 50
        add("- overall: **%s**" % (
            "met" if cpu_ok and lat_ok else
            "missed" if not lat_ok and (verdict or "").startswith("missed") else
            "not met as measured (%s)" % "; ".join(
                x for x in ("the CPU ratio is %s" % (verdict.split(" (")[0] if verdict
                                                     else "not measured")
                            if not cpu_ok else "",
                            "the last host's p99 is missed" if not lat_ok else "") if x)))
        hc, sc = top.get("hosts_cpu_ms_per_change"), top.get("stub_cpu_ms_per_change")
        if lp is not None and lp > 50 and hc is not None:
            add("- what limits the last host here: this one machine. Every change woke all %d "
                "hosts on its %d CPUs: %.0f ms of CPU in the `slotsync run` processes, %.0f ms in "
                "the proxies and %.0f ms in the (single-threaded) stub per change, so the last "
                "host cannot apply before about %.0f ms of wall time even with etcd idle; on a "
                "fleet each host has its own CPU and pays only its own share (%.2f ms)"
                % (top["hosts"], os.cpu_count(), hc, top.get("proxy_cpu_ms_per_change") or 0,
                   sc or 0, (hc + (top.get("proxy_cpu_ms_per_change") or 0)) / os.cpu_count(),
                   hc / top["hosts"]))
        add("")
    add("## Notes")
    add("")
    for r in results:
        extra = []
        if r.get("host_private_kib") is not None:
            extra.append("a stub host's private memory %.0f KiB (RSS %.0f KiB)"
                         % (r["host_private_kib"], r.get("host_rss_kib") or 0))
        if r.get("start_s") is not None:
            extra.append("start of %d hosts %.0f s" % (r.get("hosts", 0), r["start_s"]))
        if r.get("changes_s") is not None:
            extra.append("%d changes in %.0f s" % (r.get("changes", 0), r["changes_s"]))
        if r.get("members_busy_pct") is not None:
            extra.append("members busy %.0f%% of one CPU during the changes"
                         % r["members_busy_pct"])
        if r.get("idle_members_ms_s") is not None:
            extra.append("members idle %.0f ms/s with the hosts, %.0f ms/s without"
                         % (r["idle_members_ms_s"], r["base_idle_ms_s"]))
        if r.get("idle_before_ms_s") and r.get("idle_after_ms_s"):
            extra.append("idle samples with the hosts (ms/s) before the changes %s, after %s"
                         % ("/".join("%.0f" % x for x in r["idle_before_ms_s"]),
                            "/".join("%.0f" % x for x in r["idle_after_ms_s"])))
        if r.get("watch_msgs_raw_per_change") is not None:
            extra.append("per change before the idle is taken off: %s Watch messages, "
                         "%s gRPC bytes, %s gRPC messages of all methods; idle: %.2f Watch "
                         "messages and %s bytes per host per s"
                         % (fmt_count(r["watch_msgs_raw_per_change"]),
                            fmt_count(r["bytes_raw_per_change"]),
                            fmt_count(r["msgs_raw_per_change"]),
                            r["watch_msgs_idle_per_host_s"],
                            fmt_count(r["bytes_idle_per_host_s"])))
        during, idle_rate = other_msgs_rates(r)
        if during is not None:
            extra.append("gRPC messages other than Watch and the bench's puts (the hosts' "
                         "time-driven traffic) %.0f/s during the changes, "
                         "%.0f/s idle" % (during, idle_rate))
        if r.get("proxy_idle_ms_per_host_s") is not None:
            extra.append("proxies idle %.3f ms per host per s" % r["proxy_idle_ms_per_host_s"])
        if r.get("state_mismatch"):
            extra.append("%d sampled sockets off etcd at the end" % r["state_mismatch"])
        if r.get("off_at_end"):
            extra.append("%d stub sockets off etcd right after the last change, %d after "
                         "%g s more" % (r["off_at_end"], r["off_after_settle"], args.settle))
        if r.get("alive_at_end") is not None and r["alive_at_end"] != r.get("hosts"):
            extra.append("%d of %d hosts alive at the end" % (r["alive_at_end"], r["hosts"]))
        add("- %s N=%d: %s%s" % (r["way"], r["n"], "; ".join(extra),
                                  "".join(". " + t for t in r["notes"])))
    add("")
    add(END)
    return "\n".join(out) + "\n"


def write_section(path, text):
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if BEGIN in old and END in old:
        a, b = old.index(BEGIN), old.index(END) + len(END)
        new = old[:a] + text.rstrip("\n") + old[b:]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sizes", default="50,200,1000")
    ap.add_argument("--ways", default="json,grpc,proxy")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--real", type=int, default=20)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--phase-cap", type=int, default=300)
    ap.add_argument("--change-wait", type=float, default=10)
    ap.add_argument("--start-wait", type=int, default=120)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--mem-floor", type=int, default=3, help="GiB kept available")
    ap.add_argument("--write", metavar="PATH")
    ap.add_argument("--log-level", default="warn", help="the hosts' log_level")
    ap.add_argument("--stall", type=int, default=0,
                    help="SIGSTOP this many stub hosts a third into the changes")
    ap.add_argument("--stall-s", type=float, default=5, help="for this long")
    ap.add_argument("--settle", type=float, default=30,
                    help="bounded wait for every stub socket to hold etcd's last port")
    ap.add_argument("--results", metavar="FILE",
                    help="also save this run's figures there (JSON), for --report-from")
    ap.add_argument("--report-from", metavar="FILES",
                    help="run nothing: write the section from runs saved by --results "
                    "(comma-separated, in this order)")
    args = ap.parse_args()
    if args.report_from:
        runs = []
        for path in args.report_from.split(","):
            with open(path) as f:
                runs.append(json.load(f))
        text = report(runs)
        sys.stdout.write(text)
        if args.write:
            write_section(args.write, text)
            progress("wrote %s" % args.write)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load0 = " ".join(open("/proc/loadavg").read().split()[:3])
    t = time.monotonic()
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for way in args.ways.split(","):
            progress("phase %s N=%d" % (way, n))
            r = Phase(args, way, n).run()
            progress(json.dumps(r))
            results.append(r)
    load1 = " ".join(open("/proc/loadavg").read().split()[:3])
    run = {"args": {k: v for k, v in vars(args).items()
                    if k not in ("results", "report_from", "write")},
           "started": started, "load0": load0, "load1": load1,
           "elapsed": time.monotonic() - t, "results": results}
    if args.results:
        with open(args.results, "w") as f:
            json.dump(run, f, indent=1)
        progress("saved %s" % args.results)
    text = report([run])
    sys.stdout.write(text)
    if args.write:
        write_section(args.write, text)
        progress("wrote %s" % args.write)


if __name__ == "__main__":
    main()
