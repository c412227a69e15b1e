"""The Results tab: a campaign's runs, live progress, outcome counts per step,
the people behind each count with their replies, and their CSV export."""

import csv
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.lookups import In
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseStopPolling

from smscampaigns.estimates import rows_estimate
from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from ..forms import ResultsFilterForm
from ..links import clicked_counts, clicked_result_ids
from ..models import SEARCHED_ROWS, CampaignRun, FlowStep, Outcome, RunResult, RunStep, SmartCampaign
from ..replies import replied_counts, replied_result_ids, replies_by_result, replies_in_range
from ..result_details import detail_display
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_screen, vary_on_htmx, wants_partial

TEMPLATE = "marketing_activities/campaign_results.html"
FILTERS = ("run", "step", "outcome", "replied", "clicked", "q")
PAGE_SIZE = 25
# What a phone number may be written with; from this many digits on it is a whole number.
NUMBER_CHARACTERS = frozenset("0123456789+-.()/ ")
WHOLE_NUMBER_DIGITS = 10
SEARCHED_PEOPLE = 1000
# A search PostgreSQL's planner expects to find this many times SEARCHED_PEOPLE
# is one of many people without reading a thousand of them.
SURELY_MANY_TIMES = 10
RUNS_SHOWN = 20


def _selected_run(campaign: SmartCampaign, run_id) -> CampaignRun | None:
    runs = campaign.runs.select_related("requested_by", "cancelled_by")
    if run_id:
        if not str(run_id).isdigit():
            raise Http404
        return get_object_or_404(runs, pk=run_id)
    return runs.first()


def _step_rows(steps: list[RunStep], base_query: dict) -> list[dict]:
    """Each step of the run with its outcome counts, as bars (share of the step's people),
    and for a Send step the people who replied."""
    sends = [step.pk for step in steps if step.action == FlowStep.Action.SEND_SMS]
    replied = replied_counts(sends) if sends else {}
    tracked = [pk for pk in sends if any(step.pk == pk and step.track_links for step in steps)]
    clicked = clicked_counts(tracked) if tracked else {}
    rows = []
    for step in steps:
        counts = step.outcome_counts()
        total = sum(n for _, n in counts)
        rows.append(
            {
                "step": step,
                "total": total,
                "replied": replied.get(step.pk, 0) if step.pk in sends else None,
                "replied_query": urlencode({**base_query, "step": step.position, "replied": "1"}),
                "clicked": clicked.get(step.pk, 0) if step.pk in tracked else None,
                "clicked_query": urlencode({**base_query, "step": step.position, "clicked": "1"}),
                "bars": [
                    {
                        "code": outcome.code,
                        "label": outcome.label,
                        "count": n,
                        "percent": round(100 * n / total, 1) if total else 0,
                        "query": urlencode({**base_query, "step": step.position, "outcome": outcome.code}),
                        "tone": _tone(outcome),
                    }
                    for outcome, n in counts
                ],
            }
        )
    return rows


GOOD = (
    Outcome.SENT,
    Outcome.DELIVERED,
    Outcome.SUBSCRIBED,
    Outcome.PENDING,
    Outcome.UNSUBSCRIBED,
    Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES,
    Outcome.REQUESTED,
)


def _tone(outcome: Outcome) -> str:
    if outcome in GOOD:
        return "good"
    if outcome in (Outcome.FAILED, Outcome.UNCERTAIN, Outcome.DELIVERY_FAILED):
        return "bad"
    if outcome in (Outcome.QUEUED, Outcome.SENDING, Outcome.PLANNED_DRY_RUN):
        return "busy"
    return "skip"


def filtered_results(steps: list[RunStep], step_position, form: ResultsFilterForm):
    """The per-person results of a run's `steps`, narrowed by step, outcome and a
    search on name, email or number.

    Each step's rows lie in an id range (RunStep.results), so a page reads
    those ranges in order, never the table. A search finds the people through
    the leads' indexes first, then their rows through the index on (step,
    person) (`_search_condition`).
    """
    ranges = Q()
    for step in steps:
        if step.first_result_id is not None and step_position in (None, "", str(step.position)):
            ranges |= Q(run_step=step, pk__gte=step.first_result_id, pk__lte=step.last_result_id)
    if not ranges:
        return RunResult.objects.none()
    results = RunResult.objects.filter(ranges)
    outcome = form.outcome_value()
    if outcome is not None:
        results = results.filter(outcome=outcome)
    if form.is_valid() and form.cleaned_data.get("replied"):
        results = results.filter(pk__in=replied_result_ids(step.pk for step in steps))
    if form.is_valid() and form.cleaned_data.get("clicked"):
        results = results.filter(pk__in=clicked_result_ids(step.pk for step in steps))
    query = form.cleaned_data.get("q", "") if form.is_valid() else ""
    for term in query.split():
        results = results.filter(_search_condition(term))
    return results


def _search_condition(term: str) -> Q | In:
    """The rows one search word finds: a whole number in any spelling, the rows
    of the people who have that number; a part of one (three digits or more),
    the rows whose number contains it; any other word, the people whose first
    name, last name or email begins with it. The people are found through the
    leads' indexes, and their rows through the run's index on (step, person)."""
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 3 and set(term) <= NUMBER_CHARACTERS:
        number = normalize_phone_or_blank(term) if len(digits) >= WHOLE_NUMBER_DIGITS else ""
        if not number:
            return Q(phone__contains=digits)  # a part of a number: the rows are read in order
        people = Lead.objects.filter(mobile_phone=number).order_by()
    else:
        people = Lead.objects.filter(
            Q(first_name__istartswith=term) | Q(last_name__istartswith=term) | Q(email__istartswith=term)
        ).order_by()
    # A few people are looked for by their ids, their rows through the index. Many
    # are found early in the run's rows read in order: the person's id as an
    # expression keeps the query planners (both) off the index, which would read
    # every row of all of them and sort them for one page.
    many = In(F("lead_id") + 0, people.values("pk"))
    if (rows_estimate(people) or 0) > SURELY_MANY_TIMES * SEARCHED_PEOPLE:
        return many  # PostgreSQL's estimate: 200,000 people at ten million read 78 ms to say "many"
    few = list(people.values_list("pk", flat=True)[: SEARCHED_PEOPLE + 1])
    if len(few) <= SEARCHED_PEOPLE:
        return Q(lead_id__in=few) & SEARCHED_ROWS
    return many


@contextmanager
def _serial_plan(*, searched: bool):
    """A search's page read without PostgreSQL's parallel workers. Past a common
    name's thousand people the page walks the run in id order until 26 rows
    match, a few thousand rows; PostgreSQL planned two workers for them, whose
    start and merge took 170–190 ms against 15–24 ms alone (ten million rows,
    EXPLAIN ANALYZE at load 4). SET LOCAL lasts until the end of the transaction."""
    if not searched or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


@dataclass
class ResultsPage:
    """A page of a run's people, without counting the rows when the step
    counts do not tell how many there are (a search): then it knows only
    whether another page follows."""

    number: int
    object_list: list
    total: int | None  # rows in all, when known
    more: bool

    @property
    def pages(self) -> int:
        return (
            max(1, math.ceil(self.total / PAGE_SIZE)) if self.total is not None else self.number + self.more
        )

    def has_previous(self):
        return self.number > 1

    def has_next(self):
        return self.more

    def has_other_pages(self):
        return self.number > 1 or self.more

    def previous_page_number(self):
        return self.number - 1

    def next_page_number(self):
        return self.number + 1


def _known_total(steps: list[RunStep], step_position, form: ResultsFilterForm) -> int | None:
    """How many rows the filters leave, from the steps' counts by outcome; None for a search."""
    if form.is_valid() and (form.cleaned_data.get("replied") or form.cleaned_data.get("q", "").strip()):
        return None
    outcome = form.outcome_value()
    code = Outcome(outcome).code if outcome is not None else None
    return sum(
        n
        for step in steps
        if step.first_result_id is not None and step_position in (None, "", str(step.position))
        for step_code, n in (step.counts or {}).items()
        if code is None or step_code == code
    )


def results_page(results, *, total: int | None, page) -> ResultsPage:
    """The page `page` asks for (the first for anything else, the last beyond the end when
    the total is known); the rows of one page and one more, never a count of them all."""
    number = int(page) if str(page).isdigit() and int(page) > 0 else 1
    if total is not None:
        number = min(number, max(1, math.ceil(total / PAGE_SIZE)))
    start = (number - 1) * PAGE_SIZE
    rows = list(results[start : start + PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    if total is None and not more:
        total = start + len(rows)  # the last page: now the total is known
    return ResultsPage(number, rows[:PAGE_SIZE], total, more)


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign", "view_campaignrun")
def results(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(pk)
    run = _selected_run(campaign, request.GET.get("run"))
    step = request.GET.get("step", "")
    if step and not step.isdigit():
        raise Http404
    form = ResultsFilterForm(request.GET)
    context = {
        **campaign_context(campaign, "results"),
        "runs": campaign.runs.select_related("requested_by")[:RUNS_SHOWN],
        "run": run,
        "step_position": step,
        "filter_form": form,
        # In the context, not the template: each partial is also rendered alone.
        "results_url": reverse("marketing_activities:campaign_results", args=[campaign.pk]),
    }
    if run is not None:
        steps = list(run.steps.all())
        context["step_rows"] = _step_rows(steps, {"run": run.pk})
        results = filtered_results(steps, step, form).select_related(
            "lead", "duplicate_of", "blocked_by", "run_step", "sent_sms"
        )
        with _serial_plan(searched=form.is_valid() and bool(form.cleaned_data.get("q", "").strip())):
            page = results_page(
                results.order_by("pk"), total=_known_total(steps, step, form), page=request.GET.get("page")
            )
        replies = replies_by_result(result.pk for result in page.object_list)
        for result in page.object_list:
            result.replies = replies.get(result.pk, [])
        context["page"] = page
        context["poll_url"] = context["results_url"] + f"?run={run.pk}"
        filters = {k: v for k, v in request.GET.items() if k in FILTERS and v}
        context["filter_query"] = urlencode(filters)
        export = reverse("marketing_activities:campaign_results_export", args=[campaign.pk])
        context["export_url"] = f"{export}?{urlencode(filters)}"
    polled = wants_partial(request) and request.htmx.target == "run-detail"
    if polled and run is not None and not run.is_active:
        # htmx: the run has finished; 286 shows it one last time and stops the
        # polling; the list of runs and the people come along (out of band).
        context["runs_out_of_band"] = True
        return vary_on_htmx(
            HttpResponseStopPolling(render_to_string(f"{TEMPLATE}#run-detail", context, request=request))
        )
    return render_screen(request, TEMPLATE, context, selected=campaign)


class _Echo:
    """A file-like object that hands back what is written, for csv.writer."""

    def write(self, value):
        return value


_FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?!\d[\d\s().-]*$)")


def _cell(value) -> str:
    # Spreadsheets run cells starting with = + - @ as formulas; numbers such as +15551234567 stay as they are.
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA_START.match(text) else text


EXPORT_CHUNK = 2000


def _chunks(rows, size):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign", "view_campaignrun")
def results_export(request: HtmxHttpRequest, pk: int) -> StreamingHttpResponse:
    """The filtered rows as CSV, streamed in chunks (never the whole run in memory)."""
    campaign = campaign_or_404(pk)
    run = _selected_run(campaign, request.GET.get("run"))
    if run is None:
        raise Http404
    step = request.GET.get("step", "")
    if step and not step.isdigit():
        raise Http404
    columns = (
        "pk", "run_step__position", "lead_id", "lead__first_name", "lead__last_name", "lead__email", "phone",
        "outcome", "detail", "error_code", "duplicate_of_id", "duplicate_of__first_name",
        "duplicate_of__last_name", "delivery_status", "blocked_by_id", "blocked_by__first_name",
        "blocked_by__last_name", "blocked_by__email", "delivery_reason", "updated_at",
        "run_step__planned_at",
    )  # fmt: skip
    steps = list(run.steps.all())
    rows = filtered_results(steps, step, ResultsFilterForm(request.GET)).order_by("pk").values_list(*columns)
    header = [
        _("step"), _("lead id"), _("first name"), _("last name"), _("email"), _("number"), _("outcome"),
        _("outcome label"), _("detail"), _("error code"), _("sent to instead (lead id)"),
        _("sent to instead"), _("delivery"), _("number blocked by (lead id)"), _("number blocked by"),
        _("delivery failure reason"), _("outcome changed"), _("replies"), _("reply text"),
    ]  # fmt: skip

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        for chunk in _chunks(rows.iterator(chunk_size=EXPORT_CHUNK), EXPORT_CHUNK):
            # One query for the replies of each chunk (rows come in id order), never
            # one per row nor the whole run's at once.
            replies = replies_in_range(chunk[0][0], chunk[-1][0])
            for row in chunk:
                (pk, position, lead_id, first, last, email, phone, outcome, detail, code, dup_id, dup_first,
                 dup_last, delivery, blocker_id, blocker_first, blocker_last, blocker_email, delivery_reason,
                 changed, planned) = row  # fmt: skip
                outcome = Outcome(outcome)
                dup_name = f"{dup_first or ''} {dup_last or ''}".strip()
                blocker_name = f"{blocker_first or ''} {blocker_last or ''}".strip() or blocker_email or ""
                # A row unchanged since planning holds the outcome it was planned with.
                changed = changed or planned
                texts = [message.text for message in replies.get(pk, [])]
                cells = (
                    position + 1, lead_id, first, last, email, phone, outcome.code, outcome.label,
                    detail_display(detail), code, dup_id or "", dup_name, delivery, blocker_id or "", blocker_name,
                    delivery_reason, timezone.localtime(changed).isoformat(timespec="seconds") if changed else "",
                    len(texts), "\n".join(texts),
                )  # fmt: skip
                yield writer.writerow([_cell(value) for value in cells])

    filename = f"campaign-{campaign.pk}-run-{run.pk}-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
