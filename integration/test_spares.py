"""Integration tests of the spare backends (issue 12): new HTTP services
bound to spares at run time, routed by the Host map, with no reload; the
refill render; slotsync and HAProxy restarts. Real etcd, real HAProxy 2.6.
(spare_backends: 0, one reload per new service, is test_reload.py's
http_cluster default: test_new_service_one_reload_then_routable.)"""

import os
import re
import signal
import subprocess

from harness import *
from test_daemon import PREFIX
from test_reload import DOMAIN, http_cluster, by_host

TIMEOUT = 150


def put_svc(c, service, instance, backend, weight=None, state=None):
    port = c.backends[backend]
    if weight is None and state is None:
        value = "127.0.0.1:%d" % port
    else:
        value = '{"host":"127.0.0.1","port":%d%s%s}' % (
            port, ',"weight":%d' % weight if weight is not None else "",
            ',"state":"%s"' % state if state else "")
    return etcd_put(c.etcd, PREFIX + "%s/%s" % (service, instance), value)


def routes(c):
    """{host: backend} of HAProxy's live Host map."""
    out = {}
    for line in c.haproxy.cmd("show map " + c.services_file + ".map").splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def routed(c, services, names):
    """Every service answers by Host from exactly the backends names."""
    names = set(names)
    return all(set(by_host(c, s, 2 * len(names))) == names for s in services)


def wait_routed(c, services, names, timeout=15, what=None):
    return wait_for(lambda: routed(c, services, names), timeout=timeout,
                    what=what or "%d services routed by Host to %s" % (len(services),
                                                                       sorted(names)),
                    alive=[c.slotsync])


def spare_rows(c, spare):
    """{slot: (addr, port, admin state, weight)} of a spare's servers."""
    out = {}
    for r in c.haproxy.servers_state(spare):
        admin = int(r["srv_admin_state"])
        state = "maint" if admin & 0x23 else "drain" if admin & 0x18 else "ready"
        out[r["srv_name"]] = (r["srv_addr"], int(r["srv_port"]), state, int(r["srv_uweight"]))
    return out


def test_burst_restarts_and_changes_with_no_reload(env, bin_path):
    """24 spares, 20 new services at once: all routable by Host, zero reloads.
    A second endpoint takes traffic, weight and state reach the spare's slot.
    slotsync restarted: routes intact, nothing re-sent, changes flow. HAProxy
    restarted underneath: every route back. Still no reload (the refill is
    min_reload_interval_ms away, ten minutes here)."""
    c = http_cluster(env, bin_path, spares=24, min_reload_ms=600000)
    c.put("a", "w1")
    c.reach(["w1"])
    services = ["p%02d" % i for i in range(20)]
    for s in services:
        put_svc(c, s, "i1", "w1")
    wait_routed(c, services, ["w1"], timeout=10)
    assert c.haproxy.reloads() == (0, 0)
    live = routes(c)
    spares = {s: live["%s.%s" % (s, DOMAIN)] for s in services}
    assert all(re.fullmatch(r"spare:\d+", p) for p in spares.values()), spares
    assert len(set(spares.values())) == 20
    # the operator's view names the service with its spare
    env.wait_log("slotsync", r"p00 \(spare:\d+\)/s1", alive=[c.slotsync])
    st = subprocess.run([c.bin, "status", "-c", c.config_path], capture_output=True, text=True,
                        timeout=30)
    assert "backend p00 (%s): 1 of 4 slots used" % spares["p00"] in st.stdout, st.stdout
    assert not re.search(r", \d+ DRIFT", st.stdout), st.stdout

    # a second endpoint takes traffic; a weight and a state reach the slot
    put_svc(c, "p00", "i2", "w2")
    wait_routed(c, ["p00"], ["w1", "w2"])
    put_svc(c, "p00", "i2", "w2", weight=7)
    wait_for(lambda: any(r[1] == c.backends["w2"] and r[3] == 7
                         for r in spare_rows(c, spares["p00"]).values()),
             what="weight 7 in the spare's slot", alive=[c.slotsync])
    put_svc(c, "p00", "i2", "w2", state="drain")
    wait_for(lambda: any(r[1] == c.backends["w2"] and r[2] == "drain"
                         for r in spare_rows(c, spares["p00"]).values()),
             what="drain in the spare's slot", alive=[c.slotsync])
    wait_routed(c, ["p00"], ["w1"])

    # slotsync restarted: it adopts the bindings and sends nothing
    before = {s: spare_rows(c, p) for s, p in spares.items()}
    env.stop(c.slotsync)
    c.start_slotsync(name="slotsync2")
    # Ready comes once the listing's batch (if any) is answered: anything a
    # wrong implementation sends is in the log before this line.
    env.wait_log("slotsync2", r"ready: first etcd listing applied", alive=[c.slotsync])
    log2 = env.log_text("slotsync2")
    assert "batch command" not in log2, log2
    assert "reload is needed" not in log2, log2
    assert routes(c) == live
    assert {s: spare_rows(c, p) for s, p in spares.items()} == before
    assert routed(c, services[1:], ["w1"])
    # changes keep flowing, into the same spare
    put_svc(c, "p01", "i2", "w3")
    wait_routed(c, ["p01"], ["w1", "w3"])
    assert routes(c) == live
    assert c.haproxy.reloads() == (0, 0)

    # HAProxy restarted underneath, on the services file and map on disk
    c.haproxy.stop(signal.SIGKILL)
    c.haproxy = env.start_haproxy(c.services_file)
    wait_routed(c, services[2:], ["w1"], timeout=15, what="every route back after a restart")
    wait_routed(c, ["p01"], ["w1", "w3"])
    assert routes(c) == live
    assert c.haproxy.reloads() == (0, 0)


def test_pool_exhaustion_refills_with_at_most_two_reloads(env, bin_path):
    """4 spares, 12 new services: all routable, at most 2 reloads; the
    services bound before the refill keep their routes (now to backends of
    their own) and their slots; the pool is fresh after it."""
    c = http_cluster(env, bin_path, spares=4, min_reload_ms=500)
    c.put("a", "w1")
    c.reach(["w1"])
    first = ["q%02d" % i for i in range(4)]
    for s in first:
        put_svc(c, s, "i1", "w2")
    wait_routed(c, first, ["w2"])
    rest = ["q%02d" % i for i in range(4, 12)]
    for s in rest:
        put_svc(c, s, "i1", "w3")
    wait_routed(c, rest, ["w3"], timeout=20)
    assert routed(c, first, ["w2"])
    wait_for(lambda: all(not p.startswith("spare:") for p in routes(c).values()),
             timeout=20, what="every service in its own backend after the refill",
             alive=[c.slotsync])
    reloads = c.haproxy.reloads()
    assert 1 <= reloads[0] <= 2 and reloads[1] == 0, reloads
    for s in first:
        rows = c.haproxy.servers_state(s)
        assert any(int(r["srv_port"]) == c.backends["w2"] for r in rows), (s, rows)
    # the fresh pool binds the next service with no reload
    env.wait_log("slotsync", r"HAProxy reloaded in .* \(reload %d\)" % reloads[0],
                 alive=[c.slotsync])
    put_svc(c, "late", "i1", "w1")
    wait_routed(c, ["late"], ["w1"])
    assert routes(c)["late.%s" % DOMAIN].startswith("spare:")
    assert c.haproxy.reloads() == reloads


def test_idle_spares_do_not_fire_the_shipped_backend_down_alert(env, bin_path):
    """issue 19 item 2: HAProxy's own exporter says haproxy_backend_status
    {state="DOWN"} 1 for every idle spare (its servers are all in
    maintenance), so a plain "backend down" rule fires for each. The
    shipped rule (docs/deploy/prometheus) is run by promtool on this real
    scrape: it fires for the backend whose server fails its checks, and for
    nothing else."""
    import shutil
    import tempfile
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed: integration/deps.sh"
    c = http_cluster(env, bin_path, spares=3)
    c.put("a", "w1")
    c.reach(["w1"])
    # a service bound to a spare, its endpoint refusing connections
    dead = free_port()
    etcd_put(c.etcd, PREFIX + "gone/x", "127.0.0.1:%d" % dead)
    wait_for(lambda: "gone." + DOMAIN in routes(c), timeout=15, what="gone bound to a spare",
             alive=[c.slotsync])
    bound = routes(c)["gone." + DOMAIN]

    def scrape():
        return http_get(c.haproxy.stats_url + "metrics", timeout=5)[1]

    def status(text, proxy, server=None):
        pat = (r'haproxy_server_status\{proxy="%s",server="%s",state="(\w+)"\} 1' % (
            re.escape(proxy), server) if server else
            r'haproxy_backend_status\{proxy="%s",state="(\w+)"\} 1' % re.escape(proxy))
        m = re.search(pat, text)
        return m.group(1) if m else None

    wait_for(lambda: status(scrape(), bound, "s1") == "DOWN", timeout=20,
             what="%s/s1 DOWN by its check" % bound, alive=[c.slotsync])
    text = scrape()
    idle = [p for p in ("spare:%d" % i for i in range(3)) if p != bound]
    assert idle, routes(c)
    for p in idle:
        # the premise: HAProxy calls the idle spare DOWN
        assert status(text, p) == "DOWN", (p, text[:2000])
    series = []
    for line in text.splitlines():
        m = re.match(r'(haproxy_(?:backend|server)_status)\{([^}]*)\} (\d+)$', line)
        if m:
            series.append("      - series: '%s{job=\"haproxy\",instance=\"h\",%s}'\n"
                          "        values: '%sx10'\n" % (m.group(1), m.group(2), m.group(3)))
    rules = os.path.join(REPO, "docs", "deploy", "prometheus", "slotsync-rules.yml")
    test = ("rule_files:\n  - %s\nevaluation_interval: 30s\ntests:\n  - interval: 30s\n"
            "    input_series:\n%s"
            "    alert_rule_test:\n"
            "      - eval_time: 3m\n        alertname: HAProxyBackendDown\n"
            "        exp_alerts:\n"
            "          - exp_labels: {severity: critical, job: haproxy, instance: h, "
            "proxy: '%s', state: DOWN}\n"
            "            exp_annotations: {summary: 'HAProxy backend %s on h has no server up'}\n"
            % (rules, "".join(series), bound, bound))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=env.tmp, delete=False) as f:
        f.write(test)
    out = subprocess.run([promtool, "test", "rules", f.name], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, (out.stdout, out.stderr)
