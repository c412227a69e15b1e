"""The migration that orders subscription changes by time gives existing rows their times and lists."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from vibes.models import Subscription, SubscriptionChange

BEFORE = [("vibes", "0001_initial")]
T1, T2, T3 = (datetime(2026, 11, day, 9, tzinfo=UTC) for day in (1, 2, 3))


@pytest.mark.django_db(transaction=True)
def test_existing_subscriptions_and_history_get_their_times_and_lists():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        lead = old.get_model("smscampaigns", "Lead").objects.create(email="old@example.com")
        vibes_list = old.get_model("vibes", "VibesList").objects.create(vibes_id="101", name="News")
        other_list = old.get_model("vibes", "VibesList").objects.create(vibes_id="102", name="VIP")
        Old = old.get_model("vibes", "Subscription")
        out = Old.objects.create(
            lead=lead, vibes_list=vibes_list, status="unsubscribed", opt_in_date=T1, opt_out_date=T2
        )
        Old.objects.create(lead=lead, vibes_list=other_list, status="subscribed", opt_in_date=T3)
        old.get_model("vibes", "SubscriptionChange").objects.create(
            subscription=out,
            lead=lead,
            old_status="subscribed",
            new_status="unsubscribed",
            source="callback",
            created_at=T2,
        )
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Subscription.objects.values_list("vibes_list__vibes_id", "status_at")) == {
        "101": T2,
        "102": T3,
    }
    change = SubscriptionChange.objects.get()
    assert (change.vibes_list.vibes_id, change.occurred_at, change.recorded_at, change.effect) == (
        "101",
        T2,
        T2,
        "applied",
    )
