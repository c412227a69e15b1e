import io

import pytest
from django.core.management import CommandError, call_command

from smscampaigns.models import Lead
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


def run(text):
    return leads_import(file=io.StringIO(text))


def test_good_rows_are_imported_and_bad_rows_reported_with_their_line():
    report = run(GOOD_AND_BAD)
    assert set(Lead.objects.values_list("email", flat=True)) == {"anna@example.com", "david@example.com"}
    lines = {problem.line: problem.message for problem in report.problems}
    assert set(lines) == {3, 4, 6}
    assert "email address" in lines[3]
    assert "12345" in lines[4] and "wrong number of digits" in lines[4]
    assert "7 values, but the header names 6 columns" in lines[6]
    assert report.created == 2 and report.skipped == 3


def test_numbers_are_stored_in_e164_form_and_flags_parsed():
    run(GOOD_AND_BAD)
    assert Lead.objects.get(email="anna@example.com").mobile_phone == "+15551234567"
    david = Lead.objects.get(email="david@example.com")
    assert david.mobile_phone == "+46701234567"
    assert david.blocklisted is True


def test_reimporting_updates_by_email_instead_of_duplicating():
    run(GOOD_AND_BAD)
    report = run("email,first_name,lead_score\nANNA@example.com,Annie,42\n")
    assert report.updated == 1 and report.created == 0
    anna = Lead.objects.get(email="anna@example.com")
    assert (anna.first_name, anna.lead_score, anna.mobile_phone) == ("Annie", 42, "+15551234567")
    assert Lead.objects.count() == 2


def test_blank_cells_leave_stored_values_alone():
    LeadFactory(email="anna@example.com", first_name="Anna", mobile_phone="+15551234567")
    run("email,first_name,mobile_phone\nanna@example.com,,\n")
    assert Lead.objects.get(email="anna@example.com").mobile_phone == "+15551234567"


def test_unknown_column_is_reported_on_line_1_and_the_rest_imported():
    report = run("email,favourite_colour,country\nanna@example.com,red,US\n")
    assert [(p.line, "favourite_colour" in p.message) for p in report.problems] == [(1, True)]
    assert Lead.objects.get(email="anna@example.com").country == "US"


def test_semicolon_separated_files_from_european_spreadsheets():
    run("first_name;email;Mobile\nJonas;jonas@example.de;+49 151 23456789\n")
    assert Lead.objects.get(email="jonas@example.de").mobile_phone == "+4915123456789"


def test_national_numbers_are_read_in_the_rows_country():
    run("email,country,mobile_phone\nelin@example.se,SE,070-123 45 67\n")
    assert Lead.objects.get(email="elin@example.se").mobile_phone == "+46701234567"


def test_empty_file_says_so():
    report = run("")
    assert report.problems[0].line == 1 and "empty" in report.problems[0].message


def test_command_prints_problems_and_exits_1_when_rows_were_skipped(tmp_path, capsys):
    path = tmp_path / "leads.csv"
    path.write_text(GOOD_AND_BAD)
    with pytest.raises(CommandError) as error:
        call_command("import_leads", str(path), verbosity=0)
    assert error.value.returncode == 1
    captured = capsys.readouterr()
    assert "Line 4:" in captured.err
    assert "2 leads created" in captured.out


def test_command_refuses_a_missing_file():
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_leads", "/nonexistent/leads.csv", verbosity=0)
