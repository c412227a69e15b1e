"""Admin actions: Run now, Preview audience, resume; a lead's SMS activity."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.urls import reverse

from marketing_activities.activity import lead_results
from marketing_activities.models import CampaignRun, FlowStep
from marketing_activities.runner import run_create, run_execute
from tests.marketing_activities.test_runner_execution import make_campaign, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news(vibes_simulator, settings):
    settings.RUNNER_BACKGROUND = "inline"
    vibes_list = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=vibes_list)
    return vibes_list


def act(client, model, action, objects):
    return client.post(
        reverse(f"admin:marketing_activities_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects]},
        follow=True,
    )


def test_run_now_runs_the_campaign(admin_client, news, vibes_simulator, django_capture_on_commit_callbacks):
    subscribed(news)
    campaign = make_campaign(("send", news))
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, "smartcampaign", "run_now", [campaign])
    assert "started" in response.content.decode()
    assert CampaignRun.objects.get().status == CampaignRun.Status.COMPLETED
    assert len(vibes_simulator.messages()) == 1


def test_run_now_says_why_a_campaign_cannot_run(admin_client, news):
    campaign = make_campaign(("subscribe", news))
    FlowStep.objects.filter(campaign=campaign).update(acquisition_campaign=None)
    response = act(admin_client, "smartcampaign", "run_now", [campaign])
    assert "Step 1 (Subscribe to Vibes List): Choose an acquisition campaign" in response.content.decode()
    assert not CampaignRun.objects.exists()


def test_preview_audience_counts_by_reason_and_sends_nothing(admin_client, news, vibes_simulator):
    subscribed(news, email="in@example.com")
    subscribed(news, blocklisted=True)
    LeadFactory()
    campaign = make_campaign(("send", news))
    response = act(admin_client, "smartcampaign", "preview_audience", [campaign])
    content = response.content.decode()
    assert "3 people in the audience" in content
    assert "skipped: blocklisted: 1" in content
    assert "in@example.com" in content
    assert not CampaignRun.objects.exists()
    assert vibes_simulator.messages() == []


def test_a_leads_page_lists_its_sms_activity_newest_first(admin_client, news, vibes_simulator):
    lead = subscribed(news, mobile_phone="+15551239876")
    campaign = make_campaign(("send", news), ("unsubscribe", news))
    vibes_simulator.add_subscriber("101", "+15551239876", external_person_id=str(lead.pk))
    from marketing_activities.runner import run_create, run_execute

    run_execute(run=run_create(campaign=campaign, trigger="command"))
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    sent = content.index("(Send SMS Message): sent")
    unsubscribed = content.index("(Unsubscribe from Vibes List): unsubscribed")
    change = content.index("subscribed → unsubscribed")
    assert change < unsubscribed < sent  # newest first


def test_preview_audience_names_who_blocks_a_number(admin_client, news):
    eve = LeadFactory(
        first_name="Eve", last_name="Stone", mobile_phone="+15551239870", blocklisted=True, country="SE"
    )
    subscribed(news, mobile_phone="+15551239870")
    campaign = make_campaign(("send", news))
    content = act(admin_client, "smartcampaign", "preview_audience", [campaign]).content.decode()
    assert "skipped: number shared with a blocklisted person: 1" in content
    assert "1 because of Eve Stone" in content
    assert reverse("admin:smscampaigns_lead_change", args=[eve.pk]) in content


def test_a_leads_activity_shows_a_skip_for_its_numbers_block_and_whose_block_it_is(admin_client, news):
    LeadFactory(first_name="Eve", last_name="Stone", mobile_phone="+15551239871", marketing_suspended=True)
    lead = subscribed(news, mobile_phone="+15551239871")
    run_execute(run=run_create(campaign=make_campaign(("send", news)), trigger="command"))
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    assert "(Send SMS Message): skipped: number shared with a marketing-suspended person" in content
    assert "+15551239871 · because of Eve Stone" in content


def test_a_leads_activity_is_read_through_the_partial_index_on_its_results(db):
    if connection.vendor != "sqlite":
        pytest.skip("the plan asserted is SQLite's; PostgreSQL chooses by its statistics")
    # The condition must be written so that SQLite matches the query's bound
    # values against the index's constants (an IN list would not match).
    assert "USING INDEX run_result_lead_activity" in lead_results(LeadFactory())[:50].explain()
