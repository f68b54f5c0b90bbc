#!/usr/bin/python3
"""run.py - the integration test runner.

    run.py --bin PATH [-k SUBSTRING]... [--etcd-transport grpc|json] [--list]

Imports integration/test_*.py and runs every top-level function named test_*
(file order within a module, modules by name), each with a fresh harness.Env
and a time limit: 120 s, or SLOTSYNC_TEST_TIMEOUT, or the test's own
(@harness.timeout(s), or TIMEOUT = s in its module). A test that runs out of
time has its processes killed and fails.

Arguments are passed by parameter name: env (the Env), bin_path or bin (the
--bin path). -k keeps the tests whose "module.function" name contains
SUBSTRING (-k may be repeated: any of them). --list prints the names that
would run. --etcd-transport sets SLOTSYNC_TEST_ETCD_TRANSPORT for the
harness: every slotsync config an Env writes and every "slotsync announce"
it spawns then speak that transport to etcd (see harness.py; make test runs
the etcd-facing modules once more with grpc).

Prints "PASS name (1.2s)", "FAIL name: reason" (then the traceback and the
last 40 lines of each log of the test) or "SKIP name: reason" per test, and
last a line "N passed, N failed". Exits 1 if a test failed or none was found,
0 otherwise.
"""

import argparse
import glob
import importlib
import inspect
import os
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 120
LOG_TAIL = 40


class Case:
    def __init__(self, name, func=None, module=None, error=None):
        self.name = name
        self.func = func
        self.module = module
        self.error = error  # import failure text: the case fails as is

    def timeout(self):
        if hasattr(self.func, "timeout"):
            return float(self.func.timeout)
        if hasattr(self.module, "TIMEOUT"):
            return float(self.module.TIMEOUT)
        return float(os.environ.get("SLOTSYNC_TEST_TIMEOUT", DEFAULT_TIMEOUT))


def discover():
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        modname = os.path.basename(path)[:-3]
        try:
            module = importlib.import_module(modname)
        except Exception:  # noqa: BLE001 - reported as a failing case
            cases.append(Case(modname, error=traceback.format_exc()))
            continue
        funcs = [f for n, f in vars(module).items()
                 if n.startswith("test_") and inspect.isfunction(f)
                 and f.__module__ == module.__name__]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            cases.append(Case("%s.%s" % (modname, f.__name__), f, module))
    return cases


def call_args(func, env, bin_path):
    fixtures = {"env": env, "bin_path": bin_path, "bin": bin_path}
    kwargs = {}
    for p in inspect.signature(func).parameters.values():
        if p.name in fixtures:
            kwargs[p.name] = fixtures[p.name]
        elif p.default is inspect.Parameter.empty:
            raise TypeError("unknown fixture %r (known: env, bin_path, bin)"
                            % p.name)
    return kwargs


def first_line(text, limit=300):
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "..."


def indent(text, prefix="    "):
    return "".join(prefix + line + "\n" for line in text.rstrip("\n").splitlines())


def stuck_at(frame):
    """The stack of a stuck test, from the test function down."""
    if frame is None:
        return ""
    frames = traceback.extract_stack(frame)
    for i, f in enumerate(frames):
        if f.filename == os.path.abspath(__file__) and f.name == "target":
            frames = frames[i + 1:]
            break
    return "".join(traceback.format_list(frames))


def print_logs(env):
    for name in env.log_names():
        tail = env.log_tail(name, LOG_TAIL)
        print("  --- %s.log (last %d lines)" % (name, LOG_TAIL))
        if tail.strip():
            sys.stdout.write(indent(tail))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_report(env):
    """The name of the first log with an ASan/LSan/UBSan report, or None
    (reports only appear when the binary was built with `make asan`)."""
    for name in env.log_names():
        text = env.log_text(name)
        if any(mark in text for mark in SANITIZER_MARKS):
            return name
    return None


def run_case(case, bin_path):
    """Run one case; returns "pass", "fail" or "skip" after printing."""
    if case.error:
        print("FAIL %s: import failed: %s"
              % (case.name, first_line(case.error.strip().splitlines()[-1])))
        sys.stdout.write(indent(case.error))
        return "fail"

    env = harness.Env(case.name.split(".")[-1])
    outcome = {}

    def target():
        try:
            case.func(**call_args(case.func, env, bin_path))
            outcome["status"] = "pass"
        except harness.Skip as e:
            outcome["status"] = "skip"
            outcome["reason"] = str(e)
        except BaseException as e:  # noqa: BLE001 - the test's failure
            outcome["status"] = "fail"
            outcome["reason"] = "%s: %s" % (type(e).__name__, first_line(str(e)))
            outcome["trace"] = traceback.format_exc()

    limit = case.timeout()
    started = time.monotonic()
    thread = threading.Thread(target=target, name=case.name, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    try:
        if thread.is_alive():
            # Where it was stuck, then stop its processes so that it unwinds.
            frame = sys._current_frames().get(thread.ident)
            stack = stuck_at(frame)
            env.kill_all()
            thread.join(2)
            print("FAIL %s: timed out after %gs" % (case.name, limit))
            if stack:
                print("  stuck at:")
                sys.stdout.write(indent(stack))
            print_logs(env)
            return "fail"
        status = outcome.get("status", "fail")
        if status == "pass":
            # Stop everything first: LeakSanitizer reports at exit.
            env.kill_all()
            report = sanitizer_report(env)
            if report:
                status = "fail"
                outcome["reason"] = "sanitizer report in %s.log" % report
        if status == "pass":
            print("PASS %s (%.1fs)" % (case.name, elapsed))
        elif status == "skip":
            print("SKIP %s: %s" % (case.name, outcome.get("reason", "")))
        else:
            print("FAIL %s: %s" % (case.name, outcome.get("reason", "no result")))
            print("  after %.1fs" % elapsed
                  + (", files kept in %s" % env.tmp if env.keep else ""))
            sys.stdout.write(indent(outcome.get("trace", "")))
            print_logs(env)
        return status
    finally:
        env.close()
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description="slotsync integration tests")
    parser.add_argument("--bin", required=True, help="the slotsync binary")
    parser.add_argument("-k", dest="substring", action="append", default=None,
                        help="run only tests whose name contains this (repeatable)")
    parser.add_argument("--etcd-transport", choices=("grpc", "json"), default=None,
                        help="the etcd transport every config and announce uses")
    parser.add_argument("--list", action="store_true",
                        help="list the tests, run nothing")
    args = parser.parse_args()

    # Line-buffered even when piped (make, CI) so that progress shows.
    sys.stdout.reconfigure(line_buffering=True)
    harness.install_signal_handlers()

    bin_path = os.path.abspath(args.bin)
    if args.etcd_transport:
        os.environ["SLOTSYNC_TEST_ETCD_TRANSPORT"] = args.etcd_transport
        print("etcd transport: %s" % args.etcd_transport)
    cases = discover()
    if args.substring:
        cases = [c for c in cases if any(k in c.name for k in args.substring)]
    if args.list:
        for c in cases:
            print(c.name)
        return 0 if cases else 1
    if not cases:
        print("no test found" + (" matching %r" % args.substring
                                 if args.substring else ""))
        print("0 passed, 0 failed")
        return 1
    if not os.access(bin_path, os.X_OK):
        print("warning: %s is not an executable file" % bin_path)

    counts = {"pass": 0, "fail": 0, "skip": 0}
    started = time.monotonic()
    for case in cases:
        counts[run_case(case, bin_path)] += 1
    if counts["skip"]:
        print("%d skipped" % counts["skip"])
    print("(%.1fs)" % (time.monotonic() - started))
    print("%d passed, %d failed" % (counts["pass"], counts["fail"]))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
