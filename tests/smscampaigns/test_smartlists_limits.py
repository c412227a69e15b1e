"""Smart list limits and impossible values: a clear message, and the largest smart list allowed runs."""

import contextlib
import datetime
import random
import sqlite3

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.db.models import Q

from marketing_activities.models import FlowStep
from marketing_activities.runner import campaign_preview
from smscampaigns.models import Lead
from smscampaigns.smartlists import (
    MAX_IN_VALUES,
    MAX_LOGIC_DEPTH,
    MAX_LOGIC_REFERENCES,
    MAX_RULES,
    parse_definition,
)
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.smscampaigns.plain_reading import tree_holds
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db

US = {"field": "country", "op": "is", "value": "US"}


def problems(definition) -> list[str]:
    with pytest.raises(ValidationError) as error:
        parse_definition(definition)
    return error.value.messages


def nested(levels: int) -> str:
    return "(" * levels + "1" + ")" * levels


def test_logic_nested_deeper_than_the_limit_is_refused():
    assert problems({"logic": nested(400), "rules": [US]}) == [
        f"Logic: parentheses and “not” are nested more than {MAX_LOGIC_DEPTH} levels deep; "
        "write it with fewer levels."
    ]


def test_five_thousand_nots_are_refused_as_too_deep():
    [message] = problems({"logic": "not " * 5000 + "1", "rules": [US]})
    assert message.startswith(
        f"Logic: parentheses and “not” are nested more than {MAX_LOGIC_DEPTH} levels deep"
    )


def test_logic_as_deep_as_the_limit_is_accepted():
    parse_definition({"logic": nested(MAX_LOGIC_DEPTH), "rules": [US]})
    parse_definition({"logic": "not " * (MAX_LOGIC_DEPTH - 1) + "(1)", "rules": [US]})
    assert problems({"logic": nested(MAX_LOGIC_DEPTH + 1), "rules": [US]})


def test_logic_naming_rules_more_often_than_the_limit_is_refused():
    logic = " or ".join(["1"] * (MAX_LOGIC_REFERENCES + 1))
    assert problems({"logic": logic, "rules": [US]}) == [
        f"Logic: it names rules {MAX_LOGIC_REFERENCES + 1} times; "
        f"the logic may name rules at most {MAX_LOGIC_REFERENCES} times in all."
    ]
    parse_definition({"logic": " or ".join(["1"] * MAX_LOGIC_REFERENCES), "rules": [US]})


def test_more_rules_than_the_limit_are_refused_with_one_message():
    assert problems({"logic": "all", "rules": [US] * 5000}) == [
        f"The smart list has 5000 rules; a smart list holds at most {MAX_RULES}. "
        "Remove rules, or combine rules on one field with “in”."
    ]
    parse_definition({"logic": "all", "rules": [US] * MAX_RULES})


@pytest.mark.parametrize("value", ["2026-13-45", "2026-02-30", "2026-01-01T25:99", "2026-01-01 10:00+99:00"])
def test_impossible_dates_are_refused(value):
    rule = {"field": "created_at", "op": "before", "value": value}
    assert problems({"logic": "all", "rules": [US, rule]}) == [
        f"Rule 2: “{value}” is not a real date or time; check the month, day, hour and minute."
    ]


def test_in_values_beyond_the_limit_are_refused_in_one_rule_and_across_rules():
    many = [f"c{n}" for n in range(MAX_IN_VALUES + 1)]
    [message] = problems({"logic": "all", "rules": [{"field": "city", "op": "in", "value": many}]})
    assert message.startswith(f"Rule 1: “in” has {MAX_IN_VALUES + 1} values")
    half = many[: MAX_IN_VALUES // 2 + 1]
    rules = [{"field": "city", "op": "in", "value": half}, {"field": "state", "op": "in", "value": half}]
    assert problems({"logic": "all", "rules": rules}) == [
        f"The “in” rules have {2 * len(half)} values together; a smart list holds {MAX_IN_VALUES} at most."
    ]


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-inf"])
def test_a_number_rule_refuses_what_is_no_number(value):
    rule = {"field": "lead_score", "op": "greater", "value": value}
    assert problems({"logic": "all", "rules": [rule]}) == [f"Rule 1: “{value}” is not a number."]


@pytest.mark.parametrize("value", ["1e999999999", "2147483648", "-99999999999999999999"])
def test_a_number_rule_refuses_what_is_out_of_range(value):
    rule = {"field": "lead_score", "op": "in", "value": ["1", value]}
    [message] = problems({"logic": "all", "rules": [rule]})
    assert message.startswith(
        f"Rule 1: “{value}” is out of range; use a number from -2147483648 to 2147483647."
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"field": [], "op": "is", "value": "US"},
            "Rule 1: “field” must be text or a number, not a list or an object.",
        ),
        (
            {"field": "country", "op": "is", "value": {"a": [[[1]]]}},
            "Rule 1: the value must be text, a number, or a list of them.",
        ),
        (
            {"field": "country", "op": "in", "value": ["US", ["SE"]]},
            "Rule 1: the value must be text, a number, or a list of them.",
        ),
        (
            {"field": "country", "op": "is", "value": "US\x00"},
            "Rule 1: “value” holds a character that cannot be stored (NUL or an unpaired surrogate).",
        ),
        (
            {"field": "country", "op": "is", "value": "\ud800"},
            "Rule 1: “value” holds a character that cannot be stored (NUL or an unpaired surrogate).",
        ),
        (
            {"field": "country", "op": "is", "value": "US", "note": "x"},
            "Rule 1: unknown key “note”; a rule of this field has “field”, “op”, “value”.",
        ),
        (
            {"field": "country", "op": "is", "value": float("nan")},
            "Rule 1: the value must be text, a number, or a list of them.",
        ),
    ],
)
def test_a_rule_of_another_shape_is_refused_with_a_message(rule, message):
    assert problems({"logic": "all", "rules": [rule]}) == [message]


# --- The largest smart list the limits allow ----------------------------------------

TEXT_FIELDS = ["first_name", "city", "country"]
FIRST_NAMES = ["Anna", "Björn", "Carla", "Dirk", "Eva"]
CITIES = ["Köln", "Lund", "Gent", "Roma", "Lyon"]
COUNTRIES = ["US", "SE", "DE", "FR", "IT"]


def largest_definition(vibes_list_id: int) -> dict:
    """MAX_RULES rules with MAX_IN_VALUES values in their "in" rules, and logic that
    names rules MAX_LOGIC_REFERENCES times, MAX_LOGIC_DEPTH levels deep.

    SQLite reads a chain "1 or 2 or ..." as one level per operand, so the deepest
    tree is every chain on one path: a chain of nearly every reference innermost
    (with the Vibes list rules, a subquery each), inside ten levels of "not (".
    The outer levels use score rules, true for about half the people, so who
    qualifies depends on every level.
    """
    rng = random.Random(11)
    known = {"first_name": FIRST_NAMES, "city": CITIES, "country": COUNTRIES}
    in_rules = 40
    rules = []
    for index in range(in_rules):  # rules 1-40
        field = TEXT_FIELDS[index % 3]
        values = [f"{field}-{index}-{n}" for n in range(MAX_IN_VALUES // in_rules - 2)]
        rules.append({"field": field, "op": "in", "value": [*values, *rng.sample(known[field], 2)]})
    for index in range(20):  # rules 41-60
        status = ["subscribed", "pending", "unsubscribed", "any"][index % 4]
        rules.append(
            {
                "field": "vibes_list",
                "op": ["is", "is not"][index % 2],
                "value": vibes_list_id,
                "status": status,
            }
        )
    for _index in range(20):  # rules 61-80, for the outer levels
        rules.append(
            {"field": "lead_score", "op": rng.choice(["greater", "less"]), "value": rng.randint(35, 65)}
        )
    while len(rules) < MAX_RULES:  # rules 81-100
        rules.append(
            rng.choice(
                [
                    {"field": "lead_score", "op": rng.choice(["is", "is not"]), "value": rng.randint(0, 100)},
                    {
                        "field": "created_at",
                        "op": rng.choice(["before", "after"]),
                        "value": "2024-01-15T00:00+00:00",
                    },
                    {"field": "blocklisted", "op": "is", "value": rng.choice([True, False])},
                    {"field": rng.choice(TEXT_FIELDS), "op": "contains", "value": rng.choice("aeiou")},
                    {"field": rng.choice(TEXT_FIELDS), "op": "is not", "value": rng.choice(COUNTRIES)},
                ]
            )
        )
    levels = MAX_LOGIC_DEPTH // 2  # "not (" is two levels
    outer = list(range(61, 61 + 2 * levels))
    every = range(1, MAX_RULES + 1)
    inner = sorted([*every, *(n for n in every if n not in outer)], key=lambda n: not (41 <= n <= 60))
    logic = " or ".join(map(str, inner))
    for level in range(levels):
        # "and" at every level: each is then true for most people but not all, where
        # alternating with "or" would make the outermost a conjunction of twenty rules.
        a, b = outer[2 * level : 2 * level + 2]
        logic = f"not ({logic} and {a} and {b})"
    assert len(inner) + len(outer) == MAX_LOGIC_REFERENCES
    return {"logic": logic, "rules": rules}


def person(rng, index):
    return {
        "email": f"p{index}@example.com",
        "mobile_phone": f"+1{201 + index // 100}555{100 + index % 100:04d}",
        "first_name": rng.choice(FIRST_NAMES),
        "last_name": "",
        "city": rng.choice(CITIES),
        "country": rng.choice(COUNTRIES),
        "lead_score": rng.randint(0, 100),
        "blocklisted": rng.random() < 0.2,
        "created_at": datetime.datetime(2024, 1, rng.randint(1, 28), 12, tzinfo=datetime.UTC),
        "subscription": rng.choice([None, "subscribed", "pending", "unsubscribed"]),
    }


# Half of SQLite's own limit: the largest smart list fits twice over.
SQLITE_DEPTH_MARGIN = 500


@contextlib.contextmanager
def sqlite_expression_depth(limit):
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    sqlite = connection.connection
    default = sqlite.getlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH)
    sqlite.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, limit)
    try:
        yield
    finally:
        sqlite.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, default)


def test_the_largest_smart_list_within_the_limits_runs():
    """On SQLite, which refuses expressions deeper than 1,000 levels; and on PostgreSQL."""
    vibes_list = VibesListFactory()
    definition = largest_definition(vibes_list.pk)
    parsed = parse_definition(definition)
    assert len(parsed.rules) == MAX_RULES
    assert sum(len(rule.value) for rule in parsed.rules if rule.op == "in") == MAX_IN_VALUES
    assert definition["logic"].count("(") * 2 == MAX_LOGIC_DEPTH

    rng = random.Random(12)
    persons = [person(rng, index) for index in range(300)]
    for data in persons:
        lead = Lead.objects.create(**{k: v for k, v in data.items() if k != "subscription"})
        if data["subscription"]:
            SubscriptionFactory(lead=lead, vibes_list=vibes_list, status=data["subscription"])
    expected = {p["email"] for p in persons if tree_holds(parsed.tree, definition["rules"], p)}
    assert 0 < len(expected) < len(persons), "the worst case should pick some people and leave others"

    campaign = SmartCampaignFactory(smart_list__definition=definition)
    FlowStepFactory(campaign=campaign, position=0, vibes_list=vibes_list, action=FlowStep.Action.SEND_SMS)
    with sqlite_expression_depth(SQLITE_DEPTH_MARGIN):
        assert set(Lead.objects.filter(parsed.to_q()).values_list("email", flat=True)) == expected
        # A run plans with the smart list inside larger statements: the preview plans as a run does.
        assert campaign_preview(campaign=campaign, sample_size=0).audience == len(expected)


def test_sqlite_with_its_expression_depth_lowered_refuses_a_chain_of_rules_beyond_it():
    """The lowered limit is real: a chain of one condition more than it is refused."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's expression depth")
    chain = Q(pk__in=[])
    for score in range(SQLITE_DEPTH_MARGIN + 1):
        chain |= Q(lead_score=score)
    with (
        sqlite_expression_depth(SQLITE_DEPTH_MARGIN),
        pytest.raises(OperationalError, match="Expression tree is too large"),
    ):
        Lead.objects.filter(chain).count()
