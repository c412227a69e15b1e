"""The SMS figures benchmark's world is what it claims (its shares of receipts,
bounces, replies, clicks and unsubscriptions), its rollups equal a recount,
and every figure it times answers."""

import pytest

from benchmarks import reporting
from marketing_activities.models import RunResult
from marketing_activities.reporting.figures import Scope, SmsFigures, sms_figures
from marketing_activities.reporting.rollups import sms_rollups_differences
from vibes.models import CallbackEvent

pytestmark = pytest.mark.django_db

ROWS = 20_000


def test_the_world_has_its_shares_and_rollups_that_equal_a_recount():
    reporting.build(rows=ROWS, leads=3000, progress=lambda line: None)
    assert RunResult.objects.count() == ROWS
    assert CallbackEvent.objects.count() == ROWS // 5
    assert sms_rollups_differences() == []
    receipts = ROWS // 5
    # Replies (i % 100 = 11) and clicks (i % 50 = 7, a robot's at i % 500 = 7) fall on
    # rows with a receipt or sent; unsubscriptions (i % 200 = 3) half within 7 days.
    assert sms_figures(Scope("installation")) == SmsFigures(
        sent=ROWS * 9 // 10,
        delivered=receipts * 17 // 20,
        failed=receipts * 3 // 20,
        failed_hard=receipts // 20,
        failed_soft=receipts * 2 // 20,
        replied=ROWS // 100,
        clicked=ROWS // 50 - ROWS // 500,
        unsubscribed=ROWS // 400,
    )
    assert reporting.existing_world().campaign_id is not None  # --reuse finds it


def test_every_figure_it_times_answers():
    world = reporting.build(rows=5_000, leads=1000, progress=lambda line: None)
    rows = reporting.measure(world, rounds=1, progress=lambda line: None)
    assert len(rows) == len(reporting.calls(world)) == 20
    assert "| installation: daily, last 365 days |" in reporting.table(rows, world=world)
