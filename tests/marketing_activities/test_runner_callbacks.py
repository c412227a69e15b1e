"""Runs whose effects come back from Vibes as callbacks to a live app (R5, R9, receipts),
and the results that follow them: delivery receipts, confirmations, the confirmation window."""

import csv
import datetime
import io
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from marketing_activities.models import Outcome, RunStep
from marketing_activities.runner import run_execute, run_retry_uncertain
from marketing_activities.runner.planner import count_outcomes
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory
from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE, wait_until
from vibes.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def news(news, vibes_live_callbacks):
    """The simulator's newsletter, its callbacks posted to the live app."""
    return news


def test_a_subscription_stays_pending_until_the_person_replies_y(news, vibes_simulator):
    lead = LeadFactory(mobile_phone="+15551231000")
    execute(make_campaign(("subscribe", news)), vibes_simulator)
    subscription = Subscription.objects.get(lead=lead, vibes_list=news)
    assert subscription.status == "pending"
    # Pending people get no SMS: a Send run now skips them.
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert send.steps.get().counts == {"skipped_not_subscribed": 1}

    vibes_simulator.reply("+15551231000", "Y")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(
        lambda: Subscription.objects.get(pk=subscription.pk).status == "subscribed", what="the confirmation"
    )
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: RunStep.objects.get(run=send).counts == {"delivered": 1})


def test_an_opt_out_by_sms_unsubscribes_everyone_with_the_number(news, vibes_simulator):
    first = subscribed(news, mobile_phone="+15551231100")
    second = subscribed(news, mobile_phone="+15551231100")
    vibes_simulator.add_subscriber("101", "+15551231100", external_person_id=str(first.pk))
    vibes_simulator.reply("+15551231100", "STOP")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(
        lambda: not Subscription.objects.filter(vibes_list=news, status="subscribed").exists(),
        what="the opt-out",
    )
    assert set(Subscription.objects.values_list("lead_id", "status", "opt_out_reason")) == {
        (first.pk, "unsubscribed", "user_opt_out"),
        (second.pk, "unsubscribed", "user_opt_out"),
    }
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert send.steps.get().counts == {"skipped_not_subscribed": 2}
    assert vibes_simulator.messages() == []


def test_delivery_receipts_are_recorded_on_the_sms_they_report(news, vibes_simulator):
    subscribed(news, mobile_phone="+15551231200")
    run = execute(make_campaign(("send", news)), vibes_simulator)
    result = run.steps.get().results().get()
    wait_until(
        lambda: result.__class__.objects.get(pk=result.pk).delivery_status == "delivered", what="the receipt"
    )


def test_receipts_settle_uncertain_sms_so_a_retry_texts_each_number_exactly_once(news, vibes_simulator):
    phones = [f"+1555126{index:04d}" for index in range(60)]
    for phone in phones:
        subscribed(news, mobile_phone=phone)
    vibes_simulator.set_faults(error_rate=0.3)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    vibes_simulator.set_faults(error_rate=0)
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    step = run.steps.get()
    # A 5xx after Vibes processed the SMS left it uncertain; its receipt proved it delivered.
    processed = {m["to"] for m in vibes_simulator.messages()}
    wait_until(
        lambda: (
            set(step.results().filter(outcome=Outcome.DELIVERED).values_list("phone", flat=True)) == processed
        ),
        what="the receipts of the processed SMS",
    )
    run_retry_uncertain(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert Counter(m["to"] for m in vibes_simulator.messages()) == Counter(phones)
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: RunStep.objects.get(pk=step.pk).counts == {"delivered": 60})


# --- Delivery receipts: what became of each SMS -----------------------------------------------------


def rows(run):
    return run.steps.get().results().order_by("pk")


def settled(simulator, run, outcomes):
    """Wait for every receipt, then until each row of the run has one of `outcomes`."""
    assert simulator.wait_for_callbacks(30)
    wait_until(lambda: not rows(run).exclude(outcome__in=outcomes).exists())


def test_delivered_receipts_turn_sent_sms_into_delivered(news, vibes_simulator):
    for index in range(3):
        subscribed(news, mobile_phone=f"+1555124{index:04d}")
    run = execute(make_campaign(("send", news)), vibes_simulator)
    settled(vibes_simulator, run, [Outcome.DELIVERED])
    assert list(rows(run).values_list("delivery_status", "delivery_reason")) == [("delivered", None)] * 3
    assert all(row.updated_at is not None for row in rows(run))
    assert RunStep.objects.get(run=run).counts == {"delivered": 3}


def test_failed_receipts_give_delivery_failed_with_the_carriers_reason(news, vibes_simulator):
    subscribed(news, mobile_phone="+15551241000")
    vibes_simulator.set_faults(receipt_failure_rate=1)
    vibes_simulator.configure(receipt_failure_reason="Unknown subscriber")
    run = execute(make_campaign(("send", news)), vibes_simulator)
    settled(vibes_simulator, run, [Outcome.DELIVERY_FAILED])
    row = rows(run).get()
    assert (row.delivery_status, row.delivery_reason) == (
        "failed",
        "Unknown subscriber (carrier_unreachable)",
    )
    assert RunStep.objects.get(run=run).counts == {"delivery_failed": 1}
    # Vibes accepted it: `sent` was true, and the receipt tells what came next.
    assert row.vibes_message_id == vibes_simulator.messages()[0]["message_id"]


def test_each_sms_follows_its_own_receipt_and_the_counts_follow_the_rows(news, vibes_simulator):
    for index in range(40):
        subscribed(news, mobile_phone=f"+1555125{index:04d}")
    vibes_simulator.set_faults(receipt_failure_rate=0.5)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    settled(vibes_simulator, run, [Outcome.DELIVERED, Outcome.DELIVERY_FAILED])
    expected = {m["to"]: m["delivery"] for m in vibes_simulator.messages()}
    assert {row.phone: row.delivery_status for row in rows(run)} == expected
    outcome_of = {"delivered": Outcome.DELIVERED, "failed": Outcome.DELIVERY_FAILED}
    assert {row.phone: row.outcome for row in rows(run)} == {
        phone: outcome_of[status] for phone, status in expected.items()
    }
    step = RunStep.objects.get(run=run)
    failed = sum(1 for status in expected.values() if status == "failed")
    assert 0 < failed < 40, "the fault switch failed some and delivered others"
    assert step.counts == {"delivered": 40 - failed, "delivery_failed": failed}
    assert step.counts == count_outcomes(step.pk, step.first_result_id, step.last_result_id)
    assert step.counts_updated_at >= step.finished_at


def test_an_uncertain_sms_is_settled_by_its_receipt(news, vibes_simulator):
    for index in range(20):
        subscribed(news, mobile_phone=f"+1555127{index:04d}")
    # Every answer a 5xx: half before Vibes processed the SMS, half after.
    vibes_simulator.set_faults(error_rate=1, receipt_failure_rate=0.3)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    # A receipt may overtake the runner's record of the 5xx: then it settles the row at once.
    assert set(RunStep.objects.get(run=run).counts) <= {"uncertain", "delivered", "delivery_failed"}
    delivery = {m["to"]: m["delivery"] for m in vibes_simulator.messages()}
    assert 0 < len(delivery) < 20
    assert vibes_simulator.wait_for_callbacks(30)
    wait_until(lambda: rows(run).filter(outcome=Outcome.UNCERTAIN).count() == 20 - len(delivery))
    outcome_of = {"delivered": Outcome.DELIVERED, "failed": Outcome.DELIVERY_FAILED}
    for row in rows(run):
        if row.phone in delivery:
            assert (Outcome(row.outcome), row.error_code, row.detail) == (
                outcome_of[delivery[row.phone]],
                "",
                "",
            )
        else:
            assert row.outcome == Outcome.UNCERTAIN  # never reached Vibes: the operator's call
    step = RunStep.objects.get(run=run)
    assert step.counts == count_outcomes(step.pk, step.first_result_id, step.last_result_id)


# --- Subscribe: the rows follow the confirmation ----------------------------------------------------


def subscribe_one(news, simulator, phone):
    lead = LeadFactory(mobile_phone=phone)
    run = execute(make_campaign(("subscribe", news)), simulator)
    assert rows(run).get().outcome == Outcome.PENDING
    return lead, run


def test_a_subscribe_row_ends_subscribed_after_the_confirmation(news, vibes_simulator):
    _lead, run = subscribe_one(news, vibes_simulator, "+15551281000")
    pending_at = rows(run).get().updated_at
    vibes_simulator.reply("+15551281000", "Y")
    assert vibes_simulator.wait_for_callbacks(30)
    wait_until(lambda: rows(run).get().outcome == Outcome.SUBSCRIBED)
    assert rows(run).get().updated_at >= pending_at
    assert RunStep.objects.get(run=run).counts == {"subscribed": 1}


def test_a_subscribe_row_ends_declined_on_n(news, vibes_simulator):
    lead, run = subscribe_one(news, vibes_simulator, "+15551282000")
    vibes_simulator.reply("+15551282000", "N")
    assert vibes_simulator.wait_for_callbacks(30)
    wait_until(lambda: rows(run).get().outcome == Outcome.DECLINED)
    assert RunStep.objects.get(run=run).counts == {"declined": 1}
    assert Subscription.objects.get(lead=lead).status == "unsubscribed"


def test_a_subscribe_row_expires_when_vibes_says_the_window_ended(news, vibes_simulator):
    vibes_simulator.configure(confirmation_window=1)
    lead, run = subscribe_one(news, vibes_simulator, "+15551283000")
    wait_until(lambda: rows(run).get().outcome == Outcome.EXPIRED)
    assert RunStep.objects.get(run=run).counts == {"expired": 1}
    assert Subscription.objects.get(lead=lead).status == "unsubscribed"
    # Too late: Vibes dropped the request, so a "Y" now confirms nothing.
    assert vibes_simulator.reply("+15551283000", "Y").get("confirmed", []) == []


def test_the_periodic_job_expires_a_row_whose_window_passed_without_news(news, vibes_simulator, settings):
    # Vibes' window is a day, this installation's a second: no event will come in time.
    settings.VIBES_CONFIRMATION_HOURS = 1 / 3600
    _lead, run = subscribe_one(news, vibes_simulator, "+15551284000")
    pending_at = rows(run).get().updated_at

    def expired():
        call_command("run_due_campaigns", stdout=io.StringIO())
        return rows(run).get().outcome == Outcome.EXPIRED

    wait_until(expired)
    assert rows(run).get().updated_at == pending_at + datetime.timedelta(seconds=1)
    assert RunStep.objects.get(run=run).counts == {"expired": 1}
    # The person answers after all (Vibes still held the request): the confirmation counts.
    vibes_simulator.reply("+15551284000", "Y")
    assert vibes_simulator.wait_for_callbacks(30)
    wait_until(lambda: rows(run).get().outcome == Outcome.SUBSCRIBED)
    assert RunStep.objects.get(run=run).counts == {"subscribed": 1}


# --- Unsubscribe reaches Vibes for every number ---------------------------------------------------------


def test_an_unsubscribe_vibes_answers_404_is_counted_apart(news, vibes_simulator):
    stale = subscribed(news, mobile_phone="+15551285000")  # Vibes has it out already
    never = LeadFactory(mobile_phone="+15551285001")  # never on the list, anywhere
    vibes_simulator.add_subscriber("101", "+15551285002", external_person_id="x")
    really = subscribed(news, mobile_phone="+15551285002")
    run = execute(make_campaign(("unsubscribe", news)), vibes_simulator)
    assert RunStep.objects.get(run=run).counts == {"unsubscribed": 1, "already_unsubscribed_in_vibes": 2}
    assert {row.lead_id: Outcome(row.outcome) for row in rows(run)} == {
        stale.pk: Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES,
        never.pk: Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES,
        really.pk: Outcome.UNSUBSCRIBED,
    }
    # The stale local status is corrected; nobody gets a record of a list they were never on.
    assert set(Subscription.objects.values_list("lead_id", "status")) == {
        (stale.pk, "unsubscribed"),
        (really.pk, "unsubscribed"),
    }


def test_an_unsubscribe_reaches_a_number_the_local_data_wrongly_believed_out(news, vibes_simulator):
    """A keyword re-join Vibes never told this app about: locally out, in Vibes subscribed."""
    lead = SubscriptionFactory(
        vibes_list=news, status="unsubscribed", lead=LeadFactory(mobile_phone="+15551286000")
    ).lead
    vibes_simulator.add_subscriber("101", "+15551286000")  # no external id: joined by keyword
    run = execute(make_campaign(("unsubscribe", news)), vibes_simulator)
    assert rows(run).get().outcome == Outcome.UNSUBSCRIBED
    assert {(r["mdn"], r["status"]) for r in vibes_simulator.subscriptions()} == {
        ("+15551286000", "unsubscribed")
    }
    deletes = [r for r in vibes_simulator.requests_log() if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [404, 204]  # by our id (unknown to Vibes), then by number
    assert Subscription.objects.get(lead=lead).status == "unsubscribed"


# --- What the marketer sees --------------------------------------------------------------------------


def test_results_csv_and_counts_show_the_current_outcome_and_when_it_changed(news, vibes_simulator, client):
    subscribed(news, first_name="Dora", mobile_phone="+15551287000")
    vibes_simulator.set_faults(receipt_failure_rate=1)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    settled(vibes_simulator, run, [Outcome.DELIVERY_FAILED])
    row = rows(run).get()
    user = User.objects.create_superuser("viewer", "viewer@example.com", "pw-viewer-1")
    client.force_login(user)
    results = reverse("marketing_activities:campaign_results", args=[run.campaign_id])
    html = client.get(f"{results}?run={run.pk}").content.decode()
    assert 'data-outcome="delivery_failed"' in html and 'data-outcome="sent"' not in html
    assert "Delivery failed" in html and "Handset unreachable (carrier_unreachable)" in html
    changed = date_format(timezone.localtime(row.updated_at), "SHORT_DATETIME_FORMAT")
    counted = date_format(timezone.localtime(run.steps.get().counts_updated_at), "SHORT_DATETIME_FORMAT")
    assert changed in html and f"as of {counted}" in html
    export = reverse("marketing_activities:campaign_results_export", args=[run.campaign_id])
    response = client.get(f"{export}?run={run.pk}")
    header, line = csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
    cells = dict(zip(header, line, strict=True))
    assert (cells["outcome"], cells["delivery"], cells["delivery failure reason"]) == (
        "delivery_failed",
        "failed",
        "Handset unreachable (carrier_unreachable)",
    )
    assert cells["outcome changed"] == timezone.localtime(row.updated_at).isoformat(timespec="seconds")
