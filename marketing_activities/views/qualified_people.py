"""View Qualified People, on a batch campaign's Schedule tab: who the first
step would take now, counted by reason (Run now's counts, in the background)
and listed a page at a time with the outcome each would get; and their CSV."""

import csv

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ..models import AudienceCount, Outcome, SmartCampaign
from ..permissions import require_permissions
from ..runner.person_limit import PersonLimitRefused
from ..runner.preview import PLANNED_LABELS
from ..runner.qualified_people import CALLED, qualified_people_page
from ..tasks import audience_count_start
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_screen
from .results import EXPORT_CHUNK, _cell, _Echo

TEMPLATE = "marketing_activities/campaign_qualified_people.html"
VIEW_LEADS = "smscampaigns.view_lead"


def _labeller(campaign: SmartCampaign):
    """A reason in the Results tab's words; the call in the confirmation's ("will get the SMS")."""
    steps = campaign.steps()
    called = str(PLANNED_LABELS[steps[0].action]) if steps else str(CALLED.label)
    return lambda outcome: called if outcome == CALLED else str(outcome.label)


def _filters(request) -> tuple[Outcome | None, int | None, list[str]]:
    """The reason and the cursor asked for; what could not be read is said, and left out."""
    problems = []
    code = request.GET.get("outcome", "")
    outcome = Outcome.from_code(code) if code else None
    if code and outcome is None:
        problems.append(_("“%(reason)s” is not a reason a person can get: everyone is shown.") % {"reason": code})
    after = request.GET.get("after", "")
    if after and not after.isdigit():
        problems.append(_("That page could not be read: the first page is shown."))
    return outcome, int(after) if after.isdigit() else None, problems


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign")
def qualified_people(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The people and the counts. `?count=exact` starts counting by reason in
    the background (htmx asks for it as the page appears), `?counting=<id>`
    shows how far that count is, then the counts (htmx polls it);
    `?outcome=<code>` lists the people of one reason, `?after=<lead id>` the next page."""
    campaign = campaign_or_404(pk)
    require_permissions(request.user, VIEW_LEADS)
    if campaign.is_trigger_campaign:
        # A trigger campaign takes people one firing at a time: its people are its members.
        return redirect("marketing_activities:campaign_members", pk=campaign.pk)
    outcome, after, problems = _filters(request)
    label = _labeller(campaign)
    context = {
        **campaign_context(campaign, "schedule"),
        "problems": problems,
        "campaign_problems": campaign.problems(),
        "outcome": outcome,
        "qualified_url": reverse("marketing_activities:campaign_qualified_people", args=[campaign.pk]),
        "export_query": urlencode({"outcome": outcome.code} if outcome else {}),
    }
    # htmx: the counts card asks for itself alone, and reads nobody.
    counts_only = request.htmx and request.htmx.target == "qualified-counts"
    if not context["campaign_problems"]:
        context.update(_counts_context(request, campaign, label))
    if not context["campaign_problems"] and not counts_only:
        try:
            page = qualified_people_page(campaign=campaign, outcome=outcome, after=after)
        except PersonLimitRefused as error:
            context["refused"] = error.message
        else:
            context["people"] = [(person, label(person.outcome)) for person in page.people]
            context["next_query"] = urlencode(
                {**({"outcome": outcome.code} if outcome else {}), "after": page.after} if page.after else {}
            )
            context["after"] = after
    return render_screen(request, TEMPLATE, context, selected=campaign, default_partial="qualified-list")


def _counts_context(request, campaign: SmartCampaign, label) -> dict:
    """Run now's count of the first step by reason: started, polled, shown."""
    count = None
    counting = request.GET.get("counting", "")
    if counting:
        if not counting.isdigit():
            raise Http404
        count = get_object_or_404(AudienceCount, pk=counting, campaign=campaign)
    elif request.GET.get("count") == "exact":
        count = audience_count_start(campaign=campaign, language=translation.get_language() or "")
    if count is None or count.result is None:
        return {"audience_count": count}
    result = count.result
    steps = result.get("steps") or []
    counts = Outcome.counted(steps[0]["counts"]) if steps else []
    return {
        "audience_count": count,
        "counted": True,
        "audience": sum(n for _outcome, n in counts),
        "reasons": [(label(outcome), n, outcome.code) for outcome, n in counts],
        "count_problems": [*result.get("nobody_left", []), *result.get("refused", [])],
    }


@require_http_methods(["GET"])
@marketer_required("view_smartcampaign")
def qualified_people_export(request: HtmxHttpRequest, pk: int) -> StreamingHttpResponse:
    """Everyone of the list (or of one reason) as CSV, streamed a slice at a time."""
    campaign = campaign_or_404(pk)
    require_permissions(request.user, VIEW_LEADS)
    if campaign.is_trigger_campaign or campaign.problems():
        raise Http404
    outcome, _after, _problems = _filters(request)
    label = _labeller(campaign)
    header = [
        _("lead id"), _("first name"), _("last name"), _("email"), _("number"), _("outcome"),
        _("outcome label"), _("shares a number with (lead id)"), _("number blocked by (lead id)"),
    ]  # fmt: skip

    def lines():
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        after = None
        while True:
            page = qualified_people_page(
                campaign=campaign, outcome=outcome, after=after, page_size=EXPORT_CHUNK
            )
            for person in page.people:
                lead, other = person.lead, person.because_of
                duplicate_of = other.pk if other and person.outcome == Outcome.SKIPPED_DUPLICATE_PHONE else ""
                blocked_by = other.pk if other and person.outcome != Outcome.SKIPPED_DUPLICATE_PHONE else ""
                cells = (
                    lead.pk, lead.first_name, lead.last_name, lead.email, lead.mobile_phone,
                    person.outcome.code, label(person.outcome), duplicate_of, blocked_by,
                )  # fmt: skip
                yield writer.writerow([_cell(value) for value in cells])
            if page.after is None:
                return
            after = page.after

    filename = f"campaign-{campaign.pk}-qualified-people-{timezone.now():%Y%m%d-%H%M}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
