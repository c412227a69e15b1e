"""Smart list rules and logic, compiled to one Django `Q`.

A definition is `{"logic": ..., "rules": [...]}`. Rules are numbered from 1
in the order given; `logic` is "all", "any" or an expression over rule
numbers with `and`, `or`, `not` and parentheses (`not` binds tightest, then
`and`, then `or`). Fields live in a registry so that other apps can add
their own (the vibes app adds Vibes list membership) without this app
depending on them.

The limits below keep every smart list a query that both databases run:
SQLite refuses an expression nested more than 1,000 levels deep, and it reads
`1 and 2 and 3 ...` as one level per operand, so the number of rules, how
often the logic names them and how deep it nests are all bounded (the README
lists the limits; a test runs the largest smart list they allow).
"""

import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .phones import normalize_phone

# --- Operators --------------------------------------------------------------

IS = "is"
IS_NOT = "is not"
CONTAINS = "contains"
STARTS_WITH = "starts with"
IS_EMPTY = "is empty"
GREATER = "greater"
LESS = "less"
BEFORE = "before"
AFTER = "after"
IN = "in"

# --- Limits -------------------------------------------------------------------

MAX_RULES = 100
# How often the logic may name a rule in all ("1 and 2 or 1 and 3" names four).
MAX_LOGIC_REFERENCES = 200
# Parentheses and "not"s inside one another.
MAX_LOGIC_DEPTH = 20
# The values of all the "in" rules of one smart list together.
MAX_IN_VALUES = 10_000
# Lead score is a 32-bit integer column.
NUMBER_RANGE = (-(2**31), 2**31 - 1)

OPERATOR_LABELS = {
    IS: gettext_lazy("is"),
    IS_NOT: gettext_lazy("is not"),
    CONTAINS: gettext_lazy("contains"),
    STARTS_WITH: gettext_lazy("starts with"),
    IS_EMPTY: gettext_lazy("is empty"),
    GREATER: gettext_lazy("greater than"),
    LESS: gettext_lazy("less than"),
    BEFORE: gettext_lazy("before"),
    AFTER: gettext_lazy("after"),
    IN: gettext_lazy("in"),
}

TEXT_OPS = (IS, IS_NOT, CONTAINS, STARTS_WITH, IS_EMPTY, IN)
NUMBER_OPS = (IS, IS_NOT, GREATER, LESS, IN)
BOOLEAN_OPS = (IS, IS_NOT)
DATETIME_OPS = (BEFORE, AFTER)
VALUELESS_OPS = (IS_EMPTY,)


# Neither database stores these in text: PostgreSQL refuses NUL, and an
# unpaired surrogate (possible in JSON typed into the admin) is not UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with the characters no page can carry replaced."""
    return _UNSTORABLE.sub("\ufffd", text)


def _shown(value) -> str:
    """`value` as a message may quote it: printable and short."""
    text = printable(str(value))
    return text if len(text) <= 60 else text[:59] + "…"


def check_rule_count(count: int) -> None:
    """The one place the rule limit is checked, for the tab, the admin and runs alike."""
    if count > MAX_RULES:
        raise ValidationError(
            _(
                "The smart list has %(count)s rules; a smart list holds at most %(max)s. "
                "Remove rules, or combine rules on one field with “in”."
            )
            % {"count": count, "max": MAX_RULES}
        )


# --- Fields -----------------------------------------------------------------


@dataclass(frozen=True)
class SmartListField:
    """A field a rule can filter on.

    `kind` decides how values are parsed and compared. A field with its own
    `to_q` (such as Vibes list membership) builds its condition itself from
    the whole rule.
    """

    name: str
    label: object
    kind: str
    ops: tuple
    column: str = ""
    to_q: Callable | None = None
    clean_rule: Callable | None = None
    choices: Callable | None = None
    extra_keys: tuple = field(default=())


FIELDS: dict[str, SmartListField] = {}


def register_field(smart_list_field: SmartListField):
    FIELDS[smart_list_field.name] = smart_list_field
    return smart_list_field


for _name, _label, _kind in [
    ("first_name", gettext_lazy("First name"), "text"),
    ("last_name", gettext_lazy("Last name"), "text"),
    ("email", gettext_lazy("Email address"), "text"),
    ("mobile_phone", gettext_lazy("Mobile phone"), "phone"),
    ("country", gettext_lazy("Country"), "text"),
    ("city", gettext_lazy("City"), "text"),
    ("state", gettext_lazy("State"), "text"),
    ("lead_source", gettext_lazy("Lead source"), "text"),
    ("lead_score", gettext_lazy("Lead score"), "number"),
    ("blocklisted", gettext_lazy("Blocklisted"), "boolean"),
    ("marketing_suspended", gettext_lazy("Marketing suspended"), "boolean"),
    ("created_at", gettext_lazy("Created"), "datetime"),
    ("updated_at", gettext_lazy("Updated"), "datetime"),
]:
    register_field(
        SmartListField(
            name=_name,
            label=_label,
            kind=_kind,
            column=_name,
            ops={
                "text": TEXT_OPS,
                "phone": (IS, IS_NOT, STARTS_WITH, IS_EMPTY, IN),
                "number": NUMBER_OPS,
                "boolean": BOOLEAN_OPS,
                "datetime": DATETIME_OPS,
            }[_kind],
        )
    )


# --- Rules ------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    number: int
    field: SmartListField
    op: str
    value: object
    raw: dict

    def to_q(self) -> Q:
        if self.field.to_q:
            return self.field.to_q(self)
        return _column_q(self.field, self.op, self.value)


def _column_q(smart_list_field, op, value) -> Q:
    column = smart_list_field.column
    kind = smart_list_field.kind
    if kind in ("text", "phone"):
        if op == IS:
            return Q(**{f"{column}__iexact": value})
        if op == IS_NOT:
            return ~Q(**{f"{column}__iexact": value})
        if op == CONTAINS:
            return Q(**{f"{column}__icontains": value})
        if op == STARTS_WITH:
            return Q(**{f"{column}__istartswith": value})
        if op == IS_EMPTY:
            return Q(**{column: ""})
        if op == IN:
            return Q(**{f"{column}__lower__in": [v.lower() for v in value]})
    if kind in ("number", "boolean"):
        if op == IS:
            return Q(**{column: value})
        if op == IS_NOT:
            return ~Q(**{column: value})
        if op == GREATER:
            return Q(**{f"{column}__gt": value})
        if op == LESS:
            return Q(**{f"{column}__lt": value})
        if op == IN:
            return Q(**{f"{column}__in": value})
    if kind == "datetime":
        if op == BEFORE:
            return Q(**{f"{column}__lt": value})
        if op == AFTER:
            return Q(**{f"{column}__gt": value})
    raise AssertionError(f"unhandled {kind} operator {op}")  # parse_rule refuses these first


def _as_list(value):
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _parse_number(text, where):
    try:
        number = Decimal(str(text).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():  # "NaN" and "Infinity" are Decimals too
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a number.") % {"where": where, "value": _shown(text)}
        )
    # Checked before int(): "1e999999999" is a Decimal whose int() would not fit in memory.
    low, high = NUMBER_RANGE
    if not low <= number <= high:
        raise ValidationError(
            _("%(where)s: “%(value)s” is out of range; use a number from %(low)s to %(high)s.")
            % {"where": where, "value": _shown(text), "low": low, "high": high}
        )
    if number != number.to_integral_value():
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a whole number.") % {"where": where, "value": _shown(text)}
        )
    return int(number)


def _parse_boolean(value, where):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValidationError(
        _("%(where)s: “%(value)s” is not true or false.") % {"where": where, "value": _shown(value)}
    )


def _parse_datetime(value, where):
    text = str(value).strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is not None:
                moment = datetime.datetime.combine(day, datetime.time.min)
        if moment is not None:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            # The database compares in UTC: 0001-01-01 east of UTC has no UTC time.
            moment.astimezone(datetime.UTC)
    except (ValueError, OverflowError):
        # Written like a date, but there is no such day or time ("2026-02-30", "25:99").
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a real date or time; check the month, day, hour and minute.")
            % {"where": where, "value": _shown(value)}
        ) from None
    if moment is None:
        raise ValidationError(
            _("%(where)s: “%(value)s” is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM).")
            % {"where": where, "value": _shown(value)}
        )
    return moment


def _parse_value(smart_list_field, op, value, where):
    kind = smart_list_field.kind
    if op in VALUELESS_OPS:
        return None
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        raise ValidationError(_("%(where)s: enter a value.") % {"where": where})
    if op == IN:
        items = _as_list(value)
        if not items:
            raise ValidationError(_("%(where)s: enter at least one value.") % {"where": where})
        if len(items) > MAX_IN_VALUES:  # before parsing each: a pasted file could hold a million
            raise ValidationError(_too_many_values(len(items), where))
        if kind == "number":
            return [_parse_number(item, where) for item in items]
        if kind == "phone":
            return [_parse_phone(item, where) for item in items]
        return items
    if kind == "number":
        return _parse_number(value, where)
    if kind == "boolean":
        return _parse_boolean(value, where)
    if kind == "datetime":
        return _parse_datetime(value, where)
    if kind == "phone" and op in (IS, IS_NOT):
        return _parse_phone(value, where)
    if isinstance(value, (dict, list)):
        raise ValidationError(_("%(where)s: the value must be text.") % {"where": where})
    return str(value).strip()


def _too_many_values(count, where=None) -> str:
    limits = {"count": count, "max": MAX_IN_VALUES, "where": where}
    if where:
        return (
            _("%(where)s: “in” has %(count)s values; the “in” rules of a smart list hold %(max)s at most.")
            % limits
        )
    return _("The “in” rules have %(count)s values together; a smart list holds %(max)s at most.") % limits


def _is_scalar(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # JSON's NaN is no value either database stores
    return value is None or isinstance(value, (str, int, bool))


def _check_shape(raw: dict, where) -> None:
    """Every key holds one plain value (a list of them for "value"), storable as text.

    Checked before anything reads the rule: a list as the field name, or an
    object nested a thousand levels deep as a value, is refused here rather
    than failing wherever it is used.
    """
    for key, item in raw.items():
        items = item if key == "value" and isinstance(item, list) else [item]
        if not all(_is_scalar(one) for one in items):
            if key == "value":
                raise ValidationError(
                    _("%(where)s: the value must be text, a number, or a list of them.") % {"where": where}
                )
            raise ValidationError(
                _("%(where)s: “%(key)s” must be text or a number, not a list or an object.")
                % {"where": where, "key": _shown(key)}
            )
        if any(_UNSTORABLE.search(text) for text in [key, *items] if isinstance(text, str)):
            raise ValidationError(
                _(
                    "%(where)s: “%(key)s” holds a character that cannot be stored "
                    "(NUL or an unpaired surrogate)."
                )
                % {"where": where, "key": _shown(key)}
            )


def _parse_phone(value, where):
    try:
        return normalize_phone(str(value))
    except ValidationError as error:
        raise ValidationError(f"{where}: {error.messages[0]}") from None


def parse_rule(number: int, raw) -> Rule:
    where = _("Rule %(number)s") % {"number": number}
    if not isinstance(raw, dict):
        raise ValidationError(
            _("%(where)s: a rule needs a field, an operator and a value.") % {"where": where}
        )
    _check_shape(raw, where)
    name = raw.get("field")
    smart_list_field = FIELDS.get(name) if isinstance(name, str) else None
    if smart_list_field is None:
        known = ", ".join(sorted(FIELDS))
        raise ValidationError(
            _("%(where)s: unknown field “%(field)s”. Known fields: %(known)s.")
            % {"where": where, "field": _shown(name), "known": known}
        )
    op = raw.get("op")
    if op not in smart_list_field.ops:
        allowed = ", ".join(f"“{o}”" for o in smart_list_field.ops)
        raise ValidationError(
            _("%(where)s: “%(op)s” does not apply to %(field)s; use one of %(allowed)s.")
            % {"where": where, "op": _shown(op), "field": smart_list_field.label, "allowed": allowed}
        )
    unknown_keys = sorted(set(raw) - {"field", "op", "value", *smart_list_field.extra_keys})
    if unknown_keys:
        raise ValidationError(
            _("%(where)s: unknown key %(keys)s; a rule of this field has %(known)s.")
            % {
                "where": where,
                "keys": ", ".join(f"“{_shown(key)}”" for key in unknown_keys),
                "known": ", ".join(
                    f"“{key}”" for key in ("field", "op", "value", *smart_list_field.extra_keys)
                ),
            }
        )
    if smart_list_field.clean_rule:
        value = smart_list_field.clean_rule(raw, where)
    else:
        value = _parse_value(smart_list_field, op, raw.get("value"), where)
    return Rule(number=number, field=smart_list_field, op=op, value=value, raw=raw)


# --- Logic ------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+)|(and|or|not)\b|(\()|(\)))", re.IGNORECASE)


@dataclass(frozen=True)
class Ref:
    number: int


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class And:
    operands: tuple


@dataclass(frozen=True)
class Or:
    operands: tuple


def _tokenize(logic: str):
    tokens = []
    position = 0
    text = logic.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            bad = text[position:].strip().split()[0] if text[position:].strip() else ""
            raise ValidationError(
                _("Logic: “%(token)s” is not a rule number, “and”, “or”, “not” or a parenthesis.")
                % {"token": _shown(bad)}
            )
        number, word, left, right = match.groups()
        if number:
            tokens.append(("number", int(number)))
        elif word:
            tokens.append((word.lower(), word))
        elif left:
            tokens.append(("(", "("))
        else:
            tokens.append((")", ")"))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent, so the nesting is bounded before Python's own limit is near."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def take(self):
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self):
        if not self.tokens:
            raise ValidationError(_("Logic: enter “all”, “any” or an expression such as “1 and 2”."))
        node = self.expression()
        if self.index < len(self.tokens):
            raise ValidationError(
                _("Logic: unexpected “%(token)s” after a complete expression.")
                % {"token": _shown(self.tokens[self.index][1])}
            )
        return node

    def expression(self):
        operands = [self.term()]
        while self.peek() == "or":
            self.take()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self):
        operands = [self.factor()]
        while self.peek() == "and":
            self.take()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def nest(self):
        self.depth += 1
        if self.depth > MAX_LOGIC_DEPTH:
            raise ValidationError(
                _(
                    "Logic: parentheses and “not” are nested more than %(max)s levels deep; "
                    "write it with fewer levels."
                )
                % {"max": MAX_LOGIC_DEPTH}
            )

    def factor(self):
        kind = self.peek()
        if kind == "not":
            self.take()
            self.nest()
            node = Not(self.factor())
            self.depth -= 1
            return node
        if kind == "(":
            self.take()
            self.nest()
            node = self.expression()
            if self.peek() != ")":
                raise ValidationError(_("Logic: a “(” is never closed."))
            self.take()
            self.depth -= 1
            return node
        if kind == "number":
            return Ref(self.take()[1])
        if kind is None:
            raise ValidationError(_("Logic: the expression ends too early."))
        raise ValidationError(
            _("Logic: expected a rule number, “not” or “(”, found “%(token)s”.")
            % {"token": _shown(self.take()[1])}
        )


def parse_logic(logic: str, rule_count: int):
    """Parse `logic` into a tree of Ref/Not/And/Or over rule numbers."""
    text = (logic or "").strip()
    if text.lower() in ("all", ""):
        return And(tuple(Ref(n) for n in range(1, rule_count + 1)))
    if text.lower() == "any":
        return Or(tuple(Ref(n) for n in range(1, rule_count + 1)))
    tokens = _tokenize(text)
    references = sum(1 for kind, _value in tokens if kind == "number")
    if references > MAX_LOGIC_REFERENCES:
        raise ValidationError(
            _("Logic: it names rules %(count)s times; the logic may name rules at most %(max)s times in all.")
            % {"count": references, "max": MAX_LOGIC_REFERENCES}
        )
    tree = _Parser(tokens).parse()
    used = set(_refs(tree))
    for number in sorted(used):
        if not 1 <= number <= rule_count:
            raise ValidationError(
                _("Logic: there is no rule %(number)s (the rules are numbered 1 to %(count)s).")
                % {"number": number, "count": rule_count}
                if rule_count
                else _("Logic: there is no rule %(number)s (there are no rules).") % {"number": number}
            )
    unused = [str(n) for n in range(1, rule_count + 1) if n not in used]
    if unused:
        raise ValidationError(
            _("Logic: rule %(numbers)s is not used; use every rule or remove it.")
            % {"numbers": ", ".join(unused)}
        )
    return tree


def _refs(node):
    if isinstance(node, Ref):
        yield node.number
    elif isinstance(node, Not):
        yield from _refs(node.operand)
    else:
        for operand in node.operands:
            yield from _refs(operand)


# --- Definitions --------------------------------------------------------------


@dataclass(frozen=True)
class SmartListDefinition:
    rules: tuple
    logic: str
    tree: object

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
    unknown_keys = sorted(set(definition) - {"logic", "rules"})
    if unknown_keys:
        raise ValidationError(
            _("The smart list has unknown keys: %(keys)s.")
            % {"keys": ", ".join(_shown(key) for key in unknown_keys)}
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
        errors.append(_too_many_values(in_values))
    tree = None
    try:
        tree = parse_logic(logic, len(raw_rules))
    except ValidationError as error:
        errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return SmartListDefinition(rules=tuple(rules), logic=logic, tree=tree)


def field_choices():
    """(name, label) for every registered field, for forms."""
    return [(f.name, f.label) for f in FIELDS.values()]
