"""Background work of the Vibes app: Celery tasks that take ids, and where they run."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from smscampaigns.background import WokenThread, background_run, runs_on_celery

from .callbacks.applying import callback_event_apply, callbacks_apply_pending, callbacks_apply_waiting
from .conf import get_client
from .exceptions import VibesError
from .models import SubscriberSync, VibesList
from .subscriber_sync import SubscriberSyncBusy, subscriber_sync_run, subscriber_sync_start

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def subscriber_sync_task(sync_id: int) -> str:
    """Work on a list's subscriber sync until it is done; a stopped one is continued by the next sync."""
    sync = SubscriberSync.objects.select_related("vibes_list").get(pk=sync_id)
    try:
        subscriber_sync_run(sync=sync, client=get_client())
    except SubscriberSyncBusy as error:
        logger.info("subscriber sync %s: %s", sync_id, error)
    except VibesError as error:
        # Recorded on the sync (status failed), which the next sync of the list continues.
        logger.warning("subscriber sync %s stopped: %s", sync_id, error)
    return sync.status


@shared_task(bind=True, acks_late=True, max_retries=None)
def callback_apply_task(self, event_id: int) -> str | None:
    """Apply a stored Vibes callback; one that fails stays waiting and is tried again, later each time.

    No longer sent (the applier takes the waiting events in batches,
    `callbacks_apply_waiting_task`): kept for the tasks a broker still holds
    from before, which apply their event once as they always did.
    """
    try:
        return callback_event_apply(event_id=event_id)
    except Exception as error:
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error


@shared_task(ignore_result=True)
def callbacks_apply_waiting_task() -> int:
    """Apply the stored Vibes callbacks waiting now, a batch at a time (what fails waits for the sweep)."""
    return callbacks_apply_waiting()


@shared_task
def callbacks_apply_pending_task() -> int:
    """Apply the callbacks whose worker failed or died (every minute, with Celery beat)."""
    return callbacks_apply_pending()


def subscriber_sync_dispatch(sync: SubscriberSync) -> None:
    """Have the sync worked on in the background once the transaction commits.

    Where, as for campaign runs (RUNNER_BACKGROUND): Celery when a broker is
    configured, else a thread of this process; "inline" works on it at
    commit, for tests.
    """
    background_run(subscriber_sync_task, sync.pk, name=f"subscriber-sync-{sync.pk}")


def subscriber_syncs_start(*, vibes_lists, user=None) -> tuple[list[VibesList], list[str]]:
    """Start (or continue) the subscriber sync of each list in the background.

    Returns the lists started and, for those another worker is syncing
    already, why they were not.
    """
    started, busy = [], []
    for vibes_list in vibes_lists:
        try:
            sync = subscriber_sync_start(vibes_list=vibes_list, user=user)
        except SubscriberSyncBusy as error:
            busy.append(str(error))
            continue
        subscriber_sync_dispatch(sync)
        started.append(vibes_list)
    return started, busy


# --- Where a stored callback is applied off the request ---------------------------
# Here, beside its Celery task: the request (callbacks/receiving.py) hands an
# event over, and this module says whether a Celery worker or a thread of this
# process applies it.


def callback_apply_later() -> None:
    """Have the stored events applied off the request, where background work goes.

    The applier takes every waiting event, so it is woken, not handed an
    event, and the request only sets a flag: a thread of this process sends
    the applier's Celery task (at most once per WAKE_INTERVAL, the next one
    after every event stored) or, without Celery, applies the events itself.
    """
    if runs_on_celery():
        if callbacks_apply_waiting_task.app.conf.task_always_eager:
            transaction.on_commit(callbacks_apply_waiting_task.delay)
        else:
            transaction.on_commit(_celery_waker.wake)
    elif settings.RUNNER_BACKGROUND == "inline":
        transaction.on_commit(callbacks_apply_waiting)
    else:
        _applier.wake()


# Seconds between two applier tasks sent by one web process: at 500 callbacks
# a second, a few tasks instead of 500, each applying a batch.
WAKE_INTERVAL = 0.25


# With Celery: the web process sends the task, the Celery worker applies.
_celery_waker = WokenThread("vibes-callbacks-waker", callbacks_apply_waiting_task.delay, pause=WAKE_INTERVAL)
# Without: a thread of the web process applies.
_applier = WokenThread("vibes-callbacks", callbacks_apply_waiting)
