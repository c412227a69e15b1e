import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.fields import InvalidJSONInput
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Lead, SmartList
from .permissions import ActionPermissionsAdmin
from .services import leads_import, leads_set_flag


class LeadImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A header row, then one lead per row. Columns: first_name, last_name, email, "
            "mobile_phone, country, city, state, lead_source, lead_score, blocklisted, "
            "marketing_suspended. Rows whose email matches a lead update it."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        raw = upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(_("The file is not UTF-8 text; save it as “CSV UTF-8”.")) from None


@admin.register(Lead)
class LeadAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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
    list_filter = ("blocklisted", "marketing_suspended", "lead_source", "country")
    search_fields = ("first_name", "last_name", "email", "mobile_phone")
    readonly_fields = ("created_at", "updated_at")
    show_full_result_count = False
    list_per_page = 50
    actions = ("blocklist", "unblocklist", "suspend_marketing", "resume_marketing")
    fieldsets = (
        (None, {"fields": ("first_name", "last_name", "email", "mobile_phone")}),
        (_("Where"), {"fields": ("country", "state", "city")}),
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
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            raise PermissionDenied
        report = None
        form = LeadImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = leads_import(file=io.StringIO(form.cleaned_data["file"]))
            level = messages.WARNING if report.problems else messages.SUCCESS
            self.message_user(request, report.summary(), level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import leads"),
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/smscampaigns/lead/import.html", context)

    def _set_flag(self, request, queryset, flag, value, message):
        changed = leads_set_flag(leads=queryset, flag=flag, value=value)
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
