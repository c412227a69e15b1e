"""The database's own estimate of a query's rows, and how it is shown."""

import pytest
from django.db import connection

from smscampaigns.estimates import rows_estimate, significant
from smscampaigns.models import Lead
from tests.smscampaigns.factories import LeadFactory


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, 0),
        (7, 7),
        (42, 42),
        (150, 150),
        (9_249_871, 9_200_000),
        (1_250_001, 1_300_000),
        (100_001, 100_000),
    ],
)
def test_an_estimate_is_shown_to_two_significant_digits(count, shown):
    assert significant(count) == shown


@pytest.mark.django_db
def test_the_estimate_knows_the_values_a_smart_list_compares_ignoring_case():
    LeadFactory.create_batch(6, country="SE", city="Malmö")
    LeadFactory.create_batch(2, country="US", city="Boston")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE smscampaigns_lead")
    estimates = [
        rows_estimate(Lead.objects.filter(country__iexact="se")),
        rows_estimate(Lead.objects.filter(city__iexact="MALMÖ")),
        rows_estimate(Lead.objects.filter(city__lower__in=["boston"])),
    ]
    if connection.vendor == "postgresql":
        # Without statistics on UPPER(…) and LOWER(…) the planner guesses 0.5% of the rows: 1.
        assert estimates == [6, 6, 2]
    else:
        assert estimates == [None, None, None]  # SQLite has no estimates: the caller counts


@pytest.mark.django_db
def test_a_query_that_finds_nobody_is_estimated_at_nobody():
    assert rows_estimate(Lead.objects.filter(pk__in=[])) == (0 if connection.vendor == "postgresql" else None)
