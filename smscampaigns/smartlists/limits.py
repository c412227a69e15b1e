"""How large a smart list may be, and how its messages quote what was typed.

The limits keep every smart list a query that both databases run: SQLite
refuses an expression nested more than 1,000 levels deep, and it reads
`1 and 2 and 3 ...` as one level per operand, so the number of rules, how
often the logic names them and how deep it nests are all bounded (the README
lists the limits; a test runs the largest smart list they allow).
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_RULES = 100
# How often the logic may name a rule in all ("1 and 2 or 1 and 3" names four).
MAX_LOGIC_REFERENCES = 200
# Parentheses and "not"s inside one another.
MAX_LOGIC_DEPTH = 20
# The values of all the "in" rules of one smart list together.
MAX_IN_VALUES = 10_000
# Lead score is a 32-bit integer column.
NUMBER_RANGE = (-(2**31), 2**31 - 1)
# An activity filter's "in past N days": a century back is before any SMS
# this app sent, and keeps the earliest moment a date both databases store.
MAX_PAST_DAYS = 36_500


def check_rule_count(count: int) -> None:
    """The one place the rule limit is checked, for the tab, the admin and runs alike."""
    if count > MAX_RULES:
        raise ValidationError(
            _(
                "The smart list has %(count)s rules; a smart list holds at most %(max)s. "
                "Remove rules, or combine rules on one field with “in”."
            )
            % {"count": count, "max": MAX_RULES}
        )


def too_many_values(count, where=None) -> str:
    limits = {"count": count, "max": MAX_IN_VALUES, "where": where}
    if where:
        return (
            _("%(where)s: “in” has %(count)s values; the “in” rules of a smart list hold %(max)s at most.")
            % limits
        )
    return _("The “in” rules have %(count)s values together; a smart list holds %(max)s at most.") % limits


# Neither database stores these in text: PostgreSQL refuses NUL, and an
# unpaired surrogate (possible in JSON typed into the admin) is not UTF-8.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with the characters no page can carry replaced."""
    return UNSTORABLE.sub("\ufffd", text)


def shown(value) -> str:
    """`value` as a message may quote it: printable and short."""
    text = printable(str(value))
    return text if len(text) <= 60 else text[:59] + "…"
