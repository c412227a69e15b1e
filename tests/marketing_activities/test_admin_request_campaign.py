"""Campaign is Requested from the admin: the leads' action "Request campaign…"
picks an active trigger campaign with that trigger, then requests the people
through the same service as `manage.py request_campaign`."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.urls import reverse

from marketing_activities import admin as marketing_admin
from marketing_activities.models import TriggerFiring
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.test_sms_triggers import follow_up_campaign
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

LEADS = reverse("admin:smscampaigns_lead_changelist")
REQUESTED = {"trigger": "campaign_requested"}


def request_action(client, leads, **data):
    return client.post(
        LEADS,
        {"action": "request_campaign", ACTION_CHECKBOX_NAME: [lead.pk for lead in leads], "index": 0, **data},
    )


def confirm(client, leads, campaign):
    return request_action(client, leads, post="yes", campaign=campaign.pk if campaign else "")


def test_the_action_offers_only_active_campaigns_with_a_request_trigger_the_admin_fires(admin_client, news):
    any_source = follow_up_campaign(news, REQUESTED)
    from_admin = follow_up_campaign(news, {**REQUESTED, "source": "admin"})
    from_flow_only = follow_up_campaign(news, {**REQUESTED, "source": "flow"})
    inactive = follow_up_campaign(news, REQUESTED)
    inactive.is_active = False
    inactive.save()
    batch = make_campaign(("send", news))
    batch.is_active = True
    batch.save()

    response = request_action(admin_client, [LeadFactory()])

    assert response.status_code == 200
    offered = {pk for pk, _label in response.context["form"].fields["campaign"].choices if pk}
    assert offered == {any_source.pk, from_admin.pk}
    assert not {from_flow_only.pk, inactive.pk, batch.pk} & offered
    assert not Activity.objects.exists()


def test_confirming_requests_the_campaign_and_its_flow_runs_for_each_person(
    admin_client, admin_user, news, vibes_simulator
):
    welcome = follow_up_campaign(news, REQUESTED)
    people = [subscribed(news, country="US"), subscribed(news, country="SE")]

    response = confirm(admin_client, people, welcome)

    assert response.status_code == 302
    requests = Activity.objects.filter(kind=Activity.Kind.CAMPAIGN_REQUESTED)
    assert sorted(requests.values_list("lead_id", flat=True)) == sorted(p.pk for p in people)
    assert {(a.source, a.attributes["campaign"], a.attributes["requested_by"]) for a in requests} == {
        ("admin", welcome.pk, admin_user.pk)
    }
    triggers_dispatch()
    assert TriggerFiring.objects.filter(campaign=welcome, status="member").count() == 2
    assert len(vibes_simulator.messages()) == 2


def test_the_success_message_says_who_was_requested(admin_client, news):
    welcome = follow_up_campaign(news, REQUESTED)
    response = confirm(admin_client, LeadFactory.create_batch(3), welcome)
    messages = [str(m) for m in response.wsgi_request._messages]
    said = f"{welcome} requested for 3 people: it runs for those who pass its smart list's filters."
    assert messages == [said]


def test_a_campaign_no_longer_requestable_is_refused_with_a_message_and_nothing_requested(admin_client, news):
    welcome = follow_up_campaign(news, REQUESTED)
    lead = LeadFactory()
    request_action(admin_client, [lead])
    welcome.is_active = False  # deactivated while the page was open
    welcome.save()

    response = confirm(admin_client, [lead], welcome)

    assert response.status_code == 200
    assert "That campaign cannot be requested: choose an active trigger campaign" in response.text
    assert not Activity.objects.exists()


def test_a_campaign_id_that_does_not_exist_is_refused_with_a_message(admin_client, news):
    follow_up_campaign(news, REQUESTED)
    response = request_action(admin_client, [LeadFactory()], post="yes", campaign="99999x")
    assert response.status_code == 200
    assert "That campaign cannot be requested" in response.text
    assert not Activity.objects.exists()


def test_confirming_without_a_campaign_asks_for_one(admin_client, news):
    follow_up_campaign(news, REQUESTED)
    response = confirm(admin_client, [LeadFactory()], None)
    assert response.status_code == 200
    assert "Choose the campaign to request." in response.text
    assert not Activity.objects.exists()


def test_with_no_requestable_campaign_the_page_says_what_to_do(admin_client, news):
    follow_up_campaign(news, {**REQUESTED, "source": "command"})
    response = request_action(admin_client, [LeadFactory()])
    assert response.status_code == 200
    assert "No campaign can be requested: activate a trigger campaign" in response.text
    assert 'name="post"' not in response.text


def test_more_people_than_requested_at_once_are_refused_before_anything_is_recorded(
    admin_client, news, monkeypatch
):
    monkeypatch.setattr(marketing_admin, "REQUEST_AT_MOST", 2)
    welcome = follow_up_campaign(news, REQUESTED)
    people = LeadFactory.create_batch(3)
    response = confirm(admin_client, people, welcome)
    assert response.status_code == 200
    assert "At most 2 people can be requested at once here" in response.text
    assert not Activity.objects.exists()


def test_a_trigger_for_requests_from_the_admin_ignores_the_command(admin_client, news, vibes_simulator):
    from_admin = follow_up_campaign(news, {**REQUESTED, "source": "admin"})
    lead = LeadFactory()
    call_command("request_campaign", str(from_admin.pk), str(lead.pk))
    triggers_dispatch()
    assert not TriggerFiring.objects.exists()
    confirm(admin_client, [lead], from_admin)
    triggers_dispatch()
    assert TriggerFiring.objects.filter(campaign=from_admin, lead=lead).exists()
