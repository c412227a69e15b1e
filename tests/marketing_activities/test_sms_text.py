import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from marketing_activities.sms_text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    count_received,
    count_received_many,
    count_segments,
    people_values,
    render,
    validate_text,
)
from smscampaigns.models import Lead
from tests.smscampaigns.factories import LeadFactory


def test_tokens_are_replaced_and_defaults_used_for_blank_values():
    text = 'Hi {{lead.first_name|default:"there"}} from {{ lead.city }}!'
    assert render(text, Lead(first_name="Anna", city="Oslo")) == "Hi Anna from Oslo!"
    assert render(text, Lead(first_name="", city="")) == "Hi there from !"


def test_rendering_never_runs_template_code():
    lead = Lead(first_name="{% load x %}{{ secret }}")
    assert render("Hi {{lead.first_name}}", lead) == "Hi {% load x %}{{ secret }}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Hi {{lead.shoe_size}}", "unknown field “shoe_size”"),
        ("Hi {{ user.name }}", "is not a token"),
        ("Hi {% if x %}", "template tags are not allowed"),
        ("x" * 1601, "1601 characters long; the most an SMS can carry is 1600"),
    ],
)
def test_bad_text_is_refused_with_the_reason(text, problem):
    with pytest.raises(ValidationError) as error:
        validate_text(text)
    assert any(problem in message for message in error.value.messages)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # each € costs two septets
        ("€" * 81, "GSM-7", 2),
        ("ä" * 160, "GSM-7", 1),
        ("ł" * 70, "UCS-2", 1),
        ("ł" * 71, "UCS-2", 2),
        ("ł" * 134, "UCS-2", 2),
        ("ł" * 135, "UCS-2", 3),
        ("🙂" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units
    ],
)
def test_segment_counting(text, encoding, segments):
    count = count_segments(text)
    assert (count.encoding, count.segments) == (encoding, segments)


# --- Counting the message as people get it -----------------------------------------

GSM7 = GSM7_BASIC | GSM7_EXTENSION
# Every GSM-7 character, and characters outside it that look like it: the
# backtick (the one printable ASCII character GSM-7 lacks), a tab, a lower-case
# ç (GSM-7 has only Ç), Polish and Portuguese letters, a combining diaeresis
# and an emoji.
OUTSIDE = "`\tçłãŚ\u0308😀"


@pytest.mark.django_db
def test_tokens_count_at_their_longest_value_not_as_typed():
    LeadFactory(first_name="Al")
    LeadFactory(first_name="Bartholomew")
    received = count_received("Hi {{lead.first_name}}!")
    assert received.longest.characters == len("Hi Bartholomew!")
    assert received.tokens == (("first_name", len("Bartholomew")),)
    assert received.people == 2


@pytest.mark.django_db
def test_the_braces_of_a_token_cost_nothing():
    LeadFactory(first_name="Al")
    text = "x" * 150 + "{{lead.first_name}}"  # as typed: 173 septets (each brace takes two), 2 segments
    assert count_segments(text).segments == 2
    assert count_received(text).longest.segments == 1


@pytest.mark.django_db
def test_the_longest_values_of_every_token_take_one_query(django_assert_num_queries):
    LeadFactory(first_name="Anna", city="Göteborg", lead_score=-1200)
    with django_assert_num_queries(1):
        values = people_values(["first_name", "city", "lead_score", "first_name"])
    assert {name: v.longest for name, v in values.fields.items()} == {
        "first_name": 4,
        "city": 8,
        "lead_score": 5,
    }


@pytest.mark.django_db
def test_a_text_without_tokens_reads_nobody(django_assert_num_queries):
    LeadFactory()
    with django_assert_num_queries(0):
        received = count_received("No tokens {{lead.shoe_size}} here")
    assert received.longest == count_segments("No tokens  here")


@pytest.mark.django_db
def test_a_default_counts_when_it_is_longer_than_every_value():
    LeadFactory(first_name="Al")
    assert count_received('Hi {{lead.first_name|default:"everybody"}}').longest.characters == 12
    assert count_received('Hi {{lead.first_name|default:"x"}}').longest.characters == 5


@pytest.mark.django_db
def test_without_people_each_token_counts_as_its_default():
    received = count_received('Hi {{lead.first_name|default:"there"}}{{lead.city}}')
    assert (received.people, received.longest.characters) == (0, len("Hi there"))


@pytest.mark.django_db
def test_a_value_outside_gsm7_counts_those_people_as_ucs2():
    LeadFactory(first_name="Ann")
    LeadFactory(first_name="Łukasz")
    received = count_received("x" * 65 + "{{lead.first_name}}")
    assert (received.within_gsm7.encoding, received.within_gsm7.segments) == ("GSM-7", 1)
    assert (received.outside_gsm7.encoding, received.outside_gsm7.units) == ("UCS-2", 71)
    assert received.outside_gsm7.segments == 2
    assert received.longest == received.outside_gsm7
    assert received.outside == (("first_name", 1),)


@pytest.mark.django_db
def test_letters_of_gsm7_beyond_ascii_keep_a_message_gsm7():
    for name in ["Jürgen", "Ñoño", "Ærøskøbing", "Çağ"[:2], "ΔΣΩ"]:
        LeadFactory(first_name=name)
    received = count_received("Hi {{lead.first_name}}")
    assert received.outside_gsm7 is None
    assert received.longest.encoding == "GSM-7"


@pytest.mark.django_db
def test_extension_characters_in_a_value_take_two_septets():
    LeadFactory(city="{Göteborg}€")
    assert people_values(["city"]).fields["city"].longest_gsm7 == len("{Göteborg}€") + 3


@pytest.mark.django_db
def test_a_default_outside_gsm7_makes_the_message_of_people_without_a_value_ucs2():
    LeadFactory(first_name="Bartholomew")
    received = count_received('Hi {{lead.first_name|default:"Ś"}}')
    assert received.within_gsm7.encoding == "GSM-7"
    assert received.outside_gsm7.encoding == "UCS-2"


@pytest.mark.django_db
def test_several_texts_are_counted_with_one_query(django_assert_num_queries):
    LeadFactory(first_name="Bartholomew", city="Oslo")
    with django_assert_num_queries(1):
        first, second, plain = count_received_many(["{{lead.first_name}}", "{{lead.city}}!", "Hello"])
    assert (first.longest.characters, second.longest.characters, plain.longest.characters) == (11, 5, 5)


class ReceivedCountTests(TestCase):
    """The SQL that reads the people agrees with the Python that counts a message."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(names=st.lists(st.text(alphabet=sorted(GSM7) + list(OUTSIDE), max_size=6), min_size=1, max_size=6))
    def test_the_database_reads_each_value_as_python_counts_it(self, names):
        for name in names:
            LeadFactory(first_name=name)
        values = people_values(["first_name"]).fields["first_name"]
        outside = [name for name in names if any(ch not in GSM7 for ch in name)]
        within = [name for name in names if name not in outside]
        assert values.people_outside == len(outside)
        assert values.longest_outside == max(map(len, outside), default=0)
        assert values.longest_gsm7 == max((count_segments(name).units for name in within), default=0)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        people=st.lists(
            st.tuples(st.text(alphabet="ab€{é`ł", max_size=8), st.text(alphabet="cd]ØĀ", max_size=5)),
            min_size=1,
            max_size=5,
        ),
        text=st.lists(
            st.sampled_from(
                [
                    "x" * 40,
                    "Hej ",
                    "{{lead.first_name}}",
                    '{{lead.first_name|default:"there"}}',
                    '{{lead.city|default:"€€"}}',
                    "{{lead.city}}",
                    '{{lead.city|default:"ł"}}',
                    "ö",
                ]
            ),
            max_size=8,
        ).map("".join),
    )
    def test_nobody_gets_a_longer_message_than_the_counter_shows(self, people, text):
        leads = [LeadFactory(first_name=first_name, city=city) for first_name, city in people]
        received = count_received(text)
        for lead in leads:
            got = count_segments(render(text, lead))
            assert (got.segments, got.units) <= (received.longest.segments, received.longest.units), lead
