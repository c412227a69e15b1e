"""The Wait step and Remove from Flow (issue 17): a waiting run is a row the
scheduler resumes, never a sleeping process; Remove from Flow takes people
out of a waiting flow."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format

from marketing_activities.models import CampaignRun, FlowStep, Outcome, RunStep
from marketing_activities.runner import CampaignAlreadyRunning, run_abort, run_create, run_execute
from marketing_activities.runner.waits import next_day_at, runs_resume_due, wait_resume_at
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.activities import activities_record
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.factories import FlowStepFactory
from tests.marketing_activities.test_triggers import _subscribed, welcome_campaign
from tests.marketing_activities.ui_helpers import run_now_counted, url
from tests.vibes.simulated import SIM_COMPANY_KEY, SIM_PASSWORD, SIM_SHORT_CODE, SIM_USERNAME, make_client

pytestmark = pytest.mark.django_db


def with_wait(campaign, *, position=1, **wait):
    """Insert a Wait step (two minutes unless `wait` says otherwise) at `position`."""
    campaign.flow_steps.filter(position__gte=position).update(position=F("position") + 1)
    return FlowStepFactory(
        campaign=campaign,
        position=position,
        action=FlowStep.Action.WAIT,
        vibes_list=None,
        sms_message=None,
        **(wait or {"wait_amount": 2, "wait_unit": "minutes"}),
    )


def this_database_url() -> str:
    """The test database, for a process of its own to work on."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def send_wait_send(news, **wait):
    campaign = make_campaign(("send", news), ("send", news))
    with_wait(campaign, **wait)
    return campaign


def texts_to(simulator):
    return sorted(message["to"] for message in simulator.messages())


def test_a_batch_run_waits_without_a_process_and_resumes_for_the_same_people(news, vibes_simulator):
    people = [subscribed(news, country="US", mobile_phone=f"+1555123{n:04d}") for n in range(3)]
    campaign = send_wait_send(news)

    run = execute(campaign, vibes_simulator)

    # The worker returned: nothing sleeps while the run waits.
    assert run.status == CampaignRun.Status.RUNNING
    assert run.in_wait_step
    wait = run.steps.get(position=1)
    assert run.resume_at == wait.planned_at + datetime.timedelta(minutes=2)
    assert wait.counts == {"waited": 3}
    assert run.steps.get(position=2).status == RunStep.Status.PENDING
    assert len(vibes_simulator.messages()) == 3
    assert runs_resume_due() == []  # not due yet

    with time_machine.travel(run.resume_at + datetime.timedelta(seconds=1), tick=True):
        call_command("run_due_campaigns", verbosity=0)
        call_command("run_due_campaigns", verbosity=0)  # a second scheduler resumes nothing more

    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get(position=2).counts == {"sent": 3}
    # The second step once for each of the same people: two SMS per number.
    assert texts_to(vibes_simulator) == sorted([person.mobile_phone for person in people] * 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_a_batch_run_with_a_wait_of_two_minutes_resumes_after_the_process_is_restarted(news, vibes_simulator):
    """The run is started by `manage.py run_campaign` in a process of its own,
    which ends at the Wait step; a scheduler in another process (this one,
    its clock moved two minutes on) goes on with it."""
    people = [subscribed(news, country="US", mobile_phone=f"+1555124{n:04d}") for n in range(2)]
    campaign = send_wait_send(news)
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": this_database_url(),
        "DEBUG": "true",
        "SECRET_KEY": "wait-test-secret",
        "VIBES_PLATFORM_URL": vibes_simulator.url,
        "VIBES_CONNECT_URL": vibes_simulator.url,
        "VIBES_COMPANY_KEY": SIM_COMPANY_KEY,
        "VIBES_USERNAME": SIM_USERNAME,
        "VIBES_PASSWORD": SIM_PASSWORD,
        "VIBES_SHORT_CODE": SIM_SHORT_CODE,
        "VIBES_RATE_LIMIT": "0",
    }
    finished = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_campaign", str(campaign.pk)],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr
    assert "Wait step until" in finished.stdout
    run = campaign.runs.get()
    assert run.in_wait_step
    assert len(vibes_simulator.messages()) == 2

    with time_machine.travel(run.resume_at + datetime.timedelta(seconds=1), tick=True):
        resumed = runs_resume_due()
        assert [each.pk for each in resumed] == [run.pk]
        assert runs_resume_due() == []  # claimed once
        run_execute(run=resumed[0], client=make_client(vibes_simulator.url))

    run.refresh_from_db()
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get(position=2).counts == {"sent": 2}
    assert texts_to(vibes_simulator) == sorted([person.mobile_phone for person in people] * 2)


def test_a_later_step_rechecks_its_rules_after_the_wait(news, vibes_simulator):
    stays, leaves = (subscribed(news, country="US", mobile_phone=f"+1555125{n:04d}") for n in range(2))
    campaign = send_wait_send(news)
    run = execute(campaign, vibes_simulator)
    leaves.blocklisted = True
    leaves.save()
    with time_machine.travel(run.resume_at + datetime.timedelta(seconds=1), tick=True):
        call_command("run_due_campaigns", verbosity=0)
    run.refresh_from_db()
    assert run.steps.get(position=2).counts == {"sent": 1, "skipped_blocklisted": 1}
    assert texts_to(vibes_simulator) == sorted([stays.mobile_phone, stays.mobile_phone, leaves.mobile_phone])


def test_a_trigger_campaigns_person_waits_on_their_own(news, vibes_simulator):
    first = subscribed(news, mobile_phone="+15551260001")
    second = subscribed(news, mobile_phone="+15551260002")
    campaign = welcome_campaign(news)
    FlowStepFactory(campaign=campaign, position=2, vibes_list=news)
    with_wait(campaign, wait_amount=1, wait_unit="hours")
    start = timezone.now()

    activities_record(activities=[_subscribed(first, news, start, key="first")])
    triggers_dispatch()
    with time_machine.travel(start + datetime.timedelta(minutes=30), tick=True):
        activities_record(activities=[_subscribed(second, news, timezone.now(), key="second")])
        triggers_dispatch()
    first_run, second_run = campaign.runs.order_by("pk")
    # The first person's wait does not hold the second one's run back.
    assert [first_run.status, second_run.status] == [CampaignRun.Status.WAITING] * 2
    for run in (first_run, second_run):
        assert run.resume_at == run.steps.get(position=1).planned_at + datetime.timedelta(hours=1)
    assert second_run.resume_at >= start + datetime.timedelta(minutes=90)

    with time_machine.travel(first_run.resume_at + datetime.timedelta(seconds=1), tick=True):
        call_command("run_due_campaigns", verbosity=0)
    first_run.refresh_from_db()
    second_run.refresh_from_db()
    assert first_run.status == CampaignRun.Status.COMPLETED
    assert second_run.status == CampaignRun.Status.WAITING
    assert texts_to(vibes_simulator) == sorted([first.mobile_phone] * 2 + [second.mobile_phone])

    with time_machine.travel(second_run.resume_at + datetime.timedelta(seconds=1), tick=True):
        call_command("run_due_campaigns", verbosity=0)
    second_run.refresh_from_db()
    assert second_run.status == CampaignRun.Status.COMPLETED
    assert texts_to(vibes_simulator) == sorted([first.mobile_phone] * 2 + [second.mobile_phone] * 2)


def test_remove_from_flow_takes_people_out_of_another_campaigns_waiting_run(news, vibes_simulator):
    removed = subscribed(news, country="US", mobile_phone="+15551270001", city="Boston")
    kept = subscribed(news, country="US", mobile_phone="+15551270002", city="Denver")
    nurture = send_wait_send(news, wait_amount=1, wait_unit="days")
    run = execute(nurture, vibes_simulator)
    remover = make_campaign(rule={"field": "city", "op": "is", "value": "Boston"})
    FlowStepFactory(
        campaign=remover,
        action=FlowStep.Action.REMOVE_FROM_FLOW,
        vibes_list=None,
        sms_message=None,
        remove_from_campaign=nurture,
    )

    removal = execute(remover, vibes_simulator)

    assert removal.status == CampaignRun.Status.COMPLETED
    assert removal.steps.get().counts == {"removed_from_flow": 1}
    assert run.steps.get(position=1).counts == {"waited": 1, "removed_from_flow": 1}
    with time_machine.travel(run.resume_at + datetime.timedelta(seconds=1), tick=True):
        call_command("run_due_campaigns", verbosity=0)
    last = run.steps.get(position=2)
    assert last.counts == {"sent": 1, "removed_from_flow": 1}
    assert last.results().get(lead=removed).outcome == Outcome.REMOVED_FROM_FLOW
    assert texts_to(vibes_simulator) == sorted([removed.mobile_phone, kept.mobile_phone, kept.mobile_phone])


def test_remove_from_flow_of_this_campaign_stops_its_own_flow_for_them(news, vibes_simulator):
    subscribed(news, country="US", mobile_phone="+15551280001")
    campaign = make_campaign(("send", news), ("send", news))
    FlowStepFactory(
        campaign=campaign,
        position=1,
        action=FlowStep.Action.REMOVE_FROM_FLOW,
        vibes_list=None,
        sms_message=None,
    )
    campaign.flow_steps.filter(position=1).exclude(action=FlowStep.Action.REMOVE_FROM_FLOW).update(position=2)
    run = execute(campaign, vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get(position=2).counts == {"removed_from_flow": 1}
    assert len(vibes_simulator.messages()) == 1


def test_abort_ends_a_waiting_run(news, vibes_simulator):
    subscribed(news, country="US", mobile_phone="+15551290001")
    campaign = send_wait_send(news)
    run = execute(campaign, vibes_simulator)

    run = run_abort(run=run)

    assert run.status == CampaignRun.Status.CANCELLED
    assert not run.in_wait_step
    assert list(run.steps.order_by("position").values_list("status", flat=True)) == [
        RunStep.Status.DONE,
        RunStep.Status.CANCELLED,
        RunStep.Status.CANCELLED,
    ]
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=3), tick=True):
        assert runs_resume_due() == []
        call_command("run_due_campaigns", verbosity=0)
    assert len(vibes_simulator.messages()) == 1


def test_a_waiting_batch_run_keeps_a_second_run_of_the_campaign_out(news, vibes_simulator):
    subscribed(news, country="US", mobile_phone="+15551300001")
    campaign = send_wait_send(news)
    execute(campaign, vibes_simulator)
    with pytest.raises(CampaignAlreadyRunning):
        run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)


def test_a_dry_run_does_not_wait(news, vibes_simulator):
    subscribed(news, country="US", mobile_phone="+15551310001")
    campaign = send_wait_send(news)
    run = run_execute(
        run=run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=True),
        client=make_client(vibes_simulator.url),
    )
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get(position=1).counts == {"planned_dry_run": 1}


# --- When a wait is over ---------------------------------------------------------------


def at(text):
    return timezone.make_aware(datetime.datetime.fromisoformat(text))


def test_a_wait_until_a_date_ends_then(settings):
    assert wait_resume_at(
        {"until": at("2026-12-24T09:00").isoformat()}, reached=at("2026-12-01T10:00")
    ) == at("2026-12-24T09:00")


def test_then_until_the_next_weekday_skips_the_weekend():
    # Friday 2026-12-04 at 11:00, plus a day: Saturday 11:00; the next weekday at 10:00 is Monday.
    wait = {"seconds": 86400, "then_day": "weekday", "then_time": "10:00"}
    assert wait_resume_at(wait, reached=at("2026-12-04T11:00")) == at("2026-12-07T10:00")


def test_then_until_the_next_day_at_a_time_is_the_same_day_when_it_is_still_to_come():
    assert next_day_at(at("2026-12-02T08:00"), day="day", time=datetime.time(10, 0)) == at("2026-12-02T10:00")
    assert next_day_at(at("2026-12-02T11:00"), day="day", time=datetime.time(10, 0)) == at("2026-12-03T10:00")


def test_then_until_a_named_day():
    # Wednesday 2026-12-02: the next Tuesday at 09:30.
    assert next_day_at(at("2026-12-02T08:00"), day="1", time=datetime.time(9, 30)) == at("2026-12-08T09:30")


def test_the_schedule_and_results_tabs_say_the_run_is_in_a_wait_step_and_when_it_resumes(
    news, vibes_simulator, staff_client
):
    subscribed(news, country="US", mobile_phone="+15551320001")
    campaign = send_wait_send(news)
    run = execute(campaign, vibes_simulator)
    resumes = date_format(timezone.localtime(run.resume_at), "DATETIME_FORMAT")

    schedule = staff_client.get(url("campaign_schedule", campaign.pk)).content.decode()
    results = staff_client.get(url("campaign_results", campaign.pk)).content.decode()

    assert f"A run is running, in Wait Step until {resumes}." in schedule
    assert "Running, in Wait Step" in results
    assert resumes in results


def test_run_nows_confirmation_counts_who_will_wait(news, staff_client):
    subscribed(news, country="US", mobile_phone="+15551330001")
    campaign = send_wait_send(news)
    html = run_now_counted(staff_client, campaign)
    assert "2. Wait" in html
    assert "Will wait: 1" in html
