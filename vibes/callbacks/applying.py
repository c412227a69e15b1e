"""Applying callbacks off the request, where VIBES_CALLBACKS_APPLY says so.

Vibes asks for minimal handlers: a slow endpoint gets rate-limited. Applying
an event (a receipt to its SMS's row and its step's counts, a subscription
change to the number's people) takes several queries, and every receipt of
a run waits its turn on the step's counts. With VIBES_CALLBACKS_APPLY
"background" the request only stores the event (outcome "received") and
answers; a worker applies it:

- a Celery task per event when runs go to Celery (RUNNER_BACKGROUND);
- else one thread of the web process, which applies the events it is handed
  in the order they came;
- "inline" (tests): at once, after the request's transaction.

An event is applied once: the worker takes it under a row lock, only while it
is still "received", and stores its outcome in the same transaction. An event
whose applying failed (a handler raised, the database refused, the worker
died) stays "received" and is applied again: by Celery's retry, and by
`callbacks_apply_pending`, which the periodic job runs every minute.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import CallbackEvent
from .events import event_apply

logger = logging.getLogger("vibes.callbacks")

RECEIVED = CallbackEvent.Outcome.RECEIVED


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
    waiting = CallbackEvent.objects.filter(outcome=RECEIVED, received_at__lte=timezone.now() - older_than)
    applied = 0
    for event_id in waiting.order_by("pk").values_list("pk", flat=True).iterator():
        try:
            applied += callback_event_apply(event_id=event_id) is not None
        except Exception:
            logger.exception("Vibes callback #%s could not be applied; it is tried again later", event_id)
    return applied
