from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from smscampaigns.permissions import ActionPermissionsAdmin

from .conf import get_client
from .exceptions import VibesError
from .models import AcquisitionCampaign, CallbackEvent, Subscription, SubscriptionChange, VibesList
from .subscriber_sync import subscriber_sync_details
from .subscriptions import subscriptions_apply
from .sync import vibes_sync
from .tasks import subscriber_syncs_start


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
