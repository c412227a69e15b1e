"""The Run now confirmations count read-only what a plan would give."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketing_activities.models import AudienceCount, CampaignRun, Outcome, SmartCampaign
from marketing_activities.runner import campaign_preview, run_create
from marketing_activities.runner.audience_counts import campaign_audience_counts
from marketing_activities.runner.count_jobs import audience_count_run
from marketing_activities.runner.planner import plan_step
from marketing_activities.runner.preview import PLANNED_LABELS
from smscampaigns.models import Lead
from tests.marketing_activities.factories import CommunicationLimitsFactory, MarketingSmsFactory
from tests.marketing_activities.test_runner_planner import campaign_with, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory

pytestmark = pytest.mark.django_db

EVERY_REASON = {
    Outcome.PLANNED_DRY_RUN,
    Outcome.SKIPPED_DUPLICATE_PHONE,
    Outcome.SKIPPED_ALREADY_RAN,
    Outcome.SKIPPED_BLOCKLISTED,
    Outcome.SKIPPED_MARKETING_SUSPENDED,
    Outcome.SKIPPED_NUMBER_BLOCKLISTED,
    Outcome.SKIPPED_NUMBER_SUSPENDED,
    Outcome.SKIPPED_NO_PHONE,
    Outcome.SKIPPED_NOT_SUBSCRIBED,
    Outcome.SKIPPED_ALREADY_SUBSCRIBED,
    Outcome.SKIPPED_ALREADY_PENDING,
    Outcome.SKIPPED_COMMUNICATION_LIMIT,
}


def a_world_with_every_reason(news):
    """A Send, a Subscribe and an Unsubscribe step under the rule "once",
    on people who between them meet every skip of the three."""
    campaign = campaign_with(
        "send",
        "subscribe",
        "unsubscribe",
        vibes_list=news,
        qualification=SmartCampaign.QualificationRule.ONCE,
    )
    ran_before = subscribed(news)
    earlier = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    plan_step(earlier.steps.get(position=0))
    CampaignRun.objects.filter(pk=earlier.pk).update(status=CampaignRun.Status.COMPLETED)

    winner = subscribed(news, mobile_phone="+12025550101")
    subscribed(news, mobile_phone=winner.mobile_phone)  # a duplicate
    subscribed(news, mobile_phone=ran_before.mobile_phone)  # the number of someone who ran before
    for flag in ("blocklisted", "marketing_suspended"):
        blocked = subscribed(news, **{flag: True})
        # Others on the blocked person's number, and one on the number of a blocked
        # person outside the smart list.
        subscribed(news, mobile_phone=blocked.mobile_phone)
        subscribed(news, mobile_phone=blocked.mobile_phone)
        LeadFactory(mobile_phone=blocked.mobile_phone)  # not subscribed: the number's skip all the same
        outsider = LeadFactory(country="SE", **{flag: True})
        subscribed(news, mobile_phone=outsider.mobile_phone)
    both = LeadFactory(blocklisted=True, marketing_suspended=True)
    subscribed(news, mobile_phone=both.mobile_phone)
    subscribed(news, mobile_phone="")
    # A number that had its marketing SMS of the day, and someone pending on it.
    CommunicationLimitsFactory(per_day=1)
    texted_today = subscribed(news)
    MarketingSmsFactory(result__lead=texted_today)
    SubscriptionFactory(
        vibes_list=news, status="pending", lead=LeadFactory(mobile_phone=texted_today.mobile_phone)
    )
    SubscriptionFactory(vibes_list=news, status="pending", lead=LeadFactory())
    SubscriptionFactory(vibes_list=news, status="unsubscribed", lead=LeadFactory())
    subscribed(VibesListFactory())  # another list's
    LeadFactory()  # no subscription at all
    LeadFactory(country="SE")  # outside the smart list
    return campaign


def test_the_read_only_counts_are_the_plans_counts_for_every_reason(news):
    campaign = a_world_with_every_reason(news)
    planned = campaign_preview(campaign=campaign, sample_size=0).steps
    counted = campaign_audience_counts(campaign=campaign)
    assert [step.counts for step in counted] == [step.counts for step in planned]
    assert [step.blockers for step in counted] == [step.blockers for step in planned]
    reasons = {outcome for step in counted for outcome, _n in step.outcome_counts()}
    assert reasons >= EVERY_REASON


def test_the_read_only_counts_are_the_plans_counts_when_nobody_ran_before(news):
    """Every time: the requirement of "once" is left out of the queries, the counts stay the plan's."""
    campaign = a_world_with_every_reason(news)
    SmartCampaign.objects.filter(pk=campaign.pk).update(
        qualification_rule=SmartCampaign.QualificationRule.EVERY_TIME
    )
    campaign.refresh_from_db()
    planned = campaign_preview(campaign=campaign, sample_size=0).steps
    counted = campaign_audience_counts(campaign=campaign)
    assert [step.counts for step in counted] == [step.counts for step in planned]
    assert [step.blockers for step in counted] == [step.blockers for step in planned]
    assert not any(Outcome.SKIPPED_ALREADY_RAN.code in step.counts for step in counted)


def test_counted_in_slices_of_people_the_counts_are_the_plans_and_their_progress_reaches_the_end(news):
    campaign = a_world_with_every_reason(news)
    planned = campaign_preview(campaign=campaign, sample_size=0).steps
    progress = []
    counted = campaign_audience_counts(
        campaign=campaign, progress=lambda done, total: progress.append((done, total)), chunk_people=3
    )
    assert [step.counts for step in counted] == [step.counts for step in planned]
    assert [step.blockers for step in counted] == [step.blockers for step in planned]
    # Several slices of people (the world has more than 3), each a step of the progress.
    done, totals = [d for d, _t in progress], {t for _d, t in progress}
    assert len(totals) == 1 and done == list(range(1, totals.pop() + 1))
    assert len(done) > 3 * len(planned) + 3


def test_the_read_only_counts_write_nothing(news):
    campaign = a_world_with_every_reason(news)
    runs = CampaignRun.objects.count()
    with CaptureQueriesContext(connection) as queries:
        campaign_audience_counts(campaign=campaign)
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in queries.captured_queries)
    assert not any("SAVEPOINT" in query["sql"].upper() for query in queries.captured_queries)
    assert CampaignRun.objects.count() == runs


def _confirmation_queries(client, campaign, query) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("marketing_activities:campaign_run_now", args=[campaign.pk]), query)
    assert response.status_code == 200
    assert "Yes, run now" in response.content.decode()
    return len(queries.captured_queries)


# The confirmation as it opens, and the request of its counts.
CONFIRMATION_REQUESTS = pytest.mark.parametrize("query", [{}, {"count": "exact"}], ids=["page", "counts"])


@CONFIRMATION_REQUESTS
def test_the_run_now_confirmations_queries_do_not_grow_with_the_people(staff_client, news, query):
    campaign = a_world_with_every_reason(news)
    _confirmation_queries(staff_client, campaign, query)  # the first request of a login saves its session
    few = _confirmation_queries(staff_client, campaign, query)
    for _ in range(3):
        a_world_with_every_reason(news)
    assert _confirmation_queries(staff_client, campaign, query) == few


def test_the_run_now_confirmation_reads_nobody_before_its_counts_are_asked_for(staff_client, news):
    campaign = a_world_with_every_reason(news)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(reverse("marketing_activities:campaign_run_now", args=[campaign.pk]))
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    assert not [query["sql"] for query in queries.captured_queries if lead_table in query["sql"]]


def _planned_labels(step) -> list:
    return [
        (str(PLANNED_LABELS[step.action]) if outcome == Outcome.PLANNED_DRY_RUN else str(outcome.label), n)
        for outcome, n in step.outcome_counts()
    ]


def test_the_counts_request_gives_the_plans_counts(
    staff_client, news, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_BACKGROUND = "inline"
    campaign = a_world_with_every_reason(news)
    planned = campaign_preview(campaign=campaign, sample_size=0)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.get(_run_now_url(campaign), {"count": "exact"}, headers=RUN_NOW_CARD)
    count = AudienceCount.objects.get(campaign=campaign)
    response = staff_client.get(_run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD)
    assert response.context["audience"] == planned.audience
    shown = [
        (step.number, [(str(label), n) for label, n, _b in step.counts])
        for step in response.context["preview_steps"]
    ]
    assert shown == [(step.number, _planned_labels(step)) for step in planned.steps]
    assert [[b for _l, _n, b in step.counts if b] for step in response.context["preview_steps"]] == [
        [b for b in step.blockers.values()] for step in planned.steps
    ]


@pytest.mark.parametrize("counts", [False, True], ids=["page", "counts"])
def test_the_admins_run_now_confirmation_queries_do_not_grow_with_the_people(admin_client, news, counts):
    campaign = a_world_with_every_reason(news)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            if counts:
                response = admin_client.get(
                    reverse("admin:marketing_activities_smartcampaign_run_now"),
                    {"_selected_action": [campaign.pk]},
                )
            else:
                response = admin_client.post(
                    reverse("admin:marketing_activities_smartcampaign_changelist"),
                    {"action": "run_now", "_selected_action": [campaign.pk]},
                )
        assert 'name="post" value="yes"' in response.content.decode()
        return len(captured.captured_queries)

    queries()  # the first request of a login saves its session
    few = queries()
    for _ in range(3):
        a_world_with_every_reason(news)
    assert queries() == few


# --- The counts in the background: the confirmation polls their progress ----------------------

RUN_NOW_CARD = {"HX-Request": "true", "HX-Target": "run-now"}


def _run_now_url(campaign) -> str:
    return reverse("marketing_activities:campaign_run_now", args=[campaign.pk])


def test_the_counts_request_starts_a_count_and_shows_its_progress_with_the_run_button_disabled(
    staff_client, news
):
    campaign = a_world_with_every_reason(news)
    html = staff_client.get(_run_now_url(campaign), {"count": "exact"}, headers=RUN_NOW_CARD).content.decode()
    count = AudienceCount.objects.get(campaign=campaign)
    assert count.result is None  # counted in the background, after this request
    assert '<progress max="100" value="0">0%</progress>' in html
    assert f'hx-get="{_run_now_url(campaign)}?counting={count.pk}" hx-trigger="load delay:1s"' in html
    assert f'<a href="{_run_now_url(campaign)}?counting={count.pk}">Counting them all… 0%</a>' in html
    assert '<button type="submit" class="button primary" disabled>Yes, run now</button>' in html


def test_the_confirmation_polls_the_counts_progress_then_shows_the_counts(staff_client, news):
    campaign = a_world_with_every_reason(news)
    staff_client.get(_run_now_url(campaign), {"count": "exact"}, headers=RUN_NOW_CARD)
    count = AudienceCount.objects.get(campaign=campaign)
    AudienceCount.objects.filter(pk=count.pk).update(done=3, total=4)
    polled = staff_client.get(_run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD)
    assert "Counting them all… 75%" in polled.content.decode()
    assert "people qualify" not in polled.content.decode()

    audience_count_run(count_id=count.pk)
    html = staff_client.get(
        _run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD
    ).content.decode()
    planned = campaign_preview(campaign=campaign, sample_size=0)
    assert f"{planned.audience} people qualify" in html
    assert "<progress" not in html and "hx-trigger" not in html  # the polling stops
    assert '<button type="submit" class="button primary">Yes, run now</button>' in html


def test_the_counts_progress_is_a_page_of_its_own_without_javascript(staff_client, news):
    campaign = a_world_with_every_reason(news)
    staff_client.get(_run_now_url(campaign), {"count": "exact"})
    count = AudienceCount.objects.get(campaign=campaign)
    html = staff_client.get(_run_now_url(campaign), {"counting": count.pk}).content.decode()
    assert "<html" in html and f'<a href="{_run_now_url(campaign)}?counting={count.pk}">' in html


def test_a_count_that_failed_says_so_and_offers_to_count_again(staff_client, news):
    campaign = a_world_with_every_reason(news)
    count = AudienceCount.objects.create(campaign=campaign, failed=True)
    html = staff_client.get(
        _run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD
    ).content.decode()
    assert "The people could not be counted." in html and "?count=exact" in html
    assert '<button type="submit" class="button primary" disabled>Yes, run now</button>' in html


def test_a_count_that_lost_its_worker_is_given_up_after_an_hour(staff_client, news, time_machine):
    campaign = a_world_with_every_reason(news)
    count = AudienceCount.objects.create(campaign=campaign, done=2, total=9)
    time_machine.move_to(timezone.now() + datetime.timedelta(minutes=59))
    html = staff_client.get(
        _run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD
    ).content.decode()
    assert "Counting them all… 22%" in html
    time_machine.move_to(timezone.now() + datetime.timedelta(minutes=2))
    html = staff_client.get(
        _run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD
    ).content.decode()
    assert "The people could not be counted." in html and "hx-trigger" not in html


def test_a_count_of_another_campaign_or_no_count_is_not_found(staff_client, news):
    campaign = a_world_with_every_reason(news)
    other = AudienceCount.objects.create(campaign=campaign_with("send", vibes_list=news))
    assert staff_client.get(_run_now_url(campaign), {"counting": other.pk}).status_code == 404
    assert staff_client.get(_run_now_url(campaign), {"counting": "x"}).status_code == 404


def test_the_smart_list_tabs_count_of_who_qualifies_is_not_run_nows_counts(staff_client, news):
    campaign = a_world_with_every_reason(news)
    people_only = AudienceCount.objects.create(campaign=campaign, definition=campaign.smart_list.definition)
    assert staff_client.get(_run_now_url(campaign), {"counting": people_only.pk}).status_code == 404


def test_counting_in_the_background_writes_only_its_progress_and_result(news):
    campaign = a_world_with_every_reason(news)
    count = AudienceCount.objects.create(campaign=campaign)
    runs = CampaignRun.objects.count()
    with CaptureQueriesContext(connection) as queries:
        audience_count_run(count_id=count.pk)
    table = connection.ops.quote_name(AudienceCount._meta.db_table)
    writes = [
        q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")
    ]
    assert writes and all(sql.lstrip().startswith(f"UPDATE {table}") for sql in writes)
    assert CampaignRun.objects.count() == runs
    count.refresh_from_db()
    assert count.finished_at and count.done == count.total > 0


def _poll_queries(client, campaign, count) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_run_now_url(campaign), {"counting": count.pk}, headers=RUN_NOW_CARD)
    assert response.status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("finished", [False, True], ids=["counting", "counted"])
def test_the_counts_poll_reads_nobody_and_its_queries_do_not_grow_with_the_people(
    staff_client, news, finished
):
    campaign = a_world_with_every_reason(news)
    count = AudienceCount.objects.create(campaign=campaign, done=1, total=9)
    if finished:
        audience_count_run(count_id=count.pk)
    _poll_queries(staff_client, campaign, count)  # the first request of a login saves its session
    few = _poll_queries(staff_client, campaign, count)
    for _ in range(3):
        a_world_with_every_reason(news)
    with CaptureQueriesContext(connection) as queries:
        assert _poll_queries(staff_client, campaign, count) == few
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    assert not [query["sql"] for query in queries.captured_queries if lead_table in query["sql"]]


@pytest.mark.parametrize("finished", [False, True], ids=["counting", "counted"])
def test_the_admins_counts_poll_reads_nobody_and_its_queries_do_not_grow_with_the_people(
    admin_client, news, finished
):
    campaign = a_world_with_every_reason(news)
    count = AudienceCount.objects.create(campaign=campaign, done=1, total=9)
    if finished:
        audience_count_run(count_id=count.pk)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(
                reverse("admin:marketing_activities_smartcampaign_run_now_progress"),
                {"_selected_action": [campaign.pk], "counting": [count.pk]},
                headers={"HX-Request": "true"},
            )
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="run-now-previews"')
        assert ("people qualify" in html) == finished and ("Counting them all… 11%" in html) != finished
        return captured

    queries()  # the first request of a login saves its session
    few = len(queries().captured_queries)
    for _ in range(3):
        a_world_with_every_reason(news)
    captured = queries()
    assert len(captured.captured_queries) == few
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    assert not [query["sql"] for query in captured.captured_queries if lead_table in query["sql"]]
