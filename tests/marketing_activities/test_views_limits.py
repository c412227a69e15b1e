"""Communication limits on the screens: the Results tab, the Schedule tab's
"operational" checkbox and the admin's page of the limits."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import CommunicationLimits
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.factories import (
    CommunicationLimitsFactory,
    MarketingSmsFactory,
    SmartCampaignFactory,
)
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db

LIMITS_ADMIN = "admin:marketing_activities_communicationlimits_changelist"


def test_the_results_tab_shows_who_the_limit_skipped(staff_client, news, vibes_simulator):
    CommunicationLimitsFactory(per_day=1)
    anna = subscribed(news, first_name="Anna", last_name="Limit", mobile_phone="+15551240101")
    subscribed(news, first_name="Ben", last_name="Fresh", mobile_phone="+15551240102")
    MarketingSmsFactory(result__lead=anna, sent_at=timezone.now())
    run = execute(make_campaign(("send", news)), vibes_simulator)
    results = url("campaign_results", run.campaign.pk)
    page = staff_client.get(f"{results}?run={run.pk}").content.decode()
    assert "Skipped: communication limit reached" in page
    people = staff_client.get(
        f"{results}?run={run.pk}&step=0&outcome=skipped_communication_limit",
        headers={**HTMX, "HX-Target": "run-people"},
    ).content.decode()
    assert "Anna Limit" in people and "Ben Fresh" not in people


def test_the_schedule_tab_marks_a_campaign_operational(staff_client):
    campaign = SmartCampaignFactory()
    schedule = url("campaign_schedule", campaign.pk)
    response = staff_client.post(schedule, {"action": "operational", "operational": "on"}, headers=HTMX)
    assert "its SMS are exempt from the communication limits" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.operational
    # Unchecked, a checkbox posts nothing: the campaign sends marketing SMS again.
    response = staff_client.post(schedule, {"action": "operational"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert not campaign.operational


def test_the_schedule_tab_shows_the_limits_in_force(staff_client):
    campaign = SmartCampaignFactory()
    page = staff_client.get(url("campaign_schedule", campaign.pk)).content.decode()
    assert "No communication limit is set" in page
    CommunicationLimitsFactory(per_day=2, per_week=5)
    page = staff_client.get(url("campaign_schedule", campaign.pk)).content.decode()
    assert "At most 2 marketing SMS per number in the last 24 hours and 5 in the last 7 days" in page


def test_the_schedule_tabs_checkbox_is_disabled_for_a_viewer(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_smartcampaign"))
    client.force_login(viewer)
    campaign = SmartCampaignFactory()
    page = client.get(url("campaign_schedule", campaign.pk)).content.decode()
    card = page[page.index('id="communication-limits"') :]
    assert '<fieldset class="plain" disabled>' in card[: card.index("</section>")]
    assert client.post(url("campaign_schedule", campaign.pk), {"action": "operational"}).status_code == 403


def test_an_administrator_sets_the_limits_on_one_page(admin_client):
    page = admin_client.get(reverse(LIMITS_ADMIN))
    assert page.status_code == 200
    assert "per 7 days" in page.content.decode().lower()
    response = admin_client.post(reverse(LIMITS_ADMIN), {"per_day": "1", "per_week": "3"})
    assert response.status_code == 302
    limits = CommunicationLimits.load()
    assert (limits.per_day, limits.per_week) == (1, 3)
    assert "The communication limits are saved." in admin_client.get(response.url).content.decode()
    # Blank: no limit.
    admin_client.post(reverse(LIMITS_ADMIN), {"per_day": "", "per_week": "3"})
    assert CommunicationLimits.load().per_day is None
    assert CommunicationLimits.objects.count() == 1


def test_a_bad_limit_is_refused_at_its_field_and_the_other_is_kept_in_the_form(admin_client):
    response = admin_client.post(reverse(LIMITS_ADMIN), {"per_day": "0", "per_week": "3"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in html
    assert 'value="3"' in html
    assert CommunicationLimits.load().per_week is None  # nothing saved


def test_the_limits_have_no_add_or_delete_page(admin_client):
    CommunicationLimitsFactory(per_day=1)
    assert admin_client.get(reverse("admin:marketing_activities_communicationlimits_add")).status_code == 403
    delete = reverse("admin:marketing_activities_communicationlimits_delete", args=[1])
    assert admin_client.get(delete).status_code == 403


def test_a_marketer_may_not_change_the_limits(client, marketers_group, django_user_model):
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(marketers_group)
    client.force_login(marketer)
    response = client.get(reverse(LIMITS_ADMIN))
    assert response.status_code == 403
    assert "communication limits" in response.content.decode().lower()
