"""The SMS activity filters in the Smart List tab: offered like the other
fields, their constraints shown as they apply, saved at once, counted live."""

import datetime

import pytest
from django.utils import timezone

from marketing_activities.models import Outcome
from tests.marketing_activities.factories import (
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.marketing_activities.test_views_smart_list import REDRAW, TYPING, part, rules_post, stored
from tests.marketing_activities.ui_helpers import url
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def post(client, campaign, *rules, headers=REDRAW, action=""):
    response = client.post(
        url("campaign_smart_list", campaign.pk), rules_post(*rules, action=action), headers=headers
    )
    return response.content.decode()


def test_the_tab_offers_every_activity_filter_and_its_not_form(staff_client):
    html = staff_client.get(url("campaign_smart_list", SmartCampaignFactory().pk)).content.decode()
    fields = part(html, "rule-0-field")
    for label in (
        "Was Sent SMS",
        "Was Not Sent SMS",
        "SMS Was Delivered",
        "SMS Was Not Delivered",
        "SMS Bounced",
        "SMS Did Not Bounce",
        "Replied to SMS",
        "Did Not Reply to SMS",
        "Subscribed to Vibes List",
        "Not Subscribed to Vibes List",
        "Member of Vibes list",
    ):
        assert f">{label}</option>" in fields


def test_choosing_an_activity_filter_offers_any_message_at_any_time(staff_client):
    campaign = SmartCampaignFactory()
    html = post(
        staff_client, campaign, {"field": "was_sent_sms", "op": "is", "value": "US"}, action="field-0"
    )
    assert stored(campaign)["rules"] == [
        {"field": "was_sent_sms", "op": "is", "value": "US", "when": "any time"}
    ]
    assert "Rule 1: there is no SMS message with id US." in part(html, "rule-0-problem")
    html = post(staff_client, campaign, {"field": "was_sent_sms", "op": "is any", "when": "any time"})
    assert stored(campaign)["rules"] == [{"field": "was_sent_sms", "op": "is any", "when": "any time"}]
    assert 'name="rule-0-value"' not in html
    assert '<option value="any time" selected>' in part(html, "rule-0-when")
    assert 'name="rule-0-days"' not in html and 'name="rule-0-date"' not in html


def test_the_messages_are_offered_by_program_and_name(staff_client):
    welcome = SmsMessageFactory(name="Welcome", program__name="Spring")
    campaign = SmartCampaignFactory()
    html = post(staff_client, campaign, {"field": "was_sent_sms", "op": "is", "value": str(welcome.pk)})
    assert f'<option value="{welcome.pk}" selected>Spring · Welcome</option>' in part(html, "rule-0-value")
    assert stored(campaign)["rules"][0]["value"] == welcome.pk


@pytest.mark.parametrize(
    ("when", "shown", "hidden"),
    [
        ("in past", ["days"], ["date", "end_date"]),
        ("before", ["date"], ["days", "end_date"]),
        ("between", ["date", "end_date"], ["days"]),
    ],
)
def test_the_date_constraint_shows_the_inputs_it_takes(staff_client, when, shown, hidden):
    campaign = SmartCampaignFactory()
    html = post(staff_client, campaign, {"field": "sms_was_delivered", "op": "is any", "when": when})
    for key in shown:
        assert f'name="rule-0-{key}"' in html
    for key in hidden:
        assert f'name="rule-0-{key}"' not in html


def test_a_constraint_that_no_longer_applies_is_not_kept(staff_client):
    campaign = SmartCampaignFactory()
    post(
        staff_client,
        campaign,
        {"field": "sms_bounced", "op": "is any", "when": "before", "days": "7", "date": "2026-03-01"},
    )
    assert stored(campaign)["rules"] == [
        {"field": "sms_bounced", "op": "is any", "when": "before", "date": "2026-03-01", "bounce": "any"}
    ]


def test_typing_the_days_saves_them_and_the_count_follows(staff_client):
    step = RunStepFactory()
    for days_ago in (1, 2, 10):
        at = timezone.now() - datetime.timedelta(days=days_ago)
        RunResultFactory(run_step=step, lead=LeadFactory(), outcome=Outcome.SENT, called_at=at)
    campaign = SmartCampaignFactory()
    html = post(
        staff_client,
        campaign,
        {"field": "was_sent_sms", "op": "is any", "when": "in past", "days": "7"},
        headers=TYPING,
    )
    assert "2 people qualify" in part(html, "audience")
    assert stored(campaign)["rules"][0]["days"] == "7"


def test_a_bad_number_of_days_is_shown_at_its_rule_and_kept_as_typed(staff_client):
    campaign = SmartCampaignFactory()
    html = post(
        staff_client,
        campaign,
        {"field": "was_sent_sms", "op": "is any", "when": "in past", "days": "-3"},
        headers=TYPING,
    )
    assert "Rule 1: “-3” days is out of range; use a number of days from 1 to 36500." in part(
        html, "rule-0-problem"
    )
    assert "Saved with problems" in part(html, "save-status")
    assert stored(campaign)["rules"][0]["days"] == "-3"


def test_reply_text_is_offered_once_contains_or_is_is_chosen(staff_client):
    campaign = SmartCampaignFactory()
    html = post(staff_client, campaign, {"field": "replied_to_sms", "op": "is any", "reply": "any"})
    assert 'name="rule-0-text"' not in html
    html = post(staff_client, campaign, {"field": "replied_to_sms", "op": "is any", "reply": "contains"})
    assert 'name="rule-0-text"' in html
    assert "Rule 1: enter the text of the reply." in part(html, "rule-0-problem")


def test_subscribed_to_a_vibes_list_offers_its_acquisition_campaigns(staff_client):
    news = VibesListFactory(name="News")
    spring = AcquisitionCampaignFactory(vibes_list=news, name="Spring")
    campaign = SmartCampaignFactory()
    rule = {
        "field": "subscribed_to_vibes_list",
        "op": "is",
        "value": str(news.pk),
        "acquisition_campaign": str(spring.pk),
    }
    html = post(staff_client, campaign, rule)
    assert f'<option value="{spring.pk}" selected>News · Spring</option>' in part(
        html, "rule-0-acquisition_campaign"
    )
    assert stored(campaign)["rules"] == [{**rule, "value": news.pk, "when": "any time"}]
    assert part(html, "rule-0-problem").endswith(">")  # no problem


def test_choosing_another_field_drops_the_constraints_of_the_activity_filter_before(staff_client):
    campaign = SmartCampaignFactory()
    rule = {"field": "country", "op": "is any", "when": "in past", "days": "7", "bounce": "hard"}
    html = post(staff_client, campaign, rule, action="field-0")
    assert stored(campaign)["rules"] == [{"field": "country", "op": "is", "value": ""}]
    assert 'name="rule-0-when"' not in html
