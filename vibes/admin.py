from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from smscampaigns.permissions import ActionPermissionsAdmin

from .conf import get_client
from .exceptions import VibesError
from .models import (
    AcquisitionCampaign,
    CallbackEvent,
    Subscription,
    SubscriptionChange,
    UnreadableCallback,
    VibesList,
)
from .subscriptions import subscriptions_apply
from .sync import vibes_sync


class AcquisitionCampaignInline(admin.TabularInline):
    model = AcquisitionCampaign
    fields = ("name", "vibes_id", "status", "keywords", "gone_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(VibesList)
class VibesListAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "vibes_id", "synced_at", "gone_at")
    list_filter = (("gone_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "vibes_id")
    readonly_fields = ("synced_at",)
    inlines = (AcquisitionCampaignInline,)
    actions = ("sync_from_vibes",)

    @admin.action(
        description=_("Sync all lists and acquisition campaigns from Vibes"), permissions=["change"]
    )
    def sync_from_vibes(self, request, queryset):
        # Vibes is mirrored as a whole: the selection only starts the action.
        try:
            report = vibes_sync(client=get_client())
        except VibesError as error:
            self.message_user(request, _("Vibes sync failed: %(error)s") % {"error": error}, messages.ERROR)
            return
        self.message_user(request, report.summary(), messages.SUCCESS)


@admin.register(AcquisitionCampaign)
class AcquisitionCampaignAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "vibes_id", "vibes_list", "status", "keywords", "synced_at", "gone_at")
    list_filter = ("vibes_list", "status", ("gone_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "vibes_id", "keywords")
    list_select_related = ("vibes_list",)
    readonly_fields = ("synced_at",)


@admin.register(Subscription)
class SubscriptionAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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
    list_filter = ("vibes_list", "status", "opt_out_reason")
    search_fields = ("lead__email", "lead__mobile_phone", "lead__first_name", "lead__last_name")
    list_select_related = ("lead", "vibes_list")
    raw_id_fields = ("lead",)
    # The dates follow the status, and the status changes through the service
    # that orders changes by their time and keeps the history.
    readonly_fields = ("status_at", "pending_since", "opt_in_date", "opt_out_date", "updated_at")
    show_full_result_count = False

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
                _("A change for this number is newer than now; the status was left as it was."),
                messages.WARNING,
            )
        obj.pk = Subscription.objects.get(lead_id=obj.lead_id, vibes_list=obj.vibes_list).pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None):
        # Deleting a subscription would erase its number's opt-out, and with
        # it the time that late events are compared with: unsubscribe instead.
        return False


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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
    list_filter = ("source", "effect", "new_status")
    search_fields = ("lead__email", "lead__mobile_phone")
    list_select_related = ("lead", "vibes_list")
    raw_id_fields = ("lead", "subscription", "callback_event")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CallbackEvent)
class CallbackEventAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("received_at", "event_type", "mdn", "outcome", "deliveries", "note")
    list_filter = ("event_type", "outcome")
    search_fields = ("mdn", "dedupe_key")
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
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnreadableCallback)
class UnreadableCallbackAdmin(CallbackEventAdmin):
    """The callbacks this app could not read, for an operator: each was kept
    and answered 200 (Vibes never sends a 4xx again), with the reason."""

    list_display = ("received_at", "event_type", "note", "content_type", "body_start", "deliveries")
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

    @admin.display(description=_("content type"))
    def content_type(self, obj):
        return obj.headers.get("Content-Type", "") if isinstance(obj.headers, dict) else ""

    @admin.display(description=_("body"))
    def body_start(self, obj):
        text = obj.raw_body if obj.raw_body is not None else str(obj.payload)
        return text if len(text) <= 80 else text[:80] + "…"
