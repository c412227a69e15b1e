"""Reading a Vibes list's subscribers into the leads' subscriptions (the list-driven sync).

Vibes is read a page of subscribers at a time. Each subscriber's number finds
its leads (E.164; the status is the number's, R9), who become subscribed and
are linked to the Vibes person; a number that no lead has becomes a new lead
(lead source "Vibes", with what Vibes knows of the person) unless creating is
off. Then the leads the list holds locally as subscribed (or pending past the
confirmation window) that no page showed are checked one number at a time,
and those Vibes does not know as subscribers are unsubscribed. Every status
change goes through `subscriptions_apply`, as of the moment Vibes was asked,
so a callback about a later change still outranks it.

Why check rather than unsubscribe outright: paging by offset over a list that
changes meanwhile skips a subscriber for each one who leaves ahead of the
cursor, and unsubscribing them would stop texting people who asked for the
messages. A check costs one call per number about to be unsubscribed, which
is few once callbacks keep the product up to date.

The contract documents the list's `subscribers` operation only as a search
for one subscriber. When Vibes refuses pages, the sync searches every lead's
number instead (`SubscriberSync.Mode.NUMBERS`): one call per number, and a
keyword subscriber whose number no lead has cannot be found that way.

Each page, and each chunk of checks, commits together with the place the sync
got to, so a sync that stopped is continued by the next one started for its
list, never started over; redoing the page that was cut off changes nothing
twice (`subscriptions_apply` is idempotent, and the leads a page created are
found by their number).
"""

import logging
import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from .client import VibesClient
from .exceptions import (
    VibesBadRequest,
    VibesNotFound,
    VibesPagingUnsupported,
    VibesUnprocessable,
)
from .models import SubscriberSync, Subscription, SubscriptionChange, VibesList
from .subscriptions import subscriptions_apply

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
CHECK_CHUNK = 200  # numbers checked per committed chunk
WORKERS = 8  # checks in flight at once; the client's rate limiter still paces them
# Vibes asks people to confirm within 24 hours (R5); a participant pending for
# less is simply not subscribed yet.
CONFIRMATION_WINDOW = timedelta(hours=24)
# A sync that made no progress for this long lost its worker: another may
# continue it. Longer than a call with all its retries and backoffs.
STALE_AFTER = timedelta(minutes=5)
LEAD_SOURCE = "Vibes"

Status = Subscription.Status
Progress = Callable[[SubscriberSync, int, int | None], None]

# Custom field names Vibes accounts commonly use, folded (lower case, letters
# and digits only), and the lead field each fills.
LEAD_FIELDS = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "emailaddress": "email",
    "city": "city",
    "state": "state",
    "country": "country",
}

# Claims held by syncs working in this process: a claim naming this process
# but not in here was left by a sync that died (an exception it did not
# survive, a thread of a web process that stopped).
_active_claims: set[str] = set()
_claims_lock = threading.Lock()


class SubscriberSyncBusy(Exception):
    """Another worker is syncing this list's subscribers right now."""


def subscriber_sync_start(
    *, vibes_list: VibesList, create_leads: bool = True, page_size: int = PAGE_SIZE, user=None
) -> SubscriberSync:
    """The list's sync to work on: the one that did not finish, to continue, or a new one.

    Raises SubscriberSyncBusy while another worker is on it.
    """
    unfinished = SubscriberSync.objects.filter(vibes_list=vibes_list).exclude(
        status=SubscriberSync.Status.DONE
    )
    sync = unfinished.first()
    if sync is None:
        try:
            with transaction.atomic():
                return SubscriberSync.objects.create(
                    vibes_list=vibes_list,
                    create_leads=create_leads,
                    page_size=page_size,
                    requested_by=user if user is not None and user.is_authenticated else None,
                )
        except IntegrityError:
            sync = unfinished.get()  # another start created it meanwhile (one open sync per list)
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and not _abandoned(sync):
        raise _busy(sync)
    # The options of today's request hold for the rest of the work; the page
    # size stays, or the pages already read would no longer line up.
    SubscriberSync.objects.filter(pk=sync.pk).update(create_leads=create_leads)
    sync.create_leads = create_leads
    return sync


def subscriber_sync_run(
    *, sync: SubscriberSync, client: VibesClient, progress: Progress | None = None
) -> SubscriberSync:
    """Work on the sync until it is done. A VibesError stops it (status failed), to be continued."""
    token = _claim(sync)
    progress = progress or (lambda sync, done, total: None)
    try:
        if sync.phase == SubscriberSync.Phase.PAGES:
            _read_pages(sync, client, token, progress)
        if sync.phase == SubscriberSync.Phase.CHECKS:
            _check_numbers(sync, client, token, progress)
        sync.status, sync.finished_at = SubscriberSync.Status.DONE, timezone.now()
        _save(sync, token)
        return sync
    except SubscriberSyncBusy:
        raise
    except Exception as error:
        sync.status, sync.error = SubscriberSync.Status.FAILED, str(error)[:2000]
        _save(sync, token, checked=False)
        raise
    finally:
        with _claims_lock:
            _active_claims.discard(token)


def subscribers_sync(
    *,
    vibes_list: VibesList,
    client: VibesClient,
    create_leads: bool = True,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
    user=None,
) -> SubscriberSync:
    """Bring every lead's status on this list in line with Vibes: start (or continue) and finish a sync."""
    sync = subscriber_sync_start(
        vibes_list=vibes_list, create_leads=create_leads, page_size=page_size, user=user
    )
    return subscriber_sync_run(sync=sync, client=client, progress=progress)


def subscriber_sync_summary(sync: SubscriberSync) -> str:
    """One paragraph for an operator or an administrator: what the sync of a list did (or got to)."""
    return _("%(list)s: %(details)s") % {"list": sync.vibes_list, "details": subscriber_sync_details(sync)}


def subscriber_sync_details(sync: SubscriberSync) -> str:
    """Where the sync is and what it did, in counts of leads."""
    count = lambda n: number_format(n, force_grouping=True)  # noqa: E731
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and _abandoned(sync):
        state = _("stopped (its worker is gone), continues on the next sync")
    elif sync.status == SubscriberSync.Status.RUNNING:
        state = sync.get_phase_display()
    else:
        state = sync.get_status_display()
    text = _(
        "%(state)s. Subscribers read: %(subscribers)s; calls to Vibes: %(calls)s. Leads linked: "
        "%(linked)s, created: %(created)s, changed: %(changed)s (of them unsubscribed: "
        "%(unsubscribed)s), unchanged: %(unchanged)s."
    ) % {
        "state": state[:1].upper() + state[1:],
        "subscribers": count(sync.subscribers),
        "calls": count(sync.calls),
        "linked": count(sync.linked),
        "created": count(sync.created),
        "changed": count(sync.changed),
        "unsubscribed": count(sync.unsubscribed),
        "unchanged": count(sync.unchanged),
    }
    if sync.superseded:
        text += " " + _("Kept a newer change (a callback, say): %(kept)s.") % {"kept": count(sync.superseded)}
    if sync.refused:
        text += " " + _("Numbers that could not be used (see the log): %(refused)s.") % {
            "refused": count(sync.refused)
        }
    if sync.mode == SubscriberSync.Mode.NUMBERS:
        text += " " + _(
            "Vibes does not list this list's subscribers, so each lead's number was searched instead; "
            "people who joined by keyword with a number no lead has cannot be found that way."
        )
    if sync.error:
        text += " " + _("Stopped by: %(error)s") % {"error": sync.error}
    return text


# --- Reading the pages --------------------------------------------------------------------------


def _read_pages(sync, client, token, progress) -> None:
    list_id = sync.vibes_list.vibes_id
    previous_first = None
    while True:
        asked_at = timezone.now()
        try:
            subscribers = client.list_subscribers(list_id, page=sync.next_page, page_size=sync.page_size)
            if subscribers and sync.next_page > 1 and subscribers[0].person_key == previous_first:
                raise VibesPagingUnsupported(f"Vibes answered page {sync.next_page} with the page before.")
        except (VibesPagingUnsupported, VibesBadRequest, VibesNotFound, VibesUnprocessable) as error:
            # Refused on the first page, or paging ignored: this Vibes searches
            # by number only, as the contract documents.
            if sync.next_page > 1 and not isinstance(error, VibesPagingUnsupported):
                raise
            logger.warning("Vibes list %s: no pages of subscribers (%s); searching by number", list_id, error)
            sync.calls += 1
            sync.mode, sync.phase = SubscriberSync.Mode.NUMBERS, SubscriberSync.Phase.CHECKS
            _save(sync, token)
            return
        sync.calls += 1
        if not subscribers:
            # The contract publishes no total and no page size limit, so only
            # an empty page says that the one before was the last.
            sync.phase = SubscriberSync.Phase.CHECKS
            _save(sync, token)
            return
        previous_first = subscribers[0].person_key
        with transaction.atomic():
            _take_page(sync, subscribers, asked_at)
            sync.next_page += 1
            _save(sync, token)
        progress(sync, sync.subscribers, None)


def _take_page(sync, subscribers, asked_at) -> None:
    sync.subscribers += len(subscribers)
    by_number = {}
    for subscriber in subscribers:
        number = normalize_phone_or_blank(subscriber.mdn)
        if not number:
            sync.refused += 1
            logger.warning("Vibes list %s: a subscriber without a valid number", sync.vibes_list.vibes_id)
            continue
        by_number.setdefault(number, subscriber)
    leads = defaultdict(list)
    for pk, number in Lead.objects.filter(mobile_phone__in=list(by_number)).values_list("pk", "mobile_phone"):
        leads[number].append(pk)
    missing = [number for number in by_number if number not in leads]
    if missing and sync.create_leads:
        for lead in _create_leads([(number, by_number[number]) for number in missing]):
            leads[lead.mobile_phone].append(lead.pk)
        sync.created += len(missing)
    _subscribe(
        sync,
        {pk: by_number[number].person_key for number, pks in leads.items() for pk in pks},
        asked_at,
    )


def _create_leads(subscribers) -> list[Lead]:
    """New leads for subscribers whose number no lead has, with what Vibes knows of them."""
    leads, emails = [], set()
    for number, subscriber in subscribers:
        values = {}
        for name, value in subscriber.custom_fields.items():
            field = LEAD_FIELDS.get("".join(c for c in name.lower() if c.isalnum()))
            if field and value.strip() and field not in values:
                values[field] = value.strip()[: Lead._meta.get_field(field).max_length]
        email = values.pop("email", "").lower()
        try:
            validate_email(email)
        except ValidationError:
            email = ""
        lead = Lead(mobile_phone=number, lead_source=LEAD_SOURCE, **values)
        lead.email = email
        leads.append(lead)
        emails.add(email)
    # An email names one lead: a person Vibes knows under an email another
    # lead holds is created without it, rather than merged by anything but the number.
    taken = set(Lead.objects.filter(email__in=emails - {""}).values_list("email", flat=True))
    seen = set()
    for lead in leads:
        if lead.email in taken or lead.email in seen:
            lead.email = ""
        seen.add(lead.email)
    return Lead.objects.bulk_create(leads)


def _subscribe(sync, person_keys: dict[int, str], when) -> None:
    """Subscribe these leads (lead id → Vibes person key) as of `when`, link them, mark them seen."""
    if not person_keys:
        return
    vibes_list = sync.vibes_list
    lead_ids = list(person_keys)
    linked_before = set(
        Subscription.objects.filter(vibes_list=vibes_list, lead_id__in=lead_ids)
        .exclude(vibes_person_key="")
        .values_list("lead_id", flat=True)
    )
    update = subscriptions_apply(
        lead_ids=lead_ids,
        vibes_list=vibes_list,
        status=Status.SUBSCRIBED,
        source=SubscriptionChange.Source.SYNC,
        when=when,
        note=_("Vibes sync: among the list's subscribers"),
    )
    sync.changed += update.changed
    sync.unchanged += update.unchanged
    sync.superseded += update.superseded
    relink = []
    for row in Subscription.objects.filter(vibes_list=vibes_list, lead_id__in=lead_ids).only(
        "pk", "lead_id", "vibes_person_key"
    ):
        key = person_keys[row.lead_id][:64]
        if key and row.vibes_person_key != key:
            sync.linked += row.lead_id not in linked_before
            row.vibes_person_key = key
            relink.append(row)
    Subscription.objects.bulk_update(relink, ["vibes_person_key"], batch_size=500)
    Subscription.objects.filter(vibes_list=vibes_list, lead_id__in=lead_ids).update(seen_in_vibes_at=when)


# --- Checking numbers one by one ----------------------------------------------------------------


def _unconfirmed(sync, cutoff):
    """The list's subscriptions Vibes has not confirmed in this sync, that it should have.

    Subscribed, or pending for longer than people have to confirm. Leads
    without a number are left alone: Vibes knows people by their number.
    """
    rows = Subscription.objects.filter(vibes_list=sync.vibes_list).filter(
        Q(status=Status.SUBSCRIBED)
        | Q(status=Status.PENDING, pending_since__lte=cutoff)
        | Q(status=Status.PENDING, pending_since__isnull=True)
    )
    if sync.mode == SubscriberSync.Mode.PAGES:
        rows = rows.filter(Q(seen_in_vibes_at__isnull=True) | Q(seen_in_vibes_at__lt=sync.started_at))
    return rows.exclude(lead__mobile_phone="")


def _numbers_to_check(sync, cutoff):
    if sync.mode == SubscriberSync.Mode.PAGES:
        numbers = _unconfirmed(sync, cutoff).values_list("lead__mobile_phone", flat=True)
        numbers = numbers.filter(lead__mobile_phone__gt=sync.checked_up_to).order_by("lead__mobile_phone")
    else:
        numbers = (
            Lead.objects.with_phone()
            .filter(mobile_phone__gt=sync.checked_up_to)
            .order_by("mobile_phone")
            .values_list("mobile_phone", flat=True)
        )
    return numbers.distinct()


def _check_numbers(sync, client, token, progress) -> None:
    cutoff = timezone.now() - CONFIRMATION_WINDOW
    total = _numbers_to_check(sync, cutoff).count()
    done = 0
    list_id = sync.vibes_list.vibes_id
    failure = threading.Event()

    def check(number):
        # A Vibes that stopped answering stops the chunk at once, not after
        # every remaining call has run out of retries.
        if failure.is_set():
            raise _NotAsked
        asked_at = timezone.now()
        try:
            return number, asked_at, client.find_subscriber(list_id, mdn=number), None
        except (VibesBadRequest, VibesUnprocessable) as error:
            return number, asked_at, None, error
        except Exception:
            failure.set()
            raise

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vibes-sync") as pool:
        while True:
            numbers = list(_numbers_to_check(sync, cutoff)[:CHECK_CHUNK])
            if not numbers:
                break
            futures = [pool.submit(check, number) for number in numbers]
            errors = [future.exception() for future in futures]
            stopped = next((e for e in errors if e is not None and not isinstance(e, _NotAsked)), None)
            if stopped is not None:
                raise stopped
            results = [future.result() for future in futures]
            with transaction.atomic():
                for number, asked_at, subscriber, error in results:
                    sync.calls += 1
                    if error is not None:
                        sync.refused += 1
                        logger.warning("Vibes list %s: a number could not be searched: %s", list_id, error)
                    elif subscriber is not None:
                        keys = Lead.objects.filter(mobile_phone=number).values_list("pk", flat=True)
                        _subscribe(sync, dict.fromkeys(keys, subscriber.person_key), asked_at)
                    else:
                        _unsubscribe(sync, number, asked_at, cutoff)
                sync.checked_up_to = numbers[-1]
                _save(sync, token)
            done += len(numbers)
            progress(sync, done, total)
    sync.phase = SubscriberSync.Phase.DONE


class _NotAsked(Exception):
    """A check left out because another one found Vibes failing."""


def _unsubscribe(sync, number, when, cutoff) -> None:
    """Vibes does not list this number: its leads' subscriptions that say otherwise end."""
    lead_ids = list(
        _unconfirmed(sync, cutoff).filter(lead__mobile_phone=number).values_list("lead_id", flat=True)
    )
    if not lead_ids:
        return
    update = subscriptions_apply(
        lead_ids=lead_ids,
        vibes_list=sync.vibes_list,
        status=Status.UNSUBSCRIBED,
        source=SubscriptionChange.Source.SYNC,
        when=when,
        note=_("Vibes sync: not among the list's subscribers in Vibes"),
        only_from={Status.SUBSCRIBED, Status.PENDING},
    )
    sync.changed += update.changed
    sync.unsubscribed += update.changed
    sync.unchanged += update.unchanged
    sync.superseded += update.superseded


# --- Who works on a sync ------------------------------------------------------------------------

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


def _save(sync, token, *, checked=True) -> None:
    """Store where the sync got to.

    Raises SubscriberSyncBusy, rolling the page back, when another worker took the sync over.
    """
    sync.heartbeat_at = timezone.now()
    fields = {name: getattr(sync, name) for name in (*COUNTS, *STATE, "heartbeat_at")}
    if not SubscriberSync.objects.filter(pk=sync.pk, claimed_by=token).update(**fields) and checked:
        raise SubscriberSyncBusy(
            _("Another worker took over the sync of %(list)s.") % {"list": sync.vibes_list}
        )


def _claim(sync) -> str:
    """Become the worker of this sync; SubscriberSyncBusy when another one is on it."""
    sync.refresh_from_db()
    if sync.status == SubscriberSync.Status.DONE:
        raise SubscriberSyncBusy(_("The sync of %(list)s is already done.") % {"list": sync.vibes_list})
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and not _abandoned(sync):
        raise _busy(sync)
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
        raise _busy(sync)
    sync.refresh_from_db()
    return token


def _abandoned(sync) -> bool:
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


def _busy(sync) -> SubscriberSyncBusy:
    return SubscriberSyncBusy(
        _("The subscribers of %(list)s are being synced already (last progress at %(time)s).")
        % {"list": sync.vibes_list, "time": timezone.localtime(sync.heartbeat_at).strftime("%H:%M:%S")}
    )
