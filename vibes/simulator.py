"""A local Vibes: the Platform and Connect operations this project uses, with
real state, on loopback.

It serves the same paths, headers, Basic auth and response shapes as the
Vibes contract files, keeps lists, acquisition campaigns, persons (keyed by
number), subscriptions and SMS in memory, and posts callbacks back to the app
the way Vibes does: `subscription_added` when the simulated phone replies
"Y", `subscription_removed` on an unsubscribe or a "STOP", delivery receipts
for SMS sent with a `callback_url`. Whatever a phone texts to the short code
is also posted as Connect's `inbound_sms`, and, when it matches no pending
confirmation and no system keyword (STOP, HELP...), as the Platform's
`unmatched_message_received`, both with the same message id. Callbacks go
out from a small pool of background threads, so API answers never wait for
the app.

Callbacks are registered as with Vibes: Platform `config/callbacks` (list,
register, get, update, cancel, and `callback_events/test`, which posts a test
event of the type to its registered URLs) and Connect `/api/v1/callbacks`
(one URL per type and short code). A Platform event goes to the URLs
registered for its type (and its list or campaign, when the registration
names one), else to `callback_url`; a delivery receipt goes to the SMS's own
`callback_url`, else to the URL registered for the short code's receipts.

Fault switches make it misbehave like a real service under load: a share of
5xx answers (half before the request is processed, half after), 429 above a
rate, added latency, and requests that hang past the client's read timeout
after being processed; and like carriers: a share of SMS whose delivery
receipt says "failed", with the carrier's reason. The request log records
for each request whether it was processed, so tests can prove that nothing
was done twice.

A pending participant who does not answer within the confirmation window
(`confirmation_window` seconds, 24 hours unless configured) expires: Vibes
drops the request and posts `ack_participant_changed` with status "expired".

A list's subscribers are served in pages (`page`, `page_size`) in the order
they joined, so that one who leaves while a client pages moves the later
ones forward, as offset paging does; the contract itself documents that
operation only as a search by number, person key or external id, which is
served too (`configure(subscriber_paging=False)` serves only the search).

Control and inspection endpoints live under `/_simulator/` (no auth: the
simulator listens on loopback only): `GET messages`, `GET requests`,
`GET stats`, `GET subscriptions`, `GET callbacks`, `GET inbound`, `GET registrations`
(passwords hidden), `POST reset`, `POST faults`, `POST config`, `POST reply`,
`POST keyword` (a phone texts a keyword and joins its list), `POST subscribers`
(one, or many at once), `POST campaigns` (adds or changes an acquisition
campaign: status, end date), `POST drain` (waits until the callbacks due so
far were delivered).

No Django here: `manage.py vibes_simulator` and the test fixtures start it.
"""

import base64
import bisect
import heapq
import hmac
import io
import itertools
import json
import logging
import queue
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from .demo import DEMO_LISTS

logger = logging.getLogger("vibes.simulator")

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
YES_WORDS = {"Y", "YES"}
NO_WORDS = {"N", "NO"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
# Vibes answers these itself, so they are never "unmatched".
HELP_WORDS = {"HELP", "INFO"}
LOG_LIMIT = 200_000
# Vibes publishes no page size limit; this one makes a client cope with one.
MAX_PAGE_SIZE = 1000
CONFIRMATION_WINDOW = 24 * 3600.0  # seconds a participant has to reply "Y" (Marketo documents 24 hours)

_C = r"/companies/(?P<company_key>[^/]+)"
ROUTES = [
    (re.compile(rf"^{_C}/mobiledb/subscription_lists/?$"), {"GET": "lists"}),
    (
        re.compile(rf"^{_C}/mobiledb/subscription_lists/(?P<list_id>[^/]+)/acquisition_campaigns/?$"),
        {"GET": "list_campaigns"},
    ),
    (re.compile(rf"^{_C}/campaigns/acquisition/?$"), {"GET": "campaigns"}),
    (
        re.compile(rf"^{_C}/campaigns/acquisition/(?P<acquisition_id>[^/]+)/participants/?$"),
        {"POST": "add_participant"},
    ),
    (
        re.compile(rf"^{_C}/mobiledb/subscription_lists/(?P<list_id>[^/]+)/subscribers/?$"),
        {"GET": "subscribers"},
    ),
    (re.compile(rf"^{_C}/mobiledb/persons/?$"), {"GET": "find_person"}),
    (
        re.compile(
            rf"^{_C}/mobiledb/persons/external/(?P<external_person_id>[^/]+)/subscriptions/(?P<list_id>[^/]+)/?$"
        ),
        {"GET": "get_subscription", "DELETE": "unsubscribe"},
    ),
    (
        re.compile(rf"^{_C}/mobiledb/persons/(?P<person_key>[^/]+)/subscriptions/(?P<list_id>[^/]+)/?$"),
        {"GET": "get_subscription", "DELETE": "unsubscribe"},
    ),
    (re.compile(r"^/api/v1/sms/messages/?$"), {"POST": "send_sms"}),
    (re.compile(rf"^{_C}/config/callbacks/?$"), {"GET": "list_callbacks", "POST": "register_callback"}),
    (
        re.compile(rf"^{_C}/config/callbacks/(?P<callback_id>[^/]+)/?$"),
        {"GET": "get_callback", "PUT": "update_callback", "DELETE": "cancel_callback"},
    ),
    (re.compile(rf"^{_C}/config/callback_events/test/?$"), {"POST": "test_callback"}),
    (re.compile(r"^/api/v1/callbacks/?$"), {"POST": "register_connect_callback"}),
]
CONNECT_OPERATIONS = {"send_sms", "register_connect_callback"}
# Operations whose bodies carry a callbacks URL with its password: logged without it.
URL_BODY_OPERATIONS = {"register_callback", "update_callback", "register_connect_callback"}

# The callback types each API registers (the contract's callbackRequest-* and CallbackCreate).
PLATFORM_CALLBACK_TYPES = {
    "ack_participant_added",
    "ack_participant_changed",
    "company_participant_added",
    "company_participant_changed",
    "device_added",
    "device_removed",
    "device_updated",
    "event_processed",
    "person_added",
    "person_updated",
    "subscription_added",
    "subscription_list_added",
    "subscription_list_updated",
    "subscription_removed",
    "unmatched_message_received",
    "wallet_item_install",
    "wallet_item_remove",
}
CONNECT_CALLBACK_TYPES = {"inbound_sms", "delivery_receipt"}
URL_PASSWORD = re.compile(r"(?P<start>[a-z][a-z0-9+.\-]*://[^\s/?#:@'\"<>]*):[^\s/?#@'\"<>]*@", re.IGNORECASE)


def _now_iso(later: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=later)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Answer(Exception):
    """Ends an operation early with an HTTP answer."""

    def __init__(self, status: int, payload=None):
        self.status = status
        self.payload = payload


def _platform_error(status: int, message: str, code="") -> _Answer:
    return _Answer(status, {"errors": [{"message": message, "code": code or status}]})


def _connect_error(status: int, message: str, code: str) -> _Answer:
    # Connect's own error shape (connect-openapi.yml `Error`), not the Platform envelope.
    return _Answer(status, {"error": code, "message": message})


class _Scheduler:
    """One thread running delayed jobs (receipts, auto-confirmations), not a Timer each.

    Jobs carry a tag; `count(tag)` says how many are waiting or running, so
    `wait_for_callbacks` can wait for receipts that are not queued yet.
    """

    def __init__(self):
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._tags: Counter = Counter()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="vibes-sim-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, tag: str, fn, *args):
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), tag, fn, args))
            self._tags[tag] += 1
            self._cond.notify()

    def count(self, tag: str) -> int:
        with self._cond:
            return self._tags[tag]

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {tag: n for tag, n in self._tags.items() if n}

    def clear(self):
        with self._cond:
            for _, _, tag, _, _ in self._heap:
                self._tags[tag] -= 1
            self._heap.clear()

    def stop(self):
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, tag, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:  # a job's failure must not stop the scheduler
                logger.exception("Vibes simulator: scheduled job failed")
            finally:
                with self._cond:
                    self._tags[tag] -= 1


class _CallbackPoster:
    """Posts callbacks from a queue with a few worker threads, retrying failures."""

    ATTEMPTS = 4
    BACKOFF = (0.2, 0.5, 1.0)

    def __init__(self, workers: int = 4):
        self._queue: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._outstanding = 0
        self.log: deque = deque(maxlen=LOG_LIMIT)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._stopped = threading.Event()
        for n in range(workers):
            threading.Thread(target=self._work, name=f"vibes-sim-callbacks-{n}", daemon=True).start()

    def put(self, url: str, event_type: str, payload: dict, *, header_event_type: bool):
        with self._cond:
            self._outstanding += 1
        self._queue.put((url, event_type, payload, header_event_type))

    def _done(self):
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def drop_queued(self):
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._done()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding <= 0, timeout)

    def stop(self):
        self._stopped.set()
        for _ in range(16):
            self._queue.put(None)

    def close_connections(self):
        """Close kept-alive connections to the app, so its server threads end now, not later."""
        for session in list(self._sessions):
            session.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            self._sessions.append(session)
        return session

    def _work(self):
        while not self._stopped.is_set():
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(*item)
            except Exception:
                logger.exception("Vibes simulator: callback delivery failed")
            finally:
                self._done()

    def _deliver(self, url, event_type, payload, header_event_type):
        headers = {"Content-Type": "application/json"}
        if header_event_type:
            # Vibes puts callback metadata in headers and the resource in the body.
            headers["X-Vibes-Event-Type"] = event_type
        status, attempt = None, 0
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                status = self._session().post(url, json=payload, headers=headers, timeout=(2, 10)).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            # Like Vibes: 2xx done, 4xx a permanent failure, anything else retried.
            if isinstance(status, int) and status < 500 and status != 429:
                break
            if attempt < self.ATTEMPTS and not self._stopped.wait(
                self.BACKOFF[min(attempt, len(self.BACKOFF)) - 1]
            ):
                continue
            break
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        self.log.append(
            {
                "event_type": event_type,
                "host": netloc,
                "status": status,
                "attempts": attempt,
                "at": _now_iso(),
            }
        )


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


class _Window:
    """Arrival times, and the busiest one-second window among them.

    Handler threads record requests in the order they get to them, not the
    order they arrived, so times are kept sorted and each carries the number
    of arrivals in the second up to it (a busiest window ends at an arrival).
    A late recording adds one to the seconds it falls in. Times older than
    KEEP seconds before the newest are forgotten.
    """

    KEEP = 10.0

    def __init__(self):
        self._times: list[float] = []
        self._counts: list[int] = []  # for each time t, the arrivals in (t - 1 s, t]
        self.peak = 0

    def _later_seconds(self, at: float) -> range:
        """The indexes of the times whose second, ending there, holds `at`."""
        first = bisect.bisect_left(self._times, at)
        return range(first, bisect.bisect_left(self._times, at, lo=first, key=_second_before))

    def _second_up_to(self, at: float) -> int:
        return bisect.bisect_right(self._times, at) - bisect.bisect_right(self._times, _second_before(at))

    def busiest(self, at: float) -> int:
        """The most arrivals in any one-second window that would hold `at`, without it."""
        return max([self._second_up_to(at), *(self._counts[index] for index in self._later_seconds(at))])

    def add(self, at: float) -> None:
        times, counts = self._times, self._counts
        later = self._later_seconds(at)
        for index in later:
            counts[index] += 1
            self.peak = max(self.peak, counts[index])
        count = self._second_up_to(at) + 1
        times.insert(later.start, at)
        counts.insert(later.start, count)
        self.peak = max(self.peak, count)
        if times[0] < times[-1] - 2 * self.KEEP:
            keep = bisect.bisect_left(times, times[-1] - self.KEEP)
            del times[:keep], counts[:keep]


def _second_before(at: float) -> float:
    return at - 1.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connections
    server_version = "VibesSimulator/1"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # seconds an idle keep-alive connection is kept
    sim: "VibesSimulator"

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


class _Server(ThreadingHTTPServer):
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


class VibesSimulator:
    """A Vibes on 127.0.0.1. `start()` / `stop()`, or use it as a context manager.

    Python helpers mirror the control endpoints: `reset()`, `configure()`,
    `set_faults()`, `reply()`, `keyword()`, `add_subscriber()`,
    `add_subscribers()`, `set_campaign()`, `messages()`, `requests_log()`,
    `stats()`, `subscriptions()`, `callbacks_log()`, `registrations()`,
    `wait_for_callbacks()`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        company_key: str = "demo-company",
        username: str = "demo",
        password: str = "demo-password",
        short_code: str = "12345",
        lists=DEMO_LISTS,
        subscribers=(),
        callback_url: str = "",
        confirm_after: float | None = None,
        receipt_delay: float = 0.05,
        confirmation_window: float = CONFIRMATION_WINDOW,
        receipt_failure_reason: str = "Handset unreachable",
        error_rate: float = 0.0,
        rate_limit: float = 0,
        latency_ms: float = 0,
        timeout_rate: float = 0.0,
        hang_seconds: float = 30.0,
        receipt_failure_rate: float = 0.0,
        seed: int | None = None,
    ):
        self.host = host
        self.port = port
        self.company_key = company_key
        self.username = username
        self.short_code = short_code
        self._expected_auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._seed_lists = lists
        self._seed_subscribers = list(subscribers)
        self._initial_config = {
            "callback_url": callback_url,
            "confirm_after": confirm_after,
            "receipt_delay": receipt_delay,
            "subscriber_paging": True,
            "max_page_size": MAX_PAGE_SIZE,
            "confirmation_window": confirmation_window,
            "receipt_failure_reason": receipt_failure_reason,
        }
        self._initial_faults = {
            "error_rate": error_rate,
            "rate_limit": rate_limit,
            "latency_ms": latency_ms,
            "timeout_rate": timeout_rate,
            "hang_seconds": hang_seconds,
            "receipt_failure_rate": receipt_failure_rate,
        }
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: _Scheduler | None = None
        self._poster: _CallbackPoster | None = None
        self._generation = 0
        self._reset_state()

    # --- Lifecycle ----------------------------------------------------------

    def start(self) -> "VibesSimulator":
        if self._server is not None:
            return self
        handler = type("VibesSimulatorHandler", (_Handler,), {"sim": self})
        self._stop_event.clear()
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._scheduler = _Scheduler()
        self._poster = _CallbackPoster()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="vibes-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop_event.set()  # wakes requests hanging on purpose
        self._server.shutdown()
        self._server.server_close()
        self._server.close_open_sockets()
        self._scheduler.stop()
        self._poster.stop()
        self._poster.close_connections()
        self._server = self._thread = self._scheduler = self._poster = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- State --------------------------------------------------------------

    def _reset_state(self):
        with self._lock:
            self._generation += 1
            self.config = dict(self._initial_config)
            self.faults = dict(self._initial_faults)
            self._lists = {
                str(item["id"]): {"id": str(item["id"]), "name": item["name"]} for item in self._seed_lists
            }
            self._campaigns = {
                str(c["acquisition_id"]): {
                    "acquisition_id": str(c["acquisition_id"]),
                    "description": c.get("description", ""),
                    "keywords": list(c.get("keywords", [])),
                    "status": c.get("status", "active"),
                    "end_date": c.get("end_date", ""),
                    "list_id": str(item["id"]),
                }
                for item in self._seed_lists
                for c in item.get("acquisition_campaigns", [])
            }
            self._persons: dict[str, dict] = {}  # by number
            self._person_numbers_by_key: dict[str, str] = {}
            self._person_numbers_by_external: dict[str, str] = {}
            self._person_seq = itertools.count(1)
            self._subscriptions: dict[tuple[str, str], dict] = {}  # (list id, number)
            # Each list's current subscribers in the order they joined, and the
            # same as a list for paging, rebuilt after a change.
            self._members: dict[str, dict[str, None]] = {list_id: {} for list_id in self._lists}
            self._member_snapshots: dict[str, list[str]] = {}
            self._pending: dict[tuple[str, str], dict] = {}  # (list id, number) awaiting "Y"
            self._blocks: set[tuple[str, str]] = set()  # (acquisition id, number) that replied "N"
            self._messages: list[dict] = []
            self._message_seq = itertools.count(1)
            self._registrations: dict[str, dict] = {}  # Platform callbacks by callback_id
            self._registration_seq = itertools.count(1)
            self._connect_callbacks: dict[tuple[str, str], dict] = {}  # (type, short code)
            self._event_seq = itertools.count(1)
            self._inbound: list[dict] = []  # what phones texted to the short code
            self._inbound_seq = itertools.count(1)
            self._log: deque = deque(maxlen=LOG_LIMIT)
            self._status_counts: Counter = Counter()
            self._arrivals = _Window()  # of every API request
            self._admitted = _Window()  # of the requests not refused with 429
            for row in self._seed_subscribers:
                self._subscribe_now(**row)

    def reset(self) -> None:
        """Back to the state it started with: seed lists, no persons, no SMS, no faults."""
        if self._scheduler:
            self._scheduler.clear()
        if self._poster:
            self._poster.drop_queued()
            self._poster.wait_idle(5)
            self._poster.close_connections()
            self._poster.log.clear()
        self._reset_state()

    def configure(
        self,
        *,
        callback_url: str | None = None,
        confirm_after: float | None = None,
        receipt_delay=None,
        subscriber_paging: bool | None = None,
        max_page_size: int | None = None,
        confirmation_window=None,
        receipt_failure_reason: str | None = None,
    ):
        """Where callbacks go; after how many seconds a pending participant replies "Y" (None:
        never), and after how many one who did not reply expires; the carrier's reason in failed
        receipts; whether a list's subscribers are served in pages, and at most how many a page."""
        with self._lock:
            if callback_url is not None:
                self.config["callback_url"] = callback_url
            if confirm_after is not None:
                self.config["confirm_after"] = confirm_after or None
            if receipt_delay is not None:
                self.config["receipt_delay"] = float(receipt_delay)
            if subscriber_paging is not None:
                self.config["subscriber_paging"] = bool(subscriber_paging)
            if max_page_size is not None:
                self.config["max_page_size"] = max(1, int(max_page_size))
            if confirmation_window is not None:
                self.config["confirmation_window"] = float(confirmation_window)
            if receipt_failure_reason is not None:
                self.config["receipt_failure_reason"] = str(receipt_failure_reason)

    def set_faults(self, **faults) -> None:
        """Any of error_rate, rate_limit, latency_ms, timeout_rate, hang_seconds, receipt_failure_rate."""
        unknown = set(faults) - set(self._initial_faults)
        if unknown:
            raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}")
        with self._lock:
            for name, value in faults.items():
                self.faults[name] = float(value or 0)

    def set_campaign(
        self,
        acquisition_id: str,
        *,
        list_id=None,
        description: str | None = None,
        status: str | None = None,
        end_date: str | None = None,
    ) -> None:
        """Add an acquisition campaign, or change one: its list, name, status (any word), end date."""
        with self._lock:
            campaign = self._campaigns.get(str(acquisition_id))
            if campaign is None:
                if list_id is None or str(list_id) not in self._lists:
                    raise ValueError(f"a new acquisition campaign needs a known list_id, not {list_id!r}")
                campaign = self._campaigns[str(acquisition_id)] = {
                    "acquisition_id": str(acquisition_id),
                    "description": str(acquisition_id),
                    "keywords": [],
                    "status": "active",
                    "end_date": "",
                    "list_id": str(list_id),
                }
            for name, value in (
                ("list_id", list_id),
                ("description", description),
                ("status", status),
                ("end_date", end_date),
            ):
                if value is not None:
                    campaign[name] = str(value)

    def add_subscriber(
        self,
        list_id,
        mdn: str,
        *,
        external_person_id: str = "",
        opt_in_date: str = "",
        custom_fields: dict | None = None,
    ) -> None:
        """Make a number subscribed to a list now, without a confirmation or a callback."""
        with self._lock:
            self._subscribe_now(
                list_id=str(list_id),
                mdn=mdn,
                external_person_id=external_person_id,
                opt_in_date=opt_in_date,
                custom_fields=custom_fields,
            )

    def add_subscribers(self, list_id, rows) -> int:
        """Many `add_subscriber`s at once: rows of mdn, external_person_id, custom_fields."""
        with self._lock:
            for row in rows:
                self._subscribe_now(
                    list_id=str(list_id),
                    mdn=str(row.get("mdn") or ""),
                    external_person_id=str(row.get("external_person_id") or ""),
                    custom_fields=row.get("custom_fields"),
                )
            return len(rows)

    def _subscribe_now(self, *, list_id, mdn, external_person_id="", opt_in_date="", custom_fields=None):
        person = self._person(mdn, external_person_id, custom_fields)
        self._subscriptions[(str(list_id), mdn)] = {"opt_in_date": opt_in_date or _now_iso()}
        self._join(str(list_id), mdn)
        return person

    def _join(self, list_id, mdn):
        members = self._members.setdefault(list_id, {})
        # Joining again puts the number at the end, as a new subscription.
        members.pop(mdn, None)
        members[mdn] = None
        self._member_snapshots.pop(list_id, None)

    def _leave(self, list_id, mdn):
        if self._members.get(list_id, {}).pop(mdn, 0) is None:
            self._member_snapshots.pop(list_id, None)

    def _person(self, mdn: str, external_person_id: str = "", custom_fields: dict | None = None) -> dict:
        """The person with this number, created when new; the first external id given wins."""
        person = self._persons.get(mdn)
        if person is None:
            person = {
                "person_key": f"SIM{next(self._person_seq):08d}",
                "external_person_id": "",
                "mdn": mdn,
                "created_at": _now_iso(),
                "custom_fields": {},
            }
            self._persons[mdn] = person
            self._person_numbers_by_key[person["person_key"]] = mdn
        if custom_fields:
            person["custom_fields"].update({str(k): str(v) for k, v in custom_fields.items()})
        if external_person_id and not person["external_person_id"]:
            if external_person_id in self._person_numbers_by_external:
                raise _platform_error(
                    422,
                    "The external_person_id is already in use by another person.",
                    "EXTERNALPERSONIDMISMATCH",
                )
            person["external_person_id"] = external_person_id
            self._person_numbers_by_external[external_person_id] = mdn
        return person

    # --- Inspection -----------------------------------------------------------

    def messages(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._messages]

    def requests_log(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log]

    def registrations(self, *, with_passwords: bool = True) -> dict:
        """The callbacks registered: {"platform": [...], "connect": [...]}."""

        def shown(url):
            return url if with_passwords else URL_PASSWORD.sub(lambda m: f"{m['start']}:***@", url)

        with self._lock:
            return {
                "platform": [
                    {**r, "destination": {**r["destination"], "url": shown(r["destination"]["url"])}}
                    for r in self._registrations.values()
                ],
                "connect": [{**c, "url": shown(c["url"])} for c in self._connect_callbacks.values()],
            }

    def inbound(self) -> list[dict]:
        """What phones texted: message_id, mdn, text, unmatched, received_at."""
        with self._lock:
            return [dict(m) for m in self._inbound]

    def callbacks_log(self) -> list[dict]:
        return list(self._poster.log) if self._poster else []

    def subscriptions(self) -> list[dict]:
        """Every subscription and pending participant: list_id, mdn, status, ..."""
        with self._lock:
            rows = [
                {
                    "list_id": list_id,
                    "mdn": mdn,
                    "external_person_id": self._persons[mdn]["external_person_id"],
                    "status": "unsubscribed" if sub.get("opt_out_date") else "subscribed",
                    **sub,
                }
                for (list_id, mdn), sub in self._subscriptions.items()
            ]
            rows += [
                {
                    "list_id": list_id,
                    "mdn": mdn,
                    "external_person_id": self._persons[mdn]["external_person_id"],
                    "status": "pending",
                    **pending,
                }
                for (list_id, mdn), pending in self._pending.items()
            ]
            return rows

    def stats(self) -> dict:
        with self._lock:
            return {
                "requests": sum(self._status_counts.values()),
                "by_status": {str(k): v for k, v in sorted(self._status_counts.items())},
                "max_requests_per_second": self._arrivals.peak,
                "max_admitted_per_second": self._admitted.peak,
                "messages": len(self._messages),
                "persons": len(self._persons),
                "callbacks_sent": len(self._poster.log) if self._poster else 0,
                # Jobs waiting for their time: receipts, auto-confirmations, expiries.
                "scheduled": self._scheduler.counts() if self._scheduler else {},
            }

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Block until every callback due so far, receipts included, was delivered or given up.

        Auto-confirmations still waiting for `confirm_after` are not waited for.
        """
        deadline = time.monotonic() + timeout
        while self._scheduler and self._poster:
            if self._scheduler.count("delivery") == 0 and self._poster.wait_idle(0):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # --- The simulated phone ----------------------------------------------------

    def reply(self, mdn: str, text: str) -> dict:
        """The phone with this number texts `text` to the short code.

        Vibes acts on what it matches (a Y or N to a pending confirmation,
        a STOP) and, as Vibes does, every text is posted to the app as an
        inbound message; one that matched nothing also as an unmatched
        message. The answer says what matched, with the message's id.
        """
        if not E164.match(mdn or ""):
            raise ValueError(f"{mdn!r} is not a number in E.164 form.")
        with self._lock:
            answer = self._act_on_text(mdn, (text or "").strip().upper())
            unmatched = not answer
            message = {
                "message_id": f"SIM-MO-{next(self._inbound_seq):09d}",
                "mdn": mdn,
                "text": text or "",
                "unmatched": unmatched,
                "received_at": _now_iso(),
            }
            self._inbound.append(message)
            self._post_inbound(message)
            return {**answer, "message_id": message["message_id"], "unmatched": unmatched}

    def _act_on_text(self, mdn, word) -> dict:
        """What Vibes does with a text; {} when it matches nothing."""
        if word in HELP_WORDS:
            return {"help": True}
        if word in STOP_WORDS:
            for key in [k for k in self._pending if k[1] == mdn]:
                del self._pending[key]
            opted_out = [
                list_id
                for (list_id, number), sub in self._subscriptions.items()
                if number == mdn and not sub.get("opt_out_date")
            ]
            for list_id in opted_out:
                self._opt_out(list_id, mdn, "user_opt_out")
            return {"opted_out": opted_out}
        if mdn not in self._persons:
            return {}
        if word in YES_WORDS:
            confirmed = [list_id for (list_id, number) in list(self._pending) if number == mdn]
            for list_id in confirmed:
                self._confirm(list_id, mdn)
            return {"confirmed": confirmed} if confirmed else {}
        if word in NO_WORDS:
            declined = []
            for (list_id, number), pending in list(self._pending.items()):
                if number == mdn:
                    del self._pending[(list_id, number)]
                    self._blocks.add((pending["acquisition_id"], mdn))
                    declined.append(list_id)
                    self._callback(
                        "ack_participant_changed",
                        {
                            **self._person_resource(mdn),
                            "acquisition_campaign": {"acquisition_id": pending["acquisition_id"]},
                            "subscription_list": self._list_ref(list_id),
                            "participation_date": pending["participation_date"],
                            "status": "declined",
                        },
                    )
            return {"declined": declined} if declined else {}
        return {}

    def _post_inbound(self, message):
        """Connect's inbound SMS, and the Platform's unmatched message when nothing matched."""
        url = self.config["callback_url"]
        if not (url and self._poster):
            return
        # Connect names the callback in the body (its `callback_type`), as its receipts do.
        self._poster.put(
            url,
            "inbound_sms",
            {
                "callback_type": "inbound_sms",
                "message_id": message["message_id"],
                "from": message["mdn"],
                "to": self.short_code,
                "text": message["text"],
                "occurred_at": message["received_at"],
            },
            header_event_type=False,
        )
        if message["unmatched"]:
            # The body of Vibes' documented example; the type also travels in a header.
            self._callback(
                "unmatched_message_received",
                {
                    "event_id": f"SIM-EVT-{message['message_id']}",
                    "callback_type": "unmatched_message_received",
                    "event_date": message["received_at"][:19] + "Z",
                    "participant": {"mdn": message["mdn"], "carrier_id": "104"},
                    "source_code": {
                        "company_key": self.company_key,
                        "code": self.short_code,
                        "country_code": "1",
                        "code_type": "SC",
                        "default_response": "",
                        "response_sent": False,
                    },
                    "message": message["text"],
                    "message_id": message["message_id"],
                    "txn_id": f"SIM-TXN-{message['message_id']}",
                    "receipt_date": message["received_at"],
                },
            )

    def keyword(self, mdn: str, keyword: str) -> dict:
        """The phone with this number texts an acquisition campaign's keyword and joins its list.

        Most people join this way: Vibes then knows their number but no
        external person id. A keyword is its own consent, so there is no
        confirmation; Vibes posts `subscription_added`.
        """
        word = (keyword or "").strip().upper()
        with self._lock:
            if not E164.match(mdn or ""):
                raise ValueError(f"{mdn!r} is not a mobile number in E.164 form.")
            campaign = next(
                (
                    c
                    for c in self._campaigns.values()
                    if c["status"] == "active" and word in {k.upper() for k in c["keywords"]}
                ),
                None,
            )
            if campaign is None:
                raise LookupError(f"No active acquisition campaign has the keyword {word!r}.")
            list_id = campaign["list_id"]
            subscription = self._subscriptions.get((list_id, mdn))
            if subscription and not subscription.get("opt_out_date"):
                return {"list_id": list_id, "joined": False}
            self._pending.pop((list_id, mdn), None)
            self._subscribe_now(list_id=list_id, mdn=mdn)
            self._callback(
                "subscription_added",
                {
                    **self._person_resource(mdn),
                    "subscription_list": self._list_ref(list_id),
                    "opt_in_date": self._subscriptions[(list_id, mdn)]["opt_in_date"],
                    "acquisition_campaign": {"acquisition_id": campaign["acquisition_id"]},
                },
            )
            return {"list_id": list_id, "joined": True}

    def _confirm(self, list_id, mdn, generation=None):
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # scheduled before a reset
            pending = self._pending.pop((list_id, mdn), None)
            if pending is None:
                return
            self._subscriptions[(list_id, mdn)] = {"opt_in_date": _now_iso()}
            self._join(list_id, mdn)
            self._callback(
                "subscription_added",
                {
                    **self._person_resource(mdn),
                    "subscription_list": self._list_ref(list_id),
                    "opt_in_date": self._subscriptions[(list_id, mdn)]["opt_in_date"],
                    "acquisition_campaign": {"acquisition_id": pending["acquisition_id"]},
                },
            )

    def _expire(self, list_id, mdn, pending, generation):
        """The confirmation window ended without a reply: Vibes drops the request."""
        with self._lock:
            if generation != self._generation or self._pending.get((list_id, mdn)) is not pending:
                return  # answered, cancelled, asked again, or scheduled before a reset
            del self._pending[(list_id, mdn)]
            self._callback(
                "ack_participant_changed",
                {
                    **self._person_resource(mdn),
                    "acquisition_campaign": {"acquisition_id": pending["acquisition_id"]},
                    "subscription_list": self._list_ref(list_id),
                    "participation_date": pending["participation_date"],
                    "expire_date": pending["expire_date"],
                    "status": "expired",
                },
            )

    def _opt_out(self, list_id, mdn, reason):
        sub = self._subscriptions[(list_id, mdn)]
        sub["opt_out_date"] = _now_iso()
        sub["opt_out_reason"] = reason
        self._leave(list_id, mdn)
        self._callback(
            "subscription_removed",
            {
                **self._person_resource(mdn),
                "subscription_list": self._list_ref(list_id),
                "opt_in_date": sub["opt_in_date"],
                "opt_out_date": sub["opt_out_date"],
                "opt_out_reason": reason,
            },
        )

    def _person_resource(self, mdn) -> dict:
        person = self._persons[mdn]
        key = person["person_key"]
        return {
            "person": {
                "id": key,
                "person_key": key,
                "url": f"/companies/{self.company_key}/mobiledb/persons/{key}",
            },
            "external_person_id": person["external_person_id"],
            "mobile_phone": {"mdn": mdn},
        }

    def _list_ref(self, list_id) -> dict:
        return {
            "id": list_id,
            "name": self._lists.get(list_id, {}).get("name", ""),
            "url": f"/companies/{self.company_key}/mobiledb/subscription_lists/{list_id}",
        }

    def _callback(self, event_type, payload):
        """Post a Platform callback to every URL registered for its type (and its list or
        campaign, when the registration names one); when none is registered for the type,
        to the configured callback URL."""
        if not self._poster:
            return
        registered = [r for r in self._registrations.values() if r["callback_type"] == event_type]
        urls = [r["destination"]["url"] for r in registered if self._in_scope(r, payload)]
        if not registered and self.config["callback_url"]:
            urls = [self.config["callback_url"]]
        for url in urls:
            self._poster.put(url, event_type, payload, header_event_type=True)

    @staticmethod
    def _in_scope(registration, payload) -> bool:
        scope = registration.get(registration["callback_type"]) or {}
        list_id = scope.get("list_id")
        if list_id and str((payload.get("subscription_list") or {}).get("id")) != str(list_id):
            return False
        campaign_id = scope.get("campaign_id")
        acquisition = payload.get("acquisition_campaign") or {}
        if campaign_id and str(acquisition.get("acquisition_id")) != str(campaign_id):
            return False
        return True

    def _send_receipt(self, url, payload, generation):
        if generation == self._generation and self._poster:
            self._poster.put(url, "delivery_receipt", payload, header_event_type=False)

    # --- HTTP -------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers, raw_body: bytes, *, arrived: float | None = None
    ) -> tuple[int, object]:
        """Answer one HTTP request: (status, JSON payload or None).

        `arrived` is when the request reached the machine (time.time()), for
        the rate window; by default, now.
        """
        split = urlsplit(raw_path)
        if split.path.startswith("/_simulator/"):
            try:
                return self._control(method, split.path[len("/_simulator/") :].strip("/"), raw_body)
            except _Answer as answer:
                return answer.status, answer.payload
        return self._api(
            method,
            split.path,
            split.query,
            headers,
            raw_body,
            arrived if arrived is not None else time.time(),
        )

    def _api(self, method, path, query, headers, raw_body, arrived):
        entry = {
            "method": method,
            "path": path,
            "status": 0,
            "processed": False,
            "fault": "",
            "at": arrived,
        }
        if method in ("POST", "PUT"):
            entry["body"] = raw_body.decode("utf-8", "replace")
        operation, params = self._route(method, path)
        if operation in URL_BODY_OPERATIONS:
            entry["body"] = URL_PASSWORD.sub(lambda m: f"{m['start']}:***@", entry["body"])
        connect = operation in CONNECT_OPERATIONS
        with self._lock:
            faults = self.faults
            # Like Vibes: refused when admitting it would put more than the
            # limit in some one-second window of arrivals.
            self._arrivals.add(arrived)
            limited = bool(faults["rate_limit"]) and self._admitted.busiest(arrived) >= faults["rate_limit"]
            if not limited:
                self._admitted.add(arrived)
            roll, timeout_roll = self._random.random(), self._random.random()
        if limited:
            # Refused before processing: Vibes sends no Retry-After.
            error = (_connect_error if connect else _platform_error)(
                429, "Too Many Requests", "too_many_requests"
            )
            return self._finish(entry, error.status, error.payload, fault="rate_limited")
        if faults["latency_ms"]:
            time.sleep(faults["latency_ms"] / 1000)
        if roll < faults["error_rate"] / 2:
            return self._finish(
                entry,
                503,
                {"errors": [{"message": "Service Unavailable", "code": 503}]},
                fault="error_before",
            )

        try:
            if operation is None:
                raise params  # the routing answer: 404 or 405
            self._check_request(headers, params, connect)
            body = self._json_body(raw_body, connect) if method in ("POST", "PUT") else None
            entry["processed"] = True
            with self._lock:
                status, payload = getattr(self, f"_op_{operation}")(params=params, query=query, body=body)
        except _Answer as answer:
            status, payload = answer.status, answer.payload

        if entry["processed"] and roll < faults["error_rate"]:
            return self._finish(
                entry,
                500,
                {"errors": [{"message": "Internal Server Error", "code": 500}]},
                fault="error_after",
            )
        if entry["processed"] and timeout_roll < faults["timeout_rate"]:
            self._finish(entry, status, payload, fault="timeout")
            self._stop_event.wait(faults["hang_seconds"])  # longer than the client waits
            return status, payload
        return self._finish(entry, status, payload)

    def _finish(self, entry, status, payload, *, fault=""):
        entry["status"] = status
        entry["fault"] = fault
        with self._lock:
            self._log.append(entry)
            self._status_counts[status] += 1
        return status, payload

    def _route(self, method, path):
        for pattern, operations in ROUTES:
            match = pattern.match(path)
            if match:
                if method not in operations:
                    return None, _platform_error(405, f"{method} is not allowed here.", 405)
                return operations[method], {k: unquote(v) for k, v in match.groupdict().items()}
        return None, _platform_error(404, "Not found.", 404)

    def _check_request(self, headers, params, connect):
        error = _connect_error if connect else _platform_error
        if not hmac.compare_digest(headers.get("Authorization", ""), self._expected_auth):
            raise error(401, "Invalid or missing credentials.", "unauthorized")
        if connect:
            return
        if headers.get("X-API-Version") != "2":
            # Version 1 is Vibes' default and cannot take E.164 numbers.
            raise error(400, "This simulator speaks X-API-Version 2 only.", "UNSUPPORTEDAPIVERSION")
        if params.get("company_key") != self.company_key:
            raise error(404, "The company_key cannot be found.", 404)

    @staticmethod
    def _json_body(raw_body, connect):
        error = _connect_error if connect else _platform_error
        try:
            body = json.loads(raw_body or b"null")
        except ValueError:
            raise error(400, "The request body is not JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise error(400, "The request body must be a JSON object.", "invalid_json")
        return body

    # --- Operations (called with the lock held) ----------------------------------

    def _op_lists(self, **_):
        base = f"/companies/{self.company_key}/mobiledb/subscription_lists"
        return 200, [
            {
                "id": item["id"],
                "name": item["name"],
                "url": f"{base}/{item['id']}",
                "subscribers_url": f"{base}/{item['id']}/subscribers",
                "acquisition_campaigns_url": f"{base}/{item['id']}/acquisition_campaigns",
            }
            for item in self._lists.values()
        ]

    def _campaign_resource(self, campaign):
        resource = {
            "acquisition_id": campaign["acquisition_id"],
            "description": campaign["description"],
            "campaign_type": {"code": "acquisition"},
            "status": campaign["status"],
            "acquisition_campaign": {"keywords": campaign["keywords"]},
            "url": f"/companies/{self.company_key}/campaigns/acquisition/{campaign['acquisition_id']}",
        }
        if campaign["end_date"]:
            resource["end_date"] = campaign["end_date"]
        return resource

    def _op_list_campaigns(self, *, params, **_):
        if params["list_id"] not in self._lists:
            raise _platform_error(404, "The subscription_list_id cannot be found.", 404)
        return 200, [
            self._campaign_resource(c) for c in self._campaigns.values() if c["list_id"] == params["list_id"]
        ]

    def _op_campaigns(self, **_):
        return 200, [self._campaign_resource(c) for c in self._campaigns.values()]

    def _op_add_participant(self, *, params, body, **_):
        campaign = self._campaigns.get(params["acquisition_id"])
        if campaign is None:
            raise _platform_error(404, "The acquisition campaign cannot be found.", 404)
        mdn = (
            (body.get("mobile_phone") or {}).get("mdn")
            if isinstance(body.get("mobile_phone"), dict)
            else None
        )
        if not isinstance(mdn, str) or not E164.match(mdn):
            raise _platform_error(
                400, "The supplied mobile number is not in proper mobile number format.", 400
            )
        if campaign["status"] != "active":
            raise _platform_error(
                422, "The status code of the entity does not allow updates.", "UNPROCESSABLE ENTITY"
            )
        list_id = campaign["list_id"]
        subscription = self._subscriptions.get((list_id, mdn))
        if subscription and not subscription.get("opt_out_date"):
            raise _platform_error(409, "Already subscribed.", 409)
        if (campaign["acquisition_id"], mdn) in self._blocks:
            raise _platform_error(
                422,
                "The MDN has previously replied No to this acquisition campaign.",
                "MDNHASCONFIRMATIONBLOCK",
            )
        person = self._person(mdn, str(body.get("external_person_id") or ""))
        pending = self._pending.get((list_id, mdn))
        status = 200  # Vibes: 200 means a pending acquisition already exists
        if pending is None:
            status = 201
            window = float(self.config["confirmation_window"])
            pending = self._pending[(list_id, mdn)] = {
                "acquisition_id": campaign["acquisition_id"],
                "participation_date": _now_iso(),
                "expire_date": _now_iso(window),
            }
            confirm_after = self.config["confirm_after"]
            if confirm_after and self._scheduler:
                self._scheduler.call_later(
                    float(confirm_after), "confirm", self._confirm, list_id, mdn, self._generation
                )
            if self._scheduler:
                self._scheduler.call_later(
                    window, "expire", self._expire, list_id, mdn, pending, self._generation
                )
        return status, {
            "person": {
                "person_id": person["person_key"],
                "person_key": person["person_key"],
                "url": f"/companies/{self.company_key}/mobiledb/persons/{person['person_key']}",
            },
            "participation_date": pending["participation_date"],
            "expire_date": pending["expire_date"],
            "status": "PENDING",
        }

    @staticmethod
    def _query_mdn(values) -> str:
        mdn = values[0]
        if not E164.match(mdn):
            # What Vibes says when "+" arrives unencoded (it reads as a space).
            raise _platform_error(
                400,
                "Invalid MDN format. If you are using E.164 format, be sure to include %2B in place of +.",
                400,
            )
        return mdn

    def _op_find_person(self, *, query, **_):
        mdn = self._query_mdn(parse_qs(query, keep_blank_values=True).get("mdn") or [""])
        if mdn not in self._persons:
            raise _platform_error(404, "MDN not found.", 404)
        return 200, self._person_body(mdn)

    def _person_body(self, mdn) -> dict:
        """The contract's person resource."""
        person = self._persons[mdn]
        body = {
            "person_key": person["person_key"],
            "external_person_id": person["external_person_id"],
            "mobile_phone": {"mdn": mdn},
            "created_at": person["created_at"],
            "updated_at": person["created_at"],
            "url": f"/companies/{self.company_key}/mobiledb/persons/{person['person_key']}",
        }
        if person["custom_fields"]:
            body["custom_fields"] = dict(person["custom_fields"])
        return body

    def _op_subscribers(self, *, params, query, **_):
        list_id = params["list_id"]
        if list_id not in self._lists:
            raise _platform_error(404, "The subscription_list_id cannot be found.", 404)
        values = parse_qs(query, keep_blank_values=True)
        if "mdn" in values or "person_key" in values or "external_person_id" in values:
            # The contract's search: one subscriber, or 404.
            if "mdn" in values:
                mdn = self._query_mdn(values["mdn"])
            elif "person_key" in values:
                mdn = self._person_numbers_by_key.get(values["person_key"][0])
            else:
                mdn = self._person_numbers_by_external.get(values["external_person_id"][0])
            if mdn not in self._members.get(list_id, {}):
                raise _platform_error(
                    404,
                    "The subscriber cannot be located or they are not subscribed to the specified list.",
                    404,
                )
            return 200, self._person_body(mdn)
        if not self.config["subscriber_paging"] or "page" not in values:
            raise _platform_error(
                400, "Search by mdn, person_key or external_person_id: one of them is required.", 400
            )
        try:
            page = int(values["page"][0])
            page_size = int((values.get("page_size") or ["100"])[0])
        except ValueError:
            raise _platform_error(400, "page and page_size must be whole numbers.", 400) from None
        if page < 1 or page_size < 1:
            raise _platform_error(400, "page and page_size start at 1.", 400)
        page_size = min(page_size, self.config["max_page_size"])
        snapshot = self._member_snapshots.get(list_id)
        if snapshot is None:
            snapshot = self._member_snapshots[list_id] = list(self._members.get(list_id, {}))
        start = (page - 1) * page_size
        return 200, [self._person_body(mdn) for mdn in snapshot[start : start + page_size]]

    def _person_number(self, params):
        if "external_person_id" in params:
            return self._person_numbers_by_external.get(params["external_person_id"])
        return self._person_numbers_by_key.get(params["person_key"])

    def _op_get_subscription(self, *, params, **_):
        mdn = self._person_number(params)
        list_id = params["list_id"]
        subscription = self._subscriptions.get((list_id, mdn))
        if mdn is None or subscription is None or subscription.get("opt_out_date"):
            raise _platform_error(404, "The person cannot be found or is not subscribed to this list.", 404)
        return 200, [
            {
                "person": {"id": self._persons[mdn]["person_key"]},
                "subscription_list": {"id": list_id, "url": self._list_ref(list_id)["url"]},
                "opt_in_date": subscription["opt_in_date"],
            }
        ]

    def _op_unsubscribe(self, *, params, **_):
        mdn = self._person_number(params)
        list_id = params["list_id"]
        subscription = self._subscriptions.get((list_id, mdn))
        cancelled = self._pending.pop((list_id, mdn), None)
        if subscription is not None and not subscription.get("opt_out_date"):
            self._opt_out(list_id, mdn, "api_opt_out")
            return 204, None
        if cancelled is not None:
            return 204, None
        raise _platform_error(
            404, "The person cannot be found or is already not subscribed to this list.", 404
        )

    def _op_send_sms(self, *, body, **_):
        to, sender, text = body.get("to"), body.get("from"), body.get("text")
        if not isinstance(to, str) or not E164.match(to):
            raise _connect_error(400, "`to` must be a mobile number in E.164 form.", "invalid_parameter")
        if not isinstance(sender, str) or not sender:
            raise _connect_error(400, "`from` (the short code) is required.", "invalid_parameter")
        if not isinstance(text, str) or not text or len(text) > 1600:
            raise _connect_error(400, "`text` is required, at most 1600 characters.", "invalid_parameter")
        message_id = f"SIM-MSG-{next(self._message_seq):09d}"
        callback_url = body.get("callback_url") or ""
        # A message's own callback URL; else the one registered for its short code's receipts.
        registered = self._connect_callbacks.get(("delivery_receipt", sender)) or {}
        receipt_url = callback_url or registered.get("url") or ""
        # Like a carrier: a share of SMS never reach the handset.
        delivery = "failed" if self._random.random() < self.faults["receipt_failure_rate"] else "delivered"
        self._messages.append(
            {
                "message_id": message_id,
                "to": to,
                "from": sender,
                "text": text,
                "callback_url": callback_url,
                "received_at": _now_iso(),
                "delivery": delivery,
            }
        )
        if receipt_url and self._scheduler and self._poster:
            receipt = {
                "event_type": "delivery_receipt",
                "message_id": message_id,
                "to": to,
                "from": sender,
                "status": delivery,
                "occurred_at": _now_iso(),
            }
            if delivery == "failed":
                receipt.update(
                    error_code="carrier_unreachable", description=self.config["receipt_failure_reason"]
                )
            self._scheduler.call_later(
                self.config["receipt_delay"],
                "delivery",
                self._send_receipt,
                receipt_url,
                receipt,
                self._generation,
            )
        return 200, {"message_id": message_id, "status": "accepted", "to": to, "from": sender}

    # --- Callback registration and test events (called with the lock held) -------

    def _registration_resource(self, registration) -> dict:
        return {
            **registration,
            "url": f"/companies/{self.company_key}/config/callbacks/{registration['callback_id']}",
        }

    def _registration_from(self, body, *, callback_id, created_date) -> dict:
        callback_type = body.get("callback_type")
        if callback_type not in PLATFORM_CALLBACK_TYPES:
            raise _platform_error(400, f"Unknown callback_type {callback_type!r}.", "INVALIDCALLBACKTYPE")
        destination = body.get("destination")
        url = destination.get("url") if isinstance(destination, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise _platform_error(400, "destination.url must be an http or https URL.", "INVALIDDESTINATION")
        method = destination.get("method") or "POST"
        content_type = destination.get("content_type") or "application/json"
        if method not in ("POST", "PUT") or content_type not in ("application/json", "text/json"):
            raise _platform_error(
                400, "Unsupported destination method or content type.", "INVALIDDESTINATION"
            )
        scope = body.get(callback_type)
        if scope is not None and not isinstance(scope, dict):
            raise _platform_error(400, f"{callback_type} must be an object.", 400)
        if callback_type == "unmatched_message_received" and not (scope or {}).get("source_code"):
            raise _platform_error(400, "unmatched_message_received.source_code is required.", 400)
        if callback_type == "event_processed" and scope is None:
            raise _platform_error(400, "event_processed is required.", 400)
        for other in self._registrations.values():
            if (
                other["callback_id"] != callback_id
                and other["callback_type"] == callback_type
                and other["destination"]["url"] == url
            ):
                raise _platform_error(
                    409, "A callback of this type is already registered for this URL.", "DUPLICATECALLBACK"
                )
        registration = {
            "callback_id": callback_id,
            "callback_type": callback_type,
            "destination": {"url": url, "method": method, "content_type": content_type},
            "created_date": created_date,
            "updated_date": _now_iso(),
        }
        if scope:
            registration[callback_type] = dict(scope)
        for name in ("start_date", "end_date"):
            if body.get(name):
                registration[name] = str(body[name])
        return registration

    def _op_list_callbacks(self, **_):
        return 200, [self._registration_resource(r) for r in self._registrations.values()]

    def _op_register_callback(self, *, body, **_):
        callback_id = f"SIM-CB-{next(self._registration_seq):05d}"
        registration = self._registration_from(body, callback_id=callback_id, created_date=_now_iso())
        self._registrations[callback_id] = registration
        return 200, self._registration_resource(registration)

    def _known_registration(self, params) -> dict:
        registration = self._registrations.get(params["callback_id"])
        if registration is None:
            raise _platform_error(404, "The callback_id is not recognized.", 404)
        return registration

    def _op_get_callback(self, *, params, **_):
        return 200, self._registration_resource(self._known_registration(params))

    def _op_update_callback(self, *, params, body, **_):
        old = self._known_registration(params)
        registration = self._registration_from(
            body, callback_id=old["callback_id"], created_date=old["created_date"]
        )
        self._registrations[old["callback_id"]] = registration
        return 200, self._registration_resource(registration)

    def _op_cancel_callback(self, *, params, **_):
        registration = self._known_registration(params)
        del self._registrations[registration["callback_id"]]
        return 200, self._registration_resource(registration)

    def _op_test_callback(self, *, body, **_):
        """Post a test event of the type to every URL registered for it, as Vibes does."""
        callback_type = body.get("callback_type")
        if callback_type not in PLATFORM_CALLBACK_TYPES:
            raise _platform_error(400, f"Unknown callback_type {callback_type!r}.", "INVALIDCALLBACKTYPE")
        registrations = [r for r in self._registrations.values() if r["callback_type"] == callback_type]
        if not registrations:
            raise _platform_error(404, "An active callback does not exist.", 404)
        event_id = f"SIM-EVT-{next(self._event_seq):07d}"
        payload = {"event_id": event_id, **self._test_payload(callback_type, body)}
        if self._poster:
            for registration in registrations:
                self._poster.put(
                    registration["destination"]["url"], callback_type, payload, header_event_type=True
                )
        return 200, {"message": f"A test {callback_type} callback was queued.", "event_id": event_id}

    def _test_payload(self, callback_type, body) -> dict:
        """The test event, shaped like the real one, with the person and list the request gave."""
        now = _now_iso()
        if callback_type in ("subscription_added", "subscription_removed"):
            subscription = body.get("subscription") if isinstance(body.get("subscription"), dict) else {}
            list_id = (subscription.get("subscription_list") or {}).get("id")
            if not list_id:
                raise _platform_error(400, "subscription.subscription_list.id is required.", 400)
            payload = {
                "person": {"id": str((subscription.get("person") or {}).get("id") or "SIM-TEST-PERSON")},
                "subscription_list": self._list_ref(str(list_id)),
                "opt_in_date": now,
            }
            if callback_type == "subscription_removed":
                payload.update(opt_out_date=now, opt_out_reason="test")
            return payload
        if callback_type in ("ack_participant_added", "ack_participant_changed"):
            participant = body.get("participant") if isinstance(body.get("participant"), dict) else {}
            campaign = participant.get("acquisition_campaign") or {}
            if not campaign.get("api_key"):
                raise _platform_error(400, "participant.acquisition_campaign.api_key is required.", 400)
            payload = {
                "person": {"id": str(participant.get("id") or "SIM-TEST-PERSON")},
                "acquisition_campaign": {
                    "acquisition_id": str(campaign["api_key"]),
                    "description": str(campaign.get("description") or ""),
                    "keyword": str(campaign.get("keyword") or ""),
                },
                "participation_date": now,
                "status": "pending",
            }
            list_id = (participant.get("subscription_list") or {}).get("id")
            if list_id:
                payload["subscription_list"] = self._list_ref(str(list_id))
            mdn = (participant.get("mobile_phone") or {}).get("mdn")
            if mdn:
                payload["mobile_phone"] = {"mdn": str(mdn)}
            return payload
        return {k: v for k, v in body.items() if k != "callback_type"}

    def _op_register_connect_callback(self, *, body, **_):
        callback_type, url = body.get("callback_type"), body.get("url")
        if callback_type not in CONNECT_CALLBACK_TYPES:
            raise _connect_error(
                400, "`callback_type` must be inbound_sms or delivery_receipt.", "invalid_parameter"
            )
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise _connect_error(400, "`url` must be an http or https URL.", "invalid_parameter")
        short_code = str(body.get("short_code") or "")
        # One callback per type and short code: registering again replaces its URL.
        known = self._connect_callbacks.get((callback_type, short_code))
        registration = {
            "id": known["id"] if known else f"SIM-CC-{next(self._registration_seq):05d}",
            "callback_type": callback_type,
            "url": url,
            "short_code": short_code,
            "created_at": known["created_at"] if known else _now_iso(),
        }
        self._connect_callbacks[(callback_type, short_code)] = registration
        return 201, registration

    # --- Control endpoints ---------------------------------------------------------

    def _control(self, method, name, raw_body):
        body = self._json_body(raw_body, connect=False) if method == "POST" else None
        if method == "GET":
            views = {
                "messages": self.messages,
                "requests": self.requests_log,
                "stats": self.stats,
                "subscriptions": self.subscriptions,
                "callbacks": self.callbacks_log,
                "registrations": lambda: self.registrations(with_passwords=False),
                "inbound": self.inbound,
            }
            if name in views:
                return 200, views[name]()
        elif method == "POST":
            if name == "reset":
                self.reset()
                return 200, {"reset": True}
            if name == "drain":
                # Blocks until the callbacks due so far were delivered (or the timeout).
                return 200, {"drained": self.wait_for_callbacks(float(body.get("timeout") or 10))}
            if name == "faults":
                try:
                    self.set_faults(**body)
                except (TypeError, ValueError) as error:
                    raise _platform_error(400, str(error), 400) from None
                return 200, dict(self.faults)
            if name == "config":
                unknown = set(body) - set(self._initial_config)
                if unknown:
                    raise _platform_error(400, f"unknown settings: {', '.join(sorted(unknown))}", 400)
                self.configure(**body)
                return 200, dict(self.config)
            if name == "reply":
                try:
                    return 200, self.reply(str(body.get("mdn") or ""), str(body.get("text") or ""))
                except ValueError as error:
                    raise _platform_error(400, str(error), 400) from None
            if name == "campaigns":
                try:
                    self.set_campaign(
                        str(body.get("acquisition_id") or ""),
                        **{k: body[k] for k in ("list_id", "description", "status", "end_date") if k in body},
                    )
                except ValueError as error:
                    raise _platform_error(400, str(error), 400) from None
                return 200, {"set": True}
            if name == "subscribers":
                if isinstance(body.get("subscribers"), list):
                    rows = [row for row in body["subscribers"] if isinstance(row, dict)]
                    return 200, {"added": self.add_subscribers(body.get("list_id"), rows)}
                self.add_subscriber(
                    body.get("list_id"),
                    str(body.get("mdn") or ""),
                    external_person_id=str(body.get("external_person_id") or ""),
                    custom_fields=body.get("custom_fields")
                    if isinstance(body.get("custom_fields"), dict)
                    else None,
                )
                return 200, {"added": True}
            if name == "keyword":
                try:
                    return 200, self.keyword(str(body.get("mdn") or ""), str(body.get("keyword") or ""))
                except ValueError as error:
                    raise _platform_error(400, str(error), 400) from None
                except LookupError as error:
                    raise _platform_error(404, str(error), 404) from None
        raise _platform_error(404, "Unknown simulator endpoint.", 404)
