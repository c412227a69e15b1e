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
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from smscampaigns.activities import CREATED_BY_VIBES_SYNC, leads_created_record
from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from .client import VibesClient
from .exceptions import VibesBadRequest, VibesNotFound, VibesPagingUnsupported, VibesUnprocessable
from .models import SubscriberSync, Subscription, SubscriptionChange, VibesList
from .subscriptions import subscriptions_apply
from .sync_workers import SubscriberSyncBusy, abandoned, busy, claim, release, save_progress

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
CHECK_CHUNK = 200  # numbers checked per committed chunk
WORKERS = 8  # checks in flight at once; the client's rate limiter still paces them
# Vibes asks people to confirm within 24 hours (R5); a participant pending for
# less is simply not subscribed yet.
CONFIRMATION_WINDOW = timedelta(hours=24)
LEAD_SOURCE = "Vibes"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

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
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and not abandoned(sync):
        raise busy(sync)
    # The options of today's request hold for the rest of the work; the page
    # size stays, or the pages already read would no longer line up.
    SubscriberSync.objects.filter(pk=sync.pk).update(create_leads=create_leads)
    sync.create_leads = create_leads
    return sync


def subscriber_sync_run(
    *, sync: SubscriberSync, client: VibesClient, progress: Progress | None = None
) -> SubscriberSync:
    """Work on the sync until it is done. A VibesError stops it (status failed), to be continued."""
    token = claim(sync)
    progress = progress or (lambda sync, done, total: None)
    try:
        if sync.phase == SubscriberSync.Phase.PAGES:
            _read_pages(sync, client, token, progress)
        if sync.phase == SubscriberSync.Phase.CHECKS:
            _check_numbers(sync, client, token, progress)
        sync.status, sync.finished_at = SubscriberSync.Status.DONE, timezone.now()
        save_progress(sync, token)
        return sync
    except SubscriberSyncBusy:
        raise
    except Exception as error:
        sync.status, sync.error = SubscriberSync.Status.FAILED, str(error)[:2000]
        save_progress(sync, token, checked=False)
        raise
    finally:
        release(token)


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
    if sync.status == SubscriberSync.Status.RUNNING and sync.claimed_by and abandoned(sync):
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
    previous = None
    while True:
        asked_at = timezone.now()
        try:
            subscribers = client.list_subscribers(list_id, page=sync.next_page, page_size=sync.page_size)
            if subscribers and subscribers == previous:
                raise VibesPagingUnsupported(f"Vibes answered page {sync.next_page} with the page before.")
        except (VibesPagingUnsupported, VibesBadRequest, VibesNotFound, VibesUnprocessable) as error:
            # Refused on the first page, or paging ignored: this Vibes searches
            # by number only, as the contract documents.
            if sync.next_page > 1 and not isinstance(error, VibesPagingUnsupported):
                raise
            logger.warning("Vibes list %s: no pages of subscribers (%s); searching by number", list_id, error)
            sync.calls += 1
            sync.mode, sync.phase = SubscriberSync.Mode.NUMBERS, SubscriberSync.Phase.CHECKS
            save_progress(sync, token)
            return
        sync.calls += 1
        if not subscribers:
            # The contract publishes no total and no page size limit, so only
            # an empty page says that the one before was the last.
            sync.phase = SubscriberSync.Phase.CHECKS
            save_progress(sync, token)
            return
        previous = subscribers
        with transaction.atomic():
            _take_page(sync, subscribers, asked_at)
            sync.next_page += 1
            save_progress(sync, token)
        progress(sync, sync.subscribers, None)


def _take_page(sync, subscribers, asked_at) -> None:
    sync.subscribers += len(subscribers)
    by_number = {}
    for subscriber in subscribers:
        # Vibes writes numbers in E.164, as leads are stored: parsing each one
        # (slow) is only needed for the few that are not.
        number = subscriber.mdn if E164.match(subscriber.mdn) else normalize_phone_or_blank(subscriber.mdn)
        if number:
            by_number.setdefault(number, subscriber)
        else:
            sync.refused += 1
            logger.warning("Vibes list %s: a subscriber without a valid number", sync.vibes_list.vibes_id)
    leads = defaultdict(list)
    for pk, number in Lead.objects.filter(mobile_phone__in=list(by_number)).values_list("pk", "mobile_phone"):
        leads[number].append(pk)
    missing = []
    for number in by_number:
        if number in leads:
            continue
        # A new lead's number must be one it may be texted on.
        if normalize_phone_or_blank(number) == number:
            missing.append(number)
        else:
            sync.refused += 1
            logger.warning("Vibes list %s: a subscriber without a valid number", sync.vibes_list.vibes_id)
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
    created = Lead.objects.bulk_create(leads)
    leads_created_record(lead_ids=[lead.pk for lead in created], source=CREATED_BY_VIBES_SYNC)
    return created


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
    rows = Subscription.objects.filter(vibes_list=vibes_list, lead_id__in=lead_ids)
    for pk, lead_id, key in rows.values_list("pk", "lead_id", "vibes_person_key"):
        new_key = person_keys[lead_id][:64]
        if new_key and key != new_key:
            sync.linked += lead_id not in linked_before
            relink.append((pk, new_key))
    _link(relink)
    rows.update(seen_in_vibes_at=when)


def _link(keys: list[tuple[int, str]]) -> None:
    """Store Vibes person keys ((subscription id, key) pairs) with one UPDATE per 500.

    `bulk_update` would do the same, at a second of Python per page.
    """
    table = connection.ops.quote_name(Subscription._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            cases = " ".join(["WHEN %s THEN %s"] * len(chunk))
            ids = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET vibes_person_key = CASE id {cases} END WHERE id IN ({ids})",
                [value for pair in chunk for value in pair] + [pk for pk, _ in chunk],
            )


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


class _NotAsked(Exception):
    """A check left out because another one found Vibes failing."""


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
                save_progress(sync, token)
            done += len(numbers)
            progress(sync, done, total)
    sync.phase = SubscriberSync.Phase.DONE


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
