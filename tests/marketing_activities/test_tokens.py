"""Tokens of every kind: a lead's fields, a program's My Tokens, the system's
date, time and weekday; rendered as people get them, refused when unknown."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import trans_real

from marketing_activities.links import sms_texts_for_calls
from marketing_activities.models import CampaignRun, FlowStep, SentSms, TrackedLink
from marketing_activities.program_tokens import program_token_values
from marketing_activities.runner.planner import BATCH_SPAN
from marketing_activities.sms_text import (
    TOKEN_FIELDS,
    count_received,
    expand_for_counting,
    longest_system_value,
    render,
    validate_text,
)
from smscampaigns.models import Lead
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.factories import (
    FolderFactory,
    ProgramFactory,
    ProgramTokenFactory,
    RunResultFactory,
    RunStepFactory,
    SmsMessageFactory,
)
from tests.marketing_activities.test_views_languages import in_language
from tests.marketing_activities.ui_helpers import url

pytestmark = pytest.mark.django_db

# 23:30 in UTC on 5 March is already 6 March in Berlin.
LATE_EVENING = datetime.datetime(2026, 3, 5, 23, 30, tzinfo=datetime.UTC)


# --- Lead tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", TOKEN_FIELDS)
def test_every_lead_field_a_marketer_uses_is_a_token_with_a_default(field):
    text = f'Yours: {{{{lead.{field}|default:"none"}}}}'
    validate_text(text)
    assert render(text, Lead(**{field: "" if field != "lead_score" else 42})) == (
        "Yours: 42" if field == "lead_score" else "Yours: none"
    )


def test_a_lead_token_takes_the_persons_value():
    lead = Lead(city="Malmö", lead_score=87, state="")
    text = '{{lead.city}} {{lead.lead_score}} {{lead.state|default:"your state"}}'
    assert render(text, lead) == "Malmö 87 your state"


@pytest.mark.parametrize("field", ["blocklisted", "marketing_suspended", "id", "updated_at"])
def test_internal_lead_fields_are_no_tokens(field):
    with pytest.raises(ValidationError) as error:
        validate_text(f"{{{{lead.{field}}}}}")
    assert f"unknown field “{field}”" in error.value.messages[0]


# --- Program tokens ----------------------------------------------------------------------------


def nested_program():
    """A program two folders deep, with two My Tokens."""
    inner = FolderFactory(name="Spring", parent=FolderFactory(name="Campaigns 2026"))
    program = ProgramFactory(folder=inner, name="Spring sale")
    ProgramTokenFactory(program=program, name="offer", value="20% off shoes")
    ProgramTokenFactory(program=program, name="code", value="SPRING 26")
    return program


def test_a_program_token_is_sent_in_the_programs_messages_wherever_the_program_lies(news, vibes_simulator):
    program = nested_program()
    subscribed(news, first_name="Anna", mobile_phone="+15551250001")
    campaign = make_campaign(("send", news))
    message = campaign.flow_steps.get().sms_message
    message.program = program
    message.text = 'Hi {{lead.first_name}}: {{my.offer}} {{my.missing|default:"today"}}.'
    message.save()
    run = execute(campaign, vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    assert [m["text"] for m in vibes_simulator.messages()] == ["Hi Anna: 20% off shoes today."]


def test_tokens_inside_a_tracked_web_address_are_percent_encoded_and_the_link_leads_there(
    news, vibes_simulator, settings
):
    settings.SHORT_LINK_BASE_URL = "https://go.example.com"
    program = nested_program()
    anna = subscribed(news, first_name="Anna Lu", mobile_phone="+15551250002")
    campaign = make_campaign(("send", news))
    message = campaign.flow_steps.get().sms_message
    message.program = program
    message.text = "Go https://shop.example/?c={{my.code}}&n={{lead.first_name}}&d={{system.date}} now"
    message.save()
    execute(campaign, vibes_simulator)
    link = TrackedLink.objects.get(lead=anna)
    assert link.url.startswith("https://shop.example/?c=SPRING%2026&n=Anna%20Lu&d=")
    sent = vibes_simulator.messages()[0]["text"]
    assert sent == f"Go https://go.example.com/l/{link.code} now"
    assert SentSms.objects.get().text == sent


def test_a_message_may_use_only_its_programs_tokens():
    program = nested_program()
    message = SmsMessageFactory(program=program, text="{{my.offer}}")
    message.full_clean()
    message.text = "{{my.offr}}"
    with pytest.raises(ValidationError) as error:
        message.full_clean()
    assert error.value.message_dict["text"] == [
        "“{{my.offr}}”: the program “Spring sale” has no token “offr”. Its tokens: code, offer."
    ]


def test_every_problem_of_a_text_is_reported_once():
    message = SmsMessageFactory(program=nested_program(), text="Hi")
    message.text = "{{lead.shoe_size}} {{my.offr}} {{my.offr}} {{my.offer}}"
    with pytest.raises(ValidationError) as error:
        message.full_clean()
    problems = error.value.message_dict["text"]
    assert len(problems) == 2
    assert "unknown field “shoe_size”" in problems[0] and "has no token “offr”" in problems[1]


def test_a_program_without_tokens_says_so():
    message = SmsMessageFactory(program=ProgramFactory(name="Plain"), text="Hi")
    message.text = "Hi {{my.offer}}"
    with pytest.raises(ValidationError) as error:
        message.full_clean()
    assert "the program “Plain” has no My Tokens; add “offer” there first" in error.value.messages[0]


def test_another_programs_tokens_are_not_this_ones():
    nested_program()
    message = SmsMessageFactory(text="Hi")
    message.text = "{{my.offer}}"
    with pytest.raises(ValidationError):
        message.full_clean()


# --- System tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "date", "weekday"),
    [("en", "March 6, 2026", "Friday"), ("de", "6. März 2026", "Freitag")],
)
def test_the_system_date_is_the_send_date_in_the_installations_time_zone_and_language(
    settings, language, date, weekday
):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.LANGUAGE_CODE = language
    text = "{{system.date}} ({{system.weekday}}, {{system.time}})"
    # The request's language (the marketer's) is not the SMS's.
    with translation.override("fr"):
        rendered = render(text, Lead(), at=LATE_EVENING)
    assert rendered == f"{date} ({weekday}, {'00:30' if language == 'de' else '12:30 a.m.'})"


def test_an_unknown_system_token_is_refused_naming_the_known_ones():
    with pytest.raises(ValidationError) as error:
        validate_text("Today: {{system.today}}")
    assert error.value.messages == [
        "“{{system.today}}”: unknown system token “today”. Known system tokens: date, time, weekday."
    ]


def test_an_unknown_kind_of_token_is_refused():
    with pytest.raises(ValidationError) as error:
        validate_text("{{person.first_name}}")
    assert "“person.” is unknown; tokens begin with lead., my. or system." in error.value.messages[0]


# --- The counter -------------------------------------------------------------------------------


def test_the_counter_counts_a_program_token_as_its_value_and_the_date_at_its_longest(settings):
    settings.LANGUAGE_CODE = "en"
    program = nested_program()
    longest = longest_system_value("date")
    # English dates say "Sept." but spell March, April, June and July out: March is the longest.
    assert longest == "March 10, 2026"
    text = "{{my.offer}} until {{system.date}}"
    counted = count_received(expand_for_counting(text, program_token_values(program_id=program.pk)))
    assert counted.longest.characters == len(f"20% off shoes until {longest}")


def test_the_longest_date_follows_the_installations_language(settings):
    settings.LANGUAGE_CODE = "de"
    assert len(longest_system_value("date")) == len("30. September 2026")
    assert "September" in longest_system_value("date")
    settings.LANGUAGE_CODE = "fr"
    assert len(longest_system_value("date")) == len("30 septembre 2026")


# --- Refused at save, in the marketer's language ---------------------------------------------


def test_saving_an_unknown_lead_field_is_refused_in_german(staff_client):
    message = SmsMessageFactory(text="Hallo")
    response = in_language(staff_client, "de").post(
        url("sms_message", message.pk), {"name": message.name, "text": "Hallo {{lead.schuhgroesse}}"}
    )
    assert response.status_code == 200
    assert "unbekanntes Feld „schuhgroesse“" in response.content.decode()
    message.refresh_from_db()
    assert message.text == "Hallo"


def test_saving_an_unknown_program_token_is_refused_in_german(staff_client, monkeypatch):
    """The message goes through gettext: with its German in the catalogue (the
    translators add it after merging), the editor says it in German."""
    message = SmsMessageFactory(program=nested_program(), text="Hallo")
    msgid = "“%(token)s”: the program “%(program)s” has no token “%(name)s”. Its tokens: %(known)s."
    with translation.override("de"):
        # The German catalogue's own entries (a dict), where the .po's translations are read into.
        catalog = trans_real.translation("de")._catalog._catalogs[0]
    monkeypatch.setitem(
        catalog,
        msgid,
        "„%(token)s“: Das Programm „%(program)s“ hat kein Token „%(name)s“. Seine Tokens: %(known)s.",
    )
    response = in_language(staff_client, "de").post(
        url("sms_message", message.pk), {"name": message.name, "text": "Hallo {{my.rabatt}}"}
    )
    assert (
        "„{{my.rabatt}}“: Das Programm „Spring sale“ hat kein Token „rabatt“. Seine Tokens: code, offer."
        in (response.content.decode())
    )
    message.refresh_from_db()
    assert message.text == "Hallo"


def test_the_editor_previews_every_kind_of_token_for_the_chosen_person(staff_client):
    program = nested_program()
    message = SmsMessageFactory(program=program, text="Hi")
    lead = Lead.objects.create(first_name="Anna", city="Oslo", mobile_phone="+15551250003")
    html = staff_client.get(
        url("sms_message", message.pk),
        {"text": "{{lead.first_name}} in {{lead.city}}: {{my.offer}} ({{system.weekday}})", "lead": lead.pk},
        headers={"HX-Request": "true", "HX-Target": "sms-live"},
    ).content.decode()
    assert "Anna in Oslo: 20% off shoes (" in html
    assert "system.weekday counted at its longest, “Wednesday” (9 characters)" in html


# --- What rendering costs ----------------------------------------------------------------------


@pytest.mark.parametrize("people", [5, BATCH_SPAN])
def test_a_batchs_program_tokens_take_one_query_whatever_its_size(people, django_assert_num_queries):
    program = nested_program()
    message = SmsMessageFactory(program=program, text="x")
    step = RunStepFactory(
        action=FlowStep.Action.SEND_SMS,
        sms_message=message,
        message_text="{{my.offer}} for {{lead.first_name}} on {{system.date}}: https://s.example/?c={{my.code}}",
        track_links=True,
    )
    rows = [(row.pk, row.lead_id, row.phone) for row in RunResultFactory.create_batch(people, run_step=step)]
    # As without tokens (the people, the links' INSERT and SELECT, the texts, the
    # savepoint's two), and the program's tokens.
    with django_assert_num_queries(7):
        texts = sms_texts_for_calls(step=step, rows=rows)
    assert all(text.startswith("20% off shoes for ") for text in texts.values())
