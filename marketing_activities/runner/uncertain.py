"""Calls whose fate is unknown: the rows a dead worker left `sending`, and the
operator's decision to send the uncertain ones again.

An SMS is never sent again on a guess (Vibes takes no idempotency key): a
row left `sending` is `sent` when a delivery receipt proves it went out, and
`uncertain` otherwise, until the operator asks for a retry
(`run_campaign --retry-uncertain`, or the admin action). Unsubscribe calls
are simply made again: they text nobody.
"""

import time
from collections import Counter

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import CampaignRun, FlowStep, Outcome, RunBatch, RunResult, RunStep
from ..reporting.rollups import sms_rollups_following
from ..result_details import RETRIED_BY_OPERATOR, STOPPED_WHILE_SENDING, STOPPED_WHILE_SUBSCRIBING
from .counts import step_counts_add
from .followup import settle_outcome


def batch_rows(step: RunStep, batch: RunBatch, outcome: Outcome):
    """The batch's rows that have this outcome."""
    return RunResult.objects.filter(
        run_step=step, pk__gte=batch.first_result_id, pk__lte=batch.last_result_id, outcome=outcome
    )


def batch_settle_interrupted(
    *, run: CampaignRun, step: RunStep, batch: RunBatch, receipt_grace: float
) -> None:
    """Rows a dead worker left `sending`: find out, as far as possible, what happened.

    Waits up to `receipt_grace` seconds for the delivery receipts of SMS sent
    just before the crash.
    """
    sending = batch_rows(step, batch, Outcome.SENDING)
    if not sending.exists():
        return
    if step.action == FlowStep.Action.SEND_SMS:
        deadline = time.monotonic() + (receipt_grace if settings.VIBES_DELIVERY_RECEIPT_URL else 0)
        while sending.filter(delivery_status="").exists() and time.monotonic() < deadline:
            time.sleep(0.25)  # delivery receipts of SMS sent just before the crash are on their way
        with transaction.atomic():
            # A receipt proves the SMS went out, and says how it fared. The
            # rows are locked before they are read: a receipt recorded
            # between the reading and the writing would otherwise be
            # overwritten as uncertain, and a retry would text its number twice.
            now = timezone.now()
            delta = Counter()
            by_outcome: dict[Outcome, list[int]] = {}
            unknown_ids = []
            for pk, status in sending.select_for_update().values_list("pk", "delivery_status"):
                if status:
                    by_outcome.setdefault(settle_outcome(status, Outcome.SENT), []).append(pk)
                else:
                    unknown_ids.append(pk)
            settled = 0
            # The SMS figures follow the rows a receipt settles (reporting/rollups.py).
            with sms_rollups_following([pk for ids in by_outcome.values() for pk in ids]):
                for outcome, ids in by_outcome.items():
                    moved = sending.filter(pk__in=ids).update(outcome=outcome, updated_at=now)
                    delta[outcome] += moved
                    settled += moved
            unknown = sending.filter(pk__in=unknown_ids, delivery_status="").update(
                outcome=Outcome.UNCERTAIN,
                error_code="interrupted",
                detail=STOPPED_WHILE_SENDING,
                updated_at=now,
            )
            delta.update({Outcome.SENDING: -(settled + unknown), Outcome.UNCERTAIN: unknown})
            step_counts_add(step.pk, delta)
            CampaignRun.objects.filter(pk=run.pk).update(progress_done=F("progress_done") + settled + unknown)
    elif step.action in (FlowStep.Action.UNSUBSCRIBE, FlowStep.Action.REQUEST_CAMPAIGN):
        # A request is written with its outcome: a row still `sending` was not requested.
        with transaction.atomic():
            again = sending.update(outcome=Outcome.QUEUED, updated_at=timezone.now())
            step_counts_add(step.pk, {Outcome.SENDING: -again, Outcome.QUEUED: again})
    else:
        with transaction.atomic():
            unknown = sending.update(
                outcome=Outcome.UNCERTAIN,
                error_code="interrupted",
                detail=STOPPED_WHILE_SUBSCRIBING,
                updated_at=timezone.now(),
            )
            step_counts_add(step.pk, {Outcome.SENDING: -unknown, Outcome.UNCERTAIN: unknown})
            CampaignRun.objects.filter(pk=run.pk).update(progress_done=F("progress_done") + unknown)


def run_requeue_uncertain(*, run: CampaignRun) -> int:
    """Put a run's uncertain calls back in the queue (the operator's decision); returns how many."""
    total = 0
    with transaction.atomic():
        for step in run.steps.all():
            again = (
                step.results()
                .filter(outcome=Outcome.UNCERTAIN)
                .update(
                    outcome=Outcome.QUEUED,
                    error_code="",
                    detail=RETRIED_BY_OPERATOR,
                    updated_at=timezone.now(),
                )
            )
            if again:
                total += again
                step_counts_add(step.pk, {Outcome.UNCERTAIN: -again, Outcome.QUEUED: again})
                step.batches.all().update(
                    status=RunBatch.Status.PENDING, claimed_by="", claim_expires_at=None
                )
                RunStep.objects.filter(pk=step.pk).update(status=RunStep.Status.EXECUTING, finished_at=None)
        if total:
            CampaignRun.objects.filter(pk=run.pk).update(progress_done=F("progress_done") - total)
    return total
