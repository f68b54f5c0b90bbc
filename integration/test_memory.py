"""Integration tests of the memory slotsync gives back after a large
transient buffer (issue 20, item 6): RSS read from /proc/PID/status, never
a time."""

import socket
import threading

from harness import *
from test_daemon import PREFIX, Cluster

# 51 MiB of values over the 1,024-byte limit (refused): 51 keys of 1 MiB,
# under etcd's 1.5 MiB request limit
N_BIG, BIG = 51, 1024 * 1024


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def test_rss_back_near_idle_after_a_51_mib_listing(env, bin_path):
    """51 MiB of refused values in the first listing (one page of base64
    JSON): once applied, RSS is within 20% of what the same daemon holds
    with the same valid keys and no such spike."""
    if sanitized(bin_path):
        # ASan's quarantine and shadow keep freed memory resident: RSS says
        # nothing about slotsync's own release there
        raise Skip("RSS is not slotsync's under AddressSanitizer (make asan)")
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.wait_live(["w1"])
    idle = vm_rss_kib(c.slotsync.pid)
    c.env.stop(c.slotsync)
    value, done = "x" * BIG, []

    def writer(k):  # three at a time: the puts are most of this test's time
        for i in range(k, N_BIG, 3):
            etcd_put(c.etcd, PREFIX + "web/big%02d" % i, value, timeout=30)
            done.append(i)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(done) == list(range(N_BIG)), done
    since = len(env.log_text("slotsync"))
    c.start_slotsync()
    env.wait_log("slotsync", r'etcd key "/services/web/big%02d" rejected' % (N_BIG - 1),
                 since=since, alive=[c.slotsync])
    env.wait_log("slotsync", r"etcd listing applied", since=since, alive=[c.slotsync])
    env.wait_log("slotsync", r"mem: heap trimmed", since=since, alive=[c.slotsync])
    c.wait_live(["w1"])
    after = vm_rss_kib(c.slotsync.pid)
    print("idle %d KiB, after the 51 MiB listing %d KiB" % (idle, after))
    assert after <= idle * 1.2, (idle, after)


class JunkProxy:
    """A unix socket in front of HAProxy's runtime socket that passes every
    exchange through (one command line, the reply up to HAProxy's close)
    and, while junk_rows is set, adds that many rows of a backend slotsync
    does not own to each "show servers state" reply: replies of megabytes
    that slotsync reads whole, parses and frees."""

    def __init__(self, env, upstream):
        self.path = env.path("junk.sock")
        self.upstream = upstream
        self.junk_rows = 0
        self.junk_replies = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                try:
                    self.exchange(conn)
                except OSError:
                    pass

    def exchange(self, conn):
        conn.settimeout(10)
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return
            line += chunk
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.settimeout(10)
        with up:
            up.connect(self.upstream)
            up.sendall(line)
            reply = b""
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                reply += chunk
        rows = self.junk_rows
        at = reply.find(b"\n# be_id")
        if rows and b"show servers state" in line and at >= 0:
            end = reply.index(b"\n", at + 1) + 1
            junk = b"".join(b"99 junk %d s%d 127.0.0.1 2 0 1 1 1 6 3 4 6 0 0 0 - 80 - 0 0 - - 0\n"
                            % (i + 1, i + 1) for i in range(rows))
            reply = reply[:end] + junk + reply[end:]
            self.junk_replies += 1
        conn.sendall(reply)

    def close(self):
        self.running = False
        self.sock.close()
        self.thread.join(5)


def test_rss_back_near_idle_after_10_mib_runtime_replies(env, bin_path):
    """Resyncs whose "show servers state" replies carry 10 MiB of rows of a
    backend slotsync does not own: once they are read, RSS is within 20% of
    the idle figure the same daemon had before them."""
    if sanitized(bin_path):
        # ASan's quarantine and shadow keep freed memory resident: RSS says
        # nothing about slotsync's own release there
        raise Skip("RSS is not slotsync's under AddressSanitizer (make asan)")
    c = Cluster(env, bin_path, start=False, extra={"resync_interval_s": 1})
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    proxy = JunkProxy(env, c.haproxy.admin_sock)
    try:
        c.config["haproxy"]["runtime_socket"] = proxy.path
        write_config(env, c.config)
        c.start_slotsync()
        c.put("a", "w1")
        c.wait_live(["w1"])
        since = len(env.log_text("slotsync"))
        env.wait_log("slotsync", r"HAProxy state read", since=since, alive=[c.slotsync])
        idle = vm_rss_kib(c.slotsync.pid)
        proxy.junk_rows = 10 * 1024 * 1024 // 70  # about 10 MiB a reply
        wait_for(lambda: proxy.junk_replies >= 3, timeout=30, what="3 junk replies",
                 alive=[c.slotsync])
        proxy.junk_rows = 0
        since = len(env.log_text("slotsync"))
        env.wait_log("slotsync", r"mem: heap trimmed", since=since, timeout=15,
                     alive=[c.slotsync])
        env.wait_log("slotsync", r"HAProxy state read", since=since, alive=[c.slotsync])
        after = vm_rss_kib(c.slotsync.pid)
        print("idle %d KiB, after three 10 MiB replies %d KiB" % (idle, after))
        assert after <= idle * 1.2, (idle, after)
        c.reach(["w1"])
    finally:
        proxy.close()
