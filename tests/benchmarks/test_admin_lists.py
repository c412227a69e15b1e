"""The admin benchmark's world is the one its docstring describes, and every
page it times answers (benchmarks/admin_lists.py)."""

import pytest

from benchmarks import admin_lists as bench
from marketing_activities.models import RunResult
from smscampaigns.models import Lead, LeadFlagChange
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db

LEADS = 600


def test_the_world_holds_the_people_and_traffic_it_describes():
    world = bench.build_world(leads=LEADS)
    leads = Lead.objects.all()
    assert leads.count() == LEADS
    assert leads.filter(mobile_phone="").count() == LEADS // 20
    assert leads.filter(blocklisted=True).count() == LEADS // 50
    assert leads.filter(marketing_suspended=True).count() == LEADS // 100
    assert LeadFlagChange.objects.count() == LEADS // 50 + LEADS // 100
    assert Subscription.objects.count() == SubscriptionChange.objects.count() == LEADS * 3 // 10
    assert CallbackEvent.objects.count() == LEADS // 2
    assert InboundMessage.objects.count() == LEADS // 50
    assert RunResult.objects.filter(run_step_id=world.run_step_id).count() == LEADS
    # Every stored number is a valid one in E.164, as the product stores them.
    assert not leads.exclude(mobile_phone="").exclude(mobile_phone__regex=r"^\+1212[0-9]{7}$").exists()
    assert leads.values("country").distinct().count() == 8
    assert leads.values("first_name").distinct().count() == len(bench.FIRST_NAMES)


def test_every_page_it_times_answers():
    world = bench.build_world(leads=LEADS)
    rows = bench.time_admin_pages(world, rounds=1)
    assert [row["page"] for row in rows] == [page for page, _url in bench.admin_pages(world)]
    assert all(row["queries"] > 0 for row in rows)
    assert bench.table(rows).count("\n") == len(rows) + 1


def test_the_traffic_has_times_of_its_own():
    bench.build_world(leads=LEADS)
    assert CallbackEvent.objects.values("received_at").distinct().count() == LEADS // 2
    first = CallbackEvent.objects.earliest("received_at").received_at
    last = CallbackEvent.objects.latest("received_at").received_at
    assert (last - first).total_seconds() == LEADS - 2  # a lead a second, a callback every other lead
