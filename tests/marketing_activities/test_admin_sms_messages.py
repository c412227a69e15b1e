"""The admin's SMS messages count segments as the editor does: as people get the message."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.marketing_activities.factories import SmsMessageFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db


def cells(html, message, column):
    row = html[html.index(f"/{message.pk}/change/") :].split("</tr>")[0]
    return re.search(rf'<td class="field-{column}">(.*?)</td>', row).group(1)


def test_the_list_counts_each_message_at_the_longest_values(admin_client):
    LeadFactory(first_name="Bartholomew", city="Oslo")
    by_name = SmsMessageFactory(text="x" * 150 + "{{lead.first_name}}")  # 161 characters: 2 segments
    by_city = SmsMessageFactory(text="x" * 150 + "{{lead.city}}")  # 154: 1 segment
    html = admin_client.get(reverse("admin:marketing_activities_smsmessage_changelist")).content.decode()
    assert (cells(html, by_name, "characters"), cells(html, by_name, "segment_count")) == ("161", "2")
    assert (cells(html, by_city, "characters"), cells(html, by_city, "segment_count")) == ("154", "1")


def test_the_list_reads_the_longest_values_once_for_the_whole_page(admin_client):
    LeadFactory.create_batch(2)
    for token in ["first_name", "city", "last_name", "lead_score", "email"]:
        SmsMessageFactory(text=f"Hi {{{{lead.{token}}}}}")
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(reverse("admin:marketing_activities_smsmessage_changelist"))
    longest = [
        q["sql"] for q in queries.captured_queries if "MAX(" in q["sql"] and "smscampaigns_lead" in q["sql"]
    ]
    assert len(longest) == 1


def test_the_page_of_a_message_says_who_gets_ucs2(admin_client):
    LeadFactory(first_name="Ann")
    LeadFactory(first_name="Łukasz")
    message = SmsMessageFactory(text="x" * 65 + "{{lead.first_name}}")
    html = admin_client.get(
        reverse("admin:marketing_activities_smsmessage_change", args=[message.pk])
    ).content.decode()
    assert "The longest message anyone gets: 2 segments, UCS-2, 71 characters" in html
    assert "outside GSM-7 in their values get UCS-2: up to 2 segments; everyone else: up to 1." in html
