"""A step's counts by outcome (RunStep.counts), kept in step with its rows.

Rows change after their step is done (delivery receipts, confirmations, the
confirmation window), so every change of rows adds its difference to the
counts in the same transaction, under the step's row lock: the counts never
disagree with the rows, whoever changed them.
"""

from django.db import transaction
from django.utils import timezone

from ..models import Outcome, RunStep


def step_counts_add(step_id: int, delta) -> None:
    """Add `delta` (outcome → change in people) to the step's counts."""
    delta = {Outcome(k).code: v for k, v in delta.items() if v}
    if not delta:
        return
    with transaction.atomic():
        step = RunStep.objects.select_for_update().only("counts").get(pk=step_id)
        counts = dict(step.counts)
        for code, change in delta.items():
            counts[code] = counts.get(code, 0) + change
            if counts[code] == 0:
                del counts[code]
        RunStep.objects.filter(pk=step_id).update(counts=counts, counts_updated_at=timezone.now())
