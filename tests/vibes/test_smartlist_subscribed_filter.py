"""The smart list filter "Subscribed to Vibes List" (ever, from the subscription
history) and its "not" form, beside "Member of Vibes list" (now)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from smscampaigns.models import Lead
from smscampaigns.smartlists import parse_definition
from tests.query_plans import full_scans, query_plan
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionChangeFactory, VibesListFactory
from vibes.models import Subscription, SubscriptionChange
from vibes.subscriptions import subscriptions_apply

pytestmark = pytest.mark.django_db

SUBSCRIBED = Subscription.Status.SUBSCRIBED
UNSUBSCRIBED = Subscription.Status.UNSUBSCRIBED


def picked(*rules, logic="all"):
    definition = parse_definition({"logic": logic, "rules": list(rules)})
    return set(Lead.objects.filter(definition.to_q()).values_list("email", flat=True))


def subscribed(vibes_list, **constraints):
    return {"field": "subscribed_to_vibes_list", "op": "is", "value": vibes_list.pk, **constraints}


def not_subscribed(vibes_list, **constraints):
    return {"field": "not_subscribed_to_vibes_list", "op": "is", "value": vibes_list.pk, **constraints}


def days_ago(days):
    return timezone.now() - datetime.timedelta(days=days)


def test_subscribed_ever_picks_people_who_left_the_list_since_and_member_of_does_not():
    vibes_list = VibesListFactory()
    left = LeadFactory(email="left@x.com")
    stayed = LeadFactory(email="stayed@x.com")
    LeadFactory(email="never@x.com")
    subscriptions_apply(lead_ids=[left.pk, stayed.pk], vibes_list=vibes_list, status=SUBSCRIBED, source="run")
    subscriptions_apply(lead_ids=[left.pk], vibes_list=vibes_list, status=UNSUBSCRIBED, source="callback")
    assert picked(subscribed(vibes_list)) == {"left@x.com", "stayed@x.com"}
    assert picked({"field": "vibes_list", "op": "is", "value": vibes_list.pk}) == {"stayed@x.com"}
    assert picked(not_subscribed(vibes_list)) == {"never@x.com"}


def test_subscribed_to_another_list_does_not_count():
    wanted, other = VibesListFactory(), VibesListFactory()
    SubscriptionChangeFactory(subscription__lead__email="other@x.com", subscription__vibes_list=other)
    assert picked(subscribed(wanted)) == set()
    assert picked(not_subscribed(wanted)) == {"other@x.com"}


def test_a_late_subscription_event_still_happened_and_a_mismatched_one_did_not():
    vibes_list = VibesListFactory()
    SubscriptionChangeFactory(
        subscription__lead__email="late@x.com",
        subscription__vibes_list=vibes_list,
        effect=SubscriptionChange.Effect.SUPERSEDED,
    )
    SubscriptionChangeFactory(
        subscription__lead__email="mismatch@x.com",
        subscription__vibes_list=vibes_list,
        effect=SubscriptionChange.Effect.MISMATCH,
    )
    SubscriptionChangeFactory(
        subscription__lead__email="pending@x.com", subscription__vibes_list=vibes_list, new_status="pending"
    )
    assert picked(subscribed(vibes_list)) == {"late@x.com"}


def test_subscribed_in_past_days_takes_the_changes_own_time():
    vibes_list = VibesListFactory()
    SubscriptionChangeFactory(
        subscription__lead__email="recent@x.com", subscription__vibes_list=vibes_list, occurred_at=days_ago(3)
    )
    SubscriptionChangeFactory(
        subscription__lead__email="old@x.com",
        subscription__vibes_list=vibes_list,
        occurred_at=days_ago(60),
        recorded_at=days_ago(1),
    )
    assert picked(subscribed(vibes_list, when="in past", days=30)) == {"recent@x.com"}
    assert picked(not_subscribed(vibes_list, when="in past", days=30)) == {"old@x.com"}
    assert picked(subscribed(vibes_list, when="before", date=days_ago(30).date().isoformat())) == {
        "old@x.com"
    }


def test_subscribed_through_an_acquisition_campaign_as_the_run_recorded_it():
    vibes_list = VibesListFactory()
    spring, autumn = (
        AcquisitionCampaignFactory(vibes_list=vibes_list),
        AcquisitionCampaignFactory(vibes_list=vibes_list),
    )
    by_spring, by_autumn = LeadFactory(email="spring@x.com"), LeadFactory(email="autumn@x.com")
    subscriptions_apply(
        lead_ids=[by_spring.pk],
        vibes_list=vibes_list,
        status=SUBSCRIBED,
        source="run",
        acquisition_campaign=spring,
    )
    subscriptions_apply(
        lead_ids=[by_autumn.pk],
        vibes_list=vibes_list,
        status=SUBSCRIBED,
        source="run",
        acquisition_campaign=autumn,
    )
    assert picked(subscribed(vibes_list, acquisition_campaign=str(spring.pk))) == {"spring@x.com"}
    assert picked(not_subscribed(vibes_list, acquisition_campaign=spring.pk)) == {"autumn@x.com"}


def test_a_confirmation_without_its_campaign_is_recorded_with_the_pending_subscriptions_campaign():
    vibes_list = VibesListFactory()
    campaign = AcquisitionCampaignFactory(vibes_list=vibes_list)
    lead = LeadFactory(email="confirmed@x.com")
    subscriptions_apply(
        lead_ids=[lead.pk],
        vibes_list=vibes_list,
        status="pending",
        source="run",
        acquisition_campaign=campaign,
    )
    subscriptions_apply(lead_ids=[lead.pk], vibes_list=vibes_list, status=SUBSCRIBED, source="callback")
    change = SubscriptionChange.objects.get(lead=lead, new_status=SUBSCRIBED)
    assert change.acquisition_campaign == campaign
    assert picked(subscribed(vibes_list, acquisition_campaign=campaign.pk)) == {"confirmed@x.com"}


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ({"value": ""}, "Rule 1: choose a Vibes list."),
        ({"value": 999999}, "Rule 1: there is no Vibes list with id 999999."),
        ({"acquisition_campaign": "999999"}, "Rule 1: there is no acquisition campaign with id 999999."),
        ({"acquisition_campaign": "spring"}, "Rule 1: there is no acquisition campaign with id spring."),
        ({"when": "in past", "days": 40000}, "Rule 1: “40000” days is out of range"),
    ],
)
def test_a_bad_subscribed_rule_gets_a_message(constraints, message):
    vibes_list = VibesListFactory()
    with pytest.raises(ValidationError) as error:
        parse_definition({"logic": "all", "rules": [subscribed(vibes_list, **constraints)]})
    assert any(text.startswith(message) for text in error.value.messages), error.value.messages


def test_an_acquisition_campaign_of_another_list_gets_a_message():
    vibes_list = VibesListFactory()
    elsewhere = AcquisitionCampaignFactory()
    with pytest.raises(ValidationError) as error:
        parse_definition(
            {"logic": "all", "rules": [subscribed(vibes_list, acquisition_campaign=elsewhere.pk)]}
        )
    assert error.value.messages == [
        f"Rule 1: the acquisition campaign with id {elsewhere.pk} belongs to another Vibes list."
    ]


def test_subscribed_reads_a_leads_changes_through_an_index_never_the_whole_history():
    vibes_list = VibesListFactory()
    SubscriptionChangeFactory(subscription__vibes_list=vibes_list)
    SubscriptionChangeFactory()  # another list's
    for rule in (subscribed(vibes_list), not_subscribed(vibes_list, when="in past", days=7)):
        leads = Lead.objects.filter(parse_definition({"logic": "all", "rules": [rule]}).to_q())
        assert full_scans(leads, but="smscampaigns_lead") == []
        if connection.vendor == "sqlite":
            # By lead and list: by the list alone, SQLite would read the list's whole history per lead.
            assert any("subscription_change_lead_list" in line for line in query_plan(leads))
