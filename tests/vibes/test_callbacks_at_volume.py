"""Callbacks at volume: the request stores the event in one statement, a worker applies it.

VIBES_CALLBACKS_APPLY "background": the request answers "received" and a
worker (Celery, a thread of the web process, or "inline" at commit in tests)
applies the event, once.
"""

import base64
import datetime
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from marketing_activities.models import Outcome
from tests.marketing_activities.factories import RunResultFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import VibesListFactory
from tests.waiting import wait_until
from vibes.callbacks import (
    callback_event_apply,
    callbacks_applied_off_request,
    callbacks_apply_pending,
    register_receipt_handler,
    unregister_receipt_handler,
)
from vibes.callbacks.news import HandlerFailed
from vibes.models import CallbackEvent, Subscription, SubscriptionChange

USERNAME, PASSWORD = "vibes", "callback-pw-123"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
RECEIVED = CallbackEvent.Outcome.RECEIVED


@pytest.fixture(autouse=True)
def off_request(settings):
    settings.VIBES_CALLBACK_USERNAME = USERNAME
    settings.VIBES_CALLBACK_PASSWORD = PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []
    settings.VIBES_CALLBACKS_APPLY = "background"
    settings.RUNNER_BACKGROUND = "inline"


@pytest.fixture
def post(client):
    def post(payload, *, event_type="subscription_added", url="/vibes/callbacks/"):
        headers = {"Authorization": AUTH}
        if event_type:
            headers["X-Vibes-Event-Type"] = event_type
        return client.post(url, json.dumps(payload), content_type="application/json", headers=headers)

    return post


def opt_in(mdn="+15551230001", second=0):
    return {
        "subscription_list": {"id": "101"},
        "mobile_phone": {"mdn": mdn},
        "opt_in_date": f"2026-11-01T09:00:{second:02d}Z",
    }


def receipt(status="delivered"):
    return {"message_id": "M1", "status": status, "occurred_at": "2026-11-01T09:00:00Z"}


@pytest.fixture
def subscriber():
    vibes_list = VibesListFactory(vibes_id="101")
    return LeadFactory(mobile_phone="+15551230001"), vibes_list


@pytest.mark.django_db
def test_the_request_only_stores_the_event_in_one_query(post, subscriber, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = post(opt_in())
    assert (response.status_code, response.json()) == (200, {"status": "received"})
    assert CallbackEvent.objects.get().outcome == RECEIVED
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_a_repeat_is_counted_in_the_same_one_query(post, subscriber, django_assert_num_queries):
    post(opt_in())
    with django_assert_num_queries(1):
        response = post(opt_in())
    assert response.json() == {"status": "duplicate"}
    assert CallbackEvent.objects.get().deliveries == 2


@pytest.mark.django_db
def test_the_worker_applies_the_event_after_the_answer(post, subscriber, django_capture_on_commit_callbacks):
    lead, vibes_list = subscriber
    with django_capture_on_commit_callbacks(execute=True):
        assert post(opt_in()).json() == {"status": "received"}
    event = CallbackEvent.objects.get()
    assert event.outcome == CallbackEvent.Outcome.APPLIED
    assert event.mdn == "+15551230001"
    assert Subscription.objects.get(lead=lead, vibes_list=vibes_list).status == "subscribed"


@pytest.mark.django_db
def test_a_receipt_keeps_its_reference_for_the_worker(post, django_capture_on_commit_callbacks):
    row = RunResultFactory(outcome=Outcome.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        post(receipt(), event_type="", url=f"/vibes/callbacks/?ref=r{row.pk}")
    event = CallbackEvent.objects.get()
    assert (event.reference, event.outcome) == (f"r{row.pk}", CallbackEvent.Outcome.APPLIED)
    row.refresh_from_db()
    assert row.outcome == Outcome.DELIVERED


@pytest.mark.django_db
def test_an_event_is_applied_once_however_often_a_worker_is_asked(post, subscriber):
    post(opt_in())
    event = CallbackEvent.objects.get()
    assert callback_event_apply(event_id=event.pk) == CallbackEvent.Outcome.APPLIED
    assert callback_event_apply(event_id=event.pk) is None
    assert callbacks_apply_pending(older_than=datetime.timedelta(0)) == 0
    assert SubscriptionChange.objects.filter(callback_event=event).count() == 1


@pytest.mark.django_db
def test_a_repeat_delivered_before_the_event_was_applied_is_applied_once(
    post, subscriber, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(opt_in())
        post(opt_in())
    event = CallbackEvent.objects.get()
    assert (event.outcome, event.deliveries) == (CallbackEvent.Outcome.APPLIED, 2)
    assert SubscriptionChange.objects.filter(callback_event=event).count() == 1


@pytest.mark.django_db
def test_a_failing_handler_leaves_the_event_waiting_until_it_can_be_applied(post):
    row = RunResultFactory(outcome=Outcome.SENT)

    def broken(receipt):
        raise RuntimeError("database is locked")

    register_receipt_handler(broken)
    try:
        # Stored and answered: Vibes need not deliver it again, the app applies it later.
        assert post(receipt(), event_type="", url=f"/vibes/callbacks/?ref=r{row.pk}").status_code == 200
        with pytest.raises(HandlerFailed):
            callback_event_apply(event_id=CallbackEvent.objects.get().pk)
        assert callbacks_apply_pending(older_than=datetime.timedelta(0)) == 0
    finally:
        unregister_receipt_handler(broken)
    assert CallbackEvent.objects.get().outcome == RECEIVED
    assert callbacks_apply_pending(older_than=datetime.timedelta(0)) == 1
    row.refresh_from_db()
    assert row.outcome == Outcome.DELIVERED


@pytest.mark.django_db
def test_the_periodic_job_applies_the_events_left_waiting_for_a_minute(post, subscriber):
    lead, _vibes_list = subscriber
    post(opt_in())
    call_command("run_due_campaigns", verbosity=0)
    assert CallbackEvent.objects.get().outcome == RECEIVED  # its worker may still be at it
    CallbackEvent.objects.update(received_at=timezone.now() - datetime.timedelta(minutes=2))
    call_command("run_due_campaigns", verbosity=0)
    assert CallbackEvent.objects.get().outcome == CallbackEvent.Outcome.APPLIED
    assert Subscription.objects.get(lead=lead).status == "subscribed"


@pytest.mark.django_db
def test_unreadable_callbacks_are_kept_for_an_operator_as_before(client):
    response = client.post(
        "/vibes/callbacks/", "<xml/>", content_type="application/xml", headers={"Authorization": AUTH}
    )
    assert response.json() == {"status": "unreadable"}
    assert CallbackEvent.objects.get().raw_body == "<xml/>"


@pytest.mark.django_db
def test_with_celery_the_task_applies_the_event(
    post, subscriber, settings, django_capture_on_commit_callbacks
):
    """No broker in the suite: Celery runs the task in place (CELERY_TASK_ALWAYS_EAGER)."""
    settings.RUNNER_BACKGROUND = "celery"
    with django_capture_on_commit_callbacks(execute=True):
        assert post(opt_in()).json() == {"status": "received"}
    assert CallbackEvent.objects.get().outcome == CallbackEvent.Outcome.APPLIED


@pytest.mark.django_db
def test_in_the_request_mode_the_event_is_stored_and_applied_before_the_answer(post, subscriber, settings):
    settings.VIBES_CALLBACKS_APPLY = "request"
    assert not callbacks_applied_off_request()
    assert post(opt_in()).json() == {"status": "applied"}
    assert Subscription.objects.get(lead=subscriber[0]).status == "subscribed"


@pytest.mark.django_db(transaction=True)
def test_a_thread_of_the_web_process_applies_the_events_in_turn(post, subscriber, settings):
    settings.RUNNER_BACKGROUND = "thread"
    lead, vibes_list = subscriber
    for second in range(5):
        assert post(opt_in(second=second)).json() == {"status": "received"}
    wait_until(
        lambda: not CallbackEvent.objects.filter(outcome=RECEIVED).exists(), what="the thread to apply them"
    )
    assert set(CallbackEvent.objects.values_list("outcome", flat=True)) == {CallbackEvent.Outcome.APPLIED}
    assert Subscription.objects.get(lead=lead, vibes_list=vibes_list).status == "subscribed"


@pytest.mark.django_db(transaction=True)
def test_one_event_delivered_many_times_at_once_is_stored_and_applied_once(subscriber):
    """Eight deliveries at the same moment, each on its own connection."""
    lead, vibes_list = subscriber
    start = threading.Barrier(8)
    answers = []

    def deliver():
        try:
            start.wait(30)
            response = Client().post(
                "/vibes/callbacks/",
                json.dumps(opt_in()),
                content_type="application/json",
                headers={"Authorization": AUTH, "X-Vibes-Event-Type": "subscription_added"},
            )
            answers.append(response.json()["status"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == ["duplicate"] * 7 + ["received"]
    event = CallbackEvent.objects.get()
    assert (event.deliveries, event.outcome) == (8, CallbackEvent.Outcome.APPLIED)
    assert SubscriptionChange.objects.filter(callback_event=event).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_asked_at_once_apply_an_event_once(subscriber):
    lead, vibes_list = subscriber
    event = CallbackEvent.objects.create(
        event_type="subscription_added", dedupe_key="k", payload=opt_in(), outcome=RECEIVED
    )
    start = threading.Barrier(2)
    outcomes = []

    def work():
        try:
            start.wait(30)
            outcomes.append(callback_event_apply(event_id=event.pk))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(outcomes, key=str) == [None, CallbackEvent.Outcome.APPLIED]
    assert SubscriptionChange.objects.filter(callback_event=event).count() == 1
    assert Subscription.objects.get(lead=lead, vibes_list=vibes_list).status == "subscribed"
