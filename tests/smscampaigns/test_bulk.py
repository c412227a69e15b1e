"""Writing many rows' own values in one statement (smscampaigns/bulk.py)."""

import datetime

import pytest
from django.utils import timezone

from marketing_activities.models import Outcome, RunResult
from smscampaigns.bulk import rows_update
from tests.marketing_activities.factories import RunResultFactory

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_in_one_statement_and_the_others_keep_theirs(
    django_assert_num_queries,
):
    rows = RunResultFactory.create_batch(4, outcome=Outcome.SENT, delivery_status="accepted")
    changed_at = timezone.now().replace(microsecond=0)
    first, second, third, untouched = rows
    first.outcome, first.delivery_status, first.updated_at = Outcome.DELIVERED, "delivered", changed_at
    second.outcome, second.delivery_reason = Outcome.DELIVERY_FAILED, "Handset off (9)"
    second.updated_at = changed_at + datetime.timedelta(seconds=1)
    third.delivery_reason, third.updated_at = None, None
    with django_assert_num_queries(1):
        assert (
            rows_update(
                RunResult,
                [first, second, third],
                ["outcome", "delivery_status", "delivery_reason", "updated_at"],
            )
            == 3
        )
    assert list(
        RunResult.objects.order_by("pk").values_list(
            "outcome", "delivery_status", "delivery_reason", "updated_at"
        )
    ) == [
        (Outcome.DELIVERED, "delivered", None, changed_at),
        (Outcome.DELIVERY_FAILED, "accepted", "Handset off (9)", changed_at + datetime.timedelta(seconds=1)),
        (Outcome.SENT, "accepted", None, None),
        (Outcome.SENT, "accepted", None, untouched.updated_at),
    ]


def test_no_rows_cost_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rows_update(RunResult, [], ["outcome"]) == 0
