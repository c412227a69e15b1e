"""The rules of who a step calls for (runner/rules.py): the planner's choice of
whom to call and the skips it names agree for every mix of people, and the
check made just before a call names who the planner names."""

import itertools

import pytest

from marketing_activities.models import CampaignRun, FlowStep, Outcome
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from marketing_activities.runner.rules import blocked_since_planning
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db

NUMBERS = [f"+1555123{index:04d}" for index in range(5)]
STATUSES = ("", "subscribed", "pending", "unsubscribed")
ACTIONS = {
    "send": FlowStep.Action.SEND_SMS,
    "subscribe": FlowStep.Action.SUBSCRIBE,
    "unsubscribe": FlowStep.Action.UNSUBSCRIBE,
}


@pytest.fixture
def news():
    return VibesListFactory(name="SMS Newsletter")


@pytest.fixture
def everyone(news):
    """Every mix of blocks, number and status; numbers shared across the mixes,
    and blocked people outside the smart list on some of them."""
    people = []
    phones = itertools.cycle(["", *NUMBERS])
    for blocklisted, suspended, status in itertools.product((False, True), (False, True), STATUSES):
        for _ in range(2):
            lead = LeadFactory(
                mobile_phone=next(phones),
                blocklisted=blocklisted,
                marketing_suspended=suspended,
                country="US",
            )
            if status:
                SubscriptionFactory(vibes_list=news, lead=lead, status=status)
            people.append(lead)
    people.append(LeadFactory(mobile_phone=NUMBERS[0], marketing_suspended=True, country="SE"))
    people.append(LeadFactory(mobile_phone=NUMBERS[1], blocklisted=True, country="SE"))
    return people


def expected_rows(action, people, news) -> dict[int, tuple]:
    """{lead id: (outcome, duplicate of, blocked by)} as the rules say, worked out person by person."""
    status = {
        lead.pk: lead.subscriptions.filter(vibes_list=news).values_list("status", flat=True).first()
        for lead in people
    }
    blocks = {}  # number: (blocklisted first, lowest id) of its blocked holders
    for lead in people:
        if lead.mobile_phone and (lead.blocklisted or lead.marketing_suspended):
            block = (0 if lead.blocklisted else 1, lead.pk)
            blocks[lead.mobile_phone] = min(blocks.get(lead.mobile_phone, block), block)
    on_list = {}  # number: the statuses its holders have on the list
    for lead in people:
        on_list.setdefault(lead.mobile_phone, set()).add(status[lead.pk])
    rows, called = {}, []
    for lead in (lead for lead in people if lead.country == "US"):
        if action != "unsubscribe" and lead.blocklisted:
            rows[lead.pk] = (Outcome.SKIPPED_BLOCKLISTED, None, None)
        elif action != "unsubscribe" and lead.marketing_suspended:
            rows[lead.pk] = (Outcome.SKIPPED_MARKETING_SUSPENDED, None, None)
        elif action != "unsubscribe" and lead.mobile_phone in blocks:
            kind, blocker = blocks[lead.mobile_phone]
            skip = (Outcome.SKIPPED_NUMBER_BLOCKLISTED, Outcome.SKIPPED_NUMBER_SUSPENDED)[kind]
            rows[lead.pk] = (skip, None, blocker)
        elif not lead.mobile_phone:
            rows[lead.pk] = (Outcome.SKIPPED_NO_PHONE, None, None)
        elif action == "send" and status[lead.pk] != "subscribed":
            rows[lead.pk] = (Outcome.SKIPPED_NOT_SUBSCRIBED, None, None)
        elif action == "subscribe" and "subscribed" in on_list[lead.mobile_phone]:
            rows[lead.pk] = (Outcome.SKIPPED_ALREADY_SUBSCRIBED, None, None)
        elif action == "subscribe" and "pending" in on_list[lead.mobile_phone]:
            rows[lead.pk] = (Outcome.SKIPPED_ALREADY_PENDING, None, None)
        else:
            called.append(lead)
    for lead in called:
        winner = min(other.pk for other in called if other.mobile_phone == lead.mobile_phone)
        if winner == lead.pk:
            rows[lead.pk] = (Outcome.QUEUED, None, None)
        else:
            rows[lead.pk] = (Outcome.SKIPPED_DUPLICATE_PHONE, winner, None)
    return rows


def planned_rows(action, news) -> dict[int, tuple]:
    campaign = SmartCampaignFactory(
        qualification_rule="every_time",
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "US"}]},
    )
    options = {"send": {}, "subscribe": {"subscribe": True}, "unsubscribe": {"unsubscribe": True}}[action]
    FlowStepFactory(campaign=campaign, vibes_list=news, **options)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    step = run.steps.get()
    assert step.action == ACTIONS[action]
    plan_step(step)
    step.refresh_from_db()
    return {
        row.lead_id: (Outcome(row.outcome), row.duplicate_of_id, row.blocked_by_id) for row in step.results()
    }


@pytest.mark.parametrize("action", ACTIONS)
def test_each_person_is_called_or_skipped_for_the_first_rule_they_fail_whatever_the_mix(
    action, news, everyone
):
    assert planned_rows(action, news) == expected_rows(action, everyone, news)


@pytest.mark.parametrize(
    "holders",
    [
        ("marketing_suspended", "blocklisted", "both"),
        ("both", "blocklisted", "marketing_suspended"),
        ("marketing_suspended",),
    ],
)
def test_a_block_checked_just_before_the_call_names_whom_the_planner_names(news, holders):
    clean = SubscriptionFactory(
        vibes_list=news, status="subscribed", lead=LeadFactory(mobile_phone=NUMBERS[0])
    ).lead
    for holder in holders:
        flags = {
            "blocklisted": holder != "marketing_suspended",
            "marketing_suspended": holder != "blocklisted",
        }
        LeadFactory(mobile_phone=NUMBERS[0], country="SE", **flags)
    planned = planned_rows("send", news)[clean.pk]
    assert blocked_since_planning([(1, clean.pk, NUMBERS[0])]) == {(planned[0], planned[2]): [1]}


def test_a_person_blocked_since_planning_is_skipped_with_their_own_reason(news):
    blocked = LeadFactory(mobile_phone=NUMBERS[0], blocklisted=True, marketing_suspended=True)
    suspended = LeadFactory(mobile_phone=NUMBERS[1], marketing_suspended=True)
    clean = LeadFactory(mobile_phone=NUMBERS[2])
    rows = [(1, blocked.pk, NUMBERS[0]), (2, suspended.pk, NUMBERS[1]), (3, clean.pk, NUMBERS[2])]
    assert blocked_since_planning(rows) == {
        (Outcome.SKIPPED_BLOCKLISTED, None): [1],
        (Outcome.SKIPPED_MARKETING_SUSPENDED, None): [2],
    }
