"""The Smart List tab: every change saved at once, problems at the rule and the logic, the live count."""

import pytest
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import AudienceCount
from marketing_activities.runner.count_jobs import audience_count_run
from smscampaigns.smartlists import FIELDS, IS, RulePart, SmartListField
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db


# What the page's requests send: a choice of field or operator, add and remove
# redraw the rules; typing a value or the logic gets the saved state back.
REDRAW = {**HTMX, "HX-Target": "smart-list-rules"}
TYPING = {**HTMX, "HX-Target": "save-status"}


def rules_post(*rules, logic_mode="all", logic="", action=""):
    data = {"rule_count": len(rules), "logic_mode": logic_mode, "logic": logic, "action": action}
    for index, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rule-{index}-{key}"] = value
    return data


def stored(campaign):
    campaign.smart_list.refresh_from_db()
    return campaign.smart_list.definition


def part(html, element_id):
    """The element with that id (up to its end tag), from an HTML fragment."""
    start = html.index(f'id="{element_id}"')
    start = html.rindex("<", 0, start)
    tag = html[start + 1 : html.index(" ", start)]
    return html[start : html.index(f"</{tag}>", start)]


def set_definition(campaign, definition):
    campaign.smart_list.definition = definition
    campaign.smart_list.save()


# --- The page ---------------------------------------------------------------------


def test_the_smart_list_tab_renders_the_full_page_with_the_count(staff_client):
    LeadFactory.create_batch(3, country="US")
    LeadFactory(country="SE")
    campaign = SmartCampaignFactory()  # country is US
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "<html" in html
    assert "3 people qualify" in html
    assert 'aria-selected="true"' in html.split('id="tab-smart-list"')[1].split(">")[0]
    assert "All changes saved" in html


def test_the_smart_list_tab_answers_htmx_with_the_partial(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.get(
        url("campaign_smart_list", campaign.pk), headers={**HTMX, "HX-Target": "tab-panel"}
    )
    assert b"<html" not in response.content
    assert b'id="smart-list-form"' in response.content


def test_the_preview_lists_the_first_ten_people(staff_client):
    LeadFactory.create_batch(12, country="US", first_name="Preview")
    html = staff_client.get(url("campaign_smart_list", SmartCampaignFactory().pk)).content.decode()
    assert "12 people qualify" in html
    assert html.count("Preview ") == 10
    assert "The first 10 are shown." in html


def test_no_rules_means_nobody(staff_client):
    campaign = SmartCampaignFactory()
    LeadFactory()
    staff_client.post(url("campaign_smart_list", campaign.pk), rules_post())
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "0 people qualify" in html
    assert "No rules yet: nobody qualifies." in html


def test_non_staff_cannot_change_a_smart_list(clerk_client):
    campaign = SmartCampaignFactory()
    assert clerk_client.post(url("campaign_smart_list", campaign.pk), rules_post()).status_code == 403
    assert stored(campaign)["rules"]


def test_every_save_needs_the_csrf_token(django_user_model):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("csrf", "csrf@example.com", "pw-csrf-123"))
    campaign = SmartCampaignFactory()
    page = client.get(url("campaign_smart_list", campaign.pk))
    data = rules_post({"field": "country", "op": "is", "value": "SE"})
    assert client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING).status_code == 403
    # htmx sends the token from the page's <body hx-headers>.
    token = str(page.context["csrf_token"])
    response = client.post(
        url("campaign_smart_list", campaign.pk), data, headers={**TYPING, "X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert stored(campaign)["rules"][0]["value"] == "SE"


# --- Every change is saved at once ------------------------------------------------------


def test_a_typed_value_is_saved_at_once_and_nothing_typed_is_redrawn(staff_client):
    LeadFactory.create_batch(2, country="SE")
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        rules_post({"field": "country", "op": "is", "value": "SE"}),
        headers=TYPING,
    )
    html = response.content.decode()
    assert stored(campaign) == {"logic": "all", "rules": [{"field": "country", "op": "is", "value": "SE"}]}
    assert html.lstrip().startswith('<p id="save-status"')
    assert "All changes saved" in html
    assert 'name="rule-0-value"' not in html  # the input being typed in is left alone
    assert "2 people qualify" in part(html, "audience")  # the count stays live
    assert 'hx-swap-oob="true"' in part(html, "audience")


def test_choosing_a_field_saves_it_and_offers_its_operators(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "lead_score", "op": "contains", "value": "5"}, action="field-0")
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert html.lstrip().startswith('<div id="smart-list-rules"')
    ops = part(html, "rule-0-op")
    assert "greater than" in ops and "contains" not in ops
    assert stored(campaign)["rules"] == [{"field": "lead_score", "op": "is", "value": "5"}]


def test_choosing_another_field_keeps_an_operator_that_still_applies(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "city", "op": "contains", "value": "Stock"}, action="field-0")
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW)
    assert stored(campaign)["rules"] == [{"field": "city", "op": "contains", "value": "Stock"}]


def test_choosing_an_operator_saves_it_and_the_value_follows(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "city", "op": "is empty", "value": "ignored"})
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert stored(campaign)["rules"] == [{"field": "city", "op": "is empty"}]
    assert 'name="rule-0-value"' not in html


def test_adding_a_rule_saves_it_as_a_draft_that_says_what_it_lacks(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "city", "op": "contains", "value": "Stock"}, action="add")
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert stored(campaign)["rules"] == [
        {"field": "city", "op": "contains", "value": "Stock"},
        {"field": "first_name", "op": "is", "value": ""},
    ]
    assert "Rule 2: enter a value." in part(html, "rule-1-problem")
    assert "autofocus" in part(html, "rule-1-field").split(">")[0]
    assert "Saved with problems" in part(html, "save-status")


def test_removing_a_rule_saves_at_once(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "city", "op": "is", "value": "Keep"},
        {"field": "city", "op": "is", "value": "Drop"},
        action="remove-1",
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert 'value="Keep"' in html and 'value="Drop"' not in html
    assert stored(campaign)["rules"] == [{"field": "city", "op": "is", "value": "Keep"}]


def test_a_vibes_list_and_its_status_are_saved_as_chosen(staff_client):
    news = VibesListFactory(name="Newsletter")
    SubscriptionFactory(vibes_list=news, status="pending")
    SubscriptionFactory(vibes_list=news, status="subscribed")
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "vibes_list", "op": "is", "value": str(news.pk), "status": "pending"})
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING)
    assert stored(campaign)["rules"] == [
        {"field": "vibes_list", "op": "is", "value": news.pk, "status": "pending"}
    ]
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "1 person qualifies" in html
    assert '<option value="pending" selected>' in html
    assert f'<option value="{news.pk}" selected>Newsletter</option>' in html


class LeadScoreBand(SmartListField):
    """A field type the editor has never heard of, with a part of its own."""

    ops = (IS,)
    parts = (
        RulePart(
            key="band",
            label="Rule %(number)s: band",
            choices=(("low", "Low"), ("high", "High")),
            default="low",
        ),
    )

    def value_choices(self):
        return [("10", "ten"), ("20", "twenty")]

    def stored_value(self, text):
        return int(text)

    def to_q(self, rule):
        return Q(lead_score__gte=rule.value)


def test_a_field_type_registered_elsewhere_brings_its_own_widgets_and_stored_value(staff_client, monkeypatch):
    monkeypatch.setitem(FIELDS, "score_band", LeadScoreBand("score_band", "Score band"))
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "score_band", "op": "is", "value": "20", "band": "high"})
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING)
    assert stored(campaign)["rules"] == [{"field": "score_band", "op": "is", "value": 20, "band": "high"}]
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert '<option value="20" selected>twenty</option>' in part(html, "rule-0-value")
    assert '<option value="high" selected>High</option>' in part(html, "rule-0-band")


def test_choosing_the_logic_saves_it(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "SE"},
        {"field": "lead_score", "op": "greater", "value": "50"},
        logic_mode="any",
    )
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING)
    assert stored(campaign) == {
        "logic": "any",
        "rules": [
            {"field": "country", "op": "is", "value": "SE"},
            {"field": "lead_score", "op": "greater", "value": "50"},
        ],
    }


def test_without_javascript_a_post_saves_and_shows_the_tab_again(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "country", "op": "is", "value": "SE"}, action="save")
    response = staff_client.post(url("campaign_smart_list", campaign.pk), data)
    assert response.status_code == 302
    assert stored(campaign)["rules"] == [{"field": "country", "op": "is", "value": "SE"}]


# --- Problems: shown where they are, stored as typed ------------------------------------


def test_a_rule_with_a_problem_is_stored_as_typed_and_the_campaign_cannot_run(staff_client):
    campaign = SmartCampaignFactory()
    FlowStepFactory(campaign=campaign)
    data = rules_post(
        {"field": "country", "op": "is", "value": "Typed country"},
        {"field": "lead_score", "op": "greater", "value": "lots"},
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING).content.decode()
    assert stored(campaign)["rules"][1] == {"field": "lead_score", "op": "greater", "value": "lots"}
    problem = part(html, "rule-1-problem")
    assert "Rule 2: “lots” is not a number." in problem and 'hx-swap-oob="true"' in problem
    assert part(html, "rule-0-problem").endswith(">")  # rule 1 has none
    assert "Saved with problems" in html and "The campaign cannot run until they are fixed." in html
    assert "Fix the rules to see who qualifies." in part(html, "audience")
    assert campaign.problems() == ["Smart list: Rule 2: “lots” is not a number."]


def test_the_problems_of_stored_rules_show_when_the_tab_opens(staff_client):
    campaign = SmartCampaignFactory()
    set_definition(campaign, {"logic": "all", "rules": [{"field": "city", "op": "is", "value": ""}]})
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "Rule 1: enter a value." in part(html, "rule-0-problem")
    assert "Saved with problems" in html


def test_logic_problems_show_while_typing(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "US"}, logic_mode="expression", logic="1 and ("
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING).content.decode()
    problem = part(html, "logic-problem")
    assert "Logic: the expression ends too early." in problem and 'hx-swap-oob="true"' in problem
    assert stored(campaign)["logic"] == "1 and ("
    data["logic"] = "1 and 3"
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING).content.decode()
    assert "Logic: there is no rule 3 (the rules are numbered 1 to 1)." in part(html, "logic-problem")
    data["logic"] = "not 1"
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING).content.decode()
    assert part(html, "logic-problem").endswith(">")  # fixed: the problem is gone
    assert stored(campaign)["logic"] == "not 1"


def test_removing_a_rule_the_logic_uses_shows_the_logic_problem(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "city", "op": "is", "value": "A"},
        {"field": "city", "op": "is", "value": "B"},
        logic_mode="expression",
        logic="1 or 2",
        action="remove-1",
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert "Logic: there is no rule 2 (the rules are numbered 1 to 1)." in part(html, "logic-problem")


def test_an_expression_typed_as_valid_is_saved(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "US"},
        {"field": "blocklisted", "op": "is", "value": "true"},
        logic_mode="expression",
        logic="1 and not 2",
    )
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING)
    assert stored(campaign)["logic"] == "1 and not 2"


# --- What the editor does not know stays as it is --------------------------------------


def test_a_stored_rule_with_an_unknown_field_stays_as_it_is(staff_client):
    campaign = SmartCampaignFactory()
    set_definition(campaign, {"logic": "all", "rules": [{"field": "shoe_size", "op": "is", "value": "42"}]})
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert '<option value="shoe_size" selected>“shoe_size” (unknown field)</option>' in part(
        html, "rule-0-field"
    )
    assert '<option value="is" selected>' in part(html, "rule-0-op")
    assert "Rule 1: unknown field “shoe_size”." in part(html, "rule-0-problem")
    # The page posts it back as shown, with a change to another rule: it is kept.
    data = rules_post(
        {"field": "shoe_size", "op": "is", "value": "42"}, {"field": "city", "op": "is", "value": "Oslo"}
    )
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=TYPING)
    assert stored(campaign)["rules"][0] == {"field": "shoe_size", "op": "is", "value": "42"}


def test_a_stored_rule_with_an_operator_of_another_field_stays_as_it_is(staff_client):
    campaign = SmartCampaignFactory()
    set_definition(
        campaign, {"logic": "all", "rules": [{"field": "country", "op": "greater", "value": "US"}]}
    )
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert '<option value="greater" selected>“greater than” (does not apply)</option>' in part(
        html, "rule-0-op"
    )
    assert "Rule 1: “greater” does not apply to Country" in part(html, "rule-0-problem")
    data = rules_post({"field": "country", "op": "greater", "value": "US"}, action="add")
    staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW)
    assert stored(campaign)["rules"][0] == {"field": "country", "op": "greater", "value": "US"}


def test_an_unknown_field_posted_is_kept_not_swapped_for_the_first(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "shoe", "op": "fits", "value": "9"})
    response = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW)
    assert response.status_code == 200
    assert stored(campaign)["rules"] == [{"field": "shoe", "op": "fits", "value": "9"}]
    assert "Rule 1: unknown field “shoe”." in response.content.decode()


def test_a_stored_yes_no_value_stays_chosen(staff_client):
    campaign = SmartCampaignFactory()
    set_definition(campaign, {"logic": "all", "rules": [{"field": "blocklisted", "op": "is", "value": True}]})
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert '<option value="true" selected>yes</option>' in part(html, "rule-0-value")


def test_a_vibes_list_gone_from_vibes_stays_chosen(staff_client):
    gone = VibesListFactory(name="Old list", gone_at="2026-01-01T00:00:00Z")
    campaign = SmartCampaignFactory()
    set_definition(
        campaign,
        {"logic": "all", "rules": [{"field": "vibes_list", "op": "is", "value": gone.pk, "status": "any"}]},
    )
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert f'<option value="{gone.pk}" selected>Old list (gone from Vibes)</option>' in part(
        html, "rule-0-value"
    )
    assert '<option value="any" selected>' in part(html, "rule-0-status")


# --- Input the editor cannot store -------------------------------------------------------


def test_a_post_without_its_rules_saves_nothing(staff_client):
    campaign = SmartCampaignFactory()
    before = stored(campaign)
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        {"rule_count": "lots", "rule-0-field": "shoe", "action": "remove-x"},
    )
    assert response.status_code == 302
    assert stored(campaign) == before
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "Nothing was saved: the form came without its rules. Reload the page." in html


def test_beyond_the_rule_limit_nothing_is_saved_until_a_rule_is_removed(staff_client):
    campaign = SmartCampaignFactory()
    before = stored(campaign)
    rules = [{"field": "city", "op": "is", "value": str(n)} for n in range(101)]
    html = staff_client.post(
        url("campaign_smart_list", campaign.pk), rules_post(*rules), headers=REDRAW
    ).content.decode()
    assert stored(campaign) == before
    assert "Nothing is saved while the smart list is beyond the limit." in part(html, "smart-list-errors")
    assert 'value="100"' in html  # every rule stays on the page
    html = staff_client.post(
        url("campaign_smart_list", campaign.pk), rules_post(*rules, action="remove-0"), headers=REDRAW
    ).content.decode()
    assert [rule["value"] for rule in stored(campaign)["rules"]] == [str(n) for n in range(1, 101)]
    assert "beyond the limit" not in html


def test_adding_a_rule_beyond_the_limit_is_refused(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(*[{"field": "city", "op": "is", "value": str(n)} for n in range(100)], action="add")
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=REDRAW).content.decode()
    assert len(stored(campaign)["rules"]) == 100
    assert "A smart list has at most 100 rules." in part(html, "smart-list-errors")
    assert "disabled" in html[html.index('value="add"') :].split(">")[0]


def test_the_live_count_stops_at_its_limit_and_the_exact_count_follows(staff_client, monkeypatch):
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_UP_TO", 3)
    # Counted at once, as on SQLite (PostgreSQL counts in the background: the tests below).
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_IN_BACKGROUND_ON", ())
    LeadFactory.create_batch(5, country="SE")
    campaign = SmartCampaignFactory(
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "SE"}]}
    )
    tab = part(staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode(), "audience")
    assert "More than 3 people qualify" in tab
    assert f'hx-get="{url("campaign_smart_list", campaign.pk)}?count=exact"' in tab
    exact = staff_client.get(url("campaign_smart_list", campaign.pk) + "?count=exact", headers=HTMX)
    html = exact.content.decode()
    assert html.lstrip().startswith('<section id="audience"')
    assert "5 people qualify" in html and "More than" not in html
    # Without htmx, the whole tab with the exact count.
    page = staff_client.get(url("campaign_smart_list", campaign.pk) + "?count=exact").content.decode()
    assert "<html" in page and "5 people qualify" in part(page, "audience")


def test_past_its_limit_the_live_count_is_the_planners_estimate_and_the_exact_count_is_asked_for(
    staff_client, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_BACKGROUND = "inline"
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL estimates a query's rows (SQLite counts, as the test above)")
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_UP_TO", 3)
    LeadFactory.create_batch(5, country="SE")
    LeadFactory.create_batch(3, country="US")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE smscampaigns_lead")
    campaign = SmartCampaignFactory(
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "se"}]}
    )
    tab = part(staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode(), "audience")
    assert "About 5 people qualify" in tab
    # Asked for, never at once: a link, with htmx and without.
    assert 'hx-trigger="load"' not in tab
    assert f'hx-get="{url("campaign_smart_list", campaign.pk)}?count=exact"' in tab
    # Counted in the background: the click answers with the progress, the poll with the number.
    with django_capture_on_commit_callbacks(execute=True):
        started = staff_client.get(url("campaign_smart_list", campaign.pk) + "?count=exact", headers=HTMX)
    count = AudienceCount.objects.get(campaign=campaign)
    assert "<progress" in started.content.decode() and "qualify" not in started.content.decode()
    polled = staff_client.get(url("campaign_smart_list", campaign.pk), {"counting": count.pk}, headers=HTMX)
    assert "5 people qualify" in polled.content.decode() and "About" not in polled.content.decode()


def test_under_its_limit_the_live_count_is_exact_whatever_the_estimate(staff_client):
    LeadFactory.create_batch(5, country="SE")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE smscampaigns_lead")
    campaign = SmartCampaignFactory(
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "SE"}]}
    )
    tab = part(staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode(), "audience")
    assert "5 people qualify" in tab and "About" not in tab


def test_the_smart_list_tab_takes_the_same_queries_whatever_the_audience(staff_client, monkeypatch):
    # Past the limit: the estimate on PostgreSQL, the count that stops on SQLite.
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_UP_TO", 10)
    campaign = SmartCampaignFactory()  # country is US
    staff_client.get(url("campaign_smart_list", campaign.pk))  # the session and permissions, once
    queries = []
    for people in (11, 40):
        LeadFactory.create_batch(people, country="US")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE smscampaigns_lead")
        with CaptureQueriesContext(connection) as captured:
            tab = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
        assert "qualify" in part(tab, "audience")
        queries.append(len(captured))
    assert queries[0] == queries[1]


# --- "Count them exactly" in the background, with its progress ------------------------------

SE = {"logic": "all", "rules": [{"field": "country", "op": "is", "value": "SE"}]}


@pytest.fixture
def counted_in_background(monkeypatch):
    """Past 3 people, "Count them exactly" counts in the background on this database too
    (PostgreSQL's default; SQLite counts at once otherwise)."""
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_UP_TO", 3)
    monkeypatch.setattr(
        "marketing_activities.views.smart_list.COUNTED_IN_BACKGROUND_ON", (connection.vendor,)
    )


def _swedes(people=5):
    LeadFactory.create_batch(people, country="SE")
    LeadFactory(country="US")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE smscampaigns_lead")
    return SmartCampaignFactory(smart_list__definition=SE)


def _count_them_exactly(client, campaign, headers=HTMX):
    return client.get(url("campaign_smart_list", campaign.pk), {"count": "exact"}, headers=headers)


def _poll(client, campaign, count, headers=HTMX):
    return client.get(url("campaign_smart_list", campaign.pk), {"counting": count.pk}, headers=headers)


def test_count_them_exactly_starts_a_count_in_the_background_and_answers_with_its_progress(
    staff_client, counted_in_background
):
    campaign = _swedes()
    html = _count_them_exactly(staff_client, campaign).content.decode()
    count = AudienceCount.objects.get(campaign=campaign)
    assert count.definition == SE and count.result is None  # counted after this request
    assert html.lstrip().startswith('<section id="audience"')
    poll = f"{url('campaign_smart_list', campaign.pk)}?counting={count.pk}"
    assert '<progress max="100" value="0">0%</progress>' in html
    assert f'hx-get="{poll}" hx-trigger="load delay:1s" hx-target="#audience"' in html
    assert f'<a href="{poll}">Counting them all… 0%</a>' in html
    assert "qualify" not in html


def test_the_card_polls_the_count_to_its_exact_number(
    staff_client, counted_in_background, settings, django_capture_on_commit_callbacks
):
    campaign = _swedes()
    _count_them_exactly(staff_client, campaign)
    count = AudienceCount.objects.get(campaign=campaign)
    AudienceCount.objects.filter(pk=count.pk).update(done=1, total=4)
    halfway = _poll(staff_client, campaign, count).content.decode()
    assert "Counting them all… 25%" in halfway and "qualify" not in halfway

    settings.RUNNER_BACKGROUND = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        started = _count_them_exactly(staff_client, campaign)
    assert "<progress" in started.content.decode()
    count = AudienceCount.objects.latest("pk")
    assert count.result == {"people": 5}
    html = _poll(staff_client, campaign, count).content.decode()
    assert "5 people qualify" in html and "More than" not in html
    assert "<progress" not in html and "hx-trigger" not in html  # the polling stops


def test_the_count_in_slices_of_lead_ids_records_its_progress_and_finds_everyone(monkeypatch):
    monkeypatch.setattr("marketing_activities.runner.count_jobs.CHUNK_PEOPLE", 2)
    campaign = _swedes(people=5)  # six people: three slices of two lead ids
    count = AudienceCount.objects.create(campaign=campaign, definition=SE)
    audience_count_run(count_id=count.pk)
    count.refresh_from_db()
    assert count.result == {"people": 5}
    assert count.done == count.total == 3 and count.finished_at is not None


def test_the_poll_of_a_count_for_rules_changed_since_shows_nothing_stale(
    staff_client, counted_in_background, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_BACKGROUND = "inline"
    campaign = _swedes(people=5)
    LeadFactory.create_batch(2, country="NO")
    with django_capture_on_commit_callbacks(execute=True):
        _count_them_exactly(staff_client, campaign)
    count = AudienceCount.objects.get(campaign=campaign)
    assert count.result == {"people": 5}
    staff_client.post(
        url("campaign_smart_list", campaign.pk),
        rules_post({"field": "country", "op": "is", "value": "NO"}),
        headers=TYPING,
    )
    html = _poll(staff_client, campaign, count).content.decode()
    # The rules as they are now, not the old count's number (nor its progress).
    assert "2 people qualify" in html
    assert "5 people" not in html and "<progress" not in html and "hx-trigger" not in html


def test_without_javascript_the_count_and_its_progress_are_pages_of_their_own(
    staff_client, counted_in_background
):
    campaign = _swedes()
    page = _count_them_exactly(staff_client, campaign, headers={}).content.decode()
    count = AudienceCount.objects.get(campaign=campaign)
    poll = f"{url('campaign_smart_list', campaign.pk)}?counting={count.pk}"
    assert "<html" in page and f'<a href="{poll}">Counting them all… 0%</a>' in part(page, "audience")
    audience_count_run(count_id=count.pk)
    page = _poll(staff_client, campaign, count, headers={}).content.decode()
    assert "<html" in page and "5 people qualify" in part(page, "audience")


def test_a_count_that_failed_says_so_and_offers_to_count_again(staff_client, counted_in_background):
    campaign = _swedes()
    count = AudienceCount.objects.create(campaign=campaign, definition=SE, failed=True)
    html = _poll(staff_client, campaign, count).content.decode()
    assert "The people could not be counted." in html
    assert f'hx-get="{url("campaign_smart_list", campaign.pk)}?count=exact"' in html
    assert "hx-trigger" not in html


@pytest.mark.parametrize("counting", ["abc", "run-now", "other-campaign"])
def test_the_poll_of_no_count_of_this_smart_list_is_not_found(staff_client, counting):
    campaign = _swedes()
    if counting == "run-now":
        counting = AudienceCount.objects.create(campaign=campaign).pk  # Run now's counts
    elif counting == "other-campaign":
        counting = AudienceCount.objects.create(campaign=SmartCampaignFactory(), definition=SE).pk
    response = staff_client.get(url("campaign_smart_list", campaign.pk), {"counting": counting}, headers=HTMX)
    assert response.status_code == 404


def test_the_count_started_and_its_poll_take_the_same_queries_whatever_the_audience(
    staff_client, counted_in_background
):
    campaign = SmartCampaignFactory(smart_list__definition=SE)
    staff_client.get(url("campaign_smart_list", campaign.pk))  # the session and permissions, once
    queries = []
    for people in (4, 40):
        LeadFactory.create_batch(people, country="SE")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE smscampaigns_lead")
        with CaptureQueriesContext(connection) as started:
            assert "<progress" in _count_them_exactly(staff_client, campaign).content.decode()
        count = AudienceCount.objects.latest("pk")
        with CaptureQueriesContext(connection) as polled:
            assert "<progress" in _poll(staff_client, campaign, count).content.decode()
        audience_count_run(count_id=count.pk)
        with CaptureQueriesContext(connection) as counted:
            assert "people qualify" in _poll(staff_client, campaign, count).content.decode()
        queries.append((len(started), len(polled), len(counted)))
    assert queries[0] == queries[1]
