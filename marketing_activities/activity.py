"""A lead's SMS activity: the calls runs made for it, its subscription
changes and the Vibes callbacks about its number, newest first."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.text import capfirst
from django.utils.translation import gettext as _

from vibes.models import CallbackEvent, SubscriptionChange

from .models import Outcome, RunResult


@dataclass(frozen=True)
class ActivityEntry:
    when: datetime
    kind: str
    text: str


def lead_activity(lead, *, limit: int = 50) -> list[ActivityEntry]:
    entries = []
    # outcome < 30 are the calls: the index on a lead's results covers only them.
    results = (
        RunResult.objects.filter(lead=lead, outcome__lt=30)
        .select_related("run_step__run__campaign")
        .order_by("-pk")[:limit]
    )
    for result in results:
        step = result.run_step
        text = _("%(campaign)s, run %(run)s, step %(step)s (%(action)s): %(outcome)s") % {
            "campaign": step.run.campaign,
            "run": step.run_id,
            "step": step.number,
            "action": step.get_action_display(),
            "outcome": Outcome(result.outcome).label,
        }
        details = [result.phone, result.detail, result.vibes_message_id and f"id {result.vibes_message_id}"]
        if result.delivery_status:
            details.append(_("delivery: %(status)s") % {"status": result.delivery_status})
        text += "".join(f" · {d}" for d in details if d)
        entries.append(ActivityEntry(result.updated_at or step.run.created_at, _("SMS"), text))
    changes = SubscriptionChange.objects.filter(lead=lead).select_related("subscription__vibes_list")[:limit]
    for change in changes:
        entries.append(
            ActivityEntry(
                change.created_at,
                _("Subscription"),
                f"{change.subscription.vibes_list}: {change.old_status or '—'} → {change.new_status}"
                f" ({change.get_source_display()}{', ' + change.note if change.note else ''})",
            )
        )
    if lead.mobile_phone:
        for event in CallbackEvent.objects.filter(mdn=lead.mobile_phone)[:limit]:
            entries.append(
                ActivityEntry(
                    event.received_at,
                    _("Vibes callback"),
                    f"{event.event_type}: {event.get_outcome_display()}{' · ' + event.note if event.note else ''}",
                )
            )
    entries.extend(_flag_changes(lead, limit=limit))
    entries.sort(key=lambda entry: entry.when, reverse=True)
    return entries[:limit]


def _flag_changes(lead, *, limit: int) -> list[ActivityEntry]:
    """Who blocklisted or suspended the lead, or lifted it, and from where (R10)."""
    changes = lead.flag_changes.all()[:limit]
    return [
        ActivityEntry(change.created_at, capfirst(change.get_flag_display()), change.describe())
        for change in changes
    ]
