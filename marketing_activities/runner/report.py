"""A run's outcome counts, as the command line and the admin show them."""

from django.utils.translation import gettext as _

from ..models import CampaignRun, Outcome

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
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def render(cells):
        return "  ".join(
            str(cell).ljust(width) if index < 2 else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    status = _("Run %(id)s %(status)s: %(audience)s people in the audience.") % {
        "id": run.pk,
        "status": run.get_status_display(),
        "audience": run.audience,
    }
    if run.error:
        status += " " + run.error
    return "\n".join([render(headers), "  ".join("-" * w for w in widths), *map(render, rows), "", status])
