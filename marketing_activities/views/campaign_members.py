"""Campaign Members, on a trigger campaign's Schedule tab: who entered when,
through which trigger activity, and their outcome at each step; and their CSV."""

import csv

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ..campaign_members import campaign_members, campaign_members_page, members_with_outcomes
from ..models import Outcome, TriggerFiring
from ..permissions import require_permissions
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_screen
from .results import EXPORT_CHUNK, _cell, _chunks, _Echo

TEMPLATE = "marketing_activities/campaign_members.html"
VIEW_LEADS = "smscampaigns.view_lead"


def _filters(request) -> tuple[Outcome | None, str, int | None, list[str]]:
    """The step outcome, the status and the cursor asked for; what could not be read is said, and left out."""
    problems = []
    code = request.GET.get("outcome", "")
    outcome = Outcome.from_code(code) if code else None
    if code and outcome is None:
        problems.append(_("“%(outcome)s” is not a step outcome: every member is shown.") % {"outcome": code})
    status = request.GET.get("status", "")
    if status and status not in TriggerFiring.Status.values:
        problems.append(_("“%(status)s” is not a member status: every member is shown.") % {"status": status})
        status = ""
    older = request.GET.get("older", "")
    if older and not older.isdigit():
        problems.append(_("That page could not be read: the newest members are shown."))
    return outcome, status, int(older) if older.isdigit() else None, problems


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign", "view_campaignrun")
def members(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The members, newest first: `?outcome=<code>` those with that outcome at
    a step, `?status=` those of a firing status, `?older=<firing id>` the next page."""
    campaign = campaign_or_404(pk)
    require_permissions(request.user, VIEW_LEADS)
    if not campaign.is_trigger_campaign:
        # A batch campaign has no members before it runs: who would qualify is its list.
        return redirect("marketing_activities:campaign_qualified_people", pk=campaign.pk)
    outcome, status, older, problems = _filters(request)
    page = campaign_members_page(campaign=campaign, outcome=outcome, status=status, older=older)
    filters = {**({"outcome": outcome.code} if outcome else {}), **({"status": status} if status else {})}
    context = {
        **campaign_context(campaign, "schedule"),
        "problems": problems,
        "members": page.members,
        "outcome": outcome,
        "status": status,
        "older": older,
        "outcomes": [(o.code, o.label) for o in Outcome],
        "statuses": TriggerFiring.Status.choices,
        "members_url": reverse("marketing_activities:campaign_members", args=[campaign.pk]),
        "results_url": reverse("marketing_activities:campaign_results", args=[campaign.pk]),
        "filters_query": urlencode(filters),
        "next_query": urlencode({**filters, "older": page.older}) if page.older else "",
    }
    return render_screen(request, TEMPLATE, context, selected=campaign, default_partial="members-list")


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign", "view_campaignrun")
def members_export(request: HtmxHttpRequest, pk: int) -> StreamingHttpResponse:
    """The members of the filters as CSV, newest first, streamed a chunk at a time."""
    campaign = campaign_or_404(pk)
    require_permissions(request.user, VIEW_LEADS)
    outcome, status, _older, _problems = _filters(request)
    firings = campaign_members(campaign=campaign, outcome=outcome, status=status)
    header = [
        _("fired"), _("lead id"), _("first name"), _("last name"), _("email"), _("number"),
        _("trigger activity"), _("activity time"), _("status"), _("run"), _("outcome per step"),
    ]  # fmt: skip

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        for chunk in _chunks(firings.iterator(chunk_size=EXPORT_CHUNK), EXPORT_CHUNK):
            # The outcomes of a chunk in two queries, never one per member.
            for member in members_with_outcomes(chunk):
                firing, lead = member.firing, member.firing.lead
                steps = "; ".join(f"{s.number}. {s.action}: {s.outcome.label}" for s in member.steps)
                cells = (
                    timezone.localtime(firing.created_at).isoformat(timespec="seconds"), lead.pk,
                    lead.first_name, lead.last_name, lead.email, lead.mobile_phone,
                    firing.activity.get_kind_display(),
                    timezone.localtime(firing.activity.occurred_at).isoformat(timespec="seconds"),
                    firing.get_status_display(), firing.run_id or "", steps,
                )  # fmt: skip
                yield writer.writerow([_cell(value) for value in cells])

    filename = f"campaign-{campaign.pk}-members-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
