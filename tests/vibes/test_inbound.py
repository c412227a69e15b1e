"""Texts phones send to the short code: Connect's inbound SMS and the Platform's
unmatched message, stored once with their number, text, times and leads, and
never acted on."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory
from tests.vibes.texts import NUMBER, inbound_sms, unmatched
from vibes.callbacks import register_inbound_handler, unregister_inbound_handler
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def post(vibes_callback_post):
    return vibes_callback_post


def test_an_inbound_sms_is_stored_with_its_number_text_times_and_every_lead_with_the_number(post):
    first, second = LeadFactory(mobile_phone=NUMBER), LeadFactory(mobile_phone="(555) 123-0001")
    LeadFactory(mobile_phone="+15551230002")
    response = post(inbound_sms())
    assert response.status_code == 200 and response.json() == {"status": "applied"}
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text, message.short_code) == (NUMBER, "What time do you open?", "12345")
    assert message.occurred_at == datetime(2026, 11, 20, 9, 30, 0, 250000, tzinfo=UTC)
    assert message.received_at > message.occurred_at
    assert set(message.leads.all()) == {first, second}
    assert not message.unmatched_in_vibes
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.mdn, message.callback_event) == ("inbound_sms", NUMBER, event)
    assert "2 leads" in event.note


def test_a_number_written_nationally_is_stored_in_e164(post):
    post(inbound_sms(mdn="5551230001"))
    assert InboundMessage.objects.get().mdn == NUMBER


def test_an_unmatched_message_from_a_number_no_lead_has_is_kept(post):
    response = post(unmatched("Do you deliver?"), event_type="unmatched_message_received")
    assert response.status_code == 200
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text, message.unmatched_in_vibes) == (NUMBER, "Do you deliver?", True)
    assert message.occurred_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert not message.leads.exists()
    event = CallbackEvent.objects.get()
    assert event.outcome == "unmatched"
    assert "no lead has this number" in event.note


def test_duplicates_of_the_same_inbound_callback_are_stored_once(post):
    LeadFactory(mobile_phone=NUMBER)
    assert post(inbound_sms()).json() == {"status": "applied"}
    assert post(inbound_sms()).json() == {"status": "duplicate"}
    assert InboundMessage.objects.count() == 1
    assert CallbackEvent.objects.get().deliveries == 2


def test_the_inbound_sms_and_the_unmatched_message_of_one_text_are_one_message(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    post(inbound_sms())
    post(unmatched(), event_type="unmatched_message_received")
    message = InboundMessage.objects.get()
    assert message.unmatched_in_vibes
    assert list(message.leads.all()) == [lead]
    later = CallbackEvent.objects.get(event_type="unmatched_message_received")
    assert later.outcome == "applied"  # a lead has the number
    assert f"message #{message.pk}" in later.note


def test_without_a_message_id_the_same_number_text_and_second_are_one_message(post):
    post(inbound_sms(message_id=""))
    post(unmatched(message_id=""), event_type="unmatched_message_received")
    post(inbound_sms("Another text", message_id=""))
    assert sorted(InboundMessage.objects.values_list("text", "unmatched_in_vibes")) == [
        ("Another text", False),
        ("What time do you open?", True),
    ]


def test_a_message_without_a_readable_number_is_kept(post):
    assert post(inbound_sms(mdn="not a number")).status_code == 200
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text) == ("", "What time do you open?")
    assert CallbackEvent.objects.get().outcome == "unmatched"


def test_a_message_without_a_time_counts_from_its_arrival(post):
    before = timezone.now()
    post(inbound_sms(occurred_at=None))
    message = InboundMessage.objects.get()
    assert message.occurred_at == message.received_at >= before
    assert "the time it arrived is used" in CallbackEvent.objects.get().note


def test_a_time_in_the_future_counts_from_the_arrival(post):
    post(inbound_sms(occurred_at=(timezone.now() + timedelta(days=3)).isoformat()))
    message = InboundMessage.objects.get()
    assert message.occurred_at <= message.received_at


def test_a_text_that_is_not_a_string_is_kept_as_an_empty_message(post):
    assert post(inbound_sms(text={"unexpected": True})).status_code == 200
    assert InboundMessage.objects.get().text == ""


def test_stop_is_recorded_and_changes_no_subscription(post):
    """Opting out is Vibes' business: it sends subscription_removed."""
    subscription = SubscriptionFactory(
        lead=LeadFactory(mobile_phone=NUMBER), vibes_list=VibesListFactory(vibes_id="101")
    )
    post(inbound_sms("STOP"))
    assert InboundMessage.objects.get().text == "STOP"
    assert Subscription.objects.get(pk=subscription.pk).status == "subscribed"
    assert not SubscriptionChange.objects.exists()


def test_a_new_message_reaches_every_inbound_handler_once(post):
    seen = []
    handler = register_inbound_handler(lambda message: seen.append(message.text) or True)
    try:
        LeadFactory(mobile_phone=NUMBER)
        post(inbound_sms())
        post(unmatched(), event_type="unmatched_message_received")  # the same message
        post(inbound_sms())  # the same callback again
    finally:
        unregister_inbound_handler(handler)
    assert seen == ["What time do you open?"]
    assert "reply to the last SMS" in CallbackEvent.objects.get(event_type="inbound_sms").note


def test_a_failing_handler_answers_503_and_keeps_nothing_so_vibes_delivers_again(post):
    def broken(message):
        raise RuntimeError("database hiccup")

    register_inbound_handler(broken)
    try:
        response = post(inbound_sms())
    finally:
        unregister_inbound_handler(broken)
    assert response.status_code == 503
    assert not InboundMessage.objects.exists() and not CallbackEvent.objects.exists()
    assert post(inbound_sms()).status_code == 200
    assert InboundMessage.objects.count() == 1
