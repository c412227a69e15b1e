import pytest
from django.core.exceptions import ValidationError

from marketing_activities.sms_text import count_segments, render, validate_text
from smscampaigns.models import Lead


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
