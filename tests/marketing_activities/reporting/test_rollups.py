"""The SMS figures' rollups follow every change of the SMS they count, and
always equal a recount from the raw rows."""

import datetime
import threading

import pytest
import time_machine
from django.utils import timezone

from marketing_activities.models import CampaignRun, Outcome, SmsReply
from marketing_activities.receipts import handle_receipt, handle_receipts
from marketing_activities.runner import run_abort, run_create, run_execute, run_retry_uncertain
from tests.marketing_activities.campaigns import execute, make_campaign
from tests.marketing_activities.reporting.scenarios import (
    assert_rollups_equal_a_recount,
    click,
    link_campaign,
    people,
    receipt,
    settled,
    totals,
)
from tests.vibes.simulated import make_client
from tests.waiting import DEADLINE, wait_until
from vibes.ratelimit import RateLimiter
from vibes.subscriptions import subscriptions_opt_out_number

pytestmark = pytest.mark.django_db(transaction=True)

NOTHING = dict.fromkeys(
    ("sent", "delivered", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed"), 0
)


@pytest.fixture
def live_news(news, vibes_live_callbacks):
    """The simulator's newsletter, its callbacks (receipts, replies, opt-outs) posted to the live app."""
    return news


def sent_rows(news, simulator, count, *, prefix="+1555300"):
    """`count` SMS that Vibes accepted, no receipt asked for: their rows, oldest first."""
    people(news, count, prefix=prefix)
    run = execute(make_campaign(("send", news)), simulator)
    rows = list(run.steps.get().results().order_by("pk"))
    assert [row.outcome for row in rows] == [Outcome.SENT] * count
    return rows


def test_a_run_with_delivered_and_failed_receipts_and_replies_equals_a_recount(live_news, vibes_simulator):
    people(live_news, 30)
    vibes_simulator.set_faults(receipt_failure_rate=0.4)
    run = execute(make_campaign(("send", live_news)), vibes_simulator)
    rows = run.steps.get().results()
    settled(vibes_simulator, rows, [Outcome.DELIVERED, Outcome.DELIVERY_FAILED])
    # A reply belongs to an SMS that reached the phone: a bounced one reached nobody.
    delivered = list(rows.filter(outcome=Outcome.DELIVERED).values_list("phone", flat=True))
    failed = 30 - len(delivered)
    assert 5 <= len(delivered) < 30, "the fault switch failed some and delivered others"
    for phone in delivered[:5]:
        vibes_simulator.reply(phone, "Thanks")
    vibes_simulator.reply(delivered[0], "Again")  # a second reply to one SMS: still one SMS replied
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: SmsReply.objects.count() == 6, what="the replies")

    assert totals(assert_rollups_equal_a_recount()) == {
        **NOTHING,
        "sent": 30,
        "delivered": 30 - failed,
        "failed_soft": failed,  # the simulator's "failed": a soft bounce
        "replied": 5,
    }


def test_receipts_arriving_after_the_run_finished_move_the_figures_of_the_hour_of_the_call(
    news, vibes_simulator
):
    rows = sent_rows(news, vibes_simulator, 6)
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": 6}
    later = timezone.now() + datetime.timedelta(hours=3)
    with time_machine.travel(later, tick=True):
        # The batch applier's path, a receipt for each row (one redelivered in the batch).
        handle_receipts(
            [
                receipt(rows[0], "delivered"),
                receipt(rows[1], "delivered"),
                receipt(rows[1], "delivered"),
                receipt(rows[2], "undeliverable"),
                receipt(rows[3], "rejected"),
                receipt(rows[4], "expired"),
            ]
        )
    figures = assert_rollups_equal_a_recount()
    assert {key[0] for key in figures} == {rows[0].called_at.replace(minute=0, second=0, microsecond=0)}
    assert totals(figures) == {**NOTHING, "sent": 6, "delivered": 2, "failed_hard": 2, "failed_soft": 1}


def test_receipts_out_of_order_count_once_each_by_the_news_that_stands(news, vibes_simulator):
    rows = sent_rows(news, vibes_simulator, 4)
    now = timezone.now()
    # Failed before Vibes' "accepted": the acknowledgement is older news and changes nothing.
    handle_receipt(receipt(rows[0], "failed", at=now))
    handle_receipt(receipt(rows[0], "accepted", at=now - datetime.timedelta(seconds=5)))
    # Delivered twice: counted once.
    handle_receipt(receipt(rows[1], "delivered", at=now))
    handle_receipt(receipt(rows[1], "delivered", at=now))
    # A later "failed" after "delivered" moves the SMS from one figure to the other.
    handle_receipt(receipt(rows[2], "delivered", at=now))
    handle_receipt(receipt(rows[2], "failed", at=now + datetime.timedelta(seconds=5)))
    # A hard bounce told again later as a soft one: one bounce, now soft.
    handle_receipt(receipt(rows[3], "rejected", at=now))
    handle_receipt(receipt(rows[3], "undelivered", at=now + datetime.timedelta(seconds=5)))
    assert totals(assert_rollups_equal_a_recount()) == {
        **NOTHING,
        "sent": 4,
        "delivered": 1,
        "failed_soft": 3,
    }


def test_an_abort_mid_run_counts_exactly_the_sms_that_went_out(live_news, vibes_simulator, django_user_model):
    people(live_news, 60)
    vibes_simulator.set_faults(rate_limit=20)
    client = make_client(vibes_simulator.url, rate_limiter=RateLimiter(15))
    run = run_create(campaign=make_campaign(("send", live_news)), trigger=CampaignRun.Trigger.COMMAND)
    worker = threading.Thread(target=run_execute, kwargs={"run": run, "client": client, "concurrency": 4})
    worker.start()
    try:
        wait_until(lambda: len(vibes_simulator.messages()) >= 10, what="the run to text ten people")
        run_abort(run=run, by=django_user_model.objects.create_user("marketer"))
    finally:
        worker.join(DEADLINE)
    assert not worker.is_alive()
    texted = len(vibes_simulator.messages())
    rows = run.steps.get().results()
    assert rows.filter(outcome=Outcome.CANCELLED).exists()
    # Every SMS Vibes took is delivered by its receipt (on a busy machine a call
    # may also end uncertain or failed: never sent as far as the figures know).
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: rows.filter(outcome=Outcome.DELIVERED).count() == texted, what="the receipts")
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": texted, "delivered": texted}


def test_uncertain_sms_count_once_settled_by_a_receipt_or_sent_again(live_news, vibes_simulator):
    people(live_news, 20)
    # Every answer a 5xx: half before Vibes processed the SMS (no receipt), half after (a receipt).
    vibes_simulator.set_faults(error_rate=1)
    run = execute(make_campaign(("send", live_news)), vibes_simulator)
    vibes_simulator.set_faults(error_rate=0)
    rows = run.steps.get().results()
    processed = len(vibes_simulator.messages())
    assert 0 < processed < 20
    settled(vibes_simulator, rows.exclude(outcome=Outcome.UNCERTAIN), [Outcome.DELIVERED])
    wait_until(lambda: rows.filter(outcome=Outcome.DELIVERED).count() == processed, what="the receipts")
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": processed, "delivered": processed}

    run_retry_uncertain(run=run)
    run_execute(run=run, client=make_client(vibes_simulator.url))
    settled(vibes_simulator, rows, [Outcome.DELIVERED])
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": 20, "delivered": 20}


def test_a_persons_clicks_count_once_and_a_robots_never(news, vibes_simulator):
    people(news, 3)
    run = execute(link_campaign(news), vibes_simulator)
    first, second, third = run.steps.get().results().order_by("pk")
    click(first)
    click(first)
    click(second, user_agent="facebookexternalhit/1.1")
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": 3, "clicked": 1}


def test_an_unsubscription_counts_for_the_sms_it_followed_within_seven_days(news, vibes_simulator):
    rows = sent_rows(news, vibes_simulator, 3)
    called = rows[0].called_at
    with time_machine.travel(called + datetime.timedelta(days=6, hours=23), tick=False):
        subscriptions_opt_out_number(
            mdn=rows[0].phone, vibes_list=news, reason="user_opt_out", source="callback"
        )
    with time_machine.travel(called + datetime.timedelta(days=7, hours=1), tick=False):
        subscriptions_opt_out_number(
            mdn=rows[1].phone, vibes_list=news, reason="user_opt_out", source="callback"
        )
    assert totals(assert_rollups_equal_a_recount()) == {**NOTHING, "sent": 3, "unsubscribed": 1}


def test_dry_runs_are_never_counted(news, vibes_simulator):
    people(news, 4)
    run = run_create(
        campaign=make_campaign(("send", news)), trigger=CampaignRun.Trigger.COMMAND, dry_run=True
    )
    run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.steps.get().results().filter(outcome=Outcome.PLANNED_DRY_RUN).count() == 4
    assert assert_rollups_equal_a_recount() == {}
