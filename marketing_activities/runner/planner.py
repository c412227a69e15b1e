"""Planning a flow step: who gets a call, who is skipped and why, in SQL.

For each step the planner writes one result row per person of the run's
audience with one INSERT ... SELECT, whatever the audience size:

1. the people the step may call for ("qualified") go into a temporary table
   together with the winner of their phone number: the lowest lead id among
   the qualified people who share that number (R3);
2. every person of the audience gets a row: the winner of a number is
   queued, the other qualified people of that number are skipped naming the
   winner, everyone else is skipped with the first reason that applies.

An SMS goes to a number, not to a record (R4): for Send and Subscribe, every
number held by a blocklisted or suspended person, anywhere in the database,
goes into a small temporary table with the person it comes from. Nobody on
such a number qualifies; everyone who holds it joins the qualified people's
table with that person instead of a winner (one table keyed by lead, so the
row-writing INSERT joins once), and is skipped naming that person.
Unsubscribe texts nobody and is never blocked; it calls Vibes for everyone
of the audience with a number (once per number), whatever the local status
says: that status may be stale, and opting out is the safe direction.

The first step's audience is the smart list; later steps take the first
step's rows as the audience, so a run works on one snapshot of people.
"""

import logging
import threading
import time

from django.db import connection, transaction
from django.utils import timezone

from smscampaigns.models import Lead
from vibes.models import Subscription

from ..models import NUMBER_BLOCKS, CampaignRun, FlowStep, Outcome, RunBatch, RunResult, RunStep

logger = logging.getLogger(__name__)

BATCH_SPAN = 200  # result ids per batch: ~50 calls when a quarter qualifies, so a crash leaves few in doubt

SUBSCRIBED = Subscription.Status.SUBSCRIBED
PENDING = Subscription.Status.PENDING


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


class PlanningError(Exception):
    pass


def audience_sql(run_step: RunStep):
    """(sql, params) selecting id, mobile_phone, blocklisted,
    marketing_suspended and first_outcome of the step's audience."""
    run = run_step.run
    if run_step.position == 0:
        definition = run.campaign.smart_list.parsed()
        queryset = (
            Lead.objects.filter(definition.to_q())
            .order_by()
            .values("id", "mobile_phone", "blocklisted", "marketing_suspended")
        )
        sql, params = queryset.query.sql_with_params()
        return f"SELECT a.*, NULL AS first_outcome FROM ({sql}) a", params
    first = run.steps.get(position=0)
    sql = (
        f"SELECT l.id, l.mobile_phone, l.blocklisted, l.marketing_suspended, r.outcome AS first_outcome "
        f"FROM {_table(RunResult)} r JOIN {_table(Lead)} l ON l.id = r.lead_id "
        f"WHERE r.run_step_id = %s AND r.id BETWEEN %s AND %s"
    )
    return sql, [first.pk, first.first_result_id, first.last_result_id]


def _number_has_subscription(status_sql: str):
    """Someone with this number (the person or another) is on the list with that status."""
    return (
        f"EXISTS (SELECT 1 FROM {_table(Lead)} o JOIN {_table(Subscription)} s ON s.lead_id = o.id "
        f"WHERE o.mobile_phone = a.mobile_phone AND s.vibes_list_id = %s AND s.status {status_sql})"
    )


def _qualified_people(action: str, list_id: int):
    """(SQL after SELECT ... , params): FROM and WHERE picking, from audience
    alias `a`, the people this step may call for."""
    if action == FlowStep.Action.SEND_SMS:
        # Driven from the subscriptions: the list's subscribers are usually a
        # small part of the audience, so this reads far fewer rows.
        return (
            f"JOIN {_table(Subscription)} s ON s.lead_id = a.id AND s.vibes_list_id = %s AND s.status = %s "
            "WHERE a.blocklisted = %s AND a.marketing_suspended = %s AND a.mobile_phone <> ''",
            [list_id, SUBSCRIBED, False, False],
        )
    if action == FlowStep.Action.SUBSCRIBE:
        return (
            "WHERE a.blocklisted = %s AND a.marketing_suspended = %s AND a.mobile_phone <> '' AND NOT "
            + _number_has_subscription("IN (%s, %s)"),
            [False, False, list_id, SUBSCRIBED, PENDING],
        )
    if action == FlowStep.Action.UNSUBSCRIBE:
        # Opting people out texts nobody, so blocklisted and suspended people
        # are unsubscribed too. So are people the local data holds to be out
        # already: a keyword re-join or a missed callback leaves it stale,
        # and Vibes answers 404 for a number that is out indeed.
        return "WHERE a.mobile_phone <> ''", []
    raise PlanningError(f"unknown action {action}")


def _blocks_numbers(action: str) -> bool:
    return action != FlowStep.Action.UNSUBSCRIBE


def _blocked_numbers_sql(table: str):
    """(sql, params) filling `table` with every number a blocklisted or
    suspended person holds, the person it comes from and the skip it means.

    A blocklisted holder comes before a suspended one, then the lowest id, so
    the person named is the same in every run.
    """
    blocklisted_id = "MIN(CASE WHEN blocklisted = %s THEN id END)"
    return (
        f"INSERT INTO {table} (phone, blocker, outcome) "
        f"SELECT mobile_phone, COALESCE({blocklisted_id}, MIN(id)), "
        f"CASE WHEN {blocklisted_id} IS NOT NULL THEN {int(Outcome.SKIPPED_NUMBER_BLOCKLISTED)} "
        f"ELSE {int(Outcome.SKIPPED_NUMBER_SUSPENDED)} END "
        f"FROM {_table(Lead)} WHERE (blocklisted = %s OR marketing_suspended = %s) AND mobile_phone <> '' "
        f"GROUP BY mobile_phone",
        [True, True, True, True],
    )


def _number_holders_sql(blocked_table: str, people_table: str):
    """(sql, params) adding to `people_table` everyone who holds a blocked
    number, with the person it comes from and the skip it means."""
    # Driven from the few blocked numbers through the index on mobile_phone:
    # the IN makes SQLite start there even without statistics on the table.
    # A person already qualified changed number between the two statements
    # (another transaction, on PostgreSQL): the worker checks again before
    # it calls, so planning goes on rather than fail.
    return (
        f"INSERT INTO {people_table} (lead_id, blocker, outcome) SELECT l.id, b.blocker, b.outcome "
        f"FROM {_table(Lead)} l JOIN {blocked_table} b ON b.phone = l.mobile_phone "
        f"WHERE l.mobile_phone IN (SELECT phone FROM {blocked_table}) ON CONFLICT (lead_id) DO NOTHING",
        [],
    )


def _skip_reason(action: str, list_id: int):
    """SQL CASE branches (on alias `a`, and `q` for the number's block)
    naming why an unqualified person is skipped."""
    branches = []
    params = []
    if _blocks_numbers(action):
        branches += [
            ("a.blocklisted = %s", [True], Outcome.SKIPPED_BLOCKLISTED),
            ("a.marketing_suspended = %s", [True], Outcome.SKIPPED_MARKETING_SUSPENDED),
            # The person is clean, someone else on the number is not.
            ("q.blocker IS NOT NULL", [], None),
        ]
    branches.append(("a.mobile_phone = ''", [], Outcome.SKIPPED_NO_PHONE))
    if action == FlowStep.Action.SUBSCRIBE:
        branches.append(
            (_number_has_subscription("= %s"), [list_id, SUBSCRIBED], Outcome.SKIPPED_ALREADY_SUBSCRIBED)
        )
        fallback = Outcome.SKIPPED_ALREADY_PENDING
    elif action == FlowStep.Action.UNSUBSCRIBE:
        fallback = Outcome.SKIPPED_NO_PHONE  # everyone with a number is called for
    else:
        fallback = Outcome.SKIPPED_NOT_SUBSCRIBED
    sql = ""
    for condition, condition_params, outcome in branches:
        sql += f" WHEN {condition} THEN {'q.outcome' if outcome is None else int(outcome)}"
        params += condition_params
    return sql, params, int(fallback)


def _previous_audience_ranges(campaign_id: int, *, exclude_run: CampaignRun | None = None):
    """(step id, first id, last id) of the first steps of earlier real runs."""
    steps = RunStep.objects.filter(
        run__campaign_id=campaign_id,
        run__dry_run=False,
        position=0,
        first_result_id__isnull=False,
    )
    if exclude_run is not None:
        steps = steps.exclude(run=exclude_run)
    return list(steps.values_list("pk", "first_result_id", "last_result_id"))


def everyone_already_ran(campaign) -> int | None:
    """Under the qualification rule "once": how many people the smart list
    picks, when every one of them has already run through the flow (an
    earlier real run had them in its audience, as planning counts it); None
    when anyone is left, or when no earlier run counts.

    Counts, never a plan: the smart list's people, then (only when the
    earlier audiences could hold them all) those of them found in the
    earlier runs' first steps, read through their id ranges and joined to
    the people by key.
    """
    if campaign.qualification_rule != campaign.QualificationRule.ONCE:
        return None
    previous = _previous_audience_ranges(campaign.pk)
    if not previous:
        return None
    people_sql, people_params = (
        Lead.objects.filter(campaign.smart_list.parsed().to_q())
        .order_by()
        .values("id")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({people_sql}) a", people_params)
        people = cursor.fetchone()[0]
        if people > sum(last - first + 1 for _, first, last in previous):
            return None  # more people than the earlier audiences had rows: someone is new
        # A step has one row per person, so one earlier run needs no DISTINCT (half the time).
        counted = "COUNT(*)" if len(previous) == 1 else "COUNT(DISTINCT r.lead_id)"
        ranges_sql = " OR ".join(["(r.run_step_id = %s AND r.id BETWEEN %s AND %s)"] * len(previous))
        cursor.execute(
            f"SELECT {counted} FROM {_table(RunResult)} r JOIN ({people_sql}) a ON a.id = r.lead_id "
            f"WHERE r.outcome <> %s AND ({ranges_sql})",
            [
                *people_params,
                int(Outcome.ALREADY_RAN),
                *(value for step_range in previous for value in step_range),
            ],
        )
        already_ran = cursor.fetchone()[0]
    return people if already_ran >= people else None


def _temp_table_ddl(name: str, columns: str):
    if connection.vendor == "postgresql":
        return f"CREATE TEMPORARY TABLE {name} ({columns}) ON COMMIT DROP"
    return f"CREATE TEMPORARY TABLE {name} ({columns})"


def _drop_temp(cursor, name):
    if connection.vendor != "postgresql":
        cursor.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _checkpoint_in_background():
    """Copy the plan's pages from SQLite's write-ahead log into the database
    on another thread, so the worker starts sending instead of waiting."""

    def checkpoint():
        # Best effort: any later commit checkpoints the log if this does not.
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            logger.debug("background checkpoint skipped", exc_info=True)
        finally:
            connection.close()

    threading.Thread(target=checkpoint, name="sqlite-checkpoint", daemon=True).start()


def plan_step(run_step: RunStep) -> dict[str, int]:
    """Write the step's result rows and batches; return its counts by outcome code.

    Planning a step twice is refused: the step moves from pending to planned
    in the same transaction that writes its rows (R8). The counts by reason
    are a summary of the rows, taken once they are committed.
    """
    write_plan(run_step)
    return record_counts(run_step)


def write_plan(run_step: RunStep) -> None:
    """The step's result rows and batches, in one transaction."""
    if connection.vendor != "sqlite":
        _write_plan(run_step)
        return
    # A million rows fill SQLite's write-ahead log with tens of megabytes,
    # which the committing connection would copy into the database at once.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    try:
        _write_plan(run_step)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=1000")
    if not connection.in_atomic_block:  # a preview rolls back: nothing to copy
        _checkpoint_in_background()


def record_counts(run_step: RunStep) -> dict[str, int]:
    """Count the step's rows by outcome into RunStep.counts."""
    with transaction.atomic():
        # Under the step's lock: workers may already be adding their deltas.
        step = RunStep.objects.select_for_update().get(pk=run_step.pk)
        counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
        RunStep.objects.filter(pk=step.pk).update(counts=counts, counts_updated_at=timezone.now())
    run_step.counts = counts
    return counts


@transaction.atomic
def _write_plan(run_step: RunStep) -> None:
    started = time.perf_counter()
    claimed = RunStep.objects.filter(pk=run_step.pk, status=RunStep.Status.PENDING).update(
        status=RunStep.Status.PLANNED
    )
    if not claimed:
        raise PlanningError(f"step {run_step.pk} is already planned")
    run = run_step.run
    action = run_step.action
    list_id = run_step.vibes_list_id
    source_sql, source_params = audience_sql(run_step)
    qualified_sql, qualified_params = _qualified_people(action, list_id)
    skip_sql, skip_params, fallback = _skip_reason(action, list_id)
    called = int(Outcome.PLANNED_DRY_RUN if run.dry_run else Outcome.QUEUED)
    once = run.campaign.qualification_rule == run.campaign.QualificationRule.ONCE

    results = _table(RunResult)
    lead_key = "BIGINT PRIMARY KEY" if connection.vendor == "postgresql" else "INTEGER PRIMARY KEY"
    suffix = f"{run_step.pk}"
    ran_table, qualified_table, blocked_table = f"plan_ran_{suffix}", f"plan_q_{suffix}", f"plan_b_{suffix}"
    with connection.cursor() as cursor:
        if run_step.position > 0:
            # Later steps inherit the first step's verdict.
            already_ran_sql, already_ran_params = "a.first_outcome = %s", [int(Outcome.ALREADY_RAN)]
        else:
            already_ran_sql, already_ran_params = "1 = 0", []
        if run_step.position == 0 and once:
            previous = _previous_audience_ranges(run.campaign_id, exclude_run=run)
            if previous:
                # Everyone who was in an earlier run's audience has run
                # through this flow (the qualification rule "once").
                cursor.execute(_temp_table_ddl(ran_table, f"lead_id {lead_key}"))
                for step_id, first_id, last_id in previous:
                    cursor.execute(
                        f"INSERT INTO {ran_table} (lead_id) SELECT DISTINCT r.lead_id FROM {results} r "
                        f"WHERE r.run_step_id = %s AND r.id BETWEEN %s AND %s AND r.outcome <> %s "
                        f"AND r.lead_id NOT IN (SELECT lead_id FROM {ran_table})",
                        [step_id, first_id, last_id, int(Outcome.ALREADY_RAN)],
                    )
                already_ran_sql = f"a.id IN (SELECT lead_id FROM {ran_table})"
                already_ran_params = []

        if _blocks_numbers(action):
            # Read from the whole database at planning time, not from the
            # audience: a blocked person outside the smart list blocks the
            # number all the same, and a later step sees blocks made since.
            columns = "phone TEXT PRIMARY KEY, blocker BIGINT NOT NULL, outcome SMALLINT NOT NULL"
            cursor.execute(_temp_table_ddl(blocked_table, columns))
            cursor.execute(*_blocked_numbers_sql(blocked_table))
            unblocked_sql = f" AND a.mobile_phone NOT IN (SELECT phone FROM {blocked_table})"
        else:
            unblocked_sql = ""

        # One row per qualified person (with the winner of the number) and,
        # for a step that blocks numbers, per holder of a blocked number
        # (with the blocked person instead): never both for one person.
        cursor.execute(
            _temp_table_ddl(
                qualified_table, f"lead_id {lead_key}, winner BIGINT, blocker BIGINT, outcome SMALLINT"
            )
        )
        cursor.execute(
            f"INSERT INTO {qualified_table} (lead_id, winner) "
            f"SELECT a.id, MIN(a.id) OVER (PARTITION BY a.mobile_phone) "
            f"FROM ({source_sql}) a {qualified_sql} AND NOT ({already_ran_sql}){unblocked_sql}",
            [*source_params, *qualified_params, *already_ran_params],
        )
        if _blocks_numbers(action):
            cursor.execute(*_number_holders_sql(blocked_table, qualified_table))
        before = _last_id(cursor, reserve=True)
        # Every row keeps the number it was planned for, skipped or not: the
        # Results show it, and it is the number a block or a dedupe was about.
        # Only a skip for the number's block names the blocked person.
        number_blocks = ", ".join(str(int(outcome)) for outcome in NUMBER_BLOCKS)
        cursor.execute(
            f"INSERT INTO {results} (run_step_id, lead_id, outcome, phone, duplicate_of_id, blocked_by_id, "
            f"error_code, detail, vibes_message_id, delivery_status) "
            f"SELECT %s, x.id, x.outcome, x.mobile_phone, x.duplicate_of, "
            f"CASE WHEN x.outcome IN ({number_blocks}) THEN x.blocker END, '', '', '', '' "
            f"FROM (SELECT a.id, a.mobile_phone, CASE "
            f"WHEN q.winner IS NOT NULL THEN CASE WHEN q.winner = a.id THEN {called} "
            f"ELSE {int(Outcome.SKIPPED_DUPLICATE_PHONE)} END "
            f"WHEN {already_ran_sql} THEN {int(Outcome.ALREADY_RAN)}"
            f"{skip_sql} ELSE {fallback} END AS outcome, "
            f"CASE WHEN q.winner <> a.id THEN q.winner END AS duplicate_of, q.blocker "
            f"FROM ({source_sql}) a LEFT JOIN {qualified_table} q ON q.lead_id = a.id) x",
            [run_step.pk, *already_ran_params, *skip_params, *source_params],
        )
        after = _last_id(cursor, reserve=False)
        # The calls to make, known before the full count by reason is taken.
        cursor.execute(f"SELECT COUNT(*) FROM {qualified_table} WHERE winner = lead_id")
        called_count = cursor.fetchone()[0]
        _drop_temp(cursor, qualified_table)
        _drop_temp(cursor, ran_table)
        _drop_temp(cursor, blocked_table)

    first_id, last_id = (before + 1, after) if after > before else (None, None)
    run_step.first_result_id, run_step.last_result_id = first_id, last_id
    run_step.status = RunStep.Status.PLANNED
    run_step.counts = {Outcome(called).code: called_count} if called_count else {}
    run_step.planned_at = timezone.now()
    if first_id is not None and not run.dry_run:
        # Thousands of small rows: plain executemany, not model instances.
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_table(RunBatch)} (run_step_id, first_result_id, last_result_id, status, "
                f"claimed_by) VALUES (%s, %s, %s, %s, '')",
                [
                    (run_step.pk, start, min(start + BATCH_SPAN - 1, last_id), RunBatch.Status.PENDING)
                    for start in range(first_id, last_id + 1, BATCH_SPAN)
                ],
            )
    run_step.plan_seconds = time.perf_counter() - started
    run_step.save(
        update_fields=["first_result_id", "last_result_id", "status", "counts", "planned_at", "plan_seconds"]
    )


def _last_id(cursor, *, reserve: bool) -> int:
    """The id bound of this step's rows: before (reserve) or after the INSERT.

    SQLite has one writer, so the rows follow the table's largest id. On
    PostgreSQL the sequence moves on for rolled-back inserts and for other
    transactions too, so the bounds come from this session's own sequence
    values.
    """
    table = RunResult._meta.db_table
    if connection.vendor == "postgresql":
        function = "nextval" if reserve else "currval"
        cursor.execute(f"SELECT {function}(pg_get_serial_sequence(%s, 'id'))", [table])
    else:
        # AUTOINCREMENT: new ids follow the largest id ever used, kept in sqlite_sequence.
        cursor.execute(
            f"SELECT MAX(x) FROM (SELECT MAX(id) AS x FROM {_table(RunResult)} "
            f"UNION ALL SELECT seq FROM sqlite_sequence WHERE name = %s)",
            [table],
        )
    return cursor.fetchone()[0] or 0


def count_outcomes(run_step_id, first_id, last_id) -> dict[str, int]:
    if first_id is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT outcome, COUNT(*) FROM {_table(RunResult)} "
            f"WHERE run_step_id = %s AND id BETWEEN %s AND %s GROUP BY outcome",
            [run_step_id, first_id, last_id],
        )
        return {Outcome(outcome).code: total for outcome, total in cursor.fetchall()}
