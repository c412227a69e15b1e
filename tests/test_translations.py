"""The five catalogues: complete, never fuzzy, true to their placeholders, "Vibes" kept, up to date."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from marketing_activities.models import FlowStep
from tests.catalogues import FLOW_STEP_NAMES, LANGUAGES, catalogue_path, placeholders, read_catalogue

ROOT = Path(__file__).resolve().parents[1]

# What machine translations made of "Vibes" in the source documents.
VIBES_MISTRANSLATIONS = ["vibrazion", "beeldscherm", "vidéo", "video"]


@pytest.fixture(scope="module", params=LANGUAGES)
def catalogue(request):
    return request.param, read_catalogue(catalogue_path(request.param))


def messages_of(entries):
    return [entry for entry in entries if not entry.is_header]


def test_every_message_is_translated(catalogue):
    language, entries = catalogue
    untranslated = [
        entry.where for entry in messages_of(entries) if not all(text.strip() for text in entry.msgstrs)
    ]
    assert not untranslated, f"{language}: {len(untranslated)} untranslated messages:\n" + "\n".join(
        untranslated
    )


def test_no_message_is_fuzzy(catalogue):
    language, entries = catalogue
    fuzzy = [entry.where for entry in entries if "fuzzy" in entry.flags]
    assert not fuzzy, f"{language}: fuzzy messages (gettext ignores them):\n" + "\n".join(fuzzy)


def test_the_catalogue_header_names_its_language(catalogue):
    language, entries = catalogue
    (header,) = [entry for entry in entries if entry.is_header]
    assert f"Language: {language}\n" in header.msgstrs[0]
    assert "charset=UTF-8" in header.msgstrs[0]


def test_translations_keep_every_placeholder(catalogue):
    language, entries = catalogue
    wrong = []
    for entry in messages_of(entries):
        if entry.msgid_plural is None:
            if placeholders(entry.msgstrs[0]) != placeholders(entry.msgid):
                wrong.append(f"{entry.where} → {entry.msgstrs[0]!r}")
            continue
        # A singular form may spell its number out ("one person"); the last form never does.
        allowed = placeholders(entry.msgid) | placeholders(entry.msgid_plural)
        if any(not placeholders(text) <= allowed for text in entry.msgstrs) or placeholders(
            entry.msgstrs[-1]
        ) != placeholders(entry.msgid_plural):
            wrong.append(f"{entry.where} → {entry.msgstrs!r}")
    assert not wrong, f"{language}: placeholders differ from the English message:\n" + "\n".join(wrong)


def test_vibes_is_a_product_name_and_never_translated(catalogue):
    language, entries = catalogue
    lost = [
        f"{entry.where} → {text!r}"
        for entry in messages_of(entries)
        for text in entry.msgstrs
        if "Vibes" in entry.msgid and "Vibes" not in text
    ]
    mistranslated = [
        f"{entry.where} → {text!r}"
        for entry in messages_of(entries)
        for text in entry.msgstrs
        if "Vibes" in entry.msgid and any(word in text.lower() for word in VIBES_MISTRANSLATIONS)
    ]
    assert not lost, f"{language}: “Vibes” is missing from:\n" + "\n".join(lost)
    assert not mistranslated, f"{language}: “Vibes” was translated in:\n" + "\n".join(mistranslated)


@pytest.mark.parametrize("language", FLOW_STEP_NAMES)
def test_flow_steps_are_named_as_the_source_documents_name_them(language):
    with translation.override(language):
        # The three SMS steps; Request Campaign, Wait and Remove from Flow are not of the source documents.
        names = [
            str(FlowStep.Action(action).label)
            for action in FlowStep.Action
            if action not in ("request_campaign", "wait", "remove_from_flow")
        ]
    assert names == FLOW_STEP_NAMES[language], "are the catalogues compiled (make messages)?"


def test_the_catalogues_hold_every_message_of_the_code(tmp_path):
    """makemessages on a copy of the code finds exactly the messages of the catalogues."""
    assert shutil.which("xgettext"), "gettext is not installed (make test installs it)"
    for name in ["manage.py", "smscampaigns", "marketing_activities", "vibes", "templates"]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "locale").mkdir()
    environment = {**os.environ, "ENV_FILE": str(tmp_path / "no.env"), "DEBUG": "true", "SECRET_KEY": "x"}
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--locale=de", "--no-obsolete", "-v0"],
        cwd=tmp_path,
        env=environment,
        check=True,
    )
    in_code = {
        entry.key for entry in messages_of(read_catalogue(tmp_path / "locale/de/LC_MESSAGES/django.po"))
    }
    for language in LANGUAGES:
        in_catalogue = {entry.key for entry in messages_of(read_catalogue(catalogue_path(language)))}
        assert not in_code - in_catalogue, (
            f"{language}: messages missing from the catalogue (run makemessages): "
            f"{sorted(in_code - in_catalogue, key=str)}"
        )
        assert not in_catalogue - in_code, (
            f"{language}: messages no longer in the code (run makemessages --no-obsolete): "
            f"{sorted(in_catalogue - in_code, key=str)}"
        )


# --- What people read in their language: result details, admin actions ---------------------------

# The admin's action button runs the chosen action: a verb in every language.
ACTION_BUTTON = {"de": "Ausführen", "sv": "Kör", "nl": "Uitvoeren", "it": "Esegui", "fr": "Exécuter"}


def stored_details():
    """Every detail the runner writes, as it stores it (in English, with values filled in)."""
    from marketing_activities import result_details as details

    fixed = [
        details.ALREADY_SUBSCRIBED,
        details.WAITING_FOR_REPLY,
        details.STOPPED_WHILE_SENDING,
        details.STOPPED_WHILE_SUBSCRIBING,
        details.RETRIED_BY_OPERATOR,
    ]
    with_values = [
        (details.result_detail(details.TOO_LONG, length=1650, max=1600), details.TOO_LONG, ("1650", "1600")),
        (details.result_detail(details.VIBES_SAYS, status="declined"), details.VIBES_SAYS, ("declined",)),
    ]
    return fixed, with_values


@pytest.mark.parametrize("language", LANGUAGES)
def test_result_details_are_shown_in_the_readers_language(language):
    from marketing_activities.result_details import detail_display

    fixed, with_values = stored_details()
    with translation.override(language):
        for stored in fixed:
            shown = detail_display(stored)
            assert shown == translation.gettext(stored) and shown != stored, f"{language}: {stored!r}"
        for stored, template, values in with_values:
            shown = detail_display(stored)
            assert shown != stored, f"{language}: {stored!r} is shown in English"
            assert translation.gettext(template) != template
            assert all(value in shown for value in values), shown
    # A detail from elsewhere (Vibes' own words) is shown as it came.
    with translation.override(language):
        assert detail_display("Invalid mdn") == "Invalid mdn"


def admin_actions():
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        for action in model_admin._get_base_actions():
            yield model, action


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_admin_action_is_named_in_the_language(language):
    from django.contrib.admin.utils import model_format_dict

    untranslated = []
    for model, action in admin_actions():
        # In English whatever language an earlier test left active in this thread.
        with translation.override("en"):
            english = str(action.description) % model_format_dict(model._meta)
        with translation.override(language):
            shown = str(action.description) % model_format_dict(model._meta)
        if shown == english:
            untranslated.append(f"{model._meta.label}: {english}")
    assert not untranslated, f"{language}: admin actions in English:\n" + "\n".join(untranslated)


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_admin_action_button_is_a_verb_and_the_empty_choice_is_translated(admin_client, language):
    from django.urls import reverse

    from tests.marketing_activities.factories import SmartCampaignFactory

    SmartCampaignFactory()  # the admin shows its actions only above a list with rows

    admin_client.cookies["django_language"] = language
    with translation.override(language):
        html = admin_client.get(
            reverse("admin:marketing_activities_smartcampaign_changelist"),
            headers={"accept-language": language},
        ).content.decode()
        empty_choice = translation.gettext("- Select an option -")
        add_form = admin_client.get(
            reverse("admin:marketing_activities_smartcampaign_add"), headers={"accept-language": language}
        ).content.decode()
    assert f'value="0">{ACTION_BUTTON[language]}</button>' in html
    # The weekday of a weekly schedule starts empty: Django's own empty choice.
    assert empty_choice != "- Select an option -"
    assert f'<option value="" selected>{empty_choice}</option>' in add_form
