"""The figures service: a scope's SMS figures from the rollups, in all and
over time, by hour or by day of the installation's time zone."""

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from marketing_activities.models import Program, SmartCampaign, SmsMessage
from marketing_activities.receipts import handle_receipt
from marketing_activities.reporting.figures import (
    Scope,
    SmsFigures,
    bucket_size,
    sms_figures,
    sms_figures_over_time,
)
from tests.marketing_activities.campaigns import execute, make_campaign
from tests.marketing_activities.reporting.scenarios import people, receipt
from tests.vibes.factories import VibesListFactory
from vibes.models import VibesList

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def run_at(moment, news, simulator, *, campaign=None):
    """A run of `campaign` (or a new one) made at `moment`: its people's SMS, sent."""
    campaign = campaign or make_campaign(("send", news))
    with time_machine.travel(moment, tick=True):
        return execute(campaign, simulator)


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


def test_each_scope_counts_its_own_sms(news, vibes_simulator):
    people(news, 3)
    first = make_campaign(("send", news))
    other_list = VibesListFactory(vibes_id="102", name="VIP Offers")
    second = make_campaign(("send", other_list))
    run = execute(first, vibes_simulator)
    delivered = run.steps.get().results().order_by("pk").first()
    handle_receipt(receipt(delivered, "delivered"))
    execute(first, vibes_simulator)  # a second run of the same campaign
    people(other_list, 2, prefix="+1555400")
    execute(second, vibes_simulator)
    message = first.flow_steps.get().sms_message

    assert sms_figures(Scope("message", message.pk)) == SmsFigures(sent=6, delivered=1)
    assert sms_figures(Scope("campaign", first.pk)) == SmsFigures(sent=6, delivered=1)
    assert sms_figures(Scope("program", first.program_id)) == SmsFigures(sent=6, delivered=1)
    assert sms_figures(Scope("vibes_list", news.pk)) == SmsFigures(sent=6, delivered=1)
    assert sms_figures(Scope("campaign", second.pk)) == SmsFigures(sent=2)
    assert sms_figures(Scope("installation")) == SmsFigures(sent=8, delivered=1)
    # A program's figures are those of the campaigns in it now.
    SmartCampaign.objects.filter(pk=second.pk).update(program=first.program)
    assert sms_figures(Scope("program", first.program_id)) == SmsFigures(sent=8, delivered=1)


def test_rates_are_shares_of_the_sms_sent_and_none_without_sms():
    figures = SmsFigures(sent=8, delivered=6, failed=2, failed_hard=1, failed_soft=1, replied=2, clicked=4)
    assert (figures.delivery_rate, figures.failure_rate, figures.reply_rate) == (0.75, 0.25, 0.25)
    assert (figures.click_rate, figures.unsubscribe_rate) == (0.5, 0.0)
    assert SmsFigures().delivery_rate is None
    assert figures + SmsFigures(sent=2, delivered=2) == SmsFigures(
        sent=10, delivered=8, failed=2, failed_hard=1, failed_soft=1, replied=2, clicked=4
    )


@pytest.mark.parametrize(
    ("kind", "model"),
    [("message", SmsMessage), ("campaign", SmartCampaign), ("program", Program), ("vibes_list", VibesList)],
)
def test_a_scope_whose_object_does_not_exist_raises_does_not_exist(kind, model):
    with pytest.raises(model.DoesNotExist):
        sms_figures(Scope(kind, 987654))
    with pytest.raises(model.DoesNotExist):
        sms_figures_over_time(
            Scope(kind, 987654),
            start=datetime.datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime.datetime(2026, 1, 2, tzinfo=UTC),
        )


def test_a_date_range_takes_the_sms_by_the_hour_of_their_call(news, vibes_simulator):
    people(news, 2)
    campaign = make_campaign(("send", news))
    run_at(datetime.datetime(2026, 3, 10, 9, 15, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    run_at(datetime.datetime(2026, 3, 10, 11, 45, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    scope = Scope("campaign", campaign.pk)
    assert sms_figures(scope, start=datetime.datetime(2026, 3, 10, 10, tzinfo=UTC)) == SmsFigures(sent=2)
    assert sms_figures(scope, end=datetime.datetime(2026, 3, 10, 11, tzinfo=UTC)) == SmsFigures(sent=2)
    assert sms_figures(scope, end=datetime.datetime(2026, 3, 10, 12, tzinfo=UTC)) == SmsFigures(sent=4)


def test_up_to_48_hours_the_figures_are_hourly_beyond_daily():
    start = datetime.datetime(2026, 3, 10, tzinfo=UTC)
    assert bucket_size(start, start + datetime.timedelta(hours=48)) == "hour"
    assert bucket_size(start, start + datetime.timedelta(hours=48, seconds=1)) == "day"


def test_hourly_figures_have_every_hour_of_the_range_zeros_included(news, vibes_simulator, berlin):
    people(news, 2)
    campaign = make_campaign(("send", news))
    run_at(datetime.datetime(2026, 3, 10, 9, 15, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    start = datetime.datetime(2026, 3, 10, 8, tzinfo=BERLIN)
    over_time = sms_figures_over_time(
        Scope("campaign", campaign.pk), start=start, end=start + datetime.timedelta(hours=6)
    )
    assert [bucket for bucket, _figures in over_time] == [
        start + datetime.timedelta(hours=n) for n in range(6)
    ]
    assert all(bucket.tzinfo is not None for bucket, _figures in over_time)
    # 09:15 UTC is 10:15 in Berlin: the third hour from 08:00 Berlin.
    assert [figures.sent for _bucket, figures in over_time] == [0, 0, 2, 0, 0, 0]


def test_daily_figures_follow_the_days_of_the_installations_time_zone(news, vibes_simulator, berlin):
    people(news, 1)
    campaign = make_campaign(("send", news))
    # 22:30 UTC is 23:30 in Berlin, 10 March; 23:30 UTC is already 11 March there.
    run_at(datetime.datetime(2026, 3, 10, 22, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    run_at(datetime.datetime(2026, 3, 10, 23, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    start = datetime.datetime(2026, 3, 9, tzinfo=BERLIN)
    over_time = sms_figures_over_time(
        Scope("campaign", campaign.pk), start=start, end=datetime.datetime(2026, 3, 13, tzinfo=BERLIN)
    )
    assert [(bucket.date().isoformat(), figures.sent) for bucket, figures in over_time] == [
        ("2026-03-09", 0),
        ("2026-03-10", 1),
        ("2026-03-11", 1),
        ("2026-03-12", 0),
    ]
    assert all(
        bucket == bucket.replace(hour=0, minute=0) and bucket.utcoffset() == datetime.timedelta(hours=1)
        for bucket, _ in over_time
    )


def test_a_day_of_a_clock_change_is_one_bucket_of_its_23_hours(news, vibes_simulator, berlin):
    people(news, 1)
    campaign = make_campaign(("send", news))
    # Berlin moves to summer time on 29 March 2026: that day has 23 hours; 21:30 UTC is 23:30 there.
    run_at(datetime.datetime(2026, 3, 29, 21, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    over_time = sms_figures_over_time(
        Scope("campaign", campaign.pk),
        start=datetime.datetime(2026, 3, 28, tzinfo=BERLIN),
        end=datetime.datetime(2026, 3, 31, tzinfo=BERLIN),
    )
    assert [(bucket.isoformat(), figures.sent) for bucket, figures in over_time] == [
        ("2026-03-28T00:00:00+01:00", 0),
        ("2026-03-29T00:00:00+01:00", 1),
        ("2026-03-30T00:00:00+02:00", 0),
    ]


def test_a_day_of_the_clock_going_back_is_one_bucket_of_its_25_hours(news, vibes_simulator, berlin):
    people(news, 1)
    campaign = make_campaign(("send", news))
    # Berlin goes back to winter time on 25 October 2026: 22:30 UTC is 23:30 there, still the 25th;
    # 23:30 UTC is 00:30 on the 26th.
    run_at(datetime.datetime(2026, 10, 24, 22, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    run_at(datetime.datetime(2026, 10, 25, 22, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    run_at(datetime.datetime(2026, 10, 25, 23, 30, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    over_time = sms_figures_over_time(
        Scope("campaign", campaign.pk),
        start=datetime.datetime(2026, 10, 24, tzinfo=BERLIN),
        end=datetime.datetime(2026, 10, 27, tzinfo=BERLIN),
    )
    # 22:30 UTC on the 24th is 00:30 on the 25th in summer time (+02:00).
    assert [(bucket.isoformat(), figures.sent) for bucket, figures in over_time] == [
        ("2026-10-24T00:00:00+02:00", 0),
        ("2026-10-25T00:00:00+02:00", 2),
        ("2026-10-26T00:00:00+01:00", 1),
    ]


def test_in_a_half_hour_zone_an_hour_belongs_to_the_day_it_begins_in(news, vibes_simulator, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # +05:30
    kolkata = ZoneInfo("Asia/Kolkata")
    people(news, 1)
    campaign = make_campaign(("send", news))
    # 18:40 UTC is 00:10 on 11 March in Kolkata, but its hour began at 18:00 UTC, 23:30 on 10 March.
    run_at(datetime.datetime(2026, 3, 10, 18, 40, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    over_time = sms_figures_over_time(
        Scope("campaign", campaign.pk),
        start=datetime.datetime(2026, 3, 10, tzinfo=kolkata),
        end=datetime.datetime(2026, 3, 13, tzinfo=kolkata),
    )
    assert [(bucket.date().isoformat(), figures.sent) for bucket, figures in over_time] == [
        ("2026-03-10", 1),
        ("2026-03-11", 0),
        ("2026-03-12", 0),
    ]


def test_the_figures_take_two_queries_whatever_the_range(news, vibes_simulator, django_assert_num_queries):
    people(news, 2)
    campaign = make_campaign(("send", news))
    for day in range(1, 4):
        run_at(datetime.datetime(2026, 3, day, 9, tzinfo=UTC), news, vibes_simulator, campaign=campaign)
    scope = Scope("campaign", campaign.pk)
    start, end = datetime.datetime(2026, 1, 1, tzinfo=UTC), datetime.datetime(2027, 1, 1, tzinfo=UTC)
    with django_assert_num_queries(2):  # the campaign exists; its rows, summed
        assert sms_figures(scope, start=start, end=end) == SmsFigures(sent=6)
    with django_assert_num_queries(2):  # the campaign exists; its rows, summed by hour
        over_time = sms_figures_over_time(scope, start=start, end=end)
    assert len(over_time) == 365
    assert sum((figures for _bucket, figures in over_time), SmsFigures()) == SmsFigures(sent=6)
    with django_assert_num_queries(1):
        sms_figures(Scope("installation"))
