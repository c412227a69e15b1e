"""A marketer makes a trigger campaign in a real browser, and a person who
joins the list by keyword gets the welcome SMS at once."""

import re

import pytest
from playwright.sync_api import expect

from marketing_activities.models import FlowStep, SmartCampaign
from tests.browser.test_marketing_activities import swapped
from tests.marketing_activities.factories import (
    FolderFactory,
    ProgramFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NUMBER = "+15551238800"


def test_a_welcome_campaign_texts_a_person_who_joins_by_keyword(
    vibes_simulator, vibes_live_callbacks, settings, logged_in
):
    settings.RUNNER_BACKGROUND = "thread"  # the dispatcher works in a thread of the live server
    program = ProgramFactory(folder=FolderFactory(name="Welcome"), name="Onboarding")
    SmsMessageFactory(program=program, name="Welcome", text="Welcome to the newsletter!")
    news = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-STORE", vibes_list=news, name="Newsletter in-store keyword")
    campaign = SmartCampaignFactory(program=program, name="Welcome new subscribers")
    # Known to the app, but not subscribed yet: the keyword subscribes them.
    LeadFactory(mobile_phone=NUMBER, first_name="Ada")
    page = logged_in

    # Smart List: the trigger, in its own section above the rules.
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/smart-list/")
    triggers = page.locator("#smart-list-triggers")
    triggers.get_by_label("Trigger to add").select_option(label="Subscribes to Vibes List")
    with swapped(page):
        triggers.get_by_role("button", name="Add trigger").click()
    expect(triggers).to_contain_text("Trigger 1: choose a Vibes list.")
    with swapped(page):
        triggers.get_by_label("Trigger 1: a Vibes list").select_option(label="SMS Newsletter")
    expect(triggers).not_to_contain_text("choose a Vibes list")

    # Flow: Send SMS Message, added with the keyboard.
    with swapped(page):
        page.get_by_role("tab", name="Flow").click()
    page.locator("[data-palette-action=send_sms]").focus()
    with swapped(page):
        page.keyboard.press("Enter")
    step = page.locator("#flow-steps .flow-step")
    with swapped(page):
        step.get_by_label("SMS message").select_option(label="Welcome")
    with swapped(page):
        step.get_by_label("Vibes list").select_option(label="SMS Newsletter")
    expect(step.locator(".badge")).to_have_text("Ready")

    # Schedule: no schedule and no Run now, but Activate, and the triggers it will wait for.
    with swapped(page):
        page.get_by_role("tab", name="Schedule").click()
    expect(page.get_by_role("link", name="Run now…")).to_have_count(0)
    with swapped(page):
        page.get_by_role("button", name="Activate").click()
    expect(page.locator("#tab-panel")).to_contain_text("The campaign is active")
    expect(page.locator("#triggers")).to_contain_text("Subscribes to Vibes List: SMS Newsletter")
    assert SmartCampaign.objects.get(pk=campaign.pk).is_active
    assert campaign.flow_steps.get().action == FlowStep.Action.SEND_SMS

    # The person texts the keyword: Vibes subscribes them and tells the app.
    assert vibes_simulator.keyword(NUMBER, "JOIN")["joined"]
    welcome = wait_until(
        lambda: [m for m in vibes_simulator.messages() if m["to"] == NUMBER],
        what="the welcome SMS at the simulator",
        timeout=30,
    )
    assert [m["text"] for m in welcome] == ["Welcome to the newsletter!"]

    # Results: the run of that one person.
    with swapped(page):
        page.get_by_role("tab", name="Results").click()
    results = page.locator("#tab-panel")
    expect(results).to_contain_text("Trigger")  # started by
    expect(results).to_contain_text("Send SMS Message")
    person = results.locator("tr", has_text=NUMBER)
    expect(person).to_contain_text("Ada")
    expect(person).to_contain_text(re.compile(r"Sent|Delivered"))
