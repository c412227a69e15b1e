"""The SMS message editor: tokens, live counter, validation, preview for a chosen person."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import SmsMessage
from tests.marketing_activities.factories import SmsMessageFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db


def live(client, message, **params):
    return client.get(
        url("sms_message", message.pk), params, headers={**HTMX, "HX-Target": "sms-live"}
    ).content.decode()


def test_the_editor_renders_the_full_page_with_token_buttons(staff_client):
    message = SmsMessageFactory()
    html = staff_client.get(url("sms_message", message.pk)).content.decode()
    assert "<html" in html
    assert 'data-insert-token="{{lead.first_name}}"' in html
    assert 'data-insert-token="{{lead.lead_score}}"' in html
    assert 'hx-trigger="input changed delay:300ms"' in html


def test_the_editor_answers_htmx_with_the_detail_partial(staff_client):
    response = staff_client.get(
        url("sms_message", SmsMessageFactory().pk), headers={**HTMX, "HX-Target": "detail"}
    )
    assert b"<html" not in response.content
    assert b'id="sms-editor"' in response.content


def test_unknown_messages_answer_404(staff_client):
    assert staff_client.get(url("sms_message", 999999)).status_code == 404


def test_the_counter_follows_the_typed_text_gsm7(staff_client):
    html = live(staff_client, SmsMessageFactory(), text="x" * 161)
    assert html.lstrip().startswith('<section id="sms-live"')
    assert "GSM-7" in html
    assert "<dd data-segments>2</dd>" in html
    assert ">161</span>" in html


def test_one_character_outside_gsm7_switches_to_ucs2(staff_client):
    html = live(staff_client, SmsMessageFactory(), text="Hej 😀 " + "x" * 60)
    assert "UCS-2" in html
    assert "<dd data-segments>1</dd>" in html
    assert "<dd data-segments>2</dd>" in live(staff_client, SmsMessageFactory(), text="ö😀" + "x" * 70)


def test_the_counter_shows_problems_while_typing(staff_client):
    html = live(staff_client, SmsMessageFactory(), text="Hi {{lead.nickname}}")
    assert "unknown field “nickname”" in html


def test_the_preview_renders_for_the_chosen_person(staff_client):
    lead = LeadFactory(first_name="Greta")
    html = live(
        staff_client, SmsMessageFactory(), text='Hi {{lead.first_name|default:"there"}}!', lead=lead.pk
    )
    assert "Hi Greta!" in html
    assert f'name="lead" value="{lead.pk}"' in html


def test_without_a_person_the_preview_uses_the_defaults(staff_client):
    html = live(staff_client, SmsMessageFactory(), text='Hi {{lead.first_name|default:"there"}}!')
    assert "Hi there!" in html


def test_the_lead_picker_finds_people_by_name_or_email(staff_client):
    LeadFactory(first_name="Ingrid", last_name="Lindqvist", email="ingrid@example.com")
    LeadFactory(first_name="Bruno", email="bruno@example.com")
    message = SmsMessageFactory()
    response = staff_client.get(
        url("sms_message", message.pk), {"lead_q": "lindq"}, headers={**HTMX, "HX-Target": "lead-results"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<ul id="lead-results"')
    assert "Ingrid Lindqvist" in html and "Bruno" not in html
    by_email = staff_client.get(
        url("sms_message", message.pk), {"lead_q": "bruno@"}, headers={**HTMX, "HX-Target": "lead-results"}
    )
    assert b"Bruno" in by_email.content


def test_saving_the_message(staff_client):
    message = SmsMessageFactory()
    response = staff_client.post(
        url("sms_message", message.pk), {"name": "Renamed", "text": "Hello {{lead.city}}"}
    )
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.name, message.text) == ("Renamed", "Hello {{lead.city}}")


def test_saving_with_htmx_returns_the_editor_with_a_message(staff_client):
    message = SmsMessageFactory()
    response = staff_client.post(
        url("sms_message", message.pk),
        {"name": "Saved", "text": "Hi"},
        headers={**HTMX, "HX-Target": "sms-editor"},
    )
    assert response.content.lstrip().startswith(b'<div id="sms-editor"')
    assert b"SMS message saved." in response.content
    assert f'hx-post="{url("sms_message", message.pk)}"'.encode() in response.content


def test_an_unknown_token_is_refused_and_the_text_kept(staff_client):
    message = SmsMessageFactory()
    old_text = message.text
    response = staff_client.post(
        url("sms_message", message.pk), {"name": message.name, "text": "Hi {{lead.shoe_size}}"}, headers=HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "unknown field “shoe_size”" in html
    assert "Hi {{lead.shoe_size}}</textarea>" in html
    message.refresh_from_db()
    assert message.text == old_text


def test_more_than_1600_characters_is_refused(staff_client):
    message = SmsMessageFactory()
    response = staff_client.post(
        url("sms_message", message.pk), {"name": message.name, "text": "y" * 1700}, headers=HTMX
    )
    assert b"1700 characters long; the most an SMS can carry is 1600" in response.content
    assert SmsMessage.objects.get(pk=message.pk).text != "y" * 1700


def test_a_duplicate_name_in_the_program_is_refused(staff_client):
    message = SmsMessageFactory()
    SmsMessageFactory(program=message.program, name="Taken")
    response = staff_client.post(
        url("sms_message", message.pk), {"name": "Taken", "text": "Hi"}, headers=HTMX
    )
    assert b"already holds an SMS message of that name" in response.content


def test_non_staff_cannot_edit_messages(clerk_client):
    message = SmsMessageFactory()
    assert clerk_client.post(url("sms_message", message.pk), {"name": "X", "text": "Y"}).status_code == 403


# --- The counter counts the message as people get it -----------------------------------


def test_the_counter_shows_the_segments_of_the_longest_first_name(staff_client):
    LeadFactory(first_name="Al")
    LeadFactory(first_name="Bartholomew")
    text = "x" * 150 + "{{lead.first_name}}"
    html = live(staff_client, SmsMessageFactory(), text=text)
    assert '<span class="big-number" data-characters>161</span>' in html
    assert "<dd data-segments>2</dd>" in html
    assert "first name: 11 characters" in html


def test_the_braces_of_a_token_are_not_counted(staff_client):
    LeadFactory(first_name="Al")
    html = live(staff_client, SmsMessageFactory(), text="x" * 150 + "{{lead.first_name}}")
    assert '<span class="big-number" data-characters>152</span>' in html
    assert "<dd data-segments>1</dd>" in html


def test_the_longest_values_take_one_query_whatever_the_tokens(staff_client):
    LeadFactory.create_batch(3)
    text = "Hi {{lead.first_name}} in {{lead.city}}, your score is {{lead.lead_score}}"
    with CaptureQueriesContext(connection) as queries:
        live(staff_client, SmsMessageFactory(), text=text)
    lead_queries = [q["sql"] for q in queries.captured_queries if '"smscampaigns_lead"' in q["sql"]]
    assert len(lead_queries) == 1
    assert lead_queries[0].count("MAX(") == 3  # one per token


def test_a_default_longer_than_every_value_is_counted(staff_client):
    LeadFactory(first_name="Al")
    html = live(staff_client, SmsMessageFactory(), text='Hi {{lead.first_name|default:"everybody"}}')
    assert '<span class="big-number" data-characters>12</span>' in html


def test_people_with_a_name_outside_gsm7_are_shown_apart(staff_client):
    LeadFactory(first_name="Ann")
    LeadFactory(first_name="Łukasz")
    html = live(staff_client, SmsMessageFactory(), text="x" * 65 + "{{lead.first_name}}")
    assert "1 person has characters outside GSM-7 in their first name: their SMS goes as UCS-2." in html
    assert "As UCS-2: up to 2 segments; everyone else: up to 1 (GSM-7)." in html
    assert "<dd data-encoding>UCS-2</dd>" in html and "<dd data-segments>2</dd>" in html


def test_the_chosen_person_gets_their_own_count(staff_client):
    LeadFactory(first_name="Bartholomew")
    greta = LeadFactory(first_name="Greta", last_name="Lind")
    html = live(staff_client, SmsMessageFactory(), text="Hi {{lead.first_name}}", lead=greta.pk)
    assert "Greta Lind gets 8 characters: 1 segment, GSM-7." in html
    assert '<span class="big-number" data-characters>14</span>' in html  # the longest stays shown


def test_a_personalised_message_over_1600_characters_is_flagged(staff_client):
    LeadFactory(city="C" * 100)
    html = live(staff_client, SmsMessageFactory(), text="y" * 1580 + "{{lead.city}}")
    assert "The longest message is 1,680 characters; Vibes takes at most 1,600." in html


def lead_queries_of(client, message, **params):
    with CaptureQueriesContext(connection) as queries:
        html = live(client, message, **params)
    return html, [q["sql"] for q in queries.captured_queries if '"smscampaigns_lead"' in q["sql"]]


def reading_of(html):
    return html.split('name="reading" value="')[1].split('"')[0]


def test_typing_uses_the_reading_of_the_people_again(staff_client):
    LeadFactory(first_name="Bartholomew", city="Oslo")
    message = SmsMessageFactory()
    html, queries = lead_queries_of(staff_client, message, text="Hi {{lead.first_name}}")
    assert len(queries) == 1
    reading = reading_of(html)
    # More typing, the same token: nobody is read again, and the count is the same truth.
    html, queries = lead_queries_of(staff_client, message, text="Hello {{lead.first_name}}!", reading=reading)
    assert queries == []
    assert '<span class="big-number" data-characters>18</span>' in html
    assert reading_of(html) == reading
    # Another token: the people are read again.
    html, queries = lead_queries_of(
        staff_client, message, text="{{lead.first_name}} {{lead.city}}", reading=reading
    )
    assert len(queries) == 1
    assert reading_of(html) != reading


def test_a_reading_that_was_tampered_with_is_not_used(staff_client):
    LeadFactory(first_name="Bartholomew")
    message = SmsMessageFactory()
    html, _ = lead_queries_of(staff_client, message, text="Hi {{lead.first_name}}")
    reading = reading_of(html)
    forged = reading[:3] + ("A" if reading[3] != "A" else "B") + reading[4:]
    html, queries = lead_queries_of(staff_client, message, text="Hi {{lead.first_name}}", reading=forged)
    assert len(queries) == 1
    assert "first name: 11 characters" in html
