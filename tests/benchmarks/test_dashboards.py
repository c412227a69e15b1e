"""The dashboards benchmark's world is the one its docstring describes, and every
page it times answers (benchmarks/dashboards.py)."""

import pytest

from benchmarks import dashboards as bench
from marketing_activities.models import LinkClick, Outcome, RunResult, SmsReply
from marketing_activities.reporting.figures import Scope, sms_figures
from marketing_activities.reporting.people import FIGURES, figure_people
from vibes.models import SubscriptionChange

pytestmark = pytest.mark.django_db

SMS = 600


def test_the_world_holds_the_sms_and_what_came_of_them_as_described():
    world = bench.build_world(sms=SMS)
    total = SMS + bench.SLIVER  # the four campaigns' and the sliver's
    assert world.sms == RunResult.objects.count() == total
    assert RunResult.objects.filter(outcome=Outcome.DELIVERY_FAILED).count() == total // 10
    assert RunResult.objects.filter(delivery_status="undeliverable").count() == total // 30
    assert SmsReply.objects.count() == total // 20
    assert LinkClick.objects.count() == total // 25
    assert SubscriptionChange.objects.count() == total // 50
    figures = sms_figures(Scope("installation"))
    assert (figures.sent, figures.failed_hard, figures.replied, figures.clicked, figures.unsubscribed) == (
        total,
        total // 30,
        total // 20,
        total // 25,
        total // 50,
    )
    message = Scope("message", world.message_ids[0])
    assert sms_figures(message).sent == SMS // 2
    sliver = Scope("campaign", world.sliver_campaign_id)
    assert (sms_figures(sliver).sent, sms_figures(sliver).failed) == (bench.SLIVER, bench.SLIVER // 10)
    for figure in FIGURES:
        assert figure_people(message, figure).count() == getattr(sms_figures(message), figure)


def test_every_page_it_times_answers():
    world = bench.build_world(sms=SMS)
    rows = bench.time_pages(world, rounds=1)
    assert [row["page"] for row in rows] == [page for page, _url in bench.pages(world)]
    assert all(row["queries"] > 0 for row in rows)
    assert bench.table(rows).count("\n") == len(rows) + 1
