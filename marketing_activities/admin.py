from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from smscampaigns.admin import ActivityAdmin, LeadAdmin, LeadSearchAdmin
from smscampaigns.admin_lists import LargeListAdmin
from smscampaigns.models import Activity, Lead
from smscampaigns.permissions import ActionPermissionsAdmin, MissingPermission
from smscampaigns.phones import normalize_phone
from vibes.admin import InboundMessageAdmin
from vibes.models import InboundMessage

from . import services
from .activity import KINDS, lead_activity, lead_activity_page
from .campaign_requests import REQUESTED_BY_ADMIN, campaign_request
from .links import text_as_counted
from .models import (
    AudienceCount,
    CampaignRun,
    CommunicationLimits,
    FlowStep,
    Folder,
    Program,
    ProgramToken,
    QuietHours,
    QuietHoursCountry,
    RunResult,
    RunStep,
    SampleSend,
    SmartCampaign,
    SmsMessage,
    TestNumber,
    TriggerFiring,
)
from .permissions import RUN_CAMPAIGN
from .program_tokens import token_in_use_problem
from .runner import CampaignCannotRun, campaign_preview, run_abort, run_resume, run_retry_uncertain
from .runner.count_jobs import audience_count_preview
from .runner.preview import run_now_check
from .runner.report import step_summary
from .sms_text import count_received, count_received_many, expand_for_counting
from .tasks import audience_count_start, campaign_start, run_dispatch
from .triggers import campaigns_requestable


class ChildFolderInline(admin.TabularInline):
    model = Folder
    fk_name = "parent"
    fields = ("name",)
    extra = 0
    show_change_link = True
    verbose_name = _("subfolder")
    verbose_name_plural = _("subfolders")


@admin.register(Folder)
class FolderAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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


class ProgramTokenFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        # A token that the program's messages use may not go: deleted, or renamed away.
        # Above the tokens, not at one: Django shows no errors of a row marked for deletion.
        problems = []
        for form in self.forms:
            if form.instance.pk is None or not hasattr(form, "cleaned_data"):
                continue
            if form.cleaned_data.get("DELETE") or "name" in form.changed_data:
                problem = token_in_use_problem(program=self.instance, name=form.initial.get("name", ""))
                if problem:
                    problems.append(problem)
        if problems:
            raise ValidationError(problems)


class ProgramTokenInline(admin.TabularInline):
    """My Tokens: `{{my.<name>}}` in the program's SMS messages becomes the value."""

    model = ProgramToken
    formset = ProgramTokenFormSet
    fields = ("name", "value")
    extra = 0


@admin.register(Program)
class ProgramAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "folder", "updated_at")
    list_filter = ("folder",)
    search_fields = ("name", "description")
    autocomplete_fields = ("folder",)
    list_select_related = ("folder",)
    inlines = (ProgramTokenInline,)


def _as_counted(message: SmsMessage) -> str:
    # A tracked web address goes out as its short link, a program token as its
    # value, a system token at its longest: count that, as the editor does.
    tokens = {token.name: token.value for token in message.program.tokens.all()}
    return expand_for_counting(
        text_as_counted(message.text, track_links=not message.dont_track_links), tokens
    )


@admin.register(SmsMessage)
class SmsMessageAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = ("name", "program", "characters", "segment_count", "dont_track_links", "updated_at")
    list_filter = ("program", "dont_track_links")
    search_fields = ("name", "text")
    autocomplete_fields = ("program",)
    list_select_related = ("program",)
    readonly_fields = ("segment_info",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("program__tokens")

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One query for the page: the longest values of every token its messages use.
        for message, received in zip(
            changelist.result_list,
            count_received_many(_as_counted(m) for m in changelist.result_list),
            strict=True,
        ):
            message.received = received
        return changelist

    def _received(self, obj):
        if not hasattr(obj, "received"):
            obj.received = count_received(_as_counted(obj))
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
    fk_name = "campaign"
    fields = (
        "position",
        "action",
        "sms_message",
        "vibes_list",
        "acquisition_campaign",
        "requested_campaign",
        # Wait and Remove from Flow (issue 17).
        "wait_amount",
        "wait_unit",
        "wait_until",
        "wait_then_day",
        "wait_then_time",
        "remove_from_campaign",
    )
    extra = 0
    autocomplete_fields = ("sms_message",)
    ordering = ("position", "pk")


@admin.register(SmartCampaign)
class SmartCampaignAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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
    actions = ("run_now", "preview_audience", "activate", "deactivate")
    # Like delete_selected_confirmation_template: None for the fallback list in run_now.
    run_now_confirmation_template = None
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "description",
                    "program",
                    "smart_list",
                    "qualification_rule",
                    ("qualification_period", "qualification_period_unit"),
                )
            },
        ),
        (_("Communication limits"), {"fields": ("operational",)}),
        (
            _("Schedule"),
            {
                "fields": (
                    "is_active",
                    "schedule",
                    "run_at",
                    "run_time",
                    "run_weekday",
                    "run_weekdays_only",
                    "next_run_at",
                ),
                "description": _(
                    "Every month: “run at” is the first run; later runs are on the same day of the month at "
                    "the same time, and a month without that day runs on its last day."
                ),
            },
        ),
        (
            _("Person limit"),
            {
                "fields": ("person_limit_refuse_above", "person_limit_per_run"),
                "description": _(
                    "Optional. Both count the people who qualify: those the smart list picks, less those "
                    "the qualification rule skips. Beyond the cap, people are skipped in lead id order."
                ),
            },
        ),
        (_("Can it run?"), {"fields": ("flow_problems",)}),
    )

    def save_model(self, request, obj, form, change):
        # The scheduler starts what next_run_at says: keep it in step with the
        # schedule and the active state saved here, as the Schedule tab does.
        obj.next_run_at = obj.next_run_after_edit()
        super().save_model(request, obj, form, change)

    @admin.display(description=_("problems"))
    def flow_problems(self, obj):
        if obj.pk is None:
            return "—"
        problems = obj.problems()
        if not problems:
            return _("None: the campaign can run.")
        return format_html_join("", "<div>{}</div>", ((p,) for p in problems))

    def has_run_permission(self, request):
        return request.user.has_perm(RUN_CAMPAIGN)

    @admin.action(description=_("Run now"), permissions=["run"])
    def run_now(self, request, queryset):
        """Like delete_selected: first a page with what each run would do (nothing
        is sent), then the runs start when that page's form comes back with `post`."""
        if not request.POST.get("post"):
            return self.run_now_confirmation(request, queryset)
        for campaign in queryset:
            try:
                run = campaign_start(campaign=campaign, trigger=CampaignRun.Trigger.ADMIN, user=request.user)
            except CampaignCannotRun as error:
                self.message_user(
                    request, f"{campaign}: {' '.join(map(str, error.problems))}", messages.ERROR
                )
            else:
                started = _("%(campaign)s: run %(run)s started.") % {"campaign": campaign, "run": run.pk}
                self.message_user(request, started, messages.SUCCESS)
        return None

    @admin.action(description=_("Activate"), permissions=["run"])
    def activate(self, request, queryset):
        """As the Schedule tab's button: a trigger campaign then runs for whoever its triggers fire for."""
        for campaign in queryset.select_related("smart_list"):
            try:
                services.campaign_set_active(campaign=campaign, active=True)
            except ValidationError as error:
                self.message_user(request, f"{campaign}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, _activated(campaign), messages.SUCCESS)

    @admin.action(description=_("Deactivate"), permissions=["change"])
    def deactivate(self, request, queryset):
        campaigns = list(queryset.select_related("smart_list"))
        for campaign in campaigns:
            services.campaign_set_active(campaign=campaign, active=False)
        self.message_user(
            request,
            ngettext("%(count)d campaign deactivated.", "%(count)d campaigns deactivated.", len(campaigns))
            % {"count": len(campaigns)},
        )

    def get_urls(self):
        opts = self.opts
        counts = path(
            "run-now/",
            self.admin_site.admin_view(self.run_now_counts_view),
            name=f"{opts.app_label}_{opts.model_name}_run_now",
        )
        progress = path(
            "run-now/progress/",
            self.admin_site.admin_view(self.run_now_counts_view),
            name=f"{opts.app_label}_{opts.model_name}_run_now_progress",
        )
        return [counts, progress, *super().get_urls()]

    def run_now_counts_view(self, request):
        """The Run now confirmation's counts: run-now/ starts counting each
        campaign in the background, run-now/progress/ shows how far the counts
        are, then the counts (the action's page asks for the first once it is
        shown and polls the second: htmx, only the part that changes; without
        JavaScript, their links); `_selected_action` names the campaigns,
        `counting` the counts."""
        if not (self.has_view_permission(request) and self.has_run_permission(request)):
            raise PermissionDenied
        ids = [pk for pk in request.GET.getlist(helpers.ACTION_CHECKBOX_NAME) if pk.isdigit()]
        queryset = self.get_queryset(request).filter(pk__in=ids)
        if request.resolver_match.url_name.endswith("_progress"):
            counting = [pk for pk in request.GET.getlist("counting") if pk.isdigit()]
            counts = AudienceCount.objects.filter(
                pk__in=counting, campaign__in=queryset, definition__isnull=True
            )
            return self.run_now_confirmation(request, queryset, counts={c.campaign_id: c for c in counts})
        return self.run_now_confirmation(request, queryset, counts=None, start=True)

    def run_now_confirmation(self, request, queryset, *, counts=None, start=False):
        """The page opens at once, saying it is counting: counting millions of people
        takes seconds, so the counts run in the background (run_now_counts_view),
        and the runs can be confirmed only once they are shown."""
        previews = []
        found = dict(counts or {})
        for campaign in queryset:
            preview = run_now_check(campaign=campaign)
            if start and preview.can_run:
                found[campaign.pk] = audience_count_start(
                    campaign=campaign, language=translation.get_language() or ""
                )
            count = found.get(campaign.pk)
            if preview.can_run and count is not None and count.result is not None:
                preview = audience_count_preview(count)
            previews.append((campaign, preview, count))
        opts = self.opts
        selected = [(helpers.ACTION_CHECKBOX_NAME, campaign.pk) for campaign, _p, _c in previews]
        # Counted once every campaign that can run has its counts.
        counted = all(not preview.can_run or preview.counted for _campaign, preview, _c in previews)
        counting = [("counting", count.pk) for _campaign, _p, count in previews if count is not None]
        counts_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_run_now")
        progress_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_run_now_progress")
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": _("Run now?"),
            "previews": previews,
            "counted": counted,
            "failed": any(count is not None and count.given_up for _campaign, _p, count in previews),
            "counts_url": f"{counts_url}?{urlencode(selected)}",
            "progress_url": f"{progress_url}?{urlencode(selected + counting)}" if counting else "",
            # The form goes back to the list's actions from the counts' own page too.
            "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            # The form sends back only these: a campaign that cannot run is left out.
            "runnable": [campaign for campaign, preview, _c in previews if preview.can_run],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        templates = self.run_now_confirmation_template or [
            f"admin/{opts.app_label}/{opts.model_name}/run_now_confirmation.html",
            f"admin/{opts.app_label}/run_now_confirmation.html",
            "admin/run_now_confirmation.html",
        ]
        if (start or counts is not None) and request.htmx:
            # htmx: the counting page asked for its counts; they replace what it said so far.
            templates = [
                f"{name}#previews" for name in ([templates] if isinstance(templates, str) else templates)
            ]
        return TemplateResponse(request, templates, context)

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
    fields = (
        "position", "action", "vibes_list", "status", "outcome_table", "counts_updated_at", "planned_at",
        "finished_at",
    )  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("counts by outcome"))
    def outcome_table(self, obj):
        """The step's counts with the Results tab's words for each outcome."""
        counts = obj.outcome_counts()
        if not counts:
            return "—"
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td class="numeric">{}</td></tr>',
            ((outcome.label, number_format(n, force_grouping=True)) for outcome, n in counts),
        )
        return format_html(
            '<table class="outcome-counts"><thead><tr><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            _("Outcome"),
            _("People"),
            rows,
        )


@admin.register(CampaignRun)
class CampaignRunAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
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
    actions = ("resume", "retry_uncertain", "abort")

    # Resuming and sending again text people: the permission to run smart campaigns.
    def has_run_permission(self, request):
        return request.user.has_perm(RUN_CAMPAIGN)

    def permission_for(self, name):
        return RUN_CAMPAIGN if name == "run" else super().permission_for(name)

    @admin.action(description=_("Resume (finish an interrupted or failed run)"), permissions=["run"])
    def resume(self, request, queryset):
        for run in queryset:
            try:
                run_dispatch(run_resume(run=run))
            except CampaignCannotRun as error:
                self.message_user(request, " ".join(map(str, error.problems)), messages.ERROR)
            else:
                self.message_user(request, _("Run %(run)s resumed.") % {"run": run.pk})

    @admin.action(
        description=_("Send the uncertain calls again (they may have gone out)"), permissions=["run"]
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

    @admin.action(
        description=_("Abort (call nobody more; cancel who is not called yet)"), permissions=["run"]
    )
    def abort(self, request, queryset):
        """Like delete_selected: a page that asks first, then the aborts when it comes back with `post`."""
        if not request.POST.get("post"):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Abort these runs?"),
                "runs": list(queryset.select_related("campaign")),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/marketing_activities/campaignrun/abort_confirmation.html", context
            )
        for run in queryset.select_related("campaign"):
            try:
                run_abort(run=run, by=request.user)
            except CampaignCannotRun as error:
                self.message_user(request, " ".join(map(str, error.problems)), messages.ERROR)
            else:
                self.message_user(request, _("Run %(run)s aborted.") % {"run": run.pk}, messages.SUCCESS)
        return None

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def has_add_permission(self, request):
        return False


@admin.register(RunResult)
class RunResultAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    list_display = (
        "run_step", "lead", "outcome", "phone", "duplicate_of", "blocked_by", "error_code", "detail_shown",
        "delivery_status", "delivery_reason", "updated_at",
    )  # fmt: skip
    list_filter = ("outcome",)
    raw_id_fields = ("run_step", "lead", "duplicate_of", "blocked_by")
    list_select_related = ("run_step", "lead", "duplicate_of", "blocked_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("detail"), ordering="detail")
    def detail_shown(self, obj):
        return obj.detail_display


@admin.register(TriggerFiring)
class TriggerFiringAdmin(LeadSearchAdmin, LargeListAdmin, ActionPermissionsAdmin, admin.ModelAdmin):
    """Which activity fired which trigger campaign for whom, and what came of it (read only)."""

    list_display = ("created_at", "campaign", "lead", "activity_shown", "status", "run")
    list_filter = ("status", "campaign", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("campaign", "lead", "activity", "run")
    raw_id_fields = ("activity", "campaign", "lead", "run")
    # Newest first by the id; the indexes on (campaign, id) and (status, id) serve the filtered lists.
    ordering = ("-pk",)

    @admin.display(description=_("activity"))
    def activity_shown(self, obj):
        activity = obj.activity
        url = reverse("admin:smscampaigns_activity_change", args=[activity.pk])
        return format_html('<a href="{}">{}</a>', url, activity.get_kind_display())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FiredCampaignFilter(admin.SimpleListFilter):
    """The activities that fired a trigger campaign (its firings, through the
    unique index on (activity, campaign))."""

    title = _("fired campaign")
    parameter_name = "fired_campaign"

    def lookups(self, request, model_admin):
        campaigns = SmartCampaign.objects.filter(smart_list__definition__has_key="triggers").order_by("name")
        return [(campaign.pk, campaign.name) for campaign in campaigns]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(pk__in=TriggerFiring.objects.filter(campaign_id=value).values("activity_id"))


# The people app cannot know about campaigns: the activities list gets its campaign filter here.
admin.site.unregister(Activity)


@admin.register(Activity)
class ActivityWithCampaignsAdmin(ActivityAdmin):
    list_filter = (*ActivityAdmin.list_filter, FiredCampaignFilter)


# People requested at once from the admin: each is a hidden field of the
# confirmation page and an activity; more is a job for a smart list's campaign.
REQUEST_AT_MOST = 10_000


class CampaignRequestForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=SmartCampaign.objects.none(),
        label=_("Campaign to request"),
        error_messages={
            "required": _("Choose the campaign to request."),
            "invalid_choice": _(
                "That campaign cannot be requested: choose an active trigger campaign whose smart list "
                "has the trigger “Campaign is Requested”."
            ),
        },
    )

    def __init__(self, *args, campaigns, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = SmartCampaign.objects.filter(pk__in=[c.pk for c in campaigns])
        # Offered in the order campaigns_requestable gives them (by name).
        self.fields["campaign"].choices = [("", "---------"), *((c.pk, str(c)) for c in campaigns)]


# The lead's page lists its SMS activity; the people app cannot know about
# runs, so this app extends its admin.
admin.site.unregister(Lead)


@admin.register(Lead)
class LeadWithActivityAdmin(LeadAdmin):
    readonly_fields = (*LeadAdmin.readonly_fields, "sms_activity", "activity_records")
    fieldsets = (
        *LeadAdmin.fieldsets,
        (_("SMS activity, newest first"), {"fields": ("sms_activity", "activity_records")}),
    )
    actions = (*LeadAdmin.actions, "request_campaign")

    def has_request_permission(self, request):
        return request.user.has_perm(RUN_CAMPAIGN)

    def permission_for(self, name):
        # Requesting a campaign runs its flow for the people: running campaigns' permission.
        return RUN_CAMPAIGN if name == "request" else super().permission_for(name)

    @admin.action(description=_("Request campaign…"), permissions=["request"])
    def request_campaign(self, request, queryset):
        """First a page to pick the campaign; the people are requested (as by
        `manage.py request_campaign`) when its form comes back with `post`."""
        lead_ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: REQUEST_AT_MOST + 1])
        campaigns = campaigns_requestable(source=REQUESTED_BY_ADMIN)
        form = CampaignRequestForm(request.POST if request.POST.get("post") else None, campaigns=campaigns)
        too_many = len(lead_ids) > REQUEST_AT_MOST
        if form.is_valid() and not too_many:
            campaign = form.cleaned_data["campaign"]
            try:
                count = campaign_request(
                    campaign=campaign,
                    lead_ids=lead_ids,
                    source=REQUESTED_BY_ADMIN,
                    requested_by=request.user.pk,
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                self.message_user(request, _requested(campaign, count), messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Request campaign"),
            "form": form,
            "campaigns": campaigns,
            "lead_ids": lead_ids,
            "too_many": too_many,
            "at_most": REQUEST_AT_MOST,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/smscampaigns/lead/request_campaign.html", context)

    @admin.display(description=_("activity records"))
    def activity_records(self, obj):
        """Links to the person's activities and the trigger campaigns they fired
        (no counts: a link costs no query, a count at millions would)."""
        if obj.pk is None:
            return "—"
        query = urlencode({"lead__id__exact": obj.pk})
        return format_html(
            '<a href="{}?{}" class="lead-activities">{}</a> · <a href="{}?{}" class="lead-firings">{}</a>',
            reverse("admin:smscampaigns_activity_changelist"),
            query,
            _("Their activities"),
            reverse("admin:marketing_activities_triggerfiring_changelist"),
            query,
            _("The trigger campaigns they fired"),
        )

    @admin.display(description=_("activity"))
    def sms_activity(self, obj):
        """The first page of the person's activity log, and a link to all of it."""
        if obj.pk is None:
            return "—"
        return render_to_string(
            "admin/smscampaigns/lead/_activity_entries.html",
            {
                "entries": lead_activity(obj),
                "log_url": reverse("admin:smscampaigns_lead_activity", args=[obj.pk]),
            },
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/activity/",
                self.admin_site.admin_view(self.activity_log_view),
                name="smscampaigns_lead_activity",
            ),
            *super().get_urls(),
        ]

    def activity_log_view(self, request, object_id):
        """The person's whole activity log: filtered by kind and campaign, a page
        of 50 at a time, older pages by the `older` cursor. htmx gets the log alone."""
        lead = self.get_object(request, object_id)
        if lead is None:
            raise Http404(_("No lead with that id."))
        if not self.has_view_or_change_permission(request, lead):
            raise MissingPermission("smscampaigns.view_lead")
        kinds = [kind for kind in request.GET.getlist("kind") if kind in KINDS]
        campaign = request.GET.get("campaign", "")
        campaign_id = int(campaign) if campaign.isdigit() else None
        page = lead_activity_page(
            lead=lead, kinds=kinds, campaign=campaign_id, older=request.GET.get("older", "")
        )
        query = request.GET.copy()
        query.pop("older", None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "lead": lead,
            "title": _("Activity of %(lead)s") % {"lead": lead},
            "page": page,
            "entries": page.entries,
            "kinds": list(KINDS.items()),
            "chosen_kinds": kinds,
            "campaigns": SmartCampaign.objects.order_by("name").only("pk", "name"),
            "chosen_campaign": campaign_id,
            "filters": query.urlencode(),
        }
        template = "admin/smscampaigns/lead/activity.html"
        if request.htmx and not request.htmx.history_restore_request:
            template += "#activity-log"
        return TemplateResponse(request, template, context)


# Which SMS a message replies to is this app's knowledge, not Vibes': the
# messages list gets its column here, as the lead's page gets its activity.
admin.site.unregister(InboundMessage)


@admin.register(InboundMessage)
class InboundMessageWithReplyAdmin(InboundMessageAdmin):
    list_display = (
        *InboundMessageAdmin.list_display[:4],
        "in_reply_to",
        *InboundMessageAdmin.list_display[4:],
    )
    fields = (*InboundMessageAdmin.fields, "in_reply_to")
    readonly_fields = fields
    list_select_related = ("sms_reply__run_step__run__campaign",)

    @admin.display(description=_("in reply to"))
    def in_reply_to(self, obj):
        reply = getattr(obj, "sms_reply", None)  # None: no SMS of a run went to the number before it
        if reply is None:
            return "—"
        step = reply.run_step
        query = urlencode({"run": step.run_id, "step": step.position, "replied": "1"})
        return format_html(
            '<a href="{}?{}">{}</a>',
            reverse("marketing_activities:campaign_results", args=[step.run.campaign_id]),
            query,
            _("%(campaign)s, run %(run)s, step %(step)s")
            % {"campaign": step.run.campaign, "run": step.run_id, "step": step.number},
        )


def _requested(campaign: SmartCampaign, count: int) -> str:
    return ngettext(
        "%(campaign)s requested for %(count)s person: it runs if they pass its smart list's filters.",
        "%(campaign)s requested for %(count)s people: it runs for those who pass its smart list's filters.",
        count,
    ) % {"campaign": campaign, "count": number_format(count, force_grouping=True)}


def _activated(campaign: SmartCampaign) -> str:
    """What activating did, naming a trigger campaign's triggers."""
    if not campaign.is_trigger_campaign:
        return _("%(campaign)s is active.") % {"campaign": campaign}
    triggers = "; ".join(trigger.describe() for trigger in campaign.smart_list.parsed().triggers)
    return _("%(campaign)s is active; it runs for each person when: %(triggers)s.") % {
        "campaign": campaign,
        "triggers": triggers,
    }


# --- Test numbers and sample sends ---------------------------------------------------


class TestNumberForm(forms.ModelForm):
    class Meta:
        model = TestNumber
        fields = ("number", "label")

    def clean_number(self):
        return normalize_phone(self.cleaned_data["number"])


@admin.register(TestNumber)
class TestNumberAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    """The phones sample sends may go to: an administrator adding one here verifies it."""

    form = TestNumberForm
    list_display = ("number", "label", "verified_by", "verified_at")
    search_fields = ("number", "label")
    readonly_fields = ("verified_by", "verified_at")

    def save_model(self, request, obj, form, change):
        if not change or "number" in form.changed_data:
            obj.verified_by, obj.verified_at = request.user, timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(SampleSend)
class SampleSendAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    """What was sent as samples: a record, never changed, never counted in Results."""

    list_display = ("sent_at", "sms_message", "number", "lead", "sent_by", "status", "message_id")
    list_filter = ("status",)
    search_fields = ("number", "text", "sms_message__name")
    list_select_related = ("sms_message", "lead", "sent_by")
    date_hierarchy = "sent_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CommunicationLimits)
class CommunicationLimitsAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    """The installation's one row of limits: its list page is its form."""

    fields = ("per_day", "per_week")
    actions = None  # one row, never deleted

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and "action" in request.POST:
            return super().changelist_view(request, extra_context)  # refused: there is no action
        if not self.has_view_or_change_permission(request):
            raise MissingPermission(self.permission_for("view"))
        limits, _created = CommunicationLimits.objects.get_or_create(pk=1)
        return self.change_view(request, str(limits.pk), extra_context=extra_context)

    def response_change(self, request, obj):
        # Back to the form (the list page), which shows the limits just saved.
        self.message_user(request, _("The communication limits are saved."), messages.SUCCESS)
        return HttpResponseRedirect(request.path)


class QuietHoursCountryInline(admin.TabularInline):
    model = QuietHoursCountry
    fields = ("country", "start", "end")
    extra = 0


@admin.register(QuietHours)
class QuietHoursAdmin(ActionPermissionsAdmin, admin.ModelAdmin):
    """One row for the installation; its changelist opens that row (the default until saved)."""

    fields = ("enabled", "start", "end")
    inlines = (QuietHoursCountryInline,)

    def _get_base_actions(self, *args, **kwargs):
        # A list of one row that is never deleted: not even Django's "Delete selected".
        return []

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        return QuietHours.load()

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:marketing_activities_quiethours_change", 1)
