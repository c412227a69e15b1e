"""The interface in the languages of the source documents: pages, errors, dates and numbers."""

import datetime

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from marketing_activities.models import FlowStep, SmartCampaign
from smscampaigns.smartlists import parse_definition
from tests.catalogues import FLOW_STEP_NAMES, translated
from tests.catalogues import LANGUAGES as TRANSLATED_LANGUAGES
from tests.marketing_activities.factories import CampaignRunFactory, FlowStepFactory, SmartCampaignFactory
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db

LANGUAGES = [code for code, _name in settings.LANGUAGES]


def in_language(client, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_flow_tab_names_the_three_flow_steps_in_each_language(staff_client, language):
    campaign = SmartCampaignFactory()
    html = in_language(staff_client, language).get(url("campaign_flow", campaign.pk)).content.decode()
    assert f'<html lang="{language}"' in html
    for name in FLOW_STEP_NAMES[language]:
        assert name in html, f"{language}: {name!r} is not on the Flow tab"
    for tab in ["Smart List", "Flow", "Schedule", "Results"]:
        assert translated(language, tab) in html


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_the_flow_tab_says_nothing_in_english_when_another_language_is_chosen(staff_client, language):
    campaign = SmartCampaignFactory()
    html = in_language(staff_client, language).get(url("campaign_flow", campaign.pk)).content.decode()
    for english in [
        "Drag a step",
        "Send SMS Message",
        "Subscribe to Vibes List",
        "Marketing Activities",
        "Log out",
    ]:
        assert english not in html, f"{language}: {english!r} is still in English"


def test_the_browser_language_is_honoured_on_the_first_visit(client):
    html = client.get("/accounts/login/", headers={"accept-language": "sv,en;q=0.5"}).content
    assert b'<html lang="sv"' in html
    assert translated("sv", "Log in").encode() in html


def test_the_language_switcher_works_before_logging_in(client):
    response = client.post("/i18n/setlang/", {"language": "nl", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "nl"
    assert b'<html lang="nl"' in client.get("/accounts/login/").content


def test_the_chosen_language_outlasts_the_browser_language(staff_client):
    staff_client.post("/i18n/setlang/", {"language": "it", "next": "/"})
    html = staff_client.get(url("index"), headers={"accept-language": "de"}).content.decode()
    assert '<html lang="it"' in html
    assert translated("it", "Marketing Activities") in html


@pytest.mark.parametrize(
    ("language", "audience", "month"),
    [
        ("en", "1,234,567", "March"),
        ("de", "1.234.567", "März"),
        ("fr", "1\xa0234\xa0567", "mars"),
        ("sv", "1\xa0234\xa0567", "mars"),
        ("nl", "1.234.567", "maart"),
        ("it", "1.234.567", "Marzo"),
    ],
)
def test_results_show_dates_and_numbers_the_way_the_language_writes_them(
    staff_client, language, audience, month
):
    run = CampaignRunFactory(audience=1234567)
    run.created_at = datetime.datetime(2026, 3, 5, 14, 30, tzinfo=datetime.UTC)
    run.save(update_fields=["created_at"])
    html = in_language(staff_client, language).get(url("campaign_results", run.campaign.pk)).content.decode()
    assert audience in html
    assert month in html


@pytest.mark.parametrize("language", ["de", "fr"])
def test_a_flow_step_error_is_shown_in_the_chosen_language(staff_client, language):
    step = FlowStepFactory(action=FlowStep.Action.SUBSCRIBE, sms_message=None, acquisition_campaign=None)
    html = in_language(staff_client, language).get(url("campaign_flow", step.campaign.pk)).content.decode()
    message = translated(language, "Choose an acquisition campaign of the Vibes list.")
    assert message != "Choose an acquisition campaign of the Vibes list."
    assert message in html


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_smart_list_errors_are_in_the_chosen_language(language):
    definition = {"logic": "1 and (2", "rules": [{"field": "country", "op": "is", "value": "US"}] * 2}
    with translation.override("en"), pytest.raises(ValidationError) as english:
        parse_definition(definition)
    with translation.override(language), pytest.raises(ValidationError) as local:
        parse_definition(definition)
    assert local.value.messages != english.value.messages
    assert "(" in local.value.messages[0]


@pytest.mark.parametrize("language", ["de", "it"])
def test_the_admin_names_the_models_in_the_chosen_language(staff_client, language):
    html = in_language(staff_client, language).get("/admin/").content.decode()
    with translation.override(language):
        name = str(SmartCampaign._meta.verbose_name_plural)
    assert name != "smart campaigns"
    assert name.capitalize() in html or name in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_schedule_can_be_saved_in_every_language(staff_client, language):
    campaign = SmartCampaignFactory()
    later = (datetime.datetime.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = in_language(staff_client, language).post(
        url("campaign_schedule", campaign.pk),
        {
            "action": "save",
            "qualification_rule": "once",
            "schedule": "once",
            "run_at": later,
            "run_time": "",
            "run_weekday": "",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.schedule == "once"
    assert campaign.run_at is not None
