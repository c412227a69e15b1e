"""Writes to the people database: importing leads from CSV, blocklisting."""

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Lead
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
}
BOOLEAN_COLUMNS = {"blocklisted", "marketing_suspended"}
BATCH_SIZE = 2000


def _key(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch.isalnum())


_ALIASES = {_key(name): name for name in IMPORT_COLUMNS}
_ALIASES.update({alias: name for name, aliases in IMPORT_COLUMNS.items() for alias in aliases})


@dataclass
class ImportProblem:
    line: int
    message: str

    def __str__(self):
        return _("Line %(line)s: %(message)s") % {"line": self.line, "message": self.message}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rows: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def skipped(self):
        return len({p.line for p in self.problems if p.line > 1})

    def summary(self):
        return _(
            "%(rows)s rows read: %(created)s leads created, %(updated)s updated, %(skipped)s rows skipped."
        ) % {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
        }


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "y", "x"):
        return True
    if value in ("0", "false", "no", "n", ""):
        return False
    raise ValidationError(_("“%(value)s” is not yes or no.") % {"value": text})


def _region_for(country: str) -> str | None:
    """A two-letter country code read as the number's region, when it is one."""
    code = country.strip().upper()
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    return None


def _clean_row(values: dict[str, str]) -> tuple[dict, list[str]]:
    """Parse one row's cells into lead fields; return (fields, problems)."""
    cleaned, problems = {}, []
    for name, raw in values.items():
        text = raw.strip()
        try:
            if name == "email":
                if text:
                    validate_email(text)
                cleaned[name] = text.lower()
            elif name == "mobile_phone":
                region = _region_for(values.get("country", ""))
                cleaned[name] = normalize_phone(text, region)
            elif name in BOOLEAN_COLUMNS:
                cleaned[name] = _parse_bool(text)
            elif name == "lead_score":
                cleaned[name] = int(text) if text else 0
            else:
                max_length = Lead._meta.get_field(name).max_length
                if len(text) > max_length:
                    raise ValidationError(_("is longer than %(max)s characters") % {"max": max_length})
                cleaned[name] = text
        except ValidationError as error:
            label = Lead._meta.get_field(name).verbose_name
            problems.append(f"{label}: {' '.join(error.messages)}")
        except ValueError:
            problems.append(
                _("%(field)s: “%(value)s” is not a whole number.")
                % {"field": Lead._meta.get_field(name).verbose_name, "value": text}
            )
    return cleaned, problems


def _sniff_dialect(sample: str):
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0] if sample else "", delimiters=",;\t")
    except csv.Error:
        return csv.excel


def leads_import(
    *,
    file: io.TextIOBase | Iterable[str],
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import leads from a CSV file with a header row.

    Good rows are imported even when others are bad; each bad row is
    reported with its line number and reason. A row whose email matches a
    lead updates that lead (blank cells leave its values alone), so
    importing the same file twice creates nobody twice.
    """
    text = file.read() if hasattr(file, "read") else "".join(file)
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    text = text.lstrip("\ufeff")
    report = ImportReport()
    reader = csv.reader(io.StringIO(text, newline=""), _sniff_dialect(text[:4096]))
    try:
        header = next(reader)
    except StopIteration:
        report.problems.append(ImportProblem(1, _("The file is empty: it needs a header row.")))
        return report
    columns: list[str | None] = []
    for header_cell in header:
        name = _ALIASES.get(_key(header_cell))
        if name is None and header_cell.strip():
            report.problems.append(
                ImportProblem(
                    1,
                    _("unknown column “%(column)s”, its values were not imported. Known columns: %(known)s.")
                    % {"column": header_cell.strip(), "known": ", ".join(IMPORT_COLUMNS)},
                )
            )
        if name in columns:
            report.problems.append(
                ImportProblem(1, _("the column “%(column)s” appears twice.") % {"column": header_cell})
            )
            name = None
        columns.append(name)
    if not any(columns):
        report.problems.append(ImportProblem(1, _("no known column in the header row.")))
        return report

    pending: list[tuple[int, dict]] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        if len(row) > len(columns) and any(cell.strip() for cell in row[len(columns) :]):
            report.problems.append(
                ImportProblem(
                    line,
                    _("%(count)s values, but the header names %(columns)s columns.")
                    % {"count": len(row), "columns": len(columns)},
                )
            )
            continue
        values = {name: cell for name, cell in zip(columns, row) if name}
        cleaned, problems = _clean_row(values)
        if problems:
            report.problems.extend(ImportProblem(line, message) for message in problems)
            continue
        pending.append((line, cleaned))
        if len(pending) >= BATCH_SIZE:
            _save_batch(pending, report)
            if progress:
                progress(len(pending))
            pending = []
    if pending:
        _save_batch(pending, report)
        if progress:
            progress(len(pending))
    report.problems.sort(key=lambda problem: problem.line)
    return report


@transaction.atomic
def _save_batch(rows: list[tuple[int, dict]], report: ImportReport) -> None:
    emails = {fields["email"] for _line, fields in rows if fields.get("email")}
    existing = {lead.email: lead for lead in Lead.objects.filter(email__in=emails)}
    to_create: dict[str, Lead] = {}
    anonymous: list[Lead] = []
    changed: dict[int, Lead] = {}
    now = timezone.now()
    for _line, fields in rows:
        email = fields.get("email", "")
        lead = existing.get(email) or to_create.get(email) if email else None
        if lead is None:
            lead = Lead(**fields)
            if email:
                to_create[email] = lead
            else:
                anonymous.append(lead)
            continue
        for name, value in fields.items():
            # A blank cell leaves the stored value alone on re-import.
            if value != "" or name in BOOLEAN_COLUMNS:
                setattr(lead, name, value)
        if lead.pk:
            lead.updated_at = now
            changed[lead.pk] = lead
    new_leads = list(to_create.values()) + anonymous
    Lead.objects.bulk_create(new_leads, batch_size=500)
    if changed:
        names = sorted({name for _line, fields in rows for name in fields} | {"updated_at"})
        Lead.objects.bulk_update(list(changed.values()), names, batch_size=500)
    report.created += len(new_leads)
    report.updated += len(changed)


def leads_set_flag(*, leads, flag: str, value: bool) -> int:
    """Blocklist / unblocklist or suspend / unsuspend people; returns how many changed."""
    if flag not in ("blocklisted", "marketing_suspended"):
        raise ValueError(f"not a lead flag: {flag}")
    return leads.exclude(**{flag: value}).update(**{flag: value})
