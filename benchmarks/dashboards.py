"""The SMS dashboards and the people behind their figures, timed on N SMS.

`build_world(sms=N)` fills an empty (migrated) database with set-based SQL
(INSERT … SELECT over a generated series, as benchmarks/admin_lists.py does):
N / 4 people, two programs with two campaigns each, every campaign one
completed run whose Send step texted every person, so N SMS result rows.
Campaigns 1 and 3 send message A, 2 and 4 message B; 1 and 2 go to Vibes list
X, 3 and 4 to list Y. The calls are spread over the last 30 days. Of the SMS,
for result id r: 1 in 10 failed (r % 10 = 0; 1 in 3 of those undeliverable,
a hard bounce), 1 in 10 still sent (r % 10 = 1), the rest delivered; 1 in 20
got a reply (r % 20 = 2, an inbound message and its SmsReply), 1 in 25 a
click (r % 25 = 3, a tracked link and its click) and 1 in 50 was followed an
hour later by the person's unsubscription from the step's list (r % 50 = 4).
A fifth campaign (program 2, message C, list Y) texted only the first
SLIVER people, over the same 30 days: a scope that is a sliver of the calls.

`time_pages(world, rounds=5)` asks each dashboard page through Django's test
client as a superuser (one unmeasured request first) and returns, per page,
the median and fastest time, the process's CPU time, the SQL time and the
queries. `manage.py bench_dashboards` runs both on a scratch database and
prints the table.
"""

import datetime
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Max, Min
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
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
    SmsMessage,
    SmsReply,
    TrackedLink,
)
from marketing_activities.reporting.figures import Scope
from marketing_activities.reporting.forms import DashboardForm
from marketing_activities.reporting.people import figure_people
from marketing_activities.reporting.rollups import sms_rollups_rebuild
from marketing_activities.views.dashboard import PEOPLE_PAGE_SIZE
from smscampaigns.models import Lead
from vibes.models import InboundMessage, SubscriptionChange, VibesList

from .admin_lists import _insert, _pieces, table
from .harness import after_inserting_leads

CAMPAIGNS = 4
SLIVER = 100  # the SMS of the fifth campaign, a sliver of the calls
SPREAD_SECONDS = 30 * 86400 - 7200  # the calls: over the last 30 days, none in the future


@dataclass
class World:
    sms: int
    message_ids: tuple[int, int]
    campaign_id: int
    program_id: int
    vibes_list_id: int
    sliver_campaign_id: int | None = None  # None in a world built before it had one


def _after(start_param: str, seconds: str) -> str:
    """The time `seconds` after the moment given as the parameter."""
    if connection.vendor == "postgresql":
        return f"({start_param}::timestamptz + ({seconds}) * interval '1 second')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {start_param}, '+' || CAST({seconds} AS TEXT) || ' seconds')"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _flag(value: bool) -> str:
    if connection.vendor == "postgresql":
        return "TRUE" if value else "FALSE"
    return "1" if value else "0"


def build_world(*, sms: int, progress=None) -> World:
    """Fill this (empty, migrated) database with `sms` SMS and what came of them, set-based."""
    people = max(1, sms // CAMPAIGNS)
    now = timezone.now()
    since = now - datetime.timedelta(days=30)
    lists = [VibesList.objects.create(vibes_id=f"bench-{name}", name=f"List {name}") for name in "XY"]
    folder = Folder.objects.create(name="Dashboards benchmark")
    programs = [Program.objects.create(folder=folder, name=f"Program {n}") for n in (1, 2)]
    messages = [SmsMessage.objects.create(program=programs[0], name=f"Message {n}", text="Hi") for n in "ABC"]
    steps = []
    texted = [people] * CAMPAIGNS + [min(people, SLIVER)]  # each campaign's SMS, the sliver's last
    for index in range(CAMPAIGNS + 1):
        sliver = index == CAMPAIGNS
        message, vibes_list = messages[2 if sliver else index % 2], lists[1 if sliver else index // 2]
        campaign = SmartCampaign.objects.create(
            program=programs[1 if sliver else index // 2], name=f"Campaign {index + 1}"
        )
        FlowStep.objects.create(campaign=campaign, position=0, sms_message=message, vibes_list=vibes_list)
        run = CampaignRun.objects.create(
            campaign=campaign,
            trigger=CampaignRun.Trigger.COMMAND,
            status=CampaignRun.Status.COMPLETED,
            audience=texted[index],
            created_at=since,
        )
        steps.append(
            RunStep.objects.create(
                run=run,
                position=0,
                action=FlowStep.Action.SEND_SMS,
                sms_message=message,
                vibes_list=vibes_list,
                status=RunStep.Status.DONE,
            )
        )
    outcome = (
        f"CASE WHEN r %% 10 = 0 THEN {Outcome.DELIVERY_FAILED} WHEN r %% 10 = 1 THEN {Outcome.SENT} "
        f"ELSE {Outcome.DELIVERED} END"
    )
    status = "CASE WHEN r %% 30 = 0 THEN 'undeliverable' WHEN r %% 10 = 0 THEN 'failed' " \
        "WHEN r %% 10 = 1 THEN 'accepted' ELSE 'delivered' END"  # fmt: skip
    with connection.cursor() as cursor:
        for start, stop in _pieces(people):
            with transaction.atomic():
                _insert(
                    cursor,
                    Lead,
                    "id, first_name, last_name, email, mobile_phone, country, city, state, lead_source, "
                    "lead_score, blocklisted, marketing_suspended, created_at, updated_at",
                    "SELECT n, 'Person', 'P' || CAST(n AS TEXT), "
                    "'p' || CAST(n AS TEXT) || '@example.invalid', "
                    f"'+1' || CAST(2120000000 + n AS TEXT), 'US', '', '', '', 0, {_flag(False)}, "
                    f"{_flag(False)}, %s, %s FROM __SERIES__",
                    start,
                    stop,
                    [now, now],
                )
            if progress:
                progress(stop - start + 1)
        for index, step in enumerate(steps):
            # r: the row's number among all SMS (its id in a fresh table), which decides what came of it.
            # (r as a big integer: r * 7919 passes the 32 bits of PostgreSQL's integers from 271,000 SMS on.)
            offset = index * people
            for start, stop in _pieces(texted[index]):
                with transaction.atomic():
                    _insert(
                        cursor,
                        RunResult,
                        "run_step_id, lead_id, outcome, phone, error_code, detail, vibes_message_id, "
                        "delivery_status, called_at, updated_at",
                        f"SELECT {step.pk}, n, {outcome}, '+1' || CAST(2120000000 + n AS TEXT), '', '', "
                        f"'SIM-' || CAST(r AS TEXT), {status}, "
                        f"{_after('%s', f'(CAST(r AS BIGINT) * 7919) %% {SPREAD_SECONDS}')}, "
                        f"{_after('%s', f'(CAST(r AS BIGINT) * 7919) %% {SPREAD_SECONDS} + 60')} "
                        f"FROM (SELECT n, n + {offset} AS r FROM __SERIES__) AS numbered",
                        start,
                        stop,
                        [since, since],
                    )
                if progress:
                    progress(stop - start + 1)
            ids = RunResult.objects.filter(run_step_id=step.pk).aggregate(first=Min("pk"), last=Max("pk"))
            RunStep.objects.filter(pk=step.pk).update(
                first_result_id=ids["first"], last_result_id=ids["last"], counts={"delivered": texted[index]}
            )
        q = _table
        with transaction.atomic():
            cursor.execute(
                f"INSERT INTO {q(InboundMessage)} (mdn, text, short_code, occurred_at, received_at, "
                "vibes_message_id, dedupe_key, unmatched_in_vibes) "
                "SELECT phone, 'Yes please', '12345', called_at, called_at, '', "
                "'bench-' || CAST(id AS TEXT), "
                f"{_flag(False)} FROM {q(RunResult)} WHERE id %% 20 = 2",
                [],
            )
            cursor.execute(
                f"INSERT INTO {q(SmsReply)} (message_id, result_id, run_step_id) "
                f"SELECT m.id, r.id, r.run_step_id FROM {q(RunResult)} r "
                f"JOIN {q(InboundMessage)} m ON m.dedupe_key = 'bench-' || CAST(r.id AS TEXT) "
                "WHERE r.id %% 20 = 2",
                [],
            )
            cursor.execute(
                f"INSERT INTO {q(TrackedLink)} "
                "(code, run_step_id, result_id, lead_id, position, url, created_at) "
                "SELECT 'b' || CAST(id AS TEXT), run_step_id, id, lead_id, 0, 'https://shop.example.com/', "
                f"called_at FROM {q(RunResult)} WHERE id %% 25 = 3",
                [],
            )
            cursor.execute(
                f"INSERT INTO {q(LinkClick)} "
                "(link_id, lead_id, run_step_id, result_id, clicked_at, user_agent, by_robot) "
                f"SELECT id, lead_id, run_step_id, result_id, created_at, 'Mozilla/5.0', {_flag(False)} "
                f"FROM {q(TrackedLink)}",
                [],
            )
            cursor.execute(
                f"INSERT INTO {q(SubscriptionChange)} "
                "(lead_id, vibes_list_id, old_status, new_status, effect, source, note, "
                "occurred_at, recorded_at) "
                "SELECT r.lead_id, s.vibes_list_id, 'subscribed', 'unsubscribed', 'applied', 'callback', '', "
                f"{_after('r.called_at', '3600')}, {_after('r.called_at', '3600')} "
                f"FROM {q(RunResult)} r JOIN {q(RunStep)} s ON s.id = r.run_step_id WHERE r.id %% 50 = 4",
                [],
            )
        after_inserting_leads(cursor)
    # Written around the product's paths, as a restore would be: the figures are recounted once.
    sms_rollups_rebuild()
    return World(
        sms=sum(texted),
        message_ids=(messages[0].pk, messages[1].pk),
        campaign_id=steps[0].run.campaign_id,
        program_id=programs[0].pk,
        vibes_list_id=lists[0].pk,
        sliver_campaign_id=steps[-1].run.campaign_id,
    )


def world_in_database() -> World:
    """The world `build_world` wrote into this database before."""
    messages = SmsMessage.objects.filter(program__folder__name="Dashboards benchmark").order_by("name")
    return World(
        sms=RunResult.objects.count(),
        message_ids=tuple(messages.values_list("pk", flat=True)[:2]),
        campaign_id=SmartCampaign.objects.get(
            name="Campaign 1", program__folder__name="Dashboards benchmark"
        ).pk,
        program_id=Program.objects.get(name="Program 1", folder__name="Dashboards benchmark").pk,
        vibes_list_id=VibesList.objects.get(vibes_id="bench-X").pk,
        sliver_campaign_id=SmartCampaign.objects.filter(
            name=f"Campaign {CAMPAIGNS + 1}", program__folder__name="Dashboards benchmark"
        )
        .values_list("pk", flat=True)
        .first(),
    )


def _page_100(*, newer: bool = False) -> str:
    """The cursor of the 100th page of the installation's SMS of the last 30 days
    (the 5,000th row, pages of 50), or of the page before it (from the 100th)."""
    period = DashboardForm({"range": "30d"}).period()
    rows = figure_people(Scope("installation"), "sent", start=period.start, end=period.end)
    keys = list(rows.values_list("called_at", "pk")[: 99 * PEOPLE_PAGE_SIZE + 1])
    row = keys[min(99 * PEOPLE_PAGE_SIZE - (0 if newer else 1), len(keys) - 1)]  # a small world: its last
    return urlencode({"newer" if newer else "older": f"{row[0].isoformat()}~{row[1]}"})


def pages(world: World) -> list[tuple[str, str]]:
    """(what, URL) of each dashboard page, over the last 30 days unless said."""
    first, second = world.message_ids

    def url(kind, pk=None, page="", query=""):
        name = f"marketing_activities:{kind}_dashboard{'_' + page if page else ''}"
        return reverse(name, args=[] if pk is None else [pk]) + f"?{query or 'range=30d'}"

    campaign, vibes_list, sliver = world.campaign_id, world.vibes_list_id, world.sliver_campaign_id
    sent_30d, back = "range=30d&figure=sent&", _page_100(newer=True)
    return [
        ("Message dashboard", url("message", first)),
        ("Message dashboard, last 2 days (hourly)", url("message", first, query="range=2d")),
        ("Message dashboard, compared with another", url("message", first, query=f"second={second}")),
        ("Message dashboard, 12 months", url("message", first, query="range=365d")),
        ("Campaign dashboard", url("campaign", campaign)),
        ("Program dashboard", url("program", world.program_id)),
        ("Vibes list dashboard", url("vibes_list", vibes_list)),
        ("SMS performance (installation)", url("installation")),
        ("People: sent, installation", url("installation", page="people", query="range=30d&figure=sent")),
        ("People: sent, installation, page 100", url("installation", None, "people", sent_30d + _page_100())),
        ("People: sent, installation, page 99", url("installation", None, "people", sent_30d + back)),
        ("People: replied, message", url("message", first, "people", "range=30d&figure=replied")),
        ("People: hard bounces, Vibes list", url("vibes_list", vibes_list, "people", "figure=failed_hard")),
        ("People: unsubscribed, campaign", url("campaign", campaign, "people", "figure=unsubscribed")),
        ("CSV: replied, message (whole file)", url("message", first, "export", "range=30d&figure=replied")),
    ] + ([
        (f"People: sent, a campaign of {SLIVER} SMS", url("campaign", sliver, "people", "figure=sent")),
        (f"People: failed, a campaign of {SLIVER} SMS", url("campaign", sliver, "people", "figure=failed")),
    ] if sliver else [])  # fmt: skip


def _get(client, url):
    response = client.get(url)
    if response.status_code != 200:
        raise AssertionError(f"{url} answered {response.status_code}")
    if response.streaming:
        return sum(len(chunk) for chunk in response.streaming_content)
    return len(response.content)


def time_pages(world: World, *, rounds: int = 5) -> list[dict]:
    """Each page `rounds` times (after one unmeasured request): median, fastest, CPU, SQL, queries."""
    user, _ = get_user_model().objects.get_or_create(
        username="bench-dashboards", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost", secure=True)
    client.force_login(user)
    rows = []
    for what, url in pages(world):
        _get(client, url)
        times, cpu_times, sql_times = [], [], []
        for _ in range(rounds):
            with CaptureQueriesContext(connection) as queries:
                started, cpu_started = time.perf_counter(), time.process_time()
                _get(client, url)
                times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu_started)
            sql_times.append(sum(float(query["time"]) for query in queries.captured_queries))
        rows.append(
            {
                "page": what,
                "url": url,
                "median_ms": round(statistics.median(times) * 1000, 1),
                "fastest_ms": round(min(times) * 1000, 1),
                "cpu_median_ms": round(statistics.median(cpu_times) * 1000, 1),
                "sql_median_ms": round(statistics.median(sql_times) * 1000, 1),
                "queries": len(queries),
            }
        )
    return rows


def measure(*, sms: int, rounds: int, build: bool = True) -> dict:
    """Build the world in this (empty) database, unless asked not to, and time the pages."""
    if build:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        world = build_world(sms=sms)
        build_seconds = round(time.perf_counter() - started, 1)
    else:
        world, build_seconds = world_in_database(), None
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[:3]
    return {
        "sms": world.sms,
        "database": connection.vendor,
        "build_seconds": build_seconds,
        "load_average": load,
        "pages": time_pages(world, rounds=rounds),
    }


__all__ = ["build_world", "measure", "pages", "table", "time_pages", "world_in_database"]
