"""R9 over HTTP: subscription callbacks take effect by their own time and find people by number."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import CampaignRun
from marketing_activities.runner import run_create, run_execute
from tests.marketing_activities.campaigns import make_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory
from tests.vibes.simulated import make_client
from vibes.models import CallbackEvent, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db

USERNAME, PASSWORD = "vibes", "callback-pw-123"
NUMBER_A, NUMBER_B = "+15551230001", "+15551230002"


@pytest.fixture(autouse=True)
def callback_settings(settings):
    settings.VIBES_CALLBACK_USERNAME = USERNAME
    settings.VIBES_CALLBACK_PASSWORD = PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []


@pytest.fixture
def news():
    vibes_list = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=vibes_list)
    return vibes_list


def post(client, event_type, payload):
    response = client.post(
        "/vibes/callbacks/",
        json.dumps(payload),
        content_type="application/json",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
            "X-Vibes-Event-Type": event_type,
        },
    )
    assert response.status_code == 200, response.content
    return response.json()["status"]


def added(mdn, opt_in_date, lead=None, **extra):
    payload = {
        "person": {"person_key": "PK1"},
        "subscription_list": {"id": "101"},
        "mobile_phone": {"mdn": mdn},
        "opt_in_date": opt_in_date,
        **extra,
    }
    if lead is not None:
        payload["external_person_id"] = str(lead.pk)
    return payload


def removed(mdn, opt_out_date, lead=None, **extra):
    return added(
        mdn, "2026-01-01T00:00:00Z", lead, opt_out_date=opt_out_date, opt_out_reason="user_opt_out", **extra
    )


def status_of(lead, vibes_list):
    return (
        Subscription.objects.filter(lead=lead, vibes_list=vibes_list).values_list("status", flat=True).first()
    )


def dry_run_counts(vibes_list, simulator):
    """What a Send SMS Message step to the list would do now, calling nobody."""
    run = run_create(
        campaign=make_campaign(("send", vibes_list)), trigger=CampaignRun.Trigger.COMMAND, dry_run=True
    )
    run = run_execute(run=run, client=make_client(simulator.url))
    assert simulator.requests_log() == []
    return run.steps.get().counts


# --- Issue 12, case 2: a late opt-in after an opt-out ----------------------------------------------


def test_a_late_opt_in_never_undoes_a_later_opt_out(client, news, vibes_simulator):
    lead = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    assert post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z", lead)) == "applied"
    # Vibes retries an opt-in from before the opt-out.
    assert post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z", lead)) == "superseded"

    subscription = Subscription.objects.get(lead=lead)
    assert subscription.status == "unsubscribed"
    assert subscription.opt_out_date == subscription.status_at == datetime(2026, 11, 10, 9, tzinfo=UTC)
    assert dry_run_counts(news, vibes_simulator) == {"skipped_not_subscribed": 1}


def test_the_late_event_is_kept_in_the_history_as_superseded(client, news):
    lead = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z", lead))
    post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z", lead))

    late = CallbackEvent.objects.get(event_type="subscription_added")
    assert late.outcome == "superseded"
    history = list(
        SubscriptionChange.objects.filter(lead=lead)
        .order_by("recorded_at", "pk")
        .values_list("old_status", "new_status", "effect", "occurred_at", "source", "callback_event")
    )
    opt_out = CallbackEvent.objects.get(event_type="subscription_removed")
    assert history == [
        (
            "subscribed",
            "unsubscribed",
            "applied",
            datetime(2026, 11, 10, 9, tzinfo=UTC),
            "callback",
            opt_out.pk,
        ),
        (
            "unsubscribed",
            "subscribed",
            "superseded",
            datetime(2026, 11, 5, 9, tzinfo=UTC),
            "callback",
            late.pk,
        ),
    ]
    assert SubscriptionChange.objects.get(effect="superseded").recorded_at >= late.received_at.replace(
        microsecond=0
    )


@pytest.mark.parametrize("arrival", ["in time order", "reversed"])
def test_events_take_effect_by_their_own_time_whatever_the_arrival(client, news, arrival):
    lead = LeadFactory(mobile_phone=NUMBER_A)
    events = [
        ("subscription_added", added(NUMBER_A, "2026-11-01T09:00:00Z")),
        ("subscription_removed", removed(NUMBER_A, "2026-11-02T09:00:00Z")),
        ("subscription_added", added(NUMBER_A, "2026-11-03T09:00:00Z")),
    ]
    for event_type, payload in events if arrival == "in time order" else reversed(events):
        post(client, event_type, payload)
    subscription = Subscription.objects.get(lead=lead)
    assert (subscription.status, subscription.status_at) == (
        "subscribed",
        datetime(2026, 11, 3, 9, tzinfo=UTC),
    )


@pytest.mark.parametrize("first", ["subscription_added", "subscription_removed"])
def test_at_equal_times_the_opt_out_wins(client, news, first):
    lead = LeadFactory(mobile_phone=NUMBER_A)
    events = {
        "subscription_added": added(NUMBER_A, "2026-11-05T09:00:00Z"),
        "subscription_removed": removed(NUMBER_A, "2026-11-05T09:00:00Z"),
    }
    second = next(name for name in events if name != first)
    post(client, first, events[first])
    post(client, second, events[second])
    assert status_of(lead, news) == "unsubscribed"


def test_times_are_compared_to_the_second(client, news):
    """Vibes may date an opt-out without fractions: within its second the opt-out still wins."""
    lead = LeadFactory(mobile_phone=NUMBER_A)
    post(client, "subscription_removed", removed(NUMBER_A, "2026-11-05T09:00:00Z"))
    assert post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00.900Z")) == "superseded"
    assert status_of(lead, news) == "unsubscribed"


def test_a_date_in_the_future_counts_from_the_arrival(client, news):
    """Otherwise a bad date would outrank every real opt-out until then."""
    lead = LeadFactory(mobile_phone=NUMBER_A)
    post(client, "subscription_added", added(NUMBER_A, "2099-01-01T00:00:00Z"))
    later = (timezone.now() + timedelta(seconds=1)).isoformat()
    assert post(client, "subscription_removed", removed(NUMBER_A, later)) == "applied"
    assert status_of(lead, news) == "unsubscribed"


def test_an_opt_out_without_a_date_counts_from_its_arrival(client, news):
    lead = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    assert post(client, "subscription_removed", removed(NUMBER_A, None)) == "applied"
    assert post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z")) == "superseded"
    assert status_of(lead, news) == "unsubscribed"


@pytest.mark.parametrize(
    "opt_in_date", [None, "", "yesterday", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59-23:59"]
)
def test_an_opt_in_without_a_valid_date_is_kept_and_changes_nothing(client, news, opt_in_date):
    lead = LeadFactory(mobile_phone=NUMBER_A)
    assert post(client, "subscription_added", added(NUMBER_A, opt_in_date)) == "ignored"
    assert status_of(lead, news) is None
    assert "opt-in date" in CallbackEvent.objects.get().note


def test_an_older_event_is_superseded_for_people_who_got_the_number_later(client, news):
    """The last change is the number's: a lead imported after the opt-out has no row, and still stays out."""
    first = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z"))
    newcomer = LeadFactory(mobile_phone=NUMBER_A)
    assert post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z")) == "superseded"
    assert (status_of(first, news), status_of(newcomer, news)) == ("unsubscribed", None)
    assert SubscriptionChange.objects.filter(lead=newcomer, effect="superseded").exists()


def test_a_late_confirmation_of_a_participant_never_undoes_an_opt_out(client, news):
    lead = SubscriptionFactory(vibes_list=news, status="pending", lead__mobile_phone=NUMBER_A).lead
    post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z", lead))
    confirmed = {
        "acquisition_campaign": {"acquisition_id": "AC-NEWS-WEB"},
        "mobile_phone": {"mdn": NUMBER_A},
        "external_person_id": str(lead.pk),
        "participation_date": "2026-11-09T09:00:00Z",
        "status": "confirmed",
    }
    assert post(client, "ack_participant_changed", confirmed) == "superseded"
    assert status_of(lead, news) == "unsubscribed"


# --- Issue 12, case 3: the person id of a lead with another number -----------------------------------


def test_a_person_id_naming_a_lead_with_another_number_changes_nothing(client, news, vibes_simulator):
    stopped = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_B).lead
    holder = LeadFactory(mobile_phone=NUMBER_A)
    # STOP from B.
    post(client, "subscription_removed", removed(NUMBER_B, "2026-11-10T09:00:00Z", stopped))
    # An opt-in for A carrying the person id of the lead whose number is B.
    assert post(client, "subscription_added", added(NUMBER_A, "2026-11-11T09:00:00Z", stopped)) == "mismatch"

    assert status_of(stopped, news) == "unsubscribed"
    assert status_of(holder, news) is None
    mismatch = SubscriptionChange.objects.get(lead=stopped, effect="mismatch")
    assert (mismatch.old_status, mismatch.new_status) == ("unsubscribed", "subscribed")
    assert CallbackEvent.objects.get(event_type="subscription_added").note.startswith(
        f"The external person id {stopped.pk} names a lead with another number"
    )
    assert dry_run_counts(news, vibes_simulator) == {"skipped_not_subscribed": 2}


def test_an_opt_out_naming_a_lead_with_another_number_still_opts_out_the_number(client, news):
    named = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_B).lead
    holder = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    assert post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z", named)) == "applied"
    assert (status_of(holder, news), status_of(named, news)) == ("unsubscribed", "subscribed")
    assert SubscriptionChange.objects.filter(lead=named, effect="mismatch").exists()


def test_the_person_id_picks_one_of_the_people_with_the_number(client, news):
    named = LeadFactory(mobile_phone=NUMBER_A)
    sharing = LeadFactory(mobile_phone=NUMBER_A)
    post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z", named))
    assert (status_of(named, news), status_of(sharing, news)) == ("subscribed", None)


def test_an_opt_in_without_a_number_changes_nothing(client, news):
    lead = LeadFactory(mobile_phone=NUMBER_A)
    payload = added(NUMBER_A, "2026-11-05T09:00:00Z", lead)
    del payload["mobile_phone"]
    assert post(client, "subscription_added", payload) == "unmatched"
    assert status_of(lead, news) is None


# --- The history on the lead's page ----------------------------------------------------------------------


def test_the_leads_page_shows_the_event_time_and_the_arrival_of_a_superseded_event(
    client, admin_client, news
):
    lead = SubscriptionFactory(vibes_list=news, lead__mobile_phone=NUMBER_A).lead
    post(client, "subscription_removed", removed(NUMBER_A, "2026-11-10T09:00:00Z"))
    post(client, "subscription_added", added(NUMBER_A, "2026-11-05T09:00:00Z"))
    page = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    superseded = page.index("unsubscribed → subscribed")
    assert page.index("arrived late, superseded", superseded) < page.index(
        "event time Nov. 5, 2026, 9 a.m.", superseded
    )
    applied = page.index("subscribed → unsubscribed")
    assert "event time Nov. 10, 2026, 9 a.m., arrived" in page[applied:]


def test_a_callback_takes_as_many_queries_for_many_people_on_the_number_as_for_one(client, news):
    def queries(number, people):
        for _ in range(people):
            SubscriptionFactory(vibes_list=news, lead__mobile_phone=number)
        with CaptureQueriesContext(connection) as captured:
            post(client, "subscription_removed", removed(number, "2026-11-10T09:00:00Z"))
        return len(captured.captured_queries)

    assert queries(NUMBER_A, 1) == queries(NUMBER_B, 20)
