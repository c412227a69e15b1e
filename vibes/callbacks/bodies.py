"""Reading a callback's body: what every supported database can store, and what can be read.

A body that is text but not a JSON object (Vibes Connect's own callbacks
are XML) is kept as it came, with the reason it cannot be read. Only a body
no database could store is refused: not UTF-8, nested too deep, numbers
that are not finite, NUL characters or unpaired surrogates.
"""

import json
import math
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

# A Vibes callback body is a handful of levels deep. Deeper bodies are refused
# before they are parsed: SQLite stores JSON up to 1,000 levels (2,000 before
# 3.45) and PostgreSQL's jsonb until its stack runs out (about 10,000 levels
# with the default 2 MB), so whatever passes is stored by every supported database.
MAX_BODY_DEPTH = 100

# Strings (so that brackets inside them are not counted) and brackets.
_JSON_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")
# The only ways to a NUL or a surrogate in parsed text: raw UTF-8 holds neither.
_SUSPECT_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


@dataclass(frozen=True)
class CallbackBody:
    """A callback's body as read: the JSON object (or {}), and for a body
    that is not one, its text as received and why it cannot be read."""

    payload: dict
    raw: str = ""
    unreadable: str = ""


def callback_body_parse(body: bytes) -> tuple[CallbackBody | None, str]:
    """(CallbackBody, "") for a body every supported database stores, else (None, what is wrong and where).

    A body that is text but not a JSON object is stored as it came, with the
    reason it cannot be read. The checks read the whole body only when a
    quick look finds something to check: more brackets than the depth limit,
    an escape that could be a NUL or a surrogate, a number that is not finite.
    """
    if body.count(b"{") + body.count(b"[") > MAX_BODY_DEPTH and _too_deep(body):
        return None, str(
            _("The body is nested deeper than %(limit)d levels (at byte %(position)d).")
            % {"limit": MAX_BODY_DEPTH, "position": _too_deep_at(body)}
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, str(_("The body is not UTF-8 (byte %(position)d).") % {"position": error.start})
    infinite = []

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            infinite.append(number)
        return value

    try:
        payload = json.loads(text, parse_float=finite, parse_constant=finite)
    except json.JSONDecodeError as error:
        return _kept_as_text(
            text,
            _("The body is not JSON (line %(line)d, column %(column)d).")
            % {"line": error.lineno, "column": error.colno},
        )
    except ValueError:
        # Python refuses integers of more than 4,300 digits.
        return _kept_as_text(text, _("The body holds a number too long to read."))
    if infinite or _SUSPECT_ESCAPES.search(body):
        unstorable = _unstorable_value(payload)
        if unstorable:
            return None, unstorable
    if not isinstance(payload, dict):
        return _kept_as_text(text, _("The body is JSON but not an object."))
    return CallbackBody(payload), ""


def _kept_as_text(text: str, reason) -> tuple[CallbackBody | None, str]:
    if "\x00" in text:
        # PostgreSQL stores no NUL in text; raw UTF-8 holds no surrogate.
        return None, str(_("The body holds a NUL character."))
    return CallbackBody({}, raw=text, unreadable=str(reason)), ""


def _too_deep(body: bytes) -> bool:
    """True when the body nests deeper than the limit, brackets inside strings aside."""
    depth = 0
    for bracket in _JSON_STRINGS.sub(b"", body).translate(None, _ALL_BUT_BRACKETS):
        if bracket in _OPENING:
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _too_deep_at(body: bytes) -> int | None:
    """The byte where the body goes deeper than the limit, brackets inside strings aside; or None."""
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_BODY_DEPTH:
                return match.start()
        elif token in (b"]", b"}"):
            depth -= 1
    return None


def _unstorable_value(payload) -> str:
    """What no supported database stores, and where: NaN and infinities (Python reads
    them, JSON has none), NUL characters and unpaired surrogates (PostgreSQL refuses both)."""
    stack = [(payload, None)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if _unstorable_text(key):
                    return _where(
                        _("A key at %(where)s holds a NUL character or an unpaired surrogate."), where
                    )
                stack.append((child, (where, f".{key}")))
        elif isinstance(value, list):
            stack.extend((child, (where, f"[{index}]")) for index, child in enumerate(value))
        elif isinstance(value, str):
            if _unstorable_text(value):
                return _where(
                    _("The text at %(where)s holds a NUL character or an unpaired surrogate."), where
                )
        elif isinstance(value, float) and not math.isfinite(value):
            return _where(_("The number at %(where)s is not finite (NaN or Infinity)."), where)
    return ""


def _unstorable_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _where(message, where) -> str:
    parts = []
    while where is not None:
        where, part = where
        parts.append(part)
    path = "".join(reversed(parts)).lstrip(".") or str(_("the top level"))
    return str(message % {"where": path[:200]})
