"""Which SMS a reply answers: the one sent to its number last before the
reply's own time, whatever the campaign."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing_activities.models import FlowStep, Outcome, SmsReply
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.texts import inbound_sms
from vibes.models import InboundMessage

pytestmark = pytest.mark.django_db

NUMBER = "+15551238000"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def post(vibes_callback_post):
    return vibes_callback_post


def at(minutes, seconds=0.0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def sms(lead, when, *, outcome=Outcome.SENT, action=FlowStep.Action.SEND_SMS, **fields):
    """An SMS of its own run and campaign, called at `when`."""
    fields = {"called_at": when, "updated_at": when, **fields}
    return RunResultFactory(run_step=RunStepFactory(action=action), lead=lead, outcome=outcome, **fields)


def reply(post, when, text="What time do you open?", *, mdn=NUMBER):
    response = post(
        inbound_sms(text, mdn=mdn, message_id=f"MO-{when.isoformat()}", occurred_at=when.isoformat())
    )
    assert response.status_code == 200
    return InboundMessage.objects.get(vibes_message_id=f"MO-{when.isoformat()}")


def replied_to(message):
    found = SmsReply.objects.filter(message=message).first()
    return found.result if found else None


def test_a_reply_belongs_to_the_sms_sent_to_its_number_last_before_it(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    first, second = sms(lead, at(0)), sms(lead, at(60))
    assert replied_to(reply(post, at(61))) == second
    # Delivered late, after the second SMS went out: its own time says it answered the first.
    assert replied_to(reply(post, at(30))) == first


def test_a_refused_sms_reached_nobody_so_nobody_replied_to_it(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    sent = sms(lead, at(0))
    sms(lead, at(60), outcome=Outcome.FAILED)
    assert replied_to(reply(post, at(61))) == sent


@pytest.mark.parametrize("outcome", [Outcome.UNCERTAIN, Outcome.SENDING])
def test_an_sms_that_may_have_gone_out_can_be_replied_to(post, outcome):
    lead = LeadFactory(mobile_phone=NUMBER)
    sms(lead, at(0))
    maybe = sms(lead, at(60), outcome=outcome)
    assert replied_to(reply(post, at(61))) == maybe


def test_calls_of_subscribe_and_unsubscribe_steps_are_no_sms(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    sent = sms(lead, at(0))
    sms(lead, at(60), outcome=Outcome.UNCERTAIN, action=FlowStep.Action.SUBSCRIBE)
    sms(lead, at(61), outcome=Outcome.UNCERTAIN, action=FlowStep.Action.UNSUBSCRIBE)
    assert replied_to(reply(post, at(62))) == sent


def test_a_reply_from_a_shared_number_goes_to_the_person_who_got_the_sms(post):
    ann, bob = LeadFactory(mobile_phone=NUMBER), LeadFactory(mobile_phone=NUMBER)
    got_it = sms(ann, at(0))
    RunResultFactory(
        run_step=got_it.run_step,
        lead=bob,
        outcome=Outcome.SKIPPED_DUPLICATE_PHONE,
        phone="",
        duplicate_of=ann,
    )
    message = reply(post, at(1))
    assert replied_to(message) == got_it
    assert set(message.leads.all()) == {ann, bob}


def test_a_text_from_a_number_no_run_texted_is_kept_without_a_campaign(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    sms(LeadFactory(mobile_phone="+15551238001"), at(0))
    message = reply(post, at(1))
    assert list(message.leads.all()) == [lead]
    assert replied_to(message) is None


def test_a_text_sent_before_any_sms_is_no_reply(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    sms(lead, at(10))
    assert replied_to(reply(post, at(5))) is None


def test_an_sms_sent_within_the_second_of_the_reply_counts_as_before_it(post):
    """Vibes may give the reply's time to the second only."""
    lead = LeadFactory(mobile_phone=NUMBER)
    sent = sms(lead, at(0, seconds=0.7))
    assert replied_to(reply(post, at(0))) == sent


def test_an_sms_sent_to_the_lead_at_another_number_is_not_replied_to_from_this_one(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    sent = sms(lead, at(0))
    sms(lead, at(60), phone="+15551238009")  # the lead's number then
    assert replied_to(reply(post, at(61))) == sent


def test_rows_sent_before_call_times_were_recorded_are_matched_by_their_last_update(post):
    lead = LeadFactory(mobile_phone=NUMBER)
    old = sms(lead, None, updated_at=at(0))
    assert replied_to(reply(post, at(1))) == old


def test_matching_takes_the_same_queries_however_many_sms_went_to_the_number(post):
    def queries_for_a_reply(minute):
        with CaptureQueriesContext(connection) as captured:
            reply(post, at(minute))
        return len(captured)

    lead = LeadFactory(mobile_phone=NUMBER)
    sms(lead, at(0))
    one = queries_for_a_reply(1)
    for minute in range(2, 32):
        sms(lead, at(minute))
    assert queries_for_a_reply(40) == one
