"""A smart list's triggers: checked with every problem named at its trigger, beside the filters."""

import pytest
from django.core.exceptions import ValidationError

from smscampaigns.smartlists import parse_definition, parse_triggers
from smscampaigns.smartlists.triggers import MAX_TRIGGERS
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def problems(raw):
    with pytest.raises(ValidationError) as error:
        parse_triggers(raw)
    return error.value.messages


def test_a_definition_without_triggers_has_none():
    assert parse_definition({"logic": "all", "rules": []}).triggers == ()


def test_a_trigger_keeps_its_constraints_and_an_optional_one_may_be_blank():
    news = VibesListFactory()
    (trigger,) = parse_triggers([{"trigger": "subscribes_vibes_list", "vibes_list": news.pk}])
    assert trigger.values == {"vibes_list": str(news.pk), "acquisition_campaign": ""}


def test_a_required_constraint_left_blank_is_named_at_its_trigger():
    assert problems([{"trigger": "subscribes_vibes_list"}]) == ["Trigger 1: choose a Vibes list."]


def test_a_value_that_is_no_choice_is_refused():
    news = VibesListFactory()
    other = AcquisitionCampaignFactory()
    assert problems(
        [
            {"trigger": "subscribes_vibes_list", "vibes_list": news.pk},
            {"trigger": "unsubscribes_vibes_list", "vibes_list": "999999"},
        ]
    ) == ["Trigger 2: “999999” is not one of the choices for a Vibes list."]
    assert parse_triggers(
        [{"trigger": "subscribes_vibes_list", "vibes_list": news.pk, "acquisition_campaign": other.pk}]
    )[0].values["acquisition_campaign"] == str(other.pk)


def test_an_unknown_trigger_and_a_wrong_shape_are_refused():
    assert problems([{"trigger": "clicks_banner"}]) == ["Trigger 1: “clicks_banner” is not a trigger."]
    assert problems({"trigger": "x"}) == ['"triggers" must be a list of triggers.']


def test_a_smart_list_has_at_most_twenty_triggers():
    news = VibesListFactory()
    many = [{"trigger": "subscribes_vibes_list", "vibes_list": news.pk}] * (MAX_TRIGGERS + 1)
    assert problems(many) == [
        f"A smart list has at most {MAX_TRIGGERS} triggers; this one has {MAX_TRIGGERS + 1}."
    ]


def test_the_filters_and_the_triggers_report_their_problems_together():
    with pytest.raises(ValidationError) as error:
        parse_definition({"logic": "all", "rules": [{"field": "nope"}], "triggers": [{"trigger": "nope"}]})
    assert any(message.startswith("Rule 1") for message in error.value.messages)
    assert "Trigger 1: “nope” is not a trigger." in error.value.messages
