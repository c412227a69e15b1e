"""A run's outcome counts, as the command line and the admin show them, and
what Run now would do, as its confirmations (the Schedule tab's and the
admin's) show it."""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import CampaignRun, FlowStep, Outcome, SmartCampaign, outcome_counts
from . import CampaignCannotRun, NobodyLeftToRun, campaign_preview, check_anyone_left

COLUMNS = ("sent", "subscribed", "pending", "unsubscribed", "failed", "uncertain")
OPEN = (Outcome.QUEUED.code, Outcome.SENDING.code)
WOULD_CALL = Outcome.PLANNED_DRY_RUN.code


def _is_skip(code: str) -> bool:
    return code.startswith("skipped_") or code == Outcome.ALREADY_RAN.code


def step_summary(step) -> dict:
    """Counts of a run step (or a preview step) grouped the way people read them."""
    counts = dict(step.counts)
    skipped = {code: n for code, n in counts.items() if _is_skip(code)}
    row = {column: counts.get(column, 0) for column in COLUMNS}
    row["open"] = sum(counts.get(code, 0) for code in OPEN)
    row["would_call"] = counts.get(WOULD_CALL, 0)
    row["skipped"] = sum(skipped.values())
    row["skipped_by_reason"] = [(Outcome[code.upper()].label, n) for code, n in sorted(skipped.items())]
    row["total"] = sum(counts.values())
    return row


def format_summary(run: CampaignRun) -> str:
    """A plain-text table: one line per step, then its skips by reason."""
    columns = [*COLUMNS, "skipped", "total"]
    headers = [_("Step"), _("Action"), *[Outcome[c.upper()].label if c in COLUMNS else _(c) for c in columns]]
    if run.dry_run:
        columns.insert(0, "would_call")
        headers.insert(2, _("would be called"))
    rows = []
    for step in run.steps.order_by("position"):
        row = step_summary(step)
        rows.append([str(step.number), str(step.get_action_display()), *[str(row[c]) for c in columns]])
        for label, count in row["skipped_by_reason"]:
            cells = ["", f"  {label}", *[""] * len(columns)]
            cells[2 + columns.index("skipped")] = str(count)
            rows.append(cells)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def render(cells):
        return "  ".join(
            str(cell).ljust(width) if index < 2 else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    status = _("Run %(id)s %(status)s: %(audience)s people in the audience.") % {
        "id": run.pk,
        "status": run.get_status_display(),
        "audience": run.audience,
    }
    if run.error:
        status += " " + run.error
    return "\n".join([render(headers), "  ".join("-" * w for w in widths), *map(render, rows), "", status])


# What "would be called (dry run)" means for each step, in a confirmation.
PLANNED_LABELS = {
    FlowStep.Action.SEND_SMS: gettext_lazy("will get the SMS"),
    FlowStep.Action.SUBSCRIBE: gettext_lazy("will be asked to confirm a subscription"),
    FlowStep.Action.UNSUBSCRIBE: gettext_lazy("will be unsubscribed"),
}


@dataclass
class PlannedStep:
    number: int
    label: str
    counts: list = field(default_factory=list)  # (what happens, in the Results tab's words; people)


@dataclass
class RunNowPreview:
    audience: int = 0
    steps: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # why the campaign cannot run; then nothing else is set
    # Under the rule "once", why nobody is left to qualify; then nothing else is set.
    nobody_left: list = field(default_factory=list)

    @property
    def can_run(self) -> bool:
        return not self.problems and not self.nobody_left


def run_now_preview(*, campaign: SmartCampaign) -> RunNowPreview:
    """What Run now would do, for its confirmation: the audience and each step's
    counts by outcome, planned as a run plans them (and thrown away); or why
    the campaign cannot run, or that nobody is left to qualify."""
    problems = campaign.problems()
    if problems:
        return RunNowPreview(problems=problems)
    try:
        # A couple of counts before the plan: when nobody is left, a preview is wasted work.
        check_anyone_left(campaign)
        preview = campaign_preview(campaign=campaign, sample_size=0)
    except NobodyLeftToRun as error:
        return RunNowPreview(nobody_left=error.problems)
    except CampaignCannotRun as error:
        return RunNowPreview(problems=error.problems)
    steps = [
        PlannedStep(
            number=step.number,
            label=step.action_label,
            counts=[
                (PLANNED_LABELS[step.action] if outcome == Outcome.PLANNED_DRY_RUN else outcome.label, n)
                for outcome, n in outcome_counts(step.counts)
            ],
        )
        for step in preview.steps
    ]
    return RunNowPreview(audience=preview.audience, steps=steps)
