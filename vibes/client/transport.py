"""How every call reaches Vibes: one `requests.Session`, Basic auth,
`X-API-Version: 2`, a timeout on every call, the rate limiter, retries, and
Vibes' answers turned into typed errors (`vibes.exceptions`).

Every attempt first waits for the rate limiter, and tells it the moment the
request was written out (the connections of the client's pool report it).

Retries follow what Vibes can have processed. A 429 was refused before
processing and a connection that never opened sent nothing, so both are
retried for any method. A 5xx, a read timeout or a connection dropped after
sending are retried only for GET, PUT and DELETE; a POST in that state raises
`VibesUncertain` and is never resent, because Vibes takes no idempotency key
and a resend could text someone twice.
"""

import contextlib
import logging
import random
import threading
import time
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from ..exceptions import (
    VibesAuthError,
    VibesBadRequest,
    VibesCallWithheld,
    VibesConflict,
    VibesConnectionError,
    VibesError,
    VibesNotFound,
    VibesRateLimited,
    VibesServerError,
    VibesTimeout,
    VibesUncertain,
    VibesUnprocessable,
)
from ..ratelimit import Limiter, Permit
from ..redaction import url_passwords_hidden

logger = logging.getLogger("vibes.client")

# Methods Vibes may safely see twice: retried after a 5xx or a read timeout.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})

ERROR_CLASSES = {
    400: VibesBadRequest,
    401: VibesAuthError,
    403: VibesAuthError,
    404: VibesNotFound,
    409: VibesConflict,
    422: VibesUnprocessable,
}

MAX_BODY_KEPT = 2000

# The rate limiter's permit of the request this thread is sending, if any.
_sending = threading.local()


@contextlib.contextmanager
def calls_only_while(go_on):
    """The calls this thread makes inside go out only while `go_on()` is true:
    it is asked after the rate limiter lets each attempt go, so a caller can
    stop calls that were waiting for their turn (`VibesCallWithheld`)."""
    _sending.go_on = go_on
    try:
        yield
    finally:
        _sending.go_on = None


class _ReportsSent:
    """A connection that tells the permit of its request when the request was
    written out: from then on the rate limiter counts it as sent."""

    def request(self, *args, **kwargs):
        super().request(*args, **kwargs)
        permit = getattr(_sending, "permit", None)
        if permit is not None:
            permit.sent()


class _HTTPConnection(_ReportsSent, HTTPConnection):
    pass


class _HTTPSConnection(_ReportsSent, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def segment(value) -> str:
    """One URL path segment: ids come from data, so `/`, `?` and `+` are escaped."""
    return quote(str(value), safe="")


def _surely_not_sent(error: requests.RequestException) -> bool:
    """True when the connection never opened, so Vibes cannot have seen the request."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    # NewConnectionError (refused, DNS failure) subclasses ConnectTimeoutError.
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _error_envelope(data) -> list[dict]:
    """The `{"errors": [{"message", "code"}]}` envelope, or Connect's `{"error", "message"}`."""
    if not isinstance(data, dict):
        return []
    errors = data.get("errors")
    if isinstance(errors, list):
        return [
            {"message": str(e.get("message", "")), "code": e.get("code", "")}
            for e in errors
            if isinstance(e, dict)
        ]
    if "error" in data or "message" in data:
        return [{"message": str(data.get("message", "")), "code": data.get("error", "")}]
    return []


class Transport:
    """The client's connection to Vibes, shared by its operations (`platform`, `connect`)."""

    def __init__(
        self,
        *,
        platform_url: str,
        connect_url: str,
        company_key: str,
        username: str,
        password: str,
        short_code: str,
        rate_limiter: Limiter | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        max_attempts: int = 6,
        backoff_base: float = 0.25,
        backoff_max: float = 8.0,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ):
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("Vibes timeouts must be positive: a call without one can hang forever.")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1.")
        self.platform_url = platform_url.rstrip("/")
        self.connect_url = connect_url.rstrip("/")
        self.company_key = company_key
        self.username = username
        self._password = password
        self.short_code = short_code
        self.rate_limiter = rate_limiter
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._random = random.Random()
        self._random_lock = threading.Lock()

        self.session = session or requests.Session()
        self.session.auth = (username, password)
        self.session.headers.update(
            {"X-API-Version": "2", "Content-Type": "application/json", "Accept": "application/json"}
        )
        # No urllib3 retries (max_retries=0): the loop in _request retries, so
        # every attempt passes the rate limiter and POSTs are never resent blindly.
        adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _request(self, method: str, url: str, *, json=None, params=None) -> requests.Response:
        """Send one call with retries; return a 2xx response or raise a VibesError."""
        method = method.upper()
        path = urlsplit(url).path  # logs and errors name the path only: the query may hold a number
        idempotent = method in IDEMPOTENT_METHODS
        last_error: VibesError | None = None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self._sleep(self._backoff(attempt - 1))
            logger.debug("Vibes %s %s (attempt %d)", method, path, attempt)
            try:
                response = self._send(method, url, json=json, params=params)
            except requests.RequestException as error:
                last_error = self._transport_error(error, method, path, idempotent)
                if isinstance(last_error, VibesUncertain):
                    raise last_error from None
                logger.debug("Vibes %s %s: %s", method, path, last_error.message)
                continue

            status = response.status_code
            logger.debug("Vibes %s %s -> %d", method, path, status)
            if 200 <= status < 300:
                return response
            if status == 429:
                last_error = self._http_error(VibesRateLimited, response, method, path, "rate limited")
                continue
            if status >= 500:
                if not idempotent:
                    raise self._http_error(
                        VibesUncertain,
                        response,
                        method,
                        path,
                        "server error after sending; it may have been processed",
                    )
                last_error = self._http_error(VibesServerError, response, method, path, "server error")
                continue
            raise self._http_error(ERROR_CLASSES.get(status, VibesError), response, method, path, "refused")
        assert last_error is not None
        last_error.message += f" (gave up after {self.max_attempts} attempts)"
        raise last_error

    def _send(self, method, url, *, json, params) -> requests.Response:
        """One attempt, within the rate limit."""
        permit: Permit | None = self.rate_limiter.acquire() if self.rate_limiter is not None else None
        go_on = getattr(_sending, "go_on", None)
        if go_on is not None and not go_on():
            if permit is not None:
                permit.sent()
            raise VibesCallWithheld(f"Vibes {method} {urlsplit(url).path}: not sent, the caller stopped")
        _sending.permit = permit
        try:
            return self.session.request(
                method, url, json=json, params=params, timeout=self.timeout, allow_redirects=False
            )
        finally:
            _sending.permit = None
            if permit is not None:
                # Sent already if the connection said so; otherwise (it failed,
                # or went another way) it counts as sent from now on.
                permit.sent()

    def _transport_error(self, error, method, path, idempotent) -> VibesError:
        kind = type(error).__name__
        if _surely_not_sent(error):
            host = urlsplit(error.request.url).netloc if getattr(error, "request", None) else ""
            return VibesConnectionError(
                f"Vibes {method} {path}: could not connect to {host.rpartition('@')[2]} ({kind})"
            )
        if not idempotent:
            what = "no answer in time" if isinstance(error, requests.ReadTimeout) else "connection lost"
            return VibesUncertain(
                f"Vibes {method} {path}: {what} after sending; it may have been processed ({kind})"
            )
        if isinstance(error, requests.Timeout):
            return VibesTimeout(f"Vibes {method} {path}: no answer in time ({kind})")
        return VibesConnectionError(f"Vibes {method} {path}: connection failed ({kind})")

    def _http_error(self, cls, response, method, path, what) -> VibesError:
        body = self._scrub(response.text[:MAX_BODY_KEPT])
        try:
            errors = _error_envelope(response.json())
        except ValueError:
            errors = []
        detail = "; ".join(self._scrub(e["message"]) for e in errors if e["message"])
        message = f"Vibes {method} {path}: {what} (HTTP {response.status_code})"
        return cls(
            f"{message}: {detail}" if detail else message,
            status=response.status_code,
            body=body,
            errors=errors,
        )

    def _scrub(self, text: str) -> str:
        """Vibes never echoes credentials, but an error must not carry them even if it did:
        neither ours nor the callbacks URL's, which a refused registration may quote."""
        text = url_passwords_hidden(text)
        return text.replace(self._password, "[redacted]") if self._password else text

    def _backoff(self, retry: int) -> float:
        return self._jitter(min(self.backoff_max, self.backoff_base * 2 ** (retry - 1)))

    def _jitter(self, delay: float) -> float:
        """Between half and all of `delay`, so clients that failed together spread out.

        Kept apart so tests can make it deterministic.
        """
        with self._random_lock:
            return delay * (0.5 + self._random.random() / 2)

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    def _json(response: requests.Response):
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise VibesError(
                f"Vibes answered something that is not JSON (HTTP {response.status_code}).",
                status=response.status_code,
                body=response.text[:MAX_BODY_KEPT],
            ) from None

    @staticmethod
    def _items(data) -> list[dict]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise VibesError(
                "Vibes answered an unexpected shape: a list was expected.", body=str(data)[:MAX_BODY_KEPT]
            )
        return [item for item in data if isinstance(item, dict)]

    @staticmethod
    def _found(data) -> dict | None:
        """The one item a search answered (an object, or the first of a list), or None."""
        if isinstance(data, list):
            data = data[0] if data else None
        return data if isinstance(data, dict) else None
