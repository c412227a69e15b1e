from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from smscampaigns.permissions import ActionPermissionsAdmin

from .conf import get_client
from .exceptions import VibesError
from .models import AcquisitionCampaign, CallbackEvent, Subscription, SubscriptionChange, VibesList
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
        "opt_in_date",
        "opt_out_date",
        "opt_out_reason",
        "updated_at",
    )
    list_filter = ("vibes_list", "status", "opt_out_reason")
    search_fields = ("lead__email", "lead__mobile_phone", "lead__first_name", "lead__last_name")
    list_select_related = ("lead", "vibes_list")
    raw_id_fields = ("lead",)
    show_full_result_count = False


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("created_at", "lead", "old_status", "new_status", "source", "note")
    list_filter = ("source", "new_status")
    search_fields = ("lead__email", "lead__mobile_phone")
    list_select_related = ("lead",)
    raw_id_fields = ("lead", "subscription")
    show_full_result_count = False

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
