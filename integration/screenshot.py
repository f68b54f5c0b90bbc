#!/usr/bin/python3
"""screenshot - the admin endpoint's live page, as README shows it.

    screenshot.py --bin PATH [--out docs/status-page.png] [--status-out FILE]

Starts etcd, HAProxy, five whoami backends and `slotsync run` with its admin
endpoint on 127.0.0.1 (as the integration tests do), registers the backends
in two services, sends some traffic, puts one slot into maint by hand (a
drift the daemon repairs at its next resync, 30 s later), then loads the
page in headless Chromium and saves a screenshot. --status-out also writes
`slotsync status`'s table of the same moment (README's sample).
"""

import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Env, chromium, etcd_put, free_port, http_get, traffic,  # noqa: E402
                     wait_for)
from test_daemon import Cluster  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the slotsync binary")
    ap.add_argument("--out", default="docs/status-page.png")
    ap.add_argument("--status-out", default=None)
    args = ap.parse_args()
    with Env("screenshot") as env:
        port, web_port = free_port(), free_port()
        c = Cluster(env, os.path.abspath(args.bin), slots=6, backends=5,
                    extra={"admin": {"listen": "127.0.0.1:%d" % port},
                           "http_frontend": {"bind": "127.0.0.1:%d" % free_port(),
                                             "domain": "demo.local", "spare_backends": 2},
                           "services": {"web": {"listen": "127.0.0.1:%d" % web_port},
                                        "api": {"listen": "127.0.0.1:%d" % free_port(),
                                                "slots": 4}}})
        admin = "http://127.0.0.1:%d" % port
        c.url = "http://127.0.0.1:%d/" % web_port
        for name, inst in (("w1", "web-7f9c2"), ("w2", "web-a41d0"), ("w3", "web-c3e88")):
            c.put(inst, name)
        etcd_put(c.etcd, "/services/api/api-1", "127.0.0.1:%d" % c.backends["w4"])
        etcd_put(c.etcd, "/services/api/api-2",
                 '{"host":"127.0.0.1","port":%d,"weight":5,"state":"drain"}' % c.backends["w5"])
        wait_for(lambda: http_get(admin + "/readyz")[0] == 200, timeout=20, what="ready")
        wait_for(lambda: len(c.live()) == 3, timeout=20, what="web's 3 slots ready")
        wait_for(lambda: sum(r["check_status"] == "L4OK" for r in c.haproxy.stats()) == 5,
                 timeout=20, what="health checks passing")
        traffic(c.url, 30)
        doc = wait_for(lambda: (lambda d: d if d.get("backends") else None)(
            __import__("json").loads(http_get(admin + "/status")[1])), what="/status")
        slot = [s["slot"] for b in doc["backends"] if b["name"] == "web"
                for s in b["servers"] if s["instance"] == "web-c3e88"][0]
        c.slotsync.send_signal(signal.SIGSTOP)
        c.haproxy.cmd("set server web/%s state maint" % slot)
        if args.status_out:
            out = subprocess.run([c.bin, "status", "-c", c.config_path], capture_output=True,
                                 text=True, timeout=30)
            with open(args.status_out, "w") as f:
                f.write("$ slotsync status -c slotsync.json\n" + out.stdout +
                        "$ echo $?\n%d\n" % out.returncode)
        c.slotsync.send_signal(signal.SIGCONT)
        chromium(env, admin + "/", dump_dom=False, screenshot=os.path.abspath(args.out),
                 size=(1280, 860))
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
