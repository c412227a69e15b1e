"""A smart campaign's schedule saved in the admin: the same rules as the Schedule tab."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import SmartCampaign
from tests.marketing_activities.factories import SmartCampaignFactory

pytestmark = pytest.mark.django_db


def change(admin_client, campaign, *, run_at, is_active=True):
    """Post the campaign's change form (no flow steps) with a "run once" schedule."""
    local = timezone.localtime(run_at)
    data = {
        "name": campaign.name,
        "description": "",
        "program": campaign.program_id,
        "smart_list": campaign.smart_list_id,
        "qualification_rule": "once",
        "schedule": "once",
        "run_at_0": local.strftime("%Y-%m-%d"),
        "run_at_1": local.strftime("%H:%M:%S"),
        "run_time": "",
        "run_weekday": "",
        "flow_steps-TOTAL_FORMS": "0",
        "flow_steps-INITIAL_FORMS": "0",
        "flow_steps-MIN_NUM_FORMS": "0",
        "flow_steps-MAX_NUM_FORMS": "1000",
    }
    if is_active:
        data["is_active"] = "on"
    url = reverse("admin:marketing_activities_smartcampaign_change", args=[campaign.pk])
    return admin_client.post(url, data)


def test_a_run_once_time_that_has_passed_is_refused_in_the_admin(admin_client):
    campaign = SmartCampaignFactory()
    response = change(admin_client, campaign, run_at=timezone.now() - datetime.timedelta(hours=2))
    assert response.status_code == 200
    assert "This time has passed (it is now " in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.schedule, campaign.is_active, campaign.run_at) == ("none", False, None)


def test_a_future_time_saved_in_the_admin_is_when_the_campaign_runs(admin_client):
    campaign = SmartCampaignFactory()
    later = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0)
    response = change(admin_client, campaign, run_at=later)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.is_active, campaign.run_at, campaign.next_run_at) == (True, later, later)


def test_deactivating_in_the_admin_clears_the_next_run(admin_client):
    later = timezone.now() + datetime.timedelta(days=2)
    campaign = SmartCampaignFactory(is_active=True, schedule="once", run_at=later, next_run_at=later)
    assert change(admin_client, campaign, run_at=later, is_active=False).status_code == 302
    assert SmartCampaign.objects.get(pk=campaign.pk).next_run_at is None
