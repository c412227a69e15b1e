"""What the database plans for a query: whether a filter finds its rows through an index."""

import re

from django.db import connection


def query_plan(queryset) -> list[str]:
    """The lines of the plan of `queryset`."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The tables of a test are tiny: only with scans priced out of reach does
            # the plan show whether an index serves the query.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            return [row[0] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall()]


def full_scans(queryset, *, but: str) -> list[str]:
    """The plan's lines that read a table whole (not through an index), but the table `but`."""
    scans = [line for line in query_plan(queryset) if re.search(r"\bSeq Scan on\b|^\s*SCAN\b", line)]
    return [line for line in scans if but not in line]
