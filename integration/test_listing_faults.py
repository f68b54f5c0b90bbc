"""Integration tests of what a full etcd listing may do to HAProxy, against
real etcd, HAProxy 2.6 and whoami backends: a wiped (or wrong) etcd must not
empty every backend, and a slotsync restart adopts the backends it rendered
for services named only in etcd (no reload; emptied when their keys went
away meanwhile)."""

import base64
import json
import os
import signal
import socket
import threading
import time
import urllib.request

import harness  # noqa: E402  (json_gateway_only)
from harness import *
from test_daemon import Cluster, PREFIX, TcpProxy

EMPTY_LINE = r"error sync: etcd registry is empty \(no valid key under /services/\).*"


def live(c, backend):
    """Set of (addr, port) of backend's slots in state ready."""
    out = set()
    for r in c.haproxy.servers_state(backend):
        if not int(r["srv_admin_state"]) & 0x3b:
            out.add((r["srv_addr"], int(r["srv_port"])))
    return out


def wait_backend(c, backend, names, what=None):
    want = {("127.0.0.1", c.backends[n]) for n in names}
    return wait_for(lambda: live(c, backend) == want, timeout=15,
                    what=what or "backend %s ready for %s" % (backend, sorted(names)),
                    alive=[c.slotsync])


def test_restart_against_an_empty_registry_keeps_haproxy(env, bin_path):
    """etcd wiped while slotsync was down: the listing finds no key at all.
    HAProxy keeps every slot and keeps serving; one error line says so, the
    exit summary reports it, and the first key that appears is converged
    to (the stale endpoints then leave)."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    before = c.slots()
    env.stop(c.slotsync)
    etcd_delete_prefix(c.etcd, PREFIX)
    c.put("bad", value="not an endpoint")  # an invalid key is no key
    c.start_slotsync(name="slotsync2")
    env.wait_log("slotsync2", EMPTY_LINE, alive=[c.slotsync])
    assert c.slots() == before
    c.reach(["w1", "w2"])

    c.put("c", "w3")
    c.wait_live(["w3"])
    c.reach(["w3"])
    env.wait_log("slotsync2", r"etcd registry has 1 endpoint again")
    env.stop(c.slotsync)
    log = env.log_text("slotsync2")
    assert len([ln for ln in log.splitlines() if "etcd registry is empty" in ln]) == 1, log
    assert "empty etcd registry held back 1 times" in log, log
    c.assert_no_reload()


def test_wrong_etcd_keeps_haproxy_until_keys_appear(env, bin_path):
    """slotsync pointed at another (empty) etcd: same hold, then the keys
    put there are converged to, and a later delete one by one applies."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.wait_live(["w1"])
    env.stop(c.slotsync)
    other = env.start_etcd(name="etcd-other")
    c.config["etcd"]["endpoints"] = [other]
    write_config(env, c.config)
    c.start_slotsync(name="slotsync2")
    env.wait_log("slotsync2", EMPTY_LINE, alive=[c.slotsync])
    c.reach(["w1"])
    etcd_put(other, PREFIX + "web/x", "127.0.0.1:%d" % c.backends["w2"])
    c.wait_live(["w2"])
    etcd_delete(other, PREFIX + "web/x")
    wait_for(lambda: c.live() == set(), what="web emptied by the delete", alive=[c.slotsync])


def test_empty_relist_after_compaction_keeps_haproxy(env, bin_path):
    """While the watch is down every key goes and etcd compacts: the re-list
    finds nothing. HAProxy is kept until a key appears."""
    etcd = env.start_etcd()
    proxy = TcpProxy(("127.0.0.1", int(etcd.rsplit(":", 1)[1])))
    try:
        c = Cluster(env, bin_path, etcd_url="http://127.0.0.1:%d" % proxy.port)
        c.put("a", "w1")
        c.put("b", "w2")
        c.wait_live(["w1", "w2"])
        proxy.cut()
        env.wait_log("slotsync", r"etcd watch lost", alive=[c.slotsync])
        etcd_delete_prefix(etcd, PREFIX)
        etcd_put(etcd, "/elsewhere/x", "1")  # compact past the deletes
        etcd_compact(etcd, etcd_revision(etcd))
        time.sleep(0.5)  # slotsync retries against the cut proxy meanwhile
        proxy.restore()
        env.wait_log("slotsync", EMPTY_LINE, timeout=20, alive=[c.slotsync])
        c.wait_live(["w1", "w2"])
        c.reach(["w1", "w2"])
        etcd_put(etcd, PREFIX + "web/c", "127.0.0.1:%d" % c.backends["w3"])
        c.wait_live(["w3"], what="converged once a key appeared")
        c.assert_no_reload()
    finally:
        proxy.close()


def test_allow_empty_registry_applies_an_empty_listing(env, bin_path):
    c = Cluster(env, bin_path, extra={"allow_empty_registry": True})
    c.put("a", "w1")
    c.wait_live(["w1"])
    env.stop(c.slotsync)
    etcd_delete_prefix(c.etcd, PREFIX)
    c.start_slotsync(name="slotsync2")
    wait_for(lambda: c.live() == set(), what="web emptied", alive=[c.slotsync])
    assert set(traffic(c.url, 3)) == {"<503>"}
    assert "registry is empty" not in env.log_text("slotsync2")


def test_sighup_with_allow_empty_registry_ends_a_hold(env, bin_path):
    """The error line says how to apply an empty registry: doing so (config
    and SIGHUP) empties the backends without a restart."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.wait_live(["w1"])
    env.stop(c.slotsync)
    etcd_delete_prefix(c.etcd, PREFIX)
    c.start_slotsync(name="slotsync2")
    env.wait_log("slotsync2", EMPTY_LINE, alive=[c.slotsync])
    c.config["allow_empty_registry"] = True
    write_config(env, c.config)
    c.slotsync.send_signal(signal.SIGHUP)
    wait_for(lambda: c.live() == set(), what="web emptied", alive=[c.slotsync])
    env.wait_log("slotsync2", r"allow_empty_registry is set: the empty etcd registry applies")


def test_keys_deleted_one_by_one_still_empty_a_backend(env, bin_path):
    """Scaling a service to zero through the watch is applied as always; a
    start against an empty registry and an empty HAProxy says nothing."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    c.delete("a")
    c.wait_live(["w2"])
    c.delete("b")
    wait_for(lambda: c.live() == set(), what="web emptied", alive=[c.slotsync])
    assert set(traffic(c.url, 3)) == {"<503>"}
    assert "registry is empty" not in env.log_text("slotsync")
    # and a restart now (registry empty, HAProxy empty) holds nothing back:
    # ready (which a hold never reaches) before the next key, so that the
    # empty listing is what slotsync2 judged
    env.stop(c.slotsync)
    c.start_slotsync(name="slotsync2")
    env.wait_log("slotsync2", r"ready: first etcd listing applied", alive=[c.slotsync])
    c.put("c", "w3")
    c.wait_live(["w3"])
    assert "registry is empty" not in env.log_text("slotsync2")
    c.assert_no_reload()


def test_restart_adopts_etcd_only_services_without_reload(env, bin_path):
    """A service named only in etcd got its backend by a reload. A slotsync
    restart finds it in the services file it rendered and in HAProxy: no
    reload, and its endpoints keep flowing."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    etcd_put(c.etcd, PREFIX + "api/x", "127.0.0.1:%d" % c.backends["w2"])
    wait_for(lambda: c.haproxy.reloads() == (1, 0), what="one reload", alive=[c.slotsync])
    wait_backend(c, "api", ["w2"])
    env.stop(c.slotsync)
    c.start_slotsync(name="slotsync2")
    # a change after the restart: any reload the restart wanted starts first
    etcd_put(c.etcd, PREFIX + "api/y", "127.0.0.1:%d" % c.backends["w3"])
    wait_backend(c, "api", ["w2", "w3"])
    c.wait_live(["w1"])
    assert c.haproxy.reloads() == (1, 0), env.log_text("slotsync2")
    assert "reload is needed" not in env.log_text("slotsync2")


def test_restart_empties_etcd_only_service_whose_keys_vanished(env, bin_path):
    """An etcd-only service lost all its keys while slotsync was down: after
    the restart its servers go to maint (they were UP, health-checked)."""
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    etcd_put(c.etcd, PREFIX + "api/x", "127.0.0.1:%d" % c.backends["w2"])
    wait_for(lambda: c.haproxy.reloads() == (1, 0), what="one reload", alive=[c.slotsync])
    wait_backend(c, "api", ["w2"])
    wait_for(lambda: any(r["svname"] == "s1" and r["status"] == "UP"
                         for r in c.haproxy.stats() if r["pxname"] == "api"),
             what="api/s1 UP by its health check")
    env.stop(c.slotsync)
    etcd_delete(c.etcd, PREFIX + "api/x")
    c.start_slotsync(name="slotsync2")
    wait_for(lambda: live(c, "api") == set(), what="api's servers in maint",
             alive=[c.slotsync])
    c.wait_live(["w1"])
    assert c.haproxy.reloads() == (1, 0)
    # it leaves the file at the next render done for another reason
    etcd_put(c.etcd, PREFIX + "other/x", "127.0.0.1:%d" % c.backends["w3"])
    wait_for(lambda: c.haproxy.reloads() == (2, 0), what="a reload for other",
             alive=[c.slotsync])
    text = open(c.services_file).read()
    assert "backend api" not in text and "backend other" in text, text
    assert not [f for f in os.listdir(env.tmp) if ".tmp." in f or f.endswith(".new")]


def test_restart_with_changed_defaults_reloads_etcd_only_backends(env, bin_path):
    """The defaults changed while slotsync was down: the backends it built
    from them are rendered again (one reload), not adopted as they were."""
    c = Cluster(env, bin_path)
    etcd_put(c.etcd, PREFIX + "api/x", "127.0.0.1:%d" % c.backends["w2"])
    wait_for(lambda: c.haproxy.reloads() == (1, 0), what="one reload", alive=[c.slotsync])
    wait_backend(c, "api", ["w2"])
    env.stop(c.slotsync)
    c.config["defaults"]["server_options"] = "check inter 400ms fall 1 rise 1"
    write_config(env, c.config)
    c.start_slotsync(name="slotsync2")
    wait_for(lambda: c.haproxy.reloads() == (2, 0), what="a reload for the new defaults",
             alive=[c.slotsync])
    text = open(c.services_file).read()
    api = text[text.index("backend api"):]
    assert "default-server check inter 400ms fall 1 rise 1" in api, text
    wait_backend(c, "api", ["w2"])
    env.wait_log("slotsync2", r"defaults changed for api: a reload is needed")


class ListingHold(TcpProxy):
    """A TcpProxy to etcd that holds the listing's second page: the second
    range request is kept back until release() (or 60 s), so slotsync has
    read only the first page of 1000 keys."""

    PATTERN = b"POST /v3/kv/range "

    def __init__(self, target):
        self.ranges = 0
        self.held = threading.Event()
        self.released = threading.Event()
        super().__init__(target)

    def release(self):
        self.released.set()

    def _pipe(self, src, dst):
        with self.lock:
            request = any(src is c for c in self.conns[0::2])
        tail = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if request:
                    buf = tail + data
                    self.ranges += buf.count(self.PATTERN) - tail.count(self.PATTERN)
                    tail = buf[-len(self.PATTERN):]
                    if self.ranges == 2 and not self.released.is_set():
                        self.held.set()
                        self.released.wait(60)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def put_many(url, pairs):
    """Put many keys in a few transactions (etcd takes 128 operations in one)."""
    for i in range(0, len(pairs), 100):
        ops = [{"request_put": {"key": base64.b64encode(k.encode()).decode(),
                                "value": base64.b64encode(v.encode()).decode()}}
               for k, v in pairs[i:i + 100]]
        body = json.dumps({"success": ops}).encode()
        req = urllib.request.Request(url + "/v3/kv/txn", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def test_restart_on_a_partly_read_listing_only_adds(env, bin_path):
    """While a restart's listing is read page by page, the pages read are
    applied at once but additions only: the endpoint of the first page goes
    into an empty slot, while the endpoints HAProxy has are kept, even the
    one whose key went away (it is not listed yet, for all slotsync knows).
    Once the last page is in, the removal is applied. No reload."""
    harness.json_gateway_only("its proxy holds the second /v3/kv/range page")
    etcd = env.start_etcd()
    proxy = ListingHold(("127.0.0.1", int(etcd.rsplit(":", 1)[1])))
    try:
        c = Cluster(env, bin_path, slots=8, server_options="",
                    etcd_url="http://127.0.0.1:%d" % proxy.port)
        c.put("z1", "w1")
        c.put("z2", "w2")
        c.wait_live(["w1", "w2"])
        env.stop(c.slotsync)
        # while slotsync is down: a new endpoint first in key order, 1000
        # keys (rejected values) after it, so that the first page ends
        # before web/z1; and web/z2 goes away
        c.put("a0", "w3")
        put_many(etcd, [(PREFIX + "web/b%04d" % i, "not an endpoint") for i in range(1000)])
        c.delete("z2")
        proxy.ranges = 0  # the old slotsync's listing and probes went through it too
        slotsync = c.slotsync = env.start_slotsync(bin_path, c.config_path, name="slotsync2")
        wait_for(proxy.held.is_set, timeout=15, what="the listing's second page held",
                 alive=[slotsync])
        want_partial = {("127.0.0.1", c.backends[w]) for w in ("w1", "w2", "w3")}
        wait_for(lambda: c.live() == want_partial, timeout=8,
                 what="w3 added from the first page, w1 and w2 kept", alive=[slotsync])
        log = env.log_text("slotsync2")
        assert "etcd listing applied" not in log, log[-3000:]
        assert not proxy.released.is_set()
        proxy.release()
        env.wait_log("slotsync2", r"etcd listing applied: 2 endpoints", alive=[slotsync])
        c.wait_live(["w1", "w3"], what="w2 removed once the listing is whole")
        c.reach(["w1", "w3"])
        c.assert_no_reload()
    finally:
        proxy.release()
        proxy.close()
