"""The Vibes HTTP client: the Platform API (lists, participants, persons,
subscriptions) and the Connect message API (SMS), on one `requests.Session`.

No Django here: `vibes.conf.get_client()` builds the client from settings.

Every attempt first waits for the rate limiter, and tells it the moment the
request was written out (the connections of the client's pool report it).

Retries follow what Vibes can have processed. A 429 was refused before
processing and a connection that never opened sent nothing, so both are
retried for any method. A 5xx, a read timeout or a connection dropped after
sending are retried only for GET, PUT and DELETE; a POST in that state raises
`VibesUncertain` and is never resent, because Vibes takes no idempotency key
and a resend could text someone twice.
"""

import logging
import random
import re
import threading
import time
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from .exceptions import (
    VibesAuthError,
    VibesBadRequest,
    VibesConflict,
    VibesConnectionError,
    VibesError,
    VibesNotFound,
    VibesPagingUnsupported,
    VibesRateLimited,
    VibesServerError,
    VibesTimeout,
    VibesUncertain,
    VibesUnprocessable,
)
from .ratelimit import Limiter, Permit
from .types import (
    AcquisitionCampaignInfo,
    CallbackRegistration,
    ParticipantResult,
    PersonInfo,
    SentMessage,
    SubscriberInfo,
    SubscriptionInfo,
    SubscriptionListInfo,
)

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

# user:password@ in any URL an answer may echo (a callbacks URL we registered).
URL_PASSWORD = re.compile(r"(?P<start>[a-z][a-z0-9+.\-]*://[^\s/?#:@'\"<>]*):[^\s/?#@'\"<>]*@", re.IGNORECASE)

# The rate limiter's permit of the request this thread is sending, if any.
_sending = threading.local()


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


def _segment(value) -> str:
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


class VibesClient:
    """Blocking, thread-safe client for the Vibes operations this project uses."""

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

    def __repr__(self):
        return (
            f"<VibesClient platform_url={self.platform_url!r} connect_url={self.connect_url!r} "
            f"company_key={self.company_key!r} username={self.username!r}>"
        )

    # --- Platform API: lists and acquisition campaigns -----------------------

    def _company_url(self, *segments) -> str:
        return "/".join([self.platform_url, "companies", _segment(self.company_key), *segments])

    def list_subscription_lists(self) -> list[SubscriptionListInfo]:
        data = self._json(self._request("GET", self._company_url("mobiledb", "subscription_lists", "")))
        return [
            SubscriptionListInfo(id=str(item.get("id", "")), name=str(item.get("name") or ""))
            for item in self._items(data)
            if item.get("id") not in (None, "")
        ]

    def list_acquisition_campaigns(self, list_id) -> list[AcquisitionCampaignInfo]:
        url = self._company_url(
            "mobiledb", "subscription_lists", _segment(list_id), "acquisition_campaigns", ""
        )
        data = self._json(self._request("GET", url))
        campaigns = []
        for item in self._items(data):
            if item.get("acquisition_id") in (None, ""):
                continue
            keywords = (item.get("acquisition_campaign") or {}).get("keywords") or ()
            campaigns.append(
                AcquisitionCampaignInfo(
                    acquisition_id=str(item["acquisition_id"]),
                    name=str(item.get("description") or item.get("name") or ""),
                    status=str(item.get("status") or "").strip().lower(),
                    keywords=tuple(str(k) for k in keywords),
                    end_date=str(item.get("end_date") or ""),
                )
            )
        return campaigns

    # --- Platform API: participants, persons, subscriptions ------------------

    def add_participant(self, acquisition_id, *, mdn: str, external_person_id: str) -> ParticipantResult:
        """Add a person to an acquisition campaign; Vibes then texts them to confirm.

        409 (already subscribed) is returned as a success; 422 raises
        VibesUnprocessable with Vibes' code (e.g. MDNHASCONFIRMATIONBLOCK);
        400 (bad number) raises VibesBadRequest.
        """
        url = self._company_url("campaigns", "acquisition", _segment(acquisition_id), "participants")
        body = {"mobile_phone": {"mdn": mdn}, "external_person_id": str(external_person_id)}
        try:
            data = self._json(self._request("POST", url, json=body))
        except VibesConflict:
            return ParticipantResult(status="subscribed", person_key="", already_subscribed=True)
        data = data if isinstance(data, dict) else {}
        # Vibes answers PENDING or SUBSCRIBED; 200 without a status means pending.
        status = "subscribed" if str(data.get("status") or "").lower() == "subscribed" else "pending"
        person = data.get("person") if isinstance(data.get("person"), dict) else {}
        return ParticipantResult(status=status, person_key=str(person.get("person_key") or ""))

    def _external_subscription_url(self, external_person_id, list_id) -> str:
        return self._company_url(
            "mobiledb",
            "persons",
            "external",
            _segment(external_person_id),
            "subscriptions",
            _segment(list_id),
        )

    def unsubscribe(self, list_id, *, external_person_id: str, mdn: str | None = None) -> bool:
        """Unsubscribe a person from a list. True: unsubscribed now; False: was not subscribed.

        Vibes answers 404 both for an unknown person and for one who is not
        subscribed: either way there is nothing left to do. The person may be
        known to Vibes under another external id (people sharing a number), so
        with `mdn` a 404 is retried by the person key found for that number.
        """
        url = self._external_subscription_url(external_person_id, list_id)
        try:
            self._request("DELETE", url)
            return True
        except VibesNotFound:
            if not mdn:
                return False
        person = self.find_person(mdn)
        if person is None or not person.person_key or person.external_person_id == str(external_person_id):
            return False
        url = self._company_url(
            "mobiledb", "persons", _segment(person.person_key), "subscriptions", _segment(list_id)
        )
        try:
            self._request("DELETE", url)
            return True
        except VibesNotFound:
            return False

    def get_subscription(self, list_id, *, external_person_id: str) -> SubscriptionInfo | None:
        """The person's subscription to this list, or None when Vibes knows none (404)."""
        url = self._external_subscription_url(external_person_id, list_id)
        try:
            data = self._json(self._request("GET", url))
        except VibesNotFound:
            return None
        # The contract answers a list of subscriptions; accept a single object too.
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        items = [i for i in items if isinstance(i, dict)]
        for item in items:
            if str((item.get("subscription_list") or {}).get("id", list_id)) == str(list_id):
                return SubscriptionInfo(
                    list_id=str(list_id),
                    opt_in_date=str(item.get("opt_in_date") or ""),
                    opt_out_date=str(item.get("opt_out_date") or ""),
                    opt_out_reason=str(item.get("opt_out_reason") or ""),
                )
        return None

    def find_person(self, mdn: str) -> PersonInfo | None:
        """The person with this number, or None (404)."""
        # `params` goes through urlencode, which writes the E.164 "+" as %2B as
        # Vibes requires (a bare "+" would be read as a space).
        try:
            data = self._json(
                self._request("GET", self._company_url("mobiledb", "persons"), params={"mdn": mdn})
            )
        except VibesNotFound:
            return None
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, dict):
            return None
        return PersonInfo(
            person_key=str(data.get("person_key") or ""),
            external_person_id=str(data.get("external_person_id") or ""),
            mdn=str((data.get("mobile_phone") or {}).get("mdn") or mdn),
        )

    # --- Platform API: callback registrations ----------------------------------
    # The bodies carry our callbacks URL with its credentials: they are never
    # logged, and errors hide passwords in URLs (see _scrub).

    def list_callbacks(self) -> list[CallbackRegistration]:
        """Every callback registered for the company, whoever registered it."""
        data = self._json(self._request("GET", self._company_url("config", "callbacks", "")))
        return [self._platform_callback(item) for item in self._items(data)]

    def register_callback(self, callback_type: str, *, url: str, details=None) -> CallbackRegistration:
        """Register `url` for one callback type; `details` is the type's own object (e.g. a
        source code for unmatched messages). No details: every list and campaign."""
        body = self._callback_body(callback_type, url, details)
        data = self._json(self._request("POST", self._company_url("config", "callbacks", ""), json=body))
        return self._platform_callback(data if isinstance(data, dict) else {}, sent=body)

    def update_callback(
        self, callback_id, callback_type: str, *, url: str, details=None
    ) -> CallbackRegistration:
        """Rewrite a registration as if it were registered anew with these values."""
        body = self._callback_body(callback_type, url, details)
        data = self._json(
            self._request("PUT", self._company_url("config", "callbacks", _segment(callback_id)), json=body)
        )
        return self._platform_callback(
            data if isinstance(data, dict) else {}, sent=body, callback_id=callback_id
        )

    def cancel_callback(self, callback_id) -> bool:
        """Cancel a registration. True: cancelled now; False: Vibes knew no such registration."""
        try:
            self._request("DELETE", self._company_url("config", "callbacks", _segment(callback_id)))
        except VibesNotFound:
            return False
        return True

    def send_test_callback(self, callback_type: str, **details) -> str:
        """Ask Vibes to post a test event of this type to its registered URL; its event id, or "".

        `details` are the contract's test fields for the type (`subscription`,
        `participant`...). Vibes answers 404 when no active callback of the
        type is registered (VibesNotFound).
        """
        body = {"callback_type": callback_type, **details}
        data = self._json(
            self._request("POST", self._company_url("config", "callback_events", "test"), json=body)
        )
        return str(data.get("event_id") or "") if isinstance(data, dict) else ""

    @staticmethod
    def _callback_body(callback_type, url, details) -> dict:
        body = {
            "callback_type": callback_type,
            "destination": {"url": url, "method": "POST", "content_type": "application/json"},
        }
        if details:
            body[callback_type] = dict(details)
        return body

    @staticmethod
    def _platform_callback(item: dict, *, sent=None, callback_id="") -> CallbackRegistration:
        """A registration from Vibes' answer, or from what was sent when the answer has no body (201)."""
        if not item and sent:
            item = {**sent, "callback_id": callback_id}
        callback_type = str(item.get("callback_type") or "")
        destination = item.get("destination") if isinstance(item.get("destination"), dict) else {}
        scope = item.get(callback_type) if isinstance(item.get(callback_type), dict) else {}
        return CallbackRegistration(
            api="platform",
            id=str(item.get("callback_id") or callback_id or ""),
            callback_type=callback_type,
            url=str(destination.get("url") or ""),
            method=str(destination.get("method") or ""),
            content_type=str(destination.get("content_type") or ""),
            scope=tuple(sorted((str(k), str(v)) for k, v in scope.items() if v not in (None, ""))),
            end_date=str(item.get("end_date") or ""),
        )

    # --- Connect: callback registration ------------------------------------------

    def register_connect_callback(self, callback_type: str, *, url: str) -> CallbackRegistration:
        """Register `url` for Connect's inbound SMS or delivery receipts of our short code.

        Connect publishes no way to list, change or cancel a registration, so
        the caller keeps its own record of what it registered.
        """
        body = {"callback_type": callback_type, "url": url, "short_code": self.short_code}
        data = self._json(self._request("POST", f"{self.connect_url}/api/v1/callbacks", json=body))
        data = data if isinstance(data, dict) else {}
        return CallbackRegistration(
            api="connect",
            id=str(data.get("id") or ""),
            callback_type=str(data.get("callback_type") or callback_type),
            url=str(data.get("url") or url),
            short_code=str(data.get("short_code") or self.short_code),
        )

    # --- Platform API: a list's subscribers -----------------------------------

    def _subscribers_url(self, list_id) -> str:
        return self._company_url("mobiledb", "subscription_lists", _segment(list_id), "subscribers")

    def list_subscribers(self, list_id, *, page: int, page_size: int) -> list[SubscriberInfo]:
        """One page (1-indexed) of the list's subscribers; an empty page after the last.

        Beyond the contract: it documents `subscribers` as a search for one
        subscriber and publishes no paging for it. `page` and `page_size` are
        the paging Vibes publishes elsewhere (conventions.yml), and the answer
        is read as an array of the contract's person resource. Anything else
        raises VibesPagingUnsupported, so a caller can fall back to
        `find_subscriber`, which the contract does document.
        """
        data = self._json(
            self._request(
                "GET", self._subscribers_url(list_id), params={"page": page, "page_size": page_size}
            )
        )
        if data is None:
            return []
        if not isinstance(data, list):
            raise VibesPagingUnsupported(
                f"Vibes answered page {page} of list {list_id}'s subscribers with something other than "
                "a page (a JSON array of persons).",
                body=str(data)[:MAX_BODY_KEPT],
            )
        return [self._subscriber(item) for item in data if isinstance(item, dict)]

    def find_subscriber(self, list_id, *, mdn: str) -> SubscriberInfo | None:
        """The list's subscriber with this number, or None (404: unknown or not subscribed)."""
        try:
            data = self._json(self._request("GET", self._subscribers_url(list_id), params={"mdn": mdn}))
        except VibesNotFound:
            return None
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, dict):
            return None
        return self._subscriber(data, mdn=mdn)

    @staticmethod
    def _subscriber(item: dict, mdn: str = "") -> SubscriberInfo:
        phone = item.get("mobile_phone") if isinstance(item.get("mobile_phone"), dict) else {}
        fields = item.get("custom_fields") if isinstance(item.get("custom_fields"), dict) else {}
        return SubscriberInfo(
            person_key=str(item.get("person_key") or ""),
            external_person_id=str(item.get("external_person_id") or ""),
            mdn=str(phone.get("mdn") or mdn),
            custom_fields={str(k): str(v) for k, v in fields.items() if v is not None},
        )

    # --- Connect: SMS ---------------------------------------------------------

    def send_sms(self, *, to: str, text: str, callback_url: str | None = None) -> SentMessage:
        """Send one SMS from the short code. A 5xx or timeout raises VibesUncertain."""
        body = {"to": to, "from": self.short_code, "text": text}
        if callback_url:
            body["callback_url"] = callback_url
        data = self._json(self._request("POST", f"{self.connect_url}/api/v1/sms/messages", json=body))
        data = data if isinstance(data, dict) else {}
        return SentMessage(message_id=str(data.get("message_id") or ""), status=str(data.get("status") or ""))

    # --- Transport ------------------------------------------------------------

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
        text = URL_PASSWORD.sub(lambda m: f"{m['start']}:***@", text)
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
