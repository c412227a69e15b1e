"""A marketer in a real browser: the tree, the Flow tab (drag and keyboard), the editors.

Follows the source documents: Marketing Activities → find the campaign →
Flow tab → drag a step in → pick the SMS message and the Vibes list.
"""

import re
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from marketing_activities.models import FlowStep, SmartCampaign
from tests.browser.conftest import PASSWORD, WAIT_MS
from tests.marketing_activities.factories import (
    FlowStepFactory,
    FolderFactory,
    ProgramFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.smscampaigns.factories import LeadFactory, SmartListFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketing_data():
    top = FolderFactory(name="Marketing")
    program = ProgramFactory(folder=FolderFactory(parent=top, name="2026 Holiday"), name="Black Friday SMS")
    SmsMessageFactory(
        program=program, name="Teaser", text='Hi {{lead.first_name|default:"there"}}, 30% off Friday.'
    )
    # The lists and acquisition campaigns the Vibes simulator serves (vibes/demo.py).
    news = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    vip = VibesListFactory(vibes_id="102", name="VIP Offers")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=news, name="Newsletter web sign-up")
    AcquisitionCampaignFactory(vibes_id="AC-VIP", vibes_list=vip, name="VIP keyword")
    for index in range(6):
        lead = LeadFactory(country="US", first_name=f"Person{index}")
        SubscriptionFactory(lead=lead, vibes_list=news)
    return {"program": program, "news": news}


# Counts htmx's requests in flight and its settled swaps, once per page (from
# the first wait on: a request already under way then is not counted).
WATCH_HTMX = """() => {
  if (window.__htmxWatch) return;
  const watch = (window.__htmxWatch = { inflight: 0, settles: 0 });
  document.addEventListener("htmx:beforeRequest", () => watch.inflight++);
  document.addEventListener("htmx:afterRequest", () => { watch.inflight = Math.max(0, watch.inflight - 1); });
  document.addEventListener("htmx:afterSettle", () => watch.settles++);
}"""
QUIET = """before => {
  const watch = window.__htmxWatch;
  return watch.settles > before && watch.inflight === 0
    && !document.querySelector(".htmx-settling, .htmx-swapping");
}"""


@contextmanager
def swapped(page, timeout_ms=WAIT_MS):
    """Wait, after the block, for the htmx swap it caused to settle and for the
    page to be quiet (no request in flight, nothing settling): the new elements
    are in place and have their hx-* behaviour. Assertions on text that was
    already there would not tell the old page from the new one, and waiting
    for the first swap alone would be fooled by a swap the block also caused
    (leaving a field saves it, say)."""
    page.evaluate(WATCH_HTMX)
    before = page.evaluate("() => window.__htmxWatch.settles")
    yield
    page.wait_for_function(QUIET, arg=before, timeout=timeout_ms)


def step_titles(page):
    return [title.strip() for title in page.locator("#flow-steps .step-title").all_inner_texts()]


def test_a_marketer_builds_a_flow_and_runs_it(marketing_data, vibes_simulator, settings, logged_in):
    settings.RUNNER_BACKGROUND = "thread"  # the Run button's run works in a thread of the live server
    page = logged_in
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm on delete

    # The tree: children load on expand, and stay expanded after a reload.
    for name in ("Marketing", "2026 Holiday", "Black Friday SMS"):
        with swapped(page):
            page.get_by_role("button", name=f"Expand {name}").click()
    expect(page.locator("#tree")).to_contain_text("Teaser")
    page.reload()
    expect(page.locator("#tree")).to_contain_text("Teaser")

    # Create a campaign from the program's menu in the tree.
    row = page.locator(f"#node-program-{marketing_data['program'].pk} > .tree-row")
    row.hover()
    row.locator("summary").click()  # the ⋯ menu, named "Actions for Black Friday SMS"
    with swapped(page):
        row.get_by_role("button", name="New smart campaign").click()
    page.get_by_label("Name").fill("Black Friday teaser")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+/smart-list/$"))
    campaign = SmartCampaign.objects.get(name="Black Friday teaser")
    expect(page.locator("#tree .tree-link[aria-current=page]")).to_have_text("Black Friday teaser")

    # Smart List: one rule, saved as it is made, and the count updates.
    with swapped(page):
        page.get_by_role("button", name="Add rule").click()
    expect(page.locator("#save-status")).to_contain_text("Saved with problems")  # the rule lacks a value
    with swapped(page):  # choosing the field re-renders the rule with that field's operators
        page.get_by_label("Rule 1: field").select_option("country")
    expect(page.get_by_label("Rule 1: operator")).to_have_value("is")
    with swapped(page):  # the live count, after a pause in typing
        page.get_by_label("Rule 1: value").fill("US")
    expect(page.locator("#audience")).to_contain_text("6 people qualify")
    expect(page.locator("#save-status")).to_contain_text("All changes saved")

    # Flow tab: its own URL.
    with swapped(page):
        page.get_by_role("tab", name="Flow").click()
    page.wait_for_url(f"**/campaigns/{campaign.pk}/flow/")
    expect(page.get_by_role("tab", name="Flow")).to_have_attribute("aria-selected", "true")

    # Drag Send SMS Message from the palette onto the flow (a real mouse drag).
    with swapped(page):
        page.locator("[data-palette-action=send_sms]").drag_to(page.locator("#flow-steps"))
    expect(page.locator("#flow-steps .flow-step")).to_have_count(1)
    expect(page.locator("#flow-steps .flow-step")).to_contain_text("Choose an SMS message.")

    # Choose the message and the list: each change is saved at once.
    with swapped(page):
        page.locator("#flow-steps .flow-step").get_by_label("SMS message").select_option(label="Teaser")
    expect(page.locator("#flow-steps .flow-step")).not_to_contain_text("Choose an SMS message.")
    with swapped(page):
        page.locator("#flow-steps .flow-step").get_by_label("Vibes list").select_option(
            label="SMS Newsletter"
        )
    expect(page.locator("#flow-steps .flow-step .badge")).to_have_text("Ready")

    # A second step with the keyboard: palette items are buttons, Enter adds at the end.
    page.locator("[data-palette-action=unsubscribe_vibes_list]").focus()
    with swapped(page):
        page.keyboard.press("Enter")
    expect(page.locator("#flow-steps .flow-step")).to_have_count(2)
    with swapped(page):
        page.locator("#flow-steps .flow-step").nth(1).get_by_label("Vibes list").select_option(
            label="VIP Offers"
        )
    expect(page.locator("#flow-steps .flow-step").nth(1).locator(".badge")).to_have_text("Ready")

    # Reorder with the keyboard: "up" on step 2, and focus stays on the moved step.
    page.get_by_role("button", name="Move step 2 up").focus()
    with swapped(page):
        page.keyboard.press("Enter")
    assert step_titles(page) == ["Unsubscribe from Vibes List", "Send SMS Message"]
    expect(page.locator(":focus")).to_have_attribute("aria-label", "Move step 1 down")

    # Reorder by dragging: Send SMS Message's handle onto the top half of step 1.
    handle = page.locator("#flow-steps .flow-step").nth(1).locator(".drag-handle")
    with swapped(page):
        handle.drag_to(page.locator("#flow-steps .flow-step").first, target_position={"x": 200, "y": 8})
    assert step_titles(page) == ["Send SMS Message", "Unsubscribe from Vibes List"]

    # A reload shows both steps, in order, as saved.
    page.reload()
    assert step_titles(page) == ["Send SMS Message", "Unsubscribe from Vibes List"]
    assert list(campaign.flow_steps.order_by("position").values_list("action", flat=True)) == [
        FlowStep.Action.SEND_SMS,
        FlowStep.Action.UNSUBSCRIBE,
    ]

    # Subscribe needs an acquisition campaign of its list: the error shows at the step.
    with swapped(page):
        page.locator("[data-palette-action=subscribe_vibes_list]").drag_to(
            page.locator("#flow-steps"), target_position={"x": 300, "y": 5}
        )
    expect(page.locator("#flow-steps .flow-step")).to_have_count(3)
    subscribe = page.locator("#flow-steps .flow-step", has_text="Subscribe to Vibes List")
    expect(subscribe.get_by_label("Acquisition campaign")).to_be_disabled()
    with swapped(page):  # the list reloads the acquisition campaigns: only that list's are offered
        subscribe.get_by_label("Vibes list").select_option(label="SMS Newsletter")
    expect(subscribe.get_by_label("Acquisition campaign")).to_be_enabled()
    expect(subscribe).to_contain_text("Choose an acquisition campaign of the Vibes list.")
    options = subscribe.get_by_label("Acquisition campaign").locator("option").all_inner_texts()
    assert "Newsletter web sign-up" in options and "VIP keyword" not in options
    expect(subscribe.locator(".badge")).to_have_text("Incomplete")

    # Delete it again (the confirmation is accepted above).
    with swapped(page):
        subscribe.get_by_role("button", name=re.compile(r"Delete step \d")).click()
    expect(page.locator("#flow-steps .flow-step")).to_have_count(2)

    # Run it: Schedule → Run now… shows who qualifies and asks first.
    with swapped(page):
        page.get_by_role("tab", name="Schedule").click()
    with swapped(page):
        page.get_by_role("link", name="Run now…").click()
    confirm = page.locator("#run-now")
    expect(confirm).to_contain_text("6 people qualify")
    expect(confirm).to_contain_text("1. Send SMS Message")
    page.get_by_role("button", name="Yes, run now").click()

    # The Results tab opens on the new run and fills in while it polls.
    page.wait_for_url(re.compile(rf"/campaigns/{campaign.pk}/results/\?run=\d+$"))
    run = campaign.runs.get()
    detail = page.locator("#run-detail")
    expect(detail.locator(".card-head .badge")).to_have_text("Completed", timeout=2 * WAIT_MS)
    expect(detail.locator('[data-outcome="sent"] .bar-count')).to_have_text("6")
    expect(detail.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    expect(detail).not_to_have_attribute("hx-trigger", "every 1s")  # 286 stopped the polling
    assert len(vibes_simulator.messages()) == 6
    assert run.trigger == "ui"

    # The people behind a count.
    with swapped(page):
        detail.locator('[data-outcome="sent"]').click()
    expect(page.locator("#run-people tbody tr")).to_have_count(6)
    expect(page.locator("#run-people")).to_contain_text("Sent")


def test_a_flow_action_dropped_between_two_steps_is_added_there_and_stays_in_the_palette(
    marketing_data, logged_in
):
    page = logged_in
    campaign = SmartCampaignFactory(program=marketing_data["program"])
    FlowStepFactory(campaign=campaign, position=0)
    FlowStepFactory(campaign=campaign, position=1, unsubscribe=True)
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/flow/")
    assert step_titles(page) == ["Send SMS Message", "Unsubscribe from Vibes List"]

    # Onto the top half of step 2: the new step comes between the two.
    with swapped(page):
        page.locator("[data-palette-action=subscribe_vibes_list]").drag_to(
            page.locator("#flow-steps .flow-step").nth(1), target_position={"x": 200, "y": 8}
        )
    assert step_titles(page) == ["Send SMS Message", "Subscribe to Vibes List", "Unsubscribe from Vibes List"]
    assert list(campaign.flow_steps.order_by("position").values_list("action", flat=True)) == [
        FlowStep.Action.SEND_SMS,
        FlowStep.Action.SUBSCRIBE,
        FlowStep.Action.UNSUBSCRIBE,
    ]

    # The palette still holds that action, once, and Enter on it still adds a step at the end.
    palette_item = page.locator(".flow-palette [data-palette-action=subscribe_vibes_list]")
    expect(palette_item).to_have_count(1)
    palette_item.focus()
    with swapped(page):
        page.keyboard.press("Enter")
    expect(page.locator("#flow-steps .flow-step")).to_have_count(4)
    assert step_titles(page)[-1] == "Subscribe to Vibes List"


def test_the_sms_editor_counts_while_typing_and_inserts_tokens(marketing_data, logged_in):
    page = logged_in
    message = marketing_data["program"].sms_messages.get()
    page.goto(f"/marketing-activities/sms-messages/{message.pk}/")
    text = page.get_by_label("Text", exact=True)
    with swapped(page):
        text.fill("x" * 161)
    expect(page.locator("#sms-live [data-segments]")).to_have_text("2")
    with swapped(page):
        text.fill("Hej 😀")
    expect(page.locator("#sms-live")).to_contain_text("UCS-2")
    with swapped(page):
        text.fill("Hi ")
    with swapped(page):
        page.get_by_role("button", name="{{lead.first_name}}").click()
    expect(text).to_have_value("Hi {{lead.first_name}}")
    expect(page.locator("#sms-live .bubble")).to_have_text("Hi")
    with swapped(page):
        page.get_by_label("Preview for a person").fill("Person3")
    with swapped(page):
        page.get_by_role("button", name=re.compile("Person3")).click()
    expect(page.locator("#sms-live .bubble")).to_have_text("Hi Person3")


def test_a_smart_list_rule_typed_is_still_there_after_switching_tabs(marketing_data, logged_in):
    page = logged_in
    campaign = SmartCampaignFactory(
        program=marketing_data["program"],
        smart_list=SmartListFactory(definition={"logic": "all", "rules": []}),
    )
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/smart-list/")
    with swapped(page):
        page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_label("Rule 1: field")).to_be_focused()
    with swapped(page):
        page.get_by_label("Rule 1: field").select_option("first_name")
    # Typed, and straight to another tab: no pause, no Save button.
    page.get_by_label("Rule 1: value").fill("Person3")
    with swapped(page):
        page.get_by_role("tab", name="Flow").click()
    page.wait_for_url(f"**/campaigns/{campaign.pk}/flow/")
    with swapped(page):
        page.get_by_role("tab", name="Smart List").click()
    expect(page.get_by_label("Rule 1: field")).to_have_value("first_name")
    expect(page.get_by_label("Rule 1: value")).to_have_value("Person3")
    expect(page.locator("#audience")).to_contain_text("1 person qualifies")
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules == [{"field": "first_name", "op": "is", "value": "Person3"}]

    # A logic problem shows while typing, at the logic, and goes when fixed.
    page.get_by_label("Advanced:").check()
    with swapped(page):
        page.get_by_label("Logic expression").fill("1 and 2")
    expect(page.locator("#logic-problem")).to_have_text(
        "Logic: there is no rule 2 (the rules are numbered 1 to 1)."
    )
    expect(page.locator("#save-status")).to_contain_text("Saved with problems")
    with swapped(page):
        page.get_by_label("Logic expression").fill("not 1")
    expect(page.locator("#logic-problem")).to_be_empty()
    expect(page.locator("#audience")).to_contain_text("5 people qualify")  # all but Person3


def test_the_sms_counter_shows_the_segments_of_the_longest_first_name(marketing_data, logged_in):
    page = logged_in
    LeadFactory(first_name="Maximilian-Alexander-Bernd")  # 26 characters, the longest
    message = marketing_data["program"].sms_messages.get()
    page.goto(f"/marketing-activities/sms-messages/{message.pk}/")
    with swapped(page):
        # As typed, 135 + 19 characters (and two septets more for the braces): 1 segment.
        page.get_by_label("Text", exact=True).fill("x" * 135 + "{{lead.first_name}}")
    live = page.locator("#sms-live")
    expect(live.locator("[data-characters]")).to_have_text("161")  # as the longest first name gets it
    expect(live.locator("[data-segments]")).to_have_text("2")
    expect(live).to_contain_text("first name: 26 characters")


def test_the_sms_counter_counts_a_tracked_link_as_its_short_link_until_told_not_to_track(
    marketing_data, logged_in, settings
):
    settings.SHORT_LINK_BASE_URL = "https://go.example.com"
    page = logged_in
    message = marketing_data["program"].sms_messages.get()
    page.goto(f"/marketing-activities/sms-messages/{message.pk}/")
    address = "https://shop.example.com/" + "a" * 150
    with swapped(page):
        page.get_by_label("Text", exact=True).fill(f"Sale: {address}")
    live = page.locator("#sms-live")
    expect(live.locator("[data-characters]")).to_have_text(str(len("Sale: https://go.example.com/l/") + 10))
    expect(live.locator("[data-segments]")).to_have_text("1")
    with swapped(page):
        page.get_by_label("Don't track links").check()
    expect(live.locator("[data-segments]")).to_have_text("2")
    expect(live.locator(".bubble")).to_have_text(f"Sale: {address}")
    with swapped(page):
        page.get_by_role("button", name="Save SMS message").click()
    expect(page.get_by_label("Don't track links")).to_be_checked()
    message.refresh_from_db()
    assert message.dont_track_links and message.text == f"Sale: {address}"


def test_the_tree_search_shows_matches_with_their_folders(marketing_data, logged_in):
    page = logged_in
    with swapped(page):
        page.get_by_label("Search the tree").fill("teaser")
    expect(page.locator("#tree .is-match")).to_have_count(1)
    expect(page.locator("#tree")).to_contain_text("Marketing")
    expect(page.locator("#tree")).to_contain_text("Black Friday SMS")
    with swapped(page):
        page.locator("#tree .is-match .tree-link").click()
    page.wait_for_url("**/sms-messages/*/")
    expect(page.locator("#detail h1")).to_have_text("Teaser")


LONG_NAME = "Holiday season 2026 – a program name far too long for the tree pane to show in full"
IS_CUT = "el => el.scrollWidth > el.clientWidth"


def chromium_links(page, name):
    """The links of that name in Chromium's own accessibility tree (what screen readers get)."""
    tree = page.context.new_cdp_session(page).send("Accessibility.getFullAXTree")
    return [
        node
        for node in tree["nodes"]
        if node.get("role", {}).get("value") == "link" and node.get("name", {}).get("value") == name
    ]


def test_a_long_name_cut_with_an_ellipsis_shows_whole_on_hover_focus_and_to_screen_readers(logged_in):
    page = logged_in
    program = ProgramFactory(name=LONG_NAME, folder=FolderFactory(name="Marketing"))
    campaign = SmartCampaign.objects.create(program=program, name="Teaser")
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/smart-list/")
    link = page.locator(f"#node-program-{program.pk} > .tree-row .tree-link")
    name = link.locator(".node-name")
    crumb = page.locator(".breadcrumbs a", has_text="Holiday season 2026")

    # Cut in the tree and in the breadcrumbs...
    assert name.evaluate(IS_CUT) and crumb.evaluate(IS_CUT)
    # ...and whole in the title of what the pointer rests on (the browser's tooltip).
    for element in (name, crumb):
        element.hover()
        box = element.bounding_box()
        title = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('[title]')?.title ?? null",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert title == LONG_NAME

    # Screen readers get the whole name, once: as the link's name, not repeated as its description.
    expect(link).to_have_accessible_name(LONG_NAME)
    expect(crumb).to_have_accessible_name(LONG_NAME)
    links = chromium_links(page, LONG_NAME)
    assert len(links) == 2
    assert all(not node.get("description", {}).get("value") for node in links)

    # The keyboard has no hover: the focused name shows whole.
    page.keyboard.press("Shift")
    link.focus()
    assert link.evaluate("el => el.matches(':focus-visible')")
    assert not name.evaluate(IS_CUT)


def test_the_run_button_is_usable_once_the_counts_arrive(logged_in, marketing_data):
    """Run now's confirmation opens at once and counts in a request of its own:
    who will be texted is on the screen before the run can be confirmed."""
    page = logged_in
    campaign = FlowStepFactory(
        campaign__program=marketing_data["program"], vibes_list=marketing_data["news"]
    ).campaign
    held = []
    # The counts request is held until the disabled button has been seen.
    page.route(re.compile(r"/run/\?count=exact$"), lambda route: held.append(route))
    page.goto(f"/marketing-activities/campaigns/{campaign.pk}/schedule/")
    page.get_by_role("link", name="Run now…").click()
    confirm = page.locator("#run-now")
    expect(confirm).to_contain_text("Counting them all…")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held:  # each call to the browser lets Playwright hand the request to the route
        assert time.monotonic() < deadline, "the confirmation never asked for its counts"
        page.evaluate("() => 0")
    expect(confirm.get_by_role("button", name="Yes, run now")).to_be_disabled()
    held[0].continue_()
    expect(confirm).to_contain_text("6 people qualify")
    expect(confirm).to_contain_text("Will get the SMS: 6")
    expect(confirm.get_by_role("button", name="Yes, run now")).to_be_enabled()


def test_the_admins_run_button_is_usable_once_the_counts_arrive(page, django_user_model, marketing_data):
    """The admin's Run now action: its page opens counting, and its counts follow as on the Schedule tab."""
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    campaign = FlowStepFactory(
        campaign__program=marketing_data["program"], vibes_list=marketing_data["news"]
    ).campaign
    page.goto("/admin/login/?next=/admin/marketing_activities/smartcampaign/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/marketing_activities/smartcampaign/")
    held = []
    page.route(re.compile(r"/smartcampaign/run-now/\?"), lambda route: held.append(route))
    page.locator(f'input[name="_selected_action"][value="{campaign.pk}"]').check()
    page.locator('select[name="action"]').select_option("run_now")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("link", name="Counting them all…")).to_be_visible()
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held:  # each call to the browser lets Playwright hand the request to the route
        assert time.monotonic() < deadline, "the confirmation never asked for its counts"
        page.evaluate("() => 0")
    expect(page.get_by_role("button", name="Yes, run now")).to_be_disabled()
    held[0].continue_()
    expect(page.locator("#run-now-previews")).to_contain_text("6 people qualify")
    expect(page.get_by_role("button", name="Yes, run now")).to_be_enabled()
