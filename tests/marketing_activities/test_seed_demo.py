import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db.models import Q
from django.urls import reverse

from marketing_activities.demo import DEMO_USERNAME
from marketing_activities.models import NUMBER_BLOCKS, CampaignRun, RunResult, SmartCampaign
from marketing_activities.runner import run_create, run_execute
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


def test_the_demo_user_may_do_everything(client):
    call_command("seed_demo", people=20)
    demo = get_user_model().objects.get(username=DEMO_USERNAME)
    every_permission = [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(
            content_type__app_label__in=["marketing_activities", "smscampaigns", "vibes"]
        ).select_related("content_type")
    ]
    assert "marketing_activities.run_smartcampaign" in every_permission
    assert demo.is_staff and demo.has_perms(every_permission)
    client.force_login(demo)
    campaign = SmartCampaign.objects.first()
    assert client.get(reverse("marketing_activities:campaign_run_now", args=[campaign.pk])).status_code == 200


def test_no_number_of_a_blocklisted_or_suspended_person_is_texted_or_enrolled_in_the_demo(vibes_simulator):
    """Issue 12, case 8: every demo campaign, run against the simulator, leaves
    alone every number a blocklisted or suspended person holds (R4)."""
    call_command("seed_demo", people=1000)  # what `make run` seeds
    blocked = Lead.objects.filter(Q(blocklisted=True) | Q(marketing_suspended=True)).exclude(mobile_phone="")
    blocked_numbers = set(blocked.values_list("mobile_phone", flat=True))
    clean_on_blocked = Lead.objects.filter(
        mobile_phone__in=blocked_numbers, blocklisted=False, marketing_suspended=False
    )
    assert clean_on_blocked.exists(), "the demo has clean people on a blocked number"

    for campaign in SmartCampaign.objects.all():
        run = run_execute(run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND))
        assert run.status == CampaignRun.Status.COMPLETED, run.error

    texted = {message["to"] for message in vibes_simulator.messages()}
    enrolled = {participant["mdn"] for participant in vibes_simulator.subscriptions()}
    assert texted and enrolled
    assert texted & blocked_numbers == set()
    assert enrolled & blocked_numbers == set()
    skips = RunResult.objects.filter(outcome__in=NUMBER_BLOCKS).select_related("blocked_by")
    assert skips.exists()
    for skip in skips:
        assert skip.blocked_by.mobile_phone == skip.phone
        assert skip.blocked_by.blocklisted or skip.blocked_by.marketing_suspended
