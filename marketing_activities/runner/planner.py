"""Planning a flow step: who gets a call, who is skipped and why, in SQL.

The rules of who a step calls for are rules.py's: an ordered list of
requirements per action, each with the skip it means. For each step the
planner writes one result row per person of the run's audience with one
INSERT ... SELECT, whatever the audience size:

1. for a step that blocks numbers (R4), every holder of a blocked number
   goes into the plan's people table (`q`), naming the blocked person;
2. the people who meet every requirement go into the same table with the
   winner of their number (R3);
3. every person of the audience gets a row: the winner of a number is
   queued, the others who met every requirement are skipped naming the
   winner, everyone else gets the skip of the first requirement they fail.

The table is keyed by lead, so the row-writing INSERT joins it once. The
first step's audience is the smart list; later steps take the first step's
rows as the audience, so a run works on one snapshot of people.
"""

import itertools
import logging
import threading
import time

from django.db import connection, transaction
from django.utils import timezone

from smscampaigns.models import Lead

from ..models import (
    NUMBER_BLOCKS,
    CampaignRun,
    FlowStep,
    Outcome,
    RunBatch,
    RunResult,
    RunStep,
    TriggerFiring,
)
from .person_limit import person_limit_apply
from .rules import NUMBER_NOT_BLOCKED, NUMBER_WINNER, Requirement, Sql, blocked_numbers_sql, requirements
from .waits import flow_remove_apply, removed_people_steps

logger = logging.getLogger(__name__)

BATCH_SPAN = 200  # result ids per batch: ~50 calls when a quarter qualifies, so a crash leaves few in doubt
BATCHES_WRITTEN_AT_ONCE = 5_000
# The steps that call nobody: the row of each person the step is for says what it did.
NO_CALL_OUTCOMES = {
    FlowStep.Action.WAIT: Outcome.WAITED,
    FlowStep.Action.REMOVE_FROM_FLOW: Outcome.REMOVED_FROM_FLOW,
}


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


class PlanningError(Exception):
    pass


def audience_sql(run_step: RunStep):
    """(sql, params) selecting id, mobile_phone, blocklisted,
    marketing_suspended and first_outcome of the step's audience."""
    run = run_step.run
    if run_step.position == 0 and run.trigger == CampaignRun.Trigger.ACTIVITY:
        # A trigger run's audience: the people its firings brought, who passed
        # the filters when they were taken (triggers.py).
        queryset = (
            Lead.objects.filter(
                pk__in=TriggerFiring.objects.filter(run=run, status=TriggerFiring.Status.MEMBER).values(
                    "lead_id"
                )
            )
            .order_by()
            .values("id", "mobile_phone", "blocklisted", "marketing_suspended")
        )
        sql, params = queryset.query.sql_with_params()
        return f"SELECT a.*, NULL AS first_outcome FROM ({sql}) a", params
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


def _number_holders_sql(blocked_table: str, people_table: str) -> Sql:
    """Adds to `people_table` everyone who holds a blocked number, with the
    person it comes from and the skip it means."""
    # Driven from the few blocked numbers through the index on mobile_phone:
    # the IN makes SQLite start there even without statistics on the table.
    return Sql(
        f"INSERT INTO {people_table} (lead_id, blocker, outcome) SELECT l.id, b.blocker, b.outcome "
        f"FROM {_table(Lead)} l JOIN {blocked_table} b ON b.phone = l.mobile_phone "
        f"WHERE l.mobile_phone IN (SELECT phone FROM {blocked_table})"
    )


def _called_sql(
    rules: list[Requirement], source: Sql, people_table: str, *, winner: str = NUMBER_WINNER
) -> Sql:
    """Adds to `people_table` the people of the audience who meet every
    requirement, each with the winner of their number (or themselves, for
    a step that calls for people rather than numbers)."""
    joins = [f"JOIN {rule.joins} ON {rule.condition.text}" for rule in rules if rule.joins]
    conditions = [rule.condition for rule in rules if not rule.joins]
    # A person who took a blocked number since the holders were read (another
    # transaction, on PostgreSQL) is not caught here: the worker checks
    # again before it calls, so planning goes on rather than fail.
    return Sql(
        f"INSERT INTO {people_table} (lead_id, winner) SELECT a.id, {winner} "
        f"FROM ({source.text}) a {' '.join(joins)} LEFT JOIN {people_table} q ON q.lead_id = a.id "
        f"WHERE {' AND '.join(condition.text for condition in conditions)}",
        (
            *source.params,
            *(param for rule in rules if rule.joins for param in rule.condition.params),
            *(param for condition in conditions for param in condition.params),
        ),
    )


def _skip_case(rules: list[Requirement]) -> Sql:
    """CASE branches naming the skip of a person the step does not call for:
    the first requirement they fail. The last needs no test: a person who
    met all the others fails that one."""
    *tested, last = rules
    if any(rule.joins for rule in tested):
        raise ValueError("only the last requirement may be met through a join")
    text, params = "", []
    for rule in tested:
        skip = _outcome_sql(rule.otherwise)
        text += f" WHEN NOT ({rule.condition.text}) THEN {skip.text}"
        params += [*rule.condition.params, *skip.params]
    skip = _outcome_sql(last.otherwise)
    return Sql(f"{text} ELSE {skip.text}", (*params, *skip.params))


def _outcome_sql(outcome: Outcome | Sql) -> Sql:
    return outcome if isinstance(outcome, Sql) else Sql(str(int(outcome)))


# The rows of an earlier run's first step that do not make their person one
# who ran through the flow: skipped by the qualification rule ("once", "once
# every N") or beyond the person limit, or cancelled by an abort before
# anything was done for them.
NOT_RUN_THROUGH = (
    int(Outcome.SKIPPED_ALREADY_RAN),
    int(Outcome.CANCELLED),
    int(Outcome.SKIPPED_RAN_RECENTLY),
    int(Outcome.SKIPPED_PERSON_LIMIT),
)
NOT_RUN_THROUGH_SQL = ", ".join(["%s"] * len(NOT_RUN_THROUGH))
# The first step's verdicts a later step of the run inherits, with their skip.
FIRST_STEP_QUALIFICATION = (int(Outcome.SKIPPED_ALREADY_RAN), int(Outcome.SKIPPED_RAN_RECENTLY))


def _previous_audience_ranges(campaign_id: int, *, exclude_run: CampaignRun | None = None, since=None):
    """(step id, first id, last id) of the first steps of earlier real runs
    (those created from `since` on, when given)."""
    steps = RunStep.objects.filter(
        run__campaign_id=campaign_id,
        run__dry_run=False,
        position=0,
        first_result_id__isnull=False,
    )
    if exclude_run is not None:
        steps = steps.exclude(run=exclude_run)
    if since is not None:
        steps = steps.filter(run__created_at__gte=since)
    return list(steps.values_list("pk", "first_result_id", "last_result_id"))


def qualification_rule_applies(campaign) -> bool:
    """The rules "once" and "once every N" skip people who ran through the flow before."""
    rules = (campaign.QualificationRule.ONCE, campaign.QualificationRule.ONCE_EVERY)
    return campaign.qualification_rule in rules


def qualification_skip(campaign) -> Outcome:
    """The skip of a person the qualification rule turns away."""
    if campaign.qualification_rule == campaign.QualificationRule.ONCE_EVERY:
        return Outcome.SKIPPED_RAN_RECENTLY
    return Outcome.SKIPPED_ALREADY_RAN


def everyone_already_ran(campaign) -> int | None:
    """Under the qualification rule "once" (or "once every N", within its
    period): how many people the smart list picks, when every one of them
    has already run through the flow (an earlier real run had them in its
    audience, as planning counts it); None when anyone is left, or when no
    earlier run counts.

    Counts, never a plan: the smart list's people, then (only when the
    earlier audiences could hold them all) those of them found in the
    earlier runs' first steps, read through their id ranges and joined to
    the people by key.
    """
    if not qualification_rule_applies(campaign):
        return None
    previous = _previous_audience_ranges(campaign.pk, since=campaign.qualification_since(timezone.now()))
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
            f"WHERE r.outcome NOT IN ({NOT_RUN_THROUGH_SQL}) AND ({ranges_sql})",
            [
                *people_params,
                *NOT_RUN_THROUGH,
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
    source = Sql(*audience_sql(run_step))
    called = int(
        Outcome.PLANNED_DRY_RUN if run.dry_run else NO_CALL_OUTCOMES.get(run_step.action, Outcome.QUEUED)
    )

    results = _table(RunResult)
    lead_key = "BIGINT PRIMARY KEY" if connection.vendor == "postgresql" else "INTEGER PRIMARY KEY"
    suffix = f"{run_step.pk}"
    ran_table, people_table, blocked_table = f"plan_ran_{suffix}", f"plan_q_{suffix}", f"plan_b_{suffix}"
    removed_table = f"plan_removed_{suffix}"
    with connection.cursor() as cursor:
        already_ran = _already_ran(cursor, run_step, ran_table, lead_key)
        # Before anything is written: a refusal rolls the plan back and stops the run.
        person_limit = _person_limit(cursor, run_step, source, already_ran)
        rules = requirements(
            run_step.action,
            list_id=run_step.vibes_list_id,
            already_ran=already_ran,
            ran_skip=_ran_skip(run_step),
            person_limit=person_limit,
            marketing=not run.campaign.operational,
        )
        rules = _removed_from_flow(cursor, run_step, removed_table, lead_key) + rules
        # One row per person the step calls for (with the winner of the
        # number) and per holder of a blocked number (with the blocked
        # person instead): never both for one person.
        cursor.execute(
            _temp_table_ddl(
                people_table, f"lead_id {lead_key}, winner BIGINT, blocker BIGINT, outcome SMALLINT"
            )
        )
        if NUMBER_NOT_BLOCKED in rules:
            # Read from the whole database at planning time, not from the
            # audience: a blocked person outside the smart list blocks the
            # number all the same, and a later step sees blocks made since.
            columns = "phone TEXT PRIMARY KEY, blocker BIGINT NOT NULL, outcome SMALLINT NOT NULL"
            cursor.execute(_temp_table_ddl(blocked_table, columns))
            cursor.execute(*blocked_numbers_sql(blocked_table))
            cursor.execute(*_number_holders_sql(blocked_table, people_table))
        # A campaign is requested for each person, whatever number they share (R3 is about texts).
        per_person = (FlowStep.Action.REQUEST_CAMPAIGN, *NO_CALL_OUTCOMES)
        winner = "a.id" if run_step.action in per_person else NUMBER_WINNER
        cursor.execute(*_called_sql(rules, source, people_table, winner=winner))
        before = _last_id(cursor, reserve=True)
        # Every row keeps the number it was planned for, skipped or not: the
        # Results show it, and it is the number a block or a dedupe was about.
        # Only a skip for the number's block names the blocked person.
        number_blocks = ", ".join(str(int(outcome)) for outcome in NUMBER_BLOCKS)
        skips = _skip_case(rules)
        cursor.execute(
            f"INSERT INTO {results} (run_step_id, lead_id, outcome, phone, duplicate_of_id, blocked_by_id, "
            f"error_code, detail, vibes_message_id, delivery_status) "
            f"SELECT %s, x.id, x.outcome, x.mobile_phone, x.duplicate_of, "
            f"CASE WHEN x.outcome IN ({number_blocks}) THEN x.blocker END, '', '', '', '' "
            f"FROM (SELECT a.id, a.mobile_phone, CASE "
            f"WHEN q.winner IS NOT NULL THEN CASE WHEN q.winner = a.id THEN {called} "
            f"ELSE {int(Outcome.SKIPPED_DUPLICATE_PHONE)} END"
            f"{skips.text} END AS outcome, "
            f"CASE WHEN q.winner <> a.id THEN q.winner END AS duplicate_of, q.blocker "
            f"FROM ({source.text}) a LEFT JOIN {people_table} q ON q.lead_id = a.id) x",
            [run_step.pk, *skips.params, *source.params],
        )
        after = _last_id(cursor, reserve=False)
        # The calls to make, known before the full count by reason is taken.
        cursor.execute(f"SELECT COUNT(*) FROM {people_table} WHERE winner = lead_id")
        called_count = cursor.fetchone()[0]
        _drop_temp(cursor, people_table)
        _drop_temp(cursor, ran_table)
        _drop_temp(cursor, blocked_table)
        _drop_temp(cursor, removed_table)

    first_id, last_id = (before + 1, after) if after > before else (None, None)
    run_step.first_result_id, run_step.last_result_id = first_id, last_id
    run_step.status = RunStep.Status.PLANNED
    run_step.counts = {Outcome(called).code: called_count} if called_count else {}
    run_step.planned_at = timezone.now()
    if first_id is not None and not run.dry_run and called == Outcome.QUEUED:
        # Thousands of small rows: plain executemany, not model instances, a
        # piece at a time (50,000 batches at 10,000,000 people: memory stays flat).
        batches = (
            (run_step.pk, start, min(start + BATCH_SPAN - 1, last_id), RunBatch.Status.PENDING)
            for start in range(first_id, last_id + 1, BATCH_SPAN)
        )
        with connection.cursor() as cursor:
            for piece in itertools.batched(batches, BATCHES_WRITTEN_AT_ONCE):
                cursor.executemany(
                    f"INSERT INTO {_table(RunBatch)} (run_step_id, first_result_id, last_result_id, status, "
                    f"claimed_by) VALUES (%s, %s, %s, %s, '')",
                    piece,
                )
    if first_id is not None and not run.dry_run and run_step.action == FlowStep.Action.REMOVE_FROM_FLOW:
        flow_remove_apply(run_step)
    run_step.plan_seconds = time.perf_counter() - started
    run_step.save(
        update_fields=["first_result_id", "last_result_id", "status", "counts", "planned_at", "plan_seconds"]
    )


def _already_ran(cursor, run_step: RunStep, ran_table: str, lead_key: str) -> Sql:
    """SQL true for the people of the audience who have run through the flow
    before (the qualification rule "once", or "once every N" within its
    period); filling `ran_table` if need be."""
    if run_step.position > 0:
        # Later steps inherit the first step's verdict.
        return Sql(
            f"a.first_outcome IN ({', '.join(['%s'] * len(FIRST_STEP_QUALIFICATION))})",
            FIRST_STEP_QUALIFICATION,
        )
    campaign = run_step.run.campaign
    if not qualification_rule_applies(campaign):
        return Sql("1 = 0")
    if run_step.run.trigger == CampaignRun.Trigger.ACTIVITY:
        return Sql("1 = 0")  # the firings were checked against the campaign's members (triggers.py)
    # Under "once every N", only the runs within the period count; measured
    # from when this run was created, so a resumed run plans as it began.
    since = campaign.qualification_since(run_step.run.created_at)
    previous = _previous_audience_ranges(campaign.pk, exclude_run=run_step.run, since=since)
    if not previous:
        return Sql("1 = 0")
    # Everyone who was in an earlier real run's audience has run through this flow.
    cursor.execute(_temp_table_ddl(ran_table, f"lead_id {lead_key}"))
    for step_id, first_id, last_id in previous:
        cursor.execute(
            f"INSERT INTO {ran_table} (lead_id) SELECT DISTINCT r.lead_id FROM {_table(RunResult)} r "
            f"WHERE r.run_step_id = %s AND r.id BETWEEN %s AND %s "
            f"AND r.outcome NOT IN ({NOT_RUN_THROUGH_SQL}) "
            f"AND r.lead_id NOT IN (SELECT lead_id FROM {ran_table})",
            [step_id, first_id, last_id, *NOT_RUN_THROUGH],
        )
    return Sql(f"a.id IN (SELECT lead_id FROM {ran_table})")


def _ran_skip(run_step: RunStep) -> Outcome | Sql:
    """The skip of the people the qualification rule turns away: a later step
    keeps the first step's (the rule may have changed since)."""
    if run_step.position > 0:
        return Sql("a.first_outcome")
    return qualification_skip(run_step.run.campaign)


def _person_limit(cursor, run_step: RunStep, source: Sql, already_ran: Sql) -> Sql | None:
    """The person limit's requirement (None: nobody is beyond it), or
    PersonLimitRefused. A trigger run takes the people of its firings:
    the limits are a batch campaign's."""
    if run_step.position > 0:
        # Whoever the first step put beyond the cap stays beyond it.
        first = run_step.run.steps.only("counts").get(position=0)
        if not (first.counts or {}).get(Outcome.SKIPPED_PERSON_LIMIT.code):
            return None
        return Sql("a.first_outcome <> %s", (int(Outcome.SKIPPED_PERSON_LIMIT),))
    if run_step.run.trigger == CampaignRun.Trigger.ACTIVITY:
        return None
    limit = person_limit_apply(
        cursor, campaign=run_step.run.campaign, audience=source, already_ran=already_ran
    )
    return limit.requirement


def _removed_from_flow(cursor, run_step: RunStep, removed_table: str, lead_key: str) -> list[Requirement]:
    """The requirement that people taken out of this run's flow (Remove from
    Flow, waits.py) are not, filling `removed_table`; none when nobody could be."""
    steps = removed_people_steps(run_step) if run_step.position > 0 else []
    if not steps:
        return []
    cursor.execute(_temp_table_ddl(removed_table, f"lead_id {lead_key}"))
    for step_id, first_id, last_id in steps:
        cursor.execute(
            f"INSERT INTO {removed_table} (lead_id) SELECT DISTINCT r.lead_id FROM {_table(RunResult)} r "
            f"WHERE r.run_step_id = %s AND r.id BETWEEN %s AND %s AND r.outcome = %s "
            f"AND r.lead_id NOT IN (SELECT lead_id FROM {removed_table})",
            [step_id, first_id, last_id, int(Outcome.REMOVED_FROM_FLOW)],
        )
    return [Requirement(Sql(f"a.id NOT IN (SELECT lead_id FROM {removed_table})"), Outcome.REMOVED_FROM_FLOW)]


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
