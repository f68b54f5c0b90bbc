"""Integration tests of the command line and the logs: per-command help,
`check`, `render -o`, SIGUSR1/SIGPIPE, log timestamps and the log's rate
limit, unknown JSON fields, and `make demo KEEP=1`; with real etcd, HAProxy
and backends on 127.0.0.1."""

import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

from harness import (REPO, Env, etcd_put, free_port, http_get, wait_for,
                     write_config)
from test_daemon import PREFIX, Cluster

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) \S+: ")


def run(bin_path, *args, env=None, cwd=None, timeout=30):
    full = dict(os.environ, **(env or {}))
    return subprocess.run([bin_path] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=full, cwd=cwd)


def render_config(env, etcd, **haproxy):
    """A config for render against etcd, services file in env.tmp."""
    cfg = {
        "etcd": {"endpoints": [etcd], "prefix": PREFIX},
        "haproxy": dict({"runtime_socket": env.path("admin.sock"),
                         "services_file": env.path("services.cfg")}, **haproxy),
        "services": {"web": {"listen": "127.0.0.1:%d" % free_port(), "slots": 2}},
    }
    return write_config(env, cfg)


# ---- help and errors

def test_help_is_per_command(env, bin_path):
    texts = {}
    for cmd in ("run", "render", "check"):
        r = run(bin_path, cmd, "--help")
        assert r.returncode == 0, r
        texts[cmd] = r.stdout
        assert r.stdout.startswith("usage: slotsync %s -c FILE" % cmd), r.stdout
        assert "exit codes:" in r.stdout and "signals" in r.stdout, r.stdout
        assert "-c, --config FILE" in r.stdout, r.stdout
    assert len(set(texts.values())) == 3, "the same text for different commands"
    for sig in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGPIPE"):
        assert sig in texts["run"], (sig, texts["run"])
    assert "-o, --output PATH" in texts["render"] and "--timeout" in texts["render"]
    assert "--output" not in texts["run"] and "--output" not in texts["check"]
    top = run(bin_path, "--help")
    assert top.returncode == 0 and "'slotsync COMMAND --help'" in top.stdout, top


def test_errors_have_one_prefix_and_name_the_option(env, bin_path):
    good = write_config(env, {
        "etcd": {"endpoints": ["http://127.0.0.1:1"], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "services_file": env.path("services.cfg")}})
    cases = [
        (("run", "-c", good, "--log-level", "loud"), 2,
         "slotsync run: --log-level: must be one of error, warn, info, debug"),
        (("render", "-c", good, "--etcd", "ftp://127.0.0.1:2379"), 2,
         "slotsync render: --etcd: URL must start with http:// or https://"),
        (("check", "-c", good, "--runtime-socket", "nowhere"), 2,
         "slotsync check: --runtime-socket: must be a unix socket path"),
        (("run", "--bogus"), 2, "slotsync run: unknown option '--bogus'"),
        (("render", "-c"), 2, "slotsync render: option '-c' needs a value"),
        (("check", "-c", good, "-o", "x"), 2, "slotsync check: unknown option '-o'"),
        (("run",), 2, "slotsync run: -c FILE (--config FILE) is required"),
        (("run", "-c", env.path("missing.json")), 1, "slotsync run: cannot open"),
    ]
    for args, code, text in cases:
        r = run(bin_path, *args)
        assert r.returncode == code, (args, r)
        assert r.stderr.startswith(text), (args, r.stderr)
        for line in r.stderr.splitlines():
            assert line.startswith("slotsync %s: " % args[0]) or "--help' lists" in line, \
                (args, r.stderr)
    # --config is the long form of -c
    r = run(bin_path, "check", "--config", good)
    assert r.returncode == 0, r


# ---- check

def test_check_lists_every_problem(env, bin_path):
    bad = write_config(env, {
        "etcd": {"endpoints": ["ftp://127.0.0.1:2379"], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "services_file": env.path("services.cfg"),
                    "runtime_timeout_s": 0},
        "services": {"api": {"slots": 0}, "db": {"mode": "udp"}, "ok": {}},
        "log_level": "loud", "bogus": 1}, name="bad.json")
    r = run(bin_path, "check", "-c", bad)
    assert r.returncode == 1, r
    errors = [l for l in r.stderr.splitlines() if l.startswith("slotsync check: error: ")]
    assert len(errors) == 6, r.stderr
    for want in ("bogus: unknown key",
                 "etcd.endpoints[0]: URL must start with http:// or https://",
                 "haproxy.runtime_timeout_s: must be between 1 and 300",
                 "services.api.slots: must be between",
                 "services.db.mode: must be",
                 "log_level: must be one of"):
        assert any(want in l for l in errors), (want, r.stderr)
    assert r.stdout.strip().endswith("6 errors, 0 warnings"), r.stdout


def test_run_and_check_say_every_config_error_and_what_a_path_is(env, bin_path):
    """issue 19 item 10: run -c prints every error of the file, as check
    does; a misspelt required key is named with the key it should be; a
    directory given as the config says so."""
    bad = write_config(env, {
        "etcd": {"endpoints": ["http://127.0.0.1:1"], "prefx": PREFIX},
        "haproxy": {"runtime_sock": env.path("admin.sock"),
                    "services_file": env.path("services.cfg")},
        "log_level": "loud"}, name="three.json")
    wants = ['etcd.prefx: unknown key; did you mean "prefix"? (etcd.prefix is required and '
             'not set)',
             'haproxy.runtime_sock: unknown key; did you mean "runtime_socket"? '
             '(haproxy.runtime_socket is required and not set)',
             "log_level: must be one of"]
    for cmd in ("run", "check"):
        r = run(bin_path, cmd, "-c", bad)
        assert r.returncode == 1, r
        prefix = "slotsync %s: %s" % (cmd, "error: " if cmd == "check" else "")
        lines = [l for l in r.stderr.splitlines() if l.startswith(prefix)]
        assert len(lines) == 3, (cmd, r.stderr)
        for want, line in zip(wants, lines):
            assert line.startswith(prefix + want), (cmd, want, r.stderr)
    for cmd in ("run", "check"):
        r = run(bin_path, cmd, "-c", env.tmp)
        assert r.returncode == 1, r
        assert ": is a directory" in r.stderr and "line " not in r.stderr, (cmd, r.stderr)


def test_check_connect_reads_the_runtime_socket_and_its_level(env, bin_path):
    """issue 19 item 10: check --connect also asks HAProxy's runtime socket
    "show cli level": level admin is ok; operator is an error naming the
    level; no socket is an error naming the socket."""
    etcd = env.start_etcd()
    cfg = {"etcd": {"endpoints": [etcd], "prefix": PREFIX},
           "haproxy": {"runtime_socket": env.path("admin.sock"),
                       "services_file": env.path("services.cfg")}}
    path = write_config(env, cfg, name="connect.json")
    r = run(bin_path, "check", "-c", path, "--connect", "--timeout", "5")
    assert r.returncode == 1, r
    assert "%s: " % env.path("admin.sock") in r.stdout, r.stdout
    assert "haproxy.runtime_socket: not usable" in r.stderr, r.stderr
    hap = env.start_haproxy(socket_level="operator")
    r = run(bin_path, "check", "-c", path, "--connect", "--timeout", "5")
    assert r.returncode == 1, r
    assert "%s: level operator, slotsync needs level admin" % hap.admin_sock in r.stdout, r.stdout
    env.stop(hap.proc)
    hap = env.start_haproxy(name="haproxy-admin")
    r = run(bin_path, "check", "-c", path, "--connect", "--timeout", "5")
    assert r.returncode == 0, r
    assert "%s: ok (level admin)" % hap.admin_sock in r.stdout, r.stdout
    assert "%s: ok (revision " % etcd in r.stdout, r.stdout


def test_check_warns_about_missing_paths(env, bin_path):
    cfg = write_config(env, {
        "etcd": {"endpoints": ["http://127.0.0.1:2379"], "prefix": PREFIX},
        "haproxy": {"runtime_socket": env.path("admin.sock"),
                    "base_config": env.path("no", "haproxy.cfg"),
                    "services_file": env.path("nodir", "services.cfg")}})
    r = run(bin_path, "check", "-c", cfg)
    assert r.returncode == 0, r
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("slotsync check: warning: haproxy.base_config: file \"%s\" "
                               "does not exist" % env.path("no", "haproxy.cfg")), lines
    assert lines[1].startswith("slotsync check: warning: haproxy.services_file: directory "
                               "\"%s\" does not exist" % env.path("nodir")), lines
    assert "ok (0 services, 2 warnings)" in r.stdout, r.stdout
    # with the paths there, nothing to say
    os.mkdir(env.path("no"))
    os.mkdir(env.path("nodir"))
    env.write("no/haproxy.cfg", "")
    r = run(bin_path, "check", "-c", cfg)
    assert r.returncode == 0 and r.stderr == "", r
    assert "ok (0 services, 0 warnings)" in r.stdout, r.stdout


# ---- render -o

def test_render_output_dash_is_stdout(env, bin_path):
    etcd = env.start_etcd()
    etcd_put(etcd, PREFIX + "web/a", "127.0.0.1:8081")
    cfg = render_config(env, etcd)
    r = run(bin_path, "render", "-c", cfg, "-o", "-", cwd=env.tmp)
    assert r.returncode == 0, r
    assert "backend web" in r.stdout and "127.0.0.1:8081" in r.stdout, r.stdout
    assert "wrote standard output" in r.stderr, r.stderr
    assert not os.path.lexists(env.path("-")), "a file named '-' was written"
    assert not os.path.exists(env.path("services.cfg")), "-o - must not write the services file"


def test_render_output_refuses_what_is_not_a_regular_file(env, bin_path):
    etcd = env.start_etcd()
    etcd_put(etcd, PREFIX + "web/a", "127.0.0.1:8081")
    cfg = render_config(env, etcd)

    # a symlink to a FIFO (what /dev/stdout is to a pipe): refused, untouched
    fifo = env.path("fifo")
    os.mkfifo(fifo)
    os.symlink(fifo, env.path("to-fifo"))
    # a directory, a FIFO itself, a dangling symlink
    os.mkdir(env.path("dir"))
    os.symlink(env.path("gone"), env.path("dangling"))
    for target in ("to-fifo", "fifo", "dir", "dangling"):
        r = run(bin_path, "render", "-c", cfg, "-o", env.path(target))
        assert r.returncode == 1, (target, r)
        last = r.stderr.splitlines()[-1]
        assert last.startswith("slotsync render: %s" % env.path(target)), (target, r.stderr)
    assert os.path.islink(env.path("to-fifo")), "the symlink was replaced"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.path.isdir(env.path("dir")) and os.listdir(env.path("dir")) == []
    assert os.path.islink(env.path("dangling")) and not os.path.exists(env.path("gone"))

    # a symlink to a regular file: the file is replaced, the link stays
    env.write("real.cfg", "old\n")
    os.symlink(env.path("real.cfg"), env.path("link.cfg"))
    r = run(bin_path, "render", "-c", cfg, "-o", env.path("link.cfg"))
    assert r.returncode == 0, r
    assert os.path.islink(env.path("link.cfg"))
    with open(env.path("real.cfg")) as f:
        assert "backend web" in f.read()
    # a regular file and a new path: written
    for name in ("real.cfg", "new.cfg"):
        r = run(bin_path, "render", "-c", cfg, "-o", env.path(name))
        assert r.returncode == 0, (name, r)
        assert stat.S_ISREG(os.lstat(env.path(name)).st_mode)
    leftovers = [n for n in os.listdir(env.tmp) if ".tmp." in n]
    assert not leftovers, leftovers


# ---- logs

def test_log_timestamps_are_utc_rfc3339(env, bin_path):
    etcd = env.start_etcd()
    cfg = render_config(env, etcd)
    before = time.gmtime()
    r = run(bin_path, "render", "-c", cfg, env={"TZ": "America/New_York"})
    after = time.gmtime()
    assert r.returncode == 0, r
    lines = r.stderr.splitlines()
    assert lines, r
    for line in lines:
        assert STAMP.match(line), line
        hour = int(line[11:13])
        assert hour in (before.tm_hour, after.tm_hour), (line, before, after)
    r = run(bin_path, "render", "-c", cfg, "--log-time", "local",
            env={"TZ": "Asia/Kolkata"})
    assert r.returncode == 0, r
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30 ", r.stderr), r.stderr


def test_sigusr1_dumps_state_and_sigpipe_is_ignored(env, bin_path):
    c = Cluster(env, bin_path)
    c.put("a", "w1")
    c.put("b", "w2")
    c.wait_live(["w1", "w2"])
    os.kill(c.slotsync.pid, signal.SIGUSR1)
    env.wait_log("slotsync", r"state dump: end \(1 backend\)", alive=[c.slotsync])
    log = env.log_text("slotsync")
    assert re.search(r"state dump \(SIGUSR1\): etcd revision [1-9]\d* \(watching, listed\), "
                     r"2 endpoints in 1 service\b", log), log
    assert re.search(r"state dump: HAProxy state known; last resync [\d.]+ s ago "
                     r"\(\d+ resyncs?\); last reload never", log), log
    assert "state dump: backend web: 2 slots used, 2 free (2 endpoints, 0 without a slot)" \
        in log, log
    os.kill(c.slotsync.pid, signal.SIGPIPE)
    # still alive and still working after both
    c.put("c", "w3")
    c.wait_live(["w1", "w2", "w3"])
    assert c.slotsync.poll() is None
    env.stop(c.slotsync, signal.SIGTERM)
    assert c.slotsync.returncode == 0, c.slotsync.returncode


def test_unknown_json_field_is_warned_once_per_key(env, bin_path):
    c = Cluster(env, bin_path)
    typo = json.dumps({"host": "127.0.0.1", "port": c.backends["w1"], "wieght": 3})
    c.put("a", value=typo)
    c.wait_live(["w1"])
    env.wait_log("slotsync", r'etcd key "/services/web/a": unknown JSON field "wieght" ignored',
                 alive=[c.slotsync])
    # the same value again, then a marker that comes after it: no new warning
    c.put("a", value=typo)
    c.put("m", "w2")
    c.wait_live(["w1", "w2"])
    env.wait_log("slotsync", r'etcd key "/services/web/m" added', alive=[c.slotsync])
    log = env.log_text("slotsync")
    assert log.count("unknown JSON field") == 1, log
    # an escaped name: no control byte reaches the log
    c.put("b", value='{"host":"127.0.0.1","port":%d,"x\\u001b[31m\\n":1}' % c.backends["w3"])
    env.wait_log("slotsync", r'etcd key "/services/web/b": unknown JSON field '
                 r'"x\\x1b\[31m\\n" ignored', alive=[c.slotsync])
    os.kill(c.slotsync.pid, signal.SIGUSR1)
    env.wait_log("slotsync", r"2 with unknown JSON fields", alive=[c.slotsync])


def test_flapping_key_log_stays_bounded(env, bin_path):
    """One key flapping as fast as etcd takes it: the per-change lines are
    summarised above 50 a second, so the log stays bounded."""
    c = Cluster(env, bin_path, extra={"log_level": "info"})
    c.put("flap", "w1")
    c.wait_live(["w1"])
    env.wait_log("slotsync", r"applied \d+ runtime commands?", alive=[c.slotsync])
    start_lines = len(env.log_text("slotsync").splitlines())
    stop = time.monotonic() + 3.0
    puts = [0]
    key = PREFIX + "web/flap"
    values = [json.dumps({"host": "127.0.0.1", "port": c.backends["w1"], "weight": w})
              for w in (1, 2)]

    def flap():
        i = 0
        while time.monotonic() < stop:
            etcd_put(c.etcd, key, values[i % 2])
            i += 1
            puts[0] += 1
    threads = [threading.Thread(target=flap) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert puts[0] > 400, "the flap was too slow to test anything: %d puts" % puts[0]

    # each call site may print 50 lines a second plus one summary; a flap
    # involves a handful of them. Generously: 4 sites over the run + 2 s.
    # span: the seconds the log was written for (more than the flap's when
    # slotsync works through the last events after it).
    def check_budget(span):
        budget = int((span + 2) * 4 * 51)
        lines = env.log_text("slotsync").splitlines()[start_lines:]
        assert len(lines) <= budget, "%d lines for %d puts in %.1f s (budget %d)" % (
            len(lines), puts[0], span, budget)
        updated = [l for l in lines if '"/services/web/flap" updated' in l]
        assert len(updated) <= (span + 2) * 50, len(updated)
        return lines, updated
    check_budget(elapsed)
    # the flap was summarised (the pattern was already matched by a summary
    # written during the flap, so this is no wait for the last one)
    env.wait_log("slotsync", r'\+\d+ similar lines in the last second \(last: etcd key '
                 r'"/services/web/flap"', timeout=5, alive=[c.slotsync])
    # The last window's summary comes from the 1 s log timer (up to 2 s
    # after the window's last hidden line), then nothing more: wait for
    # 2.5 s without a new line, rather than sleep 1.5 s from here, which a
    # slotsync still working through the flap outlasts.
    seen = {"len": -1, "at": 0.0}

    def quiet():
        n = len(env.log_text("slotsync"))
        if n != seen["len"]:
            seen["len"], seen["at"] = n, time.monotonic()
        return time.monotonic() - seen["at"] >= 2.5
    wait_for(quiet, timeout=20, interval=0.1, alive=[c.slotsync],
             what="the log to stay quiet for 2.5 s after the flap")
    lines, updated = check_budget(max(elapsed, seen["at"] - t0))
    assert c.slotsync.poll() is None
    print("flap: %d puts in %.1f s, %d log lines (%d 'updated')"
          % (puts[0], elapsed, len(lines), len(updated)))


# ---- make demo KEEP=1

def test_make_demo_passes_keep(env, bin_path):
    for keep, want in (("1", True), ("0", False), ("", False)):
        r = subprocess.run(["make", "-n", "demo", "KEEP=" + keep, "BIN=" + bin_path],
                           cwd=REPO, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        assert ("--keep" in r.stdout) == want, (keep, r.stdout)


def test_demo_keep_stays_up_until_ctrl_c(env, bin_path):
    demo = env.spawn("demo", ["python3", os.path.join(REPO, "integration", "demo.py"),
                              "--bin", bin_path, "--keep"])
    m = env.wait_log("demo", r"browse\s+(http://127\.0\.0\.1:\d+/\S*)", timeout=90,
                     alive=[demo])
    env.wait_log("demo", r"Ctrl-C stops it all", alive=[demo])
    stats_url = m.group(1)
    # the demo is over, and its URLs still answer
    status, body = http_get(stats_url, timeout=5)[:2]
    assert status == 200, status
    # slotsync's live page too: the demo's config turns the admin endpoint on
    live = re.search(r"live\s+(http://127\.0\.0\.1:\d+/)\s", env.log_text("demo"))
    assert live, env.log_tail("demo", 20)
    status, body = http_get(live.group(1), timeout=5)[:2]
    assert status == 200 and "<title>slotsync</title>" in body, (status, body[:200])
    status, body = http_get(live.group(1) + "status", timeout=5)[:2]
    assert status == 200 and json.loads(body)["backends"], (status, body[:200])
    app = re.search(r"curl\s+(http://127\.0\.0\.1:\d+/)", env.log_text("demo")).group(1)
    wait_for(lambda: http_get(app, timeout=2)[0] == 200, timeout=10, what="the demo's service")
    os.kill(demo.pid, signal.SIGINT)
    env.wait_exit(demo, timeout=30)
    assert demo.returncode == 0, env.log_tail("demo")
    # everything it started is gone
    wait_for(lambda: not _answers(stats_url), timeout=10, what="the stats page to be gone")


def _answers(url):
    try:
        http_get(url, timeout=1)
        return True
    except Exception:  # noqa: BLE001 - refused is what we want
        return False


# ---- one layout in the docs

def test_readme_and_base_config_agree_on_the_layout(env, bin_path):
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(REPO, "haproxy", "haproxy.cfg")) as f:
        base = f.read()
    example = json.loads(re.search(r"```json\n(\{.*?\})\n```", readme, re.S).group(1))
    h = example["haproxy"]
    want = (h["base_config"], h["services_file"])
    commands = re.findall(r"haproxy -W -S (\S+) \\\s*\n[#\s]*-f (\S+) -f (\S+)", readme + base)
    assert len(commands) >= 2, commands
    for master, first, second in commands:
        assert (first, second) == want, (commands, want)
        assert master == h["master_socket"], (master, h)
    # the runtime socket of the example is the one the base config declares,
    # on a line marked for changing
    m = re.search(r"# CHANGE HERE[^\n]*\n\s*stats socket (\S+) ", base)
    assert m and m.group(1) == h["runtime_socket"], (m and m.group(1), h)
    assert re.search(r"# CHANGE HERE[^\n]*\n\s*bind 127\.0\.0\.1:1936", base)
