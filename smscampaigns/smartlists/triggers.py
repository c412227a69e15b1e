"""Triggers: the part of a smart list that makes its campaign a trigger campaign.

A definition may hold, beside its filters, `"triggers": [{"trigger":
<name>, <constraint>: <value>, ...}]`. Each trigger names the kind of
activity it waits for (smscampaigns.Activity) and constraints on the
activity's attributes; any one trigger that matches an activity fires the
campaign for its person. Triggers live in a registry, like the filters'
field types, so that another app adds its own (the vibes app adds
"Subscribes to Vibes List") without this app knowing about it.
"""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .limits import printable, shown

MAX_TRIGGERS = 20
MAX_TEXT = 160  # a text constraint: what a reply may contain, a value a field may take


@dataclass(frozen=True)
class TriggerConstraint:
    """A constraint of a trigger: an attribute of the activity it must have.

    `choices()` gives what the Smart List tab offers, as (value, label)
    pairs; an optional constraint left blank matches any value.
    """

    key: str
    label: object
    choices: Any  # a callable returning (value, label) pairs; None for text typed in
    required: bool = True

    @property
    def is_text(self) -> bool:
        return self.choices is None

    def offered(self):
        """What the Smart List tab offers: (value, label) pairs, or None for a text box."""
        return None if self.is_text else self.choices()

    def clean(self, value, where: str):
        """The stored value (an id as text, or "" for an optional constraint left blank)."""
        value = printable(str(value)).strip() if value is not None else ""
        if not value:
            if self.required:
                raise ValidationError(_("%(where)s: choose %(what)s.") % {"where": where, "what": self.label})
            return ""
        if self.is_text:
            if len(value) > MAX_TEXT:
                raise ValidationError(
                    _("%(where)s: %(what)s is at most %(max)s characters.")
                    % {"where": where, "what": self.label, "max": MAX_TEXT}
                )
            return value
        if value not in {str(choice) for choice, _label in self.choices()}:
            raise ValidationError(
                _("%(where)s: “%(value)s” is not one of the choices for %(what)s.")
                % {"where": where, "value": shown(value), "what": self.label}
            )
        return value


@dataclass(frozen=True)
class SmartListTrigger:
    """A kind of trigger: the activity it waits for, and its constraints."""

    name: str
    label: object
    activity_kind: str
    constraints: tuple = ()

    def clean(self, raw: dict, where: str) -> dict:
        errors, values = [], {}
        for constraint in self.constraints:
            try:
                values[constraint.key] = constraint.clean(raw.get(constraint.key), where)
            except ValidationError as error:
                errors.extend(error.messages)
        if errors:
            raise ValidationError(errors)
        return values

    def matches(self, values: dict, attributes: dict, *, campaign_id: int | None = None) -> bool:
        """True when the activity's attributes meet every constraint given a value.

        `campaign_id`: the campaign whose trigger this is, for a trigger about
        the campaign itself ("Campaign is Requested")."""
        return all(not value or str(attributes.get(key, "")) == value for key, value in values.items())


@dataclass(frozen=True)
class Trigger:
    """One trigger of a smart list, checked."""

    number: int
    kind: SmartListTrigger
    values: dict

    @property
    def activity_kind(self) -> str:
        return self.kind.activity_kind

    def matches(self, activity, *, campaign_id: int | None = None) -> bool:
        return activity.kind == self.kind.activity_kind and self.kind.matches(
            self.values, activity.attributes, campaign_id=campaign_id
        )

    def describe(self) -> str:
        """The trigger in words: "Subscribes to Vibes List: SMS Newsletter"."""
        chosen = []
        for constraint in self.kind.constraints:
            value = self.values.get(constraint.key)
            if value:
                chosen.append(
                    f"“{value}”" if constraint.is_text else dict(constraint.choices()).get(value, value)
                )
        if not chosen:
            return str(self.kind.label)
        return _("%(trigger)s: %(constraints)s") % {
            "trigger": self.kind.label,
            "constraints": ", ".join(chosen),
        }


TRIGGERS: dict[str, SmartListTrigger] = {}


def register_trigger(trigger: SmartListTrigger) -> SmartListTrigger:
    TRIGGERS[trigger.name] = trigger
    return trigger


def trigger_where(number: int) -> str:
    return _("Trigger %(number)s") % {"number": number}


def parse_triggers(raw_triggers) -> tuple[Trigger, ...]:
    """Check a definition's triggers, collecting every problem into one ValidationError."""
    if raw_triggers is None:
        return ()
    if not isinstance(raw_triggers, list):
        raise ValidationError(_('"triggers" must be a list of triggers.'))
    if len(raw_triggers) > MAX_TRIGGERS:
        raise ValidationError(
            _("A smart list has at most %(max)s triggers; this one has %(count)s.")
            % {"max": MAX_TRIGGERS, "count": len(raw_triggers)}
        )
    errors, triggers = [], []
    for number, raw in enumerate(raw_triggers, start=1):
        where = trigger_where(number)
        kind = TRIGGERS.get(raw.get("trigger")) if isinstance(raw, dict) else None
        if kind is None:
            name = raw.get("trigger") if isinstance(raw, dict) else raw
            errors.append(
                _("%(where)s: “%(name)s” is not a trigger.") % {"where": where, "name": shown(str(name))}
            )
            continue
        try:
            triggers.append(Trigger(number, kind, kind.clean(raw, where)))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return tuple(triggers)
