"""The Flow tab: palette, add, reorder (drag and keyboard), the step dropdowns, delete."""

import json

import pytest

from marketing_activities.models import FlowStep
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory, SmsMessageFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def positions(campaign):
    return list(campaign.flow_steps.order_by("position").values_list("pk", flat=True))


def test_the_flow_tab_renders_the_full_page(staff_client):
    step = FlowStepFactory()
    html = staff_client.get(url("campaign_flow", step.campaign.pk)).content.decode()
    assert "<html" in html
    assert 'data-palette-action="send_sms"' in html
    assert 'data-palette-action="subscribe_vibes_list"' in html
    assert 'data-palette-action="unsubscribe_vibes_list"' in html
    assert f'id="flow-step-{step.pk}"' in html


def test_the_flow_tab_answers_htmx_with_the_tab_panel_and_its_tab_strip(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.get(url("campaign_flow", campaign.pk), headers={**HTMX, "HX-Target": "tab-panel"})
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="tab-panel"')
    assert 'id="tab-flow" role="tab"' in html
    assert 'aria-selected="true"' in html.split('id="tab-flow"')[1].split(">")[0]
    assert response["Vary"].count("HX-Request") == 1


def test_the_flow_tab_shows_the_source_documents_note(staff_client):
    html = staff_client.get(url("campaign_flow", SmartCampaignFactory().pk)).content.decode()
    assert "only people subscribed to that list get the SMS" in html
    assert "One SMS per phone number" in html
    assert "blocklisted or marketing suspended" in html
    assert "Needs only the Vibes list." in html


def test_unknown_campaigns_answer_404(staff_client):
    assert staff_client.get(url("campaign_flow", 999999)).status_code == 404
    assert staff_client.post(url("flow_step_add", 999999), {"action": "send_sms"}).status_code == 404


def test_non_staff_cannot_change_a_flow(clerk_client):
    campaign = SmartCampaignFactory()
    assert clerk_client.post(url("flow_step_add", campaign.pk), {"action": "send_sms"}).status_code == 403
    assert not campaign.flow_steps.exists()


@pytest.mark.parametrize("count", [2, 10])
def test_the_flow_tab_takes_the_same_queries_whatever_the_number_of_steps(
    staff_client, django_assert_max_num_queries, count
):
    campaign = SmartCampaignFactory()
    kinds = [{}, {"subscribe": True}, {"unsubscribe": True}]
    for position in range(count):
        FlowStepFactory(campaign=campaign, position=position, **kinds[position % 3])
    with django_assert_max_num_queries(9):
        response = staff_client.get(
            url("campaign_flow", campaign.pk), headers={**HTMX, "HX-Target": "tab-panel"}
        )
    assert response.content.count(b'class="flow-step ') == count
    with django_assert_max_num_queries(16):
        staff_client.get(url("campaign_flow", campaign.pk))


# --- Add ---------------------------------------------------------------------------


def test_a_palette_click_adds_the_step_at_the_end(staff_client):
    first = FlowStepFactory()
    campaign = first.campaign
    response = staff_client.post(
        url("flow_step_add", campaign.pk), {"action": "unsubscribe_vibes_list"}, headers=HTMX
    )
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="flow-steps"')
    added = campaign.flow_steps.get(action="unsubscribe_vibes_list")
    assert positions(campaign) == [first.pk, added.pk]
    assert json.loads(response["HX-Trigger"])["flowChanged"]["message"] == "Step 2 added."


def test_a_drop_adds_the_step_where_it_was_dropped(staff_client):
    campaign = SmartCampaignFactory()
    a = FlowStepFactory(campaign=campaign, position=0)
    b = FlowStepFactory(campaign=campaign, position=1)
    staff_client.post(url("flow_step_add", campaign.pk), {"action": "send_sms", "position": 1}, headers=HTMX)
    new = campaign.flow_steps.exclude(pk__in=[a.pk, b.pk]).get()
    assert positions(campaign) == [a.pk, new.pk, b.pk]


def test_a_new_step_is_a_draft_showing_what_it_lacks(staff_client):
    campaign = SmartCampaignFactory()
    html = staff_client.post(
        url("flow_step_add", campaign.pk), {"action": "send_sms"}, headers=HTMX
    ).content.decode()
    assert "Choose an SMS message." in html
    assert "Choose a Vibes list." in html
    assert "Incomplete" in html


def test_an_unknown_action_is_refused_with_a_message(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(url("flow_step_add", campaign.pk), {"action": "send_fax"}, headers=HTMX)
    assert response.status_code == 200
    assert b"Choose one of the three SMS flow steps." in response.content
    assert not campaign.flow_steps.exists()


def test_adding_without_htmx_redirects_to_the_flow_tab(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(url("flow_step_add", campaign.pk), {"action": "send_sms"})
    assert response.status_code == 302
    assert response["Location"] == url("campaign_flow", campaign.pk)


def test_add_only_takes_post(staff_client):
    assert staff_client.get(url("flow_step_add", SmartCampaignFactory().pk)).status_code == 405


# --- Reorder -----------------------------------------------------------------------------


def test_dragging_posts_every_step_in_the_new_order(staff_client):
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    response = staff_client.post(
        url("flow_steps_reorder", campaign.pk), {"step": [c.pk, a.pk, b.pk]}, headers=HTMX
    )
    assert positions(campaign) == [c.pk, a.pk, b.pk]
    html = response.content.decode()
    assert html.index(f'id="flow-step-{c.pk}"') < html.index(f'id="flow-step-{a.pk}"')


def test_reorder_refuses_steps_of_another_campaign(staff_client):
    campaign = SmartCampaignFactory()
    a, b = (FlowStepFactory(campaign=campaign, position=i) for i in range(2))
    stranger = FlowStepFactory()
    response = staff_client.post(
        url("flow_steps_reorder", campaign.pk), {"step": [b.pk, stranger.pk]}, headers=HTMX
    )
    assert response.status_code == 200
    assert b"The flow changed in the meantime" in response.content
    assert positions(campaign) == [a.pk, b.pk]


def test_reorder_refuses_garbage_ids(staff_client):
    campaign = SmartCampaignFactory()
    FlowStepFactory(campaign=campaign)
    response = staff_client.post(url("flow_steps_reorder", campaign.pk), {"step": ["x"]}, headers=HTMX)
    assert b"The flow changed in the meantime" in response.content


def test_the_down_button_posts_the_new_position(staff_client):
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    response = staff_client.post(url("flow_step_move", campaign.pk, a.pk), {"position": 1}, headers=HTMX)
    assert positions(campaign) == [b.pk, a.pk, c.pk]
    assert json.loads(response["HX-Trigger"])["flowChanged"]["message"] == "Step moved to position 2."


def test_moving_past_the_end_stops_at_the_end(staff_client):
    campaign = SmartCampaignFactory()
    a, b = (FlowStepFactory(campaign=campaign, position=i) for i in range(2))
    staff_client.post(url("flow_step_move", campaign.pk, a.pk), {"position": 99}, headers=HTMX)
    assert positions(campaign) == [b.pk, a.pk]


def test_moving_without_a_position_says_so(staff_client):
    step = FlowStepFactory()
    response = staff_client.post(url("flow_step_move", step.campaign.pk, step.pk), {}, headers=HTMX)
    assert b"Say where the step goes." in response.content


def test_a_step_of_another_campaign_is_not_found(staff_client):
    step = FlowStepFactory()
    other = SmartCampaignFactory()
    for name in ("flow_step_move", "flow_step_delete", "flow_step_update"):
        assert (
            staff_client.post(url(name, other.pk, step.pk), {"position": 0}, headers=HTMX).status_code == 404
        )


# --- The dropdowns -------------------------------------------------------------------------------


def test_choosing_the_message_and_list_saves_at_once(staff_client):
    step = FlowStepFactory(sms_message=None, vibes_list=None)
    message = SmsMessageFactory(program=step.campaign.program)
    vibes_list = VibesListFactory()
    response = staff_client.post(
        url("flow_step_update", step.campaign.pk, step.pk),
        {"sms_message": message.pk, "vibes_list": vibes_list.pk},
        headers=HTMX,
    )
    step.refresh_from_db()
    assert (step.sms_message, step.vibes_list) == (message, vibes_list)
    html = response.content.decode()
    assert html.lstrip().startswith(f'<li id="flow-step-{step.pk}"')
    assert "Ready" in html and "Choose" not in html.split("<form")[0]


def test_a_subscribe_step_without_acquisition_campaign_shows_the_error_at_the_step(staff_client):
    step = FlowStepFactory(subscribe=True, acquisition_campaign=None)
    html = staff_client.get(url("campaign_flow", step.campaign.pk)).content.decode()
    card = html[html.index(f'id="flow-step-{step.pk}"') :]
    assert "Choose an acquisition campaign of the Vibes list." in card.split("</li>")[0]


def test_subscribe_offers_only_the_acquisition_campaigns_of_its_list(staff_client):
    news, vip = VibesListFactory(name="News"), VibesListFactory(name="VIP")
    AcquisitionCampaignFactory(vibes_list=news, name="News keyword")
    AcquisitionCampaignFactory(vibes_list=vip, name="VIP keyword")
    step = FlowStepFactory(subscribe=True, vibes_list=news, acquisition_campaign=None)
    html = staff_client.get(url("campaign_flow", step.campaign.pk)).content.decode()
    assert "News keyword" in html and "VIP keyword" not in html


def test_changing_the_list_clears_a_campaign_of_another_list_and_reloads_the_choices(staff_client):
    news, vip = VibesListFactory(), VibesListFactory()
    news_acquisition = AcquisitionCampaignFactory(vibes_list=news)
    vip_acquisition = AcquisitionCampaignFactory(vibes_list=vip, name="VIP opt-in")
    step = FlowStepFactory(subscribe=True, vibes_list=news, acquisition_campaign=news_acquisition)
    response = staff_client.post(
        url("flow_step_update", step.campaign.pk, step.pk),
        {"vibes_list": vip.pk, "acquisition_campaign": news_acquisition.pk},
        headers=HTMX,
    )
    step.refresh_from_db()
    assert step.vibes_list == vip
    assert step.acquisition_campaign is None
    html = response.content.decode()
    assert "VIP opt-in" in html
    assert news_acquisition.name not in html
    assert "Choose an acquisition campaign of the Vibes list." in html
    assert vip_acquisition.pk  # chosen next, it makes the step ready


def test_a_field_the_action_does_not_use_is_dropped(staff_client):
    step = FlowStepFactory(unsubscribe=True)
    message = SmsMessageFactory(program=step.campaign.program)
    staff_client.post(
        url("flow_step_update", step.campaign.pk, step.pk),
        {"sms_message": message.pk, "vibes_list": step.vibes_list.pk},
        headers=HTMX,
    )
    step.refresh_from_db()
    assert step.sms_message is None
    assert step.problems() == {}


def test_an_unknown_choice_keeps_the_step_and_shows_it_again(staff_client):
    step = FlowStepFactory()
    response = staff_client.post(
        url("flow_step_update", step.campaign.pk, step.pk), {"vibes_list": 999999}, headers=HTMX
    )
    assert response.status_code == 200
    step.refresh_from_db()
    assert step.vibes_list is not None


def test_updating_without_htmx_redirects(staff_client):
    step = FlowStepFactory()
    response = staff_client.post(
        url("flow_step_update", step.campaign.pk, step.pk), {"vibes_list": step.vibes_list.pk}
    )
    assert response.status_code == 302


# --- Delete ----------------------------------------------------------------------------------------


def test_deleting_a_step_closes_the_gap(staff_client):
    campaign = SmartCampaignFactory()
    a, b, c = (FlowStepFactory(campaign=campaign, position=i) for i in range(3))
    response = staff_client.post(url("flow_step_delete", campaign.pk, b.pk), headers=HTMX)
    assert not FlowStep.objects.filter(pk=b.pk).exists()
    assert list(campaign.flow_steps.order_by("position").values_list("pk", "position")) == [
        (a.pk, 0),
        (c.pk, 1),
    ]
    assert json.loads(response["HX-Trigger"])["flowChanged"]["message"] == "Step 2 deleted."


# --- The Wait step and Remove from Flow (issue 17) -------------------------------------


def wait_step(**fields):
    return FlowStepFactory(action=FlowStep.Action.WAIT, vibes_list=None, sms_message=None, **fields)


def post_wait(staff_client, step, **fields):
    response = staff_client.post(url("flow_step_update", step.campaign_id, step.pk), fields, headers=HTMX)
    assert response.status_code == 200
    step.refresh_from_db()
    return response.content.decode()


def test_the_palette_offers_wait_and_remove_from_flow(staff_client):
    html = staff_client.get(url("campaign_flow", SmartCampaignFactory().pk)).content.decode()
    assert 'data-palette-action="wait"' in html
    assert 'data-palette-action="remove_from_flow"' in html


def test_a_wait_step_is_added_as_a_draft_that_says_what_it_lacks(staff_client):
    campaign = SmartCampaignFactory()
    html = staff_client.post(
        url("flow_step_add", campaign.pk), {"action": "wait"}, headers=HTMX
    ).content.decode()
    step = campaign.flow_steps.get()
    assert step.action == FlowStep.Action.WAIT
    assert "Say how long to wait, or until when." in html
    assert 'name="wait_amount"' in html


def test_a_wait_of_two_minutes_is_saved_and_ready(staff_client):
    step = wait_step()
    html = post_wait(
        staff_client, step, wait_amount="2", wait_unit="minutes", wait_until="", wait_then_day=""
    )
    assert (step.wait_amount, step.wait_unit, step.wait_until) == (2, "minutes", None)
    assert step.problems() == {}
    assert "Ready" in html


def test_a_wait_amount_that_is_not_a_number_says_so_and_keeps_the_other_fields(staff_client):
    step = wait_step(wait_amount=3, wait_unit="days")
    html = post_wait(
        staff_client,
        step,
        wait_amount="two",
        wait_unit="hours",
        wait_then_day="weekday",
        wait_then_time="10:00",
    )
    assert "Enter how long to wait as a whole number, such as 2." in html
    assert 'value="two"' in html  # what was typed stays in the field, beside its error
    # The valid fields are kept; the mistyped one keeps its stored value.
    assert (step.wait_amount, step.wait_unit, step.wait_then_day) == (3, "hours", "weekday")
    assert step.wait_then_time.strftime("%H:%M") == "10:00"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"wait_amount": "0", "wait_unit": "days"}, "Wait for at least 1 minute, hour or day."),
        ({"wait_amount": "400", "wait_unit": "days"}, "A wait is at most 365 days."),
        ({"wait_amount": "2", "wait_unit": "weeks"}, "Choose minutes, hours or days."),
        ({"wait_until": "next tuesday"}, "Enter the date and time to wait until, such as 2026-12-24 09:00."),
        ({"wait_until": "2020-01-01T09:00"}, "This time has passed"),
        ({"wait_amount": "2", "wait_unit": "days", "wait_until": "2099-01-01T09:00"}, "not both"),
        ({"wait_amount": "2", "wait_unit": "days", "wait_then_day": "weekday"}, "Choose the time of day"),
        (
            {"wait_amount": "2", "wait_unit": "days", "wait_then_time": "25:00"},
            "Enter the time of day as HH:MM",
        ),
        ({"wait_amount": "2", "wait_unit": "days", "wait_then_day": "someday"}, "Choose a day of the week"),
    ],
)
def test_a_wait_step_says_what_is_wrong_at_its_field(staff_client, fields, message):
    step = wait_step()
    html = post_wait(staff_client, step, **fields)
    assert message in html
    assert 'aria-invalid="true"' in html


def test_a_campaign_with_an_incomplete_wait_step_cannot_run():
    step = wait_step()
    assert any("Say how long to wait, or until when." in str(problem) for problem in step.campaign.problems())


def test_remove_from_flow_names_this_campaign_or_another(staff_client):
    other = SmartCampaignFactory(name="Nurture")
    step = FlowStepFactory(action=FlowStep.Action.REMOVE_FROM_FLOW, vibes_list=None, sms_message=None)
    html = staff_client.get(url("campaign_flow", step.campaign_id)).content.decode()
    assert "This campaign" in html and "Nurture" in html
    staff_client.post(
        url("flow_step_update", step.campaign_id, step.pk), {"remove_from_campaign": other.pk}, headers=HTMX
    )
    step.refresh_from_db()
    assert step.remove_from_campaign == other
    assert step.problems() == {}
