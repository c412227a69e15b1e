"""A marketer whose permission is taken away while the page is open is told why a click was refused."""

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from tests.marketing_activities.factories import FolderFactory, ProgramFactory, SmartCampaignFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_refused_htmx_request_says_which_permission_is_missing(logged_in, marketer):
    page = logged_in
    campaign = SmartCampaignFactory(program=ProgramFactory(folder=FolderFactory(name="Marketing")))
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/flow/")
    banner = page.locator("#request-error")
    expect(banner).to_be_hidden()

    # Meanwhile an administrator takes the Marketers group away, and leaves the marketer only looking.
    marketer.groups.clear()
    marketer.user_permissions.set(Permission.objects.filter(codename="view_smartcampaign"))
    page.get_by_role("button", name="Send SMS Message").click()

    expect(banner).to_be_visible()
    expect(banner).to_contain_text(
        "You cannot change smart campaigns: that needs the permission "
        "“Marketing Activities | smart campaign | Can change smart campaign”."
    )
    expect(banner.locator("[data-generic]")).to_be_hidden()  # not "reload and try again"
    expect(page.locator("#flow-steps .flow-step")).to_have_count(0)
    assert not campaign.flow_steps.exists()
