"""Reading a rule's value: whole numbers, yes or no, dates and times, phone numbers, lists.

Each reader takes the value as stored or typed and `where` ("Rule 3"), and
raises a ValidationError that names both when the value is not what the
field needs.
"""

import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from ..phones import normalize_phone
from .limits import NUMBER_RANGE, shown


def as_list(value) -> list[str]:
    """The items of an "in" rule: a list as stored, or text separated by commas as typed."""
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def parse_number(text, where) -> int:
    try:
        number = Decimal(str(text).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():  # "NaN" and "Infinity" are Decimals too
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a number.") % {"where": where, "value": shown(text)}
        )
    # Checked before int(): "1e999999999" is a Decimal whose int() would not fit in memory.
    low, high = NUMBER_RANGE
    if not low <= number <= high:
        raise ValidationError(
            _("%(where)s: “%(value)s” is out of range; use a number from %(low)s to %(high)s.")
            % {"where": where, "value": shown(text), "low": low, "high": high}
        )
    if number != number.to_integral_value():
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a whole number.") % {"where": where, "value": shown(text)}
        )
    return int(number)


TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def parse_boolean(value, where) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValidationError(
        _("%(where)s: “%(value)s” is not true or false.") % {"where": where, "value": shown(value)}
    )


def parse_datetime_value(value, where) -> datetime.datetime:
    text = str(value).strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is not None:
                moment = datetime.datetime.combine(day, datetime.time.min)
        if moment is not None:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            # The database compares in UTC: 0001-01-01 east of UTC has no UTC time.
            moment.astimezone(datetime.UTC)
    except (ValueError, OverflowError):
        # Written like a date, but there is no such day or time ("2026-02-30", "25:99").
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a real date or time; check the month, day, hour and minute.")
            % {"where": where, "value": shown(value)}
        ) from None
    if moment is None:
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM).")
            % {"where": where, "value": shown(value)}
        )
    return moment


def parse_phone(value, where) -> str:
    try:
        return normalize_phone(str(value))
    except ValidationError as error:
        raise ValidationError(f"{where}: {error.messages[0]}") from None
