"""A marketer switches the interface language in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.catalogues import FLOW_STEP_NAMES, translated
from tests.marketing_activities.factories import FolderFactory, ProgramFactory, SmartCampaignFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABS = ["Smart List", "Flow", "Schedule", "Results"]


def expect_interface_in(page, language, campaign):
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("navigation", name=translated(language, "Main"))).to_contain_text(
        translated(language, "Marketing Activities")
    )
    # The tree: its search box, its folders' buttons and the campaign in it.
    expect(page.get_by_role("searchbox", name=translated(language, "Search the tree"))).to_be_visible()
    toggle = "|".join(re.escape(translated(language, word)) for word in ("Expand", "Collapse"))
    expect(page.get_by_role("button", name=re.compile(f"^({toggle}) Marketing$"))).to_be_visible()
    expect(page.locator("#tree .tree-link[aria-current=page]")).to_have_text(campaign.name)
    # The campaign's tabs, the Flow tab selected.
    for tab in TABS:
        expect(page.get_by_role("tab", name=translated(language, tab), exact=True)).to_be_visible()
    expect(page.get_by_role("tab", name=translated(language, "Flow"), exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    # The palette: the three flow steps as the source documents name them
    # (Request Campaign, Wait and Remove from Flow are not of those documents).
    sms_steps = page.locator(
        ".palette-item:not([data-palette-action=request_campaign])"
        ":not([data-palette-action=wait]):not([data-palette-action=remove_from_flow])"
    )
    expect(sms_steps).to_have_text(FLOW_STEP_NAMES[language])


def test_a_marketer_switches_the_language_and_the_tree_tabs_and_palette_follow(logged_in):
    page = logged_in
    program = ProgramFactory(folder=FolderFactory(name="Marketing"), name="Black Friday SMS")
    campaign = SmartCampaignFactory(program=program, name="Black Friday teaser")
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/flow/")
    expect_interface_in(page, "en", campaign)

    for language, name in [("de", "Deutsch"), ("fr", "Français"), ("sv", "Svenska")]:
        with page.expect_navigation():
            page.get_by_label(
                translated(page.locator("html").get_attribute("lang"), "Language")
            ).select_option(label=name)
        expect_interface_in(page, language, campaign)

    # The choice is remembered: a reload stays in Swedish.
    page.reload()
    expect_interface_in(page, "sv", campaign)
