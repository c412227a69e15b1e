import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseStopPolling

from .activities import CREATED_BY_ADMIN, lead_changes_record, leads_created_record
from .admin_lists import IndexedValuesListFilter, LargeListAdmin
from .lead_search import lead_search_condition, search_help
from .lead_triggers import CHANGED_FIELDS
from .models import Activity, Lead, LeadFlagChange, LeadImport, SmartList, flag_changes_by
from .permissions import ActionPermissionsAdmin
from .services import STALLED_AFTER, ImportCannotRestart, leads_set_flag
from .tasks import lead_import_restart, lead_import_start

# Problems listed on an import's page; all of them are in its CSV download.
PROBLEMS_SHOWN = 1000


class LeadImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A header row, then one lead per row; comma, semicolon or tab separated; UTF-8, UTF-16 or "
            "Windows-1252 (the encoding is detected). Columns: first_name, last_name, email, mobile_phone, "
            "country, city, state, lead_source, lead_score, blocklisted, marketing_suspended, created_at. "
            "A row whose email matches a lead updates it; a row without an email updates the lead without "
            "one that has its number. Blank cells change nothing: lifting a block takes an explicit “no”."
        ),
    )


def can_import(request) -> bool:
    return request.user.has_perms(["smscampaigns.add_lead", "smscampaigns.change_lead"])


class LeadSearchAdmin:
    """Searches a list by its people, through the indexes of smscampaigns/lead_search.py:
    `lead_search_path` names the lead from the listed model ("" for leads themselves)."""

    lead_search_path = "lead"
    # Django shows the search box only for a list with search fields; get_search_results searches.
    search_fields = ("lead",)

    @property
    def search_help_text(self):
        return search_help()

    def get_search_results(self, request, queryset, search_term):
        condition = lead_search_condition(search_term)
        if condition is None:
            return queryset, False
        if not self.lead_search_path:
            return queryset.filter(condition), False
        people = Lead.objects.filter(condition).values("pk")
        return queryset.filter(**{f"{self.lead_search_path}__in": people}), False


@admin.register(Lead)
class LeadAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "email",
        "mobile_phone",
        "country",
        "lead_score",
        "blocklisted",
        "marketing_suspended",
        "created_at",
    )
    list_filter = (
        "blocklisted",
        "marketing_suspended",
        ("lead_source", IndexedValuesListFilter),
        ("country", IndexedValuesListFilter),
    )
    lead_search_path = ""
    search_fields = ("first_name", "last_name", "email", "mobile_phone")
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 50
    actions = ("blocklist", "unblocklist", "suspend_marketing", "resume_marketing")
    fieldsets = (
        (None, {"fields": ("first_name", "last_name", "email", "mobile_phone")}),
        (_("Where"), {"fields": ("country", "state", "city", "time_zone")}),
        (_("Marketing"), {"fields": ("lead_source", "lead_score", "blocklisted", "marketing_suspended")}),
        (_("Dates"), {"fields": ("created_at", "updated_at")}),
    )
    change_list_template = "admin/smscampaigns/lead/change_list.html"

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="smscampaigns_lead_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not can_import(request):
            raise PermissionDenied
        form = LeadImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            # The request only keeps the file; a background worker imports it.
            lead_import = lead_import_start(upload=form.cleaned_data["file"], user=request.user)
            return HttpResponseRedirect(
                reverse("admin:smscampaigns_leadimport_change", args=[lead_import.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import leads"),
            "form": form,
            "recent_imports": LeadImport.objects.select_related("created_by")[:10],
        }
        return TemplateResponse(request, "admin/smscampaigns/lead/import.html", context)

    def save_model(self, request, obj, form, change):
        changed = [name for name in form.changed_data if name in CHANGED_FIELDS] if change else []
        before = Lead.objects.filter(pk=obj.pk).values(*changed).first() if changed else None
        with flag_changes_by(LeadFlagChange.Source.ADMIN_FORM, user=request.user):
            super().save_model(request, obj, form, change)
            # The person's activities: "Person is Created", "Data Value Changes".
            if not change:
                leads_created_record(lead_ids=[obj.pk], source=CREATED_BY_ADMIN)
            elif before:
                lead_changes_record(
                    changes=[(obj.pk, name, before[name], getattr(obj, name)) for name in changed],
                    source=CREATED_BY_ADMIN,
                    key=f"admin-save-{timezone.now().isoformat()}",
                )

    def _set_flag(self, request, queryset, flag, value, message):
        changed = leads_set_flag(leads=queryset, flag=flag, value=value, user=request.user)
        self.message_user(request, message % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Blocklist the selected people"), permissions=["change"])
    def blocklist(self, request, queryset):
        self._set_flag(request, queryset, "blocklisted", True, _("%(count)s people blocklisted."))

    @admin.action(description=_("Remove the selected people from the blocklist"), permissions=["change"])
    def unblocklist(self, request, queryset):
        self._set_flag(
            request, queryset, "blocklisted", False, _("%(count)s people removed from the blocklist.")
        )

    @admin.action(description=_("Suspend marketing for the selected people"), permissions=["change"])
    def suspend_marketing(self, request, queryset):
        self._set_flag(
            request, queryset, "marketing_suspended", True, _("Marketing suspended for %(count)s people.")
        )

    @admin.action(description=_("Resume marketing for the selected people"), permissions=["change"])
    def resume_marketing(self, request, queryset):
        self._set_flag(
            request, queryset, "marketing_suspended", False, _("Marketing resumed for %(count)s people.")
        )


class DefinitionField(forms.JSONField):
    """The smart list's JSON as typed, refused with a message when Python cannot read it."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except (RecursionError, ValueError):
            # Nested deeper than Python reads, or an integer of more than 4,300 digits.
            raise ValidationError(
                _("This JSON cannot be read: it is nested too deeply or holds a number too long."),
                code="invalid",
            ) from None

    def bound_data(self, data, initial):
        # Shown again exactly as typed, whatever it holds: nothing typed is lost to a re-encoding.
        if isinstance(data, str) and not self.disabled:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def prepare_value(self, value):
        # A smart list saved before unpaired surrogates were refused would not encode as UTF-8.
        return super().prepare_value(value).encode("utf-8", "backslashreplace").decode("utf-8")


@admin.register(LeadImport)
class LeadImportAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    """The imports: each one's page shows its progress while it runs, then its report."""

    list_display = (
        "__str__",
        "status",
        "created_by",
        "created_at",
        "leads_created",
        "leads_updated",
        "leads_unchanged",
        "rows_refused",
    )
    list_filter = ("status",)
    search_fields = ("file_name",)
    list_select_related = ("created_by",)
    actions = ("start_again",)
    change_list_template = "admin/smscampaigns/leadimport/change_list.html"

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or can_import(request)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or can_import(request)

    def has_add_permission(self, request):
        return False  # an import starts from Leads → Import from CSV

    def has_change_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request):
        return can_import(request)

    def permission_for(self, name: str) -> str:
        # Starting an import again is importing: it needs the lead permissions.
        return "smscampaigns.add_lead" if name == "import" else super().permission_for(name)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/problems.csv",
                self.admin_site.admin_view(self.problems_view),
                name="smscampaigns_leadimport_problems",
            ),
            *super().get_urls(),
        ]

    def _import_or_404(self, request, object_id):
        lead_import = self.get_object(request, unquote(object_id))
        if lead_import is None:
            raise Http404(_("There is no such import."))
        if not self.has_view_permission(request, lead_import):
            raise PermissionDenied
        return lead_import

    def change_view(self, request, object_id, form_url="", extra_context=None):
        lead_import = self._import_or_404(request, object_id)
        problems = lead_import.problems.all()[: PROBLEMS_SHOWN + 1]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(lead_import),
            "lead_import": lead_import,
            "stalled": lead_import.is_active and lead_import.updated_at < timezone.now() - STALLED_AFTER,
            "problems": problems[:PROBLEMS_SHOWN],
            "more_problems": len(problems) > PROBLEMS_SHOWN,
            "problem_count": lead_import.problems.count()
            if len(problems) > PROBLEMS_SHOWN
            else len(problems),
        }
        template = "admin/smscampaigns/leadimport/report.html"
        if request.htmx and not request.htmx.history_restore_request:
            # htmx: the page polls its status every second; once the import has
            # finished, 286 shows the report and stops the polling.
            partial = render_to_string(f"{template}#import-status", context, request=request)
            if not lead_import.is_active:
                return HttpResponseStopPolling(partial)
            return TemplateResponse(request, f"{template}#import-status", context)
        return TemplateResponse(request, template, context)

    def problems_view(self, request, object_id):
        """Every problem of an import as CSV, streamed (an import may refuse many rows)."""
        lead_import = self._import_or_404(request, object_id)

        class Echo:
            def write(self, value):
                return value

        def rows():
            writer = csv.writer(Echo())
            yield writer.writerow([_("line"), _("column"), _("problem")])
            for line, column, message in lead_import.problems.values_list(
                "line", "column", "message"
            ).iterator():
                yield writer.writerow([line, column, message])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{lead_import.pk}-problems.csv"'
        return response

    @admin.action(description=_("Start again (a failed or stalled import)"), permissions=["import"])
    def start_again(self, request, queryset):
        for lead_import in queryset:
            try:
                lead_import_restart(lead_import=lead_import)
            except ImportCannotRestart as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("%(import)s started again.") % {"import": lead_import})


@admin.register(LeadFlagChange)
class LeadFlagChangeAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    """Who blocklisted or suspended whom, or lifted it, when and from where (read only)."""

    list_display = (
        "created_at",
        "lead",
        "flag",
        "old_value",
        "new_value",
        "source",
        "lead_import",
        "line",
        "note",
    )
    list_filter = ("flag", "new_value", "source")
    list_select_related = ("lead", "lead_import")
    raw_id_fields = ("lead", "lead_import", "user")
    # Newest first by the id, which follows the time they were recorded: no index on the time to keep.
    ordering = ("-pk",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    """What happened to whom, as the trigger campaigns saw it (read only)."""

    list_display = (
        "occurred_at",
        "lead",
        "kind",
        "source",
        "attributes_shown",
        "recorded_at",
        "dispatched_at",
    )
    list_filter = (
        "kind",
        ("source", IndexedValuesListFilter),
        ("occurred_at", admin.DateFieldListFilter),
    )
    list_select_related = ("lead",)
    raw_id_fields = ("lead",)
    # Newest first by the id, which follows the time they were recorded: the
    # indexes on (kind, id) and (source, id) serve the filtered lists too.
    ordering = ("-pk",)

    @admin.display(description=_("attributes"))
    def attributes_shown(self, obj):
        attributes = obj.attributes if isinstance(obj.attributes, dict) else {}
        return (
            "; ".join(f"{key}: {value}" for key, value in attributes.items() if value not in ("", None))
            or "—"
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SmartListForm(forms.ModelForm):
    class Meta:
        model = SmartList
        fields = ("name", "definition")
        field_classes = {"definition": DefinitionField}
        widgets = {"definition": forms.Textarea(attrs={"rows": 12, "cols": 90})}


@admin.register(SmartList)
class SmartListAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    form = SmartListForm
    list_display = ("name", "rule_count", "logic_display", "campaign_name", "updated_at")
    search_fields = ("name",)
    readonly_fields = ("qualifying_people",)

    @admin.display(description=_("rules"))
    def rule_count(self, obj):
        return len(obj.rules)

    @admin.display(description=_("logic"))
    def logic_display(self, obj):
        return obj.logic

    @admin.display(description=_("smart campaign"))
    def campaign_name(self, obj):
        campaign = getattr(obj, "campaign", None)
        return campaign.name if campaign else "—"

    @admin.display(description=_("people who qualify"))
    def qualifying_people(self, obj):
        if obj.pk is None:
            return "—"
        try:
            count = obj.leads().count()
        except ValidationError as error:
            return " ".join(error.messages)
        return ngettext("%(count)s person", "%(count)s people", count) % {"count": count}
