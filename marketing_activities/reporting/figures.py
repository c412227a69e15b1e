"""The SMS figures of a scope (a message, a campaign, a program, a Vibes list,
the whole installation), in all or over time: what the SMS dashboards show.

Read from the rollups alone (SmsHourlyFigures, kept by rollups.py), never
from the result rows: a scope's figures are one grouped query (plus one to
find the scope's object), whatever the number of SMS.

Every figure of an SMS belongs to the hour of its call to Vibes. A date range
[start, end) takes the hours that begin in it: to the hour, as the rollups
are kept (a range from 10:30 leaves out the SMS of 10:00 to 10:59). Days are
the installation's (TIME_ZONE): an hour belongs to the day in which it
begins, so in a zone whose offset is not a whole number of hours (India,
+05:30) a day holds the hours that begin in it, 00:30 to 23:30 local, and
the SMS of 00:00 to 00:29 local count on the day before.
"""

import datetime
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDay

from vibes.models import VibesList

from ..models import Program, SmartCampaign, SmsHourlyFigures, SmsMessage

HOUR = datetime.timedelta(hours=1)
# Up to this range, the figures over time are hourly; beyond it, daily.
HOURLY_UP_TO = datetime.timedelta(hours=48)

SCOPES = {
    "message": (SmsMessage, "sms_message_id"),
    "campaign": (SmartCampaign, "campaign_id"),
    "program": (Program, "campaign__program_id"),
    "vibes_list": (VibesList, "vibes_list_id"),
    "installation": (None, None),
}


@dataclass(frozen=True)
class Scope:
    kind: str  # "message" | "campaign" | "program" | "vibes_list" | "installation"
    pk: int | None = None  # None only for "installation"


@dataclass(frozen=True)
class SmsFigures:
    """What became of the SMS that Send SMS steps had Vibes accept (never a dry run's)."""

    sent: int = 0  # results with outcome SENT, DELIVERED or DELIVERY_FAILED (models.SMS_SENT)
    delivered: int = 0  # of those, DELIVERED
    failed: int = 0  # of those, DELIVERY_FAILED (= failed_hard + failed_soft)
    failed_hard: int = 0  # DELIVERY_FAILED with a status in models.HARD_BOUNCE_STATUSES
    failed_soft: int = 0  # every other DELIVERY_FAILED
    replied: int = 0  # of those SMS, how many got at least one reply
    clicked: int = 0  # of those SMS, how many had a tracked-link click not by a robot
    unsubscribed: int = 0  # followed within 7 days of the call by an unsubscription from the step's list

    def _rate(self, count: int) -> float | None:
        return count / self.sent if self.sent else None

    @property
    def delivery_rate(self) -> float | None:
        return self._rate(self.delivered)

    @property
    def failure_rate(self) -> float | None:
        """The bounce rate."""
        return self._rate(self.failed)

    @property
    def reply_rate(self) -> float | None:
        return self._rate(self.replied)

    @property
    def click_rate(self) -> float | None:
        return self._rate(self.clicked)

    @property
    def unsubscribe_rate(self) -> float | None:
        return self._rate(self.unsubscribed)

    def __add__(self, other: "SmsFigures") -> "SmsFigures":
        if not isinstance(other, SmsFigures):
            return NotImplemented
        return SmsFigures(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


_KEPT = ("sent", "delivered", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed")


def _figures(values: dict) -> SmsFigures:
    kept = {name: values.get(name) or 0 for name in _KEPT}
    return SmsFigures(failed=kept["failed_hard"] + kept["failed_soft"], **kept)


def _rollups(scope: Scope, start, end):
    """The scope's rollup rows in the range; DoesNotExist for a scope whose object does not exist."""
    if scope.kind not in SCOPES:
        raise ValueError(f"Unknown scope {scope.kind!r}")
    model, lookup = SCOPES[scope.kind]
    rows = SmsHourlyFigures.objects.all()
    if model is not None:
        if not model.objects.filter(pk=scope.pk).exists():
            raise model.DoesNotExist(f"No {model._meta.verbose_name} {scope.pk}")
        rows = rows.filter(**{lookup: scope.pk})
    if start is not None:
        rows = rows.filter(hour__gte=start)
    if end is not None:
        rows = rows.filter(hour__lt=end)
    return rows


def sms_figures(
    scope: Scope, *, start: datetime.datetime | None = None, end: datetime.datetime | None = None
) -> SmsFigures:
    """The scope's figures, of the SMS called in [start, end) (by the hour), or of all."""
    totals = _rollups(scope, start, end).aggregate(**{name: Sum(name) for name in _KEPT})
    return _figures(totals)


def bucket_size(start: datetime.datetime, end: datetime.datetime) -> str:
    """ "hour" for a range of up to 48 hours, else "day"."""
    return "hour" if end - start <= HOURLY_UP_TO else "day"


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _buckets(start: datetime.datetime, end: datetime.datetime, size: str) -> list[datetime.datetime]:
    """The buckets' starts that cover [start, end), aware, in the installation's zone."""
    zone = _zone()
    if size == "hour":
        first = start.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
        count = max(0, -(-(end - first) // HOUR))  # rounded up
        return [(first + n * HOUR).astimezone(zone) for n in range(count)]
    day = start.astimezone(zone).date()
    buckets = []
    while True:
        # Each local midnight on its own: a day of a clock change is 23 or 25 hours long.
        midnight = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
        if midnight >= end:
            return buckets
        buckets.append(midnight)
        day += datetime.timedelta(days=1)


def sms_figures_over_time(
    scope: Scope, *, start: datetime.datetime, end: datetime.datetime
) -> list[tuple[datetime.datetime, SmsFigures]]:
    """The scope's figures by hour (a range of up to 48 hours) or by day of the
    installation's time zone, for every bucket of [start, end), zeros included;
    each bucket named by its start (aware).

    The first bucket begins at the hour or local midnight at or before
    `start`, so that every bucket is whole; the SMS are those of [start, end).
    """
    size = bucket_size(start, end)
    buckets = _buckets(start, end, size)
    # By day, the database adds the hours up (a year: 365 rows, not 8,760), each
    # hour on the local day in which it begins, as the buckets are.
    bucket = _local_day(buckets) if size == "day" else F("hour")
    rows = (
        _rollups(scope, start, end)
        .annotate(bucket=bucket)
        .values_list("bucket")
        .annotate(*(Sum(name) for name in _KEPT))
        .order_by("bucket")
    )
    # Plain lists while adding up: SmsFigures once per bucket.
    totals = [[0] * len(_KEPT) for _ in buckets]
    at = 0
    for moment, *counts in rows:
        moment = _day_start(moment) if size == "day" else moment
        # Rows and buckets both in time order: each row goes to the last bucket begun by its moment.
        while at + 1 < len(buckets) and buckets[at + 1] <= moment:
            at += 1
        if buckets and buckets[at] <= moment:
            total = totals[at]
            for index, count in enumerate(counts):
                total[index] += count or 0
    return [
        (bucket, _figures(dict(zip(_KEPT, total, strict=True))))
        for bucket, total in zip(buckets, totals, strict=True)
    ]


def _day_start(day) -> datetime.datetime:
    """The local midnight of a day as `_local_day` gives it (a date on SQLite)."""
    if isinstance(day, str):
        day = datetime.date.fromisoformat(day)
    if isinstance(day, datetime.datetime):
        return day
    return datetime.datetime.combine(day, datetime.time(), tzinfo=_zone())


def _local_day(buckets: list[datetime.datetime]):
    """The local day (of TIME_ZONE) in which a rollup's hour begins, as SQL.

    PostgreSQL knows the zones (TruncDay). SQLite would convert each hour in a
    Python function (at ten thousand hours, slower than reading them all):
    there the hour is moved by the zone's offset in SQLite's own datetime(),
    the offsets of the buckets' days (their clock changes) written as a CASE.
    """
    if connection.vendor == "postgresql":
        return TruncDay("hour", tzinfo=_zone())
    zone = _zone()
    pieces = [(buckets[0].astimezone(datetime.UTC), buckets[0].utcoffset())]
    for day in buckets:
        next_day = day + datetime.timedelta(days=1)  # local midnight: wall-clock arithmetic
        if next_day.utcoffset() == pieces[-1][1]:
            continue
        # The offset at each whole hour of UTC, where the rollups' hours begin.
        moment = day.astimezone(datetime.UTC).replace(minute=0)
        while moment < next_day:
            offset = moment.astimezone(zone).utcoffset()
            if offset != pieces[-1][1]:
                pieces.append((moment, offset))
            moment += HOUR
    shift = "%s"
    params: list = [f"{int(pieces[-1][1].total_seconds()):+d} seconds"]
    for (_since, offset), (until, _next) in reversed(list(zip(pieces, pieces[1:], strict=False))):
        shift = f"CASE WHEN hour < %s THEN %s ELSE {shift} END"
        params = [
            connection.ops.adapt_datetimefield_value(until),
            f"{int(offset.total_seconds()):+d} seconds",
            *params,
        ]
    return RawSQL(f"substr(datetime(hour, {shift}), 1, 10)", params)
