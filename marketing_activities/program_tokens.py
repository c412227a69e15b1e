"""Program tokens ("My Tokens"): writes, and the values a message's sends use."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from . import sms_text
from .models import Program, ProgramToken, SmsMessage


def program_token_values(*, program_id: int | None) -> dict[str, str]:
    """{name: value} of a program's tokens: what `{{my.name}}` becomes in its messages."""
    if program_id is None:
        return {}
    return dict(ProgramToken.objects.filter(program_id=program_id).values_list("name", "value"))


def messages_using_token(*, program: Program, name: str) -> list[str]:
    """The names of the program's SMS messages whose text uses `{{my.<name>}}`."""
    return [
        message.name
        for message in program.sms_messages.filter(text__contains=name).order_by("name")
        if name in sms_text.program_tokens_used(message.text)
    ]


def token_in_use_problem(*, program: Program, name: str) -> str:
    """Why the token `name` cannot go (deleted or renamed); "" when nothing uses it.

    A message that uses a token its program no longer has could not be saved
    again, and would go out with the default or nothing: refuse instead,
    naming the messages, as deleting an SMS message a flow uses is refused."""
    used_by = messages_using_token(program=program, name=name)
    if not used_by:
        return ""
    return _("The token “%(token)s” is used by the SMS messages %(messages)s; remove it there first.") % {
        "token": f"{{{{my.{name}}}}}",
        "messages": ", ".join(f"“{message}”" for message in used_by),
    }


@transaction.atomic
def program_token_save(
    *, program: Program, name: str, value: str, token: ProgramToken | None = None
) -> ProgramToken:
    """Add a token to the program, or change `token` (its name and value)."""
    token = token or ProgramToken(program=program)
    old_name = token.name if token.pk else ""
    token.name, token.value = name.strip(), value
    if old_name and old_name != token.name:
        problem = token_in_use_problem(program=program, name=old_name)
        if problem:
            raise ValidationError({"name": problem})
    token.full_clean()
    token.save()
    return token


@transaction.atomic
def program_token_delete(*, token: ProgramToken) -> None:
    problem = token_in_use_problem(program=token.program, name=token.name)
    if problem:
        raise ValidationError(problem)
    token.delete()


def message_text_problems(*, message: SmsMessage, text: str) -> list[str]:
    """Every problem of `text` as the text of `message`, its program's tokens included."""
    tokens = program_token_values(program_id=message.program_id)
    try:
        sms_text.validate_text(text, program_tokens=set(tokens), program_name=message.program.name)
    except ValidationError as error:
        return error.messages
    return []
