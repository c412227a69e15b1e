"""People reply to campaign texts: the simulated phone texts the short code, the
simulator posts the text to the live app over HTTP, and the reply shows on the
lead's page and in the Results of the campaign that texted the number last."""

import csv
import io

import pytest
from django.urls import reverse

from marketing_activities.models import SmsReply
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.ui_helpers import url
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+15551237000"


@pytest.fixture
def news(news, vibes_live_callbacks):
    """The simulator's newsletter, its callbacks posted to the live app."""
    return news


def phone_texts(simulator, number, text):
    answer = simulator.reply(number, text)
    # Callbacks are answered once the app has stored them: after this, the database holds the text.
    assert simulator.wait_for_callbacks(30)
    return answer


def test_a_reply_shows_on_the_lead_and_in_the_results_of_the_campaign_that_texted_last(
    news, vibes_simulator, staff_client
):
    ann = subscribed(news, first_name="Ann", last_name="Able", mobile_phone=NUMBER)
    earlier = execute(make_campaign(("send", news)), vibes_simulator)
    latest = execute(make_campaign(("send", news)), vibes_simulator)
    assert vibes_simulator.wait_for_callbacks(30)  # the receipts

    answer = phone_texts(vibes_simulator, NUMBER, "What time do you open?")

    assert answer["unmatched"]
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text, message.unmatched_in_vibes) == (NUMBER, "What time do you open?", True)
    assert list(message.leads.all()) == [ann]
    assert message.vibes_message_id == answer["message_id"]
    assert SmsReply.objects.get().result == latest.steps.get().results().get()

    def results(run):
        return staff_client.get(url("campaign_results", run.campaign.pk) + f"?run={run.pk}").content.decode()

    shown = results(latest)
    assert "What time do you open?" in shown and 'data-replied="1"' in shown
    assert "1 person replied" in shown
    shown = results(earlier)
    assert "What time do you open?" not in shown and 'data-replied="0"' in shown

    page = staff_client.get(reverse("admin:smscampaigns_lead_change", args=[ann.pk])).content.decode()
    assert "“What time do you open?” from +15551237000" in page
    assert f"in reply to {latest.campaign.name}, run {latest.pk}, step 1" in page

    export = staff_client.get(url("campaign_results_export", latest.campaign.pk) + f"?run={latest.pk}")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(row["first name"], row["replies"], row["reply text"]) for row in rows] == [
        ("Ann", "1", "What time do you open?")
    ]


def test_stop_is_recorded_as_a_reply_and_the_opt_out_comes_from_subscription_removed(
    news, vibes_simulator, staff_client
):
    lead = subscribed(news, mobile_phone=NUMBER)
    vibes_simulator.add_subscriber("101", NUMBER, external_person_id=str(lead.pk))
    run = execute(make_campaign(("send", news)), vibes_simulator)

    answer = phone_texts(vibes_simulator, NUMBER, "STOP")

    assert answer == {"opted_out": ["101"], "message_id": answer["message_id"], "unmatched": False}
    message = InboundMessage.objects.get()
    assert (message.text, message.unmatched_in_vibes) == ("STOP", False)
    assert SmsReply.objects.get(message=message).result.run_step.run == run
    subscription = Subscription.objects.get(lead=lead)
    assert (subscription.status, subscription.opt_out_reason) == ("unsubscribed", "user_opt_out")
    [change] = SubscriptionChange.objects.filter(lead=lead, new_status="unsubscribed")
    assert change.callback_event.event_type == "subscription_removed"


def test_an_unmatched_text_from_a_number_no_lead_has_is_kept(news, vibes_simulator):
    answer = phone_texts(vibes_simulator, "+15551237999", "Is this the pizza place?")

    assert answer["unmatched"]
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text, message.unmatched_in_vibes) == (
        "+15551237999",
        "Is this the pizza place?",
        True,
    )
    assert not message.leads.exists() and not SmsReply.objects.exists()
    # Two callbacks, in either order, for one message stored once.
    assert sorted(CallbackEvent.objects.values_list("event_type", "outcome")) == [
        ("inbound_sms", "unmatched"),
        ("unmatched_message_received", "unmatched"),
    ]


def test_a_confirmation_reply_is_kept_and_is_not_unmatched(news, vibes_simulator):
    vip = VibesListFactory(vibes_id="102", name="VIP Offers")
    AcquisitionCampaignFactory(vibes_id="AC-VIP", vibes_list=vip)
    lead = subscribed(news, mobile_phone=NUMBER)
    execute(make_campaign(("subscribe", vip)), vibes_simulator)

    answer = phone_texts(vibes_simulator, NUMBER, "Y")

    assert (answer["confirmed"], answer["unmatched"]) == (["102"], False)
    message = InboundMessage.objects.get()
    assert (message.text, message.unmatched_in_vibes, list(message.leads.all())) == ("Y", False, [lead])
    assert Subscription.objects.get(lead=lead, vibes_list=vip).status == "subscribed"
    assert not CallbackEvent.objects.filter(event_type="unmatched_message_received").exists()
    # Vibes texted the confirmation request, not a Send step: there is no campaign SMS to reply to.
    assert not SmsReply.objects.exists()
