"""End to end over real HTTP: the client talks to the simulator, and the
simulator's callbacks reach the app (`live_server`)."""

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from tests.smscampaigns.factories import LeadFactory
from tests.waiting import DEADLINE
from vibes.callbacks import register_receipt_handler, unregister_receipt_handler
from vibes.models import AcquisitionCampaign, CallbackEvent, Subscription, VibesList
from vibes.subscriptions import subscriptions_set_status
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def synced(vibes_client):
    vibes_sync(client=vibes_client)
    return VibesList.objects.get(vibes_id="101")


def test_a_participant_is_subscribed_after_the_reply_and_unsubscribed_again(
    vibes_live_callbacks, vibes_simulator, vibes_client, synced
):
    lead = LeadFactory()
    result = vibes_client.add_participant(
        "AC-NEWS-WEB", mdn=lead.mobile_phone, external_person_id=str(lead.pk)
    )
    # What the campaign runner records for a pending participant.
    subscriptions_set_status(
        lead_ids=[lead.pk],
        vibes_list=synced,
        status=result.status,
        source="run",
        person_key=result.person_key,
        acquisition_campaign=AcquisitionCampaign.objects.get(vibes_id="AC-NEWS-WEB"),
    )
    assert Subscription.objects.get(lead=lead).status == "pending"

    vibes_simulator.reply(lead.mobile_phone, "Y")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    subscription = Subscription.objects.get(lead=lead)
    assert subscription.status == "subscribed"
    assert subscription.vibes_person_key == result.person_key

    assert vibes_client.unsubscribe("101", external_person_id=str(lead.pk), mdn=lead.mobile_phone) is True
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.opt_out_reason) == ("unsubscribed", "api_opt_out")
    # The "Y" reached the app as a text too.
    assert sorted((c["event_type"], c["status"]) for c in vibes_simulator.callbacks_log()) == [
        ("inbound_sms", 200),
        ("subscription_added", 200),
        ("subscription_removed", 200),
    ]


def test_stop_from_a_shared_number_unsubscribes_everyone_with_it(
    vibes_live_callbacks, vibes_simulator, synced
):
    first = LeadFactory(mobile_phone="+15551230001")
    second = LeadFactory(mobile_phone="+15551230001")
    for lead in (first, second):
        Subscription.objects.create(lead=lead, vibes_list=synced, status="subscribed")
    vibes_simulator.add_subscriber("101", "+15551230001", external_person_id=str(first.pk))
    vibes_simulator.reply("+15551230001", "STOP")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    assert set(Subscription.objects.values_list("status", "opt_out_reason")) == {
        ("unsubscribed", "user_opt_out")
    }


def test_a_keyword_join_reaches_the_app_as_subscription_added(vibes_live_callbacks, vibes_simulator, synced):
    """The callback finds a lead by the number; a number no lead has waits for the list sync."""
    lead = LeadFactory()
    vibes_simulator.keyword(lead.mobile_phone, "JOIN")
    vibes_simulator.keyword("+15559870001", "JOIN")
    assert vibes_simulator.wait_for_callbacks(10)
    subscription = Subscription.objects.get(lead=lead)
    assert subscription.status == "subscribed"
    assert subscription.acquisition_campaign.vibes_id == "AC-NEWS-STORE"
    assert set(CallbackEvent.objects.values_list("mdn", "outcome")) == {
        (lead.mobile_phone, "applied"),
        ("+15559870001", "unmatched"),
    }


def test_delivery_receipts_reach_the_registered_handler_with_the_reference(
    vibes_live_callbacks, vibes_simulator, vibes_client
):
    receipts = []
    handler = register_receipt_handler(receipts.append)
    try:
        sent = vibes_client.send_sms(
            to="+15551230001",
            text="Hello",
            callback_url=f"{settings.VIBES_DELIVERY_RECEIPT_URL}?ref=result-42",
        )
        assert vibes_simulator.wait_for_callbacks(DEADLINE)
    finally:
        unregister_receipt_handler(handler)
    [receipt] = receipts
    assert (receipt.message_id, receipt.status, receipt.reference) == (
        sent.message_id,
        "delivered",
        "result-42",
    )
    assert CallbackEvent.objects.get().event_type == "delivery_receipt"


def test_an_xml_callback_over_http_is_kept_answered_200_and_listed_for_an_operator(
    vibes_live_callbacks, admin_client
):
    xml = '<?xml version="1.0"?><mtMessageResponse messageId="M9"><type>Carrier</type></mtMessageResponse>'
    response = requests.post(
        f"{vibes_live_callbacks}?ref=r9", data=xml, headers={"Content-Type": "text/xml"}, timeout=30
    )
    assert (response.status_code, response.json()) == (200, {"status": "unreadable"})
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.raw_body, event.headers["Content-Type"]) == (
        "delivery_receipt",
        xml,
        "text/xml",
    )
    listed = admin_client.get(reverse("admin:vibes_unreadablecallback_changelist")).content.decode()
    assert "The body is not JSON" in listed and "text/xml" in listed
