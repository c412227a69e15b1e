"""Callbacks on their way to the app: a queue, a few worker threads, retries as Vibes makes them.

API answers never wait for the app: an operation only queues its callbacks.
"""

import logging
import queue
import threading
from collections import deque
from urllib.parse import urlsplit

import requests

from .protocol import now_iso

logger = logging.getLogger("vibes.simulator")

# The most entries a log of the simulator keeps (requests, callbacks).
LOG_LIMIT = 200_000


class CallbackPoster:
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
                "at": now_iso(),
            }
        )
