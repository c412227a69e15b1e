"""Writing activity records: one row per thing that happened to a person.

Each source writes its activities here, where it applies its event (the
subscription changes in `vibes.subscriptions`, ...). An activity's key names
the event it comes from, so an event applied twice makes one activity; the
unique key, not a check in Python, keeps it so.

Apps above this one react to new activities without this app knowing them:
`activities_recorded` is sent once the transaction that wrote them commits.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .models import Activity

# Sent after commit, with `count`: how many activities were offered (some may have existed already).
activities_recorded = Signal()


@dataclass(frozen=True)
class NewActivity:
    kind: str
    lead_id: int
    key: str
    occurred_at: datetime | None = None
    source: str = ""
    attributes: dict = field(default_factory=dict)


def activities_record(*, activities: list[NewActivity]) -> None:
    """Write these activities, leaving out any whose key is already written."""
    if not activities:
        return
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                kind=new.kind,
                lead_id=new.lead_id,
                key=new.key[:200],
                occurred_at=new.occurred_at or now,
                recorded_at=now,
                source=new.source[:20],
                attributes=new.attributes,
            )
            for new in activities
        ],
        ignore_conflicts=True,
    )
    count = len(activities)
    transaction.on_commit(lambda: activities_recorded.send(sender=Activity, count=count))


# Where a person came from, as "Person is Created" names it.
CREATED_BY_IMPORT, CREATED_BY_ADMIN, CREATED_BY_VIBES_SYNC = "import", "admin", "vibes_sync"


def activity_value(value) -> str:
    """A field's value as activities keep it and triggers compare it: text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def leads_created_record(*, lead_ids, source: str, when: datetime | None = None) -> None:
    """ "Person is Created" for each of these new leads (a lead is created once: keyed by its id)."""
    activities_record(
        activities=[
            NewActivity(
                kind=Activity.Kind.PERSON_CREATED,
                lead_id=lead_id,
                key=f"lead-created:{lead_id}",
                occurred_at=when,
                source=source,
                attributes={"source": source},
            )
            for lead_id in lead_ids
        ]
    )


def lead_changes_record(*, changes, source: str, key: str, when: datetime | None = None) -> None:
    """ "Data Value Changes": one activity per (lead id, field, previous value, new value).

    `key` names the event that changed them (an import, an admin's save), so
    the same change recorded again by that event makes no second activity.
    """
    activities_record(
        activities=[
            NewActivity(
                kind=Activity.Kind.DATA_VALUE_CHANGED,
                lead_id=lead_id,
                key=f"{key}:{lead_id}:{field}",
                occurred_at=when,
                source=source,
                attributes={"field": field, "previous": activity_value(old), "new": activity_value(new)},
            )
            for lead_id, field, old, new in changes
        ]
    )
