"""Connect's delivery receipts: what became of an SMS.

A receipt carries a status (`accepted`, `queued`, `sent`, `delivered`,
`failed`, or a carrier's word for a failure) and, for a failure, the
carrier's reason. The app's handler for receipts (`news`) finds the SMS it
reports on. Returns the event's (outcome, note).
"""

from django.utils.translation import gettext_lazy as _

from ..models import CallbackEvent
from . import fields
from .news import RECEIPT_FAILED, RECEIPT_STATUSES, DeliveryReceipt, receipt_listeners

Outcome = CallbackEvent.Outcome

# Where a receipt may say why an SMS failed, and the code of the reason.
RECEIPT_REASON_FIELDS = ("reason", "description", "status_description", "error_description", "error_message")
RECEIPT_CODE_FIELDS = ("error_code", "errorCode", "carrier_error_code", "code")


def delivery_receipt(event, payload, reference):
    receipt = receipt_read(event, payload, reference)
    if not isinstance(receipt, DeliveryReceipt):
        return receipt
    return receipt_outcome(receipt_listeners.tell(receipt))


def receipt_read(event, payload, reference) -> DeliveryReceipt | tuple:
    """The receipt the event carries (and the event's number set), or the event's
    (outcome, note) when it carries none this app can read."""
    event.mdn = fields.mdn(payload)
    status = payload.get("status")
    if not isinstance(status, str) or not status.strip():
        return Outcome.UNREADABLE, _("The receipt has no status; nothing changed.")
    status = status.strip().lower()
    if status not in RECEIPT_STATUSES:
        return Outcome.UNREADABLE, _(
            "The receipt's status “%(status)s” is not one this app knows (it knows %(known)s); "
            "nothing changed."
        ) % {"status": status[:40], "known": ", ".join(sorted(RECEIPT_STATUSES))}
    return DeliveryReceipt(
        message_id=str(payload.get("message_id") or "")[:64],
        mdn=event.mdn,
        status=status,
        reference=reference,
        occurred_at=fields.event_time(payload.get("occurred_at"), event),
        reason=_receipt_reason(payload) if status in RECEIPT_FAILED else "",
    )


def receipt_outcome(matched: bool):
    """The event's (outcome, note) once its receipt was told: matched to an SMS or not."""
    if not matched:
        return Outcome.UNMATCHED, _("No SMS sent by this app matches the receipt.")
    return Outcome.APPLIED, _("Recorded on the SMS it reports on.")


def _receipt_reason(payload) -> str:
    """The carrier's reason for a failure, with its code: "Handset unreachable (705)"."""
    reason = fields.first_text(payload, RECEIPT_REASON_FIELDS)
    code = fields.first_text(payload, RECEIPT_CODE_FIELDS)
    if reason and code:
        return f"{reason} ({code})"[:300]
    return (reason or code)[:300]
