"""The SMS dashboards: one page per scope (an SMS message, a campaign, a program,
a Vibes list, the whole installation) with Marketo's three panels (SMS
Progression, Summary, Activity Over Time) and a comparison of two messages;
the people behind each figure, and their CSV export.

The figures come from reporting/figures.py (the rollups), the people from
reporting/people.py (the runs' rows). Every scope shares one template and these
three views; the URL says the scope (`kind`).
"""

import csv
import functools

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_http_methods

from vibes.models import VibesList

from ..models import Outcome, SmsMessage
from ..permissions import VIEW_RUNS, require_permissions
from ..reporting.figures import Scope, SmsFigures, bucket_size, sms_figures, sms_figures_over_time
from ..reporting.forms import OVER_TIME_FIGURES, DashboardForm
from ..reporting.people import (
    FIGURES,
    figure_people,
    figure_people_page,
    people_columns,
    reading_every_row,
    scope_object,
)
from .campaign import campaign_context
from .common import HtmxHttpRequest, marketer_required, render_screen
from .results import _cell, _chunks, _Echo
from .tree_nodes import crumbs

TEMPLATE = "marketing_activities/sms_dashboard.html"
PEOPLE_TEMPLATE = "marketing_activities/sms_dashboard_people.html"
PEOPLE_PAGE_SIZE = 50
EXPORT_CHUNK = 2000

# What each scope's pages need before seeing the runs (VIEW_RUNS: figures are runs' results).
SCOPE_PERMISSIONS = {
    "message": ("marketing_activities.view_smsmessage",),
    "campaign": ("marketing_activities.view_smartcampaign",),
    "program": ("marketing_activities.view_program",),
    "vibes_list": ("vibes.view_vibeslist",),
    "installation": (),
}

FIGURE_LABELS = {
    "sent": gettext_lazy("Sent"),
    "delivered": gettext_lazy("Delivered"),
    "failed": gettext_lazy("Failed"),
    "failed_hard": gettext_lazy("Hard bounces"),
    "failed_soft": gettext_lazy("Soft bounces"),
    "replied": gettext_lazy("Replied"),
    "clicked": gettext_lazy("Clicked"),
    "unsubscribed": gettext_lazy("Unsubscribed"),
}
# Summary: each figure with the rate that goes with it.
SUMMARY = (
    ("sent", None, None),
    ("delivered", "delivery_rate", gettext_lazy("Delivery rate")),
    ("failed", "failure_rate", gettext_lazy("Bounce rate")),
    ("failed_hard", None, None),
    ("failed_soft", None, None),
    ("replied", "reply_rate", gettext_lazy("Reply rate")),
    ("clicked", "click_rate", gettext_lazy("Click rate")),
    ("unsubscribed", "unsubscribe_rate", gettext_lazy("Unsubscribe rate")),
)


def dashboard_url(kind: str, pk: int | None, page: str = "") -> str:
    name = f"marketing_activities:{kind}_dashboard{'_' + page if page else ''}"
    return reverse(name, args=[] if kind == "installation" else [pk])


def _scope_or_404(request, kind: str, pk: int | None):
    require_permissions(request.user, *SCOPE_PERMISSIONS[kind], VIEW_RUNS)
    scope = Scope(kind, pk)
    try:
        return scope, scope_object(scope)
    except ObjectDoesNotExist:
        raise Http404 from None


def _scope_context(kind: str, obj) -> dict:
    """The page's header: the message's or campaign's tabs, the program's crumbs, a title."""
    if kind == "campaign":
        obj = type(obj).objects.select_related("program__folder", "smart_list").get(pk=obj.pk)
        return {**campaign_context(obj, "dashboard"), "selected": obj, "title": obj.name}
    if kind in ("message", "program"):
        folder = (obj.program if kind == "message" else obj).folder
        above = [*folder.ancestors(), folder, *([obj.program] if kind == "message" else [])]
        return {"breadcrumbs": crumbs(above), "selected": obj, "title": obj.name, kind: obj}
    if kind == "vibes_list":
        return {"vibes_list": obj, "title": obj.name, "selected": None}
    return {"title": _("SMS performance"), "selected": None}


def _summary(figures: SmsFigures, people_url) -> list[dict]:
    return [
        {
            "figure": name,
            "label": FIGURE_LABELS[name],
            "count": getattr(figures, name),
            "rate_label": rate_label,
            "percent": None
            if rate is None or getattr(figures, rate) is None
            else 100 * getattr(figures, rate),
            "people_url": people_url(name),
            "part": name.startswith("failed_"),
        }
        for name, rate, rate_label in SUMMARY
    ]


def _bucket_label(at, size: str) -> str:
    local = timezone.localtime(at)
    return date_format(local, "SHORT_DATETIME_FORMAT" if size == "hour" else "SHORT_DATE_FORMAT")


def _message_choices():
    return SmsMessage.objects.select_related("program").order_by("program__name", "name", "pk")


def _comparison(form: DashboardForm, scope: Scope, period, people_url_for) -> dict:
    """Two messages side by side over the same range: this one (on a message's dashboard)
    or the first chosen, and the second chosen; rows only once both are chosen."""
    first = scope.pk if scope.kind == "message" else form.valid("first", None)
    second = form.valid("second", None)
    chosen = [pk for pk in (first, second) if pk is not None]
    if len(chosen) < 2:
        return {"first": first, "second": second, "rows": []}
    messages = SmsMessage.objects.in_bulk(chosen)
    columns = [
        _summary(
            sms_figures(Scope("message", pk), start=period.start, end=period.end),
            lambda name, pk=pk: people_url_for("message", pk, name),
        )
        for pk in chosen
    ]
    rows = [
        {"label": cells[0]["label"], "part": cells[0]["part"], "cells": cells}
        for cells in zip(*columns, strict=True)
    ]
    return {"first": first, "second": second, "messages": [messages[pk] for pk in chosen], "rows": rows}


@require_http_methods(["GET"])
@marketer_required()  # and the scope's permissions: _scope_or_404
def dashboard(request: HtmxHttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    scope, obj = _scope_or_404(request, kind, pk)
    form = DashboardForm(request.GET)
    period = form.period()
    period_query = form.period_query()

    def people_url_for(kind, pk, figure):
        return f"{dashboard_url(kind, pk, 'people')}?{urlencode({'figure': figure, **period_query})}"

    size = bucket_size(period.start, period.end)
    figure = form.figure_choice

    # Computed when a panel shown asks for them: an htmx request for one panel
    # (the comparison, say) pays only for what that panel shows.
    @functools.cache
    def over_time():
        return sms_figures_over_time(scope, start=period.start, end=period.end)

    @functools.cache
    def summary():
        # The buckets cover the range: their sum is its figures, without asking again.
        figures = sum((bucket for _at, bucket in over_time()), SmsFigures())
        return _summary(figures, lambda name: people_url_for(kind, pk, name))

    context = {
        **_scope_context(kind, obj),
        "kind": kind,
        "form": form,
        "period": period,
        "hourly": size == "hour",
        "summary": summary,
        "figure": figure,
        "figure_label": dict(OVER_TIME_FIGURES)[figure],
        "figure_people_url": people_url_for(kind, pk, figure),
        "over_time": lambda: [(_bucket_label(at, size), at, getattr(row, figure)) for at, row in over_time()],
        "comparison": functools.cache(lambda: _comparison(form, scope, period, people_url_for)),
        "messages": _message_choices(),
        "vibes_lists": VibesList.objects.order_by("name") if kind in ("installation", "vibes_list") else [],
        # In the context, not the template: each partial is also rendered alone.
        "dashboard_url": dashboard_url(kind, pk),
        "people_url": dashboard_url(kind, pk, "people"),
    }
    return render_screen(request, TEMPLATE, context, selected=context.pop("selected"))


@require_http_methods(["GET"])
@marketer_required()  # and the scope's permissions: _scope_or_404
def dashboard_people(request: HtmxHttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    """The people behind one figure: a page of their SMS, newest call first;
    `?older=`/`?newer=` the page after or before (a page's cursor)."""
    scope, obj = _scope_or_404(request, kind, pk)
    form = DashboardForm(request.GET)
    figure = request.GET.get("figure", "sent")
    if figure not in FIGURES:
        figure = "sent"
    period = form.period()
    page = figure_people_page(
        scope,
        figure,
        start=period.start,
        end=period.end,
        older=request.GET.get("older", ""),
        newer=request.GET.get("newer", ""),
        per_page=PEOPLE_PAGE_SIZE,
    )
    query = {"figure": figure, **form.period_query()}
    context = {
        **_scope_context(kind, obj),
        "kind": kind,
        "form": form,
        "period": period,
        "figure": figure,
        "figure_label": FIGURE_LABELS[figure],
        "figure_choices": [(name, FIGURE_LABELS[name]) for name in FIGURES],
        "page": page,
        "query": urlencode(query),
        "newer_query": urlencode({**query, "newer": page.newer}) if page.newer else "",
        "older_query": urlencode({**query, "older": page.older}) if page.older else "",
        "dashboard_url": dashboard_url(kind, pk),
        "people_url": dashboard_url(kind, pk, "people"),
        "export_url": f"{dashboard_url(kind, pk, 'export')}?{urlencode(query)}",
    }
    return render_screen(request, PEOPLE_TEMPLATE, context, selected=context.pop("selected"))


@require_http_methods(["GET"])
@marketer_required()  # and the scope's permissions: _scope_or_404
def dashboard_export(request: HtmxHttpRequest, kind: str, pk: int | None = None) -> StreamingHttpResponse:
    """The people behind a figure as CSV, streamed in chunks (never all of them in memory)."""
    scope, _obj = _scope_or_404(request, kind, pk)
    figure = request.GET.get("figure", "sent")
    if figure not in FIGURES:
        raise Http404
    period = DashboardForm(request.GET).period()
    columns = (
        "called_at", "lead_id", "lead__first_name", "lead__last_name", "lead__email", "phone",
        "run_step__run__campaign__name", "run_step__run_id", "run_step__position", "outcome",
        "delivery_status", "delivery_reason", "has_reply", "has_click",
    )  # fmt: skip
    rows = people_columns(figure_people(scope, figure, start=period.start, end=period.end)).values_list(
        *columns
    )
    header = [
        _("called Vibes"), _("lead id"), _("first name"), _("last name"), _("email"), _("number"),
        _("campaign"), _("run"), _("step"), _("outcome"), _("delivery"), _("delivery failure reason"),
        _("replied"), pgettext("yes or no", "clicked"),
    ]  # fmt: skip
    yes, no = _("yes"), _("no")

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        with reading_every_row():
            yield from _rows(writer)

    def _rows(writer):
        for chunk in _chunks(rows.iterator(chunk_size=EXPORT_CHUNK), EXPORT_CHUNK):
            for row in chunk:
                called, *person, position, outcome, status, reason, has_reply, has_click = row
                cells = (
                    timezone.localtime(called).isoformat(timespec="seconds") if called else "",
                    *person,
                    position + 1,
                    Outcome(outcome).label,
                    status,
                    reason or "",
                    yes if has_reply else no,
                    yes if has_click else no,
                )
                yield writer.writerow([_cell(value) for value in cells])

    filename = (
        f"sms-{kind.replace('_', '-')}{'-' + str(pk) if pk else ''}-{figure}-{timezone.now():%Y%m%d-%H%M}.csv"
    )
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
