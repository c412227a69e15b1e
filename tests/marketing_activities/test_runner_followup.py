"""Results that follow Vibes' events after the call (runner/followup.py): the rules
for receipts, confirmations and the confirmation window, row by row. The same
over real HTTP to the simulator is in test_runner_callbacks.py."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing_activities.models import Outcome, RunResult
from marketing_activities.receipts import handle_receipt
from marketing_activities.runner import followup
from marketing_activities.runner.followup import (
    ReceiptForRow,
    result_apply_receipt,
    results_apply_receipts,
    results_expire_confirmations,
    results_settle_by_receipts,
)
from marketing_activities.runner.planner import count_outcomes
from marketing_activities.runner.report import format_summary
from smscampaigns.models import Activity
from tests.marketing_activities.factories import CampaignRunFactory, RunResultFactory, RunStepFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from vibes.callbacks import DeliveryReceipt

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def step_with(outcome, *, action="send_sms", rows=1, vibes_list=None, started_at=None, **row_fields):
    """A finished step whose `rows` rows have `outcome`, with counts and id range as a run leaves them."""
    run = CampaignRunFactory(started_at=started_at or NOW - datetime.timedelta(minutes=5))
    step = RunStepFactory(
        run=run,
        action=action,
        vibes_list=vibes_list or VibesListFactory(),
        planned_at=run.started_at,
        finished_at=run.started_at,
    )
    made = [
        RunResultFactory(run_step=step, outcome=outcome, updated_at=run.started_at, **row_fields)
        for _ in range(rows)
    ]
    step.first_result_id, step.last_result_id = made[0].pk, made[-1].pk
    step.counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
    step.save()
    return step


def outcome_of(row):
    return Outcome(RunResult.objects.get(pk=row.pk).outcome)


def counts_agree(step):
    step.refresh_from_db()
    return step.counts == count_outcomes(step.pk, step.first_result_id, step.last_result_id)


# --- Delivery receipts ---------------------------------------------------------------------------


def apply_in_a_batch(*, result_id, status, message_id="", reason="", occurred_at=None):
    """One receipt through the batch path (receipts applied off the request)."""
    [matched] = results_apply_receipts([ReceiptForRow(result_id, status, message_id, reason, occurred_at)])
    return matched


@pytest.fixture(params=["one at a time", "in a batch"])
def apply_receipt(request):
    """The rules of receipts hold alike whether a receipt is applied alone or in a batch."""
    return result_apply_receipt if request.param == "one at a time" else apply_in_a_batch


@pytest.mark.parametrize(
    ("before", "status", "after"),
    [
        (Outcome.SENT, "delivered", Outcome.DELIVERED),
        (Outcome.SENT, "undeliverable", Outcome.DELIVERY_FAILED),
        (Outcome.SENT, "accepted", Outcome.SENT),
        (Outcome.UNCERTAIN, "delivered", Outcome.DELIVERED),
        (Outcome.UNCERTAIN, "failed", Outcome.DELIVERY_FAILED),
        (Outcome.UNCERTAIN, "accepted", Outcome.SENT),  # Vibes had it: not to be sent again
        (Outcome.SENDING, "delivered", Outcome.SENDING),  # the runner's, until it records the answer
    ],
)
def test_a_receipt_settles_its_sms(before, status, after, apply_receipt):
    step = step_with(before, error_code="uncertain" if before == Outcome.UNCERTAIN else "")
    row = step.results().get()
    assert apply_receipt(result_id=row.pk, status=status, reason="Handset off (9)") is True
    row.refresh_from_db()
    assert (Outcome(row.outcome), row.delivery_status) == (after, status)
    assert row.delivery_reason == ("Handset off (9)" if after == Outcome.DELIVERY_FAILED else None)
    if before == Outcome.UNCERTAIN:
        assert row.error_code == ""  # the doubt is settled
    assert counts_agree(step)


def test_a_receipt_changes_the_row_as_of_its_own_time_never_before_the_last_change(apply_receipt):
    step = step_with(Outcome.SENT)
    row = step.results().get()
    delivered_at = row.updated_at + datetime.timedelta(seconds=3)
    apply_receipt(result_id=row.pk, status="delivered", occurred_at=delivered_at)
    assert RunResult.objects.get(pk=row.pk).updated_at == delivered_at

    other = step_with(Outcome.SENT).results().get()
    apply_receipt(
        result_id=other.pk, status="delivered", occurred_at=other.updated_at - datetime.timedelta(hours=1)
    )
    assert RunResult.objects.get(pk=other.pk).updated_at == other.updated_at


def test_news_older_than_the_rows_changes_nothing(apply_receipt):
    step = step_with(Outcome.SENT)
    row = step.results().get()
    apply_receipt(result_id=row.pk, status="delivered", occurred_at=NOW)
    # A retried "accepted", and a second final status that is not newer.
    apply_receipt(result_id=row.pk, status="accepted", occurred_at=NOW + datetime.timedelta(seconds=1))
    apply_receipt(result_id=row.pk, status="failed", occurred_at=NOW - datetime.timedelta(seconds=1))
    row.refresh_from_db()
    assert (Outcome(row.outcome), row.delivery_status) == (Outcome.DELIVERED, "delivered")
    # A newer final status wins: the carrier changed its mind.
    apply_receipt(result_id=row.pk, status="failed", occurred_at=NOW + datetime.timedelta(seconds=5))
    assert outcome_of(row) == Outcome.DELIVERY_FAILED
    assert counts_agree(step)


def test_a_receipt_overtaking_the_runners_answer_settles_the_row_once_the_answer_is_recorded(apply_receipt):
    step = step_with(Outcome.SENDING, rows=3)
    first, second, third = step.results().order_by("pk")
    apply_receipt(result_id=first.pk, status="delivered")
    apply_receipt(result_id=second.pk, status="failed", reason="Unknown subscriber")
    # The runner records Vibes' answers: sent, a 5xx after sending, sent.
    RunResult.objects.filter(pk__in=[first.pk, third.pk]).update(outcome=Outcome.SENT)
    RunResult.objects.filter(pk=second.pk).update(outcome=Outcome.UNCERTAIN, error_code="uncertain")
    delta = results_settle_by_receipts([first.pk, second.pk, third.pk], now=NOW)
    assert dict(delta) == {
        Outcome.SENT: -1,
        Outcome.DELIVERED: 1,
        Outcome.UNCERTAIN: -1,
        Outcome.DELIVERY_FAILED: 1,
    }
    assert [outcome_of(row) for row in (first, second, third)] == [
        Outcome.DELIVERED,
        Outcome.DELIVERY_FAILED,
        Outcome.SENT,
    ]
    assert RunResult.objects.get(pk=second.pk).delivery_reason == "Unknown subscriber"


@pytest.mark.parametrize("outcome", [Outcome.PENDING, Outcome.UNSUBSCRIBED, Outcome.SKIPPED_NO_PHONE])
def test_a_receipt_naming_a_row_that_is_no_sms_matches_nothing(outcome, apply_receipt):
    row = step_with(outcome).results().get()
    assert apply_receipt(result_id=row.pk, status="delivered") is False
    assert RunResult.objects.get(pk=row.pk).delivery_status == ""


@pytest.mark.parametrize("reference", ["", "r", "x12", "r12a", "r²", "r" + "9" * 19])
def test_a_reference_that_names_no_row_matches_nothing(reference):
    receipt = DeliveryReceipt("M1", "+15551230001", "delivered", reference, None)
    assert handle_receipt(receipt) is False


def test_a_receipt_costs_the_same_few_queries_however_large_the_step():
    def queries(rows):
        row = step_with(Outcome.SENT, rows=rows, called_at=NOW).results().first()
        with CaptureQueriesContext(connection) as captured:
            result_apply_receipt(result_id=row.pk, status="delivered")
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # Lock and read the row, read its SMS figures, write the row, read its figures again and add the
    # difference to its hour's (one upsert), write the person's activity, lock and update the step's counts.
    assert len(queries(2)) == len(queries(40)) == 8


def test_a_batch_with_repeats_and_receipts_out_of_order_leaves_the_counts_equal_to_a_recount():
    step = step_with(Outcome.SENT, rows=6)
    uncertain = step_with(Outcome.UNCERTAIN, rows=2, error_code="uncertain")
    rows = list(step.results().order_by("pk"))
    doubts = list(uncertain.results().order_by("pk"))
    later = NOW - datetime.timedelta(minutes=2)  # after the rows' last change, and in the past
    receipts = [
        ReceiptForRow(rows[0].pk, "delivered", occurred_at=later),
        ReceiptForRow(rows[0].pk, "delivered", occurred_at=later),  # a repeat
        ReceiptForRow(rows[0].pk, "accepted", occurred_at=later),  # older news, late
        ReceiptForRow(rows[1].pk, "failed", reason="Handset off (9)", occurred_at=later),
        ReceiptForRow(rows[1].pk, "delivered", occurred_at=later + datetime.timedelta(seconds=5)),  # newer
        ReceiptForRow(rows[2].pk, "delivered", occurred_at=later + datetime.timedelta(seconds=5)),
        ReceiptForRow(rows[2].pk, "undeliverable", occurred_at=later),  # an older final status
        ReceiptForRow(rows[3].pk, "accepted"),
        ReceiptForRow(doubts[0].pk, "accepted"),
        ReceiptForRow(doubts[0].pk, "delivered", occurred_at=later),
        ReceiptForRow(doubts[1].pk, "failed", occurred_at=later),
        ReceiptForRow(10**12, "delivered"),  # no such row
    ]
    assert results_apply_receipts(receipts) == [True] * 11 + [False]
    assert [outcome_of(row) for row in rows] == [
        Outcome.DELIVERED,
        Outcome.DELIVERED,
        Outcome.DELIVERED,
        Outcome.SENT,
        Outcome.SENT,
        Outcome.SENT,
    ]
    assert [outcome_of(row) for row in doubts] == [Outcome.DELIVERED, Outcome.DELIVERY_FAILED]
    assert RunResult.objects.get(pk=doubts[1].pk).error_code == ""
    assert counts_agree(step)
    assert counts_agree(uncertain)


def test_a_batch_gives_each_row_what_its_receipts_one_at_a_time_give_it():
    statuses = ["delivered", "accepted", "failed", "delivered", "undeliverable"]
    times = [NOW - datetime.timedelta(seconds=60 - second) for second in (3, 9, 1, 7, 5)]
    alone, batch = step_with(Outcome.SENT, rows=5), step_with(Outcome.SENT, rows=5)
    fields = ("outcome", "delivery_status", "delivery_reason", "updated_at")
    for row in alone.results().order_by("pk"):
        for status, moment in zip(statuses, times, strict=True):
            result_apply_receipt(result_id=row.pk, status=status, reason="Unknown (1)", occurred_at=moment)
    results_apply_receipts(
        [
            ReceiptForRow(row.pk, status, reason="Unknown (1)", occurred_at=moment)
            for row in batch.results().order_by("pk")
            for status, moment in zip(statuses, times, strict=True)
        ]
    )
    assert list(alone.results().order_by("pk").values_list(*fields)) == list(
        batch.results().order_by("pk").values_list(*fields)
    )
    alone.refresh_from_db()
    batch.refresh_from_db()
    assert alone.counts == batch.counts


def test_a_batch_writes_each_persons_activity_once():
    step = step_with(Outcome.SENT, rows=3)
    rows = list(step.results().order_by("pk"))
    first = [ReceiptForRow(row.pk, "delivered", occurred_at=NOW) for row in rows]
    results_apply_receipts(first + first)
    results_apply_receipts(first)
    keys = Activity.objects.filter(kind=Activity.Kind.SMS_DELIVERED).values_list("key", flat=True)
    assert sorted(keys) == sorted(f"sms-receipt:{row.pk}:delivered" for row in rows)


def test_a_batch_of_receipts_costs_the_same_few_queries_however_many_receipts():
    def queries(rows):
        step = step_with(Outcome.SENT, rows=rows, called_at=NOW)
        receipts = [ReceiptForRow(row.pk, "delivered") for row in step.results()]
        with CaptureQueriesContext(connection) as captured:
            results_apply_receipts(receipts + receipts[:2])
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # Lock and read the rows, read their SMS figures, write them, read their figures again and add
    # the difference (one upsert), write the persons' activities, lock and update the step's counts.
    assert len(queries(3)) == len(queries(60)) == 8


# --- Confirmations ---------------------------------------------------------------------------------


@pytest.fixture
def post(vibes_callback_post):
    def post(payload, event_type):
        return vibes_callback_post(payload, event_type=event_type)

    return post


@pytest.fixture
def news():
    vibes_list = VibesListFactory(vibes_id="101")
    AcquisitionCampaignFactory(vibes_id="AC-1", vibes_list=vibes_list)
    return vibes_list


def subscribe_row(news, outcome=Outcome.PENDING, *, phone="+15551230001", started_at=None):
    lead = LeadFactory(mobile_phone=phone)
    step = step_with(
        outcome, action="subscribe_vibes_list", vibes_list=news, lead=lead, phone=phone, started_at=started_at
    )
    return step, step.results().get()


def confirmed(at, phone="+15551230001"):
    return {
        "subscription_list": {"id": "101"},
        "mobile_phone": {"mdn": phone},
        "opt_in_date": at.isoformat(),
        "acquisition_campaign": {"acquisition_id": "AC-1"},
    }


def participant(status, since, phone="+15551230001"):
    return {
        "acquisition_campaign": {"acquisition_id": "AC-1"},
        "mobile_phone": {"mdn": phone},
        "participation_date": since.isoformat(),
        "status": status,
    }


def test_a_confirmation_moves_the_pending_row_as_of_the_opt_in(post, news):
    step, row = subscribe_row(news)
    opt_in = NOW - datetime.timedelta(minutes=1)
    post(confirmed(opt_in), "subscription_added")
    row.refresh_from_db()
    assert (Outcome(row.outcome), row.updated_at) == (Outcome.SUBSCRIBED, opt_in)
    assert counts_agree(step)


@pytest.mark.parametrize(
    ("status", "outcome", "detail"),
    [
        ("declined", Outcome.DECLINED, ""),
        ("rejected", Outcome.DECLINED, "Vibes: rejected"),
        ("expired", Outcome.EXPIRED, ""),
        ("confirmed", Outcome.SUBSCRIBED, ""),
    ],
)
def test_a_participant_event_moves_the_pending_row(post, news, status, outcome, detail):
    step, row = subscribe_row(news)
    post(participant(status, row.run_step.run.started_at), "ack_participant_changed")
    row.refresh_from_db()
    assert (Outcome(row.outcome), row.detail) == (outcome, detail)
    assert counts_agree(step)


def test_a_confirmation_older_than_the_run_leaves_its_row_pending(post, news):
    """A retried subscription_added from an earlier subscription is not this run's answer."""
    step, row = subscribe_row(news, started_at=NOW - datetime.timedelta(minutes=5))
    post(confirmed(NOW - datetime.timedelta(days=2)), "subscription_added")
    assert outcome_of(row) == Outcome.PENDING


def test_a_confirmation_moves_only_its_numbers_rows_on_its_list(post, news):
    _step, mine = subscribe_row(news)
    _step, other_number = subscribe_row(news, phone="+15551230002")
    _step, other_list = subscribe_row(VibesListFactory(vibes_id="102"))
    post(confirmed(NOW), "subscription_added")
    assert [outcome_of(row) for row in (mine, other_number, other_list)] == [
        Outcome.SUBSCRIBED,
        Outcome.PENDING,
        Outcome.PENDING,
    ]


def test_a_confirmation_settles_an_uncertain_request_and_a_decline_never_undoes_a_confirmation(post, news):
    step, row = subscribe_row(news, Outcome.UNCERTAIN)
    post(participant("pending", NOW - datetime.timedelta(minutes=4)), "ack_participant_added")
    assert outcome_of(row) == Outcome.PENDING
    post(confirmed(NOW - datetime.timedelta(minutes=3)), "subscription_added")
    post(participant("declined", NOW - datetime.timedelta(minutes=4)), "ack_participant_changed")
    assert outcome_of(row) == Outcome.SUBSCRIBED
    assert counts_agree(step)


# --- The confirmation window ------------------------------------------------------------------------


def test_the_window_expires_pending_rows_as_of_the_moment_it_ended(news, settings):
    settings.VIBES_CONFIRMATION_HOURS = 24
    step, row = subscribe_row(news)
    assert results_expire_confirmations(now=row.updated_at + datetime.timedelta(hours=23)) == 0
    assert outcome_of(row) == Outcome.PENDING
    assert results_expire_confirmations(now=row.updated_at + datetime.timedelta(hours=25)) == 1
    expired = RunResult.objects.get(pk=row.pk)
    assert (Outcome(expired.outcome), expired.updated_at) == (
        Outcome.EXPIRED,
        row.updated_at + datetime.timedelta(hours=24),
    )
    assert counts_agree(step)
    assert results_expire_confirmations(now=row.updated_at + datetime.timedelta(hours=26)) == 0


def test_without_a_window_of_its_own_only_vibes_expires_a_request(news, settings):
    settings.VIBES_CONFIRMATION_HOURS = 0
    _step, row = subscribe_row(news)
    assert results_expire_confirmations(now=NOW + datetime.timedelta(days=30)) == 0
    assert outcome_of(row) == Outcome.PENDING


def test_the_window_job_reads_nothing_once_no_step_counts_pending_rows(news, django_assert_num_queries):
    step, _row = subscribe_row(news, Outcome.SUBSCRIBED)
    with django_assert_num_queries(1):
        assert results_expire_confirmations(now=NOW + datetime.timedelta(days=2)) == 0


def test_the_window_job_costs_the_same_queries_for_few_rows_as_for_many(news):
    def queries(rows):
        step = step_with(Outcome.PENDING, action="subscribe_vibes_list", vibes_list=news, rows=rows)
        with CaptureQueriesContext(connection) as captured:
            assert results_expire_confirmations(now=NOW + datetime.timedelta(days=2)) == rows
        assert counts_agree(step)
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # The steps to look at, then per step: expire its rows, lock and update its counts.
    assert len(queries(2)) == len(queries(40)) == 4


def test_the_window_job_expires_a_long_step_a_slice_at_a_time(news, monkeypatch):
    monkeypatch.setattr(followup, "EXPIRY_SPAN", 3)  # ten rows: four slices, four transactions
    step = step_with(Outcome.PENDING, action="subscribe_vibes_list", vibes_list=news, rows=10)
    assert results_expire_confirmations(now=NOW + datetime.timedelta(days=2)) == 10
    assert not step.results().exclude(outcome=Outcome.EXPIRED).exists()
    assert counts_agree(step)


# --- The run's table --------------------------------------------------------------------------------


def test_run_campaigns_table_shows_what_came_of_the_calls_only_when_there_is_any():
    run = CampaignRunFactory(audience=5)
    RunStepFactory(run=run, counts={"delivered": 3, "delivery_failed": 1, "sent": 1})
    header = format_summary(run).splitlines()[0]
    assert "delivered" in header and "delivery failed" in header
    assert "declined" not in header and "already unsubscribed in Vibes" not in header
    assert format_summary(run).splitlines()[2].split()[-1] == "5"  # the total
