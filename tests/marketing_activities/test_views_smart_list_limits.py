"""Smart list limits on the Smart List tab, and smart lists stored beyond them.

Whatever the marketer types, and whatever was stored before the limits
existed, the tab, the admin, the previews and a run answer with the problem:
never a 500, and the campaign does not run until the smart list is fixed.
The tab saves as the marketer types, problems and all, except beyond the
rule limit (more rules than the tab can show again).
"""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from marketing_activities.models import CampaignRun
from marketing_activities.runner import CampaignCannotRun, run_create
from smscampaigns.models import SmartList
from smscampaigns.smartlists import MAX_LOGIC_DEPTH, MAX_RULES
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db

US = {"field": "country", "op": "is", "value": "US"}
TOO_DEEP = f"Logic: parentheses and “not” are nested more than {MAX_LOGIC_DEPTH} levels deep"
NESTED_400 = "(" * 400 + "1" + ")" * 400
NOTS_5000 = "not " * 5000 + "1"


def typed(*rules, logic_mode="all", logic="", action="save"):
    """The tab's form as the browser posts it."""
    data = {"rule_count": len(rules), "logic_mode": logic_mode, "logic": logic, "action": action}
    for index, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rule-{index}-{key}"] = value
    return data


def post_tab(client, campaign, data, *, target="save-status"):
    """As the tab posts it: typing gets the saved state back, a change of the rules gets them again."""
    client.raise_request_exception = False
    return client.post(url("campaign_smart_list", campaign.pk), data, headers={**HTMX, "HX-Target": target})


def element(html, element_id):
    start = html.rindex("<", 0, html.index(f'id="{element_id}"'))
    return html[start : html.index("</", start)]


# --- Typed in the tab -------------------------------------------------------------


@pytest.mark.parametrize("logic", [NESTED_400, NOTS_5000], ids=["nested-400-deep", "5000-nots"])
def test_the_tab_shows_logic_nested_deeper_than_the_limit_at_the_logic(staff_client, logic):
    campaign = FlowStepFactory().campaign
    response = post_tab(staff_client, campaign, typed(US, logic_mode="expression", logic=logic))
    assert response.status_code == 200
    assert TOO_DEEP in element(response.content.decode(), "logic-problem")
    # Kept as typed (the tab saves as it goes), to be shortened; the campaign cannot run until then.
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.logic == logic
    assert any(problem.startswith(f"Smart list: {TOO_DEEP}") for problem in campaign.problems())
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert f'value="{logic}"' in html and TOO_DEEP in html


def test_the_tab_refuses_more_rules_than_the_limit_and_keeps_them_all(staff_client):
    campaign = SmartCampaignFactory()
    before = campaign.smart_list.definition
    rules = [{"field": "city", "op": "is", "value": f"City {n}"} for n in range(MAX_RULES + 1)]
    response = post_tab(staff_client, campaign, typed(*rules, logic_mode="any"), target="smart-list-rules")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"The smart list has {MAX_RULES + 1} rules; a smart list holds at most {MAX_RULES}." in html
    assert f'value="City {MAX_RULES}"' in html
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.definition == before


def test_the_tab_saves_as_many_rules_as_the_limit(staff_client):
    campaign = SmartCampaignFactory()
    rules = [{"field": "city", "op": "is", "value": f"City {n}"} for n in range(MAX_RULES)]
    post_tab(staff_client, campaign, typed(*rules, logic_mode="any"))
    campaign.smart_list.refresh_from_db()
    assert len(campaign.smart_list.rules) == MAX_RULES


def test_the_tab_answers_a_post_of_thousands_of_rules_as_a_bad_request(staff_client):
    """The page never holds more than the limit and one; more fields than Django reads is no user's doing."""
    campaign = SmartCampaignFactory()
    response = post_tab(staff_client, campaign, typed(*[US] * 5000))
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["2026-13-45", "2026-02-30", "2026-01-01T25:99"])
def test_the_tab_shows_an_impossible_date_at_its_rule(staff_client, value):
    campaign = FlowStepFactory().campaign
    response = post_tab(
        staff_client, campaign, typed({"field": "created_at", "op": "before", "value": value})
    )
    assert response.status_code == 200
    message = f"Rule 1: “{value}” is not a real date or time; check the month, day, hour and minute."
    assert message in element(response.content.decode(), "rule-0-problem")
    # Kept as typed, to be corrected; the campaign cannot run until then.
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules == [{"field": "created_at", "op": "before", "value": value}]
    assert f"Smart list: {message}" in campaign.problems()
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    rule = html.split('id="rule-0"')[1].split("</li>")[0]
    assert message in rule and f'value="{value}"' in rule


def test_the_count_of_an_impossible_date_asks_to_fix_the_rules(staff_client):
    campaign = SmartCampaignFactory()
    data = typed({"field": "created_at", "op": "before", "value": "2026-13-45"})
    response = post_tab(staff_client, campaign, data)
    assert response.status_code == 200
    assert "Fix the rules to see who qualifies." in response.content.decode()


# --- Stored before the limits ----------------------------------------------------

STORED = {
    "5000-rules": (
        {"logic": "all", "rules": [US] * 5000},
        f"The smart list has 5000 rules; a smart list holds at most {MAX_RULES}.",
    ),
    "nested-400-deep": ({"logic": NESTED_400, "rules": [US]}, TOO_DEEP),
    "5000-nots": ({"logic": NOTS_5000, "rules": [US]}, TOO_DEEP),
    "impossible-date": (
        {"logic": "all", "rules": [{"field": "created_at", "op": "after", "value": "2026-02-30"}]},
        "Rule 1: “2026-02-30” is not a real date or time",
    ),
}


@pytest.fixture(params=STORED.values(), ids=STORED.keys())
def stored(request):
    """A campaign that could run but for its smart list, written straight to the database."""
    definition, message = request.param
    campaign = FlowStepFactory().campaign
    SmartList.objects.filter(pk=campaign.smart_list_id).update(definition=definition)
    campaign.refresh_from_db()
    return campaign, message


def test_the_tab_shows_the_problem_of_a_smart_list_stored_beyond_the_limits(staff_client, stored):
    campaign, message = stored
    for headers in ({}, HTMX):
        response = staff_client.get(url("campaign_smart_list", campaign.pk), headers=headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert message in html
        assert "Fix the rules to see who qualifies." in html


def test_the_tab_offers_only_the_first_rules_of_thousands_and_says_so(staff_client):
    campaign = SmartCampaignFactory()
    SmartList.objects.filter(pk=campaign.smart_list_id).update(
        definition={"logic": "all", "rules": [US] * 5000}
    )
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert f'id="rule-{MAX_RULES - 1}"' in html
    assert f'id="rule-{MAX_RULES}"' not in html
    assert f"Only the first {MAX_RULES} are shown, and saving keeps only these." in html


def test_the_admin_pages_show_the_problem_of_a_smart_list_stored_beyond_the_limits(admin_client, stored):
    campaign, message = stored
    smart_list_page = admin_client.get(
        reverse("admin:smscampaigns_smartlist_change", args=[campaign.smart_list_id])
    )
    campaign_page = admin_client.get(
        reverse("admin:marketing_activities_smartcampaign_change", args=[campaign.pk])
    )
    changelist = admin_client.get(reverse("admin:smscampaigns_smartlist_changelist"))
    assert smart_list_page.status_code == campaign_page.status_code == changelist.status_code == 200
    assert message in smart_list_page.content.decode()
    assert f"Smart list: {message}" in campaign_page.content.decode()


def test_the_previews_show_the_problem_of_a_smart_list_stored_beyond_the_limits(admin_client, stored):
    campaign, message = stored
    admin_preview = admin_client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "preview_audience", ACTION_CHECKBOX_NAME: [campaign.pk]},
    )
    run_confirmation = admin_client.get(url("campaign_run_now", campaign.pk))
    assert admin_preview.status_code == run_confirmation.status_code == 200
    assert f"Smart list: {message}" in admin_preview.content.decode()
    assert f"Smart list: {message}" in run_confirmation.content.decode()


def test_a_smart_list_stored_beyond_the_limits_never_runs(admin_client, stored):
    campaign, message = stored
    with pytest.raises(CampaignCannotRun, match=message[:30]):
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    with pytest.raises(CommandError) as command:
        call_command("run_campaign", campaign.pk)
    assert command.value.returncode == 2
    run_button = admin_client.post(url("campaign_run_now", campaign.pk))
    run_now = admin_client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "run_now", ACTION_CHECKBOX_NAME: [campaign.pk]},
        follow=True,
    )
    assert run_button.status_code == run_now.status_code == 200
    assert f"Smart list: {message}" in run_button.content.decode()
    assert message in run_now.content.decode()
    assert not CampaignRun.objects.exists()
