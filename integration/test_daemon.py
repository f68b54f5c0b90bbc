"""Integration tests of `slotsync run` (the core controller) against real
etcd, real HAProxy 2.6 and real HTTP backends, all on 127.0.0.1."""

import signal
import socket
import subprocess
import threading
import time

from harness import *

PREFIX = "/services/"


class Cluster:
    """etcd + whoami backends + rendered services file + HAProxy + slotsync."""

    def __init__(self, env, bin_path, slots=4, backends=3, start=True,
                 etcd_url=None, server_options="check inter 500ms fall 1 rise 1",
                 web=None, extra=None, master=True):
        self.env = env
        self.bin = bin_path
        self.etcd = etcd_url or env.start_etcd()
        self.backends = {}
        for i in range(backends):
            name = "w%d" % (i + 1)
            _, port = env.start_whoami(name)
            self.backends[name] = port
        self.listen_port = free_port()
        self.services_file = env.path("services.cfg")
        self.config = {
            "etcd": {"endpoints": [self.etcd], "prefix": PREFIX},
            "haproxy": {
                "runtime_socket": env.path("admin.sock"),
                "master_socket": env.path("master.sock"),
                "services_file": self.services_file,
            },
            "defaults": {"slots": slots, "server_options": server_options},
            "services": {"web": dict({"listen": "127.0.0.1:%d" % self.listen_port},
                                     **(web or {}))},
            "resync_interval_s": 30,
            "log_level": "debug",
        }
        if not master:
            del self.config["haproxy"]["master_socket"]
        for key, value in (extra or {}).items():
            self.config[key] = value
        self.config_path = write_config(env, self.config)
        self.url = "http://127.0.0.1:%d/" % self.listen_port
        self.haproxy = None
        self.slotsync = None
        if start:
            self.render()
            self.haproxy = env.start_haproxy(self.services_file)
            self.start_slotsync()

    def render(self):
        out = subprocess.run([self.bin, "render", "-c", self.config_path],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out

    def start_slotsync(self, name="slotsync"):
        # A restart under the same name appends to the same log: only this
        # run's lines may end the waits.
        since = len(self.env.log_text(name))
        self.slotsync = self.env.start_slotsync(self.bin, self.config_path, name=name)
        self.env.wait_log(name, r"etcd listing applied", alive=[self.slotsync], since=since)
        self.env.wait_log(name, r"HAProxy state read", alive=[self.slotsync], since=since)
        return self.slotsync

    def put(self, instance, backend=None, port=None, value=None, allow_any=False):
        if value is None:
            value = "127.0.0.1:%d" % (port or self.backends[backend])
        return etcd_put(self.etcd, PREFIX + "web/" + instance, value, allow_any=allow_any)

    def delete(self, instance):
        return etcd_delete(self.etcd, PREFIX + "web/" + instance)

    def slots(self):
        """{slot name: (addr, port, admin)} of backend web."""
        rows = self.haproxy.servers_state("web")
        out = {}
        for r in rows:
            admin = int(r["srv_admin_state"])
            state = "maint" if admin & 0x23 else "drain" if admin & 0x18 else "ready"
            out[r["srv_name"]] = (r["srv_addr"], int(r["srv_port"]), state,
                                  int(r["srv_uweight"]))
        return out

    def live(self):
        """Set of (addr, port) of slots in state ready."""
        return {(a, p) for a, p, st, _ in self.slots().values() if st == "ready"}

    def wait_live(self, names, what=None):
        want = {("127.0.0.1", self.backends[n]) for n in names}
        return wait_for(lambda: self.live() == want, timeout=10,
                        what=what or "HAProxy slots ready for %s" % sorted(names),
                        alive=[self.slotsync])

    def reach(self, names, n=None):
        """Wait until traffic reaches exactly the named backends."""
        names = set(names)

        def ok():
            got = traffic(self.url, n or 4 * max(1, len(names)))
            return set(got) == names and got
        return wait_for(ok, timeout=15, what="traffic reaching exactly %s" % sorted(names),
                        alive=[self.slotsync])

    def assert_no_reload(self):
        assert self.haproxy.reloads() == (0, 0), self.haproxy.reloads()


def test_endpoints_flow_without_reload(env, bin_path):
    """3 put -> all 3 get traffic; delete -> no request reaches it; move ->
    traffic follows; 0 reloads throughout, and no failed request."""
    c = Cluster(env, bin_path)
    for name in ("w1", "w2", "w3"):
        c.put(name, name)
    c.wait_live(["w1", "w2", "w3"])
    c.reach(["w1", "w2", "w3"])

    with TrafficLoop(c.url) as loop:
        loop.wait_results(20)
        c.delete("w2")
        c.wait_live(["w1", "w3"])
        mark = loop.mark()
        loop.wait_results(30, since=mark)
        assert "w2" not in loop.counts(since=mark), loop.counts(since=mark)

        # w3's instance moves to the port of a new backend w4
        _, p4 = env.start_whoami("w4")
        c.backends["w4"] = p4
        c.put("w3", port=p4)
        c.wait_live(["w1", "w4"])
        mark = loop.mark()
        loop.wait_results(30, since=mark)
        got = loop.counts(since=mark)
        assert set(got) == {"w1", "w4"}, got
    assert not loop.failures, loop.summary()
    c.assert_no_reload()
    # one batch per change, all commands accepted
    log = env.log_text("slotsync")
    assert "HAProxy refused" not in log, log
    assert "(0 failed)" in log


def test_removal_order_maint_before_clear(env, bin_path):
    """A removed endpoint's slot goes to maint before its address is
    cleared, in one batch: check the exact commands slotsync logged."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.wait_live(["w1"])
    c.delete("a")
    wait_for(lambda: c.slots()["s1"][:3] == ("0.0.0.0", 0, "maint"),
             what="slot s1 emptied")
    log = env.log_text("slotsync")
    maint = log.find("set server web/s1 state maint")
    clear = log.find("set server web/s1 addr 0.0.0.0 port 0")
    assert 0 <= maint < clear, log


BAD_VALUES = [
    "127.0.0.9:80;shutdown sessions server web/s1",
    "127.0.0.1:80\nshow info",
    "999.1.1.1:80",
    "127.0.0.1:70000",
    '{"host":"127.0.0.1","port":"x"}',
    "",
    "localhost:80",
    "127.0.0.1:0",
    "127.0.0.1",
    '{"host":"127.0.0.1","port":80,"weight":257}',
    '{"host":"127.0.0.1","port":80,"state":"bogus"}',
    "[::1]:80 ",
    "127.0.0.1:080",
    # an unspecified address is "anyone": never a target (issue 20, item 7)
    "0.0.0.0:80",
    "[::]:80",
    '{"host":"::","port":80}',
    '{"host":"127.0.0.1","port":0}',
]


def test_bad_values_never_reach_haproxy(env, bin_path):
    c = Cluster(env, bin_path)
    c.put("good", "w1")
    c.wait_live(["w1"])
    before = c.slots()
    for i, value in enumerate(BAD_VALUES):
        c.put("bad%d" % i, value=value, allow_any=True)
    # bad keys too: a service name with a space, a service without instance
    etcd_put(c.etcd, PREFIX + "we b/x", "127.0.0.1:1")
    etcd_put(c.etcd, PREFIX + "web", "127.0.0.1:1")
    for i in range(len(BAD_VALUES)):
        env.wait_log("slotsync", r'etcd key "/services/web/bad%d" rejected: \S' % i)
    for value in ("0.0.0.0:80", "[::]:80", '{"host":"::","port":80}'):
        env.wait_log("slotsync", r'etcd key "/services/web/bad%d" rejected: .*unspecified'
                     % BAD_VALUES.index(value))
    env.wait_log("slotsync", r'etcd key "/services/web/bad%d" rejected: .*port'
                 % BAD_VALUES.index('{"host":"127.0.0.1","port":0}'))
    env.wait_log("slotsync", r'etcd key "/services/we b/x" rejected')
    env.wait_log("slotsync", r'etcd key "/services/web" rejected')
    # a marker change proves the bad ones were processed before it
    c.put("marker", "w2")
    c.wait_live(["w1", "w2"])
    after = c.slots()
    changed = {k for k in after if after[k] != before[k]}
    assert len(changed) == 1, (before, after)
    log = env.log_text("slotsync")
    for line in log.splitlines():
        if "runtime commands" in line or "set server" in line:
            assert "127.0.0.9" not in line and "999." not in line and "70000" not in line, line
    # nothing HAProxy was told contains a bad address; an empty slot
    # (0.0.0.0 port 0, in maint) is the only 0.0.0.0 and the only port 0
    for addr, port, state, _ in after.values():
        assert addr in ("0.0.0.0", "127.0.0.1"), after
        assert (addr == "0.0.0.0") == (port == 0) and (port != 0 or state == "maint"), after

    # a valid endpoint overwritten with a bad value is removed, as if deleted
    c.put("good", value="127.0.0.1:99999")
    env.wait_log("slotsync", r'etcd key "/services/web/good" rejected')
    c.wait_live(["w2"])
    c.reach(["w2"])
    c.assert_no_reload()


def test_haproxy_restart_restores_every_slot(env, bin_path):
    """HAProxy killed and started again on the (now stale) rendered file:
    slotsync notices and restores every slot."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    c.render()                   # the file now holds a and b
    c.delete("a")
    c.put("c", "w3")
    c.put("b", value='{"host":"127.0.0.1","port":%d,"weight":7}' % c.backends["w2"])
    # Three etcd events, each its own batch: wait for the last one (the
    # weight) too, or the state read here may be one change short of what
    # slotsync restores below.
    settled = {("127.0.0.1", c.backends["w2"], 7), ("127.0.0.1", c.backends["w3"], 1)}
    wait_for(lambda: {(a, p, w) for a, p, st, w in c.slots().values() if st == "ready"}
             == settled, what="b at weight 7 and c ready")
    want = c.slots()
    since = len(env.log_text("slotsync"))
    c.haproxy.stop(signal.SIGKILL)
    c.haproxy = env.start_haproxy(c.services_file)
    wait_for(lambda: c.slots() == want, timeout=15, what="slots restored after restart",
             alive=[c.slotsync])
    c.reach(["w2", "w3"])
    # the new HAProxy's state was read (the first run's line matched at once)
    env.wait_log("slotsync", r"HAProxy state read", since=since)


def test_slotsync_restart_adopts_slots(env, bin_path):
    """A restarted slotsync finds every endpoint where HAProxy has it and
    sends nothing; etcd changes made while it was down are applied."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.put("c", "w3")
    c.wait_live(["w1", "w2", "w3"])
    c.delete("a")
    c.wait_live(["w2", "w3"])
    c.put("a", "w1")  # lands in the lowest free slot: s1 again
    c.wait_live(["w1", "w2", "w3"])
    before = c.slots()
    env.stop(c.slotsync)
    c.start_slotsync(name="slotsync2")
    # Ready comes once the listing's batch (if any) is answered: anything a
    # wrong implementation sends is in the log before this line.
    env.wait_log("slotsync2", r"ready: first etcd listing applied", alive=[c.slotsync])
    assert c.slots() == before
    assert "runtime commands" not in env.log_text("slotsync2"), env.log_text("slotsync2")

    env.stop(c.slotsync)
    c.delete("b")
    c.start_slotsync(name="slotsync3")
    c.wait_live(["w1", "w3"])
    c.assert_no_reload()


def test_restart_across_the_frontend_rename_needs_no_reload(env, bin_path):
    """An older slotsync named a service's frontend after the service
    ("frontend web"); this one renders "frontend fe:web" (HAProxy 3.3+
    refuses a frontend and a backend of the same name). HAProxy runs a file
    the older one wrote, with endpoints in its slots: a new slotsync adopts
    them, applies changes at run time and reloads nothing for the rename.
    2.6 to 3.2 only: 3.3+ cannot load the older file at all, so nothing of
    the older naming can be running there."""
    if haproxy_version() >= (3, 3):
        raise Skip("HAProxy %d.%d cannot load a file with a frontend named like its "
                   "backend: no older rendering can be running to adopt" % haproxy_version())
    c = Cluster(env, bin_path, start=False)
    c.put("a", "w1")
    c.put("b", "w2")
    c.render()
    with open(c.services_file) as f:
        text = f.read()
    assert "\nfrontend fe:web\n" in text, text
    # what slotsync rendered before the rename
    old = text.replace("\nfrontend fe:web\n", "\nfrontend web\n")
    with open(c.services_file, "w") as f:
        f.write(old)
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()
    env.wait_log("slotsync", r"ready: first etcd listing applied", alive=[c.slotsync])
    c.wait_live(["w1", "w2"])
    c.reach(["w1", "w2"])
    # a change still goes through the runtime API, and nothing reloaded
    c.delete("a")
    c.wait_live(["w2"])
    c.reach(["w2"])
    c.assert_no_reload()
    assert "an older slotsync's naming" in env.log_text("slotsync")
    # the services file is kept current (issue 23, livefile) in the new
    # naming, without a reload: the next reload, by anyone, loads it
    def current():
        with open(c.services_file) as f:
            text = f.read()
        return "\nfrontend fe:web\n" in text and "\nfrontend web\n" not in text
    wait_for(current, timeout=10, what="the services file rewritten in the new naming",
             alive=[c.slotsync])
    c.assert_no_reload()


def test_starts_before_haproxy_and_waits(env, bin_path):
    c = Cluster(env, bin_path, start=False)
    c.put("a", "w1")
    c.render()
    c.slotsync = env.start_slotsync(bin_path, c.config_path)
    env.wait_log("slotsync", r"runtime socket .*retrying", alive=[c.slotsync])
    c.haproxy = env.start_haproxy(c.services_file)
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    c.reach(["w1", "w2"])


def test_more_endpoints_than_slots(env, bin_path):
    """balance source cannot take "add server" and there is no way to
    reload: the extra endpoint waits, with a warning, for a free slot."""
    c = Cluster(env, bin_path, slots=2, web={"balance": "source"}, master=False)
    c.put("a", "w1")
    c.put("b", "w2")
    c.put("c", "w3")
    env.wait_log("slotsync", r"backend web: 1 endpoint has no free slot \(2 slots\)")
    c.wait_live(["w1", "w2"])
    c.delete("a")
    c.wait_live(["w2", "w3"])   # the waiting endpoint takes the freed slot
    env.wait_log("slotsync", r"every endpoint has a slot again")
    assert "neither haproxy.master_socket nor" in env.log_text("slotsync")
    c.assert_no_reload()


def test_etcd_outage_and_compaction_relist(env, bin_path):
    """The watch breaks; while it is down keys change and etcd compacts the
    history: slotsync reconnects, sees the compaction, re-lists and diffs."""
    etcd = env.start_etcd()
    proxy = TcpProxy(("127.0.0.1", int(etcd.rsplit(":", 1)[1])))
    try:
        c = Cluster(env, bin_path, etcd_url="http://127.0.0.1:%d" % proxy.port)
        c.put("a", "w1")
        c.put("b", "w2")
        c.wait_live(["w1", "w2"])
        proxy.cut()
        env.wait_log("slotsync", r"etcd watch lost", alive=[c.slotsync])
        etcd_delete(etcd, PREFIX + "web/a")
        etcd_put(etcd, PREFIX + "web/c", "127.0.0.1:%d" % c.backends["w3"])
        etcd_compact(etcd, etcd_revision(etcd))
        time.sleep(0.5)  # slotsync retries against the cut proxy meanwhile
        proxy.restore()
        c.wait_live(["w2", "w3"], what="diff applied after compaction")
        # the re-list's line (the first listing's line matched any pattern
        # wait on "etcd listing applied" at once)
        wait_for(lambda: env.log_text("slotsync").count("sync: etcd listing applied") >= 2,
                 what="a second etcd listing applied", alive=[c.slotsync])
        c.assert_no_reload()
    finally:
        proxy.close()


class TcpProxy:
    """A loopback TCP forwarder that a test can cut (close every connection
    and refuse new ones) and restore."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.open = True
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if not self.open:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=2)
                except OSError:
                    client.close()
                    continue
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.open = False
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []

    def restore(self):
        with self.lock:
            self.open = True

    def close(self):
        self.closed = True
        self.cut()
        self.sock.close()


def etcd_put_many(url, pairs, per_txn=128):
    """Put many keys, per_txn in one transaction (etcd's default limit)."""
    import base64
    import json
    import urllib.request
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for i in range(0, len(pairs), per_txn):
        ops = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in pairs[i:i + per_txn]]
        for k, v in pairs[i:i + per_txn]:
            assert_loopback_only(v, k)
        req = urllib.request.Request(url + "/v3/kv/txn", data=json.dumps({"success": ops}).encode(),
                                     headers={"Content-Type": "application/json"})
        opener.open(req, timeout=10).read()


def test_a_batch_larger_than_the_socket_buffers(env, bin_path):
    """4000 endpoints already in etcd, HAProxy's 4096 slots empty, and
    HAProxy started once slotsync has the whole listing (else each page of
    1000 keys would go out as it is read): one batch of about 8000 commands;
    HAProxy stops reading commands while replies wait unread, so replies must
    be read while the batch is written."""
    c = Cluster(env, bin_path, slots=4096, backends=1, server_options="", start=False)
    port = c.backends["w1"]
    etcd_put_many(c.etcd, [(PREFIX + "web/e%04d" % i, "127.0.0.1:%d" % port)
                           for i in range(4000)])
    c.render()                               # the slots carry the endpoints:
    with open(c.services_file) as f:         # empty them, as in a stale file
        text = f.read().replace("127.0.0.1:%d weight 1" % port, "0.0.0.0:0 disabled")
    with open(c.services_file, "w") as f:
        f.write(text)
    c.slotsync = env.start_slotsync(bin_path, c.config_path, name="slotsync")
    env.wait_log("slotsync", r"etcd listing applied", alive=[c.slotsync])
    c.haproxy = env.start_haproxy(c.services_file)
    env.wait_log("slotsync", r"HAProxy state read", timeout=30, alive=[c.slotsync])
    wait_for(lambda: sum(1 for v in c.slots().values() if v[2] == "ready") == 4000,
             timeout=30, what="4000 ready slots", alive=[c.slotsync])
    # HAProxy shows the slots before slotsync has read the last reply
    env.wait_log("slotsync", r"applied \d+ runtime commands?", timeout=30, alive=[c.slotsync])
    log = env.log_text("slotsync")
    assert "timed out" not in log and "HAProxy refused" not in log, log[-2000:]
    assert " 8000 runtime commands (0 failed)" in log, log[-2000:]
