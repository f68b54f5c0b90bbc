"""Tests of the bench scripts' pure helpers (no process, no network): the
figures docs/PERFORMANCE.md publishes are computed by these."""

import bench_fleet

METRICS = """# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.
# TYPE grpc_server_msg_sent_total counter
grpc_server_msg_sent_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3
grpc_server_msg_sent_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 40
grpc_server_msg_sent_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 7
etcd_network_client_grpc_sent_bytes_total 1.5e+06
etcd_network_client_grpc_received_bytes_total 99
"""


def test_parse_counters_sums_the_matching_label_sets():
    c = bench_fleet.parse_counters(METRICS)
    assert c == {"watch_msgs": 40, "msgs": 50, "bytes": 1.5e6}, c
    # a counter the member does not expose is None, not 0
    c = bench_fleet.parse_counters("etcd_network_client_grpc_sent_bytes_total 5\n")
    assert c == {"watch_msgs": None, "msgs": None, "bytes": 5}, c


def test_net_per_change_takes_the_idle_rate_off_each_change():
    # idle 0.1 s/s; changes of 0.5 s costing 0.05 + 0.01 s each: 10 ms net
    window = [(0.06, 0.5)] * 20
    mean, half, rate = bench_fleet.net_per_change(window, [0.1, 0.1, 0.1])
    assert abs(rate - 0.1) < 1e-12 and abs(mean - 0.01) < 1e-12, (mean, rate)
    assert half < 1e-9, half           # no spread at all: no uncertainty
    # a noisy idle rate widens the interval by its standard error x duration
    mean, half, rate = bench_fleet.net_per_change(window, [0.05, 0.15])
    sd = (2 * 0.05 ** 2) ** 0.5        # sample sd of 0.05, 0.15
    assert abs(half - 1.96 * sd / 2 ** 0.5 * 0.5) < 1e-9, half
    # a change cheaper than the idle it spans nets below zero (not clamped)
    mean, _, _ = bench_fleet.net_per_change([(0.02, 0.5)], [0.1])
    assert abs(mean + 0.03) < 1e-12, mean
    assert bench_fleet.net_per_change([], [0.1]) == (None, None, None)
    assert bench_fleet.net_per_change(window, []) == (None, None, None)


def test_cpu_verdict_is_decided_on_the_intervals():
    assert bench_fleet.cpu_verdict(1.0, 0.5, 100.0, 10.0) == "met"       # 1.5 <= 4.5
    assert bench_fleet.cpu_verdict(10.0, 1.0, 100.0, 10.0) == "missed"   # 9 > 5.5
    assert bench_fleet.cpu_verdict(5.0, 1.0, 100.0, 10.0).startswith("not decided")
    # below zero is a baseline that moved, not a cost of zero
    assert bench_fleet.cpu_verdict(-10.6, 7.2, 100.0, 10.0).startswith("not decided")
    assert bench_fleet.cpu_verdict(-1.0, 2.0, 100.0, 10.0) == "met"   # 0 is inside


def test_replace_section_touches_only_its_block():
    import bench_compare as bc
    block = bc.marked("restart", ["## 7. restart", "", "new rows"])
    fleet = "<!-- bench-fleet: begin (x) -->\nfleet\n<!-- bench-fleet: end -->\n"
    # not there yet: goes before the fleet section, the rest byte for byte
    text = "# head\n\nhand-written\n\n" + fleet
    out = bc.replace_section(text, "restart", block, before="<!-- bench-fleet: begin")
    assert out == "# head\n\nhand-written\n\n" + "\n".join(block).rstrip("\n") + "\n\n" \
        + fleet, out
    # there: replaced in place, what is around it kept
    again = bc.replace_section(out + "tail\n", "restart",
                               bc.marked("restart", ["## 7. restart", "", "newer"]),
                               before="<!-- bench-fleet: begin")
    assert "newer" in again and "new rows" not in again, again
    assert again.startswith("# head\n\nhand-written\n\n") and again.endswith(fleet + "tail\n")
    assert again.count(bc.SECTION_END % "restart") == 1
    # another section's block is not this one's
    other = bc.replace_section(again, "churn", bc.marked("churn", ["## 3.", "", "c"]))
    assert "newer" in other and other.count("<!-- bench churn: begin") == 1
    # no anchor: appended
    assert bc.replace_section("x\n", "new", ["a"]) == "x\n\na\n"


def test_load_summary_splits_at_the_listeners_return():
    import bench_load as bl
    assert bl.classify_status(200) == "ok" and bl.classify_status(503) == "5xx"
    assert bl.classify_status(404) == "other-status"
    assert bl.parse_status(b"HTTP/1.1 503 Service Unavailable\r\n\r\n") == 503
    assert bl.parse_status(b"") is None and bl.parse_status(b"garbage") is None
    assert bl.classify_error(ConnectionRefusedError(), False) == "refused"
    assert bl.classify_error(ConnectionResetError(), True) == "reset"
    assert bl.classify_error(None, True) == "reset"
    import socket
    assert bl.classify_error(socket.timeout(), True) == "timeout"
    kill = 10.0
    records = [
        (9.0, 9.0, 9.1, "ok"),          # before the kill
        (9.9, 9.9, 10.2, "reset"),      # in flight at the kill
        (10.1, -1, 10.1, "refused"),    # down
        (10.5, -1, 10.5, "refused"),    # down
        (11.0, 11.0, 11.2, "5xx"),      # the listener is back at 11.0
        (11.1, 11.1, 11.3, "ok"),
        (11.2, 11.2, 11.6, "reset"),    # the last failure after back
        (10.99, 11.01, 11.05, "ok"),    # started while down, accepted after back
        (11.4, -1, 11.4, "refused"),    # refused again after back: a failure after back
        (11.5, 11.5, 11.55, "ok"),
    ]
    s = bl.summarize(records, kill)
    assert s["back"] == 11.0, s
    assert s["before"]["ok"] == 1 and s["before"]["reset"] == 1 and s["in_flight"] == 1
    assert s["down"]["refused"] == 2 and sum(s["down"].values()) == 2, s["down"]
    assert s["after"] == dict({k: 0 for k in bl.OUTCOMES}, ok=3, reset=1, refused=1,
                              **{"5xx": 1}), s
    assert abs(s["last_failure"] - 0.6) < 1e-9, s
    # the ok ones after back took 200, 60 and 50 ms: nearest rank p50 60, p99 200
    p50, p99 = s["after_ok_ms"]
    assert abs(p50 - 60) < 1e-6 and abs(p99 - 200) < 1e-6, s["after_ok_ms"]
    # the listener seen gone only at 10.2: a connect at 10.1 (to the dying
    # listener) is not its return; it is in "down"
    s = bl.summarize(records + [(10.1, 10.1, 10.15, "reset")], kill, 10.2)
    assert s["back"] == 11.0 and s["down"]["reset"] == 1, s
    # never back: everything after the kill is "down"
    s = bl.summarize(records[:4], kill)
    assert s["back"] is None and s["last_failure"] is None and s["down"]["refused"] == 2


def synthetic_compare():
    """A Compare.run() result with every side-by-side section, made up."""
    import bench_compare as bc
    import bench_load as bl
    sts = list(bc.STRATEGIES)
    ch = {st: {"n": 10, "p50": 1e-3 * (i + 1), "p99": 2e-3, "max": 3e-3, "reloads": i}
          for i, st in enumerate(sts)}
    cu = {"seconds": 5, "rate": 10}
    for st in ["reference"] + sts:
        cu[st] = {"changes": 50, "failed": 1, "non2xx": 0, "sock_err": 1, "requests": 1000,
                  "rps": 200.0, "p99_ms": 5.0, "reloads": 0, "hap_procs": 2,
                  "ctrl_cpu": 0.1, "hap_cpu": 0.2}
    zero = {k: 0 for k in bl.OUTCOMES}
    rs = {"seconds": 20, "down_s": 3, "procs": 2, "threads": 4}
    for st in ("slotsync", "reload", "dns-default"):
        rs[st] = {"requests": 100, "before": dict(zero, ok=10), "down": dict(zero, refused=5),
                  "after": dict(zero, ok=80, **{"5xx": 5}), "in_flight": 1,
                  "last_failure": 0.01, "after_ok_ms": (2.0, 8.0), "back_s": 3.2,
                  "sock_s": 0.01, "conv_from_back": 0.02, "conv_from_sock": 0.01,
                  "converged": True, "budget_s": 60, "reloads": 0}
    return {"strategies": sts,
            "floor": {"n": 10, "watch_p50": 2e-3, "watch_p99": 3e-3, "rtt_p50": 1e-4,
                      "rtt_p99": 2e-4},
            "changes": ch, "churn": cu, "new": {"n": 100}, "scale": [], "restart": rs}


def test_whole_report_renders_every_section_in_its_markers():
    # a whole make bench ends by rendering this; it raised NameError (the
    # churn figures of the headline were no longer in scope) before
    import bench_compare as bc
    lines, head, misses = bc.report_lines(synthetic_compare(), {})
    text = "\n".join(lines)
    for name in ("churn", "new", "scale", "restart"):
        assert text.count(bc.SECTION_BEGIN % (name, name)) == 1, name
        assert text.count(bc.SECTION_END % name) == 1, name
    assert any(h.startswith("under churn: 1 failed requests with slotsync") for h in head), head
    assert "| slotsync (runtime API) | 100 | 5 (0) | 85 | 5 | 5 / 0 / 0 / 0 / 0 |" in text


def test_fleet_runs_merge_a_later_phase_over_an_earlier_one():
    def run(*rows):
        return {"results": [{"way": w, "n": n, "changes": c, "notes": []} for w, n, c in rows]}
    runs = [run(("json", 50, 100), ("proxy", 50, 100)),
            run(("json", 1000, 0), ("proxy", 1000, 97)),
            run(("json", 1000, 100))]
    results, replaced = bench_fleet.merge_results(runs)
    assert [(r["way"], r["n"], r["changes"]) for r in results] == [
        ("json", 50, 100), ("proxy", 50, 100), ("json", 1000, 100), ("proxy", 1000, 97)]
    assert [x[:4] for x in replaced] == [("json", 1000, 1, 2)], replaced
    assert replaced[0][4]["changes"] == 0


def test_other_messages_rates_during_the_changes_and_idle():
    r = {"msgs_raw_per_change": 2220, "watch_msgs_raw_per_change": 1190,
         "msgs_idle_per_host_s": 1.0, "watch_msgs_idle_per_host_s": 0.0,
         "changes_s": 209.0, "changes": 100, "hosts": 1000}
    during, idle = bench_fleet.other_msgs_rates(r)
    # 2220 - 1190 Watch - 1 put reply, a change
    assert abs(during - 1029 * 100 / 209.0) < 1e-9 and idle == 1000, (during, idle)
    assert bench_fleet.other_msgs_rates({"changes": 0}) == (None, None)
