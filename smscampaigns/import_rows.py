"""Reading an import's rows: the header's columns, and each row's cells checked.

A row with a bad cell is refused with its line and column, and nothing of it
is kept; a good row keeps only its non-blank cells, as lead values, under its
lead's key (the email, or the number of a lead without one). imports.py saves
the rows; csvfiles.py reads the file's text and splits it into records.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from .csvfiles import FileRefused, Record
from .models import FLAGS, Lead, available_time_zones
from .phones import normalize_phone

# Header spellings people use, all mapped to a lead field. Matching ignores
# case, spaces, dashes and underscores ("First Name" = "first_name").
IMPORT_COLUMNS = {
    "first_name": ("firstname", "first", "givenname"),
    "last_name": ("lastname", "last", "surname", "familyname"),
    "email": ("emailaddress", "mail"),
    "mobile_phone": ("mobile", "mobilephone", "mobilenumber", "phone", "phonenumber", "mdn"),
    "country": (),
    "city": (),
    "state": ("region", "province"),
    "lead_source": ("source",),
    "lead_score": ("score",),
    "blocklisted": ("blacklisted", "blocked", "blocklist"),
    "marketing_suspended": ("suspended", "marketingsuspended"),
    "time_zone": ("timezone", "tz", "zone", "ianatimezone"),
    "created_at": ("created", "createdat", "createdon", "createddate", "datecreated"),
}
TEXT_COLUMNS = ("first_name", "last_name", "country", "city", "state", "lead_source")

BOOLEAN_WORDS = {
    # English, German, Swedish, Dutch, Italian and French, and the words
    # Excel writes for TRUE and FALSE in each of those languages.
    **dict.fromkeys(
        ("yes", "y", "true", "1", "ja", "wahr", "sant", "waar", "sì", "si", "vero", "oui", "vrai"), True
    ),
    **dict.fromkeys(
        ("no", "n", "false", "0", "nein", "falsch", "nej", "falskt", "nee", "onwaar", "falso", "non", "faux"),
        False,
    ),
}

# The range of an IntegerField on every database Django supports, so the
# same file gives the same report on SQLite and on PostgreSQL.
INTEGER_RANGE = (-(2**31), 2**31 - 1)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_ISO_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?", re.ASCII
)
# Control characters: no name, city or email holds one, and PostgreSQL
# refuses NUL outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
EMAIL_MAX_LENGTH = 254


def _key(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch.isalnum())


_ALIASES = {_key(name): name for name in IMPORT_COLUMNS}
_ALIASES.update({alias: name for name, aliases in IMPORT_COLUMNS.items() for alias in aliases})


class CellError(ValueError):
    pass


def parse_boolean(text: str) -> bool:
    try:
        return BOOLEAN_WORDS[unicodedata.normalize("NFC", text).lower()]
    except KeyError:
        raise CellError(
            _("“%(value)s” is not yes or no (write yes or no, true or false, 1 or 0).")
            % {"value": _shown(text)}
        ) from None


def _shown(text: str) -> str:
    """A cell as a message quotes it: a cell may be thousands of characters long."""
    return text if len(text) <= 40 else text[:39] + "…"


def parse_whole_number(text: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(text):
        raise CellError(_("“%(value)s” is not a whole number.") % {"value": _shown(text)})
    low, high = INTEGER_RANGE
    # Python refuses to convert numbers of thousands of digits; none of 11 fits anyway.
    if len(text.lstrip("+-").lstrip("0")) > 10 or not low <= int(text) <= high:
        raise CellError(
            _("%(value)s is out of range: the number must lie between %(low)s and %(high)s.")
            % {"value": _shown(text), "low": low, "high": high}
        )
    return int(text)


def parse_date_or_time(text: str) -> datetime:
    if not _ISO_DATE.fullmatch(text):
        raise CellError(
            _(
                "“%(value)s” is not a date: write it as YYYY-MM-DD (e.g. 2026-03-05), "
                "optionally with a time (14:30)."
            )
            % {"value": _shown(text)}
        )
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            value = datetime(day.year, day.month, day.day)
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        value.astimezone(UTC)  # a date at the very edge of the calendar may not convert
    except (ValueError, OverflowError):
        raise CellError(_("“%(value)s” is not a date that exists.") % {"value": text}) from None
    return value


def _region_for(country: str) -> str | None:
    """A two-letter country code read as the number's region, when it is one."""
    code = country.strip().upper()
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    return None


# A number as written ("+1 (555) 123-4567 ext. 89") is longer than its E.164 form.
MAX_LENGTHS = {name: Lead._meta.get_field(name).max_length for name in TEXT_COLUMNS} | {
    "email": EMAIL_MAX_LENGTH,
    "mobile_phone": 50,
}


def _parse_text(text: str, name: str) -> str:
    max_length = MAX_LENGTHS[name]
    if len(text) > max_length:
        raise CellError(_("is longer than %(max)s characters.") % {"max": max_length})
    if _CONTROL.search(text):
        raise CellError(_("holds a control character, which no lead field can hold."))
    return text


def parse_time_zone(text: str) -> str:
    """An IANA time zone name, in any case ("america/new_york" is America/New_York)."""
    zone = _time_zones().get(text.strip().lower())
    if zone is None:
        raise CellError(
            _("“%(zone)s” is not a time zone; use a name such as America/New_York or Europe/Berlin.")
            % {"zone": _shown(text)}
        )
    return zone


@functools.cache
def _time_zones() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_time_zones()}


def _parse_cell(name: str, text: str, country: str) -> object:
    if name in FLAGS:
        return parse_boolean(text)
    if name == "time_zone":
        return parse_time_zone(text)
    if name == "lead_score":
        return parse_whole_number(text)
    if name == "created_at":
        return parse_date_or_time(text).isoformat()
    text = _parse_text(text, name)
    if name == "email":
        try:
            validate_email(text)
        except ValidationError:
            raise CellError(_("“%(value)s” is not an email address.") % {"value": _shown(text)}) from None
        return text.lower()
    if name == "mobile_phone":
        try:
            return normalize_phone(text, _region_for(country))
        except ValidationError as error:
            raise CellError(" ".join(error.messages)) from None
    return text


@dataclass
class Column:
    index: int
    name: str
    heading: str


@dataclass
class Problem:
    line: int
    column: str
    message: str


@dataclass
class CheckedRow:
    key: str
    line: int
    values: dict


def check_row(record: Record, columns: list[Column], width: int) -> CheckedRow | list[Problem]:
    """The row's non-blank cells as lead values under the lead's key, or the row's problems."""
    if record.error:
        return [
            Problem(
                record.line, "", _("the row cannot be read as CSV (%(error)s).") % {"error": record.error}
            )
        ]
    if record.last_line != record.line:
        return [
            Problem(
                record.line,
                "",
                _("a quoted cell runs from line %(first)s to line %(last)s: is a closing quote missing?")
                % {"first": record.line, "last": record.last_line},
            )
        ]
    cells = record.cells
    if len(cells) > width and any(cell.strip() for cell in cells[width:]):
        return [
            Problem(
                record.line,
                "",
                _("%(count)s values, but the header names %(columns)s columns.")
                % {"count": len(cells), "columns": width},
            )
        ]
    texts = {column.name: cells[column.index].strip() for column in columns if column.index < len(cells)}
    values, problems = {}, []
    for column in columns:
        text = texts.get(column.name, "")
        if not text:
            continue  # a blank cell never changes a stored value
        try:
            values[column.name] = _parse_cell(column.name, text, texts.get("country", ""))
        except CellError as error:
            problems.append(Problem(record.line, column.heading, str(error)))
    if problems:
        return problems
    if values.get("email"):
        key = "e:" + values["email"]
    elif values.get("mobile_phone"):
        key = "p:" + values["mobile_phone"]
    else:
        return [
            Problem(
                record.line,
                "",
                _("neither an email nor a mobile phone: there is no way to tell which lead this is."),
            )
        ]
    return CheckedRow(key, record.line, values)


@dataclass
class Header:
    columns: list[Column] = field(default_factory=list)
    width: int = 0
    problems: list[Problem] = field(default_factory=list)


def read_header(record: Record) -> Header:
    """The known columns of the header row; FileRefused when no row could be matched to a lead."""
    if record.error:
        raise FileRefused(_("The header row cannot be read as CSV (%(error)s).") % {"error": record.error})
    header = Header(width=len(record.cells))
    seen = set()
    for index, heading in enumerate(record.cells):
        heading = heading.strip()
        name = _ALIASES.get(_key(heading))
        if name is None:
            if heading:
                header.problems.append(
                    Problem(
                        record.line,
                        heading,
                        _("unknown column, its values were not imported. Known columns: %(known)s.")
                        % {"known": ", ".join(IMPORT_COLUMNS)},
                    )
                )
            continue
        if name in seen:
            header.problems.append(
                Problem(record.line, heading, _("the column appears twice; only the first one was imported."))
            )
            continue
        seen.add(name)
        header.columns.append(Column(index, name, heading))
    if not seen:
        raise FileRefused(
            _("The header row names no known column. Known columns: %(known)s.")
            % {"known": ", ".join(IMPORT_COLUMNS)}
        )
    if not seen & {"email", "mobile_phone"}:
        raise FileRefused(
            _(
                "The header row names neither an email nor a mobile phone column: "
                "no row could be matched to a lead."
            )
        )
    return header
