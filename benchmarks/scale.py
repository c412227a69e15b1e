"""The scale benchmark: every screen of a campaign and the admin's large lists,
timed through Django's test client on a world of N people.

`build` fills an empty database with set-based SQL only (one INSERT ... SELECT
per table over a generated series of numbers: generate_series on PostgreSQL, a
recursive CTE on SQLite), shaped like the issue's measurement: N leads, 36.9%
of them subscribed to one Vibes list, some flag changes, subscription changes,
delivery receipts and replies, and one smart campaign with a Send SMS step
whose dry run has a row for each of the 92.5% of people its smart list picks.
`measure` times each screen (the median of a number of rounds, after one
warm-up request) and `table` prints the figures. `manage.py bench_scale` runs
it on a scratch database, which `--reuse` keeps between runs.
"""

import os
import statistics
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from marketing_activities.models import (
    AudienceCount,
    CampaignRun,
    FlowStep,
    Folder,
    Outcome,
    Program,
    SmartCampaign,
    SmsMessage,
)
from marketing_activities.runner import run_create
from marketing_activities.runner.count_jobs import audience_count_run
from marketing_activities.runner.planner import record_counts, write_plan
from smscampaigns.models import Lead, LeadFlagChange
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange, VibesList

from .harness import after_inserting_leads

CAMPAIGN_NAME = "Scale benchmark"
FIRST_NAMES = (
    "Anna Ben Chloé Dirk Emma Finn Greta Hugo Ines Jonas Karin Lars Mia Noah Olga Per Quinn Rosa Sven Tove "
    "Ugo Vera Wim Xenia Yann Zoé Astrid Bram Carla Dario Elin Fabio Giulia Henk Ingrid Joost Kees Lotte "
    "Marco Nils"
).split()
LAST_NAMES = (
    "Andersson Bakker Bianchi Dubois Eriksson Fischer Gallo Hansen Janssen Karlsson Lefebvre Lindqvist "
    "Martin Meyer Moretti Nilsson Peeters Petit Richter Romano Schmidt Smit Svensson Visser Wagner Weber "
    "Bernard Colombo Conti Dekker Durand Esposito Fontana Girard Hoffmann Jansen Koch Laurent Lombardi "
    "Mulder Persson Ricci Roux Schneider Schulz Simon Vos Wolf Zimmermann Berg"
).split()
RARE_NAME = "Quennell"  # one person in 100,000: a search that finds few
RARE_EVERY = 100_000
# Valid national numbers of ten digits: (212) 200-0000 to (212) 999-9999, then
# (213) 200-0000 on; an exchange never begins with 0 or 1 in North America.
FIRST_AREA = 212
NUMBERS_PER_AREA = 8_000_000


@dataclass
class World:
    leads: int
    campaign_id: int
    run_id: int
    build_seconds: float | None = None


def _series(count: int) -> str:
    """FROM clause of the numbers 1..count, as `n(i)`."""
    if connection.vendor == "postgresql":
        return f"generate_series(1::bigint, {int(count)}) AS n(i)"  # i * 7919 passes 2³¹
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(count)}) "
        f"SELECT i FROM s) n"
    )


def _pick(words, index: str) -> str:
    """SQL choosing one of `words` by the integer expression `index`."""
    branches = " ".join(f"WHEN {n} THEN '{word}'" for n, word in enumerate(words))
    return f"CASE ({index}) % {len(words)} {branches} END"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _number_sql(index: str) -> str:
    """The `index`th valid number (from 0), in E.164."""
    return (
        f"'+1' || (({FIRST_AREA} + ({index}) / {NUMBERS_PER_AREA}) * 10000000 "
        f"+ 2000000 + ({index}) % {NUMBERS_PER_AREA})"
    )


def phone_sql(lead_id: str) -> str:
    """The number of lead `lead_id` (+1 212 200 0001 on, each valid): 5% have
    none, 10% share the number of the lead before."""
    return (
        f"CASE WHEN {lead_id} % 20 = 0 THEN '' "
        f"WHEN {lead_id} % 10 = 3 THEN {_number_sql(f'{lead_id} - 1')} "
        f"ELSE {_number_sql(lead_id)} END"
    )


def is_subscriber_sql(lead_id: str) -> str:
    # 7919 is prime to 1000, so exactly 369 of every 1,000 consecutive leads.
    return f"({lead_id} * 7919) % 1000 < 369"


def build(*, leads: int, progress=print) -> World:
    """The world, in an empty database; each table in one statement."""
    now = timezone.now()
    vibes_list = VibesList.objects.create(vibes_id="101", name="SMS Newsletter")
    folder = Folder.objects.create(name="Scale")
    program = Program.objects.create(name="Scale", folder=folder)
    message = SmsMessage.objects.create(
        program=program, name="Scale SMS", text='Hi {{lead.first_name|default:"there"}}, 20% off today.'
    )
    campaign = SmartCampaign.objects.create(
        program=program, name=CAMPAIGN_NAME, qualification_rule=SmartCampaign.QualificationRule.EVERY_TIME
    )
    campaign.smart_list.definition = {
        "logic": "all",
        "rules": [{"field": "country", "op": "is", "value": "US"}],
    }
    campaign.smart_list.save()
    FlowStep.objects.create(
        campaign=campaign,
        position=0,
        action=FlowStep.Action.SEND_SMS,
        sms_message=message,
        vibes_list=vibes_list,
    )
    common_name = _pick(LAST_NAMES, f"i / {len(FIRST_NAMES)}")
    last_name = f"CASE WHEN i % {RARE_EVERY} = 4242 THEN '{RARE_NAME}' ELSE {common_name} END"
    statements = [
        (
            "leads",
            f"INSERT INTO {_table(Lead)} (id, first_name, last_name, email, mobile_phone, country, city, "
            f"state, lead_source, lead_score, blocklisted, marketing_suspended, created_at, updated_at) "
            f"SELECT i, {_pick(FIRST_NAMES, 'i * 7')}, {last_name}, 'p' || i || '@bench.invalid', "
            f"{phone_sql('i')}, "
            f"CASE WHEN i % 40 < 37 THEN 'US' ELSE 'CA' END, '', '', 'bench', (i * 7919) % 100, "
            f"i % 50 = 2, i % 100 = 13, %s, %s FROM {_series(leads)}",
            [now, now],
        ),
        (
            "subscriptions",
            f"INSERT INTO {_table(Subscription)} (lead_id, vibes_list_id, status, vibes_person_key, "
            f"opt_in_date, opt_out_reason, status_at, updated_at) "
            f"SELECT i, %s, "
            f"CASE (i * 31) % 20 WHEN 0 THEN 'pending' WHEN 1 THEN 'unsubscribed' ELSE 'subscribed' END, "
            f"'', %s, '', %s, %s FROM {_series(leads)} WHERE {is_subscriber_sql('i')}",
            [vibes_list.pk, now, now, now],
        ),
        (
            "subscription changes",
            f"INSERT INTO {_table(SubscriptionChange)} (subscription_id, lead_id, vibes_list_id, old_status, "
            f"new_status, effect, source, note, occurred_at, recorded_at) "
            f"SELECT id, lead_id, vibes_list_id, '', status, 'applied', 'sync', '', %s, %s "
            f"FROM {_table(Subscription)}",
            [now, now],
        ),
        (
            "flag changes",
            f"INSERT INTO {_table(LeadFlagChange)} "
            f"(lead_id, flag, old_value, new_value, source, note, created_at) "
            f"SELECT id, CASE WHEN blocklisted THEN 'blocklisted' ELSE 'marketing_suspended' END, NULL, "
            f"1 = 1, 'import', '', %s FROM {_table(Lead)} "
            f"WHERE blocklisted OR marketing_suspended",
            [now],
        ),
        (
            "delivery receipts",
            f"INSERT INTO {_table(CallbackEvent)} (event_type, dedupe_key, headers, payload, mdn, outcome, "
            f"note, received_at, deliveries) "
            f"SELECT 'delivery_receipt', 'bench-receipt-' || i, '{{}}', '{{\"status\": \"delivered\"}}', "
            f"{phone_sql('i')}, 'applied', '', %s, 1 FROM {_series(leads)} WHERE i % 10 = 5",
            [now],
        ),
        (
            "replies",
            f"INSERT INTO {_table(InboundMessage)} (mdn, text, short_code, occurred_at, received_at, "
            f"vibes_message_id, dedupe_key, unmatched_in_vibes) "
            f"SELECT {phone_sql('i')}, 'Yes please', '12345', %s, %s, '', 'bench-reply-' || i, %s "
            f"FROM {_series(leads)} WHERE i % 100 = 55",
            [now, now, False],
        ),
    ]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for name, sql, params in statements:
            step_started = time.perf_counter()
            # The SQL's own % (modulo, printf) doubled for the driver's placeholders.
            cursor.execute(sql.replace("%", "%%").replace("%%s", "%s"), params)
            if name == "leads":
                after_inserting_leads(cursor)
            progress(f"{name}: {time.perf_counter() - step_started:.1f} s")
    # The big dry run, written by the planner itself (one INSERT ... SELECT).
    step_started = time.perf_counter()
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=True)
    step = run.steps.get()
    write_plan(step)
    counts = record_counts(step)
    CampaignRun.objects.filter(pk=run.pk).update(
        status=CampaignRun.Status.COMPLETED, audience=sum(counts.values()), finished_at=timezone.now()
    )
    progress(f"dry run of {sum(counts.values()):,} rows: {time.perf_counter() - step_started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    get_user_model().objects.create_superuser("bench", "bench@bench.invalid", "bench-password")
    return World(leads, campaign.pk, run.pk, round(time.perf_counter() - started, 1))


def existing_world() -> World | None:
    """The world a previous run built in this database, or None."""
    campaign = SmartCampaign.objects.filter(name=CAMPAIGN_NAME).first()
    run = campaign and campaign.runs.filter(dry_run=True).order_by("pk").first()
    if run is None:
        return None
    return World(Lead.objects.order_by("-pk").values_list("pk", flat=True).first() or 0, campaign.pk, run.pk)


def screens(world: World) -> list[tuple[str, str, str, dict]]:
    """(name, method, URL, data) of every screen timed."""
    campaign = world.campaign_id
    results = reverse("marketing_activities:campaign_results", args=[campaign])
    run = f"?run={world.run_id}"
    # Someone halfway through the run with a number of their own (see phone_sql).
    lead = Lead.objects.filter(pk=world.leads // 2 + 1).first() or Lead.objects.order_by("pk").first()
    phone = lead.mobile_phone or f"+1{FIRST_AREA}2000001"
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    admin = "/admin/"
    # the outcome of a call, as the page names it; and of a duplicate
    called, duplicate = Outcome.PLANNED_DRY_RUN, Outcome.SKIPPED_DUPLICATE_PHONE
    qualified = reverse("marketing_activities:campaign_qualified_people", args=[campaign])
    dashboard = reverse("marketing_activities:campaign_dashboard", args=[campaign])
    return [
        (
            "Smart List tab (live count)",
            "get",
            reverse("marketing_activities:campaign_smart_list", args=[campaign]),
            {},
        ),
        (
            "Smart List tab, its exact count asked for",
            "count",
            reverse("marketing_activities:campaign_smart_list", args=[campaign]),
            {"count": "exact"},
        ),
        ("Flow tab", "get", reverse("marketing_activities:campaign_flow", args=[campaign]), {}),
        ("Schedule tab", "get", reverse("marketing_activities:campaign_schedule", args=[campaign]), {}),
        ("Results of the big run", "get", results + run, {}),
        ("Results, next page", "get", results + run + "&page=2", {}),
        (
            "Results filtered by one outcome",
            "get",
            f"{results}{run}&outcome={Outcome.SKIPPED_NOT_SUBSCRIBED.code}",
            {},
        ),
        ("Results searched by a name", "get", f"{results}{run}&q={LAST_NAMES[11]}", {}),
        ("Results searched by a rare name", "get", f"{results}{run}&q={RARE_NAME}", {}),
        ("Results searched by a number", "get", f"{results}{run}&{urlencode({'q': phone})}", {}),
        (
            "Run-now confirmation (tab)",
            "get",
            reverse("marketing_activities:campaign_run_now", args=[campaign]),
            {},
        ),
        (
            "Run-now confirmation's counts (tab)",
            "count",
            reverse("marketing_activities:campaign_run_now", args=[campaign]),
            {"count": "exact"},
        ),
        (
            "Run-now confirmation (admin)",
            "post",
            f"{admin}marketing_activities/smartcampaign/",
            {"action": "run_now", "_selected_action": [campaign]},
        ),
        (
            "Run-now confirmation's counts (admin)",
            "count",
            f"{admin}marketing_activities/smartcampaign/run-now/",
            {"_selected_action": [campaign]},
        ),
        ("Tree", "get", reverse("marketing_activities:index"), {}),
        # The screens of SMS reporting (issue 18) at this many people.
        ("View Qualified People", "get", qualified, {}),
        (
            "View Qualified People, one reason",
            "get",
            qualified,
            {"outcome": Outcome.SKIPPED_NOT_SUBSCRIBED.code},
        ),
        (
            "View Qualified People, a rare reason",
            "get",
            qualified,
            {"outcome": Outcome.SKIPPED_NUMBER_BLOCKLISTED.code},
        ),
        ("View Qualified People who will get the SMS", "get", qualified, {"outcome": called.code}),
        ("View Qualified People who share a number", "get", qualified, {"outcome": duplicate.code}),
        ("Campaign dashboard", "get", dashboard, {}),
        ("SMS performance", "get", reverse("marketing_activities:installation_dashboard"), {}),
        ("Lead activity log", "get", f"{admin}smscampaigns/lead/{lead.pk}/activity/", {}),
        ("Admin lead list", "get", f"{admin}smscampaigns/lead/", {}),
        ("Admin lead search by a name", "get", f"{admin}smscampaigns/lead/?q={LAST_NAMES[11]}", {}),
        ("Admin lead search by an email", "get", f"{admin}smscampaigns/lead/?q={lead.email}", {}),
        (
            "Admin lead search by a number",
            "get",
            f"{admin}smscampaigns/lead/?{urlencode({'q': national})}",
            {},
        ),
        ("Admin lead change page", "get", f"{admin}smscampaigns/lead/{lead.pk}/change/", {}),
        ("Admin flag changes", "get", f"{admin}smscampaigns/leadflagchange/", {}),
        ("Admin subscriptions", "get", f"{admin}vibes/subscription/", {}),
        ("Admin subscription changes", "get", f"{admin}vibes/subscriptionchange/", {}),
        ("Admin callbacks", "get", f"{admin}vibes/callbackevent/", {}),
        ("Admin replies", "get", f"{admin}vibes/inboundmessage/", {}),
    ]


def _poll_url(url: str, data: dict, count: AudienceCount) -> tuple[str, dict]:
    """Where a confirmation polls the count its counts request started."""
    if "/admin/" in url:
        return url + "progress/", {**data, "counting": [count.pk]}
    return url, {"counting": count.pk}


def _row(name: str, times: list, queries, status: int) -> dict:
    return {
        "screen": name,
        "median_ms": round(1000 * statistics.median(times)),
        "min_ms": round(1000 * min(times)),
        "queries": len(queries.captured_queries) if queries is not None else "",
        "status": status,
    }


def measure_counting(client, name: str, url: str, data: dict, *, rounds: int) -> list[dict]:
    """The counts request (it starts the count), one poll while it counts, and
    the time until the counts are ready: the count itself, run here as the
    request's transaction commits, one count at a time (in the product it runs
    in the background: Celery or a thread). A request that counted at once
    (the Smart List tab under its limit, or on SQLite) is its only row."""
    started, polled, ready = [], [], []
    for round_number in range(rounds + 1):
        known = AudienceCount.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with override_settings(RUNNER_BACKGROUND="inline"):
            with transaction.atomic():
                with CaptureQueriesContext(connection) as start_queries:
                    begun = time.perf_counter()
                    response = client.get(url, data, headers={"HX-Request": "true"})
                    start_elapsed = time.perf_counter() - begun
                count = AudienceCount.objects.filter(pk__gt=known).order_by("pk").last()
                if count is None:  # counted at once
                    if round_number:
                        started.append(start_elapsed)
                    continue
                poll_url, poll_data = _poll_url(url, data, count)
                with CaptureQueriesContext(connection) as poll_queries:
                    begun = time.perf_counter()
                    poll = client.get(poll_url, poll_data, headers={"HX-Request": "true"})
                    poll_elapsed = time.perf_counter() - begun
                begun = time.perf_counter()
            # Committed: the count runs now (in a test's transaction, not before its end: here then).
            count.refresh_from_db()
            if count.finished_at is None:
                audience_count_run(count_id=count.pk)
            ready_elapsed = time.perf_counter() - begun
        if round_number:  # the first round only warms the caches
            started.append(start_elapsed)
            polled.append(poll_elapsed)
            ready.append(ready_elapsed)
    if not polled:
        return [_row(name, started, start_queries, response.status_code)]
    return [
        _row(name, started, start_queries, response.status_code),
        _row(f"{name}: one poll while counting", polled, poll_queries, poll.status_code),
        _row(f"{name}: until the counts are ready (not a request)", ready, None, poll.status_code),
    ]


def measure(world: World, *, rounds: int, only: str = "", progress=print) -> list[dict]:
    """Each screen's median time over `rounds` requests (after one to warm up) and its queries."""
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    rows = []
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        for name, method, url, data in screens(world):
            if only and only.lower() not in name.lower():
                continue
            if method == "count":
                counted = measure_counting(client, name, url, data, rounds=rounds)
                rows += counted
                for row in counted:
                    progress(f"{row['screen']}: {row['median_ms']} ms")
                continue
            request = getattr(client, method)
            times = []
            for round_number in range(rounds + 1):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = request(url, data)
                    elapsed = time.perf_counter() - started
                if round_number:  # the first request only warms the caches
                    times.append(elapsed)
            rows.append(_row(name, times, queries, response.status_code))
            progress(f"{name}: {rows[-1]['median_ms']} ms")
    return rows


def table(rows: list[dict], *, world: World) -> str:
    """The figures as a Markdown table, with what they were measured on."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        f"{world.leads:,} leads on {connection.vendor}, load average {load}"
        + (f", world built in {world.build_seconds} s" if world.build_seconds else ""),
        "",
        "| screen | median | fastest | queries | status |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['screen']} | {row['median_ms']:,} ms | {row['min_ms']:,} ms | {row['queries']} "
        f"| {row['status']} |"
        for row in rows
    ]
    return "\n".join(lines)
