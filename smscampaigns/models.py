"""The people database: leads, the history of their blocks, their imports,
and the smart lists that pick them."""

import functools
import zoneinfo
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .phones import normalize_phone

# Lets smart list rules compare text case-insensitively with `field__lower__in`.
models.CharField.register_lookup(Lower)


def _number(count: int) -> str:
    return number_format(count, force_grouping=True)


def _counted(message: str, count: int) -> str:
    return message % {"count": _number(count)}


# The two flags that keep people from being texted (R4); every change of
# either is recorded with its source (R10).
FLAGS = ("blocklisted", "marketing_suspended")


@dataclass(frozen=True)
class FlagChangeSource:
    source: str
    user: Any = None
    note: str = ""


_flag_change_source: ContextVar[FlagChangeSource | None] = ContextVar("flag_change_source", default=None)


@contextmanager
def flag_changes_by(source: str, *, user=None, note: str = ""):
    """Record the flag changes made inside the block as coming from `source` (a LeadFlagChange.Source)."""
    token = _flag_change_source.set(FlagChangeSource(source, user, note))
    try:
        yield
    finally:
        _flag_change_source.reset(token)


def _current_flag_change_source() -> FlagChangeSource:
    source = _flag_change_source.get()
    if source is not None:
        return source
    command = settings.RUNNING_COMMAND
    return FlagChangeSource(LeadFlagChange.Source.OTHER, note=f"manage.py {command}" if command else "")


class LeadQuerySet(models.QuerySet):
    def with_phone(self):
        return self.exclude(mobile_phone="")

    def sharing_number_with(self, lead):
        if not lead.mobile_phone:
            return self.none()
        return self.filter(mobile_phone=lead.mobile_phone).exclude(pk=lead.pk)

    def update(self, **kwargs):
        # A bulk update of a flag is recorded like any other change of it (R10).
        flags = [name for name in FLAGS if name in kwargs]
        if not flags:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            candidates = self.none()
            for name in flags:
                value = kwargs[name]
                candidates |= self.exclude(**{name: value}) if isinstance(value, bool) else self.all()
            before = {row[0]: row[1:] for row in candidates.values_list("pk", *FLAGS)}
            count = super().update(**kwargs)
            changes = []
            for chunk in _chunks(list(before), 5000):
                for pk, *after in Lead.objects.filter(pk__in=chunk).values_list("pk", *FLAGS):
                    changes.extend(
                        (pk, name, old, new)
                        for name, old, new in zip(FLAGS, before[pk], after, strict=True)
                        if old != new
                    )
            LeadFlagChange.record(changes)
        return count


def validate_time_zone(value: str) -> None:
    """An IANA time zone name, as the tz database spells it (America/Los_Angeles)."""
    if value and value not in available_time_zones():
        raise ValidationError(
            _("“%(zone)s” is not a time zone; use a name such as America/New_York or Europe/Berlin."),
            params={"zone": value},
        )


@functools.cache
def available_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Lead(models.Model):
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("email address"), blank=True)
    mobile_phone = models.CharField(
        _("mobile phone"),
        max_length=16,
        blank=True,
        db_index=True,
        help_text=_("Stored in E.164 form, e.g. +15551234567."),
    )
    country = models.CharField(_("country"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=100, blank=True)
    lead_source = models.CharField(_("lead source"), max_length=100, blank=True)
    lead_score = models.IntegerField(_("lead score"), default=0)
    # Quiet hours are kept in this zone; blank: the zone of the number.
    # Nullable so that adding it to millions of people is instant on SQLite
    # (no table rebuild).
    time_zone = models.CharField(  # noqa: DJ001
        _("time zone"),
        max_length=64,
        null=True,
        blank=True,
        validators=[validate_time_zone],
        help_text=_(
            "The person's time zone for quiet hours, e.g. America/Los_Angeles; blank: from the number."
        ),
    )
    blocklisted = models.BooleanField(
        _("blocklisted"), default=False, help_text=_("Never texted, never subscribed.")
    )
    marketing_suspended = models.BooleanField(
        _("marketing suspended"), default=False, help_text=_("Never texted, never subscribed.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["pk"]
        constraints = [
            # Re-importing a file updates people by email, so an email names one lead.
            models.UniqueConstraint(
                fields=["email"], condition=~models.Q(email=""), name="lead_email_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(mobile_phone="") | models.Q(mobile_phone__startswith="+"),
                name="lead_mobile_phone_e164",
                violation_error_message=_("The mobile phone must be stored in E.164 form."),
            ),
        ]
        indexes = [
            # The numbers nobody may be texted on (R4): planning reads them for
            # every Send and Subscribe step. A few per cent of the people are
            # blocked, so this small index answers instead of a scan of everyone.
            models.Index(
                fields=["mobile_phone", "blocklisted", "marketing_suspended"],
                condition=models.Q(blocklisted=True) | models.Q(marketing_suspended=True),
                name="lead_blocked_numbers",
            ),
            # The admin's sidebar reads the values of these through their index,
            # and a filtered page walks it in the list's order (by id).
            models.Index(fields=["country", "id"], name="lead_country"),
            models.Index(fields=["lead_source", "id"], name="lead_lead_source"),
        ]
        # Names and emails are searched through indexes made for each database
        # by the migration lead_name_search (smscampaigns/lead_search.py).

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.mobile_phone or _("Lead %(id)s") % {"id": self.pk}

    def save(self, *args, **kwargs):
        # Every path that stores a lead stores its number in E.164 form, so
        # planning can compare numbers with plain equality.
        self.mobile_phone = normalize_phone(self.mobile_phone)
        self.email = self.email.strip().lower()
        update_fields = kwargs.get("update_fields")
        saved_flags = [name for name in FLAGS if update_fields is None or name in update_fields]
        if not saved_flags:
            return super().save(*args, **kwargs)
        with transaction.atomic():
            # The stored values, not the ones this instance was loaded with:
            # someone may have changed them since.
            stored = Lead.objects.filter(pk=self.pk).values(*FLAGS).first() if self.pk else None
            super().save(*args, **kwargs)
            LeadFlagChange.record(
                (self.pk, name, stored[name] if stored else None, getattr(self, name))
                for name in saved_flags
                if (stored[name] if stored else False) != getattr(self, name)
            )

    def clean(self):
        self.email = self.email.strip().lower()
        try:
            self.mobile_phone = normalize_phone(self.mobile_phone)
        except ValidationError as error:
            raise ValidationError({"mobile_phone": error.messages}) from None

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()


class LeadFlagChange(models.Model):
    """One change of a lead's blocklisted or marketing-suspended flag, with its source (R10)."""

    class Flag(models.TextChoices):
        BLOCKLISTED = "blocklisted", _("blocklisted")
        MARKETING_SUSPENDED = "marketing_suspended", _("marketing suspended")

    class Source(models.TextChoices):
        IMPORT = "import", _("CSV import")
        ADMIN_ACTION = "admin_action", _("admin action")
        ADMIN_FORM = "admin_form", _("lead form in the admin")
        OTHER = "other", _("other")

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="flag_changes", verbose_name=_("lead")
    )
    flag = models.CharField(_("flag"), max_length=20, choices=Flag.choices)
    # None: the lead was created with the flag set.
    old_value = models.BooleanField(_("from"), null=True)
    new_value = models.BooleanField(_("to"))
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    lead_import = models.ForeignKey(
        "LeadImport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="flag_changes",
        verbose_name=_("import"),
    )
    line = models.PositiveIntegerField(_("line"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # Who or what, kept as text when the user or the import is deleted:
    # the file's name, the user's name, or the command that ran.
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("blocklist or suspension change")
        verbose_name_plural = _("blocklist and suspension changes")
        ordering = ["-created_at", "-pk"]
        # A person's activity log, newest first, a page at a time.
        indexes = [models.Index(fields=["lead", "created_at", "id"], name="flag_change_lead_time")]

    def __str__(self):
        return f"{self.lead_id} {self.flag}: {self.old_value} → {self.new_value}"

    @classmethod
    def record(cls, changes, *, source: FlagChangeSource | None = None, lead_import=None, when=None) -> None:
        """Record (lead id, flag, old value, new value[, line of the file]) changes
        as coming from `source` (default: the current source)."""
        source = source or _current_flag_change_source()
        user = source.user if source.user is not None and source.user.is_authenticated else None
        note = source.note or (user.get_username() if user else "")
        when = when or timezone.now()
        cls.objects.bulk_create(
            cls(
                lead_id=lead_id,
                flag=flag,
                old_value=old,
                new_value=new,
                source=source.source,
                lead_import=lead_import,
                line=line[0] if line else None,
                user=user,
                note=note,
                created_at=when,
            )
            for lead_id, flag, old, new, *line in changes
        )

    def describe(self) -> str:
        """“no → yes, CSV import “leads.csv”, line 4”, as the lead's history shows it."""
        yes_no = {True: _("yes"), False: _("no"), None: _("new lead")}
        where = self.get_source_display()
        if self.source == self.Source.IMPORT:
            where = _("CSV import “%(file)s”, line %(line)s") % {"file": self.note, "line": self.line}
        elif self.note:
            where = f"{where}, {self.note}"
        return f"{yes_no[self.old_value]} → {yes_no[self.new_value]} ({where})"


class LeadImport(models.Model):
    """A CSV file of leads being imported, or imported: its progress and report."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        READING = "reading", _("reading the file")
        SAVING = "saving", _("saving the leads")
        COMPLETED = "completed", _("completed")
        REFUSED = "refused", _("file refused")
        FAILED = "failed", _("failed")

    ACTIVE = (Status.QUEUED, Status.READING, Status.SAVING)

    file_name = models.CharField(_("file"), max_length=255)
    size = models.BigIntegerField(_("size in bytes"), default=0)
    encoding = models.CharField(_("encoding"), max_length=30, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    # The problems are written in the language of whoever uploaded the file.
    language = models.CharField(_("language"), max_length=10, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Moves with every batch: an active import that stops moving lost its worker.
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    bytes_read = models.BigIntegerField(_("bytes read"), default=0)
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    rows_valid = models.PositiveIntegerField(_("valid rows"), default=0)
    rows_saved = models.PositiveIntegerField(_("rows saved"), default=0)
    leads_created = models.PositiveIntegerField(_("leads created"), default=0)
    leads_updated = models.PositiveIntegerField(_("leads updated"), default=0)
    leads_unchanged = models.PositiveIntegerField(_("leads unchanged"), default=0)
    rows_refused = models.PositiveIntegerField(_("rows refused"), default=0)
    rows_merged = models.PositiveIntegerField(_("rows merged"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("lead import")
        verbose_name_plural = _("lead imports")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return _("Import %(id)s (%(file)s)") % {"id": self.pk, "file": self.file_name}

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def progress_percent(self) -> int:
        """Reading the file is the first half of the bar, saving the leads the second."""
        if self.status in (self.Status.COMPLETED, self.Status.REFUSED):
            return 100
        if self.status == self.Status.SAVING:
            return 50 + (50 * self.rows_saved // self.rows_valid if self.rows_valid else 50)
        if self.size:
            return min(50, 50 * self.bytes_read // self.size)
        return 0

    @property
    def encoding_name(self) -> str:
        from .csvfiles import encoding_name

        return encoding_name(self.encoding) if self.encoding else ""

    def summary(self) -> str:
        """“5,000 rows read as UTF-8: 4,999 leads created, 0 leads updated, …”"""
        if self.status == self.Status.REFUSED:
            return _("The file was refused: %(error)s") % {"error": self.error}
        created = ngettext("%(count)s lead created", "%(count)s leads created", self.leads_created)
        updated = ngettext("%(count)s lead updated", "%(count)s leads updated", self.leads_updated)
        unchanged = ngettext("%(count)s lead unchanged", "%(count)s leads unchanged", self.leads_unchanged)
        refused = ngettext("%(count)s row refused", "%(count)s rows refused", self.rows_refused)
        counts = ", ".join(
            _counted(message, count)
            for message, count in (
                (created, self.leads_created),
                (updated, self.leads_updated),
                (unchanged, self.leads_unchanged),
                (refused, self.rows_refused),
            )
        )
        text = ngettext(
            "%(rows)s row read as %(encoding)s: %(counts)s.",
            "%(rows)s rows read as %(encoding)s: %(counts)s.",
            self.rows_read,
        ) % {"rows": _number(self.rows_read), "encoding": self.encoding_name, "counts": counts}
        if self.rows_merged:
            merged = ngettext(
                "%(count)s row was for the lead of an earlier row; their cells were merged.",
                "%(count)s rows were for the lead of an earlier row; their cells were merged.",
                self.rows_merged,
            )
            text += " " + _counted(merged, self.rows_merged)
        return text

    def flag_summary(self) -> list[str]:
        """How many people this import blocklisted, suspended, or released from either."""
        counts = {
            (row["flag"], row["new_value"]): row["count"]
            for row in self.flag_changes.values("flag", "new_value").annotate(count=models.Count("pk"))
        }
        lines = []
        for (flag, value), count in sorted(counts.items(), key=lambda item: (item[0][0], not item[0][1])):
            if flag == LeadFlagChange.Flag.BLOCKLISTED and value:
                message = ngettext("%(count)s person blocklisted", "%(count)s people blocklisted", count)
            elif flag == LeadFlagChange.Flag.BLOCKLISTED:
                message = ngettext(
                    "%(count)s person removed from the blocklist (an explicit “no”)",
                    "%(count)s people removed from the blocklist (an explicit “no”)",
                    count,
                )
            elif value:
                message = ngettext(
                    "Marketing suspended for %(count)s person",
                    "Marketing suspended for %(count)s people",
                    count,
                )
            else:
                message = ngettext(
                    "Marketing resumed for %(count)s person (an explicit “no”)",
                    "Marketing resumed for %(count)s people (an explicit “no”)",
                    count,
                )
            lines.append(_counted(message, count))
        return lines


class LeadImportProblem(models.Model):
    """A row (or the header) of an import that was not imported as written, and why."""

    lead_import = models.ForeignKey(
        LeadImport,
        on_delete=models.CASCADE,
        related_name="problems",
        verbose_name=_("import"),
        db_index=False,  # lead_import_problem_lines starts with it
    )
    line = models.PositiveIntegerField(_("line"))
    # The column's heading as the file writes it; blank for the whole row.
    column = models.CharField(_("column"), max_length=200, blank=True)
    message = models.TextField(_("problem"))

    class Meta:
        verbose_name = _("import problem")
        verbose_name_plural = _("import problems")
        ordering = ["line", "pk"]
        indexes = [
            # An import's page lists its first problems in line order, whatever their number.
            models.Index(fields=["lead_import", "line", "id"], name="lead_import_problem_lines")
        ]

    def __str__(self):
        if self.column:
            return _("Line %(line)s, %(column)s: %(message)s") % {
                "line": self.line,
                "column": self.column,
                "message": self.message,
            }
        return _("Line %(line)s: %(message)s") % {"line": self.line, "message": self.message}


class LeadImportChunk(models.Model):
    """A piece of an uploaded file, kept in the database until its import is done,
    so that any worker (a thread, or Celery on another machine) can read it."""

    lead_import = models.ForeignKey(LeadImport, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lead_import", "position"], name="lead_import_chunk_position_unique"
            )
        ]

    def __str__(self):
        return f"{self.lead_import_id}:{self.position}"


def empty_definition():
    return {"logic": "all", "rules": []}


class SmartList(models.Model):
    name = models.CharField(_("name"), max_length=200)
    definition = models.JSONField(
        _("rules and logic"),
        default=empty_definition,
        help_text=_(
            'Filters as JSON: {"logic": "all" | "any" | "1 and (2 or not 3)", '
            '"rules": [{"field": "country", "op": "is", "value": "US"}]}'
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("smart list")
        verbose_name_plural = _("smart lists")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from .smartlists import parse_definition

        try:
            parse_definition(self.definition)
        except ValidationError as error:
            raise ValidationError({"definition": error.messages}) from None

    def parsed(self):
        from .smartlists import parse_definition

        return parse_definition(self.definition)

    @property
    def triggers(self):
        """The stored triggers (smartlists/triggers.py), as stored; empty for a batch campaign."""
        triggers = self.definition.get("triggers", []) if isinstance(self.definition, dict) else []
        return triggers if isinstance(triggers, list) else []

    def leads(self):
        """The people this smart list picks, as one query."""
        return Lead.objects.filter(self.parsed().to_q())

    # These two read whatever is stored, even a definition that no longer
    # passes the rules (written before them): pages list it, then show its problems.
    @property
    def rules(self):
        rules = self.definition.get("rules", []) if isinstance(self.definition, dict) else []
        return rules if isinstance(rules, list) else []

    @property
    def logic(self):
        logic = self.definition.get("logic", "all") if isinstance(self.definition, dict) else "all"
        return logic if isinstance(logic, str) else ""


# --- Activities -----------------------------------------------------------------------

# The activity records a person's activity log reads as such (the others are
# shown from their own records: receipts, replies, clicks, subscription
# changes). Comparisons, not IN: SQLite matches a query's bound values against
# a partial index's constants only there.
ACTIVITY_RECORDS = (
    models.Q(kind="person_created")
    | models.Q(kind="data_value_changed")
    | models.Q(kind="campaign_requested")
)


class Activity(models.Model):
    """One thing that happened to a person (subscribed, replied, was created...),
    written once by the place where its source is applied (activities.py).

    `key` names the event it comes from, so that an event delivered again (a
    Vibes callback arrives at least once) makes no second activity. Trigger
    campaigns (marketing_activities) react to new activities.
    """

    class Kind(models.TextChoices):
        SUBSCRIBED_TO_VIBES_LIST = "subscribed_vibes_list", _("Subscribed to Vibes list")
        UNSUBSCRIBED_FROM_VIBES_LIST = "unsubscribed_vibes_list", _("Unsubscribed from Vibes list")
        SMS_DELIVERED = "sms_delivered", _("SMS delivered")
        SMS_BOUNCED = "sms_bounced", _("SMS bounced")
        REPLIED_TO_SMS = "replied_sms", _("Replied to SMS")
        CLICKED_LINK_IN_SMS = "clicked_link_sms", _("Clicked link in SMS")
        PERSON_CREATED = "person_created", _("Person created")
        DATA_VALUE_CHANGED = "data_value_changed", _("Data value changed")
        CAMPAIGN_REQUESTED = "campaign_requested", _("Campaign requested")

    kind = models.CharField(_("activity"), max_length=40, choices=Kind.choices)
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="activities", verbose_name=_("lead")
    )
    occurred_at = models.DateTimeField(_("happened"))
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=20, blank=True)
    key = models.CharField(_("event key"), max_length=200, unique=True)
    # Set once the trigger campaigns have seen it; null while it waits for them.
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            # The dispatcher's queue: the few activities not dispatched yet, oldest first.
            models.Index(
                fields=["id"], condition=models.Q(dispatched_at__isnull=True), name="activity_undispatched"
            ),
            models.Index(fields=["lead", "occurred_at"], name="activity_lead_time"),
            # The admin's list, newest first, by kind or by source: an index each, at millions.
            models.Index(fields=["kind", "id"], name="activity_kind"),
            models.Index(fields=["source", "id"], name="activity_source"),
            # A person's activity log, newest first, a page at a time.
            models.Index(
                fields=["lead", "occurred_at", "id"], condition=ACTIVITY_RECORDS, name="activity_lead_record"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.lead_id})"
