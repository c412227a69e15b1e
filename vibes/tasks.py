"""Background work of the Vibes app: Celery tasks that take ids, and where they run."""

import logging
import os
import queue
import threading

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction

from smscampaigns.background import background_run

from .callbacks.applying import callback_event_apply, callbacks_apply_pending
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
    """Apply a stored Vibes callback; one that fails stays waiting and is tried again, later each time."""
    try:
        return callback_event_apply(event_id=event_id)
    except Exception as error:
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error


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


def callback_apply_later(event_id: int) -> None:
    """Have a stored event applied off the request, where background work goes."""
    if _runs_on_celery():
        transaction.on_commit(lambda: callback_apply_task.delay(event_id))
    elif settings.RUNNER_BACKGROUND == "inline":
        transaction.on_commit(lambda: callback_event_apply(event_id=event_id))
    else:
        _applier.put(event_id)


def _runs_on_celery() -> bool:
    mode = settings.RUNNER_BACKGROUND
    return mode == "celery" or (mode == "auto" and bool(settings.CELERY_BROKER_URL))


class _Applier:
    """One thread of this process that applies the events handed to it, in turn.

    Started on the first event (again in a forked worker: a thread does not
    survive a fork).
    """

    def __init__(self):
        self.queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0

    def put(self, event_id: int) -> None:
        with self.lock:
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.queue, self.pid = queue.SimpleQueue(), os.getpid()
                self.thread = threading.Thread(target=self._work, name="vibes-callbacks", daemon=True)
                self.thread.start()
        self.queue.put(event_id)

    def _work(self) -> None:
        while True:
            event_id = self.queue.get()
            try:
                callback_event_apply(event_id=event_id)
            except Exception:
                logger.exception("Vibes callback #%s could not be applied; it is tried again later", event_id)
                close_old_connections()
            if self.queue.empty():
                # Idle: the connection is checked (or closed past its age) before the next event.
                close_old_connections()


_applier = _Applier()
