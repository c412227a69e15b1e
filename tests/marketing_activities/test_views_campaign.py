"""A campaign's tab strip, the Schedule tab and the Run now button."""

import datetime
import json
import re

import pytest
from django.utils import timezone

from marketing_activities.models import CampaignRun, SmartCampaign
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from tests.marketing_activities.factories import CampaignRunFactory, FlowStepFactory, SmartCampaignFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

TABS = ["campaign_smart_list", "campaign_flow", "campaign_schedule", "campaign_results"]


def test_a_campaign_opens_on_its_smart_list_tab(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.get(url("campaign", campaign.pk))
    assert response["Location"] == url("campaign_smart_list", campaign.pk)
    assert staff_client.get(url("campaign", 999999)).status_code == 404


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_is_a_full_page_and_a_partial(staff_client, tab):
    campaign = SmartCampaignFactory(name="Tabbed")
    full = staff_client.get(url(tab, campaign.pk))
    panel = staff_client.get(url(tab, campaign.pk), headers={**HTMX, "HX-Target": "tab-panel"})
    detail = staff_client.get(url(tab, campaign.pk), headers={**HTMX, "HX-Target": "detail"})
    assert full.status_code == panel.status_code == detail.status_code == 200
    assert b"<html" in full.content and b'id="tree"' in full.content
    assert b"<html" not in panel.content and panel.content.lstrip().startswith(b'<section id="tab-panel"')
    assert detail.content.lstrip().startswith(b'<div id="detail"')
    for each in (full, panel):
        assert b'role="tablist"' in each.content and b"Tabbed" in each.content
        assert each.content.count(b'aria-selected="true"') == 1
        assert b'hx-push-url="true"' in each.content


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_answers_404_for_an_unknown_campaign(staff_client, tab):
    assert staff_client.get(url(tab, 999999)).status_code == 404


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_needs_a_login(client, tab):
    response = client.get(url(tab, SmartCampaignFactory().pk))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_refuses_non_staff(clerk_client, tab):
    assert clerk_client.get(url(tab, SmartCampaignFactory().pk)).status_code == 403


# --- Schedule ----------------------------------------------------------------------------------


def schedule_post(**fields):
    data = {
        "action": "save",
        "qualification_rule": "once",
        "schedule": "none",
        "run_at": "",
        "run_time": "",
        "run_weekday": "",
    }
    data.update(fields)
    return data


def test_saving_a_daily_schedule(staff_client):
    campaign = SmartCampaignFactory(is_active=True)
    response = staff_client.post(
        url("campaign_schedule", campaign.pk), schedule_post(schedule="daily", run_time="09:30")
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.schedule == "daily" and campaign.run_time == datetime.time(9, 30)
    assert campaign.next_run_at == campaign.compute_next_run()


def test_saving_with_htmx_shows_the_tab_with_a_message(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_schedule", campaign.pk), schedule_post(qualification_rule="every_time"), headers=HTMX
    )
    assert b"Schedule saved." in response.content
    assert b"<html" not in response.content
    campaign.refresh_from_db()
    assert campaign.qualification_rule == "every_time"


def test_a_once_schedule_without_a_date_shows_the_error_at_the_field(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_schedule", campaign.pk), schedule_post(schedule="once"), headers=HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    when_once = html[html.index('class="when-once"') :].split('class="when-recurring"')[0]
    assert "Choose when the campaign runs." in when_once
    assert SmartCampaign.objects.get(pk=campaign.pk).schedule == "none"


def test_a_weekly_schedule_without_a_weekday_shows_the_error_and_keeps_the_time(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(schedule="weekly", run_time="07:15"),
        headers=HTMX,
    )
    html = response.content.decode()
    assert "Choose the day of the week the campaign runs." in html
    assert 'value="07:15"' in html


def test_a_bad_time_is_a_field_error(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_schedule", campaign.pk), schedule_post(schedule="daily", run_time="25:99")
    )
    assert response.status_code == 200
    assert b"Enter a valid time." in response.content


def test_a_once_schedule_in_the_future_sets_the_next_run_when_active(staff_client):
    campaign = SmartCampaignFactory(is_active=True)
    later = (timezone.localtime() + datetime.timedelta(days=3)).replace(second=0, microsecond=0)
    staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(schedule="once", run_at=later.strftime("%Y-%m-%dT%H:%M")),
    )
    campaign.refresh_from_db()
    assert campaign.next_run_at == later


def minutes_ago(minutes):
    return (timezone.localtime() - datetime.timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def test_a_run_once_time_that_has_passed_is_refused_at_the_field(staff_client):
    campaign = SmartCampaignFactory(is_active=True)
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(schedule="once", run_at=minutes_ago(5).strftime("%Y-%m-%dT%H:%M")),
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    when_once = html[html.index('class="when-once"') :].split('class="when-recurring"')[0]
    assert "This time has passed (it is now " in when_once and "choose a later time." in when_once
    campaign.refresh_from_db()
    assert (campaign.schedule, campaign.run_at, campaign.next_run_at) == ("none", None, None)


def test_the_date_picker_offers_no_time_that_has_passed(staff_client):
    before = timezone.localtime().replace(second=0, microsecond=0, tzinfo=None)
    html = staff_client.get(url("campaign_schedule", SmartCampaignFactory().pk)).content.decode()
    after = timezone.localtime().replace(tzinfo=None)
    run_at = html[html.index('name="run_at"') :].split(">")[0]
    earliest = datetime.datetime.strptime(run_at.split('min="')[1].split('"')[0], "%Y-%m-%dT%H:%M")
    assert before <= earliest <= after


def test_activating_a_once_campaign_whose_time_passed_while_inactive_is_refused(staff_client):
    campaign = FlowStepFactory().campaign
    SmartCampaign.objects.filter(pk=campaign.pk).update(schedule="once", run_at=minutes_ago(30))
    response = staff_client.post(url("campaign_schedule", campaign.pk), {"action": "activate"}, headers=HTMX)
    html = response.content.decode()
    assert "The campaign cannot be activated yet:" in html
    assert "has passed, so the campaign would never run: choose a later time." in html
    assert not SmartCampaign.objects.get(pk=campaign.pk).is_active


def test_a_campaign_that_ran_once_keeps_its_time_when_its_rule_changes(staff_client):
    # The scheduler deactivated it after its run; the form posts the old time back.
    ran_at = minutes_ago(60 * 24)
    campaign = SmartCampaignFactory(schedule="once", run_at=ran_at)
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(
            schedule="once", run_at=ran_at.strftime("%Y-%m-%dT%H:%M"), qualification_rule="every_time"
        ),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.qualification_rule, campaign.run_at, campaign.next_run_at) == (
        "every_time",
        ran_at,
        None,
    )


def test_an_active_once_campaign_that_is_due_stays_due_when_saved(staff_client):
    # Its time came a minute ago and the scheduler has not started it yet.
    due_at = minutes_ago(1)
    campaign = SmartCampaignFactory(is_active=True, schedule="once", run_at=due_at, next_run_at=due_at)
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        schedule_post(
            schedule="once", run_at=due_at.strftime("%Y-%m-%dT%H:%M"), qualification_rule="every_time"
        ),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.is_active, campaign.next_run_at) == (True, due_at)


def test_activating_a_campaign_that_cannot_run_lists_why(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(url("campaign_schedule", campaign.pk), {"action": "activate"}, headers=HTMX)
    assert b"The campaign cannot be activated yet:" in response.content
    assert b"The flow has no steps." in response.content
    assert not SmartCampaign.objects.get(pk=campaign.pk).is_active


def test_activate_and_deactivate(staff_client):
    campaign = FlowStepFactory().campaign
    staff_client.post(url("campaign_schedule", campaign.pk), {"action": "activate"}, headers=HTMX)
    assert SmartCampaign.objects.get(pk=campaign.pk).is_active
    response = staff_client.post(url("campaign_schedule", campaign.pk), {"action": "deactivate"})
    assert response.status_code == 302
    assert not SmartCampaign.objects.get(pk=campaign.pk).is_active


# --- Run now -------------------------------------------------------------------------------------


def counted(pk: int) -> str:
    """The confirmation's counts, asked for in a request of their own."""
    return url("campaign_run_now", pk) + "?count=exact"


@pytest.fixture
def counts_of(staff_client, settings, django_capture_on_commit_callbacks):
    """The confirmation once its count has run: the counts request starts it
    (here in this process, as its transaction commits), the poll shows it."""
    settings.RUNNER_BACKGROUND = "inline"

    def get(pk: int, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            started = staff_client.get(counted(pk), headers={**HTMX, "HX-Target": "run-now"})
        count = re.search(r"\?counting=(\d+)", started.content.decode()).group(1)
        return staff_client.get(url("campaign_run_now", pk) + f"?counting={count}", **kwargs)

    return get


def test_run_now_asks_for_confirmation_with_the_audience_count(staff_client, counts_of):
    LeadFactory.create_batch(4, country="US")
    campaign = FlowStepFactory().campaign
    response = counts_of(campaign.pk, headers={**HTMX, "HX-Target": "run-now"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="run-now"')
    assert "4 people qualify" in html
    assert '<button type="submit" class="button primary">Yes, run now</button>' in html


def test_run_now_opens_counting_with_the_run_button_disabled(staff_client):
    LeadFactory.create_batch(4, country="US")
    campaign = FlowStepFactory().campaign
    html = staff_client.get(
        url("campaign_run_now", campaign.pk), headers={**HTMX, "HX-Target": "run-now"}
    ).content.decode()
    assert html.lstrip().startswith('<section id="run-now"')
    assert "Counting them all…" in html and "people qualify" not in html
    # htmx asks for the counts as the confirmation appears; without JavaScript, the link does.
    assert f'hx-get="{counted(campaign.pk)}" hx-trigger="load"' in html
    assert f'<a href="{counted(campaign.pk)}">' in html
    assert '<button type="submit" class="button primary" disabled>Yes, run now</button>' in html


def test_the_confirmations_counts_without_htmx_are_the_whole_page(staff_client, counts_of):
    LeadFactory.create_batch(4, country="US")
    campaign = FlowStepFactory().campaign
    html = counts_of(campaign.pk).content.decode()
    assert "<html" in html and "4 people qualify" in html


def test_run_now_confirmation_is_a_page_of_its_own_without_htmx(staff_client):
    campaign = FlowStepFactory().campaign
    assert b"<html" in staff_client.get(url("campaign_run_now", campaign.pk)).content


@pytest.mark.parametrize("name", ["campaign_run_now", *TABS])
def test_a_page_and_its_partial_share_a_url_so_caches_must_vary_on_htmx(staff_client, name):
    campaign = FlowStepFactory().campaign
    for headers in ({}, HTMX, {**HTMX, "HX-Target": "tab-panel"}):
        vary = staff_client.get(url(name, campaign.pk), headers=headers)["Vary"]
        assert "HX-Request" in vary and "HX-Target" in vary


def test_run_now_shows_why_a_campaign_cannot_run_before_asking(staff_client):
    campaign = SmartCampaignFactory()
    html = staff_client.get(
        url("campaign_run_now", campaign.pk), headers={**HTMX, "HX-Target": "run-now"}
    ).content.decode()
    assert "The campaign cannot run yet:" in html
    assert "The flow has no steps." in html
    assert "Yes, run now" not in html


def test_an_active_run_links_to_its_results(staff_client):
    run = CampaignRunFactory(status=CampaignRun.Status.RUNNING)
    html = staff_client.get(url("campaign_schedule", run.campaign.pk)).content.decode()
    assert "Watch it in Results" in html
    assert f"?run={run.pk}" in html


@pytest.fixture
def no_dispatch(monkeypatch):
    """The real runner creates the run; nothing works on it in the background."""
    dispatched = []
    monkeypatch.setattr("marketing_activities.tasks.run_dispatch", dispatched.append)
    return dispatched


def test_the_run_button_starts_a_run_and_opens_its_results(staff_client, no_dispatch):
    campaign = FlowStepFactory().campaign
    response = staff_client.post(url("campaign_run_now", campaign.pk), headers=HTMX)
    run = campaign.runs.get()
    assert (run.status, run.trigger, run.requested_by) == (
        CampaignRun.Status.QUEUED,
        CampaignRun.Trigger.UI,
        staff_client.user,
    )
    assert no_dispatch == [run]
    location = json.loads(response["HX-Location"])
    assert location["path"] == url("campaign_results", campaign.pk) + f"?run={run.pk}"
    assert location["target"] == "#tab-panel"


def test_the_run_button_without_htmx_redirects_to_the_results(staff_client, no_dispatch):
    campaign = FlowStepFactory().campaign
    response = staff_client.post(url("campaign_run_now", campaign.pk))
    assert response["Location"].startswith(url("campaign_results", campaign.pk) + "?run=")


def test_the_run_button_shows_the_runners_problems(staff_client, no_dispatch):
    campaign = FlowStepFactory(vibes_list=None, position=0).campaign
    response = staff_client.post(
        url("campaign_run_now", campaign.pk), headers={**HTMX, "HX-Target": "run-now"}
    )
    assert response.status_code == 200
    assert "Step 1 (Send SMS Message): Choose a Vibes list." in response.content.decode()
    assert not campaign.runs.exists()


def test_a_second_run_while_one_is_active_is_refused_with_a_message(staff_client, no_dispatch):
    campaign = FlowStepFactory().campaign
    CampaignRunFactory(campaign=campaign, status=CampaignRun.Status.RUNNING)
    response = staff_client.post(
        url("campaign_run_now", campaign.pk), headers={**HTMX, "HX-Target": "run-now"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "is already running" in html and "Watch it in Results" in html
    assert campaign.runs.count() == 1


def test_the_confirmation_shows_each_steps_planned_counts(staff_client, counts_of):
    step = FlowStepFactory(position=0)
    LeadFactory.create_batch(2, country="US")
    html = counts_of(step.campaign.pk, headers={**HTMX, "HX-Target": "run-now"}).content.decode()
    assert "1. Send SMS Message" in html
    assert "Skipped: not subscribed to the Vibes list: 2" in html
    assert not step.campaign.runs.exists()  # the preview wrote nothing


def test_the_confirmation_names_who_blocks_a_number(staff_client, counts_of):
    step = FlowStepFactory(position=0)
    LeadFactory(first_name="Eve", last_name="Stone", mobile_phone="+12025550401", blocklisted=True)
    for _ in range(2):
        SubscriptionFactory(
            lead=LeadFactory(mobile_phone="+12025550401", country="US"), vibes_list=step.vibes_list
        )
    html = counts_of(step.campaign.pk, headers={**HTMX, "HX-Target": "run-now"}).content.decode()
    assert "Skipped: number shared with a blocklisted person: 2" in html
    assert "2 because of Eve Stone" in html
    assert not step.campaign.runs.exists()


def test_non_staff_cannot_run_a_campaign(clerk_client, no_dispatch):
    campaign = FlowStepFactory().campaign
    assert clerk_client.post(url("campaign_run_now", campaign.pk)).status_code == 403
    assert not campaign.runs.exists()


# --- Nobody left to qualify ("once") ------------------------------------------------------------


@pytest.fixture
def ran_for_everyone():
    """A campaign under "once" whose earlier run had all three people of its smart list."""
    LeadFactory.create_batch(3, country="US")
    campaign = FlowStepFactory(campaign__qualification_rule="once").campaign
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.UI)
    plan_step(run.steps.get(position=0))
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    return campaign


def test_run_now_says_nobody_is_left_and_offers_no_run(staff_client, ran_for_everyone, counts_of):
    html = counts_of(ran_for_everyone.pk, headers={**HTMX, "HX-Target": "run-now"}).content.decode()
    assert html.lstrip().startswith('<section id="run-now"')
    assert (
        "Nobody is left to qualify: all 3 people the smart list picks have already run through this flow, "
        "and each person can run through it once." in html
    )
    assert "Each person can run through the flow every time" in html  # how to run it again
    assert "Yes, run now" not in html and "people qualify" not in html


def test_the_run_button_starts_no_run_when_nobody_is_left(staff_client, ran_for_everyone, no_dispatch):
    response = staff_client.post(
        url("campaign_run_now", ran_for_everyone.pk), headers={**HTMX, "HX-Target": "run-now"}
    )
    assert response.status_code == 200
    assert "Nobody is left to qualify" in response.content.decode()
    assert ran_for_everyone.runs.count() == 1 and no_dispatch == []


def test_a_new_person_makes_run_now_ask_again(staff_client, ran_for_everyone, counts_of):
    LeadFactory(country="US")
    html = counts_of(ran_for_everyone.pk, headers={**HTMX, "HX-Target": "run-now"}).content.decode()
    assert "4 people qualify" in html and "Yes, run now" in html
    assert "Skipped: already ran through this flow: 3" in html
