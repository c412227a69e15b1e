"""Runs of a campaign: the services behind every way of running one.

`manage.py run_campaign`, the admin's actions, the Run button and scheduled
runs all create, work on, resume and retry runs through these. Where a run is
worked on (this process, a thread, Celery) is tasks.py's choice.
"""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from vibes.conf import get_client

from ..models import CampaignRun, RunStep, SmartCampaign
from .checks import CampaignAlreadyRunning, CampaignCannotRun, check_anyone_left
from .executor import Worker
from .uncertain import run_requeue_uncertain


def _already_running(campaign):
    return CampaignAlreadyRunning(
        [_("“%(campaign)s” is already running; wait for that run to finish.") % {"campaign": campaign}]
    )


@transaction.atomic
def run_create(*, campaign: SmartCampaign, trigger: str, user=None, dry_run: bool = False) -> CampaignRun:
    """Record a queued run with a snapshot of the flow, or say why the campaign cannot run."""
    problems = campaign.problems()
    if campaign.is_trigger_campaign:
        # Its triggers start its runs, one person at a time (triggers.py).
        problems.append(
            _("A trigger campaign runs for each person its triggers fire for: activate it instead.")
        )
    if problems:
        raise CampaignCannotRun(problems)
    try:
        with transaction.atomic():
            run = CampaignRun.objects.create(
                campaign=campaign,
                trigger=trigger,
                dry_run=dry_run,
                requested_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        # The database refuses a second active run of one campaign.
        raise _already_running(campaign) from None
    # After the insert, so a campaign that is running says so first; raising
    # here rolls the run back.
    check_anyone_left(campaign)
    run_steps_snapshot(run=run, campaign=campaign)
    return run


def run_steps_snapshot(*, run: CampaignRun, campaign: SmartCampaign) -> None:
    """The run's steps: the flow as it stands when the run starts."""
    RunStep.objects.bulk_create(
        RunStep(
            run=run,
            position=position,
            action=step.action,
            flow_step=step,
            sms_message=step.sms_message,
            message_text=step.sms_message.text if step.sms_message else "",
            track_links=bool(step.sms_message and not step.sms_message.dont_track_links),
            vibes_list=step.vibes_list,
            acquisition_campaign=step.acquisition_campaign,
            requested_campaign_id=step.requested_campaign_id,
        )
        for position, step in enumerate(campaign.steps())
    )


def run_execute(*, run: CampaignRun, client=None, progress=None, concurrency=None) -> CampaignRun:
    """Work on the run in this process until it is completed or failed."""
    if client is None:
        client = get_client()
    return Worker(run, client=client, progress=progress, concurrency=concurrency).work()


def run_resume(*, run: CampaignRun) -> CampaignRun:
    """Make a stopped or interrupted run active again, so a worker can finish it."""
    run.refresh_from_db()
    if run.status in (CampaignRun.Status.COMPLETED, CampaignRun.Status.CANCELLED):
        raise CampaignCannotRun(
            [
                _("Run %(id)s is %(status)s; there is nothing to resume.")
                % {"id": run.pk, "status": run.get_status_display()}
            ]
        )
    if run.status == CampaignRun.Status.FAILED:
        try:
            with transaction.atomic():
                CampaignRun.objects.filter(pk=run.pk).update(
                    status=CampaignRun.Status.RUNNING, finished_at=None, error=""
                )
        except IntegrityError:
            raise _already_running(run.campaign) from None
    run.refresh_from_db()
    return run


def run_retry_uncertain(*, run: CampaignRun) -> int:
    """Queue a run's uncertain calls again and make the run active; returns how many."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                CampaignRun.objects.filter(pk=run.pk).update(
                    status=CampaignRun.Status.RUNNING, finished_at=None
                )
        except IntegrityError:
            raise _already_running(run.campaign) from None
        total = run_requeue_uncertain(run=run)
    run.refresh_from_db()
    return total
