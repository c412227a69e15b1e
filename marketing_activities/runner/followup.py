"""Results that follow Vibes' events after the call.

A call's row is not the end of its story: an SMS that Vibes accepted
(`sent`) is `delivered` or `delivery_failed` once its delivery receipt
arrives, and a receipt settles an `uncertain` SMS too (it proves Vibes had
it); a Subscribe row that waits for the person's reply (`pending`) becomes
`subscribed`, `declined` or `expired` as the confirmation's events arrive,
or `expired` by `results_expire_confirmations` once the confirmation window
(VIBES_CONFIRMATION_HOURS) has passed without news.

Each change moves the row's outcome and its changed-at time (as of the
event's own time where it has one, never before the row's last change nor
after now), and the step's counts with it, in one transaction.
"""

import datetime
from collections import Counter
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from smscampaigns.activities import activities_record
from smscampaigns.bulk import rows_update
from smscampaigns.models import Lead
from vibes.callbacks import RECEIPT_ACCEPTED, RECEIPT_DELIVERED, RECEIPT_FAILED, ConfirmationNews

from ..models import LEAD_ACTIVITY, SMS_SENT, FlowStep, Outcome, RunResult, RunStep
from ..reporting.rollups import sms_rollups_after, sms_rollups_before
from ..result_details import VIBES_SAYS, result_detail
from ..sms_triggers import sms_receipt_new_activity
from .counts import step_counts_add

# What a receipt's status makes of an SMS's row; a final status outranks the news before it.
_RECEIPT_OUTCOMES = (
    (RECEIPT_DELIVERED, Outcome.DELIVERED, 2),
    (RECEIPT_FAILED, Outcome.DELIVERY_FAILED, 2),
    (RECEIPT_ACCEPTED, Outcome.SENT, 1),
)
# The rows of an SMS a receipt may concern: being sent, or sent as far as anyone knows.
_RECEIPT_ROWS = (Outcome.SENDING, Outcome.UNCERTAIN, *SMS_SENT)


def receipt_outcome(status: str) -> tuple[Outcome | None, int]:
    """(the outcome a receipt's status means for its SMS, its rank); (None, 0) for no status."""
    for statuses, outcome, rank in _RECEIPT_OUTCOMES:
        if status in statuses:
            return outcome, rank
    return None, 0


def _changed_at(event_time, previous, now):
    """The event's own time, but never before the row's last change nor after now."""
    moment = min(event_time or now, now)
    return max(moment, previous) if previous else moment


def result_apply_receipt(
    *, result_id: int, status: str, message_id: str = "", reason: str = "", occurred_at=None
) -> bool:
    """Record a delivery receipt on its SMS's row; False when no SMS row has this id.

    The row keeps the receipt's status and the carrier's reason for a
    failure. A row the runner is still sending stays the runner's: it
    settles the row by the receipt once Vibes' answer is recorded. Otherwise
    `sent` or `uncertain` become `delivered` or `delivery_failed` (an
    `uncertain` SMS with an "accepted" receipt becomes `sent`). News older
    than what the row shows changes nothing: "accepted" after "delivered",
    or a second final status older than the first.
    """
    receipt = ReceiptForRow(result_id, status, message_id, reason, occurred_at)
    now = timezone.now()
    with transaction.atomic():
        row = (
            RunResult.objects.select_for_update()
            .filter(pk=result_id, outcome__in=_RECEIPT_ROWS)
            .only("outcome", "delivery_status", "vibes_message_id", "updated_at", "run_step_id", "lead_id")
            # For the person's activity; a subquery, so the step's row is not locked here.
            .annotate(
                sms_message_id=Subquery(
                    RunStep.objects.filter(pk=OuterRef("run_step_id")).values("sms_message_id")[:1]
                )
            )
            .first()
        )
        if row is None:
            return False
        changes = _receipt_changes(row, receipt, now=now)
        if changes is None:
            return True  # older news than the row's
        # A new outcome is the person's activity (SMS is Delivered, SMS Message Bounces)
        # and moves the step's counts.
        activities, counts = [], {}
        if "outcome" in changes:
            activities = _receipt_activities(row, receipt, changes)
            counts = {Outcome(row.outcome): -1, changes["outcome"]: 1}
        # The SMS figures of its hour follow the row (a new outcome, or a bounce's kind).
        figures_changed = _figures_change(row, changes)
        figures_before = sms_rollups_before(figures_changed)
        RunResult.objects.filter(pk=row.pk).update(**changes)
        activities_record(activities=activities)
        # Last: the hour's figures and the step's counts, rows the workers share, are
        # locked only until the commit (the figures first, as every writer takes them).
        sms_rollups_after(figures_changed, figures_before)
        if counts:
            step_counts_add(row.run_step_id, counts)
    return True


class ReceiptForRow(NamedTuple):
    """A delivery receipt, for the SMS row its reference names."""

    result_id: int
    status: str
    message_id: str = ""
    reason: str = ""
    occurred_at: datetime.datetime | None = None


# What a batch of receipts writes on each row it changes.
_RECEIPT_FIELDS = (
    "outcome",
    "delivery_status",
    "delivery_reason",
    "vibes_message_id",
    "updated_at",
    "error_code",
    "detail",
)


def results_apply_receipts(receipts: list[ReceiptForRow]) -> list[bool]:
    """Record a batch of delivery receipts on their SMS rows, in their order, as
    `result_apply_receipt` records each (the same rules, receipt after receipt,
    a row's later receipts seeing what its earlier ones did); for each, False
    when no SMS row has its id.

    A few statements whatever the batch's size: the rows are read and locked
    with one, written with one (`rows_update`), the persons' activities with one, and each
    step's counts moved once.
    """
    if not receipts:
        return []
    now = timezone.now()
    with transaction.atomic():
        rows = {
            row.pk: row
            for row in RunResult.objects.select_for_update()
            .filter(pk__in={receipt.result_id for receipt in receipts}, outcome__in=_RECEIPT_ROWS)
            .only(*_RECEIPT_FIELDS, "run_step_id", "lead_id")
            .annotate(
                sms_message_id=Subquery(
                    RunStep.objects.filter(pk=OuterRef("run_step_id")).values("sms_message_id")[:1]
                )
            )
            # Locked in the order of their ids, as every batch locks them: two never wait on each other.
            .order_by("pk")
        }
        matched, changed, activities = [], {}, []
        figures_changed: set[int] = set()
        delta: dict[int, Counter] = {}
        for receipt in receipts:
            row = rows.get(receipt.result_id)
            matched.append(row is not None)
            changes = None if row is None else _receipt_changes(row, receipt, now=now)
            if changes is None:
                continue
            old = Outcome(row.outcome)
            figures_changed.update(_figures_change(row, changes))
            for name, value in changes.items():
                setattr(row, name, value)
            changed[row.pk] = row
            if "outcome" in changes:
                activities += _receipt_activities(row, receipt, changes)
                delta.setdefault(row.run_step_id, Counter()).update({old: -1, changes["outcome"]: 1})
        # The SMS figures of their hours follow the rows whose outcome or bounce changed
        # (the rows are locked: nothing changes them between the two reads).
        figures_before = sms_rollups_before(figures_changed)
        rows_update(RunResult, changed.values(), _RECEIPT_FIELDS)
        activities_record(activities=activities)
        # Last: the hours' figures and the steps' counts, rows the workers share,
        # are locked only until the commit (the figures first, as every writer takes them).
        sms_rollups_after(figures_changed, figures_before)
        for step_id in sorted(delta):
            step_counts_add(step_id, delta[step_id])
    return matched


def _receipt_changes(row, receipt: ReceiptForRow, *, now) -> dict | None:
    """What a receipt changes on its SMS's row (as the row is now), or None for older news than the row's."""
    new_outcome, rank = receipt_outcome(receipt.status)
    _current, current_rank = receipt_outcome(row.delivery_status)
    occurred_at = receipt.occurred_at
    if rank < current_rank or (
        rank == current_rank == 2 and not (occurred_at and row.updated_at and occurred_at > row.updated_at)
    ):
        return None
    changes = {
        "delivery_status": receipt.status[:20],
        "delivery_reason": receipt.reason[:300] if new_outcome == Outcome.DELIVERY_FAILED else None,
    }
    if not row.vibes_message_id and receipt.message_id:
        changes["vibes_message_id"] = receipt.message_id[:64]
    old = Outcome(row.outcome)
    moves = (
        old != Outcome.SENDING
        and new_outcome not in (None, old)
        and not (new_outcome == Outcome.SENT and old in SMS_SENT)
    )
    if moves:
        changes["outcome"] = new_outcome
        changes["updated_at"] = _changed_at(occurred_at, row.updated_at, now)
        if old == Outcome.UNCERTAIN:
            # The doubt is settled: its error no longer describes the SMS.
            changes.update(error_code="", detail="")
    return changes


def _figures_change(row, changes: dict) -> list[int]:
    """[the row's id] when a receipt's changes may move its SMS figures (a new
    outcome, or a failure's status: a hard bounce or a soft one), else []."""
    bounce_moves = (
        row.outcome == Outcome.DELIVERY_FAILED and changes["delivery_status"] != row.delivery_status
    )
    return [row.pk] if "outcome" in changes or bounce_moves else []


def _receipt_activities(row, receipt: ReceiptForRow, changes: dict) -> list:
    """The person's activity for a receipt that moved their SMS's row (none for a move to `sent`)."""
    activity = sms_receipt_new_activity(
        result_id=row.pk,
        lead_id=row.lead_id,
        sms_message_id=row.sms_message_id,
        outcome=changes["outcome"],
        status=receipt.status,
        occurred_at=changes["updated_at"],
    )
    return [activity] if activity else []


def results_settle_by_receipts(result_ids, *, now) -> Counter:
    """Settle the rows among `result_ids` whose receipt overtook Vibes' answer:
    `sent` and `uncertain` rows with a receipt become what it says. Returns the
    change of the counts (outcome → people), for the caller's transaction."""
    rows = (
        RunResult.objects.filter(pk__in=list(result_ids), outcome__in=(Outcome.SENT, Outcome.UNCERTAIN))
        .exclude(delivery_status="")
        .values_list("pk", "outcome", "delivery_status")
    )
    moves: dict[tuple[int, int], list[int]] = {}
    for pk, outcome, status in rows:
        new_outcome, _rank = receipt_outcome(status)
        if new_outcome is not None and new_outcome != outcome:
            moves.setdefault((outcome, new_outcome), []).append(pk)
    delta = Counter()
    for (old, new), ids in moves.items():
        changes = {"outcome": new, "updated_at": now}
        if old == Outcome.UNCERTAIN:
            changes.update(error_code="", detail="")
        moved = RunResult.objects.filter(pk__in=ids, outcome=old).update(**changes)
        delta[old] -= moved
        delta[new] += moved
    return delta


def settle_outcome(status: str, fallback: Outcome) -> Outcome:
    """A row left `sending` by a dead worker: what its receipt proves, else `fallback`."""
    new_outcome, _rank = receipt_outcome(status)
    return new_outcome or fallback


# --- Confirmations --------------------------------------------------------------------

# Which rows of a Subscribe step each piece of news moves, and to what. A
# confirmation also settles an uncertain request (it went through), and one
# that comes after the window expired the row (a delayed callback) still counts.
_CONFIRMATION_MOVES = {
    "subscribed": ((Outcome.PENDING, Outcome.EXPIRED, Outcome.UNCERTAIN), Outcome.SUBSCRIBED),
    "pending": ((Outcome.UNCERTAIN,), Outcome.PENDING),
    "declined": ((Outcome.PENDING,), Outcome.DECLINED),
    "expired": ((Outcome.PENDING,), Outcome.EXPIRED),
}


def results_follow_confirmation(news: ConfirmationNews) -> int:
    """Move the Subscribe rows this news is about: the number's rows on the
    news's list, of runs started no later than the request it answers.
    Returns how many rows moved.

    Found through the number's people and the partial index on a lead's
    calls (its condition repeated, so that SQLite uses it), never by reading
    the result table.
    """
    sources, new_outcome = _CONFIRMATION_MOVES[news.outcome]
    lead_ids = list(Lead.objects.filter(mobile_phone=news.mdn).values_list("pk", flat=True))
    if not lead_ids:
        return 0
    # Vibes writes its times to the second: a run started within the second counts.
    started_by = news.since.replace(microsecond=0) + datetime.timedelta(seconds=1)
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            RunResult.objects.select_for_update()
            .filter(LEAD_ACTIVITY, lead_id__in=lead_ids, outcome__in=sources, phone=news.mdn)
            .filter(
                run_step__action=FlowStep.Action.SUBSCRIBE,
                run_step__vibes_list_id=news.vibes_list_id,
                run_step__run__started_at__lt=started_by,
            )
            .values_list("pk", "outcome", "updated_at", "run_step_id")
        )
        for pk, outcome, updated_at, step_id in rows:
            changes = {"outcome": new_outcome, "updated_at": _changed_at(news.at, updated_at, now)}
            if outcome == Outcome.UNCERTAIN:
                changes.update(error_code="", detail="")
            if new_outcome == Outcome.DECLINED and news.status != "declined":
                changes["detail"] = result_detail(VIBES_SAYS, status=news.status)
            RunResult.objects.filter(pk=pk).update(**changes)
            step_counts_add(step_id, {outcome: -1, new_outcome: 1})
    return len(rows)


EXPIRY_SPAN = 50_000  # result ids per transaction of the window job


def confirmation_window() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.VIBES_CONFIRMATION_HOURS)


def results_expire_confirmations(*, now=None) -> int:
    """Expire the Subscribe rows still pending once the confirmation window has
    passed since their call; returns how many.

    Each row's changed-at time is the moment its window ended. Only steps
    planned before the window began and still counting pending rows are
    read, each through its id range: after a step's last expiry it costs
    nothing (the periodic job runs every minute).
    """
    now = now or timezone.now()
    window = confirmation_window()
    if window <= datetime.timedelta(0):
        return 0  # no window of this installation's own: only Vibes' expiry events count
    cutoff = now - window
    steps = RunStep.objects.filter(
        Q(counts__pending__gt=0),
        action=FlowStep.Action.SUBSCRIBE,
        planned_at__lte=cutoff,
        first_result_id__isnull=False,
    ).only("pk", "first_result_id", "last_result_id")
    expired = 0
    for step in steps:
        # A slice of the step's id range per transaction: the write lock is
        # never held long (a million-row step's 250,000 expiries take seconds).
        for start in range(step.first_result_id, step.last_result_id + 1, EXPIRY_SPAN):
            with transaction.atomic():
                moved = RunResult.objects.filter(
                    run_step=step,
                    pk__gte=start,
                    pk__lte=min(start + EXPIRY_SPAN - 1, step.last_result_id),
                    outcome=Outcome.PENDING,
                    updated_at__lte=cutoff,
                ).update(outcome=Outcome.EXPIRED, updated_at=F("updated_at") + window)
                step_counts_add(step.pk, {Outcome.PENDING: -moved, Outcome.EXPIRED: moved})
            expired += moved
    return expired
