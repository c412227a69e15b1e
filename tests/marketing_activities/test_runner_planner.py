"""Planning: who a step calls for, who it skips and why (R2–R4, R7, R8, R3 dedupe)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import CampaignRun, FlowStep, Outcome, RunBatch, SmartCampaign
from marketing_activities.runner import (
    CampaignAlreadyRunning,
    CampaignCannotRun,
    NobodyLeftToRun,
    campaign_preview,
    check_anyone_left,
    run_create,
)
from marketing_activities.runner.planner import PlanningError, plan_step
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return VibesListFactory(name="SMS Newsletter")


def campaign_with(*actions, vibes_list, rule=None, qualification=SmartCampaign.QualificationRule.EVERY_TIME):
    campaign = SmartCampaignFactory(
        qualification_rule=qualification,
        smart_list__definition={
            "logic": "all",
            "rules": [rule or {"field": "country", "op": "is", "value": "US"}],
        },
    )
    for position, action in enumerate(actions):
        FlowStepFactory(
            campaign=campaign,
            position=position,
            vibes_list=vibes_list,
            **{"send": {}, "subscribe": {"subscribe": True}, "unsubscribe": {"unsubscribe": True}}[action],
        )
    return campaign


def plan(campaign, dry_run=False):
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=dry_run)
    step = run.steps.get(position=0)
    plan_step(step)
    step.refresh_from_db()
    return step


def outcomes(step):
    return {
        row.lead.email: (Outcome(row.outcome), row.duplicate_of_id)
        for row in step.results().select_related("lead")
    }


def subscribed(vibes_list, **lead_fields):
    return SubscriptionFactory(
        vibes_list=vibes_list, status="subscribed", lead=LeadFactory(**lead_fields)
    ).lead


def test_send_goes_only_to_people_subscribed_to_the_vibes_list(news):
    other = VibesListFactory()
    subscribed(news, email="in@example.com")
    SubscriptionFactory(vibes_list=news, status="pending", lead=LeadFactory(email="pending@example.com"))
    SubscriptionFactory(vibes_list=news, status="unsubscribed", lead=LeadFactory(email="out@example.com"))
    subscribed(other, email="other-list@example.com")
    LeadFactory(email="never@example.com")
    step = plan(campaign_with("send", vibes_list=news))
    assert outcomes(step) == {
        "in@example.com": (Outcome.QUEUED, None),
        "pending@example.com": (Outcome.SKIPPED_NOT_SUBSCRIBED, None),
        "out@example.com": (Outcome.SKIPPED_NOT_SUBSCRIBED, None),
        "other-list@example.com": (Outcome.SKIPPED_NOT_SUBSCRIBED, None),
        "never@example.com": (Outcome.SKIPPED_NOT_SUBSCRIBED, None),
    }


def test_send_skips_blocklisted_suspended_and_people_without_a_number(news):
    subscribed(news, email="blocked@example.com", blocklisted=True)
    subscribed(news, email="suspended@example.com", marketing_suspended=True)
    subscribed(news, email="nophone@example.com", mobile_phone="")
    step = plan(campaign_with("send", vibes_list=news))
    assert outcomes(step) == {
        "blocked@example.com": (Outcome.SKIPPED_BLOCKLISTED, None),
        "suspended@example.com": (Outcome.SKIPPED_MARKETING_SUSPENDED, None),
        "nophone@example.com": (Outcome.SKIPPED_NO_PHONE, None),
    }


def test_national_and_international_spellings_are_one_number(news):
    first = subscribed(news, email="a@example.com", mobile_phone="(555) 123-4567")
    subscribed(news, email="b@example.com", mobile_phone="555.123.4567")
    subscribed(news, email="c@example.com", mobile_phone="+15551234567")
    step = plan(campaign_with("send", vibes_list=news))
    assert outcomes(step) == {
        "a@example.com": (Outcome.QUEUED, None),
        "b@example.com": (Outcome.SKIPPED_DUPLICATE_PHONE, first.pk),
        "c@example.com": (Outcome.SKIPPED_DUPLICATE_PHONE, first.pk),
    }
    assert step.results().get(outcome=Outcome.QUEUED).phone == "+15551234567"


# --- R4: blocks are per number ------------------------------------------------------------

NUMBER = "+15551230000"
NUMBER_BLOCK = {
    "blocklisted": Outcome.SKIPPED_NUMBER_BLOCKLISTED,
    "marketing_suspended": Outcome.SKIPPED_NUMBER_SUSPENDED,
}
OWN_BLOCK = {
    "blocklisted": Outcome.SKIPPED_BLOCKLISTED,
    "marketing_suspended": Outcome.SKIPPED_MARKETING_SUSPENDED,
}


def blocks(step):
    """{email: (outcome, blocked_by_id)} of the step's rows."""
    return {
        row.lead.email: (Outcome(row.outcome), row.blocked_by_id)
        for row in step.results().select_related("lead")
    }


@pytest.mark.parametrize("action", ["send", "subscribe"])
@pytest.mark.parametrize("block", ["blocklisted", "marketing_suspended"])
@pytest.mark.parametrize(
    "blocked_would_win", [True, False], ids=["blocked-person-has-lowest-id", "clean-person-has-lowest-id"]
)
@pytest.mark.parametrize(
    "in_smart_list", [True, False], ids=["blocked-in-smart-list", "blocked-outside-smart-list"]
)
def test_nobody_is_called_on_a_number_a_blocked_person_holds(
    news, action, block, blocked_would_win, in_smart_list
):
    def on_the_number(email, **fields):
        lead = LeadFactory(email=email, mobile_phone=NUMBER, **fields)
        if action == "send":  # Send calls for subscribers; Subscribe for everyone not on the list yet
            SubscriptionFactory(vibes_list=news, status="subscribed", lead=lead)
        return lead

    blocked_fields = {block: True, "country": "US" if in_smart_list else "SE"}
    if blocked_would_win:
        blocked = on_the_number("blocked@example.com", **blocked_fields)
    on_the_number("first@example.com")
    on_the_number("second@example.com")
    if not blocked_would_win:
        blocked = on_the_number("blocked@example.com", **blocked_fields)
    if action == "send":
        subscribed(news, email="elsewhere@example.com")
    else:
        LeadFactory(email="elsewhere@example.com")

    step = plan(campaign_with(action, vibes_list=news))

    expected = {
        "first@example.com": (NUMBER_BLOCK[block], blocked.pk),
        "second@example.com": (NUMBER_BLOCK[block], blocked.pk),
        "elsewhere@example.com": (Outcome.QUEUED, None),
    }
    if in_smart_list:
        expected["blocked@example.com"] = (OWN_BLOCK[block], None)
    assert blocks(step) == expected
    assert step.results().calls().filter(phone=NUMBER).count() == 0
    assert step.counts[NUMBER_BLOCK[block].code] == 2


def test_a_number_blocked_by_a_blocklisted_and_a_suspended_person_names_the_blocklisted_one(news):
    LeadFactory(email="suspended@example.com", mobile_phone=NUMBER, marketing_suspended=True, country="SE")
    blocklisted = LeadFactory(
        email="blocklisted@example.com", mobile_phone=NUMBER, blocklisted=True, country="SE"
    )
    subscribed(news, email="clean@example.com", mobile_phone=NUMBER)
    step = plan(campaign_with("send", vibes_list=news))
    assert blocks(step) == {"clean@example.com": (Outcome.SKIPPED_NUMBER_BLOCKLISTED, blocklisted.pk)}


def test_a_person_blocked_on_their_own_keeps_their_own_reason(news):
    blocklisted = subscribed(news, email="blocklisted@example.com", mobile_phone=NUMBER, blocklisted=True)
    subscribed(news, email="suspended@example.com", mobile_phone=NUMBER, marketing_suspended=True)
    subscribed(news, email="clean@example.com", mobile_phone=NUMBER)
    step = plan(campaign_with("send", vibes_list=news))
    assert blocks(step) == {
        "blocklisted@example.com": (Outcome.SKIPPED_BLOCKLISTED, None),
        "suspended@example.com": (Outcome.SKIPPED_MARKETING_SUSPENDED, None),
        "clean@example.com": (Outcome.SKIPPED_NUMBER_BLOCKLISTED, blocklisted.pk),
    }


def test_a_number_block_skips_people_who_would_not_be_called_anyway_with_the_block(news):
    # Not subscribed, so never texted: the block is still the first reason that applies.
    blocked = LeadFactory(email="blocked@example.com", mobile_phone=NUMBER, blocklisted=True)
    LeadFactory(email="not-subscribed@example.com", mobile_phone=NUMBER)
    step = plan(campaign_with("send", vibes_list=news))
    assert blocks(step)["not-subscribed@example.com"] == (Outcome.SKIPPED_NUMBER_BLOCKLISTED, blocked.pk)


def test_a_blocked_person_without_a_number_blocks_nobody(news):
    LeadFactory(email="blocked@example.com", mobile_phone="", blocklisted=True)
    subscribed(news, email="clean@example.com")
    step = plan(campaign_with("send", vibes_list=news))
    assert blocks(step)["clean@example.com"] == (Outcome.QUEUED, None)


def test_unsubscribe_is_never_blocked_by_a_number(news):
    subscribed(news, email="blocked@example.com", mobile_phone=NUMBER, blocklisted=True)
    subscribed(news, email="clean@example.com", mobile_phone=NUMBER)
    LeadFactory(
        email="suspended-elsewhere@example.com",
        mobile_phone="+15551230001",
        marketing_suspended=True,
        country="SE",
    )
    subscribed(news, email="clean-elsewhere@example.com", mobile_phone="+15551230001")
    step = plan(campaign_with("unsubscribe", vibes_list=news))
    assert blocks(step) == {
        "blocked@example.com": (Outcome.QUEUED, None),
        "clean@example.com": (Outcome.SKIPPED_DUPLICATE_PHONE, None),  # one request per number (R3)
        "clean-elsewhere@example.com": (Outcome.QUEUED, None),
    }


def test_a_later_step_honours_a_block_made_after_the_first_was_planned(news):
    subscribed(news, email="clean@example.com", mobile_phone=NUMBER)
    campaign = campaign_with("subscribe", "send", vibes_list=news)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    first, second = run.steps.order_by("position")
    plan_step(first)
    blocked = LeadFactory(email="late-block@example.com", mobile_phone=NUMBER, country="SE", blocklisted=True)
    plan_step(second)
    assert blocks(second) == {"clean@example.com": (Outcome.SKIPPED_NUMBER_BLOCKLISTED, blocked.pk)}


def test_a_dry_run_plans_the_number_blocks_too(news):
    blocked = LeadFactory(mobile_phone=NUMBER, blocklisted=True, country="SE")
    subscribed(news, email="clean@example.com", mobile_phone=NUMBER)
    step = plan(campaign_with("send", vibes_list=news), dry_run=True)
    assert blocks(step) == {"clean@example.com": (Outcome.SKIPPED_NUMBER_BLOCKLISTED, blocked.pk)}


# --- Issue 11: a skipped person's number is kept -----------------------------------------


def test_every_row_keeps_the_persons_number_skipped_or_not(news):
    subscribed(news, email="in@example.com", mobile_phone="+15551230010")
    subscribed(news, email="twin@example.com", mobile_phone="+15551230010")
    LeadFactory(email="not-subscribed@example.com", mobile_phone="+15551230011")
    subscribed(news, email="blocked@example.com", mobile_phone="+15551230012", blocklisted=True)
    subscribed(news, email="nophone@example.com", mobile_phone="")
    step = plan(campaign_with("send", vibes_list=news))
    phones = {row.lead.email: row.phone for row in step.results().select_related("lead")}
    assert phones == {
        "in@example.com": "+15551230010",
        "twin@example.com": "+15551230010",
        "not-subscribed@example.com": "+15551230011",
        "blocked@example.com": "+15551230012",
        "nophone@example.com": "",
    }


def test_the_winner_of_a_shared_number_is_chosen_deterministically(news):
    leads = [subscribed(news, mobile_phone="+15551239999") for _ in range(4)]
    for _ in range(2):
        step = plan(campaign_with("send", vibes_list=news))
        assert list(step.results().filter(outcome=Outcome.QUEUED).values_list("lead_id", flat=True)) == [
            leads[0].pk
        ]
        assert set(step.results().exclude(lead=leads[0]).values_list("duplicate_of_id", flat=True)) == {
            leads[0].pk
        }


def test_subscribe_skips_people_already_subscribed_or_pending_on_their_number(news):
    subscribed(news, email="in@example.com", mobile_phone="+15551230001")
    LeadFactory(email="same-number@example.com", mobile_phone="+15551230001")
    SubscriptionFactory(vibes_list=news, status="pending", lead=LeadFactory(email="pending@example.com"))
    LeadFactory(email="new@example.com", mobile_phone="+15551230002")
    LeadFactory(email="new-twin@example.com", mobile_phone="+15551230002")
    LeadFactory(email="blocked@example.com", blocklisted=True)
    step = plan(campaign_with("subscribe", vibes_list=news))
    result = outcomes(step)
    new_id = result["new@example.com"]
    assert result["in@example.com"] == (Outcome.SKIPPED_ALREADY_SUBSCRIBED, None)
    assert result["same-number@example.com"] == (Outcome.SKIPPED_ALREADY_SUBSCRIBED, None)
    assert result["pending@example.com"] == (Outcome.SKIPPED_ALREADY_PENDING, None)
    assert new_id == (Outcome.QUEUED, None)
    assert result["new-twin@example.com"][0] == Outcome.SKIPPED_DUPLICATE_PHONE
    assert result["blocked@example.com"] == (Outcome.SKIPPED_BLOCKLISTED, None)


def test_unsubscribe_calls_for_everyone_with_a_number_whatever_the_local_status_says(news):
    """The local status may be stale (a keyword re-join, a missed callback): opting out is the safe way."""
    subscribed(news, email="in@example.com", mobile_phone="+15551230001")
    subscribed(news, email="blocked@example.com", blocklisted=True, mobile_phone="+15551230002")
    SubscriptionFactory(
        vibes_list=news,
        status="unsubscribed",
        lead=LeadFactory(email="out@example.com", mobile_phone="+15551230003"),
    )
    LeadFactory(email="never-on-the-list@example.com", mobile_phone="+15551230004")
    LeadFactory(email="nophone@example.com", mobile_phone="")
    step = plan(campaign_with("unsubscribe", vibes_list=news))
    assert outcomes(step) == {
        "in@example.com": (Outcome.QUEUED, None),
        "blocked@example.com": (Outcome.QUEUED, None),
        "out@example.com": (Outcome.QUEUED, None),
        "never-on-the-list@example.com": (Outcome.QUEUED, None),
        "nophone@example.com": (Outcome.SKIPPED_NO_PHONE, None),
    }


def test_unsubscribe_calls_once_per_number(news):
    first = LeadFactory(email="first@example.com", mobile_phone="+15551230001")
    SubscriptionFactory(
        vibes_list=news,
        status="unsubscribed",
        lead=LeadFactory(email="second@example.com", mobile_phone="+15551230001"),
    )
    step = plan(campaign_with("unsubscribe", vibes_list=news))
    assert outcomes(step) == {
        "first@example.com": (Outcome.QUEUED, None),
        "second@example.com": (Outcome.SKIPPED_DUPLICATE_PHONE, first.pk),
    }


def test_everyone_of_the_smart_list_gets_exactly_one_row_and_no_one_else(news):
    for index in range(30):
        subscribed(news, country="US" if index % 3 else "SE")
    step = plan(campaign_with("send", vibes_list=news))
    assert step.results().count() == 20
    assert sum(step.counts.values()) == 20
    assert step.results().values("lead").distinct().count() == 20


def test_planning_a_step_twice_is_refused(news):
    step = plan(campaign_with("send", vibes_list=news))
    step.status = step.Status.PENDING
    with pytest.raises(PlanningError):
        plan_step(step)


@pytest.mark.parametrize("action", ["send", "subscribe", "unsubscribe"])
def test_planning_costs_the_same_queries_whatever_the_audience(news, action):
    campaign = campaign_with(action, vibes_list=news)
    queries = []
    for size in (3, 60):
        for index in range(size):
            # Shared numbers and blocks on some of them, in proportion to the audience.
            lead = subscribed(news, mobile_phone=f"+1555123{index // 2:04d}", blocklisted=index % 10 == 0)
            if index % 7 == 0:
                LeadFactory(mobile_phone=lead.mobile_phone, marketing_suspended=True, country="SE")
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        step = run.steps.get()
        with CaptureQueriesContext(connection) as captured:
            plan_step(step)
        queries.append(len(captured))
        CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    # 26: the communication limits' row and the Remove from Flow table's drop joined the 24 of before.
    assert queries[0] == queries[1] <= 26


def test_batches_cover_the_step_results(news):
    for _ in range(5):
        subscribed(news)
    step = plan(campaign_with("send", vibes_list=news))
    batch = RunBatch.objects.get(run_step=step)
    assert (batch.first_result_id, batch.last_result_id) == (step.first_result_id, step.last_result_id)


def test_qualification_once_skips_people_who_ran_through_the_flow_before(news):
    first = subscribed(news, email="first@example.com")
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    step = plan(campaign)
    CampaignRun.objects.filter(pk=step.run_id).update(status=CampaignRun.Status.COMPLETED)
    subscribed(news, email="second@example.com")
    step = plan(campaign)
    assert outcomes(step) == {
        "first@example.com": (Outcome.SKIPPED_ALREADY_RAN, None),
        "second@example.com": (Outcome.QUEUED, None),
    }
    assert first.pk


def test_qualification_every_time_lets_people_run_again(news):
    subscribed(news, email="first@example.com")
    campaign = campaign_with("send", vibes_list=news)
    step = plan(campaign)
    CampaignRun.objects.filter(pk=step.run_id).update(status=CampaignRun.Status.COMPLETED)
    assert outcomes(plan(campaign)) == {"first@example.com": (Outcome.QUEUED, None)}


def test_dry_runs_do_not_count_as_having_run_through_the_flow(news):
    subscribed(news, email="first@example.com")
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    step = plan(campaign, dry_run=True)
    assert outcomes(step) == {"first@example.com": (Outcome.PLANNED_DRY_RUN, None)}
    assert not RunBatch.objects.filter(run_step=step).exists()
    CampaignRun.objects.filter(pk=step.run_id).update(status=CampaignRun.Status.COMPLETED)
    assert outcomes(plan(campaign)) == {"first@example.com": (Outcome.QUEUED, None)}


def ran_through(campaign):
    """A completed real run of the campaign whose first step is planned: its audience has run through."""
    step = plan(campaign)
    CampaignRun.objects.filter(pk=step.run_id).update(status=CampaignRun.Status.COMPLETED)
    return step


def test_under_once_a_run_with_nobody_left_to_qualify_is_refused(news):
    subscribed(news, email="first@example.com")
    LeadFactory(
        email="not-subscribed@example.com"
    )  # skipped by the step, but in the audience: it ran through
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    ran_through(campaign)
    with pytest.raises(NobodyLeftToRun) as error:
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI)
    assert error.value.problems == [
        "Nobody is left to qualify: all 2 people the smart list picks have already run through this flow, "
        "and each person can run through it once."
    ]
    assert CampaignRun.objects.count() == 1  # the refused run was rolled back


def test_under_once_a_dry_run_with_nobody_left_is_refused_too(news):
    subscribed(news)
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    ran_through(campaign)
    with pytest.raises(NobodyLeftToRun, match="the 1 person the smart list picks has already run"):
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=True)


def test_under_once_one_new_person_is_enough_to_run(news):
    subscribed(news)
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    ran_through(campaign)
    LeadFactory(email="new@example.com")
    check_anyone_left(campaign)
    assert run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI).status == CampaignRun.Status.QUEUED


def test_under_once_a_smart_list_that_now_picks_nobody_says_so(news):
    subscribed(news)
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    ran_through(campaign)
    campaign.smart_list.definition = {
        "logic": "all",
        "rules": [{"field": "country", "op": "is", "value": "FR"}],
    }
    campaign.smart_list.save()
    with pytest.raises(NobodyLeftToRun) as error:
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI)
    assert error.value.problems == ["Nobody is left to qualify: the smart list picks nobody."]


def test_every_time_lets_a_campaign_run_again_for_the_same_people(news):
    subscribed(news)
    campaign = campaign_with("send", vibes_list=news)
    ran_through(campaign)
    assert run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI).status == CampaignRun.Status.QUEUED


def test_dry_runs_leave_everyone_to_qualify(news):
    subscribed(news)
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    step = plan(campaign, dry_run=True)
    CampaignRun.objects.filter(pk=step.run_id).update(status=CampaignRun.Status.COMPLETED)
    check_anyone_left(campaign)  # nothing raised


def test_people_who_ran_through_twice_are_counted_once(news):
    # Two runs under "every time", then the rule becomes "once": A and B ran
    # twice, C never did, and is left.
    a, b = subscribed(news), subscribed(news)
    campaign = campaign_with("send", vibes_list=news)
    ran_through(campaign)
    ran_through(campaign)
    subscribed(news)
    SmartCampaign.objects.filter(pk=campaign.pk).update(
        qualification_rule=SmartCampaign.QualificationRule.ONCE
    )
    campaign.refresh_from_db()
    check_anyone_left(campaign)  # nothing raised: C is left
    assert outcomes(plan(campaign))[a.email] == (Outcome.SKIPPED_ALREADY_RAN, None)
    assert b.pk


def test_the_check_for_anyone_left_is_a_few_counts_however_many_people_and_runs(
    news, django_assert_num_queries
):
    campaign = campaign_with("send", vibes_list=news, qualification=SmartCampaign.QualificationRule.ONCE)
    campaign = SmartCampaign.objects.select_related("smart_list").get(pk=campaign.pk)
    with django_assert_num_queries(1):  # no earlier run: nothing to count
        check_anyone_left(campaign)
    subscribed(news)
    ran_through(campaign)
    for people in (2, 30):
        for _ in range(people):
            subscribed(news)
        # More people than the earlier audiences had rows: the earlier runs' ranges and one count.
        with django_assert_num_queries(2):
            check_anyone_left(campaign)
        ran_through(campaign)
        # Everyone ran: the ranges, the people, and the people found in the earlier runs.
        with django_assert_num_queries(3), pytest.raises(NobodyLeftToRun):
            check_anyone_left(campaign)


def test_a_second_run_of_a_running_campaign_is_refused(news):
    campaign = campaign_with("send", vibes_list=news)
    run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    with pytest.raises(CampaignAlreadyRunning):
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI)


def test_an_invalid_campaign_cannot_run_and_says_why(news):
    campaign = campaign_with("subscribe", vibes_list=news)
    FlowStep.objects.filter(campaign=campaign).update(acquisition_campaign=None)
    with pytest.raises(CampaignCannotRun) as error:
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    assert error.value.problems == [
        "Step 1 (Subscribe to Vibes List): Choose an acquisition campaign of the Vibes list."
    ]
    assert not CampaignRun.objects.exists()


def test_preview_counts_every_step_and_writes_nothing(news):
    subscribed(news, email="in@example.com")
    LeadFactory(email="out@example.com")
    campaign = campaign_with("send", "unsubscribe", vibes_list=news)
    preview = campaign_preview(campaign=campaign)
    assert preview.audience == 2
    assert preview.steps[0].counts == {"planned_dry_run": 1, "skipped_not_subscribed": 1}
    assert preview.steps[1].counts == {"planned_dry_run": 2}
    assert [lead.email for lead in preview.sample] == ["in@example.com"]
    assert not CampaignRun.objects.exists()


def test_later_steps_work_on_the_first_steps_audience(news):
    subscribed(news, email="in@example.com")
    campaign = campaign_with("send", "unsubscribe", vibes_list=news)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    first, second = run.steps.order_by("position")
    plan_step(first)
    LeadFactory(email="late@example.com")  # qualifies for the smart list after the run began
    plan_step(second)
    second.refresh_from_db()
    assert set(outcomes(second)) == {"in@example.com"}
