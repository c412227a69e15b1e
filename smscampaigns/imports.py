"""Importing leads from a CSV file, so that an import never widens who may be texted (R10).

A file goes through a temporary table in two passes:

1. **Check.** Every row is read cell by cell. A row with a bad cell is
   refused with its line and column, and nothing of it is kept; a good row
   goes into the table under its lead's key (the email, or the number of a
   lead without one) with only its non-blank cells.
2. **Save.** The table is read back in key order, so all the rows for one
   lead come together wherever they are in the file. They are merged in line
   order (a later non-blank cell wins), compared with the stored lead, and
   the lead is written once, if anything changed. A blank cell never changes
   a stored value; a block is lifted only by an explicit "no", and every
   change of a flag is recorded with the file and line it came from.

Either pass works a batch of rows at a time and commits it, so memory stays
flat whatever the file's size and the import's progress shows as it goes.
"""

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import BinaryIO

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .csvfiles import FileRefused, Record, detect_encoding, open_text, read_records
from .models import FLAGS, FlagChangeSource, Lead, LeadFlagChange, LeadImport, LeadImportProblem
from .phones import normalize_phone

BATCH_SIZE = 2000

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
STAGING_TABLE = "lead_import_rows"
UNEXPECTED_ERROR = gettext_lazy(
    "The import stopped on an unexpected error. The rows saved so far are kept; starting it again is safe."
)
IMPORT_LOCK = 7_100_001  # PostgreSQL advisory lock taken by each batch that saves leads


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


def _parse_cell(name: str, text: str, country: str) -> object:
    if name in FLAGS:
        return parse_boolean(text)
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


# --- The import ------------------------------------------------------------

# The stored fields an import writes; created_at last (it is adapted for the database).
LEAD_FIELDS = tuple(name for name in IMPORT_COLUMNS if name != "created_at") + ("created_at",)
_DEFAULTS = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "mobile_phone": "",
    "country": "",
    "city": "",
    "state": "",
    "lead_source": "",
    "lead_score": 0,
    "blocklisted": False,
    "marketing_suspended": False,
}


def _table(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns_sql(names) -> str:
    return ", ".join(_table(Lead._meta.get_field(name).column) for name in names)


class _Import:
    """One run over one file; `lead_import` holds its progress and counts."""

    def __init__(self, lead_import: LeadImport, progress: Callable[[LeadImport], None] | None):
        self.lead_import = lead_import
        self.progress = progress
        self.source = FlagChangeSource(
            LeadFlagChange.Source.IMPORT, user=lead_import.created_by, note=lead_import.file_name
        )

    # --- bookkeeping

    def _save_progress(self, problems: list[Problem], **changes) -> None:
        LeadImportProblem.objects.bulk_create(
            LeadImportProblem(
                lead_import=self.lead_import, line=p.line, column=p.column[:200], message=p.message
            )
            for p in problems
        )
        fields = {
            name: getattr(self.lead_import, name)
            for name in (
                "bytes_read", "rows_read", "rows_valid", "rows_saved", "leads_created", "leads_updated",
                "leads_unchanged", "rows_refused", "rows_merged", "status",
            )
        }  # fmt: skip
        fields.update(changes)
        for name, value in changes.items():
            setattr(self.lead_import, name, value)
        LeadImport.objects.filter(pk=self.lead_import.pk).update(**fields, updated_at=timezone.now())
        if self.progress:
            self.progress(self.lead_import)

    # --- pass 1: check every row

    def check(self, raw: BinaryIO, encoding: str) -> None:
        text, counter = open_text(raw, encoding)
        records = read_records(text)
        try:
            header = read_header(next(records))
        except StopIteration:
            raise FileRefused(_("The file is empty: it needs a header row.")) from None
        with transaction.atomic():
            self._save_progress(header.problems)
        batch: list[CheckedRow] = []
        problems: list[Problem] = []
        imported = self.lead_import
        for record in records:
            if not any(cell.strip() for cell in record.cells) and not record.error:
                continue
            imported.rows_read += 1
            checked = check_row(record, header.columns, header.width)
            if isinstance(checked, CheckedRow):
                batch.append(checked)
            else:
                imported.rows_refused += 1
                problems.extend(checked)
            if len(batch) + len(problems) >= BATCH_SIZE:
                self._stage(batch, problems, counter.count)
                batch, problems = [], []
        self._stage(batch, problems, counter.count)

    def _stage(self, batch: list[CheckedRow], problems: list[Problem], bytes_read: int) -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {_table(STAGING_TABLE)} (lead_key, line, {_staged_columns()}) "
                    f"VALUES ({', '.join(['%s'] * (2 + len(LEAD_FIELDS)))})",
                    [(row.key, row.line, *(row.values.get(name) for name in LEAD_FIELDS)) for row in batch],
                )
            self.lead_import.rows_valid += len(batch)
            self._save_progress(problems, bytes_read=bytes_read)

    # --- pass 2: save the leads, all the rows of one lead together

    def save(self) -> None:
        self._save_progress([], status=LeadImport.Status.SAVING)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX {_table(STAGING_TABLE + '_key')} ON {_table(STAGING_TABLE)} (lead_key, line)"
            )
        after: tuple[str, int] | None = None
        pending: list[tuple] = []
        while True:
            page = self._page(after)
            if page:
                after = page[-1][:2]
            pending.extend(page)
            if len(page) == BATCH_SIZE:
                # The last lead's rows may go on in the next page: keep them for it.
                last_key = pending[-1][0]
                ready = [row for row in pending if row[0] != last_key]
                if not ready:
                    continue
                pending = pending[len(ready) :]
            else:
                ready, pending = pending, []
            if ready:
                self._save_leads(ready)
            if not page or len(page) < BATCH_SIZE:
                break

    def _page(self, after) -> list[tuple]:
        query = f"SELECT lead_key, line, {_staged_columns()} FROM {_table(STAGING_TABLE)}"
        params: list = []
        if after is not None:
            # Row values compare like tuples and use the index (SQLite 3.15+, PostgreSQL).
            query += " WHERE (lead_key, line) > (%s, %s)"
            params = list(after)
        with connection.cursor() as cursor:
            cursor.execute(query + " ORDER BY lead_key, line LIMIT %s", [*params, BATCH_SIZE])
            return cursor.fetchall()

    def _save_leads(self, rows: list[tuple]) -> None:
        groups = [
            (key, [(row[1], _staged_values(row)) for row in group])
            for key, group in groupby(rows, key=lambda row: row[0])
        ]
        for attempt in range(3):
            try:
                with transaction.atomic():
                    counts, problems = self._write(groups)
                    for name, value in counts.items():
                        setattr(self.lead_import, name, getattr(self.lead_import, name) + value)
                    self._save_progress(problems)
                return
            except IntegrityError:
                # Someone else created one of these leads meanwhile; look again.
                self.lead_import.refresh_from_db()
                if attempt == 2:
                    raise

    def _stored(self, keys: list[str]) -> tuple[dict[str, dict], set[str]]:
        """The stored leads of these keys, and the keys that name several leads without an email."""
        emails = [key[2:] for key in keys if key.startswith("e:")]
        phones = [key[2:] for key in keys if key.startswith("p:")]
        names = ("pk", *LEAD_FIELDS)
        stored: dict[str, dict] = {}
        ambiguous: set[str] = set()
        if emails:
            for row in Lead.objects.filter(email__in=emails).select_for_update().values(*names):
                stored["e:" + row["email"]] = row
        if phones:
            for row in (
                Lead.objects.filter(email="", mobile_phone__in=phones).select_for_update().values(*names)
            ):
                key = "p:" + row["mobile_phone"]
                if key in stored:
                    ambiguous.add(key)
                stored[key] = row
        return stored, ambiguous

    def _write(self, groups: list[tuple[str, list[tuple[int, dict]]]]) -> tuple[dict, list[Problem]]:
        if connection.vendor == "postgresql":
            # Imports save one batch at a time, so two imports never both
            # create the lead of one number (SQLite writes one at a time anyway).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK])
        stored, ambiguous = self._stored([key for key, _rows in groups])
        counts = defaultdict(int)
        problems: list[Problem] = []
        now = timezone.now()
        inserts, flag_changes, new_flagged = [], [], []
        updates: dict[tuple, list] = defaultdict(list)  # by the columns that change
        for key, rows in groups:
            counts["rows_saved"] += len(rows)
            if key in ambiguous:
                counts["rows_refused"] += len(rows)
                problems.extend(
                    Problem(
                        line,
                        "",
                        _(
                            "several leads without an email have the number %(number)s: "
                            "add the email to say which one this row is for."
                        )
                        % {"number": key[2:]},
                    )
                    for line, _values in rows
                )
                continue
            counts["rows_merged"] += len(rows) - 1
            merged: dict = {}
            lines: dict = {}
            for line, values in rows:
                merged.update(values)
                lines.update(dict.fromkeys(values, line))
            if "created_at" in merged:
                merged["created_at"] = datetime.fromisoformat(merged["created_at"])
            lead = stored.get(key)
            if lead is None:
                counts["leads_created"] += 1
                new = {**_DEFAULTS, "created_at": now, **merged}
                inserts.append(new)
                new_flagged.extend((key, name, lines[name]) for name in FLAGS if new[name])
                continue
            changed = {name: value for name, value in merged.items() if value != lead[name]}
            if not changed:
                counts["leads_unchanged"] += 1
                continue
            counts["leads_updated"] += 1
            updates[tuple(changed)].append((lead["pk"], changed))
            flag_changes.extend(
                (lead["pk"], name, lead[name], changed[name], lines[name])
                for name in FLAGS
                if name in changed
            )
        self._insert(inserts, now)
        self._update(updates, now)
        if new_flagged:
            ids, _ambiguous = self._stored(list({key for key, _name, _line in new_flagged}))
            flag_changes.extend((ids[key]["pk"], name, None, True, line) for key, name, line in new_flagged)
        LeadFlagChange.objects.bulk_create(
            LeadFlagChange(
                lead_id=lead_id,
                flag=name,
                old_value=old,
                new_value=new,
                source=self.source.source,
                lead_import=self.lead_import,
                line=line,
                user=self.source.user,
                note=self.source.note,
                created_at=now,
            )
            for lead_id, name, old, new, line in flag_changes
        )
        return counts, problems

    # Plain executemany: the ORM's bulk_create and bulk_update build one
    # large statement per batch in Python, several times slower for 100,000 rows.
    def _insert(self, leads: list[dict], now) -> None:
        if not leads:
            return
        names = (*LEAD_FIELDS, "updated_at")
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_table(Lead._meta.db_table)} ({_columns_sql(names)}) "
                f"VALUES ({', '.join(['%s'] * len(names))})",
                [
                    [*(lead[name] for name in LEAD_FIELDS[:-1]), *_moments(lead["created_at"], now)]
                    for lead in leads
                ],
            )

    def _update(self, updates: dict[tuple, list], now) -> None:
        # Only the columns that change: setting an indexed column, even to
        # its own value, rewrites its index entries.
        adapt = connection.ops.adapt_datetimefield_value
        updated_at = adapt(now)
        with connection.cursor() as cursor:
            for names, leads in updates.items():
                assignments = ", ".join(f"{_table(Lead._meta.get_field(name).column)} = %s" for name in names)
                cursor.executemany(
                    f"UPDATE {_table(Lead._meta.db_table)} SET {assignments}, "
                    f"{_table(Lead._meta.get_field('updated_at').column)} = %s WHERE id = %s",
                    [
                        [
                            *(
                                adapt(changed[name]) if name == "created_at" else changed[name]
                                for name in names
                            ),
                            updated_at,
                            pk,
                        ]
                        for pk, changed in leads
                    ],
                )


def _moments(created_at: datetime, now: datetime) -> tuple:
    """created_at and updated_at as the database takes them (most new leads are created now)."""
    adapt = connection.ops.adapt_datetimefield_value
    updated_at = adapt(now)
    return (updated_at if created_at is now else adapt(created_at)), updated_at


# The staging table holds a row's non-blank cells, parsed; NULL is a blank
# cell. Dates are kept as ISO text.
STAGING_TYPES = {"lead_score": "INTEGER", "blocklisted": "BOOLEAN", "marketing_suspended": "BOOLEAN"}


def _staged_values(row: tuple) -> dict:
    """A staged row's non-blank cells (a NULL is a blank cell; SQLite hands booleans back as 0 and 1)."""
    return {
        name: (bool(value) if name in FLAGS else value)
        for name, value in zip(LEAD_FIELDS, row[2:], strict=True)
        if value is not None
    }


def _staged_columns() -> str:
    return ", ".join(_table(name) for name in LEAD_FIELDS)


def _create_staging_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_table(STAGING_TABLE)}")
        columns = ", ".join(f"{_table(name)} {STAGING_TYPES.get(name, 'TEXT')}" for name in LEAD_FIELDS)
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_table(STAGING_TABLE)} "
            f"(lead_key VARCHAR(300) NOT NULL, line INTEGER NOT NULL, {columns})"
        )


def _drop_staging_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_table(STAGING_TABLE)}")


def lead_import_fail(lead_import: LeadImport) -> None:
    """Record that the import stopped on an error nobody expected; the details belong in the log."""
    now = timezone.now()
    LeadImport.objects.filter(pk=lead_import.pk).update(
        status=LeadImport.Status.FAILED, error=str(UNEXPECTED_ERROR), finished_at=now, updated_at=now
    )
    lead_import.refresh_from_db()


def lead_import_execute(
    *, lead_import: LeadImport, file: BinaryIO, progress: Callable[[LeadImport], None] | None = None
) -> LeadImport:
    """Import `file` (binary, seekable) in this process, recording progress and report on `lead_import`.

    Starting again from the beginning is always safe: a row that was saved
    before changes nothing the second time.
    """
    LeadImportProblem.objects.filter(lead_import=lead_import).delete()
    for name in (
        "bytes_read", "rows_read", "rows_valid", "rows_saved", "leads_created", "leads_updated",
        "leads_unchanged", "rows_refused", "rows_merged",
    ):  # fmt: skip
        setattr(lead_import, name, 0)
    lead_import.status = LeadImport.Status.READING
    lead_import.started_at = timezone.now()
    lead_import.finished_at = None
    lead_import.error = ""
    lead_import.save()
    work = _Import(lead_import, progress)
    with translation.override(lead_import.language or None):
        try:
            encoding = detect_encoding(file)
            lead_import.encoding = encoding
            lead_import.save(update_fields=["encoding", "updated_at"])
            _create_staging_table()
            try:
                work.check(file, encoding)
                work.save()
            finally:
                _drop_staging_table()
        except FileRefused as refusal:
            lead_import.status = LeadImport.Status.REFUSED
            lead_import.error = str(refusal)
        except Exception:
            lead_import_fail(lead_import)
            raise
        else:
            lead_import.status = LeadImport.Status.COMPLETED
    lead_import.finished_at = timezone.now()
    lead_import.save(update_fields=["status", "error", "finished_at", "updated_at"])
    if progress:
        progress(lead_import)
    return lead_import
