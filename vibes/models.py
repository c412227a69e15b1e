"""Vibes lists, acquisition campaigns, subscriptions and the callbacks Vibes sends."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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


class AcquisitionCampaignQuerySet(VibesListQuerySet):
    def running(self):
        """The campaigns Vibes takes participants for: active as of the last sync, and not past their end."""
        return self.active().filter(status=AcquisitionCampaign.ACTIVE).exclude(ends_at__lte=timezone.now())


class AcquisitionCampaign(models.Model):
    """A Vibes acquisition campaign: how people are subscribed to its list.

    Vibes adds participants only while a campaign is active. Its status is
    Vibes' own word, stored as the last sync read it: scheduled, active, past
    or deleted (the contract's values); any other word, or none, is not
    active, so a campaign Vibes may refuse is never offered.
    """

    ACTIVE = "active"
    SCHEDULED = "scheduled"
    PAST = "past"
    DELETED = "deleted"

    vibes_id = models.CharField(_("Vibes id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    vibes_list = models.ForeignKey(
        VibesList,
        on_delete=models.PROTECT,
        related_name="acquisition_campaigns",
        verbose_name=_("Vibes list"),
    )
    status = models.CharField(_("status in Vibes"), max_length=20, blank=True)
    ends_at = models.DateTimeField(
        _("ends"),
        null=True,
        blank=True,
        help_text=_("Vibes' end date for the campaign, if any: from then on it takes no participants."),
    )
    keywords = models.CharField(_("keywords"), max_length=200, blank=True)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    gone_at = models.DateTimeField(_("gone from Vibes"), null=True, blank=True)

    objects = AcquisitionCampaignQuerySet.as_manager()

    class Meta:
        verbose_name = _("acquisition campaign")
        verbose_name_plural = _("acquisition campaigns")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def not_running_reason(self, now=None) -> str:
        """Why Vibes would refuse participants for this campaign, or "" while it takes them."""
        now = now or timezone.now()
        names = {"campaign": self.name}
        if self.gone_at is not None or self.status == self.DELETED:
            return (
                _("The acquisition campaign “%(campaign)s” no longer exists in Vibes; choose an active one.")
                % names
            )
        if self.status == self.PAST or (self.status == self.ACTIVE and self.ends_at and self.ends_at <= now):
            if self.ends_at and self.ends_at <= now:
                return _(
                    "The acquisition campaign “%(campaign)s” ended in Vibes on %(date)s; "
                    "choose an active one."
                ) % {**names, "date": date_format(timezone.localtime(self.ends_at), "DATETIME_FORMAT")}
            return (
                _("The acquisition campaign “%(campaign)s” has ended in Vibes; choose an active one.") % names
            )
        if self.status == self.SCHEDULED:
            return (
                _(
                    "The acquisition campaign “%(campaign)s” has not started in Vibes yet; choose an active "
                    "one, or sync the Vibes lists once it has started."
                )
                % names
            )
        if self.status != self.ACTIVE:
            if not self.status:
                return (
                    _(
                        "Vibes has not said whether the acquisition campaign “%(campaign)s” is active; "
                        "sync the Vibes lists."
                    )
                    % names
                )
            return _(
                "Vibes gives the acquisition campaign “%(campaign)s” the status “%(status)s”, and "
                "only active campaigns take participants; choose an active one."
            ) % {**names, "status": self.status}
        return ""


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
    seen_in_vibes_at = models.DateTimeField(
        _("last seen in Vibes"),
        null=True,
        blank=True,
        help_text=_("When a sync last found this lead's number among the list's subscribers in Vibes."),
    )
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
    # The acquisition campaign the change came through, where known (a
    # Subscribe step's, a callback's), for "Subscribed to Vibes List" filters.
    acquisition_campaign = models.ForeignKey(
        AcquisitionCampaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acquisition campaign"),
    )
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
        indexes = [
            # "Subscribed to Vibes List" looks up a lead's changes on one list per
            # lead: by the list alone, SQLite would read the whole list's history.
            models.Index(fields=["lead", "vibes_list"], name="subscription_change_lead_list"),
            # A person's activity log, newest first, a page at a time.
            models.Index(fields=["lead", "recorded_at", "id"], name="subscription_change_lead_time"),
        ]

    def __str__(self):
        return f"{self.lead}: {self.old_status or '—'} → {self.new_status}"


class SubscriberSync(models.Model):
    """One reading of a Vibes list's subscribers into the leads' subscriptions.

    Work is committed page by page (and check by check) together with where
    it got to, so a sync that stopped is continued by the next one started
    for its list, never started over. `started_at` tells which subscriptions
    this sync found in Vibes (`Subscription.seen_in_vibes_at` from then on).
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        FAILED = "failed", _("stopped, continues on the next sync")
        DONE = "done", pgettext_lazy("the status of a subscriber sync", "done")

    class Phase(models.TextChoices):
        PAGES = "pages", _("reading the subscribers")
        CHECKS = "checks", _("checking numbers one by one")
        DONE = "done", pgettext_lazy("the phase of a subscriber sync", "done")

    class Mode(models.TextChoices):
        PAGES = "pages", _("pages of subscribers")
        NUMBERS = "numbers", _("a search per number (Vibes does not list subscribers)")

    vibes_list = models.ForeignKey(
        VibesList, on_delete=models.CASCADE, related_name="subscriber_syncs", verbose_name=_("Vibes list")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    phase = models.CharField(_("phase"), max_length=10, choices=Phase.choices, default=Phase.PAGES)
    mode = models.CharField(_("how"), max_length=10, choices=Mode.choices, default=Mode.PAGES)
    create_leads = models.BooleanField(
        _("create leads"), default=True, help_text=_("Subscribers whose number no lead has become leads.")
    )
    page_size = models.PositiveIntegerField(_("page size"), default=1000)
    next_page = models.PositiveIntegerField(_("next page"), default=1)
    checked_up_to = models.CharField(
        _("checked up to"), max_length=16, blank=True, help_text=_("The last number checked, in order.")
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    heartbeat_at = models.DateTimeField(_("last progress"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    claimed_by = models.CharField(_("worked on by"), max_length=200, blank=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    subscribers = models.PositiveIntegerField(_("subscribers read"), default=0)
    calls = models.PositiveIntegerField(_("calls to Vibes"), default=0)
    linked = models.PositiveIntegerField(
        _("linked"), default=0, help_text=_("Leads newly linked to their Vibes person.")
    )
    created = models.PositiveIntegerField(_("leads created"), default=0)
    changed = models.PositiveIntegerField(_("leads changed"), default=0)
    unsubscribed = models.PositiveIntegerField(
        _("leads unsubscribed"), default=0, help_text=_("Of the changed: leads Vibes does not list.")
    )
    unchanged = models.PositiveIntegerField(_("leads unchanged"), default=0)
    superseded = models.PositiveIntegerField(
        _("kept"), default=0, help_text=_("A newer change (a callback, say) was kept.")
    )
    refused = models.PositiveIntegerField(
        _("refused"), default=0, help_text=_("Subscribers without a valid mobile number.")
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("subscriber sync")
        verbose_name_plural = _("subscriber syncs")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # The one to continue: a list has at most one sync that did not finish.
            models.UniqueConstraint(
                fields=["vibes_list"], condition=~models.Q(status="done"), name="subscriber_sync_one_open"
            )
        ]

    def __str__(self):
        return f"{self.vibes_list} @ {self.started_at:%Y-%m-%d %H:%M}"


class CallbackEvent(models.Model):
    """Every callback Vibes posted, raw, as received."""

    class Outcome(models.TextChoices):
        # Stored, and waiting for a worker to apply it (VIBES_CALLBACKS_APPLY).
        RECEIVED = "received", _("received, not yet applied")
        APPLIED = "applied", _("applied")
        DUPLICATE = "duplicate", _("duplicate, ignored")
        IGNORED = "ignored", _("stored, no action")
        UNMATCHED = "unmatched", _("no matching lead")
        SUPERSEDED = "superseded", _("arrived late, superseded")
        MISMATCH = "mismatch", _("person id and number disagree")
        TEST = "test", _("test event, nothing changed")
        UNREADABLE = "unreadable", _("unreadable, kept for an administrator")

    event_type = models.CharField(_("event type"), max_length=60, db_index=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=64, unique=True)
    headers = models.JSONField(_("headers"), default=dict)
    payload = models.JSONField(_("payload"))
    # Only for a body that is not a JSON object (XML, say): kept as it came.
    # Nullable, so that adding it to a long table is instant on SQLite.
    raw_body = models.TextField(_("body as received"), null=True, blank=True)  # noqa: DJ001
    # The callback URL's `ref` (a delivery receipt's SMS), for applying the event off the request.
    # Nullable, as raw_body, so that adding it to a long table is instant on SQLite.
    reference = models.CharField(_("reference"), max_length=100, null=True, blank=True)  # noqa: DJ001
    mdn = models.CharField(_("mobile number"), max_length=16, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    deliveries = models.PositiveIntegerField(
        _("deliveries"), default=1, help_text=_("Vibes delivers at least once: repeats are counted here.")
    )

    class Meta:
        verbose_name = _("callback event")
        verbose_name_plural = _("callback events")
        ordering = ["-received_at", "-pk"]
        permissions = [("manage_callbacks", _("Can register and test Vibes callbacks"))]
        indexes = [
            # The admin's list, newest first: its whole order, so that events
            # received in the same instant are not sorted at every page.
            models.Index(fields=["received_at", "id"], name="callback_event_newest"),
            # The admin's unreadable callbacks, newest first, among millions of
            # readable ones; a readable callback adds nothing to it.
            models.Index(
                fields=["received_at"],
                condition=models.Q(outcome="unreadable"),
                name="callback_event_unreadable",
            ),
            # The events waiting to be applied, oldest first, for the applier's
            # batches: a few among millions applied, and gone from it once applied.
            models.Index(
                fields=["id"], condition=models.Q(outcome="received"), name="callback_event_waiting"
            ),
        ]

    def __str__(self):
        return f"{self.event_type or '—'} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class ConnectCallback(models.Model):
    """A callback this installation registered with Vibes Connect.

    Connect publishes how to register a callback and nothing else (no list,
    no change, no cancel), so this record is the only way to know what was
    registered and to register again only when the URL changed. The URL's
    password is kept only inside a digest keyed with SECRET_KEY (a new key
    makes the next `register` register again, which changes nothing else).
    """

    callback_type = models.CharField(_("callback type"), max_length=40)
    short_code = models.CharField(_("short code"), max_length=20)
    vibes_id = models.CharField(_("Vibes id"), max_length=64, blank=True)
    shown_url = models.CharField(_("URL"), max_length=500, help_text=_("The password is not kept."))
    url_digest = models.CharField(max_length=64)
    registered_at = models.DateTimeField(_("registered"), default=timezone.now)

    class Meta:
        verbose_name = _("Connect callback")
        verbose_name_plural = _("Connect callbacks")
        constraints = [
            models.UniqueConstraint(fields=["callback_type", "short_code"], name="connect_callback_once")
        ]

    def __str__(self):
        return f"{self.callback_type} ({self.short_code})"


class CallbackTest(models.Model):
    """A test event asked of Vibes, and whether it arrived at the callbacks URL.

    The marker goes out as the test's person (or participant) id; Vibes
    returns it in the event, so the endpoint knows the event for a test, keeps
    it, and changes nothing with it.
    """

    MARKER_PREFIX = "callbacks-test-"

    callback_type = models.CharField(_("callback type"), max_length=40)
    marker = models.CharField(max_length=64, unique=True)
    vibes_event_id = models.CharField(_("Vibes event id"), max_length=100, blank=True, db_index=True)
    requested_at = models.DateTimeField(_("asked for"), default=timezone.now)
    wait_until = models.DateTimeField(_("awaited until"))
    arrived_at = models.DateTimeField(_("arrived"), null=True, blank=True)
    callback_event = models.ForeignKey(
        CallbackEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("callback event"),
    )
    error = models.CharField(_("refused by Vibes"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("callback test")
        verbose_name_plural = _("callback tests")
        ordering = ["-requested_at", "-pk"]

    def __str__(self):
        return f"{self.callback_type} test @ {self.requested_at:%Y-%m-%d %H:%M:%S}"

    @property
    def seconds_to_arrive(self) -> float | None:
        if self.arrived_at is None:
            return None
        return max((self.arrived_at - self.requested_at).total_seconds(), 0.0)


class InboundMessage(models.Model):
    """A text a phone sent to the short code, as Vibes posted it: Connect's
    inbound SMS, the Platform's `unmatched_message_received`, or both.

    Stored once however many callbacks bring it (`dedupe_key`), with the leads
    that had its number when it arrived. The product records replies and never
    acts on their text: a STOP is Vibes' business, which sends
    `subscription_removed`.
    """

    mdn = models.CharField(
        _("mobile number"),
        max_length=16,
        blank=True,
        db_index=True,
        help_text=_("In E.164 form; blank when the callback carried no readable number."),
    )
    text = models.TextField(_("text"), blank=True)
    short_code = models.CharField(_("sent to"), max_length=20, blank=True)
    occurred_at = models.DateTimeField(
        _("sent at"),
        help_text=_("The event's own time as Vibes reports it, never later than its arrival."),
    )
    received_at = models.DateTimeField(_("arrived"), default=timezone.now)
    vibes_message_id = models.CharField(_("Vibes message id"), max_length=64, blank=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=64, unique=True)
    unmatched_in_vibes = models.BooleanField(
        _("unmatched in Vibes"),
        default=False,
        help_text=_("Vibes reported that the text matched no keyword or campaign."),
    )
    leads = models.ManyToManyField(
        Lead, related_name="inbound_messages", blank=True, verbose_name=_("leads with this number")
    )
    callback_event = models.ForeignKey(
        CallbackEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("callback event"),
    )

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            # The admin's replies, newest first: their whole order (see CallbackEvent's).
            models.Index(fields=["occurred_at", "id"], name="inbound_message_newest"),
        ]

    def __str__(self):
        return f"{self.mdn or '—'}: {self.text[:40]}"


class UnreadableCallbackManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(outcome=CallbackEvent.Outcome.UNREADABLE)


class UnreadableCallback(CallbackEvent):
    """The callbacks this app could not read, kept for an administrator to look at."""

    objects = UnreadableCallbackManager()

    class Meta:
        proxy = True
        verbose_name = _("unreadable callback")
        verbose_name_plural = _("unreadable callbacks")
