"""Runs whose effects come back from Vibes as callbacks to a live app (R5, R9, receipts)."""

from collections import Counter

import pytest

from marketing_activities.models import CampaignRun, Outcome
from marketing_activities.runner import run_create, run_execute, run_retry_uncertain
from tests.marketing_activities.test_runner_execution import make_campaign, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from tests.vibes.fixtures import make_client
from tests.waiting import DEADLINE, wait_until
from vibes.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def news(vibes_simulator, vibes_live_callbacks):
    vibes_list = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    AcquisitionCampaignFactory(vibes_id="AC-NEWS-WEB", vibes_list=vibes_list)
    return vibes_list


def execute(campaign, simulator, **options):
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    return run_execute(run=run, client=make_client(simulator.url, **options), concurrency=4)


def test_a_subscription_stays_pending_until_the_person_replies_y(news, vibes_simulator):
    lead = LeadFactory(mobile_phone="+15551231000")
    execute(make_campaign(("subscribe", news)), vibes_simulator)
    subscription = Subscription.objects.get(lead=lead, vibes_list=news)
    assert subscription.status == "pending"
    # Pending people get no SMS: a Send run now skips them.
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert send.steps.get().counts == {"skipped_not_subscribed": 1}

    vibes_simulator.reply("+15551231000", "Y")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(
        lambda: Subscription.objects.get(pk=subscription.pk).status == "subscribed", what="the confirmation"
    )
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert send.steps.get().counts == {"sent": 1}


def test_an_opt_out_by_sms_unsubscribes_everyone_with_the_number(news, vibes_simulator):
    first = subscribed(news, mobile_phone="+15551231100")
    second = subscribed(news, mobile_phone="+15551231100")
    vibes_simulator.add_subscriber("101", "+15551231100", external_person_id=str(first.pk))
    vibes_simulator.reply("+15551231100", "STOP")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(
        lambda: not Subscription.objects.filter(vibes_list=news, status="subscribed").exists(),
        what="the opt-out",
    )
    assert set(Subscription.objects.values_list("lead_id", "status", "opt_out_reason")) == {
        (first.pk, "unsubscribed", "user_opt_out"),
        (second.pk, "unsubscribed", "user_opt_out"),
    }
    send = execute(make_campaign(("send", news)), vibes_simulator)
    assert send.steps.get().counts == {"skipped_not_subscribed": 2}
    assert vibes_simulator.messages() == []


def test_delivery_receipts_are_recorded_on_the_sms_they_report(news, vibes_simulator):
    subscribed(news, mobile_phone="+15551231200")
    run = execute(make_campaign(("send", news)), vibes_simulator)
    result = run.steps.get().results().get()
    wait_until(
        lambda: result.__class__.objects.get(pk=result.pk).delivery_status == "delivered", what="the receipt"
    )


def test_receipts_settle_uncertain_sms_so_a_retry_texts_each_number_exactly_once(news, vibes_simulator):
    phones = [f"+1555126{index:04d}" for index in range(60)]
    for phone in phones:
        subscribed(news, mobile_phone=phone)
    vibes_simulator.set_faults(error_rate=0.3)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    vibes_simulator.set_faults(error_rate=0)
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    step = run.steps.get()
    # A 5xx after Vibes processed the SMS left it uncertain; its receipt proved it sent.
    processed = {m["to"] for m in vibes_simulator.messages()}
    wait_until(
        lambda: set(step.results().filter(outcome=Outcome.SENT).values_list("phone", flat=True)) == processed,
        what="the receipts of the processed SMS",
    )
    run_retry_uncertain(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert Counter(m["to"] for m in vibes_simulator.messages()) == Counter(phones)
    step.refresh_from_db()
    assert step.counts == {"sent": 60}
