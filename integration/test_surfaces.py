"""Integration tests of what every surface says about etcd's connection, the
version, the spare pool and the routes (issue 19, items 1 and 6): /metrics,
/readyz, /status, `slotsync status --admin`, SIGUSR1 and the live page in
headless Chromium, against real etcd, HAProxy and backends on 127.0.0.1."""

import json
import re
import signal
import subprocess

from harness import *
from test_daemon import PREFIX
from test_status import admin_cluster, metrics, rendered, status


def status_doc(c):
    code, body = http_get(c.admin_url + "/status")
    assert code == 200, (code, body)
    return json.loads(body)


def test_etcd_down_is_on_every_surface(env, bin_path):
    """etcd stopped under a running daemon: /readyz stays 200 and says the
    last known state is served, /metrics has slotsync_etcd_up 0 and the
    last contact's age, /status's etcd object says since when and why,
    `status --admin` exits 3 saying so, SIGUSR1 dumps it, the live page's
    badge says it (in Chromium); etcd back: all of it goes back."""
    c = admin_cluster(env, bin_path)
    etcd_port = int(c.etcd.rsplit(":", 1)[1])
    c.put("w1", "w1")
    c.wait_live(["w1"])
    wait_for(lambda: http_get(c.admin_url + "/readyz") == (200, "ready\n"), what="/readyz ready",
             alive=[c.slotsync])
    m = wait_for(lambda: (lambda m: m["slotsync_etcd_up"] == 1 and m)(metrics(c)),
                 what="etcd up in /metrics")
    assert 0 <= m["slotsync_etcd_last_contact_seconds"] < 30, m
    e = status_doc(c)["etcd"]
    assert e["connected"] is True and e["endpoint"] == "127.0.0.1:%d" % etcd_port, e
    assert e["note"] is None and e["listed"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["since"]), e
    revision = e["revision"]
    assert revision > 0
    out = status(c, "--admin", c.admin_url[len("http://"):], config=False)
    assert out.returncode == 0, (out.stdout, out.stderr)

    env.etcd.stop()
    m = wait_for(lambda: (lambda m: m["slotsync_etcd_up"] == 0 and m)(metrics(c)), timeout=20,
                 what="etcd down in /metrics", alive=[c.slotsync])
    assert m["slotsync_etcd_last_contact_seconds"] >= 0, m
    assert m["slotsync_ready"] == 1, m  # the sidecar keeps serving the last known state
    code, body = http_get(c.admin_url + "/readyz")
    assert code == 200, (code, body)
    assert re.fullmatch(r"ready: etcd unreachable for \d+ s: serving the last known state "
                        r"\(revision %d\)\n" % revision, body), body
    # (/status is built at most once a second: the last one may predate it)
    doc = wait_for(lambda: (lambda d: d["etcd"]["connected"] is False and d)(status_doc(c)),
                   what="etcd down in /status", alive=[c.slotsync])
    e = doc["etcd"]
    assert e["connected"] is False and e["revision"] == revision, e
    assert e["last_error"] and e["since_s"] >= 0 and e["last_contact_s"] >= 0, e
    assert e["note"].startswith("etcd unreachable for "), e
    assert doc["ready"] is True

    out = status(c, "--admin", c.admin_url[len("http://"):], config=False)
    assert out.returncode == 3, (out.returncode, out.stdout, out.stderr)
    last = out.stdout.splitlines()
    assert last[-2] == "etcd revision %d: HAProxy matches the last known etcd state" % revision, \
        out.stdout
    assert re.match(r"etcd unreachable for \d+ s: serving the last known state \(revision %d\); "
                    r"last error: " % revision, last[-1]), out.stdout

    since = len(env.log_text("slotsync"))
    c.slotsync.send_signal(signal.SIGUSR1)
    env.wait_log("slotsync", r"state dump: etcd unreachable \(127\.0\.0\.1:%d\) for [0-9.]+ s, "
                 r"last answer [0-9.]+ s ago, last error: .*; serving the last known state "
                 r"\(revision %d\)" % (etcd_port, revision), since=since, alive=[c.slotsync])

    dom = rendered(env, c.admin_url + "/", 'data-etcd="down"')
    badge = re.search(r'<span id="sync"[^>]*>([^<]*)</span>', dom)
    assert badge, dom[:3000]
    assert 'class="pill bad"' in badge.group(0) and 'data-etcd="down"' in badge.group(0), \
        badge.group(0)
    assert re.fullmatch(r"etcd unreachable for \d+ s: serving the last known state "
                        r"\(revision %d\)" % revision, badge.group(1)), badge.group(1)
    assert "not answering" in dom, dom[:3000]

    env.etcd.start()
    wait_for(lambda: metrics(c)["slotsync_etcd_up"] == 1, timeout=30, what="etcd up again",
             alive=[c.slotsync])
    assert http_get(c.admin_url + "/readyz") == (200, "ready\n")
    wait_for(lambda: status(c, "--admin", c.admin_url[len("http://"):],
                            config=False).returncode == 0, what="status --admin exiting 0",
             alive=[c.slotsync])
    dom = rendered(env, c.admin_url + "/", 'data-etcd="up"')
    assert re.search(r'<span id="sync" class="pill ok"[^>]*>in sync</span>', dom), dom[:3000]


def test_version_spares_and_routes_on_metrics_status_and_page(env, bin_path):
    """slotsync_build_info and the version on /status and the page; the
    spare pool as gauges and on the page; the routes (Host -> backend) and
    each backend's listen address on /status and the page; the page's
    times in UTC RFC 3339."""
    web_port = free_port()
    c = admin_cluster(env, bin_path, web={"hosts": ["www.example.test"]},
                      extra={"http_frontend": {"bind": "127.0.0.1:%d" % free_port(),
                                               "domain": "demo.test", "spare_backends": 2}})
    c.put("w1", "w1")
    c.wait_live(["w1"])
    # a service no config names: bound to a spare
    etcd_put(c.etcd, PREFIX + "shop/s1", "127.0.0.1:%d" % c.backends["w2"])
    doc = wait_for(lambda: (lambda d: d if any(r["host"] == "shop.demo.test" and
                                               r["backend"].startswith("shop (spare:")
                                               for r in d.get("routes", [])) else None)(
        status_doc(c)), timeout=20, what="shop routed to a spare", alive=[c.slotsync])
    version = subprocess.run([bin_path, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()[-1]
    assert doc["version"] == version
    assert doc["spares"] == {"total": 2, "free": 1}, doc["spares"]
    hosts = {r["host"]: r["backend"] for r in doc["routes"]}
    assert hosts["web.demo.test"] == "web" and hosts["www.example.test"] == "web", hosts
    web = [b for b in doc["backends"] if b["name"] == "web"][0]
    assert web["listen"] == "127.0.0.1:%d" % c.listen_port, web
    m = metrics(c)
    assert m['slotsync_build_info{version="%s"}' % version] == 1, m
    assert m["slotsync_spare_backends"] == 2 and m["slotsync_spare_backends_free"] == 1, m

    dom = rendered(env, c.admin_url + "/", 'data-host="shop.demo.test"')
    assert '<span id="version" class="muted">%s</span>' % version in dom, dom[:2000]
    assert '<b id="spares">1 of 2 free</b>' in dom, dom[:3000]
    assert re.search(r'<tr data-host="www\.example\.test"><td class="mono">www\.example\.test'
                     r'</td><td class="mono">web</td></tr>', dom), dom[dom.find("routes"):][:2000]
    assert "listens on 127.0.0.1:%d" % c.listen_port in dom
    # times as the log writes them: UTC RFC 3339, never "8:45:38 PM"
    updated = re.search(r'<span id="updated">([^<]*)</span>', dom).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", updated), updated
    at = re.search(r'<table id="recent">.*?<tbody><tr[^>]*><td>([^<]*)</td>', dom, re.S)
    assert at and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", at.group(1)), \
        dom[dom.find('id="recent"'):][:1500]
    assert not re.search(r"\d:\d\d:\d\d [AP]M", dom)
