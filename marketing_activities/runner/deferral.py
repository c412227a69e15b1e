"""Rows deferred for quiet hours: deferred just before the call, queued again when their window opens.

The executor defers a batch's rows whose recipient's window is closed
(`deferred_quiet_hours`, with `not_before`, marketing_activities/quiet_hours.py
says until when) and calls the others; the step is not done while any row
waits. `quiet_hours_release_due`, on the scheduler's minute (`run_due_campaigns`,
Celery beat), queues the rows whose window has opened and hands their runs
to the workers: a waiting SMS is a row in the database, never a sleeping
process, and it is claimed, checked for blocks and for its window again like
any queued row, so it survives restarts and is never called twice.
"""

import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..models import CampaignRun, Outcome, RunBatch, RunResult, RunStep
from ..quiet_hours import quiet_hours_openings
from .counts import step_counts_add


class WaitingForQuietHours(Exception):
    """The step's only rows left wait for their window: the worker lets the run be."""


def quiet_hours_defer(*, step: RunStep, rows: list[tuple], at: datetime.datetime) -> list[tuple]:
    """Defer the rows (id, lead id, number) whose recipient's window is closed
    at `at`; return the others, to be called now. Three queries whatever the
    batch's size (quiet_hours_openings), and one update per opening time."""
    deferred: dict[datetime.datetime, list[int]] = {}
    for result_id, opening in quiet_hours_openings(rows=rows, at=at).items():
        deferred.setdefault(opening, []).append(result_id)
    if not deferred:
        return rows
    for opening, ids in deferred.items():
        RunResult.objects.filter(pk__in=ids, outcome=Outcome.QUEUED).update(
            outcome=Outcome.DEFERRED_QUIET_HOURS, not_before=opening, updated_at=at
        )
    count = sum(len(ids) for ids in deferred.values())
    step_counts_add(step.pk, {Outcome.QUEUED: -count, Outcome.DEFERRED_QUIET_HOURS: count})
    later = {result_id for ids in deferred.values() for result_id in ids}
    return [row for row in rows if row[0] not in later]


def batches_reopen_queued(step: RunStep) -> int:
    """Make the step's finished batches that hold queued rows (released from
    quiet hours) claimable again; returns how many."""
    queued = RunResult.objects.filter(
        run_step=step,
        outcome=Outcome.QUEUED,
        pk__gte=OuterRef("first_result_id"),
        pk__lte=OuterRef("last_result_id"),
    )
    return (
        RunBatch.objects.filter(run_step=step, status=RunBatch.Status.DONE)
        .filter(Exists(queued))
        .update(status=RunBatch.Status.PENDING, claimed_by="", claim_expires_at=None)
    )


def step_waits_for_quiet_hours(step: RunStep) -> bool:
    return step.results().filter(outcome=Outcome.DEFERRED_QUIET_HOURS).exists()


def quiet_hours_release_due(*, now: datetime.datetime | None = None) -> list[CampaignRun]:
    """Queue again the deferred rows whose window has opened; returns their runs, to be worked on.

    The rows are found through the partial index on the deferred rows. Each
    step's rows move under its run's lock, as a worker marks rows `sending`
    and an abort cancels them under it: an aborted run's rows stay cancelled.
    """
    now = now or timezone.now()
    due = RunResult.objects.filter(outcome=Outcome.DEFERRED_QUIET_HOURS, not_before__lte=now)
    step_ids = list(due.order_by().values_list("run_step_id", flat=True).distinct())
    runs = {}
    for step in RunStep.objects.filter(pk__in=step_ids).select_related("run__campaign").order_by("pk"):
        with transaction.atomic():
            status = (
                CampaignRun.objects.select_for_update()
                .filter(pk=step.run_id)
                .values_list("status", flat=True)
                .first()
            )
            if status == CampaignRun.Status.WAITING and not _run_back_from_quiet_hours(step.run_id):
                continue  # a waiting trigger run: its campaign's one active run is another one for now
            if status not in CampaignRun.ACTIVE_STATUSES and status != CampaignRun.Status.WAITING:
                continue
            released = (
                step.results()
                .filter(outcome=Outcome.DEFERRED_QUIET_HOURS, not_before__lte=now)
                .update(outcome=Outcome.QUEUED, updated_at=now)
            )
            if not released:
                continue  # another scheduler released them first
            step_counts_add(step.pk, {Outcome.DEFERRED_QUIET_HOURS: -released, Outcome.QUEUED: released})
            batches_reopen_queued(step)
        runs[step.run_id] = step.run
    return list(runs.values())


def run_wait_for_quiet_hours(run: CampaignRun) -> None:
    """A trigger run whose only rows left are deferred steps aside while it
    waits: `waiting` is not its campaign's one active run, so the people fired
    meanwhile get a run of their own and are texted at once where their window
    is open, instead of queueing behind someone else's night. A batch run
    stays `running` (a second run of it is refused, as ever)."""
    if run.trigger == CampaignRun.Trigger.ACTIVITY:
        CampaignRun.objects.filter(pk=run.pk, status=CampaignRun.Status.RUNNING, resume_at=None).update(
            status=CampaignRun.Status.WAITING
        )


def _run_back_from_quiet_hours(run_id: int) -> bool:
    """Claim a trigger run waiting for quiet hours back as its campaign's active run."""
    try:
        with transaction.atomic():
            return bool(
                CampaignRun.objects.filter(
                    pk=run_id, status=CampaignRun.Status.WAITING, resume_at=None
                ).update(status=CampaignRun.Status.RUNNING, heartbeat_at=timezone.now())
            )
    except IntegrityError:
        return False


def released_from_quiet_hours(runs: list[CampaignRun]) -> list[CampaignRun]:
    """The runs whose deferred rows were queued again just now, but for those in `runs` already."""
    known = {run.pk for run in runs}
    return [run for run in quiet_hours_release_due() if run.pk not in known]


def run_deferred_count(run: CampaignRun) -> int:
    """How many of the run's SMS wait for quiet hours, from its steps' counts."""
    code = Outcome.DEFERRED_QUIET_HOURS.code
    return sum((counts or {}).get(code, 0) for counts in run.steps.values_list("counts", flat=True))
