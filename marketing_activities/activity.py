"""A lead's SMS activity: the calls runs made for it (with the text each SMS
carried), its clicks on tracked links, its subscription changes, its replies
and the Vibes callbacks about its number, newest first."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from vibes.callbacks import INBOUND_EVENT_TYPES
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange

from .models import LEAD_ACTIVITY, LinkClick, Outcome, RunResult


@dataclass(frozen=True)
class ActivityEntry:
    when: datetime
    kind: str
    text: str


def lead_results(lead):
    """The lead's result rows its activity lists: the calls, and the skips for
    a number another person's block closed (R4). The partial index on a lead's
    results holds exactly these rows."""
    return (
        RunResult.objects.filter(LEAD_ACTIVITY, lead=lead)
        .select_related("run_step__run__campaign", "blocked_by", "sent_sms")
        .order_by("-pk")
    )


def lead_activity(lead, *, limit: int = 50) -> list[ActivityEntry]:
    entries = []
    for result in lead_results(lead)[:limit]:
        step = result.run_step
        text = _("%(campaign)s, run %(run)s, step %(step)s (%(action)s): %(outcome)s") % {
            "campaign": step.run.campaign,
            "run": step.run_id,
            "step": step.number,
            "action": step.get_action_display(),
            "outcome": Outcome(result.outcome).label,
        }
        details = [
            result.phone,
            result.detail_display,
            result.vibes_message_id and f"id {result.vibes_message_id}",
        ]
        if result.blocked_by_id:
            details.append(_("because of %(name)s") % {"name": _blocker_name(result)})
        if result.delivery_status:
            details.append(_("delivery: %(status)s") % {"status": result.delivery_status})
        if result.delivery_reason:
            details.append(result.delivery_reason)
        sent = getattr(result, "sent_sms", None)  # None: no SMS went (not a Send step, or not yet)
        if sent is not None:
            details.append(f"“{sent.text}”")
        text += "".join(f" · {d}" for d in details if d)
        entries.append(ActivityEntry(result.updated_at or step.run.created_at, _("SMS"), text))
    entries.extend(_link_clicks(lead, limit=limit))
    changes = SubscriptionChange.objects.filter(lead=lead).select_related("vibes_list")[:limit]
    for change in changes:
        text = "{}: {} → {} ({}{})".format(
            change.vibes_list,
            _status_label(change.old_status),
            _status_label(change.new_status),
            change.get_source_display(),
            ", " + change.note if change.note else "",
        )
        if change.effect != SubscriptionChange.Effect.APPLIED:
            text += " · " + change.get_effect_display()
        # Changes are ordered by their own time, which a late callback shows apart from its arrival.
        if change.occurred_at.replace(microsecond=0) != change.recorded_at.replace(microsecond=0):
            text += " · " + _("event time %(occurred)s, arrived %(recorded)s") % {
                "occurred": _moment(change.occurred_at),
                "recorded": _moment(change.recorded_at),
            }
        entries.append(ActivityEntry(change.recorded_at, _("Subscription"), text))
    replies = (
        InboundMessage.objects.filter(leads=lead)
        .select_related("sms_reply__run_step__run__campaign")
        .order_by("-occurred_at", "-pk")[:limit]
    )
    for message in replies:
        entries.append(ActivityEntry(message.occurred_at, _("Reply"), _reply_text(message)))
    if lead.mobile_phone:
        # The callbacks that brought replies are shown as the replies above.
        events = CallbackEvent.objects.filter(mdn=lead.mobile_phone).exclude(
            event_type__in=INBOUND_EVENT_TYPES
        )
        for event in events[:limit]:
            note = f" · {event.note}" if event.note else ""
            entries.append(
                ActivityEntry(
                    event.received_at,
                    _("Vibes callback"),
                    f"{event.event_type}: {event.get_outcome_display()}{note}",
                )
            )
    entries.extend(_flag_changes(lead, limit=limit))
    entries.sort(key=lambda entry: entry.when, reverse=True)
    return entries[:limit]


def _link_clicks(lead, *, limit: int) -> list[ActivityEntry]:
    clicks = LinkClick.objects.filter(lead=lead).select_related("link", "run_step__run__campaign")[:limit]
    entries = []
    for click in clicks:
        step = click.run_step
        text = _("%(address)s in %(campaign)s, run %(run)s, step %(step)s") % {
            "address": click.link.url,
            "campaign": step.run.campaign,
            "run": step.run_id,
            "step": step.number,
        }
        if click.by_robot:
            text += " · " + _("by a link preview or robot, not counted")
        entries.append(ActivityEntry(click.clicked_at, _("Link click"), text))
    return entries


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


def _moment(when: datetime) -> str:
    return date_format(localtime(when), "DATETIME_FORMAT")


def _blocker_name(result) -> str:
    # select_related leaves None for a lead deleted since: the row has no foreign key in the database.
    blocker = result.blocked_by
    return str(blocker) if blocker is not None else _("Lead %(id)s") % {"id": result.blocked_by_id}


def _flag_changes(lead, *, limit: int) -> list[ActivityEntry]:
    """Who blocklisted or suspended the lead, or lifted it, and from where (R10)."""
    changes = lead.flag_changes.all()[:limit]
    return [
        ActivityEntry(change.created_at, capfirst(change.get_flag_display()), change.describe())
        for change in changes
    ]
