"""The SMS message editor: name and text, tokens, a live segment counter and a preview for a chosen person."""

from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from smscampaigns.models import Lead

from .. import links, services, sms_text
from ..forms import SmsMessageForm, add_service_errors
from ..models import SmsMessage
from .common import HtmxHttpRequest, marketer_required, render_screen
from .tree_nodes import crumbs

TEMPLATE = "marketing_activities/sms_message.html"
LEAD_RESULTS = 8


# While the marketer types, the people are read once: the counter's reading
# travels with the page, signed, and is used again for this long (and as
# long as the text uses no other token). Nothing is kept on the server.
READING_MAX_AGE = 60  # seconds
_READING_SALT = "marketing_activities.sms_message.reading"


def people_reading(text: str, earlier: str) -> tuple[sms_text.PeopleValues, str]:
    """The longest values of the text's tokens among the people: the signed
    `earlier` reading when it is recent and covers them, else read now (one
    query). Returns them and their signed form, for the next request."""
    fields = sms_text.token_fields(text)
    try:
        reading = signing.loads(earlier, salt=_READING_SALT, max_age=READING_MAX_AGE)
    except signing.BadSignature:  # none, tampered with or too old
        reading = None
    if reading and set(fields) <= set(reading["fields"]):
        return sms_text.PeopleValues.from_dict(reading), earlier
    values = sms_text.people_values(fields)
    return values, signing.dumps(values.to_dict(), salt=_READING_SALT) if fields else ""


def live_text(text: str, lead: Lead | None, *, earlier_reading: str = "", track_links: bool = True) -> dict:
    """Counter, problems and preview of `text`: one truth, computed here, shown as the marketer types.

    The counter counts the message as people get it: each token at its
    longest value among the people, each tracked web address as its short
    link, and for the chosen person their own message."""
    try:
        sms_text.validate_text(text)
        problems = []
    except ValidationError as error:
        problems = error.messages
    sent = links.text_as_counted(text, track_links=track_links)
    values, reading = people_reading(sent, earlier_reading)
    received = sms_text.count_received(sent, values)
    # An unsaved Lead shows each token's default, as a person without that value would get it.
    preview = sms_text.render(sent, lead or Lead())
    return {
        "count": received.longest,
        "received": received,
        "reading": reading,
        "token_lengths": [(_field_label(name), length) for name, length in received.tokens],
        "outside_fields": [(_field_label(name), people) for name, people in received.outside],
        "max_length": sms_text.MAX_LENGTH,
        "too_long": received.longest.characters > sms_text.MAX_LENGTH,
        # The text itself over the limit is one of the problems already.
        "received_too_long": len(text) <= sms_text.MAX_LENGTH < received.longest.characters,
        "problems": problems,
        "preview": preview,
        "lead": lead,
        "lead_count": sms_text.count_segments(preview) if lead else None,
        "tracked_links": len(sms_text.link_spans(text)) if track_links else 0,
        "short_link_example": links.short_url(links.SAMPLE_CODE),
    }


def _field_label(name: str) -> str:
    return Lead._meta.get_field(name).verbose_name


def find_leads(query: str):
    match = Q()
    for term in query.split():
        match &= Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(email__icontains=term)
    return Lead.objects.filter(match).order_by("last_name", "first_name", "pk")[:LEAD_RESULTS]


def _initial(message: SmsMessage) -> dict:
    return {"name": message.name, "text": message.text, "dont_track_links": message.dont_track_links}


def _lead(value) -> Lead | None:
    return Lead.objects.filter(pk=value).first() if str(value or "").isdigit() else None


@require_http_methods(["GET", "POST"])
@marketer_required("view_smsmessage", post=("change_smsmessage",))
def sms_message(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(SmsMessage.objects.select_related("program__folder"), pk=pk)
    form = SmsMessageForm(request.POST or None, initial=_initial(message))
    if request.method == "POST" and form.is_valid():
        try:
            services.sms_message_update(message=message, **form.cleaned_data)
        except ValidationError as error:
            message.refresh_from_db()
            add_service_errors(form, error, default_field="name")
        else:
            messages.success(request, _("SMS message saved."))
            if not request.htmx:
                return redirect("marketing_activities:sms_message", pk=message.pk)
            form = SmsMessageForm(initial=_initial(message))
    # htmx: while typing, the textarea sends its text (GET) for the counter and preview.
    text = request.GET.get("text", form["text"].value() or "")
    if "text" in request.GET:  # htmx: the live counter sends the checkbox along with the text
        dont_track_links = bool(request.GET.get("dont_track_links"))
    else:
        dont_track_links = bool(form["dont_track_links"].value())
    lead = _lead(request.GET.get("lead") or request.POST.get("lead"))
    lead_query = request.GET.get("lead_q", "").strip()
    context = {
        "message": message,
        # In the context, not the template: each partial is also rendered alone.
        "message_url": reverse("marketing_activities:sms_message", args=[message.pk]),
        "breadcrumbs": crumbs([*message.program.folder.ancestors(), message.program.folder, message.program]),
        "form": form,
        "tokens": sms_text.token_placeholders(),
        "lead_query": lead_query,
        "lead_results": find_leads(lead_query) if lead_query else [],
        **live_text(
            text, lead, earlier_reading=request.GET.get("reading", ""), track_links=not dont_track_links
        ),
    }
    return render_screen(request, TEMPLATE, context, selected=message)
