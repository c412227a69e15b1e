"""Benchmarking the runner on a synthetic database.

`build` fills an empty database with N people shaped like a real one (30%
subscribed to the list, 10% sharing a number with someone else, 2%
blocklisted, 1% marketing suspended, 5% without a number) and the campaigns
to run on them; `measure_*` time the work. `manage.py bench_campaign`
drives both against the simulator in its own process.
"""

import random
import resource
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from smscampaigns.models import Lead
from vibes.models import AcquisitionCampaign, Subscription, VibesList

from .models import CampaignRun, FlowStep, Folder, Program, SmartCampaign, SmsMessage

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
                    f"INSERT INTO {lead_table} (id, first_name, last_name, email, mobile_phone, country, city, state, "
                    f"lead_source, lead_score, blocklisted, marketing_suspended, created_at, updated_at) "
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
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{Lead._meta.db_table}', 'id'), (SELECT MAX(id) FROM {lead_table}))"
            )
        cursor.execute("ANALYZE")
    return BenchData(leads, plan.pk, limited.pk, unlimited.pk)


def bare_recipients_query(campaign: SmartCampaign) -> tuple[float, int]:
    """The least a database can do to find the recipients: one SELECT; (seconds, rows).

    The smart list, the list status, the exclusions (the person's own and
    the number's, R4) and the dedupe by number, built by the ORM as a single
    GROUP BY query.
    """
    step = campaign.flow_steps.get()
    blocked_numbers = Lead.objects.filter(Q(blocklisted=True) | Q(marketing_suspended=True)).values(
        "mobile_phone"
    )
    recipients = (
        Lead.objects.filter(
            campaign.smart_list.parsed().to_q(),
            blocklisted=False,
            marketing_suspended=False,
            subscriptions__vibes_list_id=step.vibes_list_id,
            subscriptions__status=Subscription.Status.SUBSCRIBED,
        )
        .exclude(mobile_phone="")
        .exclude(mobile_phone__in=blocked_numbers)
        .values("mobile_phone")
        .annotate(winner=Min("id"))
        .values_list("winner", flat=True)
    )
    started = time.perf_counter()
    rows = len(list(recipients.iterator(chunk_size=10_000)))
    return time.perf_counter() - started, rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def finish_run(run_id):
    CampaignRun.objects.filter(pk=run_id).update(status=CampaignRun.Status.COMPLETED)
