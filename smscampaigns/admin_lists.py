"""Admin lists that grow with people and traffic (millions of rows): a page
of them costs the same whatever the size of the table.

Django's change list counts every row it lists, offers every sortable
column and reads the sidebar's values from the table; each of these scans
a table of millions. Here the count is the database's estimate for a whole
table and an exact count up to COUNTED_UP_TO rows otherwise ("more than
10,000"; not even that where PostgreSQL's planner expects ten times as many),
the pages reach as far as that count, and a sidebar filter of
free-text values reads them through an index, one value at a time.
"""

from functools import cached_property

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .estimates import rows_estimate

# A filtered or searched list is counted up to this many rows; beyond, it
# says "more than 10,000", and its pages reach as far (200 pages of 50).
COUNTED_UP_TO = 10_000
# A search or filter that the query planner expects to find this many times
# COUNTED_UP_TO rows is more than COUNTED_UP_TO without counting: PostgreSQL's
# estimates of a search are seldom ten times too high.
SURELY_MORE_TIMES = 10
# The sidebar lists at most this many values of a free-text column.
FILTER_VALUES = 100


def _number(count: int) -> str:
    return number_format(count, force_grouping=True)


def table_estimate(model, *, using: str = "default") -> int | None:
    """The database's own estimate of the rows of the model's table: PostgreSQL's
    planner statistics (`reltuples`), SQLite's `sqlite_stat1` after an ANALYZE;
    None when the database has none."""
    connection = connections[using]
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # -1 (PostgreSQL 14+) or 0: never vacuumed nor analysed.
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
            return row[0] if row and row[0] > 0 else None
        if connection.vendor == "sqlite":
            # Only a database that was analysed has the table (and no transaction
            # here: this project's SQLite transactions take the write lock).
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
            if cursor.fetchone() is None:
                return None
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s", [table])
            rows = cursor.fetchall()
            # The first figure of each index's statistics is its number of rows;
            # the largest is the table's (a partial index holds fewer).
            counts = [int(stat.split()[0]) for (stat,) in rows if stat]
            return max(counts) if counts else None
    return None


class LargeListPaginator(Paginator):
    """Counts without reading every row: a whole table by the database's estimate
    ("about 1,000,000"), anything else exactly up to COUNTED_UP_TO ("more than 10,000"),
    or not at all where PostgreSQL expects SURELY_MORE_TIMES as many."""

    @cached_property
    def _counted(self) -> tuple[int, str]:
        queryset = self.object_list
        whole_table = not queryset.query.where and not queryset.query.distinct
        if whole_table:
            estimate = table_estimate(queryset.model, using=queryset.db)
            if estimate is not None and estimate > COUNTED_UP_TO:
                return estimate, _("about %(count)s") % {"count": _number(estimate)}
        if not whole_table and (rows_estimate(queryset) or 0) > SURELY_MORE_TIMES * COUNTED_UP_TO:
            # A common name at ten million people: counting even 10,001 of its
            # 200,000 rows read them all through the trigram index first.
            count = COUNTED_UP_TO + 1
        else:
            # COUNT(*) over a subquery that stops at the first row past the limit.
            count = queryset.order_by()[: COUNTED_UP_TO + 1].count()
        if count > COUNTED_UP_TO:
            return count, _("more than %(count)s") % {"count": _number(COUNTED_UP_TO)}
        return count, _number(count)

    @cached_property
    def count(self) -> int:
        return self._counted[0]

    @property
    def count_shown(self) -> str:
        """The count as the list shows it: "about 1,000,000", "more than 10,000", "42"."""
        return self._counted[1]

    @cached_property
    def num_pages(self) -> int:
        # A page far down a list of millions is an OFFSET of millions: the
        # pages stop where the exact count does, and a search or filter finds the rest.
        reachable = -(-(COUNTED_UP_TO + 1) // self.per_page)
        return min(super().num_pages, reachable)


def distinct_values(model, column: str, *, limit: int = FILTER_VALUES, using: str = "default") -> list:
    """The first `limit` distinct values of an indexed column, in order, one index
    lookup each (a "loose index scan"): never a scan of the table."""
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE found(value) AS ("
            f" SELECT MIN({column}) FROM {table}"
            f" UNION ALL"
            f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > found.value)"
            f" FROM found WHERE found.value IS NOT NULL"
            f") SELECT value FROM found WHERE value IS NOT NULL LIMIT %s",
            [limit],
        )
        return [value for (value,) in cursor.fetchall()]


class IndexedValuesListFilter(admin.AllValuesFieldListFilter):
    """Django's filter of a column's values, read through the column's index
    (the first FILTER_VALUES of them) instead of a DISTINCT over the table."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = distinct_values(model, field.column)


class LargeChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # A list that fits one page is read without a LIMIT by Django, and
        # SQLite then walks the whole table in id order rather than the
        # search's indexes: the rows shown never exceed "Show all" anyway.
        if not self.result_list.query.is_sliced:
            self.result_list = self.result_list[: max(self.list_per_page, self.list_max_show_all)]


class LargeListAdmin:
    """A ModelAdmin mixin for the lists of millions: estimated or bounded counts,
    no facet counts (each would be a count per value), and no sorting by a
    column that has no index (`sortable_by`, set by each list)."""

    paginator = LargeListPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ()

    def get_changelist(self, request, **kwargs):
        return LargeChangeList
