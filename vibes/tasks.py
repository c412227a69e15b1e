"""Background work of the Vibes app: Celery tasks that take ids, and where they run."""

import logging

from celery import shared_task

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
