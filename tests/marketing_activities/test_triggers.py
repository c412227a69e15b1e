"""Trigger campaigns: activities fire active trigger campaigns, and the flow
runs for that one person with every rule of a batch run."""

import datetime
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from marketing_activities import services
from marketing_activities.models import CampaignRun, TriggerFiring
from marketing_activities.runner import CampaignCannotRun, run_create
from marketing_activities.triggers import activities_match, trigger_run_start, triggers_dispatch
from smscampaigns.activities import NewActivity, activities_record
from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import make_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db

NUMBER = "+15551237000"


def subscribed_payload(mdn=NUMBER, *, list_id="101", opt_in="2026-11-01T10:00:00Z"):
    return {
        "person": {"person_key": "PK-T"},
        "subscription_list": {"id": list_id},
        "mobile_phone": {"mdn": mdn},
        "opt_in_date": opt_in,
    }


def welcome_campaign(news, *, rule=None, qualification="every_time", active=True):
    """A trigger campaign: "Subscribes to Vibes List" news, then Send SMS on news."""
    campaign = make_campaign(("send", news), rule=rule, qualification=qualification)
    campaign.smart_list.definition = {
        "logic": "all",
        "rules": [rule] if rule else [],
        "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": str(news.pk)}],
    }
    campaign.smart_list.save()
    if active:
        services.campaign_set_active(campaign=campaign, active=True)
    return campaign


@pytest.fixture
def inline(settings):
    """The dispatcher runs at commit, in this process."""
    settings.RUNNER_BACKGROUND = "inline"


@pytest.fixture
def post_committed(vibes_callback_post, django_capture_on_commit_callbacks):
    """Post a callback and run what its commit starts (the dispatcher, the run)."""

    def post(payload, event_type):
        with django_capture_on_commit_callbacks(execute=True):
            response = vibes_callback_post(payload, event_type=event_type)
        assert response.status_code == 200, response.content
        return response

    return post


def test_a_subscription_callback_delivered_three_times_makes_one_activity_and_one_run(
    news, vibes_simulator, inline, post_committed
):
    lead = LeadFactory(mobile_phone=NUMBER)
    campaign = welcome_campaign(news)
    for _ in range(3):
        post_committed(subscribed_payload(), "subscription_added")

    assert Activity.objects.filter(lead=lead, kind="subscribed_vibes_list").count() == 1
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.trigger == "trigger"
    assert run.status == "completed"
    assert run.steps.get().counts == {"sent": 1}
    assert [message["to"] for message in vibes_simulator.messages()] == [NUMBER]


def test_a_person_who_fails_the_filters_is_not_run(news, vibes_simulator, inline, post_committed):
    LeadFactory(mobile_phone=NUMBER, country="DE")
    campaign = welcome_campaign(news, rule={"field": "country", "op": "is", "value": "US"})
    post_committed(subscribed_payload(), "subscription_added")

    assert TriggerFiring.objects.get(campaign=campaign).status == "filtered_out"
    assert not campaign.runs.exists()
    assert vibes_simulator.messages() == []


def test_an_inactive_trigger_campaign_is_not_fired(news, vibes_simulator, inline, post_committed):
    LeadFactory(mobile_phone=NUMBER)
    campaign = welcome_campaign(news, active=False)
    post_committed(subscribed_payload(), "subscription_added")

    assert not TriggerFiring.objects.filter(campaign=campaign).exists()
    assert Activity.objects.get().dispatched_at is not None
    assert vibes_simulator.messages() == []


def test_a_trigger_for_another_list_does_not_fire(news, vibes_simulator, inline, post_committed):
    LeadFactory(mobile_phone=NUMBER)
    other = SubscriptionFactory(status="unsubscribed").vibes_list
    campaign = welcome_campaign(news)
    campaign.smart_list.definition["triggers"][0]["vibes_list"] = str(other.pk)
    campaign.smart_list.save()
    post_committed(subscribed_payload(), "subscription_added")

    assert not TriggerFiring.objects.exists()
    assert vibes_simulator.messages() == []


def test_two_people_on_one_number_subscribed_by_one_callback_get_one_sms(
    news, vibes_simulator, inline, post_committed
):
    LeadFactory(mobile_phone=NUMBER)
    LeadFactory(mobile_phone=NUMBER)
    welcome_campaign(news)
    post_committed(subscribed_payload(), "subscription_added")

    assert Activity.objects.count() == 2
    assert len(vibes_simulator.messages()) == 1


def test_two_activities_for_one_number_in_the_same_second_text_it_once_across_runs(news, vibes_simulator):
    first, second = LeadFactory(mobile_phone=NUMBER), LeadFactory(mobile_phone=NUMBER)
    campaign = welcome_campaign(news)
    when = timezone.now().replace(microsecond=0)
    for lead in (first, second):
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
        activities_record(activities=[_subscribed(lead, news, when, key=f"test:{lead.pk}")])
        # Each its own dispatch, so each its own run: the planner's dedupe cannot help.
        triggers_dispatch()

    assert dict(TriggerFiring.objects.values_list("lead_id", "status")) == {
        first.pk: "member",
        second.pk: "same_number",
    }
    assert campaign.runs.count() == 1
    assert len(vibes_simulator.messages()) == 1


def test_an_activity_offered_twice_is_recorded_once(news):
    lead = LeadFactory(mobile_phone=NUMBER)
    when = timezone.now()
    activities_record(activities=[_subscribed(lead, news, when, key="same")])
    activities_record(activities=[_subscribed(lead, news, when, key="same")])
    assert Activity.objects.count() == 1


def test_under_the_rule_once_a_person_runs_through_the_flow_once(news, vibes_simulator):
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    campaign = welcome_campaign(news, qualification="once")
    start = timezone.now().replace(microsecond=0)
    for second in range(2):
        when = start + datetime.timedelta(seconds=second)
        activities_record(activities=[_subscribed(lead, news, when, key=f"once:{second}")])
        triggers_dispatch()

    assert list(TriggerFiring.objects.order_by("pk").values_list("status", flat=True)) == [
        "member",
        "already_ran",
    ]
    assert len(vibes_simulator.messages()) == 1
    assert campaign.runs.count() == 1


def test_every_time_a_person_runs_through_the_flow_for_each_activity(news, vibes_simulator):
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    campaign = welcome_campaign(news, qualification="every_time")
    start = timezone.now().replace(microsecond=0)
    for second in range(2):
        when = start + datetime.timedelta(seconds=second)
        activities_record(activities=[_subscribed(lead, news, when, key=f"every:{second}")])
        triggers_dispatch()

    assert campaign.runs.count() == 2
    assert len(vibes_simulator.messages()) == 2


def test_deactivating_stops_the_firings_that_wait(news, vibes_simulator):
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    campaign = welcome_campaign(news)
    activities_record(activities=[_subscribed(lead, news, timezone.now(), key="waits")])
    activities_match()
    services.campaign_set_active(campaign=campaign, active=False)
    triggers_dispatch()

    assert TriggerFiring.objects.get().status == "inactive"
    assert not campaign.runs.exists()
    assert vibes_simulator.messages() == []


def test_a_blocklisted_person_is_fired_but_never_texted(news, vibes_simulator):
    lead = LeadFactory(mobile_phone=NUMBER, blocklisted=True)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    campaign = welcome_campaign(news)
    activities_record(activities=[_subscribed(lead, news, timezone.now(), key="blocked")])
    triggers_dispatch()

    assert campaign.runs.get().steps.get().counts == {"skipped_blocklisted": 1}
    assert vibes_simulator.messages() == []


def test_run_triggers_matches_what_waits_and_says_what_it_did(news, vibes_simulator, capsys):
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    welcome_campaign(news)
    activities_record(activities=[_subscribed(lead, news, timezone.now(), key="cron")])
    call_command("run_triggers")

    assert "1 activities matched: 1 campaigns fired, 1 runs worked." in capsys.readouterr().out
    assert len(vibes_simulator.messages()) == 1


def test_a_trigger_campaign_is_never_run_as_a_batch(news):
    campaign = welcome_campaign(news, active=False)
    with pytest.raises(CampaignCannotRun, match="trigger campaign"):
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)


def _subscribed(lead, vibes_list, when, *, key):
    return NewActivity(
        kind=Activity.Kind.SUBSCRIBED_TO_VIBES_LIST,
        lead_id=lead.pk,
        key=key,
        occurred_at=when,
        source="test",
        attributes={"vibes_list": vibes_list.pk, "acquisition_campaign": ""},
    )


def test_a_run_whose_worker_died_is_finished_and_the_firings_behind_it_run_next(news, vibes_simulator):
    """None lost, none twice: a dispatcher killed after taking firings into a run."""
    first, second = LeadFactory(mobile_phone=NUMBER), LeadFactory(mobile_phone="+15551237001")
    campaign = welcome_campaign(news)
    for lead in (first, second):
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    activities_record(activities=[_subscribed(first, news, timezone.now(), key="died")])
    activities_match()
    orphan = trigger_run_start(campaign=campaign)  # ... and the worker died before working on it
    CampaignRun.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=1))
    activities_record(activities=[_subscribed(second, news, timezone.now(), key="behind")])
    triggers_dispatch()

    assert sorted(message["to"] for message in vibes_simulator.messages()) == sorted([NUMBER, "+15551237001"])
    assert set(campaign.runs.values_list("status", flat=True)) == {"completed"}
    assert campaign.runs.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_firing_that_waits_while_the_campaigns_run_finishes_gets_a_run_at_once(news, inline):
    """PostgreSQL: the dispatcher's new run waits for the finishing one and then takes the
    firing its worker could no longer see (not left to the sweep a minute later).

    `inline`: the dispatch the activity asks for runs at its commit, in this thread,
    and finds the campaign's run active; a dispatcher of its own in a background
    thread would race this test's dispatcher for the firing."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's write lock lets no dispatcher in while a run finishes")
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    campaign = welcome_campaign(news)
    finishing_run = CampaignRun.objects.create(
        campaign=campaign, trigger=CampaignRun.Trigger.ACTIVITY, status=CampaignRun.Status.RUNNING
    )
    activities_record(activities=[_subscribed(lead, news, timezone.now(), key="behind")])
    activities_match()
    finishing, finish, started = threading.Event(), threading.Event(), {}

    def worker_finishing_its_run():
        try:
            with transaction.atomic():
                CampaignRun.objects.filter(pk=finishing_run.pk).update(status=CampaignRun.Status.COMPLETED)
                finishing.set()
                finish.wait(60)
        finally:
            connection.close()

    def dispatcher():
        try:
            started["run"] = trigger_run_start(campaign=campaign)
        finally:
            connection.close()

    worker = threading.Thread(target=worker_finishing_its_run)
    worker.start()
    assert finishing.wait(60)
    dispatching = threading.Thread(target=dispatcher)
    dispatching.start()

    def dispatcher_waits_for_a_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return cursor.fetchone()[0] > 0

    wait_until(
        lambda: "run" in started or dispatcher_waits_for_a_lock(), what="the dispatcher to wait or answer"
    )
    finish.set()
    worker.join(60)
    dispatching.join(60)
    assert started["run"] is not None
    assert list(TriggerFiring.objects.values_list("status", flat=True)) == ["member"]
