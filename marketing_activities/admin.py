from django.contrib import admin, messages
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.html import format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from smscampaigns.admin import LeadAdmin
from smscampaigns.models import Lead

from .activity import lead_activity
from .runner import (
    CampaignCannotRun,
    campaign_preview,
    campaign_start,
    run_dispatch,
    run_resume,
    run_retry_uncertain,
)
from .runner.report import step_summary
from .sms_text import count_received, count_received_many

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
        return (
            super().get_queryset(request).select_related("parent").annotate(program_total=Count("programs"))
        )

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

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One query for the page: the longest values of every token its messages use.
        for message, received in zip(
            changelist.result_list, count_received_many(m.text for m in changelist.result_list), strict=True
        ):
            message.received = received
        return changelist

    def _received(self, obj):
        if not hasattr(obj, "received"):
            obj.received = count_received(obj.text)
        return obj.received

    # The columns count the message as people get it, as the editor does.
    @admin.display(description=_("characters"))
    def characters(self, obj):
        return self._received(obj).longest.characters

    @admin.display(description=_("segments"))
    def segment_count(self, obj):
        return self._received(obj).longest.segments

    @admin.display(description=_("segments"))
    def segment_info(self, obj):
        if obj.pk is None:
            return "—"
        received = self._received(obj)
        longest = received.longest
        info = _(
            "The longest message anyone gets: %(segments)s segments, %(encoding)s, %(characters)s characters "
            "(each token at its longest value among the people)."
        ) % {"segments": longest.segments, "encoding": longest.encoding, "characters": longest.characters}
        if received.outside_gsm7 and received.within_gsm7.encoding == "GSM-7":
            info += " " + _(
                "People with characters outside GSM-7 in their values get UCS-2: up to %(ucs2)s segments; "
                "everyone else: up to %(gsm7)s."
            ) % {"ucs2": received.outside_gsm7.segments, "gsm7": received.within_gsm7.segments}
        return info


class FlowStepInline(admin.TabularInline):
    model = FlowStep
    fields = ("position", "action", "sms_message", "vibes_list", "acquisition_campaign")
    extra = 0
    autocomplete_fields = ("sms_message",)
    ordering = ("position", "pk")


@admin.register(SmartCampaign)
class SmartCampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "program",
        "qualification_rule",
        "schedule",
        "is_active",
        "next_run_at",
        "updated_at",
    )
    list_filter = ("is_active", "schedule", "qualification_rule", "program__folder")
    search_fields = ("name", "description")
    autocomplete_fields = ("program",)
    list_select_related = ("program",)
    raw_id_fields = ("smart_list",)
    readonly_fields = ("next_run_at", "flow_problems")
    inlines = (FlowStepInline,)
    actions = ("run_now", "preview_audience")
    fieldsets = (
        (None, {"fields": ("name", "description", "program", "smart_list", "qualification_rule")}),
        (
            _("Schedule"),
            {"fields": ("is_active", "schedule", "run_at", "run_time", "run_weekday", "next_run_at")},
        ),
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

    @admin.action(description=_("Run now"), permissions=["change"])
    def run_now(self, request, queryset):
        for campaign in queryset:
            try:
                run = campaign_start(campaign=campaign, trigger="admin", user=request.user)
            except CampaignCannotRun as error:
                self.message_user(
                    request, f"{campaign}: {' '.join(map(str, error.problems))}", messages.ERROR
                )
            else:
                self.message_user(
                    request, _("%(campaign)s: run %(run)s started.") % {"campaign": campaign, "run": run.pk}
                )

    @admin.action(description=_("Preview audience (nothing is sent)"), permissions=["view"])
    def preview_audience(self, request, queryset):
        previews, problems = [], []
        for campaign in queryset:
            try:
                preview = campaign_preview(campaign=campaign, sample_size=20)
            except CampaignCannotRun as error:
                problems.append((campaign, error.problems))
            else:
                previews.append((campaign, preview, [(step, step_summary(step)) for step in preview.steps]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Audience preview"),
            "previews": previews,
            "problems": problems,
        }
        return TemplateResponse(request, "admin/marketing_activities/smartcampaign/preview.html", context)


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
    list_display = (
        "pk",
        "campaign",
        "status",
        "trigger",
        "dry_run",
        "audience",
        "progress",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "trigger", "dry_run")
    search_fields = ("campaign__name",)
    list_select_related = ("campaign",)
    readonly_fields = [f.name for f in CampaignRun._meta.fields]
    inlines = (RunStepInline,)
    actions = ("resume", "retry_uncertain")

    @admin.action(description=_("Resume (finish an interrupted or failed run)"), permissions=["change"])
    def resume(self, request, queryset):
        for run in queryset:
            try:
                run_dispatch(run_resume(run=run))
            except CampaignCannotRun as error:
                self.message_user(request, " ".join(map(str, error.problems)), messages.ERROR)
            else:
                self.message_user(request, _("Run %(run)s resumed.") % {"run": run.pk})

    @admin.action(
        description=_("Send the uncertain calls again (they may have gone out)"), permissions=["change"]
    )
    def retry_uncertain(self, request, queryset):
        for run in queryset:
            try:
                count = run_retry_uncertain(run=run)
            except CampaignCannotRun as error:
                self.message_user(request, " ".join(map(str, error.problems)), messages.ERROR)
                continue
            run_dispatch(run)
            self.message_user(
                request,
                ngettext(
                    "Run %(run)s: %(count)s call queued again.",
                    "Run %(run)s: %(count)s calls queued again.",
                    count,
                )
                % {"run": run.pk, "count": count},
            )

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def has_add_permission(self, request):
        return False


@admin.register(RunResult)
class RunResultAdmin(admin.ModelAdmin):
    list_display = (
        "run_step",
        "lead",
        "outcome",
        "phone",
        "duplicate_of",
        "error_code",
        "detail",
        "delivery_status",
        "updated_at",
    )
    list_filter = ("outcome",)
    search_fields = ("phone", "lead__email")
    raw_id_fields = ("run_step", "lead", "duplicate_of")
    list_select_related = ("run_step", "lead")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The lead's page lists its SMS activity; the people app cannot know about
# runs, so this app extends its admin.
admin.site.unregister(Lead)


@admin.register(Lead)
class LeadWithActivityAdmin(LeadAdmin):
    readonly_fields = (*LeadAdmin.readonly_fields, "sms_activity")
    fieldsets = (*LeadAdmin.fieldsets, (_("SMS activity, newest first"), {"fields": ("sms_activity",)}))

    @admin.display(description=_("activity"))
    def sms_activity(self, obj):
        if obj.pk is None:
            return "—"
        entries = lead_activity(obj)
        if not entries:
            return _("No SMS activity yet.")
        return format_html_join(
            "",
            '<div class="sms-activity"><time>{}</time> <strong>{}</strong> {}</div>',
            ((date_format(localtime(e.when), "SHORT_DATETIME_FORMAT"), e.kind, e.text) for e in entries),
        )
