#!/usr/bin/python3
"""bench - how fast slotsync turns etcd changes into HAProxy state.

    bench.py --bin PATH [--write docs/PERFORMANCE.md] [--quick]
             [--only SECTIONS] [--strategies LIST] [--sizes LIST]

Real etcd, real HAProxy 2.6 and slotsync on 127.0.0.1 (harness.Env: temporary
directory, free ports, everything stopped at the end or on Ctrl-C):

  a. latency: N sequential changes of one endpoint (its port alternates
     between a whoami backend and a port nobody listens on); each is timed
     from the etcd put's reply until HAProxy's "show servers state" shows the
     new port, polling the admin socket in a tight loop. slotsync's own
     "applied N runtime commands ... in X ms" figures are parsed from its log.
  b. bulk: 1000 endpoints put in one etcd transaction into a 1024-slot
     backend, timed until HAProxy shows all 1000 ready; then one deleterange
     of all of them, timed until every slot is out. The batches slotsync
     logged are recorded.
  c. startup: 100,000 keys (100 services x 1000 endpoints, 1024 slots each)
     loaded with 1024-put transactions; then `slotsync render` end to end,
     `slotsync run` until "etcd listing applied" against an HAProxy started
     on that rendered file (a restart: nothing to send), and a cold start
     against an HAProxy whose slots are all empty (every endpoint has to be
     sent; waited for COLD_CAP_S at most, then what was reached is the
     result). Peak RSS is VmHWM from /proc/PID/status (run) or the rusage of
     the exited process (render). For context: the same listing read by
     this script, and one "show servers state" of the 102,400 slots.
  d. every HAProxy of the run is checked for zero reloads (master socket).

Prints one markdown report on stdout; --write PATH also writes it there.
Timings are results, not assertions: the bench fails (exit 1) only when
something did not happen at all (a change never reached HAProxy, a command
was refused, HAProxy was reloaded). --quick runs smaller sizes (a smoke test
of the script itself; its figures are not the ones to publish). --only
runs some sections (latency, bulk, startup: a. to c.; floor, changes, churn,
new, scale, restart: the side by side; --section NAME picks one, repeatable) and
prints a partial report of them, e.g.
`--only scale --strategies slotsync --sizes 1x100,100x100,1000x10,100x1000`
for slotsync's memory and start times alone. With --write PATH such a
partial run replaces only its sections' blocks in PATH (between
`<!-- bench NAME: begin ... -->` and `<!-- bench NAME: end -->`; a block not
there yet goes before the fleet section), each saying which run it comes
from, and keeps the rest of the file as it is; a whole run rewrites PATH,
every such block included, and keeps bench_fleet.py's section.
"""

import argparse
import base64
import calendar
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_compare import (DOMAIN, STRATEGIES, Compare, CompareFailure,  # noqa: E402
                           churn_lines, marked, new_services_lines, replace_section,
                           report_lines, restart_lines, scale_lines, target_misses)
from harness import (ETCD_BIN, HAPROXY_BIN, REPO, Env, EtcdServer,  # noqa: E402
                     HarnessError, ProcessDied, assert_loopback_only,
                     etcd_delete_prefix, etcd_put, free_port, haproxy_cmd,
                     http_get, wait_for, write_config)

PREFIX = "/services/"
MAX_TXN_OPS = 1024
APPLIED = re.compile(r"^(\S+) info  sync: applied (\d+) runtime commands? "
                     r"\((\d+) failed\) in ([\d.]+) ms", re.M)
RUNTIME_ERROR = re.compile(r"HAProxy runtime socket \S+: ([^(\n]*?) \(retrying")
# the sections --only can pick: slotsync alone (a., b., c.), then side by side
SECTIONS = ("latency", "bulk", "startup", "floor", "changes", "churn", "new", "scale",
            "restart")
CMP_SECTIONS = SECTIONS[3:]
SCALE_STRATEGIES = ("slotsync", "slotsync-runtime", "reload", "dns-default")
COLD_CAP_S = 30     # how long the cold start may take before we stop waiting
# srv_admin_state bits that take a slot out (as integration/test_daemon.py)
OUT_BITS = 0x23 | 0x18


class BenchFailure(Exception):
    """Something that had to happen did not (not a slow timing)."""


def progress(text):
    sys.stderr.write("bench: %s\n" % text)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Figures

def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summary(values):
    return {"n": len(values), "median": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99),
            "max": max(values)}


def ms(seconds):
    return seconds * 1e3


def fmt_ms(value):
    """Milliseconds with a sensible number of digits."""
    if value < 10:
        return "%.2f ms" % value
    if value < 1000:
        return "%.1f ms" % value
    return "%.2f s" % (value / 1e3)


def fmt_mb(kib):
    return "%.1f MiB" % (kib / 1024.0)


def log_time(stamp):
    """Epoch seconds of a slotsync log stamp (RFC 3339 in UTC, ms, "Z")."""
    base, _, millis = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1e3


def applied_since(text, offset):
    """[(epoch, commands, failed, ms)] of the "applied" lines after offset."""
    return [(log_time(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4)))
            for m in APPLIED.finditer(text, offset)]


def batch_text(batches):
    """ "2 batches: 1996 + 4 commands (12.3 + 0.2 ms)" """
    if not batches:
        return "none"
    return "%d batch%s: %s commands (%s ms)" % (
        len(batches), "es" if len(batches) > 1 else "",
        " + ".join(str(b[1]) for b in batches),
        " + ".join("%.1f" % b[3] for b in batches))


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


# --------------------------------------------------------------------------
# etcd in bulk

class BenchEtcd(EtcdServer):
    """The harness's etcd member, allowed 1024 operations per transaction
    (etcd's default is 128)."""

    def argv(self):
        return super().argv() + ["--max-txn-ops", str(MAX_TXN_OPS)]


def start_etcd(env):
    last = None
    for _ in range(3):
        server = BenchEtcd(env, "etcd", free_port(), free_port())
        try:
            server.start()
        except ProcessDied as e:
            if "address already in use" not in env.log_text("etcd"):
                raise
            last = e
            continue
        env.etcd = server
        return server
    raise last


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def b64(text):
    return base64.b64encode(text.encode()).decode()


def etcd_txn_put(url, pairs, timeout=30):
    """Put every (key, value) in one transaction; returns its revision."""
    ops = []
    for key, value in pairs:
        assert_loopback_only(value, "value of %r" % key)
        ops.append({"request_put": {"key": b64(key), "value": b64(value)}})
    req = urllib.request.Request(url + "/v3/kv/txn",
                                 data=json.dumps({"success": ops}).encode(),
                                 headers={"Content-Type": "application/json"},
                                 method="POST")
    try:
        with _opener.open(req, timeout=timeout) as r:
            doc = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise BenchFailure("etcd txn of %d puts: HTTP %d: %s"
                           % (len(ops), e.code, e.read()[:200])) from None
    if not doc.get("succeeded"):
        raise BenchFailure("etcd txn of %d puts failed: %r" % (len(ops), doc)[:300])
    return int(doc["header"]["revision"])


def etcd_list_all(url, prefix, page=1000):
    """Read every key under prefix at one revision in pages, as slotsync
    lists (same page size); returns the number of keys."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    key, revision, n = prefix, None, 0
    while True:
        body = {"key": b64(key), "range_end": b64(end), "limit": page}
        if revision:
            body["revision"] = revision
        req = urllib.request.Request(url + "/v3/kv/range", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
        with _opener.open(req, timeout=30) as r:
            doc = json.loads(r.read())
        revision = doc["header"]["revision"]
        kvs = doc.get("kvs", [])
        n += len(kvs)
        if not doc.get("more") or not kvs:
            return n
        key = base64.b64decode(kvs[-1]["key"]).decode() + "\0"


def etcd_load(url, pairs):
    """Put pairs in transactions of MAX_TXN_OPS; returns the count of txns."""
    n = 0
    for i in range(0, len(pairs), MAX_TXN_OPS):
        etcd_txn_put(url, pairs[i:i + MAX_TXN_OPS])
        n += 1
    return n


# --------------------------------------------------------------------------
# HAProxy polling

def ready_ports(admin_sock, backend):
    """{srv_port} of backend's slots that hold 127.0.0.1 and are in rotation
    (raw "show servers state": the dict parsing of harness is too slow for a
    tight loop over 1024 rows)."""
    out = haproxy_cmd(admin_sock, "show servers state " + backend)
    ports = set()
    header = None
    for line in out.splitlines():
        if line.startswith("# "):
            cols = line[2:].split()
            header = (cols.index("srv_addr"), cols.index("srv_admin_state"),
                      cols.index("srv_port"))
            continue
        if header is None or not line.strip():
            continue
        f = line.split()
        if f[header[0]] == "127.0.0.1" and not int(f[header[1]]) & OUT_BITS:
            ports.add(int(f[header[2]]))
    return ports


def count_slots(admin_sock):
    """(slots, slots holding an address) over every backend."""
    out = haproxy_cmd(admin_sock, "show servers state", timeout=60)
    total = filled = 0
    addr_col = None
    for line in out.splitlines():
        if line.startswith("# "):
            addr_col = line[2:].split().index("srv_addr")
        elif addr_col is not None and line.strip():
            f = line.split()
            if len(f) > addr_col:
                total += 1
                filled += f[addr_col] != "0.0.0.0"
    return total, filled


def event_histogram(metrics_url, since=None):
    """slotsync's own event-to-applied histogram from its admin endpoint's
    /metrics: {"count", "sum" (s), "buckets": [(le, cumulative count)]},
    minus since (an earlier reading) when given."""
    status, body = http_get(metrics_url, timeout=5)
    if status != 200:
        raise BenchFailure("%s answered %d" % (metrics_url, status))
    name = "slotsync_event_to_applied_seconds"
    h = {"count": 0, "sum": 0.0, "buckets": []}
    for line in body.splitlines():
        if line.startswith(name + "_bucket{le=\""):
            le = line.split('"')[1]
            h["buckets"].append((float(le), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(name + "_count "):
            h["count"] = float(line.split()[1])
        elif line.startswith(name + "_sum "):
            h["sum"] = float(line.split()[1])
    if since:
        h = {"count": h["count"] - since["count"], "sum": h["sum"] - since["sum"],
             "buckets": [(le, n - m) for (le, n), (_, m) in zip(h["buckets"], since["buckets"])]}
    return h


def histogram_median_bound(h):
    """The upper bound (ms) of the bucket holding the median observation."""
    for le, n in h["buckets"]:
        if h["count"] and n >= h["count"] / 2:
            return le * 1e3
    return float("nan")


def run_timed(env, name, argv, timeout=120):
    """Run argv (registered in env); returns (returncode, seconds, peak RSS
    KiB, CPU seconds), the last two from the exited process's rusage."""
    t0 = time.monotonic()
    proc = env.spawn(name, argv)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            env.stop(proc)
            raise BenchFailure("%s did not finish within %d s" % (name, timeout))
        time.sleep(0.002)
    took = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, took, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------
# The bench

class Bench:
    def __init__(self, env, bin_path, quick=False):
        self.env = env
        self.bin = bin_path
        self.quick = quick
        self.n_changes = 40 if quick else 200
        self.n_bulk = 200 if quick else 1000
        self.n_services = 10 if quick else 100
        self.per_service = 100 if quick else 1000
        self.r = {}
        self.reloads = []       # (which HAProxy, (reloads, failed))
        self.only = []          # --only: the sections to run (empty: all)
        self.strategies = []    # --strategies: those of section scale (empty: all)
        self.sizes = []         # --sizes: those of section scale (empty: the default)

    # -- shared pieces

    def config(self, name, services, admin_port=None, listen=True):
        """A config file name.json for services {name: slots}, rendering to
        name.cfg (admin_port: with the admin endpoint on that port); listen:
        a frontend on a free port for each (without, a port taken by someone
        else meanwhile cannot stop HAProxy)."""
        extra = {"admin": {"listen": "127.0.0.1:%d" % admin_port}} if admin_port else {}
        return write_config(self.env, dict(extra, **{
            "etcd": {"endpoints": [self.etcd.url], "prefix": PREFIX},
            "haproxy": {
                "runtime_socket": self.env.path("admin.sock"),
                "master_socket": self.env.path("master.sock"),
                "services_file": self.env.path(name + ".cfg"),
            },
            "defaults": {"server_options": ""},
            "services": {s: dict({"slots": slots},
                                 **({"listen": "127.0.0.1:%d" % free_port()} if listen else {}))
                         for s, slots in services.items()},
            "log_level": "info",
        }), name=name + ".json")

    def render(self, config, name, out=None):
        argv = [self.bin, "render", "-c", config, "--timeout", "120"]
        if out:
            argv += ["-o", out]
        rc, took, rss, cpu = run_timed(self.env, name, argv)
        if rc != 0:
            raise BenchFailure("slotsync render exited %d: %s"
                               % (rc, self.env.log_tail(name, 5)))
        return took, rss, cpu

    def start_haproxy(self, services_file, name):
        t0 = time.monotonic()
        hap = self.env.start_haproxy(services_file, name=name, timeout=120)
        return hap, time.monotonic() - t0

    def check_reloads(self, hap, which):
        got = hap.reloads()
        self.reloads.append((which, got))
        if got != (0, 0):
            raise BenchFailure("HAProxy (%s) was reloaded: %d [failed: %d]"
                               % (which, got[0], got[1]))

    def check_applied(self, batches, what):
        failed = sum(b[2] for b in batches)
        if failed:
            raise BenchFailure("%s: HAProxy refused %d runtime commands" % (what, failed))

    # -- a + b: one HAProxy with a small and a 1024-slot backend

    def setup_changes(self):
        progress("starting etcd, whoami, HAProxy, slotsync for a. and b.")
        self.etcd = start_etcd(self.env)
        _, self.whoami_port = self.env.start_whoami("whoami")
        self.dead_port = free_port()     # nothing listens there
        admin_port = free_port()
        self.admin_ab = "http://127.0.0.1:%d/metrics" % admin_port
        self.cfg_ab = self.config("ab", {"lat": 8, "bulk": 1024}, admin_port=admin_port)
        self.render(self.cfg_ab, "render-ab")
        self.hap_ab, _ = self.start_haproxy(self.env.path("ab.cfg"), "haproxy-ab")
        # every batch's "applied" line is a measurement here: no rate limit
        self.run_ab = self.env.start_slotsync(self.bin, self.cfg_ab, name="slotsync-ab",
                                              extra_args=["--log-unlimited"])
        self.env.wait_log("slotsync-ab", r"HAProxy state read", alive=[self.run_ab])

    def latency(self):
        n = self.n_changes
        progress("a. %d sequential changes of one endpoint" % n)
        sock, key = self.hap_ab.admin_sock, PREFIX + "lat/e1"
        ports = (self.whoami_port, self.dead_port)

        def shows(port):
            return port in ready_ports(sock, "lat")

        etcd_put(self.etcd.url, key, "127.0.0.1:%d" % ports[1])
        wait_for(lambda: shows(ports[1]), alive=[self.run_ab], what="first lat endpoint")
        offset = len(self.env.log_text("slotsync-ab"))
        hist_before = event_histogram(self.admin_ab)
        lat, from_send, put_rtt, polls, first_poll = [], [], [], 0, 0
        t_begin = time.monotonic()
        for i in range(n):
            port = ports[i % 2]
            value = "127.0.0.1:%d" % port
            t_put = time.monotonic()
            etcd_put(self.etcd.url, key, value)
            t0 = time.monotonic()
            first = True
            while True:
                polls += 1
                if shows(port):
                    first_poll += first
                    break
                first = False
                if time.monotonic() - t0 > 10:
                    raise BenchFailure("change %d (%s) not in HAProxy after 10 s" % (i, value))
            t1 = time.monotonic()
            lat.append(ms(t1 - t0))
            from_send.append(ms(t1 - t_put))
            put_rtt.append(ms(t0 - t_put))
        elapsed = time.monotonic() - t_begin
        # the poll's own cost: the resolution of the figures above
        t = time.monotonic()
        for _ in range(50):
            shows(0)
        poll_ms = ms(time.monotonic() - t) / 50
        batches = wait_for(lambda: (lambda b: len(b) >= n and b)(
            applied_since(self.env.log_text("slotsync-ab"), offset)),
            timeout=5, what="%d applied lines" % n)
        self.check_applied(batches, "latency")
        hist = event_histogram(self.admin_ab, since=hist_before)
        lat_errors = RUNTIME_ERROR.findall(self.env.log_text("slotsync-ab"), offset)
        self.r["a"] = {
            "n": n, "latency": summary(lat), "put_rtt": summary(put_rtt),
            "from_send": summary(from_send), "first_poll": first_poll,
            "slotsync": summary([b[3] for b in batches]),
            "batches": len(batches), "errors": lat_errors,
            "cmds": sorted({b[1] for b in batches}),
            "poll_ms": poll_ms, "polls": polls, "elapsed": elapsed,
            "histogram": hist,
        }

    def bulk(self):
        n = self.n_bulk
        progress("b. %d endpoints in one transaction, then one deleterange" % n)
        sock = self.hap_ab.admin_sock
        base = 20000
        want = {base + i for i in range(n)}
        pairs = [(PREFIX + "bulk/i%04d" % i, "127.0.0.1:%d" % (base + i)) for i in range(n)]
        offset = len(self.env.log_text("slotsync-ab"))
        t_send = time.monotonic()
        etcd_txn_put(self.etcd.url, pairs)
        t0 = time.monotonic()
        polls = 0
        while True:
            polls += 1
            if ready_ports(sock, "bulk") == want:
                break
            if time.monotonic() - t0 > 30:
                raise BenchFailure("%d bulk endpoints not all in HAProxy after 30 s" % n)
        add_ms = ms(time.monotonic() - t0)
        txn_ms = ms(t0 - t_send)
        time.sleep(0.3)   # let any trailing batch be logged
        text = self.env.log_text("slotsync-ab")
        add_batches = applied_since(text, offset)
        add_errors = RUNTIME_ERROR.findall(text, offset)
        offset = len(text)
        self.check_applied(add_batches, "bulk add")

        t0 = time.monotonic()
        deleted = etcd_delete_prefix(self.etcd.url, PREFIX + "bulk/")
        t1 = time.monotonic()
        while ready_ports(sock, "bulk"):
            if time.monotonic() - t1 > 30:
                raise BenchFailure("bulk endpoints still in HAProxy 30 s after the delete")
        del_ms = ms(time.monotonic() - t1)
        time.sleep(0.3)
        text = self.env.log_text("slotsync-ab")
        del_batches = applied_since(text, offset)
        del_errors = RUNTIME_ERROR.findall(text, offset)
        self.check_applied(del_batches, "bulk delete")
        if deleted != n:
            raise BenchFailure("deleterange removed %d keys, not %d" % (deleted, n))
        t = time.monotonic()
        for _ in range(10):
            ready_ports(sock, "bulk")
        self.r["b"] = {"n": n, "add_ms": add_ms, "txn_ms": txn_ms,
                       "add_batches": add_batches, "del_ms": del_ms,
                       "add_errors": add_errors, "del_errors": del_errors,
                       "del_txn_ms": ms(t1 - t0), "del_batches": del_batches,
                       "poll_ms": ms(time.monotonic() - t) / 10}
        self.r["ab_rss"] = vm_hwm_kib(self.run_ab.pid)
        self.check_reloads(self.hap_ab, "a. and b.")
        self.env.stop(self.run_ab)
        self.hap_ab.stop()

    # -- c: 100,000 keys

    def startup(self):
        n_svc, per = self.n_services, self.per_service
        total = n_svc * per
        services = ["svc%03d" % i for i in range(n_svc)]
        cfg = self.config("big", {s: 1024 for s in services}, listen=False)
        progress("c. rendering %d empty backends (for the cold start)" % n_svc)
        etcd_delete_prefix(self.etcd.url, PREFIX)
        empty_file = self.env.path("big-empty.cfg")
        self.render(cfg, "render-empty", out=empty_file)

        progress("c. loading %d keys into etcd" % total)
        pairs = [(PREFIX + "%s/i%04d" % (s, i), "127.0.0.1:%d" % (10000 + i))
                 for s in services for i in range(per)]
        t0 = time.monotonic()
        txns = etcd_load(self.etcd.url, pairs)
        load_s = time.monotonic() - t0
        del pairs

        progress("c. slotsync render with %d keys" % total)
        render_s, render_rss, render_cpu = self.render(cfg, "render-big")
        t0 = time.monotonic()
        listed = etcd_list_all(self.etcd.url, PREFIX)
        etcd_list_s = time.monotonic() - t0
        if listed != total:
            raise BenchFailure("etcd listed %d keys, not %d" % (listed, total))
        rendered = self.env.path("big.cfg")
        with open(rendered) as f:
            text = f.read()
        server_lines = text.count("\n    server ")
        filled_lines = server_lines - text.count(" 0.0.0.0:0 ")
        size = len(text)
        del text

        # warm: HAProxy already holds every endpoint (as after a slotsync
        # restart): the run only lists etcd, reads HAProxy and sends nothing
        progress("c. HAProxy on the rendered file, slotsync run (warm)")
        hap, hap_s = self.start_haproxy(rendered, "haproxy-warm")
        warm = self.timed_run(cfg, "slotsync-warm", hap, expect_commands=False)
        # what every resync (resync_interval_s) asks HAProxy for
        t = time.monotonic()
        warm_slots = count_slots(hap.admin_sock)
        dump_s = time.monotonic() - t
        t = time.monotonic()
        dump_bytes = len(haproxy_cmd(hap.admin_sock, "show servers state", timeout=60))
        dump_raw_s = time.monotonic() - t
        self.check_reloads(hap, "c. warm start")
        self.env.stop(warm["proc"])
        hap.stop()

        # cold: HAProxy's slots are empty: every endpoint is sent
        progress("c. HAProxy with empty slots, slotsync run (cold)")
        hap, _ = self.start_haproxy(empty_file, "haproxy-cold")
        cold = self.timed_run(cfg, "slotsync-cold", hap, expect_commands=True,
                              want_filled=total)
        self.check_reloads(hap, "c. cold start")
        self.env.stop(cold["proc"])
        hap.stop()

        if warm_slots[1] != total:
            raise BenchFailure("slots holding an address after the warm start: %d, want %d"
                               % (warm_slots[1], total))
        self.r["c"] = {"keys": total, "services": n_svc, "per": per, "txns": txns,
                       "load_s": load_s, "render_s": render_s, "render_rss": render_rss,
                       "render_cpu": render_cpu, "etcd_list_s": etcd_list_s,
                       "server_lines": server_lines, "filled_lines": filled_lines,
                       "file_bytes": size, "hap_start_s": hap_s,
                       "warm": warm, "cold": cold, "slots": warm_slots[0],
                       "dump_s": dump_raw_s, "dump_parse_s": dump_s, "dump_bytes": dump_bytes}

    def timed_run(self, cfg, name, hap, expect_commands, want_filled=None):
        """Start slotsync run; time "etcd listing applied", "HAProxy state
        read", and (cold) until the commands of every endpoint were applied."""
        t_spawn = time.time()
        proc = self.env.start_slotsync(self.bin, cfg, name=name,
                                       extra_args=["--log-unlimited"])
        m = self.env.wait_log(name, r"(\S+) info  sync: etcd listing applied: (\d+) endpoints",
                              timeout=120, alive=[proc])
        listed = log_time(m.group(1)) - t_spawn
        endpoints = int(m.group(2))
        m = self.env.wait_log(name, r"(\S+) info  sync: HAProxy state read",
                              timeout=120, alive=[proc])
        state = log_time(m.group(1)) - t_spawn
        out = {"proc": proc, "listed_s": listed, "state_s": state, "endpoints": endpoints}
        if expect_commands:
            # Every endpoint takes an "addr" and a "state ready" command:
            # follow the log (reading 100,000 slots from HAProxy while it
            # works would slow it down), then count in HAProxy once. Give
            # up waiting after COLD_CAP_S: what was reached then is the
            # result.
            def sent():
                return sum(b[1] for b in applied_since(self.env.log_text(name), 0))
            t0 = time.monotonic()
            while sent() < 2 * want_filled and time.monotonic() - t0 < COLD_CAP_S:
                if proc.poll() is not None:
                    raise BenchFailure("%s exited with %s" % (name, proc.returncode))
                time.sleep(0.2)
            time.sleep(0.5)
            filled = count_slots(hap.admin_sock)[1]
            batches = applied_since(self.env.log_text(name), 0)
            self.check_applied(batches, name)
            out["batches"] = batches
            out["filled"] = filled
            out["converged"] = filled >= want_filled
            out["waited_s"] = time.monotonic() - t0 + state
            out["done_s"] = batches[-1][0] - t_spawn if batches else None
        else:
            time.sleep(1.0)   # time to send something if it wanted to
            out["batches"] = applied_since(self.env.log_text(name), 0)
        text = self.env.log_text(name)
        out["runtime_errors"] = RUNTIME_ERROR.findall(text)
        first_key = re.search(r"^(\S+) info  sync: etcd key ", text, re.M)
        # the listing is delivered at its end: from the first key's line to
        # "etcd listing applied" is applying (and logging) every key
        out["apply_s"] = (listed + t_spawn - log_time(first_key.group(1))) if first_key else None
        out["log_lines"] = text.count("\n")
        out["log_bytes"] = len(text)
        out["rss"] = vm_hwm_kib(proc.pid)
        return out

    def wants(self, section):
        return not self.only or section in self.only

    def run(self):
        self.r["load_before"] = loadavg()
        t0 = time.monotonic()
        if self.wants("latency") or self.wants("bulk"):
            self.setup_changes()
        else:
            self.etcd = start_etcd(self.env)
        if self.wants("latency"):
            self.latency()
        if self.wants("bulk"):
            self.bulk()
        if self.wants("startup"):
            self.startup()
        # the side by side runs on the same etcd, with HAProxy started anew
        # for each strategy; the prefix is cleared between them
        if not any(self.wants(x) for x in CMP_SECTIONS):
            self.r["total_s"] = time.monotonic() - t0
            return
        cmp = Compare(self)
        self.r["cmp"] = cmp.run()
        failed = [f for f in cmp.failures if f.startswith("slotsync")]
        self.r["cmp_failures"] = cmp.failures
        if failed:
            raise BenchFailure("; ".join(failed))
        self.r["total_s"] = time.monotonic() - t0


# --------------------------------------------------------------------------
# Report

def command_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "?"
    return out.splitlines()[0].strip() if out else "?"


def machine(bin_path):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
        "haproxy": command_version([HAPROXY_BIN, "-v"]),
        "etcd": command_version([ETCD_BIN, "--version"]),
        "slotsync": command_version([bin_path, "version"]),
        "commit": commit or "?",
        "python": platform.python_version(),
        "load": loadavg(),
    }


def wmem_default():
    try:
        with open("/proc/sys/net/core/wmem_default") as f:
            return "%d KiB" % (int(f.read()) // 1024)
    except (OSError, ValueError):
        return "?"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def report(r, m, command, when):
    a, b, c = r["a"], r["b"], r["c"]
    warm, cold = c["warm"], c["cold"]
    lines = []
    add = lines.append
    add("# slotsync performance")
    add("")
    add("Generated by `integration/bench.py`; do not edit by hand, run it again:")
    add("")
    add("    " + command)
    add("")
    add("- date: %s" % when)
    add("- machine: %d CPUs (nproc), %s, Linux %s" % (m["nproc"], m["cpu"], m["kernel"]))
    add("- %s; etcd %s (single member, data on local disk, `--max-txn-ops %d`)"
        % (m["haproxy"].split(" - ")[0], m["etcd"].replace("etcd Version: ", ""), MAX_TXN_OPS))
    add("- %s, tree %s, Python %s (the measuring side)"
        % (m["slotsync"], m["commit"], m["python"]))
    add("- everything on 127.0.0.1; HAProxy servers without health checks "
        "(`server_options \"\"`); slotsync at log level info")
    add("- whole run: %.0f s; load average (1, 5, 15 min) before it: %s, after it: %s "
        "(the machine is shared: other work may have run meanwhile)"
        % (r["total_s"], r["load_before"], m["load"]))
    add("")
    add("Timings are what this one run measured on this machine; they are not "
        "thresholds, and the bench never fails on speed. The machine is shared and "
        "noisy, so compare the ratios between strategies of this one run rather than "
        "absolute figures between runs.%s"
        % (" **This is a BENCH_QUICK run**: smaller counts and sizes than `make bench`."
           if r.get("quick") else ""))
    add("")
    side, head, misses = report_lines(r["cmp"], r)
    add("## Key ratios")
    add("")
    for h in head:
        add("- " + h)
    add("")
    add("## Targets missed")
    add("")
    for x in misses or ["none"]:
        add("- " + x)
    if r.get("cmp_failures"):
        add("- alternatives that did not get there: " + "; ".join(r["cmp_failures"]))
    add("")
    add("# Side by side: slotsync and what users run instead")
    add("")
    add("Each strategy runs in turn against the same etcd, the same base config "
        "(haproxy/haproxy.cfg as the integration tests use it), the same backends "
        "and the same load; HAProxy is started anew for each; only the update strategy "
        "differs:")
    add("")
    add("- **slotsync**: `slotsync run --log-unlimited`, HAProxy started on the "
        "backends with empty slots (`server_options \"\"`: no health checks, in every "
        "strategy).")
    add("- **reload per change** (what confd in watch mode, docker-discover and Paz "
        "do): `integration/bench_alt.py reload` follows etcd's watch and on every "
        "change renders the whole services file (one `server` line per endpoint), "
        "runs `haproxy -c -f base -f candidate`, renames it into place and sends "
        "`reload` to the master socket; one change at a time, in order.")
    add("- **DNS** (HAProxy alone): `integration/bench_alt.py dns` serves etcd's state "
        "(followed by watch) as SRV `_<service>._tcp.%s` records with the A records "
        "in the additional section; HAProxy's backends are `server-template s N "
        "_<service>._tcp.%s resolvers benchdns init-addr none`, `resolvers benchdns` "
        "with `accepted_payload_size 65535` and either HAProxy's default timers "
        "(`timeout resolve 1s`, `hold valid 10s`) or the tightest sensible ones "
        "(`timeout resolve 100ms`, `timeout retry 100ms`, `hold valid 100ms`, "
        "`hold obsolete 0s`)." % (DOMAIN, DOMAIN))
    add("- load: `wrk -t1 -c8 -dNs --latency --timeout 5s http://FRONTEND/`")
    add("")
    for x in side:
        add(x)
    for x in MEMORY_NOTES:
        add(x)
    add("")
    add("# slotsync alone, in detail")
    add("")

    add("## a. One change: etcd put -> HAProxy")
    add("")
    add("%d sequential puts of one endpoint, its port alternating; each timed from "
        "the put's reply until `show servers state` on the admin socket shows the new "
        "port (polled in a loop; one poll takes %s, the resolution of these figures)."
        % (a["n"], fmt_ms(a["poll_ms"])))
    add("")
    add("| measure | median | p90 | p99 | max |")
    add("|---|---:|---:|---:|---:|")

    def row(label, s):
        add("| %s | %s | %s | %s | %s |" % (label, fmt_ms(s["median"]), fmt_ms(s["p90"]),
                                           fmt_ms(s["p99"]), fmt_ms(s["max"])))
    row("put reply -> new port in HAProxy", a["latency"])
    row("put sent -> new port in HAProxy", a["from_send"])
    row("slotsync batch, its log (\"applied ... in X ms\")", a["slotsync"])
    row("etcd put round trip (context)", a["put_rtt"])
    add("")
    add("slotsync logged %d batches for the %d changes, of %s runtime command%s each "
        "(runtime socket errors: %s). "
        "In %d of the %d changes the first poll after the put's reply already showed "
        "the new port."
        % (a["batches"], a["n"], " or ".join(str(x) for x in a["cmds"]),
           "" if a["cmds"] == [1] else "s", error_summary(a["errors"]),
           a["first_poll"], a["n"]))
    add("")
    h = a["histogram"]
    add("Cross-check with slotsync's own `slotsync_event_to_applied_seconds` histogram "
        "(admin endpoint, /metrics; from the etcd event's arrival to HAProxy's reply): "
        "%d events over these changes, mean %s, median in the bucket up to %s. It "
        "measures another span than the table (from the event's arrival, which may come "
        "before the put's reply, to HAProxy's reply, without the poll): the same order "
        "of magnitude is what to expect, not the same figures."
        % (h["count"], fmt_ms(h["sum"] / h["count"] * 1e3 if h["count"] else float("nan")),
           fmt_ms(histogram_median_bound(h))))
    add("")

    add("## b. Bulk: %d endpoints at once into a 1024-slot backend" % b["n"])
    add("")
    add("| step | time to HAProxy | batches slotsync logged | runtime socket errors |")
    add("|---|---:|---|---|")
    add("| %d puts in one etcd txn (reply after %s) -> all %d in rotation | %s | %s | %s |"
        % (b["n"], fmt_ms(b["txn_ms"]), b["n"], fmt_ms(b["add_ms"]),
           batch_text(b["add_batches"]), error_summary(b["add_errors"])))
    add("| one deleterange of the %d (reply after %s) -> all %d out | %s | %s | %s |"
        % (b["n"], fmt_ms(b["del_txn_ms"]), b["n"], fmt_ms(b["del_ms"]),
           batch_text(b["del_batches"]), error_summary(b["del_errors"])))
    if b["add_errors"] or b["del_errors"]:
        add("")
        add("A batch that fails on the socket is not logged as applied: slotsync re-reads "
            "HAProxy's state and sends what is still missing, so the batches above can "
            "add up to fewer commands than %d." % (2 * b["n"]))
    add("")
    add("Polling the 1024-row backend takes %s per poll. slotsync's peak RSS after "
        "a. and b.: %s." % (fmt_ms(b["poll_ms"]), fmt_mb(r["ab_rss"])))
    add("")

    lines.extend(marked("startup", startup_lines(c)))

    add("## d. Reloads")
    add("")
    add("| HAProxy | reloads (master `show proc`) |")
    add("|---|---:|")
    for which, (n, failed) in r["reloads"]:
        add("| %s | %d [failed: %d] |" % (which, n, failed))
    add("")

    add("## Reading these figures")
    add("")
    for para in interpretation(r):
        add(para)
        add("")
    return "\n".join(lines).rstrip("\n") + "\n"


def startup_lines(c):
    """Markdown lines of section c (the 100,000-key startup)."""
    lines = []
    add = lines.append
    warm, cold = c["warm"], c["cold"]
    add("## c. Startup with %s keys" % "{:,}".format(c["keys"]))
    add("")
    add("%d services x %d endpoints under `%s`, each service a backend of 1024 slots "
        "(%s slots in HAProxy), loaded in %d transactions of up to %d puts."
        % (c["services"], c["per"], PREFIX, "{:,}".format(c["slots"]), c["txns"],
           MAX_TXN_OPS))
    add("")
    add("| measure | result |")
    add("|---|---:|")
    add("| loading the keys into etcd (context) | %.1f s |" % c["load_s"])
    add("| `slotsync render`, end to end (list, render, write %.1f MiB, %s server lines) "
        "| %.2f s |" % (c["file_bytes"] / 2**20, "{:,}".format(c["server_lines"]),
                        c["render_s"]))
    add("| `slotsync render` CPU time (user + system) | %.2f s |" % c["render_cpu"])
    add("| `slotsync render` peak RSS | %s |" % fmt_mb(c["render_rss"]))
    add("| the same listing by the bench's Python client, 1000 keys a page (context) "
        "| %.2f s |" % c["etcd_list_s"])
    add("| HAProxy start on the rendered file (context) | %.1f s |" % c["hap_start_s"])
    add("| warm `slotsync run`: start -> \"etcd listing applied\" (%s endpoints) | %.2f s |"
        % ("{:,}".format(warm["endpoints"]), warm["listed_s"]))
    add("| warm `slotsync run`: start -> \"HAProxy state read\" | %.2f s |" % warm["state_s"])
    add("| warm `slotsync run`: runtime commands sent (HAProxy already had them) | %d |"
        % sum(x[1] for x in warm["batches"]))
    add("| warm `slotsync run` peak RSS (VmHWM) | %s |" % fmt_mb(warm["rss"]))
    add("| `show servers state` of every slot, as each resync reads it (%.1f MiB; "
        "context) | %s |" % (c["dump_bytes"] / 2**20, fmt_ms(ms(c["dump_s"]))))
    add("| cold `slotsync run` (empty slots): start -> \"etcd listing applied\" | %.2f s |"
        % cold["listed_s"])
    if cold["converged"]:
        add("| cold `slotsync run`: start -> every endpoint in HAProxy (last batch) "
            "| %.2f s |" % cold["done_s"])
    else:
        add("| cold `slotsync run`: endpoints in HAProxy when the bench stopped waiting, "
            "%.0f s after start | **%s of %s** |"
            % (cold["waited_s"], "{:,}".format(cold["filled"]), "{:,}".format(c["keys"])))
    add("| cold `slotsync run`: batches applied | %s |" % batch_summary(cold["batches"]))
    add("| cold `slotsync run`: runtime socket errors logged | %s |"
        % error_summary(cold["runtime_errors"]))
    add("| cold `slotsync run` peak RSS (VmHWM) | %s |" % fmt_mb(cold["rss"]))
    add("| log written by one `slotsync run` at startup | %s lines, %.1f MiB |"
        % ("{:,}".format(warm["log_lines"]), warm["log_bytes"] / 2**20))
    add("")
    return lines


def partial_report(r, m, command, when, only):
    """The report of a run of some sections only (--only): what they measured
    and the targets they decide; not for docs/PERFORMANCE.md."""
    lines = []
    add = lines.append
    add("# slotsync performance: sections %s only" % ", ".join(only))
    add("")
    add("    " + command)
    add("")
    add("- date: %s; machine: %d CPUs, %s; %s, tree %s"
        % (when, m["nproc"], m["cpu"], m["slotsync"], m["commit"]))
    add("")
    rows = r.get("cmp", {}).get("scale", [])
    add("## Targets missed (of those these sections decide)")
    add("")
    for x in target_misses(rows, r) or ["none"]:
        add("- " + x)
    add("")
    if "c" in r:
        lines.extend(startup_lines(r["c"]))
    if r.get("cmp", {}).get("churn"):
        lines.extend(churn_lines(r["cmp"]["churn"], [
            st for st in r["cmp"]["strategies"] if st in r["cmp"]["churn"]]))
    if r.get("cmp", {}).get("new"):
        lines.extend(new_services_lines(r["cmp"]["new"]))
    if r.get("cmp", {}).get("restart"):
        lines.extend(restart_lines(r["cmp"]["restart"]))
    if rows:
        lines.extend(scale_lines(rows)[0])
    return "\n".join(lines).rstrip("\n") + "\n"


def section_blocks(r, m, command, when):
    """{section: marked lines} of the sections of a partial run that have a
    report of their own (startup, churn, new, restart, scale), each saying
    which run it comes from, for --write (a section run replaces only its
    own block of the file)."""
    cmp = r.get("cmp", {})
    found = {}
    if "c" in r:
        found["startup"] = startup_lines(r["c"])
    if cmp.get("churn"):
        found["churn"] = churn_lines(cmp["churn"], [st for st in cmp["strategies"]
                                                    if st in cmp["churn"]])
    if cmp.get("new"):
        found["new"] = new_services_lines(cmp["new"])
    if cmp.get("restart"):
        found["restart"] = restart_lines(cmp["restart"])
    if cmp.get("scale"):
        misses = target_misses(cmp["scale"], r)
        found["scale"] = scale_lines(cmp["scale"])[0] + [
            "Targets this section decides, missed: %s" % ("; ".join(misses) or "none"), ""]
    out = {}
    for name, lines in found.items():
        where = ("From a run of this section alone, not of the whole `make bench`: `%s`; "
                 "%s, tree %s, %s; %.0f s; load average (1, 5, 15 min) before it: %s, "
                 "after it: %s (the machine is shared: other work ran meanwhile)."
                 % (command, when, m["commit"], m["slotsync"], r.get("total_s", 0),
                    r.get("load_before", "?"), m["load"]))
        # after the section's heading and its blank line
        out[name] = marked(name, lines[:2] + [where, ""] + lines[2:])
    return out


def error_summary(errors):
    if not errors:
        return "none"
    counts = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    return ", ".join("%d x \"%s\"" % (n, e) for e, n in sorted(counts.items()))


def batch_summary(batches):
    if not batches:
        return "none"
    cmds = [b[1] for b in batches]
    return "%d batch%s, %s commands (largest %s), %s ms in HAProxy in all" % (
        len(batches), "" if len(batches) == 1 else "es", "{:,}".format(sum(cmds)), "{:,}".format(max(cmds)),
        "{:,.0f}".format(sum(b[3] for b in batches)))


def interpretation(r):
    a, b, c = r["a"], r["b"], r["c"]
    lat, own = a["latency"], a["slotsync"]
    out = []
    send = a["from_send"]
    out.append(
        "- **One change** is in HAProxy %s after the put is sent (median; p99 %s). %s "
        "(the put's round trip alone: %s median): "
        "measured from the put's reply it is %s (p99 %s), and in %d "
        "of %d changes HAProxy already had the new port at the first poll, because etcd "
        "sends watch events as it applies a write, before the client has read its "
        "reply. slotsync's own part, sending the batch and reading HAProxy's answers, "
        "is %s median (%s p99) by its log. The figures are bounded below by one poll "
        "of the admin socket, %s."
        % (fmt_ms(send["median"]), fmt_ms(send["p99"]),
           "Most of that is etcd committing the write"
           if a["put_rtt"]["median"] > send["median"] / 2 else "Part of that is etcd",
           fmt_ms(a["put_rtt"]["median"]),
           fmt_ms(lat["median"]), fmt_ms(lat["p99"]), a["first_poll"], a["n"],
           fmt_ms(own["median"]), fmt_ms(own["p99"]), fmt_ms(a["poll_ms"])))
    out.append(
        "- **Bulk**: %d endpoints in one transaction went out in %s and were all in "
        "rotation %s after the transaction's reply. A batch is what slotsync gathered "
        "in one loop iteration, so a large transaction arrives as one or a few batches "
        "rather than %d round trips."
        % (b["n"], batch_text(b["add_batches"]), fmt_ms(b["add_ms"]), b["n"]))
    warm, cold = c["warm"], c["cold"]
    out.append(
        "- **Startup with %s keys**: `slotsync render` takes %.2f s and `slotsync run` "
        "has the whole listing in %.2f s; when HAProxy already holds every endpoint "
        "(a restart of slotsync), it sends %d commands. %s: render used %.2f s of CPU, "
        "and the bench's Python client reading the same pages takes %.2f s. Peak RSS: "
        "%s (run, warm), %s (run, cold), %s (render)."
        % ("{:,}".format(c["keys"]), c["render_s"], warm["listed_s"],
           sum(x[1] for x in warm["batches"]),
           "Most of that time is etcd serving the pages"
           if c["render_cpu"] < c["render_s"] / 2 and c["etcd_list_s"] > c["render_s"] / 2
           else "How that time splits",
           c["render_cpu"], c["etcd_list_s"],
           fmt_mb(warm["rss"]), fmt_mb(cold["rss"]), fmt_mb(c["render_rss"])))
    if cold["converged"]:
        out.append(
            "- **Cold start** (HAProxy's slots all empty): slotsync sends %s commands and "
            "HAProxy has every endpoint %.1f s after slotsync starts. Each page of the "
            "listing is applied (additions only) as soon as it is read: the listing "
            "is whole %.1f s after the start, and the batches spent %.1f s in HAProxy "
            "in all, so HAProxy's own work on the commands sets the pace."
            % ("{:,}".format(sum(x[1] for x in cold["batches"])), cold["done_s"],
               cold["listed_s"], sum(x[3] for x in cold["batches"]) / 1e3))
    else:
        out.append(
            "- **Cold start** (HAProxy's slots all empty) **does not converge in time**: "
            "%.0f s after slotsync started, HAProxy held %s of the %s endpoints, and "
            "slotsync had logged %s."
            % (cold["waited_s"], "{:,}".format(cold["filled"]), "{:,}".format(c["keys"]),
               error_summary(cold["runtime_errors"])))
        if any("timed out" in e for e in cold["runtime_errors"]):
            out.append(
                "  The cause, as far as can be seen from outside: slotsync sends a batch "
                "as one line on one connection and writes all of it before it reads "
                "any reply, while HAProxy stops reading commands once a few hundred of "
                "its replies are waiting unread. When a batch is larger than what the "
                "socket buffers take (net.core.wmem_default is %s here; a command is "
                "about 45 bytes) both sides wait until slotsync's runtime timeout "
                "(10 s); the resync after it finds the part HAProxy applied, and the "
                "next batch stalls the same way on the rest.%s Reading replies while "
                "writing, or capping the commands per batch, would avoid it."
                % (wmem_default(),
                   " At the rate seen here (%s endpoints in %.0f s) the whole cold start "
                   "would take about %.0f minutes."
                   % ("{:,}".format(cold["filled"]), cold["waited_s"],
                      c["keys"] * cold["waited_s"] / cold["filled"] / 60)
                   if cold["filled"] else ""))
    if warm["log_lines"] > c["keys"] / 2:
        out.append(
            "- At log level info slotsync writes one line per key while it applies the "
            "listing (%s lines, %.1f MiB here), which is nearly all a startup logs. "
            "Applying the listing, logging included, took %s (from the first key's "
            "line to \"etcd listing applied\"), so %s."
            % ("{:,}".format(warm["log_lines"]), warm["log_bytes"] / 2**20,
               fmt_ms(ms(warm["apply_s"] or 0)),
               "those lines cost little time, but they bury the rest of the startup log"
               if (warm["apply_s"] or 0) < 0.2 * warm["listed_s"]
               else "at this scale they are a visible part of the startup time"))
    out.append(
        "- HAProxy with %s servers starts in %.1f s and dumps `show servers state` "
        "(%.1f MiB) in %s: that dump is what each periodic resync of slotsync "
        "(`resync_interval_s`, 30 s by default) costs HAProxy at this size. No HAProxy "
        "was reloaded during the whole run."
        % ("{:,}".format(c["slots"]), c["hap_start_s"], c["dump_bytes"] / 2**20,
           fmt_ms(ms(c["dump_s"]))))
    resets = sum(1 for e in a["errors"] + b["add_errors"] + b["del_errors"]
                 + cold["runtime_errors"] if "reset" in e)
    if resets:
        out.append(
            "- slotsync logged \"Connection reset by peer\" for %d batch%s: HAProxy closed "
            "the runtime connection partway through a batch. slotsync re-read HAProxy's "
            "state and sent what was missing, which shows up as a slower time above."
            % (resets, "" if resets == 1 else "es"))
    out.append(
        "- Caveats: one machine, one run, loopback only, the bench's Python process "
        "polling HAProxy on the same CPUs as etcd, HAProxy and slotsync; etcd fsyncs "
        "every write to a local disk.")
    return out


# Where slotsync's memory goes: measured by hand (not by this script), see
# the commands in the text; kept here so that the report carries it.
MEMORY_NOTES = [
    "## Where slotsync's memory goes",
    "",
    "Measured by hand on 2026-12-02 (not by this script; src/ as of the issue-14 "
    "memory work), `bench.py --only scale --strategies slotsync --sizes "
    "1x100,100x100,1000x10` with `slotsync run` under `valgrind --tool=massif "
    "--depth=10`, then `ms_print` of the peak snapshot; the base from "
    "/proc/PID/smaps of an idle `slotsync run`.",
    "",
    "**The base** (11.6 MiB VmHWM idle, 11.8 MiB at 100 endpoints) is mostly not "
    "slotsync's: 10.0 MiB are pages of the shared libraries and the binary "
    "(libcrypto 3.1 MiB, libc 1.5 MiB, GnuTLS 1.1 MiB for libmicrohttpd, libcurl "
    "0.6 MiB, p11-kit, libsystemd, libm, libssl, Kerberos, nettle, ... 0.2-0.4 MiB "
    "each), counted in RSS although shared with every other process that maps them; "
    "1.6 MiB are anonymous (heap 0.44 MB at 1 x 100 by massif, a third of it "
    "GnuTLS/libtasn1 and OpenSSL initialising). 10,000 endpoints under 12 MB "
    "would leave about 20 bytes per endpoint above it.",
    "",
    "**Above the base**, at 10,000 endpoints (100 x 100 in backends of 128 slots, "
    "12,800 slots; cold start) massif's peak heap is 4.72 MB against 0.44 MB at "
    "1 x 100, about 430 B per endpoint, in line with the peak RSS this bench "
    "measures (about 420 B per endpoint at 100 x 100 when this was written):",
    "",
    "| where (massif's peak snapshot, 100 x 100) | bytes | per slot / endpoint "
    "| kept or transient |",
    "|---|---:|---:|---|",
    "| `endpoint_new` (catalog.c): `struct catalog_endpoint` + instance name "
    "| 860,000 | 86 B / endpoint | kept |",
    "| `slots_grow` (slots.c): `struct slot` (instance pointer + `struct endpoint`, "
    "whose address is text) | 819,200 | 64 B / slot | kept |",
    "| `backend_resize` (backend.c): `b->have`, one `struct server_view` per slot "
    "(view.h: binary address, port, weight, states) | 307,200 | 24 B / slot | kept |",
    "| `reserve_endpoint` (catalog.c): the services' endpoint arrays | 102,400 "
    "| 10 B / endpoint | kept |",
    "| jansson: the etcd page being decoded (1000 keys) | about 760,000 | | "
    "transient, one page at a time |",
    "| `note_change`, `plan_add` (plan.c): the batch in flight, its change lines and "
    "origins (about 1024 commands) | 547,000 | | transient, one batch at a time |",
    "| http.c, etcd_decode.c, runtime.c: an etcd page's body and keys, the "
    "runtime socket's buffers | about 300,000 | | transient |",
    "",
    "What changed in this round: HAProxy's side of a slot went from two "
    "208-byte `struct server_state` (names and address as text, once for what "
    "slotsync set and once for what the last resync read) to one 24-byte "
    "`struct server_view`; a resync's rows are folded into that form as they are "
    "parsed and freed once adopted; the runtime replies are split in place (a "
    "100,000-slot `show servers state` is 7 MB, no longer copied); the listing is "
    "handed on and freed page by page instead of held whole; a batch takes whole "
    "backends until it holds 1024 commands. Peak RSS per endpoint above the 100-endpoint base "
    "went from 1,310 B to about 240 B at 100,000 endpoints (135.6 to 34 MiB) "
    "and from 1,507 B to about 420 B at 10,000 (100 x 100; 25.0 to 16 MiB).",
    "",
    "With many small services (1,000 x 10, 16 slots each) the per-service "
    "structures add up: 848 B per backend (`backend_insert`, a copy of the "
    "service's options with its `server_options` text) and 688 B per configured "
    "service (`load_services`), about 200 B per endpoint more than 100 x 100.",
    "",
    "What would cut it further (not done): a slot holding the catalog's endpoint "
    "by reference or its address in binary (64 B to about 24 B a slot), the "
    "catalog's address in binary (86 B to about 60 B an endpoint), the change "
    "lines of a batch formatted when logged rather than when planned (192 B a "
    "command in flight), a streaming decoder for the etcd pages. None of it "
    "reaches the 12 MB target at 10,000 endpoints while the libraries alone "
    "take 10 MiB of RSS.",
    "",
    '**Given back after a spike** (issue 20; measured by hand on 2026-12-07, not by this script): a transient buffer of at least 1 MiB (an etcd page\'s body, a runtime reply, a batch line) owes a `malloc_trim(0)` (mem.h), at most one a second; glibc otherwise keeps the pages of the freed page body, its JSON tree and its decoded keys in the heap. VmRSS from /proc/PID/status, `python3 integration/run.py --bin $PWD/bin/slotsync -k test_memory` (integration/test_memory.py; "without" is the same binary with the trim call taken out):',
    "",
    "| spike | idle VmRSS | after, with the trim | after, without |",
    "|---|---:|---:|---:|",
    "| first listing with 51 MiB of refused values (51 keys of 1 MiB, one page) | 11.9 MiB | 11.9 MiB | 64.3 MiB |",
    "| three resyncs whose `show servers state` replies carry 10 MiB of rows of a foreign backend | 11.9 MiB | 11.9 MiB | 33.1 MiB |",
    "",
]

BIN_PATH = None


def repo_relative(arg):
    """arg relative to the repository when it is a path inside it."""
    if os.path.isabs(arg) and os.path.commonpath([REPO, os.path.abspath(arg)]) == REPO:
        return os.path.relpath(arg, REPO)
    return arg


def main():
    global BIN_PATH
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the slotsync binary")
    ap.add_argument("--write", metavar="PATH", help="also write the report there")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes: a smoke test of the bench itself")
    ap.add_argument("--only", metavar="SECTIONS",
                    help="run these sections only, comma-separated, of: %s; prints a "
                    "partial report (not one for docs/PERFORMANCE.md)" % ",".join(SECTIONS))
    ap.add_argument("--section", metavar="NAME", action="append", default=[],
                    help="run this section only (repeatable; the same as --only NAME)")
    ap.add_argument("--strategies", metavar="LIST",
                    help="the strategies section scale runs, comma-separated, of: %s "
                    "(default: all that apply)" % ",".join(SCALE_STRATEGIES))
    ap.add_argument("--sizes", metavar="LIST",
                    help="the sizes section scale runs, comma-separated SERVICESxEACH "
                    "(e.g. 1x100,100x100); the first is the base of bytes per endpoint")
    args = ap.parse_args()
    only = [x for x in (args.only or "").split(",") if x] + args.section
    strategies = [x for x in (args.strategies or "").split(",") if x]
    bad = [x for x in only if x not in SECTIONS] + \
        [x for x in strategies if x not in SCALE_STRATEGIES]
    if bad:
        ap.error("unknown section or strategy: %s" % ", ".join(bad))
    sizes = []
    for x in (args.sizes or "").split(","):
        if x:
            m = re.fullmatch(r"(\d+)x(\d+)", x)
            if not m:
                ap.error("--sizes: %s is not SERVICESxEACH" % x)
            sizes.append((int(m.group(1)), int(m.group(2))))
    BIN_PATH = os.path.abspath(args.bin)
    if not os.access(BIN_PATH, os.X_OK):
        sys.exit("bench: %s is not an executable (run make first)" % BIN_PATH)
    # The report names the command to run from a clone (not this machine's
    # paths), and what it ran, paths inside the repository made relative.
    command = "make bench%s\n    # = python3 integration/bench.py %s" % (
        " BENCH_QUICK=1" if args.quick else "",
        " ".join(shlex.quote(repo_relative(a)) for a in sys.argv[1:]))
    when = time.strftime("%Y-%m-%d %H:%M %Z")

    env = Env("bench")
    try:
        bench = Bench(env, BIN_PATH, quick=args.quick)
        bench.only, bench.strategies, bench.sizes = only, strategies, sizes
        bench.run()
        bench.r["reloads"] = bench.reloads
        bench.r["quick"] = args.quick
        m = machine(BIN_PATH)
        if only:
            text = partial_report(bench.r, m, command, when, only)
            blocks = section_blocks(bench.r, m, "python3 integration/bench.py " + " ".join(
                shlex.quote(repo_relative(a)) for a in sys.argv[1:] if a != args.write
                and not a.startswith("--write")), when)
        else:
            text = report(bench.r, m, command, when)
    except (BenchFailure, CompareFailure, HarnessError) as e:
        sys.stderr.write("bench: FAILED: %s\n" % e)
        for name in env.log_names():
            sys.stderr.write("---- %s.log (last 10 lines)\n%s\n"
                             % (name, env.log_tail(name, 10)))
        return 1
    finally:
        env.close()
    sys.stdout.write(text)
    if args.write:
        try:
            with open(args.write) as f:
                old = f.read()
        except FileNotFoundError:
            old = ""
        begin, end = "<!-- bench-fleet: begin", "<!-- bench-fleet: end -->"
        if only:
            # a section run replaces its own marked block, nothing else
            # (a block not in the file yet goes before the fleet section)
            new = old
            for name, block in blocks.items():
                new = replace_section(new, name, block, before=begin)
            skipped = [x for x in only if x not in blocks]
            if skipped:
                progress("not written (no report of their own outside a whole run): %s"
                         % ", ".join(skipped))
            with open(args.write, "w") as f:
                f.write(new)
            progress("wrote %s into %s" % (", ".join(blocks) or "nothing", args.write))
            return 0
        # a whole run: bench_fleet.py's section (make bench-fleet) is kept as it is
        if begin in old and end in old:
            text = (text.rstrip("\n") + "\n\n"
                    + old[old.index(begin):old.index(end) + len(end)] + "\n")
        with open(args.write, "w") as f:
            f.write(text)
        progress("wrote %s" % args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
