"""Marketing Activities: the tree, SMS messages, smart campaigns and their flows, runs."""

import calendar
import datetime

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from smscampaigns.models import Activity, Lead, SmartList
from vibes.models import AcquisitionCampaign, InboundMessage, VibesList

from . import sms_text
from .result_details import detail_display

# --- The tree -------------------------------------------------------------------


class Folder(models.Model):
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent folder"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("folder")
        verbose_name_plural = _("folders")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"],
                name="folder_name_unique_in_parent",
                violation_error_message=_("This folder already holds a folder of that name."),
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(parent__isnull=True),
                name="folder_name_unique_at_top",
                violation_error_message=_("There is already a top-level folder of that name."),
            ),
        ]

    def __str__(self):
        return self.name

    def ancestors(self):
        """This folder's parents, outermost first."""
        chain = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    def clean(self):
        node = self.parent
        while node is not None:
            if node.pk == self.pk and self.pk is not None:
                raise ValidationError(
                    {"parent": _("A folder cannot be moved into itself or one of its subfolders.")}
                )
            node = node.parent


class Program(models.Model):
    name = models.CharField(_("name"), max_length=200)
    folder = models.ForeignKey(
        Folder, on_delete=models.PROTECT, related_name="programs", verbose_name=_("folder")
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["folder", "name"],
                name="program_name_unique_in_folder",
                violation_error_message=_("This folder already holds a program of that name."),
            )
        ]

    def __str__(self):
        return self.name


class SmsMessage(models.Model):
    name = models.CharField(_("name"), max_length=200)
    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="sms_messages", verbose_name=_("program")
    )
    text = models.TextField(
        _("text"),
        max_length=sms_text.MAX_LENGTH,
        validators=[sms_text.validate_text],
        help_text=_('Tokens: {{lead.first_name}} or {{lead.first_name|default:"there"}}.'),
    )
    dont_track_links = models.BooleanField(
        _("Don't track links"),
        default=False,
        help_text=_(
            "Web addresses in the text go out as they are typed. Otherwise each person gets a short "
            "link of this installation that records the click and leads to the address."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "name"],
                name="sms_message_name_unique_in_program",
                violation_error_message=_("This program already holds an SMS message of that name."),
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        # The field's own check knows no program: the names of {{my.…}} tokens are checked here.
        if self.program_id is None or not sms_text.program_tokens_used(self.text or ""):
            return
        tokens = set(self.program.tokens.values_list("name", flat=True))
        # Only these: the field's own check has reported every other problem.
        problems = sms_text.program_token_problems(
            self.text, program_tokens=tokens, program_name=self.program.name
        )
        if problems:
            raise ValidationError({"text": problems})


# --- Smart campaigns and their flow ----------------------------------------------


def _same_minute(a, b) -> bool:
    # The Schedule tab shows and posts times to the minute.
    if a is None or b is None:
        return a is b
    return a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)


class SmartCampaign(models.Model):
    class QualificationRule(models.TextChoices):
        ONCE = "once", _("Each person can run through the flow once")
        EVERY_TIME = "every_time", _("Each person can run through the flow every time")
        # Issue 17: beside "once" and "every time", as Marketo offers it.
        ONCE_EVERY = "once_every", _("Each person can run through the flow once every")

    class PeriodUnit(models.TextChoices):
        DAYS = "days", _("days")
        WEEKS = "weeks", _("weeks")
        MONTHS = "months", _("months")

    class Schedule(models.TextChoices):
        NONE = "none", _("Not scheduled")
        ONCE = "once", _("Run once")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")
        MONTHLY = "monthly", _("Every month")

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="campaigns", verbose_name=_("program")
    )
    smart_list = models.OneToOneField(
        SmartList,
        on_delete=models.PROTECT,
        related_name="campaign",
        verbose_name=_("smart list"),
        blank=True,
    )
    qualification_rule = models.CharField(
        _("qualification rule"),
        max_length=12,
        choices=QualificationRule.choices,
        default=QualificationRule.ONCE,
    )
    qualification_period = models.PositiveIntegerField(
        _("qualification period"),
        null=True,
        blank=True,
        help_text=_("With “once every”: how many days, weeks or months."),
    )
    qualification_period_unit = models.CharField(
        _("qualification period unit"), max_length=6, choices=PeriodUnit.choices, blank=True
    )
    # Smart campaign limits (issue 17): both optional, both about the people
    # who qualify (the smart list, less those the qualification rule skips).
    person_limit_refuse_above = models.PositiveIntegerField(
        _("refuse to run when more than this many people qualify"), null=True, blank=True
    )
    person_limit_per_run = models.PositiveIntegerField(
        _("reach at most this many people per run"), null=True, blank=True
    )
    is_active = models.BooleanField(
        _("active"), default=False, help_text=_("Only active campaigns run on their schedule.")
    )
    schedule = models.CharField(_("schedule"), max_length=8, choices=Schedule.choices, default=Schedule.NONE)
    run_at = models.DateTimeField(_("run at"), null=True, blank=True)
    run_time = models.TimeField(_("time of day"), null=True, blank=True)
    run_weekday = models.PositiveSmallIntegerField(
        _("weekday"),
        null=True,
        blank=True,
        choices=[
            (0, _("Monday")),
            (1, _("Tuesday")),
            (2, _("Wednesday")),
            (3, _("Thursday")),
            (4, _("Friday")),
            (5, _("Saturday")),
            (6, _("Sunday")),
        ],
    )
    run_weekdays_only = models.BooleanField(
        _("weekdays only"),
        default=False,
        help_text=_("Every day but Saturday and Sunday, in the installation's time zone."),
    )
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, db_index=True)
    # Order updates and the like: texted whatever the communication limits,
    # and never counted towards them (runner/limits.py).
    operational = models.BooleanField(
        _("operational"),
        default=False,
        help_text=_(
            "Operational messages (order updates, appointment reminders) are exempt from the "
            "communication limits and do not count towards them."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("smart campaign")
        verbose_name_plural = _("smart campaigns")
        ordering = ["name"]
        # Running texts people: a permission of its own, apart from changing
        # the campaign. Stored in the database, so not translated here.
        permissions = [("run_smartcampaign", "Can run smart campaign")]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "name"],
                name="campaign_name_unique_in_program",
                violation_error_message=_("This program already holds a campaign of that name."),
            )
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if self.smart_list_id is None:
            self.smart_list = SmartList.objects.create(name=self.name)
        super().save(*args, **kwargs)

    def clean(self):
        errors = {}
        if self.schedule == self.Schedule.ONCE and not self.run_at:
            errors["run_at"] = _("Choose when the campaign runs.")
        if self.schedule == self.Schedule.MONTHLY and not self.run_at:
            errors["run_at"] = _("Choose the first run: later runs are on the same day of each month.")
        errors.update(self.qualification_problems())
        errors.update(self.person_limit_problems())
        if self.schedule in (self.Schedule.DAILY, self.Schedule.WEEKLY) and not self.run_time:
            errors["run_time"] = _("Choose the time of day the campaign runs.")
        if self.schedule == self.Schedule.WEEKLY and self.run_weekday is None:
            errors["run_weekday"] = _("Choose the day of the week the campaign runs.")
        if "run_at" not in errors:
            problem = self.run_once_problem()
            if problem:
                errors["run_at"] = problem
        if errors:
            raise ValidationError(errors)

    def qualification_problems(self) -> dict:
        """{field: message} for a "once every" rule without a whole period of 1 or more."""
        if self.qualification_rule != self.QualificationRule.ONCE_EVERY:
            return {}
        errors = {}
        if (
            self.qualification_period is None
            or not 1 <= self.qualification_period <= MAX_QUALIFICATION_PERIOD
        ):
            errors["qualification_period"] = _(
                "Qualification rule “once every”: enter a whole number of %(min)s to %(max)s."
            ) % {"min": 1, "max": number_format(MAX_QUALIFICATION_PERIOD, force_grouping=True)}
        if self.qualification_period_unit not in self.PeriodUnit.values:
            errors["qualification_period_unit"] = _(
                "Qualification rule “once every”: choose days, weeks or months."
            )
        return errors

    def person_limit_problems(self) -> dict:
        """{field: message} for a person limit below 1 (empty: no limit)."""
        errors = {}
        for name in ("person_limit_refuse_above", "person_limit_per_run"):
            value = getattr(self, name)
            if value is not None and value < 1:
                errors[name] = _(
                    "Person limit: enter a whole number of 1 or more, or leave it empty for no limit."
                )
        return errors

    @property
    def qualification_period_display(self) -> str:
        """The period of the rule "once every" in words: "7 days", "month" (it
        follows "once every" and "within the last": never "1 month")."""
        n = self.qualification_period or 0
        count = number_format(n, force_grouping=True)
        if self.qualification_period_unit == self.PeriodUnit.WEEKS:
            return ngettext("week", "%(count)s weeks", n) % {"count": count}
        if self.qualification_period_unit == self.PeriodUnit.MONTHS:
            return ngettext("month", "%(count)s months", n) % {"count": count}
        return ngettext("day", "%(count)s days", n) % {"count": count}

    def qualification_since(self, at):
        """Under "once every N": the moment from which an earlier run makes its
        people skip the run at `at` (they ran through the flow within the
        period); None under the other rules.

        Counted in the installation's calendar, by whole days: a person who
        ran on a day may run again N days (weeks, months) later, at any time
        of that day, so a weekly run a few seconds earlier than last week's is
        not skipped. A month back from the 31st is the last day of a shorter
        month.
        """
        if self.qualification_rule != self.QualificationRule.ONCE_EVERY or not self.qualification_period:
            return None
        today = timezone.localtime(at).date()
        n = self.qualification_period
        if self.qualification_period_unit == self.PeriodUnit.MONTHS:
            back = _months_later(today, -n)
        elif self.qualification_period_unit == self.PeriodUnit.WEEKS:
            back = today - datetime.timedelta(weeks=n)
        else:
            back = today - datetime.timedelta(days=n)
        # Runs from the day after `back` on are within the period.
        return timezone.make_aware(
            datetime.datetime.combine(back + datetime.timedelta(days=1), datetime.time())
        )

    def run_once_problem(self, now=None) -> str | None:
        """Why the "run once" time would leave a campaign that never runs (the
        time has passed), or None.

        Only a time being entered, or a campaign being activated, is checked:
        a campaign that ran once keeps its time as a record, and an active one
        whose time came a moment ago is still due until the scheduler starts it.
        """
        now = now or timezone.now()
        if self.schedule != self.Schedule.ONCE or self.run_at is None or self.run_at > now:
            return None
        stored = (
            SmartCampaign.objects.filter(pk=self.pk)
            .values("schedule", "run_at", "is_active", "next_run_at")
            .first()
            if self.pk
            else None
        )
        if (
            stored is None
            or stored["schedule"] != self.Schedule.ONCE
            or not _same_minute(stored["run_at"], self.run_at)
        ):
            return _("This time has passed (it is now %(now)s): choose a later time.") % {
                "now": date_format(timezone.localtime(now), "DATETIME_FORMAT")
            }
        still_due = stored["is_active"] and stored["next_run_at"] is not None
        if self.is_active and not still_due:
            return _(
                "The time to run once, %(time)s, has passed, so the campaign would never run: "
                "choose a later time."
            ) % {"time": date_format(timezone.localtime(self.run_at), "DATETIME_FORMAT")}
        return None

    def next_run_after_edit(self, now=None):
        """`next_run_at` after the schedule or the active state was edited.

        An active once-campaign whose time has come, but which the scheduler
        has not started yet, stays due: recomputing would drop its run.
        """
        now = now or timezone.now()
        if (
            self.is_active
            and self.schedule == self.Schedule.ONCE
            and self.next_run_at is not None
            and self.run_at is not None
            and self.run_at <= now
        ):
            return self.next_run_at
        return self.compute_next_run(after=now)

    def steps(self):
        return list(
            self.flow_steps.select_related(
                "sms_message", "vibes_list", "acquisition_campaign", "requested_campaign__smart_list"
            )
        )

    def problems(self):
        """Why this campaign cannot run now, as messages; empty when it can."""
        problems = []
        steps = self.steps()
        if not steps:
            problems.append(_("The flow has no steps."))
        for step in steps:
            for message in step.problems().values():
                problems.append(
                    _("Step %(position)s (%(action)s): %(problem)s")
                    % {"position": step.number, "action": step.get_action_display(), "problem": message}
                )
        try:
            definition = self.smart_list.parsed()
        except ValidationError as error:
            problems.extend(_("Smart list: %(problem)s") % {"problem": message} for message in error.messages)
        else:
            # A trigger campaign's filters only narrow who its triggers bring: none is fine.
            if not definition.rules and not definition.triggers:
                problems.append(_("The smart list has no rules, so nobody qualifies."))
        return problems

    @property
    def is_trigger_campaign(self) -> bool:
        """A smart list with at least one trigger makes a trigger campaign: Active or
        Inactive, never scheduled, running the flow for each person a trigger fires for."""
        return bool(self.smart_list.triggers)

    def compute_next_run(self, after=None):
        """The next scheduled start after `after` (now by default), or None."""
        after = after or timezone.now()
        if not self.is_active or self.schedule == self.Schedule.NONE or self.is_trigger_campaign:
            return None
        if self.schedule == self.Schedule.ONCE:
            return self.run_at if self.run_at and self.run_at > after else None
        if self.schedule == self.Schedule.MONTHLY:
            return self._next_monthly_run(after)
        if self.run_time is None:
            return None
        local_after = timezone.localtime(after)
        candidate = timezone.make_aware(datetime.datetime.combine(local_after.date(), self.run_time))
        if self.schedule == self.Schedule.WEEKLY and self.run_weekday is not None:
            candidate += datetime.timedelta(days=(self.run_weekday - candidate.weekday()) % 7)
            step = datetime.timedelta(days=7)
        else:
            step = datetime.timedelta(days=1)
        # Saturday and Sunday in the installation's time zone, where the candidates are made.
        skipped_days = (5, 6) if self.schedule == self.Schedule.DAILY and self.run_weekdays_only else ()
        while candidate <= after or candidate.weekday() in skipped_days:
            candidate = timezone.make_aware(
                datetime.datetime.combine((candidate + step).date(), self.run_time)
            )
        return candidate

    def _next_monthly_run(self, after):
        """On the first run's day of each month at its time of day, from the first
        run on; a month without that day (the 31st in April) runs on its last day."""
        if self.run_at is None:
            return None
        first = timezone.localtime(self.run_at)
        local_after = timezone.localtime(after)
        months = max(0, (local_after.year - first.year) * 12 + local_after.month - first.month - 1)
        while True:
            day = _months_later(first.date(), months)
            candidate = timezone.make_aware(datetime.datetime.combine(day, first.time().replace(tzinfo=None)))
            if candidate > after and candidate >= self.run_at:
                return candidate
            months += 1


# "Once every N": N up to this, whatever the unit (833 years of months).
MAX_QUALIFICATION_PERIOD = 9999


def _months_later(day: datetime.date, months: int) -> datetime.date:
    """The same day of the month `months` later (or earlier), or that month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return datetime.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


class FlowStep(models.Model):
    class Action(models.TextChoices):
        SEND_SMS = "send_sms", _("Send SMS Message")
        SUBSCRIBE = "subscribe_vibes_list", _("Subscribe to Vibes List")
        UNSUBSCRIBE = "unsubscribe_vibes_list", _("Unsubscribe from Vibes List")
        # Texts nobody: the requested campaign's trigger "Campaign is Requested" runs it for the person.
        REQUEST_CAMPAIGN = "request_campaign", _("Request Campaign")
        # Texts nobody: the run waits (issue 17), a row in the database the scheduler resumes.
        WAIT = "wait", _("Wait")
        # Texts nobody: takes the step's people out of a campaign's waiting runs.
        REMOVE_FROM_FLOW = "remove_from_flow", _("Remove from Flow")

    class WaitUnit(models.TextChoices):
        MINUTES = "minutes", _("minutes")
        HOURS = "hours", _("hours")
        DAYS = "days", _("days")

    class WaitDay(models.TextChoices):
        """The day of "then until the next … at HH:MM"."""

        ANY_DAY = "day", _("day")
        WEEKDAY = "weekday", _("weekday (Monday to Friday)")
        MONDAY = "0", _("Monday")
        TUESDAY = "1", _("Tuesday")
        WEDNESDAY = "2", _("Wednesday")
        THURSDAY = "3", _("Thursday")
        FRIDAY = "4", _("Friday")
        SATURDAY = "5", _("Saturday")
        SUNDAY = "6", _("Sunday")

    campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.CASCADE, related_name="flow_steps", verbose_name=_("campaign")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    action = models.CharField(_("action"), max_length=24, choices=Action.choices)
    sms_message = models.ForeignKey(
        SmsMessage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flow_steps",
        verbose_name=_("SMS message"),
    )
    vibes_list = models.ForeignKey(
        VibesList,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flow_steps",
        verbose_name=_("Vibes list"),
    )
    acquisition_campaign = models.ForeignKey(
        AcquisitionCampaign,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flow_steps",
        verbose_name=_("acquisition campaign"),
    )
    requested_campaign = models.ForeignKey(
        SmartCampaign,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requesting_steps",
        verbose_name=_("requested campaign"),
    )
    # Wait: for an amount of time, or until a date and time; then, optionally,
    # until the next chosen day at a time of day (installation time zone).
    wait_amount = models.PositiveIntegerField(_("wait for"), null=True, blank=True)
    wait_unit = models.CharField(_("unit"), max_length=7, choices=WaitUnit.choices, blank=True)
    wait_until = models.DateTimeField(_("wait until"), null=True, blank=True)
    wait_then_day = models.CharField(
        _("then until the next"), max_length=7, choices=WaitDay.choices, blank=True
    )
    wait_then_time = models.TimeField(_("at"), null=True, blank=True)
    # Remove from Flow: the campaign whose waiting runs lose the step's people (empty: this one).
    remove_from_campaign = models.ForeignKey(
        SmartCampaign,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="removing_steps",
        verbose_name=_("remove from the flow of"),
    )

    class Meta:
        verbose_name = _("flow step")
        verbose_name_plural = _("flow steps")
        ordering = ["position", "pk"]

    def __str__(self):
        return f"{self.number}. {self.get_action_display()}"

    @property
    def number(self):
        """1-based number shown to people (position is 0-based)."""
        return self.position + 1

    def problems(self):
        """{field: message} for what this step lacks or gets wrong; empty when valid."""
        problems = {}
        if self.action not in self.Action.values:
            problems["action"] = _("Choose one of the three SMS flow steps.")
            return problems
        if self.action == self.Action.REQUEST_CAMPAIGN:
            return self._request_problems()
        if self.action == self.Action.WAIT:
            return self._wait_problems()
        if self.action == self.Action.REMOVE_FROM_FLOW:
            return {}
        if not self.vibes_list_id:
            problems["vibes_list"] = _("Choose a Vibes list.")
        if self.action == self.Action.SEND_SMS:
            if not self.sms_message_id:
                problems["sms_message"] = _("Choose an SMS message.")
        elif self.sms_message_id:
            problems["sms_message"] = _("Only Send SMS Message uses an SMS message.")
        if self.action == self.Action.SUBSCRIBE:
            if not self.acquisition_campaign_id:
                problems["acquisition_campaign"] = _("Choose an acquisition campaign of the Vibes list.")
            elif self.vibes_list_id and self.acquisition_campaign.vibes_list_id != self.vibes_list_id:
                problems["acquisition_campaign"] = _(
                    "The acquisition campaign “%(campaign)s” belongs to the Vibes list "
                    "“%(its_list)s”, not to “%(list)s”."
                ) % {
                    "campaign": self.acquisition_campaign,
                    "its_list": self.acquisition_campaign.vibes_list,
                    "list": self.vibes_list,
                }
            elif reason := self.acquisition_campaign.not_running_reason():
                # Vibes would refuse every participant (R5): the run must not start.
                problems["acquisition_campaign"] = reason
        elif self.acquisition_campaign_id:
            problems["acquisition_campaign"] = _("Only Subscribe to Vibes List uses an acquisition campaign.")
        return problems

    def _request_problems(self):
        requested = self.requested_campaign
        if requested is None:
            return {"requested_campaign": _("Choose the campaign to request.")}
        if requested.pk == self.campaign_id:
            return {"requested_campaign": _("A campaign cannot request itself.")}
        triggers = requested.smart_list.triggers
        if not any(isinstance(t, dict) and t.get("trigger") == "campaign_requested" for t in triggers):
            # It would never run for the people requested.
            return {
                "requested_campaign": _(
                    "“%(campaign)s” has no trigger “Campaign is Requested”, so requesting it does nothing."
                )
                % {"campaign": requested}
            }
        return {}

    def _wait_problems(self):
        problems = {}
        if self.wait_amount is None and self.wait_until is None:
            problems["wait_amount"] = _("Say how long to wait, or until when.")
        elif self.wait_amount is not None and self.wait_until is not None:
            problems["wait_until"] = _("Wait either for a time or until a date, not both: clear one of them.")
        elif self.wait_amount is not None:
            if self.wait_amount < 1:
                problems["wait_amount"] = _("Wait for at least 1 minute, hour or day.")
            elif not self.wait_unit:
                problems["wait_unit"] = _("Choose minutes, hours or days.")
            elif self.wait_amount * WAIT_UNIT_SECONDS[self.wait_unit] > MAX_WAIT.total_seconds():
                problems["wait_amount"] = _("A wait is at most %(days)s days.") % {"days": MAX_WAIT.days}
        elif self.wait_until <= timezone.now():
            problems["wait_until"] = _("This time has passed (it is now %(now)s): choose a later time.") % {
                "now": date_format(timezone.localtime(), "DATETIME_FORMAT")
            }
        if self.wait_then_day and self.wait_then_time is None:
            problems["wait_then_time"] = _("Choose the time of day to wait until.")
        elif self.wait_then_time is not None and not self.wait_then_day:
            problems["wait_then_day"] = _("Choose the day to wait until, or clear the time of day.")
        return problems

    def wait_duration(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=(self.wait_amount or 0) * WAIT_UNIT_SECONDS.get(self.wait_unit, 60))

    def wait_spec(self) -> dict:
        """The wait as a run keeps it (RunStep.wait): edits to the flow do not move a run's wait."""
        if self.action != self.Action.WAIT:
            return {}
        return {
            "seconds": int(self.wait_duration().total_seconds()) if self.wait_amount is not None else None,
            "until": self.wait_until.isoformat() if self.wait_until else None,
            "then_day": self.wait_then_day,
            "then_time": self.wait_then_time.strftime("%H:%M") if self.wait_then_time else None,
        }

    def clean(self):
        problems = self.problems()
        if problems:
            raise ValidationError(problems)


# The longest wait a flow step may hold: a year.
MAX_WAIT = datetime.timedelta(days=365)
WAIT_UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}


# --- Runs and their results ---------------------------------------------------------


class RunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=CampaignRun.ACTIVE_STATUSES)


class CampaignRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        # A trigger run in a Wait step: outside the one-active-run constraint,
        # so that the campaign's next people start their own run meanwhile.
        WAITING = "waiting", _("running, in Wait Step")

    class Trigger(models.TextChoices):
        COMMAND = "command", _("command")
        ADMIN = "admin", _("admin action")
        UI = "ui", _("Run button")
        SCHEDULE = "schedule", _("schedule")
        ACTIVITY = "trigger", _("trigger")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.CASCADE, related_name="runs", verbose_name=_("campaign")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(_("started by"), max_length=10, choices=Trigger.choices)
    dry_run = models.BooleanField(_("dry run"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    audience = models.PositiveIntegerField(_("audience"), default=0)
    progress_done = models.PositiveIntegerField(_("calls done"), default=0)
    progress_total = models.PositiveIntegerField(_("calls planned"), default=0)
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("aborted by"),
    )
    # Set while the run is in a Wait step: when the scheduler resumes it.
    resume_at = models.DateTimeField(_("resumes"), null=True, blank=True, db_index=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The database, not a lock file, refuses a second run of a campaign
            # while one is queued or running.
            models.UniqueConstraint(
                fields=["campaign"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_run_per_campaign",
                violation_error_message=_("This campaign is already running."),
            )
        ]

    def __str__(self):
        return _("Run %(id)s of %(campaign)s") % {"id": self.pk, "campaign": self.campaign}

    @property
    def is_active(self):
        return self.status in self.ACTIVE_STATUSES

    @property
    def error_display(self) -> str:
        """The error in the reader's language, where the runner wrote a known one (a refusal)."""
        return detail_display(self.error)

    @property
    def in_wait_step(self) -> bool:
        return self.resume_at is not None and self.status in (self.Status.RUNNING, self.Status.WAITING)

    @property
    def status_display(self) -> str:
        """The status as the Schedule and Results tabs show it ("Running, in Wait Step", as Marketo says)."""
        if self.in_wait_step:
            return str(self.Status.WAITING.label)
        if self.status == self.Status.WAITING:
            # A trigger run whose SMS wait for their recipients' window (runner/deferral.py).
            return gettext("running, waiting for quiet hours to end")
        return self.get_status_display()

    @property
    def progress_percent(self):
        if not self.progress_total:
            return 100 if self.status == self.Status.COMPLETED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))


class RunStep(models.Model):
    """One flow step as it was when the run started, with its outcome counts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        PLANNED = "planned", _("planned")
        EXECUTING = "executing", _("executing")
        DONE = "done", _("done")
        CANCELLED = "cancelled", _("cancelled")

    run = models.ForeignKey(
        CampaignRun, on_delete=models.CASCADE, related_name="steps", verbose_name=_("run")
    )
    position = models.PositiveIntegerField(_("position"))
    action = models.CharField(_("action"), max_length=24, choices=FlowStep.Action.choices)
    flow_step = models.ForeignKey(
        FlowStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sms_message = models.ForeignKey(
        SmsMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message_text = models.TextField(_("message text"), blank=True)
    # The message's choice as the run started: a resumed run sends as it began.
    track_links = models.BooleanField(_("track links"), default=False)
    vibes_list = models.ForeignKey(
        VibesList, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acquisition_campaign = models.ForeignKey(
        AcquisitionCampaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Wait: FlowStep.wait_spec() as the run started.
    wait = models.JSONField(_("wait"), default=dict, blank=True)
    # Remove from Flow: the campaign whose waiting runs lose the step's people.
    remove_from_campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    counts = models.JSONField(_("counts by outcome"), default=dict)
    # Rows change after the run, as receipts and confirmations arrive: the
    # counts change with them, in the same transaction.
    counts_updated_at = models.DateTimeField(_("counts as of"), null=True, blank=True)
    planned_at = models.DateTimeField(_("planned"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    plan_seconds = models.FloatField(_("planning time (s)"), null=True, blank=True)
    # Planning writes this step's results in one INSERT ... SELECT, so they lie
    # in this id range (other steps' rows may interleave on PostgreSQL, which
    # is why queries also filter on the step). Pages and counts scan the range;
    # only a search by person reads the index on (run_step, lead).
    first_result_id = models.BigIntegerField(null=True, blank=True, editable=False)
    last_result_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("run step")
        verbose_name_plural = _("run steps")
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="run_step_position_unique")]

    def __str__(self):
        return f"{self.position + 1}. {self.get_action_display()}"

    @property
    def number(self):
        return self.position + 1

    def outcome_counts(self) -> list[tuple["Outcome", int]]:
        """The step's counts as (outcome, people), in the order of the outcomes, without the zeros."""
        return Outcome.counted(self.counts)

    def results(self):
        """This step's result rows, found through the step's id range."""
        if self.first_result_id is None:
            return RunResult.objects.none()
        return RunResult.objects.filter(
            run_step=self, pk__gte=self.first_result_id, pk__lte=self.last_result_id
        )


class Outcome(models.IntegerChoices):
    """What a step did for one person. Stored as a small integer: a run of a
    million people writes a million of these, so the row is kept narrow."""

    QUEUED = 0, _("queued")
    SENDING = 1, _("sending")
    # The recipient's sending window was closed at the call: the row waits
    # for it (RunResult.not_before) and is called then (quiet_hours.py).
    DEFERRED_QUIET_HOURS = 2, _("deferred: quiet hours")
    # What Vibes answered. An SMS stays `sent` (Vibes accepted it) until its
    # delivery receipt says what happened next; a Subscribe row stays
    # `pending` until the person answers Vibes' confirmation text, or the
    # confirmation window ends.
    SENT = 10, _("sent")
    SUBSCRIBED = 11, _("subscribed")
    PENDING = 12, _("pending confirmation")
    UNSUBSCRIBED = 13, _("unsubscribed")
    DELIVERED = 14, _("delivered")
    ALREADY_UNSUBSCRIBED_IN_VIBES = 15, _("already unsubscribed in Vibes")
    DECLINED = 16, _("declined the confirmation")
    EXPIRED = 17, _("confirmation expired without a reply")
    REQUESTED = 18, _("campaign requested")
    # A Wait step's row: the person waited (or waits) with the run (issue 17).
    WAITED = 19, _("waited")
    FAILED = 20, _("failed")
    UNCERTAIN = 21, _("uncertain")
    DELIVERY_FAILED = 22, _("delivery failed")
    SKIPPED_DUPLICATE_PHONE = 30, _("skipped: shares a number with another person")
    SKIPPED_BLOCKLISTED = 31, _("skipped: blocklisted")
    SKIPPED_MARKETING_SUSPENDED = 32, _("skipped: marketing suspended")
    SKIPPED_NOT_SUBSCRIBED = 33, _("skipped: not subscribed to the Vibes list")
    SKIPPED_NO_PHONE = 34, _("skipped: no valid mobile number")
    SKIPPED_ALREADY_RAN = 35, _("skipped: already ran through this flow")
    SKIPPED_ALREADY_SUBSCRIBED = 36, _("skipped: already subscribed")
    SKIPPED_ALREADY_PENDING = 37, _("skipped: subscription already pending")
    # No longer planned (Unsubscribe calls for every number); kept for the rows of earlier runs.
    SKIPPED_ALREADY_UNSUBSCRIBED = 38, _("skipped: already unsubscribed")
    # R4: an SMS goes to a number, so one blocked person on it blocks everyone.
    SKIPPED_NUMBER_BLOCKLISTED = 39, _("skipped: number shared with a blocklisted person")
    SKIPPED_NUMBER_SUSPENDED = 40, _("skipped: number shared with a marketing-suspended person")
    # The number had its share of marketing SMS (CommunicationLimits) when planned or called.
    SKIPPED_COMMUNICATION_LIMIT = 41, _("skipped: communication limit reached")
    # Smart campaign limits and the rule "once every N" (issue 17).
    SKIPPED_PERSON_LIMIT = 42, _("skipped: the campaign's person limit was reached")
    SKIPPED_RAN_RECENTLY = 43, _("skipped: ran through this flow within the qualification period")
    # Taken out of a waiting flow by a Remove from Flow step (issue 17): the
    # person's row in each step they no longer reach.
    REMOVED_FROM_FLOW = 44, _("removed from the flow")
    # The run was aborted before this person's call went out (issue 17).
    CANCELLED = 45, _("cancelled: the run was aborted before the call")
    PLANNED_DRY_RUN = 50, _("would be called (dry run)")

    @property
    def code(self) -> str:
        """The outcome's name in step counts, CSV exports and the Results tab's links."""
        # Stored in the counts of earlier runs and seen in exports since before
        # the member had its SKIPPED_ prefix: the code stays what it was.
        if self is Outcome.SKIPPED_ALREADY_RAN:
            return "already_ran"
        return self.name.lower()

    @classmethod
    def from_code(cls, code: str) -> "Outcome | None":
        """The outcome a code names; None for a code no outcome has."""
        return _OUTCOMES_BY_CODE.get(code)

    @classmethod
    def counted(cls, counts: dict) -> list[tuple["Outcome", int]]:
        """Counts by code (`{"sent": 12, ...}`, as RunStep.counts stores them) as
        (outcome, people), in the order of the outcomes, without the zeros."""
        pairs = [(cls.from_code(code), n) for code, n in (counts or {}).items() if n]
        return sorted(((outcome, n) for outcome, n in pairs if outcome is not None), key=lambda p: p[0].value)

    @property
    def is_skip(self) -> bool:
        return CALLS_BELOW <= self < Outcome.PLANNED_DRY_RUN


_OUTCOMES_BY_CODE = {outcome.code: outcome for outcome in Outcome}
# Outcomes below this are calls: queued, being made, or what came of them.
# From it on, the skips, and a dry run's "would be called".
CALLS_BELOW = 30

# A failed delivery's receipt status that says the number cannot take the
# message: a hard bounce. Vibes publishes no hard/soft split; every other
# failure ("failed", "undelivered", "expired", none) may pass another time,
# a soft bounce. The smart list's filter and trigger both read it here.
HARD_BOUNCE_STATUSES = ("undeliverable", "rejected")
# An SMS's row once Vibes accepted it (or may have): what its delivery receipt settles.
SMS_SENT = (Outcome.SENT, Outcome.DELIVERED, Outcome.DELIVERY_FAILED)
NUMBER_BLOCKS = (Outcome.SKIPPED_NUMBER_BLOCKLISTED, Outcome.SKIPPED_NUMBER_SUSPENDED)
# Written as comparisons, not IN or BETWEEN: SQLite matches a query's bound
# values against a partial index's constants only there.
CALLS = models.Q(outcome__lt=CALLS_BELOW)
# What a lead's activity lists: the calls and the skips for a number another
# person's block closed. The partial index on a lead's results has this
# condition and the activity query repeats it, so the index serves the query.
LEAD_ACTIVITY = CALLS | models.Q(
    outcome__gte=Outcome.SKIPPED_NUMBER_BLOCKLISTED, outcome__lte=Outcome.SKIPPED_NUMBER_SUSPENDED
)

# A person's activity log (activity.py) reads each kind of its rows through an
# index on (lead, time) with one of these conditions, repeated by its query:
# the calls made (their time the call's), the SMS a receipt settled (its
# time the receipt's), and the skips for a number another person's block
# closed. Each leaves out the rows planning writes, so planning pays nothing.
LEAD_CALLED = models.Q(called_at__isnull=False)
LEAD_RECEIPTS = models.Q(outcome=Outcome.DELIVERED) | models.Q(outcome=Outcome.DELIVERY_FAILED)
LEAD_NUMBER_BLOCKED = models.Q(
    outcome__gte=Outcome.SKIPPED_NUMBER_BLOCKLISTED, outcome__lte=Outcome.SKIPPED_NUMBER_SUSPENDED
)

# Every row (outcomes are never negative): the condition of the index the Results search reads.
SEARCHED_ROWS = models.Q(outcome__gte=0)


class RunResultQuerySet(models.QuerySet):
    def calls(self):
        """The rows of people a call was made for (or is about to be); never the skips.

        Repeats the condition of the partial index on a lead's results, so
        that a query by lead uses it.
        """
        return self.filter(CALLS)


class RunResult(models.Model):
    """A flow step's outcome for one person in one run (R8: once per run)."""

    # One index on both keys, for the Results search (Meta.indexes); pages and
    # counts read the step's id range (RunStep.first_result_id). No database-level
    # constraints either: SQLite checks a foreign key for every row written
    # (a third of a million-row plan's time) and scans this table for every
    # lead deleted. Django's cascade deletes the rows.
    run_step = models.ForeignKey(
        RunStep,
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
        related_name="+",  # use RunStep.results(), which scans the step's id range
        verbose_name=_("run step"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
        related_name="run_results",
        verbose_name=_("lead"),
    )
    outcome = models.SmallIntegerField(_("outcome"), choices=Outcome.choices)
    phone = models.CharField(_("number"), max_length=16, blank=True)
    duplicate_of = models.ForeignKey(
        Lead,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent to instead"),
    )
    blocked_by = models.ForeignKey(
        Lead,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("number blocked by"),
    )
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    vibes_message_id = models.CharField(_("Vibes message id"), max_length=64, blank=True)
    delivery_status = models.CharField(_("delivery"), max_length=20, blank=True)
    # The carrier's reason for a failed delivery. Nullable so that adding it
    # to a table of millions of rows is instant on SQLite (no table rebuild)
    # and planning writes nothing for it.
    delivery_reason = models.CharField(  # noqa: DJ001
        _("delivery failure reason"), max_length=300, null=True, blank=True
    )
    # When the outcome last changed (as of the event's own time where it has
    # one: a receipt's, a confirmation's); empty while the planned outcome stands.
    updated_at = models.DateTimeField(_("outcome changed"), null=True, blank=True)
    # When the (latest) call for this row went to Vibes: set as the row turns
    # `sending`, and never moved by the outcome or a receipt after, so that a
    # reply is matched with the SMS sent last before it.
    called_at = models.DateTimeField(_("called Vibes"), null=True, blank=True)
    # A row deferred for quiet hours: when the recipient's window opens.
    not_before = models.DateTimeField(_("deferred until"), null=True, blank=True)

    objects = RunResultQuerySet.as_manager()

    class Meta:
        verbose_name = _("run result")
        verbose_name_plural = _("run results")
        indexes = [
            # A lead's SMS activity: the calls made for it and the few skips
            # that name another person. The other skips are most of the rows
            # and are left out of the index to keep planning fast.
            models.Index(fields=["lead"], condition=LEAD_ACTIVITY, name="run_result_lead_activity"),
            # The scheduler's minute: the deferred rows whose window has opened.
            # Only those rows are in it, so it stays small whatever the table's size.
            models.Index(
                fields=["not_before"],
                condition=models.Q(outcome=Outcome.DEFERRED_QUIET_HOURS),
                name="run_result_deferred",
            ),
            # The Results search: the rows of the few people a name or a number
            # finds, read through this index instead of a scan of the run. Planning
            # pays for it (README, "Scale benchmark"): a search of ten million rows
            # without it took seconds. Every row is in it; its condition is stated
            # by the search alone (SEARCHED_ROWS), so that SQLite's planner keeps
            # the SMS filters of smart lists on the index of a lead's activity
            # instead of looking each person up step by step in this one.
            models.Index(fields=["run_step", "lead"], condition=SEARCHED_ROWS, name="run_result_step_lead"),
            # A person's activity log, newest first, a page at a time (activity.py).
            models.Index(
                fields=["lead", "called_at", "id"], condition=LEAD_CALLED, name="run_result_lead_called"
            ),
            models.Index(
                fields=["lead", "updated_at", "id"], condition=LEAD_RECEIPTS, name="run_result_lead_receipt"
            ),
            models.Index(
                fields=["lead", "id"], condition=LEAD_NUMBER_BLOCKED, name="run_result_lead_blocked"
            ),
            # The people behind a dashboard's figure, newest call first, a page at a
            # time (reporting/people.py): read from the cursor down, the scope's steps
            # a filter, never a sort of the scope's rows. Planning writes no call time.
            models.Index(fields=["called_at", "id"], condition=LEAD_CALLED, name="run_result_called"),
        ]

    def __str__(self):
        return f"{self.lead_id}: {self.get_outcome_display()}"

    @property
    def detail_display(self) -> str:
        """The detail in the reader's language (the runner stores it in English)."""
        return detail_display(self.detail)

    @property
    def delivery_status_news(self) -> str:
        """The receipt's word, when the outcome does not say it already ("accepted", "undeliverable")."""
        said = {Outcome.DELIVERED: "delivered", Outcome.DELIVERY_FAILED: "failed"}.get(self.outcome)
        return "" if self.delivery_status == said else self.delivery_status

    @property
    def deferred_until(self) -> datetime.datetime | None:
        """When an SMS deferred for quiet hours may go; None for any other row."""
        return self.not_before if self.outcome == Outcome.DEFERRED_QUIET_HOURS else None


class RunBatch(models.Model):
    """A slice of a step's results that one worker claims and calls at a time.

    Workers claim batches with row locks (SKIP LOCKED on PostgreSQL), so two
    workers never call for the same people; a claim that outlives its worker
    is taken over once it expires.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        CLAIMED = "claimed", _("being called")
        DONE = "done", _("done")

    run_step = models.ForeignKey(RunStep, on_delete=models.CASCADE, related_name="batches")
    first_result_id = models.BigIntegerField()
    last_result_id = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    claimed_by = models.CharField(max_length=120, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("run batch")
        verbose_name_plural = _("run batches")
        ordering = ["run_step", "first_result_id"]
        indexes = [models.Index(fields=["run_step", "status"], name="run_batch_step_status")]

    def __str__(self):
        return f"{self.run_step_id}:{self.first_result_id}-{self.last_result_id}"


class TriggerFiringQuerySet(models.QuerySet):
    def close_waiting(self) -> int:
        """Deactivating: the firings still waiting for a run never run."""
        return self.filter(status=TriggerFiring.Status.WAITING).update(status=TriggerFiring.Status.INACTIVE)


class TriggerFiring(models.Model):
    """An activity that fired a trigger campaign for its person, and what came of it.

    The database keeps the promises: an activity fires a campaign at most once
    (however often its event was delivered or the dispatcher ran), and a
    number is texted by a campaign at most once for all the activities of
    one second (`number_second`, unique per campaign; left empty for a
    firing that runs nobody).
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting for its run")
        MEMBER = "member", _("ran through the flow")
        FILTERED_OUT = "filtered_out", _("did not pass the smart list's filters")
        ALREADY_RAN = "already_ran", _("already ran through the flow")
        SAME_NUMBER = "same_number", _("another trigger fired for its number in the same second")
        INACTIVE = "inactive", _("the campaign was deactivated before its run")

    activity = models.ForeignKey(
        Activity, on_delete=models.CASCADE, related_name="+", verbose_name=_("activity")
    )
    campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.CASCADE, related_name="firings", verbose_name=_("campaign")
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+", verbose_name=_("lead"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.WAITING)
    run = models.ForeignKey(
        CampaignRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="firings",
        verbose_name=_("run"),
    )
    number_second = models.CharField(max_length=40, null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(_("fired"), default=timezone.now)

    objects = TriggerFiringQuerySet.as_manager()

    class Meta:
        verbose_name = _("trigger firing")
        verbose_name_plural = _("trigger firings")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "campaign"], name="activity_fires_campaign_once"),
            models.UniqueConstraint(fields=["campaign", "number_second"], name="number_texted_once_a_second"),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "id"],
                condition=models.Q(status="waiting"),
                name="firing_waiting",
            ),
            # The qualification rule "once": has this person run through this campaign's flow?
            models.Index(
                fields=["campaign", "lead"], condition=models.Q(status="member"), name="firing_member"
            ),
            # The admin's list, newest first, by campaign or by status: an index each, at millions.
            models.Index(fields=["campaign", "id"], name="firing_campaign"),
            models.Index(fields=["status", "id"], name="firing_status"),
        ]

    def __str__(self):
        return f"{self.activity_id} → {self.campaign_id}: {self.status}"


class SmsReply(models.Model):
    """An inbound message taken as the reply to an SMS of a run: the SMS sent
    to its number last before it, whatever the campaign."""

    message = models.OneToOneField(
        InboundMessage, on_delete=models.CASCADE, related_name="sms_reply", verbose_name=_("message")
    )
    # DO_NOTHING and no database constraint, as RunResult.duplicate_of: any
    # relation that cascades would cost a run's deletion its fast path.
    result = models.ForeignKey(
        RunResult,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("SMS replied to"),
    )
    run_step = models.ForeignKey(
        RunStep, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("run step")
    )

    class Meta:
        verbose_name = _("SMS reply")
        verbose_name_plural = _("SMS replies")
        indexes = [
            # The Results tab counts a step's people who replied from this index alone.
            models.Index(fields=["run_step", "result"], name="sms_reply_step_result")
        ]

    def __str__(self):
        return f"{self.message} → {self.result_id}"


# --- What an SMS carried: its text and tracked links ------------------------------


class SentSms(models.Model):
    """The text of one person's SMS as it went to Vibes (tokens and short links
    in it), and how often the person clicked its links."""

    # Keyed by the row, so a page of rows reads it in the same query (a join
    # on the key). DO_NOTHING and no database constraint, as SmsReply: any
    # relation that cascades would cost a run's deletion its fast path.
    result = models.OneToOneField(
        RunResult,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        primary_key=True,
        related_name="sent_sms",
        verbose_name=_("run result"),
    )
    run_step = models.ForeignKey(
        RunStep, on_delete=models.CASCADE, related_name="+", verbose_name=_("run step")
    )
    text = models.TextField(_("text"))
    # Kept here as clicks arrive, robots left out (the clicks themselves are LinkClick's).
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    first_clicked_at = models.DateTimeField(_("first clicked"), null=True, blank=True)

    class Meta:
        verbose_name = _("sent SMS")
        verbose_name_plural = _("sent SMS")

    def __str__(self):
        return self.text


class TrackedLink(models.Model):
    """A short link standing for one web address in one person's SMS of one run
    step (one per address and result row, whatever the retries)."""

    code = models.CharField(_("code"), max_length=16, unique=True)
    run_step = models.ForeignKey(
        RunStep, on_delete=models.CASCADE, related_name="+", verbose_name=_("run step")
    )
    result = models.ForeignKey(
        RunResult,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the unique constraint below starts with it
        related_name="+",
        verbose_name=_("run result"),
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="tracked_links", verbose_name=_("lead")
    )
    position = models.PositiveSmallIntegerField(_("link in the message"))  # 0: its first web address
    url = models.TextField(_("web address"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("tracked link")
        verbose_name_plural = _("tracked links")
        constraints = [
            # A resumed or retried send finds its links again, never makes new ones.
            models.UniqueConstraint(fields=["result", "position"], name="tracked_link_once_per_row")
        ]

    def __str__(self):
        return self.code


class LinkClick(models.Model):
    """A click on a tracked link: one request for its short address."""

    # DO_NOTHING: the clicks go with their run step and their lead, and
    # nothing cascades into the links, so a run's links are deleted in bulk.
    link = models.ForeignKey(
        TrackedLink,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="clicks",
        verbose_name=_("tracked link"),
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="link_clicks", verbose_name=_("lead")
    )
    run_step = models.ForeignKey(
        RunStep, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("run step")
    )
    result = models.ForeignKey(
        RunResult,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("run result"),
    )
    clicked_at = models.DateTimeField(_("clicked"), default=timezone.now)
    user_agent = models.CharField(_("browser"), max_length=400, blank=True)
    # Link previews (messaging apps, social sites) and crawlers open links nobody clicked.
    by_robot = models.BooleanField(_("by a link preview or robot"), default=False)

    class Meta:
        verbose_name = _("link click")
        verbose_name_plural = _("link clicks")
        ordering = ["-clicked_at", "-pk"]
        indexes = [
            # The Results tab counts a step's people who clicked, and filters by it, from this index.
            models.Index(fields=["run_step", "by_robot", "result"], name="link_click_step_result"),
            # A person's activity log, newest first (activity.py).
            models.Index(fields=["lead", "clicked_at", "id"], name="link_click_lead_time"),
        ]

    def __str__(self):
        return f"{self.link} · {self.clicked_at}"


# --- Communication limits ------------------------------------------------------------


class CommunicationLimits(models.Model):
    """How many marketing SMS one number may get, across all campaigns: one row
    for the installation, edited by administrators in the admin. At least 1:
    sending no marketing SMS at all is deactivating the campaigns, not a limit."""

    per_day = models.PositiveIntegerField(
        _("per day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many marketing SMS per number in the last 24 hours. Blank: no limit."),
    )
    per_week = models.PositiveIntegerField(
        _("per 7 days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many marketing SMS per number in the last 7 days. Blank: no limit."),
    )

    class Meta:
        verbose_name = _("communication limits")
        verbose_name_plural = _("communication limits")

    def __str__(self):
        return str(_("Communication limits"))

    def save(self, *args, **kwargs):
        self.pk = 1  # one row for the installation
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> "CommunicationLimits":
        """The installation's limits (none set when nobody saved any yet)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @property
    def any(self) -> bool:
        return self.per_day is not None or self.per_week is not None


class MarketingSms(models.Model):
    """One marketing SMS counted towards its number's communication limits:
    written in the transaction that marks its row `sending`, and forgotten
    when Vibes surely did not send it. Rows older than 7 days count for no
    limit and are pruned as SMS are sent."""

    # Keyed by the row, so that a call made again (after a 429, or "send the
    # uncertain calls again") is counted once. DO_NOTHING and no database
    # constraint, as SentSms.
    result = models.OneToOneField(
        RunResult,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        primary_key=True,
        related_name="+",
        verbose_name=_("run result"),
    )
    phone = models.CharField(_("number"), max_length=16)
    sent_at = models.DateTimeField(_("sent"))

    class Meta:
        verbose_name = _("marketing SMS")
        verbose_name_plural = _("marketing SMS")
        indexes = [
            # The check before a call: a batch's numbers, their SMS of the last 7 days.
            models.Index(fields=["phone", "sent_at"], name="marketing_sms_phone_sent"),
            # Planning: the numbers at their limit, read from the last 7 days only; and pruning.
            models.Index(fields=["sent_at", "phone"], name="marketing_sms_sent_phone"),
        ]

    def __str__(self):
        return f"{self.phone} · {self.sent_at}"


# --- Quiet hours ---------------------------------------------------------------------


def _default_start():
    return datetime.time(8, 0)


def _default_end():
    return datetime.time(21, 0)


def _check_window(start, end, where):
    if start is not None and end is not None and start >= end:
        raise ValidationError(
            {
                "end": _("%(where)s: the window must end after it starts (%(start)s–%(end)s).")
                % {"where": where, "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
            }
        )


class QuietHours(models.Model):
    """The installation's sending window in the recipient's local time: one row.

    Without the row the default applies (08:00–21:00, the usual US rule):
    quiet hours are off only when an administrator turns them off.
    """

    enabled = models.BooleanField(
        _("keep quiet hours"),
        default=True,
        help_text=_("Off: SMS go out at any hour of the recipient's day."),
    )
    start = models.TimeField(_("sending from"), default=_default_start)
    end = models.TimeField(_("sending until"), default=_default_end)

    class Meta:
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="quiet_hours_single_row")]

    def __str__(self):
        if not self.enabled:
            return gettext("Quiet hours: off")
        return gettext("Quiet hours: SMS go out from %(start)s to %(end)s, the recipient's local time") % {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self):
        _check_window(self.start, self.end, gettext("Sending window"))

    @classmethod
    def load(cls) -> "QuietHours":
        """The installation's settings, the default when nobody changed them."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class QuietHoursCountry(models.Model):
    """A country's own sending window, instead of the installation's."""

    quiet_hours = models.ForeignKey(QuietHours, on_delete=models.CASCADE, related_name="countries")
    country = models.CharField(
        _("country"), max_length=2, help_text=_("Two-letter code of the number's country, e.g. DE.")
    )
    start = models.TimeField(_("sending from"))
    end = models.TimeField(_("sending until"))

    class Meta:
        verbose_name = _("country's sending window")
        verbose_name_plural = _("countries' sending windows")
        ordering = ["country"]
        constraints = [
            models.UniqueConstraint(
                fields=["quiet_hours", "country"],
                name="quiet_hours_country_unique",
                violation_error_message=_("This country has a sending window already."),
            )
        ]

    def __str__(self):
        return f"{self.country}: {self.start:%H:%M}–{self.end:%H:%M}"

    def clean(self):
        self.country = (self.country or "").strip().upper()
        if self.country and self.country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError(
                {
                    "country": _("“%(code)s” is not a country code; use two letters such as US, DE or SE.")
                    % {"code": self.country}
                }
            )
        _check_window(self.start, self.end, self.country or gettext("Country"))


# --- Run now's counts ----------------------------------------------------------------


class AudienceCount(models.Model):
    """Run now's confirmation counting a campaign's audience in the background
    (or the Smart List tab counting who qualifies: `definition`).

    Counting ten million people takes tens of seconds: the counts request
    starts one of these, the confirmation polls it for its progress, and shows
    the counts once they are in `result` (runner/count_jobs.py).
    """

    campaign = models.ForeignKey(SmartCampaign, on_delete=models.CASCADE, related_name="+")
    # The Smart List tab's exact count of who qualifies: the smart list definition
    # counted (its people only, result {"people": n}); None for Run now's counts.
    definition = models.JSONField(null=True, blank=True)
    # The language of the marketer who asked: the messages stored with the counts are in it.
    language = models.CharField(max_length=16, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # What the confirmation shows (count_jobs.py), once counted; None until then.
    result = models.JSONField(null=True, blank=True)
    failed = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.campaign_id}: {self.done}/{self.total}"

    # A count still unfinished after this long lost its worker (a restart): counted again on request.
    GIVEN_UP_AFTER = datetime.timedelta(hours=1)

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0

    @property
    def given_up(self) -> bool:
        return self.failed or (
            self.finished_at is None and self.started_at < timezone.now() - self.GIVEN_UP_AFTER
        )


# --- The demo -----------------------------------------------------------------------


class DemoLogin(models.Model):
    """The login `manage.py seed_demo` created, for the login page to show.

    It keeps the password hash seed_demo set. The login page compares it with
    the user's current hash, a string comparison (no hashing per page view):
    any change of the password gives the user another hash, and the login is
    no longer shown.
    """

    # Never shown to marketers (not in the admin either), so nothing to translate.
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    password_hash = models.CharField(max_length=128)

    def __str__(self):
        return str(self.user)


# --- Program tokens and sample sends -------------------------------------------------


class ProgramToken(models.Model):
    """A program's "My Token": `{{my.<name>}}` in its SMS messages becomes the value."""

    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="tokens", verbose_name=_("program")
    )
    name = models.CharField(
        _("name"),
        max_length=50,
        help_text=_("Used as {{my.name}}: a letter, then letters, digits or underscores."),
    )
    value = models.CharField(_("value"), max_length=sms_text.MAX_LENGTH, blank=True)

    class Meta:
        verbose_name = _("My Token")
        verbose_name_plural = _("My Tokens")
        ordering = ["program", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "name"],
                name="program_token_name_unique",
                violation_error_message=_("This program already has a token of that name."),
            )
        ]

    def __str__(self):
        return f"{{{{my.{self.name}}}}}"

    def clean(self):
        if not sms_text.PROGRAM_TOKEN_NAME.fullmatch(self.name or ""):
            raise ValidationError(
                {
                    "name": _(
                        "“%(name)s” cannot be a token name: use a letter, then letters, digits or "
                        "underscores (at most 50)."
                    )
                    % {"name": self.name}
                }
            )


class TestNumber(models.Model):
    """A phone an administrator has verified as the team's own: sample sends go only here."""

    __test__ = False  # a model, not a pytest class

    number = models.CharField(
        _("mobile phone"), max_length=16, unique=True, help_text=_("Stored in E.164 form, e.g. +15551234567.")
    )
    label = models.CharField(_("whose phone"), max_length=200, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("verified by"),
    )
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)

    class Meta:
        verbose_name = _("test number")
        verbose_name_plural = _("test numbers")
        ordering = ["label", "number"]

    def __str__(self):
        return f"{self.label} ({self.number})" if self.label else self.number

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class SampleSend(models.Model):
    """One sample of an SMS message sent to a test number: a record of its
    own, apart from runs, so that no count of Results or reports sees it."""

    class Status(models.TextChoices):
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        UNCERTAIN = "uncertain", _("uncertain")

    sms_message = models.ForeignKey(
        SmsMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sample_sends",
        verbose_name=_("SMS message"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("rendered for"),
    )
    number = models.CharField(_("test number"), max_length=16)
    text = models.TextField(_("text"))
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SENDING)
    message_id = models.CharField(_("Vibes message id"), max_length=100, blank=True)
    vibes_answer = models.CharField(_("Vibes' answer"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("sample send")
        verbose_name_plural = _("sample sends")
        ordering = ["-sent_at", "-pk"]

    def __str__(self):
        return f"{self.sms_message} → {self.number}"


# --- SMS figures, kept as rollups (issue 18) ----------------------------------------


class SmsHourlyFigures(models.Model):
    """The SMS of one hour of calls to Vibes for one campaign, SMS message and
    Vibes list, and what became of them since (reporting/rollups.py keeps
    these, reporting/figures.py reads them): the dashboards never read the
    result rows.

    Every figure of an SMS stays with the hour of its call: a receipt, reply,
    click or unsubscription days later changes that hour's row.
    """

    hour = models.DateTimeField(_("hour of the call"))
    # Runs go with their campaign (CASCADE), and their figures with them.
    campaign = models.ForeignKey(
        SmartCampaign, on_delete=models.CASCADE, related_name="+", verbose_name=_("campaign")
    )
    # Plain numbers, 0 for none, never NULL: the unique key below must hold for
    # every row (NULLs are distinct in a unique key, and an upsert never meets them).
    sms_message_id = models.BigIntegerField(_("SMS message"), default=0)
    vibes_list_id = models.BigIntegerField(_("Vibes list"), default=0)
    sent = models.IntegerField(_("sent"), default=0)
    delivered = models.IntegerField(_("delivered"), default=0)
    failed_hard = models.IntegerField(_("hard bounces"), default=0)
    failed_soft = models.IntegerField(_("soft bounces"), default=0)
    replied = models.IntegerField(_("replied"), default=0)
    clicked = models.IntegerField(pgettext_lazy("SMS figure", "clicked"), default=0)
    unsubscribed = models.IntegerField(_("unsubscribed"), default=0)

    class Meta:
        verbose_name = _("SMS figures of an hour")
        verbose_name_plural = _("SMS figures by hour")
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign", "sms_message_id", "vibes_list_id"], name="sms_hourly_figures_key"
            )
        ]
        indexes = [
            # Each scope's date range: its rows in the order of their hour (the
            # unique key serves the whole installation's).
            models.Index(fields=["campaign", "hour"], name="sms_figures_campaign_hour"),
            models.Index(fields=["sms_message_id", "hour"], name="sms_figures_message_hour"),
            models.Index(fields=["vibes_list_id", "hour"], name="sms_figures_list_hour"),
        ]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H}:00 · {self.campaign_id}/{self.sms_message_id}/{self.vibes_list_id}"
