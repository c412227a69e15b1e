"""Writing many rows' own values in one statement."""

from django.db import connections


def rows_update(model, objs, fields, *, using: str = "default") -> int:
    """Write these fields of `objs` (each its own values) with one statement; how many rows.

    On PostgreSQL one `UPDATE … FROM (VALUES …)`: each row finds its values
    by its id, where Django's `bulk_update` makes every row walk a CASE of
    the whole batch's ids for every field. Elsewhere `bulk_update`.
    """
    objs = list(objs)
    if not objs:
        return 0
    connection = connections[using]
    if connection.vendor != "postgresql":
        return model.objects.using(using).bulk_update(objs, fields)
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    # Typed in every row: a VALUES list otherwise takes its bound values for text.
    row = "(" + ", ".join(f"%s::{column.db_type(connection)}" for column in columns) + ")"
    params = [
        column.get_db_prep_save(getattr(obj, column.attname), connection)
        for obj in objs
        for column in columns
    ]
    table = quote(meta.db_table)
    names = ", ".join(quote(column.column) for column in columns)
    sets = ", ".join(f"{quote(column.column)} = v.{quote(column.column)}" for column in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(objs))}) AS v ({names}) "
            f"WHERE {table}.{quote(meta.pk.column)} = v.{quote(meta.pk.column)}",
            params,
        )
        return cursor.rowcount
