"""Issue 18's "Done when", in a real browser: after runs through the simulator
with delivered and failed receipts and a reply, a marketer opens the message's
Dashboard tab, sees the figures and the chart, clicks a figure, gets the
people behind it, and exports them."""

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from marketing_activities.models import RunStep, SmsReply
from tests.browser.test_marketing_activities import swapped
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NUMBERS = {"Ann": "+15551239101", "Ben": "+15551239102", "Cat": "+15551239103"}

CHART_DATA = """(id) => {
    const chart = window.Chart && window.Chart.getChart(document.getElementById(id));
    return chart ? chart.data.datasets.map((dataset) => dataset.data) : null;
}"""


@pytest.fixture
def news(vibes_simulator):
    """The simulator's newsletter ("101"), as tests/marketing_activities/conftest.py has it."""
    vibes_list = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=vibes_list)
    return vibes_list


def settled(run, code, count):
    """Wait until every SMS of the run has its receipt."""
    wait_until(lambda: RunStep.objects.get(run=run).counts == {code: count}, what=f"{count} receipts: {code}")


def test_a_marketer_reads_a_messages_dashboard_and_exports_the_people_behind_a_figure(
    news, vibes_simulator, vibes_live_callbacks, logged_in
):
    page = logged_in
    for name, number in NUMBERS.items():
        subscribed(news, first_name=name, last_name="Reader", mobile_phone=number)
    campaign = make_campaign(("send", news))
    message = campaign.flow_steps.get().sms_message
    # The same message twice: first every SMS is delivered, then every one fails.
    vibes_simulator.set_faults(receipt_failure_rate=0)
    settled(execute(campaign, vibes_simulator), "delivered", 3)
    vibes_simulator.reply(NUMBERS["Ann"], "Yes please")
    wait_until(lambda: SmsReply.objects.exists(), what="Ann's reply")
    vibes_simulator.set_faults(receipt_failure_rate=1)
    settled(execute(campaign, vibes_simulator), "delivery_failed", 3)

    page.goto(f"/marketing-activities/sms-messages/{message.pk}/")
    with swapped(page):
        page.get_by_role("tab", name="Dashboard").click()
    expect(page.get_by_role("tab", name="Dashboard")).to_have_attribute("aria-selected", "true")
    summary = page.locator(".summary-table")
    for figure, count in (("sent", "6"), ("delivered", "3"), ("failed", "3"), ("replied", "1")):
        expect(summary.locator(f'[data-figure="{figure}"]')).to_have_text(count)
    expect(summary).to_contain_text("50.0 %")  # delivery and bounce rates

    # The charts are Chart.js's, drawn from the tables beside them.
    page.wait_for_function(f"() => ({CHART_DATA})('progression-chart') !== null")
    assert page.evaluate(CHART_DATA, "progression-chart") == [[6, 3]]
    over_time = page.evaluate(CHART_DATA, "over-time-chart")
    assert len(over_time[0]) == 30 and sum(over_time[0]) == 6
    # Another figure redraws the panel and its chart.
    with swapped(page):
        page.get_by_label("Figure").select_option("replied")
    replied = (
        f"() => {{ const data = ({CHART_DATA})('over-time-chart'); return data && data[0].includes(1); }}"
    )
    page.wait_for_function(replied)

    summary.locator('[data-figure="replied"]').click()
    page.wait_for_url("**/dashboard/people/?figure=replied*")
    people = page.locator("#figure-people")
    expect(people).to_contain_text("Ann Reader")
    expect(people.locator("tbody tr")).to_have_count(1)
    expect(people).not_to_contain_text("Ben Reader")

    with page.expect_download() as download:
        people.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [(row["first name"], row["number"], row["replied"]) for row in rows] == [
        ("Ann", NUMBERS["Ann"], "yes")
    ]
