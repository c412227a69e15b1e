"""The smart list admin: every definition typed as JSON gets a page, never a 500."""

import json

import pytest
from django.urls import reverse

from smscampaigns.models import SmartList
from smscampaigns.smartlists import MAX_LOGIC_DEPTH, MAX_RULES
from tests.smscampaigns.factories import SmartListFactory

pytestmark = pytest.mark.django_db

US = {"field": "country", "op": "is", "value": "US"}
TOO_DEEP = f"Logic: parentheses and “not” are nested more than {MAX_LOGIC_DEPTH} levels deep"


def change(admin_client, smart_list, definition_text):
    admin_client.raise_request_exception = False
    url = reverse("admin:smscampaigns_smartlist_change", args=[smart_list.pk])
    return admin_client.post(url, {"name": smart_list.name, "definition": definition_text})


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"logic": "(" * 400 + "1" + ")" * 400, "rules": [US]}, TOO_DEEP),
        ({"logic": "not " * 5000 + "1", "rules": [US]}, TOO_DEEP),
        (
            {"logic": "all", "rules": [US] * 5000},
            f"The smart list has 5000 rules; a smart list holds at most {MAX_RULES}.",
        ),
        (
            {"logic": "all", "rules": [{"field": "created_at", "op": "after", "value": "2026-13-45"}]},
            "Rule 1: “2026-13-45” is not a real date or time; check the month, day, hour and minute.",
        ),
        (
            {"logic": "all", "rules": [{"field": "created_at", "op": "after", "value": "2026-02-30"}]},
            "Rule 1: “2026-02-30” is not a real date or time; check the month, day, hour and minute.",
        ),
        (
            {"logic": "all", "rules": [{"field": "created_at", "op": "before", "value": "2026-01-01T25:99"}]},
            "Rule 1: “2026-01-01T25:99” is not a real date or time; check the month, day, hour and minute.",
        ),
    ],
    ids=["nested-400-deep", "5000-nots", "5000-rules", "2026-13-45", "2026-02-30", "25:99"],
)
def test_a_definition_beyond_the_limits_or_with_an_impossible_date_gets_a_message(
    admin_client, definition, message
):
    smart_list = SmartListFactory()
    before = smart_list.definition
    typed = json.dumps(definition)
    response = change(admin_client, smart_list, typed)
    assert response.status_code == 200
    assert message in response.content.decode()
    smart_list.refresh_from_db()
    assert smart_list.definition == before
    # What was typed is shown again, to be corrected rather than typed anew.
    assert response.context["adminform"].form["definition"].value() == typed


def test_json_nested_deeper_than_python_reads_gets_a_message(admin_client):
    smart_list = SmartListFactory()
    typed = "[" * 100_000
    response = change(admin_client, smart_list, typed)
    assert response.status_code == 200
    assert (
        "This JSON cannot be read: it is nested too deeply or holds a number too long."
        in response.content.decode()
    )
    assert response.context["adminform"].form["definition"].value() == typed


def test_a_rule_value_nested_as_json_gets_a_message(admin_client):
    smart_list = SmartListFactory()
    typed = (
        '{"logic": "all", "rules": [{"field": "country", "op": "is", "value": '
        + "[" * 900
        + "]" * 900
        + "}]}"
    )
    response = change(admin_client, smart_list, typed)
    assert response.status_code == 200
    assert "Rule 1: the value must be text, a number, or a list of them." in response.content.decode()


def test_a_definition_within_the_limits_is_saved(admin_client):
    smart_list = SmartListFactory()
    definition = {"logic": "(" * MAX_LOGIC_DEPTH + "1" + ")" * MAX_LOGIC_DEPTH, "rules": [US]}
    response = change(admin_client, smart_list, json.dumps(definition))
    assert response.status_code == 302
    assert SmartList.objects.get(pk=smart_list.pk).definition == definition
