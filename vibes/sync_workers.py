"""Who works on a list's subscriber sync: one worker at a time, taken over when it is gone.

A worker claims the sync by writing its claim (host, process, a token of its
own) and stores its progress only while the claim is still its own. A claim
is given up when its worker made no progress for STALE_AFTER, or at once when
its process is gone: dead on this host, or, for this very process, no longer
holding the token (an exception it did not survive, a thread of a web
process that stopped).
"""

import os
import socket
import threading
import uuid
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import SubscriberSync

# Longer than a call to Vibes with all its retries and backoffs.
STALE_AFTER = timedelta(minutes=5)

# Claims held by syncs working in this process.
_active_claims: set[str] = set()
_claims_lock = threading.Lock()


class SubscriberSyncBusy(Exception):
    """Another worker is syncing this list's subscribers right now."""


# What a worker stores as it goes.
COUNTS = (
    "subscribers",
    "calls",
    "linked",
    "created",
    "changed",
    "unsubscribed",
    "unchanged",
    "superseded",
    "refused",
)
STATE = ("status", "phase", "mode", "next_page", "checked_up_to", "finished_at", "error")


def save_progress(sync: SubscriberSync, token: str, *, checked: bool = True) -> None:
    """Store where the sync got to.

    Raises SubscriberSyncBusy, rolling the page back, when another worker took the sync over.
    """
    sync.heartbeat_at = timezone.now()
    fields = {name: getattr(sync, name) for name in (*COUNTS, *STATE, "heartbeat_at")}
    if not SubscriberSync.objects.filter(pk=sync.pk, claimed_by=token).update(**fields) and checked:
        raise SubscriberSyncBusy(
            _("Another worker took over the sync of %(list)s.") % {"list": sync.vibes_list}
        )


def claim(sync: SubscriberSync) -> str:
    """Become the worker of this sync; SubscriberSyncBusy when another one is on it."""
    sync.refresh_from_db()
    if sync.status == SubscriberSync.Status.DONE:
        raise SubscriberSyncBusy(_("The sync of %(list)s is already done.") % {"list": sync.vibes_list})
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and not abandoned(sync):
        raise busy(sync)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    with _claims_lock:
        _active_claims.add(token)
    # Compare and swap: of two workers that read the same claim, one wins.
    claimed = SubscriberSync.objects.filter(
        pk=sync.pk, claimed_by=sync.claimed_by, heartbeat_at=sync.heartbeat_at
    ).update(claimed_by=token, status=SubscriberSync.Status.RUNNING, error="", heartbeat_at=timezone.now())
    if not claimed:
        with _claims_lock:
            _active_claims.discard(token)
        sync.refresh_from_db()
        raise busy(sync)
    sync.refresh_from_db()
    return token


def abandoned(sync: SubscriberSync) -> bool:
    """True when the worker named by the sync's claim is gone."""
    if sync.heartbeat_at < timezone.now() - STALE_AFTER:
        return True
    host, _, rest = sync.claimed_by.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        with _claims_lock:
            return sync.claimed_by not in _active_claims
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def busy(sync: SubscriberSync) -> SubscriberSyncBusy:
    """The refusal to start a sync another worker is on, with when it last made progress."""
    return SubscriberSyncBusy(
        _("The subscribers of %(list)s are being synced already (last progress at %(time)s).")
        % {"list": sync.vibes_list, "time": timezone.localtime(sync.heartbeat_at).strftime("%H:%M:%S")}
    )


def release(token: str) -> None:
    """This worker stopped working on the sync (done, failed or interrupted)."""
    with _claims_lock:
        _active_claims.discard(token)
