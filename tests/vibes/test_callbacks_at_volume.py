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
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from marketing_activities.models import Outcome, RunResult
from marketing_activities.runner.planner import count_outcomes
from smscampaigns.background import WokenThread
from smscampaigns.models import Activity
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import VibesListFactory
from tests.waiting import wait_until
from vibes.callbacks import (
    callback_event_apply,
    callbacks_applied_off_request,
    callbacks_apply_pending,
    callbacks_apply_waiting,
    register_receipt_handler,
    unregister_receipt_handler,
)
from vibes.callbacks.applying import others_apply_in_turn
from vibes.callbacks.news import HandlerFailed, confirmation_listeners
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


# --- Receipts applied in batches -------------------------------------------------------------------------


def sms_step(rows, *, outcome=Outcome.SENT):
    """A finished Send step of `rows` SMS rows awaiting their receipts, its counts as a run leaves them."""
    step = RunStepFactory()
    made = [RunResultFactory(run_step=step, outcome=outcome) for _ in range(rows)]
    step.first_result_id, step.last_result_id = made[0].pk, made[-1].pk
    step.counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
    step.save()
    return step, made


def counts_agree(step):
    step.refresh_from_db()
    return step.counts == count_outcomes(step.pk, step.first_result_id, step.last_result_id)


def timed_receipt(status, second, **extra):
    return {"message_id": "M1", "status": status, "occurred_at": f"2026-11-01T09:00:{second:02d}Z", **extra}


def receipts_story(rows, unknown):
    """Receipts as Vibes may deliver them: repeated, out of order, for a row settled
    already, naming no row, unreadable, and a test event: (payload, ref) each."""
    first, second, third, _fourth = rows
    return [
        (timed_receipt("delivered", 5), f"r{first.pk}"),
        (timed_receipt("accepted", 1), f"r{first.pk}"),  # older news, late
        (timed_receipt("failed", 3, description="Handset off"), f"r{second.pk}"),
        (timed_receipt("delivered", 9), f"r{second.pk}"),  # the carrier changed its mind
        (timed_receipt("delivered", 7), f"r{third.pk}"),
        (timed_receipt("undeliverable", 2), f"r{third.pk}"),  # an older final status
        (timed_receipt("delivered", 4), f"r{unknown}"),  # no such row
        (timed_receipt("bounced", 4), f"r{first.pk}"),  # a status this app does not know
        (timed_receipt("delivered", 4, event_id="EV-1"), f"r{unknown}"),  # alone, as a test event may be
    ]


def receipts_told(post, *, apply, settings, capture):
    """Post the story of receipts (and a repeat of each) with callbacks applied as `apply`
    says; what it left: the rows, its events, the persons' activities, the step's counts."""
    settings.VIBES_CALLBACKS_APPLY = apply
    step, rows = sms_step(4)
    story = receipts_story(rows, unknown=10**9 + rows[0].pk)
    with capture(execute=True):
        for payload, ref in story + story:
            post(payload, event_type="", url=f"/vibes/callbacks/?ref={ref}")
    if apply == "background":
        with capture(execute=True):
            callbacks_apply_waiting()
    refs = {ref for _payload, ref in story}
    events = list(
        CallbackEvent.objects.filter(reference__in=refs)
        .order_by("pk")
        .values_list("outcome", "note", "deliveries", "mdn")
    )
    row_ids = [row.pk for row in rows]
    rows_now = list(
        RunResult.objects.filter(pk__in=row_ids)
        .order_by("pk")
        .values_list("outcome", "delivery_status", "delivery_reason", "updated_at")
    )
    activities = [
        (key.rsplit(":", 1)[1], occurred_at)
        for key, occurred_at in Activity.objects.filter(lead__run_results__pk__in=row_ids)
        .order_by("key")
        .values_list("key", "occurred_at")
    ]
    step.refresh_from_db()
    return {"rows": rows_now, "events": events, "activities": activities, "counts": step.counts, "step": step}


@pytest.mark.django_db
def test_receipts_applied_in_a_batch_do_exactly_what_they_do_applied_in_the_request(
    post, settings, django_capture_on_commit_callbacks
):
    """Repeats, out-of-order receipts, a row settled already, an unknown row: the
    batch path leaves the rows, events, activities and counts as the request path."""
    told = {
        apply: receipts_told(post, apply=apply, settings=settings, capture=django_capture_on_commit_callbacks)
        for apply in ("request", "background")
    }
    batch, request = told["background"], told["request"]
    delivered, sent = Outcome.DELIVERED, Outcome.SENT
    assert [row[:2] for row in batch["rows"]] == [(delivered, "delivered")] * 3 + [(sent, "")]
    assert [event[0] for event in batch["events"]] == ["applied"] * 6 + [
        "unmatched",
        "unreadable",
        "unmatched",
    ]
    assert {event[2] for event in batch["events"]} == {2}  # each stored once, delivered twice
    assert [kind for kind, _at in batch["activities"]] == ["delivered", "bounced", "delivered", "delivered"]
    assert counts_agree(batch["step"])
    for what in ("rows", "events", "activities", "counts"):
        assert batch[what] == request[what], what


@pytest.mark.django_db
def test_a_receipt_is_stored_in_one_query(post, django_assert_num_queries):
    row = RunResultFactory(outcome=Outcome.SENT)
    with django_assert_num_queries(1):
        response = post(receipt(), event_type="", url=f"/vibes/callbacks/?ref=r{row.pk}")
    assert response.json() == {"status": "received"}


@pytest.mark.django_db
def test_a_batch_of_receipts_costs_the_same_few_queries_however_many_events(post):
    def queries(count):
        step, rows = sms_step(count)
        RunResult.objects.filter(run_step=step).update(called_at=timezone.now())  # SMS of an hour's figures
        for row in rows:
            post(receipt(), event_type="", url=f"/vibes/callbacks/?ref=r{row.pk}")
        post(receipt(), event_type="", url=f"/vibes/callbacks/?ref=r{rows[0].pk}")  # a repeat
        with CaptureQueriesContext(connection) as captured:
            assert callbacks_apply_waiting() == count
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # See that receipts wait (outside a transaction); take them; lock and read the rows, read their
    # SMS figures, write them, read their SMS figures again and add the difference to the hour's (one
    # upsert), write the activities, lock and update the step's counts; store the events' outcomes.
    # Then find that no other event waits.
    assert len(queries(3)) == len(queries(80)) == 12


@pytest.mark.django_db(transaction=True)
def test_two_appliers_at_once_apply_each_receipt_once():
    """Two appliers (a Celery worker each) take the waiting events at once: every
    receipt is applied by one of them, once, and the counts agree with the rows."""
    step, rows = sms_step(120)
    CallbackEvent.objects.bulk_create(
        CallbackEvent(
            event_type="delivery_receipt",
            dedupe_key=f"{row.pk}-{status}",
            payload=timed_receipt(status, second),
            reference=f"r{row.pk}",
            outcome=RECEIVED,
        )
        for row in rows
        for status, second in (("delivered", 5), ("accepted", 1))
    )
    start = threading.Barrier(2)
    applied = []

    def applier():
        try:
            start.wait(30)
            applied.append(callbacks_apply_waiting(batch=50))
        finally:
            connections.close_all()

    appliers = [threading.Thread(target=applier) for _ in range(2)]
    for thread in appliers:
        thread.start()
    for thread in appliers:
        thread.join(120)
    assert sum(applied) == CallbackEvent.objects.count() == 240
    assert not CallbackEvent.objects.filter(outcome=RECEIVED).exists()
    assert RunResult.objects.filter(pk__in=[row.pk for row in rows], outcome=Outcome.DELIVERED).count() == 120
    assert Activity.objects.filter(key__startswith="sms-receipt:").count() == 120
    assert counts_agree(step)


# --- Cheaper answers: the callbacks URL skips the middleware that serves people ----------------------------


@pytest.mark.django_db
def test_an_answer_to_vibes_comes_in_the_language_vibes_asks_for_not_the_last_persons(client):
    with translation.override("de"):  # what the thread's last request, a German marketer's, left
        response = client.post(
            "/vibes/callbacks/", "{}", content_type="application/json", headers={"Accept-Language": "en"}
        )
    assert response.status_code == 401
    assert response.json() == {"error": "Vibes callback credentials are missing or wrong."}
    assert response["WWW-Authenticate"] == 'Basic realm="Vibes callbacks", charset="UTF-8"'


@pytest.mark.django_db
def test_the_answer_says_its_length_so_that_vibes_keeps_the_connection(post, subscriber):
    response = post(opt_in())
    assert int(response["Content-Length"]) == len(response.content) == len(b'{"status": "received"}')


@pytest.mark.django_db
def test_a_callback_over_plain_http_is_still_sent_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.post("/vibes/callbacks/", "{}", content_type="application/json")
    assert (response.status_code, response["Location"]) == (301, "https://testserver/vibes/callbacks/")
    assert not CallbackEvent.objects.exists()


@pytest.mark.django_db
def test_only_a_post_is_taken(client):
    assert client.get("/vibes/callbacks/", headers={"Authorization": AUTH}).status_code == 405


def test_many_wake_ups_during_a_round_make_one_more_round_not_one_each():
    """The web process's applier thread (or Celery waker): a burst of callbacks
    while it works costs one more round, and every callback has a round after it."""
    rounds, release, started = [], threading.Event(), threading.Event()

    def work():
        rounds.append(len(rounds))
        started.set()
        release.wait(30)

    woken = WokenThread("test-woken", work)
    woken.wake()
    assert started.wait(30)
    for _ in range(100):  # a burst while the first round works
        woken.wake()
    release.set()
    wait_until(lambda: len(rounds) == 2, what="the round after the burst")
    # The burst's flag was cleared when the second round began: no round per wake-up.
    assert not woken.woken.is_set()
    assert len(rounds) == 2


@pytest.mark.django_db
def test_other_events_are_applied_in_short_turns_and_one_that_fails_stays_waiting(post):
    vibes_list = VibesListFactory(vibes_id="101")
    numbers = [f"+1555123000{n}" for n in range(4)]
    for number in numbers:
        LeadFactory(mobile_phone=number)

    def broken(news):
        if news.mdn == numbers[1]:
            raise RuntimeError("a confirmation handler failed")

    confirmation_listeners.register(broken)
    try:
        for number in numbers:
            post(opt_in(number))
        # A turn of no time still applies one event: each turn makes progress.
        assert others_apply_in_turn(turn=0) == (True, CallbackEvent.objects.order_by("pk")[0].pk, 1)
        assert callbacks_apply_waiting() == 2
    finally:
        confirmation_listeners.unregister(broken)
    # The one that failed is left for the periodic job, nothing of it kept; the others are applied.
    assert list(CallbackEvent.objects.order_by("pk").values_list("outcome", flat=True)) == [
        CallbackEvent.Outcome.APPLIED,
        RECEIVED,
        CallbackEvent.Outcome.APPLIED,
        CallbackEvent.Outcome.APPLIED,
    ]
    assert not Subscription.objects.filter(lead__mobile_phone=numbers[1], vibes_list=vibes_list).exists()
    assert Subscription.objects.filter(vibes_list=vibes_list, status="subscribed").count() == 3


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_an_applier_passes_by_the_events_another_applier_holds_and_applies_the_next():
    """PostgreSQL: two appliers never walk the same events one behind the other."""
    VibesListFactory(vibes_id="101")
    numbers = [f"+1555123000{n}" for n in range(3)]
    for number in numbers:
        LeadFactory(mobile_phone=number)
    CallbackEvent.objects.bulk_create(
        CallbackEvent(
            event_type="subscription_added",
            dedupe_key=f"opt-in-{number}",
            payload=opt_in(number),
            outcome=RECEIVED,
        )
        for number in numbers
    )
    first = CallbackEvent.objects.order_by("pk")[0]
    holding, release = threading.Event(), threading.Event()

    def other_applier():
        try:
            with transaction.atomic():
                CallbackEvent.objects.select_for_update().filter(pk=first.pk).get()
                holding.set()
                release.wait(60)
        finally:
            connections.close_all()

    other = threading.Thread(target=other_applier)
    other.start()
    try:
        assert holding.wait(60)
        more, last, applied = others_apply_in_turn(turn=0)
    finally:
        release.set()
        other.join(60)
    assert (more, applied) == (True, 1)
    assert last == CallbackEvent.objects.order_by("pk")[1].pk
    assert list(CallbackEvent.objects.order_by("pk").values_list("outcome", flat=True)) == [
        RECEIVED,
        CallbackEvent.Outcome.APPLIED,
        RECEIVED,
    ]
