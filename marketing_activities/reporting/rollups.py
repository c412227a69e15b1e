"""SMS figures kept as rollups: one row per hour of calls to Vibes, campaign,
SMS message and Vibes list (SmsHourlyFigures), kept up to date where the
result rows change, and recounted from those rows on demand.

What an SMS adds to its hour's row follows from its result row alone (and
the replies, clicks and unsubscriptions that point at it): `sent` once Vibes
accepted it (SMS_SENT), `delivered`, `failed_hard` or `failed_soft` by its
outcome and receipt's status, and `replied`, `clicked`, `unsubscribed` for
the first reply, the first click of a person and an unsubscription from the
step's list within UNSUBSCRIBE_WINDOW of the call. One SQL expression of that
(`_FIGURES`) serves both the upkeep and the recount, so the two cannot read
it differently.

Upkeep is by difference, never by rules for each move: a change of some
rows (`sms_rollups_following`) reads what those rows add before and after it
and adds the difference with one upsert. A receipt that changes nothing
(delivered twice) adds nothing; a late "failed" after "delivered" moves one
from one figure to the other; an SMS resent later moves to the hour of its
new call. It costs two grouped reads of the changed rows by their ids and
one statement, per batch, in the transaction that changes them, which holds
the rows' locks meanwhile (the executor's batch, the receipts' row locks, or
`lock=True` for replies, clicks and unsubscriptions).
"""

import datetime
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction

from vibes.models import Subscription, SubscriptionChange

from ..models import (
    HARD_BOUNCE_STATUSES,
    SMS_SENT,
    CampaignRun,
    FlowStep,
    LinkClick,
    Outcome,
    RunResult,
    RunStep,
    SmsHourlyFigures,
    SmsReply,
)

COUNTERS = ("sent", "delivered", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed")
# An unsubscription counts for the SMS it followed within this time of the call.
UNSUBSCRIBE_WINDOW = datetime.timedelta(days=7)
# Vibes gives an opt-out's time to the second: a STOP in the second of the call follows it.
SAME_SECOND = datetime.timedelta(seconds=1)
# Result ids per grouped read: well below every database's limit of bound values.
CHUNK = 500

# (hour, campaign id, SMS message id or 0, Vibes list id or 0)
Key = tuple[datetime.datetime, int, int, int]


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _hour_sql() -> str:
    """The hour of the call (UTC), as the database stores a date and time."""
    if connection.vendor == "postgresql":
        return "date_trunc('hour', r.called_at)"
    # SQLite stores UTC as text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
    return "substr(r.called_at, 1, 13) || ':00:00'"


def _window_end_sql() -> str:
    if connection.vendor == "postgresql":
        return f"r.called_at + interval '{UNSUBSCRIBE_WINDOW.days} days'"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', r.called_at, '+{UNSUBSCRIBE_WINDOW.days} days')"


def _window_start_sql() -> str:
    if connection.vendor == "postgresql":
        return "r.called_at - interval '1 second'"
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', r.called_at, '-1 seconds')"


def _figures_sql(where: str, *, not_changes: str = "") -> str:
    """SELECT of the figures by key of the SMS rows that `where` picks; `not_changes`
    leaves subscription changes out (as if not yet written)."""
    sent = ", ".join(str(int(outcome)) for outcome in SMS_SENT)
    hard = ", ".join(f"'{status}'" for status in HARD_BOUNCE_STATUSES)
    failed = int(Outcome.DELIVERY_FAILED)
    return f"""
        SELECT {_hour_sql()}, n.campaign_id, COALESCE(s.sms_message_id, 0), COALESCE(s.vibes_list_id, 0),
          COUNT(*),
          SUM(CASE WHEN r.outcome = {int(Outcome.DELIVERED)} THEN 1 ELSE 0 END),
          SUM(CASE WHEN r.outcome = {failed} AND r.delivery_status IN ({hard}) THEN 1 ELSE 0 END),
          SUM(CASE WHEN r.outcome = {failed} AND r.delivery_status NOT IN ({hard}) THEN 1 ELSE 0 END),
          SUM(CASE WHEN EXISTS (
            SELECT 1 FROM {_table(SmsReply)} p WHERE p.run_step_id = r.run_step_id AND p.result_id = r.id
          ) THEN 1 ELSE 0 END),
          SUM(CASE WHEN EXISTS (
            SELECT 1 FROM {_table(LinkClick)} c
            WHERE c.run_step_id = r.run_step_id AND c.by_robot = %s AND c.result_id = r.id
          ) THEN 1 ELSE 0 END),
          SUM(CASE WHEN EXISTS (
            SELECT 1 FROM {_table(SubscriptionChange)} u
            WHERE u.lead_id = r.lead_id AND u.vibes_list_id = s.vibes_list_id
              AND u.new_status = %s AND u.effect <> %s
              AND u.occurred_at > {_window_start_sql()} AND u.occurred_at <= {_window_end_sql()} {not_changes}
          ) THEN 1 ELSE 0 END)
        FROM {_table(RunResult)} r
        JOIN {_table(RunStep)} s ON s.id = r.run_step_id
        JOIN {_table(CampaignRun)} n ON n.id = s.run_id
        WHERE r.outcome IN ({sent}) AND r.called_at IS NOT NULL
          AND s.action = %s AND n.dry_run = %s AND {where}
        GROUP BY 1, 2, 3, 4
    """


def _figures_params(where_params=(), not_changes_params=()) -> list:
    return [
        False,
        Subscription.Status.UNSUBSCRIBED,
        SubscriptionChange.Effect.MISMATCH,
        *not_changes_params,
        FlowStep.Action.SEND_SMS,
        False,
        *where_params,
    ]


def _as_hour(value) -> datetime.datetime:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)


def _read(sql: str, params) -> dict[Key, tuple[int, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            (_as_hour(hour), campaign, message, vibes_list): tuple(int(n or 0) for n in counts)
            for hour, campaign, message, vibes_list, *counts in cursor.fetchall()
        }


def results_figures(result_ids, *, not_changes=()) -> dict[Key, tuple[int, ...]]:
    """What these result rows add to the rollups, by key (`not_changes`: subscription
    change ids to leave out)."""
    ids = sorted(set(result_ids))
    figures: dict[Key, list[int]] = {}
    excluded = sorted(set(not_changes))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        where = f"r.id IN ({', '.join(['%s'] * len(chunk))})"
        not_sql = f"AND u.id NOT IN ({', '.join(['%s'] * len(excluded))})" if excluded else ""
        read = _read(_figures_sql(where, not_changes=not_sql), _figures_params(chunk, excluded))
        for key, counts in read.items():
            total = figures.setdefault(key, [0] * len(COUNTERS))
            for at, n in enumerate(counts):
                total[at] += n
    return {key: tuple(counts) for key, counts in figures.items()}


def sms_rollups_add(delta: dict[Key, tuple[int, ...]]) -> None:
    """Add these figures to the rollups: one upsert, in the order of the keys
    (so that two writers on PostgreSQL never wait on each other's rows)."""
    rows = sorted((key, counts) for key, counts in delta.items() if any(counts))
    if not rows:
        return
    quote = connection.ops.quote_name
    table = _table(SmsHourlyFigures)
    columns = ("hour", "campaign_id", "sms_message_id", "vibes_list_id", *COUNTERS)
    values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    updates = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in COUNTERS
    )
    params = []
    for (hour, campaign, message, vibes_list), counts in rows:
        params += [connection.ops.adapt_datetimefield_value(hour), campaign, message, vibes_list, *counts]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(name) for name in columns)}) VALUES {values} "
            f"ON CONFLICT (hour, campaign_id, sms_message_id, vibes_list_id) DO UPDATE SET {updates}",
            params,
        )


def _difference(after, before) -> dict[Key, tuple[int, ...]]:
    zero = (0,) * len(COUNTERS)
    return {
        key: tuple(a - b for a, b in zip(after.get(key, zero), before.get(key, zero), strict=True))
        for key in after.keys() | before.keys()
    }


def sms_rollups_before(result_ids, *, new_changes=()) -> dict:
    """What these rows add to the rollups now, before a change of them (with
    `sms_rollups_after`, for a caller that holds the rows' locks)."""
    return results_figures(result_ids, not_changes=new_changes) if result_ids else {}


def sms_rollups_after(result_ids, before: dict) -> None:
    """After a change of these rows: add the difference it made to the rollups."""
    if result_ids:
        sms_rollups_add(_difference(results_figures(result_ids), before))


@contextmanager
def sms_rollups_following(result_ids, *, lock: bool = False, new_changes=()):
    """Keep the rollups with what the block does to these result rows: their
    figures are read before and after it, and the difference added.

    `lock`: lock the rows first (a caller that has not), so that no other
    change of them falls between the two reads. `new_changes`: subscription
    changes the block has already written (left out of the first read).
    """
    ids = list(result_ids)
    if not ids:
        yield
        return
    with transaction.atomic():
        if lock:
            list(RunResult.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
        before = sms_rollups_before(ids, new_changes=new_changes)
        yield
        sms_rollups_after(ids, before)


# --- Unsubscriptions after an SMS -----------------------------------------------------


def sms_rollups_follow_unsubscriptions(changes: list[SubscriptionChange]) -> None:
    """Unsubscriptions just written (in this transaction): the SMS each followed
    within UNSUBSCRIBE_WINDOW on the same Vibes list count them.

    The SMS are found through the person's calls (the partial index on a
    lead's results), a query per list and batch, never per person.
    """
    changes = [
        change
        for change in changes
        if change.new_status == Subscription.Status.UNSUBSCRIBED
        and change.effect != SubscriptionChange.Effect.MISMATCH
    ]
    by_list: dict[int, list[SubscriptionChange]] = {}
    for change in changes:
        by_list.setdefault(change.vibes_list_id, []).append(change)
    for vibes_list_id, listed in by_list.items():
        earliest = min(change.occurred_at for change in listed) - UNSUBSCRIBE_WINDOW
        latest = max(change.occurred_at for change in listed)
        ids = list(
            RunResult.objects.calls()
            .filter(
                lead_id__in={change.lead_id for change in listed},
                outcome__in=SMS_SENT,
                called_at__gte=earliest,
                called_at__lt=latest + SAME_SECOND,
                run_step__action=FlowStep.Action.SEND_SMS,
                run_step__vibes_list_id=vibes_list_id,
            )
            .values_list("pk", flat=True)
        )
        if ids:
            with sms_rollups_following(ids, lock=True, new_changes=[change.pk for change in listed]):
                pass


def unsubscriptions_follow(*, changes, **_signal) -> None:
    """vibes' `subscription_changes_written`, in the transaction that wrote them."""
    sms_rollups_follow_unsubscriptions(changes)


# --- The recount ------------------------------------------------------------------------


def _since_where(since) -> tuple[str, list]:
    if since is None:
        return "1 = 1", []
    hour = since.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    return "r.called_at >= %s", [connection.ops.adapt_datetimefield_value(hour)]


def sms_figures_recount(*, since=None) -> dict[Key, tuple[int, ...]]:
    """The figures by key counted from the result rows (of the calls since the
    hour of `since`, or all), without the keys whose figures are all zero."""
    where, params = _since_where(since)
    return {
        key: counts
        for key, counts in _read(_figures_sql(where), _figures_params(params)).items()
        if any(counts)
    }


def _rollups(since=None) -> dict[Key, tuple[int, ...]]:
    rows = SmsHourlyFigures.objects.all()
    if since is not None:
        rows = rows.filter(
            hour__gte=since.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)
        )
    return {
        (_as_hour(row[0]), row[1], row[2], row[3]): tuple(row[4:])
        for row in rows.values_list("hour", "campaign_id", "sms_message_id", "vibes_list_id", *COUNTERS)
        if any(row[4:])
    }


@dataclass(frozen=True)
class Difference:
    """Where the rollups and a recount disagree: one key's figures, each side's."""

    key: Key
    rollup: tuple[int, ...]
    recount: tuple[int, ...]

    def fields(self) -> list[tuple[str, int, int]]:
        """(figure, rollup, recount) for the figures that differ."""
        return [
            (name, kept, counted)
            for name, kept, counted in zip(COUNTERS, self.rollup, self.recount, strict=True)
            if kept != counted
        ]


def sms_rollups_differences(*, since=None) -> list[Difference]:
    """Compare the rollups with a recount from the result rows, in one snapshot
    of the database (the rows and their rollups change in one transaction)."""
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:  # first in its transaction, as PostgreSQL wants it
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        recount = sms_figures_recount(since=since)
        kept = _rollups(since)
    zero = (0,) * len(COUNTERS)
    return [
        Difference(key, kept.get(key, zero), recount.get(key, zero))
        for key in sorted(kept.keys() | recount.keys())
        if kept.get(key, zero) != recount.get(key, zero)
    ]


def sms_rollups_rebuild(*, since=None) -> int:
    """Recount the rollups from the result rows: of the calls since the hour of
    `since`, or all. Returns how many rollup rows were written.

    One DELETE and one INSERT … SELECT. Other writers of the rollups wait
    for it (on PostgreSQL a lock of the table; on SQLite the write lock): a
    change committed meanwhile is in the recount or is added after it.
    """
    table = _table(SmsHourlyFigures)
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(name) for name in ("hour", "campaign_id", "sms_message_id", "vibes_list_id", *COUNTERS)
    )
    where, params = _since_where(since)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        if since is None:
            cursor.execute(f"DELETE FROM {table}")
        else:
            cursor.execute(f"DELETE FROM {table} WHERE hour >= %s", params)
        cursor.execute(f"INSERT INTO {table} ({columns}) {_figures_sql(where)}", _figures_params(params))
        return cursor.rowcount


def sms_rollups_forget_message(*, sms_message_id: int) -> None:
    """Before an SMS message is deleted: its figures stay with their campaign and
    list, under no message (as its run steps will then name none)."""
    rows = SmsHourlyFigures.objects.filter(sms_message_id=sms_message_id)
    delta: dict[Key, list[int]] = {}
    for row in rows.values_list("hour", "campaign_id", "vibes_list_id", *COUNTERS):
        total = delta.setdefault((_as_hour(row[0]), row[1], 0, row[2]), [0] * len(COUNTERS))
        for at, n in enumerate(row[3:]):
            total[at] += n
    with transaction.atomic():
        rows.delete()
        sms_rollups_add({key: tuple(counts) for key, counts in delta.items()})
