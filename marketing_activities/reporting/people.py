"""The people behind a dashboard's figure: the SMS rows it counts, read from
the runs' results (never from the rollups), newest call first.

The definitions are the figures' (reporting/figures.py): an SMS counts once
Vibes accepted it (models.SMS_SENT), in the hour of its call, and a receipt,
reply, click or unsubscription arriving later counts for that call. The
scope's Send steps are found first (a few rows per run), then their rows
through the index on (run step, person).
"""

from django.core.paginator import Page, Paginator
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value

from vibes.models import SubscriptionChange, VibesList

from ..models import (
    HARD_BOUNCE_STATUSES,
    SEARCHED_ROWS,
    SMS_SENT,
    FlowStep,
    LinkClick,
    Outcome,
    Program,
    RunResult,
    RunStep,
    SmartCampaign,
    SmsMessage,
    SmsReply,
)
from .figures import Scope
from .rollups import SAME_SECOND
from .rollups import UNSUBSCRIBE_WINDOW as UNSUBSCRIBED_WITHIN

FIGURES = ("sent", "delivered", "failed", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed")

_SCOPE_MODELS = {
    "message": SmsMessage,
    "campaign": SmartCampaign,
    "program": Program,
    "vibes_list": VibesList,
}
_SCOPE_STEPS = {
    "message": "sms_message_id",
    "campaign": "run__campaign_id",
    "program": "run__campaign__program_id",
    "vibes_list": "vibes_list_id",
}


def scope_object(scope: Scope):
    """The message, campaign, program or Vibes list of the scope (None for the
    installation); raises its model's DoesNotExist for a missing one."""
    if scope.kind == "installation":
        return None
    if scope.kind not in _SCOPE_MODELS:
        raise ValueError(f"unknown scope kind {scope.kind!r}")
    return _SCOPE_MODELS[scope.kind].objects.get(pk=scope.pk)


def scope_send_steps(scope: Scope) -> QuerySet[RunStep]:
    """The scope's Send SMS steps of real runs (a dry run texts nobody), as a subquery of their ids."""
    steps = RunStep.objects.filter(action=FlowStep.Action.SEND_SMS, run__dry_run=False)
    if scope.kind != "installation":
        steps = steps.filter(**{_SCOPE_STEPS[scope.kind]: scope.pk})
    return steps.values("pk")


def sent_sms(scope: Scope, *, start=None, end=None) -> QuerySet[RunResult]:
    """Every SMS of the scope Vibes accepted, called in [start, end)."""
    scope_object(scope)
    rows = RunResult.objects.filter(
        # The condition of the index on (run step, person): the planners read the steps' rows through it.
        SEARCHED_ROWS,
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


def figure_people(scope: Scope, figure: str, *, start=None, end=None) -> QuerySet[RunResult]:
    """The SMS rows behind `figure` of the scope in [start, end), newest call first,
    with what a page of them shows (the person, the run, its campaign, the step)."""
    rows = sent_sms(scope, start=start, end=end)
    condition = figure_condition(figure, scope)
    if condition is not None:
        rows = rows.filter(condition)
    return rows.select_related("lead", "run_step__run__campaign").order_by(F("called_at").desc(), "-pk")


def people_columns(rows: QuerySet[RunResult]) -> QuerySet:
    """Rows with whether each got a reply and a click, in the same query."""
    return rows.annotate(has_reply=replied(), has_click=clicked())


def figure_people_page(scope: Scope, figure: str, *, start=None, end=None, number=None, per_page=50) -> Page:
    """One page of `figure_people`, with each row's reply and click.

    The page's ids are found first, sorted on the call time alone; only those
    rows are then read whole, with their person, run and campaign: a sort of
    every row of the scope carries no more than the ids."""
    ordered = figure_people(scope, figure, start=start, end=end)
    page = Paginator(ordered.values_list("pk", flat=True), per_page).get_page(number)
    ids = list(page.object_list)
    rows = people_columns(
        RunResult.objects.filter(pk__in=ids).select_related("lead", "run_step__run__campaign")
    )
    found = {row.pk: row for row in rows}
    page.object_list = [found[pk] for pk in ids]
    return page
