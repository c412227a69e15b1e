"""One rule of a smart list: `{"field": …, "op": …, "value": …}`, read and checked."""

import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from .fields import FIELDS, SmartListField
from .limits import UNSTORABLE, shown

RULE_KEYS = ("field", "op", "value")


@dataclass(frozen=True)
class Rule:
    number: int
    field: SmartListField
    op: str
    value: object
    raw: dict

    def to_q(self) -> Q:
        return self.field.to_q(self)


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
                % {"where": where, "key": shown(key)}
            )
        if any(UNSTORABLE.search(text) for text in [key, *items] if isinstance(text, str)):
            raise ValidationError(
                _(
                    "%(where)s: “%(key)s” holds a character that cannot be stored "
                    "(NUL or an unpaired surrogate)."
                )
                % {"where": where, "key": shown(key)}
            )


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
            % {"where": where, "field": shown(name), "known": known}
        )
    op = raw.get("op")
    if op not in smart_list_field.ops:
        allowed = ", ".join(f"“{o}”" for o in smart_list_field.ops)
        raise ValidationError(
            _("%(where)s: “%(op)s” does not apply to %(field)s; use one of %(allowed)s.")
            % {"where": where, "op": shown(op), "field": smart_list_field.label, "allowed": allowed}
        )
    keys = (*RULE_KEYS, *(part.key for part in smart_list_field.parts))
    unknown_keys = sorted(set(raw) - set(keys))
    if unknown_keys:
        raise ValidationError(
            _("%(where)s: unknown key %(keys)s; a rule of this field has %(known)s.")
            % {
                "where": where,
                "keys": ", ".join(f"“{shown(key)}”" for key in unknown_keys),
                "known": ", ".join(f"“{key}”" for key in keys),
            }
        )
    value = smart_list_field.clean(raw, where)
    return Rule(number=number, field=smart_list_field, op=op, value=value, raw=raw)
