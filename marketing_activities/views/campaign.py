"""A smart campaign: its tab strip, the Schedule tab and the Run now button.

The other tabs live in smart_list.py, flow_editor.py and results.py.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseLocation

from .. import services
from ..forms import ScheduleForm, add_service_errors
from ..models import CampaignRun, FlowStep, Outcome, SmartCampaign
from ..runner import CampaignCannotRun, campaign_preview, campaign_start
from .common import HtmxHttpRequest, render_screen, staff_required
from .tree_nodes import crumbs

TABS = [
    ("smart-list", gettext_lazy("Smart List"), "marketing_activities:campaign_smart_list"),
    ("flow", gettext_lazy("Flow"), "marketing_activities:campaign_flow"),
    ("schedule", gettext_lazy("Schedule"), "marketing_activities:campaign_schedule"),
    ("results", gettext_lazy("Results"), "marketing_activities:campaign_results"),
]


def campaign_or_404(pk: int) -> SmartCampaign:
    return get_object_or_404(SmartCampaign.objects.select_related("program__folder", "smart_list"), pk=pk)


def campaign_context(campaign: SmartCampaign, tab: str) -> dict:
    """What the header and tab strip of every tab need."""
    folder = campaign.program.folder
    return {
        "campaign": campaign,
        "breadcrumbs": crumbs([*folder.ancestors(), folder, campaign.program]),
        "tabs": [(slug, label, reverse(name, args=[campaign.pk])) for slug, label, name in TABS],
        "tab": tab,
    }


@require_http_methods(["GET"])
@staff_required
def campaign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    # A campaign opens on its Smart List tab, as in Marketo.
    return redirect("marketing_activities:campaign_smart_list", pk=campaign_or_404(pk).pk)


PLANNED_LABELS = {
    FlowStep.Action.SEND_SMS: gettext_lazy("will get the SMS"),
    FlowStep.Action.SUBSCRIBE: gettext_lazy("will be asked to confirm a subscription"),
    FlowStep.Action.UNSUBSCRIBE: gettext_lazy("will be unsubscribed"),
}


def run_preview(campaign: SmartCampaign) -> dict:
    """What Run now would do, for its confirmation: the audience and each step's
    counts by outcome, planned as a run plans them (and thrown away); or why
    the campaign cannot run."""
    try:
        preview = campaign_preview(campaign=campaign, sample_size=0)
    except CampaignCannotRun as error:
        return {"problems": error.problems}
    steps = []
    for step in preview.steps:
        counts = [
            (Outcome[code.upper()], n)
            for code, n in step.counts.items()
            if n and code.upper() in Outcome.__members__
        ]
        counts.sort(key=lambda item: item[0].value)
        steps.append(
            {
                "number": step.number,
                "label": step.action_label,
                # The planner's "would be called (dry run)" says what this step will do;
                # a skip for a number's block (R4) names the people it comes from.
                "counts": [
                    (
                        PLANNED_LABELS[step.action] if outcome == Outcome.PLANNED_DRY_RUN else outcome.label,
                        n,
                        step.blockers.get(outcome.code),
                    )
                    for outcome, n in counts
                ],
            }
        )
    return {"audience": preview.audience, "preview_steps": steps, "problems": []}


def _schedule_screen(
    request, campaign, *, form=None, activation_problems=(), run_confirm=False, run_problems=()
):
    context = {
        **campaign_context(campaign, "schedule"),
        "form": form or ScheduleForm(instance=campaign),
        "activation_problems": activation_problems,
        "run_confirm": run_confirm,
        "run_problems": run_problems,
        "active_run": campaign.runs.active().first(),
        "schedule_url": reverse("marketing_activities:campaign_schedule", args=[campaign.pk]),
        "run_url": reverse("marketing_activities:campaign_run_now", args=[campaign.pk]),
    }
    if run_confirm:
        context.update(run_preview(campaign))
    return render_screen(request, "marketing_activities/campaign_schedule.html", context, selected=campaign)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request", "HX-Target")
@staff_required
def schedule(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        return _schedule_screen(request, campaign)
    action = request.POST.get("action", "save")
    form = None
    problems = []
    try:
        if action in ("activate", "deactivate"):
            services.campaign_set_active(campaign=campaign, active=action == "activate")
            done = _("The campaign is active.") if action == "activate" else _("The campaign is inactive.")
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


@require_http_methods(["GET", "POST"])
@staff_required
def run_now(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Run now: GET asks for confirmation (showing how many people qualify),
    POST starts a run through the runner's `campaign_start` and opens Results."""
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        return _schedule_screen(request, campaign, run_confirm=True)
    try:
        run = campaign_start(campaign=campaign, trigger=CampaignRun.Trigger.UI, user=request.user)
    except CampaignCannotRun as error:
        return _schedule_screen(request, campaign, run_confirm=True, run_problems=error.problems)
    url = reverse("marketing_activities:campaign_results", args=[campaign.pk]) + f"?run={run.pk}"
    if request.htmx:
        # htmx: load the Results tab in place and put its URL in the address bar.
        return HttpResponseLocation(url, target="#tab-panel", swap="outerHTML")
    return redirect(url)
