"""The people behind each figure: the SMS rows a figure counts, with the figures'
own definitions, for every scope."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing_activities.models import CampaignRun, Outcome, SmsMessage
from marketing_activities.reporting import people as people_module
from marketing_activities.reporting.figures import Scope, SmsFigures, sms_figures, sms_figures_over_time
from marketing_activities.reporting.people import (
    FIGURES,
    figure_calls,
    figure_people,
    figure_people_page,
)
from marketing_activities.runner import run_create, run_execute
from tests.marketing_activities.campaigns import make_campaign
from tests.marketing_activities.sms_reporting import CallbackForwarder, sms_traffic
from tests.query_plans import query_plan
from tests.vibes.simulated import make_client
from vibes.models import VibesList

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(news, vibes_simulator, callback_catcher, client, settings):
    return sms_traffic(news, vibes_simulator, CallbackForwarder(callback_catcher, client, settings))


def people(scope, figure, **period):
    return sorted(result.lead.first_name for result in figure_people(scope, figure, **period))


def test_each_figure_of_a_message_has_the_people_it_counts(traffic):
    first, second = Scope("message", traffic.first.pk), Scope("message", traffic.second.pk)
    assert people(first, "sent") == ["Ann", "Ben", "Cat", "Dan"]
    assert people(first, "delivered") == ["Ann", "Ben", "Cat", "Dan"]
    assert people(first, "replied") == ["Ann", "Dan"]  # STOP is a reply too
    assert people(first, "clicked") == ["Ben"]  # the link preview is no click
    assert people(first, "unsubscribed") == ["Dan"]
    assert people(first, "failed") == []
    # Dan had left the list: the second message went to three.
    assert people(second, "sent") == ["Ann", "Ben", "Cat"]
    assert people(second, "failed") == ["Ann", "Ben", "Cat"]
    assert people(second, "failed_hard") == ["Cat"]
    assert people(second, "failed_soft") == ["Ann", "Ben"]
    assert people(second, "delivered") == people(second, "replied") == []


def test_the_scopes_take_the_send_steps_of_their_message_campaign_program_list_or_everything(traffic):
    news = VibesList.objects.get(vibes_id="101")
    assert len(people(Scope("campaign", traffic.first_campaign.pk), "sent")) == 4
    assert len(people(Scope("program", traffic.second_campaign.program_id), "sent")) == 3
    assert len(people(Scope("vibes_list", news.pk), "sent")) == 7
    assert len(people(Scope("installation"), "sent")) == 7
    assert (
        people(Scope("vibes_list", VibesList.objects.create(vibes_id="999", name="Other").pk), "sent") == []
    )


def test_the_people_of_every_figure_are_as_many_as_the_figure_says(traffic):
    for scope in (
        Scope("message", traffic.first.pk),
        Scope("message", traffic.second.pk),
        Scope("installation"),
    ):
        figures = sms_figures(scope)
        for figure in FIGURES:
            assert figure_people(scope, figure).count() == getattr(figures, figure), (scope, figure)


def test_a_range_selects_sms_by_the_time_of_their_call(traffic):
    scope = Scope("installation")
    now = timezone.now()
    assert figure_people(scope, "sent", start=now - datetime.timedelta(hours=1), end=now).count() == 7
    assert figure_people(scope, "sent", end=now - datetime.timedelta(hours=1)).count() == 0
    assert figure_people(scope, "sent", start=now).count() == 0


def test_a_dry_run_or_a_refused_sms_never_counts(traffic, news, vibes_simulator):
    campaign = make_campaign(("send", news))
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=True)
    run_execute(run=run, client=make_client(vibes_simulator.url), concurrency=4)
    assert run.steps.get().results().filter(outcome=Outcome.PLANNED_DRY_RUN).count() == 3
    message = campaign.flow_steps.get().sms_message
    assert sms_figures(Scope("message", message.pk)) == SmsFigures()
    assert sms_figures(Scope("installation")).sent == 7


def test_the_people_are_newest_call_first_and_a_page_of_them_is_a_few_queries(traffic):
    rows = list(figure_people(Scope("installation"), "sent"))
    assert [row.called_at for row in rows] == sorted((row.called_at for row in rows), reverse=True)
    with CaptureQueriesContext(connection) as queries:
        for row in figure_people(Scope("message", traffic.first.pk), "replied")[:50]:
            assert row.lead.first_name and row.run_step.run.campaign.name
    assert len(queries) == 2  # the message's existence, and the page with its people, runs and campaigns


@pytest.mark.parametrize("per_page", [1, 2, 3])
def test_pages_of_people_go_older_and_back_newer_by_their_cursors_each_row_once(per_page, traffic):
    for scope in (Scope("installation"), Scope("message", traffic.first.pk)):
        everyone = [row.pk for row in figure_people(scope, "sent")]
        pages, page = [], figure_people_page(scope, "sent", per_page=per_page)
        while True:
            pages.append([row.pk for row in page.rows])
            assert page.total == len(everyone) == sms_figures(scope).sent  # the rollups' figure
            if not page.older:
                break
            page = figure_people_page(scope, "sent", older=page.older, per_page=per_page)
        assert [pk for shown in pages for pk in shown] == everyone
        assert [len(shown) for shown in pages[:-1]] == [per_page] * (len(pages) - 1)
        back = []
        while page.newer:
            page = figure_people_page(scope, "sent", newer=page.newer, per_page=per_page)
            back.append([row.pk for row in page.rows])
        assert back == pages[-2::-1]
        assert not page.newer and (page.older or len(pages) == 1)


def pages_there_and_back(scope, figure, per_page):
    """The pages of the figure from the newest by `older`, then back by `newer`."""
    pages, page = [], figure_people_page(scope, figure, per_page=per_page)
    while True:
        pages.append([row.pk for row in page.rows])
        if not page.older:
            break
        page = figure_people_page(scope, figure, older=page.older, per_page=per_page)
    back = []
    while page.newer:
        page = figure_people_page(scope, figure, newer=page.newer, per_page=per_page)
        back.append([row.pk for row in page.rows])
    return pages, back


@pytest.mark.parametrize("per_page", [1, 2])
def test_pages_read_from_the_scopes_rows_are_the_pages_the_walk_of_the_calls_gives(
    per_page, traffic, monkeypatch
):
    scopes = (Scope("message", traffic.first.pk), Scope("campaign", traffic.second_campaign.pk))
    for scope in scopes:
        for figure in ("sent", "failed_soft", "replied", "clicked", "unsubscribed"):
            everyone = [row.pk for row in figure_people(scope, figure)]
            paged = {}
            for way, cost in (("walked", 10**9), ("read whole", 0)):
                monkeypatch.setattr(people_module, "READ_COST", cost)
                paged[way] = pages_there_and_back(scope, figure, per_page)
            pages, back = paged["read whole"]
            assert paged["walked"] == paged["read whole"], (scope, figure)
            assert [pk for shown in pages for pk in shown] == everyone, (scope, figure)
            assert back == pages[-2::-1]


def test_a_scope_with_fewer_sms_than_a_walk_would_pass_is_read_through_its_steps_index(traffic):
    # The second campaign texted 3 of the 7 SMS: a page of 50 would walk all 7 calls.
    scope = Scope("campaign", traffic.second_campaign.pk)
    with CaptureQueriesContext(connection) as queries:
        page = figure_people_page(scope, "sent")
    assert [row.pk for row in page.rows] == [row.pk for row in figure_people(scope, "sent")]
    keys = [query["sql"] for query in queries.captured_queries if "run_result_called" not in query["sql"]]
    read = [sql for sql in keys if 'SELECT "marketing_activities_runresult"."called_at"' in sql]
    assert len(read) == 1, keys
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + read[0])
        else:
            assert "INDEXED BY run_result_step_lead" in read[0]
            cursor.execute("EXPLAIN QUERY PLAN " + read[0])
        plan = [str(row) for row in cursor.fetchall()]
    assert any("run_result_step_lead" in line for line in plan), plan
    assert not any("run_result_called" in line for line in plan), plan


def test_a_figure_of_nobody_is_an_empty_page_that_reads_no_calls(traffic):
    scope = Scope("message", traffic.first.pk)
    with CaptureQueriesContext(connection) as queries:
        page = figure_people_page(scope, "failed")
    assert (page.rows, page.total, page.older, page.newer) == ([], 0, "", "")
    # The message and its figures only: no walk of the calls to the range's end.
    assert not [query for query in queries.captured_queries if "_runresult" in query["sql"]]


def test_a_page_of_people_whose_cursor_cannot_be_read_is_the_newest_and_says_so(traffic):
    scope = Scope("installation")
    newest = [row.pk for row in figure_people_page(scope, "sent", per_page=3).rows]
    for cursor in ("yesterday~12", "2026-12-01T10:00:00~x", "~", "2026-13-45T99:00:00~3"):
        page = figure_people_page(scope, "sent", older=cursor, per_page=3)
        assert [row.pk for row in page.rows] == newest and not page.newer
        assert page.problem == "That page could not be read: the first page is shown."
    assert not figure_people_page(scope, "sent", per_page=3).problem


@pytest.mark.parametrize("figure", ["sent", "failed_hard", "replied", "clicked", "unsubscribed"])
def test_a_page_of_people_is_read_newest_first_from_the_call_time_index_never_sorted(figure, traffic):
    if connection.vendor == "postgresql":
        # PostgreSQL weighs the index against a sort by its statistics, which a
        # test's few rows do not give (its plan at a million is in the README):
        # with sorts priced out of reach, the plan shows the index can serve the order.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")
    newest = figure_people(Scope("installation"), "sent").first()
    cursor = (newest.called_at, newest.pk)
    scope = Scope("message", traffic.first.pk)
    older = figure_calls(scope, figure, start=None, end=None, older=cursor).order_by("-called_at", "-pk")
    newer = figure_calls(scope, figure, start=None, end=None, newer=cursor).order_by("called_at", "pk")
    for rows in (older, newer):
        plan = query_plan(rows.values_list("called_at", "pk")[:51])
        assert any("run_result_called" in line for line in plan), plan
        assert not any("TEMP B-TREE" in line or "Sort" in line for line in plan), plan


def test_a_scope_whose_object_does_not_exist_is_refused():
    with pytest.raises(SmsMessage.DoesNotExist):
        figure_people(Scope("message", 123456), "sent")
    with pytest.raises(ValueError, match="unknown figure"):
        figure_people(Scope("installation"), "opened")


def test_figures_over_time_put_each_sms_in_the_hour_of_its_call_with_every_hour_present(traffic):
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=1)
    buckets = sms_figures_over_time(Scope("installation"), start=end - datetime.timedelta(hours=48), end=end)
    assert len(buckets) == 48
    assert sum((figures for _at, figures in buckets), SmsFigures()) == sms_figures(Scope("installation"))
    assert sum(figures.sent for _at, figures in buckets[-2:]) == 7  # the calls of a few seconds ago
    days = sms_figures_over_time(Scope("installation"), start=end - datetime.timedelta(days=30), end=end)
    assert 30 <= len(days) <= 31 and sum(f.sent for _at, f in days) == 7
