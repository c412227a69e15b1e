"""The runner benchmark measures what it claims: its bare query picks exactly
the people the planner queues, out of people shaped as its docstring says."""

import pytest

from benchmarks import runner as bench
from marketing_activities.models import CampaignRun, SmartCampaign
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from smscampaigns.models import Lead

pytestmark = pytest.mark.django_db

LEADS = 3000
EXCLUSIONS = (
    "skipped_duplicate_phone",
    "skipped_blocklisted",
    "skipped_marketing_suspended",
    "skipped_not_subscribed",
    "skipped_no_phone",
    "skipped_number_blocklisted",
    "skipped_number_suspended",
)


def test_the_bare_query_finds_exactly_the_people_the_plan_queues():
    campaign = SmartCampaign.objects.get(pk=bench.build(leads=LEADS).plan_campaign_id)
    _seconds, recipients = bench.bare_recipients_query(campaign)
    counts = plan_step(run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND).steps.get())
    assert recipients == counts["queued"] > 0
    assert sum(counts.values()) == LEADS
    missing = [reason for reason in EXCLUSIONS if not counts.get(reason)]
    assert not missing, f"no one is {missing}: the comparison leaves out those rules"


def test_the_people_are_the_shares_the_benchmark_names():
    bench.build(leads=LEADS)
    leads = Lead.objects.all()
    assert leads.count() == LEADS

    def share(queryset):
        return queryset.count() / LEADS

    assert 0.03 < share(leads.filter(mobile_phone="")) < 0.07
    assert 0.01 < share(leads.filter(blocklisted=True)) < 0.03
    assert 0.003 < share(leads.filter(marketing_suspended=True)) < 0.02
    assert 0.25 < share(leads.filter(subscriptions__status="subscribed")) < 0.35
    with_a_number = leads.exclude(mobile_phone="")
    numbers = with_a_number.values("mobile_phone").distinct().count()
    assert 0.07 < (with_a_number.count() - numbers) / LEADS < 0.13  # sharing the number of someone else
