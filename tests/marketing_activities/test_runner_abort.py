"""Aborting a run (issue 17): no call starts once `run_abort` returns, the
calls already on their way are recorded, everyone not called is cancelled,
and the counts still add up."""

import threading
from collections import Counter

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import CampaignRun, Outcome, RunStep, TriggerFiring
from marketing_activities.runner import (
    CampaignCannotRun,
    run_abort,
    run_create,
    run_execute,
    run_resume,
    run_retry_uncertain,
)
from marketing_activities.runner.planner import count_outcomes, plan_step
from marketing_activities.triggers import activities_match, trigger_run_start, triggers_dispatch
from smscampaigns.activities import activities_record
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.test_triggers import _subscribed, welcome_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory
from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE, wait_until
from vibes.ratelimit import RateLimiter

# What a row of an aborted run may end as: called (with what came of it), or cancelled.
CALLED = {Outcome.SENT, Outcome.DELIVERED, Outcome.DELIVERY_FAILED, Outcome.FAILED, Outcome.UNCERTAIN}


def recount(run):
    return {
        step.pk: count_outcomes(step.pk, step.first_result_id, step.last_result_id)
        for step in run.steps.all()
    }


def stored_counts(run):
    return {step.pk: step.counts for step in run.steps.all()}


def planned_run(campaign, *, dry_run=False):
    """A run whose first step is planned (its people queued) and not yet called."""
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=dry_run)
    plan_step(run.steps.get(position=0))
    return run


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_an_abort_mid_run_calls_nobody_after_it_returns_and_the_counts_add_up(
    news, vibes_simulator, django_user_model
):
    for n in range(120):
        subscribed(news, first_name=f"P{n}", mobile_phone=f"+1555124{n:04d}")
    # Slow on both sides: the simulator refuses more than 20 calls a second,
    # and the client keeps under it.
    vibes_simulator.set_faults(rate_limit=20)
    client = make_client(vibes_simulator.url, rate_limiter=RateLimiter(15))
    run = run_create(campaign=make_campaign(("send", news)), trigger=CampaignRun.Trigger.COMMAND)
    worker = threading.Thread(target=run_execute, kwargs={"run": run, "client": client, "concurrency": 4})
    worker.start()
    try:
        wait_until(lambda: len(vibes_simulator.messages()) >= 10, what="the run to text ten people")
        marketer = django_user_model.objects.create_user("marketer")
        run = run_abort(run=run, by=marketer)
        calls_at_abort = len(vibes_simulator.requests_log())
        texted_at_abort = len(vibes_simulator.messages())
    finally:
        worker.join(DEADLINE)
    assert not worker.is_alive()
    assert len(vibes_simulator.requests_log()) == calls_at_abort
    run.refresh_from_db()
    assert (run.status, run.cancelled_by) == (CampaignRun.Status.CANCELLED, marketer)
    step = run.steps.get()
    outcomes = Counter(step.results().values_list("outcome", flat=True))
    assert set(outcomes) <= CALLED | {Outcome.CANCELLED}
    assert outcomes[Outcome.SENT] + outcomes[Outcome.DELIVERED] == texted_at_abort
    assert outcomes[Outcome.CANCELLED] > 0
    assert sum(outcomes.values()) == 120
    assert stored_counts(run) == recount(run)
    assert step.status == RunStep.Status.DONE
    assert run.progress_total == run.progress_done == texted_at_abort


@pytest.mark.django_db
def test_an_aborted_run_cancels_everyone_queued_and_the_steps_not_planned(news, vibes_simulator):
    for n in range(5):
        subscribed(news, mobile_phone=f"+1555125{n:04d}")
    run = planned_run(make_campaign(("send", news), ("unsubscribe", news)))
    run = run_abort(run=run)
    first, second = run.steps.order_by("position")
    assert first.counts == {"cancelled": 5}
    assert (first.status, second.status) == (RunStep.Status.DONE, RunStep.Status.CANCELLED)
    assert stored_counts(run) == recount(run)
    assert run.progress_total == 0
    # Nothing starts it again, nor sends what it cancelled.
    assert (
        run_execute(run=run, client=make_client(vibes_simulator.url)).status == CampaignRun.Status.CANCELLED
    )
    with pytest.raises(CampaignCannotRun):
        run_resume(run=run)
    with pytest.raises(CampaignCannotRun):
        run_retry_uncertain(run=run)
    with pytest.raises(CampaignCannotRun):
        run_abort(run=run)
    assert vibes_simulator.requests_log() == []
    assert Counter(first.results().values_list("outcome", flat=True)) == {Outcome.CANCELLED: 5}


@pytest.mark.django_db
def test_a_dry_run_can_be_aborted_and_keeps_what_it_planned(news, vibes_simulator):
    subscribed(news)
    run = planned_run(make_campaign(("send", news)), dry_run=True)
    run = run_abort(run=run)
    assert run.status == CampaignRun.Status.CANCELLED
    assert run.steps.get().counts == {"planned_dry_run": 1}
    assert vibes_simulator.requests_log() == []


@pytest.mark.django_db
def test_the_command_aborts_a_run_by_its_id(news, vibes_simulator, capsys):
    subscribed(news)
    run = planned_run(make_campaign(("send", news)))
    call_command("run_campaign", "--abort", str(run.pk))
    out = capsys.readouterr().out
    assert f"Run {run.pk} aborted." in out
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.CANCELLED
    with pytest.raises(CommandError, match="nothing to abort"):
        call_command("run_campaign", "--abort", str(run.pk))
    with pytest.raises(CommandError, match="There is no run"):
        call_command("run_campaign", "--abort", "999999")


@pytest.mark.django_db
def test_the_admin_action_asks_first_then_aborts(admin_client, admin_user, news, vibes_simulator):
    subscribed(news)
    run = planned_run(make_campaign(("send", news)))
    url = reverse("admin:marketing_activities_campaignrun_changelist")
    asked = admin_client.post(url, {"action": "abort", ACTION_CHECKBOX_NAME: [run.pk]})
    assert asked.status_code == 200 and b"Yes, abort" in asked.content
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.QUEUED
    admin_client.post(url, {"action": "abort", "post": "yes", ACTION_CHECKBOX_NAME: [run.pk]})
    run.refresh_from_db()
    assert (run.status, run.cancelled_by) == (CampaignRun.Status.CANCELLED, admin_user)


@pytest.mark.django_db
def test_the_schedule_tab_asks_first_then_aborts_the_active_run(admin_client, news, vibes_simulator):
    subscribed(news)
    campaign = make_campaign(("send", news))
    run = planned_run(campaign)
    schedule = admin_client.get(reverse("marketing_activities:campaign_schedule", args=[campaign.pk]))
    assert "Abort campaign…" in schedule.content.decode()
    url = reverse("marketing_activities:campaign_abort", args=[campaign.pk])
    asked = admin_client.get(url, headers={"HX-Request": "true", "HX-Target": "tab-panel"})
    assert "Yes, abort campaign" in asked.content.decode() and "<html" not in asked.content.decode()
    run.refresh_from_db()
    assert run.is_active
    response = admin_client.post(url)
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.CANCELLED
    results = admin_client.get(
        reverse("marketing_activities:campaign_results", args=[campaign.pk]), {"run": run.pk}
    ).content.decode()
    assert "Cancelled: the run was aborted before the call" in results
    assert "<dt>Aborted by</dt><dd>admin</dd>" in results
    # Nothing active any more: the page says so, never an error.
    again = admin_client.post(url, follow=True)
    assert "nothing to abort" in again.content.decode()


@pytest.mark.django_db
def test_aborting_takes_the_same_queries_for_few_or_many_people(
    news, vibes_simulator, django_assert_max_num_queries
):
    def queries_for(people):
        campaign = make_campaign(("send", news), rule={"field": "city", "op": "is", "value": f"C{people}"})
        for n in range(people):
            subscribed(news, city=f"C{people}", mobile_phone=f"+155513{people:02d}{n:03d}")
        run = planned_run(campaign)
        with django_assert_max_num_queries(40) as captured:
            run_abort(run=run)
        return len(captured)

    assert queries_for(3) == queries_for(60)


@pytest.mark.django_db
def test_aborting_a_trigger_campaigns_run_deactivates_it_and_cancels_its_waiting_firings(
    news, vibes_simulator
):
    first, second = LeadFactory(mobile_phone="+15551260001"), LeadFactory(mobile_phone="+15551260002")
    campaign = welcome_campaign(news)
    for lead in (first, second):
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    activities_record(activities=[_subscribed(first, news, timezone.now(), key="first")])
    activities_match()
    run = trigger_run_start(campaign=campaign)
    activities_record(activities=[_subscribed(second, news, timezone.now(), key="second")])
    activities_match()
    assert TriggerFiring.objects.get(lead=second).status == TriggerFiring.Status.WAITING

    run_abort(run=run)
    campaign.refresh_from_db()
    assert not campaign.is_active
    assert dict(TriggerFiring.objects.values_list("lead_id", "status")) == {
        first.pk: TriggerFiring.Status.MEMBER,
        second.pk: TriggerFiring.Status.INACTIVE,
    }
    triggers_dispatch()
    assert vibes_simulator.requests_log() == []


@pytest.mark.django_db
def test_under_the_rule_once_the_people_an_abort_cancelled_are_run_next_time(news, vibes_simulator):
    for n in range(3):
        subscribed(news, mobile_phone=f"+1555127{n:04d}")
    campaign = make_campaign(("send", news), qualification="once")
    run_abort(run=planned_run(campaign))
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.steps.get().counts == {"sent": 3}
