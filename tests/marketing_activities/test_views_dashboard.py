"""The SMS dashboards: each scope's page with its panels, the people behind each
figure and their CSV, the date range and its mistakes, and the German page."""

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.reporting.figures import Scope, sms_figures
from marketing_activities.reporting.forms import DashboardForm
from marketing_activities.reporting.people import FIGURES, figure_people
from smscampaigns.models import Lead
from tests.marketing_activities.campaigns import execute, make_campaign
from tests.marketing_activities.factories import ProgramFactory, SmsMessageFactory
from tests.marketing_activities.sms_reporting import CallbackForwarder, sms_traffic
from vibes.models import Subscription, VibesList

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(news, vibes_simulator, callback_catcher, client, settings):
    return sms_traffic(news, vibes_simulator, CallbackForwarder(callback_catcher, client, settings))


def dashboard(kind, pk=None, page=""):
    name = f"marketing_activities:{kind}_dashboard{'_' + page if page else ''}"
    return reverse(name, args=[] if pk is None else [pk])


def shown(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def figure_link(page: str, figure: str) -> str:
    """The count a Summary row links, as the page shows it."""
    marker = f'data-figure="{figure}" data-count="'
    return page[page.index(marker) + len(marker) :].split('"', 1)[0]


def csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_messages_dashboard_tab_shows_its_progression_summary_and_activity_over_time(traffic, staff_client):
    page = shown(staff_client.get(dashboard("message", traffic.first.pk)))
    assert 'id="tab-dashboard"' in page and 'aria-current="page"' in page
    for panel in ("SMS Progression", "Summary", "Activity Over Time", "Compare two SMS messages"):
        assert panel in page
    figures = sms_figures(Scope("message", traffic.first.pk))
    assert {figure: int(figure_link(page, figure)) for figure in FIGURES} == {
        figure: getattr(figures, figure) for figure in FIGURES
    }
    assert (figures.sent, figures.delivered, figures.replied, figures.clicked, figures.unsubscribed) == (
        4,
        4,
        2,
        1,
        1,
    )
    assert "100.0 %" in page and "50.0 %" in page and "25.0 %" in page  # delivered, replied, clicked
    # The chart's data: the table beside it, one row a day of the last 30.
    assert page.count('data-value="') == 2 + 30


def test_the_editor_of_a_message_has_the_dashboard_tab_beside_it(traffic, staff_client):
    page = shown(staff_client.get(reverse("marketing_activities:sms_message", args=[traffic.first.pk])))
    assert 'id="tab-editor"' in page and dashboard("message", traffic.first.pk) in page


def test_bounces_are_split_hard_and_soft(traffic, staff_client):
    page = shown(staff_client.get(dashboard("message", traffic.second.pk)))
    assert [figure_link(page, figure) for figure in ("sent", "failed", "failed_hard", "failed_soft")] == [
        "3",
        "3",
        "1",
        "2",
    ]
    assert "Bounce rate" in page and "100.0 %" in page


@pytest.mark.parametrize("kind", ["campaign", "program", "vibes_list", "installation"])
def test_every_scope_has_a_dashboard_with_its_own_figures(kind, traffic, staff_client):
    pk = {
        "campaign": traffic.first_campaign.pk,
        "program": traffic.second_campaign.program_id,
        "vibes_list": VibesList.objects.get(vibes_id="101").pk,
        "installation": None,
    }[kind]
    page = shown(staff_client.get(dashboard(kind, pk)))
    assert (
        int(figure_link(page, "sent"))
        == sms_figures(Scope(kind, pk)).sent
        == {
            "campaign": 4,
            "program": 3,
            "vibes_list": 7,
            "installation": 7,
        }[kind]
    )


def test_the_campaign_tabs_list_the_dashboard_and_the_main_navigation_sms_performance(traffic, staff_client):
    page = shown(
        staff_client.get(reverse("marketing_activities:campaign_results", args=[traffic.first_campaign.pk]))
    )
    assert dashboard("campaign", traffic.first_campaign.pk) in page
    assert f'href="{dashboard("installation")}"' in page
    program = shown(
        staff_client.get(reverse("marketing_activities:program", args=[traffic.first_campaign.program_id]))
    )
    assert dashboard("program", traffic.first_campaign.program_id) in program


def test_the_vibes_lists_admin_page_links_to_its_dashboard(traffic, staff_client):
    news = VibesList.objects.get(vibes_id="101")
    page = shown(staff_client.get(reverse("admin:vibes_vibeslist_change", args=[news.pk])))
    assert dashboard("vibes_list", news.pk) in page


@pytest.mark.parametrize("kind", ["message", "campaign", "program", "vibes_list"])
def test_a_missing_object_is_404(kind, staff_client, db):
    assert staff_client.get(dashboard(kind, 987654)).status_code == 404
    assert staff_client.get(dashboard(kind, 987654, "people")).status_code == 404
    assert staff_client.get(dashboard(kind, 987654, "export")).status_code == 404


def test_an_htmx_request_for_a_panel_gets_only_that_panel(traffic, staff_client):
    url = dashboard("message", traffic.first.pk) + "?figure=replied"
    panel = shown(staff_client.get(url, headers={"HX-Request": "true", "HX-Target": "activity-over-time"}))
    assert panel.lstrip().startswith('<section id="activity-over-time"') and "<html" not in panel
    assert "Summary" not in panel
    whole = shown(staff_client.get(url, headers={"HX-Request": "true", "HX-Target": "dashboard"}))
    assert whole.lstrip().startswith('<div id="dashboard"') and "Summary" in whole


def test_the_last_two_days_are_hourly_and_longer_ranges_daily(traffic, staff_client):
    url = dashboard("installation")
    hourly = shown(staff_client.get(url, {"range": "2d", "figure": "delivered"}))
    assert "by the hour" in hourly and hourly.count('data-value="') == 2 + 48
    daily = shown(staff_client.get(url, {"range": "7d"}))
    assert "by the day" in daily and daily.count('data-value="') == 2 + 7
    today = timezone.localdate()
    custom = shown(
        staff_client.get(url, {"range": "custom", "start": today - datetime.timedelta(days=9), "end": today})
    )
    assert custom.count('data-value="') == 2 + 10 and figure_link(custom, "sent") == "7"
    # A custom range of days before the traffic finds none of it.
    before = today - datetime.timedelta(days=20)
    past = shown(staff_client.get(url, {"range": "custom", "start": before, "end": before}))
    assert figure_link(past, "sent") == "0" and "by the hour" in past


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"range": "custom", "start": "2026-02-30", "end": "2026-03-02"}, "Enter a valid date."),
        (
            {"range": "custom", "start": "2026-03-05", "end": "2026-03-01"},
            "The To date is before the From date.",
        ),
        ({"range": "custom", "end": "2026-03-01"}, "A custom range needs a From date."),
        (
            {"range": "custom", "start": "2020-01-01", "end": "2026-03-01"},
            "A range may span at most 731 days.",
        ),
        ({"range": "forever"}, "Select a valid choice."),
    ],
)
def test_a_bad_range_is_named_at_its_field_and_the_last_30_days_are_shown(
    query, message, traffic, staff_client
):
    page = shown(staff_client.get(dashboard("message", traffic.first.pk), {**query, "figure": "replied"}))
    assert message in page and 'aria-invalid="true"' in page or "Date range:" in page
    assert figure_link(page, "sent") == "4"  # the last 30 days
    # The valid choice is kept: the figure over time is still the replies.
    assert '<option value="replied" selected>' in page


def test_each_figure_links_to_the_people_behind_it(traffic, staff_client):
    page = shown(staff_client.get(dashboard("message", traffic.first.pk)))
    people_url = dashboard("message", traffic.first.pk, "people")
    assert f'href="{people_url}?figure=replied&amp;range=30d"' in page
    people = shown(staff_client.get(people_url, {"figure": "replied", "range": "30d"}))
    names = {name for name in ("Ann", "Ben", "Cat", "Dan") if f"{name} " in people}
    assert names == {"Ann", "Dan"}
    assert 'data-total="2"' in people and traffic.first_campaign.name in people


@pytest.mark.parametrize("figure", FIGURES)
def test_the_people_list_and_its_csv_hold_as_many_as_the_figure(figure, traffic, staff_client):
    scope = Scope("vibes_list", VibesList.objects.get(vibes_id="101").pk)
    expected = getattr(sms_figures(scope), figure)
    people = shown(staff_client.get(dashboard("vibes_list", scope.pk, "people"), {"figure": figure}))
    assert f'data-total="{expected}"' in people
    rows = csv_rows(staff_client.get(dashboard("vibes_list", scope.pk, "export"), {"figure": figure}))
    assert len(rows) == expected


def test_the_csv_says_who_got_which_sms_and_what_came_of_it(traffic, staff_client):
    rows = csv_rows(staff_client.get(dashboard("message", traffic.first.pk, "export"), {"figure": "sent"}))
    by_name = {row["first name"]: row for row in rows}
    assert set(by_name) == {"Ann", "Ben", "Cat", "Dan"}
    assert (by_name["Ann"]["replied"], by_name["Ann"]["clicked"]) == ("yes", "no")
    assert (by_name["Ben"]["replied"], by_name["Ben"]["clicked"]) == ("no", "yes")
    assert by_name["Cat"]["outcome"] == "delivered" and by_name["Cat"]["number"] == "+15551239003"
    assert {row["campaign"] for row in rows} == {traffic.first_campaign.name}
    hard = csv_rows(
        staff_client.get(dashboard("message", traffic.second.pk, "export"), {"figure": "failed_hard"})
    )
    assert [(row["first name"], row["delivery"]) for row in hard] == [("Cat", "undeliverable")]


def test_an_unknown_figure_shows_the_sent_and_is_refused_for_the_csv(traffic, staff_client):
    people = shown(staff_client.get(dashboard("installation", page="people"), {"figure": "opened"}))
    assert 'data-total="7"' in people
    assert staff_client.get(dashboard("installation", page="export"), {"figure": "opened"}).status_code == 404


def test_two_messages_side_by_side(traffic, staff_client):
    page = shown(
        staff_client.get(
            dashboard("message", traffic.first.pk),
            {"second": traffic.second.pk},
            headers={"HX-Request": "true", "HX-Target": "comparison"},
        )
    )
    assert page.lstrip().startswith('<section id="comparison"')
    assert traffic.first.name in page and traffic.second.name in page
    assert "comparison-table" in page
    elsewhere = shown(
        staff_client.get(dashboard("installation"), {"first": traffic.first.pk, "second": traffic.second.pk})
    )
    assert "comparison-table" in elsewhere
    missing = shown(staff_client.get(dashboard("installation"), {"first": traffic.first.pk, "second": 99999}))
    assert "That SMS message does not exist (any more)." in missing and "comparison-table" not in missing


def test_a_dashboard_costs_the_same_queries_however_many_messages_and_people(traffic, staff_client):
    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            shown(staff_client.get(url))
        return len(captured)

    url = dashboard("message", traffic.first.pk) + f"?second={traffic.second.pk}"
    people = dashboard("installation", page="people") + "?figure=sent"
    queries(url)  # the first request of a session reads what the next ones find cached
    before = queries(url), queries(people)
    program = ProgramFactory()
    for _ in range(20):
        SmsMessageFactory(program=program)
    assert (queries(url), queries(people)) == before
    assert before[0] <= 25 and before[1] <= 12


def test_a_page_of_people_past_the_first_costs_the_queries_of_the_first(traffic, staff_client):
    people = dashboard("installation", page="people")
    period = DashboardForm({}).period()
    newest, second = figure_people(Scope("installation"), "sent", start=period.start, end=period.end)[:2]
    cursor = f"{newest.called_at.isoformat()}~{newest.pk}"

    def queries(query):
        with CaptureQueriesContext(connection) as captured:
            page = shown(staff_client.get(people, {"figure": "sent", **query}))
        return len(captured), page

    queries({})  # the first request of a session reads what the next ones find cached
    on_the_first, first = queries({})
    past_the_first, page = queries({"older": cursor})
    assert past_the_first == on_the_first
    assert 'data-total="7"' in first and 'data-total="7"' in page  # the figure's, on every page
    assert "data-newer" not in first and "data-newer" in page
    assert (first.count("<tr data-lead"), page.count("<tr data-lead")) == (7, 6)
    back, page = queries({"newer": f"{second.called_at.isoformat()}~{second.pk}"})
    assert back == on_the_first and "data-newer" not in page and "data-older" in page
    assert page.count("<tr data-lead") == 1 and f'<tr data-lead="{newest.lead_id}"' in page
    _queries, page = queries({"older": "2026-02-30~7"})
    assert (
        "That page could not be read: the first page is shown." in page and page.count("<tr data-lead") == 7
    )


GERMAN_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split()


def test_the_dashboard_in_german_shows_german_dates_and_numbers(news, vibes_simulator, staff_client):
    """1,234 people texted by one run: the figures read 1.234, the days "1. Dezember 2026"."""
    leads = Lead.objects.bulk_create(
        Lead(first_name=f"P{n}", email=f"p{n}@example.com", mobile_phone=f"+1555{4000000 + n}", country="US")
        for n in range(1234)
    )
    Subscription.objects.bulk_create(
        Subscription(lead=lead, vibes_list=news, status=Subscription.Status.SUBSCRIBED) for lead in leads
    )
    execute(make_campaign(("send", news)), vibes_simulator)
    today = timezone.localdate()
    first = today - datetime.timedelta(days=6)
    page = shown(
        staff_client.get(
            dashboard("installation"),
            {"range": "custom", "start": first, "end": today},
            headers={"Accept-Language": "de"},
        )
    )
    assert '<html lang="de">' in page
    assert ">1.234</a>" in page  # sent, in the Progression and the Summary
    assert '<td class="num" data-value="1234">1.234</td>' in page  # today, in the table behind the chart
    assert f"{first.day}. {GERMAN_MONTHS[first.month - 1]} {first.year}" in page  # the range
    assert f"{today:%d.%m.%Y}" in page  # the chart's days, as German writes them
    assert "0,0 %" in page  # no receipts yet: rates with a decimal comma


def test_the_csv_is_read_through_a_cursor_planned_for_every_row(traffic, staff_client):
    """PostgreSQL plans a cursor for its first tenth (a walk of the call-time index, a
    nested loop per row: two minutes at ten million SMS); the export reads them all."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no cursor fraction to plan for")
    with CaptureQueriesContext(connection) as queries:
        rows = csv_rows(
            staff_client.get(dashboard("message", traffic.first.pk, "export"), {"figure": "sent"})
        )
    assert len(rows) == 4
    statements = [query["sql"] for query in queries.captured_queries]
    planned = statements.index("SET LOCAL cursor_tuple_fraction = 1.0")
    assert any("marketing_activities_runresult" in sql for sql in statements[planned:]), statements
