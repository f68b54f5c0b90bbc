#!/usr/bin/python3
"""demo - slotsync end to end on 127.0.0.1, narrated.

    demo.py --bin PATH [--keep]

Starts a local etcd, three whoami backends (alpha, beta, gamma), HAProxy on
the services file that `slotsync render` writes, and `slotsync run`. The
backends register themselves with the `slotsync announce` sidekick; then,
under continuous traffic, beta's sidekick is stopped (its key is withdrawn)
and a fourth backend, delta, joins. Then a service nobody configured, shop,
appears in etcd: slotsync binds it to a spare backend and routes
shop.demo.local to it through the Host frontend. HAProxy is never reloaded:
the demo ends with the reload count, the failed requests (none) and
slotsync's batches.

Everything runs in a temporary directory and is stopped at the end, or on
Ctrl-C at any point. --keep (`make demo KEEP=1`) leaves it all running until
Ctrl-C and prints the URLs to open: slotsync's live page (the admin
endpoint, on in the demo's config), the HAProxy stats page, the service.
Exits 0 if everything it showed went as
described, 1 otherwise (the logs of the run are printed then).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (HAPROXY_BIN, Env, HarnessError, TrafficLoop, etcd_delete, etcd_get,  # noqa: E402
                     etcd_put, free_port, http_get, traffic, wait_for, write_config)

PREFIX = "/services/"
SERVICE = "web"
NEW_SERVICE = "shop"    # not in the config: it goes to a spare backend
DOMAIN = "demo.local"
SPARES = 4
SLOTS = 8
TTL = 5
NAMES = ("alpha", "beta", "gamma")
T0 = time.monotonic()


def haproxy_version():
    """ "HAProxy 3.2.26-1" from `HAPROXY_BIN -v` (make demo HAPROXY_BIN=...
    runs the demo on any supported version), or the binary's path."""
    try:
        out = subprocess.run([HAPROXY_BIN, "-v"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return HAPROXY_BIN
    m = re.match(r"HAProxy version (\S+)", out)
    return "HAProxy %s, %s" % (m.group(1), HAPROXY_BIN) if m else HAPROXY_BIN


class DemoFailure(Exception):
    """Something the demo shows did not happen as described."""


def header(n, text):
    print("\n== %d. %s" % (n, text), flush=True)


def say(text=""):
    print("   " + text if text else "", flush=True)


def ms_since(t):
    return (time.monotonic() - t) * 1e3


def distribution(counter, names):
    """ "alpha 4  beta 4  gamma 4" in the order given, then anything else."""
    parts = ["%s %d" % (n, counter[n]) for n in names if counter.get(n)]
    parts += ["%s %d" % (k, v) for k, v in sorted(counter.items()) if k not in names]
    return "  ".join(parts) or "(nothing)"


class Demo:
    def __init__(self, env, bin_path):
        self.env = env
        self.bin = bin_path
        self.ports = {}          # backend name -> port
        self.announce = {}       # backend name -> Popen, or None (plain put)
        self.fallback = False
        self.etcd = None
        self.haproxy = None
        self.slotsync = None

    # -- helpers

    def key(self, name):
        return PREFIX + SERVICE + "/" + name

    def slot_table(self):
        """{slot: backend name ("?" if unknown)} of the slots in rotation."""
        by_port = {p: n for n, p in self.ports.items()}
        table = {}
        for row in self.haproxy.servers_state(SERVICE):
            admin = int(row["srv_admin_state"])
            if admin & 0x23 or row["srv_addr"] == "0.0.0.0":
                continue
            table[row["srv_name"]] = by_port.get(int(row["srv_port"]), "?")
        return table

    def wait_ready(self, names, what):
        want = sorted(names)
        return wait_for(lambda: sorted(self.slot_table().values()) == want,
                        timeout=10, alive=[self.slotsync, self.haproxy.proc],
                        what=what)

    def wait_up(self, names):
        """Until HAProxy's checks have every named slot UP (srv_op_state 2)."""
        by_port = {p: n for n, p in self.ports.items()}

        def up():
            got = {by_port.get(int(r["srv_port"]))
                   for r in self.haproxy.servers_state(SERVICE)
                   if r["srv_op_state"] == "2" and int(r["srv_admin_state"]) & 0x23 == 0}
            return got == set(names)
        wait_for(up, timeout=10, alive=[self.slotsync], what="%s UP in HAProxy" % ", ".join(names))

    # -- steps

    def start(self):
        header(1, "etcd, three backends, HAProxy, slotsync")
        self.etcd = self.env.start_etcd()
        say("etcd       %s" % self.etcd)
        for name in NAMES:
            _, self.ports[name] = self.env.start_whoami(name)
        say("backends   " + "  ".join("%s :%d" % (n, self.ports[n]) for n in NAMES))
        self.listen = free_port()
        self.url = "http://127.0.0.1:%d/" % self.listen
        self.host_port = free_port()
        self.host_url = "http://127.0.0.1:%d/" % self.host_port
        self.admin_port = free_port()
        self.admin_url = "http://127.0.0.1:%d/" % self.admin_port
        services_file = self.env.path("services.cfg")
        self.config_path = write_config(self.env, {
            "etcd": {"endpoints": [self.etcd], "prefix": PREFIX},
            "haproxy": {
                "runtime_socket": self.env.path("admin.sock"),
                "master_socket": self.env.path("master.sock"),
                "services_file": services_file,
            },
            "defaults": {"slots": SLOTS,
                         "server_options": "check inter 500ms fall 1 rise 1"},
            "services": {SERVICE: {"listen": "127.0.0.1:%d" % self.listen}},
            "http_frontend": {"bind": "127.0.0.1:%d" % self.host_port, "domain": DOMAIN,
                              "spare_backends": SPARES},
            "admin": {"listen": "127.0.0.1:%d" % self.admin_port},
            "log_level": "debug",
        })
        r = subprocess.run([self.bin, "render", "-c", self.config_path],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise DemoFailure("slotsync render failed: %s" % r.stderr.strip())
        with open(services_file) as f:
            servers = sum(1 for line in f if line.lstrip().startswith("server "))
        say("render     services.cfg: backend %s and %d spare backends, %d empty slots in all"
            % (SERVICE, SPARES, servers))
        self.haproxy = self.env.start_haproxy(services_file)
        say("haproxy    pid %d, listening on %s (%s)"
            % (self.haproxy.pid, self.url, haproxy_version()))
        self.slotsync = self.env.start_slotsync(self.bin, self.config_path)
        self.env.wait_log("slotsync", r"HAProxy state read", alive=[self.slotsync])
        say("slotsync   run -c slotsync.json, pid %d, watching %s; live page %s"
            % (self.slotsync.pid, PREFIX, self.admin_url))

    def register(self, name):
        """Start the name's announce sidekick; fall back to a plain put if it
        does not register the key within a few seconds."""
        key, addr = self.key(name), "127.0.0.1:%d" % self.ports[name]
        if not self.fallback:
            proc = self.env.spawn("announce-" + name, [
                self.bin, "announce", "--etcd", self.etcd, "--key", key,
                "--addr", addr, "--ttl", TTL, "--check", "tcp"])
            try:
                wait_for(lambda: etcd_get(self.etcd, key), timeout=6,
                         alive=[proc], what="announce to register " + key)
                self.announce[name] = proc
                return
            except HarnessError:
                self.env.stop(proc)
                self.fallback = True
                last = (self.env.log_tail(proc.name, 1) or "no output").strip()
                say("note: slotsync announce did not register %s (exit %s): %s"
                    % (key, proc.returncode, last[-60:]))
                say("      falling back to plain etcd puts for the rest of the demo")
        etcd_put(self.etcd, key, addr)
        self.announce[name] = None

    def withdraw(self, name):
        proc = self.announce.pop(name)
        if proc is None:
            etcd_delete(self.etcd, self.key(name))
            return "deleted %s" % self.key(name)
        self.env.stop(proc, signal.SIGTERM)
        if etcd_get(self.etcd, self.key(name)) is not None:
            raise DemoFailure("announce exited but %s is still in etcd" % self.key(name))
        return "announce stopped with SIGTERM (exit %s), key withdrawn" % proc.returncode

    def register_all(self):
        header(2, "register the backends: slotsync announce --ttl %d --check tcp" % TTL)
        t = time.monotonic()
        for name in NAMES:
            self.register(name)
        self.wait_ready(NAMES, "alpha, beta and gamma ready in HAProxy")
        value = etcd_get(self.etcd, self.key("alpha")).decode()
        say("%s = %s  (and beta, gamma)" % (self.key("alpha"), value))
        table = self.slot_table()
        say("HAProxy slots: " + "  ".join("%s=%s" % (s, table[s]) for s in sorted(table))
            + "  (%d empty)   %.0f ms" % (SLOTS - len(table), ms_since(t)))

    def round_robin(self):
        header(3, "round robin: 12 requests to %s" % self.url)
        self.wait_up(NAMES)
        got = traffic(self.url, 12)
        say(distribution(got, NAMES))
        if set(got) != set(NAMES):
            raise DemoFailure("12 requests did not reach exactly %s: %s"
                              % (", ".join(NAMES), dict(got)))

    def churn(self):
        header(4, "under traffic: beta leaves, delta joins")
        loop = TrafficLoop(self.url, workers=2, interval=0.01)
        with loop:
            mark = loop.mark()
            loop.wait_results(150, since=mark)
            say("before   " + distribution(loop.counts(since=mark), NAMES))

            slot = next(s for s, n in self.slot_table().items() if n == "beta")
            t = time.monotonic()
            say("beta     " + self.withdraw("beta"))
            self.wait_ready(["alpha", "gamma"], "beta's slot out of rotation")
            took = ms_since(t)
            # requests already on beta finish before its server goes away
            wait_for(lambda: all(r["scur"] == "0" for r in self.haproxy.stats()
                                 if r["pxname"] == SERVICE and r["svname"] == slot),
                     timeout=10, what="no session left on %s/%s" % (SERVICE, slot))
            self.env.stop(self.env.proc("beta"))
            say("         %s out of rotation %.0f ms after the %s, drained; beta's server stopped"
                % (slot, took, "delete" if self.fallback else "SIGTERM"))

            _, self.ports["delta"] = self.env.start_whoami("delta")
            t = time.monotonic()
            self.register("delta")
            self.wait_ready(["alpha", "gamma", "delta"], "delta ready in HAProxy")
            say("delta    started on :%d, %s, in a slot %.0f ms later"
                % (self.ports["delta"], "put in etcd" if self.fallback else "announced",
                   ms_since(t)))
            self.wait_up(["alpha", "gamma", "delta"])

            mark = loop.mark()
            loop.wait_results(150, since=mark)
            after = loop.counts(since=mark)
            say("after    " + distribution(after, ("alpha", "gamma", "delta")))
        self.loop = loop
        if set(after) != {"alpha", "gamma", "delta"}:
            raise DemoFailure("traffic after the churn went to %s" % dict(after))

    def new_service(self):
        header(5, "a new service, %s, appears in etcd: no config, no reload" % NEW_SERVICE)
        _, self.ports[NEW_SERVICE] = self.env.start_whoami(NEW_SERVICE)
        host = "%s.%s" % (NEW_SERVICE, DOMAIN)
        key = PREFIX + NEW_SERVICE + "/" + NEW_SERVICE + "-1"
        t = time.monotonic()
        etcd_put(self.etcd, key, "127.0.0.1:%d" % self.ports[NEW_SERVICE])

        def answers():
            try:
                code, body = http_get(self.host_url, headers={"Host": host})
            except OSError:
                return False
            return code == 200 and body.strip() == NEW_SERVICE
        wait_for(answers, timeout=10, alive=[self.slotsync, self.haproxy.proc],
                 what="%s to answer by Host through a spare backend" % host)
        took = ms_since(t)
        bound = re.search(r"bound to spare backend (\S+)", self.env.log_text("slotsync"))
        say("%s = 127.0.0.1:%d" % (key, self.ports[NEW_SERVICE]))
        say("curl -H 'Host: %s' %s  ->  %s, %.0f ms after the put"
            % (host, self.host_url, NEW_SERVICE, took))
        if not bound:
            raise DemoFailure("slotsync did not log the spare it bound %s to" % NEW_SERVICE)
        spare = bound.group(1).rstrip(",")
        say("slotsync bound it to spare backend %s: HAProxy's stats page shows %s,"
            % (spare, spare))
        say("slotsync status and its log name it \"%s (%s)\"" % (NEW_SERVICE, spare))

    def batches(self):
        """[(slotsync's "applied ..." line, what the batch did)] from its
        debug log, where each batch's commands precede its "applied" line."""
        by_port = {str(p): n for n, p in self.ports.items()}
        out, did = [], []
        for line in self.env.log_text("slotsync").splitlines():
            m = re.search(r"batch command \d+/\d+: set server \S+/(\S+) (.*)", line)
            if m:
                slot, rest = m.groups()
                addr = re.match(r"addr 127\.0\.0\.1 port (\d+)", rest)
                if addr:
                    did.append("%s <- %s" % (slot, by_port.get(addr.group(1), "?")))
                elif rest.startswith("addr 0.0.0.0"):
                    did.append("address cleared")
                elif rest.startswith("state "):
                    word = rest[6:]
                    did.append(word if did else "%s %s" % (slot, word))
                continue
            m = re.search(r"applied \d+ runtime commands? \(\d+ failed\) in [\d.]+ ms", line)
            if m:
                out.append((m.group(0), ", ".join(did)))
                did = []
        return out

    def results(self):
        header(6, "results")
        ok = True
        fails = self.loop.failures
        say("requests   %d sent during the churn, %d failed"
            % (len(self.loop.results), len(fails)))
        if fails:
            ok = False
            for line in self.loop.summary(5).splitlines()[1:]:
                say("  " + line)
        reloads, failed = self.haproxy.reloads()
        say("reloads    %d [failed: %d]  (HAProxy master socket, \"show proc\")"
            % (reloads, failed))
        ok = ok and (reloads, failed) == (0, 0)
        batches = self.batches()
        say("slotsync   %d batches on the runtime socket (from its log):" % len(batches))
        for line, what in batches[-8:]:
            say("           %-48s %s" % (line, what))
        if not batches or any("(0 failed)" not in line for line, _ in batches):
            ok = False
        if not ok:
            raise DemoFailure("failed requests, refused commands or a reload (see above)")


def dump_logs(env):
    for name in env.log_names():
        sys.stderr.write("---- %s.log (last 15 lines)\n%s\n" % (name, env.log_tail(name, 15)))


def keep_running(demo):
    say()
    say("everything stays up (KEEP=1 / --keep). Open:")
    say("  live    %s  (slotsync's live page: slots, etcd, routes, recent changes)"
        % demo.admin_url)
    say("  browse  %s  (HAProxy stats: backend %s, its slots)" % (demo.haproxy.stats_url,
                                                                 SERVICE))
    say("  curl    %s" % demo.url)
    say("  curl    -H 'Host: %s.%s' %s  (a service in a spare backend)"
        % (NEW_SERVICE, DOMAIN, demo.host_url))
    say("  files   %s" % demo.env.tmp)
    say("Ctrl-C stops it all.")
    # Ctrl-C here is the expected way out: exit 0 after cleaning up, rather
    # than the harness handler's 130.
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        for proc in (demo.slotsync, demo.haproxy.proc, demo.env.etcd.proc):
            if proc.poll() is not None:
                say("%s exited with %s; stopping" % (proc.name, proc.returncode))
                return 1
        time.sleep(0.5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the slotsync binary")
    ap.add_argument("--keep", action="store_true",
                    help="keep everything running until Ctrl-C")
    args = ap.parse_args()
    bin_path = os.path.abspath(args.bin)
    if not os.access(bin_path, os.X_OK):
        sys.exit("demo: %s is not an executable (run make first)" % bin_path)

    print("slotsync demo: etcd -> slotsync -> HAProxy runtime API, no reloads")
    if not args.keep:
        print("(everything stops at the end; `make demo KEEP=1` keeps it up to browse)")
    env = Env("demo")
    status = 1
    try:
        demo = Demo(env, bin_path)
        demo.start()
        demo.register_all()
        demo.round_robin()
        demo.churn()
        demo.new_service()
        demo.results()
        print("\nOK in %.1f s" % (time.monotonic() - T0), flush=True)
        status = keep_running(demo) if args.keep else 0
    except (DemoFailure, HarnessError) as e:
        print("\nFAILED: %s" % e, flush=True)
        dump_logs(env)
    except Exception:
        traceback.print_exc()
        dump_logs(env)
    finally:
        env.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
