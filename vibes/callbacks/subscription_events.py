"""Subscription and acquisition participant events: who is subscribed to a list.

Vibes delivers in any order (R9): these events take effect by their own time
(`opt_in_date`, `opt_out_date`; `participation_date` for acquisition
participants), an event older than the last change applied for its number
and list is kept as superseded and changes nothing, and at equal times the
opt-out wins (`vibes.subscriptions`). People are found by the number; the
external person id only picks one of the people with it, and when it names
a lead with another number the event changes nothing (an opt-out still
holds for its number).

Each handler returns the event's (outcome, note).
"""

from django.utils.translation import gettext_lazy as _

from smscampaigns.models import Lead

from ..models import CallbackEvent, Subscription, SubscriptionChange
from ..subscriptions import subscription_mismatch_record, subscriptions_apply, subscriptions_opt_out_number
from . import fields
from .news import ConfirmationNews, confirmation_listeners

Outcome = CallbackEvent.Outcome
Status = Subscription.Status
CALLBACK = SubscriptionChange.Source.CALLBACK

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

UNKNOWN_LIST = _("Unknown Vibes list; run vibes_sync.")
NO_NUMBER = _("The event has no valid mobile number, and people are found by number.")
NOBODY = _("No lead has this number.")


def subscription_added(event, payload, reference):
    event.mdn = fields.mdn(payload)
    vibes_list = fields.vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, UNKNOWN_LIST
    if not event.mdn:
        return Outcome.UNMATCHED, NO_NUMBER
    when = fields.event_time(payload.get("opt_in_date"), event)
    if when is None:
        # Without its time the event cannot be ordered among the others.
        return Outcome.IGNORED, _("The event has no valid opt-in date; nothing changed.")
    note = f"subscription_added #{event.pk}"
    lead_ids, refusal = _people(event, payload, vibes_list, Status.SUBSCRIBED, when, note)
    if refusal:
        return refusal
    update = _apply(event, payload, lead_ids, vibes_list, Status.SUBSCRIBED, when, note)
    confirmation_listeners.tell(
        ConfirmationNews(event.mdn, vibes_list.pk, "subscribed", "subscribed", since=when, at=when)
    )
    return _result(
        update,
        _("%(changed)d of %(leads)d leads subscribed.") % {"changed": update.changed, "leads": len(lead_ids)},
    )


def subscription_removed(event, payload, reference):
    named = fields.named_lead(payload)
    # Without a number the person id is all there is: its lead's number is opted out.
    event.mdn = fields.mdn(payload) or (named.mobile_phone if named else "")
    vibes_list = fields.vibes_list(payload)
    if vibes_list is None:
        return Outcome.UNMATCHED, UNKNOWN_LIST
    if not event.mdn or not Lead.objects.filter(mobile_phone=event.mdn).exists():
        return Outcome.UNMATCHED, NOBODY
    # An opt-out is never dropped for want of a date: it then counts from its arrival.
    when = fields.event_time(payload.get("opt_out_date"), event) or event.received_at
    note = f"subscription_removed #{event.pk}"
    mismatch = ""
    # The opt-out still holds for the number (R9); a lead named for another number keeps its status.
    if _named_for_another_number(event, named, vibes_list, Status.UNSUBSCRIBED, when, note):
        mismatch = " " + str(
            _("The external person id %(id)s names a lead with another number, which was left alone.")
            % {"id": fields.external_person_id(payload)[:40]}
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


def participant_event(event, payload, reference):
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
    event.mdn = fields.mdn(payload)
    status = str(payload.get("status") or "").strip().lower()
    vibes_list = fields.vibes_list(payload)
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
        return Outcome.UNMATCHED, NO_NUMBER
    when = fields.event_time(payload.get("participation_date"), event)
    if when is None:
        if only_from is None:
            return Outcome.IGNORED, _("The event has no valid participation date; nothing changed.")
        when = event.received_at
    note = f"{event.event_type} {status[:40]} #{event.pk}"
    lead_ids, refusal = _people(event, payload, vibes_list, new_status, when, note)
    if refusal:
        return refusal
    update = _apply(event, payload, lead_ids, vibes_list, new_status, when, note, only_from=only_from)
    # The participation date is when the request began, not when this news
    # came about: that is the arrival, as far as this app can tell.
    confirmation_listeners.tell(
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


def _people(event, payload, vibes_list, status, when, note):
    """The lead ids a subscription event is about, found by the number (R9), and
    None; or no lead ids and the (outcome, note) that says why.

    The external person id may pick one of the people with the number. When
    it names a lead with another number (or none), the event is recorded as a
    mismatch in that lead's history and changes nothing.
    """
    named = fields.named_lead(payload)
    if _named_for_another_number(event, named, vibes_list, status, when, note):
        return [], (
            Outcome.MISMATCH,
            _("The external person id %(id)s names a lead with another number; nothing changed.")
            % {"id": fields.external_person_id(payload)[:40]},
        )
    if named is not None:
        return [named.pk], None
    lead_ids = list(Lead.objects.filter(mobile_phone=event.mdn).values_list("pk", flat=True))
    return lead_ids, None if lead_ids else (Outcome.UNMATCHED, NOBODY)


def _named_for_another_number(event, named, vibes_list, status, when, note) -> bool:
    """True when the external person id names a lead whose number is not the event's;
    the event is then kept in that lead's history as a mismatch."""
    if named is None or named.mobile_phone == event.mdn:
        return False
    subscription_mismatch_record(
        lead_id=named.pk,
        vibes_list=vibes_list,
        status=status,
        source=CALLBACK,
        when=when,
        note=note,
        callback_event=event,
    )
    return True


def _apply(event, payload, lead_ids, vibes_list, status, when, note, *, only_from=None):
    return subscriptions_apply(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=status,
        source=CALLBACK,
        when=when,
        note=note,
        acquisition_campaign=fields.acquisition_campaign(payload),
        person_key=fields.person_key(payload),
        only_from=only_from,
        callback_event=event,
    )


def _result(update, done_note):
    if update.superseded and not update.changed:
        return Outcome.SUPERSEDED, _(
            "Arrived late: older than the last change applied for this number and list; nothing changed."
        )
    return Outcome.APPLIED, done_note


def _confirmation_outcome(status: str) -> str:
    if status in CONFIRMED_STATUSES:
        return "subscribed"
    if status in PENDING_STATUSES:
        return "pending"
    return "expired" if status == "expired" else "declined"
