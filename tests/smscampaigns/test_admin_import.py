"""The admin's CSV import: the request only keeps the file, a background worker imports
it, and the import's page shows the progress (htmx polling) and then the report."""

import time

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models.signals import post_save
from django.urls import reverse

from smscampaigns.models import Lead, LeadImport, LeadImportChunk
from smscampaigns.services import lead_import_create, lead_import_run
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:smscampaigns_lead_import")
POLL = {"HX-Request": "true", "HX-Target": "import-status"}


def post_file(client, data: bytes, name: str = "leads.csv"):
    return client.post(IMPORT_URL, {"file": SimpleUploadedFile(name, data, "text/csv")})


def import_and_wait(
    client, data: bytes, name: str = "leads.csv", deadline: float = 60
) -> tuple[LeadImport, str]:
    """Upload, then poll the import's page as the browser does until it reports (286)."""
    response = post_file(client, data, name)
    assert response.status_code == 302
    url = response["Location"]
    give_up = time.monotonic() + deadline
    while True:
        polled = client.get(url, headers=POLL)
        if polled.status_code == 286:
            break
        assert polled.status_code == 200
        assert time.monotonic() < give_up, f"the import did not finish within {deadline} s"
        time.sleep(0.2)
    return LeadImport.objects.get(pk=url.rstrip("/").split("/")[-2]), polled.content.decode()


def five_thousand_rows_with_an_oversized_score() -> bytes:
    rows = [f"p{n}@example.com,{n}" for n in range(1, 5001)]
    rows[2999] = "p3000@example.com,99999999999999999999"
    return ("email,lead_score\n" + "\n".join(rows) + "\n").encode()


# --- in the background, on a thread of the server, as in production without Celery ---


@pytest.fixture
def in_a_thread(settings):
    settings.RUNNER_BACKGROUND = "thread"


@pytest.mark.django_db(transaction=True)
def test_a_large_upload_is_imported_in_the_background_and_reported_line_by_line(admin_client, in_a_thread):
    """Cases 4 and 7: one oversized cell costs only its row, and the page reports at the end."""
    lead_import, report = import_and_wait(admin_client, five_thousand_rows_with_an_oversized_score())
    assert lead_import.status == LeadImport.Status.COMPLETED
    assert (
        "5,000 rows read as UTF-8: 4,999 leads created, 0 leads updated, 0 leads unchanged, 1 row refused."
        in report
    )
    assert "<td>3001</td><td>lead_score</td><td>99999999999999999999 is out of range" in report
    assert Lead.objects.count() == 4999
    assert not LeadImportChunk.objects.exists()  # the file is not kept once imported


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_file_is_gone_by_the_time_its_import_is_seen_to_end(admin_user):
    seen = []

    def on_save(sender, instance, **kwargs):
        if instance.status == LeadImport.Status.COMPLETED:
            # What another connection sees once the completion is committed.
            transaction.on_commit(lambda: seen.append(instance.chunks.exists()))

    upload = SimpleUploadedFile("leads.csv", b"email,lead_score\na@example.com,1\n", content_type="text/csv")
    lead_import = lead_import_create(upload=upload, user=admin_user)
    post_save.connect(on_save, sender=LeadImport)
    try:
        lead_import_run(lead_import=lead_import)
    finally:
        post_save.disconnect(on_save, sender=LeadImport)
    assert seen == [False]


@pytest.mark.django_db(transaction=True)
def test_a_reupload_with_blank_cells_keeps_the_block(admin_client, in_a_thread):
    """Case 1 through the admin."""
    lead = LeadFactory(email="blocked@x.test", blocklisted=True, marketing_suspended=True, lead_score=50)
    data = b"email,blocklisted,marketing_suspended,lead_score\nblocked@x.test,,,\nblocked@x.test,,,\n"
    lead_import, report = import_and_wait(admin_client, data)
    lead.refresh_from_db()
    assert (lead.blocklisted, lead.marketing_suspended, lead.lead_score) == (True, True, 50)
    assert "1 lead unchanged" in report


@pytest.mark.django_db(transaction=True)
def test_a_latin_1_upload_is_read_and_the_encoding_shown(admin_client, in_a_thread):
    """Case 5 through the admin, which used to refuse the file."""
    data = "email,first_name,city\njose@example.com,José,Köln\n".encode("latin-1")
    lead_import, report = import_and_wait(admin_client, data)
    assert Lead.objects.get(email="jose@example.com").city == "Köln"
    assert "1 row read as Windows-1252" in report
    assert "<dd>Windows-1252</dd>" in report


@pytest.mark.django_db(transaction=True)
def test_rows_without_email_are_not_created_again_on_reupload(admin_client, in_a_thread):
    """Case 6 through the admin."""
    data = b"first_name,mobile_phone\nNo Mail,(555) 123-4567\n"
    import_and_wait(admin_client, data)
    lead_import, report = import_and_wait(admin_client, data)
    assert Lead.objects.count() == 1
    assert "0 leads created, 0 leads updated, 1 lead unchanged" in report


# --- the request, the page, the partial -------------------------------------------------


def test_the_request_only_keeps_the_file_and_a_worker_imports_it(
    admin_client, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_BACKGROUND = "inline"
    with django_capture_on_commit_callbacks() as dispatched:
        response = post_file(admin_client, b"email\nanna@example.com\n")
    lead_import = LeadImport.objects.get()
    assert response["Location"] == reverse("admin:smscampaigns_leadimport_change", args=[lead_import.pk])
    assert (lead_import.status, lead_import.file_name, lead_import.size) == ("queued", "leads.csv", 23)
    assert lead_import.chunks.exists() and not Lead.objects.exists()
    (work,) = dispatched
    work()  # the worker's part
    lead_import.refresh_from_db()
    assert lead_import.status == "completed" and Lead.objects.filter(email="anna@example.com").exists()


def test_with_celery_the_upload_goes_to_a_task(admin_client, settings, django_capture_on_commit_callbacks):
    settings.RUNNER_BACKGROUND = "celery"  # eager here: no broker in the tests
    with django_capture_on_commit_callbacks(execute=True):
        post_file(admin_client, b"email\nanna@example.com\n")
    assert LeadImport.objects.get().status == "completed"
    assert Lead.objects.filter(email="anna@example.com").exists()


@pytest.fixture
def queued_import(admin_client, settings, django_capture_on_commit_callbacks):
    settings.RUNNER_BACKGROUND = "inline"
    with django_capture_on_commit_callbacks() as dispatched:
        post_file(admin_client, b"email,lead_score\nanna@example.com,1\nbad,2\n")
    return LeadImport.objects.get(), dispatched


def test_while_the_import_waits_the_page_shows_a_progress_bar_that_polls(admin_client, queued_import):
    lead_import, _dispatched = queued_import
    url = reverse("admin:smscampaigns_leadimport_change", args=[lead_import.pk])
    page = admin_client.get(url).content.decode()
    assert "<html" in page and 'hx-trigger="every 1s"' in page and "<progress" in page
    polled = admin_client.get(url, headers=POLL)
    assert polled.status_code == 200
    content = polled.content.decode()
    assert "<html" not in content and content.lstrip().startswith('<section id="import-status"')
    assert "Waiting for a worker" in content


def test_once_done_the_poll_answers_286_with_the_report(admin_client, queued_import):
    lead_import, dispatched = queued_import
    dispatched[0]()
    url = reverse("admin:smscampaigns_leadimport_change", args=[lead_import.pk])
    polled = admin_client.get(url, headers=POLL)
    assert polled.status_code == 286
    content = polled.content.decode()
    assert "hx-trigger" not in content
    assert (
        "2 rows read as UTF-8: 1 lead created, 0 leads updated, 0 leads unchanged, 1 row refused." in content
    )
    assert "<td>3</td><td>email</td><td>“bad” is not an email address.</td>" in content


def test_the_problems_download_lists_every_problem(admin_client, queued_import):
    lead_import, dispatched = queued_import
    dispatched[0]()
    response = admin_client.get(reverse("admin:smscampaigns_leadimport_problems", args=[lead_import.pk]))
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "line,column,problem",
        "3,email,“bad” is not an email address.",
    ]


def test_a_refused_file_says_why_on_the_page(admin_client, settings, django_capture_on_commit_callbacks):
    settings.RUNNER_BACKGROUND = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(admin_client, b"PK\x03\x04" + bytes(100), "leads.xlsx")
    page = admin_client.get(response["Location"]).content.decode()
    assert (
        "The file was refused: This is a zipped file, such as an Excel workbook (.xlsx), not a CSV file."
        in page
    )
    assert not Lead.objects.exists()


def test_a_failed_import_can_be_started_again(
    admin_client, queued_import, django_capture_on_commit_callbacks
):
    lead_import, _dispatched = queued_import
    LeadImport.objects.filter(pk=lead_import.pk).update(status=LeadImport.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:smscampaigns_leadimport_changelist"),
            {"action": "start_again", ACTION_CHECKBOX_NAME: [lead_import.pk]},
            follow=True,
        )
    assert f"Import {lead_import.pk} (leads.csv) started again." in response.content.decode()
    lead_import.refresh_from_db()
    assert lead_import.status == LeadImport.Status.COMPLETED
    assert Lead.objects.filter(email="anna@example.com").exists()


def test_a_completed_import_is_not_started_again(admin_client, queued_import):
    lead_import, dispatched = queued_import
    dispatched[0]()
    response = admin_client.post(
        reverse("admin:smscampaigns_leadimport_changelist"),
        {"action": "start_again", ACTION_CHECKBOX_NAME: [lead_import.pk]},
        follow=True,
    )
    assert "only a failed or stalled import can be started again" in response.content.decode()


def test_an_empty_upload_is_refused_by_the_form(admin_client):
    response = post_file(admin_client, b"")
    assert response.status_code == 200
    assert "The submitted file is empty." in response.content.decode()
    assert not LeadImport.objects.exists()


def test_importing_takes_the_permissions_to_add_and_change_leads(client, django_user_model, settings):
    settings.RUNNER_BACKGROUND = "inline"
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client.force_login(user)
    assert client.get(IMPORT_URL).status_code == 403
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_lead", "change_lead", "view_lead"])
    )
    response = post_file(client, b"email\nanna@example.com\n")
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200


def test_an_unknown_import_is_404(admin_client):
    assert admin_client.get(reverse("admin:smscampaigns_leadimport_change", args=[999])).status_code == 404


def test_the_list_of_imports_links_to_a_new_import(admin_client):
    response = admin_client.get(reverse("admin:smscampaigns_leadimport_changelist"))
    assert IMPORT_URL in response.content.decode()
