"""Importing leads from a CSV file, so that an import never widens who may be texted (R10).

A file goes through a temporary table in two passes:

1. **Check.** Every row is read cell by cell (import_rows.py). A row with a bad cell is
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

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from itertools import groupby
from typing import BinaryIO

from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .activities import CREATED_BY_IMPORT, lead_changes_record, leads_created_record
from .csvfiles import FileRefused, detect_encoding, open_text, read_records
from .import_rows import IMPORT_COLUMNS, CheckedRow, Problem, check_row, read_header
from .models import FLAGS, FlagChangeSource, Lead, LeadFlagChange, LeadImport, LeadImportProblem

BATCH_SIZE = 2000
STAGING_TABLE = "lead_import_rows"
UNEXPECTED_ERROR = gettext_lazy(
    "The import stopped on an unexpected error. The rows saved so far are kept; starting it again is safe."
)
IMPORT_LOCK = 7_100_001  # PostgreSQL advisory lock taken by each batch that saves leads


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
    "time_zone": None,
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
        inserts, inserted_keys, flag_changes, new_flagged, value_changes = [], [], [], [], []
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
                inserted_keys.append(key)
                new_flagged.extend((key, name, lines[name]) for name in FLAGS if new[name])
                continue
            changed = {name: value for name, value in merged.items() if value != lead[name]}
            if not changed:
                counts["leads_unchanged"] += 1
                continue
            counts["leads_updated"] += 1
            updates[tuple(changed)].append((lead["pk"], changed))
            value_changes.extend((lead["pk"], name, lead[name], value) for name, value in changed.items())
            flag_changes.extend(
                (lead["pk"], name, lead[name], changed[name], lines[name])
                for name in FLAGS
                if name in changed
            )
        self._insert(inserts, now)
        self._update(updates, now)
        if inserts:
            ids, _ambiguous = self._stored(inserted_keys)
            flag_changes.extend((ids[key]["pk"], name, None, True, line) for key, name, line in new_flagged)
            leads_created_record(
                lead_ids=[ids[key]["pk"] for key in inserted_keys], source=CREATED_BY_IMPORT, when=now
            )
        LeadFlagChange.record(flag_changes, source=self.source, lead_import=self.lead_import, when=now)
        # "Data Value Changes": a restarted import changes nothing twice, and its key makes one activity.
        lead_changes_record(
            changes=value_changes, source=CREATED_BY_IMPORT, key=f"import-{self.lead_import.pk}", when=now
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
    with transaction.atomic():
        lead_import.save(update_fields=["status", "error", "finished_at", "updated_at"])
        # The report stays; the people's data in an uploaded file is not kept
        # longer than needed: gone by the time anyone sees the import ended.
        lead_import.chunks.all().delete()
    if progress:
        progress(lead_import)
    return lead_import
