"""A marketer adds an SMS activity filter in the Smart List tab, in a real browser."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from marketing_activities.models import Outcome, SmsMessage
from smscampaigns.models import Lead
from tests.browser.test_marketing_activities import marketing_data, swapped  # noqa: F401  (a fixture)
from tests.marketing_activities.factories import (
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.smscampaigns.factories import SmartListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sent(first_name, message, days_ago):
    at = timezone.now() - datetime.timedelta(days=days_ago)
    RunResultFactory(
        run_step=RunStepFactory(sms_message=message),
        lead=Lead.objects.get(first_name=first_name),
        outcome=Outcome.DELIVERED,
        called_at=at,
        updated_at=at,
    )


def test_was_sent_sms_in_past_7_days_is_still_there_after_switching_tabs_and_counted(
    marketing_data,  # noqa: F811  (the fixture imported above)
    logged_in,
):
    page = logged_in
    teaser = SmsMessage.objects.get(name="Teaser")
    other = SmsMessageFactory(program=marketing_data["program"], name="Reminder")
    sent("Person1", teaser, days_ago=2)
    sent("Person2", teaser, days_ago=6)
    sent("Person3", teaser, days_ago=10)  # too long ago
    sent("Person4", other, days_ago=1)  # another message
    campaign = SmartCampaignFactory(
        program=marketing_data["program"],
        smart_list=SmartListFactory(definition={"logic": "all", "rules": []}),
    )
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/smart-list/")
    with swapped(page):
        page.get_by_role("button", name="Add rule").click()
    with swapped(page):
        page.get_by_label("Rule 1: field").select_option(label="Was Sent SMS")
    with swapped(page):
        page.get_by_label("Rule 1: operator").select_option("is")
    with swapped(page):
        page.get_by_label("Rule 1: value").select_option(label="Black Friday SMS · Teaser")
    with swapped(page):
        page.get_by_label("Rule 1: when").select_option("in past")
    # Typed, and straight to another tab: no pause, no Save button.
    page.get_by_label("Rule 1: days").fill("7")
    with swapped(page):
        page.get_by_role("tab", name="Flow").click()
    page.wait_for_url(f"**/campaigns/{campaign.pk}/flow/")
    with swapped(page):
        page.get_by_role("tab", name="Smart List").click()
    expect(page.get_by_label("Rule 1: field")).to_have_value("was_sent_sms")
    expect(page.get_by_label("Rule 1: operator")).to_have_value("is")
    expect(page.get_by_label("Rule 1: value")).to_have_value(str(teaser.pk))
    expect(page.get_by_label("Rule 1: when")).to_have_value("in past")
    expect(page.get_by_label("Rule 1: days")).to_have_value("7")
    expect(page.locator("#audience")).to_contain_text("2 people qualify")
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules == [
        {"field": "was_sent_sms", "op": "is", "value": teaser.pk, "when": "in past", "days": "7"}
    ]
