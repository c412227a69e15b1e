"""Finding people from a search box, through indexes only, at millions of people.

A number in any spelling ("(555) 123-4567", "555.123.4567", "+1 555 123 4567")
is put in E.164 form and found exactly (the index on mobile_phone). Anything
else is read word by word, every word matching: a word with "@" is the
beginning of an email; a single word the beginning of a first name, a last
name or an email, and each of several words the beginning of a first or last
name ("Anna Smi"), ignoring case. On PostgreSQL a word of three letters or
more also finds names that contain it anywhere, through trigram indexes
(pg_trgm).

The indexes are made by the migration `lead_name_search` for each database:
on SQLite, NOCASE indexes that its LIKE optimisation reads for Django's
`istartswith`; on PostgreSQL, `UPPER(…) text_pattern_ops` indexes for the same
lookups, and GIN trigram indexes on the names for `icontains`.
"""

from django.db import connections
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .phones import normalize_phone_or_blank

# What a phone number may be written with.
NUMBER_CHARACTERS = frozenset("0123456789+-.()/ ")
# Fewer digits than this is a word (a postcode, part of a name), not a number.
NUMBER_DIGITS_AT_LEAST = 7
# Trigrams need three characters to narrow anything down.
TRIGRAM_WORD_AT_LEAST = 3

NOBODY = Q(pk__in=[])

SEARCH_HELP = _(
    "A mobile number in any form, such as (555) 123-4567, finds the people with that number; "
    "an email, or its beginning, finds that person; a word finds people whose first name, last name "
    "or email begins with it, and several words people whose names begin with each of them "
    "(upper or lower case alike)."
)
SEARCH_HELP_TRIGRAMS = _(
    "A mobile number in any form, such as (555) 123-4567, finds the people with that number; "
    "an email, or its beginning, finds that person; a word finds people whose first name, last name "
    "or email begins with it, and several words people whose names begin with each of them; a word "
    "of three letters or more also finds names that contain it (upper or lower case alike)."
)


def uses_trigrams(using: str = "default") -> bool:
    return connections[using].vendor == "postgresql"


def search_help(using: str = "default") -> str:
    """What the search box accepts, in the product's words, for this database."""
    return SEARCH_HELP_TRIGRAMS if uses_trigrams(using) else SEARCH_HELP


def searched_number(term: str) -> str | None:
    """The E.164 number `term` spells, "" for a number no lead can have (not a
    mobile number), None when `term` is not written as a number."""
    term = term.strip()
    if not term or not set(term) <= NUMBER_CHARACTERS:
        return None
    if sum(character.isdigit() for character in term) < NUMBER_DIGITS_AT_LEAST:
        return None
    return normalize_phone_or_blank(term)


def lead_search_condition(term: str, *, using: str = "default") -> Q | None:
    """The people `term` finds, as a condition on Lead; None for a blank term."""
    term = term.strip()
    if not term:
        return None
    number = searched_number(term)
    if number is not None:
        # Leads keep only valid mobile numbers in E.164: "" finds nobody.
        return Q(mobile_phone=number) if number else NOBODY
    words = term.split()
    condition = Q()
    for word in words:
        # Several words are a name ("Anna Smith"): emails are not read for
        # them, which halves what each word reads.
        condition &= _word_condition(word, trigrams=uses_trigrams(using), email=len(words) == 1)
    return condition


def _word_condition(word: str, *, trigrams: bool, email: bool) -> Q:
    if "@" in word:
        return Q(email__istartswith=word)
    names = "icontains" if trigrams and len(word) >= TRIGRAM_WORD_AT_LEAST else "istartswith"
    condition = Q(**{f"first_name__{names}": word}) | Q(**{f"last_name__{names}": word})
    return condition | Q(email__istartswith=word) if email else condition
