"""My Tokens on a program: added, changed and deleted in the program's page
and the admin; a token a message uses is never deleted or renamed away."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from marketing_activities.models import ProgramToken
from marketing_activities.program_tokens import program_token_delete, program_token_save
from tests.marketing_activities.factories import ProgramFactory, ProgramTokenFactory, SmsMessageFactory
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["", "2nd", "my offer", "offer!", "ö", "x" * 51])
def test_a_token_name_must_fit_between_the_braces(name):
    with pytest.raises(ValidationError) as error:
        program_token_save(program=ProgramFactory(), name=name, value="x")
    assert "name" in error.value.message_dict
    assert not ProgramToken.objects.exists()


def test_a_program_holds_a_token_name_once():
    program = ProgramFactory()
    program_token_save(program=program, name="offer", value="a")
    with pytest.raises(ValidationError) as error:
        program_token_save(program=program, name="offer", value="b")
    assert "This program already has a token of that name." in error.value.messages


def test_deleting_a_token_a_message_uses_is_refused_naming_the_messages():
    token = ProgramTokenFactory(name="offer")
    SmsMessageFactory(program=token.program, name="Teaser", text="Now: {{ my.offer }}")
    SmsMessageFactory(program=token.program, name="Reminder", text='{{my.offer|default:"sale"}}')
    SmsMessageFactory(program=token.program, name="Other", text="Only {{my.offers_end}} here")
    with pytest.raises(ValidationError) as error:
        program_token_delete(token=token)
    assert error.value.messages == [
        "The token “{{my.offer}}” is used by the SMS messages “Reminder”, “Teaser”; remove it there first."
    ]
    assert ProgramToken.objects.filter(pk=token.pk).exists()


def test_renaming_a_used_token_is_refused_and_an_unused_one_may_go():
    token = ProgramTokenFactory(name="offer")
    SmsMessageFactory(program=token.program, name="Teaser", text="{{my.offer}}")
    with pytest.raises(ValidationError):
        program_token_save(program=token.program, name="deal", value="x", token=token)
    token.refresh_from_db()
    assert token.name == "offer"
    program_token_save(program=token.program, name="offer", value="new value", token=token)
    spare = ProgramTokenFactory(program=token.program, name="spare")
    program_token_delete(token=spare)
    assert list(ProgramToken.objects.values_list("name", "value")) == [("offer", "new value")]


# --- The program's page ------------------------------------------------------------------------


def test_the_programs_page_adds_a_token_and_answers_htmx_with_the_card_alone(staff_client):
    program = ProgramFactory()
    response = staff_client.post(
        url("program", program.pk),
        {"name": "offer", "value": "20% off", "add_token": ""},
        headers={**HTMX, "HX-Target": "my-tokens"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="my-tokens">') and "<html" not in html
    assert 'value="20% off"' in html
    assert list(program.tokens.values_list("name", "value")) == [("offer", "20% off")]


def test_a_refused_token_keeps_what_was_typed_and_says_why(staff_client):
    program = ProgramFactory()
    response = staff_client.post(
        url("program", program.pk), {"name": "my offer", "value": "Kept", "add_token": ""}
    )
    html = response.content.decode()
    assert "“my offer” cannot be a token name" in html
    assert 'value="Kept"' in html
    assert not program.tokens.exists()


def test_the_programs_page_refuses_to_delete_a_used_token(staff_client):
    token = ProgramTokenFactory(name="offer")
    SmsMessageFactory(program=token.program, name="Teaser", text="{{my.offer}}")
    response = staff_client.post(url("program", token.program.pk), {"token": token.pk, "delete_token": ""})
    assert "is used by the SMS messages “Teaser”" in response.content.decode()
    assert ProgramToken.objects.filter(pk=token.pk).exists()


def test_a_program_page_never_changes_another_programs_token(staff_client):
    token = ProgramTokenFactory()
    response = staff_client.post(url("program", ProgramFactory().pk), {"token": token.pk, "delete_token": ""})
    assert response.status_code == 404
    assert ProgramToken.objects.filter(pk=token.pk).exists()


# --- The admin ---------------------------------------------------------------------------------


def _inline_data(program, token, **changes):
    data = {
        "name": program.name,
        "folder": program.folder.pk,
        "description": "",
        "tokens-TOTAL_FORMS": "1",
        "tokens-INITIAL_FORMS": "1",
        "tokens-MIN_NUM_FORMS": "0",
        "tokens-MAX_NUM_FORMS": "1000",
        "tokens-0-id": token.pk,
        "tokens-0-program": program.pk,
        "tokens-0-name": token.name,
        "tokens-0-value": token.value,
    }
    data.update({f"tokens-0-{key}": value for key, value in changes.items()})
    return data


def test_the_admin_refuses_to_delete_a_used_token(admin_client):
    token = ProgramTokenFactory(name="offer")
    SmsMessageFactory(program=token.program, name="Teaser", text="{{my.offer}}")
    path = reverse("admin:marketing_activities_program_change", args=[token.program.pk])
    response = admin_client.post(path, _inline_data(token.program, token, DELETE="on"))
    assert response.status_code == 200
    assert "is used by the SMS messages “Teaser”" in response.content.decode()
    assert ProgramToken.objects.filter(pk=token.pk).exists()


def test_the_admin_changes_a_tokens_value(admin_client):
    token = ProgramTokenFactory(name="offer")
    SmsMessageFactory(program=token.program, text="{{my.offer}}")
    path = reverse("admin:marketing_activities_program_change", args=[token.program.pk])
    response = admin_client.post(path, _inline_data(token.program, token, value="30% off"))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.value == "30% off"
