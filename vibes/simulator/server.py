"""The simulator's HTTP server: keep-alive connections, each request stamped with its arrival.

The server only reads requests and writes answers; `VibesSimulator.handle`
decides what to answer.
"""

import io
import json
import socket
import struct
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Linux's SO_TIMESTAMPNS, which Python's socket module does not name (the
# generic value; the few architectures that differ fall back to the clock).
# The kernel then stamps every segment with the time it arrived.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_TIMESPEC = struct.Struct("@ll")


def _enable_arrival_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp arriving data; accepted sockets inherit it from the listener."""
    if _SO_TIMESTAMPNS is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return sock.getsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS) == 1


def _stamp(ancillary) -> float | None:
    """The kernel's arrival time in a message's ancillary data, as time.time() counts."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            if seconds:
                return seconds + nanoseconds / 1e9
    return None


class _ArrivalReader(io.RawIOBase):
    """A connection's reading side that knows when the bytes it reads reached the machine.

    Vibes counts its rate limit on arrival, so that is the time the
    simulator's window must use, not the moment a busy handler thread gets to
    the request: under load, requests that arrived a second apart can be
    handled within a few milliseconds of each other. With kernel stamps
    (Linux) the time is the segment's arrival; elsewhere, the moment it was read.
    """

    def __init__(self, sock: socket.socket, stamped: bool):
        self._sock = sock
        self._ancillary = socket.CMSG_SPACE(_TIMESPEC.size) if stamped else 0
        self._first: float | None = None  # of the bytes read since the last take_arrival()
        self._last: float | None = None

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._ancillary:
            size, ancillary, _, _ = self._sock.recvmsg_into([buffer], self._ancillary)
            arrived = _stamp(ancillary)
        else:
            size, arrived = self._sock.recv_into(buffer), None
        if size:
            self._last = arrived or time.time()
            if self._first is None:
                self._first = self._last
        return size

    def take_arrival(self) -> float:
        """When the first bytes of the request just read arrived (bytes read
        ahead into the buffer arrived with the read that fetched them)."""
        arrived = self._first or self._last or time.time()
        self._first = None
        return arrived


class Handler(BaseHTTPRequestHandler):
    """Hands each request to `sim.handle` (set on a subclass per simulator) and writes its answer."""

    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connections
    server_version = "VibesSimulator/1"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # seconds an idle keep-alive connection is kept
    sim = None  # the VibesSimulator

    def setup(self):
        super().setup()
        self.rfile.close()  # replaced: an unclosed file would keep the socket open
        self.arrivals = _ArrivalReader(self.connection, self.server.arrival_stamps)
        self.rfile = io.BufferedReader(self.arrivals)

    def log_message(self, format, *args):  # noqa: A002  (silence the per-request stderr line)
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def _serve(self, method):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        status, payload = self.sim.handle(
            method, self.path, self.headers, raw, arrived=self.arrivals.take_arrival()
        )
        body = b"" if payload is None or status == 204 else json.dumps(payload).encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        try:
            # One write: a separate headers write would meet Nagle and delayed ACKs.
            self.wfile.write(head.encode("latin-1") + b"\r\n" + body)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. its read timeout)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self.open_sockets: set = set()
        self._sockets_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def server_bind(self):
        super().server_bind()
        self.arrival_stamps = _enable_arrival_stamps(self.socket)

    def process_request(self, request, client_address):
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self):
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
