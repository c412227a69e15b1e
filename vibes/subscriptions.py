"""Writes to subscriptions, for callbacks, list sync and campaign runs alike.

Every status change of a lead on a Vibes list goes through
`subscriptions_set_status`, which also writes the lead's history
(SubscriptionChange), so the history is complete whoever changed the status.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from .models import AcquisitionCampaign, Subscription, SubscriptionChange, VibesList

BATCH_SIZE = 1000

Status = Subscription.Status


def subscriptions_set_status(
    *,
    lead_ids: Iterable[int],
    vibes_list: VibesList,
    status: str,
    source: str,
    note: str = "",
    acquisition_campaign: AcquisitionCampaign | None = None,
    opt_out_reason: str = "",
    person_key: str = "",
    when: datetime | None = None,
) -> int:
    """Set these leads' subscription to `vibes_list` to `status`; return how many changed.

    Creates missing subscriptions, in batches of up to 1000 leads with a few
    queries each. Dates follow the status: `pending_since` for pending,
    `opt_in_date` for subscribed, `opt_out_date` and `opt_out_reason` for
    unsubscribed. A lead already in `status` keeps its dates (only blanks
    such as a missing person key are filled in) and gets no history row, so
    calling this twice changes nothing the second time. Unknown lead ids are
    skipped.
    """
    status = Status(status)
    when = when or timezone.now()
    ids = list(dict.fromkeys(int(pk) for pk in lead_ids))
    changed = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        options = {
            "vibes_list": vibes_list,
            "status": status,
            "source": source,
            "note": note[:300],
            "acquisition_campaign": acquisition_campaign,
            "opt_out_reason": opt_out_reason[:40],
            "person_key": person_key[:64],
            "when": when,
        }
        try:
            changed += _set_status_batch(batch, **options)
        except IntegrityError:
            # Another request created one of these subscriptions meanwhile
            # (unique lead + list): the second pass finds and updates it.
            changed += _set_status_batch(batch, **options)
    return changed


@transaction.atomic
def _set_status_batch(
    lead_ids, *, vibes_list, status, source, note, acquisition_campaign, opt_out_reason, person_key, when
):
    existing = {
        s.lead_id: s
        for s in Subscription.objects.select_for_update().filter(vibes_list=vibes_list, lead_id__in=lead_ids)
    }
    missing = [pk for pk in lead_ids if pk not in existing]
    if missing:
        missing = list(Lead.objects.filter(pk__in=missing).values_list("pk", flat=True))

    to_create, to_update, changes = [], [], []
    for lead_id in missing:
        subscription = Subscription(lead_id=lead_id, vibes_list=vibes_list)
        _apply(subscription, status, acquisition_campaign, opt_out_reason, person_key, when)
        to_create.append(subscription)
    for subscription in existing.values():
        old_status = subscription.status
        if old_status == status:
            if _fill_blanks(subscription, acquisition_campaign, person_key, when):
                to_update.append(subscription)
            continue
        _apply(subscription, status, acquisition_campaign, opt_out_reason, person_key, when)
        to_update.append(subscription)
        changes.append((subscription, old_status))

    Subscription.objects.bulk_create(to_create)
    changes += [(subscription, "") for subscription in to_create]
    if to_update:
        for subscription in to_update:
            subscription.updated_at = timezone.now()  # auto_now is skipped by bulk_update
        Subscription.objects.bulk_update(to_update, UPDATE_FIELDS)
    SubscriptionChange.objects.bulk_create(
        SubscriptionChange(
            subscription=subscription,
            lead_id=subscription.lead_id,
            old_status=old_status,
            new_status=status,
            source=source,
            note=note,
            created_at=when,
        )
        for subscription, old_status in changes
    )
    return len(changes)


UPDATE_FIELDS = [
    "status",
    "acquisition_campaign",
    "vibes_person_key",
    "pending_since",
    "opt_in_date",
    "opt_out_date",
    "opt_out_reason",
    "updated_at",
]


def _apply(subscription, status, acquisition_campaign, opt_out_reason, person_key, when):
    subscription.status = status
    if acquisition_campaign is not None:
        subscription.acquisition_campaign = acquisition_campaign
    if person_key:
        subscription.vibes_person_key = person_key
    if status == Status.PENDING:
        subscription.pending_since = when
        subscription.opt_out_date = None
        subscription.opt_out_reason = ""
    elif status == Status.SUBSCRIBED:
        subscription.pending_since = None
        subscription.opt_in_date = when
        subscription.opt_out_date = None
        subscription.opt_out_reason = ""
    else:
        # The opt-in date stays: it tells when the ended subscription began.
        subscription.pending_since = None
        subscription.opt_out_date = when
        subscription.opt_out_reason = opt_out_reason


def _fill_blanks(subscription, acquisition_campaign, person_key, when) -> bool:
    """Complete a subscription already in the right status; True when something was missing."""
    filled = False
    if person_key and not subscription.vibes_person_key:
        subscription.vibes_person_key = person_key
        filled = True
    if acquisition_campaign is not None and subscription.acquisition_campaign_id is None:
        subscription.acquisition_campaign = acquisition_campaign
        filled = True
    if subscription.status == Status.SUBSCRIBED and subscription.opt_in_date is None:
        subscription.opt_in_date = when
        filled = True
    if subscription.status == Status.PENDING and subscription.pending_since is None:
        subscription.pending_since = when
        filled = True
    return filled


def subscriptions_opt_out_number(
    *, mdn: str, vibes_list: VibesList, reason: str, source: str, note: str = ""
) -> int:
    """Unsubscribe every lead with this number from the list (R9: Vibes opts out numbers, not people).

    Returns how many subscriptions changed; leads without a subscription get
    an unsubscribed one, so the opt-out is on record for each of them.
    """
    number = normalize_phone_or_blank(mdn) or (mdn or "").strip()
    if not number:
        return 0
    lead_ids = Lead.objects.filter(mobile_phone=number).values_list("pk", flat=True)
    return subscriptions_set_status(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=Status.UNSUBSCRIBED,
        source=source,
        note=note,
        opt_out_reason=reason,
    )
