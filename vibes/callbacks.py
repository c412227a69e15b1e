"""What Vibes posts to `/vibes/callbacks/`: subscription events, acquisition
participant events, Connect delivery receipts, and the texts phones send to
the short code (Connect's `inbound_sms`, the Platform's
`unmatched_message_received`).

Vibes signs nothing, so the endpoint is protected by HTTP Basic credentials
(in the URL registered with Vibes) and an optional source-IP allowlist.
Vibes delivers at least once: every event is stored raw in CallbackEvent
under a dedupe key, and a repeat only counts a delivery. The event type comes
from a header or from an `event_type` / `callback_type` body field; the body
is shaped like the matching API resource (`person`, `subscription_list`,
`opt_in_date`, `opt_out_date`, `opt_out_reason`, `mobile_phone.mdn`,
`external_person_id`).

Vibes delivers in any order, too (R9): subscription events take effect by
their own time (`opt_in_date`, `opt_out_date`; `participation_date` for
acquisition participants), an event older than the last change applied for
its number and list is kept as superseded and changes nothing, and at equal
times the opt-out wins (`vibes.subscriptions`). People are found by the
number; the external person id only picks one of the people with it, and
when it names a lead with another number the event changes nothing (an
opt-out still holds for its number).

A test event asked for by `vibes_callbacks test` (`vibes.registration`) is
known by the marker it carries as its person id, or by the event id Vibes
answered the test with: it is kept, marks its test arrived, and changes
nothing, whatever number or status it names.

Nothing here calls Vibes: a callback is answered from the database alone.

A callback this app cannot read is kept all the same and answered 200, as
Vibes asks (it never delivers a 4xx again): a body that is not JSON (Vibes
Connect's own callbacks are XML), JSON that is not an object, an event
without a type, a delivery receipt with a status this app does not know.
It is stored with outcome "unreadable", its text as received, and the
reason; the admin lists these as "unreadable callbacks" for an operator.
Only a body no database could store gets 400: not UTF-8, nested too deep,
numbers that are not finite, NUL characters or unpaired surrogates.

Delivery receipts belong to whoever sent the SMS, and the news of a
confirmation to whoever asked for it; `vibes` must not import the campaign
runner, so they register handlers: `register_receipt_handler(fn)` gets a
`DeliveryReceipt` per new receipt, `register_confirmation_handler(fn)` a
`ConfirmationNews` per subscription or participant event that says what
became of a request to subscribe a number. Replies are the same:
`register_inbound_handler(fn)` gets each new `InboundMessage`, to take it as
the reply to an SMS it sent.

An inbound text is stored and never acted on: a STOP is Vibes' business,
and the opt-out comes as `subscription_removed`.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from .inbound import inbound_message_store
from .models import (
    AcquisitionCampaign,
    CallbackEvent,
    CallbackTest,
    InboundMessage,
    Subscription,
    SubscriptionChange,
    VibesList,
)
from .subscriptions import subscription_mismatch_record, subscriptions_apply, subscriptions_opt_out_number

logger = logging.getLogger("vibes.callbacks")

EVENT_TYPE_HEADERS = ("X-Vibes-Event-Type", "X-Event-Type", "Event-Type")
EVENT_TYPE_FIELDS = ("event_type", "callback_type")
PRIVATE_HEADERS = {"authorization", "cookie", "proxy-authorization"}

# ack_participant_* statuses: the participant confirmed, is still waiting, or
# the confirmation ended without a subscription.
CONFIRMED_STATUSES = {"subscribed", "confirmed", "active", "opted_in", "complete", "completed"}
PENDING_STATUSES = {"pending", "waiting"}
ENDED_STATUSES = {
    "expired",
    "declined",
    "rejected",
    "cancelled",
    "canceled",
    "failed",
    "blocked",
    "opted_out",
}


# Delivery receipt statuses (connect-openapi.yml `SmsMessageResponse.status`,
# and the words carriers use for a failure): Vibes accepted the SMS, the
# handset got it, or it never will.
RECEIPT_ACCEPTED = frozenset({"accepted", "queued", "sent", "submitted", "enroute", "buffered"})
RECEIPT_DELIVERED = frozenset({"delivered"})
RECEIPT_FAILED = frozenset({"failed", "undeliverable", "undelivered", "rejected", "expired"})
RECEIPT_STATUSES = RECEIPT_ACCEPTED | RECEIPT_DELIVERED | RECEIPT_FAILED
# Where a receipt may say why an SMS failed, and the code of the reason.
RECEIPT_REASON_FIELDS = ("reason", "description", "status_description", "error_description", "error_message")
RECEIPT_CODE_FIELDS = ("error_code", "errorCode", "carrier_error_code", "code")


@dataclass(frozen=True)
class DeliveryReceipt:
    """A Connect delivery receipt; `reference` is the callback URL's `ref` parameter, or "".

    `status` is one of RECEIPT_STATUSES; `reason` the carrier's reason for a
    failure (with its code), or "".
    """

    message_id: str
    mdn: str
    status: str
    reference: str
    occurred_at: datetime | None
    reason: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in RECEIPT_DELIVERED

    @property
    def failed(self) -> bool:
        return self.status in RECEIPT_FAILED


@dataclass(frozen=True)
class ConfirmationNews:
    """What became of a request to subscribe a number to a list: from a
    `subscription_added`, or an `ack_participant_*` event.

    `outcome` is "subscribed", "pending", "declined" or "expired"; `status`
    Vibes' own word. `since`: the request it answers was made no later than
    this (a `subscription_added`'s opt-in date, a participant's participation
    date), so requests made after it are not concerned. `at`: when it
    happened, as far as the event tells (never later than its arrival).
    """

    mdn: str
    vibes_list_id: int
    outcome: str
    status: str
    since: datetime
    at: datetime


@dataclass(frozen=True)
class CallbackResult:
    """What the view answers: an HTTP status and a small JSON body."""

    status: int
    body: dict


_receipt_handlers: list[Callable[[DeliveryReceipt], None]] = []
_confirmation_handlers: list[Callable[[ConfirmationNews], None]] = []


def register_receipt_handler(fn: Callable[[DeliveryReceipt], None]) -> Callable[[DeliveryReceipt], None]:
    """Call `fn(receipt)` for every new delivery receipt; usable as a decorator.

    A handler returns True when the receipt matched an SMS it knows of; a
    receipt no handler matches is stored as unmatched.

    Handlers run inside the request that stores the receipt, in the same
    transaction, so they must be quick. A handler that raises makes the
    callback answer 503, the receipt is not stored, and Vibes delivers it
    again later.
    """
    if fn not in _receipt_handlers:
        _receipt_handlers.append(fn)
    return fn


def unregister_receipt_handler(fn: Callable[[DeliveryReceipt], None]) -> None:
    if fn in _receipt_handlers:
        _receipt_handlers.remove(fn)


_inbound_handlers: list[Callable[[InboundMessage], bool]] = []


def register_inbound_handler(fn: Callable[[InboundMessage], bool]) -> Callable[[InboundMessage], bool]:
    """Call `fn(message)` for every newly stored inbound message; usable as a decorator.

    A handler returns True when it took the message as the reply to an SMS
    it sent. As with receipts, it runs in the transaction that stores the
    message, and one that raises makes the callback answer 503, so that Vibes
    delivers it again.
    """
    if fn not in _inbound_handlers:
        _inbound_handlers.append(fn)
    return fn


def unregister_inbound_handler(fn: Callable[[InboundMessage], bool]) -> None:
    if fn in _inbound_handlers:
        _inbound_handlers.remove(fn)


def register_confirmation_handler(
    fn: Callable[[ConfirmationNews], None],
) -> Callable[[ConfirmationNews], None]:
    """Call `fn(news)` for every subscription or participant event that says
    what became of a request to subscribe a number; usable as a decorator.

    As with receipts, handlers run in the transaction that stores the event,
    and one that raises makes the callback answer 503 (Vibes delivers it
    again). The event's effect on subscriptions does not depend on them: an
    event that arrives late for the subscription (superseded) still tells
    what became of the request.
    """
    if fn not in _confirmation_handlers:
        _confirmation_handlers.append(fn)
    return fn


def unregister_confirmation_handler(fn: Callable[[ConfirmationNews], None]) -> None:
    if fn in _confirmation_handlers:
        _confirmation_handlers.remove(fn)


# --- Who may post ------------------------------------------------------------------


def callback_credentials_valid(authorization: str) -> bool:
    """True when the Authorization header carries the configured callback credentials.

    With no VIBES_CALLBACK_PASSWORD every callback is refused: an endpoint
    that changes subscriptions must never be open.
    """
    password = settings.VIBES_CALLBACK_PASSWORD
    if not password:
        logger.warning(
            "Vibes callback refused: VIBES_CALLBACK_PASSWORD is not set, so no callback is accepted."
        )
        return False
    scheme, _sep, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        username, _sep, given = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared in constant time, and both always compared.
    user_ok = hmac.compare_digest(username.encode(), settings.VIBES_CALLBACK_USERNAME.encode())
    password_ok = hmac.compare_digest(given.encode(), password.encode())
    return user_ok and password_ok


def callback_source_allowed(remote_addr: str) -> bool:
    """True when VIBES_CALLBACK_ALLOWED_IPS is empty or holds the address (single IPs or CIDRs).

    The address is the TCP peer (REMOTE_ADDR), never X-Forwarded-For, which
    anyone can write.
    """
    allowed = [entry.strip() for entry in settings.VIBES_CALLBACK_ALLOWED_IPS if entry.strip()]
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            logger.error("VIBES_CALLBACK_ALLOWED_IPS: %r is not an IP address or network; ignored.", entry)
    return False


# --- Receiving -------------------------------------------------------------------

# A Vibes callback body is a handful of levels deep. Deeper bodies are refused
# before they are parsed: SQLite stores JSON up to 1,000 levels (2,000 before
# 3.45) and PostgreSQL's jsonb until its stack runs out (about 10,000 levels
# with the default 2 MB), so whatever passes is stored by every supported database.
MAX_BODY_DEPTH = 100

# Strings (so that brackets inside them are not counted) and brackets.
_JSON_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")
# The only ways to a NUL or a surrogate in parsed text: raw UTF-8 holds neither.
_SUSPECT_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def callback_receive(*, body: bytes, headers, reference: str = "") -> CallbackResult:
    """Store one callback and apply it; answer what the view should send back.

    A body that can never be stored (too deep, not UTF-8, values no database
    takes) gets 400: Vibes does not retry a 4xx. A body that can be stored
    but not read (not JSON, not an object, no event type, a receipt of an
    unknown status) is stored as unreadable and answered 200. A repeat of a
    stored event counts a delivery and changes nothing else. Anything the
    database refuses otherwise gets 503, so that Vibes delivers the event again later.
    """
    read, problem = callback_body_parse(body)
    if problem:
        return CallbackResult(400, {"error": problem})
    payload = read.payload
    event_type = _event_type(headers, payload, reference)
    unreadable = read.unreadable
    if not unreadable and not event_type:
        unreadable = str(
            _(
                "No event type: neither a header nor an event_type field names one, and the body "
                "is not shaped like a delivery receipt."
            )
        )

    key = dedupe_key(event_type, payload if not read.raw else read.raw, reference)
    stored_headers = {k: v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}
    try:
        with transaction.atomic():
            if CallbackEvent.objects.filter(dedupe_key=key).update(deliveries=F("deliveries") + 1):
                return CallbackResult(200, {"status": "duplicate"})
            event = CallbackEvent.objects.create(
                event_type=event_type[:60],
                dedupe_key=key,
                headers=stored_headers,
                payload=payload,
                raw_body=read.raw or None,
                outcome=CallbackEvent.Outcome.IGNORED,
            )
            if unreadable:
                event.outcome, event.note = CallbackEvent.Outcome.UNREADABLE, unreadable[:300]
                logger.warning("Vibes callback #%s kept as unreadable: %s", event.pk, unreadable)
            else:
                _apply(event, payload, reference)
            event.save(update_fields=["outcome", "note", "mdn"])
    except HandlerFailed:
        return CallbackResult(
            503, {"error": str(_("The event could not be processed; deliver it again later."))}
        )
    except InboundHandlerFailed:
        return CallbackResult(
            503, {"error": str(_("The message could not be processed; deliver it again later."))}
        )
    except IntegrityError:
        # The same event arriving twice at once collides on the dedupe key,
        # and then the other request has stored it. Any other refusal (a
        # constraint, a trigger) left nothing stored and must not pass for one.
        try:
            if CallbackEvent.objects.filter(dedupe_key=key).update(deliveries=F("deliveries") + 1):
                return CallbackResult(200, {"status": "duplicate"})
        except DatabaseError:
            pass
        return _storage_failed(event_type)
    except DatabaseError:
        return _storage_failed(event_type)
    return CallbackResult(200, {"status": event.outcome})


def _storage_failed(event_type) -> CallbackResult:
    logger.exception("Vibes callback %r could not be stored; answered 503 so that Vibes retries", event_type)
    return CallbackResult(503, {"error": str(_("The event could not be stored; deliver it again later."))})


@dataclass(frozen=True)
class CallbackBody:
    """A callback's body as read: the JSON object (or {}), and for a body
    that is not one, its text as received and why it cannot be read."""

    payload: dict
    raw: str = ""
    unreadable: str = ""


def callback_body_parse(body: bytes) -> tuple[CallbackBody | None, str]:
    """(CallbackBody, "") for a body every supported database stores, else (None, what is wrong and where).

    A body that is text but not a JSON object is stored as it came, with the
    reason it cannot be read. The checks read the whole body only when a
    quick look finds something to check: more brackets than the depth limit,
    an escape that could be a NUL or a surrogate, a number that is not finite.
    """
    if body.count(b"{") + body.count(b"[") > MAX_BODY_DEPTH and _too_deep(body):
        return None, str(
            _("The body is nested deeper than %(limit)d levels (at byte %(position)d).")
            % {"limit": MAX_BODY_DEPTH, "position": _too_deep_at(body)}
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, str(_("The body is not UTF-8 (byte %(position)d).") % {"position": error.start})
    infinite = []

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            infinite.append(number)
        return value

    try:
        payload = json.loads(text, parse_float=finite, parse_constant=finite)
    except json.JSONDecodeError as error:
        return _kept_as_text(
            text,
            _("The body is not JSON (line %(line)d, column %(column)d).")
            % {"line": error.lineno, "column": error.colno},
        )
    except ValueError:
        # Python refuses integers of more than 4,300 digits.
        return _kept_as_text(text, _("The body holds a number too long to read."))
    if infinite or _SUSPECT_ESCAPES.search(body):
        unstorable = _unstorable_value(payload)
        if unstorable:
            return None, unstorable
    if not isinstance(payload, dict):
        return _kept_as_text(text, _("The body is JSON but not an object."))
    return CallbackBody(payload), ""


def _kept_as_text(text: str, reason) -> tuple[CallbackBody | None, str]:
    if "\x00" in text:
        # PostgreSQL stores no NUL in text; raw UTF-8 holds no surrogate.
        return None, str(_("The body holds a NUL character."))
    return CallbackBody({}, raw=text, unreadable=str(reason)), ""


def _too_deep(body: bytes) -> bool:
    """True when the body nests deeper than the limit, brackets inside strings aside."""
    depth = 0
    for bracket in _JSON_STRINGS.sub(b"", body).translate(None, _ALL_BUT_BRACKETS):
        if bracket in _OPENING:
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _too_deep_at(body: bytes) -> int | None:
    """The byte where the body goes deeper than the limit, brackets inside strings aside; or None."""
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return match.start()
        elif token in (b"]", b"}"):
            depth -= 1
    return None


def _unstorable_value(payload) -> str:
    """What no supported database stores, and where: NaN and infinities (Python reads
    them, JSON has none), NUL characters and unpaired surrogates (PostgreSQL refuses both)."""
    stack = [(payload, None)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if _unstorable_text(key):
                    return _where(
                        _("A key at %(where)s holds a NUL character or an unpaired surrogate."), where
                    )
                stack.append((child, (where, f".{key}")))
        elif isinstance(value, list):
            stack.extend((child, (where, f"[{index}]")) for index, child in enumerate(value))
        elif isinstance(value, str):
            if _unstorable_text(value):
                return _where(
                    _("The text at %(where)s holds a NUL character or an unpaired surrogate."), where
                )
        elif isinstance(value, float) and not math.isfinite(value):
            return _where(_("The number at %(where)s is not finite (NaN or Infinity)."), where)
    return ""


def _unstorable_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _where(message, where) -> str:
    parts = []
    while where is not None:
        where, part = where
        parts.append(part)
    path = "".join(reversed(parts)).lstrip(".") or str(_("the top level"))
    return str(message % {"where": path[:200]})


def dedupe_key(event_type: str, payload: dict | str, reference: str = "") -> str:
    """The same event twice gives the same key, whatever the key order or spacing
    (a body kept as text, the same text)."""
    if isinstance(payload, str):
        canonical = payload
    else:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{event_type}\n{canonical}\n{reference}".encode()).hexdigest()


def _event_type(headers, payload, reference: str = "") -> str:
    for name in EVENT_TYPE_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip().lower()
    for name in EVENT_TYPE_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    # Connect's receipts need not name their type: only an SMS's callback URL
    # carries a reference, and a receipt has the message id and its status.
    if reference or ("message_id" in payload and "status" in payload):
        return DELIVERY_RECEIPT
    return ""


class HandlerFailed(Exception):
    """A receipt or confirmation handler failed: answer 503, so that Vibes delivers the event again."""


DELIVERY_RECEIPT = "delivery_receipt"


class InboundHandlerFailed(Exception):
    pass


def _apply(event: CallbackEvent, payload: dict, reference: str) -> None:
    if _is_test_event(event, payload):
        event.outcome = Outcome.TEST
        event.note = str(_("A test event asked for by this app (vibes_callbacks test); nothing changed."))
        return
    handler = APPLIERS.get(event.event_type)
    if handler is None:
        event.note = str(_("No action for this event type."))
        return
    event.outcome, note = handler(event, payload, reference)
    event.note = str(note)[:300]


def _test_marker(payload) -> str:
    """The marker of a test event asked for by `vibes_callbacks test`, or "".

    It went out as the test's person or participant id; a plain dictionary
    walk, so callbacks that are not tests cost no query.
    """
    person = _dict(payload.get("person"))
    candidates = (
        person.get("id"),
        person.get("person_id"),
        person.get("person_key"),
        _dict(payload.get("participant")).get("id"),
        _dict(_dict(payload.get("subscription")).get("person")).get("id"),
    )
    for value in candidates:
        if isinstance(value, str) and value.startswith(CallbackTest.MARKER_PREFIX):
            return value[:64]
    return ""


def _is_test_event(event, payload) -> bool:
    """True for a test event: by the marker it carries, or by the event id Vibes gave the test.

    A test event changes nothing, whatever it says, and marks its test arrived.
    """
    marker = _test_marker(payload)
    tests = CallbackTest.objects.filter(arrived_at__isnull=True)
    if marker:
        tests.filter(marker=marker).update(arrived_at=event.received_at, callback_event=event)
        return True
    event_id = payload.get("event_id")
    if isinstance(event_id, str) and event_id:
        # Should Vibes leave our marker out, the event id it answered the test with still tells.
        return bool(
            tests.filter(vibes_event_id=event_id[:100]).update(
                arrived_at=event.received_at, callback_event=event
            )
        )
    return False


# --- Payload fields ------------------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _mdn(payload) -> str:
    raw = _dict(payload.get("mobile_phone")).get("mdn") or _dict(
        _dict(payload.get("person")).get("mobile_phone")
    ).get("mdn")
    raw = raw or payload.get("mdn") or payload.get("to") or ""
    if not isinstance(raw, str):
        return ""
    return normalize_phone_or_blank(raw) or ""


def _external_person_id(payload) -> str:
    value = payload.get("external_person_id") or _dict(payload.get("person")).get("external_person_id") or ""
    return str(value).strip()


def _named_lead(payload) -> Lead | None:
    """The lead the external person id names (our lead id), if any: a hint, never more (R9)."""
    external_id = _external_person_id(payload)
    if not (external_id.isascii() and external_id.isdigit() and len(external_id) <= 18):
        return None
    return Lead.objects.filter(pk=int(external_id)).only("pk", "mobile_phone").first()


def _person_key(payload) -> str:
    person = _dict(payload.get("person"))
    return str(person.get("person_key") or person.get("id") or "")[:64]


def _date(value) -> datetime | None:
    """An ISO 8601 time in UTC (a time without an offset is taken as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = parse_datetime(value.strip().replace("Z", "+00:00"))
        if moment is None:
            return None
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _event_time(value, event) -> datetime | None:
    """The event's own time, never later than its arrival: a date in the future
    (a clock ahead, a bad payload) must not outrank the real changes after it."""
    moment = _date(value)
    return None if moment is None else min(moment, event.received_at)


def _vibes_list(payload) -> VibesList | None:
    list_id = _dict(payload.get("subscription_list")).get("id") or payload.get("subscription_list_id")
    if list_id not in (None, ""):
        return VibesList.objects.filter(vibes_id=str(list_id)).first()
    campaign = _acquisition_campaign(payload)
    return campaign.vibes_list if campaign else None


def _acquisition_campaign(payload) -> AcquisitionCampaign | None:
    acquisition_id = _dict(payload.get("acquisition_campaign")).get("acquisition_id") or payload.get(
        "acquisition_id"
    )
    if acquisition_id in (None, ""):
        return None
    return (
        AcquisitionCampaign.objects.select_related("vibes_list").filter(vibes_id=str(acquisition_id)).first()
    )


# --- Event handlers: each returns (outcome, note) ---------------------------------------

Outcome = CallbackEvent.Outcome
Status = Subscription.Status
CALLBACK = SubscriptionChange.Source.CALLBACK


def _people(event, payload, vibes_list, status, when, note):
    """The lead ids a subscription event is about, found by the number (R9).

    The external person id may pick one of the people with the number. When
    it names a lead with another number (or none), the event is recorded as a
    mismatch in that lead's history and the answer is None: it changes nothing.
    """
    named = _named_lead(payload)
    if named is not None and named.mobile_phone != event.mdn:
        subscription_mismatch_record(
            lead_id=named.pk,
            vibes_list=vibes_list,
            status=status,
            source=CALLBACK,
            when=when,
            note=note,
            callback_event=event,
        )
        return None
    if named is not None:
        return [named.pk]
    return list(Lead.objects.filter(mobile_phone=event.mdn).values_list("pk", flat=True))


def _mismatch_note(payload):
    return _("The external person id %(id)s names a lead with another number; nothing changed.") % {
        "id": _external_person_id(payload)[:40]
    }


def _result(update, done_note):
    if update.superseded and not update.changed:
        return Outcome.SUPERSEDED, _(
            "Arrived late: older than the last change applied for this number and list; nothing changed."
        )
    return Outcome.APPLIED, done_note


def _subscription_added(event, payload, reference):
    event.mdn = _mdn(payload)
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list; run vibes_sync.")
    if not event.mdn:
        return Outcome.UNMATCHED, _("The event has no valid mobile number, and people are found by number.")
    when = _event_time(payload.get("opt_in_date"), event)
    if when is None:
        # Without its time the event cannot be ordered among the others.
        return Outcome.IGNORED, _("The event has no valid opt-in date; nothing changed.")
    note = f"subscription_added #{event.pk}"
    lead_ids = _people(event, payload, vibes_list, Status.SUBSCRIBED, when, note)
    if lead_ids is None:
        return Outcome.MISMATCH, _mismatch_note(payload)
    if not lead_ids:
        return Outcome.UNMATCHED, _("No lead has this number.")
    update = subscriptions_apply(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=Status.SUBSCRIBED,
        source=CALLBACK,
        when=when,
        note=note,
        acquisition_campaign=_acquisition_campaign(payload),
        person_key=_person_key(payload),
        callback_event=event,
    )
    _tell_confirmation_handlers(
        ConfirmationNews(event.mdn, vibes_list.pk, "subscribed", "subscribed", since=when, at=when)
    )
    return _result(
        update,
        _("%(changed)d of %(leads)d leads subscribed.") % {"changed": update.changed, "leads": len(lead_ids)},
    )


def _subscription_removed(event, payload, reference):
    named = _named_lead(payload)
    # Without a number the person id is all there is: its lead's number is opted out.
    event.mdn = _mdn(payload) or (named.mobile_phone if named else "")
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list; run vibes_sync.")
    if not event.mdn or not Lead.objects.filter(mobile_phone=event.mdn).exists():
        return Outcome.UNMATCHED, _("No lead has this number.")
    # An opt-out is never dropped for want of a date: it then counts from its arrival.
    when = _event_time(payload.get("opt_out_date"), event) or event.received_at
    note = f"subscription_removed #{event.pk}"
    mismatch = ""
    if named is not None and named.mobile_phone != event.mdn:
        # The opt-out still holds for the number (R9); the named lead keeps its status.
        subscription_mismatch_record(
            lead_id=named.pk,
            vibes_list=vibes_list,
            status=Status.UNSUBSCRIBED,
            source=CALLBACK,
            when=when,
            note=note,
            callback_event=event,
        )
        mismatch = " " + str(
            _("The external person id %(id)s names a lead with another number, which was left alone.")
            % {"id": _external_person_id(payload)[:40]}
        )
    # R9: Vibes opts out a number, so every lead with it is unsubscribed.
    update = subscriptions_opt_out_number(
        mdn=event.mdn,
        vibes_list=vibes_list,
        reason=str(payload.get("opt_out_reason") or ""),
        source=CALLBACK,
        when=when,
        note=note,
        callback_event=event,
    )
    outcome, text = _result(update, _("%(changed)d leads unsubscribed.") % {"changed": update.changed})
    return outcome, f"{text}{mismatch}"


def _participant_event(event, payload, reference):
    """ack_participant_added / ack_participant_changed: the confirmation of an acquisition.

    These events tell the state of one confirmation request and carry the
    time it began (`participation_date`), not the time of their news, so they
    are ordered by that time, a lower bound: a subscription or opt-out that
    followed the request outranks them.

    - pending: the lead becomes pending;
    - confirmed (subscribed, active...): the lead becomes subscribed, as with
      subscription_added;
    - expired, declined, rejected, cancelled, failed, blocked: the confirmation
      ended without a subscription, so a lead still *pending* on the list
      becomes unsubscribed, with the status in the history note. A subscribed
      lead is left alone: only subscription_removed ends a subscription.
    - any other status is stored and ignored.

    Without a participation date, pending and confirmed change nothing (they
    cannot be ordered), and an ended confirmation counts from its arrival.
    """
    event.mdn = _mdn(payload)
    status = str(payload.get("status") or "").strip().lower()
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list or acquisition campaign; run vibes_sync.")
    only_from = None
    if status in CONFIRMED_STATUSES:
        new_status = Status.SUBSCRIBED
    elif status in PENDING_STATUSES:
        new_status = Status.PENDING
    elif status in ENDED_STATUSES:
        new_status, only_from = Status.UNSUBSCRIBED, {Status.PENDING}
    else:
        return Outcome.IGNORED, _("Participant status “%(status)s” needs no action.") % {
            "status": status[:40]
        }
    if not event.mdn:
        return Outcome.UNMATCHED, _("The event has no valid mobile number, and people are found by number.")
    when = _event_time(payload.get("participation_date"), event)
    if when is None:
        if only_from is None:
            return Outcome.IGNORED, _("The event has no valid participation date; nothing changed.")
        when = event.received_at
    note = f"{event.event_type} {status[:40]} #{event.pk}"
    lead_ids = _people(event, payload, vibes_list, new_status, when, note)
    if lead_ids is None:
        return Outcome.MISMATCH, _mismatch_note(payload)
    if not lead_ids:
        return Outcome.UNMATCHED, _("No lead has this number.")
    update = subscriptions_apply(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=new_status,
        source=CALLBACK,
        when=when,
        note=note,
        acquisition_campaign=_acquisition_campaign(payload),
        person_key=_person_key(payload),
        only_from=only_from,
        callback_event=event,
    )
    # The participation date is when the request began, not when this news
    # came about: that is the arrival, as far as this app can tell.
    _tell_confirmation_handlers(
        ConfirmationNews(
            event.mdn,
            vibes_list.pk,
            _confirmation_outcome(status),
            status[:40],
            since=when,
            at=event.received_at,
        )
    )
    return _result(
        update,
        _("%(changed)d leads now %(status)s.") % {"changed": update.changed, "status": new_status.label},
    )


def _confirmation_outcome(status: str) -> str:
    if status in CONFIRMED_STATUSES:
        return "subscribed"
    if status in PENDING_STATUSES:
        return "pending"
    return "expired" if status == "expired" else "declined"


def _tell_confirmation_handlers(news: ConfirmationNews) -> None:
    for handler in list(_confirmation_handlers):
        try:
            handler(news)
        except Exception as error:
            logger.exception("Vibes confirmation handler %r failed", handler)
            raise HandlerFailed from error


def _first_text(payload, fields) -> str:
    for field in fields:
        value = payload.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ""


def _receipt_reason(payload) -> str:
    """The carrier's reason for a failure, with its code: "Handset unreachable (705)"."""
    reason, code = _first_text(payload, RECEIPT_REASON_FIELDS), _first_text(payload, RECEIPT_CODE_FIELDS)
    if reason and code:
        return f"{reason} ({code})"[:300]
    return (reason or code)[:300]


def _delivery_receipt(event, payload, reference):
    event.mdn = _mdn(payload)
    status = payload.get("status")
    if not isinstance(status, str) or not status.strip():
        return Outcome.UNREADABLE, _("The receipt has no status; nothing changed.")
    status = status.strip().lower()
    if status not in RECEIPT_STATUSES:
        return Outcome.UNREADABLE, _(
            "The receipt's status “%(status)s” is not one this app knows (it knows %(known)s); nothing changed."
        ) % {"status": status[:40], "known": ", ".join(sorted(RECEIPT_STATUSES))}
    receipt = DeliveryReceipt(
        message_id=str(payload.get("message_id") or "")[:64],
        mdn=event.mdn,
        status=status,
        reference=reference,
        occurred_at=_event_time(payload.get("occurred_at"), event),
        reason=_receipt_reason(payload) if status in RECEIPT_FAILED else "",
    )
    matched = False
    for handler in list(_receipt_handlers):
        try:
            matched = bool(handler(receipt)) or matched
        except Exception as error:
            logger.exception("Vibes delivery receipt handler %r failed", handler)
            raise HandlerFailed from error
    if not matched:
        return Outcome.UNMATCHED, _("No SMS sent by this app matches the receipt.")
    return Outcome.APPLIED, _("Recorded on the SMS it reports on.")


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _code(value) -> str:
    # A short code may come as a JSON number.
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _inbound_sms(event, payload, reference):
    """Connect's inbound SMS: a message's fields, `from` the phone and `to` the short code."""
    sender = payload.get("from") or _dict(payload.get("mobile_phone")).get("mdn") or payload.get("mdn")
    return _inbound_message(
        event, payload, sender=sender, text=payload.get("text"), short_code=payload.get("to"), unmatched=False
    )


def _unmatched_message(event, payload, reference):
    """The Platform's unmatched_message_received: a text that matched no keyword or campaign in Vibes."""
    sender = _dict(payload.get("participant")).get("mdn") or _dict(payload.get("mobile_phone")).get("mdn")
    return _inbound_message(
        event,
        payload,
        sender=sender,
        text=payload.get("message", payload.get("text")),
        short_code=_dict(payload.get("source_code")).get("code"),
        unmatched=True,
    )


# When Vibes received the text: the Platform's events call it `event_date`,
# Connect's receipts `occurred_at`.
INBOUND_TIME_FIELDS = ("event_date", "occurred_at", "received_at")


def _inbound_message(event, payload, *, sender, text, short_code, unmatched):
    event.mdn = normalize_phone_or_blank(sender) if isinstance(sender, str) else ""
    times = (_event_time(payload.get(name), event) for name in INBOUND_TIME_FIELDS)
    when = next((moment for moment in times if moment is not None), None)
    # A message is never dropped for want of a date: it then counts from its arrival.
    undated = " " + str(_("The message has no valid time: the time it arrived is used.")) if when is None else ""
    stored = inbound_message_store(
        mdn=event.mdn,
        text=_text(text),
        occurred_at=when or event.received_at,
        received_at=event.received_at,
        vibes_message_id=_code(payload.get("message_id")),
        short_code=_code(short_code),
        unmatched_in_vibes=unmatched,
        callback_event=event,
    )
    message = stored.message
    # Unmatched, for a callback event: no lead has the number.
    outcome = Outcome.APPLIED if stored.lead_count else Outcome.UNMATCHED
    if not stored.created:
        return outcome, _("The same message as an earlier callback, stored once: message #%(id)s.") % {
            "id": message.pk
        }
    replied = False
    for handler in list(_inbound_handlers):
        try:
            replied = bool(handler(message)) or replied
        except Exception as error:
            logger.exception("Vibes inbound message handler %r failed", handler)
            raise InboundHandlerFailed from error
    if not event.mdn:
        return Outcome.UNMATCHED, _("Message #%(id)s kept; it has no valid mobile number.") % {
            "id": message.pk
        } + undated
    if not stored.lead_count:
        return Outcome.UNMATCHED, _("Message #%(id)s kept; no lead has this number.") % {
            "id": message.pk
        } + undated
    note = ngettext(
        "Message #%(id)s stored for %(count)d lead with this number.",
        "Message #%(id)s stored for %(count)d leads with this number.",
        stored.lead_count,
    ) % {"id": message.pk, "count": stored.lead_count}
    if replied:
        note += " " + str(_("It is the reply to the last SMS sent to the number before it."))
    return outcome, note + undated


APPLIERS = {
    "subscription_added": _subscription_added,
    "subscription_removed": _subscription_removed,
    "ack_participant_added": _participant_event,
    "ack_participant_changed": _participant_event,
    DELIVERY_RECEIPT: _delivery_receipt,
    "inbound_sms": _inbound_sms,
    "unmatched_message_received": _unmatched_message,
}

# The texts phones send: stored as InboundMessage, shown on the lead's page as replies.
INBOUND_EVENT_TYPES = ("inbound_sms", "unmatched_message_received")
