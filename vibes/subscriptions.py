"""Writes to subscriptions, for callbacks, list sync, campaign runs and administrators alike.

Every status change of a lead on a Vibes list goes through
`subscriptions_apply` (or its short form `subscriptions_set_status`), which
also writes the lead's history (SubscriptionChange), so the history is
complete whoever changed the status.

Changes take effect by their own time (R9), whatever their source: a
callback by the opt-in or opt-out date it carries, a run by the moment its
calls went out, a sync by the moment it asked Vibes, an administrator by the
moment of saving. Vibes keeps one status per number and list, so a change
older than the newest change applied to anyone with the same number on that
list is kept in the history as superseded and changes nothing; at equal times
the opt-out wins (then subscribed, then pending).

Times are compared to the second, because Vibes may write its dates without
fractions: a run's "already subscribed" at 10:00:00.4 must not outrank a STOP
that Vibes dates 10:00:00, so within one second the opt-out wins. And no
change is later than the moment it reaches this module: a date in the future
would otherwise outrank every real change after it.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from smscampaigns.activities import NewActivity, activities_record
from smscampaigns.models import Activity, Lead
from smscampaigns.phones import normalize_phone_or_blank

from .models import AcquisitionCampaign, CallbackEvent, Subscription, SubscriptionChange, VibesList

BATCH_SIZE = 1000

Status = Subscription.Status
Effect = SubscriptionChange.Effect

# Sent in the transaction that wrote them, with `changes`: the history rows just
# written. Apps above this one keep what they derive from the history with it
# (marketing_activities: the SMS figures' unsubscriptions).
subscription_changes_written = Signal()

# At equal times the opt-out wins: the order in which statuses outrank each other.
RANK = {Status.PENDING: 0, Status.SUBSCRIBED: 1, Status.UNSUBSCRIBED: 2}


@dataclass(frozen=True)
class SubscriptionUpdate:
    """What one request to set a status did, in leads."""

    changed: int = 0  # their status changed
    superseded: int = 0  # older than their number's last applied change: nothing changed
    unchanged: int = 0  # already in that status, or not in a status the request may change

    def __add__(self, other):
        return SubscriptionUpdate(
            self.changed + other.changed,
            self.superseded + other.superseded,
            self.unchanged + other.unchanged,
        )


def subscriptions_apply(
    *,
    lead_ids: Iterable[int],
    vibes_list: VibesList,
    status: str,
    source: str,
    when: datetime | None = None,
    note: str = "",
    acquisition_campaign: AcquisitionCampaign | None = None,
    opt_out_reason: str = "",
    person_key: str = "",
    only_from: Iterable[str] | None = None,
    callback_event: CallbackEvent | None = None,
    user=None,
) -> SubscriptionUpdate:
    """Set these leads' subscription to `vibes_list` to `status` as of `when` (default: now, to the second).

    Creates missing subscriptions, in batches of up to 1000 leads with a few
    queries each. Dates follow the status: `pending_since` for pending,
    `opt_in_date` for subscribed, `opt_out_date` and `opt_out_reason` for
    unsubscribed; `status_at` is `when`. A lead already in `status` keeps its
    dates (only blanks such as a missing person key are filled in, and
    `status_at` moves on to `when` if later) and gets no history row, so
    calling this twice changes nothing the second time. With `only_from`,
    only leads currently in one of those statuses ("" for none) are changed.
    Unknown lead ids are skipped.
    """
    status = Status(status)
    now = timezone.now()
    when = _effective(when, now)
    options = {
        "vibes_list": vibes_list,
        "status": status,
        "when": when,
        "now": now,
        "only_from": None if only_from is None else set(only_from),
        "fields": {
            "acquisition_campaign": acquisition_campaign,
            "opt_out_reason": opt_out_reason[:40],
            "person_key": person_key[:64],
        },
        "history": {
            "source": source,
            "note": note[:300],
            "callback_event": callback_event,
            "user": user,
        },
    }
    ids = list(dict.fromkeys(int(pk) for pk in lead_ids))
    total = SubscriptionUpdate()
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        try:
            total += _apply_batch(batch, **options)
        except IntegrityError:
            # Another request created one of these subscriptions meanwhile
            # (unique lead + list): the second pass finds it, and compares
            # with its time.
            total += _apply_batch(batch, **options)
    return total


def subscriptions_set_status(**options) -> int:
    """`subscriptions_apply`, answering only how many leads changed."""
    return subscriptions_apply(**options).changed


def subscriptions_opt_out_number(
    *,
    mdn: str,
    vibes_list: VibesList,
    reason: str,
    source: str,
    when: datetime | None = None,
    note: str = "",
    callback_event: CallbackEvent | None = None,
) -> SubscriptionUpdate:
    """Unsubscribe every lead with this number from the list (R9: Vibes opts out numbers, not people).

    Leads without a subscription get an unsubscribed one, so the opt-out is
    on record for each of them.
    """
    return subscriptions_opt_out_numbers(
        mdns=[mdn],
        vibes_list=vibes_list,
        reason=reason,
        source=source,
        when=when,
        note=note,
        callback_event=callback_event,
    )


def subscriptions_opt_out_numbers(
    *,
    mdns: Iterable[str],
    vibes_list: VibesList,
    reason: str,
    source: str,
    when: datetime | None = None,
    note: str = "",
    callback_event: CallbackEvent | None = None,
    only_from: Iterable[str] | None = None,
) -> SubscriptionUpdate:
    """`subscriptions_opt_out_number` for several numbers at once (a run's
    batch of calls); with `only_from`, as `subscriptions_apply` has it."""
    numbers = {normalize_phone_or_blank(mdn) or (mdn or "").strip() for mdn in mdns} - {""}
    if not numbers:
        return SubscriptionUpdate()
    return subscriptions_apply(
        lead_ids=Lead.objects.filter(mobile_phone__in=numbers).values_list("pk", flat=True),
        vibes_list=vibes_list,
        status=Status.UNSUBSCRIBED,
        source=source,
        when=when,
        note=note,
        opt_out_reason=reason,
        callback_event=callback_event,
        only_from=only_from,
    )


def subscription_mismatch_record(
    *,
    lead_id: int,
    vibes_list: VibesList,
    status: str,
    source: str,
    when: datetime | None = None,
    note: str = "",
    callback_event: CallbackEvent | None = None,
) -> None:
    """Keep, in a lead's history, a change that named it for another number and so changed nothing."""
    now = timezone.now()
    subscription = Subscription.objects.filter(lead_id=lead_id, vibes_list=vibes_list).first()
    SubscriptionChange.objects.create(
        subscription=subscription,
        lead_id=lead_id,
        vibes_list=vibes_list,
        old_status=subscription.status if subscription else "",
        new_status=status,
        effect=Effect.MISMATCH,
        source=source,
        callback_event=callback_event,
        note=note[:300],
        occurred_at=_effective(when, now),
        recorded_at=now,
    )


def _effective(when: datetime | None, now: datetime) -> datetime:
    """When a change takes effect: its own time (default: now), never later than now, to the second."""
    return min(when or now, now).replace(microsecond=0)


@transaction.atomic
def _apply_batch(
    lead_ids, *, vibes_list, status, when, now, only_from, fields, history
) -> SubscriptionUpdate:
    numbers = dict(Lead.objects.filter(pk__in=lead_ids).values_list("pk", "mobile_phone"))
    # Everyone sharing these numbers, and their subscriptions, locked so that
    # two changes for one number are compared one after the other. Two
    # lookups by index: a join filtered on either side would read the whole list.
    sharing = dict(
        Lead.objects.filter(mobile_phone__in={n for n in numbers.values() if n}).values_list(
            "pk", "mobile_phone"
        )
    )
    sharing.update(numbers)
    rows = Subscription.objects.select_for_update().filter(vibes_list=vibes_list, lead_id__in=list(sharing))
    own, newest = {}, {}
    for row in rows:
        if row.lead_id in numbers:
            own[row.lead_id] = row
        # A lead without a number is ordered by its own subscription alone.
        key = sharing[row.lead_id] or ("lead", row.lead_id)
        mark = (row.status_at.replace(microsecond=0), RANK[row.status])
        if key not in newest or mark > newest[key]:
            newest[key] = mark

    mark = (when, RANK[status])
    to_create, changes = [], []
    # Rows to update, by the fields they change: every change in a batch
    # writes the same values (its status, time, campaign, person key), so a
    # few plain UPDATEs do it. bulk_update's CASE per row and field took a
    # second of Python for 1,000 rows (the list sync's pages).
    to_update = defaultdict(list)
    superseded = unchanged = 0
    for lead_id, number in numbers.items():
        subscription = own.get(lead_id)
        current = subscription.status if subscription else ""
        if only_from is not None and current not in only_from:
            unchanged += 1
            continue
        last = newest.get(number or ("lead", lead_id))
        if last is not None and mark < last:
            superseded += 1
            changes.append((subscription, lead_id, current, Effect.SUPERSEDED))
            continue
        if subscription is None:
            subscription = Subscription(lead_id=lead_id, vibes_list=vibes_list)
            _set(subscription, status, when, **fields)
            to_create.append(subscription)
        elif current == status:
            unchanged += 1
            filled = _fill_blanks(subscription, when, fields["acquisition_campaign"], fields["person_key"])
            if filled:
                to_update[_written(filled)].append(subscription)
            continue
        else:
            to_update[_written(_set(subscription, status, when, **fields))].append(subscription)
        changes.append((subscription, lead_id, current, Effect.APPLIED))

    Subscription.objects.bulk_create(to_create)
    for written, subscriptions in to_update.items():
        for subscription in subscriptions:
            subscription.updated_at = now  # auto_now is skipped by update()
        Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(
            **dict(written), updated_at=now
        )
    written = SubscriptionChange.objects.bulk_create(
        SubscriptionChange(
            subscription=subscription,
            lead_id=lead_id,
            vibes_list=vibes_list,
            old_status=old_status,
            new_status=status,
            effect=effect,
            # A confirmation's callback may not name the campaign the pending
            # subscription came through: the subscription still knows it.
            acquisition_campaign_id=_campaign_id(fields["acquisition_campaign"], subscription),
            occurred_at=when,
            recorded_at=now,
            **history,
        )
        for subscription, lead_id, old_status, effect in changes
    )
    _record_activities(written, history["callback_event"])
    subscription_changes_written.send(sender=SubscriptionChange, changes=written)
    applied = len(changes) - superseded
    return SubscriptionUpdate(changed=applied, superseded=superseded, unchanged=unchanged)


def _campaign_id(acquisition_campaign, subscription) -> int | None:
    if acquisition_campaign is not None:
        return acquisition_campaign.pk
    return subscription.acquisition_campaign_id if subscription is not None else None


ACTIVITY_KINDS = {
    Status.SUBSCRIBED: Activity.Kind.SUBSCRIBED_TO_VIBES_LIST,
    Status.UNSUBSCRIBED: Activity.Kind.UNSUBSCRIBED_FROM_VIBES_LIST,
}


def _record_activities(changes: list, callback_event: CallbackEvent | None) -> None:
    """The person's activity for each change that took effect: subscribed or unsubscribed.

    A callback's activities are keyed by the callback (stored once however
    often Vibes delivers it), so applying it again never makes a second one;
    other changes by their history row.
    """
    activities_record(
        activities=[
            NewActivity(
                kind=ACTIVITY_KINDS[change.new_status],
                lead_id=change.lead_id,
                key=(
                    f"vibes-callback:{callback_event.dedupe_key}:{change.lead_id}"
                    if callback_event is not None
                    else f"subscription-change:{change.pk}"
                ),
                occurred_at=change.occurred_at,
                source=change.source,
                attributes={
                    "vibes_list": change.vibes_list_id,
                    "acquisition_campaign": change.subscription.acquisition_campaign_id or "",
                },
            )
            for change in changes
            if change.effect == Effect.APPLIED and change.new_status in ACTIVITY_KINDS
        ]
    )


def _written(values: dict) -> tuple:
    """The fields and values a change writes, as a key to group rows by."""
    return tuple(sorted(values.items(), key=lambda item: item[0]))


def _set(subscription, status, when, *, acquisition_campaign, opt_out_reason, person_key) -> dict:
    """Put the subscription in `status` as of `when`; returns the fields written and their values."""
    values = {"status": status, "status_at": when}
    if acquisition_campaign is not None:
        values["acquisition_campaign"] = acquisition_campaign
    if person_key:
        values["vibes_person_key"] = person_key
    if status == Status.PENDING:
        values.update(pending_since=when, opt_out_date=None, opt_out_reason="")
    elif status == Status.SUBSCRIBED:
        values.update(pending_since=None, opt_in_date=when, opt_out_date=None, opt_out_reason="")
    else:
        # The opt-in date stays: it tells when the ended subscription began.
        values.update(pending_since=None, opt_out_date=when, opt_out_reason=opt_out_reason)
    for name, value in values.items():
        setattr(subscription, name, value)
    return values


def _fill_blanks(subscription, when, acquisition_campaign, person_key) -> dict:
    """Complete a subscription already in the right status; returns the fields filled and their values.

    A later report of the same status moves `status_at` on: an older change
    arriving after it (an opt-out before a re-subscription, say) must still
    count as older.
    """
    values = {}
    if when > subscription.status_at:
        values["status_at"] = when
    if person_key and not subscription.vibes_person_key:
        values["vibes_person_key"] = person_key
    if acquisition_campaign is not None and subscription.acquisition_campaign_id is None:
        values["acquisition_campaign"] = acquisition_campaign
    if subscription.status == Status.SUBSCRIBED and subscription.opt_in_date is None:
        values["opt_in_date"] = when
    if subscription.status == Status.PENDING and subscription.pending_since is None:
        values["pending_since"] = when
    for name, value in values.items():
        setattr(subscription, name, value)
    return values
