"""Receiving a callback: store it once, apply it (or have it applied), and say what to answer.

Vibes delivers at least once: every event is stored raw in CallbackEvent
under a dedupe key, and a repeat only counts a delivery. `callback_event_store`
is the one place an event is stored; `events.event_apply` the one place it is
applied, in the request or, at volume, off it (`applying`). The event type
comes from a header or from an `event_type` / `callback_type` body field.

A callback this app cannot read is kept all the same and answered 200, as
Vibes asks (it never delivers a 4xx again): a body that is not JSON, JSON
that is not an object, an event without a type, a delivery receipt with a
status this app does not know. It is stored with outcome "unreadable", its
text as received, and the reason; the admin lists these as "unreadable
callbacks" for an operator.

Nothing here calls Vibes: a callback is answered from the database alone.
"""

import hashlib
import json
import logging
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import CallbackEvent
from ..tasks import callback_apply_later
from .applying import callbacks_applied_off_request
from .bodies import callback_body_parse
from .events import DELIVERY_RECEIPT, event_apply
from .news import HandlerFailed, InboundHandlerFailed

logger = logging.getLogger("vibes.callbacks")

EVENT_TYPE_HEADERS = ("X-Vibes-Event-Type", "X-Event-Type", "Event-Type")
EVENT_TYPE_FIELDS = ("event_type", "callback_type")
PRIVATE_HEADERS = {"authorization", "cookie", "proxy-authorization"}


@dataclass(frozen=True)
class CallbackResult:
    """What the view answers: an HTTP status and a small JSON body."""

    status: int
    body: dict


def callback_receive(*, body: bytes, headers, reference: str = "") -> CallbackResult:
    """Store one callback and apply it, or have it applied off the request; answer
    what the view should send back.

    A body that can never be stored (too deep, not UTF-8, values no database
    takes) gets 400: Vibes does not retry a 4xx. A body that can be stored
    but not read (not JSON, not an object, no event type, a receipt of an
    unknown status) is stored as unreadable and answered 200. A repeat of a
    stored event counts a delivery and changes nothing else. Anything the
    database refuses otherwise gets 503, so that Vibes delivers the event again later.

    Where VIBES_CALLBACKS_APPLY says so (`applying`), the request only stores
    the event (one statement) and answers "received"; a worker applies it.
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
    event = CallbackEvent(
        event_type=event_type[:60],
        dedupe_key=dedupe_key(event_type, payload if not read.raw else read.raw, reference),
        headers={k: v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS},
        payload=payload,
        raw_body=read.raw or None,
        reference=reference[:100] or None,
        outcome=CallbackEvent.Outcome.UNREADABLE if unreadable else CallbackEvent.Outcome.RECEIVED,
        note=unreadable[:300],
        received_at=timezone.now(),
    )
    # Applied here, the event is stored and applied in one transaction: a
    # handler that fails leaves nothing stored. Applied later (or never), the
    # request is the one statement that stores it.
    later = not unreadable and callbacks_applied_off_request()
    try:
        if later or unreadable:
            new = callback_event_store(event)
        else:
            with transaction.atomic():
                new = callback_event_store(event)
                if new:
                    event_apply(event, payload, reference)
                    event.save(update_fields=["outcome", "note", "mdn"])
    except HandlerFailed:
        return CallbackResult(
            503, {"error": str(_("The event could not be processed; deliver it again later."))}
        )
    except InboundHandlerFailed:
        return CallbackResult(
            503, {"error": str(_("The message could not be processed; deliver it again later."))}
        )
    except DatabaseError:
        # A repeat never collides (the store counts it as a delivery): any
        # refusal here left nothing stored and must not pass for one.
        return _storage_failed(event_type)
    if not new:
        if later and event.outcome == CallbackEvent.Outcome.RECEIVED:
            # Still waiting: the applier may have found the event locked by this
            # repeat's count and passed it by. Waking it again costs nothing (an
            # event is applied only while it waits) and no event waits for the
            # sweep of stragglers because its repeats came at once.
            callback_apply_later()
        return CallbackResult(200, {"status": "duplicate"})
    if unreadable:
        logger.warning("Vibes callback #%s kept as unreadable: %s", event.pk, unreadable)
    if later:
        callback_apply_later()
    return CallbackResult(200, {"status": event.outcome})


def callback_event_store(event: CallbackEvent) -> bool:
    """Store a new event, in one statement; True when it is new, False when it was
    stored before (its deliveries then count one more, and nothing else changes).

    Two deliveries of one event at once meet at the dedupe key's unique index:
    the second waits for the first, and counts a delivery if the first was stored.
    """
    table = connection.ops.quote_name(CallbackEvent._meta.db_table)
    names = [
        "event_type", "dedupe_key", "headers", "payload", "raw_body", "reference", "mdn", "outcome", "note",
        "received_at",
    ]  # fmt: skip
    fields = [CallbackEvent._meta.get_field(name) for name in names]
    values = [field.get_db_prep_save(getattr(event, field.attname), connection) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    deliveries = connection.ops.quote_name("deliveries")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}, {deliveries}) VALUES ({', '.join(['%s'] * len(values))}, 1) "
            f"ON CONFLICT ({connection.ops.quote_name('dedupe_key')}) "
            f"DO UPDATE SET {deliveries} = {table}.{deliveries} + 1 RETURNING id, {deliveries}, "
            f"{connection.ops.quote_name('outcome')}",
            values,
        )
        event.pk, event.deliveries, event.outcome = cursor.fetchone()
    return event.deliveries == 1


def _storage_failed(event_type) -> CallbackResult:
    logger.exception("Vibes callback %r could not be stored; answered 503 so that Vibes retries", event_type)
    return CallbackResult(503, {"error": str(_("The event could not be stored; deliver it again later."))})


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
