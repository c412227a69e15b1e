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
