"""Quiet hours: an SMS goes out only inside the recipient's sending window, in their local time.

The window is the installation's (QuietHours, 08:00–21:00 unless an
administrator changes it or turns it off), or the one an administrator set
for the number's country. The recipient's time zone is the lead's own
(`Lead.time_zone`), else the number's: `phonenumbers` names the zones a
number may be in, and when it names several (a US area code across two
zones, a country with many), the SMS goes only while the window is open in
all of them, the most restrictive reading.

This module says when; the runner defers and releases the rows
(`runner/deferral.py`).
"""

import datetime
import zoneinfo
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.utils import timezone
from phonenumbers import timezone as phone_time_zones

from smscampaigns.models import Lead, available_time_zones

from .models import QuietHours, QuietHoursCountry

# phonenumbers' answer for a number it cannot place.
_UNKNOWN_ZONE = "Etc/Unknown"
# How far ahead an opening common to all of a number's zones is looked for.
_SEARCH_DAYS = 3


@dataclass(frozen=True)
class Window:
    start: datetime.time
    end: datetime.time

    def is_open(self, at: datetime.datetime, zone: zoneinfo.ZoneInfo) -> bool:
        return self.start <= at.astimezone(zone).time() < self.end

    def starts_after(self, at: datetime.datetime, zone: zoneinfo.ZoneInfo) -> list[datetime.datetime]:
        """The window's openings (as aware datetimes) from the day before `at` on."""
        day = at.astimezone(zone).date()
        return [
            datetime.datetime.combine(day + datetime.timedelta(days=offset), self.start, tzinfo=zone)
            for offset in range(-1, _SEARCH_DAYS + 1)
        ]


@dataclass(frozen=True)
class QuietHoursRules:
    """The installation's settings, read once per batch."""

    enabled: bool
    window: Window
    countries: dict[str, Window]

    def window_for(self, country: str) -> Window:
        return self.countries.get(country, self.window)


def quiet_hours_rules() -> QuietHoursRules:
    if not settings.QUIET_HOURS_ENABLED:
        return QuietHoursRules(enabled=False, window=Window(datetime.time(0), datetime.time(0)), countries={})
    row = QuietHours.load()
    countries = {}
    if row.enabled:
        countries = {
            country.country: Window(country.start, country.end)
            for country in QuietHoursCountry.objects.filter(quiet_hours_id=row.pk)
        }
    return QuietHoursRules(enabled=row.enabled, window=Window(row.start, row.end), countries=countries)


def recipient_zones(*, time_zone: str | None, number: str) -> tuple[tuple[str, ...], str]:
    """The recipient's time zones and the number's country (two letters, or "").

    The lead's own zone wins; otherwise the number's zones, and, when the
    number names none, the installation's TIME_ZONE.
    """
    country = ""
    zones: tuple[str, ...] = ()
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None:
        country = phonenumbers.region_code_for_number(parsed) or ""
        if not time_zone:
            zones = tuple(
                zone
                for zone in phone_time_zones.time_zones_for_number(parsed)
                if zone != _UNKNOWN_ZONE and zone in available_time_zones()
            )
    if time_zone and time_zone in available_time_zones():
        zones = (time_zone,)
    return zones or (settings.TIME_ZONE,), country


def opens_at(*, zones: tuple[str, ...], window: Window, at: datetime.datetime) -> datetime.datetime | None:
    """None when the window is open at `at` in every zone; else the first time it is.

    Should the zones' windows never be open at once (zones further apart than
    the window is long), the earliest opening in any of them is taken: the
    SMS still waits for a decent hour somewhere the number may be.
    """
    tzs = [zoneinfo.ZoneInfo(zone) for zone in zones]
    if all(window.is_open(at, tz) for tz in tzs):
        return None
    candidates = sorted(start for tz in tzs for start in window.starts_after(at, tz) if start > at)
    for candidate in candidates:
        if all(window.is_open(candidate, tz) for tz in tzs):
            return candidate
    return candidates[0]


def quiet_hours_closed(
    *,
    lead: Lead | None,
    number: str,
    at: datetime.datetime | None = None,
    rules: QuietHoursRules | None = None,
) -> datetime.datetime | None:
    """None when an SMS to `number` (for `lead`) may go at `at`; else when it may."""
    rules = rules or quiet_hours_rules()
    if not rules.enabled:
        return None
    at = at or timezone.now()
    zones, country = recipient_zones(time_zone=lead.time_zone if lead is not None else None, number=number)
    return opens_at(zones=zones, window=rules.window_for(country), at=at)


def quiet_hours_openings(*, rows: list[tuple], at: datetime.datetime) -> dict[int, datetime.datetime]:
    """For the rows (id, lead id, number) whose window is closed at `at`: when
    it opens (UTC). One query for the settings, one for the countries and one
    for the leads' own zones, whatever the number of rows."""
    rules = quiet_hours_rules()
    if not rules.enabled or not rows:
        return {}
    zones_of = dict(
        Lead.objects.filter(pk__in={row[1] for row in rows}, time_zone__gt="").values_list("pk", "time_zone")
    )
    openings = {}
    # A batch's people share a handful of zones: each reading once per batch.
    known: dict[tuple, datetime.datetime | None] = {}
    for result_id, lead_id, phone in rows:
        zones, country = recipient_zones(time_zone=zones_of.get(lead_id), number=phone)
        window = rules.window_for(country)
        if (zones, window) not in known:
            known[zones, window] = opens_at(zones=zones, window=window, at=at)
        if known[zones, window] is not None:
            openings[result_id] = known[zones, window].astimezone(datetime.UTC)
    return openings
