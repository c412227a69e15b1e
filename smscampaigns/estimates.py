"""How many rows a query would find, by the database's own estimate, without
reading them: PostgreSQL's query planner, from the statistics ANALYZE keeps."""

import json

from django.core.exceptions import EmptyResultSet
from django.db import connections


def rows_estimate(queryset) -> int | None:
    """The rows the query planner expects `queryset` to find (planning only:
    no row is read); None on a database without estimates (SQLite's EXPLAIN
    QUERY PLAN gives none)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):  # a driver that does not read json
        plan = json.loads(plan)
    return round(plan[0]["Plan"]["Plan Rows"])


def significant(count: int, *, digits: int = 2) -> int:
    """`count` to its first `digits` digits (9,249,871 → 9,200,000): an estimate
    shown no more precise than it is."""
    if count <= 0:
        return 0
    dropped = max(0, len(str(count)) - digits)
    return round(count, -dropped) if dropped else count
