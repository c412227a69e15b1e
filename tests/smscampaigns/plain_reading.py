"""A plain Python reading of smart list rules, person by person: whom the
compiler (one SQL query) must pick."""

import datetime

from smscampaigns.smartlists import And, Not, Ref


def rule_holds(rule, person):
    field, op, value = rule["field"], rule["op"], rule.get("value")
    if field == "vibes_list":
        status = person["subscription"]
        member = status is not None and (rule["status"] == "any" or status == rule["status"])
        return member if op == "is" else not member
    actual = person[field]
    if field == "created_at":
        moment = datetime.datetime.fromisoformat(value)
        return actual < moment if op == "before" else actual > moment
    if field in ("lead_score", "blocklisted"):
        if op == "is":
            return actual == value
        if op == "is not":
            return actual != value
        return actual > value if op == "greater" else actual < value
    # Rule values are trimmed when parsed: a stray space typed into a value is never meant.
    actual = actual.lower()
    value = [v.strip() for v in value] if isinstance(value, list) else (value or "").strip()
    if op == "is":
        return actual == value.lower()
    if op == "is not":
        return actual != value.lower()
    if op == "contains":
        return value.lower() in actual
    if op == "starts with":
        return actual.startswith(value.lower())
    if op == "is empty":
        return actual == ""
    if op == "in":
        return actual in {v.lower() for v in value}
    raise AssertionError(op)


def tree_holds(node, rule_list, person):
    if isinstance(node, Ref):
        return rule_holds(rule_list[node.number - 1], person)
    if isinstance(node, Not):
        return not tree_holds(node.operand, rule_list, person)
    results = [tree_holds(operand, rule_list, person) for operand in node.operands]
    return all(results) if isinstance(node, And) else any(results)
