from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from smscampaigns.admin import LeadSearchAdmin
from smscampaigns.admin_lists import IndexedValuesListFilter, LargeListAdmin
from smscampaigns.lead_search import searched_number
from smscampaigns.permissions import ActionPermissionsAdmin, MissingPermission

from .conf import get_client
from .exceptions import VibesError
from .models import (
    AcquisitionCampaign,
    CallbackEvent,
    CallbackTest,
    InboundMessage,
    Subscription,
    SubscriptionChange,
    UnreadableCallback,
    VibesList,
)
from .registration import (
    ARRIVED,
    CallbacksNotConfigured,
    callbacks_overview,
    callbacks_register,
    callbacks_test,
)
from .subscriber_sync import subscriber_sync_details
from .subscriptions import subscriptions_apply
from .sync import vibes_sync
from .tasks import subscriber_syncs_start

# How long the admin waits for test events: 10 s unless the form says otherwise,
# and always within a web worker's timeout (gunicorn's 30 s); a later arrival
# still shows in the list of tests.
ADMIN_TEST_DEADLINE = 10
ADMIN_TEST_DEADLINE_MAX = 25


class AcquisitionCampaignInline(admin.TabularInline):
    model = AcquisitionCampaign
    fields = ("name", "vibes_id", "status", "ends_at", "keywords", "gone_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(VibesList)
class VibesListAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "vibes_id", "synced_at", "gone_at", "subscribers")
    list_filter = (("gone_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "vibes_id")
    readonly_fields = ("synced_at", "subscribers")
    inlines = (AcquisitionCampaignInline,)
    actions = ("sync_from_vibes",)

    @admin.display(description=_("subscribers (last sync)"))
    def subscribers(self, obj):
        sync = obj.subscriber_syncs.first()
        return subscriber_sync_details(sync) if sync else "—"

    @admin.action(
        description=_(
            "Sync from Vibes: all lists and acquisition campaigns, and the selected lists' subscribers"
        ),
        permissions=["change"],
    )
    def sync_from_vibes(self, request, queryset):
        # Lists and campaigns are mirrored as a whole, at once; subscribers
        # of the selected lists are read in the background (long lists take minutes).
        try:
            report = vibes_sync(client=get_client())
        except VibesError as error:
            self.message_user(request, _("Vibes sync failed: %(error)s") % {"error": error}, messages.ERROR)
            return
        self.message_user(request, report.summary(), messages.SUCCESS)
        started, busy = subscriber_syncs_start(vibes_lists=queryset.active(), user=request.user)
        for reason in busy:
            self.message_user(request, reason, messages.WARNING)
        if started:
            self.message_user(
                request,
                _(
                    "The subscribers of %(lists)s are being read from Vibes in the background; "
                    "the “subscribers” column shows how far each sync got."
                )
                % {"lists": ", ".join(str(vibes_list) for vibes_list in started)},
                messages.INFO,
            )


@admin.register(AcquisitionCampaign)
class AcquisitionCampaignAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "vibes_id", "vibes_list", "status", "ends_at", "keywords", "synced_at", "gone_at")
    list_filter = ("vibes_list", "status", ("gone_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "vibes_id", "keywords")
    list_select_related = ("vibes_list",)
    readonly_fields = ("synced_at",)


@admin.register(Subscription)
class SubscriptionAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = (
        "lead",
        "vibes_list",
        "status",
        "status_at",
        "opt_in_date",
        "opt_out_date",
        "opt_out_reason",
        "updated_at",
    )
    # Not the opt-out reason: its values are Vibes' words, read only by a scan of the table.
    list_filter = ("vibes_list", "status")
    list_select_related = ("lead", "vibes_list")
    raw_id_fields = ("lead",)
    # The dates follow the status, and the status changes through the service
    # that orders changes by their time and keeps the history.
    readonly_fields = ("status_at", "pending_since", "opt_in_date", "opt_out_date", "updated_at")
    # By the id (newest first), which an index keeps in order; the last change is a column.
    ordering = ("-pk",)

    def save_model(self, request, obj, form, change):
        status = obj.status
        if change:
            obj.status = form.initial["status"]
            super().save_model(request, obj, form, change)
            if status == obj.status:
                return
        update = subscriptions_apply(
            lead_ids=[obj.lead_id],
            vibes_list=obj.vibes_list,
            status=status,
            source=SubscriptionChange.Source.ADMIN,
            acquisition_campaign=obj.acquisition_campaign,
            opt_out_reason=obj.opt_out_reason,
            person_key=obj.vibes_person_key,
            user=request.user,
        )
        if update.superseded:
            self.message_user(
                request,
                _("A later change is already recorded for this number; the status was left as it was."),
                messages.WARNING,
            )
        obj.pk = Subscription.objects.get(lead_id=obj.lead_id, vibes_list=obj.vibes_list).pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None):
        # Deleting a subscription would erase its number's opt-out, and with
        # it the time that late events are compared with: unsubscribe instead.
        return False


class NewStatusListFilter(admin.SimpleListFilter):
    """The statuses a change can lead to, from the model rather than a DISTINCT over the changes."""

    title = _("to")
    parameter_name = "new_status"

    def lookups(self, request, model_admin):
        return Subscription.Status.choices

    def queryset(self, request, queryset):
        return queryset.filter(new_status=self.value()) if self.value() else queryset


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = (
        "recorded_at",
        "occurred_at",
        "lead",
        "vibes_list",
        "old_status",
        "new_status",
        "effect",
        "source",
        "note",
    )
    list_filter = ("source", "effect", NewStatusListFilter)
    list_select_related = ("lead", "vibes_list")
    raw_id_fields = ("lead", "subscription", "callback_event")
    # Newest first by the id, the order they arrived in: no index on the time to keep.
    ordering = ("-pk",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CallbackEvent)
class CallbackEventAdmin(LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    change_list_template = "admin/vibes/callbackevent/change_list.html"
    list_display = ("received_at", "event_type", "mdn", "outcome", "deliveries", "note")
    list_filter = (("event_type", IndexedValuesListFilter), "outcome")
    search_fields = ("mdn", "dedupe_key")
    search_help_text = _("A mobile number in any form, such as (555) 123-4567, or an event's dedupe key.")
    sortable_by = ("received_at",)
    readonly_fields = (
        "event_type",
        "dedupe_key",
        "headers",
        "payload",
        "raw_body",
        "mdn",
        "outcome",
        "note",
        "received_at",
        "deliveries",
    )

    def get_search_results(self, request, queryset, search_term):
        # Both exact, through their indexes: a number as Vibes writes it (E.164), or the key.
        term = search_term.strip()
        if not term:
            return queryset, False
        # A key may be all digits: it is looked up beside the number.
        found = Q(dedupe_key=term)
        if number := searched_number(term):
            found |= Q(mdn=number)
        return queryset.filter(found), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    # --- The callbacks registered with Vibes: list, register, test -----------------------

    def get_urls(self):
        return [
            path(
                "registrations/",
                self.admin_site.admin_view(self.registrations_view),
                name="vibes_callbackevent_registrations",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def may_manage(request) -> bool:
        return request.user.has_perm("vibes.manage_callbacks")

    @method_decorator(require_http_methods(["GET", "POST"]))
    def registrations_view(self, request):
        """What is registered with Vibes for the event types the app reads; Register and
        Send test events (POST, then back here with the results as messages)."""
        if not self.has_view_permission(request):
            raise MissingPermission(self.permission_for("view"))
        if request.method == "POST":
            if not self.may_manage(request):
                raise MissingPermission(
                    "vibes.manage_callbacks", doing=_("register and test Vibes callbacks")
                )
            self._registrations_act(request, request.POST.get("action", ""))
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Vibes callbacks"),
            "may_manage": self.may_manage(request),
            "test_deadline": ADMIN_TEST_DEADLINE,
            "test_deadline_max": ADMIN_TEST_DEADLINE_MAX,
            "tests": CallbackTest.objects.select_related("callback_event")[:20],
        }
        try:
            context["overview"] = callbacks_overview(client=get_client())
        except (CallbacksNotConfigured, VibesError) as error:
            context["problem"] = str(error)
        return TemplateResponse(request, "admin/vibes/callbackevent/registrations.html", context)

    def _registrations_act(self, request, action: str) -> None:
        client = get_client()
        try:
            if action == "register":
                for change in callbacks_register(client=client):
                    self.message_user(
                        request, change.line, messages.ERROR if change.failed else messages.SUCCESS
                    )
            elif action == "test":
                deadline = _deadline(request.POST.get("deadline"))
                if deadline is None:
                    self.message_user(
                        request,
                        _("The wait for the test events must be a whole number of seconds from 1 to %(max)d.")
                        % {"max": ADMIN_TEST_DEADLINE_MAX},
                        messages.ERROR,
                    )
                    return
                for result in callbacks_test(client=client, deadline=deadline):
                    level = (
                        messages.ERROR
                        if result.failed
                        else (messages.SUCCESS if result.outcome == ARRIVED else messages.INFO)
                    )
                    self.message_user(request, result.line, level)
            else:
                self.message_user(request, _("Choose Register or Send test events."), messages.ERROR)
        except CallbacksNotConfigured as error:
            self.message_user(request, str(error), messages.ERROR)
        except VibesError as error:
            self.message_user(
                request, _("Vibes refused the request: %(error)s") % {"error": error}, messages.ERROR
            )


def _deadline(value) -> int | None:
    """The seconds to wait for test events as the form gives them, or None when out of bounds."""
    if value in (None, ""):
        return ADMIN_TEST_DEADLINE
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return seconds if 1 <= seconds <= ADMIN_TEST_DEADLINE_MAX else None


class LeadMatchFilter(admin.SimpleListFilter):
    title = _("lead")
    parameter_name = "lead"

    def lookups(self, request, model_admin):
        return (("matched", _("Matched a lead")), ("unmatched", _("No lead has the number")))

    def queryset(self, request, queryset):
        # Exists, not a join: a message with several leads must stay one row.
        has_lead = Exists(InboundMessage.leads.through.objects.filter(inboundmessage_id=OuterRef("pk")))
        if self.value() == "matched":
            return queryset.filter(has_lead)
        if self.value() == "unmatched":
            return queryset.filter(~has_lead)
        return queryset


@admin.register(InboundMessage)
class InboundMessageAdmin(LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    """What phones texted to the short code, as Vibes posted it; nobody edits it."""

    list_display = ("occurred_at", "mdn", "short_text", "matched_leads", "unmatched_in_vibes", "received_at")
    list_filter = (LeadMatchFilter, "unmatched_in_vibes")
    search_fields = ("mdn", "text")
    search_help_text = _("A number (in any form) or words of the text.")
    sortable_by = ("occurred_at",)
    fields = (
        "mdn",
        "text",
        "short_code",
        "occurred_at",
        "received_at",
        "unmatched_in_vibes",
        "matched_leads",
        "vibes_message_id",
        "callback_event",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("leads")

    def get_search_results(self, request, queryset, search_term):
        # "(555) 123-4567" finds the messages of +15551234567 through the index on
        # numbers; anything else is looked for in the texts.
        number = searched_number(search_term)
        if number:
            return queryset.filter(mdn=number), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("text"))
    def short_text(self, obj):
        return Truncator(obj.text).chars(80)

    @admin.display(description=_("leads with this number"))
    def matched_leads(self, obj):
        leads = list(obj.leads.all())
        if not leads:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:smscampaigns_lead_change", args=[lead.pk]), str(lead)) for lead in leads),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnreadableCallback)
class UnreadableCallbackAdmin(CallbackEventAdmin):
    """The callbacks this app could not read, for an operator: each was kept
    and answered 200 (Vibes never sends a 4xx again), with the reason."""

    list_display = ("received_at", "event_type", "note", "content_type", "body_start", "deliveries")
    # Their own event types only, read through their partial index: they are few.
    list_filter = ("event_type",)
    search_fields = ("note", "raw_body", "dedupe_key")
    fields = (
        "received_at",
        "note",
        "event_type",
        "raw_body",
        "payload",
        "headers",
        "deliveries",
        "dedupe_key",
    )
    readonly_fields = fields
    search_help_text = _("Words of the reason or of the body, or the dedupe key.")
    # Not the callback events' list and registrations page: only the list.
    change_list_template = None

    def get_search_results(self, request, queryset, search_term):
        # Few enough to read them all (an index holds just these): any words of the note or body.
        return admin.ModelAdmin.get_search_results(self, request, queryset, search_term)

    def get_urls(self):
        return admin.ModelAdmin.get_urls(self)

    @admin.display(description=_("content type"))
    def content_type(self, obj):
        return obj.headers.get("Content-Type", "") if isinstance(obj.headers, dict) else ""

    @admin.display(description=_("body"))
    def body_start(self, obj):
        text = obj.raw_body if obj.raw_body is not None else str(obj.payload)
        return text if len(text) <= 80 else text[:80] + "…"
