"""A smart campaign: its tab strip, the Schedule tab and the Run now button.

The other tabs live in smart_list.py, flow_editor.py and results.py.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseLocation

from .. import services
from ..forms import ScheduleForm, add_service_errors
from ..models import AudienceCount, CampaignRun, CommunicationLimits, SmartCampaign
from ..permissions import RUN_CAMPAIGN, VIEW_RUNS, require_permissions
from ..runner import CampaignCannotRun, run_abort
from ..runner.count_jobs import audience_count_preview
from ..runner.preview import run_now_check
from ..tasks import audience_count_start, campaign_start
from .common import HtmxHttpRequest, marketer_required, render_screen
from .tree_nodes import crumbs

# Each tab, with the permission it needs beyond seeing the campaign (shown only to who has it).
TABS = [
    ("smart-list", gettext_lazy("Smart List"), "marketing_activities:campaign_smart_list", ""),
    ("flow", gettext_lazy("Flow"), "marketing_activities:campaign_flow", ""),
    ("schedule", gettext_lazy("Schedule"), "marketing_activities:campaign_schedule", ""),
    ("results", gettext_lazy("Results"), "marketing_activities:campaign_results", VIEW_RUNS),
    ("dashboard", gettext_lazy("Dashboard"), "marketing_activities:campaign_dashboard", VIEW_RUNS),
]


def campaign_or_404(pk: int) -> SmartCampaign:
    return get_object_or_404(SmartCampaign.objects.select_related("program__folder", "smart_list"), pk=pk)


def campaign_context(campaign: SmartCampaign, tab: str) -> dict:
    """What the header and tab strip of every tab need."""
    folder = campaign.program.folder
    return {
        "campaign": campaign,
        "breadcrumbs": crumbs([*folder.ancestors(), folder, campaign.program]),
        "tabs": [
            (slug, label, reverse(name, args=[campaign.pk]), needs) for slug, label, name, needs in TABS
        ],
        "tab": tab,
    }


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign")
def campaign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    # A campaign opens on its Smart List tab, as in Marketo.
    return redirect("marketing_activities:campaign_smart_list", pk=campaign_or_404(pk).pk)


def _schedule_screen(
    request,
    campaign,
    *,
    form=None,
    activation_problems=(),
    run_confirm=False,
    run_counts=False,
    audience_count=None,
    run_problems=(),
    abort_confirm=False,
):
    """The Schedule tab; `run_confirm` with Run now's confirmation, which starts
    counting the audience by step when `run_counts` (a request of its own), and
    shows `audience_count`'s progress, then its counts."""
    active_run = campaign.runs.active().first()
    last_run = None if active_run else campaign.runs.only("pk", "status", "error", "created_at").first()
    context = {
        "last_failed_run": last_run if last_run and last_run.status == CampaignRun.Status.FAILED else None,
        "abort_confirm": abort_confirm,
        "abort_url": reverse("marketing_activities:campaign_abort", args=[campaign.pk]),
        **campaign_context(campaign, "schedule"),
        "form": form or ScheduleForm(instance=campaign),
        "activation_problems": activation_problems,
        "run_confirm": run_confirm,
        "run_problems": run_problems,
        "active_run": active_run,
        **_triggers_context(campaign),
        "schedule_url": reverse("marketing_activities:campaign_schedule", args=[campaign.pk]),
        "communication_limits": CommunicationLimits.load(),
        "run_url": reverse("marketing_activities:campaign_run_now", args=[campaign.pk]),
    }
    if run_confirm and not active_run:
        preview = run_now_check(campaign=campaign)
        # Nothing to count beside a refused start: its problems are what the marketer needs.
        if run_counts and not run_problems and preview.can_run:
            audience_count = audience_count_start(
                campaign=campaign, language=translation.get_language() or ""
            )
        if audience_count is not None and audience_count.result is not None and preview.can_run:
            preview = audience_count_preview(audience_count)
        context.update(
            audience_count=audience_count,
            counted=preview.counted,
            audience=preview.audience,
            preview_steps=preview.steps,
            problems=preview.problems,
            nobody_left=preview.nobody_left,
            refused=preview.refused,
            person_limit=preview.person_limit,
            every_time_label=SmartCampaign.QualificationRule.EVERY_TIME.label,
        )
    return render_screen(request, "marketing_activities/campaign_schedule.html", context, selected=campaign)


def _triggers_context(campaign: SmartCampaign) -> dict:
    """A trigger campaign's triggers in words, for its Schedule tab."""
    if not campaign.is_trigger_campaign:
        return {"trigger_campaign": False}
    try:
        descriptions = [trigger.describe() for trigger in campaign.smart_list.parsed().triggers]
    except ValidationError as error:
        descriptions = error.messages  # the Smart List tab shows the same problems, at their trigger
    return {"trigger_campaign": True, "trigger_descriptions": descriptions}


@require_http_methods(["GET", "POST"])
@marketer_required("view_smartcampaign", post=("change_smartcampaign",))
def schedule(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        return _schedule_screen(request, campaign)
    action = request.POST.get("action", "save")
    if action == "activate":
        # An active campaign starts runs on its schedule: activating it is running it.
        require_permissions(request.user, RUN_CAMPAIGN)
    form = None
    problems = []
    try:
        if action in ("activate", "deactivate"):
            services.campaign_set_active(campaign=campaign, active=action == "activate")
            done = _("The campaign is active.") if action == "activate" else _("The campaign is inactive.")
            if action == "activate" and campaign.is_trigger_campaign:
                done = _(
                    "The campaign is active: its triggers now run the flow for each person they fire for."
                )
        elif action == "operational":
            done = _operational_save(request, campaign)
        else:
            form = ScheduleForm(request.POST, instance=campaign)
            if not form.is_valid():
                return _schedule_screen(request, campaign, form=form)
            services.campaign_schedule_update(campaign=campaign, **form.cleaned_data)
            done = _("Schedule saved.")
    except ValidationError as error:
        campaign.refresh_from_db()
        if form is not None:
            add_service_errors(form, error)
        else:
            problems = error.messages
        return _schedule_screen(request, campaign, form=form, activation_problems=problems)
    messages.success(request, done)
    if not request.htmx:
        return redirect("marketing_activities:campaign_schedule", pk=campaign.pk)
    return _schedule_screen(request, campaign)


def _operational_save(request, campaign: SmartCampaign) -> str:
    """The Schedule tab's "operational" checkbox: saved, and the message that says what it means."""
    operational = request.POST.get("operational") == "on"
    services.campaign_set_operational(campaign=campaign, operational=operational)
    if operational:
        return _("The campaign is operational: its SMS are exempt from the communication limits.")
    return _("The campaign sends marketing SMS: the communication limits apply to it.")


@require_http_methods(["GET", "POST"])
@marketer_required("view_smartcampaign", "run_smartcampaign")
def run_now(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Run now: GET asks for confirmation, POST starts a run through
    `tasks.campaign_start` and opens Results.

    The confirmation opens at once, saying it is counting; `?count=exact`
    starts counting how many people qualify and what each step would do with
    them in the background (htmx asks for it as the confirmation appears; a
    link without JavaScript), `?counting=<id>` shows how far that count is,
    then the counts (htmx polls it), and only then can the run be confirmed.
    """
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        counting = request.GET.get("counting", "")
        audience_count = None
        if counting:
            if not counting.isdigit():
                raise Http404
            audience_count = get_object_or_404(
                AudienceCount, pk=counting, campaign=campaign, definition__isnull=True
            )
        counts = request.GET.get("count") == "exact"
        return _schedule_screen(
            request, campaign, run_confirm=True, run_counts=counts, audience_count=audience_count
        )
    try:
        run = campaign_start(campaign=campaign, trigger=CampaignRun.Trigger.UI, user=request.user)
    except CampaignCannotRun as error:
        return _schedule_screen(request, campaign, run_confirm=True, run_problems=error.problems)
    url = reverse("marketing_activities:campaign_results", args=[campaign.pk]) + f"?run={run.pk}"
    if request.htmx:
        # htmx: load the Results tab in place and put its URL in the address bar.
        return HttpResponseLocation(url, target="#tab-panel", swap="outerHTML")
    return redirect(url)


@require_http_methods(["GET", "POST"])
@marketer_required("view_smartcampaign", "run_smartcampaign")
def abort(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Abort campaign: GET asks for confirmation, POST aborts the active run
    through `runner.run_abort` (no call starts after it)."""
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        return _schedule_screen(request, campaign, abort_confirm=True)
    run = campaign.runs.active().first()
    if run is None:
        messages.info(request, _("No run of this campaign is active: there is nothing to abort."))
    else:
        try:
            run_abort(run=run, by=request.user)
        except CampaignCannotRun as error:
            # It finished meanwhile.
            messages.info(request, " ".join(map(str, error.problems)))
        else:
            messages.success(request, _("Run %(run)s aborted: nobody else is called.") % {"run": run.pk})
    if not request.htmx:
        return redirect("marketing_activities:campaign_schedule", pk=campaign.pk)
    return _schedule_screen(request, campaign)
