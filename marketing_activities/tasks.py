"""Background work of the runner: Celery tasks that take ids, and where runs are worked on."""

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction

from .models import CampaignRun, SmartCampaign
from .runner import results_expire_confirmations, run_create, run_execute
from .runner.schedule import stale_runs, start_due_runs

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_campaign_task(run_id: int) -> str:
    """Work on a run until it is done; several workers may work on one run at once."""
    run = run_execute(run=CampaignRun.objects.get(pk=run_id))
    return run.status


@shared_task
def run_due_campaigns_task() -> int:
    """Celery beat's entry (every minute): due schedules, runs that lost their
    worker, and Subscribe results whose confirmation window has passed."""
    results_expire_confirmations()
    runs = start_due_runs() + stale_runs()
    for run in runs:
        run_dispatch(run)
    return len(runs)


def _work_in_thread(run_id):
    close_old_connections()
    try:
        run_execute(run=CampaignRun.objects.get(pk=run_id))
    except Exception:
        logger.exception("background run %s failed", run_id)
    finally:
        close_old_connections()


def run_dispatch(run: CampaignRun) -> None:
    """Have the run worked on in the background, once the transaction commits.

    Where (RUNNER_BACKGROUND): Celery when a broker is configured, else a
    thread of this process; "inline" works on it at commit, for tests.
    """
    mode = settings.RUNNER_BACKGROUND
    if mode == "celery" or (mode == "auto" and settings.CELERY_BROKER_URL):
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
