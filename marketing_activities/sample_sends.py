"""Sample sends: an SMS message, rendered for a chosen person, texted to a
verified test number, and recorded apart from runs (SampleSend), so that no
Result, report or activity filter ever counts it."""

from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from smscampaigns.models import Lead
from vibes import exceptions as vibes_errors
from vibes.conf import get_client

from . import sms_text
from .models import SampleSend, SmsMessage, TestNumber
from .program_tokens import message_text_problems, program_token_values
from .quiet_hours import quiet_hours_closed


def number_block(number: str) -> Lead | None:
    """The person whose block or suspension keeps `number` from being texted (R4: a
    number, not a record), or None."""
    return (
        Lead.objects.filter(Q(blocklisted=True) | Q(marketing_suspended=True), mobile_phone=number)
        .order_by("pk")
        .first()
    )


def sample_text(*, message: SmsMessage, text: str, lead: Lead | None, at=None) -> str:
    """The text as `lead` would get it now. Web addresses go as typed (with
    their tokens filled in): a tracked link belongs to a run's row, and a
    tester's click must not count as a person's."""
    tokens = {"program_tokens": program_token_values(program_id=message.program_id), "at": at}
    encoded = sms_text.replace_links(
        text,
        lambda position, address: sms_text.render(address, lead or Lead(), encode=_percent_encode, **tokens),
    )
    return sms_text.render(encoded, lead or Lead(), **tokens)


def _percent_encode(value: str) -> str:
    return quote(value, safe="")


def sms_message_send_sample(
    *,
    message: SmsMessage,
    test_number: TestNumber,
    lead: Lead | None,
    user,
    text: str | None = None,
    client=None,
    at=None,
) -> SampleSend:
    """Text `message` (or `text`, the editor's unsaved text), rendered for
    `lead`, to a verified test number, and record it.

    Refused (ValidationError, nothing sent) when the text has problems, the
    number is not verified, or the number is blocked."""
    at = at or timezone.now()
    text = message.text if text is None else text
    problems = message_text_problems(message=message, text=text)
    if problems:
        raise ValidationError(problems)
    if not test_number.is_verified:
        raise ValidationError(
            _("The test number %(number)s is not verified: an administrator verifies it under Test numbers.")
            % {"number": test_number.number}
        )
    blocker = number_block(test_number.number)
    if blocker is not None:
        raise ValidationError(
            _("The test number %(number)s is blocked: %(person)s, who has this number, is %(reason)s.")
            % {
                "number": test_number.number,
                "person": blocker,
                "reason": _("blocklisted") if blocker.blocklisted else _("marketing suspended"),
            }
        )
    # The test number's own window, not the person's: it is the tester's phone that rings.
    opens = quiet_hours_closed(lead=None, number=test_number.number, at=at)
    if opens is not None:
        raise ValidationError(
            _(
                "Quiet hours: it is outside the sending window at the test number %(number)s; "
                "try again from %(opens)s."
            )
            % {
                "number": test_number.number,
                "opens": date_format(timezone.localtime(opens), "DATETIME_FORMAT"),
            }
        )
    rendered = sample_text(message=message, text=text, lead=lead, at=at)
    if len(rendered) > sms_text.MAX_LENGTH:
        raise ValidationError(
            _("The message is %(length)s characters long; the most an SMS can carry is %(max)s.")
            % {"length": len(rendered), "max": sms_text.MAX_LENGTH}
        )
    # Recorded before the call, as a run's row is: a crash leaves a clear record.
    sample = SampleSend.objects.create(
        sms_message=message, lead=lead, number=test_number.number, text=rendered, sent_by=user, sent_at=at
    )
    client = client or get_client()
    try:
        sent = client.send_sms(to=test_number.number, text=rendered)
    except vibes_errors.VibesUncertain as error:
        sample.status, sample.vibes_answer = SampleSend.Status.UNCERTAIN, _vibes_words(error)
    except vibes_errors.VibesError as error:
        sample.status, sample.vibes_answer = SampleSend.Status.FAILED, _vibes_words(error)
    else:
        sample.status, sample.message_id = SampleSend.Status.SENT, sent.message_id
        sample.vibes_answer = sent.status
    sample.save(update_fields=["status", "message_id", "vibes_answer"])
    return sample


def _vibes_words(error) -> str:
    return str(getattr(error, "message", "") or error)[:300]
