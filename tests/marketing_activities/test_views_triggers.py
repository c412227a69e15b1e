"""Triggers in the Smart List tab, and a trigger campaign's Schedule tab and admin actions."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from marketing_activities.models import SmartCampaign
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory, SmsMessageFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.vibes.factories import VibesListFactory

pytestmark = pytest.mark.django_db

TRIGGERS = {**HTMX, "HX-Target": "smart-list-triggers"}
RULE = {"field": "country", "op": "is", "value": "US"}


def triggers_post(*triggers, action="", new_trigger=""):
    data = {"trigger_count": len(triggers), "action": action, "new_trigger": new_trigger}
    for index, trigger in enumerate(triggers):
        for key, value in trigger.items():
            data[f"trigger-{index}-{key}"] = value
    return data


def stored(campaign):
    campaign.smart_list.refresh_from_db()
    return campaign.smart_list.definition


def trigger_campaign(vibes_list, **options):
    """A campaign with the trigger "Subscribes to Vibes List" and a ready Send SMS step."""
    campaign = SmartCampaignFactory(
        smart_list__definition={
            "logic": "all",
            "rules": [],
            "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": str(vibes_list.pk)}],
        },
        **options,
    )
    FlowStepFactory(
        campaign=campaign, vibes_list=vibes_list, sms_message=SmsMessageFactory(program=campaign.program)
    )
    return campaign


def test_adding_a_trigger_saves_it_as_a_draft_that_says_what_it_lacks(staff_client):
    campaign = SmartCampaignFactory(smart_list__definition={"logic": "all", "rules": [RULE]})
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        triggers_post(action="add-trigger", new_trigger="subscribes_vibes_list"),
        headers=TRIGGERS,
    )
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="smart-list-triggers"' in html
    assert "Trigger 1: choose a Vibes list." in html
    assert stored(campaign) == {
        "logic": "all",
        "rules": [RULE],
        "triggers": [{"trigger": "subscribes_vibes_list", "vibes_list": "", "acquisition_campaign": ""}],
    }


def test_a_chosen_list_is_saved_and_the_problem_goes(staff_client):
    news = VibesListFactory(name="SMS Newsletter")
    campaign = SmartCampaignFactory()
    chosen = {"trigger": "subscribes_vibes_list", "vibes_list": str(news.pk), "acquisition_campaign": ""}
    html = staff_client.post(
        url("campaign_smart_list", campaign.pk), triggers_post(chosen), headers=TRIGGERS
    ).content.decode()
    assert "choose a Vibes list" not in html
    assert stored(campaign)["triggers"] == [chosen]
    assert SmartCampaign.objects.get(pk=campaign.pk).is_trigger_campaign


def test_removing_the_last_trigger_makes_a_batch_campaign_again(staff_client):
    campaign = trigger_campaign(VibesListFactory())
    staff_client.post(
        url("campaign_smart_list", campaign.pk),
        triggers_post({"trigger": "subscribes_vibes_list", "vibes_list": ""}, action="remove-trigger-0"),
        headers=TRIGGERS,
    )
    assert "triggers" not in stored(campaign)
    assert not SmartCampaign.objects.get(pk=campaign.pk).is_trigger_campaign


def test_saving_the_rules_keeps_the_triggers(staff_client):
    campaign = trigger_campaign(VibesListFactory())
    before = stored(campaign)["triggers"]
    data = {"rule_count": 1, "logic_mode": "all", "logic": "", "action": ""}
    data.update({f"rule-0-{key}": value for key, value in RULE.items()})
    staff_client.post(
        url("campaign_smart_list", campaign.pk), data, headers={**HTMX, "HX-Target": "save-status"}
    )
    assert stored(campaign) == {"logic": "all", "rules": [RULE], "triggers": before}


def test_an_unknown_trigger_is_named_at_its_number(staff_client):
    campaign = SmartCampaignFactory()
    html = staff_client.post(
        url("campaign_smart_list", campaign.pk), triggers_post({"trigger": "clicks_banner"}), headers=TRIGGERS
    ).content.decode()
    assert "Trigger 1: “clicks_banner” is not a trigger." in html


def test_without_htmx_a_trigger_change_redirects_to_the_tab(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        triggers_post(action="add-trigger", new_trigger="subscribes_vibes_list"),
    )
    assert response.status_code == 302
    assert response["Location"] == url("campaign_smart_list", campaign.pk)


def test_the_schedule_tab_of_a_trigger_campaign_offers_activate_and_shows_its_triggers(staff_client):
    campaign = trigger_campaign(VibesListFactory(name="SMS Newsletter"))
    html = staff_client.get(url("campaign_schedule", campaign.pk)).content.decode()
    assert "Subscribes to Vibes List: SMS Newsletter" in html
    assert "Run now…" not in html
    assert "When it runs" not in html  # never scheduled
    assert 'value="activate"' in html


def test_activating_a_trigger_campaign_says_its_triggers_run_the_flow(staff_client):
    campaign = trigger_campaign(VibesListFactory())
    response = staff_client.post(url("campaign_schedule", campaign.pk), {"action": "activate"}, follow=True)
    assert "its triggers now run the flow for each person they fire for" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.is_active
    assert campaign.next_run_at is None


def test_a_trigger_campaign_refuses_a_schedule(staff_client):
    campaign = trigger_campaign(VibesListFactory())
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        {"action": "save", "schedule": "daily", "run_time": "09:00", "qualification_rule": "once"},
    )
    assert "A trigger campaign is never scheduled" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.schedule == "none"


def test_the_admin_action_activate_names_the_triggers(admin_client):
    campaign = trigger_campaign(VibesListFactory(name="SMS Newsletter"))
    response = admin_client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "activate", ACTION_CHECKBOX_NAME: [campaign.pk], "index": 0},
        follow=True,
    )
    assert (
        "it runs for each person when: Subscribes to Vibes List: SMS Newsletter" in response.content.decode()
    )
    campaign.refresh_from_db()
    assert campaign.is_active


def test_the_admin_action_deactivate_stops_a_trigger_campaign(admin_client):
    campaign = trigger_campaign(VibesListFactory(), is_active=True)
    admin_client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "deactivate", ACTION_CHECKBOX_NAME: [campaign.pk], "index": 0},
    )
    campaign.refresh_from_db()
    assert not campaign.is_active


def test_a_trigger_campaign_without_rules_says_everyone_it_fires_for_qualifies(staff_client):
    campaign = trigger_campaign(VibesListFactory())
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "No rules: everyone a trigger fires for goes through the flow." in html
    assert "Everyone a trigger fires for." in html
    assert "nobody qualifies" not in html
