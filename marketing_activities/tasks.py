"""Background work of the runner: Celery tasks that take ids, and where runs are worked on."""

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import transaction

from smscampaigns.background import WokenThread, background_run, runs_on_celery

from .models import AudienceCount, CampaignRun, SmartCampaign
from .reporting.rollups import sms_rollups_differences, sms_rollups_rebuild
from .runner import results_expire_confirmations, run_create, run_execute
from .runner.count_jobs import audience_count_create, audience_count_run
from .runner.deferral import released_from_quiet_hours
from .runner.schedule import stale_runs, start_due_runs
from .runner.waits import runs_resume_due
from .triggers import triggers_dispatch

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_campaign_task(run_id: int) -> str:
    """Work on a run until it is done; several workers may work on one run at once."""
    run = run_execute(run=CampaignRun.objects.get(pk=run_id))
    return run.status


@shared_task
def run_due_campaigns_task() -> int:
    """Celery beat's entry (every minute): due schedules, runs that lost their
    worker, SMS whose quiet hours are over, and Subscribe results whose
    confirmation window has passed."""
    results_expire_confirmations()
    # Activities a dispatcher missed (its process gone before it got to them).
    triggers_kick()
    runs = start_due_runs() + stale_runs() + runs_resume_due()
    runs += released_from_quiet_hours(runs)
    for run in runs:
        run_dispatch(run)
    return len(runs)


@shared_task
def sms_figures_check_task() -> int:
    """Celery beat's entry (daily): recount the SMS figures and rebuild them where
    they differ from the rollups (which nothing should make happen; logged when it
    does). Returns how many keys differed."""
    differences = sms_rollups_differences()
    if differences:
        logger.warning("%s SMS figures differed from a recount; rebuilding them", len(differences))
        sms_rollups_rebuild()
    return len(differences)


@shared_task
def count_audience_task(count_id: int) -> None:
    """Run now's counts, or the Smart List tab's exact count, read-only, with their
    progress (runner/count_jobs.py)."""
    audience_count_run(count_id=count_id)


def audience_count_start(
    *, campaign: SmartCampaign, language: str = "", smart_list_only: bool = False
) -> AudienceCount:
    """Start counting `campaign`'s audience in the background (with
    `smart_list_only`, only who its smart list picks); the caller checked
    that the smart list parses."""
    with transaction.atomic():
        count = audience_count_create(campaign=campaign, language=language, smart_list_only=smart_list_only)
        background_run(count_audience_task, count.pk, name=f"audience-count-{count.pk}")
    return count


def run_dispatch(run: CampaignRun) -> None:
    """Have the run worked on in the background, once the transaction commits
    (where: RUNNER_BACKGROUND). On Celery, several tasks work on one run at
    once, each claiming its own batches."""
    background_run(
        run_campaign_task, run.pk, name=f"run-{run.pk}", celery_tasks=settings.RUNNER_PARALLEL_TASKS
    )


def campaign_start(*, campaign: SmartCampaign, trigger: str, user=None, dry_run: bool = False) -> CampaignRun:
    """Create a run and have it worked on in the background."""
    with transaction.atomic():
        run = run_create(campaign=campaign, trigger=trigger, user=user, dry_run=dry_run)
        run_dispatch(run)
    return run


# In a thread of this process, one dispatcher at a time: the activities
# recorded meanwhile are matched by the one running, which looks again
# before it stops (`_again`).
_dispatching = threading.Lock()
_again = threading.Event()


@shared_task(acks_late=True)
def dispatch_triggers_task() -> int:
    """Match new activities to active trigger campaigns and run their flows; returns the runs worked."""
    _again.set()
    worked = 0
    while _again.is_set():
        if not _dispatching.acquire(blocking=False):
            return worked  # the dispatcher running now sees `_again`
        try:
            while _again.is_set():
                _again.clear()
                worked += triggers_dispatch().runs
        finally:
            _dispatching.release()
    return worked


def triggers_kick(**_signal) -> None:
    """New activities: have the dispatcher look at them in the background, once
    the transaction commits (where: RUNNER_BACKGROUND, as runs).

    On Celery, a process sends the dispatcher's task at most once per
    DISPATCH_WAKE_INTERVAL, however many activities it records: each task
    matches every activity waiting, and a task for each (an applier records
    50 a second) would queue the workers' runs and the applier behind tasks
    that find nothing left to do.
    """
    if runs_on_celery() and not dispatch_triggers_task.app.conf.task_always_eager:
        transaction.on_commit(_dispatch_waker.wake)
    else:
        background_run(dispatch_triggers_task, name="triggers")


# Seconds between two dispatcher tasks sent by one process.
DISPATCH_WAKE_INTERVAL = 0.05
_dispatch_waker = WokenThread("triggers-waker", dispatch_triggers_task.delay, pause=DISPATCH_WAKE_INTERVAL)
