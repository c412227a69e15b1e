"""Communication limits: how many marketing SMS one number may get, across all campaigns.

A marketing SMS is the SMS of a Send SMS step of a campaign that is not
operational. The limits (CommunicationLimits: per day, per 7 days) count the
number's marketing SMS of the last 24 hours and the last 7 days, rolling:
at any moment the count is what the person received in the window that ends
now, the same for every time zone, with no midnight at which a number may be
texted twice in a minute.

The ledger of what counts is MarketingSms, one row per SMS, written in the
transaction that marks its row `sending`. They are enforced twice:

- at planning, a requirement of rules.py (`number_at_limit_sql`): a number at
  its limit is skipped with SKIPPED_COMMUNICATION_LIMIT, and the confirmation
  counts say so;
- just before the call (`marketing_sms_claim`), because another campaign
  may have texted the number since: the check and the count are one step per
  number. On PostgreSQL the batch's numbers are locked (transaction-level
  advisory locks, taken in one order) before they are counted; on SQLite the
  transaction holds the database's write lock from its start (IMMEDIATE), so
  no other can count meanwhile.
"""

import datetime
import hashlib

from django.db import connection
from django.utils import timezone

from ..models import CommunicationLimits, MarketingSms, Outcome

DAY = datetime.timedelta(hours=24)
WEEK = datetime.timedelta(days=7)
# The first key of the two-key advisory locks on numbers (the imports' lock is
# a one-key lock: another key space).
NUMBER_LOCKS = 7_100_041


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _at_limit_having(limits: CommunicationLimits, now) -> tuple[str, tuple]:
    """The HAVING of a number's SMS of the last 7 days that puts it at its limit."""
    clauses, params = [], []
    if limits.per_week is not None:
        clauses.append("COUNT(*) >= %s")
        params.append(limits.per_week)
    if limits.per_day is not None:
        clauses.append("SUM(CASE WHEN m.sent_at > %s THEN 1 ELSE 0 END) >= %s")
        params += [now - DAY, limits.per_day]
    return " OR ".join(clauses), tuple(params)


def numbers_at_limit_sql(*, now=None) -> tuple[str, tuple] | None:
    """SELECT of the numbers that had their share of marketing SMS, or None
    when no limit is set. One pass over the last 7 days of the ledger, read
    through its index on the time."""
    limits = CommunicationLimits.load()
    if not limits.any:
        return None
    now = now or timezone.now()
    having, params = _at_limit_having(limits, now)
    return (
        f"SELECT m.phone FROM {_table(MarketingSms)} m WHERE m.sent_at > %s GROUP BY m.phone HAVING {having}",
        (now - WEEK, *params),
    )


def _lock_numbers(cursor, phones) -> None:
    """Hold each number's lock until the transaction ends (PostgreSQL): a
    second worker counting one of them waits here, then sees this one's SMS."""
    keys = sorted(
        {
            int.from_bytes(hashlib.blake2b(phone.encode(), digest_size=4).digest(), "big", signed=True)
            for phone in phones
        }
    )
    # In one order, so two workers with overlapping numbers never deadlock.
    cursor.execute(
        "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::integer[]) AS k", [NUMBER_LOCKS, keys]
    )
    cursor.fetchall()


def marketing_sms_claim(*, rows: list[tuple], now=None) -> list[int]:
    """Count the SMS about to be sent for `rows` (result id, lead id, number)
    towards their numbers' limits, and return the result ids of those whose
    number had its share already (not counted). Call it in the transaction
    that marks the others `sending`: four queries whatever the batch.
    """
    if not rows:
        return []
    now = now or timezone.now()
    ids = [result_id for result_id, _lead_id, _phone in rows]
    phones = sorted({phone for _id, _lead_id, phone in rows})
    limits = CommunicationLimits.load()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _lock_numbers(cursor, phones)
        # A call made again is counted again as it goes out, not twice; and
        # what no limit looks at any more goes.
        cursor.execute(
            f"DELETE FROM {_table(MarketingSms)} WHERE result_id IN ({', '.join(['%s'] * len(ids))}) "
            f"OR sent_at <= %s",
            [*ids, now - WEEK],
        )
        sent = {}  # number: (SMS of the last 24 hours, of the last 7 days)
        if limits.any:
            cursor.execute(
                f"SELECT m.phone, SUM(CASE WHEN m.sent_at > %s THEN 1 ELSE 0 END), COUNT(*) "
                f"FROM {_table(MarketingSms)} m "
                f"WHERE m.phone IN ({', '.join(['%s'] * len(phones))}) AND m.sent_at > %s GROUP BY m.phone",
                [now - DAY, *phones, now - WEEK],
            )
            sent = {phone: (day, week) for phone, day, week in cursor.fetchall()}
    over, counted = [], []
    for result_id, _lead_id, phone in rows:
        day, week = sent.get(phone, (0, 0))
        if (limits.per_day is not None and day >= limits.per_day) or (
            limits.per_week is not None and week >= limits.per_week
        ):
            over.append(result_id)
        else:
            sent[phone] = (day + 1, week + 1)
            counted.append(MarketingSms(result_id=result_id, phone=phone, sent_at=now))
    MarketingSms.objects.bulk_create(counted)
    return over


# The outcomes of a call that surely sent nothing: its SMS counts for no limit.
NOT_SENT = (Outcome.FAILED, Outcome.CANCELLED, Outcome.QUEUED)


def marketing_sms_forget(*, result_ids: list[int]) -> None:
    """Take back the SMS of rows whose call surely sent nothing (refused, aborted,
    to be made again), so that they do not use their number's share."""
    for start in range(0, len(result_ids), 500):
        MarketingSms.objects.filter(result_id__in=result_ids[start : start + 500]).delete()
