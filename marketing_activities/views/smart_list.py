"""The Smart List tab: triggers, rules, logic, and who qualifies.

Every change is saved at once, as on the Flow tab: a rule added or removed,
a field, operator or value chosen or typed, the logic. A smart list with
problems is kept as typed, each problem shown at its rule or at the logic,
and the campaign cannot run until they are fixed.
"""

from django.contrib import messages
from django.db import connection
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from smscampaigns.estimates import rows_estimate, significant
from smscampaigns.models import Lead
from smscampaigns.smartlists import MAX_RULES

from .. import services
from ..forms import SmartListEditor, TriggersEditor
from ..models import AudienceCount, SmartCampaign
from ..tasks import audience_count_start
from .campaign import campaign_context, campaign_or_404
from .common import HtmxHttpRequest, marketer_required, render_partial, render_screen

TEMPLATE = "marketing_activities/campaign_smart_list.html"
SAMPLE_SIZE = 10


# The live count stops counting here: every change of a rule counts again, and
# a million people take a whole scan of them. More than this many is said so,
# and the exact number follows in a request of its own.
COUNTED_UP_TO = 100_000

# Where "Count them exactly" counts past COUNTED_UP_TO in the background
# (tasks.audience_count_start), the card showing its progress: PostgreSQL, where
# the count took 2.9 s in the request at ten million people. SQLite counts at once.
COUNTED_IN_BACKGROUND_ON = ("postgresql",)

NO_AUDIENCE = {
    "audience_count": None,
    "audience_more": False,
    "audience_estimated": False,
    "audience_sample": [],
    "audience_counting": None,
}


def audience(editor: SmartListEditor, *, exact: bool = False, counting: AudienceCount | None = None) -> dict:
    """How many people the checked rules pick (up to COUNTED_UP_TO unless
    `exact`), and the first of them; nothing while they have problems.
    `counting`, the exact count in the background: its progress until it is
    done, then its number.

    Where the database estimates (PostgreSQL), more than COUNTED_UP_TO people
    by the query planner's estimate are shown as that estimate ("about
    9,200,000"), and counted only on request: at ten million people even the
    count that stops at COUNTED_UP_TO took most of a second, and the exact
    count that followed it seconds, at every keystroke. Fewer are counted
    exactly, as before."""
    # No count beside a smart list-wide problem either: it would count rules that cannot run.
    if editor.parsed is None or editor.errors:
        return NO_AUDIENCE
    if counting is not None and counting.result is None:
        return {**NO_AUDIENCE, "audience_counting": counting}
    leads = Lead.objects.filter(editor.parsed.to_q())
    sample = list(leads.order_by("pk")[:SAMPLE_SIZE])
    if counting is not None:
        return {**NO_AUDIENCE, "audience_count": counting.result["people"], "audience_sample": sample}
    estimate = None if exact else rows_estimate(leads)
    if estimate is not None and estimate > COUNTED_UP_TO:
        return {
            **NO_AUDIENCE,
            "audience_count": significant(estimate),
            "audience_estimated": True,
            "audience_sample": sample,
        }
    count = leads.count() if exact else leads.order_by()[: COUNTED_UP_TO + 1].count()
    return {
        **NO_AUDIENCE,
        "audience_count": min(count, COUNTED_UP_TO) if not exact else count,
        "audience_more": count > COUNTED_UP_TO and not exact,
        "audience_sample": sample,
    }


def _stored_triggers(campaign: SmartCampaign) -> TriggersEditor:
    triggers = TriggersEditor(campaign.smart_list.triggers)
    triggers.check()
    return triggers


def _counted_in_background(editor: SmartListEditor) -> bool:
    """Whether "Count them exactly" counts these rules in the background: past
    COUNTED_UP_TO people (by the estimate where there is one) on a database of
    COUNTED_IN_BACKGROUND_ON."""
    if connection.vendor not in COUNTED_IN_BACKGROUND_ON or editor.parsed is None or editor.errors:
        return False
    leads = Lead.objects.filter(editor.parsed.to_q())
    estimate = rows_estimate(leads)
    if estimate is None:
        estimate = leads.order_by()[: COUNTED_UP_TO + 1].count()
    return estimate > COUNTED_UP_TO


def _counting(request, campaign: SmartCampaign) -> AudienceCount | None:
    """The exact count `?counting=<id>` polls; None when the smart list changed
    since it was started (its number would be for rules no longer there)."""
    counting = request.GET.get("counting", "")
    if not counting:
        return None
    if not counting.isdigit():
        raise Http404
    count = get_object_or_404(AudienceCount, pk=counting, campaign=campaign, definition__isnull=False)
    return count if count.definition == campaign.smart_list.definition else None


def smart_list_context(
    request,
    campaign: SmartCampaign,
    editor: SmartListEditor,
    *,
    focus_rule=None,
    triggers=None,
    exact=False,
    counting=None,
) -> dict:
    return {
        **campaign_context(campaign, "smart-list"),
        "editor": editor,
        "triggers": triggers or _stored_triggers(campaign),
        # In the context, not the template: the partials that answer a change are rendered alone.
        "may_change": request.user.has_perm("marketing_activities.change_smartcampaign"),
        "form_url": reverse("marketing_activities:campaign_smart_list", args=[campaign.pk]),
        "max_rules": MAX_RULES,
        # htmx: the rule just added gets the focus.
        "focus_rule": focus_rule,
        **audience(editor, exact=exact, counting=counting),
    }


def _rule_index(action: str, prefix: str) -> int | None:
    rest = action.removeprefix(prefix)
    return int(rest) if rest != action and rest.isdigit() else None


def _stored(campaign: SmartCampaign) -> SmartListEditor:
    editor = SmartListEditor.from_definition(campaign.smart_list.definition)
    editor.check()
    return editor


@require_http_methods(["GET", "POST"])
@marketer_required("view_smartcampaign", post=("change_smartcampaign",))
def smart_list(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET shows the stored rules with their problems. A POST carries the whole
    form as it now stands, and it is stored at once; `action` says what else
    the marketer did: "add" a rule, "remove-N", or "field-N" (rule N's field
    was chosen: its operator follows when the old one does not apply)."""
    campaign = campaign_or_404(pk)
    if request.method == "GET":
        # ?count=exact: every person counted, however many (the live count stops at
        # COUNTED_UP_TO); in the background where it takes seconds, the card then
        # polling ?counting=<id> for its progress, then its number.
        editor = _stored(campaign)
        asked = request.GET.get("count") == "exact"
        counting = _counting(request, campaign)
        exact = asked and not _counted_in_background(editor)
        if asked and not exact:
            language = translation.get_language() or ""
            counting = audience_count_start(campaign=campaign, language=language, smart_list_only=True)
        context = smart_list_context(request, campaign, editor, exact=exact, counting=counting)
        if (asked or "counting" in request.GET) and request.htmx:
            # htmx: the audience card asked for its exact count, or how far it is.
            return render_partial(request, f"{TEMPLATE}#audience", context)
        return render_screen(request, TEMPLATE, context, selected=campaign)
    action = request.POST.get("action", "")
    if "trigger_count" in request.POST:
        return _triggers_post(request, campaign, action)
    editor = SmartListEditor.from_post(request.POST, field_changed=_rule_index(action, "field-"))
    focus_rule = None
    if editor.refusal:
        if not request.htmx:
            messages.error(request, editor.refusal)
        refusal, editor = editor.refusal, _stored(campaign)
        editor.errors.insert(0, refusal)
    else:
        if action == "add" and editor.add_rule():
            focus_rule = len(editor.rows) - 1
        elif (index := _rule_index(action, "remove-")) is not None:
            editor.remove_rule(index)
        editor.check()
        if editor.over_limit:
            # Stored, rules beyond the limit could not be shown again (the tab offers
            # the first ones): they stay on the page, for the marketer to remove some.
            editor.errors.append(_("Nothing is saved while the smart list is beyond the limit."))
        else:
            services.smart_list_edit(smart_list=campaign.smart_list, definition=editor.definition())
    if not request.htmx:
        return redirect("marketing_activities:campaign_smart_list", pk=campaign.pk)
    # htmx: a change of the rules (add, remove, a field or operator chosen) gets
    # the rules again; typing gets only what follows from it (the problems, the
    # count, the saved state), so that nothing being typed is replaced.
    context = smart_list_context(request, campaign, editor, focus_rule=focus_rule)
    partial = "rules-saved" if request.htmx.target == "smart-list-rules" else "typing-saved"
    return render_partial(request, f"{TEMPLATE}#{partial}", context)


def _triggers_post(request: HtmxHttpRequest, campaign: SmartCampaign, action: str) -> HttpResponse:
    """The Triggers section's form: stored at once, as the rules are; "add-trigger"
    adds the trigger chosen in `new_trigger`, "remove-trigger-N" removes one."""
    triggers = TriggersEditor.from_post(request.POST)
    if action == "add-trigger":
        triggers.add(request.POST.get("new_trigger", ""))
    elif (index := _rule_index(action, "remove-trigger-")) is not None:
        triggers.remove(index)
    services.smart_list_triggers_edit(smart_list=campaign.smart_list, triggers=triggers.triggers)
    triggers.check()
    if not request.htmx:
        for error in triggers.errors:
            messages.error(request, error)
        return redirect("marketing_activities:campaign_smart_list", pk=campaign.pk)
    context = smart_list_context(request, campaign, _stored(campaign), triggers=triggers)
    return render_partial(request, f"{TEMPLATE}#smart-list-triggers", context)
