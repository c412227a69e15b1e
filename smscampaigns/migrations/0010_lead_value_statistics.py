"""What PostgreSQL knows of the values a smart list compares, ignoring case.

A smart list's text rules compare UPPER(column) ("is", "contains", "starts
with") or LOWER(column) ("is one of"), and the query planner has statistics
for columns, not for these expressions: it then guesses 0.5% of the people
for "country is US", whoever holds it. The Smart List tab shows the planner's
estimate above a hundred thousand people (marketing_activities/views/smart_list.py),
so the estimate must know the values: extended statistics on each
expression (PostgreSQL 14 on, as Django requires) give it their most common values, gathered by
ANALYZE like a column's. The names and the email have them already, from
their UPPER(…) indexes. Other databases have no estimates, and get nothing.
"""

from django.db import migrations

TABLE = "smscampaigns_lead"
UPPER = ("mobile_phone", "country", "city", "state", "lead_source")
LOWER = ("country", "city", "state", "lead_source")


def statements() -> list[tuple[str, str]]:
    """(create, drop) of each statistics object."""
    return [
        (
            f'CREATE STATISTICS IF NOT EXISTS "lead_{function.lower()}_{column}" '
            f'ON ({function}("{column}"::text)) FROM "{TABLE}"',
            f'DROP STATISTICS IF EXISTS "lead_{function.lower()}_{column}"',
        )
        for function, columns in (("UPPER", UPPER), ("LOWER", LOWER))
        for column in columns
    ]


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for create_sql, _drop in statements():
        schema_editor.execute(create_sql)
    # Gathered now (a sample of the table: seconds at ten million people), not at
    # the next automatic ANALYZE, which a table this size may not see for days.
    schema_editor.execute(f'ANALYZE "{TABLE}"')


def drop(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for _create, drop_sql in statements():
        schema_editor.execute(drop_sql)


class Migration(migrations.Migration):
    dependencies = [
        ("smscampaigns", "0009_activity_admin_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
