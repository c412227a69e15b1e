"""The import benchmark's files are what it claims: every row valid, the same people changed."""

import pytest

from benchmarks.imports import import_timed, write_changes, write_file
from smscampaigns.models import Lead

# The benchmark imports as the admin does: the worker starts when the upload commits.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_benchmark_imports_new_people_then_the_same_people_changed(tmp_path):
    people = write_file(tmp_path / "people.csv", rows=300)
    changed = write_changes(tmp_path / "changed.csv", rows=300)
    new = import_timed(people)
    assert (
        new["summary"]
        == "300 rows read as UTF-8: 300 leads created, 0 leads updated, 0 leads unchanged, 0 rows refused."
    )
    assert Lead.objects.filter(email="").count() > 0  # some people have no email and are matched by number
    again = import_timed(people)
    assert again["summary"].endswith("0 leads created, 0 leads updated, 300 leads unchanged, 0 rows refused.")
    updates = import_timed(changed)
    assert updates["summary"].endswith(
        "0 leads created, 300 leads updated, 0 leads unchanged, 0 rows refused."
    )
