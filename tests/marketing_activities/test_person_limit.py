"""Smart campaign limits (issue 17): a run refused when too many people qualify, or capped."""

import datetime
from html import escape

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import AudienceCount, CampaignRun, Outcome, RunResult, SmartCampaign
from marketing_activities.runner import CampaignCannotRun, campaign_preview, run_create
from marketing_activities.runner.planner import plan_step
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.ui_helpers import HTMX, run_now_counted, url
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

REFUSAL = (
    "Refused by the campaign's person limit: 3 people qualify, more than the limit of 2. Nobody was called."
)


def limited(campaign, **limits):
    SmartCampaign.objects.filter(pk=campaign.pk).update(**limits)
    campaign.refresh_from_db()
    return campaign


def outcomes(run, position=0):
    step = run.steps.get(position=position)
    return {row.lead_id: Outcome(row.outcome) for row in step.results()}


# --- Refusing a run ------------------------------------------------------------------------------


def test_a_run_is_refused_when_more_people_qualify_than_the_limit_and_nobody_is_called(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    run = execute(campaign, vibes_simulator)
    assert (run.status, run.error) == (CampaignRun.Status.FAILED, REFUSAL)
    assert vibes_simulator.messages() == []
    assert not RunResult.objects.exists()  # nothing was planned either
    assert run.steps.get().status == "pending"


def test_as_many_people_as_the_limit_run(news, vibes_simulator):
    for _ in range(2):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    assert execute(campaign, vibes_simulator).status == CampaignRun.Status.COMPLETED
    assert len(vibes_simulator.messages()) == 2


def test_people_the_qualification_rule_skips_do_not_qualify(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = make_campaign(("send", news), qualification="once")
    execute(campaign, vibes_simulator)
    subscribed(news)
    subscribed(news)
    limited(campaign, person_limit_refuse_above=2)
    run = execute(campaign, vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get().counts == {"already_ran": 3, "sent": 2}


def test_run_campaign_says_why_the_person_limit_refused_the_run(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", str(campaign.pk), verbosity=0)
    run = CampaignRun.objects.get(campaign=campaign)
    assert error.value.returncode == 1
    assert str(error.value) == f"Run {run.pk} failed: {REFUSAL}"
    assert vibes_simulator.messages() == []


def test_a_refused_run_runs_once_the_limit_is_raised_and_it_is_resumed(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    with pytest.raises(CommandError):
        call_command("run_campaign", str(campaign.pk), verbosity=0)
    limited(campaign, person_limit_refuse_above=None)
    run = CampaignRun.objects.get(campaign=campaign)
    call_command("run_campaign", "--resume", str(run.pk), verbosity=0)
    run.refresh_from_db()
    assert (run.status, run.error) == (CampaignRun.Status.COMPLETED, "")
    assert len(vibes_simulator.messages()) == 3


def test_the_schedule_tab_and_results_show_why_the_run_was_refused(staff_client, news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    run = execute(campaign, vibes_simulator)
    schedule = staff_client.get(url("campaign_schedule", campaign.pk)).content.decode()
    assert f"The last run, {run.pk} of " in schedule and escape(REFUSAL) in schedule
    results = staff_client.get(url("campaign_results", campaign.pk) + f"?run={run.pk}").content.decode()
    assert escape(REFUSAL) in results


def test_a_scheduled_run_the_limit_refuses_is_recorded_with_the_reason(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    now = timezone.now()
    SmartCampaign.objects.filter(pk=campaign.pk).update(
        is_active=True,
        schedule="daily",
        run_time=datetime.time(9),
        next_run_at=now - datetime.timedelta(seconds=5),
    )
    call_command("run_due_campaigns")
    run = CampaignRun.objects.get(campaign=campaign)
    assert (run.trigger, run.status, run.error) == ("schedule", CampaignRun.Status.FAILED, REFUSAL)
    assert vibes_simulator.messages() == []
    campaign.refresh_from_db()
    assert campaign.next_run_at > now  # the schedule moves on


def counted(staff_client, campaign):
    return run_now_counted(staff_client, campaign)


def admin_counted(admin_client, campaign):
    """The admin's confirmation once its count ran, as its poll shows it."""
    selected = {ACTION_CHECKBOX_NAME: [campaign.pk]}
    with override_settings(RUNNER_BACKGROUND="inline"), TestCase.captureOnCommitCallbacks(execute=True):
        admin_client.get(reverse("admin:marketing_activities_smartcampaign_run_now"), selected)
    counts = AudienceCount.objects.filter(campaign=campaign).values_list("pk", flat=True)
    return admin_client.get(
        reverse("admin:marketing_activities_smartcampaign_run_now_progress"),
        {**selected, "counting": list(counts)},
    ).content.decode()


def test_the_run_now_confirmation_says_the_run_would_be_refused_and_offers_no_run(staff_client, news):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    html = counted(staff_client, campaign)
    assert escape(REFUSAL) in html
    assert "raise or clear the person limit" in html
    assert "Yes, run now" not in html
    assert not campaign.runs.exists()


@pytest.mark.parametrize(
    "refuse_above, rule",
    [
        (1000, "a run is refused when more than 1,000 people qualify."),
        (1, "a run is refused when more than one person qualifies."),  # never "1 people"
    ],
)
def test_the_run_now_confirmation_shows_a_limit_that_lets_the_run_go(staff_client, news, refuse_above, rule):
    subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=refuse_above)
    html = counted(staff_client, campaign)
    assert f"Person limit: {rule} 1 person qualifies, so it runs." in html
    assert "Yes, run now" in html


def test_the_admins_run_now_and_preview_say_the_run_would_be_refused(admin_client, news):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_refuse_above=2)
    page = admin_counted(admin_client, campaign)
    assert escape(REFUSAL) in page and 'value="Yes, run now"' not in page
    with pytest.raises(CampaignCannotRun) as error:
        campaign_preview(campaign=campaign)
    assert error.value.problems == [REFUSAL]
    assert not campaign.runs.exists()


# --- Capping a run -------------------------------------------------------------------------------


def test_a_cap_calls_exactly_n_people_and_skips_the_rest_in_lead_id_order(news, vibes_simulator):
    people = [subscribed(news, mobile_phone=f"+1555123010{n}") for n in range(5)]
    campaign = limited(make_campaign(("send", news)), person_limit_per_run=3)
    run = execute(campaign, vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    assert sorted(message["to"] for message in vibes_simulator.messages()) == [
        person.mobile_phone for person in people[:3]
    ]
    assert outcomes(run) == {
        **{person.pk: Outcome.SENT for person in people[:3]},
        **{person.pk: Outcome.SKIPPED_PERSON_LIMIT for person in people[3:]},
    }
    assert run.steps.get().counts == {"sent": 3, "skipped_person_limit": 2}


def test_the_cap_counts_people_who_qualify_not_calls(news):
    """As Marketo's smart campaign limit: the first N who qualify run through the flow."""
    blocked = subscribed(news, blocklisted=True)
    reached = subscribed(news)
    beyond = subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_per_run=2)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    plan_step(run.steps.get())
    assert outcomes(run) == {
        blocked.pk: Outcome.SKIPPED_BLOCKLISTED,
        reached.pk: Outcome.QUEUED,
        beyond.pk: Outcome.SKIPPED_PERSON_LIMIT,
    }


def test_under_once_the_next_run_reaches_the_people_beyond_the_cap(news, vibes_simulator):
    people = [subscribed(news) for _ in range(5)]
    campaign = limited(make_campaign(("send", news), qualification="once"), person_limit_per_run=2)
    execute(campaign, vibes_simulator)
    second = execute(campaign, vibes_simulator)
    assert outcomes(second) == {
        **{person.pk: Outcome.SKIPPED_ALREADY_RAN for person in people[:2]},
        **{person.pk: Outcome.SENT for person in people[2:4]},
        people[4].pk: Outcome.SKIPPED_PERSON_LIMIT,
    }
    third = execute(campaign, vibes_simulator)
    assert third.steps.get().counts == {"already_ran": 4, "sent": 1}
    assert len(vibes_simulator.messages()) == 5


def test_a_later_step_skips_whoever_the_first_put_beyond_the_cap(news, vibes_simulator):
    people = [subscribed(news) for _ in range(3)]
    campaign = limited(make_campaign(("send", news), ("unsubscribe", news)), person_limit_per_run=1)
    run = execute(campaign, vibes_simulator)
    second = outcomes(run, position=1)
    assert [second[person.pk] for person in people[1:]] == [Outcome.SKIPPED_PERSON_LIMIT] * 2
    assert second[people[0].pk] < Outcome.SKIPPED_DUPLICATE_PHONE  # called for


def test_the_run_now_confirmation_counts_the_cap_as_the_plan_does(staff_client, news):
    for _ in range(4):
        subscribed(news)
    LeadFactory(country="US")  # qualifies, not on the list: within the cap, skipped for that
    campaign = limited(make_campaign(("send", news)), person_limit_per_run=3)
    html = counted(staff_client, campaign)
    assert "Skipped: the campaign&#x27;s person limit was reached: 2" in html
    assert (
        "Person limit: at most 3 people per run, the first in lead id order. "
        "2 people beyond the limit are skipped." in html
    )
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    plan_step(run.steps.get())
    assert run.steps.get().counts == {"queued": 3, "skipped_person_limit": 2}


def test_the_confirmation_says_one_person_for_a_cap_of_one(staff_client, news):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_per_run=1)
    html = counted(staff_client, campaign)
    assert (
        "Person limit: at most one person per run, the first in lead id order. "
        "2 people beyond the limit are skipped." in html
    )


def test_the_confirmation_says_one_person_for_one_beyond_the_limit(staff_client, news):
    for _ in range(3):
        subscribed(news)
    campaign = limited(make_campaign(("send", news)), person_limit_per_run=2)
    html = counted(staff_client, campaign)
    assert "1 person beyond the limit is skipped." in html


@pytest.mark.parametrize("limits", [{"person_limit_per_run": 2}, {"person_limit_refuse_above": 1000}])
def test_a_person_limit_costs_the_same_queries_whatever_the_audience(news, limits):
    queries = []
    for people in (3, 40):
        campaign = limited(make_campaign(("send", news)), **limits)
        for _ in range(people):
            subscribed(news)
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        with CaptureQueriesContext(connection) as captured:
            plan_step(run.steps.get())
        queries.append(len(captured.captured_queries))
        CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    assert queries[0] == queries[1]


# --- Setting the limits ----------------------------------------------------------------------------


def schedule_post(**fields):
    return {"action": "save", "qualification_rule": "every_time", "schedule": "none", **fields}


def test_the_schedule_tab_saves_the_person_limits(staff_client, news):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(person_limit_refuse_above="5000", person_limit_per_run="1000"),
        headers=HTMX,
    )
    assert "Schedule saved." in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.person_limit_refuse_above, campaign.person_limit_per_run) == (5000, 1000)
    staff_client.post(url("campaign_schedule", campaign.pk), schedule_post())
    campaign.refresh_from_db()
    assert (campaign.person_limit_refuse_above, campaign.person_limit_per_run) == (None, None)


@pytest.mark.parametrize("value", ["0", "-3", "ten", "2.5"])
def test_a_person_limit_that_is_not_a_whole_number_of_1_or_more_is_refused_at_its_field(
    staff_client, news, value
):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(person_limit_per_run=value, person_limit_refuse_above="100"),
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "Person limit, “reach at most N people per run”: enter a whole number of 1 or more, "
        "or leave it empty for no limit." in html
    )
    assert 'value="100"' in html  # the valid limit is kept in the form
    campaign.refresh_from_db()
    assert (campaign.person_limit_refuse_above, campaign.person_limit_per_run) == (None, None)
