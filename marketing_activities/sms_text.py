"""SMS message text: personalisation tokens and segment counting.

Tokens are `{{lead.first_name}}` or `{{lead.first_name|default:"there"}}`.
They are replaced by plain string substitution: message text is never run
as a template, so nothing a marketer types can execute code.
"""

import math
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

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

# GSM 03.38 basic character set; the extension set costs two septets each.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def token_placeholders():
    """The tokens a marketer can insert, for the editor's token menu."""
    return [f"{{{{lead.{name}}}}}" for name in TOKEN_FIELDS]


def validate_text(text: str) -> None:
    """Raise ValidationError listing every problem with a message text."""
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
        known = _TOKEN.fullmatch(token)
        if not known:
            errors.append(
                _('“%(token)s” is not a token. Use {{lead.field}} or {{lead.field|default:"text"}}.')
                % {"token": token}
            )
        elif known.group("field") not in TOKEN_FIELDS:
            errors.append(
                _("“%(token)s”: unknown field “%(field)s”. Known fields: %(known)s.")
                % {"token": token, "field": known.group("field"), "known": ", ".join(TOKEN_FIELDS)}
            )
    if errors:
        raise ValidationError(errors)


def render(text: str, lead) -> str:
    """The text with every token replaced by the lead's value (or its default)."""

    def replace(match):
        value = getattr(lead, match.group("field"), "")
        value = "" if value is None else str(value)
        return value or (match.group("default") or "")

    return _TOKEN.sub(replace, text)


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int


def count_segments(text: str) -> SegmentCount:
    """How many SMS segments `text` takes (160/153 GSM-7, 70/67 UCS-2)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
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
