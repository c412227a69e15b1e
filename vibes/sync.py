"""Mirror Vibes into the local tables: lists, acquisition campaigns and,
on request, every lead's subscription status."""

import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from smscampaigns.models import Lead

from .client import VibesClient
from .exceptions import VibesAuthError, VibesConnectionError, VibesError, VibesTimeout
from .models import AcquisitionCampaign, Subscription, SubscriptionChange, VibesList
from .subscriptions import subscriptions_set_status

LEAD_CHUNK = 500
WORKERS = 8
# Vibes asks people to confirm within 24 hours (R5); a participant pending for
# less is simply not subscribed yet, and a 404 from Vibes says nothing new.
CONFIRMATION_WINDOW = timedelta(hours=24)
MAX_ERRORS_KEPT = 20


@dataclass
class SyncReport:
    lists_created: int = 0
    lists_updated: int = 0
    lists_gone: int = 0
    campaigns_created: int = 0
    campaigns_updated: int = 0
    campaigns_gone: int = 0
    subscriptions_checked: int = 0
    subscriptions_changed: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def add_error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def summary(self) -> str:
        text = _(
            "Vibes lists: %(lc)d new, %(lu)d updated, %(lg)d gone. "
            "Acquisition campaigns: %(cc)d new, %(cu)d updated, %(cg)d gone."
        ) % {
            "lc": self.lists_created,
            "lu": self.lists_updated,
            "lg": self.lists_gone,
            "cc": self.campaigns_created,
            "cu": self.campaigns_updated,
            "cg": self.campaigns_gone,
        }
        if self.subscriptions_checked:
            text += " " + _("Subscriptions: %(checked)d checked, %(changed)d changed.") % {
                "checked": self.subscriptions_checked,
                "changed": self.subscriptions_changed,
            }
        if self.error_count:
            text += " " + _("%(count)d checks failed.") % {"count": self.error_count}
        return text


def vibes_sync(
    *, client: VibesClient, subscriptions: bool = False, progress: Callable[[int], None] | None = None
) -> SyncReport:
    """Pull lists and acquisition campaigns from Vibes; with `subscriptions`, every lead's status too.

    Everything is read from Vibes before anything is written, so an
    unreachable Vibes (a VibesError) leaves the tables as they were.
    """
    report = SyncReport()
    remote = [(info, client.list_acquisition_campaigns(info.id)) for info in client.list_subscription_lists()]
    _save_lists(remote, report)
    if subscriptions:
        _sync_subscriptions(client, report, progress or (lambda n: None))
    return report


@transaction.atomic
def _save_lists(remote, report: SyncReport) -> None:
    now = timezone.now()
    lists = {vl.vibes_id: vl for vl in VibesList.objects.select_for_update()}
    campaigns = {c.vibes_id: c for c in AcquisitionCampaign.objects.select_for_update()}
    seen_lists, seen_campaigns = set(), set()
    for info, campaign_infos in remote:
        seen_lists.add(info.id)
        vibes_list = lists.get(info.id)
        if vibes_list is None:
            vibes_list = VibesList.objects.create(vibes_id=info.id, name=info.name or info.id, synced_at=now)
            report.lists_created += 1
        else:
            if vibes_list.name != (info.name or info.id) or vibes_list.gone_at is not None:
                report.lists_updated += 1
            vibes_list.name, vibes_list.gone_at, vibes_list.synced_at = info.name or info.id, None, now
            vibes_list.save(update_fields=["name", "gone_at", "synced_at"])
        for c in campaign_infos:
            seen_campaigns.add(c.acquisition_id)
            values = {
                "name": c.name or c.acquisition_id,
                "vibes_list": vibes_list,
                # Unknown words are kept as Vibes wrote them: only "active" is offered.
                "status": c.status[:20],
                "ends_at": _end_date(c.end_date),
                "keywords": ", ".join(c.keywords)[:200],
                "gone_at": None,
            }
            campaign = campaigns.get(c.acquisition_id)
            if campaign is None:
                AcquisitionCampaign.objects.create(vibes_id=c.acquisition_id, synced_at=now, **values)
                report.campaigns_created += 1
                continue
            if any(getattr(campaign, name) != value for name, value in values.items()):
                report.campaigns_updated += 1
            for name, value in values.items():
                setattr(campaign, name, value)
            campaign.synced_at = now
            campaign.save()
    # Gone lists and campaigns are kept (flow steps and history point at
    # them) and marked, so they drop out of the choices.
    report.lists_gone = (
        VibesList.objects.filter(gone_at__isnull=True).exclude(vibes_id__in=seen_lists).update(gone_at=now)
    )
    report.campaigns_gone = (
        AcquisitionCampaign.objects.filter(gone_at__isnull=True)
        .exclude(vibes_id__in=seen_campaigns)
        .update(gone_at=now)
    )


def _end_date(value: str) -> datetime | None:
    """Vibes' ISO 8601 end date as a time in UTC; a bare date ends at the close of that day (UTC)."""
    value = value.strip()
    try:
        day = parse_date(value)
        if day is not None:
            return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
        moment = parse_datetime(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment.astimezone(UTC)


def _sync_subscriptions(client: VibesClient, report: SyncReport, progress) -> None:
    """Ask Vibes for every (lead with a number, active list) pair, a chunk of leads at a time.

    Calls run on a few threads and pass the client's rate limiter; only the
    main thread touches the database.
    """
    lists = list(VibesList.objects.active())
    if not lists:
        return
    leads = Lead.objects.with_phone().order_by("pk")
    last_pk = 0
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vibes-sync") as pool:
        while True:
            chunk = dict(leads.filter(pk__gt=last_pk).values_list("pk", "mobile_phone")[:LEAD_CHUNK])
            if not chunk:
                return
            last_pk = max(chunk)
            for vibes_list in lists:
                _sync_chunk(client, pool, vibes_list, chunk, report)
                progress(len(chunk))


def _sync_chunk(client, pool, vibes_list, numbers: dict[int, str], report):
    """Refresh one list's subscriptions for a chunk of leads ({lead id: number})."""
    # What Vibes answers is true from the moment it was asked: changes take
    # effect as of then, so a callback about a later change still outranks them.
    asked_at = timezone.now()
    local = {
        lead_id: (status, since)
        for lead_id, status, since in Subscription.objects.filter(
            vibes_list=vibes_list, lead_id__in=list(numbers)
        ).values_list("lead_id", "status", "pending_since")
    }
    failure = threading.Event()

    def guarded(fn, key):
        if failure.is_set():
            return key, None, None
        try:
            return key, fn(key), None
        except (VibesConnectionError, VibesTimeout, VibesAuthError):
            failure.set()  # Vibes is unreachable or refuses us: stop asking
            raise
        except VibesError as error:
            return key, None, error

    def by_lead(lead_id):
        return client.get_subscription(vibes_list.vibes_id, external_person_id=str(lead_id))

    def by_number(mdn):
        # Vibes knows one person per number, under the external id of the
        # lead that subscribed it; the others sharing the number share its status.
        person = client.find_person(mdn)
        if person is None or not person.external_person_id:
            return None
        return client.get_subscription(vibes_list.vibes_id, external_person_id=person.external_person_id)

    found = {}
    for lead_id, info, error in pool.map(lambda pk: guarded(by_lead, pk), numbers):
        if error is not None:
            report.add_error(f"lead {lead_id}: {error}")
            continue
        report.subscriptions_checked += 1
        found[lead_id] = info

    # Leads Vibes does not know by their own id, whose local row would change: ask by number.
    cutoff = timezone.now() - CONFIRMATION_WINDOW
    unknown = {
        lead_id
        for lead_id, info in found.items()
        if info is None
        and lead_id in local
        and (
            local[lead_id][0] == Subscription.Status.SUBSCRIBED
            or (local[lead_id][0] == Subscription.Status.PENDING and (local[lead_id][1] or cutoff) <= cutoff)
        )
    }
    by_mdn = {}
    for mdn, info, error in pool.map(lambda n: guarded(by_number, n), {numbers[pk] for pk in unknown}):
        if error is not None:
            report.add_error(f"number check: {error}")
        by_mdn[mdn] = (info, error)

    # (status, opt-out reason) -> lead ids
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for lead_id, info in found.items():
        if info is None and lead_id in unknown:
            info, error = by_mdn[numbers[lead_id]]
            if error is not None:
                continue
            if info is None:
                # Vibes knows no subscription for the number either.
                groups[(Subscription.Status.UNSUBSCRIBED, "")].append(lead_id)
                continue
        if info is None:
            continue  # never create rows for people who were never on the list
        if info.subscribed:
            groups[(Subscription.Status.SUBSCRIBED, "")].append(lead_id)
        else:
            groups[(Subscription.Status.UNSUBSCRIBED, info.opt_out_reason)].append(lead_id)
    for (status, reason), ids in groups.items():
        report.subscriptions_changed += subscriptions_set_status(
            lead_ids=ids,
            vibes_list=vibes_list,
            status=status,
            source=SubscriptionChange.Source.SYNC,
            when=asked_at,
            note=_("Vibes sync"),
            opt_out_reason=reason,
        )
