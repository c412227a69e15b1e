"""Median server time (Django test client) of replies on a big run.

The runner benchmark's people (`benchmarks/runner.py`: REPLY_BENCH_LEADS,
100,000 by default; set it to 1000000 for a million) and two runs of its Send
step planned by the runner, every SMS sent, a day apart; one in ten people
texted by the latest replied. Targets: a reply callback under 50 ms median
whatever the size of the runs (the SMS it answers is found through the
lead's calls, never by reading a run), and the Results tab of the latest run,
with its count of people who replied, and the list of those people, under
200 ms at 100,000 people.
"""

import itertools
import json
import os
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from benchmarks import runner as bench
from marketing_activities.models import CampaignRun, Outcome, RunStep, SmartCampaign, SmsReply
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import record_counts, write_plan
from vibes.inbound import inbound_dedupe_key
from vibes.models import InboundMessage

pytestmark = pytest.mark.django_db

LEADS = int(os.environ.get("REPLY_BENCH_LEADS", "100000"))
REPLIED_EVERY = 10
CALLBACK_TARGET = 0.050
RESULTS_TARGET = 0.200 if LEADS <= 100_000 else 2.0


def _sent_run(campaign, sent_at):
    """A run of the campaign planned by the runner, with every SMS it queued sent at `sent_at`."""
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    step = run.steps.get()
    write_plan(step)
    counts = record_counts(step)
    step.refresh_from_db()
    step.results().filter(outcome=Outcome.QUEUED).update(
        outcome=Outcome.SENT, called_at=sent_at, updated_at=sent_at
    )
    counts["sent"] = counts.pop("queued")
    RunStep.objects.filter(pk=step.pk).update(counts=counts, status=RunStep.Status.DONE)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    return run, step


@pytest.fixture(scope="module")
def big_run(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        campaign = SmartCampaign.objects.get(pk=bench.build(leads=LEADS).plan_campaign_id)
        sent_at = timezone.now() - timedelta(days=2)
        _sent_run(campaign, sent_at)
        run, step = _sent_run(campaign, sent_at + timedelta(days=1))
        sent = list(
            step.results().filter(outcome=Outcome.SENT).order_by("pk").values_list("pk", "lead_id", "phone")
        )
        replied = sent[::REPLIED_EVERY]
        when = sent_at + timedelta(days=1, hours=1)
        messages = InboundMessage.objects.bulk_create(
            (
                InboundMessage(
                    mdn=phone,
                    text="What time do you open?",
                    occurred_at=when,
                    received_at=when,
                    vibes_message_id=f"MO-{pk}",
                    dedupe_key=inbound_dedupe_key(
                        vibes_message_id=f"MO-{pk}", mdn=phone, text="", occurred_at=when
                    ),
                )
                for pk, _lead, phone in replied
            ),
            batch_size=5_000,
        )
        InboundMessage.leads.through.objects.bulk_create(
            (
                InboundMessage.leads.through(inboundmessage_id=message.pk, lead_id=lead)
                for message, (_pk, lead, _phone) in zip(messages, replied, strict=True)
            ),
            batch_size=5_000,
        )
        SmsReply.objects.bulk_create(
            (
                SmsReply(message=message, result_id=pk, run_step=step)
                for message, (pk, _lead, _phone) in zip(messages, replied, strict=True)
            ),
            batch_size=5_000,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        yield {"run": run, "numbers": [phone for _pk, _lead, phone in sent], "replied": len(replied)}
        transaction.set_rollback(True)


def test_a_reply_callback_finds_the_sms_it_answers(benchmark, big_run, post):
    # Numbers texted by both runs, each replying once.
    numbers = (big_run["numbers"][n] for n in itertools.count(1, 97))
    bodies = (
        json.dumps(
            {
                "callback_type": "inbound_sms",
                "message_id": f"BENCH-{n}",
                "from": number,
                "to": "12345",
                "text": "Y",
            }
        )
        for n, number in enumerate(numbers)
    )
    before = SmsReply.objects.count()
    benchmark.pedantic(post, setup=lambda: (("", next(bodies)), {}), rounds=30, warmup_rounds=3, iterations=1)
    assert SmsReply.objects.count() == before + 33  # every reply found its SMS
    assert benchmark.stats.stats.median < CALLBACK_TARGET


@pytest.fixture
def marketer(client, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(django_user_model.objects.create_superuser("bench", password="pw-bench-123"))
    return client


def _timed_get(benchmark, client, url, target):
    def get():
        response = client.get(url, headers={"HX-Request": "true", "HX-Target": "tab-panel"})
        assert response.status_code == 200
        return response

    response = benchmark.pedantic(get, rounds=30, warmup_rounds=2, iterations=1)
    assert benchmark.stats.stats.median < target
    return response.content.decode()


def test_the_results_of_a_run_with_replies(benchmark, big_run, marketer):
    run = big_run["run"]
    html = _timed_get(
        benchmark,
        marketer,
        f"/marketing-activities/campaigns/{run.campaign_id}/results/?run={run.pk}",
        RESULTS_TARGET,
    )
    assert f'data-replied="{big_run["replied"]}"' in html


def test_the_people_who_replied(benchmark, big_run, marketer):
    run = big_run["run"]
    url = f"/marketing-activities/campaigns/{run.campaign_id}/results/?run={run.pk}&step=0&replied=1"
    html = _timed_get(benchmark, marketer, url, RESULTS_TARGET)
    assert "What time do you open?" in html
