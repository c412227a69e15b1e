"""What quiet hours cost a run: reading the windows of a batch's people just
before the call, deferring them, and releasing a step's deferred rows when
their window opens.

QUIET_LEADS rows (100,000 by default) in one Send step, their numbers spread
over seven prefixes (Los Angeles, New York, an area code across two zones,
Germany, Sweden, and Russian and Australian mobiles, which name many zones),
one in ten people with a time zone of their own. Prints a table; no target.
Run: `DEBUG=true SECRET_KEY=x .venv/bin/python -m pytest benchmarks/test_quiet_hours.py -q -s`.
"""

import datetime
import os
import statistics
import time

import pytest
from django.db import connection, transaction
from django.db.models import Max, Min
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import CampaignRun, Outcome, RunResult
from marketing_activities.quiet_hours import quiet_hours_openings
from marketing_activities.runner.deferral import quiet_hours_defer, quiet_hours_release_due
from smscampaigns.models import Lead
from tests.marketing_activities.factories import RunStepFactory

pytestmark = pytest.mark.django_db

LEADS = int(os.environ.get("QUIET_LEADS", 100_000))
BATCH = 1_000
PREFIXES = ("+1213555", "+1212555", "+1208555", "+4915112", "+4670123", "+7916123", "+6141234")
# 02:00 in Los Angeles, 05:00 in New York, 11:00 in Berlin: some windows open, most closed.
AT = datetime.datetime(2026, 6, 15, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def quiet_hours_on(settings):
    settings.QUIET_HOURS_ENABLED = True


@pytest.fixture(scope="module")
def step(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        run_step = RunStepFactory(run__status=CampaignRun.Status.RUNNING)
        for start in range(0, LEADS, 10_000):
            leads = Lead.objects.bulk_create(
                Lead(
                    first_name=f"P{n}",
                    mobile_phone=f"{PREFIXES[n % len(PREFIXES)]}{n % 10_000:04d}",
                    time_zone="Europe/Paris" if n % 10 == 0 else None,
                )
                for n in range(start, min(start + 10_000, LEADS))
            )
            RunResult.objects.bulk_create(
                RunResult(run_step=run_step, lead=lead, outcome=Outcome.QUEUED, phone=lead.mobile_phone)
                for lead in leads
            )
        ids = RunResult.objects.filter(run_step=run_step).aggregate(first=Min("pk"), last=Max("pk"))
        run_step.first_result_id, run_step.last_result_id = ids["first"], ids["last"]
        run_step.save()
        yield run_step
        transaction.set_rollback(True)


def timed(function, rounds=5):
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), len(queries), result


def test_quiet_hours_cost(step):
    rows = list(step.results().order_by("pk").values_list("pk", "lead_id", "phone")[:BATCH])
    lines = [("what", "median", "fastest", "queries", "rows deferred")]
    median, fastest, queries, openings = timed(lambda: quiet_hours_openings(rows=rows, at=AT))
    lines.append((f"windows of a batch of {BATCH:,} (read only)", median, fastest, queries, len(openings)))

    def defer_all():
        with transaction.atomic():
            left = quiet_hours_defer(step=step, rows=rows, at=AT)
            transaction.set_rollback(True)
        return left

    median, fastest, queries, left = timed(defer_all)
    lines.append((f"deferring a batch of {BATCH:,}", median, fastest, queries, len(rows) - len(left)))

    step.results().update(outcome=Outcome.DEFERRED_QUIET_HOURS, not_before=AT)

    def release_all():
        with transaction.atomic():
            quiet_hours_release_due(now=AT)
            released = step.results().filter(outcome=Outcome.QUEUED).count()
            transaction.set_rollback(True)
        return released

    median, fastest, queries, released = timed(release_all)
    lines.append((f"releasing a step's {LEADS:,} deferred rows", median, fastest, queries, released))
    median, fastest, queries, _ = timed(
        lambda: quiet_hours_release_due(now=AT - datetime.timedelta(minutes=1))
    )
    lines.append(("the scheduler's minute, nothing due", median, fastest, queries, 0))
    print(f"\nquiet hours, {LEADS:,} rows, {connection.vendor}, load average {os.getloadavg()[0]:.1f}")
    print(" | ".join(lines[0]))
    for what, med, fast, count, deferred in lines[1:]:
        print(f"{what} | {med * 1000:.1f} ms | {fast * 1000:.1f} ms | {count} | {deferred:,}")
    assert released == LEADS
