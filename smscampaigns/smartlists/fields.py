"""The operators, and the fields a rule can filter on.

A field's type says everything that depends on it: which operators apply,
how a rule's value is read and checked, the condition the rule makes, and
how the Smart List tab offers the value. Fields live in a registry so that
another app adds its own type (the vibes app adds Vibes list membership)
without this app knowing about it, and without the tab special-casing it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .limits import MAX_IN_VALUES, too_many_values
from .values import (
    FALSE_WORDS,
    TRUE_WORDS,
    as_list,
    parse_boolean,
    parse_datetime_value,
    parse_number,
    parse_phone,
)

# --- Operators ------------------------------------------------------------------

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
# An activity filter's SMS message when any one will do ("Was Sent SMS" of any message).
IS_ANY = "is any"

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
    IS_ANY: gettext_lazy("is any"),
}

VALUELESS_OPS = (IS_EMPTY, IS_ANY)


def not_offered(value: str) -> str:
    """How the tab names a stored choice it no longer offers (it stays chosen)."""
    return _("“%(value)s” (not offered)") % {"value": value}


# --- Field types ------------------------------------------------------------------


@dataclass(frozen=True)
class RulePart:
    """A key of a rule beyond field, operator and value (a Vibes list rule's
    status, an activity filter's date), with what the Smart List tab offers for it."""

    key: str
    label: object  # names the rule: "Rule %(number)s: …"
    # (value, label) pairs, or a function returning them (choices read from
    # the database); empty for a value typed in, as `input_type` says.
    choices: tuple | Callable = ()
    default: str = ""
    input_type: str = "text"
    placeholder: object = ""
    # Shown and stored only while another part holds one of these values
    # ("days" only while "when" is "in past"): (key, values).
    shown_if: tuple | None = None
    # Choosing it redraws the rule, so that the parts it shows follow.
    redraws: bool = False

    def offered(self) -> list | None:
        """The dropdown's choices, or None for a value typed in."""
        if callable(self.choices):
            return list(self.choices())
        return list(self.choices) if self.choices else None

    def applies(self, rule: dict) -> bool:
        """Whether the rule `rule` (its parts as stored or posted) has this part."""
        if self.shown_if is None:
            return True
        key, values = self.shown_if
        return rule.get(key) in values


@dataclass(frozen=True)
class SmartListField:
    """A field a rule can filter on; a subclass per type of field."""

    name: str
    label: object

    ops: ClassVar[tuple] = ()
    # What a rule of this field holds besides "field", "op" and "value".
    parts: ClassVar[tuple[RulePart, ...]] = ()
    # How the tab offers a value typed in (an "in" rule's values are always text).
    input_type: ClassVar[str] = "text"
    placeholder: ClassVar[object] = ""

    def clean(self, raw: dict, where: str):
        """The value of the rule `raw` as `to_q` takes it, or a ValidationError naming `where`."""
        op = raw.get("op")
        value = raw.get("value")
        if op in VALUELESS_OPS:
            return None
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            raise ValidationError(_("%(where)s: enter a value.") % {"where": where})
        if op == IN:
            items = as_list(value)
            if not items:
                raise ValidationError(_("%(where)s: enter at least one value.") % {"where": where})
            if len(items) > MAX_IN_VALUES:  # before reading each: a pasted file could hold a million
                raise ValidationError(too_many_values(len(items), where))
            return [self.clean_item(item, where) for item in items]
        return self.clean_one(op, value, where)

    def clean_item(self, item: str, where: str):
        """One value of an "in" rule."""
        return item

    def clean_one(self, op: str, value, where: str):
        """The value of a rule of any operator but "in"."""
        if isinstance(value, (dict, list)):
            raise ValidationError(_("%(where)s: the value must be text.") % {"where": where})
        return str(value).strip()

    def to_q(self, rule) -> Q:
        raise NotImplementedError

    # --- The Smart List tab

    def value_choices(self) -> list[tuple[str, object]] | None:
        """The values offered in a dropdown, or None for a value typed in."""
        return None

    def unoffered_label(self, value: str) -> str:
        return not_offered(value)

    def shown_value(self, text: str) -> str:
        """A stored value as the tab shows it."""
        return text

    def stored_value(self, text: str):
        """A value as the tab posts it, as the rule stores it."""
        return text


def _lookup(column: str, lookup: str, value) -> Q:
    return Q(**{f"{column}__{lookup}": value})


def _is_or_is_not(column: str, op: str, value) -> Q:
    condition = Q(**{column: value})
    return ~condition if op == IS_NOT else condition


class TextField(SmartListField):
    """Compared ignoring case."""

    ops = (IS, IS_NOT, CONTAINS, STARTS_WITH, IS_EMPTY, IN)
    lookups: ClassVar[dict] = {
        IS: "iexact",
        IS_NOT: "iexact",
        CONTAINS: "icontains",
        STARTS_WITH: "istartswith",
    }

    def to_q(self, rule) -> Q:
        column, op, value = self.name, rule.op, rule.value
        if op == IS_EMPTY:
            return Q(**{column: ""})
        if op == IN:
            return _lookup(column, "lower__in", [item.lower() for item in value])
        condition = _lookup(column, self.lookups[op], value)
        return ~condition if op == IS_NOT else condition


class PhoneField(TextField):
    """A number is compared in E.164 form, however it is written."""

    ops = (IS, IS_NOT, STARTS_WITH, IS_EMPTY, IN)

    def clean_item(self, item, where):
        return parse_phone(item, where)

    def clean_one(self, op, value, where):
        if op in (IS, IS_NOT):
            return parse_phone(value, where)
        return super().clean_one(op, value, where)


class NumberField(SmartListField):
    ops = (IS, IS_NOT, GREATER, LESS, IN)
    input_type = "number"

    def clean_item(self, item, where):
        return parse_number(item, where)

    def clean_one(self, op, value, where):
        return parse_number(value, where)

    def to_q(self, rule) -> Q:
        if rule.op in (IS, IS_NOT):
            return _is_or_is_not(self.name, rule.op, rule.value)
        return _lookup(self.name, {GREATER: "gt", LESS: "lt", IN: "in"}[rule.op], rule.value)


class BooleanField(SmartListField):
    ops = (IS, IS_NOT)

    def clean_one(self, op, value, where):
        return parse_boolean(value, where)

    def to_q(self, rule) -> Q:
        return _is_or_is_not(self.name, rule.op, rule.value)

    def value_choices(self):
        return [("true", gettext_lazy("yes")), ("false", gettext_lazy("no"))]

    def shown_value(self, text):
        # A stored true, "yes" or "1" is the tab's "true" (and so on): the same rule.
        word = text.strip().lower()
        return "true" if word in TRUE_WORDS else "false" if word in FALSE_WORDS else text


class DateTimeField(SmartListField):
    ops = (BEFORE, AFTER)
    placeholder = gettext_lazy("YYYY-MM-DD or YYYY-MM-DD HH:MM")

    def clean_one(self, op, value, where):
        return parse_datetime_value(value, where)

    def to_q(self, rule) -> Q:
        return _lookup(self.name, "lt" if rule.op == BEFORE else "gt", rule.value)


# --- The registry -------------------------------------------------------------------

FIELDS: dict[str, SmartListField] = {}


def register_field(smart_list_field: SmartListField) -> SmartListField:
    FIELDS[smart_list_field.name] = smart_list_field
    return smart_list_field


def registered_parts() -> dict[str, RulePart]:
    """Every part the registered fields declare, by key."""
    parts: dict[str, RulePart] = {}
    for smart_list_field in FIELDS.values():
        for part in smart_list_field.parts:
            parts.setdefault(part.key, part)
    return parts


# The lead's own fields, each filtering on its column of the same name.
for _field in (
    TextField("first_name", gettext_lazy("First name")),
    TextField("last_name", gettext_lazy("Last name")),
    TextField("email", gettext_lazy("Email address")),
    PhoneField("mobile_phone", gettext_lazy("Mobile phone")),
    TextField("country", gettext_lazy("Country")),
    TextField("city", gettext_lazy("City")),
    TextField("state", gettext_lazy("State")),
    TextField("lead_source", gettext_lazy("Lead source")),
    NumberField("lead_score", gettext_lazy("Lead score")),
    BooleanField("blocklisted", gettext_lazy("Blocklisted")),
    BooleanField("marketing_suspended", gettext_lazy("Marketing suspended")),
    DateTimeField("created_at", gettext_lazy("Created")),
    DateTimeField("updated_at", gettext_lazy("Updated")),
):
    register_field(_field)
