#!/usr/bin/python3
"""bench_alt - the two alternatives integration/bench.py runs next to slotsync.

    bench_alt.py reload --etcd URL --prefix P --base FILE --file FILE
                        --master SOCK [--service NAME=IP:PORT ...]
                        [--http-bind IP:PORT --domain D] [--haproxy BIN]
    bench_alt.py dns --etcd URL --prefix P --port N --domain D

Both keep a mirror of the keys under the prefix (one paged listing, then
etcd's watch from the next revision, through the v3 JSON gateway), values
"IP:PORT" or {"host": ..., "port": ...}, keys <prefix><service>/<instance>.

reload: what confd in watch mode, docker-discover and Paz do. On every watch
  message: render the whole services file (the same backend/frontend shape
  slotsync renders, one "server" line per endpoint), `haproxy -c` it with the
  base config, rename it over FILE (and its Host map FILE.map), then
  "reload" through the master socket. One change at a time, in order.
dns: HAProxy's own discovery. A UDP DNS server on 127.0.0.1:PORT answering
  SRV "_<service>._tcp.<domain>" with one record per endpoint (target
  "<instance>.<service>.<domain>", its port) plus the A records in the
  additional section, and A "<instance>.<service>.<domain>". HAProxy's
  server-template + resolvers poll it.

Standard library only; every value read is checked (127.0.0.0/8 addresses
only); a bad one is skipped with one line on stderr. Stops on SIGTERM.
Prints "ready" on stdout once the listing is mirrored (dns: and the socket
is bound), and "applied REV" after each reload (reload mode).
"""

import argparse
import base64
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

NAME_OK = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode("utf-8", "replace")


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text):
    sys.stderr.write("bench_alt: %s\n" % text)
    sys.stderr.flush()


def parse_value(raw):
    """(ip, port) of a 127.0.0.0/8 endpoint value, or None."""
    raw = raw.strip()
    try:
        if raw.startswith("{"):
            doc = json.loads(raw)
            host, port = doc["host"], int(doc["port"])
        else:
            host, _, port = raw.rpartition(":")
            port = int(port)
        if not ipaddress.IPv4Address(host) in ipaddress.IPv4Network("127.0.0.0/8"):
            return None
        if not 0 < port < 65536:
            return None
        return host, port
    except (ValueError, KeyError, TypeError):
        return None


class Mirror:
    """{service: {instance: (ip, port)}} of the keys under prefix."""

    def __init__(self, url, prefix):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.prefix = prefix
        self.state = {}
        self.revision = 0
        self.lock = threading.Lock()

    def _post(self, path, body, timeout=30):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", path, json.dumps(body),
                         {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def _apply(self, key, value):
        """value None: a delete. Returns True if the state changed."""
        rest = key[len(self.prefix):]
        service, _, instance = rest.partition("/")
        if not NAME_OK.match(service or "") or not NAME_OK.match(instance or ""):
            warn("key %r: not <service>/<instance>, skipped" % key)
            return False
        if value is None:
            return self.state.get(service, {}).pop(instance, None) is not None
        ep = parse_value(value)
        if ep is None:
            warn("key %r: value %r is not a 127.0.0.0/8 IP:PORT, skipped" % (key, value[:80]))
            return False
        self.state.setdefault(service, {})[instance] = ep
        return True

    def list(self):
        end = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        key, rev = self.prefix, None
        for _ in range(100000):         # pages: bounded
            body = {"key": b64(key), "range_end": b64(end), "limit": 1000}
            if rev:
                body["revision"] = rev
            doc = self._post("/v3/kv/range", body)
            rev = int(doc["header"]["revision"])
            kvs = doc.get("kvs", [])
            with self.lock:
                for kv in kvs:
                    self._apply(unb64(kv["key"]), unb64(kv.get("value", "")))
            if not doc.get("more") or not kvs:
                break
            key = unb64(kvs[-1]["key"]) + "\0"
        self.revision = rev

    def watch(self, on_change):
        """Follow the watch stream; on_change(revision) after each message
        that changed something. Returns when the stream ends."""
        end = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=None)
        body = {"create_request": {"key": b64(self.prefix), "range_end": b64(end),
                                   "start_revision": self.revision + 1}}
        conn.request("POST", "/v3/watch", json.dumps(body),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        while True:
            line = resp.readline()
            if not line:
                return
            line = line.strip()
            if not line:
                continue
            try:
                result = json.loads(line).get("result", {})
            except ValueError:
                warn("watch: unreadable message skipped")
                continue
            changed = False
            with self.lock:
                for ev in result.get("events", []):
                    kv = ev.get("kv", {})
                    key = unb64(kv.get("key", ""))
                    if ev.get("type") == "DELETE":
                        changed |= self._apply(key, None)
                    else:
                        changed |= self._apply(key, unb64(kv.get("value", "")))
                rev = int(result.get("header", {}).get("revision", self.revision))
                self.revision = rev
            if changed:
                on_change(rev)


# --------------------------------------------------------------------------
# reload per change

def render(state, services, http_bind, domain, map_path):
    """The whole services file: one backend per service (configured ones
    and etcd's), a frontend per configured listen address, one Host
    frontend. Returns (config text, map text)."""
    out = ["# Rendered by bench_alt.py reload (reload per change)\n"]
    names = sorted(set(services) | set(state))
    for name in names:
        out.append("backend %s\n    mode http\n    balance roundrobin\n" % name)
        for inst, (ip, port) in sorted(state.get(name, {}).items()):
            out.append("    server %s %s:%d\n" % (inst, ip, port))
        out.append("\n")
        if services.get(name):
            out.append("frontend %s\n    mode http\n    bind %s\n    default_backend %s\n\n"
                       % (name, services[name], name))
    map_text = ""
    if http_bind:
        out.append("frontend bench_http\n    mode http\n    bind %s\n"
                   "    use_backend %%[req.hdr(host),lower,word(1,:),map(%s)]\n"
                   % (http_bind, map_path))
        map_text = "".join("%s.%s %s\n" % (n, domain, n) for n in names)
    return "".join(out), map_text


MASTER_LINE = re.compile(rb"(?m)^\s*\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]")


def master_cmd(sock_path, line, timeout):
    """One master CLI command; its reply (b"" if the master closed first).
    While the master re-executes its socket refuses connections: retried
    every 5 ms until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with s:
                s.settimeout(timeout)
                s.connect(sock_path)
                s.sendall(line + b"\n")
                s.shutdown(socket.SHUT_WR)
                chunks = []
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        chunks.append(chunk)
                except ConnectionResetError:
                    pass    # the master re-executing (a reload under way)
            return b"".join(chunks)
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def reload_count(sock_path, deadline):
    """reloads + failed reloads from "show proc", asked until it answers
    (a master re-executing on 100,000 servers takes seconds)."""
    while True:
        m = MASTER_LINE.search(master_cmd(sock_path, b"show proc",
                                          max(1.0, deadline - time.monotonic())))
        if m:
            return int(m.group(1)) + int(m.group(2))
        if time.monotonic() > deadline:
            raise OSError("the master's show proc has no master line")
        time.sleep(0.005)


def master_reload(sock_path, timeout=120):
    """Reload through the master CLI and wait until the master counts it
    (as `systemctl reload` of a notify unit waits): a reload asked while the
    previous one is still under way would otherwise be lost."""
    deadline = time.monotonic() + timeout
    before = reload_count(sock_path, deadline)
    master_cmd(sock_path, b"reload", timeout)
    while reload_count(sock_path, deadline) <= before:
        if time.monotonic() > deadline:
            raise OSError("reload not counted by the master after %d s" % timeout)
        time.sleep(0.005)


def run_reload(args):
    services = {}
    for spec in args.service:
        name, _, listen = spec.partition("=")
        services[name] = listen
    mirror = Mirror(args.etcd, args.prefix)
    mirror.list()
    map_path = args.file + ".map"
    counts = {"reloads": 0, "failed_checks": 0}

    def apply(rev):
        with mirror.lock:
            cfg, map_text = render(mirror.state, services, args.http_bind, args.domain,
                                   map_path)
        new = args.file + ".new"
        with open(new, "w") as f:
            f.write(cfg)
        with open(map_path + ".new", "w") as f:
            f.write(map_text)
        # the check reads the map the candidate names: put it in place first
        # (a map with an extra name is harmless to the running config)
        os.replace(map_path + ".new", map_path)
        r = subprocess.run([args.haproxy, "-c", "-f", args.base, "-f", new],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            counts["failed_checks"] += 1
            warn("haproxy -c refused the candidate: %s" % r.stdout[-300:].decode("utf-8", "replace"))
            return
        os.replace(new, args.file)
        master_reload(args.master)
        counts["reloads"] += 1
        say("applied %d" % rev)

    def guarded(rev):
        # a failed step is logged and the next change tries again (confd)
        try:
            apply(rev)
        except (OSError, subprocess.SubprocessError) as e:
            warn("revision %d not applied: %s" % (rev, e))

    guarded(mirror.revision)    # the file HAProxy was started on may be empty
    say("ready")
    mirror.watch(guarded)


# --------------------------------------------------------------------------
# DNS

def dns_name(wire, off):
    """(labels, next offset) of an uncompressed name (queries are)."""
    labels = []
    for _ in range(128):
        n = wire[off]
        off += 1
        if n == 0:
            return labels, off
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(wire[off:off + n].decode("ascii", "replace").lower())
        off += n
    raise ValueError("name too long")


def encode_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def dns_answer(query, state, lock, domain, ttl):
    qid, flags, qd, _, _, ar = struct.unpack("!6H", query[:12])
    labels, off = dns_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    question = query[12:off + 4]
    payload = 512
    if ar:      # EDNS OPT: the size the client accepts
        try:
            _, o2 = dns_name(query, off + 4)
            rtype, size = struct.unpack("!HH", query[o2:o2 + 4])
            if rtype == 41:
                payload = max(512, size)
        except (ValueError, struct.error, IndexError):
            pass
    name = ".".join(labels)
    dom = domain.lower().strip(".")
    answers, extra = [], []
    rcode = 3
    with lock:
        if qtype == 33 and name.endswith("._tcp." + dom) and name.startswith("_"):
            service = name[1:-len("._tcp." + dom)]
            eps = state.get(service)
            if eps is not None:
                rcode = 0
                for inst, (ip, port) in sorted(eps.items()):
                    target = encode_name("%s.%s.%s" % (inst, service, dom))
                    rdata = struct.pack("!HHH", 0, 10, port) + target
                    answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 33, 1, ttl, len(rdata))
                                   + rdata)
                    extra.append(target + struct.pack("!HHIH", 1, 1, ttl, 4)
                                 + socket.inet_aton(ip))
        elif qtype in (1, 28) and name.endswith("." + dom) and len(labels) >= 3:
            inst, service = labels[0], labels[1]
            ep = state.get(service, {}).get(inst)
            if ep is not None:
                rcode = 0
                if qtype == 1:
                    answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4)
                                   + socket.inet_aton(ep[0]))
    opt = b"\0" + struct.pack("!HHIH", 41, 8192, 0, 0)
    flags_out = 0x8400 | (flags & 0x0100) | rcode
    body = b"".join(answers) + b"".join(extra)
    if 12 + len(question) + len(body) + len(opt) > payload:
        # does not fit what the client accepts: truncated, no records
        return struct.pack("!6H", qid, flags_out | 0x0200, 1, 0, 0, 1) + question + opt
    return (struct.pack("!6H", qid, flags_out, 1, len(answers), 0, len(extra) + 1)
            + question + body + opt)


def run_dns(args):
    mirror = Mirror(args.etcd, args.prefix)
    mirror.list()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    t = threading.Thread(target=mirror.watch, args=(lambda rev: None,), daemon=True)
    t.start()
    say("ready")
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            reply = dns_answer(query, mirror.state, mirror.lock, args.domain, args.ttl)
        except (ValueError, struct.error, IndexError) as e:
            warn("query from %s: %s" % (peer, e))
            continue
        sock.sendto(reply, peer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("reload")
    d = sub.add_parser("dns")
    for p in (r, d):
        p.add_argument("--etcd", required=True)
        p.add_argument("--prefix", required=True)
        p.add_argument("--domain", default="bench.local")
    r.add_argument("--base", required=True)
    r.add_argument("--file", required=True)
    r.add_argument("--master", required=True)
    r.add_argument("--service", action="append", default=[])
    r.add_argument("--http-bind")
    r.add_argument("--haproxy", default="haproxy")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--ttl", type=int, default=1)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for part in (args.etcd,):
        if urllib.parse.urlsplit(part).hostname != "127.0.0.1":
            sys.exit("bench_alt: etcd must be on 127.0.0.1")
    if args.mode == "reload":
        run_reload(args)
    else:
        run_dns(args)


if __name__ == "__main__":
    main()
