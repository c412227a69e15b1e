"""The campaign runner: one service behind every way of running a campaign.

`manage.py run_campaign`, the admin's "Run now", the Run button and
scheduled runs all come through here:

- `run_create` checks the campaign can run (and, under the qualification
  rule "once", that anyone is left to qualify) and records a queued run with
  a snapshot of its flow;
- `run_execute` works on a run until it is done (in this process), and
  `run_dispatch` hands it to a background worker (Celery when a broker is
  configured, else a thread of this process);
- `campaign_start` is both, for the interface;
- `campaign_preview` (preview.py) says who would get what, writing nothing;
  checks.py says why a campaign cannot run;
- followup.py moves results on after the call, as receipts and
  confirmations arrive and confirmation windows end.
"""

import logging
import threading

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.utils.translation import gettext as _

from ..models import CampaignRun, RunStep, SmartCampaign
from .checks import CampaignAlreadyRunning, CampaignCannotRun, NobodyLeftToRun, check_anyone_left
from .executor import RunStopped, Worker, requeue_uncertain
from .followup import result_apply_receipt, results_expire_confirmations, results_follow_confirmation
from .preview import campaign_preview

logger = logging.getLogger(__name__)

__all__ = [
    "CampaignAlreadyRunning",
    "CampaignCannotRun",
    "NobodyLeftToRun",
    "RunStopped",
    "campaign_preview",
    "campaign_start",
    "check_anyone_left",
    "run_create",
    "run_dispatch",
    "run_execute",
    "run_resume",
    "result_apply_receipt",
    "results_expire_confirmations",
    "results_follow_confirmation",
    "run_retry_uncertain",
]


def _already_running(campaign):
    return CampaignAlreadyRunning(
        [_("“%(campaign)s” is already running; wait for that run to finish.") % {"campaign": campaign}]
    )


@transaction.atomic
def run_create(*, campaign: SmartCampaign, trigger: str, user=None, dry_run: bool = False) -> CampaignRun:
    """Record a queued run with a snapshot of the flow, or say why the campaign cannot run."""
    problems = campaign.problems()
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
    RunStep.objects.bulk_create(
        RunStep(
            run=run,
            position=position,
            action=step.action,
            flow_step=step,
            sms_message=step.sms_message,
            message_text=step.sms_message.text if step.sms_message else "",
            vibes_list=step.vibes_list,
            acquisition_campaign=step.acquisition_campaign,
        )
        for position, step in enumerate(campaign.steps())
    )
    return run


def run_execute(*, run: CampaignRun, client=None, progress=None, concurrency=None) -> CampaignRun:
    """Work on the run in this process until it is completed or failed."""
    if client is None:
        from vibes.conf import get_client

        client = get_client()
    return Worker(run, client=client, progress=progress, concurrency=concurrency).work()


def _work_in_thread(run_id):
    close_old_connections()
    try:
        run_execute(run=CampaignRun.objects.get(pk=run_id))
    except Exception:
        logger.exception("background run %s failed", run_id)
    finally:
        close_old_connections()


def run_dispatch(run: CampaignRun) -> None:
    """Have the run worked on in the background, once the transaction commits."""
    mode = settings.RUNNER_BACKGROUND
    if mode == "celery" or (mode == "auto" and settings.CELERY_BROKER_URL):
        from ..tasks import run_campaign_task

        # Several tasks work on one run at once, each claiming its own batches.
        for _ in range(settings.RUNNER_PARALLEL_TASKS):
            transaction.on_commit(lambda: run_campaign_task.delay(run.pk))
    elif mode == "inline":
        transaction.on_commit(lambda: run_execute(run=CampaignRun.objects.get(pk=run.pk)))
    else:
        transaction.on_commit(
            lambda: threading.Thread(
                target=_work_in_thread, args=(run.pk,), name=f"run-{run.pk}", daemon=True
            ).start()
        )


def campaign_start(*, campaign: SmartCampaign, trigger: str, user=None, dry_run: bool = False) -> CampaignRun:
    """Create a run and have it worked on in the background."""
    with transaction.atomic():
        run = run_create(campaign=campaign, trigger=trigger, user=user, dry_run=dry_run)
        run_dispatch(run)
    return run


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
        total = requeue_uncertain(run)
    run.refresh_from_db()
    return total
