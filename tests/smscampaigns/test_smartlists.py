import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from smscampaigns.models import Lead, SmartList
from smscampaigns.smartlists import parse_definition, parse_logic
from tests.smscampaigns.factories import LeadFactory, SmartListFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db


def picked(rules, logic="all"):
    definition = parse_definition({"logic": logic, "rules": rules})
    return set(Lead.objects.filter(definition.to_q()).values_list("email", flat=True))


def test_is_compares_text_without_regard_to_case():
    LeadFactory(email="a@example.com", country="US")
    LeadFactory(email="b@example.com", country="se")
    assert picked([{"field": "country", "op": "is", "value": "us"}]) == {"a@example.com"}
    assert picked([{"field": "country", "op": "is not", "value": "US"}]) == {"b@example.com"}


def test_contains_and_starts_with_treat_percent_and_underscore_literally():
    LeadFactory(email="a@example.com", first_name="50% Off")
    LeadFactory(email="b@example.com", first_name="5000 Off")
    assert picked([{"field": "first_name", "op": "contains", "value": "0%"}]) == {"a@example.com"}
    assert picked([{"field": "first_name", "op": "starts with", "value": "5_"}]) == set()


def test_in_accepts_a_list_or_comma_separated_text():
    LeadFactory(email="a@example.com", country="US")
    LeadFactory(email="b@example.com", country="SE")
    LeadFactory(email="c@example.com", country="DE")
    assert picked([{"field": "country", "op": "in", "value": ["us", "SE"]}]) == {
        "a@example.com",
        "b@example.com",
    }
    assert picked([{"field": "country", "op": "in", "value": "US, de"}]) == {"a@example.com", "c@example.com"}


def test_is_empty_picks_people_without_a_number():
    LeadFactory(email="a@example.com", mobile_phone="")
    LeadFactory(email="b@example.com")
    assert picked([{"field": "mobile_phone", "op": "is empty"}]) == {"a@example.com"}


def test_phone_rules_compare_numbers_in_e164_form():
    LeadFactory(email="a@example.com", mobile_phone="(555) 123-4567")
    assert picked([{"field": "mobile_phone", "op": "is", "value": "555.123.4567"}]) == {"a@example.com"}


def test_greater_and_less_compare_numbers():
    LeadFactory(email="a@example.com", lead_score=10)
    LeadFactory(email="b@example.com", lead_score=90)
    assert picked([{"field": "lead_score", "op": "greater", "value": "50"}]) == {"b@example.com"}
    assert picked([{"field": "lead_score", "op": "less", "value": 50}]) == {"a@example.com"}


def test_before_and_after_compare_dates():
    LeadFactory(email="old@example.com", created_at=timezone.now() - datetime.timedelta(days=400))
    LeadFactory(email="new@example.com")
    cutoff = (timezone.now() - datetime.timedelta(days=30)).date().isoformat()
    assert picked([{"field": "created_at", "op": "before", "value": cutoff}]) == {"old@example.com"}
    assert picked([{"field": "created_at", "op": "after", "value": cutoff}]) == {"new@example.com"}


def test_boolean_rules():
    LeadFactory(email="a@example.com", blocklisted=True)
    LeadFactory(email="b@example.com")
    assert picked([{"field": "blocklisted", "op": "is", "value": "yes"}]) == {"a@example.com"}
    assert picked([{"field": "blocklisted", "op": "is", "value": False}]) == {"b@example.com"}


def test_vibes_list_membership_with_a_status():
    news = VibesListFactory()
    subscribed = SubscriptionFactory(vibes_list=news, status="subscribed").lead
    pending = SubscriptionFactory(vibes_list=news, status="pending").lead
    outsider = LeadFactory()
    rule = {"field": "vibes_list", "op": "is", "value": news.pk, "status": "subscribed"}
    assert picked([rule]) == {subscribed.email}
    assert picked([{**rule, "status": "any"}]) == {subscribed.email, pending.email}
    assert picked([{**rule, "op": "is not", "status": "any"}]) == {outsider.email}


def test_logic_expression_with_not_and_parentheses():
    LeadFactory(email="us-high@example.com", country="US", lead_score=90)
    LeadFactory(email="us-low@example.com", country="US", lead_score=5)
    LeadFactory(email="se-high@example.com", country="SE", lead_score=90)
    rules = [
        {"field": "country", "op": "is", "value": "US"},
        {"field": "lead_score", "op": "greater", "value": 50},
        {"field": "country", "op": "is", "value": "SE"},
    ]
    assert picked(rules, "1 and not 2 or 3") == {"us-low@example.com", "se-high@example.com"}
    assert picked(rules, "1 and not (2 or 3)") == {"us-low@example.com"}
    assert picked(rules, "any") == {"us-high@example.com", "us-low@example.com", "se-high@example.com"}


def test_a_smart_list_without_rules_picks_nobody():
    LeadFactory()
    assert picked([]) == set()


def test_smart_list_counts_in_one_query(django_assert_num_queries):
    news = VibesListFactory()
    for _ in range(5):
        SubscriptionFactory(vibes_list=news)
    smart_list = SmartListFactory(
        definition={
            "logic": "1 and (2 or not 3)",
            "rules": [
                {"field": "country", "op": "is", "value": "US"},
                {"field": "vibes_list", "op": "is", "value": news.pk},
                {"field": "lead_score", "op": "less", "value": 0},
            ],
        }
    )
    with django_assert_num_queries(2):  # validating the Vibes list id, then the count
        assert smart_list.leads().count() == 5


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"logic": "1 and", "rules": [{"field": "country", "op": "is", "value": "US"}]},
            "Logic: the expression ends too early.",
        ),
        (
            {"logic": "1 or 2", "rules": [{"field": "country", "op": "is", "value": "US"}]},
            "Logic: there is no rule 2 (the rules are numbered 1 to 1).",
        ),
        (
            {"logic": "(1", "rules": [{"field": "country", "op": "is", "value": "US"}]},
            "Logic: a “(” is never closed.",
        ),
        (
            {"logic": "1 xor 2", "rules": [{"field": "country", "op": "is", "value": "US"}] * 2},
            "Logic: “xor” is not a rule number, “and”, “or”, “not” or a parenthesis.",
        ),
        (
            {"logic": "1", "rules": [{"field": "country", "op": "is", "value": "US"}] * 2},
            "Logic: rule 2 is not used; use every rule or remove it.",
        ),
        (
            {"logic": "all", "rules": [{"field": "colour", "op": "is", "value": "red"}]},
            "Rule 1: unknown field “colour”.",
        ),
        (
            {"logic": "all", "rules": [{"field": "lead_score", "op": "contains", "value": "1"}]},
            "Rule 1: “contains” does not apply to Lead score",
        ),
        (
            {"logic": "all", "rules": [{"field": "lead_score", "op": "greater", "value": "lots"}]},
            "Rule 1: “lots” is not a number.",
        ),
        (
            {"logic": "all", "rules": [{"field": "created_at", "op": "before", "value": "yesterday"}]},
            "Rule 1: “yesterday” is not a date",
        ),
        (
            {"logic": "all", "rules": [{"field": "country", "op": "is", "value": ""}]},
            "Rule 1: enter a value.",
        ),
        (
            {"logic": "all", "rules": [{"field": "vibes_list", "op": "is", "value": 999999}]},
            "Rule 1: there is no Vibes list with id 999999.",
        ),
        ({"logic": "all", "rules": "country is US"}, '"rules" must be a list of rules.'),
        ("country = US", 'The smart list must be an object with "logic" and "rules".'),
    ],
)
def test_bad_definitions_say_what_is_wrong_and_where(definition, message):
    with pytest.raises(ValidationError) as error:
        parse_definition(definition)
    assert any(m.startswith(message) for m in error.value.messages), error.value.messages


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationError) as error:
        parse_definition(
            {
                "logic": "1 and 3",
                "rules": [{"field": "colour"}, {"field": "country", "op": "is", "value": "US"}],
            }
        )
    messages = error.value.messages
    assert any(m.startswith("Rule 1:") for m in messages)
    assert any(m.startswith("Logic:") for m in messages)


def test_smart_list_model_validation_names_the_field():
    smart_list = SmartList(
        name="Bad", definition={"logic": "1 or", "rules": [{"field": "country", "op": "is", "value": "US"}]}
    )
    with pytest.raises(ValidationError) as error:
        smart_list.full_clean()
    assert "definition" in error.value.message_dict


def test_not_binds_tighter_than_and_tighter_than_or():
    tree = parse_logic("not 1 and 2 or 3", 3)
    assert (
        repr(tree)
        == "Or(operands=(And(operands=(Not(operand=Ref(number=1)), Ref(number=2))), Ref(number=3)))"
    )
