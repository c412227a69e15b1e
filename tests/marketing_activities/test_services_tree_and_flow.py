"""The writes behind the interface (marketing_activities.services), called directly."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from marketing_activities import services
from marketing_activities.models import CampaignRun, FlowStep, Folder, SmartCampaign
from tests.marketing_activities.factories import (
    CampaignRunFactory,
    FlowStepFactory,
    FolderFactory,
    ProgramFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def order(campaign):
    return list(campaign.flow_steps.order_by("position").values_list("pk", "position"))


# --- Tree ---------------------------------------------------------------------------------


def test_folder_create_refuses_a_duplicate_top_level_name():
    services.folder_create(name="Holiday", parent=None)
    with pytest.raises(ValidationError):
        services.folder_create(name="Holiday", parent=None)


def test_names_are_trimmed():
    assert services.folder_create(name="  Spaced  ", parent=None).name == "Spaced"


def test_campaign_create_gives_the_campaign_its_own_empty_smart_list():
    campaign = services.campaign_create(name="New", program=ProgramFactory())
    assert campaign.smart_list.definition == {"logic": "all", "rules": []}


def test_campaign_create_refuses_a_duplicate_name_without_leaving_a_smart_list():
    from smscampaigns.models import SmartList

    program = ProgramFactory()
    services.campaign_create(name="Dup", program=program)
    before = SmartList.objects.count()
    with pytest.raises(ValidationError):
        services.campaign_create(name="Dup", program=program)
    assert SmartList.objects.count() == before


def test_folder_move_refuses_a_cycle():
    top = FolderFactory()
    grandchild = FolderFactory(parent=FolderFactory(parent=top))
    with pytest.raises(ValidationError) as error:
        services.folder_move(folder=top, parent=grandchild)
    assert "parent" in error.value.message_dict
    top.refresh_from_db()
    assert top.parent is None


def test_folder_delete_refuses_a_folder_with_subfolders():
    top = FolderFactory()
    FolderFactory(parent=top)
    with pytest.raises(ValidationError, match="is not empty"):
        services.folder_delete(folder=top)


def test_program_delete_refuses_a_program_with_campaigns():
    campaign = SmartCampaignFactory()
    with pytest.raises(ValidationError, match="is not empty"):
        services.program_delete(program=campaign.program)


def test_campaign_delete_refuses_a_running_campaign():
    run = CampaignRunFactory(status=CampaignRun.Status.RUNNING)
    with pytest.raises(ValidationError, match="is running"):
        services.campaign_delete(campaign=run.campaign)


def test_node_rename_of_a_campaign_checks_the_name():
    program = ProgramFactory()
    SmartCampaignFactory(program=program, name="Taken")
    campaign = SmartCampaignFactory(program=program)
    with pytest.raises(ValidationError):
        services.node_rename(node=campaign, name="Taken")


# --- Flow ---------------------------------------------------------------------------------


def test_flow_step_add_appends_by_default_and_renumbers():
    campaign = SmartCampaignFactory()
    first = services.flow_step_add(campaign=campaign, action=FlowStep.Action.SEND_SMS)
    second = services.flow_step_add(campaign=campaign, action=FlowStep.Action.UNSUBSCRIBE)
    third = services.flow_step_add(campaign=campaign, action=FlowStep.Action.SUBSCRIBE, position=0)
    assert order(campaign) == [(third.pk, 0), (first.pk, 1), (second.pk, 2)]


def test_flow_step_add_refuses_an_unknown_action():
    with pytest.raises(ValidationError):
        services.flow_step_add(campaign=SmartCampaignFactory(), action="send_email")


def test_flow_step_add_mends_gaps_left_by_older_edits():
    campaign = SmartCampaignFactory()
    a = FlowStepFactory(campaign=campaign, position=4)
    b = FlowStepFactory(campaign=campaign, position=9)
    new = services.flow_step_add(campaign=campaign, action=FlowStep.Action.SEND_SMS, position=1)
    assert order(campaign) == [(a.pk, 0), (new.pk, 1), (b.pk, 2)]


def test_reorder_rewrites_positions_in_the_given_order():
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    services.flow_steps_reorder(campaign=campaign, step_ids=[b.pk, c.pk, a.pk])
    assert order(campaign) == [(b.pk, 0), (c.pk, 1), (a.pk, 2)]


def test_reorder_refuses_steps_of_another_campaign():
    campaign = SmartCampaignFactory()
    a = FlowStepFactory(campaign=campaign, position=0)
    stranger = FlowStepFactory()
    with pytest.raises(ValidationError):
        services.flow_steps_reorder(campaign=campaign, step_ids=[stranger.pk])
    with pytest.raises(ValidationError):
        services.flow_steps_reorder(campaign=campaign, step_ids=[a.pk, stranger.pk])
    assert order(campaign) == [(a.pk, 0)]


def test_reorder_refuses_a_missing_or_repeated_step():
    campaign = SmartCampaignFactory()
    a, b = (FlowStepFactory(campaign=campaign, position=i) for i in range(2))
    with pytest.raises(ValidationError):
        services.flow_steps_reorder(campaign=campaign, step_ids=[a.pk])
    with pytest.raises(ValidationError):
        services.flow_steps_reorder(campaign=campaign, step_ids=[a.pk, a.pk, b.pk])


def test_flow_step_move_takes_an_index():
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    moved = services.flow_step_move(step=c, position=0)
    assert moved.position == 0
    assert order(campaign) == [(c.pk, 0), (a.pk, 1), (b.pk, 2)]
    services.flow_step_move(step=c, position=-5)
    assert order(campaign)[0] == (c.pk, 0)


def test_flow_step_delete_renumbers_the_rest():
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    services.flow_step_delete(step=a)
    assert order(campaign) == [(b.pk, 0), (c.pk, 1)]


def test_flow_step_update_keeps_an_incomplete_step_as_a_draft():
    step = FlowStepFactory(subscribe=True)
    services.flow_step_update(step=step, vibes_list=step.vibes_list, acquisition_campaign=None)
    step.refresh_from_db()
    assert step.problems() == {"acquisition_campaign": "Choose an acquisition campaign of the Vibes list."}


def test_flow_step_update_clears_an_acquisition_campaign_of_another_list():
    news, vip = VibesListFactory(), VibesListFactory()
    step = FlowStepFactory(subscribe=True, vibes_list=news)
    services.flow_step_update(
        step=step, vibes_list=vip, acquisition_campaign=AcquisitionCampaignFactory(vibes_list=news)
    )
    step.refresh_from_db()
    assert step.vibes_list == vip and step.acquisition_campaign is None


def test_flow_step_update_keeps_a_matching_acquisition_campaign():
    news = VibesListFactory()
    acquisition = AcquisitionCampaignFactory(vibes_list=news)
    step = FlowStepFactory(subscribe=True, vibes_list=None, acquisition_campaign=None)
    services.flow_step_update(step=step, vibes_list=news, acquisition_campaign=acquisition)
    step.refresh_from_db()
    assert step.problems() == {}


def test_flow_step_update_drops_a_message_from_a_subscribe_step():
    step = FlowStepFactory(subscribe=True)
    services.flow_step_update(
        step=step,
        sms_message=SmsMessageFactory(),
        vibes_list=step.vibes_list,
        acquisition_campaign=step.acquisition_campaign,
    )
    step.refresh_from_db()
    assert step.sms_message is None


# --- SMS messages and smart lists ----------------------------------------------------------


def test_sms_message_update_refuses_more_than_1600_characters():
    message = SmsMessageFactory()
    with pytest.raises(ValidationError) as error:
        services.sms_message_update(message=message, name=message.name, text="x" * 1601)
    assert "1601 characters long" in " ".join(error.value.messages)


def test_smart_list_edit_stores_rules_with_problems_as_typed():
    campaign = SmartCampaignFactory()
    definition = {"logic": "1 and 2", "rules": [{"field": "country", "op": "is", "value": "US"}]}
    services.smart_list_edit(smart_list=campaign.smart_list, definition=definition)
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.definition == definition
    assert campaign.problems()[-1] == "Smart list: Logic: there is no rule 2 (the rules are numbered 1 to 1)."


def test_smart_list_edit_writes_nothing_when_nothing_changed(django_assert_num_queries):
    campaign = SmartCampaignFactory()
    with django_assert_num_queries(0):
        services.smart_list_edit(
            smart_list=campaign.smart_list, definition=dict(campaign.smart_list.definition)
        )


@pytest.mark.parametrize(
    "definition",
    [
        [],
        {"rules": []},
        {"logic": None, "rules": []},
        {"logic": "all", "rules": ["x"]},
        {"logic": "all", "rules": [], "x": 1},
    ],
)
def test_smart_list_edit_refuses_what_is_not_a_smart_list(definition):
    campaign = SmartCampaignFactory()
    with pytest.raises(ValidationError, match='must be an object with "logic" and "rules"'):
        services.smart_list_edit(smart_list=campaign.smart_list, definition=definition)


# --- Schedule -------------------------------------------------------------------------------


def test_a_schedule_keeps_only_the_fields_it_uses():
    campaign = SmartCampaignFactory(is_active=True)
    services.campaign_schedule_update(
        campaign=campaign,
        qualification_rule="once",
        schedule=SmartCampaign.Schedule.DAILY,
        run_at=timezone.now(),
        run_time=datetime.time(9, 30),
        run_weekday=2,
    )
    campaign.refresh_from_db()
    assert campaign.run_at is None and campaign.run_weekday is None
    assert campaign.run_time == datetime.time(9, 30)
    assert campaign.next_run_at == campaign.compute_next_run()
    assert campaign.next_run_at is not None


def test_a_weekly_schedule_needs_a_weekday():
    with pytest.raises(ValidationError) as error:
        services.campaign_schedule_update(
            campaign=SmartCampaignFactory(),
            qualification_rule="once",
            schedule="weekly",
            run_time=datetime.time(9),
        )
    assert "run_weekday" in error.value.message_dict


def test_activating_needs_a_campaign_that_can_run():
    campaign = SmartCampaignFactory()  # no steps
    with pytest.raises(ValidationError, match="no steps"):
        services.campaign_set_active(campaign=campaign, active=True)
    FlowStepFactory(campaign=campaign)
    services.campaign_set_active(campaign=campaign, active=True)
    assert SmartCampaign.objects.get(pk=campaign.pk).is_active


def test_activating_sets_the_next_run():
    later = timezone.now() + datetime.timedelta(days=2)
    campaign = SmartCampaignFactory(schedule="once", run_at=later)
    FlowStepFactory(campaign=campaign)
    services.campaign_set_active(campaign=campaign, active=True)
    assert campaign.next_run_at == later
    services.campaign_set_active(campaign=campaign, active=False)
    assert campaign.next_run_at is None


def test_a_run_once_time_that_has_passed_is_refused():
    campaign = SmartCampaignFactory(is_active=True)
    with pytest.raises(ValidationError) as error:
        services.campaign_schedule_update(
            campaign=campaign,
            qualification_rule="once",
            schedule="once",
            run_at=timezone.now() - datetime.timedelta(minutes=2),
        )
    assert list(error.value.message_dict) == ["run_at"]
    assert "This time has passed" in error.value.message_dict["run_at"][0]
    assert SmartCampaign.objects.get(pk=campaign.pk).schedule == "none"


def test_activating_a_once_campaign_whose_time_passed_while_inactive_is_refused():
    campaign = SmartCampaignFactory(schedule="once", run_at=timezone.now() + datetime.timedelta(days=1))
    FlowStepFactory(campaign=campaign)
    # The day went by while the campaign was inactive.
    SmartCampaign.objects.filter(pk=campaign.pk).update(run_at=timezone.now() - datetime.timedelta(hours=1))
    campaign.refresh_from_db()
    with pytest.raises(ValidationError, match="has passed, so the campaign would never run"):
        services.campaign_set_active(campaign=campaign, active=True)
    assert not campaign.is_active
    assert not SmartCampaign.objects.get(pk=campaign.pk).is_active


def test_an_active_once_campaign_whose_time_passed_unstarted_cannot_be_kept_as_it_is():
    # Active with a past time and no next run (e.g. saved before next runs were kept in
    # step): it would never run, so it is refused until the time is moved on.
    past = timezone.now() - datetime.timedelta(hours=1)
    campaign = SmartCampaignFactory(is_active=True, schedule="once", run_at=past, next_run_at=None)
    with pytest.raises(ValidationError) as error:
        campaign.full_clean(exclude=["smart_list"])
    assert "would never run" in error.value.message_dict["run_at"][0]
    later = timezone.now() + datetime.timedelta(hours=1)
    services.campaign_schedule_update(
        campaign=campaign, qualification_rule="once", schedule="once", run_at=later
    )
    assert campaign.next_run_at == later


def test_a_due_once_campaign_keeps_its_start_when_deactivated_and_saved_again():
    due_at = timezone.now() - datetime.timedelta(seconds=30)
    campaign = SmartCampaignFactory(is_active=True, schedule="once", run_at=due_at, next_run_at=due_at)
    FlowStepFactory(campaign=campaign)
    services.campaign_schedule_update(
        campaign=campaign, qualification_rule="every_time", schedule="once", run_at=due_at
    )
    assert campaign.next_run_at == due_at  # still due: the scheduler starts it
    services.campaign_set_active(campaign=campaign, active=False)
    assert campaign.next_run_at is None
    with pytest.raises(ValidationError, match="has passed"):
        services.campaign_set_active(campaign=campaign, active=True)


def test_folder_names_stay_unique_after_a_move():
    target = FolderFactory()
    FolderFactory(parent=target, name="Same")
    moving = FolderFactory(name="Same")
    with pytest.raises(ValidationError):
        services.folder_move(folder=moving, parent=target)
    assert Folder.objects.get(pk=moving.pk).parent is None
