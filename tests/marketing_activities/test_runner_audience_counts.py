"""The Run now confirmations count read-only what a plan would give."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing_activities.models import CampaignRun, Outcome, SmartCampaign
from marketing_activities.runner import campaign_preview, run_create
from marketing_activities.runner.audience_counts import campaign_audience_counts
from marketing_activities.runner.planner import plan_step
from marketing_activities.runner.preview import PLANNED_LABELS
from smscampaigns.models import Lead
from tests.marketing_activities.factories import CommunicationLimitsFactory, MarketingSmsFactory
from tests.marketing_activities.test_runner_planner import campaign_with, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db

EVERY_REASON = {
    Outcome.PLANNED_DRY_RUN,
    Outcome.SKIPPED_DUPLICATE_PHONE,
    Outcome.SKIPPED_ALREADY_RAN,
    Outcome.SKIPPED_BLOCKLISTED,
    Outcome.SKIPPED_MARKETING_SUSPENDED,
    Outcome.SKIPPED_NUMBER_BLOCKLISTED,
    Outcome.SKIPPED_NUMBER_SUSPENDED,
    Outcome.SKIPPED_NO_PHONE,
    Outcome.SKIPPED_NOT_SUBSCRIBED,
    Outcome.SKIPPED_ALREADY_SUBSCRIBED,
    Outcome.SKIPPED_ALREADY_PENDING,
    Outcome.SKIPPED_COMMUNICATION_LIMIT,
}


def a_world_with_every_reason(news):
    """A Send, a Subscribe and an Unsubscribe step under the rule "once",
    on people who between them meet every skip of the three."""
    campaign = campaign_with(
        "send",
        "subscribe",
        "unsubscribe",
        vibes_list=news,
        qualification=SmartCampaign.QualificationRule.ONCE,
    )
    ran_before = subscribed(news)
    earlier = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    plan_step(earlier.steps.get(position=0))
    CampaignRun.objects.filter(pk=earlier.pk).update(status=CampaignRun.Status.COMPLETED)

    winner = subscribed(news, mobile_phone="+12025550101")
    subscribed(news, mobile_phone=winner.mobile_phone)  # a duplicate
    subscribed(news, mobile_phone=ran_before.mobile_phone)  # the number of someone who ran before
    for flag in ("blocklisted", "marketing_suspended"):
        blocked = subscribed(news, **{flag: True})
        # Others on the blocked person's number, and one on the number of a blocked
        # person outside the smart list.
        subscribed(news, mobile_phone=blocked.mobile_phone)
        subscribed(news, mobile_phone=blocked.mobile_phone)
        LeadFactory(mobile_phone=blocked.mobile_phone)  # not subscribed: the number's skip all the same
        outsider = LeadFactory(country="SE", **{flag: True})
        subscribed(news, mobile_phone=outsider.mobile_phone)
    both = LeadFactory(blocklisted=True, marketing_suspended=True)
    subscribed(news, mobile_phone=both.mobile_phone)
    subscribed(news, mobile_phone="")
    # A number that had its marketing SMS of the day, and someone pending on it.
    CommunicationLimitsFactory(per_day=1)
    texted_today = subscribed(news)
    MarketingSmsFactory(result__lead=texted_today)
    SubscriptionFactory(
        vibes_list=news, status="pending", lead=LeadFactory(mobile_phone=texted_today.mobile_phone)
    )
    SubscriptionFactory(vibes_list=news, status="pending", lead=LeadFactory())
    SubscriptionFactory(vibes_list=news, status="unsubscribed", lead=LeadFactory())
    subscribed(VibesListFactory())  # another list's
    LeadFactory()  # no subscription at all
    LeadFactory(country="SE")  # outside the smart list
    return campaign


def test_the_read_only_counts_are_the_plans_counts_for_every_reason(news):
    campaign = a_world_with_every_reason(news)
    planned = campaign_preview(campaign=campaign, sample_size=0).steps
    counted = campaign_audience_counts(campaign=campaign)
    assert [step.counts for step in counted] == [step.counts for step in planned]
    assert [step.blockers for step in counted] == [step.blockers for step in planned]
    reasons = {outcome for step in counted for outcome, _n in step.outcome_counts()}
    assert reasons >= EVERY_REASON


def test_the_read_only_counts_are_the_plans_counts_when_nobody_ran_before(news):
    """Every time: the requirement of "once" is left out of the queries, the counts stay the plan's."""
    campaign = a_world_with_every_reason(news)
    SmartCampaign.objects.filter(pk=campaign.pk).update(
        qualification_rule=SmartCampaign.QualificationRule.EVERY_TIME
    )
    campaign.refresh_from_db()
    planned = campaign_preview(campaign=campaign, sample_size=0).steps
    counted = campaign_audience_counts(campaign=campaign)
    assert [step.counts for step in counted] == [step.counts for step in planned]
    assert [step.blockers for step in counted] == [step.blockers for step in planned]
    assert not any(Outcome.SKIPPED_ALREADY_RAN.code in step.counts for step in counted)


def test_the_read_only_counts_write_nothing(news):
    campaign = a_world_with_every_reason(news)
    runs = CampaignRun.objects.count()
    with CaptureQueriesContext(connection) as queries:
        campaign_audience_counts(campaign=campaign)
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in queries.captured_queries)
    assert not any("SAVEPOINT" in query["sql"].upper() for query in queries.captured_queries)
    assert CampaignRun.objects.count() == runs


def _confirmation_queries(client, campaign, query) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("marketing_activities:campaign_run_now", args=[campaign.pk]), query)
    assert response.status_code == 200
    assert "Yes, run now" in response.content.decode()
    return len(queries.captured_queries)


# The confirmation as it opens, and the request of its counts.
CONFIRMATION_REQUESTS = pytest.mark.parametrize("query", [{}, {"count": "exact"}], ids=["page", "counts"])


@CONFIRMATION_REQUESTS
def test_the_run_now_confirmations_queries_do_not_grow_with_the_people(staff_client, news, query):
    campaign = a_world_with_every_reason(news)
    _confirmation_queries(staff_client, campaign, query)  # the first request of a login saves its session
    few = _confirmation_queries(staff_client, campaign, query)
    for _ in range(3):
        a_world_with_every_reason(news)
    assert _confirmation_queries(staff_client, campaign, query) == few


def test_the_run_now_confirmation_reads_nobody_before_its_counts_are_asked_for(staff_client, news):
    campaign = a_world_with_every_reason(news)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(reverse("marketing_activities:campaign_run_now", args=[campaign.pk]))
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    assert not [query["sql"] for query in queries.captured_queries if lead_table in query["sql"]]


def _planned_labels(step) -> list:
    return [
        (str(PLANNED_LABELS[step.action]) if outcome == Outcome.PLANNED_DRY_RUN else str(outcome.label), n)
        for outcome, n in step.outcome_counts()
    ]


def test_the_counts_request_gives_the_plans_counts(staff_client, news):
    campaign = a_world_with_every_reason(news)
    planned = campaign_preview(campaign=campaign, sample_size=0)
    response = staff_client.get(
        reverse("marketing_activities:campaign_run_now", args=[campaign.pk]),
        {"count": "exact"},
        headers={"HX-Request": "true", "HX-Target": "run-now"},
    )
    assert response.context["audience"] == planned.audience
    shown = [
        (step.number, [(str(label), n) for label, n, _b in step.counts])
        for step in response.context["preview_steps"]
    ]
    assert shown == [(step.number, _planned_labels(step)) for step in planned.steps]
    assert [[b for _l, _n, b in step.counts if b] for step in response.context["preview_steps"]] == [
        [b for b in step.blockers.values()] for step in planned.steps
    ]


@pytest.mark.parametrize("counts", [False, True], ids=["page", "counts"])
def test_the_admins_run_now_confirmation_queries_do_not_grow_with_the_people(admin_client, news, counts):
    campaign = a_world_with_every_reason(news)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            if counts:
                response = admin_client.get(
                    reverse("admin:marketing_activities_smartcampaign_run_now"),
                    {"_selected_action": [campaign.pk]},
                )
            else:
                response = admin_client.post(
                    reverse("admin:marketing_activities_smartcampaign_changelist"),
                    {"action": "run_now", "_selected_action": [campaign.pk]},
                )
        assert 'name="post" value="yes"' in response.content.decode()
        return len(captured.captured_queries)

    queries()  # the first request of a login saves its session
    few = queries()
    for _ in range(3):
        a_world_with_every_reason(news)
    assert queries() == few
