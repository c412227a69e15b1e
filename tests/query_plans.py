"""What the database plans for a query: whether a filter finds its rows through an index."""

import re

from django.db import connection


def query_plan(queryset) -> list[str]:
    """The lines of the plan of `queryset`, planned without statistics (those other
    tests left behind would make the plan depend on the order of the tests)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The tables of a test are tiny: only with scans priced out of reach does
            # the plan show whether an index serves the query.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            return [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1")
            cursor.execute("ANALYZE sqlite_master")  # makes SQLite read the (now empty) statistics again
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall()]


def full_scans(queryset, *, but: str) -> list[str]:
    """The plan's lines that read a table whole for every row of the table `but`.

    A list subquery (SQLite's `IN (SELECT …)`, not correlated) is read once for
    the whole query, and so is not counted.
    """
    lines = query_plan(queryset)
    scans = [
        line
        for before, line in zip(["", *lines], lines, strict=False)
        if re.search(r"\bSeq Scan on\b|^\s*SCAN\b", line) and "LIST SUBQUERY" not in before
    ]
    return [line for line in scans if but not in line]
