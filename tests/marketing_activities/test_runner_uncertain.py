"""A dead worker's rows left `sending` (runner/uncertain.py): a receipt decides,
even one recorded while the rows are being settled."""

import threading

import pytest
from django.db import connection, connections, transaction

from marketing_activities.models import Outcome, RunResult
from marketing_activities.runner.planner import count_outcomes
from marketing_activities.runner.uncertain import batch_settle_interrupted
from tests.marketing_activities.factories import RunBatchFactory, RunResultFactory, RunStepFactory
from tests.waiting import wait_until


def _in_thread(work):
    """Run `work` in a thread with its own database connection; return the thread and its errors."""
    errors = []

    def target():
        try:
            work()
        except Exception as error:  # shown by the test, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def _someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_receipt_recorded_while_the_rows_are_settled_is_never_overwritten_as_uncertain(settings):
    """R8: an SMS with a receipt is never left uncertain, or the operator's retry would text it twice."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes its write lock when the settling begins: nothing can come between")
    settings.VIBES_DELIVERY_RECEIPT_URL = "https://app.example.test/vibes/receipts/"
    step = RunStepFactory()
    delivered, unknown = (RunResultFactory(run_step=step, outcome=Outcome.SENDING) for _ in range(2))
    step.first_result_id, step.last_result_id = delivered.pk, unknown.pk
    step.counts = count_outcomes(step.pk, delivered.pk, unknown.pk)
    step.save()
    batch = RunBatchFactory(run_step=step, first_result_id=delivered.pk, last_result_id=unknown.pk)
    receipt_held, release_receipt = threading.Event(), threading.Event()

    def receipt_being_recorded():
        # As result_apply_receipt does for a row still `sending`: the row
        # locked, its status written, the transaction not yet committed.
        with transaction.atomic():
            RunResult.objects.select_for_update().filter(pk=delivered.pk).update(delivery_status="delivered")
            receipt_held.set()
            release_receipt.wait(timeout=120)

    receipt, receipt_errors = _in_thread(receipt_being_recorded)
    assert receipt_held.wait(timeout=60)
    settling, settling_errors = _in_thread(
        lambda: batch_settle_interrupted(run=step.run, step=step, batch=batch, receipt_grace=0)
    )
    wait_until(_someone_waits_for_a_row_lock, what="the settling to wait for the receipt's row")
    release_receipt.set()
    receipt.join(timeout=60)
    settling.join(timeout=60)
    assert not receipt_errors and not settling_errors
    assert not settling.is_alive()

    assert Outcome(RunResult.objects.get(pk=delivered.pk).outcome) == Outcome.DELIVERED
    assert Outcome(RunResult.objects.get(pk=unknown.pk).outcome) == Outcome.UNCERTAIN
