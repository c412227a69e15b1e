"""One call to Vibes for one person (runner/calls.py), with no database: the
tests here have none, so any query would fail them. And the reference that
takes a delivery receipt back to its row (runner/references.py)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from marketing_activities.models import FlowStep, Outcome
from marketing_activities.runner.calls import Call, StepCalls, call_vibes
from marketing_activities.runner.references import receipt_url, result_id_of
from marketing_activities.sms_text import MAX_LENGTH

SEND = StepCalls(FlowStep.Action.SEND_SMS)
NUMBER = "+15551230000"


def test_an_sms_goes_out_with_the_reference_of_its_row(
    vibes_client, vibes_simulator, callback_catcher, settings
):
    settings.VIBES_DELIVERY_RECEIPT_URL = f"{callback_catcher.url}?source=vibes"
    result = call_vibes(vibes_client, SEND, Call(result_id=42, lead_id=7, phone=NUMBER, text="Hi"))
    [message] = vibes_simulator.messages()
    assert (result.outcome, result.message_id) == (Outcome.SENT, message["message_id"])
    query = parse_qs(urlsplit(message["callback_url"]).query)
    assert query["source"] == ["vibes"]
    assert [result_id_of(reference) for reference in query["ref"]] == [42]


def test_without_a_receipt_url_an_sms_asks_for_no_receipt(vibes_client, vibes_simulator, settings):
    settings.VIBES_DELIVERY_RECEIPT_URL = ""
    call_vibes(vibes_client, SEND, Call(result_id=42, lead_id=7, phone=NUMBER, text="Hi"))
    assert receipt_url(42) is None
    assert [message["callback_url"] for message in vibes_simulator.messages()] == [""]


def test_a_text_longer_than_an_sms_may_be_fails_without_calling_vibes(vibes_client, vibes_simulator):
    result = call_vibes(
        vibes_client, SEND, Call(result_id=1, lead_id=1, phone=NUMBER, text="x" * (MAX_LENGTH + 1))
    )
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "too_long")
    assert vibes_simulator.requests_log() == []


def test_an_unsubscribe_of_a_number_vibes_does_not_have_is_already_unsubscribed(
    vibes_client, vibes_simulator
):
    step = StepCalls(FlowStep.Action.UNSUBSCRIBE, vibes_list_id="101")
    result = call_vibes(vibes_client, step, Call(result_id=1, lead_id=1, phone=NUMBER))
    assert result.outcome == Outcome.ALREADY_UNSUBSCRIBED_IN_VIBES


@pytest.mark.parametrize("reference", ["", None, "r", "rx", "r-1", "run-7-result-42", "r١٢", "r" + "9" * 19])
def test_a_reference_that_names_no_row_is_not_read_as_one(reference):
    assert result_id_of(reference) is None
