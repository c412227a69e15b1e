"""Celery tasks: thin wrappers that take ids and call the runner."""

from celery import shared_task

from .models import CampaignRun
from .runner import results_expire_confirmations, run_dispatch, run_execute
from .runner.schedule import stale_runs, start_due_runs


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
