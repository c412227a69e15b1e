"""The people behind a dashboard's figure: the SMS rows it counts, read from
the runs' results (never from the rollups), newest call first.

The definitions are the figures' (reporting/figures.py): an SMS counts once
Vibes accepted it (models.SMS_SENT), in the hour of its call, and a receipt,
reply, click or unsubscription arriving later counts for that call. The
scope's Send steps are found first (a few rows per run), then their rows
through the index on (run step, person).
"""

import heapq
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from vibes.models import SubscriptionChange

from ..models import (
    HARD_BOUNCE_STATUSES,
    LEAD_CALLED,
    SEARCHED_ROWS,
    SMS_SENT,
    FlowStep,
    LinkClick,
    Outcome,
    RunResult,
    RunStep,
    SmsReply,
)
from .figures import SCOPES, Scope, sms_figures
from .rollups import SAME_SECOND
from .rollups import UNSUBSCRIBE_WINDOW as UNSUBSCRIBED_WITHIN

FIGURES = ("sent", "delivered", "failed", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed")

_SCOPE_STEPS = {
    "message": "sms_message_id",
    "campaign": "run__campaign_id",
    "program": "run__campaign__program_id",
    "vibes_list": "vibes_list_id",
}


def scope_object(scope: Scope):
    """The message, campaign, program or Vibes list of the scope (None for the
    installation); raises its model's DoesNotExist for a missing one."""
    if scope.kind not in SCOPES:
        raise ValueError(f"unknown scope kind {scope.kind!r}")
    model, _lookup = SCOPES[scope.kind]
    return None if model is None else model.objects.get(pk=scope.pk)


def scope_send_steps(scope: Scope) -> QuerySet[RunStep]:
    """The scope's Send SMS steps of real runs (a dry run texts nobody), as a subquery of their ids."""
    steps = RunStep.objects.filter(action=FlowStep.Action.SEND_SMS, run__dry_run=False)
    if scope.kind != "installation":
        steps = steps.filter(**{_SCOPE_STEPS[scope.kind]: scope.pk})
    return steps.values("pk")


# SEARCHED_ROWS written out: SQLite plans before it binds, and can name the
# index on (run step, person) (`INDEXED BY`) only for a condition it reads so.
SEARCHED_ROWS_WRITTEN_OUT = Q(outcome__gte=RawSQL("0", ()))


def sent_sms(scope: Scope, *, start=None, end=None, searched: Q = SEARCHED_ROWS) -> QuerySet[RunResult]:
    """Every SMS of the scope Vibes accepted, called in [start, end)."""
    scope_object(scope)
    rows = RunResult.objects.filter(
        # The condition of the index on (run step, person): the planners read the steps' rows through it.
        searched,
        run_step_id__in=scope_send_steps(scope),
        outcome__in=SMS_SENT,
        called_at__isnull=False,
    )
    if start is not None:
        rows = rows.filter(called_at__gte=start)
    if end is not None:
        rows = rows.filter(called_at__lt=end)
    return rows


def replied() -> Exists:
    return Exists(SmsReply.objects.filter(run_step_id=OuterRef("run_step_id"), result_id=OuterRef("pk")))


def clicked() -> Exists:
    return Exists(
        LinkClick.objects.filter(
            run_step_id=OuterRef("run_step_id"), by_robot=False, result_id=OuterRef("pk")
        )
    )


def unsubscribed() -> Exists:
    """The person left the step's Vibes list within 7 days of the call, whatever made them leave
    (a change whose person id and number disagreed never happened). Vibes gives an opt-out's
    time to the second, so an opt-out in the second of the call counts, as a reply does."""

    def called_at_plus(delta):
        return ExpressionWrapper(OuterRef("called_at") + Value(delta), output_field=DateTimeField())

    return Exists(
        SubscriptionChange.objects.filter(
            lead_id=OuterRef("lead_id"),
            vibes_list_id=OuterRef("run_step__vibes_list_id"),
            new_status="unsubscribed",
            occurred_at__gt=called_at_plus(-SAME_SECOND),
            occurred_at__lte=called_at_plus(UNSUBSCRIBED_WITHIN),
        ).exclude(effect=SubscriptionChange.Effect.MISMATCH)
    )


def figure_condition(figure: str, scope: Scope) -> Q | Exists | None:
    """What an SMS row of the scope needs to count in `figure` beyond being sent; None for "sent".

    Replies and clicks are few: their rows are found from the replies' and the
    clicks' indexes on (run step, row), never by asking each SMS in turn."""
    hard = Q(delivery_status__in=HARD_BOUNCE_STATUSES)
    steps = scope_send_steps(scope)
    conditions = {
        "sent": lambda: None,
        "delivered": lambda: Q(outcome=Outcome.DELIVERED),
        "failed": lambda: Q(outcome=Outcome.DELIVERY_FAILED),
        "failed_hard": lambda: Q(outcome=Outcome.DELIVERY_FAILED) & hard,
        "failed_soft": lambda: Q(outcome=Outcome.DELIVERY_FAILED) & ~hard,
        "replied": lambda: Q(pk__in=SmsReply.objects.filter(run_step_id__in=steps).values("result_id")),
        "clicked": lambda: Q(
            pk__in=LinkClick.objects.filter(run_step_id__in=steps, by_robot=False).values("result_id")
        ),
        "unsubscribed": unsubscribed,
    }
    if figure not in conditions:
        raise ValueError(f"unknown figure {figure!r}")
    return conditions[figure]()


def figure_people(
    scope: Scope, figure: str, *, start=None, end=None, searched: Q = SEARCHED_ROWS
) -> QuerySet[RunResult]:
    """The SMS rows behind `figure` of the scope in [start, end), newest call first,
    with what a page of them shows (the person, the run, its campaign, the step)."""
    rows = sent_sms(scope, start=start, end=end, searched=searched)
    condition = figure_condition(figure, scope)
    if condition is not None:
        rows = rows.filter(condition)
    return rows.select_related("lead", "run_step__run__campaign").order_by(F("called_at").desc(), "-pk")


@contextmanager
def reading_every_row():
    """For an export that reads every row of a query through a server-side cursor
    (`iterator()`): PostgreSQL plans a cursor for its first tenth, a walk of the
    call-time index with a nested loop per row, 115 s for the replies of a message
    at ten million SMS; planned for every row, a hash join and one sort
    (4.3 times faster at a million)."""
    if connection.vendor != "postgresql":
        yield  # SQLite reads as it plans; a transaction would take its write lock
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        yield


def people_columns(rows: QuerySet[RunResult]) -> QuerySet:
    """Rows with whether each got a reply and a click, in the same query."""
    return rows.annotate(has_reply=replied(), has_click=clicked())


@dataclass(frozen=True)
class PeoplePage:
    """A page of the people behind a figure, newest call first."""

    rows: list  # the page's SMS rows, with their person, run, campaign, reply and click
    total: int  # every row behind the figure in the range (the rollups' figure)
    newer: str  # the cursor of the page before this one ("" on the newest page)
    older: str  # the cursor of the page after this one ("" on the last)
    problem: str = ""  # a cursor that could not be read: the newest page is shown


def _cursor(row) -> str:
    called_at, pk = row
    return f"{called_at.isoformat()}~{pk}"


def _parse_cursor(text: str) -> tuple | None:
    """(call time, id) of a page's cursor; None for one that cannot be read (the newest page is shown)."""
    when, _tilde, pk = text.partition("~")
    try:
        moment = parse_datetime(when)
    except ValueError:
        return None
    if moment is None or not pk.isdigit():
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, int(pk)


def figure_calls(scope: Scope, figure: str, *, start, end, newer=None, older=None) -> QuerySet[RunResult]:
    """`figure_people` in [start, end), above the cursor `newer` or below `older`
    ((call time, id)), without the condition of the index on (run step, person):
    both databases then read the index on (call time, id) from the cursor on,
    the scope's steps and the figure a filter, and stop after a page.

    A cursor is a bound on the call time plus a filter on the id, and replaces
    the range's bound on its side: given two, SQLite walks from the wider."""
    rows = RunResult.objects.filter(
        LEAD_CALLED, run_step_id__in=scope_send_steps(scope), outcome__in=SMS_SENT
    )
    if newer is not None:
        when, pk = newer
        rows = rows.filter(Q(called_at__gt=when) | Q(pk__gt=pk))
        start = when if start is None else max(start, when)
    if older is not None:
        when, pk = older
        rows = rows.filter(Q(called_at__lt=when) | Q(pk__lt=pk))
        if end is None or when < end:
            rows, end = rows.filter(called_at__lte=when), None
    if start is not None:
        rows = rows.filter(called_at__gte=start)
    if end is not None:
        rows = rows.filter(called_at__lt=end)
    if figure in _ASKED_IN_TURN:
        # Walking newest first stops after a page: asking each SMS passed for its
        # reply or click costs less than listing every reply or click of the scope.
        return rows.filter(_ASKED_IN_TURN[figure]())
    condition = figure_condition(figure, scope)
    return rows if condition is None else rows.filter(condition)


_ASKED_IN_TURN = {"replied": replied, "clicked": clicked}


# What reading a row of the scope whole (then sorting it here) costs, in walks
# past a call of the call-time index (benchmarks/dashboards.py, the sliver's pages).
READ_COST = 2


def _reads_fewer_than_a_walk(scope: Scope, figure: str, figures, *, start, end, per_page: int) -> bool:
    """Whether reading the figure's candidates whole (the scope's SMS, or its replies
    or clicks) costs less than walking every call newest first until a page fills.

    The walk passes about per_page × (the range's SMS / the figure's) calls, and all
    of them for a figure of less than a page: a campaign of a hundred SMS among ten
    million would be walked to the range's end. The rollups know both numbers."""
    total = getattr(figures, figure)
    calls = (
        figures.sent
        if scope.kind == "installation"
        else sms_figures(Scope("installation"), start=start, end=end).sent
    )
    walk = calls if total <= per_page else per_page * calls / total
    candidates = total if figure in _ASKED_IN_TURN else figures.sent
    return candidates * READ_COST < walk


def _keys_read_whole(scope: Scope, figure: str, *, start, end, newer, older, count: int) -> list:
    """The `count` (call time, id) keys of `figure_people` nearest above the cursor
    `newer` (oldest first) or below `older` (newest first), read through the scope's
    steps' index (or the replies' or clicks') in no order and sorted here: an order
    asked of the database would have it walk the call-time index again."""
    rows = figure_people(scope, figure, start=start, end=end, searched=SEARCHED_ROWS_WRITTEN_OUT)
    if newer is not None:
        when, pk = newer
        rows = rows.filter(Q(called_at__gt=when) | Q(called_at=when, pk__gt=pk))
    if older is not None:
        when, pk = older
        rows = rows.filter(Q(called_at__lt=when) | Q(called_at=when, pk__lt=pk))
    keys = rows.order_by().values_list("called_at", "pk")
    pick = heapq.nsmallest if newer is not None else heapq.nlargest
    if connection.vendor == "sqlite" and figure not in _ASKED_IN_TURN:
        return pick(count, _through_the_steps_index(keys))
    with reading_every_row():
        return pick(count, keys.iterator(chunk_size=2000))


def _through_the_steps_index(keys: QuerySet) -> Iterator[tuple]:
    """SQLite: the (call time, id) keys read through the index on (run step, person),
    named. Its statistics give every step the average step's rows, so for a sliver
    of the calls its planner would still walk the call-time index (1.5 s at a million).
    Replies and clicks need no naming: their ids lead the way."""
    sql, params = keys.query.sql_with_params()
    table = f"FROM {connection.ops.quote_name(RunResult._meta.db_table)} "
    sql = sql.replace(table, f"{table}INDEXED BY run_result_step_lead ", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # Read as the ORM reads it: SQLite gives the time as text.
        read_time = connection.ops.convert_datetimefield_value
        for called_at, pk in cursor:
            yield read_time(called_at, None, connection), pk


def figure_people_page(
    scope: Scope, figure: str, *, start=None, end=None, older: str = "", newer: str = "", per_page=50
) -> PeoplePage:
    """The page of `figure_people` below the cursor `older` (a page's `older`), or
    above `newer` (a page's `newer`), or the newest; with each row's reply and click.

    Keyset pages on (call time, id), never an OFFSET; the total is the rollups'
    figure, never a count of the rows (tests/.../test_figures_match_people.py).
    The keys come from a walk of the call-time index, or, where that would pass
    more calls than the figure's candidates hold, from those candidates."""
    scope_object(scope)
    figures = sms_figures(scope, start=start, end=end)
    total = getattr(figures, figure)
    below, above = _parse_cursor(older) if older else None, _parse_cursor(newer) if newer else None
    if total == 0:
        keys = []  # nothing behind the figure: no walk to the range's end to find so
    elif _reads_fewer_than_a_walk(scope, figure, figures, start=start, end=end, per_page=per_page):
        keys = _keys_read_whole(
            scope, figure, start=start, end=end, newer=above, older=below, count=per_page + 1
        )
    elif above is not None:
        rows = figure_calls(scope, figure, start=start, end=end, newer=above)
        keys = list(rows.values_list("called_at", "pk").order_by("called_at", "pk")[: per_page + 1])
    else:
        rows = figure_calls(scope, figure, start=start, end=end, older=below)
        keys = list(
            rows.values_list("called_at", "pk").order_by(F("called_at").desc(), F("pk").desc())[
                : per_page + 1
            ]
        )
    if above is not None:
        more_newer, keys = len(keys) > per_page, keys[:per_page][::-1]
        more_older = bool(keys)
    else:
        more_older, keys = len(keys) > per_page, keys[:per_page]
        more_newer = below is not None and bool(keys)
    ids = [pk for _, pk in keys]
    found = {
        row.pk: row
        for row in people_columns(
            RunResult.objects.filter(pk__in=ids).select_related("lead", "run_step__run__campaign")
        )
    }
    unread = (older and below is None) or (newer and above is None)
    return PeoplePage(
        problem=_("That page could not be read: the first page is shown.") if unread else "",
        rows=[found[pk] for pk in ids],
        total=total,
        newer=_cursor(keys[0]) if more_newer else "",
        older=_cursor(keys[-1]) if more_older else "",
    )
