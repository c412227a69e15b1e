"""Communication limits (issue 17): at most N marketing SMS per number per day
and M per 7 days, across all campaigns; operational campaigns are exempt."""

import datetime
import os
import subprocess
import sys
import threading
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing_activities.models import CampaignRun, MarketingSms, Outcome
from marketing_activities.runner import run_create, run_execute, run_resume
from marketing_activities.runner.limits import marketing_sms_claim
from marketing_activities.runner.planner import plan_step
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.activities import activities_record
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.factories import CommunicationLimitsFactory, MarketingSmsFactory
from tests.marketing_activities.test_triggers import _subscribed, welcome_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory
from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def outcome_of(run, lead) -> Outcome:
    return Outcome(run.steps.get().results().get(lead=lead).outcome)


def texted(simulator) -> Counter:
    """How many SMS each number got."""
    return Counter(message["to"] for message in simulator.messages())


def test_the_planner_skips_a_number_at_its_limit(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    anna = subscribed(news, mobile_phone="+15551240001")
    ben = subscribed(news, mobile_phone="+15551240002")
    first = execute(make_campaign(("send", news)), vibes_simulator)
    assert first.steps.get().counts == {"sent": 2}
    carl = subscribed(news, mobile_phone="+15551240003")
    second = execute(make_campaign(("send", news)), vibes_simulator)
    assert second.steps.get().counts == {"sent": 1, "skipped_communication_limit": 2}
    assert [outcome_of(second, person) for person in (anna, ben, carl)] == [
        Outcome.SKIPPED_COMMUNICATION_LIMIT,
        Outcome.SKIPPED_COMMUNICATION_LIMIT,
        Outcome.SENT,
    ]
    assert texted(vibes_simulator) == {"+15551240001": 1, "+15551240002": 1, "+15551240003": 1}
    assert second.progress_done == second.progress_total == 1


def test_without_limits_every_campaign_texts_the_number(news, vibes_simulator):
    subscribed(news, mobile_phone="+15551240011")
    for _ in range(3):
        execute(make_campaign(("send", news)), vibes_simulator)
    assert texted(vibes_simulator) == {"+15551240011": 3}
    assert MarketingSms.objects.filter(phone="+15551240011").count() == 3  # counted all the same


def test_the_limit_per_day_counts_the_last_24_hours(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    yesterday_evening = subscribed(news, mobile_phone="+15551240021")
    day_before = subscribed(news, mobile_phone="+15551240022")
    MarketingSmsFactory(result__lead=yesterday_evening, sent_at=timezone.now() - 23 * HOUR)
    MarketingSmsFactory(result__lead=day_before, sent_at=timezone.now() - 25 * HOUR)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    assert outcome_of(run, yesterday_evening) == Outcome.SKIPPED_COMMUNICATION_LIMIT
    assert outcome_of(run, day_before) == Outcome.SENT


def test_the_limit_per_7_days_counts_the_last_7_days(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=5, per_week=2)
    this_week = subscribed(news, mobile_phone="+15551240031")
    across_weeks = subscribed(news, mobile_phone="+15551240032")
    for age in (2 * DAY, 6 * DAY):
        MarketingSmsFactory(result__lead=this_week, sent_at=timezone.now() - age)
    for age in (1 * DAY, 8 * DAY):
        MarketingSmsFactory(result__lead=across_weeks, sent_at=timezone.now() - age)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    assert outcome_of(run, this_week) == Outcome.SKIPPED_COMMUNICATION_LIMIT
    assert outcome_of(run, across_weeks) == Outcome.SENT
    # The SMS older than 7 days counts for no limit any more: it is gone.
    assert MarketingSms.objects.filter(phone="+15551240032").count() == 2


def test_an_operational_campaign_is_exempt_and_does_not_count(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    texted_today = subscribed(news, mobile_phone="+15551240041")
    fresh = subscribed(news, mobile_phone="+15551240042")
    MarketingSmsFactory(result__lead=texted_today, sent_at=timezone.now() - HOUR)
    order_updates = make_campaign(("send", news))
    order_updates.operational = True
    order_updates.save()
    run = execute(order_updates, vibes_simulator)
    assert run.steps.get().counts == {"sent": 2}  # the limit reached is no obstacle
    assert not MarketingSms.objects.filter(phone=fresh.mobile_phone).exists()
    # The operational SMS used none of the number's share: a marketing SMS still goes.
    marketing = execute(make_campaign(("send", news)), vibes_simulator)
    assert outcome_of(marketing, fresh) == Outcome.SENT
    assert outcome_of(marketing, texted_today) == Outcome.SKIPPED_COMMUNICATION_LIMIT
    assert texted(vibes_simulator) == {"+15551240041": 1, "+15551240042": 2}


def test_a_person_not_subscribed_keeps_that_reason_at_the_limit(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    texted_today = subscribed(news, mobile_phone="+15551240051")
    MarketingSmsFactory(result__lead=texted_today, sent_at=timezone.now() - HOUR)
    same_number = SubscriptionFactory(
        vibes_list=news, status="pending", lead=LeadFactory(mobile_phone="+15551240051")
    ).lead
    run = execute(make_campaign(("send", news)), vibes_simulator)
    assert outcome_of(run, texted_today) == Outcome.SKIPPED_COMMUNICATION_LIMIT
    assert outcome_of(run, same_number) == Outcome.SKIPPED_NOT_SUBSCRIBED


def test_subscribe_and_unsubscribe_steps_know_no_limit(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    texted_today = LeadFactory(mobile_phone="+15551240061")
    MarketingSmsFactory(result__lead=texted_today, sent_at=timezone.now() - HOUR)
    run = execute(make_campaign(("subscribe", news)), vibes_simulator)
    assert outcome_of(run, texted_today) == Outcome.PENDING


def test_a_number_texted_since_planning_is_skipped_just_before_the_call(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    anna = subscribed(news, mobile_phone="+15551240071")
    ben = subscribed(news, mobile_phone="+15551240072")
    # Planned, and stopped before any call (Vibes refused the credentials).
    run = execute(make_campaign(("send", news)), vibes_simulator, password="wrong")
    assert run.steps.get().counts == {"queued": 2}
    # Another campaign texts Anna between the plan and the calls.
    MarketingSmsFactory(result__lead=anna)
    run_resume(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get().counts == {"sent": 1, "skipped_communication_limit": 1}
    assert (outcome_of(run, anna), outcome_of(run, ben)) == (
        Outcome.SKIPPED_COMMUNICATION_LIMIT,
        Outcome.SENT,
    )
    assert texted(vibes_simulator) == {"+15551240072": 1}
    assert run.progress_done == run.progress_total == 1


def test_an_sms_vibes_refused_uses_none_of_the_numbers_share(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    anna = subscribed(news, mobile_phone="+15551240081")
    refused = execute(make_campaign(("send", news)), vibes_simulator, password="wrong")
    assert refused.status == CampaignRun.Status.FAILED
    assert outcome_of(refused, anna) == Outcome.QUEUED  # never sent: left for a resume
    assert not MarketingSms.objects.exists()
    sent = execute(make_campaign(("send", news)), vibes_simulator)
    assert outcome_of(sent, anna) == Outcome.SENT


def test_a_trigger_campaigns_sms_obey_the_limits(news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    anna = subscribed(news, mobile_phone="+15551240091")
    campaign = welcome_campaign(news, qualification="every_time")
    start = timezone.now().replace(microsecond=0)
    for second in range(2):
        when = start + datetime.timedelta(seconds=second)
        activities_record(activities=[_subscribed(anna, news, when, key=f"limits:{second}")])
        triggers_dispatch()
    first, second = campaign.runs.order_by("pk")
    assert (outcome_of(first, anna), outcome_of(second, anna)) == (
        Outcome.SENT,
        Outcome.SKIPPED_COMMUNICATION_LIMIT,
    )
    assert texted(vibes_simulator) == {"+15551240091": 1}


# --- Two campaigns at once ---------------------------------------------------------------


def _planned(campaign, simulator):
    """A run whose plan is made and none of whose calls (Vibes refused the credentials)."""
    run = execute(campaign, simulator, password="wrong")
    run_resume(run=run)
    return run


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
def test_two_concurrent_campaigns_and_a_limit_of_1_per_day_text_each_number_once(news, vibes_simulator):
    """Both plans are made before either calls, so only the check just before
    the call stands between a number and its second SMS; two workers call at once."""
    CommunicationLimitsFactory(per_day=1)
    people = [subscribed(news, mobile_phone=f"+1555125{n:04d}") for n in range(300)]
    runs = [_planned(make_campaign(("send", news)), vibes_simulator) for _ in range(2)]
    assert [run.steps.get().counts for run in runs] == [{"queued": 300}] * 2
    start = threading.Barrier(2)
    errors = []

    def work(run):
        try:
            start.wait(DEADLINE)
            run_execute(run=run, client=make_client(vibes_simulator.url), concurrency=4)
        except Exception as error:  # reported below, with the test's own assertion
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(run,)) for run in runs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(DEADLINE * 5)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []
    assert texted(vibes_simulator) == {person.mobile_phone: 1 for person in people}
    for run in runs:
        run.refresh_from_db()
        assert run.status == CampaignRun.Status.COMPLETED
    outcomes = Counter()
    for run in runs:
        outcomes.update(Outcome(o) for o in run.steps.get().results().values_list("outcome", flat=True))
    assert outcomes == {Outcome.SENT: 300, Outcome.SKIPPED_COMMUNICATION_LIMIT: 300}
    assert MarketingSms.objects.count() == 300


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
def test_two_campaigns_run_by_two_processes_at_once_text_each_number_once(news, vibes_simulator, settings):
    """As above, with each run worked on by a `run_campaign --resume` process of its own.

    The processes rarely mark the same numbers in the same milliseconds (the
    one that starts first stays ahead), so this checks the check across
    processes; the race on one number is the threads' test above."""
    CommunicationLimitsFactory(per_day=1)
    people = [subscribed(news, mobile_phone=f"+1555126{n:04d}") for n in range(200)]
    runs = []
    for _ in range(2):
        run = execute(make_campaign(("send", news)), vibes_simulator, password="wrong")
        assert run.status == CampaignRun.Status.FAILED  # planned, nobody called: to be resumed
        runs.append(run)
    env = {
        **os.environ,
        "ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "limits-test-secret",
        "DEBUG": "true",
        "VIBES_PLATFORM_URL": vibes_simulator.url,
        "VIBES_CONNECT_URL": vibes_simulator.url,
        "VIBES_COMPANY_KEY": settings.VIBES_COMPANY_KEY,
        "VIBES_USERNAME": settings.VIBES_USERNAME,
        "VIBES_PASSWORD": settings.VIBES_PASSWORD,
        "VIBES_RATE_LIMIT": "0",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_campaign", "--resume", str(run.pk), "--concurrency", "4"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for run in runs
    ]
    for worker in workers:
        _out, errors = worker.communicate(timeout=DEADLINE * 5)
        assert worker.returncode == 0, errors.decode()[-2000:]
    assert texted(vibes_simulator) == {person.mobile_phone: 1 for person in people}
    outcomes = Counter()
    for run in runs:
        outcomes.update(Outcome(o) for o in run.steps.get().results().values_list("outcome", flat=True))
    assert outcomes == {Outcome.SENT: 200, Outcome.SKIPPED_COMMUNICATION_LIMIT: 200}


# --- What it costs -----------------------------------------------------------------------


def test_the_check_before_the_call_is_four_queries_whatever_the_batch(news):
    CommunicationLimitsFactory(per_day=1, per_week=3)
    for size in (5, 50):
        leads = [LeadFactory() for _ in range(size)]
        for lead in leads[: size // 2]:
            MarketingSmsFactory(result__lead=lead)
        rows = [(10_000_000 + n, lead.pk, lead.mobile_phone) for n, lead in enumerate(leads)]
        # The limits, the lock on the numbers (PostgreSQL), the old and repeated SMS, the counts, the insert.
        expected = 5 if connection.vendor == "postgresql" else 4
        with CaptureQueriesContext(connection) as queries:
            over = marketing_sms_claim(rows=rows)
        assert len(queries.captured_queries) == expected
        assert len(over) == size // 2


def test_planning_with_limits_takes_the_same_queries_for_few_and_many(news):
    CommunicationLimitsFactory(per_day=1, per_week=3)
    counted = []
    for size in (3, 30):
        campaign = make_campaign(("send", news))
        for _ in range(size):
            person = subscribed(news)
            MarketingSmsFactory(result__lead=person)
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        step = run.steps.get()
        with CaptureQueriesContext(connection) as queries:
            plan_step(step)
        counted.append(len(queries.captured_queries))
        assert step.counts[Outcome.SKIPPED_COMMUNICATION_LIMIT.code] >= size
    assert counted[0] == counted[1]
