"""The SMS figures benchmark: the figures service (reporting/figures.py) on a
world of N result rows of Send steps, with their delivery receipts, replies,
clicks and unsubscriptions.

`build` fills an empty database with set-based SQL only (one INSERT ... SELECT
per table over a generated series of numbers, as benchmarks/scale.py does),
then builds the rollups with the recount service, timed. The world: 50
campaigns in 5 programs, one SMS message each, on 3 Vibes lists, 10 runs of
each over the last year (500 run steps of N/500 rows); a run's SMS are
called over about 3 hours, but those of every fifth campaign (trigger
campaigns, a run per firing) over 30 days. Of the rows: 10% skips (never
called); 20% with a delivery receipt (85% delivered, 10% failed, 5%
undeliverable: a hard bounce), each with its callback event; 1% replied to,
2% clicked (a tenth of them by a robot only), 0.5% unsubscribed 2 days after
the call and 0.25% 10 days after (too late to count). The rest were sent,
with no receipt yet.

`measure` times `sms_figures` and `sms_figures_over_time` for each scope
(the median of `rounds`, after one warm-up call) and `table` prints them.
`manage.py bench_reporting` runs it on a scratch database, which `--reuse`
keeps between runs (`existing_world` finds it again: the dashboard pages can
be timed on it too).
"""

import datetime
import statistics
import time
from dataclasses import dataclass

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing_activities.models import (
    CampaignRun,
    FlowStep,
    Folder,
    LinkClick,
    Outcome,
    Program,
    RunResult,
    RunStep,
    SmartCampaign,
    SmsHourlyFigures,
    SmsMessage,
    SmsReply,
)
from marketing_activities.reporting.figures import Scope, sms_figures, sms_figures_over_time
from marketing_activities.reporting.rollups import sms_rollups_rebuild
from smscampaigns.models import Lead
from vibes.models import CallbackEvent, InboundMessage, SubscriptionChange, VibesList

from .harness import after_inserting_leads
from .scale import _series, phone_sql

FOLDER_NAME = "Reporting benchmark"
PROGRAMS, CAMPAIGNS_PER_PROGRAM, RUNS_PER_CAMPAIGN, LISTS = 5, 10, 10, 3
YEAR = 365 * 86400
TRIGGER_SPREAD = 30 * 86400


@dataclass
class World:
    rows: int
    leads: int
    message_id: int
    campaign_id: int
    program_id: int
    vibes_list_id: int
    now: datetime.datetime
    build_seconds: dict | None = None


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _moment(seconds: str) -> str:
    """SQL of the moment `seconds` (an integer expression) after the Unix epoch."""
    if connection.vendor == "postgresql":
        return f"to_timestamp({seconds})"
    return f"datetime({seconds}, 'unixepoch')"


def _run(sql: str, params=(), *, name: str, progress, timings: dict) -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # The SQL's own % (modulo) doubled for the driver's placeholders.
        cursor.execute(sql.replace("%", "%%").replace("%%s", "%s"), list(params))
    timings[name] = round(time.perf_counter() - started, 1)
    progress(f"{name}: {timings[name]} s")


def build(*, rows: int, leads: int, progress=print) -> World:
    """The world, in an empty database."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = int(now.timestamp()) - YEAR
    lists = [VibesList.objects.create(vibes_id=str(101 + n), name=f"List {n + 1}") for n in range(LISTS)]
    folder = Folder.objects.create(name=FOLDER_NAME)
    steps = []
    for p in range(PROGRAMS):
        program = Program.objects.create(name=f"Program {p + 1}", folder=folder)
        for c in range(CAMPAIGNS_PER_PROGRAM):
            number = p * CAMPAIGNS_PER_PROGRAM + c
            message = SmsMessage.objects.create(
                program=program, name=f"SMS {number + 1}", text="Hi, 20% off today."
            )
            campaign = SmartCampaign.objects.create(program=program, name=f"Campaign {number + 1}")
            vibes_list = lists[number % LISTS]
            for _run_number in range(RUNS_PER_CAMPAIGN):
                run = CampaignRun.objects.create(
                    campaign=campaign,
                    status=CampaignRun.Status.COMPLETED,
                    trigger=CampaignRun.Trigger.COMMAND,
                )
                steps.append(
                    RunStep(
                        run=run,
                        position=0,
                        action=FlowStep.Action.SEND_SMS,
                        sms_message=message,
                        vibes_list=vibes_list,
                        message_text=message.text,
                        status=RunStep.Status.DONE,
                    )
                )
    steps = RunStep.objects.bulk_create(steps)
    first_step = steps[0].pk
    if [step.pk for step in steps] != list(range(first_step, first_step + len(steps))):
        raise RuntimeError("the run steps' ids are not consecutive: build in an empty database")
    count = len(steps)
    per_step = -(-rows // count)
    # Row i (from 1): its step, its campaign's number, its call (seconds after the epoch), its lead.
    s = f"((i - 1) / {per_step})"
    campaign_number = f"({s} / {RUNS_PER_CAMPAIGN})"
    step_start = f"({start} + {s} * {YEAR // count})"
    offset = (
        f"CASE WHEN {campaign_number} % 5 = 0 THEN (i * 137) % {TRIGGER_SPREAD} "
        f"ELSE ((i - 1) % {per_step}) / 2 END"
    )
    called = f"({step_start} + {offset})"
    lead = f"((i * 7919) % {leads} + 1)"
    j = "((i / 5) % 20)"
    outcome = (
        f"CASE WHEN i % 10 = 0 THEN {int(Outcome.SKIPPED_NOT_SUBSCRIBED)} "
        f"WHEN i % 5 = 1 THEN CASE WHEN {j} < 17 THEN {int(Outcome.DELIVERED)} "
        f"ELSE {int(Outcome.DELIVERY_FAILED)} END "
        f"ELSE {int(Outcome.SENT)} END"
    )
    status = (
        f"CASE WHEN i % 5 = 1 THEN CASE WHEN {j} < 17 THEN 'delivered' WHEN {j} < 19 THEN 'failed' "
        f"ELSE 'undeliverable' END ELSE '' END"
    )
    timings: dict = {}
    _run(
        f"INSERT INTO {_table(Lead)} (id, first_name, last_name, email, mobile_phone, country, city, state, "
        f"lead_source, lead_score, blocklisted, marketing_suspended, created_at, updated_at) "
        f"SELECT i, 'P', 'Bench', 'p' || i || '@bench.invalid', {phone_sql('i')}, 'US', '', '', 'bench', 0, "
        f"%s, %s, %s, %s FROM {_series(leads)}",
        [False, False, now, now],
        name="leads",
        progress=progress,
        timings=timings,
    )
    with connection.cursor() as cursor:
        after_inserting_leads(cursor)
    _run(
        f"INSERT INTO {_table(RunResult)} (id, run_step_id, lead_id, outcome, phone, error_code, detail, "
        f"vibes_message_id, delivery_status, updated_at, called_at) "
        f"SELECT i, {first_step} + {s}, {lead}, {outcome}, {phone_sql(lead)}, '', '', "
        f"CASE WHEN i % 10 = 0 THEN '' ELSE 'M' || i END, {status}, "
        f"CASE WHEN i % 10 = 0 THEN NULL ELSE {_moment(called)} END, "
        f"CASE WHEN i % 10 = 0 THEN NULL ELSE {_moment(called)} END "
        f"FROM {_series(rows)}",
        name="result rows",
        progress=progress,
        timings=timings,
    )
    _run(
        f"INSERT INTO {_table(CallbackEvent)} (event_type, dedupe_key, headers, payload, reference, mdn, "
        f"outcome, note, received_at, deliveries) "
        f"SELECT 'delivery_receipt', 'bench-receipt-' || i, '{{}}', '{{\"status\": \"delivered\"}}', "
        f"'r' || i, {phone_sql(lead)}, 'applied', '', {_moment(f'{called} + 60')}, 1 "
        f"FROM {_series(rows)} WHERE i % 5 = 1",
        name="delivery receipts",
        progress=progress,
        timings=timings,
    )
    _run(
        f"INSERT INTO {_table(InboundMessage)} (id, mdn, text, short_code, occurred_at, received_at, "
        f"vibes_message_id, dedupe_key, unmatched_in_vibes) "
        f"SELECT i / 100 + 1, {phone_sql(lead)}, 'Yes please', '12345', {_moment(f'{called} + 600')}, "
        f"{_moment(f'{called} + 600')}, '', 'bench-reply-' || i, %s FROM {_series(rows)} WHERE i % 100 = 11",
        [False],
        name="replies",
        progress=progress,
        timings=timings,
    )
    _run(
        f"INSERT INTO {_table(SmsReply)} (message_id, result_id, run_step_id) "
        f"SELECT i / 100 + 1, i, {first_step} + {s} FROM {_series(rows)} WHERE i % 100 = 11",
        name="replies matched",
        progress=progress,
        timings=timings,
    )
    _run(
        f"INSERT INTO {_table(LinkClick)} (link_id, lead_id, run_step_id, result_id, clicked_at, user_agent, "
        f"by_robot) SELECT i, {lead}, {first_step} + {s}, i, {_moment(f'{called} + 300')}, 'Mozilla/5.0', "
        f"i % 500 = 7 FROM {_series(rows)} WHERE i % 50 = 7",
        name="clicks",
        progress=progress,
        timings=timings,
    )
    list_of = (
        f"(CASE {campaign_number} % {LISTS} "
        + " ".join(f"WHEN {n} THEN {vibes_list.pk}" for n, vibes_list in enumerate(lists))
        + " END)"
    )
    _run(
        f"INSERT INTO {_table(SubscriptionChange)} (lead_id, vibes_list_id, old_status, new_status, effect, "
        f"source, note, occurred_at, recorded_at) "
        f"SELECT {lead}, {list_of}, 'subscribed', 'unsubscribed', 'applied', 'callback', '', "
        f"{_moment(f'{called} + CASE WHEN i % 400 = 3 THEN 864000 ELSE 172800 END')}, %s "
        f"FROM {_series(rows)} WHERE i % 200 = 3",
        [now],
        name="unsubscriptions",
        progress=progress,
        timings=timings,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (RunResult, InboundMessage):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), "
                    f"(SELECT MAX(id) FROM {_table(model)}))"
                )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    started = time.perf_counter()
    written = sms_rollups_rebuild()
    timings["rollups rebuilt"] = round(time.perf_counter() - started, 1)
    progress(f"rollups rebuilt from the raw rows: {written:,} rows in {timings['rollups rebuilt']} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return _world(rows, leads, now, timings)


def _world(rows, leads, now, timings=None) -> World:
    # A trigger campaign's: the most rollup rows of a campaign, message and list.
    campaign = SmartCampaign.objects.filter(program__folder__name=FOLDER_NAME).order_by("pk").first()
    step = RunStep.objects.filter(run__campaign=campaign).first()
    return World(
        rows=rows,
        leads=leads,
        message_id=step.sms_message_id,
        campaign_id=campaign.pk,
        program_id=campaign.program_id,
        vibes_list_id=step.vibes_list_id,
        now=now,
        build_seconds=timings,
    )


def existing_world() -> World | None:
    """The world a previous run built in this database, or None."""
    if not SmsHourlyFigures.objects.exists() or not Folder.objects.filter(name=FOLDER_NAME).exists():
        return None
    last = RunResult.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    now = (
        CampaignRun.objects.filter(campaign__program__folder__name=FOLDER_NAME)
        .order_by("pk")
        .first()
        .created_at
    )
    return _world(last, Lead.objects.count(), now.replace(minute=0, second=0, microsecond=0))


def calls(world: World) -> list[tuple[str, object]]:
    """(name, call) for each figure the dashboards read, each scope in turn."""
    now = world.now
    scopes = [
        ("message", Scope("message", world.message_id)),
        ("campaign", Scope("campaign", world.campaign_id)),
        ("program", Scope("program", world.program_id)),
        ("Vibes list", Scope("vibes_list", world.vibes_list_id)),
        ("installation", Scope("installation")),
    ]
    year, month, two_days = (now - datetime.timedelta(days=days) for days in (365, 30, 2))
    made = []
    for name, scope in scopes:
        made += [
            (f"{name}: figures, all time", lambda scope=scope: sms_figures(scope)),
            (f"{name}: figures, last 30 days", lambda scope=scope: sms_figures(scope, start=month, end=now)),
            (
                f"{name}: hourly, last 48 hours",
                lambda scope=scope: sms_figures_over_time(scope, start=two_days, end=now),
            ),
            (
                f"{name}: daily, last 365 days",
                lambda scope=scope: sms_figures_over_time(scope, start=year, end=now),
            ),
        ]
    return made


def measure(world: World, *, rounds: int, progress=print) -> list[dict]:
    rows = []
    for name, call in calls(world):
        call()  # warm-up
        times = []
        for _ in range(rounds):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
        rows.append(
            {"name": name, "median_ms": round(statistics.median(times) * 1000, 1), "queries": len(queries)}
        )
        progress(f"{name}: {rows[-1]['median_ms']} ms")
    return rows


def table(rows: list[dict], *, world: World) -> str:
    load = " ".join(f"{n:.2f}" for n in __import__("os").getloadavg())
    lines = [
        f"{world.rows:,} result rows, {connection.vendor}, load average {load}, "
        f"rollup rows: {SmsHourlyFigures.objects.count():,}",
        "",
        "| figures | median | queries |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {row['name']} | {row['median_ms']} ms | {row['queries']} |" for row in rows]
    if world.build_seconds:
        lines += [
            "",
            "Build: " + ", ".join(f"{name} {seconds} s" for name, seconds in world.build_seconds.items()),
        ]
    return "\n".join(lines)
