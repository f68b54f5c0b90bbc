"""slotsync and announce through etcd's gRPC proxy (issue 24, item 4): a
3-member etcd 3.4 cluster behind two "etcd grpc-proxy" instances, slotsync
(etcd.transport grpc whatever the suite's transport) and announce given the
two proxies as their only endpoints. The proxy the watch and the keepalives
use is killed: the watch moves to the other proxy and resumes after its last
revision (nothing missed, no re-list), and announce keeps its lease."""

import os
import re
import signal
import time

from harness import *
from harness import etcd_transport
from test_announce import key_entry, lease_info
from test_daemon import PREFIX, Cluster


def proxied(env, n_proxies=2):
    """A 3-member cluster and n_proxies grpc-proxies in front of all of it."""
    cluster = env.start_etcd_cluster(3)
    proxies = [env.start_grpc_proxy(cluster.urls, name="grpc-proxy%d" % (i + 1))
               for i in range(n_proxies)]
    return cluster, proxies


def watch_proxy(env, proxies, since=0, name="slotsync"):
    """The proxy the daemon's watch was last started on (from its debug log)."""
    found = re.findall(r"watch through (http://\S+) from revision (\d+)",
                       env.log_text(name)[since:])
    assert found, "no watch started yet"
    url, rev = found[-1]
    return next(p for p in proxies if p.url == url.rstrip("/")), int(rev)


def etcd_addresses(url):
    """The set of (addr, port) registered under PREFIX web/ in etcd."""
    out = set()
    for _, value in etcd_get_prefix(url, PREFIX + "web/").items():
        host, port = value.decode().rsplit(":", 1)
        out.add((host, int(port)))
    return out


def test_watch_and_lease_survive_a_proxy_kill(env, bin_path):
    """slotsync's watch and announce's keepalives both run through the first
    proxy; it is killed (SIGKILL, by pid) while keys change: the watch moves
    to the second proxy and resumes from the revision after the last one it
    applied, every change put during the failover reaches HAProxy (HAProxy
    equals etcd), no re-list, no reload; announce's key keeps its lease,
    which is still kept alive through the second proxy."""
    if etcd_transport() != "grpc":
        # gRPC whatever the suite's transport: run once, in the gRPC pass
        raise Skip("runs in the gRPC pass (the default transport)")
    cluster, proxies = proxied(env)
    member = cluster.urls[0]
    endpoints = [p.url for p in proxies]

    c = Cluster(env, bin_path, etcd_url=member, start=False)
    c.config["etcd"]["endpoints"] = endpoints
    c.config["etcd"]["transport"] = "grpc"
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()

    key = PREFIX + "api/a"
    ann = env.spawn("announce", [bin_path, "announce", "--etcd-transport", "grpc",
                                 "--etcd", ",".join(endpoints), "--key", key,
                                 "--addr", "127.0.0.1:8081", "--ttl", "3",
                                 "--log-level", "debug"])
    value, lease = wait_for(lambda: key_entry(member, key), timeout=10, alive=[ann],
                            what="announce's key through the proxy")
    env.wait_log("announce", r"lease [0-9a-f]+ renewed", alive=[ann])

    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    first, _ = watch_proxy(env, proxies)
    assert first is proxies[0], "the watch starts on the first endpoint"
    applied_rev = etcd_revision(member)
    since = len(env.log_text("slotsync"))
    # announce's key made service api (one reload, before the kill)
    reloads = c.haproxy.reloads()

    first.stop(signal.SIGKILL)
    # Changes while the watch has no proxy, straight to a member (the
    # proxies are the clients' only way in, not the writers').
    etcd_put(member, PREFIX + "web/c", "127.0.0.1:%d" % c.backends["w3"])
    etcd_delete(member, PREFIX + "web/a")
    etcd_put(member, PREFIX + "web/b", "127.0.0.1:%d" % c.backends["w3"])
    etcd_put(member, PREFIX + "web/d", "127.0.0.1:%d" % c.backends["w1"])
    want = etcd_addresses(member)
    assert want == {("127.0.0.1", c.backends["w3"]), ("127.0.0.1", c.backends["w1"])}
    wait_for(lambda: c.live() == want, timeout=20, alive=[c.slotsync],
             what="the changes put during the failover applied")
    assert c.live() == etcd_addresses(member), "HAProxy equals etcd"

    second, rev = wait_for(lambda: watch_proxy(env, proxies, since), timeout=5,
                           what="a new watch after the kill")
    assert second is proxies[1], "the watch moved to the other proxy"
    assert rev == applied_rev + 1, \
        "resumed after the last revision (%d), not from %d" % (applied_rev, rev)
    log = env.log_text("slotsync")[since:]
    assert "listing applied" not in log, "the watch resumed, no re-list"
    assert c.haproxy.reloads() == reloads, "no reload for the failover"

    # announce: its keepalives were on the killed proxy too; they move and
    # the key keeps the same lease, renewed through the second proxy.
    ann_since = len(env.log_text("announce"))
    env.wait_log("announce", r"lease [0-9a-f]+ renewed", timeout=10, alive=[ann],
                 since=ann_since)
    end = time.monotonic() + 4  # more than the TTL after the kill
    while time.monotonic() < end:
        assert key_entry(member, key) == (value, lease), "announce's key lost its lease"
        time.sleep(0.2)
    ttl, granted = lease_info(member, lease)
    assert ttl > 0 and granted == 3, (ttl, granted)
    alog = env.log_text("announce")
    assert "presumed expired" not in alog and "lost" not in alog, alog
    assert re.search(r"switching to endpoint " + re.escape(proxies[1].url), alog), alog
    assert ann.poll() is None and c.slotsync.poll() is None


def range_calls(url):
    """Range calls url has handled (its grpc_server_handled_total, any code):
    an etcd member or a grpc-proxy, both serve /metrics on their client port."""
    status, text = http_get(url + "/metrics", timeout=5)
    assert status == 200, (url, status)
    return sum(float(m.group(1)) for m in re.finditer(
        r'^grpc_server_handled_total\{[^}]*grpc_method="Range"[^}]*\} (\S+)$', text, re.M))


def test_idle_liveness_behind_proxies_costs_etcd_no_reads(env, bin_path):
    """A grpc-proxy drops progress requests, so slotsync probes its liveness
    with a range a second instead; that range is serializable, which the
    proxy answers from its cache: while the proxy handles probe after probe,
    the members behind it see (almost) none of them, where a linearizable
    range would be one raft read per host per second at the leader."""
    if etcd_transport() != "grpc":
        raise Skip("runs in the gRPC pass (the default transport)")
    cluster, proxies = proxied(env)
    c = Cluster(env, bin_path, etcd_url=cluster.urls[0], start=False)
    c.config["etcd"]["endpoints"] = [p.url for p in proxies]
    c.config["etcd"]["transport"] = "grpc"
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()
    c.put("a", "w1")
    c.wait_live(["w1"])
    env.wait_log("slotsync", r"does not answer progress requests", timeout=15,
                 alive=[c.slotsync])

    members = lambda: sum(range_calls(u) for u in cluster.urls)
    # The window is the measure (five probes' worth), not a guard: what
    # proves the probes ran in it is the hang they detect right after.
    at_members = members()
    end = time.monotonic() + 5
    while time.monotonic() < end:
        assert c.slotsync.poll() is None
        time.sleep(0.5)
    reached = members() - at_members
    assert reached <= 1, "%d liveness probes in 5 s reached etcd's members" % reached
    assert "not answering" not in env.log_text("slotsync")

    # the probe still finds a hung proxy: the watch moves to the other one
    since = len(env.log_text("slotsync"))
    first, _ = watch_proxy(env, proxies)
    first.proc.send_signal(signal.SIGSTOP)
    try:
        env.wait_log("slotsync", r"is not answering \(probe", timeout=10,
                     alive=[c.slotsync], since=since)
        other, _ = wait_for(lambda: watch_proxy(env, proxies, since), timeout=10,
                            what="a watch on the other proxy")
        assert other is not first
        c.put("b", "w2")
        c.wait_live(["w1", "w2"])
    finally:
        first.proc.send_signal(signal.SIGCONT)


def _bulk_puts(url, key, n, size):
    """n puts of one size-byte value to key over one keep-alive connection
    (etcd's JSON gateway); returns the last revision."""
    import base64
    import http.client
    import json
    from urllib.parse import urlparse
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(b"x" * size).decode()})
    rev = 0
    try:
        for _ in range(n):
            conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            doc = json.loads(r.read())
            assert r.status == 200, doc
            rev = int(doc["header"]["revision"])
    finally:
        conn.close()
    return rev


def test_slow_consumer_cancelled_by_the_proxy_resumes(env, bin_path):
    """A grpc-proxy gives up on a watch stream whose client does not read
    (its send queue full for 50 ms: it cancels the whole stream, which ends
    with grpc-status UNKNOWN "context canceled"). slotsync, stopped (SIGSTOP) while etcd
    changes a lot, is such a client: once it runs again it sees the stream
    end, logs it, and resumes after the last revision it applied: the
    change put while it was stopped reaches HAProxy, no re-list. (The
    fleet bench's stalled hosts, issue 24 item 5: a host that falls behind
    loses nothing.)"""
    if etcd_transport() != "grpc":
        raise Skip("runs in the gRPC pass (SLOTSYNC_TEST_ETCD_TRANSPORT=grpc)")
    member = env.start_etcd()
    proxy = env.start_grpc_proxy([member])
    c = Cluster(env, bin_path, etcd_url=member, start=False)
    c.config["etcd"]["endpoints"] = [proxy.url]
    c.config["etcd"]["transport"] = "grpc"
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.start_slotsync()
    rev1 = c.put("a", "w1")
    c.wait_live(["w1"])
    since = len(env.log_text("slotsync"))

    os.kill(c.slotsync.pid, signal.SIGSTOP)
    try:
        c.put("a", "w2")
        # more than the socket buffers and the proxy's queue of 1024
        # responses hold: the proxy cancels the stream (it ends it once the
        # client reads again, with grpc-status UNKNOWN "context canceled")
        _bulk_puts(member, PREFIX + "bulk/x", 1600, 16384)
        rev3 = c.put("a", "w3")
    finally:
        os.kill(c.slotsync.pid, signal.SIGCONT)
    c.wait_live(["w3"])
    log = env.log_text("slotsync")[since:]
    assert re.search(r"warn +etcd: sync /services/: watch error: .*context canceled", log), \
        "the proxy did not cancel the stalled stream (or slotsync did not say so)"
    resumed = [int(r) for r in re.findall(r"watch through \S+ from revision (\d+)", log)]
    # after what it had applied, not from the revision etcd had on the
    # reconnect (that would skip w3's change) nor from scratch
    assert resumed and rev1 < resumed[-1] <= rev3, (rev1, resumed, rev3)
    assert "listing applied" not in log, "resumed, no re-list"
