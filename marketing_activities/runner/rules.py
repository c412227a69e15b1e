"""Who a step calls for, and why everyone else is skipped: every rule in one place.

A person of a step's audience is called for when they meet every requirement
of the step's action; otherwise they are skipped with the outcome of the
first requirement they fail, in the order listed. The planner turns each list
into both the SQL that picks who is called and the CASE that names each skip,
so the two cannot disagree. Of the people who meet them all, one per number
is called (R3). Blocks (R4) hold until the call: the worker checks each
batch again just before calling (`blocked_since_planning`).

The SQL reads the audience as `a` (id, mobile_phone, blocklisted,
marketing_suspended, first_outcome) and the person's row of the plan as `q`
(for a holder of a blocked number: the person it comes from, and the skip).
The tests named beside each rule are in
tests/marketing_activities/test_runner_planner.py unless another file is named.
"""

from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection
from django.db.models import Q

from smscampaigns.models import Lead
from vibes.models import Subscription

from ..models import FlowStep, Outcome
from .limits import numbers_at_limit_sql


class Sql(NamedTuple):
    text: str
    params: tuple = ()


@dataclass(frozen=True)
class Requirement:
    """What a person must meet for the step to call for them, and their skip when they do not."""

    condition: Sql
    otherwise: Outcome | Sql  # the skip, or SQL that picks it
    # The condition as the ON of a join with this table, so that the query
    # starts from that table's rows when they are few (the list's
    # subscribers). Only the last requirement may be joined: the CASE that
    # names the skips never states the last one.
    joins: str = ""


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


# R4: the blocks, in the order a number's block is named (a blocklisted
# holder before a suspended one): the lead's flag, the person's own skip,
# and the skip of the others who hold their number.
BLOCKS = (
    ("blocklisted", Outcome.SKIPPED_BLOCKLISTED, Outcome.SKIPPED_NUMBER_BLOCKLISTED),
    ("marketing_suspended", Outcome.SKIPPED_MARKETING_SUSPENDED, Outcome.SKIPPED_NUMBER_SUSPENDED),
)

# R4 per number: nobody is texted or enrolled on a number a blocked person
# holds, anywhere in the database. The planner gives every holder of such a
# number a row in `q` naming that person and the skip (`blocked_numbers_sql`)
# when a step's requirements hold this one.
# test_nobody_is_called_on_a_number_a_blocked_person_holds,
# test_a_number_blocked_by_a_blocklisted_and_a_suspended_person_names_the_blocklisted_one,
# test_a_later_step_honours_a_block_made_after_the_first_was_planned
NUMBER_NOT_BLOCKED = Requirement(Sql("q.blocker IS NULL"), Sql("q.outcome"))

# R3: of the people a step may call for who share a number, the lowest lead
# id is called, the same in every run; the others are skipped naming them.
# test_the_winner_of_a_shared_number_is_chosen_deterministically,
# test_national_and_international_spellings_are_one_number
NUMBER_WINNER = "MIN(a.id) OVER (PARTITION BY a.mobile_phone)"


def requirements(
    action: str,
    *,
    list_id: int,
    already_ran: Sql,
    ran_skip: Outcome | Sql = Outcome.SKIPPED_ALREADY_RAN,
    person_limit: Sql | None = None,
    marketing: bool = False,
) -> list[Requirement]:
    """Every requirement of who a step of `action` calls for, in the order its skips are named.

    `already_ran` is true for the people who have run through the flow
    before, under the qualification rule "once" (or within the period of
    "once every N", then skipped with `ran_skip`); the planner works it out.
    `person_limit`, when the campaign caps a run, is true for the people
    within the cap. `marketing`: the campaign is not operational, so its
    SMS obey the communication limits.
    """
    ran_once = Requirement(
        # test_qualification_once_skips_people_who_ran_through_the_flow_before,
        # test_qualification.py::test_once_every_7_days_over_three_runs_with_the_clock_moved
        Sql(f"NOT ({already_ran.text})", already_ran.params),
        ran_skip,
    )
    qualify = [ran_once]
    if person_limit is not None:
        # Who qualifies beyond the cap never enters the flow: their own skip
        # comes before any other (a block, no number...).
        # test_person_limit.py::test_a_cap_calls_exactly_n_people_and_skips_the_rest_in_lead_id_order
        qualify.append(Requirement(person_limit, Outcome.SKIPPED_PERSON_LIMIT))
    # R7. test_send_skips_blocklisted_suspended_and_people_without_a_number
    has_number = Requirement(Sql("a.mobile_phone <> ''"), Outcome.SKIPPED_NO_PHONE)
    if action in (FlowStep.Action.WAIT, FlowStep.Action.REMOVE_FROM_FLOW):
        # Text nobody: every person of the audience waits, or is taken out of
        # the chosen campaign's waiting flow. tests/marketing_activities/test_wait_step.py
        return [ran_once, Requirement(Sql("1 = 1"), Outcome.SKIPPED_ALREADY_RAN)]
    if action == FlowStep.Action.REQUEST_CAMPAIGN:
        # Texts nobody: the requested campaign's own run applies R2–R7 to each person.
        # tests/marketing_activities/test_request_campaign.py
        return [*qualify, Requirement(Sql("1 = 1"), Outcome.SKIPPED_ALREADY_RAN)]
    if action == FlowStep.Action.UNSUBSCRIBE:
        # Opting out texts nobody, so no block stops it, and the local status
        # does not either: a keyword re-join or a missed callback leaves it
        # stale, and Vibes answers 404 for a number that is out indeed.
        # test_unsubscribe_calls_for_everyone_with_a_number_whatever_the_local_status_says,
        # test_unsubscribe_is_never_blocked_by_a_number
        return [*qualify, has_number]

    # R4: blocklisted and suspended people are never texted nor enrolled.
    # test_send_skips_blocklisted_suspended_and_people_without_a_number,
    # test_a_person_blocked_on_their_own_keeps_their_own_reason
    not_blocked = [Requirement(Sql(f"a.{flag} = %s", (False,)), own) for flag, own, _number in BLOCKS]
    blocks = [*not_blocked, NUMBER_NOT_BLOCKED]

    if action == FlowStep.Action.SEND_SMS:
        # R2: only people subscribed to the list (not pending, not out) get
        # the SMS. test_send_goes_only_to_people_subscribed_to_the_vibes_list
        subscribed = Requirement(
            Sql(
                "s.lead_id = a.id AND s.vibes_list_id = %s AND s.status = %s",
                (list_id, Subscription.Status.SUBSCRIBED),
            ),
            Outcome.SKIPPED_NOT_SUBSCRIBED,
            joins=f"{_table(Subscription)} s",
        )
        limit = communication_limit(list_id=list_id) if marketing else None
        return [*qualify, *blocks, has_number, *([limit] if limit else []), subscribed]
    if action == FlowStep.Action.SUBSCRIBE:
        # One participant request per number, and no second confirmation text
        # to a number that is subscribed or pending already.
        # test_subscribe_skips_people_already_subscribed_or_pending_on_their_number
        not_on_list = Requirement(
            Sql(
                f"NOT {_number_on_list('IN (%s, %s)')}",
                (list_id, Subscription.Status.SUBSCRIBED, Subscription.Status.PENDING),
            ),
            Sql(
                f"CASE WHEN {_number_on_list('= %s')} THEN {int(Outcome.SKIPPED_ALREADY_SUBSCRIBED)} "
                f"ELSE {int(Outcome.SKIPPED_ALREADY_PENDING)} END",
                (list_id, Subscription.Status.SUBSCRIBED),
            ),
        )
        return [*qualify, *blocks, has_number, not_on_list]
    raise ValueError(f"unknown action {action}")


def communication_limit(*, list_id: int) -> Requirement | None:
    """A marketing SMS goes to no number that had its share of them (limits.py);
    None while no limit is set.

    Named only for the people the step would text otherwise: someone not
    subscribed to the list keeps that reason, the first one a marketer fixes.
    test_runner_limits.py::test_the_planner_skips_a_number_at_its_limit,
    test_runner_limits.py::test_a_person_not_subscribed_keeps_that_reason_at_the_limit
    """
    at_limit = numbers_at_limit_sql()
    if at_limit is None:
        return None
    at_limit_text, at_limit_params = at_limit
    return Requirement(
        Sql(
            f"NOT (a.mobile_phone IN ({at_limit_text}) AND EXISTS (SELECT 1 FROM {_table(Subscription)} sl "
            f"WHERE sl.lead_id = a.id AND sl.vibes_list_id = %s AND sl.status = %s))",
            (*at_limit_params, list_id, Subscription.Status.SUBSCRIBED),
        ),
        Outcome.SKIPPED_COMMUNICATION_LIMIT,
    )


def _number_on_list(status_sql: str) -> str:
    """Someone with this number (the person or another) is on the list with that status."""
    return (
        f"EXISTS (SELECT 1 FROM {_table(Lead)} o JOIN {_table(Subscription)} s ON s.lead_id = o.id "
        f"WHERE o.mobile_phone = a.mobile_phone AND s.vibes_list_id = %s AND s.status {status_sql})"
    )


def blocked_numbers_sql(table: str) -> Sql:
    """Fills `table` (phone, blocker, outcome) with every number a blocked person
    holds, the person named for it and the skip it means for the others.

    The person named is the same in every run: the first kind of block of
    BLOCKS, then the lowest id. The WHERE repeats the condition of the
    partial index on blocked people, which it reads them through.
    """
    select = blocked_numbers_select()
    return Sql(f"INSERT INTO {table} (phone, blocker, outcome) {select.text}", select.params)


def number_block_join(number: str) -> Sql:
    """A LEFT JOIN of `q` (blocker, outcome) for the number `number` (a column
    of the outer query): the same person and skip as `blocked_numbers_select`
    gives that number, looked up through the blocked numbers' index for this
    number alone. For a page of people, where the whole set of blocked numbers
    (tens of thousands at a million people) would be read for a few of them."""
    flags = [flag for flag, _own, _number in BLOCKS]
    outcome = " ".join(f"WHEN {flag} = %s THEN {int(skip)}" for flag, _own, skip in BLOCKS)
    kind = " ".join(f"WHEN b.{flag} = %s THEN {order}" for order, flag in enumerate(flags))
    blocked = " OR ".join(f"b.{flag} = %s" for flag in flags)
    return Sql(
        f"LEFT JOIN (SELECT id AS blocker, CASE {outcome} END AS outcome FROM {_table(Lead)}) q "
        f"ON q.blocker = (SELECT b.id FROM {_table(Lead)} b WHERE b.mobile_phone = {number} "
        f"AND {number} <> '' AND ({blocked}) ORDER BY CASE {kind} END, b.id LIMIT 1)",
        (True,) * (3 * len(BLOCKS)),
    )


def blocked_numbers_select() -> Sql:
    """The SELECT of `blocked_numbers_sql`: phone, blocker, outcome."""
    # Per number and kind of block, its lowest id among the holders.
    firsts = [(f"MIN(CASE WHEN {flag} = %s THEN id END)", number) for flag, _own, number in BLOCKS]
    blocker = "COALESCE(" + ", ".join(first for first, _number in firsts) + ")"
    outcome = " ".join(f"WHEN {first} IS NOT NULL THEN {int(number)}" for first, number in firsts)
    blocked = " OR ".join(f"{flag} = %s" for flag, _own, _number in BLOCKS)
    return Sql(
        f"SELECT mobile_phone AS phone, {blocker} AS blocker, CASE {outcome} END AS outcome "
        f"FROM {_table(Lead)} WHERE ({blocked}) AND mobile_phone <> '' GROUP BY mobile_phone",
        (True,) * (3 * len(BLOCKS)),
    )


def blocked_since_planning(rows: list[tuple]) -> dict[tuple[Outcome, int | None], list[int]]:
    """R4 until the call: of the queued rows (result id, lead id, number) about
    to be called, those whose person or number was blocked since planning,
    as {(skip, person named or None): result ids}. One indexed query.

    test_runner_execution.py::test_a_block_made_after_planning_holds_when_the_calls_are_made
    """
    lead_ids = {lead_id for _id, lead_id, _phone in rows}
    phones = {phone for _id, _lead_id, phone in rows}
    flags = [flag for flag, _own, _number in BLOCKS]
    flagged = Q()
    for flag in flags:
        flagged |= Q(**{flag: True})
    blocked = (
        Lead.objects.filter(flagged)
        .filter(Q(mobile_phone__in=phones) | Q(pk__in=lead_ids))
        .values_list("pk", "mobile_phone", *flags)
    )
    kinds = {}  # lead id: the first of BLOCKS that applies to them
    named = {}  # number: (kind, lead id) of the person named for it, as the planner names them
    for lead_id, phone, *on in blocked:
        kinds[lead_id] = on.index(True)
        if phone:
            named[phone] = min(named.get(phone, (kinds[lead_id], lead_id)), (kinds[lead_id], lead_id))
    skips: dict[tuple[Outcome, int | None], list[int]] = {}
    for result_id, lead_id, phone in rows:
        if lead_id in kinds:
            skips.setdefault((BLOCKS[kinds[lead_id]][1], None), []).append(result_id)
        elif phone in named:
            kind, blocker = named[phone]
            skips.setdefault((BLOCKS[kind][2], blocker), []).append(result_id)
    return skips
