"""Marketing Activities: the tree, SMS messages, smart campaigns and their flows, runs."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
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

    class Schedule(models.TextChoices):
        NONE = "none", _("Not scheduled")
        ONCE = "once", _("Run once")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

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
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, db_index=True)
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
        if self.run_time is None:
            return None
        local_after = timezone.localtime(after)
        candidate = timezone.make_aware(datetime.datetime.combine(local_after.date(), self.run_time))
        if self.schedule == self.Schedule.WEEKLY and self.run_weekday is not None:
            candidate += datetime.timedelta(days=(self.run_weekday - candidate.weekday()) % 7)
            step = datetime.timedelta(days=7)
        else:
            step = datetime.timedelta(days=1)
        while candidate <= after:
            candidate = timezone.make_aware(
                datetime.datetime.combine((candidate + step).date(), self.run_time)
            )
        return candidate


class FlowStep(models.Model):
    class Action(models.TextChoices):
        SEND_SMS = "send_sms", _("Send SMS Message")
        SUBSCRIBE = "subscribe_vibes_list", _("Subscribe to Vibes List")
        UNSUBSCRIBE = "unsubscribe_vibes_list", _("Unsubscribe from Vibes List")
        # Texts nobody: the requested campaign's trigger "Campaign is Requested" runs it for the person.
        REQUEST_CAMPAIGN = "request_campaign", _("Request Campaign")

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

    def clean(self):
        problems = self.problems()
        if problems:
            raise ValidationError(problems)


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
    # is why queries also filter on the step). Scanning the range replaces an
    # index on (run_step, ...) that would slow planning down by a third.
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


class RunResultQuerySet(models.QuerySet):
    def calls(self):
        """The rows of people a call was made for (or is about to be); never the skips.

        Repeats the condition of the partial index on a lead's results, so
        that a query by lead uses it.
        """
        return self.filter(CALLS)


class RunResult(models.Model):
    """A flow step's outcome for one person in one run (R8: once per run)."""

    # No index on either key: see RunStep.first_result_id. No database-level
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

    objects = RunResultQuerySet.as_manager()

    class Meta:
        verbose_name = _("run result")
        verbose_name_plural = _("run results")
        indexes = [
            # A lead's SMS activity: the calls made for it and the few skips
            # that name another person. The other skips are most of the rows
            # and are left out of the index to keep planning fast.
            models.Index(fields=["lead"], condition=LEAD_ACTIVITY, name="run_result_lead_activity")
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
            models.Index(fields=["run_step", "by_robot", "result"], name="link_click_step_result")
        ]

    def __str__(self):
        return f"{self.link} · {self.clicked_at}"


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
