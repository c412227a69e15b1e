"""What Vibes posts to `/vibes/callbacks/`: subscription events, acquisition
participant events and Connect delivery receipts.

Vibes signs nothing, so the endpoint is protected by HTTP Basic credentials
(in the URL registered with Vibes) and an optional source-IP allowlist.
Vibes delivers at least once: every event is stored raw in CallbackEvent
under a dedupe key, and a repeat only counts a delivery. The event type comes
from a header or from an `event_type` / `callback_type` body field; the body
is shaped like the matching API resource (`person`, `subscription_list`,
`opt_in_date`, `opt_out_date`, `opt_out_reason`, `mobile_phone.mdn`,
`external_person_id`).

Nothing here calls Vibes: a callback is answered from the database alone.

Delivery receipts belong to whoever sent the SMS; `vibes` must not import
the campaign runner, so senders register a handler with
`register_receipt_handler(fn)` and get a `DeliveryReceipt` per new receipt.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from .models import AcquisitionCampaign, CallbackEvent, Subscription, SubscriptionChange, VibesList
from .subscriptions import subscriptions_opt_out_number, subscriptions_set_status

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


@dataclass(frozen=True)
class DeliveryReceipt:
    """A Connect delivery receipt; `reference` is the callback URL's `ref` parameter, or ""."""

    message_id: str
    mdn: str
    status: str
    reference: str
    occurred_at: datetime | None


@dataclass(frozen=True)
class CallbackResult:
    """What the view answers: an HTTP status and a small JSON body."""

    status: int
    body: dict


_receipt_handlers: list[Callable[[DeliveryReceipt], None]] = []


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


def callback_receive(*, body: bytes, headers, reference: str = "") -> CallbackResult:
    """Store one callback and apply it; answer what the view should send back.

    Malformed bodies get 400 (Vibes does not retry a 4xx). A repeat of a stored
    event counts a delivery and changes nothing else.
    """
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return CallbackResult(400, {"error": str(_("The body is not JSON."))})
    if not isinstance(payload, dict):
        return CallbackResult(400, {"error": str(_("The body must be a JSON object."))})
    event_type = _event_type(headers, payload)
    if not event_type:
        return CallbackResult(
            400, {"error": str(_("The event type is missing (header or event_type field)."))}
        )

    key = dedupe_key(event_type, payload, reference)
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
                outcome=CallbackEvent.Outcome.IGNORED,
            )
            _apply(event, payload, reference)
            event.save(update_fields=["outcome", "note", "mdn"])
    except IntegrityError:
        # The same event arrived twice at once; the other request stored it.
        CallbackEvent.objects.filter(dedupe_key=key).update(deliveries=F("deliveries") + 1)
        return CallbackResult(200, {"status": "duplicate"})
    except ReceiptHandlerFailed:
        return CallbackResult(
            503, {"error": str(_("The receipt could not be processed; deliver it again later."))}
        )
    return CallbackResult(200, {"status": event.outcome})


def dedupe_key(event_type: str, payload: dict, reference: str = "") -> str:
    """The same event twice gives the same key, whatever the key order or spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{event_type}\n{canonical}\n{reference}".encode()).hexdigest()


def _event_type(headers, payload) -> str:
    for name in EVENT_TYPE_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip().lower()
    for name in EVENT_TYPE_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return ""


class ReceiptHandlerFailed(Exception):
    pass


def _apply(event: CallbackEvent, payload: dict, reference: str) -> None:
    handler = APPLIERS.get(event.event_type)
    if handler is None:
        event.note = str(_("No action for this event type."))
        return
    event.outcome, note = handler(event, payload, reference)
    event.note = str(note)[:300]


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


def _person_key(payload) -> str:
    person = _dict(payload.get("person"))
    return str(person.get("person_key") or person.get("id") or "")[:64]


def _date(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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


def _leads_named(payload, mdn) -> list[int]:
    """The lead named by `external_person_id` (our lead id) if it exists, else every lead with the number."""
    external_id = _external_person_id(payload)
    if external_id.isdigit():
        if Lead.objects.filter(pk=int(external_id)).exists():
            return [int(external_id)]
    if mdn:
        return list(Lead.objects.filter(mobile_phone=mdn).values_list("pk", flat=True))
    return []


# --- Event handlers: each returns (outcome, note) ---------------------------------------

Outcome = CallbackEvent.Outcome


def _subscription_added(event, payload, reference):
    event.mdn = _mdn(payload)
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list; run vibes_sync.")
    lead_ids = _leads_named(payload, event.mdn)
    if not lead_ids:
        return Outcome.UNMATCHED, _("No lead has this number or external id.")
    changed = subscriptions_set_status(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=Subscription.Status.SUBSCRIBED,
        source=SubscriptionChange.Source.CALLBACK,
        note=f"subscription_added #{event.pk}",
        acquisition_campaign=_acquisition_campaign(payload),
        person_key=_person_key(payload),
        when=_date(payload.get("opt_in_date")),
    )
    return Outcome.APPLIED, _("%(changed)d of %(leads)d leads subscribed.") % {
        "changed": changed,
        "leads": len(lead_ids),
    }


def _subscription_removed(event, payload, reference):
    mdn = _mdn(payload)
    if not mdn:
        external_id = _external_person_id(payload)
        if external_id.isdigit():
            mdn = (
                Lead.objects.filter(pk=int(external_id)).values_list("mobile_phone", flat=True).first() or ""
            )
    event.mdn = mdn
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list; run vibes_sync.")
    if not mdn or not Lead.objects.filter(mobile_phone=mdn).exists():
        return Outcome.UNMATCHED, _("No lead has this number.")
    # R9: Vibes opts out a number, so every lead with it is unsubscribed.
    changed = subscriptions_opt_out_number(
        mdn=mdn,
        vibes_list=vibes_list,
        reason=str(payload.get("opt_out_reason") or ""),
        source=SubscriptionChange.Source.CALLBACK,
        note=f"subscription_removed #{event.pk}",
    )
    return Outcome.APPLIED, _("%(changed)d leads unsubscribed.") % {"changed": changed}


def _participant_event(event, payload, reference):
    """ack_participant_added / ack_participant_changed: the confirmation of an acquisition.

    - pending: the lead becomes pending, unless already subscribed (callbacks
      arrive in any order, and a late "pending" must not undo a confirmation);
    - confirmed (subscribed, active...): the lead becomes subscribed, as with
      subscription_added;
    - expired, declined, rejected, cancelled, failed, blocked: the confirmation
      ended without a subscription, so a lead still *pending* on the list
      becomes unsubscribed, with the status in the history note. A subscribed
      lead is left alone: only subscription_removed ends a subscription.
    - any other status is stored and ignored.
    """
    event.mdn = _mdn(payload)
    status = str(payload.get("status") or "").strip().lower()
    vibes_list = _vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, _("Unknown Vibes list or acquisition campaign; run vibes_sync.")
    lead_ids = _leads_named(payload, event.mdn)
    if not lead_ids:
        return Outcome.UNMATCHED, _("No lead has this number or external id.")
    common = {
        "vibes_list": vibes_list,
        "source": SubscriptionChange.Source.CALLBACK,
        "note": f"{event.event_type} {status} #{event.pk}",
        "acquisition_campaign": _acquisition_campaign(payload),
        "person_key": _person_key(payload),
    }
    if status in CONFIRMED_STATUSES:
        new_status = Subscription.Status.SUBSCRIBED
    elif status in PENDING_STATUSES:
        new_status = Subscription.Status.PENDING
        subscribed = Subscription.objects.filter(
            vibes_list=vibes_list, lead_id__in=lead_ids, status=Subscription.Status.SUBSCRIBED
        ).values_list("lead_id", flat=True)
        lead_ids = sorted(set(lead_ids) - set(subscribed))
    elif status in ENDED_STATUSES:
        new_status = Subscription.Status.UNSUBSCRIBED
        lead_ids = list(
            Subscription.objects.filter(
                vibes_list=vibes_list, lead_id__in=lead_ids, status=Subscription.Status.PENDING
            ).values_list("lead_id", flat=True)
        )
    else:
        return Outcome.IGNORED, _("Participant status “%(status)s” needs no action.") % {"status": status}
    changed = subscriptions_set_status(lead_ids=lead_ids, status=new_status, **common)
    return Outcome.APPLIED, _("%(changed)d leads now %(status)s.") % {
        "changed": changed,
        "status": new_status.label,
    }


def _delivery_receipt(event, payload, reference):
    event.mdn = _mdn(payload)
    receipt = DeliveryReceipt(
        message_id=str(payload.get("message_id") or ""),
        mdn=event.mdn,
        status=str(payload.get("status") or "").strip().lower(),
        reference=reference,
        occurred_at=_date(payload.get("occurred_at")),
    )
    matched = False
    for handler in list(_receipt_handlers):
        try:
            matched = bool(handler(receipt)) or matched
        except Exception as error:
            logger.exception("Vibes delivery receipt handler %r failed", handler)
            raise ReceiptHandlerFailed from error
    if not matched:
        return Outcome.UNMATCHED, _("No SMS sent by this app matches the receipt.")
    return Outcome.APPLIED, _("Recorded on the SMS it reports on.")


APPLIERS = {
    "subscription_added": _subscription_added,
    "subscription_removed": _subscription_removed,
    "ack_participant_added": _participant_event,
    "ack_participant_changed": _participant_event,
    "delivery_receipt": _delivery_receipt,
}
