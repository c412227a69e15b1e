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
        names = [str(label) for label in FlowStep.Action.labels]
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
