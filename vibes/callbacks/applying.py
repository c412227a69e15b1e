"""Applying callbacks off the request, where VIBES_CALLBACKS_APPLY says so.

Vibes asks for minimal handlers: a slow endpoint gets rate-limited. Applying
an event (a receipt to its SMS's row and its step's counts, a subscription
change to the number's people) takes several queries, and every receipt of
a run waits its turn on the step's counts. With VIBES_CALLBACKS_APPLY
"background" the request only stores the event (outcome "received") and
answers; an applier applies what waits, a batch at a time
(`callbacks_apply_waiting`):

- a Celery task when runs go to Celery (RUNNER_BACKGROUND), sent at most a
  few times a second by each web process however many callbacks come;
- else one thread of the web process, woken by the callbacks;
- "inline" (tests): at once, after the request's transaction.

A batch is up to BATCH waiting events, taken in the order they came under
row locks that other appliers pass by (SKIP LOCKED on PostgreSQL), so two
appliers never take the same event. Its delivery receipts are applied
together: the receipt handlers get them as one list (their batch form moves
the SMS rows with a few set-based statements), and the events' outcomes are
stored with one statement, in the same transaction. Other events are fewer
and are applied one at a time, several of them in a short transaction
(`others_apply_in_turn`, a savepoint each): on SQLite, whose one write lock
every transaction waits its turn for, that is one turn; on PostgreSQL the
events stay locked while they are applied, so a second applier takes the next
ones instead of waiting on these, and a turn's firings are dispatched together.

An event is applied once: only while it is still "received", under its row
lock, with its outcome stored in the same transaction. An event whose
applying failed (a handler raised, the database refused, the worker died)
stays "received" and is applied again by `callbacks_apply_pending`, which
the periodic job runs every minute. A batch whose handler fails is applied
again one event at a time, so one bad receipt holds back no other.
"""

import datetime
import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smscampaigns.bulk import rows_update

from ..models import CallbackEvent
from .events import DELIVERY_RECEIPT, event_apply, event_in_batch
from .news import DeliveryReceipt, receipt_listeners
from .receipt_events import receipt_outcome, receipt_read

logger = logging.getLogger("vibes.callbacks")

RECEIVED = CallbackEvent.Outcome.RECEIVED
# Events an applier takes at once: enough that a second's receipts at Vibes'
# rate are a few statements, few enough that a batch's locks are brief.
BATCH = 500
# Seconds an applier applies other events (subscription events) in one transaction
# before it commits (their firings go to the dispatcher) and takes receipts again;
# on SQLite, before it lets the callbacks, the dispatcher and the runs write.
TURN = 0.025


def callbacks_applied_off_request() -> bool:
    """True when callbacks are applied by a worker rather than in the request.

    Off the request only when asked for ("background"): a receipt applied
    later is one a run's worker, or an operator retrying uncertain SMS, may
    not see yet, so the default keeps applying in the request.
    """
    return settings.VIBES_CALLBACKS_APPLY == "background"


def callback_event_apply(*, event_id: int) -> str | None:
    """Apply a stored event that is still waiting; its outcome, or None when it
    was applied already (or another worker is applying it right now).

    A handler that fails raises, and the event stays waiting.
    """
    # Looked at outside a transaction first: an event another applier took
    # meanwhile costs no turn at SQLite's write lock.
    if not CallbackEvent.objects.filter(pk=event_id, outcome=RECEIVED).exists():
        return None
    with transaction.atomic():
        event = (
            CallbackEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, outcome=RECEIVED)
            .first()
        )
        if event is None:
            return None
        event_apply(event, event.payload, event.reference or "")
        event.save(update_fields=["outcome", "note", "mdn"])
    return event.outcome


def callbacks_apply_pending(*, older_than: datetime.timedelta = datetime.timedelta(minutes=1)) -> int:
    """Apply the events still waiting that arrived more than `older_than` ago, in
    the order they came (their worker failed or died); returns how many were applied."""
    return callbacks_apply_waiting(received_by=timezone.now() - older_than)


def callbacks_apply_waiting(*, batch: int = BATCH, received_by=None) -> int:
    """Apply the events waiting now (and those that arrive meanwhile), a batch at a
    time; returns how many were applied.

    Receipts first, a batch of them, then other events for a short turn, and
    again: a receipt waits for no more than a turn. Each batch of a kind starts
    after the last one's events, so an event that cannot be applied now is left
    to the periodic job rather than taken again and again.
    """
    applied, after_receipts, after_others = 0, 0, 0
    while True:
        receipts, after_receipts, done = receipts_apply_batch(
            limit=batch, after=after_receipts, received_by=received_by
        )
        applied += done
        more, after_others, done = others_apply_in_turn(after=after_others, received_by=received_by)
        applied += done
        if receipts < batch and not more:
            return applied


def others_apply_in_turn(*, after: int = 0, received_by=None, turn: float = TURN) -> tuple[bool, int, int]:
    """Apply the oldest waiting events after the id `after` that are not
    receipts, one at a time (a savepoint each), in one transaction for about
    `turn` seconds; returns (whether more may wait, the last one's id, events applied).

    Each event is looked up and locked inside the transaction: an applier of
    another process never takes one applied meanwhile. On SQLite the
    transaction holds the write lock, so the callbacks stored meanwhile wait
    for one short turn at most; on PostgreSQL another applier passes the
    locked events by and applies the next ones. An event that fails changes
    nothing and stays waiting for the periodic job.
    """
    applied = 0
    waiting = CallbackEvent.objects.filter(outcome=RECEIVED).exclude(event_type=DELIVERY_RECEIPT)
    if received_by is not None:
        waiting = waiting.filter(received_at__lte=received_by)
    if not waiting.filter(pk__gt=after).exists():
        return False, after, 0
    with transaction.atomic():
        started = time.monotonic()  # once the turn came
        first = True
        while first or time.monotonic() - started < turn:  # one event at least, each turn
            first = False
            event = (
                waiting.filter(pk__gt=after)
                .select_for_update(skip_locked=True)
                .defer("headers", "raw_body")
                .order_by("pk")
                .first()
            )
            if event is None:
                return False, after, applied
            after = event.pk
            try:
                with transaction.atomic():
                    event_apply(event, event.payload, event.reference or "")
                    event.save(update_fields=["outcome", "note", "mdn"])
            except Exception:
                logger.exception("Vibes callback #%s could not be applied; it is tried again later", event.pk)
                continue
            applied += 1
    return True, after, applied


def receipts_apply_batch(*, limit: int = BATCH, after: int = 0, received_by=None) -> tuple[int, int, int]:
    """Apply up to `limit` waiting delivery receipts after the id `after`, oldest
    first, that no other applier holds; returns (receipts taken, the last one's id,
    receipts applied). Other events are applied in turns (`others_apply_in_turn`).

    The receipts are applied together in one transaction; one that cannot be
    (and, should the batch fail, every one) on its own after it.
    """
    alone: list[int] = []
    applied = 0
    waiting = CallbackEvent.objects.filter(outcome=RECEIVED, pk__gt=after, event_type=DELIVERY_RECEIPT)
    if received_by is not None:
        waiting = waiting.filter(received_at__lte=received_by)
    # Looked for outside a transaction first: on SQLite a transaction waits for
    # the write lock even when nothing waits to be applied.
    if not waiting.exists():
        return 0, after, 0
    with transaction.atomic():
        waiting = waiting.select_for_update(skip_locked=True)
        events = list(waiting.defer("headers", "raw_body").order_by("pk")[:limit])
        in_batch = [event for event in events if event_in_batch(event)]
        alone = [event.pk for event in events if not event_in_batch(event)]
        if in_batch:
            try:
                with transaction.atomic():
                    _receipts_apply(in_batch)
                applied = len(in_batch)
            except Exception:
                logger.exception(
                    "A batch of %s Vibes receipts failed; each is applied on its own", len(in_batch)
                )
                alone = sorted(alone + [event.pk for event in in_batch])
    for event_id in alone:
        try:
            applied += callback_event_apply(event_id=event_id) is not None
        except Exception:
            logger.exception("Vibes callback #%s could not be applied; it is tried again later", event_id)
    return len(events), events[-1].pk if events else after, applied


def _receipts_apply(events: list[CallbackEvent]) -> None:
    """Apply these delivery receipts together, in their order, and store each event's outcome."""
    read = [receipt_read(event, event.payload, event.reference or "") for event in events]
    told = [
        (event, receipt)
        for event, receipt in zip(events, read, strict=True)
        if isinstance(receipt, DeliveryReceipt)
    ]
    for event, receipt in zip(events, read, strict=True):
        if not isinstance(receipt, DeliveryReceipt):
            event.outcome, note = receipt
            event.note = str(note)[:300]
    matched = receipt_listeners.tell_many([receipt for _event, receipt in told])
    for (event, _receipt), match in zip(told, matched, strict=True):
        event.outcome, note = receipt_outcome(match)
        event.note = str(note)[:300]
    rows_update(CallbackEvent, events, ["outcome", "note", "mdn"])
