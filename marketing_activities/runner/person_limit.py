"""Smart campaign limits: a run refused when too many people qualify, or capped.

Both count the people who qualify: the run's audience less those the
qualification rule skips ("once", "once every N"). Refusing is one count of
them, before anything is written or called; the cap is one more query, the
first lead id beyond it (the people who qualify in lead id order), which
becomes a requirement of the plan (rules.py) like any other, so the planner
and the Run now counts skip the same people.
"""

from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from ..result_details import PERSON_LIMIT_REFUSED
from .rules import Sql


class PersonLimitRefused(Exception):
    """More people qualify than the campaign allows: the run must not start."""

    def __init__(self, *, qualifying: int, limit: int):
        self.qualifying, self.limit = qualifying, limit
        # Stored as the run's error in English; shown in the reader's language (result_details.py).
        super().__init__(PERSON_LIMIT_REFUSED % _numbers(qualifying, limit))

    @property
    def message(self) -> str:
        return gettext(PERSON_LIMIT_REFUSED) % _numbers(self.qualifying, self.limit)


def _numbers(qualifying: int, limit: int) -> dict:
    return {
        "count": number_format(qualifying, force_grouping=True),
        "limit": number_format(limit, force_grouping=True),
    }


@dataclass(frozen=True)
class PersonLimit:
    qualifying: int | None = None  # counted only when the campaign refuses above a number
    first_beyond: int | None = None  # the lead id of the first person beyond the cap, if anyone is

    @property
    def requirement(self) -> Sql | None:
        """True for the people within the cap; None when nobody is beyond it."""
        if self.first_beyond is None:
            return None
        return Sql("a.id < %s", (self.first_beyond,))


def person_limit_apply(cursor, *, campaign, audience: Sql, already_ran: Sql) -> PersonLimit:
    """The campaign's person limits on `audience` (SQL selecting `id`, ...),
    whose people `already_ran` (SQL on `a`) the qualification rule skips.

    Raises PersonLimitRefused when more people qualify than the campaign
    allows. test_person_limit.py
    """
    refuse_above, cap = campaign.person_limit_refuse_above, campaign.person_limit_per_run
    if not refuse_above and not cap:
        return PersonLimit()
    qualifying_sql = f"FROM ({audience.text}) a WHERE NOT ({already_ran.text})"
    params = (*audience.params, *already_ran.params)
    qualifying = None
    if refuse_above:
        cursor.execute(f"SELECT COUNT(*) {qualifying_sql}", params)
        qualifying = cursor.fetchone()[0]
        if qualifying > refuse_above:
            raise PersonLimitRefused(qualifying=qualifying, limit=refuse_above)
    first_beyond = None
    if cap:
        # In lead id order: the same people in every count and plan of the same data.
        cursor.execute(f"SELECT a.id {qualifying_sql} ORDER BY a.id LIMIT 1 OFFSET %s", (*params, cap))
        row = cursor.fetchone()
        first_beyond = row[0] if row else None
    return PersonLimit(qualifying=qualifying, first_beyond=first_beyond)


def person_limit_describe(campaign, limit: PersonLimit, beyond: int) -> list[str]:
    """The Run now confirmation's words for the campaign's limits and what they do."""
    lines = []
    # Two sentences, each with its own number: "more than 1 people" is not English, nor its like in
    # the other languages.
    if campaign.person_limit_refuse_above:
        qualifying, refuse_above = limit.qualifying or 0, campaign.person_limit_refuse_above
        numbers = _numbers(qualifying, refuse_above)
        rule = ngettext(
            "Person limit: a run is refused when more than one person qualifies.",
            "Person limit: a run is refused when more than %(limit)s people qualify.",
            refuse_above,
        )
        now = ngettext(
            "%(count)s person qualifies, so it runs.", "%(count)s people qualify, so it runs.", qualifying
        )
        lines.append(f"{rule % numbers} {now % numbers}")
    if campaign.person_limit_per_run:
        per_run = campaign.person_limit_per_run
        numbers = {
            "limit": number_format(per_run, force_grouping=True),
            "beyond": number_format(beyond, force_grouping=True),
        }
        rule = ngettext(
            "Person limit: at most one person per run, the first in lead id order.",
            "Person limit: at most %(limit)s people per run, the first in lead id order.",
            per_run,
        )
        skipped = ngettext(
            "%(beyond)s person beyond the limit is skipped.",
            "%(beyond)s people beyond the limit are skipped.",
            beyond,
        )
        lines.append(f"{rule % numbers} {skipped % numbers}")
    return lines
