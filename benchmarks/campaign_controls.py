"""What the qualification rule "once every N" and the person limits cost a plan.

On the runner benchmark's synthetic people (`runner.build`), times the
planning of the Send step of the campaign of every US person (all its rows
written and committed, as a dry run so that no measured run counts as
having run through the flow) under:

- "every time" (the baseline);
- "once every 2 days", one earlier real run of everyone within the period;
- "once every 7 days", three earlier real runs within the period;
- a cap of 10,000 people per run;
- a refusal above more people than qualify (counted, not refused).

The variants alternate round by round, so that each sees the same machine.
`manage.py bench_campaign_controls` runs it on a scratch database.
"""

import datetime
import os
import statistics
import sys
import time

from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from tqdm import tqdm

from marketing_activities.models import CampaignRun, SmartCampaign
from marketing_activities.runner.planner import record_counts, write_plan
from marketing_activities.runner.runs import run_steps_snapshot

from .harness import settle_disk
from .runner import build, finish_run

CAP = 10_000


def _variants(leads: int) -> list[tuple[str, dict]]:
    every_time = {
        "qualification_rule": SmartCampaign.QualificationRule.EVERY_TIME,
        "qualification_period": None,
        "qualification_period_unit": "",
        "person_limit_per_run": None,
        "person_limit_refuse_above": None,
    }
    once_every = {**every_time, "qualification_rule": SmartCampaign.QualificationRule.ONCE_EVERY}
    return [
        ("every time", every_time),
        (
            "once every 2 days, 1 earlier run in the period",
            {**once_every, "qualification_period": 2, "qualification_period_unit": "days"},
        ),
        (
            "once every 7 days, 3 earlier runs in the period",
            {**once_every, "qualification_period": 7, "qualification_period_unit": "days"},
        ),
        (f"every time, at most {CAP:,} people per run", {**every_time, "person_limit_per_run": CAP}),
        (
            "every time, refused above more than qualify",
            {**every_time, "person_limit_refuse_above": leads + 1},
        ),
    ]


def _run(campaign: SmartCampaign, *, dry_run: bool, created_at=None) -> CampaignRun:
    # Not run_create: under "once every" everyone has run through the flow, which it refuses.
    run = CampaignRun.objects.create(
        campaign=campaign,
        trigger=CampaignRun.Trigger.COMMAND,
        dry_run=dry_run,
        created_at=created_at or timezone.now(),
    )
    run_steps_snapshot(run=run, campaign=campaign)
    return run


def measure(*, leads: int, rounds: int) -> dict:
    """The benchmark in this (empty) database: its report."""
    call_command("migrate", verbosity=0)
    with tqdm(total=leads, desc="Building people", unit=" leads", file=sys.stderr) as bar:
        data = build(leads=leads, limited_calls=10, unlimited_calls=10, progress=bar.update)
    campaign = SmartCampaign.objects.get(pk=data.plan_campaign_id)
    # Three earlier real runs of everyone, 3, 2 and 1 days ago (planned, never called).
    for days in (3, 2, 1):
        run = _run(campaign, dry_run=False, created_at=timezone.now() - datetime.timedelta(days=days))
        write_plan(run.steps.get())
        finish_run(run.pk)
    variants = _variants(leads)
    times = {name: [] for name, _fields in variants}
    counts = {}
    settle_disk()
    for _ in range(rounds):
        for name, fields in variants:
            SmartCampaign.objects.filter(pk=campaign.pk).update(**fields)
            campaign.refresh_from_db()
            step = _run(campaign, dry_run=True).steps.get()
            started = time.perf_counter()
            write_plan(step)
            times[name].append(time.perf_counter() - started)
            counts[name] = record_counts(step)
            finish_run(step.run_id)
            settle_disk()
    baseline = statistics.median(times["every time"])
    return {
        "leads": leads,
        "database": connection.vendor,
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "plans": [
            {
                "variant": name,
                "plan_seconds": round(statistics.median(times[name]), 3),
                "vs_every_time": round(statistics.median(times[name]) / baseline, 2),
                "runs": [round(t, 3) for t in times[name]],
                "counts": counts[name],
            }
            for name, _fields in variants
        ],
    }


def table(report: dict) -> str:
    """The report as the README's table."""
    load = " / ".join(str(value) for value in report["load_average"])
    lines = [
        f"{report['leads']:,} leads, {report['database']}, load average (1 / 5 / 15 min) {load}",
        "",
        "| plan of a Send step (dry run, rows committed) | median | vs every time | counts |",
        "| --- | --- | --- | --- |",
    ]
    for plan in report["plans"]:
        counts = ", ".join(f"{code} {n:,}" for code, n in sorted(plan["counts"].items()))
        lines.append(
            f"| {plan['variant']} | {plan['plan_seconds']:.3f} s | {plan['vs_every_time']:.2f}× | {counts} |"
        )
    return "\n".join(lines)
