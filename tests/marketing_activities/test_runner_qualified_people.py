"""View Qualified People (runner/qualified_people.py): who the first step
would take now, and why, as a plan of it would say."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import CampaignRun, FlowStep, Outcome, RunStep, SmartCampaign
from marketing_activities.runner.audience_counts import campaign_audience_counts
from marketing_activities.runner.planner import plan_step
from marketing_activities.runner.qualified_people import qualified_people_page
from tests.marketing_activities.test_runner_audience_counts import EVERY_REASON, a_world_with_every_reason
from tests.marketing_activities.test_runner_planner import campaign_with, subscribed

pytestmark = pytest.mark.django_db


def planned_first_step(campaign) -> dict:
    """{lead id: (outcome, person named)} of a dry run's first step, planned and thrown away."""
    with transaction.atomic():
        run = CampaignRun.objects.create(
            campaign=campaign,
            trigger=CampaignRun.Trigger.ADMIN,
            dry_run=True,
            status=CampaignRun.Status.COMPLETED,
        )
        flow_step = campaign.steps()[0]
        step = RunStep.objects.create(
            run=run,
            position=0,
            action=flow_step.action,
            vibes_list=flow_step.vibes_list,
            acquisition_campaign=flow_step.acquisition_campaign,
        )
        plan_step(step)
        step.refresh_from_db()
        rows = {
            lead_id: (Outcome(outcome), duplicate_of or blocked_by)
            for lead_id, outcome, duplicate_of, blocked_by in step.results().values_list(
                "lead_id", "outcome", "duplicate_of_id", "blocked_by_id"
            )
        }
        transaction.set_rollback(True)
    return rows


def listed(campaign, *, outcome=None, page_size=3) -> list:
    """Every person of every page, following the pages' cursors."""
    people, after = [], None
    while True:
        page = qualified_people_page(campaign=campaign, outcome=outcome, after=after, page_size=page_size)
        people += page.people
        assert len(page.people) <= page_size
        if page.after is None:
            return people
        assert len(page.people) == page_size
        after = page.after


def as_plan(people) -> dict:
    return {
        person.lead.pk: (person.outcome, person.because_of.pk if person.because_of else None)
        for person in people
    }


def test_each_person_gets_the_outcome_and_the_person_named_that_a_plan_gives_them(news):
    campaign = a_world_with_every_reason(news)
    people = listed(campaign)
    assert as_plan(people) == planned_first_step(campaign)
    assert {person.outcome for person in people} >= EVERY_REASON - {
        Outcome.SKIPPED_ALREADY_SUBSCRIBED,
        Outcome.SKIPPED_ALREADY_PENDING,
    }  # the Subscribe step's skips: it is the second step
    assert [person.lead.pk for person in people] == sorted(person.lead.pk for person in people)


def test_the_people_by_reason_are_as_many_as_run_nows_counts_say(news):
    campaign = a_world_with_every_reason(news)
    (counted, *_later) = campaign_audience_counts(campaign=campaign)
    for code, count in counted.counts.items():
        people = listed(campaign, outcome=Outcome.from_code(code), page_size=2)
        assert len(people) == count, code
        assert {person.outcome.code for person in people} == {code}


def test_a_subscribe_first_step_names_the_same_skips_as_its_plan(news):
    campaign = a_world_with_every_reason(news)
    send = campaign.flow_steps.get(position=0)
    send.position = 9
    send.save()
    assert campaign.steps()[0].action == FlowStep.Action.SUBSCRIBE
    people = listed(campaign, page_size=4)
    assert as_plan(people) == planned_first_step(campaign)
    assert {Outcome.SKIPPED_ALREADY_SUBSCRIBED, Outcome.SKIPPED_ALREADY_PENDING} <= {
        p.outcome for p in people
    }


def test_a_page_and_its_cursor(news):
    campaign = campaign_with(
        "send", vibes_list=news, qualification=SmartCampaign.QualificationRule.EVERY_TIME
    )
    leads = [subscribed(news) for _n in range(5)]
    first = qualified_people_page(campaign=campaign, page_size=2)
    assert [p.lead for p in first.people] == leads[:2] and first.after == leads[1].pk
    last = qualified_people_page(campaign=campaign, page_size=2, after=leads[3].pk)
    assert [p.lead for p in last.people] == leads[4:] and last.after is None


def test_listing_the_people_writes_nothing(news):
    campaign = a_world_with_every_reason(news)
    with CaptureQueriesContext(connection) as captured:
        qualified_people_page(campaign=campaign)
    assert not [
        q["sql"]
        for q in captured
        if not q["sql"].lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE"))
    ]
