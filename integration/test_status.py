"""Integration tests of operator inspection: `slotsync status`, the admin
endpoint (/metrics, /healthz, /readyz, /status) and the live page, against
real etcd, real HAProxy and real backends on 127.0.0.1."""

import json
import signal
import subprocess

from harness import *
from test_daemon import PREFIX, Cluster


def status(c, *args, config=True):
    argv = [c.bin, "status"] + (["-c", c.config_path] if config else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def instances(doc, backend="web"):
    for b in doc["backends"]:
        if b["name"] == backend:
            return {s["instance"]: s for s in b["servers"] if s["instance"]}
    raise AssertionError("no backend %s in %s" % (backend, doc))


def test_status_shows_three_endpoints(env, bin_path):
    """3 endpoints: the table lists them with their slots, the JSON has the
    same rows, free slots are summarised, and the exit status is 0."""
    c = Cluster(env, bin_path)
    for name in ("w1", "w2", "w3"):
        c.put(name, name)
    c.wait_live(["w1", "w2", "w3"])
    c.reach(["w1", "w2", "w3"])

    out = wait_for(lambda: (lambda o: o.returncode == 0 and o)(status(c)), timeout=10,
                   what="status exiting 0")
    lines = out.stdout.splitlines()
    assert lines[0] == "backend web: 3 of 4 slots used, 1 free, 3 endpoints in etcd", out.stdout
    assert lines[1].split() == ["SLOT", "INSTANCE", "ADDRESS", "WEIGHT", "ADMIN", "OPER",
                                "CHECK", "CUR", "TOTAL", "DRIFT"], out.stdout
    rows = {ln.split()[1]: ln.split() for ln in lines[2:5]}
    for name in ("w1", "w2", "w3"):
        row = rows[name]
        assert row[2] == "127.0.0.1:%d" % c.backends[name], row
        assert row[4] == "ready" and row[-1] == "-", row
    assert "(1 of 4 slots free, not listed; --all lists them)" in lines, out.stdout
    assert lines[-1].endswith("etcd and HAProxy agree"), out.stdout

    out = status(c, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["in_sync"] is True and doc["drift"] == 0
    got = instances(doc)
    assert set(got) == {"w1", "w2", "w3"}
    for name, row in got.items():
        assert row["address"] == "127.0.0.1:%d" % c.backends[name]
        assert row["admin"] == "ready" and row["slot"].startswith("s")
        assert row["sessions_total"] >= 1, row  # c.reach() sent traffic to each

    out = status(c, "--all")
    assert out.returncode == 0
    assert len([ln for ln in out.stdout.splitlines() if ln.startswith("s")]) == 4, out.stdout

    out = status(c, "--service", "nope")
    assert out.returncode == 2 and "no backend named" in out.stderr, out.stderr


def test_status_exit_2_when_haproxy_or_etcd_is_unreachable(env, bin_path):
    c = Cluster(env, bin_path)
    c.put("w1", "w1")
    c.wait_live(["w1"])
    c.haproxy.stop()
    out = status(c, "--timeout", "3")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.startswith("slotsync status: HAProxy runtime socket"), out.stderr

    c.haproxy = env.start_haproxy(c.services_file)
    env.etcd.stop()
    out = status(c, "--timeout", "2")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "slotsync status: etcd: no complete listing within 2 s (retried with backoff); " \
        "last error: " in out.stderr, out.stderr


def test_status_reports_a_hand_made_maint_and_the_daemon_repairs_it(env, bin_path):
    """An operator puts a slot into maint through the socket: status shows the
    drift and exits 1; the daemon's next resync repairs it; status exits 0."""
    c = Cluster(env, bin_path, extra={"resync_interval_s": 2})
    for name in ("w1", "w2", "w3"):
        c.put(name, name)
    c.wait_live(["w1", "w2", "w3"])
    doc = json.loads(wait_for(lambda: (lambda o: o.returncode == 0 and o)(status(c, "--json")),
                              timeout=10, what="status in sync").stdout)
    slot = instances(doc)["w2"]["slot"]

    # Pause the daemon so the drift stays until we looked at it.
    c.slotsync.send_signal(signal.SIGSTOP)
    assert c.haproxy.cmd("set server web/%s state maint" % slot).strip() == ""
    out = status(c)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    drift_line = [ln for ln in out.stdout.splitlines() if ln.startswith(slot + " ")]
    assert drift_line and drift_line[0].endswith(
        "etcd: 127.0.0.1:%d ready, haproxy: maint" % c.backends["w2"]), out.stdout
    assert "1 DRIFT" in out.stdout.splitlines()[0], out.stdout
    assert out.stdout.splitlines()[-1].endswith("1 drift between etcd and HAProxy"), out.stdout
    doc = json.loads(status(c, "--json").stdout)
    assert doc["in_sync"] is False and doc["drift"] == 1
    assert instances(doc)["w2"]["drift"] == "etcd: 127.0.0.1:%d ready, haproxy: maint" % (
        c.backends["w2"])

    # Running again, the daemon's next periodic resync repairs it.
    c.slotsync.send_signal(signal.SIGCONT)
    env.wait_log("slotsync", r"drift repaired: web/%s " % slot, timeout=15, alive=[c.slotsync])
    wait_for(lambda: status(c).returncode == 0, timeout=15, what="status back in sync",
             alive=[c.slotsync])
    c.wait_live(["w1", "w2", "w3"])


def admin_cluster(env, bin_path, **kw):
    port = free_port()
    extra = dict(kw.pop("extra", {}), admin={"listen": "127.0.0.1:%d" % port})
    c = Cluster(env, bin_path, extra=extra, **kw)
    c.admin_url = "http://127.0.0.1:%d" % port
    return c


def metrics(c):
    """{sample name with labels: float} of /metrics."""
    status_code, body = http_get(c.admin_url + "/metrics")
    assert status_code == 200, (status_code, body)
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_admin_endpoint_metrics_move_and_status_matches(env, bin_path):
    """/healthz, /readyz, /metrics counters moving when events arrive, /status
    listing the endpoints, and `status --admin` reading it."""
    c = admin_cluster(env, bin_path)
    assert http_get(c.admin_url + "/healthz") == (200, "ok\n")
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 200, what="/readyz 200")
    before = metrics(c)
    assert before["slotsync_haproxy_up"] == 1 and before["slotsync_ready"] == 1
    assert before['slotsync_slots_total{backend="web"}'] == 4
    assert before['slotsync_slots_used{backend="web"}'] == 0
    assert before["slotsync_etcd_watch_starts_total"] >= 1

    for name in ("w1", "w2", "w3"):
        c.put(name, name)
    c.wait_live(["w1", "w2", "w3"])
    c.put("bad", value="not an address")

    def moved():
        m = metrics(c)
        return (m["slotsync_etcd_events_total"] >= before["slotsync_etcd_events_total"] + 4 and
                m["slotsync_event_to_applied_seconds_count"] >= 3 and m)
    after = wait_for(moved, what="event counters moving")
    assert after["slotsync_runtime_commands_total"] > before["slotsync_runtime_commands_total"]
    assert after["slotsync_runtime_batches_total"] > before["slotsync_runtime_batches_total"]
    assert after["slotsync_batch_duration_seconds_count"] >= 1
    assert after["slotsync_etcd_revision"] > before["slotsync_etcd_revision"]
    assert after['slotsync_values_rejected_total{reason="value"}'] == 1
    assert after['slotsync_slots_used{backend="web"}'] == 3
    assert after['slotsync_event_to_applied_seconds_bucket{le="+Inf"}'] == \
        after["slotsync_event_to_applied_seconds_count"]

    status_code, body = http_get(c.admin_url + "/status")
    assert status_code == 200, body
    doc = json.loads(body)
    assert set(instances(doc)) == {"w1", "w2", "w3"} and doc["in_sync"] is True
    assert doc["ready"] is True
    recent = [r["instance"] for r in doc["recent"]]
    assert {"w1", "w2", "w3"} <= set(recent), doc["recent"]
    assert all(r["latency_ms"] is None or r["latency_ms"] >= 0 for r in doc["recent"])
    assert "http://" not in body  # no etcd URL (nor anything else of the config's) is shown

    out = status(c, "--admin", c.admin_url[len("http://"):], config=False)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert out.stdout.splitlines()[0] == "backend web: 3 of 4 slots used, 1 free, " \
        "3 endpoints in etcd", out.stdout
    assert http_get(c.admin_url + "/nope")[0] == 404
    assert http_request(c.admin_url + "/metrics", method="POST", body=b"x").status == 405


def test_readyz_follows_the_first_sync_and_haproxy(env, bin_path):
    """/readyz: 503 before the first sync, 200 after it, 503 while HAProxy is
    stopped, 200 again once it is back."""
    c = admin_cluster(env, bin_path, start=False)
    c.put("a", "w1")
    c.render()
    c.slotsync = env.start_slotsync(bin_path, c.config_path)
    env.wait_log("slotsync", r"admin endpoint on", alive=[c.slotsync])
    env.wait_log("slotsync", r"runtime socket .*retrying", alive=[c.slotsync])
    code, body = http_get(c.admin_url + "/readyz")
    assert code == 503 and body.startswith("not ready: "), (code, body)
    assert http_get(c.admin_url + "/healthz")[0] == 200
    assert metrics(c)["slotsync_ready"] == 0

    c.haproxy = env.start_haproxy(c.services_file)
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 200, timeout=15,
             what="/readyz 200 after the first sync", alive=[c.slotsync])
    c.wait_live(["w1"])

    c.haproxy.stop()
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 503, timeout=15,
             what="/readyz 503 with HAProxy stopped", alive=[c.slotsync])
    assert metrics(c)["slotsync_haproxy_up"] == 0
    code, body = http_get(c.admin_url + "/status")
    assert code == 503 and "error" in json.loads(body), (code, body)

    c.haproxy = env.start_haproxy(c.services_file)
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 200, timeout=15,
             what="/readyz 200 with HAProxy back", alive=[c.slotsync])


def rendered(env, url, needle, tries=4):
    """Chromium's DOM of url once it holds needle (at most tries dumps)."""
    for _ in range(tries):
        dom = chromium(env, url)
        if needle in dom:
            break
    return dom


def test_live_page_in_headless_chromium(env, bin_path):
    """The admin endpoint's / page, rendered by a real browser, lists the
    instances of each backend, summarises free slots and highlights drift."""
    c = admin_cluster(env, bin_path)
    for name in ("w1", "w2", "w3"):
        c.put(name, name)
    c.wait_live(["w1", "w2", "w3"])
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 200, what="/readyz 200")
    status_code, page = http_get(c.admin_url + "/")
    assert status_code == 200 and "<script" in page
    # Self-contained: nothing is loaded from anywhere else.
    for needle in ("src=", "href=", "@import", "url("):
        assert needle not in page, needle

    # The page renders what its first fetch of /status returns; a dump taken
    # while that fetch is still out (a loaded machine) shows the empty page,
    # so the dump is taken again, a bounded number of times.
    dom = rendered(env, c.admin_url + "/", 'data-instance="w3"')
    for name in ("w1", "w2", "w3"):
        assert 'data-instance="%s"' % name in dom, dom[-2000:]
        assert "127.0.0.1:%d" % c.backends[name] in dom
    assert 'id="sync" class="pill ok"' in dom and ">in sync<" in dom, dom[:3000]
    assert "1 of 4 slots free" in dom
    assert 'id="error" role="alert"></span>' in dom  # the fetch worked

    # A drift (the daemon paused so that it stays) is highlighted.
    doc = json.loads(http_get(c.admin_url + "/status")[1])
    slot = instances(doc)["w3"]["slot"]
    c.slotsync.send_signal(signal.SIGSTOP)
    try:
        c.haproxy.cmd("set server web/%s state maint" % slot)
        out = status(c)
        assert out.returncode == 1, out.stdout
    finally:
        c.slotsync.send_signal(signal.SIGCONT)
    # (resync_interval_s is 30: the daemon leaves the drift alone meanwhile)
    dom = rendered(env, c.admin_url + "/", 'class="drift"')
    assert '<tr class="drift" data-instance="w3">' in dom, (
        dom[dom.find("<body"):][:3000], http_get(c.admin_url + "/status")[1][:2000])
    assert 'id="sync" class="pill bad"' in dom


def test_base_config_serves_stats_page_and_prometheus_exporter(env, bin_path):
    """The shipped haproxy.cfg: the stats page at / and HAProxy's Prometheus
    exporter at /metrics on the (loopback) stats listener, slots included."""
    c = Cluster(env, bin_path)
    c.put("w1", "w1")
    c.wait_live(["w1"])
    code, page = http_get(c.haproxy.stats_url)
    assert code == 200 and "Statistics Report" in page and ">web<" in page
    code, body = http_get(c.haproxy.stats_url + "metrics")
    assert code == 200, code
    assert 'haproxy_server_status{proxy="web",server="s1"' in body, body[:500]
    assert 'haproxy_server_status{proxy="web",server="s4"' in body


def test_a_backend_nothing_routes_to_is_warned_and_marked(env, bin_path):
    """issue 19 item 5: without http_frontend, a service from etcd gets a
    backend (one reload) that no frontend reaches: one warning naming it,
    and status, /status and /metrics mark it as not routed; web (with its
    listen) stays routed."""
    c = admin_cluster(env, bin_path)
    etcd_put(c.etcd, PREFIX + "api/x", "127.0.0.1:%d" % c.backends["w2"])
    env.wait_log("slotsync", r"warn  sync: backend api: nothing routes to it \(no "
                 r"services\.api\.listen, and no http_frontend bind and domain for it\)",
                 alive=[c.slotsync])
    wait_for(lambda: metrics(c).get('slotsync_backend_routed{backend="api"}') == 0.0,
             timeout=15, what="api not routed in /metrics", alive=[c.slotsync])
    m = metrics(c)
    assert m.get('slotsync_backend_routed{backend="web"}') == 1.0, m
    code, body = http_get(c.admin_url + "/status")
    assert code == 200, body
    doc = json.loads(body)
    routed = {b["name"]: b.get("routed") for b in doc["backends"]}
    assert routed.get("api") is False and routed.get("web") is True, routed
    out = status(c)
    assert "backend api: " in out.stdout and "NOT ROUTED" in out.stdout, out.stdout
    assert "backend web: " in out.stdout, out.stdout
    web = [l for l in out.stdout.splitlines() if l.startswith("backend web: ")]
    assert web and "NOT ROUTED" not in web[0], out.stdout
    text = env.log_text("slotsync")
    assert text.count("backend api: nothing routes to it") == 1, text
    # the live page, in a real browser: api's heading says so, web's does not
    dom = rendered(env, c.admin_url + "/", 'data-unrouted="1"')
    start = dom.find('data-backend="api"')
    assert start >= 0 and 'data-unrouted="1"' in dom[start:start + 2000], dom[-3000:]
    assert dom.count('data-unrouted="1"') == 1, dom[-3000:]


def test_last_reload_after_a_restart_is_read_from_haproxy(env, bin_path):
    """issue 19 item 4: HAProxy reloaded twice before slotsync (re)starts:
    /status's last_reload comes from the master's "show proc" (its reloads,
    the current worker's age), not "none"; the live page shows it."""
    c = admin_cluster(env, bin_path)
    env.stop(c.slotsync)
    for n in (1, 2):
        c.haproxy.master_cmd("reload")
        wait_for(lambda: c.haproxy.reloads()[0] == n, timeout=15, what="HAProxy reload %d" % n)
    c.start_slotsync()
    env.wait_log("slotsync", r"HAProxy has been reloaded 2 times \(0 failed\) since it started",
                 alive=[c.slotsync])
    wait_for(lambda: http_get(c.admin_url + "/status")[0] == 200, timeout=15,
             what="/status 200", alive=[c.slotsync])
    doc = json.loads(http_get(c.admin_url + "/status")[1])
    r = doc["last_reload"]
    assert r["source"] == "haproxy" and r["haproxy_reloads"] == 2, r
    assert r["ago_s"] is not None and 0 <= r["ago_s"] < 120, r
    assert r["reloads"] == 0, r  # slotsync's own: none yet
    dom = rendered(env, c.admin_url + "/", "before slotsync started")
    assert "(HAProxy's, before slotsync started)" in dom, dom[-3000:]
