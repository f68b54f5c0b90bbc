"""Integration tests of durations under a stepped wall clock (issue 19,
item 3): slotsync runs under libfaketime with the wall clock moved by hours
while CLOCK_MONOTONIC is left alone, as an NTP step or `date -s` does. Every
"how long" slotsync reports must come from the monotonic clock."""

import calendar
import os
import re
import time

from harness import *
from test_daemon import Cluster
from test_status import metrics

FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1")


def faketime_lib():
    for path in FAKETIME_LIBS:
        if os.path.exists(path):
            return path
    raise HarnessError("libfaketime not found (Debian: faketime/libfaketime, integration/deps.sh)")


def log_stamp(text):
    """Seconds since the epoch of a log stamp ("2026-12-07T01:53:39.123Z")."""
    base, _, ms = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms or 0) / 1e3


class SteppedClock:
    """The wall clock of the processes started with .environ: offset from
    the real one by what step() last wrote (libfaketime re-reads the file
    at every call: FAKETIME_NO_CACHE). CLOCK_MONOTONIC is not faked."""

    def __init__(self, env):
        self.path = env.path("faketime.rc")
        self.step("+0")
        self.environ = {"LD_PRELOAD": faketime_lib(), "FAKETIME_TIMESTAMP_FILE": self.path,
                        "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                        # a `make asan` binary: ASan wants to be the first
                        # library; libfaketime only wraps clock calls
                        "ASAN_OPTIONS": "verify_asan_link_order=0"}

    def step(self, offset):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(offset + "\n")
        os.replace(tmp, self.path)


def during(seconds, probe):
    """Call probe() again and again for seconds of monotonic time (bounded):
    libev re-reads the wall clock at most every half second of loop time, so
    a value that a step would spoil is spoiled within that window. Returns
    the number of calls (at least one)."""
    end, n = time.monotonic() + seconds, 0
    while True:
        probe()
        n += 1
        if time.monotonic() >= end:
            return n
        time.sleep(0.1)


def test_a_wall_clock_step_changes_no_duration(env, bin_path):
    """+1 h while HAProxy answers: seconds_since_last_resync stays below the
    resync interval; -1 h: it stays there (it used to vanish, negative); an
    outage of HAProxy's runtime socket with a +2 h step inside it is logged
    with its real length, not hours."""
    clock = SteppedClock(env)
    port = free_port()
    c = Cluster(env, bin_path, start=False, extra={"admin": {"listen": "127.0.0.1:%d" % port}})
    c.admin_url = "http://127.0.0.1:%d" % port
    c.put("w1", "w1")
    c.render()
    c.haproxy = env.start_haproxy(c.services_file)
    c.slotsync = env.start_slotsync(bin_path, c.config_path, env=clock.environ)
    env.wait_log("slotsync", r"HAProxy state read", alive=[c.slotsync])
    c.wait_live(["w1"])
    wait_for(lambda: http_get(c.admin_url + "/readyz")[0] == 200, what="/readyz 200",
             alive=[c.slotsync])

    def since_resync_small():
        m = metrics(c)
        assert "slotsync_seconds_since_last_resync" in m, m
        assert 0 <= m["slotsync_seconds_since_last_resync"] < 30, m
        assert m["slotsync_ready"] == 1, m
        # events wait milliseconds here, never hours
        assert m["slotsync_event_to_applied_seconds_sum"] < 60, m

    since_resync_small()
    # Forward: an hour later on the wall clock, seconds later in fact.
    since = len(env.log_text("slotsync"))
    clock.step("+1h")
    # The step reached the daemon: the stamp of its next log line is an hour
    # ahead (else this test could not fail).
    c.put("w2", "w2")
    line = env.wait_log("slotsync", r"(?m)^(\S+) .*web/s\d+ \(w2\)", alive=[c.slotsync],
                        since=since)
    ahead = log_stamp(line.group(1)) - time.time()
    assert 3000 < ahead < 4200, (line.group(0), ahead)
    during(2, since_resync_small)

    # Back, past where it started: still there, still small.
    clock.step("-1h")
    during(2, since_resync_small)

    # An outage of the runtime socket, with the wall clock stepped inside it.
    since = len(env.log_text("slotsync"))
    c.haproxy.stop()
    env.wait_log("slotsync", r"HAProxy runtime socket .*retrying", alive=[c.slotsync],
                 since=since, timeout=20)
    clock.step("+2h")
    # the outage goes on while the daemon's loop sees the new wall clock
    during(2, lambda: http_get(c.admin_url + "/healthz"))
    c.haproxy = env.start_haproxy(c.services_file)
    m = env.wait_log("slotsync", r"HAProxy runtime socket \S+ answers again after (\d+) s",
                     alive=[c.slotsync], since=since, timeout=30)
    assert int(m.group(1)) < 600, m.group(0)
    c.wait_live(["w1", "w2"])
    since_resync_small()
