"""Running campaigns against the Vibes simulator over real HTTP (R1–R9)."""

from collections import Counter

import pytest

from marketing_activities.models import CampaignRun, Outcome, RunStep
from marketing_activities.runner import run_create, run_execute, run_resume, run_retry_uncertain
from smscampaigns.models import Lead
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.simulated import make_client
from vibes.models import Subscription

pytestmark = pytest.mark.django_db


def counts(run):
    total = Counter()
    for step in run.steps.all():
        total.update(step.counts)
    return dict(total)


def test_send_texts_every_subscribed_number_once_with_its_personal_text(news, vibes_simulator):
    anna = subscribed(news, first_name="Anna", mobile_phone="(555) 123-4567")
    subscribed(news, first_name="Twin", mobile_phone="+15551234567")
    subscribed(news, first_name="", mobile_phone="+15551230002")
    subscribed(news, blocklisted=True, mobile_phone="+15551230003")
    LeadFactory(mobile_phone="+15551230004")  # not on the list
    run = execute(make_campaign(("send", news)), vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    messages = sorted((m["to"], m["text"], m["from"]) for m in vibes_simulator.messages())
    assert messages == [
        ("+15551230002", "Hi there, 20% off today.", "12345"),
        ("+15551234567", "Hi Anna, 20% off today.", "12345"),
    ]
    step = run.steps.get()
    assert step.counts == {
        "sent": 2,
        "skipped_duplicate_phone": 1,
        "skipped_blocklisted": 1,
        "skipped_not_subscribed": 1,
    }
    sent = step.results().get(lead=anna)
    assert sent.vibes_message_id and sent.outcome == Outcome.SENT
    assert run.progress_done == run.progress_total == 2


def test_a_number_shared_with_a_blocklisted_person_gets_no_sms(news, vibes_simulator):
    blocked = subscribed(news, first_name="Blocked", mobile_phone="+15551230500", blocklisted=True)
    clean = subscribed(news, first_name="Clean", mobile_phone="(555) 123-0500")
    other = subscribed(news, first_name="Other", mobile_phone="+15551230501")
    run = execute(make_campaign(("send", news)), vibes_simulator)
    texts = [(m["to"], m["text"]) for m in vibes_simulator.messages()]
    assert texts == [("+15551230501", "Hi Other, 20% off today.")]
    step = run.steps.get()
    assert step.results().get(lead=blocked).outcome == Outcome.SKIPPED_BLOCKLISTED
    skipped = step.results().get(lead=clean)
    assert (skipped.outcome, skipped.blocked_by_id, skipped.phone) == (
        Outcome.SKIPPED_NUMBER_BLOCKLISTED,
        blocked.pk,
        "+15551230500",
    )
    assert step.results().get(lead=other).outcome == Outcome.SENT
    assert run.progress_done == run.progress_total == 1


def test_a_number_held_by_a_suspended_person_outside_the_smart_list_is_not_enrolled(news, vibes_simulator):
    suspended = LeadFactory(mobile_phone="+15551230510", marketing_suspended=True, country="SE")
    clean = LeadFactory(mobile_phone="+15551230510")
    newcomer = LeadFactory(mobile_phone="+15551230511")
    run = execute(make_campaign(("subscribe", news)), vibes_simulator)
    assert run.steps.get().counts == {"pending": 1, "skipped_number_suspended": 1}
    assert [s["mdn"] for s in vibes_simulator.subscriptions()] == ["+15551230511"]
    result = run.steps.get().results().get(lead=clean)
    assert (result.outcome, result.blocked_by_id) == (Outcome.SKIPPED_NUMBER_SUSPENDED, suspended.pk)
    assert not Subscription.objects.filter(lead__in=[clean, suspended]).exists()
    assert Subscription.objects.get(lead=newcomer).status == "pending"


def test_a_block_made_after_planning_holds_when_the_calls_are_made(news, vibes_simulator):
    subscribed(news, mobile_phone="+15551230520")
    shares = subscribed(news, mobile_phone="+15551230521")
    turns = subscribed(news, mobile_phone="+15551230522")
    run = execute(make_campaign(("send", news)), vibes_simulator, password="wrong")
    assert run.steps.get().counts == {"queued": 3}  # planned, nobody called yet
    # Before the run is resumed, an import blocklists one person, and a
    # suspended person outside the smart list turns up on another's number.
    Lead.objects.filter(pk=turns.pk).update(blocklisted=True)
    blocker = LeadFactory(mobile_phone="+15551230521", marketing_suspended=True, country="SE")
    run_resume(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.status == CampaignRun.Status.COMPLETED
    assert [m["to"] for m in vibes_simulator.messages()] == ["+15551230520"]
    step = run.steps.get()
    assert step.counts == {"sent": 1, "skipped_number_suspended": 1, "skipped_blocklisted": 1}
    assert step.results().get(lead=shares).blocked_by_id == blocker.pk
    assert run.progress_done == run.progress_total == 1


def test_a_rerun_or_resumed_run_never_sends_again(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    CampaignRun.objects.filter(pk=run.pk).update(status=CampaignRun.Status.FAILED)
    run_resume(run=run)
    run_execute(run=run, client=make_client(vibes_simulator.url))
    assert len(vibes_simulator.messages()) == 3


def test_subscribe_adds_participants_who_stay_pending_and_get_no_send_in_the_same_run(news, vibes_simulator):
    newcomer = LeadFactory(mobile_phone="+15551230010")
    member = subscribed(news, mobile_phone="+15551230011")
    vibes_simulator.add_subscriber("101", "+15551230011", external_person_id=str(member.pk))
    run = execute(make_campaign(("subscribe", news), ("send", news)), vibes_simulator)
    subscribe_step, send_step = run.steps.order_by("position")
    assert subscribe_step.counts == {"pending": 1, "skipped_already_subscribed": 1}
    assert send_step.counts == {"sent": 1, "skipped_not_subscribed": 1}
    assert [m["to"] for m in vibes_simulator.messages()] == ["+15551230011"]
    subscription = Subscription.objects.get(lead=newcomer, vibes_list=news)
    assert subscription.status == "pending" and subscription.acquisition_campaign.vibes_id == "AC-NEWS-WEB"


def test_already_subscribed_in_vibes_counts_as_subscribed(news, vibes_simulator):
    lead = LeadFactory(mobile_phone="+15551230020")
    vibes_simulator.add_subscriber("101", "+15551230020", external_person_id=str(lead.pk))
    run = execute(make_campaign(("subscribe", news)), vibes_simulator)
    result = run.steps.get().results().get()
    assert (result.outcome, result.detail) == (Outcome.SUBSCRIBED, "already subscribed in Vibes")
    assert Subscription.objects.get(lead=lead, vibes_list=news).status == "subscribed"


def test_a_confirmation_block_is_recorded_and_never_retried(news, vibes_simulator):
    lead = LeadFactory(mobile_phone="+15551230030")
    execute(make_campaign(("subscribe", news)), vibes_simulator)
    vibes_simulator.reply("+15551230030", "N")
    Subscription.objects.filter(lead=lead).delete()
    run = execute(make_campaign(("subscribe", news)), vibes_simulator)
    result = run.steps.get().results().get()
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "MDNHASCONFIRMATIONBLOCK")
    posts = [r for r in vibes_simulator.requests_log() if r["method"] == "POST" and r["status"] == 422]
    assert len(posts) == 1


def test_unsubscribe_opts_out_every_person_with_the_number(news, vibes_simulator):
    first = subscribed(news, mobile_phone="+15551230040")
    second = subscribed(news, mobile_phone="+15551230040", country="SE")  # not in the smart list
    vibes_simulator.add_subscriber("101", "+15551230040", external_person_id=str(first.pk))
    run = execute(make_campaign(("unsubscribe", news)), vibes_simulator)
    assert run.steps.get().counts == {"unsubscribed": 1}
    assert set(Subscription.objects.filter(vibes_list=news).values_list("lead_id", "status")) == {
        (first.pk, "unsubscribed"),
        (second.pk, "unsubscribed"),
    }
    assert not [s for s in vibes_simulator.subscriptions() if s.get("status") == "subscribed"]


def test_under_faults_a_run_completes_its_counts_add_up_and_nothing_is_sent_twice(news, vibes_simulator):
    phones = [f"+1555124{index:04d}" for index in range(120)]
    for phone in phones:
        subscribed(news, mobile_phone=phone)
    vibes_simulator.set_faults(error_rate=0.2, rate_limit=60)
    campaign = make_campaign(("send", news))
    run = execute(campaign, vibes_simulator, max_attempts=8, backoff_base=0.05, backoff_max=0.5)
    assert run.status == CampaignRun.Status.COMPLETED
    step = run.steps.get()
    assert sum(step.counts.values()) == run.audience == 120
    assert set(step.counts) <= {"sent", "uncertain", "failed"}
    processed = Counter(r["to"] for r in vibes_simulator.messages())
    assert max(processed.values()) == 1
    # Every SMS Vibes processed is either recorded sent or left uncertain (a
    # 5xx after processing): none is recorded as failed or lost.
    sent = set(step.results().filter(outcome=Outcome.SENT).values_list("phone", flat=True))
    uncertain = set(step.results().filter(outcome=Outcome.UNCERTAIN).values_list("phone", flat=True))
    assert sent <= set(processed) <= sent | uncertain
    posts = [r for r in vibes_simulator.requests_log() if r["method"] == "POST"]
    assert any(r["status"] == 429 for r in posts) and any(r["status"] >= 500 for r in posts)


def test_retry_uncertain_resends_only_what_the_operator_asks_for(news, vibes_simulator):
    for index in range(40):
        subscribed(news, mobile_phone=f"+1555125{index:04d}")
    vibes_simulator.set_faults(error_rate=0.3)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    uncertain = run.steps.get().counts.get("uncertain", 0)
    assert uncertain
    vibes_simulator.set_faults(error_rate=0)
    assert run_retry_uncertain(run=run) == uncertain
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get().counts == {"sent": 40}


def test_a_run_stops_when_vibes_refuses_the_credentials_and_nothing_is_lost(news, vibes_simulator):
    for _ in range(3):
        subscribed(news)
    run = execute(make_campaign(("send", news)), vibes_simulator, password="wrong")
    assert run.status == CampaignRun.Status.FAILED
    assert "credentials" in run.error
    assert run.steps.get().counts == {"queued": 3}
    run_resume(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.steps.get().counts == {"sent": 3}
    assert len(vibes_simulator.messages()) == 3


def test_dry_run_plans_and_calls_nobody(news, vibes_simulator):
    subscribed(news)
    run = run_create(
        campaign=make_campaign(("send", news)), trigger=CampaignRun.Trigger.COMMAND, dry_run=True
    )
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.status == CampaignRun.Status.COMPLETED
    assert run.steps.get().counts == {"planned_dry_run": 1}
    assert run.steps.get().status == RunStep.Status.DONE
    assert vibes_simulator.messages() == []
