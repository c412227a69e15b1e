"""The inbound messages list in the admin: read-only, searched by number or text,
filtered by whether a lead has the number and whether Vibes matched the text."""

import pytest
from django.urls import reverse

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import InboundMessageFactory
from vibes.models import InboundMessage

pytestmark = pytest.mark.django_db

LIST = reverse("admin:vibes_inboundmessage_changelist")


@pytest.fixture
def messages():
    lead = LeadFactory(mobile_phone="+15551230001")
    return {
        "opening": InboundMessageFactory(mdn="+15551230001", text="What time do you open?", leads=[lead]),
        "stop": InboundMessageFactory(mdn="+15551230001", text="STOP", leads=[lead]),
        "stranger": InboundMessageFactory(
            mdn="+15551239999", text="Is this the pizza place?", unmatched_in_vibes=True
        ),
    }


def listed(admin_client, query=""):
    response = admin_client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    return {message.text for message in response.context["cl"].result_list}


def test_messages_are_searched_by_number_in_any_form(admin_client, messages):
    assert listed(admin_client, "q=%28555%29+123-0001") == {"What time do you open?", "STOP"}
    assert listed(admin_client, "q=%2B15551239999") == {"Is this the pizza place?"}
    assert listed(admin_client, "q=9999") == {"Is this the pizza place?"}


def test_messages_are_searched_by_their_text(admin_client, messages):
    assert listed(admin_client, "q=pizza") == {"Is this the pizza place?"}


def test_a_number_search_keeps_the_other_filters(admin_client, messages):
    assert listed(admin_client, "q=%28555%29+123-0001&unmatched_in_vibes__exact=1") == set()


def test_messages_are_filtered_by_whether_a_lead_has_the_number(admin_client, messages):
    assert listed(admin_client, "lead=matched") == {"What time do you open?", "STOP"}
    assert listed(admin_client, "lead=unmatched") == {"Is this the pizza place?"}


def test_messages_are_filtered_by_whether_vibes_matched_the_text(admin_client, messages):
    assert listed(admin_client, "unmatched_in_vibes__exact=1") == {"Is this the pizza place?"}


def test_a_message_shared_by_several_leads_is_listed_once(admin_client):
    InboundMessageFactory(leads=[LeadFactory(mobile_phone="+15551230001") for _ in range(3)])
    assert admin_client.get(f"{LIST}?lead=matched").context["cl"].result_count == 1


def test_the_list_shows_the_leads_with_the_number_as_links(admin_client, messages):
    html = admin_client.get(LIST).content.decode()
    lead = messages["opening"].leads.get()
    assert reverse("admin:smscampaigns_lead_change", args=[lead.pk]) in html


def test_nobody_adds_or_changes_a_message(admin_client, messages):
    message = messages["opening"]
    assert admin_client.get(reverse("admin:vibes_inboundmessage_add")).status_code == 403
    change = reverse("admin:vibes_inboundmessage_change", args=[message.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(change, {"text": "edited"}).status_code == 403
    assert InboundMessage.objects.get(pk=message.pk).text == "What time do you open?"
