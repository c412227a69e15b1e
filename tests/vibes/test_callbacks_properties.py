"""R9 as a property: a shuffled stream of callbacks for one number and list ends where the event times say."""

import base64
import json
from datetime import UTC, datetime, timedelta

from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from smscampaigns.models import Lead
from vibes.models import CallbackEvent, Subscription, VibesList

USERNAME, PASSWORD = "vibes", "callback-pw-123"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
NUMBER = "+15551230001"
START = datetime(2026, 11, 1, 9, tzinfo=UTC)
RANK = {"subscribed": 1, "unsubscribed": 2}  # at equal times the opt-out wins


@st.composite
def histories(draw):
    """What happened to the number in Vibes: opt-ins and opt-outs taking turns, in time order,
    some in the same second (a gap of 0) or a fraction of a second apart (Vibes' clock)."""
    first = draw(st.sampled_from(["subscribed", "unsubscribed"]))
    moment, events = START, []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        moment += timedelta(seconds=draw(st.sampled_from([0, 0.5, 1, 60, 86_400])))
        status = first if index % 2 == 0 else ("unsubscribed" if first == "subscribed" else "subscribed")
        events.append((status, moment))
    return events


def payload(status, moment, index):
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "person": {"person_key": "PK1"},
        "subscription_list": {"id": "101"},
        "mobile_phone": {"mdn": NUMBER},
        "opt_in_date": stamp if status == "subscribed" else START.isoformat(),
        "sequence": index,  # two events of one second are still two events
    }
    if status == "unsubscribed":
        body.update(opt_out_date=stamp, opt_out_reason="user_opt_out")
    return body


@override_settings(
    VIBES_CALLBACK_USERNAME=USERNAME, VIBES_CALLBACK_PASSWORD=PASSWORD, VIBES_CALLBACK_ALLOWED_IPS=[]
)
class ShuffledStreamTests(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories(), data=st.data())
    def test_the_state_is_the_one_the_event_times_say_whatever_the_arrival_order(self, history, data):
        vibes_list = VibesList.objects.create(vibes_id="101", name="SMS Newsletter")
        leads = [Lead.objects.create(email=f"p{n}@example.com", mobile_phone=NUMBER) for n in range(2)]
        events = [(status, payload(status, moment, index)) for index, (status, moment) in enumerate(history)]
        # Every event at least once; some again (Vibes retries, duplicates), and all in any order.
        repeats = data.draw(
            st.lists(st.integers(min_value=1, max_value=3), min_size=len(events), max_size=len(events))
        )
        deliveries = [event for event, times in zip(events, repeats, strict=True) for _ in range(times)]
        for status, body in data.draw(st.permutations(deliveries)):
            response = self.client.post(
                "/vibes/callbacks/",
                json.dumps(body),
                content_type="application/json",
                headers={
                    "Authorization": AUTH,
                    "X-Vibes-Event-Type": "subscription_added"
                    if status == "subscribed"
                    else "subscription_removed",
                },
            )
            assert response.status_code == 200

        # Vibes' dates are compared to the second.
        status, moment = max(
            ((s, m.replace(microsecond=0)) for s, m in history), key=lambda e: (e[1], RANK[e[0]])
        )
        subscriptions = Subscription.objects.filter(vibes_list=vibes_list, lead__in=leads)
        assert {(s.status, s.status_at) for s in subscriptions} == {(status, moment)}
        assert subscriptions.count() == len(leads)
        stored = CallbackEvent.objects.all()
        assert stored.count() == len(events)
        assert sum(event.deliveries for event in stored) == len(deliveries)
        assert {event.outcome for event in stored} <= {"applied", "superseded"}
