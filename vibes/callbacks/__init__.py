"""What Vibes posts to `/vibes/callbacks/`: subscription events, acquisition
participant events, Connect delivery receipts, and the texts phones send to
the short code (Connect's `inbound_sms`, the Platform's
`unmatched_message_received`).

The modules, one thing each:

- `access`: who may post (Basic credentials, an optional source allowlist);
- `bodies`: reading a body, and refusing one no database could store;
- `receiving`: storing a callback once (a repeat only counts a delivery),
  applying it, and the answer to send back;
- `applying`: applying callbacks off the request, at volume (a worker, and
  the events whose worker failed);
- `events`: which handler applies each event type (`APPLIERS`, the types
  `vibes_callbacks register` registers), and test events, which change nothing;
- `subscription_events`, `receipt_events`, `inbound_events`: the handlers,
  by kind of event;
- `fields`: reading a payload's fields;
- `news`: what other apps learn from the callbacks (delivery receipts,
  confirmations, replies) and how they register for it.

This module is their face: what the rest of the project uses.
"""

from .access import callback_credentials_valid, callback_source_allowed
from .applying import (
    callback_event_apply,
    callbacks_applied_off_request,
    callbacks_apply_pending,
    callbacks_apply_waiting,
)
from .bodies import MAX_BODY_DEPTH
from .events import APPLIERS, DELIVERY_RECEIPT, INBOUND_EVENT_TYPES
from .news import (
    RECEIPT_ACCEPTED,
    RECEIPT_DELIVERED,
    RECEIPT_FAILED,
    RECEIPT_STATUSES,
    ConfirmationNews,
    DeliveryReceipt,
    register_confirmation_handler,
    register_inbound_handler,
    register_receipt_handler,
    unregister_confirmation_handler,
    unregister_inbound_handler,
    unregister_receipt_handler,
)
from .receiving import CallbackResult, callback_receive, dedupe_key

__all__ = [
    "APPLIERS",
    "DELIVERY_RECEIPT",
    "INBOUND_EVENT_TYPES",
    "MAX_BODY_DEPTH",
    "RECEIPT_ACCEPTED",
    "RECEIPT_DELIVERED",
    "RECEIPT_FAILED",
    "RECEIPT_STATUSES",
    "CallbackResult",
    "ConfirmationNews",
    "DeliveryReceipt",
    "callback_credentials_valid",
    "callback_event_apply",
    "callbacks_applied_off_request",
    "callbacks_apply_pending",
    "callbacks_apply_waiting",
    "callback_receive",
    "callback_source_allowed",
    "dedupe_key",
    "register_confirmation_handler",
    "register_inbound_handler",
    "register_receipt_handler",
    "unregister_confirmation_handler",
    "unregister_inbound_handler",
    "unregister_receipt_handler",
]
