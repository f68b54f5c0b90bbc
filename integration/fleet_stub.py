#!/usr/bin/python3
"""fleet_stub.py - many HAProxy runtime sockets served by one process on one
event loop (selectors), for bench_fleet.py (issue 24 item 5): a fleet of
thousands of "slotsync run" processes cannot each have a real HAProxy on
this machine, so past the first few they get a socket that answers like
HAProxy 2.6 does for what slotsync sends.

What it answers is HAProxy 2.6.12's CLI as recorded from a real socket
(test_fleet_stub.py sends the same lines to a real HAProxy and to this stub
and compares the bytes):

  - one connection carries lines; a line carries commands separated by ';';
    each command's output is followed by "\\n" (an empty line closes it),
    or by "\\n> " once "prompt" turned interactive mode on;
  - non-interactive, the connection is closed as soon as every complete
    line received so far was answered (pipelined lines are answered);
    interactive, it stays open ("quit" closes it);
  - show cli level, show servers state [B], show backend, show info,
    show map F (no map is known: HAProxy's "Unknown map identifier"),
    set server B/S addr A port P | weight W | state ready|drain|maint,
    prompt, quit; anything else gets 2.6's "Unknown command" text.

Each socket has its own servers (backend NAME with slots s1..sS, created as
"server sN 0.0.0.0:0 disabled" is by HAProxy: address 0.0.0.0, port 0 with
mapped ports, admin state FMAINT|CMAINT = 5, op state 0, weight 1), changed
by the set commands, so "show servers state" shows what was set.

    fleet_stub.py --dir D --n N [--backend NAME:SLOTS:ID ...] [--proxy NAME ...]
                  [--forward I=PATH ...]

serves D/admin<I>.sock for I in 0..N-1. --proxy: a proxy without servers
that "show backend" lists too (the base config's "stats"). --forward
I=PATH: socket I relays to a real HAProxy's runtime socket PATH (its
replies are HAProxy's own; a relay that fails is counted and printed).

Every "set server ... port P" is timed with time.monotonic()
(CLOCK_MONOTONIC, the clock of every process on the machine) when its
reply goes out (for a relay: when HAProxy's reply to the line is in).
D/ctl.sock takes lines (a connection may send several):
  wait PORT SECS  -> JSON list, per socket, of the first time it applied a
                     port PORT (null where not within SECS); answered as
                     soon as every socket has one, or after SECS
  state I         -> JSON: socket I's backends {name: [[addr, port,
                     op_state, admin_state, uweight], ...]}
  stats           -> JSON counters: connections, commands, unknown
                     commands, relay errors
"""
import argparse
import errno
import json
import os
import re
import resource
import selectors
import socket
import sys
import time

SET_ADDR = re.compile(r"^set server ([^/ ]+)/(\S+) addr (\S+) port (\S+)$")
SET_WEIGHT = re.compile(r"^set server ([^/ ]+)/(\S+) weight (\S*)$")
SET_STATE = re.compile(r"^set server ([^/ ]+)/(\S+) state (\S*)$")
PORT_IN_LINE = re.compile(rb"set server \S+ addr \S+ port (\d+)")
IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")

HEADER = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
          "srv_uweight srv_iweight srv_time_since_last_change srv_check_status "
          "srv_check_result srv_check_health srv_check_state srv_agent_state "
          "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
          "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n")
BY = " by 'stats socket command'"
UNKNOWN = ("Unknown command. Please enter one of the following commands only:\n"
           "  help [<command>]                        : list matching or all commands\n"
           "  prompt                                  : toggle interactive mode with prompt\n"
           "  quit                                    : disconnect\n"
           "  set server <bk>/<srv> [opts]            : change a server's state, weight, "
           "address or ssl\n"
           "  show backend                            : list backends in the current running "
           "config\n"
           "  show cli level                          : display the actual cli level\n"
           "  show info [desc|json|typed|float]*      : report information about the running "
           "process\n"
           "  show map [@<ver>] [map]                 : report available maps or dump a map's "
           "contents\n"
           "  show servers state [<backend>]          : dump volatile server information "
           "(all or for a single backend)\n")
# HAProxy's admin flags (SRV_ADMF_*) and op states (SRV_ST_*)
FMAINT, CMAINT, FDRAIN = 0x01, 0x04, 0x08
ST_STOPPED, ST_RUNNING = 0, 2
START = time.time()


def info_text(version, pid):
    up = int(time.time() - START)
    return ("Name: HAProxy\nVersion: %s\nRelease_date: 2026/10/17\nNbthread: 1\nNbproc: 1\n"
            "Process_num: 1\nPid: %d\nUptime: 0d %dh%02dm%02ds\nUptime_sec: %d\n"
            "Memmax_MB: 0\nPoolAlloc_MB: 0\nPoolUsed_MB: 0\nPoolFailed: 0\nMaxconn: 4096\n"
            "Hard_maxconn: 4096\nCurrConns: 0\nnode: fleet-stub\nStopping: 0\n"
            "Build info: %s\nStart_time_sec: %d\nTainted: 0\n"
            % (version, pid, up // 3600, up // 60 % 60, up % 60, up, version, int(START)))


class Server:
    __slots__ = ("sid", "name", "addr", "port", "mapports", "op", "admin", "uweight",
                 "iweight", "changed")

    def __init__(self, sid):
        self.sid = sid
        self.name = "s%d" % sid
        self.addr, self.port, self.mapports = "0.0.0.0", 0, True
        self.op, self.admin = ST_STOPPED, FMAINT | CMAINT
        self.uweight = self.iweight = 1
        self.changed = time.monotonic()

    def set_op(self):
        op = ST_STOPPED if self.admin & FMAINT else ST_RUNNING
        if op != self.op:
            self.op, self.changed = op, time.monotonic()

    def row(self, be_id, be_name):
        return ("%d %s %d %s %s %d %d %d %d %d 1 0 0 8 0 0 0 - %d - 0 0 - - 0\n"
                % (be_id, be_name, self.sid, self.name, self.addr, self.op, self.admin,
                   self.uweight, self.iweight, int(time.monotonic() - self.changed),
                   self.port))


def addr_ok(a):
    m = IPV4.match(a)
    return bool(m) and all(int(x) <= 255 for x in m.groups())


class Host:
    """One socket's HAProxy: its backends and what it applied when."""

    def __init__(self, backends, proxies, version):
        self.backends = {}  # name -> (be_id, {server name: Server})
        self.order = []
        for name, slots, be_id in backends:
            self.backends[name] = (be_id, dict(("s%d" % (i + 1), Server(i + 1))
                                               for i in range(slots)))
            self.order.append(name)
        self.proxies = sorted(set(proxies) | set(self.order))
        self.version = version
        self.seen = {}  # port -> monotonic time of the first reply that applied it
        self.commands = 0
        self.unknown = 0

    def server(self, b, s):
        """(Server, None) or (None, HAProxy's refusal)."""
        if b not in self.backends:
            return None, "No such backend.\n"
        srv = self.backends[b][1].get(s)
        return (srv, None) if srv else (None, "No such server.\n")

    def servers_state(self, only=None):
        if only is not None and only not in self.backends:
            return "Can't find backend.\n"
        out = [HEADER]
        for name in self.order:
            if only is None or name == only:
                be_id, servers = self.backends[name]
                out.extend(s.row(be_id, name) for s in servers.values())
        return "".join(out)

    def set_addr(self, srv, addr, port):
        if not addr_ok(addr):
            return "Invalid addr '%s'%s" % (addr, BY)
        if not port.isdigit() or int(port) > 65535:
            a = ("no need to change the addr" if addr == srv.addr
                 else "IP changed from '%s' to '%s'" % (srv.addr, addr))
            return "%s, problem converting port '%s' to an int%s" % (a, port, BY)
        p = int(port)
        if addr == srv.addr:
            a = "no need to change the addr"
        else:
            a = "IP changed from '%s' to '%s'" % (srv.addr, addr)
            srv.addr = addr
        if p == srv.port:
            pm = "no need to change the port"
        else:
            pm = "port changed from '%s%d' to '%d'" % ("+" if srv.mapports else "", srv.port, p)
            srv.port, srv.mapports = p, False
        return "%s, %s%s\n" % (a, pm, BY)

    def set_state(self, srv, what):
        if what == "ready":
            srv.admin &= ~(FMAINT | FDRAIN)
        elif what == "drain":
            srv.admin = (srv.admin & ~FMAINT) | FDRAIN
        elif what == "maint":
            srv.admin = (srv.admin & ~FDRAIN) | FMAINT
        else:
            return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
        srv.set_op()
        return ""

    def set_weight(self, srv, w):
        if w == "":
            return "Require <weight> or <weight%>.\n"
        if not w.isdigit():
            # 2.6 prints this one without its newline
            return "Empty weight string empty or preceded by garbage"
        if int(w) > 256:
            return "Absolute weight can only be between 0 and 256 inclusive.\n"
        srv.uweight = int(w)
        return ""

    def command(self, cmd, now_ports):
        """HAProxy's output for one command (before the "\\n" or prompt)."""
        self.commands += 1
        if cmd == "show cli level":
            return "admin\n"
        if cmd == "show servers state":
            return self.servers_state()
        if cmd.startswith("show servers state "):
            return self.servers_state(cmd[len("show servers state "):].strip())
        if cmd == "show backend":
            return "# name\n" + "".join(p + "\n" for p in self.proxies)
        if cmd == "show info":
            return info_text(self.version, os.getpid())
        if cmd.startswith("show map "):
            return "Unknown map identifier. Please use #<id> or <file>.\n"
        for rx, fn in ((SET_ADDR, "addr"), (SET_WEIGHT, "weight"), (SET_STATE, "state")):
            m = rx.match(cmd)
            if not m:
                continue
            srv, err = self.server(m.group(1), m.group(2))
            if err:
                return err
            if fn == "addr":
                out = self.set_addr(srv, m.group(3), m.group(4))
                if m.group(4).isdigit() and out.endswith(BY + "\n"):
                    now_ports.append(int(m.group(4)))
                return out
            if fn == "weight":
                return self.set_weight(srv, m.group(3))
            return self.set_state(srv, m.group(3))
        self.unknown += 1
        return UNKNOWN

    def note(self, ports, now):
        for p in ports:
            self.seen.setdefault(p, now)

    def state(self):
        return dict((name, [[s.addr, s.port, s.op, s.admin, s.uweight]
                            for s in self.backends[name][1].values()])
                    for name in self.order)


class Conn:
    __slots__ = ("sock", "host", "inbuf", "out", "prompt", "closing", "peer", "ports",
                 "relay_of", "since")

    def __init__(self, sock, host):
        self.sock = sock
        self.host = host
        self.inbuf = b""
        self.out = bytearray()
        self.prompt = False
        self.closing = False
        self.peer = None      # relay: the connection to the real socket
        self.relay_of = None  # on the real socket's side: the client Conn
        self.ports = []
        self.since = time.monotonic()


class Stub:
    IDLE_S = 120.0  # HAProxy's "stats timeout 2m" of the shipped base config

    def __init__(self, args):
        self.sel = selectors.DefaultSelector()
        self.dir = args.dir
        backends = []
        for spec in args.backend or ["web:2:3"]:
            name, slots, be_id = spec.split(":")
            backends.append((name, int(slots), int(be_id)))
        self.hosts = [Host(backends, args.proxy, args.version) for _ in range(args.n)]
        self.forward = dict((int(i), p) for i, p in (f.split("=", 1) for f in args.forward))
        self.conns = set()
        self.waiters = []  # (ctl Conn, port, deadline)
        self.accepted = 0
        self.relay_errors = 0
        for i in range(args.n):
            self.listen(os.path.join(self.dir, "admin%d.sock" % i), ("listen", ("host", i)))
        self.listen(os.path.join(self.dir, "ctl.sock"), ("listen", ("ctl", None)))

    def listen(self, path, data):
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(128)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, data)

    # -- connections

    def accept(self, lsock, what):
        kind, i = what
        while True:
            try:
                s, _ = lsock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    print("fleet_stub: accept: %s" % e, file=sys.stderr, flush=True)
                    return
                raise
            s.setblocking(False)
            self.accepted += 1
            c = Conn(s, self.hosts[i] if kind == "host" else None)
            self.conns.add(c)
            if kind == "host" and i in self.forward:
                self.relay_open(c, self.forward[i])
            self.sel.register(s, selectors.EVENT_READ, ("ctl" if kind == "ctl" else "conn", c))

    def update(self, c):
        if c.sock.fileno() < 0:
            return
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
        try:
            self.sel.modify(c.sock, ev, self.sel.get_key(c.sock).data)
        except (KeyError, ValueError):
            pass

    def close(self, c):
        if c not in self.conns:
            return
        self.conns.discard(c)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        if c.peer is not None:
            p, c.peer = c.peer, None
            p.relay_of = None
            self.close(p)
        if c.relay_of is not None:
            client, c.relay_of = c.relay_of, None
            client.peer = None
            client.closing = True
            self.flush(client)

    def flush(self, c):
        """Write what is queued; close once done if closing."""
        while c.out:
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                break
            except OSError:
                self.close(c)
                return
            del c.out[:n]
        if not c.out and c.closing:
            self.close(c)
            return
        self.update(c)

    def read(self, c):
        try:
            d = c.sock.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            d = b""
        return d

    # -- the HAProxy side

    def on_client(self, c):
        d = self.read(c)
        if d is None:
            return
        if not d:
            if c.peer is not None:
                # the client half-closed: pass it on
                try:
                    c.peer.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                try:
                    self.sel.unregister(c.sock)
                except (KeyError, ValueError):
                    pass
                return
            self.close(c)
            return
        c.since = time.monotonic()
        if c.peer is not None:
            c.ports.extend(int(p) for p in PORT_IN_LINE.findall(d))
            c.peer.out += d
            self.flush(c.peer)
            return
        c.inbuf += d
        now_ports = []
        while b"\n" in c.inbuf and not c.closing:
            line, c.inbuf = c.inbuf.split(b"\n", 1)
            for cmd in line.decode("utf-8", "replace").rstrip("\r").split(";"):
                cmd = " ".join(cmd.split())
                if cmd == "prompt":
                    c.prompt = not c.prompt
                    out = ""
                elif cmd == "quit":
                    c.closing = True
                    break
                else:
                    out = c.host.command(cmd, now_ports)
                c.out += (out + ("\n> " if c.prompt else "\n")).encode()
        if not c.prompt and not c.inbuf:
            c.closing = True
        self.flush(c)
        c.host.note(now_ports, time.monotonic())
        self.check_waiters()

    def relay_open(self, c, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            self.relay_errors += 1
            print("fleet_stub: relay to %s: %s" % (path, e), file=sys.stderr, flush=True)
            s.close()
            c.closing = True
            return
        s.setblocking(False)
        r = Conn(s, c.host)
        r.relay_of = c
        c.peer = r
        self.conns.add(r)
        self.sel.register(s, selectors.EVENT_READ, ("relay", r))

    def on_relay(self, r):
        d = self.read(r)
        if d is None:
            return
        client = r.relay_of
        if not d:
            if client is not None:
                client.host.note(client.ports, time.monotonic())
                self.check_waiters()
            self.close(r)
            return
        if client is not None:
            client.out += d
            self.flush(client)

    # -- control

    def on_ctl(self, c):
        d = self.read(c)
        if not d:
            if d is not None:
                self.close(c)
            return
        c.inbuf += d
        while b"\n" in c.inbuf:
            line, c.inbuf = c.inbuf.split(b"\n", 1)
            parts = line.decode(errors="replace").split()
            if len(parts) == 3 and parts[0] == "wait":
                self.waiters.append((c, int(parts[1]), time.monotonic() + float(parts[2])))
            elif len(parts) == 2 and parts[0] == "state" and parts[1].isdigit() \
                    and int(parts[1]) < len(self.hosts):
                self.reply(c, self.hosts[int(parts[1])].state())
            elif parts == ["stats"]:
                self.reply(c, {"accepted": self.accepted,
                               "open": len(self.conns),
                               "commands": sum(h.commands for h in self.hosts),
                               "unknown": sum(h.unknown for h in self.hosts),
                               "relay_errors": self.relay_errors})
            else:
                self.reply(c, {"error": "wait PORT SECS | state I | stats"})
        self.check_waiters()

    def reply(self, c, obj):
        c.out += (json.dumps(obj) + "\n").encode()
        self.flush(c)

    def check_waiters(self, now=None):
        if not self.waiters:
            return
        now = now or time.monotonic()
        left = []
        for c, port, deadline in self.waiters:
            done = all(port in h.seen for h in self.hosts)
            if done or now >= deadline:
                if c in self.conns:
                    self.reply(c, [h.seen.get(port) for h in self.hosts])
            else:
                left.append((c, port, deadline))
        self.waiters = left

    def sweep(self, now):
        """HAProxy's CLI timeout: an idle connection is closed."""
        for c in list(self.conns):
            if c.host is not None and c.relay_of is None and now - c.since > self.IDLE_S:
                self.close(c)

    def run(self):
        last_sweep = time.monotonic()
        while True:
            timeout = 1.0
            if self.waiters:
                timeout = max(0.0, min(w[2] for w in self.waiters) - time.monotonic())
            for key, _ in self.sel.select(timeout):
                kind, obj = key.data
                if kind == "listen":
                    self.accept(key.fileobj, obj)
                elif kind == "conn":
                    self.on_client(obj)
                elif kind == "relay":
                    self.on_relay(obj)
                elif kind == "ctl":
                    self.on_ctl(obj)
                if kind == "conn" and obj in self.conns and obj.out:
                    self.flush(obj)
            now = time.monotonic()
            self.check_waiters(now)
            if now - last_sweep > 5:
                self.sweep(now)
                last_sweep = now


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--backend", action="append",
                    help="NAME:SLOTS:BE_ID (default web:2:3)")
    ap.add_argument("--proxy", action="append", default=[],
                    help="a proxy without servers listed by show backend")
    ap.add_argument("--forward", action="append", default=[])
    ap.add_argument("--version", default="2.6.12-1+deb12u4")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stub = Stub(args)
    print("ready", flush=True)
    stub.run()


if __name__ == "__main__":
    main()
