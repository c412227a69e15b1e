"""The Smart List tab: rules, logic, and who qualifies."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from smscampaigns.models import Lead
from smscampaigns.smartlists import parse_definition

from .. import services
from ..forms import SmartListEditor
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_screen

TEMPLATE = "marketing_activities/campaign_smart_list.html"
SAMPLE_SIZE = 10


NO_AUDIENCE = {"audience_count": None, "audience_sample": []}


def audience(definition: dict) -> dict:
    """How many people `definition` picks and the first of them; nothing while it is invalid."""
    try:
        leads = Lead.objects.filter(parse_definition(definition).to_q())
    except ValidationError:
        return NO_AUDIENCE
    return {"audience_count": leads.count(), "audience_sample": list(leads.order_by("pk")[:SAMPLE_SIZE])}


def _screen(request, campaign, editor, *, dirty=False):
    context = {
        **campaign_context(campaign, "smart-list"),
        "editor": editor,
        "dirty": dirty,
        # No count beside a smart list-wide problem: it would count rules that cannot run.
        **(NO_AUDIENCE if editor.errors else audience(editor.definition())),
    }
    return render_screen(request, TEMPLATE, context, selected=campaign)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request", "HX-Target")
@marketer_required("view_smartcampaign", post=("change_smartcampaign",))
def smart_list(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET shows the stored rules. POST carries the whole form and an action:
    "add", "remove-N" or "refresh" (a rule's field changed) re-render what was
    typed without saving; "preview" recounts the audience; "save" validates and stores."""
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        editor = SmartListEditor.from_definition(campaign.smart_list.definition)
        # A smart list stored before today's rules (say, beyond a limit) shows what to fix.
        editor.is_valid()
        return _screen(request, campaign, editor)
    editor = SmartListEditor.from_post(request.POST)
    action = request.POST.get("action", "save")
    if action == "add":
        editor.add_rule()
    elif action.startswith("remove-") and action[7:].isdigit():
        editor.remove_rule(int(action[7:]))
    if action != "save":
        return _screen(request, campaign, editor, dirty=True)
    if not editor.is_valid():
        return _screen(request, campaign, editor, dirty=True)
    try:
        services.smart_list_update(smart_list=campaign.smart_list, definition=editor.definition())
    except ValidationError as error:  # a Vibes list deleted meanwhile, say
        editor.errors = error.messages
        return _screen(request, campaign, editor, dirty=True)
    messages.success(request, _("Smart list saved."))
    if not request.htmx:
        return redirect("marketing_activities:campaign_smart_list", pk=campaign.pk)
    return _screen(request, campaign, editor)
