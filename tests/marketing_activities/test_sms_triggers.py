"""The SMS triggers: SMS is Delivered, SMS Message Bounces (message, hard or soft), Replies to SMS,
Clicks Link in SMS Message (message, link)."""

import datetime

import pytest
from django.utils import timezone

from marketing_activities.models import Outcome, TrackedLink, TriggerFiring
from marketing_activities.replies import reply_match
from marketing_activities.runner import result_apply_receipt
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import make_campaign
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory, SmsMessageFactory
from tests.marketing_activities.test_triggers import NUMBER
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import InboundMessageFactory, SubscriptionFactory
from vibes.subscriptions import subscriptions_opt_out_number

pytestmark = pytest.mark.django_db


def follow_up_campaign(news, trigger):
    """An active trigger campaign with `trigger` whose flow sends an SMS on news."""
    campaign = make_campaign(("send", news))
    campaign.smart_list.definition = {"logic": "all", "rules": [], "triggers": [trigger]}
    campaign.smart_list.save()
    campaign.is_active = True
    campaign.save()
    return campaign


@pytest.fixture
def person(news):
    lead = LeadFactory(mobile_phone=NUMBER)
    SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
    return lead


def sent(lead, message):
    """A row of an SMS of `message` sent to the lead a minute ago."""
    return RunResultFactory(
        lead=lead,
        run_step=RunStepFactory(sms_message=message),
        outcome=Outcome.SENT,
        called_at=timezone.now() - datetime.timedelta(minutes=1),
    )


def test_a_delivery_receipt_fires_sms_is_delivered_for_its_message(news, person, vibes_simulator):
    teaser = SmsMessageFactory(name="Teaser")
    campaign = follow_up_campaign(news, {"trigger": "sms_delivered", "sms_message": str(teaser.pk)})
    row = sent(person, teaser)
    result_apply_receipt(result_id=row.pk, status="delivered")
    result_apply_receipt(result_id=row.pk, status="delivered")  # Vibes delivers receipts at least once
    triggers_dispatch()

    assert Activity.objects.get(kind="sms_delivered").attributes == {"sms_message": teaser.pk}
    assert TriggerFiring.objects.get(campaign=campaign).status == "member"
    assert len(vibes_simulator.messages()) == 1


def test_a_bounce_of_another_message_does_not_fire_the_bounce_trigger(news, person, vibes_simulator):
    teaser, other = SmsMessageFactory(name="Teaser"), SmsMessageFactory(name="Other")
    campaign = follow_up_campaign(news, {"trigger": "sms_bounces", "sms_message": str(teaser.pk)})
    result_apply_receipt(result_id=sent(person, other).pk, status="undeliverable")
    triggers_dispatch()
    assert not TriggerFiring.objects.filter(campaign=campaign).exists()

    result_apply_receipt(result_id=sent(person, teaser).pk, status="undeliverable")
    triggers_dispatch()
    assert TriggerFiring.objects.get(campaign=campaign).status == "member"


def test_a_bounce_is_hard_or_soft_by_the_receipts_status(news, person, vibes_simulator):
    message = SmsMessageFactory()
    hard = follow_up_campaign(news, {"trigger": "sms_bounces", "bounce": "hard"})
    soft = follow_up_campaign(news, {"trigger": "sms_bounces", "bounce": "soft"})
    result_apply_receipt(result_id=sent(person, message).pk, status="expired")
    triggers_dispatch()

    assert Activity.objects.get().attributes["bounce"] == "soft"
    assert not TriggerFiring.objects.filter(campaign=hard).exists()
    assert TriggerFiring.objects.filter(campaign=soft).exists()


def test_a_reply_that_contains_the_text_fires_replies_to_sms(news, person, vibes_simulator):
    teaser = SmsMessageFactory()
    contains = follow_up_campaign(news, {"trigger": "replies_to_sms", "match": "contains", "text": "yes"})
    exactly = follow_up_campaign(news, {"trigger": "replies_to_sms", "match": "is", "text": "yes"})
    sent(person, teaser)
    assert reply_match(InboundMessageFactory(mdn=NUMBER, text="Oh YES please", leads=[person]))
    triggers_dispatch()

    assert Activity.objects.get(kind="replied_sms").attributes == {
        "text": "Oh YES please",
        "sms_message": teaser.pk,
    }
    assert TriggerFiring.objects.filter(campaign=contains).exists()
    assert not TriggerFiring.objects.filter(campaign=exactly).exists()


def test_a_reply_that_is_the_text_fires_the_is_trigger(news, person, vibes_simulator):
    exactly = follow_up_campaign(news, {"trigger": "replies_to_sms", "match": "is", "text": "yes"})
    sent(person, SmsMessageFactory())
    reply_match(InboundMessageFactory(mdn=NUMBER, text=" Yes ", leads=[person]))
    triggers_dispatch()
    assert TriggerFiring.objects.get(campaign=exactly).status == "member"


def test_a_reply_to_another_message_does_not_fire_a_trigger_for_one_message(news, person, vibes_simulator):
    teaser, other = SmsMessageFactory(name="Teaser"), SmsMessageFactory(name="Other")
    campaign = follow_up_campaign(
        news, {"trigger": "replies_to_sms", "match": "contains", "text": "", "sms_message": str(teaser.pk)}
    )
    sent(person, other)
    reply_match(InboundMessageFactory(mdn=NUMBER, text="hello", leads=[person]))
    triggers_dispatch()
    assert not TriggerFiring.objects.filter(campaign=campaign).exists()


def test_an_opt_out_fires_unsubscribes_from_vibes_list(news, person, vibes_simulator):
    campaign = follow_up_campaign(news, {"trigger": "unsubscribes_vibes_list", "vibes_list": str(news.pk)})
    subscriptions_opt_out_number(mdn=NUMBER, vibes_list=news, reason="user_opt_out", source="callback")
    triggers_dispatch()

    assert Activity.objects.get().kind == "unsubscribed_vibes_list"
    # Fired, but the flow's Send SMS texts only the subscribed (R2): nobody is texted.
    firing = TriggerFiring.objects.get(campaign=campaign)
    assert firing.run.steps.get().counts == {"skipped_not_subscribed": 1}
    assert vibes_simulator.messages() == []


def tracked_link(lead, message, url):
    row = sent(lead, message)
    return TrackedLink.objects.create(
        code=f"code{row.pk:06d}", run_step=row.run_step, result=row, lead=lead, position=0, url=url
    )


def test_a_click_through_the_redirect_fires_clicks_link_in_sms_for_its_message_and_link(
    client, news, person, vibes_simulator
):
    offer, other = SmsMessageFactory(name="Offer"), SmsMessageFactory(name="Other")
    campaign = follow_up_campaign(
        news, {"trigger": "clicks_link_in_sms", "sms_message": str(offer.pk), "link": "/shoes"}
    )
    hats = tracked_link(person, offer, "https://shop.example.com/hats")
    elsewhere = tracked_link(person, other, "https://shop.example.com/shoes")
    preview = tracked_link(person, offer, "https://shop.example.com/shoes?from=preview")
    shoes = tracked_link(person, offer, "https://shop.example.com/shoes")
    phone = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}

    assert client.get(f"/l/{hats.code}", **phone).status_code == 302
    assert client.get(f"/l/{elsewhere.code}", **phone).status_code == 302
    assert client.get(f"/l/{preview.code}", HTTP_USER_AGENT="WhatsApp/2.23").status_code == 302
    triggers_dispatch()
    assert not TriggerFiring.objects.filter(campaign=campaign).exists()
    assert Activity.objects.filter(kind="clicked_link_sms").count() == 2  # a link preview is nobody's click

    response = client.get(f"/l/{shoes.code}", **phone)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/shoes"
    triggers_dispatch()
    assert TriggerFiring.objects.get(campaign=campaign).status == "member"
    assert len(vibes_simulator.messages()) == 1
