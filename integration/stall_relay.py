"""A loopback TCP relay that can make a watch stall on demand (issue 24):
stall() stops forwarding server->client bytes on the watch's connection
only, and leaves it open both ways at the TCP level (the kernel still
answers keepalives), while every other connection, and every new one,
passes. That is what a host behind etcd's grpc-proxy sees when the proxy
stops delivering one watcher's events (etcd#9988, etcd#21813): the
connection alive, the endpoint answering ranges, no event.

Which connection is the watch: on the JSON gateway (HTTP/1.1) the one that
carried "POST /v3/watch" (libcurl may reuse a connection for several calls,
so every call's bytes are looked at); on gRPC over http:// (h2c prior
knowledge) a connection open longer than min_age, since there each call
gets a connection of its own (libcurl 7.88.1 cannot reuse prior-knowledge
HTTP/2 connections, see src/http.c) and only the watch lives long."""

import socket
import threading
import time


class _Conn:
    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.opened = time.monotonic()
        self.watch = False  # carried POST /v3/watch (JSON gateway)
        self.h2 = False     # began with HTTP/2's client preface
        self.stalled = threading.Event()
        self.closed = threading.Event()

    def close(self):
        self.closed.set()
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class StallRelay:
    """127.0.0.1:<port> -> url's host:port (an etcd member or a grpc-proxy)."""

    def __init__(self, url):
        host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.target = (host, int(port))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.conns = []
        self.lock = threading.Lock()
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.done:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            conn = _Conn(client, upstream)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._up, args=(conn,), daemon=True).start()
            threading.Thread(target=self._down, args=(conn,), daemon=True).start()

    def _up(self, conn):
        """client -> server, always; notes what the connection is."""
        tail = b""
        try:
            while True:
                data = conn.client.recv(65536)
                if not data:
                    break
                if not conn.h2 and not tail and data.startswith(b"PRI * HTTP/2.0"):
                    conn.h2 = True
                if b"/v3/watch" in tail + data:
                    conn.watch = True
                tail = data[-16:]
                conn.upstream.sendall(data)
        except OSError:
            pass
        self._drop(conn)

    def _down(self, conn):
        """server -> client, until stalled: then nothing more, ever."""
        try:
            while not conn.closed.is_set():
                if conn.stalled.is_set():
                    conn.closed.wait(0.1)
                    continue
                conn.upstream.settimeout(0.2)
                try:
                    data = conn.upstream.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                if conn.stalled.is_set():
                    continue  # stalled while this was read: held back too
                conn.client.sendall(data)
        except OSError:
            pass
        if not conn.stalled.is_set():
            self._drop(conn)

    def _drop(self, conn):
        with self.lock:
            if conn in self.conns:
                self.conns.remove(conn)
        conn.close()

    def stall(self, min_age=2.0):
        """Stall the watch's connection(s) open now; return how many."""
        now = time.monotonic()
        n = 0
        with self.lock:
            for conn in self.conns:
                if conn.watch or (conn.h2 and now - conn.opened >= min_age):
                    conn.stalled.set()
                    n += 1
        return n

    def stalled_open(self):
        """Stalled connections the client has not closed yet."""
        with self.lock:
            return sum(1 for c in self.conns if c.stalled.is_set())

    def close(self):
        self.done = True
        self.sock.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            conn.close()
