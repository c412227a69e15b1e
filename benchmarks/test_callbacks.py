"""Median server time (Django test client) of Vibes callbacks on a big list.

100,000 leads, 10% of them sharing a number with the lead before, 30% subscribed
to the list. Target: a subscription callback under 50 ms median, whatever
the size of the list (its subscriptions are found by index, never scanned).
"""

import datetime
import itertools
import json

import pytest
from django.db import transaction
from django.utils import timezone

from benchmarks.conftest import CALLBACK_AUTH
from smscampaigns.models import Lead
from vibes.models import Subscription, VibesList

pytestmark = pytest.mark.django_db

LEADS = 100_000
TARGET_SECONDS = 0.050


@pytest.fixture(scope="module")
def big_list(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        vibes_list = VibesList.objects.create(vibes_id="101", name="SMS Newsletter")
        numbers = [f"+1212{n - (n % 10 == 1):07d}" for n in range(LEADS)]  # every tenth shares
        leads = Lead.objects.bulk_create(
            (Lead(email=f"p{n}@bench.invalid", mobile_phone=numbers[n]) for n in range(LEADS)),
            batch_size=5_000,
        )
        since = timezone.now().replace(year=2026, month=1, day=1)
        Subscription.objects.bulk_create(
            (
                Subscription(lead=lead, vibes_list=vibes_list, status="subscribed", status_at=since)
                for lead in leads[::3]
            ),
            batch_size=5_000,
        )
        yield numbers
        transaction.set_rollback(True)


def run(benchmark, post, event_type, bodies, status=200):
    bodies = iter(bodies)
    benchmark.pedantic(
        post, setup=lambda: ((event_type, next(bodies), status), {}), rounds=30, warmup_rounds=3, iterations=1
    )
    return benchmark.stats.stats.median


def subscription(number, second, **extra):
    return json.dumps(
        {
            "subscription_list": {"id": "101"},
            "mobile_phone": {"mdn": number},
            "opt_in_date": f"2026-11-01T09:00:{second % 60:02d}Z",
            **extra,
        }
    )


def test_an_opt_out_of_a_shared_number(benchmark, big_list, post):
    shared = (big_list[n] for n in itertools.count(1, 10))
    bodies = (subscription(number, 0, opt_out_date="2026-11-10T09:00:00Z") for number in shared)
    assert run(benchmark, post, "subscription_removed", bodies) < TARGET_SECONDS


def test_a_late_opt_in_that_changes_nothing(benchmark, big_list, post):
    number = big_list[3]
    post("subscription_removed", subscription(number, 0, opt_out_date="2026-11-10T09:00:00Z"))
    bodies = (subscription(number, second) for second in itertools.count())
    assert run(benchmark, post, "subscription_added", bodies) < TARGET_SECONDS


def test_a_body_nested_100000_levels(benchmark, post):
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    run(benchmark, post, "person_added", itertools.repeat(deep), status=400)


def test_a_flat_body_of_2_4_megabytes(benchmark, post):
    """The depth and value checks read the whole body: the largest Django takes by default."""
    items = [{"n": n, "text": "x" * 8} for n in range(70_000)]
    bodies = (json.dumps({"round": r, "items": items}) for r in itertools.count())
    run(benchmark, post, "person_added", bodies)


# --- Results that follow the events: a step of 100,000 rows -----------------------------------------


@pytest.fixture(scope="module")
def big_steps(big_list, django_db_blocker):
    """A Send step and a Subscribe step of a finished run, one row per lead of the big list:
    the Send step's rows sent, every third Subscribe row pending (its number's only one)."""
    from marketing_activities.models import FlowStep, Outcome, RunResult, RunStep
    from marketing_activities.runner.planner import count_outcomes
    from tests.marketing_activities.factories import CampaignRunFactory

    with django_db_blocker.unblock(), transaction.atomic():
        vibes_list = VibesList.objects.get(vibes_id="101")
        run = CampaignRunFactory(started_at=timezone.now().replace(year=2026, month=1, day=1))
        steps = {}
        for position, action in enumerate((FlowStep.Action.SEND_SMS, FlowStep.Action.SUBSCRIBE)):
            step = RunStep.objects.create(
                run=run, position=position, action=action, vibes_list=vibes_list, planned_at=run.started_at
            )
            pending = action == FlowStep.Action.SUBSCRIBE
            rows = RunResult.objects.bulk_create(
                (
                    RunResult(
                        run_step=step,
                        lead_id=lead_id,
                        phone=phone,
                        outcome=(Outcome.PENDING if n % 10 != 1 and n % 3 == 0 else Outcome.SKIPPED_NO_PHONE)
                        if pending
                        else Outcome.SENT,
                        updated_at=run.started_at,
                    )
                    for n, (lead_id, phone) in enumerate(
                        Lead.objects.filter(email__endswith="@bench.invalid")
                        .order_by("pk")
                        .values_list("pk", "mobile_phone")
                    )
                ),
                batch_size=5_000,
            )
            step.first_result_id, step.last_result_id = rows[0].pk, rows[-1].pk
            step.counts = count_outcomes(step.pk, step.first_result_id, step.last_result_id)
            step.save()
            steps[action] = (step, rows)
        yield steps
        transaction.set_rollback(True)


def receipt(message, status="delivered"):
    return json.dumps({"message_id": message, "status": status, "occurred_at": "2026-11-01T09:00:00Z"})


def test_a_receipt_settling_an_sms_of_a_100000_row_step(benchmark, big_steps, client, post):
    """The row, by its reference, and the step's counts with it."""
    _step, rows = big_steps["send_sms"]
    references = (f"/vibes/callbacks/?ref=r{row.pk}" for row in rows[::7])

    def post_receipt(url):
        response = client.post(
            url, receipt("M1"), content_type="application/json", headers={"Authorization": CALLBACK_AUTH}
        )
        assert response.json() == {"status": "applied"}, response.content

    benchmark.pedantic(post_receipt, setup=lambda: ((next(references),), {}), rounds=30, warmup_rounds=3)
    assert benchmark.stats.stats.median < TARGET_SECONDS


def test_a_confirmation_moving_a_subscribe_row_of_a_100000_row_step(benchmark, big_steps, big_list, post):
    """The number's people by index, their pending rows by the partial index on a lead's calls."""
    _step, rows = big_steps["subscribe_vibes_list"]
    numbers = (row.phone for row in rows if row.outcome == 12)
    bodies = (subscription(number, 0) for number in numbers)
    assert run(benchmark, post, "subscription_added", bodies) < TARGET_SECONDS


def test_an_unreadable_xml_receipt_kept_for_an_operator(benchmark, post):
    bodies = (
        f'<mtMessageResponse messageId="{n}"><status isError="false"/></mtMessageResponse>'
        for n in itertools.count()
    )
    run(benchmark, post, "", bodies)


def test_expiring_the_pending_rows_of_a_100000_row_subscribe_step(benchmark, big_steps):
    """The periodic job once the window has passed for every pending row: one range scan and update."""
    from marketing_activities.models import Outcome
    from marketing_activities.runner.followup import results_expire_confirmations
    from marketing_activities.runner.planner import record_counts

    step, _rows = big_steps["subscribe_vibes_list"]
    later = timezone.now() + datetime.timedelta(days=400)

    def pending_again():
        step.results().filter(outcome=Outcome.EXPIRED).update(outcome=Outcome.PENDING)
        record_counts(step)
        return (), {}

    benchmark.pedantic(
        lambda: results_expire_confirmations(now=later), setup=pending_again, rounds=10, warmup_rounds=1
    )
