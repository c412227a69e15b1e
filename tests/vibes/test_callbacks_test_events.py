"""A test event asked for by `vibes_callbacks test` is kept and marks its test
arrived, and changes nothing, whatever number, list or status it carries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.vibes.factories import SubscriptionFactory, VibesListFactory
from vibes.models import CallbackEvent, CallbackTest, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db

MARKER = f"{CallbackTest.MARKER_PREFIX}0123456789abcdef"


@pytest.fixture
def post(vibes_callback_post):
    def post(event_type, payload):
        return vibes_callback_post(payload, event_type=event_type)

    return post


@pytest.fixture
def subscribed():
    """A lead subscribed to list 101: what a test event must never change."""
    return SubscriptionFactory(vibes_list=VibesListFactory(vibes_id="101"), lead__mobile_phone="+15551230001")


def waiting_test(callback_type, *, marker=MARKER, vibes_event_id=""):
    now = timezone.now()
    return CallbackTest.objects.create(
        callback_type=callback_type,
        marker=marker,
        vibes_event_id=vibes_event_id,
        wait_until=now + timedelta(seconds=30),
    )


def opt_out(**extra):
    return {
        "subscription_list": {"id": "101"},
        "mobile_phone": {"mdn": "+15551230001"},
        "opt_out_date": timezone.now().isoformat(),
        "opt_out_reason": "test",
        **extra,
    }


def test_a_test_opt_out_carrying_a_subscribed_number_changes_nothing(post, subscribed):
    test = waiting_test("subscription_removed")
    response = post("subscription_removed", opt_out(person={"id": MARKER}))
    assert response.status_code == 200
    assert response.json() == {"status": "test"}
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.SUBSCRIBED
    assert not SubscriptionChange.objects.exists()
    test.refresh_from_db()
    event = CallbackEvent.objects.get()
    assert (test.arrived_at, test.callback_event) == (event.received_at, event)
    assert event.outcome == CallbackEvent.Outcome.TEST


def test_a_test_participant_is_known_by_its_participant_id_too(post, subscribed):
    test = waiting_test("ack_participant_changed")
    post(
        "ack_participant_changed",
        {
            "participant": {"id": MARKER},
            "subscription_list": {"id": "101"},
            "mobile_phone": {"mdn": "+15551230001"},
            "participation_date": timezone.now().isoformat(),
            "status": "expired",
        },
    )
    test.refresh_from_db()
    assert test.arrived_at is not None
    assert Subscription.objects.get().status == Subscription.Status.SUBSCRIBED


def test_without_the_marker_vibes_event_id_of_a_waiting_test_tells(post, subscribed):
    test = waiting_test("subscription_removed", vibes_event_id="EVT-77")
    post("subscription_removed", opt_out(person={"id": "someone-vibes-made-up"}, event_id="EVT-77"))
    test.refresh_from_db()
    assert test.arrived_at is not None
    assert CallbackEvent.objects.get().outcome == CallbackEvent.Outcome.TEST
    assert Subscription.objects.get().status == Subscription.Status.SUBSCRIBED


def test_an_event_id_no_test_waits_for_is_an_ordinary_event(post, subscribed):
    waiting_test("subscription_removed", vibes_event_id="EVT-77")
    post("subscription_removed", opt_out(event_id="EVT-78"))
    assert CallbackEvent.objects.get().outcome == CallbackEvent.Outcome.APPLIED
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED


def test_a_marked_event_of_a_test_no_longer_known_still_changes_nothing(post, subscribed):
    post("subscription_removed", opt_out(person={"id": f"{CallbackTest.MARKER_PREFIX}forgotten"}))
    assert CallbackEvent.objects.get().outcome == CallbackEvent.Outcome.TEST
    assert Subscription.objects.get().status == Subscription.Status.SUBSCRIBED


def test_a_test_event_delivered_twice_counts_a_delivery(post, subscribed):
    waiting_test("subscription_removed")
    payload = opt_out(person={"id": MARKER})
    post("subscription_removed", payload)
    assert post("subscription_removed", payload).json() == {"status": "duplicate"}
    assert CallbackEvent.objects.get().deliveries == 2
