"""R10 for any file: valid rows mixed with random invalid cells.

Every valid row is imported (merged in line order over what was stored, a
blank cell changing nothing), every row with an invalid cell is refused with
its line and changes nothing, and importing the same file again changes
nothing and creates nobody.
"""

import csv
import datetime
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from smscampaigns.models import Lead, LeadFlagChange
from smscampaigns.services import leads_import

EMAILS = [f"p{n}@x.test" for n in range(6)]
COLUMNS = [
    "email",
    "first_name",
    "mobile_phone",
    "lead_score",
    "blocklisted",
    "marketing_suspended",
    "created_at",
]
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
PHONES = {
    "+15551230001": "+15551230001",
    "(555) 123-0002": "+15551230002",
    "555.123.0003": "+15551230003",
    "+46 70 123 45 67": "+46701234567",
}
YES = ["yes", "Y", "true", "1", "ja", "WAHR", "sant", "waar", "sì", "vero", "oui", "vrai"]
NO = ["no", "n", "FALSE", "0", "nein", "falsch", "nej", "falskt", "nee", "onwaar", "falso", "non", "faux"]
BLANK = st.sampled_from(["", " ", "  "])


def blank_or(strategy):
    return st.one_of(BLANK.map(lambda cell: (cell, None)), strategy)


# Each valid cell comes with the value it must store (None: blank, keep what is stored).
VALID = {
    "first_name": blank_or(
        st.text(alphabet="aAbBéöß' -", min_size=1, max_size=12)
        .filter(str.strip)
        .map(lambda t: (t, t.strip()))
    ),
    "mobile_phone": blank_or(st.sampled_from(sorted(PHONES.items()))),
    "lead_score": blank_or(st.integers(-(2**31), 2**31 - 1).map(lambda n: (str(n), n))),
    "blocklisted": blank_or(
        st.one_of(
            st.sampled_from(YES).map(lambda w: (w, True)), st.sampled_from(NO).map(lambda w: (w, False))
        )
    ),
    "marketing_suspended": blank_or(
        st.one_of(
            st.sampled_from(YES).map(lambda w: (w, True)), st.sampled_from(NO).map(lambda w: (w, False))
        )
    ),
    "created_at": blank_or(
        st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 12, 31)).map(
            lambda d: (d.isoformat(), datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.UTC))
        )
    ),
}
INVALID = {
    "email": st.sampled_from(["not-an-email", "a@b", "@x.test", "p1@x.test@x.test"]),
    "first_name": st.sampled_from(["x" * 101, "bell\x07", "nul\x00"]),
    "mobile_phone": st.sampled_from(["12345", "call me", "+999 1"]),
    "lead_score": st.sampled_from(["1.5", "abc", "99999999999999999999", "-2147483649", "2147483648"]),
    "blocklisted": st.sampled_from(["maybe", "2", "x", "nope"]),
    "marketing_suspended": st.sampled_from(["maybe", "2", "x", "nope"]),
    "created_at": st.sampled_from(["2026-02-30", "05/03/2026", "tomorrow", "2026-13-01"]),
}


@st.composite
def rows(draw):
    """(cells, values or None when the row has an invalid cell)."""
    email = draw(st.sampled_from(EMAILS))
    cells = {"email": draw(st.sampled_from([email, email.upper(), f" {email} "]))}
    values = {"email": email}
    for name, strategy in VALID.items():
        cells[name], values[name] = draw(strategy)
    invalid = draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True))
    for name in invalid:
        cells[name] = draw(INVALID[name])
    return cells, (None if invalid else values)


stored_leads = st.fixed_dictionaries(
    {
        "first_name": st.sampled_from(["Stored", "Old", ""]),
        "mobile_phone": st.sampled_from(["", "+15551239999"]),
        "lead_score": st.integers(0, 100),
        "blocklisted": st.booleans(),
        "marketing_suspended": st.booleans(),
        "created_at": st.integers(0, 10_000).map(lambda h: START + datetime.timedelta(hours=h)),
    }
)

FIELDS = COLUMNS


def as_file(lines: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for cells in lines:
        writer.writerow([cells[name] for name in COLUMNS])
    return out.getvalue().encode()


def stored() -> dict[str, dict]:
    return {row["email"]: row for row in Lead.objects.values(*FIELDS)}


class ImportPropertyTests(TestCase):
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        existing=st.dictionaries(st.sampled_from(EMAILS), stored_leads, max_size=4),
        file_rows=st.lists(rows(), min_size=1, max_size=12),
    )
    def test_valid_rows_are_imported_invalid_rows_refused_and_blank_cells_keep_values(
        self, existing, file_rows
    ):
        for email, fields in existing.items():
            Lead.objects.create(email=email, **fields)
        LeadFlagChange.objects.all().delete()
        expected = {email: {"email": email, **fields} for email, fields in existing.items()}
        defaults = {"first_name": "", "mobile_phone": "", "lead_score": 0, "blocklisted": False,
                    "marketing_suspended": False}  # fmt: skip
        flag_lines: dict[tuple[str, str], int] = {}
        refused_lines = set()
        for line, (_cells, values) in enumerate(file_rows, start=2):
            if values is None:
                refused_lines.add(line)
                continue
            email = values["email"]
            lead = expected.setdefault(email, {"email": email, **defaults, "created_at": None})
            for name, value in values.items():
                if value is not None:
                    lead[name] = value
                    if name in ("blocklisted", "marketing_suspended"):
                        flag_lines[email, name] = line
        data = as_file([cells for cells, _values in file_rows])

        first = leads_import(file=io.BytesIO(data), file_name="property.csv")

        assert {problem.line for problem in first.problems.all()} == refused_lines
        assert first.rows_refused == len(refused_lines)
        after = stored()
        assert set(after) == set(expected)
        for email, lead in expected.items():
            for name, value in lead.items():
                if value is not None:
                    assert after[email][name] == value, (email, name)
        # Each flag that ended up changed is recorded once, with the line that set it.
        for email, lead in expected.items():
            for name in ("blocklisted", "marketing_suspended"):
                was = existing[email][name] if email in existing else False
                changes = LeadFlagChange.objects.filter(lead__email=email, flag=name)
                if lead[name] == was:
                    assert not changes.exists()
                else:
                    change = changes.get()
                    assert (change.new_value, change.line, change.lead_import) == (
                        lead[name],
                        flag_lines[email, name],
                        first,
                    )

        again = leads_import(file=io.BytesIO(data), file_name="property.csv")

        assert (again.leads_created, again.leads_updated) == (0, 0)
        assert again.leads_unchanged == first.leads_created + first.leads_updated + first.leads_unchanged
        assert stored() == after
        assert not LeadFlagChange.objects.filter(lead_import=again).exists()
        assert {problem.line for problem in again.problems.all()} == refused_lines
