"""Wait steps and Remove from Flow (issue 17): a run that waits is a row, never a sleeping process.

A worker that reaches a Wait step plans it like any step (each person of the
run's audience gets a `waited` row, so Remove from Flow can take them out),
then records on the run when it resumes (`CampaignRun.resume_at`) and stops
working on it. The scheduler (`run_due_campaigns`, Celery beat) claims the
runs whose time has come with a conditional update (`runs_resume_due`), so
two schedulers never resume one run twice, and hands them to a worker, which
finishes the Wait step and goes on with the next steps for the same people:
the run's audience, each re-checked by every rule of the next step when it
is planned, as after any step. A restart or SIGKILL meanwhile loses nothing.

A batch run waits as a whole and stays "running" (a second run of the
campaign is refused meanwhile). A trigger run waits in the status `waiting`,
outside the one-active-run constraint, so each trigger run (the people of
its firings) waits on its own while the campaign's next people start theirs.

Remove from Flow gives each person of its audience a `removed_from_flow`
row and, in the same transaction, turns their `waited` rows in the chosen
campaign's waiting runs into `removed_from_flow`; a run's later steps give
the people removed from it `removed_from_flow` rows instead of calling them.
"""

import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..models import CampaignRun, FlowStep, Outcome, RunResult, RunStep
from .counts import step_counts_add

WEEKDAYS = range(5)  # Monday to Friday


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def wait_resume_at(wait: dict, *, reached: datetime.datetime) -> datetime.datetime:
    """When a wait (RunStep.wait) reached at `reached` is over."""
    if wait.get("until"):
        at = datetime.datetime.fromisoformat(wait["until"])
    else:
        at = reached + datetime.timedelta(seconds=wait.get("seconds") or 0)
    if wait.get("then_day") and wait.get("then_time"):
        at = next_day_at(at, day=wait["then_day"], time=datetime.time.fromisoformat(wait["then_time"]))
    return at


def next_day_at(after: datetime.datetime, *, day: str, time: datetime.time) -> datetime.datetime:
    """The first `time` of day (installation time zone) on a day `day` allows, at or after `after`."""
    date = timezone.localtime(after).date()
    for offset in range(9):
        candidate = timezone.make_aware(
            datetime.datetime.combine(date + datetime.timedelta(days=offset), time)
        )
        if candidate >= after and _day_allows(day, candidate.weekday()):
            return candidate
    raise ValueError(f"no day matches {day!r}")


def _day_allows(day: str, weekday: int) -> bool:
    if day == FlowStep.WaitDay.ANY_DAY:
        return True
    if day == FlowStep.WaitDay.WEEKDAY:
        return weekday in WEEKDAYS
    return int(day) == weekday


def wait_step_pass(*, run: CampaignRun, step: RunStep) -> bool:
    """Work on the run's Wait step, once planned (its `waited` rows written,
    its planned_at the moment it was reached): True once the wait is over
    (the step is done, the run goes on), False while the run waits (its
    resume time recorded)."""
    if step.status != RunStep.Status.PLANNED:
        return True
    resume = wait_resume_at(step.wait, reached=step.planned_at)
    now = timezone.now()
    if resume <= now:
        RunStep.objects.filter(pk=step.pk, status=RunStep.Status.PLANNED).update(
            status=RunStep.Status.DONE, finished_at=now
        )
        return True
    waiting = (
        CampaignRun.Status.WAITING
        if run.trigger == CampaignRun.Trigger.ACTIVITY
        else CampaignRun.Status.RUNNING
    )
    CampaignRun.objects.filter(pk=run.pk, status__in=CampaignRun.ACTIVE_STATUSES).update(
        status=waiting, resume_at=resume, heartbeat_at=now
    )
    return False


def runs_resume_due(*, now=None) -> list[CampaignRun]:
    """Claim the runs whose Wait step is over, for a worker to go on with them.

    The claim is a compare-and-set on the run's status and resume time, so
    two schedulers running at once resume a run once. A trigger run whose
    campaign has another run active meanwhile waits for the next call.
    """
    now = now or timezone.now()
    resumed = []
    due = CampaignRun.objects.filter(
        resume_at__lte=now, status__in=[CampaignRun.Status.RUNNING, CampaignRun.Status.WAITING]
    ).order_by("resume_at")
    for run in due:
        try:
            with transaction.atomic():
                claimed = CampaignRun.objects.filter(
                    pk=run.pk, status=run.status, resume_at=run.resume_at
                ).update(status=CampaignRun.Status.RUNNING, resume_at=None, heartbeat_at=now)
        except IntegrityError:
            continue  # the campaign's one active run is another one for now
        if claimed:
            run.refresh_from_db()
            resumed.append(run)
    return resumed


# --- Remove from Flow ---------------------------------------------------------------


def removed_people_steps(run_step: RunStep) -> list[tuple[int, int, int]]:
    """(step id, first id, last id) of the run's earlier steps whose
    `removed_from_flow` rows take people out of this run: its Wait steps
    (another flow's Remove from Flow), and its own Remove from Flow steps
    that name this campaign."""
    earlier = RunStep.objects.filter(
        run_id=run_step.run_id, position__lt=run_step.position, first_result_id__isnull=False
    ).filter(action__in=[FlowStep.Action.WAIT, FlowStep.Action.REMOVE_FROM_FLOW])
    return [
        (step.pk, step.first_result_id, step.last_result_id)
        for step in earlier.only(
            "pk", "action", "remove_from_campaign_id", "first_result_id", "last_result_id"
        )
        if step.action == FlowStep.Action.WAIT or step.remove_from_campaign_id == run_step.run.campaign_id
    ]


def flow_remove_apply(run_step: RunStep) -> int:
    """Take the Remove from Flow step's people out of the chosen campaign's
    waiting runs (every one but this run); returns how many rows changed.

    Called in the transaction that writes the step's rows, so a crash never
    leaves the step planned without its removals.
    """
    waits = (
        RunStep.objects.filter(
            run__campaign_id=run_step.remove_from_campaign_id,
            run__status__in=[CampaignRun.Status.RUNNING, CampaignRun.Status.WAITING],
            run__dry_run=False,
            action=FlowStep.Action.WAIT,
            status=RunStep.Status.PLANNED,
            first_result_id__isnull=False,
        )
        .exclude(run_id=run_step.run_id)
        .only("pk", "first_result_id", "last_result_id")
    )
    results = _table(RunResult)
    now = timezone.now()
    total = 0
    for wait in waits:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {results} SET outcome = %s, updated_at = %s "
                f"WHERE run_step_id = %s AND id BETWEEN %s AND %s AND outcome = %s AND lead_id IN "
                f"(SELECT lead_id FROM {results} "
                f"WHERE run_step_id = %s AND id BETWEEN %s AND %s AND outcome = %s)",
                [
                    int(Outcome.REMOVED_FROM_FLOW),
                    now,
                    wait.pk,
                    wait.first_result_id,
                    wait.last_result_id,
                    int(Outcome.WAITED),
                    run_step.pk,
                    run_step.first_result_id,
                    run_step.last_result_id,
                    int(Outcome.REMOVED_FROM_FLOW),
                ],
            )
            changed = cursor.rowcount
        step_counts_add(wait.pk, {Outcome.WAITED: -changed, Outcome.REMOVED_FROM_FLOW: changed})
        total += changed
    return total
