"""Integration tests of backends created at run time (issue 21, item 3):
on HAProxy 3.4+, a new HTTP service gets a backend of its own with "add
backend ... from slotsync:dynamic", its slots with "add server", and is
routed by Host with no spare and no reload; a service that leaves is
removed with "del backend"; a slotsync restart adopts them, and a reload
or a restart of HAProxy loads them from the services file livefile keeps
current. Real etcd, real HAProxy 3.4; on an older HAPROXY_BIN, the spare
path is checked instead (test_before_34_new_services_use_spares).

HAProxy 3.4 is HAPROXY_BIN when that is 3.4 or later (the compatibility
matrix's (3.4, 3.5) pair), else HAPROXY_34_BIN, else the wrapper `make
test-compat` builds (~/.cache/slotsync/compat/bin/haproxy-3.4); without
one, these tests skip and say so."""

import os
import re
import signal
import subprocess

from harness import *
from test_daemon import PREFIX, Cluster
from test_reload import DOMAIN, by_host, sighup
from test_spares import routes

TIMEOUT = 150
COMPAT_34 = os.path.expanduser("~/.cache/slotsync/compat/bin/haproxy-3.4")


def _version(binary):
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"HAProxy version (\d+)\.(\d+)", out.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else None


def haproxy34():
    """An HAProxy 3.4+ binary, or Skip."""
    for b in (HAPROXY_BIN, os.environ.get("HAPROXY_34_BIN"), COMPAT_34):
        if b and (_version(b) or (0, 0)) >= (3, 4):
            return b
    raise Skip("no HAProxy 3.4+ (HAPROXY_BIN is %s; set HAPROXY_34_BIN, or run "
               "`make test-compat` to build %s)" % (HAPROXY_BIN, COMPAT_34))


def dyn_cluster(env, bin_path, spares=2, min_reload_ms=600000):
    """The HTTP frontend on HAProxy 3.4, the base config declaring
    slotsync:base, a services file that carries slotsync:dynamic."""
    hap = haproxy34()
    http_port = free_port()
    c = Cluster(env, bin_path, start=False)
    # no listen service: these tests are about Host routing (and a frontend
    # named like its backend is issue 21 item 2's, on another branch)
    c.config["services"] = {}
    c.config["haproxy"]["binary"] = hap
    c.config["haproxy"]["min_reload_interval_ms"] = min_reload_ms
    c.config["http_frontend"] = {"bind": "127.0.0.1:%d" % http_port, "domain": DOMAIN,
                                 "spare_backends": spares}
    c.config_path = write_config(env, c.config)
    c.http_url = "http://127.0.0.1:%d/" % http_port
    c.render()
    c.haproxy = env.start_haproxy(c.services_file, binary=hap)
    # slotsync renders the run-time backends' defaults for a base config
    # that declares slotsync:base: the test copy of the shipped one
    c.config["haproxy"]["base_config"] = c.haproxy.base_config
    c.config_path = write_config(env, c.config)
    c.render()
    assert "defaults slotsync:dynamic from slotsync:base" in open(c.services_file).read()
    c.haproxy.reload()
    c.reloads0 = c.haproxy.reloads()
    c.start_slotsync()
    env.wait_log("slotsync", r"HAProxy 3\.\d+\.\d+: new HTTP services get a backend of their "
                 r"own at run time", alive=[c.slotsync])
    return c


def put_svc(c, service, instance, backend):
    return etcd_put(c.etcd, PREFIX + "%s/%s" % (service, instance),
                    "127.0.0.1:%d" % c.backends[backend])


def proxies(c):
    return set(c.haproxy.cmd("show backend").split()[2:])


def routed(c, services, names):
    names = set(names)
    return all(set(by_host(c, s, 2 * len(names))) == names for s in services)


def wait_routed(c, services, names, timeout=20):
    return wait_for(lambda: routed(c, services, names), timeout=timeout,
                    what="%d services routed by Host to %s" % (len(services), sorted(names)),
                    alive=[c.slotsync])


def test_new_services_get_backends_at_run_time(env, bin_path):
    """One new service, then 30 at once (more than the 2 spares): each gets a
    backend of its own at run time, routed by Host, no spare used, no
    reload; the services file and map on disk name them. A service that
    leaves is deleted from HAProxy (route, servers, backend), no reload, and
    comes back when its key does."""
    c = dyn_cluster(env, bin_path)
    put_svc(c, "api", "x", "w1")
    wait_routed(c, ["api"], ["w1"])
    assert c.haproxy.reloads() == c.reloads0
    assert routes(c)["api." + DOMAIN] == "api"
    assert "api" in proxies(c)
    env.wait_log("slotsync", r"service api: backend added at run time with 4 slots",
                 alive=[c.slotsync])
    # a second endpoint, into the run-time backend's next slot
    put_svc(c, "api", "y", "w2")
    wait_routed(c, ["api"], ["w1", "w2"])

    services = ["m%02d" % i for i in range(30)]
    for s in services:
        put_svc(c, s, "i1", "w3")
    wait_routed(c, services, ["w3"], timeout=30)
    assert c.haproxy.reloads() == c.reloads0
    live = routes(c)
    assert all(live["%s.%s" % (s, DOMAIN)] == s for s in services), live
    assert not any(v.startswith("spare:") for v in live.values()), live
    # on disk for a reload or a restart: backends, their defaults, the map
    text = wait_for(lambda: (lambda t: t if all("backend %s\n" % s in t for s in services)
                             else None)(open(c.services_file).read()),
                    what="the services file naming every run-time backend",
                    alive=[c.slotsync])
    assert "defaults slotsync:dynamic from slotsync:base" in text
    with open(c.services_file + ".map") as f:
        assert "m29.%s m29\n" % DOMAIN in f.read()

    # a service leaves: removed at run time, in the order HAProxy requires
    etcd_delete(c.etcd, PREFIX + "m00/i1")
    wait_for(lambda: "m00" not in proxies(c), what="m00's backend deleted",
             alive=[c.slotsync])
    assert "m00." + DOMAIN not in routes(c)
    assert set(by_host(c, "m00", 2)) == {"<503>"}
    env.wait_log("slotsync", r"service m00: backend removed from HAProxy at run time",
                 alive=[c.slotsync])
    wait_for(lambda: "backend m00\n" not in open(c.services_file).read(),
             what="m00 out of the services file", alive=[c.slotsync])
    # (a "del server" may be refused while HAProxy still holds a connection
    # to it: HAProxy's state is read again and the removal retried)
    # and back
    put_svc(c, "m00", "i2", "w1")
    wait_routed(c, ["m00"], ["w1"])
    assert c.haproxy.reloads() == c.reloads0
    assert routed(c, services[1:], ["w3"])


def test_restart_adopts_and_reload_keeps_run_time_backends(env, bin_path):
    """slotsync restarted: it owns the run-time backends (its services file
    names them) and sends nothing. HAProxy reloaded by hand: the file and
    map on disk carry them, every route stays. Then slotsync's own reload
    (a new service in the config) keeps them too."""
    c = dyn_cluster(env, bin_path)
    services = ["r%d" % i for i in range(5)]
    for s in services:
        put_svc(c, s, "i1", "w1")
    wait_routed(c, services, ["w1"])
    wait_for(lambda: all("backend %s\n" % s in open(c.services_file).read() for s in services),
             what="the services file naming them", alive=[c.slotsync])
    live = routes(c)

    env.stop(c.slotsync)
    c.start_slotsync(name="slotsync2")
    env.wait_log("slotsync2", r"ready: first etcd listing applied", alive=[c.slotsync])
    log2 = env.log_text("slotsync2")
    assert "batch command" not in log2, log2
    assert "reload is needed" not in log2, log2
    assert "refused" not in log2, log2
    assert routes(c) == live
    # changes flow into the adopted backend
    put_svc(c, "r1", "i2", "w2")
    wait_routed(c, ["r1"], ["w1", "w2"])

    # a reload by hand: HAProxy reads the services file and map on disk
    c.haproxy.reload()
    wait_for(lambda: routed(c, services[:1] + services[2:], ["w1"]), timeout=20,
             what="every route after a reload by hand", alive=[c.slotsync])
    wait_routed(c, ["r1"], ["w1", "w2"])
    assert routes(c) == live
    assert proxies(c) >= set(services)

    # HAProxy stopped and started again (a crash, a host reboot): it loads
    # the run-time backends from the services file livefile wrote, with
    # their endpoints, and can still add more (the file's defaults section)
    c.haproxy.stop()
    c.haproxy.start()
    wait_for(lambda: routed(c, services[:1] + services[2:], ["w1"]), timeout=20,
             what="every route after HAProxy's restart", alive=[c.slotsync])
    wait_routed(c, ["r1"], ["w1", "w2"])
    assert routes(c) == live
    # from the file, not made again: slotsync added none of them
    assert "backend added at run time" not in env.log_text("slotsync2"), env.log_text("slotsync2")
    put_svc(c, "late", "i1", "w3")
    wait_routed(c, ["late"], ["w3"])
    assert routes(c)["late." + DOMAIN] == "late"
    # a backend HAProxy loaded from the file leaves at run time too
    etcd_delete(c.etcd, PREFIX + "r4/i1")
    wait_for(lambda: "r4" not in proxies(c), what="r4's backend deleted after the restart",
             alive=[c.slotsync])
    assert "r4." + DOMAIN not in routes(c)
    services.remove("r4")
    live = routes(c)

    # slotsync's own reload (a service added to the config) keeps them too
    before = c.haproxy.reloads()
    cfg = dict(c.config)
    cfg["services"] = dict(cfg["services"], db={"hosts": ["db.example.test"]})
    sighup(c, cfg)
    wait_for(lambda: c.haproxy.reloads()[0] > before[0], what="slotsync's reload",
             alive=[c.slotsync])
    env.wait_log("slotsync2", r"HAProxy reloaded in", alive=[c.slotsync])
    wait_for(lambda: routed(c, services[:1] + services[2:], ["w1"]), timeout=20,
             what="every route after slotsync's reload", alive=[c.slotsync])
    wait_routed(c, ["r1"], ["w1", "w2"])
    wait_routed(c, ["late"], ["w3"])
    assert c.haproxy.reloads()[1] == before[1]


def test_before_34_new_services_use_spares(env, bin_path):
    """HAProxy older than 3.4 (Debian 12's 2.6, HAPROXY_BIN by default): with
    the same base config (slotsync:base declared), slotsync reads the version
    from "show info", says no backend can be added at run time, and a new
    service goes into a spare as before, no reload."""
    if (_version(HAPROXY_BIN) or (0, 0)) >= (3, 4):
        raise Skip("HAPROXY_BIN is %s, 3.4 or later: test_new_services_get_backends_at_run_time"
                   % HAPROXY_BIN)
    http_port = free_port()
    c = Cluster(env, bin_path, start=False)
    c.config["services"] = {}
    c.config["haproxy"]["min_reload_interval_ms"] = 600000
    c.config["http_frontend"] = {"bind": "127.0.0.1:%d" % http_port, "domain": DOMAIN,
                                 "spare_backends": 2}
    c.config_path = write_config(env, c.config)
    c.http_url = "http://127.0.0.1:%d/" % http_port
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.config["haproxy"]["base_config"] = c.haproxy.base_config
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy.reload()
    reloads0 = c.haproxy.reloads()
    c.start_slotsync()
    env.wait_log("slotsync", r"HAProxy \d+\.\d+\.\d+: no backend can be added at run time "
                 r"before 3\.4: new services use spare backends", alive=[c.slotsync])
    put_svc(c, "api", "x", "w1")
    wait_routed(c, ["api"], ["w1"])
    assert re.fullmatch(r"spare:\d+", routes(c)["api." + DOMAIN]), routes(c)
    assert "api" not in proxies(c)
    assert c.haproxy.reloads() == reloads0
    assert "add backend" not in env.log_text("slotsync")


def test_without_base_config_the_log_says_so_and_spares_serve(env, bin_path):
    """HAProxy 3.4 and no haproxy.base_config: slotsync cannot see the
    base's "defaults slotsync:base", and its line says that the setting is
    missing (it said the base config declares none); a new service is bound
    to a spare, no reload."""
    hap = haproxy34()
    http_port = free_port()
    c = Cluster(env, bin_path, start=False)
    c.config["services"] = {}
    c.config["haproxy"]["binary"] = hap
    c.config["haproxy"]["min_reload_interval_ms"] = 600000
    c.config["http_frontend"] = {"bind": "127.0.0.1:%d" % http_port, "domain": DOMAIN,
                                 "spare_backends": 2}
    c.config_path = write_config(env, c.config)
    c.render()
    c.haproxy = env.start_haproxy(c.services_file, binary=hap)
    c.reloads0 = c.haproxy.reloads()
    c.start_slotsync()
    line = env.wait_log("slotsync", r"HAProxy 3\.\d+\.\d+: it can add backends at run time, "
                        r"but .*", alive=[c.slotsync]).group(0)
    assert "haproxy.base_config is not set" in line, line
    put_svc(c, "shop", "a", "w1")
    env.wait_log("slotsync", r"service shop: bound to spare backend spare:\d", alive=[c.slotsync])
    assert c.haproxy.reloads() == c.reloads0
