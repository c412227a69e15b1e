"""A marketer sends a sample from the SMS message editor, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from marketing_activities.models import SampleSend
from tests.browser.test_marketing_activities import swapped
from tests.marketing_activities.factories import ProgramTokenFactory, SmsMessageFactory, TestNumberFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_sends_a_sample_rendered_for_a_chosen_person(logged_in, vibes_simulator):
    page = logged_in
    token = ProgramTokenFactory(name="offer", value="30% off")
    message = SmsMessageFactory(
        program=token.program, text='Hi {{lead.first_name|default:"there"}}, {{my.offer}}.'
    )
    LeadFactory(first_name="Zelda", last_name="Sample")
    TestNumberFactory(number="+13125550299", label="Team phone")
    page.goto(f"/marketing-activities/sms-messages/{message.pk}/")
    expect(page.locator("#sms-live .bubble")).to_have_text("Hi there, 30% off.")
    with swapped(page):
        page.get_by_label("Preview for a person").fill("Zelda")
    with swapped(page):
        page.get_by_role("button", name=re.compile("Zelda")).click()
    expect(page.locator("#sms-live .bubble")).to_have_text("Hi Zelda, 30% off.")
    page.get_by_label("Test number").select_option(label="Team phone (+13125550299)")
    with swapped(page):
        page.get_by_role("button", name="Send sample").click()
    expect(page.locator("#sms-editor")).to_contain_text("Sample sent to Team phone (+13125550299).")
    # The request answered once Vibes had answered: the simulator has it already.
    sent = [(m["to"], m["text"]) for m in vibes_simulator.messages()]
    assert sent == [("+13125550299", "Hi Zelda, 30% off.")]
    assert SampleSend.objects.get().status == SampleSend.Status.SENT
