"""SMS message text: personalisation tokens and segment counting.

Tokens are `{{lead.first_name}}` or `{{lead.first_name|default:"there"}}`
(any of the lead's own fields in TOKEN_FIELDS), `{{my.offer}}` (a program
token, "My Tokens": the same for everyone the program texts) and
`{{system.date}}`, `{{system.time}}`, `{{system.weekday}}` (the moment of
sending, in the installation's time zone and language). Each may carry a
default. They are replaced by plain string substitution: message text is
never run as a template, so nothing a marketer types can execute code.

Segments are counted on the text as people get it, not as typed: each token
counts at its longest value among the people in the database (see
`count_received`).
"""

import datetime
import functools
import math
import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import CharField, Count, Func, IntegerField, Max, Min, Q
from django.db.models.functions import Cast, Length
from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _

from smscampaigns.models import Lead

MAX_LENGTH = 1600

TOKEN_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "mobile_phone",
    "country",
    "city",
    "state",
    "lead_source",
    "lead_score",
)

_TOKEN = re.compile(
    r"\{\{\s*lead\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\s*:\s*\"(?P<default>[^\"{}]*)\"\s*)?\}\}"
)
_ANY_BRACES = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
# Every kind of token, for rendering and checking; `_TOKEN` (lead tokens
# alone) is what the counter reads the people's values for.
_ANY_TOKEN = re.compile(
    r"\{\{\s*(?P<kind>[A-Za-z_][A-Za-z0-9_]*)\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\s*:\s*\"(?P<default>[^\"{}]*)\"\s*)?\}\}"
)
TOKEN_KINDS = ("lead", "my", "system")
SYSTEM_TOKENS = ("date", "time", "weekday")
# A program token's name: what fits between `{{my.` and `}}`.
PROGRAM_TOKEN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,49}")

# GSM 03.38 basic character set; the extension set costs two septets each.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def token_placeholders(program_tokens=()):
    """The tokens a marketer can insert, for the editor's token menu."""
    return [
        *(f"{{{{lead.{name}}}}}" for name in TOKEN_FIELDS),
        *(f"{{{{my.{name}}}}}" for name in program_tokens),
        *(f"{{{{system.{name}}}}}" for name in SYSTEM_TOKENS),
    ]


def validate_text(text: str, *, program_tokens=None, program_name: str = "") -> None:
    """Raise ValidationError listing every problem with a message text.

    `program_tokens`: the names of the tokens of the message's program; None
    (the model field's own check, which knows no program) leaves `{{my.…}}`
    names to `SmsMessage.clean()`, which passes them."""
    errors = []
    if len(text) > MAX_LENGTH:
        errors.append(
            _("The message is %(length)s characters long; the most an SMS can carry is %(max)s.")
            % {"length": len(text), "max": MAX_LENGTH}
        )
    for match in _ANY_BRACES.finditer(text):
        token = match.group(0)
        if token.startswith("{%"):
            errors.append(_("“%(token)s”: template tags are not allowed.") % {"token": token})
            continue
        problem = _token_problem(token, program_tokens, program_name)
        if problem:
            errors.append(problem)
    if errors:
        raise ValidationError(errors)


def _token_problem(token: str, program_tokens, program_name: str) -> str:
    known = _ANY_TOKEN.fullmatch(token)
    if not known:
        return _('“%(token)s” is not a token. Use {{lead.field}} or {{lead.field|default:"text"}}.') % {
            "token": token
        }
    kind, name = known.group("kind"), known.group("field")
    if kind not in TOKEN_KINDS:
        return _(
            "“%(token)s” is not a token: “%(kind)s.” is unknown; tokens begin with lead., my. or system."
        ) % {
            "token": token,
            "kind": kind,
        }
    if kind == "lead" and name not in TOKEN_FIELDS:
        return _("“%(token)s”: unknown field “%(field)s”. Known fields: %(known)s.") % {
            "token": token,
            "field": name,
            "known": ", ".join(TOKEN_FIELDS),
        }
    if kind == "system" and name not in SYSTEM_TOKENS:
        return _("“%(token)s”: unknown system token “%(name)s”. Known system tokens: %(known)s.") % {
            "token": token,
            "name": name,
            "known": ", ".join(SYSTEM_TOKENS),
        }
    if kind == "my" and program_tokens is not None and name not in program_tokens:
        if not program_tokens:
            return _(
                "“%(token)s”: the program “%(program)s” has no My Tokens; add “%(name)s” there first."
            ) % {
                "token": token,
                "program": program_name,
                "name": name,
            }
        return _("“%(token)s”: the program “%(program)s” has no token “%(name)s”. Its tokens: %(known)s.") % {
            "token": token,
            "program": program_name,
            "name": name,
            "known": ", ".join(sorted(program_tokens)),
        }
    return ""


def has_shared_tokens(text: str) -> bool:
    """Whether the text holds a program or system token (the same for everyone it goes to)."""
    return any(m.group("kind") in ("my", "system") for m in _ANY_TOKEN.finditer(text))


def program_token_problems(text: str, *, program_tokens, program_name: str) -> list[str]:
    """The problems of the text's `{{my.…}}` tokens alone: names the program does not have."""
    problems = []
    for match in _ANY_TOKEN.finditer(text):
        if match.group("kind") == "my":
            problem = _token_problem(match.group(0), program_tokens, program_name)
            if problem and problem not in problems:
                problems.append(problem)
    return problems


def program_tokens_used(text: str) -> list[str]:
    """The names of the program tokens the text uses, each once, in order of first use."""
    return list(dict.fromkeys(m.group("field") for m in _ANY_TOKEN.finditer(text) if m.group("kind") == "my"))


# --- System tokens: the moment of sending ------------------------------------------


def system_value(name: str, at: datetime.datetime) -> str:
    """A system token's value at `at`, in the installation's time zone
    (TIME_ZONE) and language (LANGUAGE_CODE): `date` as the language writes a
    date (DATE_FORMAT: "Dec. 2, 2026", "2. Dezember 2026"), `time` as it
    writes a time (TIME_FORMAT: "2:30 p.m.", "14:30"), `weekday` the day's
    name ("Wednesday", "Mittwoch")."""
    # A batch renders hundreds of texts at one moment: each value is worked out once.
    return _system_value(name, at, settings.LANGUAGE_CODE, settings.TIME_ZONE)


@functools.lru_cache(maxsize=64)
def _system_value(name: str, at: datetime.datetime, language: str, zone: str) -> str:
    local = timezone.localtime(at, timezone.get_default_timezone())
    with translation.override(language):
        if name == "date":
            return date_format(local, "DATE_FORMAT")
        if name == "time":
            return time_format(local, "TIME_FORMAT")
        if name == "weekday":
            return date_format(local, "l")
    return ""


@functools.cache
def _longest_system_value(name: str, language: str, zone: str) -> str:
    # Every day of a year and every minute of a day: the longest month and
    # weekday names and the widest hours are among them.
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    if name == "time":
        moments = [start + datetime.timedelta(minutes=m) for m in range(0, 24 * 60, 7)]
    else:
        moments = [start + datetime.timedelta(days=d, hours=12) for d in range(366)]
    return max((system_value(name, at) for at in moments), key=lambda v: (count_segments(v).units, len(v)))


def longest_system_value(name: str) -> str:
    """The longest value a system token can take in the installation's language, for the counter."""
    return _longest_system_value(name, settings.LANGUAGE_CODE, settings.TIME_ZONE)


def expand_for_counting(text: str, program_tokens: dict) -> str:
    """The text with the tokens that are the same for everyone filled in, as
    the counter counts them: each program token as its value (or default),
    each system token as its longest value. Lead tokens stay, for `count_received`."""

    def replace(match):
        kind, name, default = match.group("kind"), match.group("field"), match.group("default") or ""
        if kind == "my":
            return program_tokens.get(name) or default
        if kind == "system":
            return longest_system_value(name) or default
        return match.group(0)

    return _ANY_TOKEN.sub(replace, text)


def render(text: str, lead, *, encode=None, program_tokens=None, at=None) -> str:
    """The text with every token replaced by its value, or its default when
    the value is empty, passed through `encode` when given: a lead token by
    the lead's value, a program token by `program_tokens[name]`, a system
    token by its value at `at` (now when not given). A token that has no value
    here (an unknown one, never saved) becomes its default or nothing."""
    program_tokens = program_tokens or {}
    at = at or timezone.now()

    def replace(match):
        kind, name = match.group("kind"), match.group("field")
        if kind == "lead":
            value = getattr(lead, name, "") if name in TOKEN_FIELDS else ""
        elif kind == "my":
            value = program_tokens.get(name, "")
        elif kind == "system":
            value = system_value(name, at)
        else:
            return match.group(0)
        value = "" if value is None else str(value)
        value = value or (match.group("default") or "")
        return encode(value) if encode else value

    return _ANY_TOKEN.sub(replace, text)


# A web address in a message: http(s), up to the next space, tokens inside
# it included (`https://shop.example/?id={{lead.email}}` is one address).
# Punctuation that ends a sentence is not part of it.
_LINK = re.compile(r"https?://(?:\{\{.*?\}\}|[^\s<>\"{}])+", re.IGNORECASE)
_LINK_TRAILING = ".,;:!?'\u2019\u201d"


def link_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each web address in the text, in order."""
    spans = []
    for match in _LINK.finditer(text):
        start, end = match.span()
        while end > start and (
            text[end - 1] in _LINK_TRAILING or (text[end - 1] == ")" and "(" not in text[start:end])
        ):
            end -= 1
        if end - start > len("https://"):
            spans.append((start, end))
    return spans


def replace_links(text: str, replace, *, spans: list[tuple[int, int]] | None = None) -> str:
    """The text with each web address replaced by `replace(position, address)`
    (position: 0 for the first address). `spans`: the text's `link_spans`, when known."""
    parts, last = [], 0
    for position, (start, end) in enumerate(link_spans(text) if spans is None else spans):
        parts += [text[last:start], replace(position, text[start:end])]
        last = end
    return "".join(parts) + text[last:]


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int


def count_segments(text: str, *, ucs2: bool = False) -> SegmentCount:
    """How many SMS segments `text` takes (160/153 GSM-7, 70/67 UCS-2).
    `ucs2` counts it as UCS-2 whatever it holds (another part of the message
    forces it, such as a person's name)."""
    if not ucs2 and all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = math.ceil(units / multi)
    return SegmentCount(
        encoding=encoding,
        characters=len(text),
        units=units,
        segments=segments,
        per_segment=single if segments <= 1 else multi,
    )


# --- Counting the text as people get it ------------------------------------------


def _glob_class(characters) -> str:
    """A GLOB character class's inside: runs of consecutive characters as
    ranges, since SQLite compares a character with every entry of a class."""
    points = sorted({ord(ch) for ch in characters})
    runs = []
    for point in points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in runs)


def _regex_class(characters) -> str:
    """A PostgreSQL bracket expression's inside, every character spelt out."""
    return "".join("\\" + ch if ch in "\\[]^-" else ch for ch in sorted(set(characters)))


_GSM7 = GSM7_BASIC | GSM7_EXTENSION
# Plain: printable ASCII that GSM-7 carries in one septet (all but the
# backtick and the extension set). Most values hold nothing else, and one
# short class tells them apart; only the others are looked at closely.
_PLAIN = [ch for ch in map(chr, range(0x20, 0x7F)) if ch in GSM7_BASIC]
_GLOB_NOT_PLAIN = f"*[^{_glob_class(_PLAIN)}]*"
_GLOB_OUTSIDE_GSM7 = f"*[^{_glob_class(_GSM7)}]*"
_GLOB_EXTENSION = f"*[{_glob_class(GSM7_EXTENSION)}]*"
_REGEX_NOT_PLAIN = f"[^{_regex_class(_PLAIN)}]"
_REGEX_OUTSIDE_GSM7 = f"[^{_regex_class(_GSM7)}]"
_REGEX_EXTENSION = f"[{_regex_class(GSM7_EXTENSION)}]"
_EXTENSION_CHARACTERS = "".join(sorted(GSM7_EXTENSION))


class Gsm7Cost(Func):
    """What a text costs in an SMS, as SQL, so that one scan of the people
    reads it for everyone: its length in septets when GSM-7 carries it (a
    character of the extension set, such as € or {, takes two), or minus its
    length in characters when it holds a character outside GSM-7 (then the
    whole SMS goes as UCS-2)."""

    arity = 1
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        without_extension = sql
        for _character in _EXTENSION_CHARACTERS:
            without_extension = f"REPLACE({without_extension}, %s, '')"
        return (
            f"(CASE WHEN NOT {sql} GLOB %s THEN LENGTH({sql})"
            f" WHEN {sql} GLOB %s THEN -LENGTH({sql})"
            f" WHEN {sql} GLOB %s THEN 2 * LENGTH({sql}) - LENGTH({without_extension})"
            f" ELSE LENGTH({sql}) END)",
            (
                *params, _GLOB_NOT_PLAIN, *params,
                *params, _GLOB_OUTSIDE_GSM7, *params,
                *params, _GLOB_EXTENSION, *params, *params, *_EXTENSION_CHARACTERS,
                *params,
            ),
        )  # fmt: skip

    def as_sql(self, compiler, connection, **extra_context):
        # PostgreSQL: regular expressions (compiled once, cached).
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(CASE WHEN {sql} !~ %s THEN LENGTH({sql})"
            f" WHEN {sql} ~ %s THEN -LENGTH({sql})"
            f" WHEN {sql} ~ %s THEN 2 * LENGTH({sql}) - LENGTH(TRANSLATE({sql}, %s, ''))"
            f" ELSE LENGTH({sql}) END)",
            (
                *params, _REGEX_NOT_PLAIN, *params,
                *params, _REGEX_OUTSIDE_GSM7, *params,
                *params, _REGEX_EXTENSION, *params, *params, _EXTENSION_CHARACTERS,
                *params,
            ),
        )  # fmt: skip


@dataclass(frozen=True)
class TokenValues:
    """What the people database holds in one token's field, for counting."""

    longest_gsm7: int  # the longest value GSM-7 carries, in septets
    longest_outside: int  # the longest value with a character outside GSM-7 (UCS-2 characters)
    people_outside: int  # how many people have such a value

    @property
    def longest(self) -> int:
        return max(self.longest_gsm7, self.longest_outside)


NO_VALUES = TokenValues(0, 0, 0)
ALL_PEOPLE = 10**15  # a slice beyond any number of people


@dataclass(frozen=True)
class PeopleValues:
    people: int
    fields: dict  # field name → TokenValues

    def to_dict(self) -> dict:
        return {"people": self.people, "fields": {name: astuple(v) for name, v in self.fields.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "PeopleValues":
        return cls(
            people=data["people"], fields={name: TokenValues(*v) for name, v in data["fields"].items()}
        )


def token_fields(text: str) -> list[str]:
    """The known fields the text's tokens use, each once, in order of first use."""
    fields = []
    for match in _TOKEN.finditer(text):
        name = match.group("field")
        if name in TOKEN_FIELDS and name not in fields:
            fields.append(name)
    return fields


def people_values(fields: Iterable[str]) -> PeopleValues:
    """The longest value of each field among the people, and who holds a
    character outside GSM-7 there: one query (one scan of the people),
    whatever the number of fields; no query when there are no fields."""
    fields = [name for name in dict.fromkeys(fields) if name in TOKEN_FIELDS]
    if not fields:
        return PeopleValues(people=0, fields={})
    columns = {}
    aggregates = {"people": Count("pk")}
    for name in fields:
        cost = f"{name}__cost"
        if isinstance(Lead._meta.get_field(name), CharField):
            columns[cost] = Gsm7Cost(name)
            aggregates[f"{name}__gsm7"] = Max(cost)
            aggregates[f"{name}__outside"] = Min(cost)
            aggregates[f"{name}__people_outside"] = Count("pk", filter=Q(**{f"{cost}__lt": 0}))
        else:  # a number: digits and a sign, all GSM-7
            columns[cost] = Length(Cast(name, CharField()))
            aggregates[f"{name}__gsm7"] = Max(cost)
    # The slice has Django aggregate over a subquery, so each value's cost is
    # worked out once per row, not once per aggregate (SQLite runs the
    # subquery as a co-routine: nothing is stored).
    row = Lead.objects.order_by().annotate(**columns)[:ALL_PEOPLE].aggregate(**aggregates)
    return PeopleValues(
        people=row["people"],
        fields={
            name: TokenValues(
                longest_gsm7=max(row[f"{name}__gsm7"] or 0, 0),
                longest_outside=-min(row.get(f"{name}__outside") or 0, 0),
                people_outside=row.get(f"{name}__people_outside") or 0,
            )
            for name in fields
        },
    )


def _outside_gsm7(text: str) -> bool:
    return not all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _filled(text: str, lengths: dict, *, ucs2: bool = False) -> str:
    """The text with each token as long as `lengths` says, or its default when
    that costs more (people without a value get the default)."""

    def replace(match):
        length = lengths.get(match.group("field"), 0)
        default = match.group("default") or ""
        if default and count_segments(default, ucs2=ucs2).units >= length:
            return default
        return "x" * length

    return _TOKEN.sub(replace, text)


def _longer(*counts: SegmentCount) -> SegmentCount:
    return max(counts, key=lambda count: (count.segments, count.units, count.characters))


@dataclass(frozen=True)
class ReceivedCount:
    """How a message counts as people get it."""

    longest: SegmentCount  # the longest message anyone gets
    within_gsm7: SegmentCount  # the longest for people whose values GSM-7 carries
    outside_gsm7: SegmentCount | None  # the longest for people with a value outside GSM-7; None: nobody
    people: int
    tokens: tuple  # (field, longest value) of each field the tokens use
    outside: tuple  # (field, people) of each field where some values are outside GSM-7


def count_received(text: str, values: PeopleValues | None = None) -> ReceivedCount:
    """Count the message as people get it: each token at its longest value
    among the people (or its default when that is longer), so the count is
    the most anyone is sent.

    A character outside GSM-7 turns the whole message into UCS-2: people
    with such a value are counted apart (that field at its longest value
    outside GSM-7, every other token at its longest value), and so are people
    who get a default outside GSM-7. `values` is `people_values()` of the
    text's fields; read when not given.
    """
    fields = token_fields(text)
    if values is None:
        values = people_values(fields)
    field_values = {name: values.fields.get(name, NO_VALUES) for name in fields}
    longest = {name: v.longest for name, v in field_values.items()}
    within = count_segments(_filled(text, {name: v.longest_gsm7 for name, v in field_values.items()}))
    outside = []
    for name, token in field_values.items():
        if token.people_outside:
            lengths = {**longest, name: token.longest_outside}
            outside.append(count_segments(_filled(text, lengths, ucs2=True), ucs2=True))
    defaults = {m.group("field") for m in _TOKEN.finditer(text) if _outside_gsm7(m.group("default") or "")}
    for name in defaults & set(fields):
        # People without a value get the default: UCS-2 for them.
        outside.append(count_segments(_filled(text, {**longest, name: 0})))
    outside_count = _longer(*outside) if outside else None
    return ReceivedCount(
        longest=_longer(within, *outside),
        within_gsm7=within,
        outside_gsm7=outside_count,
        people=values.people,
        tokens=tuple(longest.items()),
        outside=tuple((name, v.people_outside) for name, v in field_values.items() if v.people_outside),
    )


def count_received_many(texts: Iterable[str]) -> list[ReceivedCount]:
    """`count_received` for several texts, with one query for all of them."""
    texts = list(texts)
    values = people_values(name for text in texts for name in token_fields(text))
    return [count_received(text, values) for text in texts]
