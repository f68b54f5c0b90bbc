#!/usr/bin/python3
"""whoami - a tiny HTTP backend for the integration tests.

    whoami.py --name NAME --port PORT [--host 127.0.0.1] [--unhealthy]

Every answer carries the header "X-Whoami: NAME".

    GET /            200 "NAME\\n"
    GET /slow?ms=N   sleeps N milliseconds, then 200 "NAME\\n"
    GET /health      200 "ok\\n"
    GET /status?code=N   answers status N with body "NAME\\n"
    HEAD, OPTIONS and POST are answered like GET (HAProxy's "option httpchk"
    sends OPTIONS by default).

Signals:
    SIGUSR1  toggles unhealthy mode: every request gets 503 "NAME unhealthy\\n"
    SIGUSR2  toggles the listening socket: closed (new connections are
             refused, as a TCP health check sees a dead server; open
             keep-alive connections are closed after their next answer),
             then reopened on the same port
    SIGTERM, SIGINT  stop and exit 0

With --port 0 the kernel picks the port. Once listening, the server prints
"listening on HOST:PORT" on stdout (flushed), which is how a caller learns it.
Request logs are off unless --verbose.
"""

import argparse
import http.server
import os
import signal
import sys
import threading
import time
import urllib.parse

SLOW_MAX_MS = 600000


class State:
    """What the handlers read and the main thread changes on signals."""

    def __init__(self, name, unhealthy, verbose):
        self.name = name
        self.unhealthy = unhealthy
        self.listening = False
        self.verbose = verbose


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "whoami"
    sys_version = ""
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 30
    state = None  # set by make_server()

    def log_message(self, fmt, *args):
        if self.state.verbose:
            sys.stderr.write("%s %s\n" % (self.state.name, fmt % args))

    def _answer(self, code, text, send_body=True):
        body = text.encode()
        self.send_response(code)
        self.send_header("X-Whoami", self.state.name)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if not self.state.listening:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _discard_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def _serve(self, send_body=True):
        self._discard_body()
        name = self.state.name
        if self.state.unhealthy:
            self._answer(503, "%s unhealthy\n" % name, send_body)
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/health":
            self._answer(200, "ok\n", send_body)
        elif url.path == "/slow":
            try:
                ms = int(query.get("ms", ["0"])[0])
            except ValueError:
                self._answer(400, "bad ms\n", send_body)
                return
            time.sleep(min(max(ms, 0), SLOW_MAX_MS) / 1000.0)
            self._answer(200, name + "\n", send_body)
        elif url.path == "/status":
            try:
                code = int(query.get("code", ["200"])[0])
            except ValueError:
                code = 400
            if not 200 <= code <= 599:
                code = 400
            self._answer(code, name + "\n", send_body)
        else:
            self._answer(200, name + "\n", send_body)

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_OPTIONS(self):
        self._serve()

    def do_HEAD(self):
        self._serve(send_body=False)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # HAProxy resets idle server connections and clients give up on slow
        # answers: that is traffic, not a fault worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(state, host, port):
    handler = type("BoundHandler", (Handler,), {"state": state})
    return Server((host, port), handler)


def serve_in_thread(server):
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def main():
    parser = argparse.ArgumentParser(description="tiny HTTP backend for tests")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--unhealthy", action="store_true",
                        help="start in unhealthy mode (503 everywhere)")
    parser.add_argument("--verbose", action="store_true", help="log requests")
    args = parser.parse_args()

    # Signals are taken synchronously by the main thread with sigwait(); they
    # are blocked before any thread starts so that every thread inherits the
    # mask and none of them runs a Python handler.
    sigs = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    state = State(args.name, args.unhealthy, args.verbose)
    try:
        server = make_server(state, args.host, args.port)
    except OSError as e:
        print("whoami %s: cannot listen on %s:%d: %s"
              % (args.name, args.host, args.port, e), file=sys.stderr, flush=True)
        return 1
    port = server.server_address[1]
    state.listening = True
    serve_in_thread(server)
    print("listening on %s:%d" % (args.host, port), flush=True)

    while True:
        sig = signal.sigwait(sigs)
        if sig in (signal.SIGTERM, signal.SIGINT):
            break
        if sig == signal.SIGUSR1:
            state.unhealthy = not state.unhealthy
            print("unhealthy" if state.unhealthy else "healthy", flush=True)
        elif sig == signal.SIGUSR2:
            if state.listening:
                state.listening = False
                server.shutdown()
                server.server_close()
                print("closed", flush=True)
            else:
                try:
                    server = make_server(state, args.host, port)
                except OSError as e:
                    print("reopen failed: %s" % e, file=sys.stderr, flush=True)
                    continue
                state.listening = True
                serve_in_thread(server)
                print("listening on %s:%d" % (args.host, port), flush=True)

    if state.listening:
        server.shutdown()
        server.server_close()
    print("stopped", flush=True)
    sys.stdout.flush()
    # Handler threads may still sit in a keep-alive read; they are daemon
    # threads and die with the process.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
