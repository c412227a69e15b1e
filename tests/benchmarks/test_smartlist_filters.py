"""The SMS activity filters benchmark counts on the history its docstring describes."""

import pytest

from benchmarks import runner
from benchmarks import smartlist_filters as bench
from marketing_activities.models import Outcome, RunResult, SmartCampaign, SmsReply
from vibes.models import Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db(transaction=True)

LEADS = 2000


def test_the_history_has_sent_delivered_bounced_and_replied_sms_and_subscriptions():
    campaign = SmartCampaign.objects.get(pk=runner.build(leads=LEADS).plan_campaign_id)
    history = bench.build_history(campaign=campaign)
    calls = RunResult.objects.calls()
    assert history["sms"] == calls.count() > 0
    delivered = calls.filter(outcome=Outcome.DELIVERED).count()
    assert 0.7 < delivered / history["sms"] < 0.9
    statuses = set(calls.filter(outcome=Outcome.DELIVERY_FAILED).values_list("delivery_status", flat=True))
    assert statuses == {"undeliverable", "expired", "failed"}
    assert history["replies"] == SmsReply.objects.count() > 0
    assert history["subscription_changes"] == SubscriptionChange.objects.count()
    assert SubscriptionChange.objects.count() == Subscription.objects.filter(status="subscribed").count()


def test_each_filter_and_its_not_form_split_the_people_between_them():
    report = bench.measure(leads=LEADS, rounds=1)
    rows = {row["smart list"]: row["people"] for row in report["rows"]}
    everyone = rows.pop("country is US (no activity filter)")
    names = list(rows)
    for positive, negative in zip(names[::2], names[1::2], strict=True):
        assert rows[positive] + rows[negative] == everyone, positive
        assert rows[positive] > 0, positive
    assert "median ms" in report["table"]
