"""Which handler applies each event type, and the test events that change nothing.

A test event asked for by `vibes_callbacks test` (`vibes.registration`) is
known by the marker it carries as its person id, or by the event id Vibes
answered the test with: it is kept, marks its test arrived, and changes
nothing, whatever number or status it names.
"""

from django.utils.translation import gettext_lazy as _

from ..models import CallbackEvent, CallbackTest
from . import fields
from .inbound_events import inbound_sms, unmatched_message
from .receipt_events import delivery_receipt
from .subscription_events import participant_event, subscription_added, subscription_removed

DELIVERY_RECEIPT = "delivery_receipt"

# The event types this app reads, each with the function that applies it:
# `vibes_callbacks register` registers every one of them with Vibes.
APPLIERS = {
    "subscription_added": subscription_added,
    "subscription_removed": subscription_removed,
    "ack_participant_added": participant_event,
    "ack_participant_changed": participant_event,
    DELIVERY_RECEIPT: delivery_receipt,
    "inbound_sms": inbound_sms,
    "unmatched_message_received": unmatched_message,
}

# The texts phones send: stored as InboundMessage, shown on the lead's page as replies.
INBOUND_EVENT_TYPES = ("inbound_sms", "unmatched_message_received")


def event_apply(event: CallbackEvent, payload: dict, reference: str) -> None:
    """Apply a stored event, setting its outcome and note (and its number, when it names one)."""
    if _is_test_event(event, payload):
        event.outcome = CallbackEvent.Outcome.TEST
        event.note = str(_("A test event asked for by this app (vibes_callbacks test); nothing changed."))
        return
    handler = APPLIERS.get(event.event_type)
    if handler is None:
        event.outcome = CallbackEvent.Outcome.IGNORED
        event.note = str(_("No action for this event type."))
        return
    event.outcome, note = handler(event, payload, reference)
    event.note = str(note)[:300]


def event_in_batch(event: CallbackEvent) -> bool:
    """True for an event applied with the batch of waiting receipts: a delivery
    receipt that is no test event (one that names a marker or an event id is
    applied on its own, as a test event may be)."""
    if event.event_type != DELIVERY_RECEIPT or not isinstance(event.payload, dict):
        return False
    event_id = event.payload.get("event_id")
    return not _test_marker(event.payload) and not (isinstance(event_id, str) and event_id)


def _test_marker(payload) -> str:
    """The marker of a test event asked for by `vibes_callbacks test`, or "".

    It went out as the test's person or participant id; a plain dictionary
    walk, so callbacks that are not tests cost no query.
    """
    person = fields.as_dict(payload.get("person"))
    candidates = (
        person.get("id"),
        person.get("person_id"),
        person.get("person_key"),
        fields.as_dict(payload.get("participant")).get("id"),
        fields.as_dict(fields.as_dict(payload.get("subscription")).get("person")).get("id"),
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
