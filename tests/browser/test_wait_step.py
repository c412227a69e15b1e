"""A marketer adds a Wait step between two Send steps in a real browser, runs
the campaign, sees it "Running, in Wait Step", then the second step's Results.

The two minutes pass in the database: the test moves the run's Wait step
(its start and the run's resume time) two minutes back, as the clock would,
then the scheduler (`manage.py run_due_campaigns`) goes on with the run.
"""

import datetime

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from marketing_activities.models import CampaignRun, FlowStep, RunStep
from tests.browser.conftest import WAIT_MS
from tests.browser.test_marketing_activities import marketing_data, step_titles, swapped  # noqa: F401
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory, SmsMessageFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_wait_step_between_two_sends_waits_then_the_second_step_runs(
    marketing_data,  # noqa: F811
    vibes_simulator,
    settings,
    logged_in,
):
    settings.RUNNER_BACKGROUND = "thread"  # the Run button's run works in a thread of the live server
    news, program = marketing_data["news"], marketing_data["program"]
    campaign = SmartCampaignFactory(
        program=program,
        name="Teaser and reminder",
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "US"}]},
    )
    reminder = SmsMessageFactory(program=program, name="Reminder", text="Tomorrow: 30% off.")
    FlowStepFactory(
        campaign=campaign, position=0, vibes_list=news, sms_message=program.sms_messages.get(name="Teaser")
    )
    FlowStepFactory(campaign=campaign, position=1, vibes_list=news, sms_message=reminder)
    page = logged_in
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/flow/")

    # Drag Wait onto the top half of step 2: it comes between the two sends.
    with swapped(page):
        page.locator("[data-palette-action=wait]").drag_to(
            page.locator("#flow-steps .flow-step").nth(1), target_position={"x": 200, "y": 8}
        )
    assert step_titles(page) == ["Send SMS Message", "Wait", "Send SMS Message"]
    wait = page.locator("#flow-steps .flow-step").nth(1)
    expect(wait).to_contain_text("Say how long to wait, or until when.")
    with swapped(page):
        wait.get_by_label("Unit").select_option("minutes")
    with swapped(page):
        wait.get_by_label("Wait for").fill("2")
        wait.get_by_label("Wait for").press("Tab")  # leaving the field saves it
    wait = page.locator("#flow-steps .flow-step").nth(1)
    expect(wait.locator(".badge")).to_have_text("Ready")
    step = campaign.flow_steps.get(action=FlowStep.Action.WAIT)
    assert (step.position, step.wait_amount, step.wait_unit) == (1, 2, "minutes")

    # Run it: Schedule → Run now… → Yes, run now; the Results tab opens on the run.
    with swapped(page):
        page.get_by_role("tab", name="Schedule").click()
    with swapped(page):
        page.get_by_role("link", name="Run now…").click()
    page.get_by_role("button", name="Yes, run now").click()
    detail = page.locator("#run-detail")
    expect(detail.locator(".card-head .badge")).to_have_text("Running, in Wait Step", timeout=2 * WAIT_MS)
    run = campaign.runs.get()
    assert run.in_wait_step
    expect(detail.locator(".step-result").nth(0).locator('[data-outcome="sent"] .bar-count')).to_have_text(
        "6"
    )
    expect(detail.locator(".step-result").nth(1).locator('[data-outcome="waited"] .bar-count')).to_have_text(
        "6"
    )
    assert len(vibes_simulator.messages()) == 6

    # Two minutes pass (in the database), and the scheduler goes on with the run.
    two_minutes = datetime.timedelta(minutes=2)
    waiting = RunStep.objects.get(run=run, action=FlowStep.Action.WAIT)
    RunStep.objects.filter(pk=waiting.pk).update(planned_at=waiting.planned_at - two_minutes)
    CampaignRun.objects.filter(pk=run.pk).update(resume_at=run.resume_at - two_minutes)
    call_command("run_due_campaigns", verbosity=0)

    expect(detail.locator(".card-head .badge")).to_have_text("Completed", timeout=2 * WAIT_MS)
    expect(detail.locator(".step-result").nth(2).locator('[data-outcome="sent"] .bar-count')).to_have_text(
        "6"
    )
    texts = wait_until(
        lambda: len(vibes_simulator.messages()) == 12 and vibes_simulator.messages(), what="12 SMS"
    )
    assert sum(message["text"] == "Tomorrow: 30% off." for message in texts) == 6
