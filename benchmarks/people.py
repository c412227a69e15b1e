"""The people benchmark (issue 18): a person's activity log at ten million
result rows, and View Qualified People at a million people.

`build` makes the scale benchmark's world (benchmarks/scale.py: N people, a
Send campaign whose smart list picks 92.5% of them), then adds, with
set-based SQL only, R result rows of SMS sent by 100 runs (about R/N per
person; one in five settled by a delivery receipt, one in ten of those a
failure: R/5 receipts) and one heavy person with thousands of rows of every
kind the log shows. `measure` times the screens through Django's test client
(the median of a number of rounds after one warm-up request) and
`scale.table` prints the figures.
"""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.activity import lead_activity_page
from marketing_activities.models import (
    AudienceCount,
    CampaignRun,
    FlowStep,
    LinkClick,
    Outcome,
    RunResult,
    RunStep,
    SmartCampaign,
    TrackedLink,
)
from marketing_activities.runner.qualified_people import qualified_people_page
from smscampaigns.models import Activity, Lead, LeadFlagChange
from vibes.models import InboundMessage, SubscriptionChange

from . import scale
from .scale import World, _row, _series, _table

RUNS = 100
# The heavy person's history, by kind.
HEAVY = {"sent": 5_000, "clicks": 500, "flag changes": 300, "activities": 1_000, "subscription changes": 300}
HEAVY_REPLIES = 200


def _moment(seconds_sql: str) -> str:
    """SQL of the moment `seconds_sql` seconds after the epoch, as Django stores it."""
    if connection.vendor == "postgresql":
        return f"to_timestamp({seconds_sql})"
    return f"datetime({seconds_sql}, 'unixepoch')"


def build(*, leads: int, results: int, progress=print) -> World:
    world = scale.build(leads=leads, progress=progress)
    campaign = SmartCampaign.objects.get(pk=world.campaign_id)
    step = campaign.flow_steps.get()
    steps = []
    for _n in range(RUNS):
        run = CampaignRun.objects.create(
            campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, status=CampaignRun.Status.COMPLETED
        )
        steps.append(
            RunStep.objects.create(
                run=run,
                position=0,
                action=FlowStep.Action.SEND_SMS,
                flow_step=step,
                sms_message=step.sms_message,
                vibes_list=step.vibes_list,
                status=RunStep.Status.DONE,
                planned_at=timezone.now(),
            ).pk
        )
    first_step = min(steps)  # the steps' ids follow one another
    start = int(time.time()) - results - 10 * HEAVY["sent"]
    heavy = heavy_lead_id(world)
    columns = (
        "run_step_id, lead_id, outcome, phone, error_code, detail, vibes_message_id, delivery_status, "
        "updated_at, called_at"
    )
    statements = [
        (
            f"{results:,} result rows",
            f"INSERT INTO {_table(RunResult)} ({columns}) "
            # In lead order (R/N rows a person, their times scattered), as each
            # index on the lead is written at its end: scattered, SQLite's
            # inserts into those indexes took the best part of an hour.
            f"SELECT {first_step} + i % {RUNS}, 1 + (i - 1) * {leads} / {results}, "
            f"{_sms(f'{start} + (i * 7919) % {results}')} FROM {_series(results)}",
        ),
        (
            "the heavy person's SMS",
            f"INSERT INTO {_table(RunResult)} ({columns}) "
            f"SELECT {first_step} + i % {RUNS}, {heavy}, {_sms(f'{start} + {results} + 10 * i', 'heavy-')} "
            f"FROM {_series(HEAVY['sent'])}",
        ),
        (
            "the heavy person's links",
            f"INSERT INTO {_table(TrackedLink)} "
            f"(code, run_step_id, result_id, lead_id, position, url, created_at) "
            f"SELECT 'bench' || r.id, r.run_step_id, r.id, r.lead_id, 0, 'https://shop.example/sale', "
            f"r.called_at "
            f"FROM {_table(RunResult)} r WHERE r.lead_id = {heavy} AND r.vibes_message_id LIKE 'heavy-%' "
            f"ORDER BY r.id LIMIT {HEAVY['clicks']}",
        ),
        (
            "the heavy person's clicks",
            f"INSERT INTO {_table(LinkClick)} "
            f"(link_id, lead_id, run_step_id, result_id, clicked_at, user_agent, by_robot) "
            f"SELECT id, lead_id, run_step_id, result_id, created_at, 'bench', {_false()} "
            f"FROM {_table(TrackedLink)} WHERE lead_id = {heavy}",
        ),
        (
            "the heavy person's flag changes",
            f"INSERT INTO {_table(LeadFlagChange)} "
            f"(lead_id, flag, old_value, new_value, source, note, created_at) "
            f"SELECT {heavy}, 'blocklisted', i % 2 = 0, i % 2 = 1, 'admin_action', 'bench', "
            f"{_moment(f'{start} + {results} + 37 * i')} FROM {_series(HEAVY['flag changes'])}",
        ),
        (
            "the heavy person's activity records",
            f"INSERT INTO {_table(Activity)} "
            f"(kind, lead_id, occurred_at, recorded_at, attributes, source, key) "
            f"SELECT 'data_value_changed', {heavy}, {_moment(f'{start} + {results} + 13 * i')}, "
            f"{_moment(f'{start} + {results} + 13 * i')}, "
            f'\'{{"field": "city", "previous": "A", "new": "B"}}\', \'import\', \'bench-\' || i '
            f"FROM {_series(HEAVY['activities'])}",
        ),
        (
            "the heavy person's subscription changes",
            f"INSERT INTO {_table(SubscriptionChange)} "
            f"(lead_id, vibes_list_id, old_status, new_status, effect, source, note, occurred_at, "
            f"recorded_at) "
            f"SELECT {heavy}, {step.vibes_list_id}, 'subscribed', 'unsubscribed', 'applied', 'callback', '', "
            f"{_moment(f'{start} + {results} + 41 * i')}, {_moment(f'{start} + {results} + 41 * i')} "
            f"FROM {_series(HEAVY['subscription changes'])}",
        ),
    ]
    with connection.cursor() as cursor:
        for name, sql in statements:
            began = time.perf_counter()
            cursor.execute(sql)
            progress(f"{name}: {time.perf_counter() - began:.1f} s")
        lead = Lead.objects.get(pk=heavy)
        for n in range(HEAVY_REPLIES):
            message = InboundMessage.objects.create(
                mdn=lead.mobile_phone,
                text=f"Reply {n}",
                occurred_at=timezone.now(),
                dedupe_key=f"bench-heavy-reply-{n}",
            )
            message.leads.add(lead)
        cursor.execute("ANALYZE")
    return world


def _sms(seconds: str, prefix: str = "bench-") -> str:
    """The columns after lead_id of row `i`, called at `seconds`: every fifth
    settled by a receipt 30 s later, every tenth of those a failure."""
    sent, delivered, failed = int(Outcome.SENT), int(Outcome.DELIVERED), int(Outcome.DELIVERY_FAILED)
    outcome = f"CASE WHEN i % 50 = 0 THEN {failed} WHEN i % 5 = 0 THEN {delivered} ELSE {sent} END"
    status = "CASE WHEN i % 50 = 0 THEN 'undeliverable' WHEN i % 5 = 0 THEN 'delivered' ELSE '' END"
    updated = f"CASE WHEN i % 5 = 0 THEN {_moment(f'{seconds} + 30')} ELSE {_moment(seconds)} END"
    return f"{outcome}, '', '', '', '{prefix}' || i, {status}, {updated}, {_moment(seconds)}"


def _false() -> str:
    return "false" if connection.vendor == "postgresql" else "0"


def heavy_lead_id(world: World) -> int:
    """The heavy person: someone halfway through the people, with a number of their own."""
    middle = world.leads // 2
    return middle + 1 if middle % 10 != 2 else middle + 2


def screens(world: World) -> list[tuple[str, str, dict]]:
    """(name, URL, data) of every screen timed."""
    heavy = heavy_lead_id(world)
    log = reverse("admin:smscampaigns_lead_activity", args=[heavy])
    lead = Lead.objects.get(pk=heavy)
    # The cursor of the tenth page, as its "older" links lead there.
    older = ""
    for _page in range(9):
        older = lead_activity_page(lead=lead, older=older).older
    campaign = SmartCampaign.objects.get(pk=world.campaign_id)
    qualified = reverse("marketing_activities:campaign_qualified_people", args=[world.campaign_id])
    halfway = qualified_people_page(campaign=campaign, after=world.leads // 2, page_size=1).people
    after = halfway[0].lead.pk if halfway else ""
    return [
        ("Activity log of the heavy person", log, {}),
        ("Activity log, tenth page", log, {"older": older}),
        ("Activity log, SMS delivered only", log, {"kind": "delivered"}),
        ("Activity log, one campaign's", log, {"campaign": world.campaign_id}),
        ("Lead change page (the log's first page)", f"/admin/smscampaigns/lead/{heavy}/change/", {}),
        ("Qualified people, first page", qualified, {}),
        ("Qualified people, a page halfway", qualified, {"after": after}),
        ("Qualified people who will get the SMS", qualified, {"outcome": Outcome.PLANNED_DRY_RUN.code}),
        ("Qualified people: shares a number", qualified, {"outcome": Outcome.SKIPPED_DUPLICATE_PHONE.code}),
        ("Qualified people: not subscribed", qualified, {"outcome": Outcome.SKIPPED_NOT_SUBSCRIBED.code}),
        (
            "Qualified people: number blocked by a blocklisted person",
            qualified,
            {"outcome": Outcome.SKIPPED_NUMBER_BLOCKLISTED.code},
        ),
    ]


def measure(world: World, *, rounds: int, only: str = "", progress=print) -> list[dict]:
    """Each screen's median time over `rounds` requests (after one to warm up) and its queries."""
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    rows = []
    htmx = {"HX-Request": "true", "HX-Target": "qualified-list"}
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        for name, url, data in screens(world):
            if only and only.lower() not in name.lower():
                continue
            times = []
            for round_number in range(rounds + 1):
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    # The list as its pages ask for it (htmx); the log as a whole page.
                    response = client.get(url, data, headers=htmx if "qualified" in url else {})
                    elapsed = time.perf_counter() - began
                if round_number:
                    times.append(elapsed)
            rows.append(_row(name, times, queries, response.status_code))
            progress(f"{name}: {rows[-1]['median_ms']} ms")
        if not only or only.lower() in "qualified people's counts":
            rows += measure_counts(client, world, rounds=min(rounds, 3))
    return rows


def measure_counts(client, world: World, *, rounds: int) -> list[dict]:
    """The counts card: the request that starts the count, and the count itself
    (run here once the request has committed; in the product, in the background)."""
    url = reverse("marketing_activities:campaign_qualified_people", args=[world.campaign_id])
    card = {"HX-Request": "true", "HX-Target": "qualified-counts"}
    started, ready = [], []
    for round_number in range(rounds + 1):
        with override_settings(RUNNER_BACKGROUND="inline"):
            with transaction.atomic():
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    response = client.get(url, {"count": "exact"}, headers=card)
                    elapsed = time.perf_counter() - began
                began = time.perf_counter()
            # Committed: the count runs now, in this thread (in the product, in the background).
        if round_number:
            started.append(elapsed)
            ready.append(time.perf_counter() - began)
        assert AudienceCount.objects.latest("pk").finished_at is not None
    return [
        _row(
            "Qualified people's counts: the request that starts them", started, queries, response.status_code
        ),
        _row("Qualified people's counts: until they are ready (not a request)", ready, None, 200),
    ]


def existing_world() -> World | None:
    world = scale.existing_world()
    if world is None or not RunResult.objects.filter(vibes_message_id="heavy-1").exists():
        return None
    return world


def describe(world: World) -> str:
    """What the world holds, for the table's title."""
    heavy = heavy_lead_id(world)
    return (
        f"{RunResult.objects.count():,} result rows "
        f"({RunResult.objects.filter(updated_at__isnull=False).exclude(outcome=Outcome.SENT).count():,} "
        f"settled by a receipt); the heavy person ({heavy}): "
        f"{RunResult.objects.filter(lead_id=heavy).count():,} SMS, {HEAVY['clicks']} clicks, {HEAVY_REPLIES} "
        f"replies, {HEAVY['flag changes']} flag changes, {HEAVY['activities']} activity records, "
        f"{HEAVY['subscription changes']} subscription changes"
    )
