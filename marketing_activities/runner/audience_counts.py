"""What a plan would give, counted with read-only queries: the Run now confirmations.

Planning a step writes a row per person; a confirmation only needs the
counts by outcome, and must not hold the database's write lock (SQLite) while
a marketer reads a dialog. So each step is one SELECT over the audience
that names every person's outcome with the same requirements the planner
uses (rules.py), in the same order, and groups by it:

- a person who fails a requirement gets its skip (the first one failed);
- of the people who meet them all, the number's winner is called and the
  others are skipped as duplicates (R3): one winner per distinct number, so
  the called are the distinct numbers and the duplicates the rest;
- a skip for a number's block (R4) is grouped by the person it comes from
  too, for the "because of" lines.

Every step counts the smart list's people, as the planner's later steps
take the first step's rows: the same people, with today's data.
"""

from dataclasses import dataclass, replace

from django.db import connection
from django.utils import timezone

from smscampaigns.models import Lead

from ..models import NUMBER_BLOCKS, FlowStep, Outcome, RunResult, SmartCampaign
from .person_limit import PersonLimit, person_limit_apply
from .planner import (
    NOT_RUN_THROUGH,
    NOT_RUN_THROUGH_SQL,
    _previous_audience_ranges,
    qualification_rule_applies,
    qualification_skip,
)
from .report import BLOCKERS_SHOWN, NumberBlocker, NumberBlockers, _lead_name
from .rules import NUMBER_NOT_BLOCKED, Sql, blocked_numbers_select, requirements


@dataclass
class StepCounts:
    step: FlowStep
    counts: dict  # outcome code: people, as RunStep.counts holds them
    blockers: dict  # outcome code: NumberBlockers, as report.number_blockers gives them
    person_limit: PersonLimit | None = None

    def outcome_counts(self):
        return Outcome.counted(self.counts)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Nobody has run through the flow before: the rule "every time", or no earlier run.
NOBODY_RAN = Sql("1 = 0")


def _already_ran(campaign: SmartCampaign) -> Sql:
    """True for the people an earlier real run had in its audience, under the rule
    "once" (or "once every N": a run within the period), as planning counts them."""
    if not qualification_rule_applies(campaign):
        return NOBODY_RAN
    previous = _previous_audience_ranges(campaign.pk, since=campaign.qualification_since(timezone.now()))
    if not previous:
        return NOBODY_RAN
    ranges = " OR ".join(["(r.run_step_id = %s AND r.id BETWEEN %s AND %s)"] * len(previous))
    return Sql(
        f"a.id IN (SELECT r.lead_id FROM {_table(RunResult)} r "
        f"WHERE r.outcome NOT IN ({NOT_RUN_THROUGH_SQL}) AND ({ranges}))",
        (*NOT_RUN_THROUGH, *(value for step_range in previous for value in step_range)),
    )


def _case(rules, *, otherwise: str) -> Sql:
    """CASE naming the skip of the first of `rules` a person fails, else `otherwise`."""
    text, params = "", []
    for rule in rules:
        skip = rule.otherwise if isinstance(rule.otherwise, Sql) else Sql(str(int(rule.otherwise)))
        text += f" WHEN NOT ({rule.condition.text}) THEN {skip.text}"
        params += [*rule.condition.params, *skip.params]
    return Sql(f"CASE{text} ELSE {otherwise} END", tuple(params))


PASSED = -1  # met every requirement tested so far


def _step_counts(
    cursor,
    step: FlowStep,
    audience: Sql,
    already_ran: Sql,
    *,
    ran_skip=None,
    person_limit=None,
    chunks=(),
    advance=lambda: None,
) -> tuple[dict, dict]:
    """({outcome code: people}, {number block code: {blocker: people}}) of the step's audience.

    Three queries, none of which joins every person to another table:
    one pass over the audience with the requirements a person's own row
    answers; the people who also meet the last requirement when it is a join
    (the list's subscribers), driven from that table; and the few holders of
    blocked numbers, driven from those numbers, moved from the outcome the
    first pass gave them to their number's skip.
    """
    rules = requirements(
        step.action,
        list_id=step.vibes_list_id,
        already_ran=already_ran,
        ran_skip=ran_skip or Outcome.SKIPPED_ALREADY_RAN,
        person_limit=person_limit,
        marketing=not step.campaign.operational,
    )
    # A requirement everyone meets, left out: a test fewer for each person in every
    # query (about a sixth of the first pass at a million on SQLite).
    rules = [rule for rule in rules if rule.condition != Sql(f"NOT ({NOBODY_RAN.text})")]
    joined = rules[-1] if rules[-1].joins else None
    own = [rule for rule in rules if rule is not NUMBER_NOT_BLOCKED and rule is not joined]
    called = int(Outcome.PLANNED_DRY_RUN)

    if joined and chunks:
        # The pass over everyone only sums (the distinct numbers are the join's):
        # it adds up over slices of the people, each a step of the progress.
        counts, calls, numbers = {}, 0, 0
        for chunk in chunks:
            chunk_counts, chunk_calls, _numbers = _first_pass(cursor, own, chunk, passed=PASSED)
            for skip, people in chunk_counts.items():
                counts[skip] = counts.get(skip, 0) + people
            calls += chunk_calls
            advance()
    else:
        counts, calls, numbers = _first_pass(cursor, own, audience, passed=PASSED if joined else called)
        advance()
    if joined:
        met = " AND ".join(f"({rule.condition.text})" for rule in own) or "1 = 1"
        cursor.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT a.mobile_phone) FROM ({audience.text}) a "
            f"JOIN {joined.joins} ON {joined.condition.text} WHERE {met}",
            (*audience.params, *joined.condition.params, *(p for rule in own for p in rule.condition.params)),
        )
        subscribed, numbers = cursor.fetchone()
        skip = int(joined.otherwise)
        counts[skip] = counts.get(skip, 0) + calls - subscribed
        calls = subscribed
        advance()

    by_blocker = {}
    if NUMBER_NOT_BLOCKED in rules:
        # What the first pass gave each holder of a blocked number, and what the plan gives them.
        blocked = blocked_numbers_select()
        join = f"LEFT JOIN {joined.joins} ON {joined.condition.text}" if joined else ""
        join_params = joined.condition.params if joined else ()
        # The join's row found: the last requirement met.
        alias = joined.joins.split()[-1] if joined else ""
        met_last = (
            [replace(joined, condition=Sql(f"{alias}.lead_id IS NOT NULL"), joins="")] if joined else []
        )
        without = _case([*own, *met_last], otherwise=str(called))
        with_block = _case([*rules[:-1], *met_last] if joined else rules, otherwise=str(called))
        cursor.execute(
            f"SELECT {without.text}, {with_block.text}, q.blocker, COUNT(*), COUNT(DISTINCT a.mobile_phone) "
            f"FROM ({audience.text}) a JOIN ({blocked.text}) q ON q.phone = a.mobile_phone {join} "
            f"GROUP BY 1, 2, 3",
            (
                *without.params,
                *with_block.params,
                *audience.params,
                *blocked.params,
                *join_params,
            ),
        )
        for was, outcome, blocker, people, distinct in cursor.fetchall():
            if was == called:
                calls -= people
                numbers -= distinct
            else:
                counts[was] -= people
            counts[outcome] = counts.get(outcome, 0) + people
            if Outcome(outcome) in NUMBER_BLOCKS:
                skipped = by_blocker.setdefault(Outcome(outcome).code, {})
                skipped[blocker] = skipped.get(blocker, 0) + people
        advance()
    # One winner per number; the others who met every requirement share it (R3).
    counts[called] = numbers
    counts[int(Outcome.SKIPPED_DUPLICATE_PHONE)] = calls - numbers
    return {Outcome(outcome).code: n for outcome, n in counts.items() if n}, by_blocker


def _first_pass(cursor, own: list, audience: Sql, *, passed: int) -> tuple[dict, int, int]:
    """({skip: people}, people who met every one of `own`, their distinct numbers)."""
    # The distinct numbers only when this pass is the last: otherwise the join's query counts them.
    numbers_sql = (
        "0" if passed == PASSED else "COUNT(DISTINCT CASE WHEN x.outcome = %s THEN x.mobile_phone END)"
    )
    numbers_params = () if passed == PASSED else (passed,)
    if all(isinstance(rule.otherwise, Outcome) for rule in own):
        # Each skip a sum of its own: one pass, and no sort of everyone by outcome.
        sums, params, met, met_params = [], [], [], []
        for rule in own:
            failed = " AND ".join([*met, f"NOT ({rule.condition.text})"])
            sums.append(f"SUM(CASE WHEN {failed} THEN 1 ELSE 0 END)")
            params += [*met_params, *rule.condition.params]
            met.append(f"({rule.condition.text})")
            met_params += rule.condition.params
        if passed != PASSED:
            sums.append(f"COUNT(DISTINCT CASE WHEN {' AND '.join(met) or '1 = 1'} THEN a.mobile_phone END)")
            params += met_params
        else:
            sums.append("0")
        cursor.execute(
            f"SELECT COUNT(*), {', '.join(sums)} FROM ({audience.text}) a", (*params, *audience.params)
        )
        total, *skipped, numbers = cursor.fetchone()
        counts = {int(rule.otherwise): n or 0 for rule, n in zip(own, skipped, strict=True)}
        return counts, total - sum(counts.values()), numbers
    first = _case(own, otherwise=str(passed))
    cursor.execute(
        f"SELECT x.outcome, COUNT(*), {numbers_sql} "
        f"FROM (SELECT {first.text} AS outcome, a.mobile_phone FROM ({audience.text}) a) x "
        "GROUP BY x.outcome",
        (*numbers_params, *first.params, *audience.params),
    )
    counts, calls, numbers = {}, 0, 0
    for outcome, people, distinct in cursor.fetchall():
        if outcome == passed:
            calls, numbers = people, distinct
        else:
            counts[outcome] = people
    return counts, calls, numbers


# People counted in one slice of the pass over everyone, when the counts report their progress.
CHUNK_PEOPLE = 100_000


def _audience(campaign: SmartCampaign, **id_range) -> Sql:
    return Sql(
        *Lead.objects.filter(campaign.smart_list.parsed().to_q(), **id_range)
        .order_by()
        .values("id", "mobile_phone", "blocklisted", "marketing_suspended")
        .query.sql_with_params()
    )


def _chunks(campaign: SmartCampaign, chunk_people: int) -> list[Sql]:
    """The audience in slices of lead ids, in id order (each read through the primary key)."""
    first, last = (
        Lead.objects.order_by("pk").values_list("pk", flat=True).first(),
        Lead.objects.order_by("-pk").values_list("pk", flat=True).first(),
    )
    if first is None:
        return []
    return [
        _audience(campaign, pk__gte=start, pk__lt=start + chunk_people)
        for start in range(first, last + 1, chunk_people)
    ]


def campaign_audience_counts(
    *, campaign: SmartCampaign, progress=None, chunk_people: int = CHUNK_PEOPLE
) -> list[StepCounts]:
    """Each step's counts by outcome as a plan of it would give them, read-only.

    With `progress`, the pass over everyone is taken in slices of lead ids,
    and `progress(done, total)` is called as each slice and each other query
    is counted: the counts are the same, and how far they are is known.
    The caller checks `campaign.problems()` first: the smart list must parse.
    """
    audience = _audience(campaign)
    already_ran = _already_ran(campaign)
    steps = list(campaign.steps())
    chunks = _chunks(campaign, chunk_people) if progress else []
    # Per step: the pass over everyone (sliced only when it has a join after it), the join, the blocks.
    total = 0
    for step in steps:
        rules = requirements(step.action, list_id=step.vibes_list_id, already_ran=already_ran)
        joined = rules[-1].joins
        total += (len(chunks) or 1) if joined else 1
        total += bool(joined) + (NUMBER_NOT_BLOCKED in rules)
    done = 0

    def advance():
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    found = []
    with connection.cursor() as cursor:
        # Raises PersonLimitRefused, as planning would.
        limit = person_limit_apply(cursor, campaign=campaign, audience=audience, already_ran=already_ran)
        for step in steps:
            counts = _step_counts(
                cursor,
                step,
                audience,
                already_ran,
                ran_skip=qualification_skip(campaign),
                person_limit=limit.requirement,
                chunks=chunks,
                advance=advance,
            )
            found.append(StepCounts(step, *counts, person_limit=limit))
    _name_blockers(found)
    return found


def _name_blockers(steps: list[StepCounts]) -> None:
    """Turn each step's (blocker, skipped) pairs into NumberBlockers, the most skipped first."""
    tops = {
        id(step): {
            code: sorted(skipped.items(), key=lambda pair: (-pair[1], pair[0]))[:BLOCKERS_SHOWN]
            for code, skipped in step.blockers.items()
        }
        for step in steps
    }
    leads = Lead.objects.in_bulk(
        {lead_id for top in tops.values() for pairs in top.values() for lead_id, _skipped in pairs}
    )
    for step in steps:
        step.blockers = {
            code: NumberBlockers(
                shown=[
                    NumberBlocker(lead_id, _lead_name(leads.get(lead_id), lead_id), skipped)
                    for lead_id, skipped in top
                ],
                total=len(step.blockers[code]),
            )
            for code, top in tops[id(step)].items()
        }
