"""A whole smart list: its rules and logic checked together, and compiled to one Django `Q`."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from .fields import IN
from .limits import MAX_IN_VALUES, check_rule_count, shown, too_many_values
from .logic import And, Not, Ref, parse_logic
from .rules import parse_rule
from .triggers import parse_triggers


@dataclass(frozen=True)
class SmartListDefinition:
    rules: tuple
    logic: str
    tree: object
    # What makes the campaign a trigger campaign (triggers.py); empty for a batch campaign.
    triggers: tuple = ()

    def to_q(self) -> Q:
        if not self.rules:
            # A smart list without rules picks nobody: texting the whole
            # database must be asked for with a rule, never by omission.
            return Q(pk__in=[])
        return _tree_q(self.tree, {rule.number: rule for rule in self.rules})


def _tree_q(node, rules) -> Q:
    if isinstance(node, Ref):
        return rules[node.number].to_q()
    if isinstance(node, Not):
        return ~_tree_q(node.operand, rules)
    parts = [_tree_q(operand, rules) for operand in node.operands]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if isinstance(node, And) else combined | part
    return combined


def parse_definition(definition) -> SmartListDefinition:
    """Validate a definition, collecting every problem into one ValidationError."""
    if not isinstance(definition, dict):
        raise ValidationError(_('The smart list must be an object with "logic" and "rules".'))
    unknown_keys = sorted(set(definition) - {"logic", "rules", "triggers"})
    if unknown_keys:
        raise ValidationError(
            _("The smart list has unknown keys: %(keys)s.")
            % {"keys": ", ".join(shown(key) for key in unknown_keys)}
        )
    raw_rules = definition.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ValidationError(_('"rules" must be a list of rules.'))
    # Alone: the rules beyond the limit are not worth checking one by one.
    check_rule_count(len(raw_rules))
    logic = definition.get("logic", "all")
    if not isinstance(logic, str):
        raise ValidationError(_('"logic" must be text such as “all”, “any” or “1 and 2”.'))
    errors = []
    rules = []
    for number, raw in enumerate(raw_rules, start=1):
        try:
            rules.append(parse_rule(number, raw))
        except ValidationError as error:
            errors.extend(error.messages)
    in_values = sum(len(rule.value) for rule in rules if rule.op == IN)
    if in_values > MAX_IN_VALUES:
        errors.append(too_many_values(in_values))
    tree = None
    try:
        tree = parse_logic(logic, len(raw_rules))
    except ValidationError as error:
        errors.extend(error.messages)
    triggers = ()
    try:
        triggers = parse_triggers(definition.get("triggers"))
    except ValidationError as error:
        errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return SmartListDefinition(rules=tuple(rules), logic=logic, tree=tree, triggers=triggers)
