"""The scale benchmark's world is what it claims (the issue's proportions at
any size, every reason of a Send's plan present), and every screen it times
answers."""

import pytest
from django.db import connection

from benchmarks import scale
from marketing_activities.models import AudienceCount, CampaignRun, Outcome
from smscampaigns.models import Lead
from vibes.models import CallbackEvent, InboundMessage, Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db


def test_the_world_has_the_issues_proportions_and_a_dry_run_with_every_reason_of_a_send():
    world = scale.build(leads=4000, progress=lambda line: None)
    assert Lead.objects.count() == 4000
    assert Subscription.objects.count() == SubscriptionChange.objects.count() == 4000 * 369 // 1000
    assert CallbackEvent.objects.count() == 400 and InboundMessage.objects.count() == 40
    run = CampaignRun.objects.get(pk=world.run_id)
    counts = run.steps.get().counts
    assert run.dry_run and sum(counts.values()) == run.audience == 4000 * 925 // 1000
    assert set(counts) == {
        outcome.code
        for outcome in (
            Outcome.PLANNED_DRY_RUN,
            Outcome.SKIPPED_DUPLICATE_PHONE,
            Outcome.SKIPPED_BLOCKLISTED,
            Outcome.SKIPPED_MARKETING_SUSPENDED,
            Outcome.SKIPPED_NUMBER_BLOCKLISTED,
            Outcome.SKIPPED_NUMBER_SUSPENDED,
            Outcome.SKIPPED_NO_PHONE,
            Outcome.SKIPPED_NOT_SUBSCRIBED,
        )
    }
    assert scale.existing_world().run_id == world.run_id  # --reuse finds it


def test_every_screen_it_times_answers(monkeypatch):
    # The Smart List's exact count in the background, as on PostgreSQL past its limit.
    monkeypatch.setattr("marketing_activities.views.smart_list.COUNTED_UP_TO", 100)
    monkeypatch.setattr(
        "marketing_activities.views.smart_list.COUNTED_IN_BACKGROUND_ON", (connection.vendor,)
    )
    world = scale.build(leads=2000, progress=lambda line: None)
    rows = scale.measure(world, rounds=1, progress=lambda line: None)
    timed = [row["screen"] for row in rows]
    assert [name for name in timed if ": " not in name] == [name for name, *_rest in scale.screens(world)]
    # The counts requests: each also one poll, and the time until its counts are ready.
    assert "Run-now confirmation's counts (tab): one poll while counting" in timed
    assert "Run-now confirmation's counts (admin): until the counts are ready (not a request)" in timed
    assert "Smart List tab, its exact count asked for: one poll while counting" in timed
    assert "Smart List tab, its exact count asked for: until the counts are ready (not a request)" in timed
    assert {row["status"] for row in rows} == {200}
    assert AudienceCount.objects.exists() and not AudienceCount.objects.filter(finished_at=None).exists()
    assert "| Results of the big run |" in scale.table(rows, world=world)


def test_the_results_searches_it_times_find_their_person(admin_client):
    world = scale.build(leads=5000, progress=lambda line: None)  # the rare name is lead 4242's
    searches = {name: url for name, _method, url, _data in scale.screens(world)}
    person = Lead.objects.get(pk=world.leads // 2 + 1)
    assert person.mobile_phone in admin_client.get(searches["Results searched by a number"]).content.decode()
    rare = admin_client.get(searches["Results searched by a rare name"]).content.decode()
    assert scale.RARE_NAME in rare and "Nobody matches these filters." not in rare
