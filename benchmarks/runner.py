"""The runner benchmark: planning and execution on a synthetic database of N people.

`build` fills an empty database with N people shaped like a real one (30%
subscribed to the list, 10% sharing a number with someone else, 2%
blocklisted, 1% marketing suspended, 5% without a number) and the campaigns
to run on them. `measure` times, alternating, the bare SQL query that selects
the recipients and the planning of a Send step for everyone, then runs two
sample campaigns against the simulator in its own process: limited to 100
requests/s with 20 ms of latency, and with neither. `manage.py bench_campaign`
runs it on a scratch database.
"""

import random
import statistics
import sys
import time
from dataclasses import dataclass

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone
from tqdm import tqdm

from marketing_activities.models import (
    CampaignRun,
    FlowStep,
    Folder,
    Program,
    RunStep,
    SmartCampaign,
    SmsMessage,
)
from marketing_activities.runner import run_create, run_execute
from marketing_activities.runner.planner import record_counts, write_plan
from smscampaigns.models import Lead
from vibes.models import AcquisitionCampaign, Subscription, VibesList

from .harness import (
    SimulatorProcess,
    after_inserting_leads,
    peak_rss_mb,
    peak_rss_since_reset_mb,
    reset_peak_rss,
    settle_disk,
)

CHUNK = 20_000
LIST_ID = "101"  # the simulator's seeded "SMS Newsletter"


@dataclass
class BenchData:
    leads: int
    plan_campaign_id: int
    limited_campaign_id: int
    unlimited_campaign_id: int


def _campaign(program, message, vibes_list, name, rules):
    campaign = SmartCampaign.objects.create(
        program=program, name=name, qualification_rule=SmartCampaign.QualificationRule.EVERY_TIME
    )
    campaign.smart_list.definition = {"logic": "all", "rules": rules}
    campaign.smart_list.save()
    FlowStep.objects.create(
        campaign=campaign,
        position=0,
        action=FlowStep.Action.SEND_SMS,
        sms_message=message,
        vibes_list=vibes_list,
    )
    return campaign


def _score_below_for(calls: int, leads: int) -> int:
    """A lead_score cut-off whose audience makes about `calls` calls (a quarter of it is texted)."""
    return max(1, min(100, round(calls * 100 / (leads * 0.27))))


def build(
    *, leads: int, limited_calls: int = 3000, unlimited_calls: int = 30000, seed: int = 1, progress=None
) -> BenchData:
    """Write the synthetic people and campaigns with plain multi-row inserts."""
    rng = random.Random(seed)
    vibes_list, _ = VibesList.objects.get_or_create(vibes_id=LIST_ID, defaults={"name": "SMS Newsletter"})
    AcquisitionCampaign.objects.get_or_create(
        vibes_id="AC-NEWS-WEB", defaults={"name": "Newsletter web sign-up", "vibes_list": vibes_list}
    )
    folder, _ = Folder.objects.get_or_create(name="Benchmark", parent=None)
    program, _ = Program.objects.get_or_create(name="Benchmark", folder=folder)
    message, _ = SmsMessage.objects.get_or_create(
        program=program,
        name="Benchmark SMS",
        defaults={"text": 'Hi {{lead.first_name|default:"there"}}, 20% off today.'},
    )
    us = [{"field": "country", "op": "is", "value": "US"}]
    plan = _campaign(program, message, vibes_list, f"Send to {leads}", us)
    limited = _campaign(
        program,
        message,
        vibes_list,
        "Rate-limited sample",
        us + [{"field": "lead_score", "op": "less", "value": _score_below_for(limited_calls, leads)}],
    )
    unlimited = _campaign(
        program,
        message,
        vibes_list,
        "Unlimited sample",
        us
        + [{"field": "lead_score", "op": "greater", "value": 99 - _score_below_for(unlimited_calls, leads)}],
    )

    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    subscription_table = connection.ops.quote_name(Subscription._meta.db_table)
    start_id = (Lead.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    now = timezone.now()
    previous_phone = ""
    with connection.cursor() as cursor:
        for chunk_start in range(start_id, start_id + leads, CHUNK):
            people, subscriptions = [], []
            for lead_id in range(chunk_start, min(chunk_start + CHUNK, start_id + leads)):
                roll = rng.random()
                if roll < 0.05:
                    phone = ""
                elif roll < 0.15 and previous_phone:
                    phone = previous_phone  # shares a number with the person before
                else:
                    phone = f"+1212{lead_id:07d}"
                if phone:
                    previous_phone = phone
                people.append(
                    (
                        lead_id,
                        "Pat",
                        "Doe",
                        f"p{lead_id}@bench.invalid",
                        phone,
                        "US",
                        "",
                        "",
                        "bench",
                        rng.randrange(100),
                        rng.random() < 0.02,
                        rng.random() < 0.01,
                        now,
                        now,
                    )
                )
                if rng.random() < 0.30:
                    subscriptions.append((lead_id, vibes_list.pk, "subscribed", "", "", now))
            with transaction.atomic():
                cursor.executemany(
                    f"INSERT INTO {lead_table} (id, first_name, last_name, email, mobile_phone, country, "
                    f"city, state, lead_source, lead_score, blocklisted, marketing_suspended, created_at, "
                    f"updated_at) "
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    people,
                )
                cursor.executemany(
                    f"INSERT INTO {subscription_table} (lead_id, vibes_list_id, status, vibes_person_key, "
                    f"opt_out_reason, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    subscriptions,
                )
            if progress:
                progress(len(people))
        after_inserting_leads(cursor)
    return BenchData(leads, plan.pk, limited.pk, unlimited.pk)


def bare_recipients_query(campaign: SmartCampaign) -> tuple[float, int]:
    """The least a database can do to find the recipients: one SELECT; (seconds, rows).

    The smart list, the list status, the exclusions (the person's own and
    the number's, R4) and the dedupe by number, built by the ORM as a single
    GROUP BY query.
    """
    step = campaign.flow_steps.get()
    blocked = Lead.objects.filter(Q(blocklisted=True) | Q(marketing_suspended=True))
    if connection.vendor == "postgresql":
        # NOT EXISTS, an anti-join: PostgreSQL checks NOT IN against a list that
        # does not fit work_mem (300,000 blocked numbers at 10,000,000 people)
        # person by person, for hours.
        number_blocked = Exists(blocked.filter(mobile_phone=OuterRef("mobile_phone")))
    else:
        number_blocked = Q(mobile_phone__in=blocked.values("mobile_phone"))
    recipients = (
        Lead.objects.filter(
            campaign.smart_list.parsed().to_q(),
            blocklisted=False,
            marketing_suspended=False,
            subscriptions__vibes_list_id=step.vibes_list_id,
            subscriptions__status=Subscription.Status.SUBSCRIBED,
        )
        .exclude(mobile_phone="")
        .exclude(number_blocked)
        .values("mobile_phone")
        .annotate(winner=Min("id"))
        .values_list("winner", flat=True)
    )
    started = time.perf_counter()
    # Counted as they stream by: holding 9,000,000 ids would cost more memory than
    # planning them. In a transaction, so that PostgreSQL's cursor is not WITH HOLD
    # (outside one, it writes every row aside before the first is read).
    with transaction.atomic():
        rows = sum(1 for _ in recipients.iterator(chunk_size=10_000))
    return time.perf_counter() - started, rows


def finish_run(run_id):
    CampaignRun.objects.filter(pk=run_id).update(status=CampaignRun.Status.COMPLETED)


def measure(
    *, leads: int, rounds: int, limited_calls: int, unlimited_calls: int, concurrency: int, skip_execute: bool
) -> dict:
    """The whole benchmark in this (empty) database: its report."""
    call_command("migrate", verbosity=0)
    report = {
        "leads": leads,
        "database": connection.settings_dict["ENGINE"].rsplit(".", 1)[-1],
    }
    with tqdm(total=leads, desc="Building people", unit=" leads", file=sys.stderr) as bar:
        started = time.perf_counter()
        data = build(
            leads=leads, limited_calls=limited_calls, unlimited_calls=unlimited_calls, progress=bar.update
        )
    report["build_seconds"] = round(time.perf_counter() - started, 2)

    campaign = SmartCampaign.objects.get(pk=data.plan_campaign_id)
    settle_disk()
    bare, plans, count_times, plan_memory = [], [], [], []
    for _ in range(rounds):
        # Alternate the two so that both see the same state of the machine.
        bare.append(bare_recipients_query(campaign))
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        step = run.steps.get()
        # The planning's own peak, without the building's before it.
        reset_peak_rss()
        memory_before = peak_rss_since_reset_mb()
        started = time.perf_counter()
        write_plan(step)  # the result rows and batches, committed
        plans.append(time.perf_counter() - started)
        counts = record_counts(step)
        count_times.append(time.perf_counter() - started - plans[-1])
        plan_memory.append((memory_before, peak_rss_since_reset_mb()))
        finish_run(run.pk)
        settle_disk()
    bare_seconds, recipients = statistics.median(t for t, _ in bare), bare[0][1]
    plan_seconds = statistics.median(plans)
    report["plan"] = {
        "bare_query_seconds": round(bare_seconds, 3),
        "plan_seconds": round(plan_seconds, 3),
        "ratio": round(plan_seconds / bare_seconds, 2),
        "count_seconds": round(statistics.median(count_times), 3),
        "bare_query_runs": [round(t, 3) for t, _ in bare],
        "plan_runs": [round(t, 3) for t in plans],
        # Resident memory as planning began, and its peak while planning and counting.
        "rss_before_mb": max((before for before, _ in plan_memory if before), default=None),
        "peak_rss_mb": max((peak for _, peak in plan_memory if peak), default=None),
        "recipients": recipients,
        "queued": counts.get("queued", 0),
        "result_rows": sum(counts.values()),
        "counts": counts,
    }
    if recipients != counts.get("queued", 0):
        raise CommandError(f"the plan queues {counts.get('queued')} calls, the bare query finds {recipients}")
    if not skip_execute:
        # Vibes limiting the company (the client keeping the limit too), then neither limit nor latency.
        for name, campaign_id, rate_limit, latency_ms in (
            ("execute_rate_limited", data.limited_campaign_id, 100, 20),
            ("execute_unlimited", data.unlimited_campaign_id, 0, 0),
        ):
            report[name] = execute(
                campaign_id, concurrency=concurrency, rate_limit=rate_limit, latency_ms=latency_ms
            )
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def execute(campaign_id, *, concurrency: int, rate_limit: float, latency_ms: float) -> dict:
    """A run of the campaign against the simulator in its own process, timed without its planning."""
    with SimulatorProcess(rate_limit=rate_limit, latency_ms=latency_ms) as simulator:
        run = run_create(
            campaign=SmartCampaign.objects.get(pk=campaign_id), trigger=CampaignRun.Trigger.COMMAND
        )
        with tqdm(
            desc=f"Sending ({'limited' if rate_limit else 'unlimited'})", unit=" SMS", file=sys.stderr
        ) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            started = time.perf_counter()
            run = run_execute(run=run, progress=progress, concurrency=concurrency)
            total_seconds = time.perf_counter() - started
        step = RunStep.objects.get(run=run)
        execute_seconds = total_seconds - (step.plan_seconds or 0)
        return {
            "simulator_rate_limit": rate_limit,
            "latency_ms": latency_ms,
            "calls": run.progress_done,
            "counts": step.counts,
            "execute_seconds": round(execute_seconds, 2),
            "calls_per_second": round(run.progress_done / execute_seconds, 1),
            "simulator": simulator.stats(),
        }
