"""VibesSimulator: starts and stops the pieces, holds the settings and the
state, and takes each API request from its arrival to its answer."""

import base64
import random
import threading
import time
from collections import Counter, deque
from urllib.parse import urlsplit

from ..redaction import url_passwords_hidden
from .connect import ConnectOperations
from .control import ControlEndpoints
from .faults import SWITCHES, RateWindows
from .phone import SimulatedPhones
from .platform import PlatformOperations
from .poster import LOG_LIMIT, CallbackPoster
from .protocol import (
    CONNECT_OPERATIONS,
    URL_BODY_OPERATIONS,
    Answer,
    check_request,
    connect_error,
    json_body,
    platform_error,
    route,
)
from .registrations import CallbackRegistrations
from .scheduler import Scheduler
from .server import Handler, Server
from .state import VibesState

# Vibes publishes no page size limit; this one makes a client cope with one.
MAX_PAGE_SIZE = 1000
CONFIRMATION_WINDOW = 24 * 3600.0  # seconds a participant has to reply "Y" (Marketo documents 24 hours)


class VibesSimulator(
    PlatformOperations, ConnectOperations, CallbackRegistrations, SimulatedPhones, ControlEndpoints
):
    """A Vibes on 127.0.0.1. `start()` / `stop()`, or use it as a context manager.

    It starts with the lists and acquisition campaigns in `lists` (each
    `{"id", "name", "acquisition_campaigns": [{"acquisition_id",
    "description", "keywords", "status", "end_date"}]}`) and the numbers in
    `subscribers` (rows of `add_subscriber`'s arguments) subscribed; nothing
    else.

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
        lists=(),
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
        self._seed_lists = list(lists)
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
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        self._poster: CallbackPoster | None = None
        self._generation = 0
        self._reset_state()

    # --- Lifecycle ----------------------------------------------------------

    def start(self) -> "VibesSimulator":
        if self._server is not None:
            return self
        handler = type("VibesSimulatorHandler", (Handler,), {"sim": self})
        self._stop_event.clear()
        self._server = Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._scheduler = Scheduler()
        self._poster = CallbackPoster()
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

    # --- Settings and state ---------------------------------------------------

    def _reset_state(self):
        with self._lock:
            self._generation += 1
            self.config = dict(self._initial_config)
            self.faults = dict(self._initial_faults)
            self.state = VibesState(
                company_key=self.company_key, lists=self._seed_lists, subscribers=self._seed_subscribers
            )
            self._log: deque = deque(maxlen=LOG_LIMIT)
            self._status_counts: Counter = Counter()
            self._windows = RateWindows()

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
        unknown = set(faults) - set(SWITCHES)
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
            self.state.set_campaign(
                acquisition_id, list_id=list_id, description=description, status=status, end_date=end_date
            )

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
            self.state.subscribe_now(
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
                self.state.subscribe_now(
                    list_id=str(list_id),
                    mdn=str(row.get("mdn") or ""),
                    external_person_id=str(row.get("external_person_id") or ""),
                    custom_fields=row.get("custom_fields"),
                )
            return len(rows)

    # --- Inspection -----------------------------------------------------------

    def messages(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self.state.messages]

    def requests_log(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._log]

    def registrations(self, *, with_passwords: bool = True) -> dict:
        """The callbacks registered: {"platform": [...], "connect": [...]}."""

        def shown(url):
            return url if with_passwords else url_passwords_hidden(url)

        with self._lock:
            return {
                "platform": [
                    {**r, "destination": {**r["destination"], "url": shown(r["destination"]["url"])}}
                    for r in self.state.registrations.values()
                ],
                "connect": [{**c, "url": shown(c["url"])} for c in self.state.connect_callbacks.values()],
            }

    def inbound(self) -> list[dict]:
        """What phones texted: message_id, mdn, text, unmatched, received_at."""
        with self._lock:
            return [dict(m) for m in self.state.inbound]

    def callbacks_log(self) -> list[dict]:
        return list(self._poster.log) if self._poster else []

    def subscriptions(self) -> list[dict]:
        """Every subscription and pending participant: list_id, mdn, status, ..."""
        with self._lock:
            return self.state.subscription_rows()

    def stats(self) -> dict:
        with self._lock:
            return {
                "requests": sum(self._status_counts.values()),
                "by_status": {str(k): v for k, v in sorted(self._status_counts.items())},
                "max_requests_per_second": self._windows.arrivals.peak,
                "max_admitted_per_second": self._windows.admitted.peak,
                "messages": len(self.state.messages),
                "persons": len(self.state.persons),
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
            except Answer as answer:
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
        operation, params = route(method, path)
        if operation in URL_BODY_OPERATIONS:
            entry["body"] = url_passwords_hidden(entry["body"])
        connect = operation in CONNECT_OPERATIONS
        with self._lock:
            verdict = self._windows.judge(arrived, self.faults, self._random)
        if verdict.rate_limited:
            # Refused before processing: Vibes sends no Retry-After.
            error = (connect_error if connect else platform_error)(
                429, "Too Many Requests", "too_many_requests"
            )
            return self._finish(entry, error.status, error.payload, fault="rate_limited")
        if verdict.latency_ms:
            time.sleep(verdict.latency_ms / 1000)
        if verdict.error_before:
            return self._finish(
                entry,
                503,
                {"errors": [{"message": "Service Unavailable", "code": 503}]},
                fault="error_before",
            )

        try:
            if operation is None:
                raise params  # the routing answer: 404 or 405
            check_request(
                headers,
                params,
                connect=connect,
                expected_auth=self._expected_auth,
                company_key=self.company_key,
            )
            body = json_body(raw_body, connect=connect) if method in ("POST", "PUT") else None
            entry["processed"] = True
            with self._lock:
                status, payload = getattr(self, f"_op_{operation}")(params=params, query=query, body=body)
        except Answer as answer:
            status, payload = answer.status, answer.payload

        if entry["processed"] and verdict.error_after:
            return self._finish(
                entry,
                500,
                {"errors": [{"message": "Internal Server Error", "code": 500}]},
                fault="error_after",
            )
        if entry["processed"] and verdict.hangs:
            self._finish(entry, status, payload, fault="timeout")
            self._stop_event.wait(verdict.hang_seconds)  # longer than the client waits
            return status, payload
        return self._finish(entry, status, payload)

    def _finish(self, entry, status, payload, *, fault=""):
        entry["status"] = status
        entry["fault"] = fault
        with self._lock:
            self._log.append(entry)
            self._status_counts[status] += 1
        return status, payload
