"""The project's gettext catalogues (locale/<language>/LC_MESSAGES/django.po),
for the tests of the translated interface.

A small reader of the .po format is enough for the checks in the tests: entries
are separated by blank lines, their strings continue on following quoted lines.
"""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import translation
from django.utils.translation import gettext

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGUAGES = ["de", "sv", "nl", "it", "fr"]

# The names the source documents give the three flow steps, with "Vibes" kept
# where a machine translation turned it into "vibrazioni", "beeldschermen" or
# "vidéos", and "Vibes List" put into the language where it was left in English.
FLOW_STEP_NAMES = {
    "en": ["Send SMS Message", "Subscribe to Vibes List", "Unsubscribe from Vibes List"],
    "de": ["SMS-Nachricht senden", "Abonnieren der Vibes-Liste", "Abmeldung von der Vibes-Liste"],
    "sv": ["Skicka SMS-meddelande", "Prenumerera på Vibes-lista", "Avbeställ utskick från Vibes-lista"],
    "nl": ["SMS-bericht verzenden", "Abonneren op Vibes-lijst", "Abonnement op Vibes-lijst opzeggen"],
    "it": ["Invia messaggio SMS", "Iscriviti all’elenco Vibes", "Annulla iscrizione all’elenco Vibes"],
    "fr": ["Envoyer un message SMS", "Abonnement à la liste Vibes", "Se désabonner de la liste Vibes"],
}


def translated(language: str, message: str) -> str:
    with translation.override(language):
        return gettext(message)


# %(name)s, %s and %d style placeholders (python-format), and {name} (python-brace-format).
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdr]|%[sd]|\{[a-z_]*\}")


@dataclass
class Entry:
    line: int
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def is_header(self):
        return self.msgid == ""

    @property
    def key(self):
        """What identifies a message: its text and its context."""
        return (self.msgctxt, self.msgid)

    @property
    def where(self):
        return f"line {self.line} ({', '.join(self.references) or 'header'}): {self.msgid!r}"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "django.po"


def read_catalogue(path: Path) -> list[Entry]:
    entries = []
    entry = None
    key = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry = key = None
            continue
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#~"):
            entry.obsolete = True
        elif line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#:"):
            entry.references.extend(line[2:].split())
        elif line.startswith("#"):
            continue
        elif line.startswith("msgctxt "):
            key = "msgctxt"
            entry.msgctxt = _string(line.split(" ", 1)[1])
        elif line.startswith("msgid_plural "):
            key = "msgid_plural"
            entry.msgid_plural = _string(line.split(" ", 1)[1])
        elif line.startswith("msgid "):
            key = "msgid"
            entry.msgid = _string(line.split(" ", 1)[1])
        elif line.startswith("msgstr"):
            key = "msgstr"
            entry.msgstrs.append(_string(line.split(" ", 1)[1]))
        elif line.startswith('"'):
            if key == "msgctxt":
                entry.msgctxt += _string(line)
            elif key == "msgid":
                entry.msgid += _string(line)
            elif key == "msgid_plural":
                entry.msgid_plural += _string(line)
            elif key == "msgstr":
                entry.msgstrs[-1] += _string(line)
    # Obsolete entries (#~) are ignored by gettext, and so here.
    return [each for each in entries if each.msgstrs and not each.obsolete]


def _string(quoted: str) -> str:
    return ast.literal_eval(quoted)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))
