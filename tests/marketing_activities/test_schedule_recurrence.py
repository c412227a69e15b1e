"""Monthly and weekdays-only schedules (issue 17): due on the right days, with the clock moved."""

import datetime
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from marketing_activities import services
from marketing_activities.models import CampaignRun, SmartCampaign
from marketing_activities.runner.schedule import start_due_runs
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db

UTC = zoneinfo.ZoneInfo("UTC")


def at(*parts, tz=UTC):
    return datetime.datetime(*parts, tzinfo=tz)


def scheduled(news, **fields):
    """An active campaign under "every time" with one subscriber, scheduled as `fields` say."""
    subscribed(news)
    campaign = make_campaign(("send", news))
    campaign.is_active = True
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.next_run_at = campaign.compute_next_run()
    campaign.save()
    return campaign


def runs_started_at(campaign, moments):
    """Moves the clock to each moment, starts what is due there; the moments a run started."""
    started = []
    for moment in moments:
        with time_machine.travel(moment, tick=False):
            for run in start_due_runs():
                assert run.campaign_id == campaign.pk
                started.append(moment)
                CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.COMPLETED)
    return started


def test_a_monthly_schedule_runs_on_the_first_runs_day_or_a_shorter_months_last_day(news):
    with time_machine.travel(at(2026, 1, 10), tick=False):
        campaign = scheduled(news, schedule="monthly", run_at=at(2026, 1, 31, 9, 0))
    assert campaign.next_run_at == at(2026, 1, 31, 9, 0)
    every_day_at_nine = [at(2026, 1, 20, 9) + datetime.timedelta(days=n) for n in range(0, 110)]
    assert runs_started_at(campaign, every_day_at_nine) == [
        at(2026, 1, 31, 9),
        at(2026, 2, 28, 9),  # no 31 February: its last day
        at(2026, 3, 31, 9),
        at(2026, 4, 30, 9),
    ]
    campaign.refresh_from_db()
    assert campaign.next_run_at == at(2026, 5, 31, 9)


def test_a_monthly_schedule_saved_after_its_first_run_goes_on_from_the_next_month(news):
    with time_machine.travel(at(2026, 6, 20, 12), tick=False):
        campaign = scheduled(news, schedule="monthly", run_at=at(2026, 3, 15, 8, 30))
    assert campaign.next_run_at == at(2026, 7, 15, 8, 30)


def test_a_weekdays_only_schedule_skips_saturday_and_sunday(news):
    friday = at(2026, 3, 6, 10)  # after Friday's run time
    with time_machine.travel(friday, tick=False):
        campaign = scheduled(news, schedule="daily", run_time=datetime.time(9, 0), run_weekdays_only=True)
    assert campaign.next_run_at == at(2026, 3, 9, 9)  # Monday
    hours = [friday + datetime.timedelta(hours=n) for n in range(0, 24 * 9)]
    started = runs_started_at(campaign, hours)
    assert [moment.strftime("%a %d") for moment in started] == [
        "Mon 09",
        "Tue 10",
        "Wed 11",
        "Thu 12",
        "Fri 13",
    ]


def test_every_day_without_weekdays_only_runs_on_the_weekend_too(news):
    with time_machine.travel(at(2026, 3, 6, 10), tick=False):
        campaign = scheduled(news, schedule="daily", run_time=datetime.time(9, 0))
    assert campaign.next_run_at == at(2026, 3, 7, 9)  # Saturday


def test_weekdays_are_the_installations_time_zone(news, settings):
    """Monday 08:00 in Auckland is Sunday evening in UTC, and runs; Saturday 08:00 there does not."""
    settings.TIME_ZONE = "Pacific/Auckland"
    auckland = zoneinfo.ZoneInfo("Pacific/Auckland")
    with time_machine.travel(at(2026, 3, 6, 9, tz=auckland), tick=False):  # Friday, after 08:00 there
        campaign = scheduled(news, schedule="daily", run_time=datetime.time(8, 0), run_weekdays_only=True)
    assert campaign.next_run_at == at(2026, 3, 9, 8, tz=auckland)
    assert campaign.next_run_at.astimezone(UTC).strftime("%a %H:%M") == "Sun 19:00"


def test_weekdays_only_is_kept_only_for_a_daily_schedule(news):
    campaign = make_campaign(("send", news))
    services.campaign_schedule_update(
        campaign=campaign,
        qualification_rule="every_time",
        schedule="weekly",
        run_time=datetime.time(9),
        run_weekday=5,
        run_weekdays_only=True,
    )
    campaign.refresh_from_db()
    assert (campaign.schedule, campaign.run_weekdays_only) == ("weekly", False)


def test_a_monthly_schedule_needs_its_first_run(news):
    campaign = make_campaign(("send", news))
    with pytest.raises(ValidationError) as error:
        services.campaign_schedule_update(campaign=campaign, qualification_rule="once", schedule="monthly")
    assert error.value.message_dict == {
        "run_at": ["Choose the first run: later runs are on the same day of each month."]
    }


def test_the_schedule_tab_saves_a_monthly_schedule_and_weekdays_only(staff_client, news):
    campaign = make_campaign(("send", news))
    SmartCampaign.objects.filter(pk=campaign.pk).update(is_active=True)
    post = {"action": "save", "qualification_rule": "once", "run_time": "", "run_weekday": ""}
    first = (timezone.localtime() + datetime.timedelta(days=3)).replace(second=0, microsecond=0)
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        {**post, "schedule": "monthly", "run_at": first.strftime("%Y-%m-%dT%H:%M")},
        headers=HTMX,
    )
    assert "Schedule saved." in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.schedule, campaign.next_run_at) == ("monthly", first)
    staff_client.post(
        url("campaign_schedule", campaign.pk),
        {**post, "schedule": "daily", "run_time": "09:00", "run_weekdays_only": "on", "run_at": ""},
    )
    campaign.refresh_from_db()
    assert (campaign.schedule, campaign.run_weekdays_only, campaign.run_at) == ("daily", True, None)
    assert campaign.next_run_at.weekday() < 5


def test_the_schedule_tab_says_a_monthly_schedule_without_its_first_run_is_missing_it(staff_client, news):
    campaign = make_campaign(("send", news))
    response = staff_client.post(
        url("campaign_schedule", campaign.pk),
        {"action": "save", "qualification_rule": "once", "schedule": "monthly", "run_at": ""},
        headers=HTMX,
    )
    html = response.content.decode()
    when = html[html.index('class="when-once"') :].split('class="when-recurring"')[0]
    assert "Choose the first run: later runs are on the same day of each month." in when
    assert SmartCampaign.objects.get(pk=campaign.pk).schedule == "none"
