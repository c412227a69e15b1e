"""Outcomes as the rows store them (small integers) and as counts, links and
exports name them (codes): one way from each to the other."""

import pytest

from marketing_activities.models import Outcome, RunResult, RunStep
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory


def test_every_outcome_is_found_by_its_code():
    assert [Outcome.from_code(outcome.code) for outcome in Outcome] == list(Outcome)


def test_the_already_ran_skip_keeps_the_code_earlier_runs_stored():
    """Counts of runs before the member was renamed, and links and exports, say `already_ran`."""
    step = RunStep(counts={"already_ran": 3, "queued": 2, "an_outcome_no_longer_known": 1, "sent": 0})
    assert step.outcome_counts() == [(Outcome.QUEUED, 2), (Outcome.SKIPPED_ALREADY_RAN, 3)]


@pytest.mark.django_db
def test_the_calls_are_every_row_but_the_skips_the_cancelled_and_the_dry_runs():
    step = RunStepFactory()
    for outcome in Outcome:
        RunResultFactory(run_step=step, outcome=outcome)
    calls = {Outcome(outcome) for outcome in RunResult.objects.calls().values_list("outcome", flat=True)}
    skipped_or_dry = {
        o
        for o in Outcome
        # A cancelled row was never called: the run was aborted before its turn;
        # nor a row of a person removed from the flow (a Remove from Flow step).
        if str(o.label).startswith(("skipped", "cancelled", "removed")) or o == Outcome.PLANNED_DRY_RUN
    }
    assert calls == set(Outcome) - skipped_or_dry
    assert all(outcome.is_skip for outcome in skipped_or_dry - {Outcome.PLANNED_DRY_RUN})
    assert not any(outcome.is_skip for outcome in calls)
