"""This installation's callbacks at Vibes: register them, list them, test them.

Vibes posts an event only for the callback types registered with it, so the
product registers its callbacks URL for every type it reads: the keys of
`vibes.callbacks.APPLIERS`, so a type added there is registered by the next
`register`. Each type goes where Vibes offers it: subscription and
acquisition events on the Platform (`config/callbacks`), delivery receipts
and inbound SMS on Connect (`/api/v1/callbacks`).

Registering twice changes nothing. A registration is ours when its URL has
our scheme, host, port and path; one whose credentials, method, content type,
scope or end date differ from what we want is updated in place (PUT), and a
second one of ours for the same type is cancelled, so that Vibes posts each
event once. Registrations of other URLs are left alone. Connect only
registers (it publishes no list, change or cancel): what we registered there
is kept in ConnectCallback and registered again when the URL changed.

A test asks Vibes for its test event of each Platform type we registered
(Connect has no test event), with a marker as the person id that the
callbacks endpoint recognises, and waits until the endpoint has stored the
event or the deadline passes. A test event never changes a subscription.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from .callbacks import APPLIERS
from .client import VibesClient
from .exceptions import (
    VibesAuthError,
    VibesConnectionError,
    VibesError,
    VibesNotFound,
    VibesTimeout,
)
from .models import AcquisitionCampaign, CallbackEvent, CallbackTest, ConnectCallback, VibesList
from .types import CallbackRegistration, url_without_password

PLATFORM = "platform"
CONNECT = "connect"
API_NAMES = {PLATFORM: "Platform", CONNECT: "Connect"}

# The types each API registers, as the contract names them: the Platform's
# callbackRequest-* schemas and Connect's CallbackCreate.
PLATFORM_TYPES = frozenset(
    {
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
)
CONNECT_TYPES = frozenset({"delivery_receipt", "inbound_sms"})

# What a registration of ours looks like once registered as we want it.
METHOD = "POST"
CONTENT_TYPE = "application/json"


class CallbacksNotConfigured(Exception):
    """The settings give no URL that Vibes could post to with credentials the endpoint accepts."""


# --- The URL ----------------------------------------------------------------------------------


def callbacks_url() -> str:
    """The callbacks URL to register, with its Basic credentials: VIBES_DELIVERY_RECEIPT_URL,
    given VIBES_CALLBACK_USERNAME and VIBES_CALLBACK_PASSWORD when it carries none."""
    url = settings.VIBES_DELIVERY_RECEIPT_URL.strip()
    if not url:
        raise CallbacksNotConfigured(
            _(
                "VIBES_DELIVERY_RECEIPT_URL is not set: set it to this app's callbacks URL as Vibes "
                "reaches it, for example https://sms.example.com/vibes/callbacks/."
            )
        )
    if not settings.VIBES_CALLBACK_PASSWORD:
        raise CallbacksNotConfigured(
            _(
                "VIBES_CALLBACK_PASSWORD is not set, and without it the callbacks endpoint "
                "refuses every event."
            )
        )
    try:
        parts = urlsplit(url)
        username, password, host = parts.username, parts.password, parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise CallbacksNotConfigured(
            _("VIBES_DELIVERY_RECEIPT_URL (%(url)s) is not an http or https URL.")
            % {"url": url_without_password(url)}
        )
    if username is None and password is None:
        userinfo = (
            f"{quote(settings.VIBES_CALLBACK_USERNAME, safe='')}:"
            f"{quote(settings.VIBES_CALLBACK_PASSWORD, safe='')}"
        )
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    if (unquote(username or ""), unquote(password or "")) != (
        settings.VIBES_CALLBACK_USERNAME,
        settings.VIBES_CALLBACK_PASSWORD,
    ):
        raise CallbacksNotConfigured(
            _(
                "The credentials in VIBES_DELIVERY_RECEIPT_URL are not VIBES_CALLBACK_USERNAME and "
                "VIBES_CALLBACK_PASSWORD, so the callbacks endpoint would refuse every event Vibes posts."
            )
        )
    return url


def _place(url: str) -> tuple:
    """Where a URL leads, credentials and query aside: what makes a registration ours."""
    try:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.hostname, parts.port, parts.path.rstrip("/"))
    except ValueError:
        return ("", url)


def _digest(url: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), url.encode(), hashlib.sha256).hexdigest()


# --- What we want registered, and what is ----------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """An event type the product reads, and the API that registers it ("" when neither does)."""

    callback_type: str
    api: str


def callbacks_wanted() -> list[Wanted]:
    wanted = []
    for callback_type in sorted(APPLIERS):
        api = (
            PLATFORM if callback_type in PLATFORM_TYPES else CONNECT if callback_type in CONNECT_TYPES else ""
        )
        wanted.append(Wanted(callback_type, api))
    return wanted


def _details(callback_type: str) -> dict | None:
    """The type's own object in a Platform registration. None: every list and campaign."""
    if callback_type == "unmatched_message_received":
        # Required: the code whose unmatched messages are wanted, ours.
        return {"source_code": settings.VIBES_SHORT_CODE, "country_code": settings.PHONE_DEFAULT_REGION}
    return None


CURRENT = "current"
OUTDATED = "outdated"
MISSING = "missing"
UNSUPPORTED = "unsupported"
STATE_LABELS = {
    CURRENT: gettext_lazy("registered"),
    OUTDATED: gettext_lazy("registered, but out of date"),
    MISSING: gettext_lazy("not registered"),
    UNSUPPORTED: gettext_lazy("no Vibes API registers this type"),
}


@dataclass
class Row:
    """One type we read and its registration: the one of ours to keep, and any second ones."""

    wanted: Wanted
    state: str
    registration: CallbackRegistration | None = None
    duplicates: list[CallbackRegistration] = field(default_factory=list)
    registered_at: datetime | None = None  # Connect: when we registered it (Connect tells nothing)

    @property
    def api_name(self) -> str:
        return API_NAMES.get(self.wanted.api, "—")

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])


@dataclass
class Overview:
    url: str = field(repr=False)
    rows: list[Row]
    others: list[CallbackRegistration]

    @property
    def shown_url(self) -> str:
        return url_without_password(self.url)


def _expired(end_date: str) -> bool:
    """True when a registration's end date has come: Vibes posts nothing for it any more."""
    value = (end_date or "").strip()
    if not value:
        return False
    try:
        day = parse_date(value)
        if day is not None:
            return day <= datetime.now(UTC).date()
        moment = parse_datetime(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    if moment is None:
        return False
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment <= timezone.now()


def _as_wanted(registration: CallbackRegistration, url: str) -> bool:
    details = _details(registration.callback_type) or {}
    return (
        registration.url == url
        and registration.method.upper() in ("", METHOD)
        and registration.content_type.lower() in ("", CONTENT_TYPE)
        and registration.scope == tuple(sorted((k, str(v)) for k, v in details.items()))
        and not _expired(registration.end_date)
    )


def callbacks_overview(*, client: VibesClient) -> Overview:
    """What is registered for each type we read, and Vibes' other registrations.

    Raises CallbacksNotConfigured, or a VibesError when the Platform cannot be asked.
    """
    url = callbacks_url()
    ours_place = _place(url)
    platform = client.list_callbacks()
    connect = {(c.callback_type, c.short_code): c for c in ConnectCallback.objects.all()}
    rows, used = [], set()
    for wanted in callbacks_wanted():
        if wanted.api == PLATFORM:
            ours = [
                r for r in platform if r.callback_type == wanted.callback_type and _place(r.url) == ours_place
            ]
            # The one to keep: one registered as we want it, else the first.
            ours.sort(key=lambda r: not _as_wanted(r, url))
            used.update(id(r) for r in ours)
            if not ours:
                rows.append(Row(wanted, MISSING))
            else:
                state = CURRENT if _as_wanted(ours[0], url) else OUTDATED
                rows.append(Row(wanted, state, ours[0], ours[1:]))
        elif wanted.api == CONNECT:
            record = connect.get((wanted.callback_type, client.short_code))
            if record is None:
                rows.append(Row(wanted, MISSING))
                continue
            registration = CallbackRegistration(
                api=CONNECT,
                id=record.vibes_id,
                callback_type=record.callback_type,
                url=record.shown_url,
                short_code=record.short_code,
            )
            state = CURRENT if hmac.compare_digest(record.url_digest, _digest(url)) else OUTDATED
            rows.append(Row(wanted, state, registration, registered_at=record.registered_at))
        else:
            rows.append(Row(wanted, UNSUPPORTED))
    others = [r for r in platform if id(r) not in used]
    return Overview(url=url, rows=rows, others=others)


# --- Register ------------------------------------------------------------------------------------

REGISTERED = "registered"
UPDATED = "updated"
UNCHANGED = "unchanged"
CANCELLED = "cancelled"
NOT_OFFERED = "not_offered"
FAILED = "failed"
ACTION_LABELS = {
    REGISTERED: pgettext_lazy("what became of a callback registration", "registered"),
    UPDATED: pgettext_lazy("what became of a callback registration", "updated"),
    UNCHANGED: gettext_lazy("already registered, unchanged"),
    CANCELLED: gettext_lazy("a second registration of this URL, cancelled"),
    NOT_OFFERED: gettext_lazy("not registered: no Vibes API registers this type"),
    FAILED: gettext_lazy("refused by Vibes"),
}


@dataclass(frozen=True)
class Change:
    api: str
    callback_type: str
    action: str
    registration_id: str = ""
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action == FAILED

    @property
    def line(self) -> str:
        text = f"{API_NAMES.get(self.api, '—')} {self.callback_type}: {ACTION_LABELS[self.action]}"
        if self.registration_id:
            text += f" ({self.registration_id})"
        return f"{text}: {self.detail}" if self.detail else text


def callbacks_register(*, client: VibesClient, connect_again: bool = False) -> list[Change]:
    """Register our callbacks URL for every type we read, on the API that offers it; idempotent.

    Connect cannot be asked what it holds, so a Connect registration recorded
    as current is trusted; `connect_again` registers it all the same (Connect
    keeps one URL per type and short code, so this changes nothing else).

    A type Vibes refuses is reported and the others go on; what was done
    stays done, and a second run takes up from there. Raises
    CallbacksNotConfigured, or a VibesError when the registrations cannot be
    read or Vibes cannot be reached or refuses our credentials.
    """
    overview = callbacks_overview(client=client)
    changes = []
    for row in overview.rows:
        try:
            changes += _register_one(client, overview, row, connect_again)
        except (VibesConnectionError, VibesTimeout, VibesAuthError):
            raise
        except VibesError as error:
            changes.append(Change(row.wanted.api, row.wanted.callback_type, FAILED, detail=str(error)))
    return changes


def _register_one(client: VibesClient, overview: Overview, row: Row, connect_again: bool) -> list[Change]:
    callback_type, api = row.wanted.callback_type, row.wanted.api
    if api == PLATFORM:
        details = _details(callback_type)
        if row.state == MISSING:
            made = client.register_callback(callback_type, url=overview.url, details=details)
            changes = [Change(api, callback_type, REGISTERED, made.id)]
        elif row.state == OUTDATED:
            client.update_callback(row.registration.id, callback_type, url=overview.url, details=details)
            changes = [Change(api, callback_type, UPDATED, row.registration.id)]
        else:
            changes = [Change(api, callback_type, UNCHANGED, row.registration.id)]
        for duplicate in row.duplicates:
            # Two registrations of our URL would post every event twice.
            client.cancel_callback(duplicate.id)
            changes.append(Change(api, callback_type, CANCELLED, duplicate.id))
        return changes
    if api == CONNECT:
        if row.state == CURRENT and not connect_again:
            return [Change(api, callback_type, UNCHANGED, row.registration.id)]
        made = client.register_connect_callback(callback_type, url=overview.url)
        ConnectCallback.objects.update_or_create(
            callback_type=callback_type,
            short_code=client.short_code,
            defaults={
                "vibes_id": made.id[:64],
                "shown_url": overview.shown_url[:500],
                "url_digest": _digest(overview.url),
                "registered_at": timezone.now(),
            },
        )
        return [Change(api, callback_type, REGISTERED if row.state == MISSING else UPDATED, made.id)]
    return [Change(api, callback_type, NOT_OFFERED)]


# --- Test ------------------------------------------------------------------------------------------

ARRIVED = "arrived"
NOT_ARRIVED = "not_arrived"
REFUSED = "refused"
NOT_REGISTERED = "not_registered"
NO_TEST = "no_test"
# Outcomes that mean the callbacks do not work as they should.
FAILURES = frozenset({NOT_ARRIVED, REFUSED, NOT_REGISTERED})


@dataclass
class TestResult:
    api: str
    callback_type: str
    outcome: str
    detail: str
    test: CallbackTest | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES

    @property
    def line(self) -> str:
        return f"{API_NAMES.get(self.api, '—')} {self.callback_type}: {self.detail}"


# The Platform types whose test event the app can send and recognise (its marker
# comes back as the person or participant id).
TESTABLE_TYPES = frozenset(
    {"subscription_added", "subscription_removed", "ack_participant_added", "ack_participant_changed"}
)


def _test_details(callback_type: str, marker: str) -> tuple[dict | None, str]:
    """The contract's test fields for a type, with the marker as the person; or (None, why not)."""
    if callback_type in ("subscription_added", "subscription_removed"):
        vibes_list = VibesList.objects.active().order_by("name", "pk").first()
        if vibes_list is None:
            return None, _("No Vibes list to test with: sync the Vibes lists first.")
        return {
            "subscription": {"person": {"id": marker}, "subscription_list": {"id": vibes_list.vibes_id}}
        }, ""
    if callback_type in ("ack_participant_added", "ack_participant_changed"):
        campaign = (
            AcquisitionCampaign.objects.running().select_related("vibes_list").order_by("name", "pk").first()
            or AcquisitionCampaign.objects.active()
            .select_related("vibes_list")
            .order_by("name", "pk")
            .first()
        )
        if campaign is None:
            return None, _("No acquisition campaign to test with: sync the Vibes lists first.")
        return {
            "participant": {
                "id": marker,
                "acquisition_campaign": {"api_key": campaign.vibes_id, "description": marker},
                "subscription_list": {"id": campaign.vibes_list.vibes_id},
            }
        }, ""
    return None, _("The Vibes contract has no test event of this type that the app can recognise.")


def _connect_result(callback_type: str) -> TestResult:
    last = (
        CallbackEvent.objects.filter(event_type=callback_type)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    if last is None:
        seen = _("none has arrived yet")
    else:
        seen = _("the last arrived at %(time)s") % {
            "time": timezone.localtime(last).strftime("%Y-%m-%d %H:%M:%S")
        }
    return TestResult(
        CONNECT,
        callback_type,
        NO_TEST,
        _("Connect has no test event; %(seen)s.") % {"seen": seen},
    )


def callbacks_test(*, client: VibesClient, deadline: float, poll_every: float = 0.2) -> list[TestResult]:
    """Ask Vibes for a test event of each Platform type we registered; wait up to `deadline`
    seconds for them at the callbacks endpoint; say for each type what happened.

    Raises CallbacksNotConfigured, or a VibesError when the registrations cannot be read.
    """
    overview = callbacks_overview(client=client)
    results: list[TestResult] = []
    waiting: list[TestResult] = []
    for row in overview.rows:
        callback_type, api = row.wanted.callback_type, row.wanted.api
        if api == CONNECT:
            results.append(_connect_result(callback_type))
            continue
        if api != PLATFORM:
            results.append(TestResult(api, callback_type, NO_TEST, str(STATE_LABELS[UNSUPPORTED])))
            continue
        if row.state != CURRENT:
            # A test would go to whatever URL is registered, not necessarily ours.
            results.append(
                TestResult(
                    api,
                    callback_type,
                    NOT_REGISTERED,
                    _("%(state)s for this app's URL: register it first.") % {"state": row.state_label},
                )
            )
            continue
        marker = f"{CallbackTest.MARKER_PREFIX}{secrets.token_hex(12)}"
        details, problem = _test_details(callback_type, marker)
        if details is None:
            results.append(TestResult(api, callback_type, NO_TEST, problem))
            continue
        # Stored before asking: the event may arrive before Vibes answers.
        test = CallbackTest.objects.create(
            callback_type=callback_type,
            marker=marker,
            wait_until=timezone.now() + timedelta(seconds=deadline),
        )
        result = TestResult(api, callback_type, NOT_ARRIVED, "", test)
        try:
            test.vibes_event_id = client.send_test_callback(callback_type, **details)[:100]
        except VibesNotFound:
            test.error = _("Vibes has no active callback of this type.")[:300]
            result.outcome, result.detail = REFUSED, test.error
        except VibesError as error:
            test.error = str(error)[:300]
            result.outcome, result.detail = REFUSED, _("Vibes refused the test: %(error)s") % {"error": error}
        test.save(update_fields=["vibes_event_id", "error"])
        results.append(result)
        if result.outcome == NOT_ARRIVED:
            waiting.append(result)

    _wait_for_arrivals([r.test for r in waiting], deadline, poll_every)
    for result in waiting:
        result.test.refresh_from_db()
        if result.test.arrived_at is not None:
            result.outcome = ARRIVED
            result.detail = _("the test event arrived after %(seconds).1f s.") % {
                "seconds": result.test.seconds_to_arrive
            }
        else:
            result.detail = _(
                "the test event did not arrive within %(seconds)g s: check that Vibes reaches "
                "%(url)s and that its credentials are the callback credentials."
            ) % {"seconds": deadline, "url": overview.shown_url}
    return results


def _wait_for_arrivals(tests: list[CallbackTest], deadline: float, poll_every: float) -> None:
    """Until every test has arrived, or `deadline` seconds have passed."""
    waiting = {test.pk for test in tests}
    give_up_at = time.monotonic() + deadline
    while waiting:
        waiting -= set(
            CallbackTest.objects.filter(pk__in=waiting, arrived_at__isnull=False).values_list("pk", flat=True)
        )
        if not waiting or time.monotonic() >= give_up_at:
            return
        time.sleep(poll_every)
