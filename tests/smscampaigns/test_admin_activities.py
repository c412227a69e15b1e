"""The admin's list of activities: read only, filtered by kind, source and
date, searched by person (smscampaigns/lead_search.py)."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from smscampaigns.models import Activity
from tests.marketing_activities.factories import SmartCampaignFactory, TriggerFiringFactory
from tests.smscampaigns.factories import ActivityFactory, LeadFactory

pytestmark = pytest.mark.django_db

ACTIVITIES = reverse("admin:smscampaigns_activity_changelist")


def listed(client, query=""):
    response = client.get(f"{ACTIVITIES}?{query}")
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_the_list_shows_the_newest_activity_first(admin_client):
    older, newer = ActivityFactory(), ActivityFactory()
    assert listed(admin_client) == [newer, older]


def test_the_list_filters_by_kind(admin_client):
    reply = ActivityFactory(kind=Activity.Kind.REPLIED_TO_SMS)
    ActivityFactory(kind=Activity.Kind.SUBSCRIBED_TO_VIBES_LIST)
    assert listed(admin_client, "kind__exact=replied_sms") == [reply]


def test_the_sidebar_offers_each_source_and_filters_by_it(admin_client):
    imported = ActivityFactory(source="import")
    ActivityFactory(source="vibes")
    response = admin_client.get(ACTIVITIES)
    sources = next(f for f in response.context["cl"].filter_specs if f.field_path == "source")
    assert list(sources.lookup_choices) == ["import", "vibes"]
    assert listed(admin_client, "source=import") == [imported]


def test_the_list_filters_by_the_day_it_happened(admin_client):
    today = ActivityFactory()
    ActivityFactory(occurred_at=timezone.now() - datetime.timedelta(days=30))
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    query = urlencode(
        {
            "occurred_at__gte": start.isoformat(),
            "occurred_at__lt": (start + datetime.timedelta(days=1)).isoformat(),
        }
    )
    assert listed(admin_client, query) == [today]


def test_a_number_in_any_spelling_finds_the_persons_activities(admin_client):
    anna = LeadFactory(mobile_phone="+15551234567")
    hers = ActivityFactory(lead=anna)
    ActivityFactory()
    assert listed(admin_client, "q=(555) 123-4567") == [hers]


def test_the_list_is_read_only(admin_client):
    activity = ActivityFactory()
    assert admin_client.get(reverse("admin:smscampaigns_activity_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:smscampaigns_activity_change", args=[activity.pk]), {"source": "admin"}
    )
    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.source == "vibes"


def test_a_leads_page_links_to_their_activities_and_firings(admin_client):
    anna = LeadFactory()
    hers = ActivityFactory(lead=anna)
    ActivityFactory()
    page = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[anna.pk])).text
    link = f"{ACTIVITIES}?lead__id__exact={anna.pk}"
    assert f'href="{link}"' in page
    assert (
        f'href="{reverse("admin:marketing_activities_triggerfiring_changelist")}?lead__id__exact={anna.pk}"'
        in page
    )
    assert listed(admin_client, f"lead__id__exact={anna.pk}") == [hers]


def trigger_campaign():
    return SmartCampaignFactory(
        smart_list__definition={"logic": "all", "rules": [], "triggers": [{"trigger": "campaign_requested"}]}
    )


def test_the_list_filters_by_the_campaign_an_activity_fired(admin_client):
    fired = TriggerFiringFactory(campaign=trigger_campaign())
    TriggerFiringFactory(campaign=trigger_campaign())
    ActivityFactory()
    assert listed(admin_client, f"fired_campaign={fired.campaign_id}") == [fired.activity]


def test_a_campaign_filter_that_is_no_number_lists_nothing(admin_client):
    TriggerFiringFactory(campaign=trigger_campaign())
    assert listed(admin_client, "fired_campaign=x") == []
