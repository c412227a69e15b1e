"""The Flow tab: a palette of the three SMS steps and the campaign's steps.

Every change is saved at once: adding (click, Enter or drop), reordering
(drag, or the up/down buttons that post a `position` as Wagtail's
ReorderView does), the dropdowns (posted on change) and deleting. An
incomplete step is kept as a draft and shows what it lacks at the step.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from vibes.models import AcquisitionCampaign, VibesList

from .. import services
from ..forms import FlowStepForm, WaitStepForm
from ..models import FlowStep, SmartCampaign, SmsMessage
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_partial, render_screen

TEMPLATE = "marketing_activities/campaign_flow.html"

STEP_HELP = {
    FlowStep.Action.SEND_SMS: gettext_lazy(
        "Texts the people of the smart list who are subscribed to this Vibes list."
    ),
    FlowStep.Action.SUBSCRIBE: gettext_lazy(
        "Starts the subscription through the acquisition campaign; "
        "Vibes texts a confirmation the person must answer."
    ),
    FlowStep.Action.UNSUBSCRIBE: gettext_lazy("Unsubscribes each person from this Vibes list."),
    FlowStep.Action.REQUEST_CAMPAIGN: gettext_lazy(
        "Requests another campaign for each person: "
        "its trigger “Campaign is Requested” runs its flow for them."
    ),
    FlowStep.Action.WAIT: gettext_lazy(
        "The run waits, then goes on with the next steps for the same people. "
        "Times are in the installation's time zone."
    ),
    FlowStep.Action.REMOVE_FROM_FLOW: gettext_lazy(
        "Takes each person out of the chosen campaign's runs that are in a Wait step: "
        "they do not get the steps after the wait."
    ),
}


@dataclass
class StepCard:
    """What a step's card on the Flow tab shows beside the step itself."""

    step: FlowStep
    problems: dict
    help_text: str
    # Accessible names of the card's buttons, which name the step by its number.
    label_up: str
    label_down: str
    label_delete: str
    confirm_delete: str
    # The acquisition campaigns of the step's list.
    acquisition_choices: list
    # A choice no longer offered (a list gone from Vibes, a message of another
    # program, an ended campaign) stays visible as the current value.
    extra_sms_message: SmsMessage | None
    extra_vibes_list: VibesList | None
    extra_acquisition: AcquisitionCampaign | None
    # A Wait step's message per field: a mistyped value's (set by step_update), else the step's problem.
    errors: dict = field(default_factory=lambda: defaultdict(str))


class Choices:
    """The dropdowns' options, loaded once per response whatever the number of steps."""

    def __init__(self, campaign: SmartCampaign):
        # SMS messages of the campaign's own program, as Marketo offers a program's assets.
        self.sms_messages = list(campaign.program.sms_messages.only("id", "name"))
        self.vibes_lists = list(VibesList.objects.active().only("id", "name"))
        self.acquisition_campaigns = defaultdict(list)
        # Only campaigns Vibes takes participants for; a step's ended one stays
        # visible as its current value, with the reason at the step.
        for acquisition in AcquisitionCampaign.objects.running().only("id", "name", "vibes_list_id"):
            self.acquisition_campaigns[acquisition.vibes_list_id].append(acquisition)
        # Request Campaign: the other campaigns a request would run (their trigger "Campaign is Requested").
        self.requested_campaigns = [
            other
            for other in SmartCampaign.objects.exclude(pk=campaign.pk)
            .filter(smart_list__definition__has_key="triggers")
            .select_related("smart_list")
            .only("id", "name", "smart_list__definition")
            if any(
                isinstance(trigger, dict) and trigger.get("trigger") == "campaign_requested"
                for trigger in other.smart_list.triggers
            )
        ]
        self.campaign = campaign
        self.wait_units = FlowStep.WaitUnit.choices
        self.wait_days = FlowStep.WaitDay.choices

    @cached_property
    def remove_campaigns(self) -> list[SmartCampaign]:
        """Remove from Flow: any other campaign (empty is this one); read only when a step shows it."""
        return list(SmartCampaign.objects.exclude(pk=self.campaign.pk).only("id", "name"))

    def card(self, step: FlowStep) -> StepCard:
        numbered = {"number": step.number}
        acquisition_choices = self.acquisition_campaigns.get(step.vibes_list_id, [])
        return StepCard(
            step=step,
            problems=step.problems(),
            help_text=STEP_HELP.get(step.action, ""),
            label_up=_("Move step %(number)s up") % numbered,
            label_down=_("Move step %(number)s down") % numbered,
            label_delete=_("Delete step %(number)s") % numbered,
            confirm_delete=_("Delete step %(number)s?") % numbered,
            acquisition_choices=acquisition_choices,
            extra_sms_message=_unless_among(step.sms_message, self.sms_messages),
            extra_vibes_list=_unless_among(step.vibes_list, self.vibes_lists),
            extra_acquisition=_unless_among(step.acquisition_campaign, acquisition_choices),
            errors=defaultdict(str, step.problems()),
        )


def _unless_among(chosen, offered):
    return chosen if chosen is not None and chosen not in offered else None


def flow_context(campaign: SmartCampaign, *, error: str = "") -> dict:
    choices = Choices(campaign)
    cards = [choices.card(step) for step in campaign.steps()]
    return {
        **campaign_context(campaign, "flow"),
        "cards": cards,
        "step_count": len(cards),
        "choices": choices,
        "actions": FlowStep.Action.choices,
        "flow_error": error,
    }


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign")
def flow(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    return render_screen(request, TEMPLATE, flow_context(campaign), selected=campaign)


def _steps_changed(request, campaign, announcement: str, *, error: str = "") -> HttpResponse:
    """After a change to the list of steps: the #flow-steps partial (htmx) or the tab again (PRG)."""
    if not request.htmx:
        return redirect("marketing_activities:campaign_flow", pk=campaign.pk)
    response = render_partial(request, f"{TEMPLATE}#flow-steps", flow_context(campaign, error=error))
    # htmx: the page announces the change to screen readers (aria-live).
    return trigger_client_event(response, "flowChanged", {"message": error or announcement})


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_POST
@marketer_required("view_smartcampaign", "change_smartcampaign")
def step_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    try:
        step = services.flow_step_add(
            campaign=campaign,
            action=request.POST.get("action", ""),
            position=_int_or_none(request.POST.get("position")),
        )
    except ValidationError as error:
        return _steps_changed(request, campaign, "", error=" ".join(error.messages))
    return _steps_changed(request, campaign, _("Step %(number)s added.") % {"number": step.number})


@require_POST
@marketer_required("view_smartcampaign", "change_smartcampaign")
def steps_reorder(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    step_ids = [_int_or_none(value) for value in request.POST.getlist("step")]
    try:
        services.flow_steps_reorder(campaign=campaign, step_ids=step_ids)
    except ValidationError as error:
        return _steps_changed(request, campaign, "", error=" ".join(error.messages))
    return _steps_changed(request, campaign, _("Steps reordered."))


def _step_or_404(campaign: SmartCampaign, step_pk: int) -> FlowStep:
    # A step of another campaign is not found here, whatever its id.
    return get_object_or_404(
        FlowStep.objects.select_related("sms_message", "vibes_list", "acquisition_campaign"),
        pk=step_pk,
        campaign=campaign,
    )


@require_POST
@marketer_required("view_smartcampaign", "change_smartcampaign")
def step_move(request: HtmxHttpRequest, pk: int, step_pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    step = _step_or_404(campaign, step_pk)
    position = _int_or_none(request.POST.get("position", request.GET.get("position")))
    if position is None:
        return _steps_changed(request, campaign, "", error=_("Say where the step goes."))
    step = services.flow_step_move(step=step, position=position)
    message = _("Step moved to position %(number)s.") % {"number": step.number}
    return _steps_changed(request, campaign, message)


@require_POST
@marketer_required("view_smartcampaign", "change_smartcampaign")
def step_delete(request: HtmxHttpRequest, pk: int, step_pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    step = _step_or_404(campaign, step_pk)
    services.flow_step_delete(step=step)
    return _steps_changed(request, campaign, _("Step %(number)s deleted.") % {"number": step.number})


@require_POST
@marketer_required("view_smartcampaign", "change_smartcampaign")
def step_update(request: HtmxHttpRequest, pk: int, step_pk: int) -> HttpResponse:
    """A dropdown changed: save the step as it now stands and show it again,
    with the acquisition campaigns of its (new) list and its problems."""
    campaign = campaign_or_404(pk)
    step = _step_or_404(campaign, step_pk)
    if step.action == FlowStep.Action.WAIT:
        form = WaitStepForm(request.POST)
        form.is_valid()
        # The fields posted and valid are kept; a mistyped one shows its error and keeps its value.
        valid = {name: value for name, value in form.cleaned_data.items() if name in request.POST}
        step = services.flow_step_set_wait(step=step, **valid)
    else:
        form = FlowStepForm(request.POST)
    if step.action != FlowStep.Action.WAIT and form.is_valid():
        step = services.flow_step_update(step=step, **form.cleaned_data)
        # Re-read the related rows the service may have changed.
        step = _step_or_404(campaign, step_pk)
    if not request.htmx:
        return redirect("marketing_activities:campaign_flow", pk=campaign.pk)
    context = flow_context(campaign)
    context["card"] = next(card for card in context["cards"] if card.step.pk == step.pk)
    context["form_errors"] = form.errors
    context["card"].errors.update({name: errors[0] for name, errors in form.errors.items()})
    context["posted"] = request.POST
    return render_partial(request, f"{TEMPLATE}#flow-step", context)
