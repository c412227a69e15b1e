"""The SMS activity filters benchmark: the Smart List tab's live count with each filter.

`measure` builds the runner benchmark's N people (benchmarks/runner.py), plans
one Send step for all of them and turns its calls into SMS history: sent over
the last 60 days, 80% delivered, 5% bounced (hard, soft or unsaid), 5% replied
to; and one subscription change per subscribed person. It then times, in
rounds, the count of a smart list of one rule "country is US" with each
filter beside it, in its positive and its "not" form, and prints a table of
medians. `manage.py bench_smartlist_filters` runs it on a scratch database.
"""

import random
import statistics
import sys
import time
from datetime import timedelta

from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from marketing_activities.models import CampaignRun, Outcome, RunResult, SmartCampaign, SmsMessage, SmsReply
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import write_plan
from smscampaigns.models import Lead
from smscampaigns.smartlists import parse_definition
from vibes.models import InboundMessage, Subscription, SubscriptionChange, VibesList

from . import runner
from .harness import settle_disk

US = {"field": "country", "op": "is", "value": "US"}
BATCH = 5_000


def _filters(message_id: int, list_id: int) -> list[tuple[str, dict]]:
    return [
        ("Was Sent SMS, any message, any time", {"field": "was_sent_sms", "op": "is any"}),
        (
            "Was Sent SMS, the message, in past 7 days",
            {"field": "was_sent_sms", "op": "is", "value": message_id, "when": "in past", "days": 7},
        ),
        ("SMS Was Delivered, between two dates", _between("sms_was_delivered")),
        ("SMS Bounced, hard", {"field": "sms_bounced", "op": "is any", "bounce": "hard"}),
        (
            "Replied to SMS, text contains",
            {"field": "replied_to_sms", "op": "is any", "reply": "contains", "text": "yes"},
        ),
        ("Subscribed to Vibes List, in past 30 days", _subscribed(list_id)),
    ]


def _between(field):
    today = timezone.now().date()
    return {
        "field": field,
        "op": "is any",
        "when": "between",
        "date": (today - timedelta(days=30)).isoformat(),
        "end_date": today.isoformat(),
    }


def _subscribed(list_id):
    return {"field": "subscribed_to_vibes_list", "op": "is", "value": list_id, "when": "in past", "days": 30}


def _negated(rule: dict) -> dict:
    negated = {
        "was_sent_sms": "was_not_sent_sms",
        "sms_was_delivered": "sms_was_not_delivered",
        "sms_bounced": "sms_did_not_bounce",
        "replied_to_sms": "did_not_reply_to_sms",
        "subscribed_to_vibes_list": "not_subscribed_to_vibes_list",
    }
    return {**rule, "field": negated[rule["field"]]}


def build_history(*, campaign: SmartCampaign, seed: int = 2) -> dict:
    """Plan a Send step for everyone and give its calls the outcomes, times and replies of a past send."""
    rng = random.Random(seed)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    step = run.steps.get()
    write_plan(step)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    now = timezone.now()
    calls = list(step.results().filter(outcome=Outcome.QUEUED).values_list("pk", "lead_id", "phone"))
    by_outcome: dict[tuple, list[int]] = {}
    replies = []
    for pk, lead_id, phone in calls:
        roll = rng.random()
        if roll < 0.80:
            outcome, status = Outcome.DELIVERED, "delivered"
        elif roll < 0.85:
            outcome, status = Outcome.DELIVERY_FAILED, rng.choice(["undeliverable", "expired", "failed"])
        else:
            outcome, status = Outcome.SENT, ""
        day = rng.randrange(60)
        by_outcome.setdefault((outcome, status, day), []).append(pk)
        if rng.random() < 0.05:
            replies.append((pk, lead_id, phone, day, rng.choice(["Yes please", "no", "STOP", "yes!"])))
    with transaction.atomic():
        for (outcome, status, day), ids in by_outcome.items():
            at = now - timedelta(days=day)
            for start in range(0, len(ids), BATCH):
                RunResult.objects.filter(pk__in=ids[start : start + BATCH]).update(
                    outcome=outcome, delivery_status=status, called_at=at, updated_at=at
                )
        for start in range(0, len(replies), BATCH):
            batch = replies[start : start + BATCH]
            messages = InboundMessage.objects.bulk_create(
                InboundMessage(
                    mdn=phone,
                    text=text,
                    occurred_at=now - timedelta(days=day) + timedelta(minutes=5),
                    dedupe_key=f"bench-{pk}",
                )
                for pk, _lead, phone, day, text in batch
            )
            SmsReply.objects.bulk_create(
                SmsReply(message=message, result_id=pk, run_step=step)
                for message, (pk, *_rest) in zip(messages, batch, strict=True)
            )
        subscribed = Subscription.objects.filter(status=Subscription.Status.SUBSCRIBED).values_list(
            "pk", "lead_id", "vibes_list_id"
        )
        changes = [
            SubscriptionChange(
                subscription_id=pk,
                lead_id=lead_id,
                vibes_list_id=list_id,
                new_status=Subscription.Status.SUBSCRIBED,
                source=SubscriptionChange.Source.SYNC,
                occurred_at=now - timedelta(days=rng.randrange(90)),
            )
            for pk, lead_id, list_id in subscribed.iterator()
        ]
        SubscriptionChange.objects.bulk_create(changes, batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"sms": len(calls), "replies": len(replies), "subscription_changes": len(changes)}


def _count_seconds(rules: list[dict]) -> tuple[float, int]:
    started = time.perf_counter()
    # As the Smart List tab counts: the rules read and checked, then one COUNT.
    count = Lead.objects.filter(parse_definition({"logic": "all", "rules": rules}).to_q()).count()
    return time.perf_counter() - started, count


def measure(*, leads: int, rounds: int) -> dict:
    """The whole benchmark in this (empty) database: its report, with `table` ready to print."""
    call_command("migrate", verbosity=0)
    with tqdm(total=leads, desc="Building people", unit=" leads", file=sys.stderr) as bar:
        data = runner.build(leads=leads, progress=bar.update)
    campaign = SmartCampaign.objects.get(pk=data.plan_campaign_id)
    history = build_history(campaign=campaign)
    settle_disk()
    message_id = SmsMessage.objects.values_list("pk", flat=True).get(name="Benchmark SMS")
    list_id = VibesList.objects.values_list("pk", flat=True).get(vibes_id=runner.LIST_ID)
    cases = [("country is US (no activity filter)", [US])]
    for name, rule in _filters(message_id, list_id):
        cases.append((name, [US, rule]))
        cases.append((f"  not: {name}", [US, _negated(rule)]))
    times = {name: [] for name, _rules in cases}
    counts = {}
    for _round in range(rounds):
        # Each case once per round, so that all see the same state of the machine.
        for name, rules in cases:
            seconds, counts[name] = _count_seconds(rules)
            times[name].append(seconds)
    rows = [
        {
            "smart list": name,
            "people": counts[name],
            "median ms": round(1000 * statistics.median(times[name]), 1),
        }
        for name, _rules in cases
    ]
    width = max(len(row["smart list"]) for row in rows)
    table = [f"{'smart list':<{width}}  {'people':>9}  {'median ms':>9}"]
    table += [f"{row['smart list']:<{width}}  {row['people']:>9,}  {row['median ms']:>9}" for row in rows]
    return {
        "leads": leads,
        "database": connection.settings_dict["ENGINE"].rsplit(".", 1)[-1],
        "rounds": rounds,
        "history": history,
        "rows": rows,
        "table": "\n".join(table),
    }
