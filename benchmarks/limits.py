"""The communication limits benchmark: what the limits add to planning a Send
step, and what the check just before the call costs a batch.

On the runner benchmark's synthetic people (`runner.build`), a ledger of the
marketing SMS of the last 7 days is written: each subscribed number got 0 to
3 of them, at random times of the week (so a limit of 1 a day and 3 a week
stops a good share of them). Then, alternating so that both see the same
state of the machine, the planning of a Send step for everyone is timed
without a limit and with both limits set; and the check-and-count of the
executor (`marketing_sms_claim`) on batches of 50 numbers, each in a
transaction rolled back. `manage.py bench_limits` runs it on a scratch database.
"""

import datetime
import random
import statistics
import sys
import time

from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from marketing_activities.models import CampaignRun, CommunicationLimits, MarketingSms, SmartCampaign
from marketing_activities.runner import run_create
from marketing_activities.runner.limits import marketing_sms_claim, numbers_at_limit_sql
from marketing_activities.runner.planner import record_counts, write_plan
from smscampaigns.models import Lead
from vibes.models import Subscription

from .harness import settle_disk
from .runner import build, finish_run

BATCH = 50
CHUNK = 20_000


def build_ledger(*, seed: int = 2) -> int:
    """0 to 3 marketing SMS of the last 7 days for each subscribed number; how many."""
    rng = random.Random(seed)
    now = timezone.now()
    week = 7 * 24 * 3600
    phones = (
        Lead.objects.filter(subscriptions__status=Subscription.Status.SUBSCRIBED)
        .exclude(mobile_phone="")
        .values_list("mobile_phone", flat=True)
        .distinct()
        .iterator(chunk_size=CHUNK)
    )
    written, pending, result_id = 0, [], 1_000_000_000  # no run's rows: ids of their own
    for phone in phones:
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            result_id += 1
            pending.append(
                MarketingSms(
                    result_id=result_id,
                    phone=phone,
                    sent_at=now - datetime.timedelta(seconds=rng.randrange(60, week)),
                )
            )
        if len(pending) >= CHUNK:
            MarketingSms.objects.bulk_create(pending)
            written += len(pending)
            pending = []
    MarketingSms.objects.bulk_create(pending)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return written + len(pending)


def _plan(campaign) -> tuple[float, dict]:
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    step = run.steps.get()
    started = time.perf_counter()
    write_plan(step)
    seconds = time.perf_counter() - started
    counts = record_counts(step)
    finish_run(run.pk)
    settle_disk()
    return seconds, counts


def _claims(batches: list[list[tuple]]) -> list[float]:
    times = []
    for rows in batches:
        with transaction.atomic():
            started = time.perf_counter()
            marketing_sms_claim(rows=rows)
            times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return times


def measure(*, leads: int, rounds: int) -> dict:
    call_command("migrate", verbosity=0)
    with tqdm(total=leads, desc="Building people", unit=" leads", file=sys.stderr) as bar:
        data = build(leads=leads, progress=bar.update)
    ledger = build_ledger()
    campaign = SmartCampaign.objects.get(pk=data.plan_campaign_id)
    rng = random.Random(3)
    people = list(
        Lead.objects.filter(subscriptions__status=Subscription.Status.SUBSCRIBED)
        .exclude(mobile_phone="")
        .values_list("pk", "mobile_phone")[:20_000]
    )
    batches = [
        [(2_000_000_000 + n, *person) for n, person in enumerate(rng.sample(people, BATCH))]
        for _ in range(20)
    ]
    settle_disk()
    without, with_limits, claims, at_limit_times = [], [], [], []
    for _ in range(rounds):
        CommunicationLimits.objects.filter(pk=1).delete()
        without.append(_plan(campaign))
        CommunicationLimits(per_day=1, per_week=3).save()
        with_limits.append(_plan(campaign))
        sql, params = numbers_at_limit_sql()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) x", params)
            at_limit = cursor.fetchone()[0]
        at_limit_times.append(time.perf_counter() - started)
        claims += _claims(batches)
    plain, limited = statistics.median(t for t, _ in without), statistics.median(t for t, _ in with_limits)
    counts = with_limits[0][1]
    return {
        "leads": leads,
        "database": connection.vendor,
        "ledger_rows": ledger,
        "numbers_at_limit": at_limit,
        "plan_without_limits_seconds": round(plain, 3),
        "plan_with_limits_seconds": round(limited, 3),
        "plan_added_seconds": round(limited - plain, 3),
        "numbers_at_limit_query_seconds": round(statistics.median(at_limit_times), 3),
        "claim_batch_of_50_ms": round(statistics.median(claims) * 1000, 2),
        "claim_batch_of_50_ms_max": round(max(claims) * 1000, 2),
        "queued_with_limits": counts.get("queued", 0),
        "skipped_communication_limit": counts.get("skipped_communication_limit", 0),
        "plan_without_limits_runs": [round(t, 3) for t, _ in without],
        "plan_with_limits_runs": [round(t, 3) for t, _ in with_limits],
    }


def table(report: dict) -> str:
    rows = [
        ("people", f"{report['leads']:,}"),
        ("marketing SMS in the ledger (last 7 days)", f"{report['ledger_rows']:,}"),
        ("numbers at a limit (1 a day, 3 a week)", f"{report['numbers_at_limit']:,}"),
        ("planning a Send step, no limit (median)", f"{report['plan_without_limits_seconds']} s"),
        ("planning a Send step, with the limits (median)", f"{report['plan_with_limits_seconds']} s"),
        ("the numbers-at-limit query alone (median)", f"{report['numbers_at_limit_query_seconds']} s"),
        ("check-and-count of a batch of 50 (median / max)", f"{report['claim_batch_of_50_ms']} / "
         f"{report['claim_batch_of_50_ms_max']} ms"),
        ("queued / skipped by the limit", f"{report['queued_with_limits']:,} / "
         f"{report['skipped_communication_limit']:,}"),
    ]  # fmt: skip
    return "\n".join(["| | |", "| --- | --- |", *(f"| {name} | {value} |" for name, value in rows)])
