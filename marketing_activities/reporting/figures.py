"""The SMS figures of the dashboards (the contract the rollups keep).

Provisional: computed here from the runs' results with plain aggregates, so
that the dashboards can be built and tested; the rollups replace this module
with the same interface. Every figure of an SMS belongs to the hour of its
Vibes call (`RunResult.called_at`): news arriving later counts for that hour.
"""

import datetime
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Trunc

HOURLY_UP_TO = datetime.timedelta(hours=48)


@dataclass(frozen=True)
class Scope:
    kind: str  # "message" | "campaign" | "program" | "vibes_list" | "installation"
    pk: int | None = None  # None only for "installation"


@dataclass(frozen=True)
class SmsFigures:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    failed_hard: int = 0
    failed_soft: int = 0
    replied: int = 0
    clicked: int = 0
    unsubscribed: int = 0

    def _rate(self, count: int) -> float | None:
        return count / self.sent if self.sent else None

    @property
    def delivery_rate(self):
        return self._rate(self.delivered)

    @property
    def failure_rate(self):
        return self._rate(self.failed)

    @property
    def reply_rate(self):
        return self._rate(self.replied)

    @property
    def click_rate(self):
        return self._rate(self.clicked)

    @property
    def unsubscribe_rate(self):
        return self._rate(self.unsubscribed)

    def __add__(self, other: "SmsFigures") -> "SmsFigures":
        return SmsFigures(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def bucket_size(start: datetime.datetime, end: datetime.datetime) -> str:
    return "hour" if end - start <= HOURLY_UP_TO else "day"


def _aggregates(scope: Scope) -> dict:
    from .people import FIGURES, figure_condition

    counted = {}
    for name in FIGURES:
        condition = figure_condition(name, scope)
        if condition is None:
            counted[name] = Count("pk")
        else:
            counted[name] = Count("pk", filter=condition if isinstance(condition, Q) else Q(condition))
    return counted


def sms_figures(scope: Scope, *, start=None, end=None) -> SmsFigures:
    from .people import sent_sms

    return SmsFigures(**sent_sms(scope, start=start, end=end).aggregate(**_aggregates(scope)))


def _bucket_starts(start, end, size: str) -> list[datetime.datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    local = start.astimezone(zone)
    if size == "hour":
        first = local.replace(minute=0, second=0, microsecond=0).astimezone(datetime.UTC)
        count = int((end - first).total_seconds() // 3600) + 1
        starts = [first + datetime.timedelta(hours=n) for n in range(count)]
    else:
        day = local.date()
        starts = []
        while (at := datetime.datetime.combine(day, datetime.time(), tzinfo=zone)) < end:
            starts.append(at)
            day += datetime.timedelta(days=1)
    return [at for at in starts if at < end]


def sms_figures_over_time(scope: Scope, *, start, end) -> list[tuple[datetime.datetime, SmsFigures]]:
    from .people import sent_sms

    size = bucket_size(start, end)
    zone = ZoneInfo(settings.TIME_ZONE)
    rows = (
        sent_sms(scope, start=start, end=end)
        .annotate(bucket=Trunc("called_at", size, tzinfo=zone))
        .values("bucket")
        .annotate(**_aggregates(scope))
        .order_by()
    )
    found = {row.pop("bucket").astimezone(datetime.UTC): SmsFigures(**row) for row in rows}
    return [
        (at, found.get(at.astimezone(datetime.UTC), SmsFigures())) for at in _bucket_starts(start, end, size)
    ]
