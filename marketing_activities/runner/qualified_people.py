"""View Qualified People: who a batch campaign's first step would take now, and
the outcome each would get, a page at a time, read-only.

The counts by reason are Run now's (count_jobs.py, in the background at a
million people). The people behind them are read here with the same
requirements (rules.py, as audience_counts.py reads them): one SELECT over
the audience in lead id order from a cursor, naming each person's outcome
with the CASE of the first requirement they fail; of those who meet them all,
the lowest id of each number is called and the others are duplicates (R3),
looked up for the page's numbers only. Nothing is written.
"""

from dataclasses import dataclass, replace

from django.db import connection

from smscampaigns.models import Lead

from ..models import NUMBER_BLOCKS, FlowStep, Outcome, SmartCampaign
from .audience_counts import PASSED, _already_ran, _audience, _case
from .person_limit import person_limit_apply
from .planner import NO_CALL_OUTCOMES, qualification_skip
from .rules import NUMBER_NOT_BLOCKED, Requirement, Sql, number_block_join, requirements

PAGE_SIZE = 50
FILTERED_SLICE = 1000
# The outcome of a person the step would call for, as the confirmations name it.
CALLED = Outcome.PLANNED_DRY_RUN


@dataclass(frozen=True)
class QualifiedPerson:
    lead: Lead
    outcome: Outcome
    # The person their number's SMS goes to (a duplicate), or whose block closes it.
    because_of: Lead | None = None


@dataclass(frozen=True)
class QualifiedPage:
    people: list
    after: int | None  # the cursor of the next page: the last lead id shown (None: the last page)


def _first_step_rules(campaign: SmartCampaign, step: FlowStep, cursor) -> tuple[list[Requirement], bool]:
    """The first step's requirements as its plan would apply them, and whether
    it calls once per number (R3) rather than once per person."""
    audience = _audience(campaign)
    already_ran = _already_ran(campaign)
    # Raises PersonLimitRefused, as planning would.
    limit = person_limit_apply(cursor, campaign=campaign, audience=audience, already_ran=already_ran)
    rules = requirements(
        step.action,
        list_id=step.vibes_list_id,
        already_ran=already_ran,
        ran_skip=qualification_skip(campaign),
        person_limit=limit.requirement,
        marketing=not campaign.operational,
    )
    per_person = step.action in (FlowStep.Action.REQUEST_CAMPAIGN, *NO_CALL_OUTCOMES)
    return rules, not per_person


def _outcome_select(rules: list[Requirement], audience: Sql) -> Sql:
    """SELECT id, mobile_phone, outcome (PASSED for who meets every requirement),
    blocker, over `audience`, with the blocked numbers and the joined
    requirement's table as LEFT JOINs (as audience_counts reads them)."""
    joined = rules[-1] if rules[-1].joins else None
    joins, params = [], []
    blocker = "NULL"
    if NUMBER_NOT_BLOCKED in rules:
        # Each person's number looked up alone: a page reads a few of them.
        blocked = number_block_join("a.mobile_phone")
        joins.append(blocked.text)
        params += blocked.params
        blocker = "q.blocker"
    checked = rules
    if joined:
        joins.append(f"LEFT JOIN {joined.joins} ON {joined.condition.text}")
        params += joined.condition.params
        alias = joined.joins.split()[-1]
        # The join's row found: the last requirement met.
        checked = [*rules[:-1], replace(joined, condition=Sql(f"{alias}.lead_id IS NOT NULL"), joins="")]
    case = _case(checked, otherwise=str(PASSED))
    return Sql(
        f"SELECT a.id, a.mobile_phone, {case.text} AS outcome, {blocker} AS blocker "
        f"FROM ({audience.text}) a {' '.join(joins)}",
        (*case.params, *audience.params, *params),
    )


def qualified_people_page(
    *,
    campaign: SmartCampaign,
    outcome: Outcome | None = None,
    after: int | None = None,
    page_size: int = PAGE_SIZE,
) -> QualifiedPage:
    """The people the first step would take, in lead id order after `after`,
    with the outcome each would get; only those of `outcome` when given.
    The caller checked `campaign.problems()` (the smart list parses)."""
    steps = campaign.steps()
    if not steps:
        return QualifiedPage([], None)
    step = steps[0]
    found: list[tuple[int, Outcome, int | None]] = []
    # What the database can filter on: a skip's reason (known from the row itself),
    # or, for duplicates, the people whose number someone before them holds.
    passed = outcome in (CALLED, Outcome.SKIPPED_DUPLICATE_PHONE)
    skip = None if outcome is None or passed else outcome
    shared_only = outcome == Outcome.SKIPPED_DUPLICATE_PHONE
    with connection.cursor() as cursor:
        rules, per_number = _first_step_rules(campaign, step, cursor)
        # One more than a page, to know whether another follows. A skip is
        # known from the row itself, so the database returns that reason's
        # people alone. A call and a duplicate are told apart only once the
        # slice's numbers are looked up, so a page of either may take more
        # than one slice of the audience: those read larger slices, so that a
        # page takes a few queries rather than dozens.
        size = max(page_size + 1, FILTERED_SLICE) if passed else page_size + 1
        while len(found) <= page_size:
            # Calls and duplicates are the audience's rows that meet every
            # requirement; the slice reads the audience as it comes and keeps
            # them here: asked to filter on the outcome, PostgreSQL's planner
            # expects them few and reads and sorts everyone (3.4 s at a million).
            # A duplicate's number has a holder of a lower id (its winner): only
            # the people whose number someone before them holds can be one.
            rows = _slice(cursor, campaign, rules, after=after, size=size, skip=skip, shared_only=shared_only)
            winners = _winners(cursor, campaign, rules, rows) if per_number else {}
            for lead_id, phone, code, blocker in rows:
                person = _person(lead_id, phone, code, blocker, winners)
                if outcome is None or person[1] == outcome:
                    found.append(person)
            if len(rows) < size:
                break  # the audience ends in this slice
            after = rows[-1][0]
    more = len(found) > page_size
    found = found[:page_size]
    leads = Lead.objects.in_bulk({pk for lead_id, _o, other in found for pk in (lead_id, other) if pk})
    people = [
        QualifiedPerson(leads[lead_id], reason, leads.get(other) if other else None)
        for lead_id, reason, other in found
        if lead_id in leads
    ]
    return QualifiedPage(people, found[-1][0] if more else None)


def _person(lead_id, phone, code, blocker, winners) -> tuple[int, Outcome, int | None]:
    if code == PASSED:
        winner = winners.get(phone, lead_id) if phone else lead_id
        if winner == lead_id:
            return lead_id, CALLED, None
        return lead_id, Outcome.SKIPPED_DUPLICATE_PHONE, winner
    skip = Outcome(code)
    return lead_id, skip, blocker if skip in NUMBER_BLOCKS else None


def _slice(cursor, campaign, rules, *, after, size, skip=None, shared_only=False) -> list[tuple]:
    audience = _audience(campaign, **({"pk__gt": after} if after is not None else {}))
    select = _outcome_select(rules, audience)
    where, params = "", []
    if skip is not None:
        where, params = "WHERE x.outcome = %s", [int(skip)]
    elif shared_only:
        # Through the index on the number, for each person read.
        leads = connection.ops.quote_name(Lead._meta.db_table)
        where = (
            f"WHERE x.mobile_phone <> '' AND EXISTS (SELECT 1 FROM {leads} o "
            "WHERE o.mobile_phone = x.mobile_phone AND o.id < x.id)"
        )
    cursor.execute(
        f"SELECT x.id, x.mobile_phone, x.outcome, x.blocker FROM ({select.text}) x {where} "
        f"ORDER BY x.id LIMIT %s",
        (*select.params, *params, size),
    )
    return cursor.fetchall()


def _winners(cursor, campaign, rules, rows) -> dict[str, int]:
    """For the numbers of the rows that meet every requirement: the lowest id of
    the audience that meets them all on that number (R3: its SMS goes to them)."""
    numbers = sorted({phone for _id, phone, code, _b in rows if code == PASSED and phone})
    if not numbers:
        return {}
    select = _outcome_select(rules, _audience(campaign, mobile_phone__in=numbers))
    cursor.execute(
        f"SELECT x.mobile_phone, MIN(x.id) FROM ({select.text}) x "
        "WHERE x.outcome = %s GROUP BY x.mobile_phone",
        (*select.params, PASSED),
    )
    return dict(cursor.fetchall())
