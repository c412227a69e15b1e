"""Activity filters: the people for whom a record of something they did (or
that happened to them) exists, as of a date-of-activity constraint.

"Was Sent SMS", "Subscribed to Vibes List" and the others are each one
EXISTS subquery on their records, correlated by lead: one condition of the
smart list's single query. Each has a "not" form, a field of its own ("Was
Not Sent SMS") that picks everyone else. The app that owns the records
defines the filter (`ActivityField.activities`); this module reads what they
share, the date constraint:

    "when": "any time" | "in past" | "between" | "before" | "after"
    "days": N                   with "in past" (1 to MAX_PAST_DAYS)
    "date": "2026-03-01"        with "before", "after" and "between" (the first day)
    "end_date": "2026-03-31"    with "between" (the last day)

A date without a time means that whole day: "after 2026-03-01" starts on
the 2nd, "between 2026-03-01 and 2026-03-31" holds both days.
"""

import datetime
from dataclasses import dataclass
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db.models import Exists, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .fields import RulePart, SmartListField
from .limits import MAX_PAST_DAYS, shown
from .values import parse_datetime_value, parse_number

ANY_TIME = "any time"
IN_PAST = "in past"
BETWEEN = "between"
BEFORE = "before"
AFTER = "after"

WHEN = RulePart(
    key="when",
    label=gettext_lazy("Rule %(number)s: when"),
    choices=(
        (ANY_TIME, gettext_lazy("any time")),
        (IN_PAST, gettext_lazy("in past days")),
        (BETWEEN, gettext_lazy("between")),
        (BEFORE, gettext_lazy("before")),
        (AFTER, gettext_lazy("after")),
    ),
    default=ANY_TIME,
    redraws=True,
)
DAYS = RulePart(
    key="days",
    label=gettext_lazy("Rule %(number)s: days"),
    input_type="number",
    placeholder=gettext_lazy("days"),
    shown_if=("when", (IN_PAST,)),
)
DATE = RulePart(
    key="date",
    label=gettext_lazy("Rule %(number)s: date"),
    placeholder=gettext_lazy("YYYY-MM-DD"),
    shown_if=("when", (BETWEEN, BEFORE, AFTER)),
)
END_DATE = RulePart(
    key="end_date",
    label=gettext_lazy("Rule %(number)s: last day"),
    placeholder=gettext_lazy("YYYY-MM-DD"),
    shown_if=("when", (BETWEEN,)),
)
DATE_PARTS = (WHEN, DAYS, DATE, END_DATE)
WHENS = [value for value, _label in WHEN.choices]


@dataclass(frozen=True)
class ActivityTime:
    """When the activity happened, as a rule asks: "in past N days" is counted
    back from the moment the condition is built, so a smart list kept for
    months still means the last N days."""

    days: int | None = None
    bounds: tuple = ()  # (lookup, moment) pairs: ("gte", …), ("lt", …)

    def q(self, column: str) -> Q:
        condition = Q()
        if self.days is not None:
            condition &= Q(**{f"{column}__gte": timezone.now() - datetime.timedelta(days=self.days)})
        for lookup, moment in self.bounds:
            condition &= Q(**{f"{column}__{lookup}": moment})
        return condition


def _moment(raw: dict, key: str, where: str, *, missing: str):
    """(the moment, whether it was a day without a time)."""
    value = raw.get(key)
    if value is None or not str(value).strip():
        raise ValidationError(missing % {"where": where})
    moment = parse_datetime_value(value, where)
    return moment, parse_date(str(value).strip()) is not None


def _day_after(moment, where: str, value):
    try:
        return moment + datetime.timedelta(days=1)
    except OverflowError:
        raise ValidationError(
            _("%(where)s: “%(value)s” is the last day there is; choose an earlier day.")
            % {"where": where, "value": shown(value)}
        ) from None


def read_activity_time(raw: dict, where: str) -> ActivityTime:
    """The rule's date-of-activity constraint, or a ValidationError naming `where`."""
    when = raw.get("when") or ANY_TIME
    if when not in WHENS:
        raise ValidationError(
            _("%(where)s: “%(when)s” is not a time constraint; use one of %(whens)s.")
            % {"where": where, "when": shown(when), "whens": ", ".join(f"“{w}”" for w in WHENS)}
        )
    if when == ANY_TIME:
        return ActivityTime()
    if when == IN_PAST:
        days = raw.get("days")
        if days is None or not str(days).strip():
            raise ValidationError(_("%(where)s: enter the number of days.") % {"where": where})
        number = parse_number(days, where)
        if not 1 <= number <= MAX_PAST_DAYS:
            raise ValidationError(
                _("%(where)s: “%(days)s” days is out of range; use a number of days from 1 to %(max)s.")
                % {"where": where, "days": shown(days), "max": MAX_PAST_DAYS}
            )
        return ActivityTime(days=number)
    start, whole_day = _moment(raw, "date", where, missing=_("%(where)s: enter the date."))
    if when == BEFORE:
        return ActivityTime(bounds=(("lt", start),))
    if when == AFTER:
        if whole_day:
            return ActivityTime(bounds=(("gte", _day_after(start, where, raw["date"])),))
        return ActivityTime(bounds=(("gt", start),))
    end, end_whole_day = _moment(raw, "end_date", where, missing=_("%(where)s: enter the last day."))
    if end < start:
        raise ValidationError(
            _("%(where)s: the last day, %(end)s, is before the first, %(start)s.")
            % {"where": where, "end": shown(raw["end_date"]), "start": shown(raw["date"])}
        )
    if end_whole_day:
        return ActivityTime(bounds=(("gte", start), ("lt", _day_after(end, where, raw["end_date"]))))
    return ActivityTime(bounds=(("gte", start), ("lte", end)))


@dataclass(frozen=True)
class ActivityField(SmartListField):
    """A filter on activity records. A subclass says which records (`activities`,
    correlated to the lead by `OuterRef("pk")`) and the column of their time;
    `negated` makes the "not" form of the same filter."""

    negated: bool = False
    parts: ClassVar[tuple] = DATE_PARTS
    time_column: ClassVar[str] = ""

    def clean(self, raw, where):
        return {"time": read_activity_time(raw, where), **self.clean_constraints(raw, where)}

    def clean_constraints(self, raw: dict, where: str) -> dict:
        """The rule's other constraints (its SMS message, its Vibes list…), read and checked."""
        return {}

    def activities(self, value: dict) -> QuerySet:
        raise NotImplementedError

    def to_q(self, rule) -> Q:
        records = self.activities(rule.value).filter(rule.value["time"].q(self.time_column))
        found = Q(Exists(records))
        return ~found if self.negated else found
