#!/usr/bin/python3
"""bench_load.py - an HTTP load client that time-stamps every request's outcome.

    bench_load.py --host H --port P --seconds S --out FILE [--threads T]
                  [--timeout 5] [--path /]

For `bench.py --section restart` (HAProxy killed and started again under
load), where wrk's counts cannot say when a request failed: wrk counts a
refused connection as a read error, so "HAProxy was down" and "HAProxy was
back but sent the request to a stale endpoint" end up in one figure.

T threads (several such processes for more load) each send GET requests in
a loop for S seconds, one TCP connection per request (`Connection: close`,
no keep-alive): every request goes through connect(), so a refused connect
says the listener was not there at that moment, and the first connect that
succeeds after HAProxy was killed dates the listener's return (to the
client's resolution, the time of one request); a kept-alive connection
would hide both, and one broken by the kill would fail its next request
with a reset whatever the listener's state.

Each request is recorded as (t0, t_conn, t_end, outcome): CLOCK_MONOTONIC
seconds (time.monotonic(), the same clock in every process of the machine)
before connect(), once connect() succeeded (-1 when it did not), and at the
end; the outcome one of OUTCOMES. The records are written to FILE at the
end (RECORD, little-endian), read back with read_records(); summarize()
splits them at the listener's return. A thread stops at S seconds; nothing
here waits longer than --timeout on a socket.
"""

import argparse
import errno
import os
import socket
import struct
import sys
import threading
import time

OUTCOMES = ("ok", "5xx", "reset", "refused", "timeout", "other-status", "error")
FAILED = OUTCOMES[1:]
RECORD = struct.Struct("<dddB")


def classify_status(status):
    """The outcome of an answered request by its status code."""
    if 200 <= status < 300:
        return "ok"
    if 500 <= status < 600:
        return "5xx"
    return "other-status"


def classify_error(exc, connected):
    """The outcome of a request that got no status line: exc is what was
    raised (None: the peer closed without answering)."""
    if exc is None:
        return "reset"
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError) or (
            not connected and getattr(exc, "errno", None) == errno.ECONNREFUSED):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return "error"


def parse_status(head):
    """The status code of an HTTP/1.x response's first bytes, or None."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(None, 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def one_request(addr, request, timeout):
    """(t0, t_conn, t_end, outcome) of one request on a new connection."""
    t0 = time.monotonic()
    t_conn = -1.0
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
        t_conn = time.monotonic()
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = parse_status(data)
        outcome = classify_status(status) if status is not None else classify_error(None, True)
    except OSError as e:
        outcome = classify_error(e, t_conn >= 0)
    finally:
        s.close()
    return t0, t_conn, time.monotonic(), outcome


def read_records(path):
    """[(t0, t_conn, t_end, outcome)] of a file this script wrote."""
    with open(path, "rb") as f:
        data = f.read()
    return [(t0, tc, te, OUTCOMES[o]) for t0, tc, te, o in RECORD.iter_unpack(data)]


def summarize(records, t_kill, t_gone=None):
    """Split the records of a load that saw HAProxy killed at t_kill:

    before: the requests started before the kill; after: those whose
    connect() succeeded at or after `back`, the first successful connect()
    of a request started after t_gone (when the listener was seen gone;
    t_kill when not given; None: it never came back), and
    those started at or after back (a refused connect then is a failure
    after back); down: the others started after the kill (refused before
    the listener came back).
    Returns {"back", "before", "down", "after", "in_flight", "last_failure"}
    where before/down/after are {outcome: count} (every outcome present),
    in_flight counts the requests started before the kill that ended after
    it, and last_failure is the end of the last failed request of "after"
    less back (None without one); after_ok_ms is the p50 and p99 of the
    durations of the "after" requests that were ok (None, None without)."""
    def zero():
        return {k: 0 for k in OUTCOMES}
    gone = t_kill if t_gone is None else t_gone
    back = min((tc for t0, tc, te, o in records if t0 >= gone and tc >= 0), default=None)
    out = {"back": back, "before": zero(), "down": zero(), "after": zero(),
           "in_flight": 0, "last_failure": None, "after_ok_ms": (None, None)}
    last = None
    ok_ms = []
    for t0, tc, te, o in records:
        if t0 < t_kill:
            out["before"][o] += 1
            out["in_flight"] += te >= t_kill
        elif back is not None and (tc >= back or t0 >= back):
            out["after"][o] += 1
            if o == "ok":
                ok_ms.append((te - t0) * 1e3)
            elif last is None or te > last:
                last = te
        else:
            out["down"][o] += 1
    if last is not None:
        out["last_failure"] = last - back
    if ok_ms:
        ok_ms.sort()
        out["after_ok_ms"] = tuple(ok_ms[max(0, -(-len(ok_ms) * q // 100) - 1)]
                                   for q in (50, 99))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not args.host.startswith("127."):
        sys.exit("bench_load: only 127.0.0.0/8 targets: %s" % args.host)
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
               "User-Agent: slotsync-bench-load\r\n\r\n"
               % (args.path, args.host, args.port)).encode()
    addr = (args.host, args.port)
    end = time.monotonic() + args.seconds
    results = [[] for _ in range(args.threads)]

    def loop(out):
        while time.monotonic() < end:
            t0, tc, te, o = one_request(addr, request, args.timeout)
            out.append(RECORD.pack(t0, tc, te, OUTCOMES.index(o)))
            if o == "refused":
                time.sleep(0.001)   # a closed port answers at once: do not spin on it

    threads = [threading.Thread(target=loop, args=(r,), daemon=True) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + args.timeout + 10)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        for r in results:
            f.write(b"".join(r))
    os.rename(tmp, args.out)
    print("bench_load: %d requests" % sum(len(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
