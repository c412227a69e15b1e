"""A marketer requests a trigger campaign for a person from the admin's leads."""

import pytest
from playwright.sync_api import expect

from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import make_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import VibesListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_requests_a_campaign_for_the_selected_people(vibes_simulator, settings, logged_in):
    settings.RUNNER_BACKGROUND = "inline"  # the request is what is checked here, not its run
    welcome = make_campaign(("send", VibesListFactory(vibes_id="101", name="SMS Newsletter")))
    welcome.name = "Welcome on request"
    welcome.smart_list.definition = {
        "logic": "all",
        "rules": [],
        "triggers": [{"trigger": "campaign_requested"}],
    }
    welcome.smart_list.save()
    welcome.is_active = True
    welcome.save()
    ada = LeadFactory(first_name="Ada", last_name="Byron")
    page = logged_in

    page.goto("/admin/smscampaigns/lead/")
    page.get_by_role("row", name="Ada Byron").get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("request_campaign")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_label("Campaign to request").select_option(label=str(welcome))
    page.get_by_role("button", name="Request").click()

    expect(page.locator(".messagelist")).to_contain_text(f"{welcome} requested for 1 person")
    request = Activity.objects.get(kind=Activity.Kind.CAMPAIGN_REQUESTED)
    assert (request.lead_id, request.source, request.attributes["campaign"]) == (ada.pk, "admin", welcome.pk)
