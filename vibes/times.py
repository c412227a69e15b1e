"""Times as Vibes writes them (ISO 8601), read as times in UTC."""

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def vibes_time(value) -> datetime | None:
    """An ISO 8601 time in UTC (a time without an offset is taken as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = parse_datetime(value.strip().replace("Z", "+00:00"))
        if moment is None:
            return None
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def vibes_end(value: str, *, whole_day: bool) -> datetime | None:
    """When an end date Vibes wrote comes, in UTC; None when it names no time.

    A bare date (2026-05-31) comes at the start of that day, or, with
    `whole_day`, at its close.
    """
    value = (value or "").strip()
    try:
        day = parse_date(value)
    except ValueError:
        return None
    if day is not None:
        return datetime.combine(day + timedelta(days=1) if whole_day else day, time.min, tzinfo=UTC)
    return vibes_time(value)
