"""Texts that phones send to the short code: stored once, with the leads that have the number."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from smscampaigns.models import Lead

from .models import CallbackEvent, InboundMessage


@dataclass(frozen=True)
class InboundStore:
    message: InboundMessage
    created: bool
    lead_count: int


def inbound_dedupe_key(*, vibes_message_id: str, mdn: str, text: str, occurred_at: datetime) -> str:
    """One key per message, whichever callback brings it.

    Connect's inbound SMS and the Platform's unmatched message of the same
    text carry its message id; without one, the same number, text and second
    are taken for the same message.
    """
    if vibes_message_id:
        basis = f"id\n{vibes_message_id}"
    else:
        basis = f"content\n{mdn}\n{occurred_at:%Y-%m-%dT%H:%M:%S}\n{text}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def inbound_message_store(
    *,
    mdn: str,
    text: str,
    occurred_at: datetime,
    received_at: datetime,
    vibes_message_id: str = "",
    short_code: str = "",
    unmatched_in_vibes: bool = False,
    callback_event: CallbackEvent | None = None,
) -> InboundStore:
    """Store a message, or find it stored by another callback and note what this one adds.

    A new message is linked to every lead with its number (R9: people are
    found by the number). Call inside a transaction: the leads and the
    message are written together.
    """
    key = inbound_dedupe_key(vibes_message_id=vibes_message_id, mdn=mdn, text=text, occurred_at=occurred_at)
    existing = InboundMessage.objects.filter(dedupe_key=key).first()
    if existing is None:
        try:
            # A savepoint: the other callback of the same message may be storing it right now.
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    mdn=mdn,
                    text=text,
                    short_code=short_code[:20],
                    occurred_at=occurred_at,
                    received_at=received_at,
                    vibes_message_id=vibes_message_id[:64],
                    dedupe_key=key,
                    unmatched_in_vibes=unmatched_in_vibes,
                    callback_event=callback_event,
                )
                lead_ids = (
                    list(Lead.objects.filter(mobile_phone=mdn).values_list("pk", flat=True)) if mdn else []
                )
                message.leads.add(*lead_ids)
            return InboundStore(message, True, len(lead_ids))
        except IntegrityError:
            existing = InboundMessage.objects.filter(dedupe_key=key).first()
            if existing is None:
                raise
    if unmatched_in_vibes and not existing.unmatched_in_vibes:
        existing.unmatched_in_vibes = True
        existing.save(update_fields=["unmatched_in_vibes"])
    return InboundStore(existing, False, existing.leads.count())
