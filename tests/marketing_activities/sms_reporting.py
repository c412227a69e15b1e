"""SMS traffic for the reporting tests, made through the product's own paths:
runs against the simulator, its delivery receipts, replies and opt-outs posted
to the callbacks URL, clicks through `link_click_record`, and a hard bounce
through `receipts.handle_receipt`.

`callbacks_forward` hands the app what the simulator posted to a catcher, as
Vibes would have posted it (the receipts' `?ref=` included), through Django's
test client: no live server, so the tests need no transaction of their own.
"""

import base64
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.urls import reverse
from django.utils import timezone

from marketing_activities.links import link_click_record
from marketing_activities.models import SmartCampaign, SmsMessage, TrackedLink
from marketing_activities.receipts import handle_receipt
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.vibes.simulated import CALLBACK_PASSWORD, CALLBACK_USERNAME
from vibes.callbacks import DeliveryReceipt

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
NUMBERS = {"Ann": "+15551239001", "Ben": "+15551239002", "Cat": "+15551239003", "Dan": "+15551239004"}


class CallbackForwarder:
    """Posts what the catcher caught to the app's callbacks URL, each post once, in order."""

    def __init__(self, catcher, client, settings):
        settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
        settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
        settings.VIBES_CALLBACK_ALLOWED_IPS = []
        # The SMS ask for receipts at the catcher, with their row's reference.
        settings.VIBES_DELIVERY_RECEIPT_URL = catcher.url
        self.catcher, self.client, self.done = catcher, client, 0
        credentials = base64.b64encode(f"{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}".encode()).decode()
        self.authorization = f"Basic {credentials}"

    def forward(self, simulator) -> int:
        assert simulator.wait_for_callbacks(30)
        posts = list(self.catcher.received)[self.done :]
        for post in posts:
            query = urlsplit(post["path"]).query
            headers = {"Authorization": self.authorization}
            if post["headers"].get("X-Vibes-Event-Type"):
                headers["X-Vibes-Event-Type"] = post["headers"]["X-Vibes-Event-Type"]
            response = self.client.post(
                reverse("vibes:callbacks") + (f"?{query}" if query else ""),
                json.dumps(post["body"]),
                content_type="application/json",
                headers=headers,
            )
            assert response.status_code == 200, response.content
        self.done += len(posts)
        return len(posts)


@dataclass
class Traffic:
    first: SmsMessage  # delivered to all four; Ann and Dan replied, Ben clicked, Dan opted out
    second: SmsMessage  # failed for the three still subscribed: Cat's a hard bounce
    first_campaign: SmartCampaign
    second_campaign: SmartCampaign
    leads: dict


def sms_traffic(news, simulator, forwarder) -> Traffic:
    """Two campaigns on the newsletter, each sending its own message to Ann, Ben, Cat and Dan."""
    simulator.configure(callback_url=forwarder.catcher.url)
    leads = {name: subscribed(news, first_name=name, mobile_phone=number) for name, number in NUMBERS.items()}
    simulator.add_subscriber("101", NUMBERS["Dan"], external_person_id=str(leads["Dan"].pk))

    first_campaign = make_campaign(("send", news))
    first = first_campaign.flow_steps.get().sms_message
    first.text = "Hi {{lead.first_name}}, 20% off today: https://shop.example.com/sale"
    first.save()
    simulator.set_faults(receipt_failure_rate=0)
    execute(first_campaign, simulator)
    forwarder.forward(simulator)
    simulator.reply(NUMBERS["Ann"], "Thanks, see you there")
    simulator.reply(NUMBERS["Dan"], "STOP")
    forwarder.forward(simulator)
    link = TrackedLink.objects.get(lead=leads["Ben"], run_step__sms_message=first)
    link_click_record(link=link, user_agent=BROWSER)
    link_click_record(link=link, user_agent="WhatsApp/2.23")  # a link preview: no click

    second_campaign = make_campaign(("send", news))
    second = second_campaign.flow_steps.get().sms_message
    simulator.set_faults(receipt_failure_rate=1)
    execute(second_campaign, simulator)
    forwarder.forward(simulator)
    simulator.set_faults(receipt_failure_rate=0)
    # The carrier says more about Cat's number: it cannot take SMS.
    cat = second_campaign.runs.get().steps.get().results().get(lead=leads["Cat"])
    handle_receipt(
        DeliveryReceipt(
            message_id=cat.vibes_message_id,
            mdn=cat.phone,
            status="undeliverable",
            reference=f"r{cat.pk}",
            occurred_at=timezone.now(),
        )
    )
    return Traffic(first, second, first_campaign, second_campaign, leads)
