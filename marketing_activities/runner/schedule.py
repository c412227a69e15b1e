"""Scheduled runs: start what is due, and pick up runs nobody is working on.

`manage.py run_due_campaigns` (cron, every minute) and the Celery beat entry
both call `start_due_runs`. A campaign's next start is claimed with a
compare-and-set on `next_run_at`, so two schedulers running at once start it
only once; the one-active-run constraint backs that up. A due campaign that
cannot run, or that has nobody left to qualify under the rule "once" (or
"once every N"), is skipped with a log line saying why; its schedule moves
on all the same. Monthly and weekdays-only schedules are the campaign's
`compute_next_run`; a run the person limit refuses is recorded as failed.
"""

import datetime
import logging

from django.utils import timezone

from ..models import CampaignRun, SmartCampaign
from .checks import CampaignCannotRun, NobodyLeftToRun
from .runs import run_create

logger = logging.getLogger(__name__)

# A run that has shown no progress for this long has lost its worker.
STALE_AFTER = datetime.timedelta(minutes=10)


def start_due_runs(*, now=None) -> list[CampaignRun]:
    """Create a run for every active campaign whose time has come."""
    now = now or timezone.now()
    runs = []
    due = SmartCampaign.objects.filter(is_active=True, next_run_at__lte=now).order_by("next_run_at")
    for campaign in due:
        following = campaign.compute_next_run(after=now)
        claimed = SmartCampaign.objects.filter(pk=campaign.pk, next_run_at=campaign.next_run_at).update(
            next_run_at=following,
            is_active=following is not None,
        )
        if not claimed:
            continue  # another scheduler started it
        try:
            runs.append(run_create(campaign=campaign, trigger=CampaignRun.Trigger.SCHEDULE))
        except NobodyLeftToRun as error:
            # Expected, e.g. a daily campaign under "once" on a day without
            # new people: no empty run is recorded, the schedule moves on.
            logger.info("scheduled run of campaign %s skipped: %s", campaign.pk, error)
        except CampaignCannotRun as error:
            logger.warning("scheduled run of campaign %s skipped: %s", campaign.pk, error)
    return runs


def stale_runs(*, now=None):
    """Active runs without progress for a while: their worker is gone."""
    now = now or timezone.now()
    cutoff = now - STALE_AFTER
    # A run in a Wait step has no worker on purpose: waits.runs_resume_due resumes it.
    waiting = CampaignRun.objects.active().filter(resume_at__isnull=True)
    return [run for run in waiting if (run.heartbeat_at or run.created_at) < cutoff]
