"""The details a run writes on a person's result, shown in the reader's language.

A result row is written once and read in any of the interface's languages,
so the runner stores the English message (marked for translation here) and
the screens translate it when they show it: `detail_display`. A detail that
came from elsewhere, such as Vibes' own error message, is shown as it came.
"""

import re

from django.utils.translation import gettext, gettext_noop

ALREADY_SUBSCRIBED = gettext_noop("already subscribed in Vibes")
WAITING_FOR_REPLY = gettext_noop("waiting for the reply to Vibes' confirmation text")
STOPPED_WHILE_SENDING = gettext_noop(
    "The runner stopped while this SMS was being sent and no delivery receipt came."
)
STOPPED_WHILE_SUBSCRIBING = gettext_noop(
    "The runner stopped while adding this person to the acquisition campaign."
)
RETRIED_BY_OPERATOR = gettext_noop("queued again by an administrator")
TOO_LONG = gettext_noop("%(length)s characters after personalisation (at most %(max)s)")
VIBES_SAYS = gettext_noop("Vibes: %(status)s")
# A run's error when the campaign's person limit refused it (runner/person_limit.py).
PERSON_LIMIT_REFUSED = gettext_noop(
    "Refused by the campaign's person limit: %(count)s people qualify, more than the limit of %(limit)s. "
    "Nobody was called."
)

_FIXED = {
    ALREADY_SUBSCRIBED,
    WAITING_FOR_REPLY,
    STOPPED_WHILE_SENDING,
    STOPPED_WHILE_SUBSCRIBING,
    RETRIED_BY_OPERATOR,
}
_PLACEHOLDER = re.compile(r"%\\\((\w+)\\\)s")


def _pattern(template: str) -> re.Pattern:
    """The stored form of `template` as a regular expression that captures its values."""
    return re.compile(_PLACEHOLDER.sub(lambda m: f"(?P<{m[1]}>.+?)", re.escape(template)), re.DOTALL)


_WITH_VALUES = [(template, _pattern(template)) for template in (TOO_LONG, VIBES_SAYS, PERSON_LIMIT_REFUSED)]


def result_detail(template: str, **values) -> str:
    """What the runner stores: the English message with its values, at most 300 characters."""
    return (template % values if values else template)[:300]


def detail_display(stored: str) -> str:
    """A stored detail in the active language."""
    if not stored:
        return ""
    if stored in _FIXED:
        return gettext(stored)
    for template, pattern in _WITH_VALUES:
        found = pattern.fullmatch(stored)
        if found:
            return gettext(template) % found.groupdict()
    return stored
