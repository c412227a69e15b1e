"""The admin's large lists at a million people (SQLite) or ten million (PostgreSQL).

`build_world(leads=N)` fills an empty (migrated) database with set-based SQL,
a million rows in seconds: INSERT … SELECT over generate_series on
PostgreSQL, over a recursive CTE on SQLite; never the ORM row by row. For N
people it writes, per lead id n:

- the lead: one of 40 first names and 200 last names, an email made of them
  and n, a number +1212… (every 20th lead none, every 10th shares the number
  of the lead before), a country (US for 3 in 4, then CA, GB, DE, FR, NL, SE,
  IT), a lead source, 2% blocklisted and 1% suspended, with their flag change;
- a subscription to one Vibes list for 3 in 10, with its change;
- a callback event for every other lead (its number), one in 10,000 unreadable;
- an inbound message for 1 in 50, linked to the lead;
- a dry run's result row for everyone (one step).

`time_admin_pages(rounds=5)` then asks each admin page through Django's test
client as a superuser and returns, per page, the median and fastest server
time and the number of queries. `manage.py bench_admin` runs both on a
scratch database and prints the table.
"""

import datetime
import statistics
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import (
    CampaignRun,
    Folder,
    Outcome,
    Program,
    RunResult,
    RunStep,
    SmartCampaign,
)
from smscampaigns.models import Lead, LeadFlagChange
from vibes.models import (
    CallbackEvent,
    InboundMessage,
    Subscription,
    SubscriptionChange,
    UnreadableCallback,
    VibesList,
)

from .harness import after_inserting_leads

# Rows per INSERT … SELECT: each is committed on its own.
PIECE = 500_000

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Klara", "Lars",
    "Maria", "Nils", "Olga", "Paul", "Quinn", "Rosa", "Sven", "Tina", "Ugo", "Vera", "Willem", "Xenia",
    "Yusuf", "Zoe", "Amélie", "Björn", "Chiara", "Daan", "Élodie", "Fabio", "Giulia", "Hanna", "Ingrid",
    "Jan", "Katja", "Luca", "Mia", "Noah",
)  # fmt: skip
LAST_NAMES = tuple(
    f"{stem}{ending}"
    for stem in (
        "Smith", "Berg", "Rossi", "Jansen", "Martin", "Müller", "Larsson", "Dubois", "Visser", "Ricci",
    )
    for ending in (
        "", "son", "man", "er", "ini", "ez", "ski", "sen", "ova", "hof",
        "feld", "ström", "ard", "etti", "inga", "berg", "stein", "wood", "ley", "ford",
    )
)  # fmt: skip
COUNTRIES = ("CA", "GB", "DE", "FR", "NL", "SE", "IT")
SOURCES = ("web form", "import", "Vibes", "event", "")


@dataclass
class World:
    leads: int
    lead_id: int  # a lead with every kind of activity, for its change page
    vibes_list_id: int
    run_step_id: int


def _names(name: str, values) -> str:
    """A CTE of (i, value) pairs, to join on n modulo their number."""
    rows = ", ".join(f"({i}, '{value}')" for i, value in enumerate(values))
    return f"{name}(i, value) AS (VALUES {rows})"


def _flag(condition: str) -> str:
    return condition if connection.vendor == "postgresql" else f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _case(expression: str, values, default: str) -> str:
    whens = " ".join(f"WHEN {i} THEN '{value}'" for i, value in enumerate(values))
    return f"CASE {expression} {whens} ELSE '{default}' END"


def _moment(n: str) -> str:
    """The time `n` seconds after the moment given as the parameter: times that
    differ from row to row, as a real table's do (ties would make a sort by time
    read them all)."""
    if connection.vendor == "postgresql":
        return f"(%s::timestamptz + {n} * interval '1 second')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', %s, '+' || CAST({n} AS TEXT) || ' seconds')"


def _number(n: str) -> str:
    return f"'+1' || CAST(2120000000 + {n} AS TEXT)"


def _insert(cursor, model, columns: str, select: str, start: int, stop: int, params=(), ctes=()):
    # Always with parameters, so that both drivers read "%%" (modulo) alike.
    """INSERT INTO the model's table SELECT `select`, which reads n = start … stop from __SERIES__."""
    if connection.vendor == "postgresql":
        source = f"generate_series({start}, {stop}) AS seq(n)"
    else:
        ctes = (f"seq(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM seq WHERE n < {stop})", *ctes)
        source = "seq"
    with_clause = f"WITH RECURSIVE {', '.join(ctes)} " if ctes else ""
    cursor.execute(
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "
        f"{with_clause}{select.replace('__SERIES__', source)}",
        list(params),
    )


def _pieces(total: int):
    for start in range(1, total + 1, PIECE):
        yield start, min(start + PIECE - 1, total)


def build_world(*, leads: int, progress=None) -> World:
    """Fill this (empty, migrated) database with `leads` people and their traffic, set-based."""
    now = timezone.now()
    # Traffic over the days before now, a second apart, in the order of the leads.
    since = now - datetime.timedelta(seconds=leads)
    vibes_list = VibesList.objects.create(vibes_id="bench-admin", name="SMS Newsletter")
    folder = Folder.objects.create(name="Benchmark")
    program = Program.objects.create(name="Benchmark", folder=folder)
    campaign = SmartCampaign.objects.create(program=program, name="Everyone")
    run = CampaignRun.objects.create(
        campaign=campaign,
        trigger=CampaignRun.Trigger.COMMAND,
        dry_run=True,
        status=CampaignRun.Status.COMPLETED,
        audience=leads,
    )
    step = RunStep.objects.create(run=run, position=0, action="send_sms", status=RunStep.Status.DONE)
    q = connection.ops.quote_name
    lead_table = Lead._meta.db_table
    names = (_names("first_names", FIRST_NAMES), _names("last_names", LAST_NAMES))
    # Every 10th lead shares the number of the lead before; every 20th has none.
    phone = f"CASE WHEN n %% 20 = 0 THEN '' WHEN n %% 10 = 1 THEN {_number('n - 1')} ELSE {_number('n')} END"
    lead_select = (
        "SELECT n, f.value, l.value, "
        "LOWER(f.value || '.' || l.value || CAST(n AS TEXT) || '@example.invalid'), "
        f"{phone}, {_case('n %% 28', COUNTRIES, 'US')}, '', '', {_case('n %% 5', SOURCES, '')}, n %% 100, "
        f"{_flag('n %% 50 = 3')}, {_flag('n %% 100 = 7')}, %s, %s "
        "FROM __SERIES__ "
        f"JOIN first_names f ON f.i = n %% {len(FIRST_NAMES)} "
        f"JOIN last_names l ON l.i = (n / {len(FIRST_NAMES)}) %% {len(LAST_NAMES)}"
    )
    subscribed = "n %% 10 < 3"
    with connection.cursor() as cursor:
        for start, stop in _pieces(leads):
            with transaction.atomic():
                _insert(
                    cursor,
                    Lead,
                    "id, first_name, last_name, email, mobile_phone, country, city, state, lead_source, "
                    "lead_score, blocklisted, marketing_suspended, created_at, updated_at",
                    lead_select,
                    start,
                    stop,
                    [now, now],
                    ctes=names,
                )
                _insert(
                    cursor,
                    LeadFlagChange,
                    "lead_id, flag, old_value, new_value, source, note, created_at",
                    "SELECT n, CASE WHEN n %% 50 = 3 THEN 'blocklisted' ELSE 'marketing_suspended' END, "
                    f"{_flag('1 = 0')}, {_flag('1 = 1')}, 'import', 'bench.csv', %s FROM __SERIES__ "
                    "WHERE n %% 50 = 3 OR n %% 100 = 7",
                    start,
                    stop,
                    [now],
                )
                _insert(
                    cursor,
                    Subscription,
                    "lead_id, vibes_list_id, status, vibes_person_key, opt_out_reason, status_at, updated_at",
                    f"SELECT n, {vibes_list.pk}, 'subscribed', '', '', {_moment('n')}, {_moment('n')} "
                    "FROM __SERIES__ "
                    f"WHERE {subscribed}",
                    start,
                    stop,
                    [since, since],
                )
                _insert(
                    cursor,
                    CallbackEvent,
                    "event_type, dedupe_key, headers, payload, mdn, outcome, note, received_at, deliveries",
                    "SELECT CASE WHEN n %% 4 = 0 THEN 'subscription_added' ELSE 'delivery_receipt' END, "
                    "'bench-' || CAST(n AS TEXT), '{}', '{}', "
                    f"{phone}, CASE WHEN n %% 20000 = 0 THEN 'unreadable' ELSE 'applied' END, '', "
                    f"{_moment('n')}, 1 "
                    "FROM __SERIES__ WHERE n %% 2 = 0",
                    start,
                    stop,
                    [since],
                )
                _insert(
                    cursor,
                    InboundMessage,
                    "mdn, text, short_code, occurred_at, received_at, vibes_message_id, dedupe_key, "
                    "unmatched_in_vibes",
                    f"SELECT {_number('n')}, 'What time do you open?', '12345', "
                    f"{_moment('n')}, {_moment('n')}, "
                    f"'', 'bench-' || CAST(n AS TEXT), {_flag('1 = 0')} FROM __SERIES__ WHERE n %% 50 = 2",
                    start,
                    stop,
                    [since, since],
                )
                _insert(
                    cursor,
                    RunResult,
                    "run_step_id, lead_id, outcome, phone, error_code, detail, vibes_message_id, "
                    "delivery_status",
                    f"SELECT {step.pk}, n, CASE WHEN {subscribed} THEN {Outcome.PLANNED_DRY_RUN} "
                    f"ELSE {Outcome.SKIPPED_NOT_SUBSCRIBED} END, {phone}, '', '', '', '' FROM __SERIES__",
                    start,
                    stop,
                )
            if progress:
                progress(stop - start + 1)
        # The history of each subscription, and the leads of each message.
        cursor.execute(
            f"INSERT INTO {q(SubscriptionChange._meta.db_table)} (subscription_id, lead_id, vibes_list_id, "
            f"old_status, new_status, effect, source, note, occurred_at, recorded_at) "
            f"SELECT id, lead_id, vibes_list_id, '', 'subscribed', 'applied', 'sync', '', "
            f"status_at, status_at "
            f"FROM {q(Subscription._meta.db_table)}"
        )
        through = InboundMessage.leads.through._meta.db_table
        cursor.execute(
            f"INSERT INTO {q(through)} (inboundmessage_id, lead_id) "
            f"SELECT m.id, l.id FROM {q(InboundMessage._meta.db_table)} m "
            f"JOIN {q(lead_table)} l ON l.mobile_phone = m.mdn"
        )
        cursor.execute(
            f"UPDATE {q(RunStep._meta.db_table)} SET first_result_id = 1, last_result_id = %s WHERE id = %s",
            [leads, step.pk],
        )
        after_inserting_leads(cursor)
    # A lead that is subscribed, blocklisted-free, has a callback and a message: 102 (n % 50 = 2, even).
    return World(leads=leads, lead_id=min(102, leads), vibes_list_id=vibes_list.pk, run_step_id=step.pk)


def world_in_database() -> World:
    """The world `build_world` wrote into this database before."""
    step = RunStep.objects.filter(run__campaign__name="Everyone").latest("pk")
    return World(
        leads=Lead.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        lead_id=min(102, Lead.objects.count() and 102),
        vibes_list_id=VibesList.objects.get(vibes_id="bench-admin").pk,
        run_step_id=step.pk,
    )


def measure(*, leads: int, rounds: int, build: bool = True) -> dict:
    """Build the world in this (empty) database, unless asked not to, and time the pages."""
    if build:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        world = build_world(leads=leads)
        build_seconds = round(time.perf_counter() - started, 1)
    else:
        world, build_seconds = world_in_database(), None
    return {
        "leads": world.leads,
        "database": connection.vendor,
        "build_seconds": build_seconds,
        "pages": time_admin_pages(world, rounds=rounds),
    }


def admin_pages(world: World) -> list[tuple[str, str]]:
    """(what, URL) of every admin page that grows with people or traffic."""

    def changelist(model, query=""):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        return f"{url}?{query}" if query else url

    return [
        ("Leads", changelist(Lead)),
        ("Leads: search a last name", changelist(Lead, "q=Martinez")),
        ("Leads: search a name's beginning", changelist(Lead, "q=ber")),
        ("Leads: search first and last name", changelist(Lead, "q=Anna+Smith")),
        ("Leads: search an email", changelist(Lead, "q=anna.rossifeld2000%40example.invalid")),
        ("Leads: search an email's beginning", changelist(Lead, "q=klara.")),
        ("Leads: search a number, national form", changelist(Lead, "q=%28212%29+000-0042")),
        ("Leads: blocklisted", changelist(Lead, "blocklisted__exact=1")),
        ("Leads: country SE", changelist(Lead, "country=SE")),
        ("Lead's page", reverse("admin:smscampaigns_lead_change", args=[world.lead_id])),
        ("Blocklist and suspension changes", changelist(LeadFlagChange)),
        ("Subscriptions", changelist(Subscription)),
        ("Subscriptions: search a name", changelist(Subscription, "q=Martinez")),
        (
            "Subscriptions: one list, subscribed",
            changelist(Subscription, f"vibes_list__id__exact={world.vibes_list_id}&status__exact=subscribed"),
        ),
        ("Subscription changes", changelist(SubscriptionChange)),
        ("Callback events", changelist(CallbackEvent)),
        ("Callback events: search a number", changelist(CallbackEvent, "q=212-000-0042")),
        ("Callback events: one type", changelist(CallbackEvent, "event_type__exact=subscription_added")),
        ("Unreadable callbacks", changelist(UnreadableCallback)),
        ("Inbound messages", changelist(InboundMessage)),
        ("Inbound messages: search a number", changelist(InboundMessage, "q=%2B12120000052")),
        ("Run results", changelist(RunResult)),
        ("Run results: one outcome", changelist(RunResult, f"outcome__exact={Outcome.PLANNED_DRY_RUN}")),
    ]  # fmt: skip


def time_admin_pages(world: World, *, rounds: int = 5) -> list[dict]:
    """Each page `rounds` times (after one unmeasured request): median, fastest, queries."""
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    # Over HTTPS to a host the settings allow, so that DEBUG may be off (as in production) or on.
    client = Client(HTTP_HOST="localhost", secure=True)
    client.force_login(user)
    rows = []
    for what, url in admin_pages(world):
        response = client.get(url)
        if response.status_code != 200:
            raise AssertionError(f"{what}: {url} answered {response.status_code}")
        times, cpu_times, sql_times = [], [], []
        for _ in range(rounds):
            with CaptureQueriesContext(connection) as queries:
                started, cpu_started = time.perf_counter(), time.process_time()
                client.get(url)
                times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu_started)
            sql_times.append(sum(float(query["time"]) for query in queries.captured_queries))
        rows.append(
            {
                "page": what,
                "url": url,
                "median_ms": round(statistics.median(times) * 1000, 1),
                "fastest_ms": round(min(times) * 1000, 1),
                # This process's own CPU time (SQLite's work included, PostgreSQL's not):
                # less sensitive than the wall time to a busy machine.
                "cpu_median_ms": round(statistics.median(cpu_times) * 1000, 1),
                # The queries' own time as the database driver saw them (wall time, so loaded too).
                "sql_median_ms": round(statistics.median(sql_times) * 1000, 1),
                "queries": len(queries),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    """The timings as a Markdown table."""
    lines = [
        "| page | median | fastest | CPU (median) | SQL (median) | queries |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        times = " | ".join(
            f"{row[key]} ms" for key in ("median_ms", "fastest_ms", "cpu_median_ms", "sql_median_ms")
        )
        lines.append(f"| {row['page']} | {times} | {row['queries']} |")
    return "\n".join(lines)
