"""What a run would do: the audience preview, planned and thrown away, and the
Run now confirmations (the Schedule tab's and the admin's), counted read-only."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext_lazy

from smscampaigns.models import Lead

from ..models import CampaignRun, FlowStep, Outcome, RunStep, SmartCampaign
from .checks import CampaignCannotRun
from .person_limit import PersonLimitRefused
from .planner import plan_step
from .report import number_blockers


@dataclass
class StepPreview:
    # Planned, then rolled back: the step keeps its counts, its rows are gone.
    step: RunStep
    blockers: dict = field(default_factory=dict)  # report.number_blockers, read before the rollback

    @property
    def action(self) -> str:
        return self.step.action

    @property
    def action_label(self):
        return self.step.get_action_display()

    @property
    def number(self) -> int:
        return self.step.number

    @property
    def counts(self) -> dict:
        return self.step.counts

    def outcome_counts(self):
        return self.step.outcome_counts()


@dataclass
class AudiencePreview:
    audience: int
    steps: list
    sample: list


def campaign_preview(*, campaign: SmartCampaign, sample_size: int = 10) -> AudiencePreview:
    """Plan every step as a run would, then throw the plan away.

    Later steps are planned against today's subscriptions: the preview
    cannot know who will confirm a subscription before they are reached.
    """
    problems = campaign.problems()
    if problems:
        raise CampaignCannotRun(problems)
    try:
        return _plan_and_throw_away(campaign, sample_size)
    except PersonLimitRefused as error:
        raise CampaignCannotRun([error.message]) from None


def _plan_and_throw_away(campaign: SmartCampaign, sample_size: int) -> AudiencePreview:
    with transaction.atomic():
        run = CampaignRun.objects.create(
            campaign=campaign,
            trigger=CampaignRun.Trigger.ADMIN,
            dry_run=True,
            status=CampaignRun.Status.COMPLETED,
        )
        steps = []
        for position, flow_step in enumerate(campaign.steps()):
            run_step = RunStep.objects.create(
                run=run,
                position=position,
                action=flow_step.action,
                vibes_list=flow_step.vibes_list,
                acquisition_campaign=flow_step.acquisition_campaign,
            )
            plan_step(run_step)
            steps.append(StepPreview(run_step, number_blockers(run_step)))
            if position == 0:
                first = RunStep.objects.get(pk=run_step.pk)
                lead_ids = list(
                    first.results()
                    .filter(outcome=Outcome.PLANNED_DRY_RUN)
                    .order_by("pk")
                    .values_list("lead_id", flat=True)[:sample_size]
                )
                sample = list(Lead.objects.filter(pk__in=lead_ids).order_by("pk"))
        transaction.set_rollback(True)
    return AudiencePreview(audience=sum(steps[0].counts.values()) if steps else 0, steps=steps, sample=sample)


# What "would be called (dry run)" means for each step, in a confirmation.
PLANNED_LABELS = {
    FlowStep.Action.SEND_SMS: gettext_lazy("will get the SMS"),
    FlowStep.Action.SUBSCRIBE: gettext_lazy("will be asked to confirm a subscription"),
    FlowStep.Action.UNSUBSCRIBE: gettext_lazy("will be unsubscribed"),
    FlowStep.Action.REQUEST_CAMPAIGN: gettext_lazy("will have the campaign requested"),
    FlowStep.Action.WAIT: gettext_lazy("will wait"),
    FlowStep.Action.REMOVE_FROM_FLOW: gettext_lazy("will be removed from the chosen flow"),
}


@dataclass
class PlannedStep:
    number: int
    label: str
    # (what happens, in the Results tab's words; people; NumberBlockers or None)
    counts: list = field(default_factory=list)


@dataclass
class RunNowPreview:
    audience: int = 0
    steps: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # why the campaign cannot run; then nothing else is set
    # Under the rule "once", why nobody is left to qualify; then nothing else is set.
    nobody_left: list = field(default_factory=list)
    # Why the person limit would refuse the run; then nothing else is set.
    refused: list = field(default_factory=list)
    # The campaign's person limits and what they would do, in words.
    person_limit: list = field(default_factory=list)
    # False for run_now_check: the audience and steps are still to be counted.
    counted: bool = True

    @property
    def can_run(self) -> bool:
        return not self.problems and not self.nobody_left and not self.refused


def run_now_check(*, campaign: SmartCampaign) -> RunNowPreview:
    """What a confirmation can say at once, before counting: why the campaign
    cannot run, if it cannot. Counting the audience reads every person it
    picks (a minute at ten million), so the confirmation has it counted in
    the background (count_jobs.py), and nobody is left to qualify (a count
    too, under the rule "once") is told by that count."""
    return RunNowPreview(problems=campaign.problems(), counted=False)


def run_now_preview_of(counted: list, *, person_limit: list = ()) -> RunNowPreview:
    """What Run now would do, for its confirmation: the audience and each
    step's counts by outcome (audience_counts.StepCounts), in its words, and
    what the campaign's person limit does (`person_limit`, in words)."""
    steps = [
        PlannedStep(
            number=step.step.number,
            label=step.step.get_action_display(),
            counts=[
                # A skip for a number's block (R4) names the people it comes from.
                (
                    PLANNED_LABELS[step.step.action] if outcome == Outcome.PLANNED_DRY_RUN else outcome.label,
                    n,
                    step.blockers.get(outcome.code),
                )
                for outcome, n in step.outcome_counts()
            ],
        )
        for step in counted
    ]
    return RunNowPreview(
        audience=sum(counted[0].counts.values()) if counted else 0,
        steps=steps,
        person_limit=list(person_limit),
    )
