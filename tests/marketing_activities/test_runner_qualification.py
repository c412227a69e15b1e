"""The qualification rule "once every N days / weeks / months" (issue 17), with the clock moved."""

import datetime
import zoneinfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing_activities import services
from marketing_activities.models import CampaignRun, Outcome, SmartCampaign, TriggerFiring
from marketing_activities.runner import NobodyLeftToRun, check_anyone_left, run_abort, run_create
from marketing_activities.runner.audience_counts import campaign_audience_counts
from marketing_activities.runner.planner import plan_step
from marketing_activities.runner.preview import run_now_preview_of
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.activities import NewActivity, activities_record
from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

UTC = zoneinfo.ZoneInfo("UTC")
DAY_0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def once_every(campaign, period, unit):
    SmartCampaign.objects.filter(pk=campaign.pk).update(
        qualification_rule=SmartCampaign.QualificationRule.ONCE_EVERY,
        qualification_period=period,
        qualification_period_unit=unit,
    )
    campaign.refresh_from_db()
    return campaign


def texted(simulator):
    return sorted(message["to"] for message in simulator.messages())


def outcome_of(run, lead):
    return Outcome(run.steps.get(position=0).results().get(lead=lead).outcome)


def test_once_every_7_days_over_three_runs_with_the_clock_moved(news, vibes_simulator):
    """Day 0 texted, day 3 skipped, day 8 texted again."""
    ann = subscribed(news, mobile_phone="+15551230001")
    campaign = once_every(make_campaign(("send", news)), 7, "days")

    with time_machine.travel(DAY_0):
        first = execute(campaign, vibes_simulator)
    assert first.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == ["+15551230001"]

    bob = subscribed(news, mobile_phone="+15551230002")  # new on day 3: not held back by Ann's rule
    with time_machine.travel(DAY_0 + datetime.timedelta(days=3)):
        second = execute(campaign, vibes_simulator)
    assert outcome_of(second, ann) == Outcome.SKIPPED_RAN_RECENTLY
    assert outcome_of(second, bob) == Outcome.SENT
    assert second.steps.get(position=0).counts["skipped_ran_recently"] == 1
    assert texted(vibes_simulator) == ["+15551230001", "+15551230002"]

    with time_machine.travel(DAY_0 + datetime.timedelta(days=8)):
        third = execute(campaign, vibes_simulator)
    # Ann's last run through the flow was day 0 (day 3 skipped her): 8 days ago. Bob's was day 3.
    assert outcome_of(third, ann) == Outcome.SENT
    assert outcome_of(third, bob) == Outcome.SKIPPED_RAN_RECENTLY
    assert texted(vibes_simulator) == ["+15551230001", "+15551230001", "+15551230002"]


def plan_at(campaign, moment, **options):
    """The campaign's first step planned at `moment`, in a run then marked completed.
    Someone new joins the list first, so the run is never refused for nobody left."""
    subscribed(campaign.steps()[0].vibes_list)
    with time_machine.travel(moment, tick=False):
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, **options)
        step = run.steps.get(position=0)
        plan_step(step)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    return run


def test_a_period_counts_whole_days_so_a_weekly_run_a_little_earlier_is_not_skipped(news):
    """The day's time does not matter: ran Monday 09:00:30, runs again next Monday 09:00:00."""
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 1, "weeks")
    plan_at(campaign, DAY_0 + datetime.timedelta(seconds=30))
    assert outcome_of(plan_at(campaign, DAY_0 + datetime.timedelta(days=6, hours=14)), ann) == (
        Outcome.SKIPPED_RAN_RECENTLY
    )
    assert outcome_of(plan_at(campaign, DAY_0 + datetime.timedelta(days=7)), ann) == Outcome.QUEUED


def test_once_every_month_counts_calendar_months_and_the_last_day_of_a_shorter_one(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 1, "months")
    jan_31 = datetime.datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    plan_at(campaign, jan_31)
    # A month back from 28 February is 28 January: the run of the 31st is within it.
    assert outcome_of(plan_at(campaign, datetime.datetime(2026, 2, 28, 9, tzinfo=UTC)), ann) == (
        Outcome.SKIPPED_RAN_RECENTLY
    )
    # A month back from 3 March is 3 February: 31 January is older (the 28 February run skipped her).
    assert outcome_of(plan_at(campaign, datetime.datetime(2026, 3, 3, 9, tzinfo=UTC)), ann) == Outcome.QUEUED


def test_once_every_2_months_holds_for_two_months(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 2, "months")
    plan_at(campaign, datetime.datetime(2026, 1, 15, tzinfo=UTC))
    march_14 = datetime.datetime(2026, 3, 14, 23, tzinfo=UTC)
    assert outcome_of(plan_at(campaign, march_14), ann) == Outcome.SKIPPED_RAN_RECENTLY
    march_15 = datetime.datetime(2026, 3, 15, tzinfo=UTC)
    assert outcome_of(plan_at(campaign, march_15), ann) == Outcome.QUEUED


def test_older_runs_do_not_count(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 3, "days")
    plan_at(campaign, DAY_0)
    plan_at(campaign, DAY_0 + datetime.timedelta(days=3))
    # Day 4: the run of day 3 counts (within 3 days), the one of day 0 does not matter either way.
    assert outcome_of(plan_at(campaign, DAY_0 + datetime.timedelta(days=4)), ann) == (
        Outcome.SKIPPED_RAN_RECENTLY
    )


def test_cancelled_rows_of_an_aborted_run_do_not_count_as_running_through(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 7, "days")
    with time_machine.travel(DAY_0, tick=False):
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        plan_step(run.steps.get(position=0))
    run_abort(run=run)
    assert outcome_of(run, ann) == Outcome.CANCELLED
    assert outcome_of(plan_at(campaign, DAY_0 + datetime.timedelta(days=1)), ann) == Outcome.QUEUED


def test_dry_runs_do_not_count_as_running_through(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 7, "days")
    plan_at(campaign, DAY_0, dry_run=True)
    assert outcome_of(plan_at(campaign, DAY_0 + datetime.timedelta(days=1)), ann) == Outcome.QUEUED


def test_a_later_step_keeps_the_first_steps_verdict(news):
    ann = subscribed(news)
    campaign = once_every(make_campaign(("send", news), ("send", news)), 7, "days")
    plan_at(campaign, DAY_0)
    subscribed(news)  # someone new, so the run is not refused
    with time_machine.travel(DAY_0 + datetime.timedelta(days=1), tick=False):
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        for step in run.steps.order_by("position"):
            plan_step(step)
    assert [Outcome(step.results().get(lead=ann).outcome) for step in run.steps.order_by("position")] == [
        Outcome.SKIPPED_RAN_RECENTLY,
        Outcome.SKIPPED_RAN_RECENTLY,
    ]


def test_when_everyone_ran_within_the_period_nobody_is_left_and_it_says_why(news):
    subscribed(news)
    subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 2, "weeks")
    plan_at(campaign, DAY_0)
    with time_machine.travel(DAY_0 + datetime.timedelta(days=5)), pytest.raises(NobodyLeftToRun) as error:
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.SCHEDULE)
    assert error.value.problems == [
        "Nobody is left to qualify: all 3 people the smart list picks have run through this flow within "
        "the last 2 weeks, and each person can run through it once every 2 weeks."
    ]
    with time_machine.travel(DAY_0 + datetime.timedelta(days=14)):
        check_anyone_left(campaign)  # nothing raised: the period is over


def test_the_run_now_counts_skip_who_ran_within_the_period_as_the_plan_does(news):
    ann = subscribed(news)
    subscribed(news)
    campaign = once_every(make_campaign(("send", news)), 7, "days")
    plan_at(campaign, DAY_0)
    LeadFactory(country="US")  # new, and not subscribed
    subscribed(news)  # new
    with time_machine.travel(DAY_0 + datetime.timedelta(days=2), tick=False):
        preview = run_now_preview_of(campaign_audience_counts(campaign=campaign))
        counted = {label: n for label, n, _blockers in preview.steps[0].counts}
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        step = run.steps.get(position=0)
        plan_step(step)
    # Ann, the other one and plan_at's newcomer ran on day 0.
    assert counted == {
        Outcome.SKIPPED_RAN_RECENTLY.label: 3,
        Outcome.SKIPPED_NOT_SUBSCRIBED.label: 1,
        "will get the SMS": 1,
    }
    assert step.counts == {"skipped_ran_recently": 3, "skipped_not_subscribed": 1, "queued": 1}
    assert Outcome(step.results().get(lead=ann).outcome) == Outcome.SKIPPED_RAN_RECENTLY


@pytest.mark.parametrize("earlier_runs", [1, 6])
def test_planning_under_once_every_costs_the_same_queries_whatever_the_people(news, earlier_runs):
    """Set-based: one INSERT ... SELECT per earlier run in the period, never a query per person."""
    queries = []
    for people in (3, 40):
        campaign = once_every(make_campaign(("send", news)), 30, "days")
        for _ in range(people):
            subscribed(news)
        for day in range(earlier_runs):
            plan_at(campaign, DAY_0 + datetime.timedelta(days=day))
        subscribed(news)  # someone new, so a run is not refused
        with time_machine.travel(DAY_0 + datetime.timedelta(days=earlier_runs), tick=False):
            run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
            step = run.steps.get(position=0)
            with CaptureQueriesContext(connection) as captured:
                plan_step(step)
        queries.append(len(captured.captured_queries))
        assert step.counts["skipped_ran_recently"] >= people
        CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    assert queries[0] == queries[1]


def test_a_trigger_campaign_under_once_every_7_days_runs_a_person_again_after_the_period(
    news, vibes_simulator
):
    ann = subscribed(news, mobile_phone="+15551230009")
    campaign = make_campaign(("send", news), rule={"field": "country", "op": "is", "value": "US"})
    campaign.smart_list.definition = {
        **campaign.smart_list.definition,
        "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": str(news.pk)}],
    }
    campaign.smart_list.save()
    once_every(campaign, 7, "days")
    services.campaign_set_active(campaign=campaign, active=True)
    for day in (0, 3, 8):
        moment = DAY_0 + datetime.timedelta(days=day)
        with time_machine.travel(moment):
            activity = NewActivity(
                kind=Activity.Kind.SUBSCRIBED_TO_VIBES_LIST,
                lead_id=ann.pk,
                key=f"every-7:{day}",
                occurred_at=moment,
                source="test",
                attributes={"vibes_list": news.pk, "acquisition_campaign": ""},
            )
            activities_record(activities=[activity])
            triggers_dispatch()
    assert list(TriggerFiring.objects.order_by("pk").values_list("status", flat=True)) == [
        "member",
        "already_ran",
        "member",
    ]
    assert len(vibes_simulator.messages()) == 2


# --- Setting the rule ------------------------------------------------------------------------------


def schedule_post(**fields):
    return {"action": "save", "qualification_rule": "once_every", "schedule": "none", **fields}


def test_the_schedule_tab_saves_once_every_n_weeks(staff_client, news):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(qualification_period="3", qualification_period_unit="weeks"),
        headers=HTMX,
    )
    assert "Schedule saved." in response.content.decode()
    campaign.refresh_from_db()
    assert (
        campaign.qualification_rule,
        campaign.qualification_period,
        campaign.qualification_period_unit,
    ) == (
        "once_every",
        3,
        "weeks",
    )
    # Another rule drops the period, so a stale one never comes back.
    staff_client.post(url("campaign_schedule", campaign.pk), schedule_post(qualification_rule="once"))
    campaign.refresh_from_db()
    assert (campaign.qualification_period, campaign.qualification_period_unit) == (None, "")


@pytest.mark.parametrize("period", ["", "0", "-1", "seven", "1.5"])
def test_once_every_without_a_whole_number_of_1_or_more_is_refused_with_a_clear_message(
    staff_client, news, period
):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(
            qualification_period=period,
            qualification_period_unit="days",
            schedule="daily",
            run_time="07:45",
        ),
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Qualification rule “once every”: enter a whole number" in html
    assert 'value="07:45"' in html  # nothing valid is lost
    assert SmartCampaign.objects.get(pk=campaign.pk).qualification_rule == "every_time"


def test_once_every_without_a_unit_is_refused_with_a_clear_message(staff_client, news):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(qualification_period="2", qualification_period_unit=""),
        headers=HTMX,
    )
    assert "Qualification rule “once every”: choose days, weeks or months." in response.content.decode()


def test_the_admin_refuses_once_every_without_its_period(admin_client, news):
    campaign = make_campaign(("send", news))
    change = reverse("admin:marketing_activities_smartcampaign_change", args=[campaign.pk])
    data = {
        "name": campaign.name,
        "description": "",
        "program": campaign.program_id,
        "smart_list": campaign.smart_list_id,
        "qualification_rule": "once_every",
        "qualification_period": "",
        "qualification_period_unit": "months",
        "schedule": "none",
        "flow_steps-TOTAL_FORMS": "0",
        "flow_steps-INITIAL_FORMS": "0",
    }
    html = admin_client.post(change, data).content.decode()
    assert "Qualification rule “once every”: enter a whole number of 1 to 9,999." in html
    data["qualification_period"] = "2"
    assert admin_client.post(change, data).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.qualification_rule, campaign.qualification_period_display) == ("once_every", "2 months")


def test_the_schedule_tab_offers_once_every_to_batch_and_trigger_campaigns(staff_client, news):
    batch = make_campaign(("send", news))
    trigger = make_campaign(("send", news))
    trigger.smart_list.definition = {
        "logic": "all",
        "rules": [],
        "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": str(news.pk)}],
    }
    trigger.smart_list.save()
    for campaign in (batch, trigger):
        html = staff_client.get(url("campaign_schedule", campaign.pk), headers=HTMX).content.decode()
        assert 'value="once_every"' in html
        assert 'name="qualification_period"' in html and 'name="qualification_period_unit"' in html
    response = staff_client.post(
        url("campaign_schedule", trigger.pk),
        schedule_post(qualification_period="2", qualification_period_unit="days"),
        headers=HTMX,
    )
    assert "Schedule saved." in response.content.decode()
    trigger.refresh_from_db()
    assert trigger.qualification_period_display == "2 days"


@pytest.mark.parametrize(
    ("period", "unit", "words"),
    [(1, "weeks", "week"), (1, "days", "day"), (1, "months", "month"), (3, "weeks", "3 weeks")],
)
def test_a_period_of_one_reads_once_every_week_not_once_every_1_week(period, unit, words):
    campaign = SmartCampaign(qualification_period=period, qualification_period_unit=unit)
    assert campaign.qualification_period_display == words
