"""The Results tab: runs, live progress with polling, counts per step, the people behind them, CSV."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.formats import date_format

from marketing_activities.forms import ResultsFilterForm
from marketing_activities.models import CampaignRun, Outcome, RunResult, SmsReply
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from marketing_activities.views.results import filtered_results
from smscampaigns.models import Lead
from tests.marketing_activities.factories import (
    CampaignRunFactory,
    FlowStepFactory,
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    SmsReplyFactory,
)
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.query_plans import query_plan
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def planned(run):
    """Record each step's id range, as the planner does after writing its rows."""
    for step in run.steps.all():
        ids = list(RunResult.objects.filter(run_step=step).values_list("pk", flat=True))
        if ids:
            step.first_result_id, step.last_result_id = min(ids), max(ids)
            step.save(update_fields=["first_result_id", "last_result_id"])
    return run


@pytest.fixture
def finished_run():
    """A completed run: step 1 sent to Ann and skipped Bob (he shares Ann's number), step 2 failed Cid."""
    run = CampaignRunFactory(
        status=CampaignRun.Status.COMPLETED, audience=3, progress_done=2, progress_total=2
    )
    send = RunStepFactory(run=run, position=0, counts={"sent": 1, "skipped_duplicate_phone": 1})
    unsubscribe = RunStepFactory(run=run, position=1, action="unsubscribe_vibes_list", counts={"failed": 1})
    ann = LeadFactory(
        first_name="Ann", last_name="Able", email="ann@example.com", mobile_phone="+12025550101"
    )
    bob = LeadFactory(
        first_name="Bob", last_name="Baker", email="bob@example.com", mobile_phone="+12025550101"
    )
    cid = LeadFactory(
        first_name="Cid", last_name="Cole", email="cid@example.com", mobile_phone="+12025550199"
    )
    RunResultFactory(run_step=send, lead=ann, outcome=Outcome.SENT)
    RunResultFactory(
        run_step=send,
        lead=bob,
        outcome=Outcome.SKIPPED_DUPLICATE_PHONE,
        duplicate_of=ann,
        detail="Same number as Ann",
    )
    RunResultFactory(
        run_step=unsubscribe,
        lead=cid,
        outcome=Outcome.FAILED,
        error_code="server_error",
        detail="=HYPERLINK()",
    )
    return planned(run)


def results_url(run, **params):
    query = "&".join(f"{k}={v}" for k, v in {"run": run.pk, **params}.items())
    return url("campaign_results", run.campaign.pk) + "?" + query


def test_a_campaign_without_runs_says_so(staff_client):
    html = staff_client.get(url("campaign_results", SmartCampaignFactory().pk)).content.decode()
    assert "No runs yet" in html


def test_results_show_the_latest_run_with_counts_as_bars(staff_client, finished_run):
    html = staff_client.get(url("campaign_results", finished_run.campaign.pk)).content.decode()
    assert "<html" in html
    assert f"Run {finished_run.pk}" in html
    assert 'data-outcome="sent"' in html and 'data-outcome="skipped_duplicate_phone"' in html
    assert "Skipped: shares a number with another person" in html
    assert 'style="width: 50.0%"' in html  # 1 of the step's 2 people


def test_results_answer_htmx_with_the_tab_panel(staff_client, finished_run):
    response = staff_client.get(
        url("campaign_results", finished_run.campaign.pk), headers={**HTMX, "HX-Target": "tab-panel"}
    )
    assert b"<html" not in response.content
    assert response.content.lstrip().startswith(b'<section id="tab-panel"')


def test_a_run_of_another_campaign_is_not_found(staff_client, finished_run):
    other = SmartCampaignFactory()
    assert staff_client.get(url("campaign_results", other.pk) + f"?run={finished_run.pk}").status_code == 404
    assert staff_client.get(url("campaign_results", other.pk) + "?run=abc").status_code == 404
    assert staff_client.get(url("campaign_results", finished_run.campaign.pk) + "?step=x").status_code == 404


def test_an_active_run_polls_every_second(staff_client):
    run = CampaignRunFactory(status=CampaignRun.Status.RUNNING, progress_done=30, progress_total=120)
    html = staff_client.get(url("campaign_results", run.campaign.pk)).content.decode()
    detail = html[html.index('id="run-detail"') :].split(">")[0]
    assert 'hx-trigger="every 1s"' in detail
    assert 'aria-valuenow="25"' in html and "width: 25%" in html


def test_polling_an_active_run_returns_its_progress(staff_client):
    run = CampaignRunFactory(status=CampaignRun.Status.QUEUED)
    response = staff_client.get(results_url(run), headers={**HTMX, "HX-Target": "run-detail"})
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<section id="run-detail"')
    assert b'hx-trigger="every 1s"' in response.content


def test_polling_a_finished_run_stops_the_polling_with_286(staff_client, finished_run):
    response = staff_client.get(results_url(finished_run), headers={**HTMX, "HX-Target": "run-detail"})
    html = response.content.decode()
    assert response.status_code == 286
    assert 'id="run-detail"' in html and "every 1s" not in html
    assert 'data-outcome="sent"' in html
    assert f'href="{url("campaign_results", finished_run.campaign.pk)}?run=' in html
    # The list of runs comes along out of band, showing the run as finished.
    assert '<section id="runs" class="card" hx-swap-oob="true">' in html
    assert "Completed" in html.split('id="runs"')[1]
    # So do the people: a list first shown while the run was planning was empty.
    assert '<section id="run-people" class="card run-people" hx-swap-oob="true">' in html
    assert "Nobody matches these filters." not in html


def test_the_page_itself_has_no_out_of_band_copy(staff_client, finished_run):
    html = staff_client.get(results_url(finished_run)).content.decode()
    assert html.count('id="runs"') == 1 and "hx-swap-oob" not in html


def test_clicking_a_count_lists_the_people_behind_it(staff_client, finished_run):
    response = staff_client.get(
        results_url(finished_run, step=0, outcome="skipped_duplicate_phone"),
        headers={**HTMX, "HX-Target": "run-people"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="run-people"')
    assert "Bob Baker" in html and "Ann Able" in html  # Bob, sent to Ann instead
    assert "Same number as Ann" in html
    assert "Cid" not in html


def test_people_can_be_searched_by_name_email_or_number(staff_client, finished_run):
    def people(q):
        return staff_client.get(
            results_url(finished_run, q=q), headers={**HTMX, "HX-Target": "run-people"}
        ).content.decode()

    assert "Cid Cole" in people("cole") and "Ann Able" not in people("cole")
    assert "Bob Baker" in people("bob@example") and "Cid Cole" not in people("bob@example")
    found = people("555-0199")
    assert "Cid Cole" in found and "Ann Able" not in found


def test_people_are_paginated(staff_client):
    step = RunStepFactory(counts={"sent": 30})
    RunResultFactory.create_batch(30, run_step=step)
    planned(step.run)
    html = staff_client.get(
        results_url(step.run, page=2), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert "Page 2 of 2 · 30 rows" in html
    assert html.count("<tr>") == 1 + 5  # header + the last five


def test_an_unknown_outcome_filter_lists_everyone(staff_client, finished_run):
    html = staff_client.get(results_url(finished_run, outcome="teleported")).content.decode()
    assert "Ann Able" in html and "Cid Cole" in html


def test_results_take_the_same_queries_whatever_the_number_of_rows(
    staff_client, django_assert_max_num_queries
):
    step = RunStepFactory(counts={"sent": 40})
    RunResultFactory.create_batch(40, run_step=step, duplicate_of=LeadFactory())
    planned(step.run)
    with django_assert_max_num_queries(10):
        staff_client.get(results_url(step.run), headers={**HTMX, "HX-Target": "tab-panel"})


def test_the_csv_export_streams_the_filtered_rows(staff_client, finished_run):
    response = staff_client.get(
        url("campaign_results_export", finished_run.campaign.pk) + f"?run={finished_run.pk}&step=0"
    )
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["step", "lead id", "first name"]
    assert [row[2] for row in rows[1:]] == ["Ann", "Bob"]
    bob = rows[2]
    assert bob[5] == "+12025550101"  # numbers stay numbers
    assert bob[6] == "skipped_duplicate_phone"
    assert bob[11] == "Ann Able"


def test_the_csv_export_defuses_formulas(staff_client, finished_run):
    response = staff_client.get(
        url("campaign_results_export", finished_run.campaign.pk) + f"?run={finished_run.pk}&outcome=failed"
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][8] == "'=HYPERLINK()"


def test_results_of_a_step_not_yet_planned_are_empty(staff_client):
    step = RunStepFactory(counts={})
    RunResultFactory(run_step=step)  # written, but the step's range is not recorded yet
    html = staff_client.get(
        results_url(step.run), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert "Nobody matches these filters." in html


def test_only_rows_inside_a_steps_id_range_are_listed(staff_client, finished_run):
    send = finished_run.steps.get(position=0)
    stray = RunResultFactory(run_step=send, lead=LeadFactory(first_name="Stray"))  # after the range
    assert stray.pk > send.last_result_id
    html = staff_client.get(
        results_url(finished_run), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert "Stray" not in html and "Ann Able" in html


def test_the_csv_export_needs_a_run(staff_client):
    assert staff_client.get(url("campaign_results_export", SmartCampaignFactory().pk)).status_code == 404


def test_non_staff_cannot_export(clerk_client, finished_run):
    assert clerk_client.get(url("campaign_results_export", finished_run.campaign.pk)).status_code == 403


# --- R4 and issue 11: who blocked a number, and skipped people's numbers --------------------


@pytest.fixture
def planned_run():
    """A real plan (nothing called): Sue is texted; Tom shares Eve's number and Eve is
    blocklisted; Una is not on the Vibes list; Val has no number."""
    step = FlowStepFactory(campaign__qualification_rule="every_time")
    people = {
        "Sue": ("+12025550301", {}),
        "Tom": ("+12025550302", {}),
        "Eve": ("+12025550302", {"blocklisted": True, "country": "SE"}),  # outside the smart list
        "Una": ("+12025550303", {}),
        "Val": ("", {}),
    }
    for name, (phone, fields) in people.items():
        lead = LeadFactory(
            first_name=name,
            last_name="Test",
            email=f"{name.lower()}@example.com",
            mobile_phone=phone,
            **fields,
        )
        if name != "Una":
            SubscriptionFactory(lead=lead, vibes_list=step.vibes_list)
    run = run_create(campaign=step.campaign, trigger=CampaignRun.Trigger.COMMAND)
    plan_step(run.steps.get())
    return run


def test_results_name_the_blocked_person_a_skip_comes_from(staff_client, planned_run):
    html = staff_client.get(
        results_url(planned_run, outcome="skipped_number_blocklisted"),
        headers={**HTMX, "HX-Target": "run-people"},
    ).content.decode()
    assert "Number blocked by" in html
    assert "Skipped: number shared with a blocklisted person" in html
    assert "Tom Test" in html and "Eve Test" in html  # Tom, because of Eve
    assert "+12025550302" in html


def test_results_show_the_number_of_every_skipped_person_who_has_one(staff_client, planned_run):
    html = staff_client.get(
        results_url(planned_run), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    for number in ("+12025550301", "+12025550302", "+12025550303"):
        assert number in html
    found = staff_client.get(
        results_url(planned_run, q="555-0303"), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert "Una Test" in found and "Sue Test" not in found  # a skipped person is found by number


def test_the_csv_export_has_skipped_peoples_numbers_and_who_blocked_a_number(staff_client, planned_run):
    response = staff_client.get(
        url("campaign_results_export", planned_run.campaign.pk) + f"?run={planned_run.pk}"
    )
    header, *rows = csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
    blocker_id, blocker = header.index("number blocked by (lead id)"), header.index("number blocked by")
    assert blocker == blocker_id + 1
    by_name = {row[2]: row for row in rows}
    eve = Lead.objects.get(first_name="Eve")
    assert {name: (row[5], row[6], row[blocker_id], row[blocker]) for name, row in by_name.items()} == {
        "Sue": ("+12025550301", "queued", "", ""),
        "Tom": ("+12025550302", "skipped_number_blocklisted", str(eve.pk), "Eve Test"),
        "Una": ("+12025550303", "skipped_not_subscribed", "", ""),
        "Val": ("", "skipped_no_phone", "", ""),
    }


# --- Replies --------------------------------------------------------------------------------------


@pytest.fixture
def replied_run(finished_run):
    """Ann (step 1's SMS) replied twice; step 2 unsubscribed Cid, which is no SMS."""
    ann_sms = finished_run.steps.get(position=0).results().get(outcome=Outcome.SENT)
    for minute, text in ((1, "What time do you open?"), (2, '=HYPERLINK("x")')):
        SmsReplyFactory(
            result=ann_sms,
            message__text=text,
            message__occurred_at=datetime(2026, 11, 20, 9, minute, tzinfo=UTC),
        )
    return finished_run


def test_a_send_step_counts_the_people_who_replied_and_shows_their_texts(staff_client, replied_run):
    html = staff_client.get(results_url(replied_run)).content.decode()
    send, unsubscribe = html.split('class="step-result"')[1:3]
    assert 'data-replied="1"' in send and "1 person replied" in send  # one person, two replies
    assert "data-replied" not in unsubscribe
    ann_row = next(row for row in html.split("<tr>") if "Ann Able" in row)
    assert "“What time do you open?”" in ann_row
    bob_row = next(row for row in html.split("<tr>") if "Bob Baker" in row)
    assert "What time do you open?" not in bob_row


def test_a_send_step_without_replies_says_nobody_replied(staff_client, finished_run):
    html = staff_client.get(results_url(finished_run)).content.decode()
    assert 'data-replied="0"' in html and "Nobody has replied yet." in html


def test_the_replied_filter_lists_only_the_people_who_replied(staff_client, replied_run):
    html = staff_client.get(
        results_url(replied_run, step=0, replied=1), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert "Ann Able" in html and "Bob Baker" not in html and "Cid Cole" not in html
    assert '<input type="checkbox" name="replied" id="id_replied" checked>' in html


def test_results_with_replies_take_the_same_queries_whatever_the_number_of_rows(
    staff_client, django_assert_max_num_queries
):
    step = RunStepFactory(counts={"sent": 40})
    for result in RunResultFactory.create_batch(40, run_step=step, duplicate_of=LeadFactory()):
        SmsReplyFactory(result=result)
    planned(step.run)
    with django_assert_max_num_queries(10):
        staff_client.get(results_url(step.run), headers={**HTMX, "HX-Target": "tab-panel"})


def test_the_csv_export_carries_the_replies_with_formulas_defused(staff_client, replied_run):
    response = staff_client.get(
        url("campaign_results_export", replied_run.campaign.pk) + f"?run={replied_run.pk}&step=0"
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["first name"], row["replies"], row["reply text"]) for row in rows] == [
        ("Ann", "2", 'What time do you open?\n=HYPERLINK("x")'),
        ("Bob", "0", ""),
    ]
    # A reply is anyone's text: one that starts the cell as a formula is defused.
    first_reply = SmsReply.objects.order_by("message__occurred_at").first().message
    first_reply.text = "=cmd|' /C calc'!A0"
    first_reply.save()
    response = staff_client.get(
        url("campaign_results_export", replied_run.campaign.pk) + f"?run={replied_run.pk}&replied=1"
    )
    [ann] = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert ann["reply text"].startswith("'=cmd")


def test_a_person_who_replied_many_times_shows_five_replies_and_how_many_more(staff_client, finished_run):
    ann_sms = finished_run.steps.get(position=0).results().get(outcome=Outcome.SENT)
    for minute in range(8):
        SmsReplyFactory(
            result=ann_sms,
            message__text=f"reply {minute}",
            message__occurred_at=datetime(2026, 11, 20, 9, minute, tzinfo=UTC),
        )
    html = staff_client.get(
        results_url(finished_run), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()
    assert [f"reply {n}" in html for n in range(8)] == [True] * 5 + [False] * 3
    assert "and 3 more" in html


# --- Issue 13: outcomes that follow Vibes' events, and when they changed --------------------------


def test_each_row_shows_when_its_outcome_changed_and_the_receipts_word_when_it_adds_one(staff_client):
    step = RunStepFactory(counts={"delivered": 1, "sent": 1, "skipped_no_phone": 1})
    changed = timezone.now().replace(year=2026, month=11, day=3, hour=9, minute=41)
    RunResultFactory(
        run_step=step, outcome=Outcome.DELIVERED, delivery_status="delivered", updated_at=changed
    )
    RunResultFactory(run_step=step, outcome=Outcome.SENT, delivery_status="accepted", updated_at=changed)
    RunResultFactory(run_step=step, outcome=Outcome.SKIPPED_NO_PHONE, lead__mobile_phone="")
    planned(step.run)
    step.refresh_from_db()
    step.planned_at = changed.replace(hour=8)
    step.save(update_fields=["planned_at"])
    html = staff_client.get(results_url(step.run), headers={**HTMX, "HX-Target": "run-people"}).content
    cells = html.decode()
    assert cells.count(date_format(timezone.localtime(changed), "SHORT_DATETIME_FORMAT")) == 2
    # A row unchanged since planning: the time it was planned.
    assert date_format(timezone.localtime(step.planned_at), "SHORT_DATETIME_FORMAT") in cells
    assert '<div class="muted small">accepted</div>' in cells
    assert '<div class="muted small">delivered</div>' not in cells  # the outcome says it already


# --- At scale: pages numbered from the step counts, searches through the leads' indexes ----------


def people_html(client, run, **params):
    return client.get(
        results_url(run, **params), headers={**HTMX, "HX-Target": "run-people"}
    ).content.decode()


def test_results_pages_are_numbered_from_the_step_counts_without_counting_the_rows(staff_client):
    step = RunStepFactory(counts={"sent": 20, "failed": 10})
    RunResultFactory.create_batch(20, run_step=step, outcome=Outcome.SENT)
    RunResultFactory.create_batch(10, run_step=step, outcome=Outcome.FAILED)
    planned(step.run)
    with CaptureQueriesContext(connection) as queries:
        everyone = people_html(staff_client, step.run, page=2)
        failed = people_html(staff_client, step.run, outcome="failed")
    assert "Page 2 of 2 · 30 rows" in everyone
    assert "10 rows" in failed
    run_rows = '"marketing_activities_runresult"'
    counted = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert not [sql for sql in counted if run_rows in sql]  # the replies' count reads its own index


def test_a_searchs_pages_say_whether_more_follow_and_its_last_page_how_many_there_were(staff_client):
    step = RunStepFactory(counts={"sent": 30})
    for n in range(30):
        RunResultFactory(run_step=step, lead=LeadFactory(first_name="Zelda", last_name=f"Number {n}"))
    planned(step.run)
    first = people_html(staff_client, step.run, q="zel")
    assert "Page 1 · more rows follow" in first and "page=2" in first
    last = people_html(staff_client, step.run, q="zel", page=2)
    assert "Page 2 of 2 · 30 rows" in last
    assert "Page 1 · more rows follow" not in last


def test_results_are_searched_by_the_beginning_of_a_name_or_email_and_a_whole_number_in_any_spelling(
    staff_client, finished_run
):
    assert "Ann Able" in people_html(staff_client, finished_run, q="ab")
    assert "Ann Able" not in people_html(staff_client, finished_run, q="ble")  # not inside a name
    assert "Cid Cole" in people_html(staff_client, finished_run, q="CID@")
    whole = people_html(staff_client, finished_run, q="202.555.0199")
    assert "Cid Cole" in whole and "Ann Able" not in whole


def _results_queries(client, run, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(results_url(run, **params)).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize(
    "params",
    [{}, {"page": "2"}, {"outcome": "sent"}, {"q": "zel"}, {"q": "+12025550123"}, {"q": "555"}],
    ids=["all", "page 2", "by outcome", "by name", "by number", "by part of a number"],
)
def test_the_results_queries_do_not_grow_with_the_rows(staff_client, params):
    step = RunStepFactory(counts={})

    def add(people):
        for _ in range(people):
            lead = LeadFactory(first_name="Zelda", mobile_phone="+12025550123")
            RunResultFactory(run_step=step, lead=lead, outcome=Outcome.SENT, phone=lead.mobile_phone)
        step.counts = {"sent": RunResult.objects.filter(run_step=step).count()}
        step.save(update_fields=["counts"])
        planned(step.run)

    add(60)
    _results_queries(staff_client, step.run, **params)  # the first request of a login saves its session
    few = _results_queries(staff_client, step.run, **params)
    add(120)
    assert _results_queries(staff_client, step.run, **params) == few


def test_a_search_finding_many_people_finds_the_same_rows(staff_client, monkeypatch):
    step = RunStepFactory(counts={"sent": 4})
    for first_name in ("Zed", "Zoe", "Zara", "Ann"):
        RunResultFactory(run_step=step, lead=LeadFactory(first_name=first_name, last_name="Test"))
    planned(step.run)
    few = people_html(staff_client, step.run, q="z")
    monkeypatch.setattr("marketing_activities.views.results.SEARCHED_PEOPLE", 2)
    many = people_html(staff_client, step.run, q="z")
    assert "Zed Test" in few and "Zoe Test" in few and "Zara Test" in few and "Ann Test" not in few
    assert many == few


def test_a_search_the_planner_expects_to_find_many_people_reads_none_of_their_ids_first(
    staff_client, monkeypatch
):
    """At ten million people a common name's first thousand ids took 78 ms to read
    only to learn that they were many: PostgreSQL's estimate tells it at once."""
    monkeypatch.setattr("marketing_activities.views.results.SEARCHED_PEOPLE", 2)
    step = RunStepFactory(counts={"sent": 40})
    for first_name in ["Zed"] * 30 + ["Ann"] * 10:
        RunResultFactory(run_step=step, lead=LeadFactory(first_name=first_name, last_name="Test"))
    planned(step.run)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE smscampaigns_lead")
    with CaptureQueriesContext(connection) as queries:
        html = people_html(staff_client, step.run, q="zed")
    assert html.count("Zed Test") == 25 and "Ann Test" not in html
    ids_read = [q["sql"] for q in queries if q["sql"].startswith('SELECT "smscampaigns_lead"."id"')]
    assert bool(ids_read) == (connection.vendor != "postgresql")


@pytest.mark.parametrize(
    ("params", "serial"), [({"q": "zed"}, True), ({}, False), ({"outcome": "sent"}, False)]
)
def test_a_searchs_page_is_read_without_parallel_workers(staff_client, params, serial):
    """PostgreSQL planned two workers to find a common name's 26 rows, ten times
    slower than one process; the other pages plan none anyway."""
    step = RunStepFactory(counts={"sent": 2})
    RunResultFactory(run_step=step, lead=LeadFactory(first_name="Zed"), outcome=Outcome.SENT)
    RunResultFactory(run_step=step, lead=LeadFactory(first_name="Ann"), outcome=Outcome.SENT)
    planned(step.run)
    with CaptureQueriesContext(connection) as queries:
        assert "Zed" in people_html(staff_client, step.run, **params)
    set_serial = [q for q in queries if "max_parallel_workers_per_gather = 0" in q["sql"]]
    assert bool(set_serial) == (serial and connection.vendor == "postgresql")


@pytest.mark.parametrize(
    "term", ["Quennell", "+12025550123", "202.555.0123"], ids=["name", "number", "spelt"]
)
def test_a_search_reads_its_peoples_rows_through_the_index_not_the_run(term):
    """A name or a number few people have: their rows come through the index on
    (run step, lead), never a scan of the run (ten million rows at scale)."""
    step = RunStepFactory(counts={"sent": 3})
    for _ in range(3):
        RunResultFactory(run_step=step, outcome=Outcome.SENT)
    person = LeadFactory(last_name="Quennell", mobile_phone="+12025550123")
    RunResultFactory(run_step=step, lead=person, outcome=Outcome.SKIPPED_NOT_SUBSCRIBED)
    planned(step.run)
    step.refresh_from_db()
    found = filtered_results([step], "", ResultsFilterForm({"q": term})).order_by("pk")
    assert [row.lead_id for row in found] == [person.pk]
    if connection.vendor == "sqlite":
        # PostgreSQL weighs the index against reading the step's ids in order by its
        # statistics, which a test's few rows do not give: its plan at ten million
        # (the index, 1 ms) is in the README's scale benchmark.
        assert any("run_result_step_lead" in line for line in query_plan(found.all()[:26]))
