"""The SMS message editor: name and text, tokens, a live segment counter, a
preview for a chosen person, and a sample of it sent to a test number."""

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
from ..models import SampleSend, SmsMessage, TestNumber
from ..program_tokens import message_text_problems, program_token_values
from ..sample_sends import sms_message_send_sample
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


def live_text(
    text: str,
    lead: Lead | None,
    *,
    message: SmsMessage,
    earlier_reading: str = "",
    track_links: bool = True,
) -> dict:
    """Counter, problems and preview of `text`: one truth, computed here, shown as the marketer types.

    The counter counts the message as people get it: each lead token at its
    longest value among the people, each program token as its value, each
    system token at its longest value in the installation's language, each
    tracked web address as its short link, and for the chosen person their
    own message."""
    problems = message_text_problems(message=message, text=text)
    program_tokens = program_token_values(program_id=message.program_id)
    sent = sms_text.expand_for_counting(links.text_as_counted(text, track_links=track_links), program_tokens)
    values, reading = people_reading(sent, earlier_reading)
    received = sms_text.count_received(sent, values)
    # An unsaved Lead shows each token's default, as a person without that value would get it.
    preview = sms_text.render(
        links.text_as_counted(text, track_links=track_links), lead or Lead(), program_tokens=program_tokens
    )
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
        "system_tokens": [
            (name, sms_text.longest_system_value(name))
            for name in sms_text.SYSTEM_TOKENS
            if f"system.{name}" in text
        ],
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


def _send_sample(request: HtmxHttpRequest, message: SmsMessage, form: SmsMessageForm, lead: Lead | None):
    """Text the editor's text (saved or not), rendered for the preview's
    person, to the chosen test number; say what came of it."""
    test_number = TestNumber.objects.filter(pk=request.POST.get("test_number") or None).first()
    if test_number is None:
        messages.error(request, _("Choose a test number to send the sample to."))
        return
    try:
        sample = sms_message_send_sample(
            message=message, test_number=test_number, lead=lead, user=request.user, text=form.data.get("text")
        )
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, _("No sample sent: %(problem)s") % {"problem": problem})
        return
    if sample.status == SampleSend.Status.SENT:
        messages.success(request, _("Sample sent to %(number)s.") % {"number": test_number})
    else:
        messages.error(
            request,
            _("The sample to %(number)s was not sent (%(status)s): %(answer)s")
            % {"number": test_number, "status": sample.get_status_display(), "answer": sample.vibes_answer},
        )


@require_http_methods(["GET", "POST"])
@marketer_required("view_smsmessage", post=("change_smsmessage",))
def sms_message(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(SmsMessage.objects.select_related("program__folder"), pk=pk)
    form = SmsMessageForm(request.POST or None, initial=_initial(message))
    lead = _lead(request.GET.get("lead") or request.POST.get("lead"))
    if request.method == "POST" and "send_sample" in request.POST:
        # The sample leaves the message as it is: the text typed is sent, not saved.
        _send_sample(request, message, form, lead)
        if not request.htmx:
            return redirect(
                reverse("marketing_activities:sms_message", args=[message.pk])
                + (f"?lead={lead.pk}" if lead else "")
            )
    elif request.method == "POST" and form.is_valid():
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
    lead_query = request.GET.get("lead_q", "").strip()
    context = {
        "message": message,
        # In the context, not the template: each partial is also rendered alone.
        "message_url": reverse("marketing_activities:sms_message", args=[message.pk]),
        "breadcrumbs": crumbs([*message.program.folder.ancestors(), message.program.folder, message.program]),
        "form": form,
        "tokens": sms_text.token_placeholders(sorted(program_token_values(program_id=message.program_id))),
        "lead_query": lead_query,
        "lead_results": find_leads(lead_query) if lead_query else [],
        "token_examples": {
            "my": "{{my.name}}",
            "system": ", ".join(f"{{{{system.{name}}}}}" for name in sms_text.SYSTEM_TOKENS),
        },
        "test_numbers": TestNumber.objects.filter(verified_at__isnull=False),
        "sample_sends": message.sample_sends.select_related("sent_by")[:5],
        **live_text(
            text,
            lead,
            message=message,
            earlier_reading=request.GET.get("reading", ""),
            track_links=not dont_track_links,
        ),
    }
    return render_screen(request, TEMPLATE, context, selected=message)
