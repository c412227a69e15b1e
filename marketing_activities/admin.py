from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from .models import CampaignRun, FlowStep, Folder, Program, RunResult, RunStep, SmartCampaign, SmsMessage


class ChildFolderInline(admin.TabularInline):
    model = Folder
    fk_name = "parent"
    fields = ("name",)
    extra = 0
    show_change_link = True
    verbose_name = _("subfolder")
    verbose_name_plural = _("subfolders")


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ("name", "parent", "program_count", "updated_at")
    list_filter = (("parent", admin.EmptyFieldListFilter),)
    search_fields = ("name",)
    inlines = (ChildFolderInline,)
    autocomplete_fields = ("parent",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parent").annotate(program_total=Count("programs"))

    @admin.display(description=_("programs"), ordering="program_total")
    def program_count(self, obj):
        return obj.program_total


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "folder", "updated_at")
    list_filter = ("folder",)
    search_fields = ("name", "description")
    autocomplete_fields = ("folder",)
    list_select_related = ("folder",)


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "characters", "segment_count", "updated_at")
    list_filter = ("program",)
    search_fields = ("name", "text")
    autocomplete_fields = ("program",)
    list_select_related = ("program",)
    readonly_fields = ("segment_info",)

    @admin.display(description=_("characters"))
    def characters(self, obj):
        return len(obj.text)

    @admin.display(description=_("segments"))
    def segment_count(self, obj):
        return obj.segments.segments

    @admin.display(description=_("segments"))
    def segment_info(self, obj):
        info = obj.segments
        return _("%(segments)s segments, %(encoding)s, %(characters)s characters") % {
            "segments": info.segments,
            "encoding": info.encoding,
            "characters": info.characters,
        }


class FlowStepInline(admin.TabularInline):
    model = FlowStep
    fields = ("position", "action", "sms_message", "vibes_list", "acquisition_campaign")
    extra = 0
    autocomplete_fields = ("sms_message",)
    ordering = ("position", "pk")


@admin.register(SmartCampaign)
class SmartCampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "qualification_rule", "schedule", "is_active", "next_run_at", "updated_at")
    list_filter = ("is_active", "schedule", "qualification_rule", "program__folder")
    search_fields = ("name", "description")
    autocomplete_fields = ("program",)
    list_select_related = ("program",)
    raw_id_fields = ("smart_list",)
    readonly_fields = ("next_run_at", "flow_problems")
    inlines = (FlowStepInline,)
    fieldsets = (
        (None, {"fields": ("name", "description", "program", "smart_list", "qualification_rule")}),
        (_("Schedule"), {"fields": ("is_active", "schedule", "run_at", "run_time", "run_weekday", "next_run_at")}),
        (_("Can it run?"), {"fields": ("flow_problems",)}),
    )

    @admin.display(description=_("problems"))
    def flow_problems(self, obj):
        if obj.pk is None:
            return "—"
        problems = obj.problems()
        if not problems:
            return _("None: the campaign can run.")
        return format_html_join("", "<div>{}</div>", ((p,) for p in problems))


class RunStepInline(admin.TabularInline):
    model = RunStep
    fields = ("position", "action", "vibes_list", "status", "counts", "planned_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CampaignRun)
class CampaignRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "campaign", "status", "trigger", "dry_run", "audience", "progress", "created_at", "finished_at")
    list_filter = ("status", "trigger", "dry_run")
    search_fields = ("campaign__name",)
    list_select_related = ("campaign",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields]
    inlines = (RunStepInline,)

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def has_add_permission(self, request):
        return False


@admin.register(RunResult)
class RunResultAdmin(admin.ModelAdmin):
    list_display = ("run_step", "lead", "outcome", "phone", "duplicate_of", "error_code", "detail", "delivery_status", "updated_at")
    list_filter = ("outcome",)
    search_fields = ("phone", "lead__email")
    raw_id_fields = ("run_step", "lead", "duplicate_of")
    list_select_related = ("run_step", "lead")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
