"""Importing leads from CSV: R10 (an import never widens who may be texted), one row's
problem never costs the others, every encoding a spreadsheet writes, and the command."""

import io

import pytest
from django.core.management import CommandError, call_command

from smscampaigns import imports
from smscampaigns.models import Lead, LeadFlagChange, LeadImport
from smscampaigns.services import leads_import
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = """First Name,Last Name,Email,Mobile Phone,Country,Blocklisted
Anna,Andersson,anna@example.com,(555) 123-4567,US,no
Ben,Bad,ben@example,555.123.0000,US,no
Carla,Cell,carla@example.com,12345,US,
David,Dup,david@example.com,+46 70 123 45 67,SE,yes
Emma,Extra,emma@example.com,,US,no,surprise
"""


def run(text: str, *, encoding: str = "utf-8", file_name: str = "leads.csv") -> LeadImport:
    return leads_import(file=io.BytesIO(text.encode(encoding)), file_name=file_name)


def problems_by_line(lead_import: LeadImport) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for problem in lead_import.problems.all():
        found.setdefault(problem.line, []).append(str(problem))
    return found


# --- good rows in, bad rows out, each with its line and column ---------------


def test_good_rows_are_imported_and_bad_rows_reported_with_their_line_and_column():
    lead_import = run(GOOD_AND_BAD)
    assert set(Lead.objects.values_list("email", flat=True)) == {"anna@example.com", "david@example.com"}
    lines = problems_by_line(lead_import)
    assert set(lines) == {3, 4, 6}
    assert lines[3] == ["Line 3, Email: “ben@example” is not an email address."]
    assert "Line 4, Mobile Phone: “12345” has the wrong number of digits" in lines[4][0]
    assert lines[6] == ["Line 6: 7 values, but the header names 6 columns."]
    assert (lead_import.leads_created, lead_import.rows_refused) == (2, 3)


def test_numbers_are_stored_in_e164_form_and_flags_parsed():
    run(GOOD_AND_BAD)
    assert Lead.objects.get(email="anna@example.com").mobile_phone == "+15551234567"
    david = Lead.objects.get(email="david@example.com")
    assert david.mobile_phone == "+46701234567"
    assert david.blocklisted is True


def test_a_lead_score_out_of_the_databases_range_refuses_that_row_only():
    """Case 4: one oversized cell used to crash the import after 2,000 rows."""
    rows = [f"p{n}@example.com,{n}" for n in range(1, 5001)]
    rows[2999] = "p3000@example.com,99999999999999999999"
    lead_import = run("email,lead_score\n" + "\n".join(rows) + "\n")
    assert problems_by_line(lead_import) == {
        3001: [
            "Line 3001, lead_score: 99999999999999999999 is out of range: "
            "the number must lie between -2147483648 and 2147483647."
        ]
    }
    assert (lead_import.leads_created, lead_import.rows_refused) == (4999, 1)
    assert Lead.objects.count() == 4999
    assert Lead.objects.get(email="p5000@example.com").lead_score == 5000


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("-2147483649", "out of range"),
        ("2147483648", "out of range"),
        ("9" * 5000, "out of range"),
        ("4.5", "is not a whole number"),
        ("1,000", "is not a whole number"),
        ("١٢", "is not a whole number"),
    ],
)
def test_lead_scores_that_are_not_whole_numbers_in_range_are_refused(cell, expected):
    lead_import = run(f'email,lead_score\nanna@example.com,"{cell}"\n')
    assert expected in lead_import.problems.get().message
    assert not Lead.objects.exists()


def test_the_extremes_of_the_range_are_whole_numbers():
    run(
        "email,lead_score\nlow@example.com,-2147483648\nhigh@example.com,+2147483647\nzeros@example.com,-0000000000000042\n"
    )
    assert dict(Lead.objects.values_list("email", "lead_score")) == {
        "low@example.com": -2147483648,
        "high@example.com": 2147483647,
        "zeros@example.com": -42,
    }


def test_a_huge_cell_is_quoted_shortened_in_the_report():
    lead_import = run(f"email,lead_score\nanna@example.com,{'9' * 5000}\n")
    message = lead_import.problems.get().message
    assert message.startswith("999999999999999999999999999999999999999… is out of range")


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("2026-02-30", "is not a date that exists"),
        ("2026-13-01", "is not a date that exists"),
        ("2026-01-01 25:99", "is not a date that exists"),
        ("03/05/2026", "write it as YYYY-MM-DD"),
        ("yesterday", "write it as YYYY-MM-DD"),
    ],
)
def test_bad_dates_are_refused_with_the_format_to_use(cell, expected):
    lead_import = run(f"email,created\nanna@example.com,{cell}\n")
    problem = lead_import.problems.get()
    assert (problem.line, problem.column) == (2, "created")
    assert expected in problem.message


def test_dates_and_times_are_read_in_iso_form():
    run("email,created_at\na@example.com,2026-03-05\nb@example.com,2026-03-05T14:30:00+01:00\n")
    created = dict(Lead.objects.values_list("email", "created_at"))
    assert created["a@example.com"].isoformat() == "2026-03-05T00:00:00+00:00"
    assert created["b@example.com"].isoformat() == "2026-03-05T13:30:00+00:00"


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("Anna\x00", "control character"),
        ("x" * 101, "longer than 100 characters"),
    ],
)
def test_text_a_lead_cannot_hold_is_refused(cell, expected):
    lead_import = run(f"email,first_name\nanna@example.com,{cell}\n")
    assert expected in lead_import.problems.get().message
    assert not Lead.objects.exists()


def test_a_missing_closing_quote_is_reported_with_the_lines_it_swallowed():
    lead_import = run('email,first_name\n"anna@example.com,Anna\nben@example.com,Ben\n')
    (problem,) = lead_import.problems.all()
    assert problem.line == 2 and "from line 2 to line 3" in problem.message
    assert not Lead.objects.exists()


def test_a_row_without_email_or_number_is_refused():
    lead_import = run("email,mobile_phone,first_name\n,,Nobody\n")
    assert "neither an email nor a mobile phone" in lead_import.problems.get().message
    assert not Lead.objects.exists()


def test_unknown_column_is_reported_on_line_1_and_the_rest_imported():
    lead_import = run("email,favourite_colour,country\nanna@example.com,red,US\n")
    problem = lead_import.problems.get()
    assert (problem.line, problem.column) == (1, "favourite_colour")
    assert Lead.objects.get(email="anna@example.com").country == "US"
    assert lead_import.rows_refused == 0


def test_a_header_without_email_or_number_refuses_the_file():
    lead_import = run("first_name,city\nAnna,Berlin\n")
    assert lead_import.status == LeadImport.Status.REFUSED
    assert "neither an email nor a mobile phone column" in lead_import.error
    assert not Lead.objects.exists()


def test_empty_file_says_so():
    lead_import = run("")
    assert lead_import.status == LeadImport.Status.REFUSED
    assert "empty" in lead_import.error


def test_semicolon_separated_files_from_european_spreadsheets():
    run("first_name;email;Mobile\nJonas;jonas@example.de;+49 151 23456789\n")
    assert Lead.objects.get(email="jonas@example.de").mobile_phone == "+4915123456789"


def test_excels_sep_line_names_the_delimiter():
    lead_import = run("sep=;\nemail;first_name\nanna@example.com;Anna\nbad;Ben\n")
    assert Lead.objects.get(email="anna@example.com").first_name == "Anna"
    assert list(problems_by_line(lead_import)) == [4]


def test_national_numbers_are_read_in_the_rows_country():
    run("email,country,mobile_phone\nelin@example.se,SE,070-123 45 67\n")
    assert Lead.objects.get(email="elin@example.se").mobile_phone == "+46701234567"


# --- R10: blank cells keep stored values, unblocking takes an explicit "no" ---


def blocked_lead(**fields):
    return LeadFactory(
        email="blocked@x.test", blocklisted=True, marketing_suspended=True, lead_score=50, **fields
    )


def test_reimporting_with_blank_cells_keeps_the_block_the_suspension_and_the_score():
    """Case 1: blank boolean and number cells used to parse as False and 0."""
    lead = blocked_lead(first_name="Bo")
    lead_import = run("email,first_name,blocklisted,marketing_suspended,lead_score\nblocked@x.test,Bo,,,\n")
    lead.refresh_from_db()
    assert (lead.blocklisted, lead.marketing_suspended, lead.lead_score) == (True, True, 50)
    assert (lead_import.leads_unchanged, lead_import.leads_updated) == (1, 0)


def test_a_second_row_for_the_same_email_keeps_what_the_first_row_set():
    run(
        "email,first_name,blocklisted,lead_score\n"
        "blocked@x.test,Bo,yes,50\n"
        "other@x.test,Al,,\n"
        "BLOCKED@x.test,Bob,,\n"
    )
    lead = Lead.objects.get(email="blocked@x.test")
    assert (lead.first_name, lead.blocklisted, lead.lead_score) == ("Bob", True, 50)


def test_every_blank_cell_keeps_its_stored_value():
    lead = blocked_lead(
        first_name="Bo", last_name="Berg", mobile_phone="+15551230001", country="US", city="Austin",
        state="TX", lead_source="Fair",
    )  # fmt: skip
    before = Lead.objects.values().get(pk=lead.pk)
    header = ",".join(imports.IMPORT_COLUMNS)
    blanks = ",".join("blocked@x.test" if name == "email" else "" for name in imports.IMPORT_COLUMNS)
    run(f"{header}\n{blanks}\n")
    assert Lead.objects.values().get(pk=lead.pk) == before


def test_an_explicit_no_unblocks_and_is_recorded_with_the_file_and_line():
    lead = blocked_lead()
    lead_import = run("email,blocklisted\nsomeone@x.test,\nblocked@x.test,no\n", file_name="march.csv")
    lead.refresh_from_db()
    assert lead.blocklisted is False and lead.marketing_suspended is True
    change = LeadFlagChange.objects.get(lead=lead, source="import")
    assert (change.old_value, change.new_value, change.source) == (True, False, "import")
    assert (change.lead_import, change.line) == (lead_import, 3)
    assert change.describe() == "yes → no (CSV import “march.csv”, line 3)"
    assert lead_import.flag_summary() == ["1 person removed from the blocklist (an explicit “no”)"]


@pytest.mark.parametrize(
    "word, value",
    [
        ("yes", True), ("No", False), ("TRUE", True), ("false", False), ("1", True), ("0", False),
        ("ja", True), ("nein", False), ("wahr", True), ("falsch", False),  # German
        ("Ja", True), ("nej", False), ("sant", True), ("falskt", False),  # Swedish
        ("ja", True), ("nee", False), ("waar", True), ("onwaar", False),  # Dutch
        ("sì", True), ("si", True), ("no", False), ("vero", True), ("falso", False),  # Italian
        ("oui", True), ("non", False), ("vrai", True), ("faux", False),  # French
    ],
)  # fmt: skip
def test_booleans_in_the_five_languages(word, value):
    LeadFactory(email="anna@example.com", marketing_suspended=not value)
    run(f"email,marketing_suspended\nanna@example.com,{word}\n")
    assert Lead.objects.get(email="anna@example.com").marketing_suspended is value


@pytest.mark.parametrize("word", ["maybe", "x", "blocked", "2", "-"])
def test_any_other_boolean_word_refuses_the_row_and_changes_nothing(word):
    lead = blocked_lead()
    lead_import = run(f"email,blocklisted\nblocked@x.test,{word}\n")
    problem = lead_import.problems.get()
    assert (problem.line, problem.column) == (2, "blocklisted")
    assert "is not yes or no" in problem.message
    lead.refresh_from_db()
    assert lead.blocklisted is True


def test_rows_for_one_lead_far_apart_are_merged_and_written_once(monkeypatch):
    """A lead's rows are merged wherever they are in the file, so a re-import never
    briefly lifts a block that a later row sets again."""
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    lead = blocked_lead()
    rows = ["blocked@x.test,no"] + [f"p{n}@x.test," for n in range(10)] + ["blocked@x.test,yes"]
    lead_import = run("email,blocklisted\n" + "\n".join(rows) + "\n")
    lead.refresh_from_db()
    assert lead.blocklisted is True
    assert not LeadFlagChange.objects.filter(lead=lead, source="import").exists()
    assert (lead_import.leads_created, lead_import.leads_unchanged, lead_import.rows_merged) == (10, 1, 1)


def test_reimporting_updates_by_email_instead_of_duplicating():
    run(GOOD_AND_BAD)
    lead_import = run("email,first_name,lead_score\nANNA@example.com,Annie,42\n")
    assert (lead_import.leads_updated, lead_import.leads_created) == (1, 0)
    anna = Lead.objects.get(email="anna@example.com")
    assert (anna.first_name, anna.lead_score, anna.mobile_phone) == ("Annie", 42, "+15551234567")
    assert Lead.objects.count() == 2


def test_reimporting_the_same_file_changes_nothing():
    first = run(GOOD_AND_BAD)
    before = list(Lead.objects.values())
    again = run(GOOD_AND_BAD)
    assert list(Lead.objects.values()) == before
    assert (again.leads_created, again.leads_updated, again.leads_unchanged) == (0, 0, first.leads_created)
    assert LeadFlagChange.objects.filter(lead_import=again).count() == 0


# --- rows without an email -----------------------------------------------------


def test_rows_without_email_are_matched_by_number_on_reimport():
    """Case 6: rows without an email used to be created again on every import."""
    text = "first_name,mobile_phone,blocklisted\nNo Mail,(555) 123-4567,yes\nOther,555-123-9999,\n"
    run(text)
    again = run(text.replace("No Mail", "Still No Mail"))
    assert Lead.objects.count() == 2
    lead = Lead.objects.get(mobile_phone="+15551234567")
    assert (lead.first_name, lead.blocklisted) == ("Still No Mail", True)
    assert (again.leads_created, again.leads_updated, again.leads_unchanged) == (0, 1, 1)


def test_a_row_without_email_never_updates_a_lead_that_has_one():
    LeadFactory(email="anna@example.com", mobile_phone="+15551234567", first_name="Anna")
    run("first_name,mobile_phone\nSomeone,555-123-4567\n")
    assert Lead.objects.get(email="anna@example.com").first_name == "Anna"
    assert Lead.objects.filter(email="", mobile_phone="+15551234567").count() == 1


def test_a_number_shared_by_several_leads_without_email_refuses_the_row():
    LeadFactory.create_batch(2, email="", mobile_phone="+15551234567", blocklisted=True)
    lead_import = run("mobile_phone,blocklisted\n555-123-4567,no\n")
    assert "several leads without an email have the number +15551234567" in lead_import.problems.get().message
    assert lead_import.rows_refused == 1
    assert Lead.objects.filter(blocklisted=True).count() == 2


# --- the summary -----------------------------------------------------------------


def test_the_summary_counts_with_plurals():
    LeadFactory(email="same@example.com", first_name="Same")
    LeadFactory(email="old@example.com", first_name="Old")
    lead_import = run(
        "email,first_name\nnew@example.com,New\nsame@example.com,Same\nold@example.com,Changed\nbad,Bad\n"
    )
    assert lead_import.summary() == (
        "4 rows read as UTF-8: 1 lead created, 1 lead updated, 1 lead unchanged, 1 row refused."
    )


def test_the_summary_groups_thousands_and_says_when_rows_were_merged():
    rows = [f"p{n}@example.com" for n in range(1200)] + ["p1@example.com"]
    lead_import = run("email\n" + "\n".join(rows) + "\n")
    assert lead_import.summary() == (
        "1,201 rows read as UTF-8: 1,200 leads created, 0 leads updated, 0 leads unchanged, 0 rows refused. "
        "1 row was for the lead of an earlier row; their cells were merged."
    )


# --- encodings ---------------------------------------------------------------------

NAMES = (
    "email,first_name,city\n"
    "jose@example.com,José,Köln\nniccolo@example.com,Niccolò,Forlì\nasa@example.com,Åsa,Göteborg\n"
)


@pytest.mark.parametrize(
    "encoding, name",
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8"),
        ("utf-16", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-16-le", "UTF-16"),  # no byte order mark
        ("cp1252", "Windows-1252"),
        ("latin-1", "Windows-1252"),
    ],
)
def test_every_encoding_a_spreadsheet_writes_is_read_and_named(encoding, name):
    """Case 5: a Latin-1 file used to be stored as mojibake."""
    lead_import = run(NAMES, encoding=encoding)
    assert dict(Lead.objects.values_list("first_name", "city")) == {
        "José": "Köln",
        "Niccolò": "Forlì",
        "Åsa": "Göteborg",
    }
    assert lead_import.summary().startswith(f"3 rows read as {name}:")


def test_windows_1252_punctuation_is_read():
    run("email,lead_source\nzoe@example.com,Messe – 5 € “Spezial”\n", encoding="cp1252")
    assert Lead.objects.get().lead_source == "Messe – 5 € “Spezial”"


def test_a_file_mixing_encodings_is_refused_with_the_lines():
    data = (
        "email,first_name\nanna@example.com,Anna\njose@example.com,José\n".encode()
        + "k@example.com,Jürgen\n".encode("cp1252")
    )
    lead_import = leads_import(file=io.BytesIO(data), file_name="mixed.csv")
    assert lead_import.status == LeadImport.Status.REFUSED
    assert "line 3 is UTF-8, line 4 is not" in lead_import.error
    assert not Lead.objects.exists()


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"PK\x03\x04" + bytes(range(256)) * 4, "Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "Excel 97–2003 workbook"),
        (b"\x00\x01\x02\x03" * 512, "not text"),
        (bytes(range(256)) * 8, "cannot be told with confidence"),
        ("email,name\nivan@example.com,Иван Петров\n".encode("cp1251"), "cannot be told with confidence"),
    ],
)
def test_a_file_that_cannot_be_decoded_with_confidence_is_refused(data, expected):
    lead_import = leads_import(file=io.BytesIO(data), file_name="leads.csv")
    assert lead_import.status == LeadImport.Status.REFUSED
    assert expected in lead_import.error
    assert not Lead.objects.exists()


# --- the command ---------------------------------------------------------------------


def test_command_prints_problems_and_exits_1_when_rows_were_refused(tmp_path, capsys):
    path = tmp_path / "leads.csv"
    path.write_text(GOOD_AND_BAD)
    with pytest.raises(CommandError) as error:
        call_command("import_leads", str(path), verbosity=0)
    assert error.value.returncode == 1
    captured = capsys.readouterr()
    assert f"{path}: Line 4, Mobile Phone:" in captured.err
    assert (
        "5 rows read as UTF-8: 2 leads created, 0 leads updated, 0 leads unchanged, 3 rows refused."
        in captured.out
    )
    assert "1 person blocklisted." in captured.out


def test_command_keeps_the_rows_around_an_oversized_score(tmp_path, capsys):
    """Case 4 through the command: a per-line report, no traceback, every valid row kept."""
    rows = [f"p{n}@example.com,{n}" for n in range(1, 5001)]
    rows[2999] = "p3000@example.com,99999999999999999999"
    path = tmp_path / "leads.csv"
    path.write_text("email,lead_score\n" + "\n".join(rows) + "\n")
    with pytest.raises(CommandError):
        call_command("import_leads", str(path), verbosity=0)
    captured = capsys.readouterr()
    assert "Line 3001, lead_score: 99999999999999999999 is out of range" in captured.err
    assert "4,999 leads created" in captured.out and "1 row refused" in captured.out
    assert Lead.objects.count() == 4999


def test_command_reads_a_latin_1_file_and_says_so(tmp_path, capsys):
    path = tmp_path / "leads.csv"
    path.write_bytes(NAMES.encode("latin-1"))
    call_command("import_leads", str(path), verbosity=0)
    assert "3 rows read as Windows-1252" in capsys.readouterr().out
    assert Lead.objects.get(email="jose@example.com").city == "Köln"


def test_command_keeps_blocks_on_reimport(tmp_path):
    lead = blocked_lead()
    path = tmp_path / "leads.csv"
    path.write_text("email,blocklisted,marketing_suspended,lead_score\nblocked@x.test,,,\n")
    call_command("import_leads", str(path), verbosity=0)
    lead.refresh_from_db()
    assert (lead.blocklisted, lead.marketing_suspended, lead.lead_score) == (True, True, 50)


def test_command_creates_rows_without_email_only_once(tmp_path, capsys):
    """Case 6 through the command."""
    path = tmp_path / "leads.csv"
    path.write_text("first_name,mobile_phone\nNo Mail,(555) 123-4567\n")
    call_command("import_leads", str(path), verbosity=0)
    call_command("import_leads", str(path), verbosity=0)
    assert Lead.objects.count() == 1
    assert "0 leads created, 0 leads updated, 1 lead unchanged" in capsys.readouterr().out


def test_command_refuses_a_file_it_cannot_decode(tmp_path):
    path = tmp_path / "leads.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(300))
    with pytest.raises(CommandError, match="not a CSV file"):
        call_command("import_leads", str(path), verbosity=0)


def test_command_refuses_a_missing_file():
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_leads", "/nonexistent/leads.csv", verbosity=0)


def test_a_time_zone_column_sets_the_persons_zone_for_quiet_hours_in_any_case():
    lead_import = run(
        "Email,Time Zone\n"
        "la@example.com,america/los_angeles\n"
        "ny@example.com,America/New_York\n"
        "moon@example.com,Moon/Base\n"
        "blank@example.com,\n"
    )
    zones = dict(Lead.objects.values_list("email", "time_zone"))
    assert zones == {
        "la@example.com": "America/Los_Angeles",
        "ny@example.com": "America/New_York",
        "blank@example.com": None,
    }
    assert problems_by_line(lead_import) == {
        4: [
            "Line 4, Time Zone: “Moon/Base” is not a time zone; use a name such as America/New_York "
            "or Europe/Berlin."
        ]
    }
    run("Email,Time Zone\nla@example.com,\nny@example.com,Europe/Berlin\n")
    zones = dict(Lead.objects.values_list("email", "time_zone"))
    assert (zones["la@example.com"], zones["ny@example.com"]) == ("America/Los_Angeles", "Europe/Berlin")
