"""Integration tests of the caps on what etcd can create (issue 20, item 5):
max_services and max_endpoints_per_service against real etcd and real
HAProxy 2.6 with the HTTP frontend's spare backends (no reload needed)."""

import re

from harness import *
from test_daemon import PREFIX
from test_reload import DOMAIN, by_host, http_cluster, reach_host
from test_status import metrics


def put_svc(c, service, instance, backend):
    return etcd_put(c.etcd, PREFIX + "%s/%s" % (service, instance),
                    "127.0.0.1:%d" % c.backends[backend])


def count(c, pattern):
    return len(re.findall(pattern, c.env.log_text("slotsync")))


def test_caps_refuse_once_count_and_take_on_when_room_frees(env, bin_path):
    """max_services 2 (the configured web is not counted): a third etcd
    service is refused with one warning, whatever more comes for it, counted
    on /metrics, and not routed; when another service leaves it is taken on
    and routed. max_endpoints_per_service 2: a third endpoint is refused
    the same way and taken on when one of the two leaves."""
    port = free_port()
    c = http_cluster(env, bin_path, spares=4, min_reload_ms=600000,
                     extra={"admin": {"listen": "127.0.0.1:%d" % port},
                            "max_services": 2, "max_endpoints_per_service": 2})
    c.admin_url = "http://127.0.0.1:%d" % port
    c.put("a", "w1")  # web, configured: not counted
    c.reach(["w1"])
    put_svc(c, "alpha", "i1", "w1")
    put_svc(c, "beta", "i1", "w2")
    reach_host(c, "alpha", ["w1"])
    reach_host(c, "beta", ["w2"])

    put_svc(c, "gamma", "i1", "w3")
    refused = r'etcd service "gamma" \(keys /services/gamma/\.\.\.\) refused: max_services \(2\)'
    env.wait_log("slotsync", refused, alive=[c.slotsync])
    # more of it: another key, an update, and a marker change after them
    put_svc(c, "gamma", "i2", "w2")
    put_svc(c, "gamma", "i1", "w1")
    put_svc(c, "beta", "i2", "w3")
    reach_host(c, "beta", ["w2", "w3"])
    m = metrics(c)
    assert m['slotsync_capped_total{limit="max_services"}'] == 1, m
    assert m['slotsync_capped{limit="max_services"}'] == 1, m
    assert set(by_host(c, "gamma", 2)) == {"<503>"}
    assert count(c, refused) == 1, env.log_tail("slotsync")

    # alpha leaves: gamma takes its place, with what etcd has for it now
    etcd_delete(c.etcd, PREFIX + "alpha/i1")
    env.wait_log("slotsync", r'etcd service "gamma" taken on', alive=[c.slotsync])
    reach_host(c, "gamma", ["w1", "w2"])
    m = metrics(c)
    assert m['slotsync_capped{limit="max_services"}'] == 0, m
    # alpha is a new arrival now: refused in turn
    put_svc(c, "alpha", "i1", "w1")
    env.wait_log("slotsync", r'etcd service "alpha" \(keys /services/alpha/\.\.\.\) refused',
                 alive=[c.slotsync])

    # a third endpoint of beta
    put_svc(c, "beta", "i3", "w1")
    key_refused = (r'etcd key "/services/beta/i3" refused: service beta has '
                   r'max_endpoints_per_service \(2\) endpoints')
    env.wait_log("slotsync", key_refused, alive=[c.slotsync])
    put_svc(c, "beta", "i3", "w1")  # again: no second warning
    put_svc(c, "web", "b", "w2")    # a marker after it
    c.reach(["w1", "w2"])
    m = metrics(c)
    assert m['slotsync_capped_total{limit="max_endpoints_per_service"}'] == 1, m
    assert m['slotsync_capped{limit="max_endpoints_per_service"}'] == 1, m
    assert count(c, key_refused) == 1, env.log_tail("slotsync")
    assert set(by_host(c, "beta", 6)) == {"w2", "w3"}
    etcd_delete(c.etcd, PREFIX + "beta/i1")
    env.wait_log("slotsync", r"etcd key /services/beta/i3 taken on", alive=[c.slotsync])
    reach_host(c, "beta", ["w1", "w3"])
    m = metrics(c)
    assert m['slotsync_capped{limit="max_endpoints_per_service"}'] == 0, m
    # nothing refused ever reached HAProxy as a backend of its own
    assert c.haproxy.reloads() == (0, 0)
