"""Forms of the Marketing Activities screens. They read and check input; services write."""

import contextlib

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from smscampaigns.smartlists import (
    FIELDS,
    MAX_RULES,
    OPERATOR_LABELS,
    VALUELESS_OPS,
    check_rule_count,
    parse_definition,
    parse_logic,
    parse_rule,
    printable,
)
from vibes.models import AcquisitionCampaign, Subscription, VibesList

from .models import Folder, Outcome, SmartCampaign, SmsMessage


def add_service_errors(form: forms.Form, error: ValidationError, *, default_field: str | None = None) -> None:
    """Show a service's ValidationError on the form: at the field it names when
    the form has that field, else at `default_field` (e.g. a unique-name error
    belongs next to the name), else above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            if name in form.fields:
                form.add_error(name, errors)
            elif name == NON_FIELD_ERRORS and default_field:
                form.add_error(default_field, errors)
            else:
                form.add_error(None, errors)
    else:
        form.add_error(default_field, error)


class Form(forms.Form):
    """Labels without the trailing colon: the layout sets them apart."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


# --- The tree -------------------------------------------------------------------


class NameForm(Form):
    name = forms.CharField(label=_("Name"), max_length=200, widget=forms.TextInput(attrs={"autofocus": True}))


class SmsMessageCreateForm(NameForm):
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 3}), strip=False)


def folder_paths(exclude: Folder | None = None) -> list[tuple[int, str]]:
    """Every folder as (pk, "Top › Sub › Folder"), sorted by path, in one query."""
    folders = {f.pk: f for f in Folder.objects.only("id", "name", "parent_id")}

    def path(folder):
        names = []
        seen = set()
        while folder is not None and folder.pk not in seen:
            seen.add(folder.pk)
            names.append(folder.name)
            folder = folders.get(folder.parent_id)
        return " › ".join(reversed(names))

    choices = [(pk, path(folder)) for pk, folder in folders.items() if exclude is None or pk != exclude.pk]
    return sorted(choices, key=lambda choice: choice[1].lower())


TOP_LEVEL = ""


class FolderMoveForm(Form):
    parent = forms.TypedChoiceField(label=_("Move to"), coerce=int, empty_value=None, required=False)

    def __init__(self, *args, folder: Folder, **kwargs):
        super().__init__(*args, **kwargs)
        # The folder's own subfolders stay in the list: choosing one gets the
        # model's clear refusal rather than a silently missing option.
        self.fields["parent"].choices = [(TOP_LEVEL, _("(top level)")), *folder_paths(exclude=folder)]
        self.initial.setdefault("parent", folder.parent_id or TOP_LEVEL)

    def clean_parent(self):
        pk = self.cleaned_data["parent"]
        return Folder.objects.get(pk=pk) if pk else None


class ProgramMoveForm(Form):
    folder = forms.TypedChoiceField(label=_("Move to folder"), coerce=int)

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["folder"].choices = folder_paths()
        self.initial.setdefault("folder", program.folder_id)

    def clean_folder(self):
        return Folder.objects.get(pk=self.cleaned_data["folder"])


# --- SMS message ----------------------------------------------------------------


class SmsMessageForm(Form):
    """Name and text. The text's rules (tokens, 1,600 characters) are the
    model's, checked by the service, so their messages are the model's too."""

    name = forms.CharField(label=_("Name"), max_length=200)
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 7}), strip=False)


# --- Flow step ------------------------------------------------------------------


class FlowStepForm(Form):
    """A step's dropdowns as posted on every change. Choices are checked against
    the whole tables: a stale pairing (a campaign of another list) is not an
    error here, the service clears it."""

    sms_message = forms.ModelChoiceField(queryset=SmsMessage.objects.all(), required=False)
    vibes_list = forms.ModelChoiceField(queryset=VibesList.objects.all(), required=False)
    acquisition_campaign = forms.ModelChoiceField(queryset=AcquisitionCampaign.objects.all(), required=False)


# --- Schedule -------------------------------------------------------------------


class ScheduleForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        # The date picker offers no time that has passed; the model refuses one all the same.
        self.fields["run_at"].widget.attrs["min"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")

    class Meta:
        model = SmartCampaign
        fields = ["qualification_rule", "schedule", "run_at", "run_time", "run_weekday"]
        widgets = {
            "qualification_rule": forms.RadioSelect,
            "schedule": forms.RadioSelect,
            "run_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "run_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def _post_clean(self):
        # The service validates the campaign (full_clean) and stores only the
        # fields the chosen schedule uses.
        pass


# --- Results --------------------------------------------------------------------


class ResultsFilterForm(Form):
    outcome = forms.ChoiceField(label=_("Outcome"), required=False)
    replied = forms.BooleanField(label=_("Replied"), required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        outcomes = [(outcome.code, capfirst(outcome.label)) for outcome in Outcome]
        self.fields["outcome"].choices = [("", _("All outcomes")), *outcomes]

    def outcome_value(self) -> int | None:
        code = self.cleaned_data.get("outcome") if self.is_valid() else None
        return Outcome[code.upper()].value if code else None


# --- Smart list -----------------------------------------------------------------

MEMBERSHIP_STATUSES = [
    ("subscribed", Subscription.Status.SUBSCRIBED.label),
    ("pending", Subscription.Status.PENDING.label),
    ("unsubscribed", Subscription.Status.UNSUBSCRIBED.label),
    ("any", _("any status")),
]


class RuleRow:
    """One rule as the marketer typed it, with the widgets its field needs."""

    def __init__(self, index: int, raw: dict):
        self.index = index
        self.raw = raw
        self.error = ""

    @property
    def number(self):
        return self.index + 1

    @property
    def field(self):
        name = self.raw.get("field")
        return FIELDS.get(name) if isinstance(name, str) else None

    @property
    def field_name(self):
        return self.raw.get("field", "")

    @property
    def op(self):
        return self.raw.get("op", "")

    @property
    def value(self):
        value = self.raw.get("value", "")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        # A value stored before the smart list rules refused unstorable characters.
        return "" if value is None else printable(str(value))

    @property
    def status(self):
        return self.raw.get("status", "subscribed")

    @property
    def operators(self):
        ops = self.field.ops if self.field else ()
        return [(op, OPERATOR_LABELS.get(op, op)) for op in ops]

    @property
    def needs_value(self):
        return self.op not in VALUELESS_OPS

    @property
    def value_choices(self):
        """Choices for fields that offer them (the Vibes lists), else None."""
        if self.field and self.field.choices:
            return [(str(pk), label) for pk, label in self.field.choices()]
        if self.field and self.field.kind == "boolean":
            return [("true", _("yes")), ("false", _("no"))]
        return None

    @property
    def input_type(self):
        kind = self.field.kind if self.field else "text"
        if kind == "number" and self.op != "in":
            return "number"
        return "text"

    @property
    def placeholder(self):
        kind = self.field.kind if self.field else "text"
        if self.op == "in":
            return _("values, separated by commas")
        if kind == "datetime":
            return _("YYYY-MM-DD or YYYY-MM-DD HH:MM")
        return ""


class SmartListEditor:
    """The smart list's rules and logic as a form.

    Not a formset: each row's operators and value widget depend on the field
    chosen in that row, and errors come from the smart list parser (per rule,
    "Rule N: …", and for the logic, "Logic: …"), so the rows are plain dicts
    checked with `parse_rule` and `parse_logic`.
    """

    def __init__(self, *, rules: list[dict], logic: str):
        self.rows = [RuleRow(index, dict(raw)) for index, raw in enumerate(rules)]
        self.logic = logic if logic is not None else "all"
        self.logic_error = ""
        self.errors: list[str] = []

    @classmethod
    def from_definition(cls, definition) -> "SmartListEditor":
        definition = definition if isinstance(definition, dict) else {}
        rules = definition.get("rules", [])
        rules = [raw if isinstance(raw, dict) else {} for raw in rules] if isinstance(rules, list) else []
        logic = definition.get("logic", "all")
        # A stored definition of another shape shows its problems (is_valid), not a crash.
        editor = cls(rules=rules[:MAX_RULES], logic=logic if isinstance(logic, str) else "")
        try:
            check_rule_count(len(rules))
        except ValidationError as error:
            # Stored before the limit: thousands of rows would take long to show, and
            # more than the browser may post back, so the tab offers the first ones.
            editor.errors = [
                *error.messages,
                _(
                    "Only the first %(max)s are shown, and saving keeps only these. "
                    "Until the smart list is within the limit, the campaign cannot run."
                )
                % {"max": MAX_RULES},
            ]
        return editor

    @classmethod
    def from_post(cls, data) -> "SmartListEditor":
        try:
            # Every rule posts fields of its own, so there are never more rules than fields.
            # Rules beyond the limit are kept, for the marketer to see the limit and remove some.
            count = min(int(data.get("rule_count", 0)), len(data))
        except ValueError:
            count = 0
        rules = []
        for index in range(count):
            prefix = f"rule-{index}-"
            name = data.get(prefix + "field", "")
            if name not in FIELDS:
                name = next(iter(FIELDS))
            field = FIELDS[name]
            op = data.get(prefix + "op", "")
            if op not in field.ops:
                op = field.ops[0]  # the field changed: start from its first operator
            rule = {"field": name, "op": op}
            if op not in VALUELESS_OPS:
                rule["value"] = data.get(prefix + "value", "").strip()
            if field.kind == "vibes_list":
                rule["status"] = data.get(prefix + "status") or "subscribed"
            rules.append(rule)
        mode = data.get("logic_mode", "all")
        logic = mode if mode in ("all", "any") else data.get("logic", "").strip()
        return cls(rules=rules, logic=logic)

    @property
    def logic_mode(self):
        return self.logic.lower() if self.logic.lower() in ("all", "any") else "expression"

    @property
    def logic_expression(self):
        return self.logic if self.logic_mode == "expression" else ""

    def add_rule(self) -> None:
        first = next(iter(FIELDS.values()))
        self.rows.append(RuleRow(len(self.rows), {"field": first.name, "op": first.ops[0], "value": ""}))

    def remove_rule(self, index: int) -> None:
        rules = [row.raw for row in self.rows if row.index != index]
        self.rows = [RuleRow(i, raw) for i, raw in enumerate(rules)]

    def definition(self) -> dict:
        rules = []
        for row in self.rows:
            rule = dict(row.raw)
            if row.field and row.field.kind == "vibes_list" and str(rule.get("value", "")).isdecimal():
                with contextlib.suppress(ValueError):  # too many digits: the rule says "no such list"
                    rule["value"] = int(rule["value"])
            rules.append(rule)
        return {"logic": self.logic, "rules": rules}

    def is_valid(self) -> bool:
        definition = self.definition()
        for row, raw in zip(self.rows, definition["rules"], strict=True):
            try:
                parse_rule(row.number, raw)
            except ValidationError as error:
                row.error = " ".join(error.messages)
        try:
            parse_logic(self.logic, len(self.rows))
        except ValidationError as error:
            self.logic_error = " ".join(error.messages)
        try:
            check_rule_count(len(self.rows))
        except ValidationError as error:
            self.errors = [*self.errors, *error.messages]
        if not (self.logic_error or self.errors or any(row.error for row in self.rows)):
            try:  # what only the whole smart list can say, such as its "in" values in all
                parse_definition(definition)
            except ValidationError as error:
                self.errors = error.messages
        return not (self.logic_error or any(row.error for row in self.rows) or self.errors)

    @property
    def field_choices(self):
        return [(f.name, f.label) for f in FIELDS.values()]

    status_choices = MEMBERSHIP_STATUSES
