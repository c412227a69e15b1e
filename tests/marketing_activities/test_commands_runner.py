"""manage.py run_campaign and run_due_campaigns."""

import datetime
import logging

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketing_activities.models import CampaignRun, FlowStep, SmartCampaign
from marketing_activities.runner.schedule import start_due_runs
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.factories import CampaignRunFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_run_campaign_prints_a_summary_and_exits_0(news, vibes_simulator, capsys):
    subscribed(news)
    subscribed(news, blocklisted=True)
    campaign = make_campaign(("send", news))
    call_command("run_campaign", str(campaign.pk), verbosity=0)
    out = capsys.readouterr().out
    header, rule, step, *reasons = out.splitlines()
    assert header.split()[:3] == ["Step", "Action", "sent"]
    assert step.split()[:6] == ["1", "Send", "SMS", "Message", "1", "0"]
    assert "skipped: blocklisted" in out
    assert "completed: 2 people in the audience." in out
    assert len(vibes_simulator.messages()) == 1


def test_run_campaign_names_who_blocks_a_number(news, vibes_simulator, capsys):
    eve = LeadFactory(
        first_name="Eve", last_name="Stone", mobile_phone="+15551239880", blocklisted=True, country="SE"
    )
    subscribed(news, mobile_phone="+15551239880")
    subscribed(news, mobile_phone="+15551239880")
    call_command("run_campaign", str(make_campaign(("send", news)).pk), verbosity=0)
    lines = capsys.readouterr().out.splitlines()
    reason = next(line for line in lines if "skipped: number shared with a blocklisted person" in line)
    because = lines[lines.index(reason) + 1]
    assert reason.split()[-1] == "2"
    assert because.strip().startswith(f"because of Eve Stone (lead {eve.pk})")
    assert because.split()[-1] == "2"
    assert vibes_simulator.messages() == []


def test_run_campaign_dry_run_calls_nobody(news, vibes_simulator, capsys):
    subscribed(news)
    campaign = make_campaign(("send", news))
    call_command("run_campaign", str(campaign.pk), "--dry-run", verbosity=0)
    assert "would be called" in capsys.readouterr().out
    assert vibes_simulator.messages() == []


def test_run_campaign_exits_2_with_a_reason_when_the_campaign_cannot_run(news):
    campaign = make_campaign(("subscribe", news))
    FlowStep.objects.filter(campaign=campaign).update(acquisition_campaign=None)
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", str(campaign.pk), verbosity=0)
    assert error.value.returncode == 2
    assert (
        str(error.value)
        == "Step 1 (Subscribe to Vibes List): Choose an acquisition campaign of the Vibes list."
    )


def test_run_campaign_exits_2_when_the_campaign_is_already_running(news):
    campaign = make_campaign(("send", news))
    CampaignRunFactory(campaign=campaign, status=CampaignRun.Status.RUNNING)
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", str(campaign.pk), verbosity=0)
    assert error.value.returncode == 2
    assert "already running" in str(error.value)


def test_run_campaign_exits_2_for_an_unknown_campaign(db):
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", "999999", verbosity=0)
    assert (error.value.returncode, str(error.value)) == (2, "There is no smart campaign 999999.")


def test_run_campaign_exits_1_when_the_run_fails(news, vibes_simulator, settings):
    subscribed(news)
    settings.VIBES_PASSWORD = "wrong"
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", str(make_campaign(("send", news)).pk), verbosity=0)
    assert error.value.returncode == 1
    assert "credentials" in str(error.value)


def test_resume_finishes_a_failed_run(news, vibes_simulator, settings, capsys):
    subscribed(news)
    settings.VIBES_PASSWORD = "wrong"
    with pytest.raises(CommandError):
        call_command("run_campaign", str(make_campaign(("send", news)).pk), verbosity=0)
    settings.VIBES_PASSWORD = "sim-password-Q7x"
    run = CampaignRun.objects.get()
    call_command("run_campaign", "--resume", str(run.pk), verbosity=0)
    assert "completed" in capsys.readouterr().out
    assert len(vibes_simulator.messages()) == 1


def test_run_campaign_exits_2_when_nobody_is_left_to_qualify(news, vibes_simulator):
    subscribed(news)
    campaign = make_campaign(("send", news), qualification="once")
    call_command("run_campaign", str(campaign.pk), verbosity=0)
    with pytest.raises(CommandError) as error:
        call_command("run_campaign", str(campaign.pk), verbosity=0)
    assert error.value.returncode == 2
    assert str(error.value).startswith("Nobody is left to qualify: the 1 person the smart list picks")
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1
    assert len(vibes_simulator.messages()) == 1


def due(campaign, **fields):
    SmartCampaign.objects.filter(pk=campaign.pk).update(is_active=True, **fields)


def test_due_campaigns_start_once_however_often_the_scheduler_runs(news):
    campaign = make_campaign(("send", news))
    now = timezone.now()
    due(
        campaign,
        schedule="once",
        run_at=now - datetime.timedelta(minutes=1),
        next_run_at=now - datetime.timedelta(minutes=1),
    )
    assert len(start_due_runs(now=now)) == 1
    assert start_due_runs(now=now) == []
    campaign.refresh_from_db()
    assert (campaign.is_active, campaign.next_run_at) == (False, None)


def test_recurring_campaigns_move_to_their_next_time(news):
    campaign = make_campaign(("send", news))
    now = timezone.now()
    due(
        campaign,
        schedule="daily",
        run_time=datetime.time(9, 0),
        next_run_at=now - datetime.timedelta(seconds=5),
    )
    [run] = start_due_runs(now=now)
    assert run.trigger == CampaignRun.Trigger.SCHEDULE
    campaign.refresh_from_db()
    assert now < campaign.next_run_at <= now + datetime.timedelta(days=1)
    assert timezone.localtime(campaign.next_run_at).time() == datetime.time(9, 0)


def test_run_due_campaigns_runs_what_is_due(news, vibes_simulator, capsys):
    subscribed(news)
    campaign = make_campaign(("send", news))
    due(campaign, schedule="once", run_at=timezone.now(), next_run_at=timezone.now())
    call_command("run_due_campaigns")
    assert "1 runs started or resumed." in capsys.readouterr().out
    assert len(vibes_simulator.messages()) == 1


def test_celery_beat_starts_due_campaigns_every_minute(
    news, vibes_simulator, settings, django_capture_on_commit_callbacks
):
    from django.conf import settings as django_settings

    import marketing_activities.tasks  # noqa: F401  (workers find it by autodiscovery)
    from smscampaigns.celery import app

    entry = django_settings.CELERY_BEAT_SCHEDULE["run-due-campaigns"]
    assert entry["schedule"] == 60.0
    task = app.tasks[entry["task"]]
    subscribed(news)
    campaign = make_campaign(("send", news))
    due(campaign, schedule="once", run_at=timezone.now(), next_run_at=timezone.now())
    settings.RUNNER_BACKGROUND = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        assert task.apply().get() == 1  # eager here; a worker runs the same task
    assert len(vibes_simulator.messages()) == 1


def test_a_scheduled_run_with_nobody_left_to_qualify_is_skipped_and_logged(news, vibes_simulator, caplog):
    subscribed(news)
    campaign = make_campaign(("send", news), qualification="once")
    call_command("run_campaign", str(campaign.pk), verbosity=0)
    now = timezone.now()
    due(
        campaign,
        schedule="daily",
        run_time=datetime.time(9, 0),
        next_run_at=now - datetime.timedelta(seconds=5),
    )
    with caplog.at_level(logging.INFO, logger="marketing_activities.runner.schedule"):
        assert start_due_runs(now=now) == []
    [record] = [r for r in caplog.records if r.name == "marketing_activities.runner.schedule"]
    assert record.levelno == logging.INFO
    assert (
        f"scheduled run of campaign {campaign.pk} skipped: Nobody is left to qualify" in record.getMessage()
    )
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1  # no empty run recorded
    campaign.refresh_from_db()
    assert campaign.is_active and campaign.next_run_at > now  # tomorrow's start still comes
