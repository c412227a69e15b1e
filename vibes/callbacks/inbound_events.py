"""The texts phones send to the short code: Connect's `inbound_sms` and the
Platform's `unmatched_message_received`.

A text is stored once, with every lead that has its number, and never acted
on: a STOP is Vibes' business, and the opt-out comes as
`subscription_removed`. The app's handler for replies (`news`) may take it
as the reply to an SMS it sent. Each handler returns the event's (outcome, note).
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from smscampaigns.phones import normalize_phone_or_blank

from ..inbound import inbound_message_store
from ..models import CallbackEvent
from . import fields
from .news import inbound_listeners

Outcome = CallbackEvent.Outcome

# When Vibes received the text: the Platform's events call it `event_date`,
# Connect's receipts `occurred_at`.
INBOUND_TIME_FIELDS = ("event_date", "occurred_at", "received_at")


def inbound_sms(event, payload, reference):
    """Connect's inbound SMS: a message's fields, `from` the phone and `to` the short code."""
    sender = (
        payload.get("from") or fields.as_dict(payload.get("mobile_phone")).get("mdn") or payload.get("mdn")
    )
    return _inbound_message(
        event, payload, sender=sender, text=payload.get("text"), short_code=payload.get("to"), unmatched=False
    )


def unmatched_message(event, payload, reference):
    """The Platform's unmatched_message_received: a text that matched no keyword or campaign in Vibes."""
    sender = fields.as_dict(payload.get("participant")).get("mdn") or fields.as_dict(
        payload.get("mobile_phone")
    ).get("mdn")
    return _inbound_message(
        event,
        payload,
        sender=sender,
        text=payload.get("message", payload.get("text")),
        short_code=fields.as_dict(payload.get("source_code")).get("code"),
        unmatched=True,
    )


def _inbound_message(event, payload, *, sender, text, short_code, unmatched):
    event.mdn = normalize_phone_or_blank(sender) if isinstance(sender, str) else ""
    times = (fields.event_time(payload.get(name), event) for name in INBOUND_TIME_FIELDS)
    when = next((moment for moment in times if moment is not None), None)
    # A message is never dropped for want of a date: it then counts from its arrival.
    undated = (
        " " + str(_("The message has no valid time: the time it arrived is used.")) if when is None else ""
    )
    stored = inbound_message_store(
        mdn=event.mdn,
        text=fields.text(text),
        occurred_at=when or event.received_at,
        received_at=event.received_at,
        vibes_message_id=fields.code(payload.get("message_id")),
        short_code=fields.code(short_code),
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
    replied = inbound_listeners.tell(message)
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
