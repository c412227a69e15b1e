"""Median server time of the SMS editor's live counter, which reads the longest
value of each token among all the people (one scan of the people), and of the
counter while typing (the reading is used again).

COUNTER_LEADS people (100,000 by default); 44% of the first names and half of
the cities hold letters beyond ASCII, 16% and 12% characters outside GSM-7.
No target: the figures go to the README.
"""

import os
import random

import pytest
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Length
from django.urls import reverse

from marketing_activities import sms_text
from smscampaigns.models import Lead
from tests.marketing_activities.factories import SmsMessageFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Target": "sms-live"}
LEADS = int(os.environ.get("COUNTER_LEADS", 100_000))
FIRST_NAMES = [
    "Anna",
    "Bartholomew",
    "Jürgen",
    "Chloé",
    "Maximilian",
    "Ingrid",
    "Sven",
    "Bo",
    "Åsa",
    "Zoë",
] * 3 + [
    "Łukasz",
    "João",
]
CITIES = ["Oslo", "Göteborg", "Zürich", "New York", "Stockholm", "München", "", "Kraków"]


@pytest.fixture(scope="module")
def people(django_db_setup, django_db_blocker):
    rng = random.Random(1)
    with django_db_blocker.unblock(), transaction.atomic():
        for start in range(0, LEADS, 10_000):
            Lead.objects.bulk_create(
                Lead(
                    first_name=rng.choice(FIRST_NAMES),
                    last_name=f"Person {n}",
                    city=rng.choice(CITIES),
                    email=f"p{n}@example.com",
                    lead_score=rng.randint(-5, 100),
                )
                for n in range(start, min(start + 10_000, LEADS))
            )
        yield LEADS
        transaction.set_rollback(True)


def median(benchmark, function):
    benchmark.pedantic(function, rounds=10, warmup_rounds=1, iterations=1)
    return benchmark.stats.stats.median


def test_bare_max_length_of_the_first_name(benchmark, people):
    """The baseline: the longest first name alone, without the GSM-7 checks."""
    median(benchmark, lambda: Lead.objects.aggregate(longest=Max(Length("first_name"))))


def test_the_longest_first_name(benchmark, people):
    median(benchmark, lambda: sms_text.people_values(["first_name"]))


def test_the_longest_values_of_three_tokens(benchmark, people):
    median(benchmark, lambda: sms_text.people_values(["first_name", "city", "lead_score"]))


def live_request(client, **params):
    message = SmsMessageFactory()
    path = reverse("marketing_activities:sms_message", args=[message.pk])
    text = "Hi {{lead.first_name}}, 20% off in {{lead.city}} today."

    def request():
        response = client.get(path, {"text": text, **params}, headers=HTMX)
        assert response.status_code == 200
        return response

    return request


def test_the_live_counter_reading_the_people(benchmark, people, marketer_client):
    """The first request, or one after a new token or a minute: the people are read."""
    median(benchmark, live_request(marketer_client))


def test_the_live_counter_while_typing(benchmark, people, marketer_client):
    """Later requests bring the signed reading back: nobody is read."""
    html = live_request(marketer_client)().content.decode()
    reading = html.split('name="reading" value="')[1].split('"')[0]
    median(benchmark, live_request(marketer_client, reading=reading))
