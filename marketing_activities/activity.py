"""A person's activity log: every SMS sent for them, its delivery or failure,
their replies and clicks, their subscription and block changes and their
activity records, each with its source and time, newest first, a page at a time.

Each kind of record is a *source* read through an index on (lead, time, id),
at most a page (and one) of rows per source and one query each, whatever the
person's history. The page is the newest of their union; the next page starts
below the last entry shown, keyed by (time, source, id), never an OFFSET.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smscampaigns.models import ACTIVITY_RECORDS, Activity, LeadFlagChange
from vibes.models import InboundMessage, Subscription, SubscriptionChange, VibesList

from .models import (
    HARD_BOUNCE_STATUSES,
    LEAD_CALLED,
    LEAD_NUMBER_BLOCKED,
    LEAD_RECEIPTS,
    FlowStep,
    LinkClick,
    Outcome,
    RunResult,
    SmartCampaign,
)

PAGE_SIZE = 50

# The kinds a log can be filtered by, in the order the filter offers them.
KINDS = {
    "sent": gettext_lazy("Sent (SMS and other flow steps)"),
    "skipped": gettext_lazy("Not sent: the number is blocked through another person who shares it"),
    "delivered": gettext_lazy("SMS delivered"),
    "failed": gettext_lazy("SMS delivery failed"),
    "replied": gettext_lazy("Replied"),
    "clicked": gettext_lazy("Clicked a link"),
    "subscription": gettext_lazy("Subscription changes"),
    "block": gettext_lazy("Blocklist and suspension changes"),
    "activity": gettext_lazy("Activity records (created, data value changed, campaign requested)"),
}


@dataclass(frozen=True)
class ActivityEntry:
    when: datetime
    kind: str  # one of KINDS
    label: str  # what happened, in a few words
    source: str  # where the app learnt it
    text: str
    key: tuple  # (when, source rank, id): the log's order


@dataclass(frozen=True)
class ActivityPage:
    entries: list
    older: str  # the cursor of the next page ("" for the last)
    problem: str = ""  # a cursor that could not be read: the newest are shown


@dataclass(frozen=True)
class Cursor:
    when: datetime
    rank: int
    pk: int

    def __str__(self):
        return f"{self.when.isoformat()}~{self.rank}~{self.pk}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        when, rank, pk = text.split("~")
        moment = parse_datetime(when)
        if moment is None or not rank.isdigit() or not pk.isdigit():
            raise ValueError(text)
        if timezone.is_naive(moment):  # written by hand: the installation's time
            moment = timezone.make_aware(moment)
        return cls(moment, int(rank), int(pk))


def _older_than(cursor: Cursor | None, rank: int, field: str) -> Q:
    """This source's rows below the cursor in the log's order (time, source rank, id).

    Written as a range on the time plus a filter, so that each database walks
    the (lead, time, id) index from the cursor down instead of from the top.
    """
    if cursor is None:
        return Q()
    if rank < cursor.rank:
        return Q(**{f"{field}__lte": cursor.when})
    if rank > cursor.rank:
        return Q(**{f"{field}__lt": cursor.when})
    return Q(**{f"{field}__lte": cursor.when}) & (Q(**{f"{field}__lt": cursor.when}) | Q(pk__lt=cursor.pk))


def _newest(queryset, field: str, cursor, rank: int, limit: int):
    return queryset.filter(_older_than(cursor, rank, field)).order_by(f"-{field}", "-pk")[:limit]


# --- The sources -------------------------------------------------------------------


def _step_words(step) -> str:
    return _("%(campaign)s, run %(run)s, step %(step)s") % {
        "campaign": step.run.campaign,
        "run": step.run_id,
        "step": step.number,
    }


def _call_text(result, outcome) -> str:
    step = result.run_step
    text = _("%(campaign)s, run %(run)s, step %(step)s (%(action)s): %(outcome)s") % {
        "campaign": step.run.campaign,
        "run": step.run_id,
        "step": step.number,
        "action": step.get_action_display(),
        "outcome": Outcome(outcome).label,
    }
    details = [
        result.phone,
        result.detail_display,
        result.vibes_message_id and f"id {result.vibes_message_id}",
    ]
    if result.blocked_by_id:
        details.append(_("because of %(name)s") % {"name": _blocker_name(result)})
    sent = getattr(result, "sent_sms", None)  # None: no SMS went (not a Send step, or not yet)
    if sent is not None:
        details.append(f"“{sent.text}”")
    return text + "".join(f" · {d}" for d in details if d)


def _sent(lead, *, kinds, campaign, cursor, limit):
    rank = 0
    if "sent" not in kinds:
        return []
    rows = RunResult.objects.filter(LEAD_CALLED, lead=lead)
    if campaign is not None:
        rows = rows.filter(run_step__run__campaign_id=campaign)
    rows = rows.select_related("run_step__run__campaign", "blocked_by", "sent_sms")
    entries = []
    for result in _newest(rows, "called_at", cursor, rank, limit):
        # A receipt settles the row later: here it was sent, the receipt has its own entry.
        settled = result.outcome in (Outcome.DELIVERED, Outcome.DELIVERY_FAILED)
        is_sms = result.run_step.action == FlowStep.Action.SEND_SMS
        entries.append(
            ActivityEntry(
                when=result.called_at,
                kind="sent",
                label=_("SMS sent") if is_sms else str(result.run_step.get_action_display()),
                source=_("campaign run"),
                text=_call_text(result, Outcome.SENT if settled else result.outcome),
                key=(result.called_at, rank, result.pk),
            )
        )
    return entries


def _number_blocks(lead, *, kinds, campaign, cursor, limit):
    """The person's skips for a number another person's block closed (R4): no
    call was made, so they have no call time; the step's planning time is theirs."""
    rank = 7
    if "skipped" not in kinds:
        return []
    rows = RunResult.objects.filter(LEAD_NUMBER_BLOCKED, lead=lead)
    if campaign is not None:
        rows = rows.filter(run_step__run__campaign_id=campaign)
    rows = rows.select_related("run_step__run__campaign", "blocked_by")
    # Few rows (through their own partial index): sorted by the step's time once read.
    entries = []
    for result in _newest(rows, "run_step__planned_at", cursor, rank, limit):
        when = result.run_step.planned_at or result.run_step.run.created_at
        entries.append(
            ActivityEntry(
                when=when,
                kind="skipped",
                label=_("SMS not sent"),
                source=_("campaign run"),
                text=_call_text(result, result.outcome),
                key=(when, rank, result.pk),
            )
        )
    return entries


def _receipts(lead, *, kinds, campaign, cursor, limit):
    rank = 1
    wanted = [k for k in ("delivered", "failed") if k in kinds]
    if not wanted:
        return []
    rows = RunResult.objects.filter(LEAD_RECEIPTS, lead=lead)
    if wanted == ["delivered"]:
        rows = rows.filter(outcome=Outcome.DELIVERED)
    elif wanted == ["failed"]:
        rows = rows.filter(outcome=Outcome.DELIVERY_FAILED)
    if campaign is not None:
        rows = rows.filter(run_step__run__campaign_id=campaign)
    rows = rows.select_related("run_step__run__campaign")
    entries = []
    for result in _newest(rows, "updated_at", cursor, rank, limit):
        delivered = result.outcome == Outcome.DELIVERED
        details = [_step_words(result.run_step), result.phone]
        if not delivered:
            hard = result.delivery_status in HARD_BOUNCE_STATUSES
            details.append(_("hard bounce") if hard else _("soft bounce"))
            details.append(result.delivery_status_news)
            details.append(result.delivery_reason)
        entries.append(
            ActivityEntry(
                when=result.updated_at,
                kind="delivered" if delivered else "failed",
                label=_("SMS delivered") if delivered else _("SMS delivery failed"),
                source=_("Vibes delivery receipt"),
                text=" · ".join(str(d) for d in details if d),
                key=(result.updated_at, rank, result.pk),
            )
        )
    return entries


def _replies(lead, *, kinds, campaign, cursor, limit):
    rank = 2
    if "replied" not in kinds:
        return []
    # Through the link table of the message's leads: it holds no time, so the
    # person's messages are all read before the newest are taken. A person's
    # replies are few beside their SMS.
    rows = InboundMessage.objects.filter(leads=lead)
    if campaign is not None:
        rows = rows.filter(sms_reply__run_step__run__campaign_id=campaign)
    rows = rows.select_related("sms_reply__run_step__run__campaign")
    return [
        ActivityEntry(
            when=message.occurred_at,
            kind="replied",
            label=_("Reply"),
            source=_("Vibes inbound SMS"),
            text=_reply_text(message),
            key=(message.occurred_at, rank, message.pk),
        )
        for message in _newest(rows, "occurred_at", cursor, rank, limit)
    ]


def _clicks(lead, *, kinds, campaign, cursor, limit):
    rank = 3
    if "clicked" not in kinds:
        return []
    rows = LinkClick.objects.filter(lead=lead)
    if campaign is not None:
        rows = rows.filter(run_step__run__campaign_id=campaign)
    rows = rows.select_related("link", "run_step__run__campaign")
    entries = []
    for click in _newest(rows, "clicked_at", cursor, rank, limit):
        text = _("%(address)s in %(campaign)s, run %(run)s, step %(step)s") % {
            "address": click.link.url,
            "campaign": click.run_step.run.campaign,
            "run": click.run_step.run_id,
            "step": click.run_step.number,
        }
        if click.by_robot:
            text += " · " + _("by a link preview or robot, not counted")
        entries.append(
            ActivityEntry(
                when=click.clicked_at,
                kind="clicked",
                label=_("Link click"),
                source=_("tracked link"),
                text=text,
                key=(click.clicked_at, rank, click.pk),
            )
        )
    return entries


def _subscription_changes(lead, *, kinds, campaign, cursor, limit):
    rank = 4
    if "subscription" not in kinds or campaign is not None:
        return []
    # The lists are read apart: joined, SQLite may start from the few lists and
    # sort the person's changes on each instead of walking their index.
    rows = SubscriptionChange.objects.filter(lead=lead)
    # By arrival, as the admin lists them: an event's own time may be a whole
    # second earlier (Vibes' dates have no fraction) than the call that caused it.
    changes = list(_newest(rows, "recorded_at", cursor, rank, limit))
    lists = VibesList.objects.in_bulk({change.vibes_list_id for change in changes}) if changes else {}
    entries = []
    for change in changes:
        vibes_list = lists.get(change.vibes_list_id, change.vibes_list_id)
        text = f"{vibes_list}: {_status_label(change.old_status)} → {_status_label(change.new_status)}"
        if change.note:
            text += " · " + change.note
        if change.effect != SubscriptionChange.Effect.APPLIED:
            text += " · " + change.get_effect_display()
        # A late callback shows its own time apart from its arrival.
        if change.occurred_at.replace(microsecond=0) != change.recorded_at.replace(microsecond=0):
            text += " · " + _("event time %(occurred)s, arrived %(recorded)s") % {
                "occurred": _moment(change.occurred_at),
                "recorded": _moment(change.recorded_at),
            }
        entries.append(
            ActivityEntry(
                when=change.recorded_at,
                kind="subscription",
                label=_("Subscription"),
                source=str(change.get_source_display()),
                text=text,
                key=(change.recorded_at, rank, change.pk),
            )
        )
    return entries


def _flag_changes(lead, *, kinds, campaign, cursor, limit):
    """Who blocklisted or suspended the person, or lifted it, and from where (R10)."""
    rank = 5
    if "block" not in kinds or campaign is not None:
        return []
    rows = LeadFlagChange.objects.filter(lead=lead)
    return [
        ActivityEntry(
            when=change.created_at,
            kind="block",
            label=capfirst(change.get_flag_display()),
            source=str(change.get_source_display()),
            text=change.describe(),
            key=(change.created_at, rank, change.pk),
        )
        for change in _newest(rows, "created_at", cursor, rank, limit)
    ]


def _records(lead, *, kinds, campaign, cursor, limit):
    rank = 6
    if "activity" not in kinds:
        return []
    rows = Activity.objects.filter(ACTIVITY_RECORDS, lead=lead)
    if campaign is not None:
        rows = rows.filter(kind=Activity.Kind.CAMPAIGN_REQUESTED, attributes__campaign=campaign)
    records = list(_newest(rows, "occurred_at", cursor, rank, limit))
    requested = {
        str(record.attributes.get("campaign"))
        for record in records
        if record.kind == Activity.Kind.CAMPAIGN_REQUESTED
        and str(record.attributes.get("campaign", "")).isdigit()
    }
    names = SmartCampaign.objects.in_bulk([int(pk) for pk in requested]) if requested else {}
    entries = []
    for record in records:
        attributes = record.attributes or {}
        if record.kind == Activity.Kind.DATA_VALUE_CHANGED:
            text = _("%(field)s: “%(previous)s” → “%(new)s”") % {
                "field": attributes.get("field", ""),
                "previous": attributes.get("previous", ""),
                "new": attributes.get("new", ""),
            }
        elif record.kind == Activity.Kind.CAMPAIGN_REQUESTED:
            requested = str(attributes.get("campaign", ""))
            found = names.get(int(requested)) if requested.isdigit() else None
            text = str(found) if found is not None else _("campaign %(campaign)s") % {"campaign": requested}
        else:
            text = ""
        entries.append(
            ActivityEntry(
                when=record.occurred_at,
                kind="activity",
                label=str(record.get_kind_display()),
                source=record.source,
                text=text,
                key=(record.occurred_at, rank, record.pk),
            )
        )
    return entries


SOURCES = (
    _sent,
    _receipts,
    _replies,
    _clicks,
    _subscription_changes,
    _flag_changes,
    _records,
    _number_blocks,
)


def lead_activity_page(
    *, lead, kinds=(), campaign: int | None = None, older: str = "", page_size: int = PAGE_SIZE
) -> ActivityPage:
    """A page of the person's log, newest first: of `kinds` (all when empty),
    of `campaign` (an id: only what a campaign did or caused), below the
    cursor `older` (a page's `older`). One query per source."""
    kinds = set(kinds) & set(KINDS) or set(KINDS)
    problem, cursor = "", None
    if older:
        try:
            cursor = Cursor.parse(older)
        except ValueError:
            problem = _("That page of the activity log could not be read: the newest activity is shown.")
    entries = []
    for source in SOURCES:
        entries += source(lead, kinds=kinds, campaign=campaign, cursor=cursor, limit=page_size + 1)
    entries.sort(key=lambda entry: entry.key, reverse=True)
    shown = entries[:page_size]
    more = len(entries) > page_size
    return ActivityPage(
        entries=shown,
        older=str(Cursor(*shown[-1].key)) if more else "",
        problem=problem,
    )


def lead_activity(lead, *, limit: int = PAGE_SIZE) -> list[ActivityEntry]:
    """The newest entries of the person's log (the lead's page shows them)."""
    return lead_activity_page(lead=lead, page_size=limit).entries


# --- Words -----------------------------------------------------------------------------


def _reply_text(message) -> str:
    text = _("“%(text)s” from %(number)s") % {"text": message.text, "number": message.mdn}
    reply = getattr(message, "sms_reply", None)  # None: no SMS of a run went to the number before it
    if reply is not None:
        step = reply.run_step
        text += " · " + _("in reply to %(campaign)s, run %(run)s, step %(step)s") % {
            "campaign": step.run.campaign,
            "run": step.run_id,
            "step": step.number,
        }
    if message.unmatched_in_vibes:
        text += " · " + _("matched no keyword in Vibes")
    if message.occurred_at.replace(microsecond=0) != message.received_at.replace(microsecond=0):
        text += " · " + _("sent %(occurred)s, arrived %(received)s") % {
            "occurred": _moment(message.occurred_at),
            "received": _moment(message.received_at),
        }
    return text


def _status_label(status: str) -> str:
    return Subscription.Status(status).label if status in Subscription.Status.values else status or "—"


def _blocker_name(result) -> str:
    # select_related leaves None for a lead deleted since: the row has no foreign key in the database.
    blocker = result.blocked_by
    return str(blocker) if blocker is not None else _("Lead %(id)s") % {"id": result.blocked_by_id}


def _moment(when: datetime) -> str:
    return date_format(localtime(when), "DATETIME_FORMAT")
