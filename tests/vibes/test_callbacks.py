"""POST /vibes/callbacks/: who may post, duplicates, bad bodies, and what each event does."""

import base64
import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory
from vibes.callbacks import (
    ConfirmationNews,
    DeliveryReceipt,
    register_confirmation_handler,
    register_receipt_handler,
    unregister_confirmation_handler,
    unregister_receipt_handler,
)
from vibes.models import CallbackEvent, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db

USERNAME, PASSWORD = "vibes", "callback-pw-123"
URL = "/vibes/callbacks/"


def basic(username=USERNAME, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture(autouse=True)
def callback_settings(settings):
    settings.VIBES_CALLBACK_USERNAME = USERNAME
    settings.VIBES_CALLBACK_PASSWORD = PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []


@pytest.fixture
def post(client):
    def post(payload, *, event_type=None, auth=None, url=URL, remote_addr="127.0.0.1", raw=None):
        headers = {"Authorization": auth if auth is not None else basic()}
        if event_type:
            headers["X-Vibes-Event-Type"] = event_type
        body = raw if raw is not None else json.dumps(payload)
        return client.post(
            url, body, content_type="application/json", headers=headers, REMOTE_ADDR=remote_addr
        )

    return post


@pytest.fixture
def news():
    return VibesListFactory(vibes_id="101", name="SMS Newsletter")


def subscription_payload(lead=None, *, mdn="+15551230001", list_id="101", **extra):
    payload = {
        "person": {"person_key": "PK1"},
        "subscription_list": {"id": list_id},
        "mobile_phone": {"mdn": mdn},
        "opt_in_date": "2026-11-01T10:00:00Z",
        **extra,
    }
    if lead is not None:
        payload["external_person_id"] = str(lead.pk)
    return payload


# --- Who may post ----------------------------------------------------------------------


def test_the_url_is_named():
    assert reverse("vibes:callbacks") == URL


def test_missing_credentials_get_401_with_a_challenge(post, news):
    response = post(subscription_payload(), event_type="subscription_added", auth="")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not CallbackEvent.objects.exists()


@pytest.mark.parametrize(
    "auth", [basic(password="wrong"), basic(username="someone"), "Basic !!!", "Bearer x"]
)
def test_wrong_credentials_get_401(post, news, auth):
    assert post(subscription_payload(), event_type="subscription_added", auth=auth).status_code == 401


def test_right_credentials_get_200_without_login_or_csrf_token(post, news):
    # The test client enforces no CSRF by default; this one does.
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        URL,
        json.dumps({"event_type": "person_added"}),
        content_type="application/json",
        headers={"Authorization": basic()},
    )
    assert response.status_code == 200


def test_without_a_configured_password_every_callback_is_refused(post, news, settings, caplog):
    settings.VIBES_CALLBACK_PASSWORD = ""
    response = post(subscription_payload(), event_type="subscription_added", auth=basic(password=""))
    assert response.status_code == 401
    assert "VIBES_CALLBACK_PASSWORD" in caplog.text


def test_only_post_is_accepted(client):
    assert client.get(URL, headers={"Authorization": basic()}).status_code == 405


def test_source_outside_the_allowlist_gets_403(post, news, settings):
    settings.VIBES_CALLBACK_ALLOWED_IPS = ["35.155.139.143", "10.0.0.0/8"]
    assert post({"event_type": "person_added"}, remote_addr="192.0.2.7").status_code == 403
    assert post({"event_type": "person_added"}, remote_addr="10.1.2.3").status_code == 200
    assert post({"event_type": "person_updated"}, remote_addr="35.155.139.143").status_code == 200


def test_an_invalid_allowlist_entry_is_skipped(post, settings):
    settings.VIBES_CALLBACK_ALLOWED_IPS = ["not-an-ip", "127.0.0.1"]
    assert post({"event_type": "person_added"}).status_code == 200


# --- Storing, duplicates, bad bodies ----------------------------------------------------------


def test_every_event_is_stored_raw_without_credentials(post, news):
    lead = LeadFactory(mobile_phone="+15551230001")
    post(subscription_payload(lead), event_type="subscription_added")
    event = CallbackEvent.objects.get()
    assert event.event_type == "subscription_added"
    assert event.payload["subscription_list"] == {"id": "101"}
    assert event.mdn == "+15551230001"
    assert event.outcome == "applied"
    assert "Authorization" not in event.headers and "authorization" not in {h.lower() for h in event.headers}
    assert event.headers.get("X-Vibes-Event-Type") == "subscription_added"


def test_a_duplicate_delivery_changes_nothing_and_answers_200(post, news):
    lead = LeadFactory(mobile_phone="+15551230001")
    payload = subscription_payload(lead)
    assert post(payload, event_type="subscription_added").status_code == 200
    history = SubscriptionChange.objects.count()
    # The same event again, with its keys in another order.
    reordered = json.dumps(dict(reversed(list(payload.items()))))
    response = post(None, event_type="subscription_added", raw=reordered)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate"}
    event = CallbackEvent.objects.get()
    assert event.deliveries == 2
    assert SubscriptionChange.objects.count() == history


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "The body is not JSON (line 1, column 1)."),
        ("[1, 2]", "The body is JSON but not an object."),
        ('"text"', "The body is JSON but not an object."),
        ("null", "The body is JSON but not an object."),
        (
            json.dumps({"mobile_phone": {"mdn": "+15551230001"}}),
            "No event type: neither a header nor an event_type field names one, "
            "and the body is not shaped like a delivery receipt.",
        ),
    ],
    ids=["not-json", "array", "string", "null", "no-event-type"],
)
def test_a_body_that_cannot_be_read_is_kept_as_unreadable_and_answered_200(post, raw, reason):
    """Vibes never delivers a 4xx again: what this app cannot read is kept for an operator instead."""
    response = post(None, raw=raw)
    assert (response.status_code, response.json()) == (200, {"status": "unreadable"})
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.outcome, event.note) == ("", "unreadable", reason)
    if raw.startswith("{"):
        assert (event.payload, event.raw_body) == (json.loads(raw), None)
    else:
        assert (event.payload, event.raw_body) == ({}, raw)


def test_an_unreadable_body_delivered_again_is_a_duplicate(post):
    assert post(None, raw="<xml/>").json() == {"status": "unreadable"}
    assert post(None, raw="<xml/>").json() == {"status": "duplicate"}
    assert CallbackEvent.objects.get().deliveries == 2


def test_unknown_event_types_are_stored_and_ignored(post):
    response = post({"event_type": "wallet_item_install", "item": 1})
    assert response.status_code == 200
    assert CallbackEvent.objects.get().outcome == "ignored"


@pytest.mark.parametrize("header", ["X-Vibes-Event-Type", "x-event-type", "Event-Type"])
def test_the_event_type_may_come_from_any_known_header(client, header, news):
    LeadFactory(mobile_phone="+15551230001")
    client.post(
        URL,
        json.dumps(subscription_payload()),
        content_type="application/json",
        headers={"Authorization": basic(), header: "subscription_added"},
    )
    assert CallbackEvent.objects.get().event_type == "subscription_added"


def test_the_event_type_may_come_from_a_callback_type_field(post, news):
    LeadFactory(mobile_phone="+15551230001")
    post({**subscription_payload(), "callback_type": "subscription_added"})
    assert Subscription.objects.get().status == "subscribed"


# --- Subscription events ------------------------------------------------------------------------


def test_subscription_added_subscribes_the_lead_named_by_external_id(post, news):
    named = LeadFactory(mobile_phone="+15551230001")
    sharing = LeadFactory(mobile_phone="+15551230001")
    post(subscription_payload(named), event_type="subscription_added")
    subscription = Subscription.objects.get()
    assert subscription.lead == named
    assert subscription.status == "subscribed"
    assert subscription.vibes_person_key == "PK1"
    assert subscription.opt_in_date.isoformat() == "2026-11-01T10:00:00+00:00"
    assert not Subscription.objects.filter(lead=sharing).exists()


def test_subscription_added_without_a_known_external_id_subscribes_by_number(post, news):
    first = LeadFactory(mobile_phone="+15551230001")
    second = LeadFactory(mobile_phone="+15551230001")
    post(
        subscription_payload(mdn="5551230001", external_person_id="no-such-lead"),
        event_type="subscription_added",
    )
    assert set(Subscription.objects.values_list("lead_id", "status")) == {
        (first.pk, "subscribed"),
        (second.pk, "subscribed"),
    }


def test_subscription_added_confirms_a_pending_subscription(post, news):
    pending = SubscriptionFactory(vibes_list=news, status="pending", lead__mobile_phone="+15551230001")
    post(subscription_payload(pending.lead), event_type="subscription_added")
    pending.refresh_from_db()
    assert pending.status == "subscribed"
    change = SubscriptionChange.objects.get()
    assert (change.old_status, change.new_status, change.source) == ("pending", "subscribed", "callback")


def test_subscription_removed_unsubscribes_every_lead_with_the_number(post, news):
    """R9: the opt-out is the number's, not one person's."""
    first = SubscriptionFactory(vibes_list=news, lead__mobile_phone="+15551230001")
    second = SubscriptionFactory(vibes_list=news, lead__mobile_phone="+15551230001")
    other = SubscriptionFactory(vibes_list=news, lead__mobile_phone="+15551230002")
    payload = subscription_payload(
        first.lead, opt_out_date="2026-11-02T10:00:00Z", opt_out_reason="user_opt_out"
    )
    assert post(payload, event_type="subscription_removed").status_code == 200
    for subscription in (first, second, other):
        subscription.refresh_from_db()
    assert (first.status, second.status, other.status) == ("unsubscribed", "unsubscribed", "subscribed")
    assert first.opt_out_reason == second.opt_out_reason == "user_opt_out"
    assert CallbackEvent.objects.get().outcome == "applied"


def test_an_unmatched_number_is_stored_as_unmatched_with_200(post, news):
    response = post(subscription_payload(mdn="+15559999999"), event_type="subscription_removed")
    assert response.status_code == 200
    assert CallbackEvent.objects.get().outcome == "unmatched"
    assert not Subscription.objects.exists()


def test_an_unknown_list_is_stored_as_unmatched(post):
    LeadFactory(mobile_phone="+15551230001")
    post(subscription_payload(list_id="999"), event_type="subscription_added")
    assert CallbackEvent.objects.get().outcome == "unmatched"


# --- Acquisition participant events ------------------------------------------------------------------


@pytest.fixture
def campaign(news):
    return AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=news)


def participant_payload(lead, status, participation_date="2026-11-01T09:00:00Z"):
    return {
        "person": {"person_key": "PK1"},
        "acquisition_campaign": {"acquisition_id": "AC-NEWS-WEB"},
        "mobile_phone": {"mdn": lead.mobile_phone},
        "external_person_id": str(lead.pk),
        "participation_date": participation_date,
        "status": status,
    }


def test_participant_added_pending_makes_the_lead_pending(post, campaign):
    lead = LeadFactory()
    post(participant_payload(lead, "PENDING"), event_type="ack_participant_added")
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.acquisition_campaign) == ("pending", campaign)


def test_a_late_pending_never_undoes_a_subscription(post, campaign):
    subscription = SubscriptionFactory(
        vibes_list=campaign.vibes_list, status="subscribed", status_at=datetime(2026, 11, 1, 10, tzinfo=UTC)
    )
    response = post(
        participant_payload(subscription.lead, "pending", "2026-11-01T09:00:00Z"),
        event_type="ack_participant_added",
    )
    assert response.json() == {"status": "superseded"}
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"


def test_a_participant_event_without_a_participation_date_changes_nothing(post, campaign):
    """It cannot be ordered among the others, so it is kept and ignored."""
    subscription = SubscriptionFactory(vibes_list=campaign.vibes_list, status="pending")
    post(
        participant_payload(subscription.lead, "confirmed", participation_date=None),
        event_type="ack_participant_changed",
    )
    subscription.refresh_from_db()
    assert subscription.status == "pending"
    assert CallbackEvent.objects.get().outcome == "ignored"


@pytest.mark.parametrize("status", ["expired", "declined"])
def test_an_ended_confirmation_ends_the_pending_state(post, campaign, status):
    subscription = SubscriptionFactory(vibes_list=campaign.vibes_list, status="pending")
    post(participant_payload(subscription.lead, status), event_type="ack_participant_changed")
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed"
    assert status in SubscriptionChange.objects.get().note


def test_an_ended_confirmation_leaves_a_subscribed_lead_alone(post, campaign):
    subscription = SubscriptionFactory(vibes_list=campaign.vibes_list, status="subscribed")
    post(participant_payload(subscription.lead, "expired"), event_type="ack_participant_changed")
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"


def test_a_confirmed_participant_is_subscribed(post, campaign):
    subscription = SubscriptionFactory(vibes_list=campaign.vibes_list, status="pending")
    post(participant_payload(subscription.lead, "confirmed"), event_type="ack_participant_changed")
    subscription.refresh_from_db()
    assert subscription.status == "subscribed"


# --- Delivery receipts -------------------------------------------------------------------------------------


@pytest.fixture
def receipts():
    received = []

    def handler(receipt):
        received.append(receipt)
        return True

    register_receipt_handler(handler)
    yield received
    unregister_receipt_handler(handler)


def receipt_payload(message_id="M1", status="delivered"):
    return {
        "event_type": "delivery_receipt",
        "message_id": message_id,
        "to": "+15551230001",
        "status": status,
        "occurred_at": "2026-11-22T10:00:00Z",
    }


def test_receipts_reach_every_handler_with_the_reference(post, receipts):
    response = post(receipt_payload(), url=f"{URL}?ref=run-7-result-42")
    assert response.status_code == 200
    [receipt] = receipts
    assert isinstance(receipt, DeliveryReceipt)
    assert (receipt.message_id, receipt.mdn, receipt.status, receipt.reference) == (
        "M1",
        "+15551230001",
        "delivered",
        "run-7-result-42",
    )
    assert receipt.occurred_at.isoformat() == "2026-11-22T10:00:00+00:00"
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.outcome) == ("delivery_receipt", "applied")


def test_a_repeated_receipt_is_not_passed_on_twice(post, receipts):
    post(receipt_payload(), url=f"{URL}?ref=r1")
    post(receipt_payload(), url=f"{URL}?ref=r1")
    assert len(receipts) == 1


def test_the_same_receipt_for_another_reference_is_a_new_event(post, receipts):
    post(receipt_payload(), url=f"{URL}?ref=r1")
    post(receipt_payload(), url=f"{URL}?ref=r2")
    assert [r.reference for r in receipts] == ["r1", "r2"]


def test_a_failing_handler_answers_503_so_vibes_delivers_again(post):
    def broken(receipt):
        raise RuntimeError("database is locked")

    register_receipt_handler(broken)
    try:
        response = post(receipt_payload())
    finally:
        unregister_receipt_handler(broken)
    assert response.status_code == 503
    assert not CallbackEvent.objects.exists()
    assert post(receipt_payload()).status_code == 200


def test_receipts_no_handler_recognises_are_stored_as_unmatched(post):
    post(receipt_payload(), url=f"{URL}?ref=r999999")
    assert CallbackEvent.objects.get().outcome == "unmatched"


def test_a_failed_receipt_carries_the_carriers_reason(post, receipts):
    payload = {**receipt_payload(status="Failed"), "description": "Handset unreachable", "error_code": "705"}
    post(payload, url=f"{URL}?ref=r1")
    [receipt] = receipts
    assert (receipt.status, receipt.failed, receipt.reason) == ("failed", True, "Handset unreachable (705)")


def test_a_delivered_receipt_has_no_reason_whatever_it_carries(post, receipts):
    post({**receipt_payload(), "description": "Delivered to handset"}, url=f"{URL}?ref=r1")
    assert [(r.delivered, r.reason) for r in receipts] == [(True, "")]


def test_a_receipt_without_an_event_type_is_known_by_its_reference(post, receipts):
    """Connect's receipts need not name their type: only an SMS's callback URL has a reference."""
    payload = receipt_payload()
    del payload["event_type"]
    del payload["message_id"]
    response = post(payload, url=f"{URL}?ref=r5")
    assert response.json() == {"status": "applied"}
    assert [(r.reference, r.status) for r in receipts] == [("r5", "delivered")]
    assert CallbackEvent.objects.get().event_type == "delivery_receipt"


def test_a_receipt_without_an_event_type_or_reference_is_known_by_its_shape(post, receipts):
    payload = receipt_payload()
    del payload["event_type"]
    assert post(payload).json() == {"status": "applied"}
    assert CallbackEvent.objects.get().event_type == "delivery_receipt"


@pytest.mark.parametrize(
    ("status", "note"),
    [
        ("bounced", "The receipt's status “bounced” is not one this app knows"),
        ({"state": "delivered"}, "The receipt has no status; nothing changed."),
        (None, "The receipt has no status; nothing changed."),
    ],
    ids=["unknown-word", "an-object", "missing"],
)
def test_a_receipt_of_a_status_this_app_does_not_know_is_kept_as_unreadable(post, receipts, status, note):
    payload = {**receipt_payload(), "status": status}
    response = post(payload, url=f"{URL}?ref=r1")
    assert (response.status_code, response.json()) == (200, {"status": "unreadable"})
    assert receipts == []  # nothing acted on what it could not read
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.outcome, event.payload) == ("delivery_receipt", "unreadable", payload)
    assert event.note.startswith(note)


def test_an_xml_receipt_is_kept_as_it_came_and_answered_200(post, receipts):
    """Vibes Connect's own carrier responses are XML; a 4xx would lose them for good."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><mtMessageResponse messageId="M1">'
        '<status isError="true"><description>Handset unreachable</description></status></mtMessageResponse>'
    )
    response = post(None, raw=xml, url=f"{URL}?ref=r1")
    assert (response.status_code, response.json()) == (200, {"status": "unreadable"})
    event = CallbackEvent.objects.get()
    assert (event.event_type, event.raw_body, event.payload) == ("delivery_receipt", xml, {})
    assert receipts == []


def test_unreadable_callbacks_are_listed_for_an_operator_in_the_admin(post, admin_client, news):
    post(None, raw="<deliver><message text='what time do you open?'/></deliver>")
    post({"event_type": "wallet_item_install"})  # read, and no action: not listed
    changelist = admin_client.get(reverse("admin:vibes_unreadablecallback_changelist")).content.decode()
    assert "The body is not JSON (line 1, column 1)." in changelist
    assert "what time do you open?" in changelist
    assert "wallet_item_install" not in changelist
    unreadable = CallbackEvent.objects.get(outcome="unreadable")
    page = admin_client.get(reverse("admin:vibes_unreadablecallback_change", args=[unreadable.pk]))
    assert "&lt;deliver&gt;&lt;message text=&#x27;what time do you open?&#x27;/&gt;&lt;/deliver&gt;" in (
        page.content.decode()
    )
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "Unreadable callbacks" in index


# --- The news of a confirmation, for whoever asked for it ----------------------------------------------


@pytest.fixture
def confirmations():
    received = []
    register_confirmation_handler(received.append)
    yield received
    unregister_confirmation_handler(received.append)


def test_a_subscription_added_tells_that_the_number_subscribed(post, news, confirmations):
    LeadFactory(mobile_phone="+15551230001")
    post(subscription_payload(), event_type="subscription_added")
    [news_] = confirmations
    opt_in = datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert news_ == ConfirmationNews("+15551230001", news.pk, "subscribed", "subscribed", opt_in, opt_in)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("confirmed", "subscribed"),
        ("PENDING", "pending"),
        ("declined", "declined"),
        ("expired", "expired"),
        ("blocked", "declined"),
    ],
)
def test_a_participant_event_tells_what_became_of_the_request(post, campaign, confirmations, status, outcome):
    lead = LeadFactory()
    post(participant_payload(lead, status), event_type="ack_participant_changed")
    [news_] = confirmations
    event = CallbackEvent.objects.get()
    assert (news_.mdn, news_.vibes_list_id, news_.outcome, news_.status) == (
        lead.mobile_phone,
        campaign.vibes_list_id,
        outcome,
        status.lower(),
    )
    assert (news_.since, news_.at) == (datetime(2026, 11, 1, 9, tzinfo=UTC), event.received_at)


def test_a_mismatched_event_tells_nothing(post, news, confirmations):
    named = LeadFactory(mobile_phone="+15551230009")
    LeadFactory(mobile_phone="+15551230001")
    assert post(subscription_payload(named), event_type="subscription_added").json() == {"status": "mismatch"}
    assert confirmations == []


def test_a_failing_confirmation_handler_answers_503_and_changes_nothing(post, news):
    def broken(news_):
        raise RuntimeError("database is locked")

    LeadFactory(mobile_phone="+15551230001")
    register_confirmation_handler(broken)
    try:
        response = post(subscription_payload(), event_type="subscription_added")
    finally:
        unregister_confirmation_handler(broken)
    assert response.status_code == 503
    assert not CallbackEvent.objects.exists() and not Subscription.objects.exists()


def test_the_view_never_calls_vibes(post, news, monkeypatch):
    import requests

    def no_calls(*args, **kwargs):
        raise AssertionError("the callbacks view called out")

    monkeypatch.setattr(requests.Session, "request", no_calls)
    SubscriptionFactory(vibes_list=news, lead__mobile_phone="+15551230001")
    payload = subscription_payload(opt_out_reason="user_opt_out")
    assert post(payload, event_type="subscription_removed").status_code == 200
