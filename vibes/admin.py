from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from smscampaigns.permissions import ActionPermissionsAdmin, MissingPermission

from .conf import get_client
from .exceptions import VibesError
from .models import (
    AcquisitionCampaign,
    CallbackEvent,
    CallbackTest,
    Subscription,
    SubscriptionChange,
    VibesList,
)
from .registration import (
    ARRIVED,
    CallbacksNotConfigured,
    callbacks_overview,
    callbacks_register,
    callbacks_test,
)
from .subscriptions import subscriptions_apply
from .sync import vibes_sync

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
    list_display = ("name", "vibes_id", "vibes_list", "status", "ends_at", "keywords", "synced_at", "gone_at")
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
    change_list_template = "admin/vibes/callbackevent/change_list.html"
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
