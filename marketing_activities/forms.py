"""Forms of the Marketing Activities screens. They read and check input; services write."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MinValueValidator
from django.forms.models import fields_for_model, model_to_dict
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from smscampaigns.smartlists import (
    FIELDS,
    IN,
    MAX_RULES,
    OPERATOR_LABELS,
    TRIGGERS,
    VALUELESS_OPS,
    check_rule_count,
    not_offered,
    parse_definition,
    parse_logic,
    parse_rule,
    parse_triggers,
    printable,
    registered_parts,
)
from vibes.models import AcquisitionCampaign, VibesList

from .models import MAX_WAIT, FlowStep, Folder, Outcome, SmartCampaign, SmsMessage


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
    dont_track_links = forms.BooleanField(label=_("Don't track links"), required=False)


# --- Flow step ------------------------------------------------------------------


class FlowStepForm(Form):
    """A step's dropdowns as posted on every change. Choices are checked against
    the whole tables: a stale pairing (a campaign of another list) is not an
    error here, the service clears it."""

    sms_message = forms.ModelChoiceField(queryset=SmsMessage.objects.all(), required=False)
    vibes_list = forms.ModelChoiceField(queryset=VibesList.objects.all(), required=False)
    acquisition_campaign = forms.ModelChoiceField(queryset=AcquisitionCampaign.objects.all(), required=False)
    requested_campaign = forms.ModelChoiceField(queryset=SmartCampaign.objects.all(), required=False)
    # Remove from Flow: empty is this campaign.
    remove_from_campaign = forms.ModelChoiceField(
        queryset=SmartCampaign.objects.all(),
        required=False,
        error_messages={"invalid_choice": _("That campaign no longer exists: choose another one.")},
    )


class WaitStepForm(Form):
    """A Wait step's fields as posted on every change. Each field is checked on
    its own, so that one mistyped field never costs the others (the view
    stores the valid ones and shows the error at its field)."""

    wait_amount = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=int(MAX_WAIT.total_seconds() // 60),
        error_messages={
            "invalid": _("Enter how long to wait as a whole number, such as 2."),
            "min_value": _("Wait for at least 1 minute, hour or day."),
            "max_value": _("A wait is at most %(days)s days.") % {"days": MAX_WAIT.days},
        },
    )
    wait_unit = forms.ChoiceField(
        required=False,
        choices=[("", ""), *FlowStep.WaitUnit.choices],
        error_messages={"invalid_choice": _("Choose minutes, hours or days.")},
    )
    wait_until = forms.DateTimeField(
        required=False,
        error_messages={"invalid": _("Enter the date and time to wait until, such as 2026-12-24 09:00.")},
    )
    wait_then_day = forms.ChoiceField(
        required=False,
        choices=[("", ""), *FlowStep.WaitDay.choices],
        error_messages={"invalid_choice": _("Choose a day of the week, a weekday or any day.")},
    )
    wait_then_time = forms.TimeField(
        required=False,
        error_messages={"invalid": _("Enter the time of day as HH:MM, such as 10:00.")},
    )


# --- Schedule -------------------------------------------------------------------


SCHEDULE_FIELDS = [
    "qualification_rule",
    "qualification_period",
    "qualification_period_unit",
    "schedule",
    "run_at",
    "run_time",
    "run_weekday",
    "run_weekdays_only",
    "person_limit_refuse_above",
    "person_limit_per_run",
]


class ScheduleForm(Form):
    """The campaign's schedule fields, read and checked. Not a ModelForm: it
    would copy them onto the campaign and validate it here, and the service
    does both, keeping only the fields the chosen schedule uses."""

    def __init__(self, *args, instance: SmartCampaign, **kwargs):
        kwargs.setdefault("initial", model_to_dict(instance, SCHEDULE_FIELDS))
        super().__init__(*args, **kwargs)
        self.fields.update(
            fields_for_model(
                SmartCampaign,
                SCHEDULE_FIELDS,
                widgets={
                    "qualification_rule": forms.RadioSelect,
                    "schedule": forms.RadioSelect,
                    "run_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                    "run_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                },
            )
        )
        # The date picker offers no time that has passed; the model refuses one all the same.
        self.fields["run_at"].widget.attrs["min"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
        self._whole_numbers()

    def _whole_numbers(self):
        """The period and the person limits: whole numbers of 1 or more, each
        refused with a message that names it (the model checks them again)."""
        messages = {
            "qualification_period": _("Qualification rule “once every”: enter a whole number of 1 or more."),
            "person_limit_refuse_above": _(
                "Person limit, “refuse to run when more than N people qualify”: enter a whole number "
                "of 1 or more, or leave it empty for no limit."
            ),
            "person_limit_per_run": _(
                "Person limit, “reach at most N people per run”: enter a whole number of 1 or more, "
                "or leave it empty for no limit."
            ),
        }
        for name, message in messages.items():
            field = self.fields[name]
            field.min_value = 1
            field.validators = [v for v in field.validators if not isinstance(v, MinValueValidator)]
            field.validators.append(MinValueValidator(1, message=message))
            field.error_messages["invalid"] = message
            field.widget.attrs.update(min=1, inputmode="numeric")
        period = self.fields["qualification_period"]
        period.widget.attrs["class"] = "narrow"
        # Shown inline after "once every", where its words say what it is.
        period.help_text = ""


# --- Results --------------------------------------------------------------------


class ResultsFilterForm(Form):
    outcome = forms.ChoiceField(label=_("Outcome"), required=False)
    replied = forms.BooleanField(label=_("Replied"), required=False)
    clicked = forms.BooleanField(label=_("Clicked a link"), required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        outcomes = [(outcome.code, capfirst(outcome.label)) for outcome in Outcome]
        self.fields["outcome"].choices = [("", _("All outcomes")), *outcomes]

    def outcome_value(self) -> int | None:
        code = self.cleaned_data.get("outcome") if self.is_valid() else None
        return Outcome.from_code(code).value if code else None


# --- Smart list -----------------------------------------------------------------


def _text(value) -> str:
    """A stored or posted part of a rule as the page shows it. Characters no
    page (and no database) can carry, stored before the rules refused them
    or posted, are replaced."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return printable(str(value))


class RuleRow:
    """One rule as the marketer typed it (or as it is stored), with the
    widgets its field's type offers. A field or operator the editor does not
    know is offered as it stands, never swapped for another one."""

    def __init__(self, index: int, raw: dict):
        self.index = index
        self.raw = raw
        self.error = ""

    @property
    def number(self):
        return self.index + 1

    @property
    def field(self):
        return FIELDS.get(self.field_name)

    @property
    def field_name(self):
        return _text(self.raw.get("field"))

    @property
    def op(self):
        return _text(self.raw.get("op"))

    @property
    def value(self):
        value = _text(self.raw.get("value"))
        return self.field.shown_value(value) if self.field else value

    @property
    def field_options(self):
        options = [(f.name, f.label) for f in FIELDS.values()]
        if self.field is None:
            options.append((self.field_name, _("“%(field)s” (unknown field)") % {"field": self.field_name}))
        return options

    @property
    def operators(self):
        if self.field is None:
            return [(self.op, OPERATOR_LABELS.get(self.op, self.op))]
        options = [(op, OPERATOR_LABELS[op]) for op in self.field.ops]
        if self.op not in self.field.ops:
            label = OPERATOR_LABELS.get(self.op, self.op)
            options.append((self.op, _("“%(operator)s” (does not apply)") % {"operator": label}))
        return options

    @property
    def needs_value(self):
        return self.op not in VALUELESS_OPS

    @property
    def value_choices(self):
        """The dropdown's choices when the field offers them (Vibes lists, yes/no), else None.
        A stored value that is not among them stays offered, and chosen."""
        choices = self.field.value_choices() if self.field else None
        if choices is None:
            return None
        if self.value and self.value not in {value for value, _label in choices}:
            choices.append((self.value, self.field.unoffered_label(self.value)))
        return choices

    @property
    def parts(self) -> list[dict]:
        """The field's parts beyond the value (a Vibes list rule's status, an
        activity's date), each a dropdown or a value typed in; only those that
        apply (an activity's "days" only "in past"). A stored choice that is
        not offered stays offered, and chosen."""
        own = self.field.parts if self.field else ()
        chosen = {part.key: _text(self.raw.get(part.key)) or part.default for part in own}
        parts = []
        for part in own:
            if not part.applies(chosen):
                continue
            value = chosen[part.key]
            choices = part.offered()
            if choices is not None and value not in {choice for choice, _label in choices}:
                choices.append((value, not_offered(value)))
            label = part.label % {"number": self.number}
            parts.append(
                {
                    "key": part.key,
                    "label": label,
                    "choices": choices,
                    "value": value,
                    "input_type": part.input_type,
                    "placeholder": part.placeholder,
                    "redraws": part.redraws,
                }
            )
        return parts

    @property
    def kept_parts(self) -> list[tuple[str, str]]:
        """The parts of a rule whose field the editor does not know, posted back as they are."""
        if self.field is not None:
            return []
        return [
            (key, _text(self.raw.get(key)) or part.default)
            for key, part in registered_parts().items()
            if key in self.raw
        ]

    @property
    def input_type(self):
        return self.field.input_type if self.field and self.op != IN else "text"

    @property
    def placeholder(self):
        if self.op == IN:
            return _("values, separated by commas")
        return self.field.placeholder if self.field else ""


class SmartListEditor:
    """The smart list's rules and logic as a form.

    Not a formset: each row's operators and value widget depend on the field
    chosen in that row, and errors come from the smart list parser (per rule,
    "Rule N: …", and for the logic, "Logic: …"), so the rows are plain dicts
    checked with `parse_rule` and `parse_logic`, and the whole with
    `parse_definition` for what belongs to no rule.

    The editor keeps what it is given: rules with problems are stored and
    shown with their problem, as typed.
    """

    def __init__(self, *, rules: list[dict], logic: str):
        self.rows = [RuleRow(index, dict(raw)) for index, raw in enumerate(rules)]
        self.logic = logic
        self.logic_error = ""
        self.errors: list[str] = []
        self.parsed = None  # the SmartListDefinition, once checked and valid
        self.refusal = ""  # why a posted form cannot be stored

    @classmethod
    def from_definition(cls, definition) -> "SmartListEditor":
        definition = definition if isinstance(definition, dict) else {}
        rules = definition.get("rules", [])
        rules = [raw if isinstance(raw, dict) else {} for raw in rules] if isinstance(rules, list) else []
        logic = definition.get("logic", "all")
        # A stored definition of another shape shows its problems (check), not a crash.
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
    def from_post(cls, data, *, field_changed: int | None = None) -> "SmartListEditor":
        """The form as posted. `field_changed`: the index of the rule whose field
        the marketer just chose; its operator follows the field when the old
        one does not apply. Every other field and operator stays as posted."""
        try:
            # Every rule posts fields of its own, so there are never more rules than fields.
            count = min(int(data.get("rule_count", "")), len(data))
        except ValueError:
            count = -1

        def posted(key, default=""):
            return printable(data.get(key, default))

        rules = []
        for index in range(count):
            prefix = f"rule-{index}-"
            name = posted(prefix + "field")
            field = FIELDS.get(name)
            op = posted(prefix + "op")
            if index == field_changed and field is not None and op not in field.ops:
                op = field.ops[0]
            rule = {"field": name, "op": op}
            if op not in VALUELESS_OPS:
                rule["value"] = posted(prefix + "value")
            own_parts = {part.key: part for part in field.parts} if field is not None else {}
            # A field the editor does not know keeps the parts posted with it; a known
            # field has its own only (the parts of the field chosen before it are dropped).
            for key, part in (own_parts if field is not None else registered_parts()).items():
                if key in own_parts or prefix + key in data:
                    rule[key] = posted(prefix + key) or part.default
            # A part that no longer applies (the days of an activity now "before" a date) is not kept.
            for key, part in own_parts.items():
                if not part.applies(rule):
                    del rule[key]
            rules.append(rule)
        mode = data.get("logic_mode", "all")
        editor = cls(rules=rules, logic=mode if mode in ("all", "any") else posted("logic"))
        if count < 0:
            editor.refusal = _("Nothing was saved: the form came without its rules. Reload the page.")
        return editor

    @property
    def logic_mode(self):
        return self.logic.lower() if self.logic.lower() in ("all", "any") else "expression"

    @property
    def logic_expression(self):
        return self.logic if self.logic_mode == "expression" else ""

    @property
    def full(self):
        return len(self.rows) >= MAX_RULES

    @property
    def over_limit(self):
        return len(self.rows) > MAX_RULES

    def add_rule(self) -> bool:
        if self.full:
            self.errors.append(_("A smart list has at most %(max_rules)s rules.") % {"max_rules": MAX_RULES})
            return False
        first = next(iter(FIELDS.values()))
        self.rows.append(RuleRow(len(self.rows), {"field": first.name, "op": first.ops[0], "value": ""}))
        return True

    def remove_rule(self, index: int) -> None:
        rules = [row.raw for row in self.rows if row.index != index]
        self.rows = [RuleRow(i, raw) for i, raw in enumerate(rules)]

    def definition(self) -> dict:
        rules = []
        for row in self.rows:
            rule = dict(row.raw)
            if row.field and "value" in rule:
                rule["value"] = row.field.stored_value(rule["value"])
            rules.append(rule)
        return {"logic": self.logic, "rules": rules}

    def check(self) -> bool:
        """Find every problem: at its rule, at the logic, or of the whole smart list."""
        definition = self.definition()
        placed = set()
        for row, raw in zip(self.rows, definition["rules"], strict=True):
            try:
                parse_rule(row.number, raw)
            except ValidationError as error:
                row.error = " ".join(error.messages)
                placed.update(error.messages)
        try:
            parse_logic(self.logic, len(self.rows))
        except ValidationError as error:
            self.logic_error = " ".join(error.messages)
            placed.update(error.messages)
        try:
            self.parsed = parse_definition(definition)
        except ValidationError as error:
            self.errors.extend(message for message in error.messages if message not in placed)
        return not self.has_problems

    def is_valid(self) -> bool:
        return self.check()

    @property
    def has_problems(self):
        return bool(self.logic_error or self.errors or any(row.error for row in self.rows))


class TriggersEditor:
    """The smart list's triggers as a form: each trigger's kind (fixed once
    added) and its constraints, checked with the smart list's own parser so
    that each problem shows as "Trigger N: …". Kept as chosen, problems and all."""

    def __init__(self, triggers: list[dict]):
        self.triggers = [dict(raw) if isinstance(raw, dict) else {} for raw in triggers]
        self.errors: list[str] = []

    @classmethod
    def from_post(cls, data) -> "TriggersEditor":
        try:
            count = min(int(data.get("trigger_count", "")), len(data))
        except ValueError:
            count = 0
        triggers = []
        for index in range(max(count, 0)):
            prefix = f"trigger-{index}-"
            name = printable(data.get(prefix + "trigger", ""))
            trigger = {"trigger": name}
            kind = TRIGGERS.get(name)
            for constraint in kind.constraints if kind else ():
                trigger[constraint.key] = printable(data.get(prefix + constraint.key, ""))
            triggers.append(trigger)
        return cls(triggers)

    def add(self, name: str) -> None:
        kind = TRIGGERS.get(name)
        if kind is None:
            self.errors.append(_("Choose a trigger to add."))
            return
        self.triggers.append({"trigger": kind.name, **{c.key: "" for c in kind.constraints}})

    def remove(self, index: int) -> None:
        self.triggers = [raw for i, raw in enumerate(self.triggers) if i != index]

    def check(self) -> bool:
        try:
            parse_triggers(self.triggers)
        except ValidationError as error:
            self.errors.extend(error.messages)
        return not self.errors

    @property
    def offered(self):
        """The triggers a marketer can add, as (name, label)."""
        return sorted(((kind.name, kind.label) for kind in TRIGGERS.values()), key=lambda pair: str(pair[1]))

    @property
    def rows(self) -> list[dict]:
        rows = []
        for index, raw in enumerate(self.triggers):
            kind = TRIGGERS.get(raw.get("trigger"))
            rows.append(
                {
                    "index": index,
                    "number": index + 1,
                    "name": raw.get("trigger", ""),
                    "label": kind.label if kind else not_offered(str(raw.get("trigger", ""))),
                    "constraints": [
                        {
                            "key": constraint.key,
                            "label": constraint.label,
                            "required": constraint.required,
                            "value": str(raw.get(constraint.key) or ""),
                            "choices": constraint.offered(),
                        }
                        for constraint in (kind.constraints if kind else ())
                    ],
                }
            )
        return rows
