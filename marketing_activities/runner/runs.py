"""Runs of a campaign: the services behind every way of running one.

`manage.py run_campaign`, the admin's actions, the Run button and scheduled
runs all create, work on, resume and retry runs through these. Where a run is
worked on (this process, a thread, Celery) is tasks.py's choice.
"""

import time

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from vibes.conf import get_client

from ..models import CampaignRun, FlowStep, Outcome, RunBatch, RunStep, SmartCampaign
from ..services import campaign_set_active
from .checks import CampaignAlreadyRunning, CampaignCannotRun, check_anyone_left
from .counts import step_counts_add
from .executor import CLAIM_SECONDS, Worker, _worker_is_dead
from .uncertain import run_requeue_uncertain

# How long an abort waits for the calls in flight to be recorded.
ABORT_WAIT_SECONDS = 60


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
            wait=step.wait_spec(),
            remove_from_campaign_id=(
                (step.remove_from_campaign_id or campaign.pk)
                if step.action == FlowStep.Action.REMOVE_FROM_FLOW
                else None
            ),
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
    run.refresh_from_db()
    if run.status == CampaignRun.Status.CANCELLED:
        # Its cancelled rows were never called and stay so.
        raise CampaignCannotRun([_("Run %(id)s was aborted; it cannot be retried.") % {"id": run.pk}])
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


def run_abort(*, run: CampaignRun, by=None) -> CampaignRun:
    """Abort an active run: no call starts for it once this returns.

    The calls already on their way finish and are recorded (this waits for
    the workers, wherever they run, to record them); every row not yet
    called ends `cancelled`; a trigger campaign is deactivated, so its
    waiting firings never run.
    """
    _run_cancel(run=run, by=by)
    if run.campaign.is_trigger_campaign and run.campaign.is_active:
        campaign_set_active(campaign=run.campaign, active=False)
    _wait_for_calls_in_flight(run)
    _steps_close(run)
    run.refresh_from_db()
    return run


@transaction.atomic
def _run_cancel(*, run: CampaignRun, by) -> None:
    # The run's lock first, as a worker takes it before marking rows
    # `sending`: after this commits, no worker marks another row.
    locked = CampaignRun.objects.select_for_update().select_related("campaign").get(pk=run.pk)
    if not locked.is_active and locked.status != CampaignRun.Status.WAITING:
        raise CampaignCannotRun(
            [
                _("Run %(id)s is %(status)s; there is nothing to abort.")
                % {"id": run.pk, "status": locked.get_status_display()}
            ]
        )
    now = timezone.now()
    CampaignRun.objects.filter(pk=run.pk).update(
        status=CampaignRun.Status.CANCELLED,
        finished_at=now,
        cancelled_by=by if by is not None and by.is_authenticated else None,
        resume_at=None,
    )
    # A Wait step the run was in ends with it: the steps after it are cancelled below.
    RunStep.objects.filter(run=run, action=FlowStep.Action.WAIT, status=RunStep.Status.PLANNED).update(
        status=RunStep.Status.CANCELLED, finished_at=now
    )
    # Before the rows: a step being planned holds its row until its plan is
    # committed, so its queued rows are there to cancel below.
    RunStep.objects.filter(run=run, status=RunStep.Status.PENDING).update(
        status=RunStep.Status.CANCELLED, finished_at=now
    )
    cancelled = 0
    for step in run.steps.exclude(status__in=[RunStep.Status.DONE, RunStep.Status.CANCELLED]):
        for waiting in (Outcome.QUEUED, Outcome.DEFERRED_QUIET_HOURS):
            count = step.results().filter(outcome=waiting).update(outcome=Outcome.CANCELLED, updated_at=now)
            step_counts_add(step.pk, {waiting: -count, Outcome.CANCELLED: count})
            cancelled += count
    RunBatch.objects.filter(run_step__run=run, status=RunBatch.Status.PENDING).update(
        status=RunBatch.Status.DONE
    )
    if cancelled:
        # Planned but not yet in the total, when the abort came between the two.
        CampaignRun.objects.filter(pk=run.pk).update(
            progress_total=Greatest(F("progress_total") - cancelled, Value(0))
        )
    run.refresh_from_db()


def _live_claims(run: CampaignRun) -> list[RunBatch]:
    claims = RunBatch.objects.filter(
        run_step__run=run, status=RunBatch.Status.CLAIMED, claim_expires_at__gt=timezone.now()
    ).only("claimed_by")
    return [batch for batch in claims if not _worker_is_dead(batch.claimed_by)]


def _wait_for_calls_in_flight(run: CampaignRun) -> None:
    """Until the workers holding the run's batches have recorded their calls and let go.

    Each worker looks at the run between batches and, while its calls are
    out, every fraction of a second; a worker that stopped answering loses
    its claim after CLAIM_SECONDS, and nobody waits for it that long.
    """
    deadline = time.monotonic() + min(CLAIM_SECONDS, ABORT_WAIT_SECONDS)
    while _live_claims(run) and time.monotonic() < deadline:
        time.sleep(0.1)


def _steps_close(run: CampaignRun) -> None:
    """The steps that were being called: done, once nobody is calling for them."""
    if _live_claims(run):
        return
    RunStep.objects.filter(run=run, status__in=[RunStep.Status.PLANNED, RunStep.Status.EXECUTING]).update(
        status=RunStep.Status.DONE, finished_at=timezone.now()
    )
