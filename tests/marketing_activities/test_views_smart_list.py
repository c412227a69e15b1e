"""The Smart List tab: rules, logic, errors at the rule, the live audience."""

import pytest

from tests.marketing_activities import ui_helpers
from tests.marketing_activities.factories import SmartCampaignFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db

# Fixtures shared by the interface tests (ui_helpers.py).
fast_password_hashing = ui_helpers.fast_password_hashing
clerk_client = ui_helpers.clerk_client


def rules_post(*rules, logic_mode="all", logic="", action="save"):
    data = {"rule_count": len(rules), "logic_mode": logic_mode, "logic": logic, "action": action}
    for index, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rule-{index}-{key}"] = value
    return data


def test_the_smart_list_tab_renders_the_full_page_with_the_count(staff_client):
    LeadFactory.create_batch(3, country="US")
    LeadFactory(country="SE")
    campaign = SmartCampaignFactory()  # country is US
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "<html" in html
    assert "3 people qualify" in html
    assert 'aria-selected="true"' in html.split('id="tab-smart-list"')[1].split(">")[0]


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


def test_saving_rules_stores_the_definition(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "SE"},
        {"field": "lead_score", "op": "greater", "value": "50"},
        logic_mode="any",
    )
    response = staff_client.post(url("campaign_smart_list", campaign.pk), data)
    assert response.status_code == 302
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.definition == {
        "logic": "any",
        "rules": [
            {"field": "country", "op": "is", "value": "SE"},
            {"field": "lead_score", "op": "greater", "value": "50"},
        ],
    }


def test_saving_with_htmx_shows_the_tab_again_with_a_message(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        rules_post({"field": "country", "op": "is", "value": "SE"}),
        headers=HTMX,
    )
    assert b"Smart list saved." in response.content
    assert b"<html" not in response.content


def test_a_vibes_list_rule_has_the_list_and_the_status(staff_client):
    news = VibesListFactory(name="Newsletter")
    SubscriptionFactory(vibes_list=news, status="pending")
    SubscriptionFactory(vibes_list=news, status="subscribed")
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "vibes_list", "op": "is", "value": str(news.pk), "status": "pending"})
    staff_client.post(url("campaign_smart_list", campaign.pk), data)
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules == [
        {"field": "vibes_list", "op": "is", "value": news.pk, "status": "pending"}
    ]
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    assert "1 person qualifies" in html
    assert '<option value="pending" selected>' in html
    assert f'<option value="{news.pk}" selected>Newsletter</option>' in html


def test_errors_are_shown_at_the_rule_and_nothing_typed_is_lost(staff_client):
    campaign = SmartCampaignFactory()
    before = dict(campaign.smart_list.definition)
    data = rules_post(
        {"field": "country", "op": "is", "value": "Typed country"},
        {"field": "lead_score", "op": "greater", "value": "lots"},
    )
    response = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    rule_2 = html[html.index('id="rule-1"') :].split("</li>")[0]
    assert "Rule 2: “lots” is not a number." in rule_2
    assert 'value="Typed country"' in html and 'value="lots"' in html
    assert "Unsaved changes" in html
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.definition == before


def test_bad_logic_is_shown_at_the_logic(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "US"}, logic_mode="expression", logic="1 and 3"
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=HTMX).content.decode()
    logic = html[html.index('class="logic') :].split("</fieldset>")[0]
    assert "Logic: there is no rule 3" in logic
    assert 'value="1 and 3"' in logic


def test_an_expression_is_saved_as_typed(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "country", "op": "is", "value": "US"},
        {"field": "blocklisted", "op": "is", "value": "true"},
        logic_mode="expression",
        logic="1 and not 2",
    )
    staff_client.post(url("campaign_smart_list", campaign.pk), data)
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.logic == "1 and not 2"


def test_add_rule_keeps_what_was_typed_and_saves_nothing(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "city", "op": "contains", "value": "Stock"}, action="add")
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=HTMX).content.decode()
    assert 'name="rule-1-field"' in html
    assert 'value="Stock"' in html
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules == [{"field": "country", "op": "is", "value": "US"}]


def test_remove_rule_drops_that_row(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post(
        {"field": "city", "op": "is", "value": "Keep"},
        {"field": "city", "op": "is", "value": "Drop"},
        action="remove-1",
    )
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=HTMX).content.decode()
    assert 'value="Keep"' in html and 'value="Drop"' not in html


def test_changing_the_field_offers_that_fields_operators(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "lead_score", "op": "contains", "value": "5"}, action="refresh")
    html = staff_client.post(url("campaign_smart_list", campaign.pk), data, headers=HTMX).content.decode()
    ops = html[html.index('name="rule-0-op"') :].split("</select>")[0]
    assert "greater than" in ops and "contains" not in ops


def test_the_live_preview_recounts_without_saving(staff_client):
    LeadFactory.create_batch(2, country="SE")
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "country", "op": "is", "value": "SE"}, action="preview")
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk), data, headers={**HTMX, "HX-Target": "audience"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="audience"')
    assert "2 people qualify" in html
    campaign.smart_list.refresh_from_db()
    assert campaign.smart_list.rules[0]["value"] == "US"


def test_the_preview_of_invalid_rules_asks_to_fix_them(staff_client):
    campaign = SmartCampaignFactory()
    data = rules_post({"field": "lead_score", "op": "greater", "value": "many"}, action="preview")
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk), data, headers={**HTMX, "HX-Target": "audience"}
    )
    assert b"Fix the rules to see who qualifies." in response.content


def test_garbage_posts_never_fail(staff_client):
    campaign = SmartCampaignFactory()
    response = staff_client.post(
        url("campaign_smart_list", campaign.pk),
        {"rule_count": "lots", "rule-0-field": "shoe", "action": "remove-x"},
    )
    assert response.status_code == 200


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
