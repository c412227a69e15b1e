"""Quiet hours in the recipient's local time (issue 17): an SMS whose window
is closed at its call is deferred, not sent, and goes when the window opens;
the rest of the run goes on meanwhile."""

import datetime
import threading
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing_activities.models import (
    CampaignRun,
    Outcome,
    QuietHours,
    QuietHoursCountry,
    RunResult,
    RunStep,
)
from marketing_activities.quiet_hours import Window, opens_at, quiet_hours_closed
from marketing_activities.runner import run_abort, run_create, run_execute
from marketing_activities.runner.deferral import quiet_hours_defer, quiet_hours_release_due
from marketing_activities.runner.planner import count_outcomes, plan_step
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.activities import activities_record
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.test_triggers import _subscribed, welcome_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE

UTC = datetime.UTC
LOS_ANGELES = zoneinfo.ZoneInfo("America/Los_Angeles")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
LA_NUMBER = "+12135550100"  # area code 213: Los Angeles
NY_NUMBER = "+12125550100"  # area code 212: New York
# 06:30 in Los Angeles, 09:30 in New York (summer time in both).
LA_MORNING = datetime.datetime(2026, 6, 15, 6, 30, tzinfo=LOS_ANGELES)
LA_OPENS = datetime.datetime(2026, 6, 15, 8, 0, tzinfo=LOS_ANGELES)
DEFAULT = Window(datetime.time(8), datetime.time(21))


@pytest.fixture(autouse=True)
def quiet_hours_on(settings):
    settings.QUIET_HOURS_ENABLED = True


def texted(simulator) -> list[str]:
    return sorted(message["to"] for message in simulator.messages())


def recount(run):
    return {
        step.pk: count_outcomes(step.pk, step.first_result_id, step.last_result_id)
        for step in run.steps.all()
    }


def stored_counts(run):
    return {step.pk: {code: n for code, n in step.counts.items() if n} for step in run.steps.all()}


def result_of(run, phone) -> RunResult:
    return run.steps.get(position=0).results().get(phone=phone)


# --- When the window is open ----------------------------------------------------------------------


def test_a_recipient_at_22_local_is_deferred_to_08_the_next_day():
    at = datetime.datetime(2026, 6, 15, 22, 0, tzinfo=LOS_ANGELES)
    assert opens_at(zones=("America/Los_Angeles",), window=DEFAULT, at=at) == datetime.datetime(
        2026, 6, 16, 8, 0, tzinfo=LOS_ANGELES
    )


def test_the_window_is_open_from_its_start_until_just_before_its_end():
    zones = ("America/Los_Angeles",)
    assert opens_at(zones=zones, window=DEFAULT, at=LA_OPENS) is None
    assert opens_at(zones=zones, window=DEFAULT, at=LA_OPENS.replace(hour=20, minute=59)) is None
    assert opens_at(zones=zones, window=DEFAULT, at=LA_OPENS.replace(hour=21)) is not None


def test_a_number_in_several_zones_is_texted_only_when_the_window_is_open_in_all():
    # 08:00 in Boise (Mountain) is 07:00 in Los Angeles: wait for Los Angeles.
    at = datetime.datetime(2026, 6, 15, 8, 0, tzinfo=zoneinfo.ZoneInfo("America/Boise"))
    opening = opens_at(zones=("America/Boise", "America/Los_Angeles"), window=DEFAULT, at=at)
    assert opening == LA_OPENS
    # 20:30 in Los Angeles is 21:30 in Boise: closed until Boise's morning.
    evening = datetime.datetime(2026, 6, 15, 20, 30, tzinfo=LOS_ANGELES)
    opening = opens_at(zones=("America/Boise", "America/Los_Angeles"), window=DEFAULT, at=evening)
    assert opening == datetime.datetime(2026, 6, 16, 8, 0, tzinfo=LOS_ANGELES)


@pytest.mark.django_db
def test_the_zone_comes_from_the_number_when_the_lead_has_none():
    lead = LeadFactory(mobile_phone=LA_NUMBER)
    assert quiet_hours_closed(lead=lead, number=LA_NUMBER, at=LA_MORNING) == LA_OPENS
    assert quiet_hours_closed(lead=None, number=NY_NUMBER, at=LA_MORNING) is None


@pytest.mark.django_db
def test_the_leads_time_zone_field_wins_over_the_number():
    """A New York number whose person lives in Los Angeles waits for Los Angeles' morning."""
    lead = LeadFactory(mobile_phone=NY_NUMBER, time_zone="America/Los_Angeles")
    assert quiet_hours_closed(lead=lead, number=NY_NUMBER, at=LA_MORNING) == LA_OPENS


@pytest.mark.django_db
def test_a_country_has_its_own_window():
    settings_row = QuietHours.load()
    settings_row.save()
    QuietHoursCountry.objects.create(
        quiet_hours=settings_row, country="DE", start=datetime.time(10), end=datetime.time(18)
    )
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    nine = datetime.datetime(2026, 6, 15, 9, 0, tzinfo=berlin)
    assert quiet_hours_closed(lead=None, number="+4915112345678", at=nine) == nine.replace(hour=10)
    # Sweden keeps the installation's window: 09:00 is open there.
    assert quiet_hours_closed(lead=None, number="+46701234567", at=nine) is None


@pytest.mark.django_db
def test_the_default_window_holds_until_an_administrator_turns_quiet_hours_off():
    assert not QuietHours.objects.exists()
    assert quiet_hours_closed(lead=None, number=LA_NUMBER, at=LA_MORNING) == LA_OPENS
    QuietHours(enabled=False).save()
    assert quiet_hours_closed(lead=None, number=LA_NUMBER, at=LA_MORNING) is None


# --- What is refused, and said so -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_time_zone_that_does_not_exist_is_refused_with_its_name():
    lead = LeadFactory.build(mobile_phone=LA_NUMBER, time_zone="America/Springfield")
    with pytest.raises(ValidationError) as refused:
        lead.full_clean(exclude=["email"])
    assert "“America/Springfield” is not a time zone" in str(refused.value.message_dict["time_zone"])


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValidationError) as refused:
        QuietHours(start=datetime.time(21), end=datetime.time(8)).clean()
    assert "must end after it starts (21:00–08:00)" in str(refused.value.message_dict["end"])


def test_a_country_window_needs_a_country_code():
    with pytest.raises(ValidationError) as refused:
        QuietHoursCountry(country="Germany", start=datetime.time(9), end=datetime.time(18)).clean()
    assert "is not a country code" in str(refused.value.message_dict["country"])


# --- A run ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_los_angeles_at_0630_is_deferred_while_new_york_is_sent_and_it_goes_at_0800(news, vibes_simulator):
    subscribed(news, first_name="Ann", mobile_phone=LA_NUMBER, country="US")
    subscribed(news, first_name="Ned", mobile_phone=NY_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
        run = run_execute(run=run, client=make_client(vibes_simulator.url))
        assert texted(vibes_simulator) == [NY_NUMBER]
        assert run.status == CampaignRun.Status.RUNNING  # it waits for Los Angeles
        deferred = result_of(run, LA_NUMBER)
        assert deferred.outcome == Outcome.DEFERRED_QUIET_HOURS
        assert deferred.not_before == LA_OPENS
        assert stored_counts(run) == recount(run)
        assert run.steps.get().counts["deferred_quiet_hours"] == 1
    with time_machine.travel(LA_OPENS - datetime.timedelta(minutes=1), tick=False):
        call_command("run_due_campaigns")
        assert texted(vibes_simulator) == [NY_NUMBER]
    with time_machine.travel(LA_OPENS, tick=True):
        call_command("run_due_campaigns")
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == [NY_NUMBER, LA_NUMBER]
    assert result_of(run, LA_NUMBER).outcome == Outcome.SENT
    assert stored_counts(run) == recount(run)


@pytest.mark.django_db(transaction=True)
def test_a_recipient_at_22_local_is_sent_at_08_the_next_day(news, vibes_simulator):
    subscribed(news, mobile_phone=LA_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    ten_pm = datetime.datetime(2026, 6, 15, 22, 0, tzinfo=LOS_ANGELES)
    next_morning = datetime.datetime(2026, 6, 16, 8, 0, tzinfo=LOS_ANGELES)
    with time_machine.travel(ten_pm, tick=True):
        run = run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
    assert result_of(run, LA_NUMBER).not_before == next_morning
    with time_machine.travel(next_morning, tick=True):
        call_command("run_due_campaigns")
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == [LA_NUMBER]


@pytest.mark.django_db(transaction=True)
def test_run_campaign_says_the_run_waits_for_quiet_hours_and_exits_0(news, vibes_simulator, capsys):
    subscribed(news, mobile_phone=LA_NUMBER, country="US")
    subscribed(news, mobile_phone=NY_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        call_command("run_campaign", campaign.pk, verbosity=0)
    out = capsys.readouterr().out
    header, send = out.splitlines()[0], out.splitlines()[2]
    assert "deferred: quiet hours" in header
    assert send.split()[-3:] == ["1", "0", "2"]  # deferred, skipped, total
    assert "waits for quiet hours: 1 SMS deferred" in out


@pytest.mark.django_db(transaction=True)
def test_the_step_after_a_send_waits_for_the_deferred_people(news, vibes_simulator):
    """A run's steps go in order for everyone: the next step starts once the
    Send step's deferred rows went."""
    subscribed(news, mobile_phone=LA_NUMBER, country="US")
    campaign = make_campaign(("send", news), ("unsubscribe", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run = run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
        assert run.steps.get(position=1).status == RunStep.Status.PENDING
    with time_machine.travel(LA_OPENS, tick=True):
        call_command("run_due_campaigns")
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert list(run.steps.order_by("position").values_list("status", flat=True)) == ["done", "done"]


@pytest.mark.django_db(transaction=True)
def test_blocks_are_checked_again_when_a_deferred_sms_goes(news, vibes_simulator):
    lead = subscribed(news, mobile_phone=LA_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run = run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
    lead.blocklisted = True
    lead.save()
    with time_machine.travel(LA_OPENS, tick=True):
        call_command("run_due_campaigns")
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == []
    assert result_of(run, LA_NUMBER).outcome == Outcome.SKIPPED_BLOCKLISTED


@pytest.mark.django_db(transaction=True)
def test_an_abort_cancels_the_deferred_rows(news, vibes_simulator, django_user_model):
    subscribed(news, mobile_phone=LA_NUMBER, country="US")
    subscribed(news, mobile_phone=NY_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run = run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
        run = run_abort(run=run, by=django_user_model.objects.create_user("marketer"))
    assert run.status == CampaignRun.Status.CANCELLED
    assert result_of(run, LA_NUMBER).outcome == Outcome.CANCELLED
    assert result_of(run, NY_NUMBER).outcome == Outcome.SENT
    assert stored_counts(run) == recount(run)
    with time_machine.travel(LA_OPENS, tick=True):
        assert quiet_hours_release_due() == []
        call_command("run_due_campaigns")
    assert texted(vibes_simulator) == [NY_NUMBER]


@pytest.mark.django_db(transaction=True)
def test_a_deferred_sms_is_sent_once_by_two_schedulers_and_two_workers(news, vibes_simulator):
    for n in range(6):
        subscribed(news, mobile_phone=f"+1213555{n:04d}", country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run = run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
    assert texted(vibes_simulator) == []
    with time_machine.travel(LA_OPENS, tick=True):
        assert [released.pk for released in quiet_hours_release_due()] == [run.pk]
        assert quiet_hours_release_due() == []  # a second scheduler finds nothing left to release
        workers = [
            threading.Thread(
                target=run_execute,
                kwargs={
                    "run": CampaignRun.objects.get(pk=run.pk),
                    "client": make_client(vibes_simulator.url),
                },
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE)
    assert not any(worker.is_alive() for worker in workers)
    assert texted(vibes_simulator) == [f"+1213555{n:04d}" for n in range(6)]
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert stored_counts(run) == recount(run)


@pytest.mark.django_db(transaction=True)
def test_a_trigger_campaigns_sms_waits_for_the_window_too(news, vibes_simulator, settings):
    settings.RUNNER_BACKGROUND = "inline"
    lead = subscribed(news, mobile_phone=LA_NUMBER, country="US")
    with time_machine.travel(LA_MORNING, tick=True):
        campaign = welcome_campaign(news)
        activities_record(activities=[_subscribed(lead, news, LA_MORNING, key="joined")])
        triggers_dispatch()
        run = CampaignRun.objects.get(campaign=campaign)
        assert result_of(run, LA_NUMBER).outcome == Outcome.DEFERRED_QUIET_HOURS
        assert texted(vibes_simulator) == []
    with time_machine.travel(LA_OPENS, tick=True):
        call_command("run_due_campaigns")
    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == [LA_NUMBER]


@pytest.mark.django_db(transaction=True)
def test_a_trigger_run_waiting_for_quiet_hours_does_not_hold_up_the_next_people(
    news, vibes_simulator, settings
):
    settings.RUNNER_BACKGROUND = "inline"
    los_angeles = subscribed(news, mobile_phone=LA_NUMBER, country="US")
    new_york = subscribed(news, mobile_phone=NY_NUMBER, country="US")
    with time_machine.travel(LA_MORNING, tick=True):
        campaign = welcome_campaign(news)
        activities_record(activities=[_subscribed(los_angeles, news, LA_MORNING, key="la")])
        triggers_dispatch()
        waiting = CampaignRun.objects.get(campaign=campaign)
        assert waiting.status == CampaignRun.Status.WAITING
        assert waiting.status_display == "running, waiting for quiet hours to end"
        # 09:30 in New York: the next person is texted at once, in a run of their own.
        activities_record(activities=[_subscribed(new_york, news, LA_MORNING, key="ny")])
        triggers_dispatch()
        assert texted(vibes_simulator) == [NY_NUMBER]
        assert CampaignRun.objects.filter(campaign=campaign).count() == 2
    with time_machine.travel(LA_OPENS, tick=True):
        call_command("run_due_campaigns")
    waiting.refresh_from_db()
    assert waiting.status == CampaignRun.Status.COMPLETED
    assert texted(vibes_simulator) == sorted([LA_NUMBER, NY_NUMBER])


# --- What it costs ----------------------------------------------------------------------------------


def _queued_rows(news, numbers, *, source):
    for number in numbers:
        subscribed(news, mobile_phone=number, lead_source=source, time_zone="America/Los_Angeles")
    campaign = make_campaign(("send", news), rule={"field": "lead_source", "op": "is", "value": source})
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    step = run.steps.get()
    plan_step(step)
    step.refresh_from_db()
    rows = list(step.results().filter(outcome=Outcome.QUEUED).values_list("pk", "lead_id", "phone"))
    return step, rows


@pytest.mark.django_db
def test_deferring_a_batch_costs_the_same_queries_for_3_people_as_for_60(news):
    counts = []
    for size, prefix in ((3, "+1213556"), (60, "+1213557")):
        step, rows = _queued_rows(news, [f"{prefix}{n:04d}" for n in range(size)], source=prefix)
        with CaptureQueriesContext(connection) as queries:
            left = quiet_hours_defer(step=step, rows=rows, at=LA_MORNING)
        assert left == []
        assert step.results().filter(outcome=Outcome.DEFERRED_QUIET_HOURS).count() == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_releasing_costs_the_same_queries_for_3_people_as_for_60(news):
    counts = []
    for size, prefix in ((3, "+1213558"), (60, "+1213559")):
        step, rows = _queued_rows(news, [f"{prefix}{n:04d}" for n in range(size)], source=prefix)
        quiet_hours_defer(step=step, rows=rows, at=LA_MORNING)
        with CaptureQueriesContext(connection) as queries:
            assert len(quiet_hours_release_due(now=LA_OPENS)) == 1
        counts.append(len(queries))
        assert step.results().filter(outcome=Outcome.QUEUED).count() == size
    assert counts[0] == counts[1]


# --- Where people see it ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_administrator_sets_the_window_and_a_countrys_own_in_the_admin(admin_client):
    page = admin_client.get(reverse("admin:marketing_activities_quiethours_changelist"), follow=True)
    assert page.status_code == 200
    assert 'value="08:00:00"' in page.content.decode()
    answer = admin_client.post(
        reverse("admin:marketing_activities_quiethours_change", args=[1]),
        {
            "enabled": "on",
            "start": "09:00",
            "end": "20:00",
            "countries-TOTAL_FORMS": "1",
            "countries-INITIAL_FORMS": "0",
            "countries-0-country": "de",
            "countries-0-start": "10:00",
            "countries-0-end": "18:00",
        },
    )
    assert answer.status_code == 302
    settings_row = QuietHours.load()
    assert (settings_row.start, settings_row.end) == (datetime.time(9), datetime.time(20))
    assert list(settings_row.countries.values_list("country", flat=True)) == ["DE"]


@pytest.mark.django_db
def test_a_bad_country_window_in_the_admin_says_what_is_wrong_and_keeps_the_rest(admin_client):
    answer = admin_client.post(
        reverse("admin:marketing_activities_quiethours_change", args=[1]),
        {
            "enabled": "on",
            "start": "09:00",
            "end": "20:00",
            "countries-TOTAL_FORMS": "1",
            "countries-INITIAL_FORMS": "0",
            "countries-0-country": "DE",
            "countries-0-start": "18:00",
            "countries-0-end": "10:00",
        },
    )
    assert answer.status_code == 200
    assert "DE: the window must end after it starts (18:00–10:00)." in answer.content.decode()
    assert 'value="09:00"' in answer.content.decode()
    assert not QuietHours.objects.exists()


@pytest.mark.django_db
def test_only_who_may_change_quiet_hours_changes_them(client, marketers_group, django_user_model):
    marketer = django_user_model.objects.create_user("marketer", is_staff=True)
    marketer.groups.add(marketers_group)
    client.force_login(marketer)
    url = reverse("admin:marketing_activities_quiethours_change", args=[1])
    assert client.get(url).status_code == 403
    assert client.post(url, {"enabled": "", "start": "00:00", "end": "23:59"}).status_code == 403
    assert QuietHours.load().enabled


@pytest.mark.django_db(transaction=True)
def test_the_results_tab_shows_the_deferred_people_and_their_count(news, vibes_simulator, staff_client):
    subscribed(news, first_name="Ann", mobile_phone=LA_NUMBER, country="US")
    campaign = make_campaign(("send", news))
    with time_machine.travel(LA_MORNING, tick=True):
        run_execute(
            run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND),
            client=make_client(vibes_simulator.url),
        )
    page = staff_client.get(reverse("marketing_activities:campaign_results", args=[campaign.pk]))
    content = page.content.decode()
    assert 'data-outcome="deferred_quiet_hours"' in content
    assert "Deferred: quiet hours" in content
    people = staff_client.get(
        reverse("marketing_activities:campaign_results", args=[campaign.pk]),
        {"outcome": "deferred_quiet_hours"},
    )
    assert "Ann" in people.content.decode()
    # 15:00 UTC, in the installation's time zone (UTC here).
    assert "goes at 06/15/2026 3 p.m., when the recipient's window opens" in people.content.decode()
