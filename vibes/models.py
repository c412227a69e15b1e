"""Vibes lists, acquisition campaigns, subscriptions and the callbacks Vibes sends."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from smscampaigns.models import Lead


class VibesListQuerySet(models.QuerySet):
    def active(self):
        return self.filter(gone_at__isnull=True)


class VibesList(models.Model):
    """A Vibes subscription list, mirrored by `vibes_sync`."""

    vibes_id = models.CharField(_("Vibes id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    gone_at = models.DateTimeField(
        _("gone from Vibes"),
        null=True,
        blank=True,
        help_text=_("Set when the last sync no longer found this list in Vibes."),
    )

    objects = VibesListQuerySet.as_manager()

    class Meta:
        verbose_name = _("Vibes list")
        verbose_name_plural = _("Vibes lists")
        ordering = ["name"]

    def __str__(self):
        return self.name


class AcquisitionCampaign(models.Model):
    """A Vibes acquisition campaign: how people are subscribed to its list."""

    vibes_id = models.CharField(_("Vibes id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    vibes_list = models.ForeignKey(
        VibesList,
        on_delete=models.PROTECT,
        related_name="acquisition_campaigns",
        verbose_name=_("Vibes list"),
    )
    status = models.CharField(_("status in Vibes"), max_length=20, blank=True)
    keywords = models.CharField(_("keywords"), max_length=200, blank=True)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    gone_at = models.DateTimeField(_("gone from Vibes"), null=True, blank=True)

    objects = VibesListQuerySet.as_manager()

    class Meta:
        verbose_name = _("acquisition campaign")
        verbose_name_plural = _("acquisition campaigns")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Subscription(models.Model):
    """A lead's subscription to a Vibes list, as far as this app knows it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUBSCRIBED = "subscribed", _("subscribed")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("lead")
    )
    vibes_list = models.ForeignKey(
        VibesList,
        on_delete=models.CASCADE,
        related_name="subscriptions",
        verbose_name=_("Vibes list"),
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    acquisition_campaign = models.ForeignKey(
        AcquisitionCampaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="subscriptions",
        verbose_name=_("acquisition campaign"),
    )
    vibes_person_key = models.CharField(_("Vibes person key"), max_length=64, blank=True)
    pending_since = models.DateTimeField(_("pending since"), null=True, blank=True)
    opt_in_date = models.DateTimeField(_("opt-in date"), null=True, blank=True)
    opt_out_date = models.DateTimeField(_("opt-out date"), null=True, blank=True)
    opt_out_reason = models.CharField(_("opt-out reason"), max_length=40, blank=True)
    status_at = models.DateTimeField(
        _("status as of"),
        db_default=Now(),
        help_text=_(
            "The time of the newest change applied to this subscription: the event's own time, "
            "not when it arrived. Older events change nothing."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "vibes_list"], name="subscription_once_per_list")
        ]
        indexes = [models.Index(fields=["vibes_list", "status"], name="subscription_list_status")]

    def __str__(self):
        return f"{self.lead} · {self.vibes_list} · {self.get_status_display()}"


class SubscriptionChange(models.Model):
    """One change of a lead's status on a Vibes list, or one that was asked for and changed nothing.

    `occurred_at` is the change's own time (a callback's opt-in or opt-out
    date; the moment a run, a sync or an administrator made it), by which
    changes are ordered; `recorded_at` is when it reached this app.
    """

    class Source(models.TextChoices):
        CALLBACK = "callback", _("Vibes callback")
        RUN = "run", _("campaign run")
        SYNC = "sync", _("Vibes sync")
        ADMIN = "admin", _("administrator")

    class Effect(models.TextChoices):
        APPLIED = "applied", _("applied")
        SUPERSEDED = "superseded", _("arrived late, superseded")
        MISMATCH = "mismatch", _("person id and number disagree")

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="changes",
        verbose_name=_("subscription"),
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="subscription_changes", verbose_name=_("lead")
    )
    vibes_list = models.ForeignKey(
        VibesList,
        on_delete=models.CASCADE,
        related_name="subscription_changes",
        verbose_name=_("Vibes list"),
    )
    old_status = models.CharField(_("from"), max_length=12, blank=True)
    new_status = models.CharField(_("to"), max_length=12)
    effect = models.CharField(_("effect"), max_length=10, choices=Effect.choices, default=Effect.APPLIED)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    callback_event = models.ForeignKey(
        "CallbackEvent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="subscription_changes",
        verbose_name=_("callback event"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("administrator"),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    occurred_at = models.DateTimeField(_("event time"), default=timezone.now)
    recorded_at = models.DateTimeField(_("arrived"), default=timezone.now)

    class Meta:
        verbose_name = _("subscription change")
        verbose_name_plural = _("subscription changes")
        ordering = ["-recorded_at", "-pk"]

    def __str__(self):
        return f"{self.lead}: {self.old_status or '—'} → {self.new_status}"


class CallbackEvent(models.Model):
    """Every callback Vibes posted, raw, as received."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("applied")
        DUPLICATE = "duplicate", _("duplicate, ignored")
        IGNORED = "ignored", _("stored, no action")
        UNMATCHED = "unmatched", _("no matching lead")
        SUPERSEDED = "superseded", _("arrived late, superseded")
        MISMATCH = "mismatch", _("person id and number disagree")
        UNREADABLE = "unreadable", _("unreadable, kept for an operator")

    event_type = models.CharField(_("event type"), max_length=60, db_index=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=64, unique=True)
    headers = models.JSONField(_("headers"), default=dict)
    payload = models.JSONField(_("payload"))
    # Only for a body that is not a JSON object (XML, say): kept as it came.
    # Nullable, so that adding it to a long table is instant on SQLite.
    raw_body = models.TextField(_("body as received"), null=True, blank=True)  # noqa: DJ001
    mdn = models.CharField(_("mobile number"), max_length=16, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    deliveries = models.PositiveIntegerField(
        _("deliveries"), default=1, help_text=_("Vibes delivers at least once: repeats are counted here.")
    )

    class Meta:
        verbose_name = _("callback event")
        verbose_name_plural = _("callback events")
        ordering = ["-received_at", "-pk"]

    def __str__(self):
        return f"{self.event_type or '—'} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class UnreadableCallbackManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(outcome=CallbackEvent.Outcome.UNREADABLE)


class UnreadableCallback(CallbackEvent):
    """The callbacks this app could not read, kept for an operator to look at."""

    objects = UnreadableCallbackManager()

    class Meta:
        proxy = True
        verbose_name = _("unreadable callback")
        verbose_name_plural = _("unreadable callbacks")
