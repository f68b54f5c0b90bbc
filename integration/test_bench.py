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
