"""The trigger benchmark's world is what it claims: one active trigger campaign
that texts each person whose subscription callback arrives."""

import pytest

from benchmarks import triggers as bench
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.models import Lead
from vibes.subscriptions import subscriptions_set_status

pytestmark = pytest.mark.django_db


def test_each_person_has_a_number_of_their_own_and_one_subscription_fires_the_campaign(vibes_simulator):
    campaign = bench.build(people=5)
    assert campaign.is_active and campaign.is_trigger_campaign
    assert Lead.objects.values("mobile_phone").distinct().count() == 5
    lead = Lead.objects.get(mobile_phone=bench.number(3))
    subscriptions_set_status(
        lead_ids=[lead.pk],
        vibes_list=campaign.flow_steps.get().vibes_list,
        status="subscribed",
        source="callback",
    )
    triggers_dispatch()
    assert [message["to"] for message in vibes_simulator.messages()] == [bench.number(3)]
