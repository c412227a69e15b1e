"""The admin's list of trigger firings: read only, filtered by campaign,
status and date, searched by person."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from tests.marketing_activities.factories import SmartCampaignFactory, TriggerFiringFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

FIRINGS = reverse("admin:marketing_activities_triggerfiring_changelist")


def listed(client, query=""):
    response = client.get(f"{FIRINGS}?{query}")
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_the_list_filters_by_campaign(admin_client):
    welcome, other = SmartCampaignFactory(), SmartCampaignFactory()
    fired = TriggerFiringFactory(campaign=welcome)
    TriggerFiringFactory(campaign=other)
    assert listed(admin_client, f"campaign__id__exact={welcome.pk}") == [fired]


def test_the_list_filters_by_status(admin_client):
    filtered_out = TriggerFiringFactory(status="filtered_out")
    TriggerFiringFactory(status="member")
    assert listed(admin_client, "status__exact=filtered_out") == [filtered_out]


def test_the_list_filters_by_the_day_it_fired(admin_client):
    today = TriggerFiringFactory()
    TriggerFiringFactory(created_at=timezone.now() - datetime.timedelta(days=30))
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    query = urlencode(
        {
            "created_at__gte": start.isoformat(),
            "created_at__lt": (start + datetime.timedelta(days=1)).isoformat(),
        }
    )
    assert listed(admin_client, query) == [today]


def test_a_name_finds_the_persons_firings(admin_client):
    anna = LeadFactory(first_name="Annika", last_name="Berg")
    hers = TriggerFiringFactory(activity__lead=anna)
    TriggerFiringFactory(activity__lead=LeadFactory(first_name="Bo", last_name="Ek"))
    assert listed(admin_client, "q=Annika Berg") == [hers]


def test_each_firing_links_to_its_activity(admin_client):
    firing = TriggerFiringFactory()
    page = admin_client.get(FIRINGS).text
    assert reverse("admin:smscampaigns_activity_change", args=[firing.activity_id]) in page


def test_the_list_is_read_only(admin_client):
    firing = TriggerFiringFactory()
    assert admin_client.get(reverse("admin:marketing_activities_triggerfiring_add")).status_code == 403
    url = reverse("admin:marketing_activities_triggerfiring_delete", args=[firing.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    firing.refresh_from_db()
