"""Median server time (Django test client) of Vibes callbacks on a big list.

100,000 leads, 10% of them sharing a number with the lead before, 30% subscribed
to the list. Target: a subscription callback under 50 ms median, whatever
the size of the list (its subscriptions are found by index, never scanned).
"""

import base64
import itertools
import json

import pytest
from django.db import transaction
from django.utils import timezone

from smscampaigns.models import Lead
from vibes.models import Subscription, VibesList

pytestmark = pytest.mark.django_db

LEADS = 100_000
TARGET_SECONDS = 0.050
AUTH = "Basic " + base64.b64encode(b"vibes:bench-callback-pw").decode()


@pytest.fixture(scope="module")
def big_list(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        vibes_list = VibesList.objects.create(vibes_id="101", name="SMS Newsletter")
        numbers = [f"+1212{n - (n % 10 == 1):07d}" for n in range(LEADS)]  # every tenth shares
        leads = Lead.objects.bulk_create(
            (Lead(email=f"p{n}@bench.invalid", mobile_phone=numbers[n]) for n in range(LEADS)),
            batch_size=5_000,
        )
        since = timezone.now().replace(year=2026, month=1, day=1)
        Subscription.objects.bulk_create(
            (
                Subscription(lead=lead, vibes_list=vibes_list, status="subscribed", status_at=since)
                for lead in leads[::3]
            ),
            batch_size=5_000,
        )
        yield numbers
        transaction.set_rollback(True)


@pytest.fixture
def post(client, settings):
    settings.VIBES_CALLBACK_USERNAME = "vibes"
    settings.VIBES_CALLBACK_PASSWORD = "bench-callback-pw"
    settings.VIBES_CALLBACK_ALLOWED_IPS = []

    def post(event_type, body, status=200):
        response = client.post(
            "/vibes/callbacks/",
            body,
            content_type="application/json",
            headers={"Authorization": AUTH, "X-Vibes-Event-Type": event_type},
        )
        assert response.status_code == status, response.content
        return response

    return post


def run(benchmark, post, event_type, bodies, status=200):
    bodies = iter(bodies)
    benchmark.pedantic(
        post, setup=lambda: ((event_type, next(bodies), status), {}), rounds=30, warmup_rounds=3, iterations=1
    )
    return benchmark.stats.stats.median


def subscription(number, second, **extra):
    return json.dumps(
        {
            "subscription_list": {"id": "101"},
            "mobile_phone": {"mdn": number},
            "opt_in_date": f"2026-11-01T09:00:{second % 60:02d}Z",
            **extra,
        }
    )


def test_an_opt_out_of_a_shared_number(benchmark, big_list, post):
    shared = (big_list[n] for n in itertools.count(1, 10))
    bodies = (subscription(number, 0, opt_out_date="2026-11-10T09:00:00Z") for number in shared)
    assert run(benchmark, post, "subscription_removed", bodies) < TARGET_SECONDS


def test_a_late_opt_in_that_changes_nothing(benchmark, big_list, post):
    number = big_list[3]
    post("subscription_removed", subscription(number, 0, opt_out_date="2026-11-10T09:00:00Z"))
    bodies = (subscription(number, second) for second in itertools.count())
    assert run(benchmark, post, "subscription_added", bodies) < TARGET_SECONDS


def test_a_body_nested_100000_levels(benchmark, post):
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    run(benchmark, post, "person_added", itertools.repeat(deep), status=400)


def test_a_flat_body_of_2_4_megabytes(benchmark, post):
    """The depth and value checks read the whole body: the largest Django takes by default."""
    items = [{"n": n, "text": "x" * 8} for n in range(70_000)]
    bodies = (json.dumps({"round": r, "items": items}) for r in itertools.count())
    run(benchmark, post, "person_added", bodies)
