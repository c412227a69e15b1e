"""Mirror Vibes into the local tables: lists, acquisition campaigns and,
on request, every list's subscribers (`subscriber_sync`)."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .client import VibesClient
from .models import AcquisitionCampaign, SubscriberSync, VibesList
from .subscriber_sync import PAGE_SIZE, Progress, subscriber_sync_summary, subscribers_sync
from .times import vibes_end


@dataclass
class SyncReport:
    lists_created: int = 0
    lists_updated: int = 0
    lists_gone: int = 0
    campaigns_created: int = 0
    campaigns_updated: int = 0
    campaigns_gone: int = 0
    subscriber_syncs: list[SubscriberSync] = field(default_factory=list)

    def summary(self) -> str:
        return " ".join(self.lines())

    def lines(self) -> list[str]:
        """The lists and campaigns on the first line, then each list's subscriber sync."""
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
        return [text, *(subscriber_sync_summary(sync) for sync in self.subscriber_syncs)]


def vibes_sync(
    *,
    client: VibesClient,
    subscriptions: bool = False,
    create_leads: bool = True,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
) -> SyncReport:
    """Pull lists and acquisition campaigns from Vibes; with `subscriptions`, every list's subscribers too.

    Lists and campaigns are read from Vibes before anything is written, so an
    unreachable Vibes (a VibesError) leaves them as they were. Subscribers
    are synced list by list (`subscribers_sync`); a VibesError stops the
    list it happened on, and the next sync continues it.
    """
    report = SyncReport()
    remote = [(info, client.list_acquisition_campaigns(info.id)) for info in client.list_subscription_lists()]
    _save_lists(remote, report)
    if subscriptions:
        for vibes_list in VibesList.objects.active().order_by("pk"):
            report.subscriber_syncs.append(
                subscribers_sync(
                    vibes_list=vibes_list,
                    client=client,
                    create_leads=create_leads,
                    page_size=page_size,
                    progress=progress,
                )
            )
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
                # A bare end date: the campaign takes participants until the close of that day (UTC).
                "ends_at": vibes_end(c.end_date, whole_day=True),
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
