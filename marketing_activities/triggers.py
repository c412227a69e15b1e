"""Trigger campaigns: new activities matched to active trigger campaigns, and
the flow run for the people they fire for.

1. `activities_match` takes the activities not dispatched yet, finds the
   active trigger campaigns whose triggers match each, and records a firing
   per (activity, campaign): the unique constraint makes it at most one,
   however often the activity is offered.
2. `trigger_run_start` takes a campaign's waiting firings into a run: each
   person is checked against the campaign's filters and, under the
   qualification rule "once" (or "once every N", within its period), against
   the people who already ran through the flow; a number is taken once for
   the activities of one second (unique constraint). The run is an ordinary
   run (trigger "trigger") whose audience is its firings' people, so every
   rule of a batch run applies (R2–R10, per-number blocks, dedupe), and it
   shows in the Results tab.
3. `triggers_dispatch` does both, working the runs in this process, until
   nothing waits.

A campaign has one active run at a time (the database's constraint), so the
firings that arrive while it runs wait for the next one, which the worker
that ran it starts. Deactivating a campaign closes its waiting firings.
"""

import datetime
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from smscampaigns.models import Activity, Lead

from .campaign_requests import REQUESTED
from .models import CampaignRun, SmartCampaign, TriggerFiring
from .runner import run_execute
from .runner.runs import run_steps_snapshot

logger = logging.getLogger(__name__)

MATCH_BATCH = 500  # activities matched in one transaction
RUN_BATCH = 1000  # firings taken into one run
# A trigger run of a few people takes seconds: one without progress for this
# long has most likely lost its worker (killed), and its campaign's firings wait behind it.
STALLED_AFTER = datetime.timedelta(seconds=30)

Status = TriggerFiring.Status


@dataclass
class DispatchReport:
    activities: int = 0
    firings: int = 0
    runs: int = 0

    def __add__(self, other):
        return DispatchReport(
            self.activities + other.activities, self.firings + other.firings, self.runs + other.runs
        )


def active_trigger_campaigns() -> list[tuple[SmartCampaign, tuple]]:
    """The active trigger campaigns with their checked triggers. One whose smart
    list has problems fires for nobody until it is fixed."""
    campaigns = []
    for campaign in SmartCampaign.objects.filter(
        is_active=True, smart_list__definition__has_key="triggers"
    ).select_related("smart_list"):
        try:
            triggers = campaign.smart_list.parsed().triggers
        except ValidationError:  # a stored definition that no longer parses: its tab shows why
            logger.warning("trigger campaign %s has smart list problems; it fires for nobody", campaign.pk)
            continue
        if triggers:
            campaigns.append((campaign, triggers))
    return campaigns


def activities_match(*, limit: int = MATCH_BATCH) -> DispatchReport:
    """Match the oldest activities not dispatched yet; record a firing for each
    active trigger campaign that one of its triggers matches."""
    # Looked for outside a transaction first: on SQLite every transaction
    # waits its turn at the write lock, and most looks find nothing new.
    if not Activity.objects.filter(dispatched_at__isnull=True).exists():
        return DispatchReport()
    with transaction.atomic():
        pending = Activity.objects.filter(dispatched_at__isnull=True).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            # Two dispatchers take different activities.
            pending = pending.select_for_update(skip_locked=True)
        activities = list(pending[:limit])
        if not activities:
            return DispatchReport()
        campaigns = active_trigger_campaigns()
        firings = [
            TriggerFiring(activity=activity, campaign=campaign, lead_id=activity.lead_id)
            for activity in activities
            for campaign, triggers in campaigns
            if any(trigger.matches(activity, campaign_id=campaign.pk) for trigger in triggers)
        ]
        TriggerFiring.objects.bulk_create(firings, ignore_conflicts=True)
        Activity.objects.filter(pk__in=[activity.pk for activity in activities]).update(
            dispatched_at=timezone.now()
        )
    return DispatchReport(activities=len(activities), firings=len(firings))


def _number_second(phone: str, activity: Activity) -> str | None:
    if not phone:
        return None  # nobody is texted without a number: nothing to keep apart
    return f"{phone}@{int(activity.occurred_at.timestamp())}"


def trigger_run_start(*, campaign: SmartCampaign, limit: int = RUN_BATCH) -> CampaignRun | None:
    """Take the campaign's waiting firings into a run; None when none waits for
    a run, or the campaign's run is still active (that run's worker starts the next)."""
    # Read first, outside a transaction (on SQLite each waits its turn at the
    # write lock): most looks find nothing waiting, or the campaign's run still
    # active. The transaction below decides; these only spare it. Not the run on
    # PostgreSQL: there the insert below waits for a run that is finishing and
    # then takes the firings its worker could no longer see, which a look at the
    # run would leave to the next sweep a minute later.
    if not TriggerFiring.objects.filter(campaign=campaign, status=Status.WAITING).exists():
        return None
    if connection.vendor == "sqlite" and CampaignRun.objects.active().filter(campaign=campaign).exists():
        return None
    with transaction.atomic():
        try:
            with transaction.atomic():
                # First: the database allows one active run per campaign, so only
                # one dispatcher at a time takes the campaign's waiting firings.
                run = CampaignRun.objects.create(campaign=campaign, trigger=CampaignRun.Trigger.ACTIVITY)
        except IntegrityError:
            return None
        waiting = list(
            TriggerFiring.objects.filter(campaign=campaign, status=Status.WAITING)
            .select_related("activity")
            .order_by("pk")[:limit]
        )
        if not waiting:
            transaction.set_rollback(True)
            return None
        campaign.refresh_from_db(
            fields=["is_active", "qualification_rule", "qualification_period", "qualification_period_unit"]
        )
        if not campaign.is_active:
            _close(waiting, Status.INACTIVE)  # deactivated since they fired
            CampaignRun.objects.filter(pk=run.pk).delete()
            return None
        problems = campaign.problems()
        if problems:
            # The flow or the filters were broken since activation: the firings wait for a fix.
            logger.warning("trigger campaign %s cannot run: %s", campaign.pk, " ".join(map(str, problems)))
            transaction.set_rollback(True)
            return None
        members = _take(campaign, run, waiting)
        if not members:
            CampaignRun.objects.filter(pk=run.pk).delete()
            return None
        run_steps_snapshot(run=run, campaign=campaign)
    return run


def _close(firings: list[TriggerFiring], status: str) -> None:
    TriggerFiring.objects.filter(pk__in=[firing.pk for firing in firings]).update(status=status)


def _take(campaign: SmartCampaign, run: CampaignRun, waiting: list[TriggerFiring]) -> int:
    """Give each waiting firing its verdict; the members join `run`. Returns how many did."""
    lead_ids = {firing.lead_id for firing in waiting}
    definition = campaign.smart_list.parsed()
    people = Lead.objects.filter(pk__in=lead_ids)
    if definition.rules:
        people = people.filter(definition.to_q())
    phones = dict(people.values_list("pk", "mobile_phone"))
    ran = set()
    if campaign.qualification_rule == SmartCampaign.QualificationRule.ONCE:
        ran = set(
            TriggerFiring.objects.filter(
                campaign=campaign, status=Status.MEMBER, lead_id__in=lead_ids
            ).values_list("lead_id", flat=True)
        )
    elif campaign.qualification_rule == SmartCampaign.QualificationRule.ONCE_EVERY:
        # Only the runs within the period count (issue 17), as in a batch run.
        ran = set(
            TriggerFiring.objects.filter(
                campaign=campaign,
                status=Status.MEMBER,
                lead_id__in=lead_ids,
                run__created_at__gte=campaign.qualification_since(run.created_at),
            ).values_list("lead_id", flat=True)
        )
    members = 0
    verdicts: dict[str, list] = {Status.FILTERED_OUT: [], Status.ALREADY_RAN: []}
    for firing in waiting:
        if firing.lead_id not in phones:
            verdicts[Status.FILTERED_OUT].append(firing)
            continue
        if firing.lead_id in ran:
            verdicts[Status.ALREADY_RAN].append(firing)
            continue
        try:
            with transaction.atomic():
                TriggerFiring.objects.filter(pk=firing.pk).update(
                    status=Status.MEMBER,
                    run=run,
                    number_second=_number_second(phones[firing.lead_id], firing.activity),
                )
        except IntegrityError:
            # This number was taken by another activity of the same second.
            TriggerFiring.objects.filter(pk=firing.pk).update(status=Status.SAME_NUMBER, run=run)
            continue
        members += 1
        ran.add(firing.lead_id)  # a person's second activity in one run is not a second member
    for status, firings in verdicts.items():
        TriggerFiring.objects.filter(pk__in=[firing.pk for firing in firings]).update(status=status, run=run)
    return members


def trigger_runs_work(*, campaign_ids=None, client=None) -> int:
    """Start and work the runs of every campaign with waiting firings, in this
    process, until none waits (or its run is another worker's). Returns the runs worked."""
    worked = 0
    while True:
        waiting = TriggerFiring.objects.filter(status=Status.WAITING)
        if campaign_ids is not None:
            waiting = waiting.filter(campaign_id__in=campaign_ids)
        started = False
        for campaign in SmartCampaign.objects.filter(
            pk__in=waiting.values("campaign_id").distinct()
        ).select_related("smart_list"):
            run = trigger_run_start(campaign=campaign) or _stalled_run(campaign)
            if run is None:
                continue
            started = True
            run_execute(run=run, client=client)
            worked += 1
        if not started:
            return worked


def _stalled_run(campaign: SmartCampaign) -> CampaignRun | None:
    """The campaign's active trigger run when it has made no progress for a while.

    Working on it is safe whoever else does: workers share a run by claiming
    its batches, and a batch a dead worker claimed is settled before it is
    called again (runner/uncertain.py), so nobody is texted twice.
    """
    cutoff = timezone.now() - STALLED_AFTER
    return (
        CampaignRun.objects.active()
        .filter(campaign=campaign, trigger=CampaignRun.Trigger.ACTIVITY)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff))
        .first()
    )


def triggers_dispatch(*, client=None) -> DispatchReport:
    """Match every new activity and run the flow for the people they fire for."""
    report = DispatchReport()
    while True:
        matched = activities_match()
        report += matched
        if matched.activities < MATCH_BATCH:
            break
    report.runs = trigger_runs_work(client=client)
    return report


def campaigns_requestable(*, source: str) -> list[SmartCampaign]:
    """The active trigger campaigns that a request from `source` fires: their
    smart list has the trigger "Campaign is Requested" for any source or this one."""
    return sorted(
        (
            campaign
            for campaign, triggers in active_trigger_campaigns()
            if any(
                trigger.kind is REQUESTED and (trigger.values.get("source") or source) == source
                for trigger in triggers
            )
        ),
        key=lambda campaign: (campaign.name.casefold(), campaign.pk),
    )
