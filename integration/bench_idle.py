#!/usr/bin/python3
"""bench_idle.py - what an idle host costs etcd, per transport (issue 24).

    bench_idle.py --bin PATH [N]

Starts one etcd (127.0.0.1, free ports, temp dir) and N (default 20) idle
"slotsync run" processes watching /services/ (no HAProxy: the runtime socket
is missing and retried with backoff, which does not touch etcd), first with
etcd.transport json, then grpc. After 5 s it measures for 30 s etcd's CPU
time (/proc) and its own counters (/metrics): Range calls handled and
messages received on Watch streams, per host and second. Prints JSON.
A figure, not a test: nothing here can fail on speed.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("n", nargs="?", type=int, default=20)
args = ap.parse_args()
BIN = os.path.abspath(args.bin)
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def metric(url, name):
    t = urllib.request.urlopen(url + "/metrics").read().decode()
    tot = 0.0
    for line in t.splitlines():
        if line.startswith(name):
            tot += float(line.rsplit(" ", 1)[1])
    return tot
N = args.n
DUR = 30
out = {}
for transport in ("json", "grpc"):
    d = tempfile.mkdtemp(prefix="idle-")
    cp, pp = free(), free()
    url = "http://127.0.0.1:%d" % cp
    e = subprocess.Popen(["etcd", "--name", "e", "--data-dir", d + "/e", "--listen-client-urls", url,
        "--advertise-client-urls", url, "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
        "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
        "--initial-cluster", "e=http://127.0.0.1:%d" % pp, "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):  # bounded: etcd answers /health within 20 s
        try:
            if b"true" in urllib.request.urlopen(url + "/health", timeout=1).read():
                break
        except OSError:
            pass
        time.sleep(0.1)
    procs = []
    for i in range(N):
        cfg = {"etcd": {"endpoints": [url], "prefix": "/services/", "transport": transport},
               "haproxy": {"runtime_socket": d + "/admin%d.sock" % i, "services_file": d + "/s%d.cfg" % i},
               "services": {"web": {"listen": "127.0.0.1:%d" % free(), "slots": 2}}}
        p = d + "/c%d.json" % i
        open(p, "w").write(json.dumps(cfg))
        procs.append(subprocess.Popen([BIN, "run", "-c", p, "--log-level", "error"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(5)
    c0, r0, w0 = cpu(e.pid), metric(url, 'grpc_server_handled_total{grpc_code="OK",grpc_method="Range"'), \
        metric(url, 'grpc_server_msg_received_total{grpc_method="Watch"')
    time.sleep(DUR)
    c1, r1, w1 = cpu(e.pid), metric(url, 'grpc_server_handled_total{grpc_code="OK",grpc_method="Range"'), \
        metric(url, 'grpc_server_msg_received_total{grpc_method="Watch"')
    out[transport] = dict(cpu_ms_per_host_s=(c1 - c0) * 1000 / DUR / N,
                          ranges_per_host_s=(r1 - r0) / DUR / N,
                          watch_msgs_per_host_s=(w1 - w0) / DUR / N)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()
    e.terminate()
    e.wait()
    subprocess.run(["rm", "-rf", d])
print(json.dumps(out, indent=1))
