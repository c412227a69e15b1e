"""A run's outcome counts, as the command line and the admin show them."""

from dataclasses import dataclass, field

from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from smscampaigns.models import Lead

from ..models import NUMBER_BLOCKS, CampaignRun, Outcome, RunStep

COLUMNS = ("sent", "subscribed", "pending", "unsubscribed", "failed", "uncertain")
# What came of the calls afterwards (receipts, confirmations, Vibes' 404),
# and the SMS waiting for quiet hours: a column only when a step of the run has it.
LATER_COLUMNS = (
    "delivered",
    "delivery_failed",
    "declined",
    "expired",
    "already_unsubscribed_in_vibes",
    "deferred_quiet_hours",
)
OPEN = (Outcome.QUEUED.code, Outcome.SENDING.code, Outcome.DEFERRED_QUIET_HOURS.code)
WOULD_CALL = Outcome.PLANNED_DRY_RUN.code
BLOCKERS_SHOWN = 5


@dataclass(frozen=True)
class NumberBlocker:
    """A blocklisted or suspended person, and how many others on their number a step skipped."""

    lead_id: int
    name: str
    skipped: int


@dataclass(frozen=True)
class NumberBlockers:
    """For one skip reason of R4: the people it comes from, most skipped first."""

    shown: list[NumberBlocker] = field(default_factory=list)
    total: int = 0  # blocked people behind the reason, shown or not

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


def number_blockers(step: RunStep, *, limit: int = BLOCKERS_SHOWN) -> dict[str, NumberBlockers]:
    """{outcome code: NumberBlockers} for the step's skips that name a blocked
    person on the number; read from its rows (a few queries, only when the
    counts have such skips)."""
    if not any((step.counts or {}).get(outcome.code) for outcome in NUMBER_BLOCKS):
        return {}
    rows = step.results().filter(blocked_by__isnull=False)
    totals = dict(
        rows.order_by().values_list("outcome").annotate(people=Count("blocked_by_id", distinct=True))
    )
    found = {}
    for outcome in NUMBER_BLOCKS:
        if not totals.get(outcome):
            continue
        found[outcome] = list(
            rows.filter(outcome=outcome)
            .values_list("blocked_by_id")
            .annotate(skipped=Count("pk"))
            .order_by("-skipped", "blocked_by_id")[:limit]
        )
    leads = Lead.objects.in_bulk([lead_id for top in found.values() for lead_id, _skipped in top])
    return {
        Outcome(outcome).code: NumberBlockers(
            shown=[
                NumberBlocker(lead_id, _lead_name(leads.get(lead_id), lead_id), skipped)
                for lead_id, skipped in top
            ],
            total=totals[outcome],
        )
        for outcome, top in found.items()
    }


def _lead_name(lead, lead_id) -> str:
    # The result row outlives a deleted lead (no foreign key in the database).
    return str(lead) if lead is not None else _("Lead %(id)s") % {"id": lead_id}


@dataclass(frozen=True)
class SkipReason:
    label: str
    count: int
    blockers: NumberBlockers | None = None  # who it comes from, for the skips of R4


def step_summary(step) -> dict:
    """Counts of a run step (or a preview step) grouped the way people read them."""
    counts = {outcome.code: n for outcome, n in step.outcome_counts()}
    skipped = sorted((outcome.code, outcome, n) for outcome, n in step.outcome_counts() if outcome.is_skip)
    # A preview's rows are gone by now: it keeps its blockers (runner.campaign_preview).
    blockers = getattr(step, "blockers", None)
    if blockers is None:
        blockers = number_blockers(step)
    row = {column: counts.get(column, 0) for column in (*COLUMNS, *LATER_COLUMNS)}
    row["open"] = sum(counts.get(code, 0) for code in OPEN)
    row["would_call"] = counts.get(WOULD_CALL, 0)
    row["skipped"] = sum(n for _code, _outcome, n in skipped)
    row["skipped_by_reason"] = [
        SkipReason(outcome.label, n, blockers.get(code)) for code, outcome, n in skipped
    ]
    row["total"] = sum(counts.values())
    return row


def format_summary(run: CampaignRun) -> str:
    """A plain-text table: one line per step, then its skips by reason."""
    steps = list(run.steps.order_by("position"))
    later = [c for c in LATER_COLUMNS if any(step.counts.get(c) for step in steps)]
    columns = [*COLUMNS, *later, "skipped", "total"]
    named = {*COLUMNS, *later}
    headers = [_("Step"), _("Action"), *[Outcome.from_code(c).label if c in named else _(c) for c in columns]]
    if run.dry_run:
        columns.insert(0, "would_call")
        headers.insert(2, _("would be called"))
    rows = []
    for step in steps:
        row = step_summary(step)
        rows.append([str(step.number), str(step.get_action_display()), *[str(row[c]) for c in columns]])
        for reason in row["skipped_by_reason"]:
            rows.append(_reason_cells(f"  {reason.label}", reason.count, columns))
            if reason.blockers:
                # R4: the blocked people these skips come from.
                for blocker in reason.blockers.shown:
                    label = _("because of %(name)s") % {"name": blocker.name} + f" (lead {blocker.lead_id})"
                    rows.append(_reason_cells(f"    {label}", blocker.skipped, columns))
                if reason.blockers.more:
                    rows.append(
                        [
                            "",
                            "    "
                            + ngettext(
                                "and %(count)s more blocked person",
                                "and %(count)s more blocked people",
                                reason.blockers.more,
                            )
                            % {"count": reason.blockers.more},
                            *[""] * len(columns),
                        ]
                    )
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


def _reason_cells(label: str, count: int, columns: list[str]) -> list[str]:
    cells = ["", label, *[""] * len(columns)]
    cells[2 + columns.index("skipped")] = str(count)
    return cells
