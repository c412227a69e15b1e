"""The short links people click, and where marketers see the clicks."""

import re

import pytest
from django.urls import reverse

from marketing_activities.links import link_click_record, sms_texts_for_calls
from marketing_activities.models import FlowStep, LinkClick, Outcome, SentSms, TrackedLink
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory, SmsMessageFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
LINK_PREVIEW = "facebookexternalhit/1.1;line-poker/1.0"
HTMX = {"HX-Request": "true"}
LIVE = {**HTMX, "HX-Target": "sms-live"}


@pytest.fixture
def sent(settings):
    """A Send step whose SMS went to three people, each with a short link to the sale."""
    settings.SHORT_LINK_BASE_URL = "https://go.example.com"
    step = RunStepFactory(
        action=FlowStep.Action.SEND_SMS,
        message_text="Sale for {{lead.first_name}}: https://shop.example.com/sale?n={{lead.first_name}}",
        track_links=True,
    )
    rows = [
        RunResultFactory(run_step=step, lead=LeadFactory(first_name=name), outcome=Outcome.SENT)
        for name in ("Ann", "Bob", "Cid")
    ]
    step.first_result_id, step.last_result_id = rows[0].pk, rows[-1].pk
    step.counts = {"sent": 3}
    step.save()
    sms_texts_for_calls(step=step, rows=[(row.pk, row.lead_id, row.phone) for row in rows])
    return step


def short_path(link: TrackedLink) -> str:
    return reverse("short_link", args=[link.code])


def results_url(run_step, **query) -> str:
    url = reverse("marketing_activities:campaign_results", args=[run_step.run.campaign_id])
    return url + "?" + "&".join(f"{key}={value}" for key, value in {"run": run_step.run_id, **query}.items())


# --- The redirect ------------------------------------------------------------------


def test_a_click_records_who_clicked_what_and_redirects_to_the_address(client, sent):
    link = TrackedLink.objects.get(lead__first_name="Bob")
    response = client.get(short_path(link), headers={"User-Agent": PHONE_BROWSER})
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/sale?n=Bob"
    assert response["Cache-Control"] == "no-store"
    click = LinkClick.objects.get()
    assert (click.link, click.lead_id, click.result_id, click.run_step_id) == (
        link,
        link.lead_id,
        link.result_id,
        sent.pk,
    )
    assert (click.user_agent, click.by_robot) == (PHONE_BROWSER, False)
    assert SentSms.objects.get(result_id=link.result_id).clicks == 1


def test_a_link_preview_is_recorded_but_marked_and_not_counted_as_a_click(client, sent):
    link = TrackedLink.objects.get(lead__first_name="Ann")
    assert client.get(short_path(link), headers={"User-Agent": LINK_PREVIEW}).status_code == 302
    assert client.head(short_path(link), headers={"User-Agent": PHONE_BROWSER}).status_code == 302
    assert client.get(short_path(link)).status_code == 302  # no browser named at all
    assert list(LinkClick.objects.values_list("by_robot", flat=True)) == [True, True, True]
    assert SentSms.objects.get(result_id=link.result_id).clicks == 0


@pytest.mark.parametrize("code", ["AAAAAAAAAA", "abc", "a" * 300, "..%2F..%2Fadmin", "%00%00", "ÄÄÄÄÄÄÄÄÄÄ"])
def test_an_unknown_or_malformed_code_gets_a_plain_404(client, sent, code):
    response = client.get(f"/l/{code}")
    assert response.status_code == 404
    assert "Link not found" in response.content.decode()
    assert not LinkClick.objects.exists()


def test_the_short_links_need_no_login_and_answer_no_other_method(client, sent):
    link = TrackedLink.objects.first()
    assert client.post(short_path(link)).status_code == 405
    assert not LinkClick.objects.exists()


# --- Where the clicks show ---------------------------------------------------------


def test_the_results_show_who_clicked_and_filter_on_it(staff_client, sent):
    bob = TrackedLink.objects.get(lead__first_name="Bob")
    staff_client.get(short_path(bob), headers={"User-Agent": PHONE_BROWSER})
    staff_client.get(short_path(bob), headers={"User-Agent": PHONE_BROWSER})
    staff_client.get(
        short_path(TrackedLink.objects.get(lead__first_name="Cid")), headers={"User-Agent": LINK_PREVIEW}
    )
    page = staff_client.get(results_url(sent)).content.decode()
    assert 'data-clicked="1"' in page  # Bob; Cid's link preview is no click
    assert 'data-clicks="2"' in page
    assert page.count("data-sent-text") == 3
    filtered = staff_client.get(results_url(sent, step=0, clicked=1), headers=HTMX).content.decode()
    assert "<html" not in filtered
    assert "Bob" in filtered and "Ann" not in filtered and "Cid" not in filtered


def test_a_persons_row_shows_the_sms_as_it_was_sent(staff_client, sent):
    text = SentSms.objects.get(result__lead__first_name="Ann").text
    assert re.fullmatch(r"Sale for Ann: https://go\.example\.com/l/[A-Za-z0-9]{10}", text)
    assert text in staff_client.get(results_url(sent)).content.decode()


def test_a_leads_admin_page_lists_their_clicks(admin_client, sent):
    link = TrackedLink.objects.get(lead__first_name="Ann")
    link_click_record(link=link, user_agent=PHONE_BROWSER)
    link_click_record(link=link, user_agent=LINK_PREVIEW)
    page = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[link.lead_id])).content.decode()
    assert page.count("Link click") == 2
    assert page.count("https://shop.example.com/sale?n=Ann") == 2
    assert page.count("by a link preview or robot, not counted") == 1


# --- The SMS message: its opt-out and its counter ----------------------------------


def test_the_editor_counts_the_short_link_and_not_the_address(staff_client, settings):
    settings.SHORT_LINK_BASE_URL = "https://go.example.com"
    message = SmsMessageFactory(text="x")
    url = reverse("marketing_activities:sms_message", args=[message.pk])
    text = "Sale: https://shop.example.com/" + "a" * 200
    tracked = staff_client.get(url, {"text": text}, headers=LIVE).content.decode()
    untracked = staff_client.get(url, {"text": text, "dont_track_links": "on"}, headers=LIVE).content.decode()
    short = len("Sale: https://go.example.com/l/") + 10
    assert re.search(rf"data-characters>{short}<", tracked) and "data-segments>1<" in tracked
    assert re.search(rf"data-characters>{len(text)}<", untracked) and "data-segments>2<" in untracked
    assert "https://go.example.com/l/xxxxxxxxxx" in tracked and 'data-tracked-links="1"' in tracked


def test_the_editor_saves_the_opt_out(staff_client):
    message = SmsMessageFactory(text="See https://example.com")
    url = reverse("marketing_activities:sms_message", args=[message.pk])
    staff_client.post(url, {"name": message.name, "text": message.text, "dont_track_links": "on"})
    message.refresh_from_db()
    assert message.dont_track_links
    assert 'name="dont_track_links"' in staff_client.get(url).content.decode()
    staff_client.post(url, {"name": message.name, "text": message.text})
    message.refresh_from_db()
    assert not message.dont_track_links


def test_the_admin_edits_the_opt_out_and_counts_as_the_editor_does(admin_client, settings):
    settings.SHORT_LINK_BASE_URL = "https://go.example.com"
    message = SmsMessageFactory(text="Sale: https://shop.example.com/" + "a" * 200)
    page = admin_client.get(reverse("admin:marketing_activities_smsmessage_change", args=[message.pk]))
    assert 'name="dont_track_links"' in page.content.decode()
    assert "1 segments" in page.content.decode()
    message.dont_track_links = True
    message.save()
    page = admin_client.get(reverse("admin:marketing_activities_smsmessage_change", args=[message.pk]))
    assert "2 segments" in page.content.decode()
