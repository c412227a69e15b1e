"""Campaign Members of a trigger campaign: who entered when (its trigger
firings: the person, the activity that fired, the time, what came of it) with
their outcome at each step of the run that took them, newest first, a page
at a time.

The firings are read through their index on (campaign, id), newest first
from a cursor; a page's outcomes are two queries, whatever the page holds
(the runs' steps, then the people's rows of those steps through the index on
(run step, lead)).
"""

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from .models import SEARCHED_ROWS, Outcome, RunResult, RunStep, SmartCampaign, TriggerFiring

PAGE_SIZE = 50


@dataclass(frozen=True)
class StepOutcome:
    number: int
    action: str
    outcome: Outcome


@dataclass
class Member:
    firing: TriggerFiring
    steps: list = field(default_factory=list)  # StepOutcome, in step order


@dataclass(frozen=True)
class MembersPage:
    members: list
    older: int | None  # the cursor of the next page: the last firing shown (None: the last page)


def campaign_members(*, campaign: SmartCampaign, outcome: Outcome | None = None, status: str = ""):
    """The campaign's firings, newest first: of `status`, and of the people
    whose run gave them `outcome` at any step."""
    firings = TriggerFiring.objects.filter(campaign=campaign)
    if status:
        firings = firings.filter(status=status)
    if outcome is not None:
        firings = firings.filter(
            Exists(
                RunResult.objects.filter(
                    SEARCHED_ROWS,
                    run_step__run_id=OuterRef("run_id"),
                    lead_id=OuterRef("lead_id"),
                    outcome=outcome,
                )
            )
        )
    return firings.select_related("lead", "activity", "run").order_by("-pk")


def campaign_members_page(
    *,
    campaign: SmartCampaign,
    outcome: Outcome | None = None,
    status: str = "",
    older: int | None = None,
    page_size: int = PAGE_SIZE,
) -> MembersPage:
    firings = campaign_members(campaign=campaign, outcome=outcome, status=status)
    if older is not None:
        firings = firings.filter(pk__lt=older)
    found = list(firings[: page_size + 1])
    members = members_with_outcomes(found[:page_size])
    return MembersPage(members, found[page_size - 1].pk if len(found) > page_size else None)


def members_with_outcomes(firings: list[TriggerFiring]) -> list[Member]:
    """Each firing with its person's outcome at each step of its run: two queries."""
    run_ids = {firing.run_id for firing in firings if firing.run_id}
    steps = list(RunStep.objects.filter(run_id__in=run_ids).order_by("run_id", "position")) if run_ids else []
    rows = {}
    if steps:
        rows = {
            (step_id, lead_id): outcome
            for step_id, lead_id, outcome in RunResult.objects.filter(
                SEARCHED_ROWS,
                run_step_id__in=[step.pk for step in steps],
                lead_id__in={firing.lead_id for firing in firings},
            ).values_list("run_step_id", "lead_id", "outcome")
        }
    by_run = {}
    for step in steps:
        by_run.setdefault(step.run_id, []).append(step)
    members = []
    for firing in firings:
        member = Member(firing)
        for step in by_run.get(firing.run_id, []):
            outcome = rows.get((step.pk, firing.lead_id))
            if outcome is not None:
                member.steps.append(StepOutcome(step.number, step.get_action_display(), Outcome(outcome)))
        members.append(member)
    return members
