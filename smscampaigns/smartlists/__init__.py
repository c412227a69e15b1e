"""Smart list rules and logic, compiled to one Django `Q`.

A definition is `{"logic": ..., "rules": [...]}`. Rules are numbered from 1
in the order given; `logic` is "all", "any" or an expression over rule
numbers with `and`, `or`, `not` and parentheses.

- `fields.py`: the operators, and the fields a rule can filter on (a registry
  other apps add to: the vibes app adds Vibes list membership)
- `values.py`: reading a rule's value (numbers, yes/no, dates, phone numbers)
- `rules.py`: one rule, read and checked
- `logic.py`: the logic expression's parser
- `definition.py`: the whole smart list, checked and compiled
- `triggers.py`: the triggers that make a campaign a trigger campaign (a
  registry too: the vibes app adds "Subscribes to Vibes List")
- `limits.py`: how large a smart list may be, so that both databases run it
- `activity.py`: filters on what people did (an SMS sent, a reply), with a
  date-of-activity constraint and a "not" form; the apps owning the records
  define them
"""

from .activity import DATE_PARTS, ActivityField, ActivityTime, read_activity_time
from .definition import SmartListDefinition, parse_definition
from .fields import (
    AFTER,
    BEFORE,
    CONTAINS,
    FIELDS,
    GREATER,
    IN,
    IS,
    IS_ANY,
    IS_EMPTY,
    IS_NOT,
    LESS,
    OPERATOR_LABELS,
    STARTS_WITH,
    VALUELESS_OPS,
    RulePart,
    SmartListField,
    not_offered,
    register_field,
    registered_parts,
)
from .limits import (
    MAX_IN_VALUES,
    MAX_LOGIC_DEPTH,
    MAX_LOGIC_REFERENCES,
    MAX_PAST_DAYS,
    MAX_RULES,
    NUMBER_RANGE,
    check_rule_count,
    printable,
)
from .logic import And, Not, Or, Ref, parse_logic
from .rules import Rule, parse_rule
from .triggers import (
    TRIGGERS,
    SmartListTrigger,
    Trigger,
    TriggerConstraint,
    parse_triggers,
    register_trigger,
)

__all__ = [
    "DATE_PARTS",
    "MAX_PAST_DAYS",
    "ActivityField",
    "ActivityTime",
    "read_activity_time",
    "AFTER",
    "BEFORE",
    "CONTAINS",
    "FIELDS",
    "GREATER",
    "IN",
    "IS",
    "IS_ANY",
    "IS_EMPTY",
    "IS_NOT",
    "LESS",
    "MAX_IN_VALUES",
    "MAX_LOGIC_DEPTH",
    "MAX_LOGIC_REFERENCES",
    "MAX_RULES",
    "NUMBER_RANGE",
    "OPERATOR_LABELS",
    "STARTS_WITH",
    "TRIGGERS",
    "VALUELESS_OPS",
    "And",
    "Not",
    "Or",
    "Ref",
    "Rule",
    "RulePart",
    "SmartListDefinition",
    "SmartListField",
    "SmartListTrigger",
    "Trigger",
    "TriggerConstraint",
    "check_rule_count",
    "not_offered",
    "parse_definition",
    "parse_logic",
    "parse_rule",
    "parse_triggers",
    "printable",
    "register_field",
    "register_trigger",
    "registered_parts",
]
