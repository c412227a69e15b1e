"""The communication limits benchmark measures what it claims: a ledger that
puts a share of the numbers at their limit, and a plan that skips them."""

import pytest

from benchmarks import limits as bench
from benchmarks import runner
from marketing_activities.models import CampaignRun, MarketingSms, SmartCampaign
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from tests.marketing_activities.factories import CommunicationLimitsFactory

pytestmark = pytest.mark.django_db

LEADS = 3000


def test_the_ledger_puts_a_share_of_the_numbers_at_their_limit_and_the_plan_skips_them():
    campaign = SmartCampaign.objects.get(pk=runner.build(leads=LEADS).plan_campaign_id)
    written = bench.build_ledger()
    assert written == MarketingSms.objects.count() > 0
    without = plan_step(run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND).steps.get())
    CampaignRun.objects.update(status=CampaignRun.Status.COMPLETED)
    CommunicationLimitsFactory(per_day=1, per_week=3)
    limited = plan_step(run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND).steps.get())
    skipped = limited["skipped_communication_limit"]
    assert 0.2 < skipped / without["queued"] < 0.8
    # The limit takes people out before the dedupe by number: its skips are
    # winners and duplicates that were.
    texted = ("queued", "skipped_duplicate_phone")
    assert sum(limited.get(c, 0) for c in texted) + skipped == sum(without.get(c, 0) for c in texted)
