"""Receiving a callback: store it once, apply it, and say what to answer.

Vibes delivers at least once: every event is stored raw in CallbackEvent
under a dedupe key, and a repeat only counts a delivery. The event type
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

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from ..models import CallbackEvent
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
