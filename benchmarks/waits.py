"""The Wait step benchmark: what a wait costs a run of N people, and what
resuming many waiting runs costs the scheduler.

On the synthetic people of benchmarks/runner.py (N people, 90% of them in
the US smart list), a campaign whose flow is Wait (one minute), then Remove
from Flow of another campaign, which calls nobody, so no Vibes is needed:

- `wait_planned`: from the run's start until it is waiting (the Wait step's
  `waited` row for each person, written by one INSERT ... SELECT);
- `resume_claim`: one scheduler pass (`runs_resume_due`) once the minute has
  passed (the test moves the wait's start back a minute, as the clock would);
- `resume_to_done`: the worker, from the claim to the run completed (the Wait
  step finished, the next step planned for the same people);
- `remove_from_flow`: a Remove from Flow step of N people taking them out of a
  waiting run of N people (its plan and the update of the waiting rows);
- `claim_many`: one scheduler pass claiming RUNS waiting runs at once.
"""

import datetime
import time

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from marketing_activities.models import CampaignRun, FlowStep, RunStep, SmartCampaign
from marketing_activities.runner import run_create, run_execute
from marketing_activities.runner.waits import runs_resume_due

from . import runner
from .harness import settle_disk


class NoVibes:
    """The flows measured here call nobody."""

    def __getattr__(self, name):
        raise AssertionError(f"a Wait or Remove from Flow step called Vibes ({name})")


def _flow(campaign: SmartCampaign, *steps: dict) -> SmartCampaign:
    campaign.flow_steps.all().delete()
    for position, fields in enumerate(steps):
        FlowStep.objects.create(campaign=campaign, position=position, **fields)
    return campaign


def _clone(campaign: SmartCampaign, name: str) -> SmartCampaign:
    clone = SmartCampaign.objects.create(
        program=campaign.program, name=name, qualification_rule=campaign.qualification_rule
    )
    clone.smart_list.definition = campaign.smart_list.definition
    clone.smart_list.save()
    return clone


def _minute_passes(run: CampaignRun) -> None:
    minute = datetime.timedelta(minutes=1, seconds=1)
    step = RunStep.objects.get(run=run, action=FlowStep.Action.WAIT, status=RunStep.Status.PLANNED)
    RunStep.objects.filter(pk=step.pk).update(planned_at=step.planned_at - minute)
    CampaignRun.objects.filter(pk=run.pk).update(resume_at=timezone.now() - datetime.timedelta(seconds=1))


def _timed(function):
    started = time.perf_counter()
    value = function()
    return value, round(time.perf_counter() - started, 3)


def measure(*, leads: int, runs: int) -> dict:
    call_command("migrate", verbosity=0)
    data = runner.build(leads=leads)
    settle_disk()
    base = SmartCampaign.objects.get(pk=data.plan_campaign_id)
    wait = {"action": FlowStep.Action.WAIT, "wait_amount": 1, "wait_unit": "minutes"}
    waiting = _flow(_clone(base, "Waits"), wait, {"action": FlowStep.Action.REMOVE_FROM_FLOW})
    report = {"leads": leads, "database": connection.vendor}

    run, report["wait_planned"] = _timed(
        lambda: run_execute(run=run_create(campaign=waiting, trigger="command"), client=NoVibes())
    )
    assert run.in_wait_step, run.status
    report["audience"] = run.audience
    _minute_passes(run)
    settle_disk()
    resumed, report["resume_claim"] = _timed(runs_resume_due)
    assert [each.pk for each in resumed] == [run.pk]
    run, report["resume_to_done"] = _timed(lambda: run_execute(run=resumed[0], client=NoVibes()))
    assert run.status == CampaignRun.Status.COMPLETED, run.status

    # Remove from Flow: N people out of a waiting run of N people.
    target = _flow(_clone(base, "Waits a day"), {**wait, "wait_amount": 1, "wait_unit": "days"}, wait)
    target_run = run_execute(run=run_create(campaign=target, trigger="command"), client=NoVibes())
    assert target_run.in_wait_step
    remover = _flow(
        _clone(base, "Removes"), {"action": FlowStep.Action.REMOVE_FROM_FLOW, "remove_from_campaign": target}
    )
    settle_disk()
    _removal, report["remove_from_flow"] = _timed(
        lambda: run_execute(run=run_create(campaign=remover, trigger="command"), client=NoVibes())
    )
    report["removed"] = RunStep.objects.get(run=target_run, position=0).counts.get("removed_from_flow", 0)
    CampaignRun.objects.filter(pk=target_run.pk).update(status=CampaignRun.Status.CANCELLED, resume_at=None)

    # The scheduler's pass over many waiting runs (one per campaign, as a batch run holds its campaign).
    now = timezone.now()
    many = [_clone(base, f"Waiting {n}") for n in range(runs)]
    CampaignRun.objects.bulk_create(
        CampaignRun(campaign=campaign, trigger="schedule", status=CampaignRun.Status.RUNNING, resume_at=now)
        for campaign in many
    )
    settle_disk()
    claimed, report["claim_many"] = _timed(runs_resume_due)
    report["claimed"] = len(claimed)
    return report


def table(report: dict) -> str:
    rows = [
        ("Run until it waits (Wait step planned)", report["audience"], report["wait_planned"]),
        ("Scheduler pass that resumes it", 1, report["resume_claim"]),
        ("Resumed run to completed (next step planned)", report["audience"], report["resume_to_done"]),
        ("Remove from Flow out of a waiting run", report["removed"], report["remove_from_flow"]),
        ("Scheduler pass claiming many waiting runs", report["claimed"], report["claim_many"]),
    ]
    lines = [
        f"Wait steps on {report['database']}, {report['leads']:,} people",
        "",
        "| phase | people/runs | s |",
    ]
    lines.append("| --- | ---: | ---: |")
    lines += [f"| {phase} | {count:,} | {seconds:.3f} |" for phase, count, seconds in rows]
    return "\n".join(lines)
