import pytest
from django.core.management import call_command

from marketing_activities.models import SmartCampaign
from smscampaigns.models import Lead
from vibes.models import AcquisitionCampaign, Subscription, VibesList

pytestmark = pytest.mark.django_db


def counts():
    return (
        Lead.objects.count(),
        SmartCampaign.objects.count(),
        VibesList.objects.count(),
        AcquisitionCampaign.objects.count(),
        Subscription.objects.count(),
    )


def test_seed_demo_is_realistic_and_safe_to_run_twice(capsys):
    call_command("seed_demo", people=300)
    first = counts()
    call_command("seed_demo", people=300)
    assert counts() == first
    leads, campaigns, lists, acquisitions, subscriptions = first
    assert leads == 300 and lists == 2 and acquisitions == 3 and campaigns >= 4
    assert Lead.objects.filter(blocklisted=True).exists()
    assert Lead.objects.filter(marketing_suspended=True).exists()
    assert Lead.objects.filter(mobile_phone="").exists()
    phones = list(Lead.objects.exclude(mobile_phone="").values_list("mobile_phone", flat=True))
    assert len(phones) > len(set(phones)), "some people share a number"
    assert all(not campaign.problems() for campaign in SmartCampaign.objects.all())
    assert "demo / demo-password" in capsys.readouterr().out
