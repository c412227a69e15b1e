"""A marketer opens View Qualified People from a batch campaign's Schedule tab,
sees the people counted by reason, and pages through them."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_marketing_activities import swapped
from tests.marketing_activities.test_runner_planner import campaign_with, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import VibesListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_views_the_qualified_people_by_reason_and_pages(settings, logged_in):
    settings.RUNNER_BACKGROUND = "thread"  # the count runs in a thread of the live server
    news = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    campaign = campaign_with("send", vibes_list=news)
    first = [subscribed(news, first_name=f"Sub{n:02d}", last_name="Scriber") for n in range(55)]
    for n in range(5):
        LeadFactory(first_name=f"Not{n}", last_name="Subscribed")
    page = logged_in

    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/schedule/")
    with swapped(page):
        page.get_by_role("link", name="View qualified people").click()
    expect(page).to_have_url(f"/marketing-activities/campaigns/{campaign.pk}/qualified-people/")
    counts = page.locator("#qualified-counts")
    # Counted in the background, polled until the counts replace the progress.
    expect(counts).to_contain_text("60 people qualify")
    expect(counts).to_contain_text("Will get the SMS: 55")
    expect(counts).to_contain_text("Skipped: not subscribed to the Vibes list: 5")

    rows = page.locator("#qualified-list tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(first[0].first_name)
    with swapped(page):
        page.get_by_role("link", name="Next").click()
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text(first[50].first_name)
    expect(page.locator("#qualified-list")).to_contain_text("Not4 Subscribed")

    with swapped(page):
        counts.get_by_role("link", name="Skipped: not subscribed to the Vibes list: 5").click()
    expect(rows).to_have_count(5)
    expect(page.locator("#qualified-list")).not_to_contain_text("Scriber")
