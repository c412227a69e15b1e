"""The smart list compiler picks exactly whom a plain Python reading of the rules picks."""

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from smscampaigns.models import Lead
from smscampaigns.smartlists import parse_definition
from tests.smscampaigns.plain_reading import tree_holds
from vibes.models import Subscription, VibesList

# Few letters, in both cases, and the characters SQL LIKE treats specially,
# so that case folding and escaping are both exercised.
TEXT = st.text(alphabet="aAbB%_\\ ", max_size=4)
COUNTRIES = st.sampled_from(["US", "us", "SE", "DE", ""])
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
MOMENTS = st.integers(min_value=0, max_value=1000).map(lambda h: START + datetime.timedelta(hours=h))
STATUSES = ["subscribed", "pending", "unsubscribed"]

people = st.fixed_dictionaries(
    {
        "first_name": TEXT,
        "country": COUNTRIES,
        "city": TEXT,
        "lead_score": st.integers(min_value=-5, max_value=105),
        "blocklisted": st.booleans(),
        "created_at": MOMENTS,
        "subscription": st.sampled_from([None, *STATUSES]),
    }
)

text_rules = st.one_of(
    st.builds(
        lambda f, o, v: {"field": f, "op": o, "value": v},
        st.sampled_from(["first_name", "city"]),
        st.sampled_from(["is", "is not", "contains", "starts with"]),
        TEXT.filter(lambda v: v.strip()),
    ),
    st.builds(lambda f: {"field": f, "op": "is empty"}, st.sampled_from(["first_name", "city", "country"])),
    st.builds(
        lambda o, v: {"field": "country", "op": o, "value": v},
        st.sampled_from(["is", "is not"]),
        st.sampled_from(["US", "us", "SE", "DE"]),
    ),
    st.builds(
        lambda v: {"field": "country", "op": "in", "value": v},
        st.lists(st.sampled_from(["US", "se", "DE"]), min_size=1, max_size=3),
    ),
)
number_rules = st.builds(
    lambda o, v: {"field": "lead_score", "op": o, "value": v},
    st.sampled_from(["is", "is not", "greater", "less"]),
    st.integers(min_value=-5, max_value=105),
)
boolean_rules = st.builds(
    lambda o, v: {"field": "blocklisted", "op": o, "value": v},
    st.sampled_from(["is", "is not"]),
    st.booleans(),
)
date_rules = st.builds(
    lambda o, v: {"field": "created_at", "op": o, "value": v.isoformat()},
    st.sampled_from(["before", "after"]),
    MOMENTS,
)
membership_rules = st.builds(
    lambda o, s: {"field": "vibes_list", "op": o, "status": s},
    st.sampled_from(["is", "is not"]),
    st.sampled_from([*STATUSES, "any"]),
)
rules = st.one_of(text_rules, number_rules, boolean_rules, date_rules, membership_rules)


@st.composite
def logic_for(draw, count):
    """'all', 'any', or a random expression that uses every rule."""
    kind = draw(st.sampled_from(["all", "any", "expression"]))
    if kind != "expression":
        return kind
    numbers = draw(st.permutations(list(range(1, count + 1))))
    parts = [f"not {n}" if draw(st.booleans()) else str(n) for n in numbers]
    while len(parts) > 1:
        i = draw(st.integers(min_value=0, max_value=len(parts) - 2))
        joined = f"({parts[i]} {draw(st.sampled_from(['and', 'or']))} {parts[i + 1]})"
        if draw(st.booleans()):
            joined = f"not {joined}"
        parts[i : i + 2] = [joined]
    return parts[0]


class SmartListCompilerTests(TestCase):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        persons=st.lists(people, min_size=1, max_size=8),
        rule_list=st.lists(rules, min_size=1, max_size=4),
        data=st.data(),
    )
    def test_compiled_query_agrees_with_python_evaluation(self, persons, rule_list, data):
        vibes_list = VibesList.objects.create(vibes_id="P1", name="Property list")
        rule_list = [{**r, "value": vibes_list.pk} if r["field"] == "vibes_list" else r for r in rule_list]
        logic = data.draw(logic_for(len(rule_list)))
        expected = set()
        for index, person in enumerate(persons):
            fields = {k: v for k, v in person.items() if k != "subscription"}
            lead = Lead.objects.create(email=f"p{index}@example.com", **fields)
            if person["subscription"]:
                Subscription.objects.create(lead=lead, vibes_list=vibes_list, status=person["subscription"])
        definition = parse_definition({"logic": logic, "rules": rule_list})
        for index, person in enumerate(persons):
            if tree_holds(definition.tree, rule_list, person):
                expected.add(f"p{index}@example.com")
        compiled = set(Lead.objects.filter(definition.to_q()).values_list("email", flat=True))
        assert compiled == expected, (logic, rule_list)
