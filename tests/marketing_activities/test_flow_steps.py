import pytest
from django.core.exceptions import ValidationError

from marketing_activities.models import FlowStep
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory, SmsMessageFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def test_send_needs_an_sms_message_and_a_vibes_list():
    step = FlowStepFactory(sms_message=None, vibes_list=None)
    assert step.problems() == {"vibes_list": "Choose a Vibes list.", "sms_message": "Choose an SMS message."}


def test_subscribe_needs_an_acquisition_campaign_of_its_own_list():
    news, vip = VibesListFactory(), VibesListFactory()
    step = FlowStepFactory(
        subscribe=True, vibes_list=news, acquisition_campaign=AcquisitionCampaignFactory(vibes_list=vip)
    )
    problem = step.problems()["acquisition_campaign"]
    assert f"belongs to the Vibes list “{vip.name}”, not to “{news.name}”" in problem


def test_subscribe_without_acquisition_campaign():
    step = FlowStepFactory(subscribe=True, acquisition_campaign=None)
    assert step.problems() == {"acquisition_campaign": "Choose an acquisition campaign of the Vibes list."}


def test_unsubscribe_needs_only_the_vibes_list():
    assert FlowStepFactory(unsubscribe=True).problems() == {}
    assert FlowStepFactory(unsubscribe=True, vibes_list=None).problems() == {
        "vibes_list": "Choose a Vibes list."
    }


def test_steps_refuse_fields_their_action_does_not_use():
    step = FlowStepFactory(unsubscribe=True, sms_message=SmsMessageFactory())
    assert "sms_message" in step.problems()


def test_valid_steps_of_each_kind_pass_full_clean():
    for step in (FlowStepFactory(), FlowStepFactory(subscribe=True), FlowStepFactory(unsubscribe=True)):
        step.full_clean()


def test_an_invalid_step_is_kept_as_a_draft_but_full_clean_refuses_it():
    step = FlowStepFactory(subscribe=True, acquisition_campaign=None)
    assert FlowStep.objects.filter(pk=step.pk).exists()
    with pytest.raises(ValidationError) as error:
        step.full_clean()
    assert "acquisition_campaign" in error.value.message_dict


def test_a_campaign_with_an_invalid_step_says_which_step_and_why():
    campaign = SmartCampaignFactory()
    FlowStepFactory(campaign=campaign, position=0)
    FlowStepFactory(campaign=campaign, position=1, subscribe=True, acquisition_campaign=None)
    assert campaign.problems() == [
        "Step 2 (Subscribe to Vibes List): Choose an acquisition campaign of the Vibes list."
    ]


def test_a_campaign_without_steps_or_rules_cannot_run():
    campaign = SmartCampaignFactory(smart_list__definition={"logic": "all", "rules": []})
    assert campaign.problems() == [
        "The flow has no steps.",
        "The smart list has no rules, so nobody qualifies.",
    ]


def test_a_campaign_with_bad_smart_list_logic_cannot_run():
    campaign = SmartCampaignFactory(
        smart_list__definition={"logic": "1 or 2", "rules": [{"field": "country", "op": "is", "value": "US"}]}
    )
    FlowStepFactory(campaign=campaign)
    assert campaign.problems() == ["Smart list: Logic: there is no rule 2 (the rules are numbered 1 to 1)."]


def test_a_new_campaign_gets_its_own_smart_list():
    campaign = SmartCampaignFactory(smart_list=None)
    assert campaign.smart_list.name == campaign.name
    assert campaign.smart_list.rules == []


def test_subscribe_through_a_campaign_without_a_status_from_vibes_asks_for_a_sync():
    step = FlowStepFactory(subscribe=True, acquisition_campaign__status="")
    assert step.problems() == {
        "acquisition_campaign": f"Vibes has not said whether the acquisition campaign "
        f"“{step.acquisition_campaign.name}” is active; sync the Vibes lists."
    }
