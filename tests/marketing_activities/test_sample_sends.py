"""Send a sample: the message, rendered for a chosen person, texted to a
verified test number through Vibes, recorded as a sample and never counted."""

import datetime
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from marketing_activities.models import RunResult, SampleSend, SentSms, TestNumber
from marketing_activities.sample_sends import sms_message_send_sample
from smscampaigns.models import Lead
from tests.marketing_activities.factories import (
    ProgramTokenFactory,
    SmsMessageFactory,
    TestNumberFactory,
)
from tests.marketing_activities.ui_helpers import HTMX, url
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db

TEXT = 'Hi {{lead.first_name|default:"there"}}, {{my.offer}}: https://shop.example/?c={{lead.city}}'


@pytest.fixture
def message():
    token = ProgramTokenFactory(name="offer", value="20% off")
    return SmsMessageFactory(program=token.program, name="Teaser", text=TEXT)


def test_a_sample_goes_through_vibes_and_is_recorded_as_a_sample_only(staff_client, vibes_simulator, message):
    test_number = TestNumberFactory(number="+13125550201", label="Maria's phone")
    anna = LeadFactory(first_name="Anna", city="Los Angeles")
    response = staff_client.post(
        url("sms_message", message.pk),
        {
            "name": "Teaser",
            "text": message.text,
            "lead": anna.pk,
            "test_number": test_number.pk,
            "send_sample": "1",
        },
        headers={**HTMX, "HX-Target": "sms-editor"},
    )
    assert response.status_code == 200
    assert "Sample sent to Maria&#x27;s phone (+13125550201)." in response.content.decode()
    # Vibes, over real HTTP, got it: the person's values, the program's token, the address as typed.
    expected = "Hi Anna, 20% off: https://shop.example/?c=Los%20Angeles"
    [sent] = vibes_simulator.messages()
    assert (sent["to"], sent["text"]) == ("+13125550201", expected)
    sample = SampleSend.objects.get()
    assert (sample.sms_message, sample.lead, sample.number, sample.text) == (
        message,
        anna,
        "+13125550201",
        expected,
    )
    assert (sample.status, sample.message_id, sample.sent_by) == (
        SampleSend.Status.SENT,
        sent["message_id"],
        staff_client.user,
    )
    # Never a run's row: no Result, no tracked link, no activity of the person.
    assert not RunResult.objects.exists() and not SentSms.objects.exists()


def test_a_sample_sends_the_text_as_typed_without_saving_it(staff_client, vibes_simulator, message):
    test_number = TestNumberFactory()
    staff_client.post(
        url("sms_message", message.pk),
        {
            "name": "Teaser",
            "text": "Draft for {{lead.first_name}}",
            "test_number": test_number.pk,
            "send_sample": "1",
        },
    )
    assert [m["text"] for m in vibes_simulator.messages()] == ["Draft for "]
    message.refresh_from_db()
    assert message.text == TEXT


def test_a_sample_to_an_unverified_number_is_refused(vibes_simulator, message, admin_user):
    unverified = TestNumber.objects.create(number="+13125550202")
    with pytest.raises(ValidationError) as error:
        sms_message_send_sample(message=message, test_number=unverified, lead=None, user=admin_user)
    assert error.value.messages == [
        "The test number +13125550202 is not verified: an administrator verifies it under Test numbers."
    ]
    assert not vibes_simulator.messages() and not SampleSend.objects.exists()


@pytest.mark.parametrize(
    ("flag", "reason"), [("blocklisted", "blocklisted"), ("marketing_suspended", "marketing suspended")]
)
def test_a_sample_to_a_blocked_number_is_refused_naming_the_block(
    vibes_simulator, message, admin_user, flag, reason
):
    test_number = TestNumberFactory(number="+13125550203")
    LeadFactory(mobile_phone="+13125550203")
    blocker = LeadFactory(mobile_phone="+13125550203", first_name="Bo", last_name="Block", **{flag: True})
    with pytest.raises(ValidationError) as error:
        sms_message_send_sample(message=message, test_number=test_number, lead=None, user=admin_user)
    assert error.value.messages == [
        f"The test number +13125550203 is blocked: {blocker}, who has this number, is {reason}."
    ]
    assert not vibes_simulator.messages() and not SampleSend.objects.exists()


def test_a_sample_waits_for_the_test_numbers_sending_window(vibes_simulator, message, admin_user, settings):
    settings.QUIET_HOURS_ENABLED = True
    los_angeles = zoneinfo.ZoneInfo("America/Los_Angeles")
    test_number = TestNumberFactory(number="+12135550100")  # area code 213: Los Angeles
    with time_machine.travel(datetime.datetime(2026, 6, 15, 6, 30, tzinfo=los_angeles), tick=False):
        with pytest.raises(ValidationError) as error:
            sms_message_send_sample(message=message, test_number=test_number, lead=None, user=admin_user)
    assert error.value.messages[0].startswith(
        "Quiet hours: it is outside the sending window at the test number +12135550100; try again from "
    )
    assert not vibes_simulator.messages() and not SampleSend.objects.exists()
    with time_machine.travel(datetime.datetime(2026, 6, 15, 8, 0, tzinfo=los_angeles), tick=False):
        sms_message_send_sample(message=message, test_number=test_number, lead=None, user=admin_user)
    assert [sms["to"] for sms in vibes_simulator.messages()] == ["+12135550100"]


def test_the_editor_says_why_no_sample_was_sent(staff_client, vibes_simulator, message):
    test_number = TestNumberFactory(number="+13125550204")
    Lead.objects.create(mobile_phone="+13125550204", blocklisted=True)
    html = staff_client.post(
        url("sms_message", message.pk),
        {
            "name": "Teaser",
            "text": "Hi {{lead.shoe_size}}",
            "test_number": test_number.pk,
            "send_sample": "1",
        },
        headers={**HTMX, "HX-Target": "sms-editor"},
    ).content.decode()
    assert "No sample sent: “{{lead.shoe_size}}”: unknown field “shoe_size”." in html
    assert not vibes_simulator.messages()


def test_a_sample_vibes_refuses_is_recorded_with_vibes_answer(vibes_simulator, message, admin_user):
    vibes_simulator.set_faults(error_rate=1.0)
    sample = sms_message_send_sample(
        message=message, test_number=TestNumberFactory(), lead=None, user=admin_user
    )
    assert sample.status in (SampleSend.Status.FAILED, SampleSend.Status.UNCERTAIN)
    assert sample.vibes_answer


def test_the_editor_offers_only_verified_test_numbers(staff_client, message):
    TestNumberFactory(number="+13125550205", label="Verified")
    TestNumber.objects.create(number="+13125550206", label="Not yet")
    html = staff_client.get(url("sms_message", message.pk)).content.decode()
    assert "Verified (+13125550205)" in html and "+13125550206" not in html


def test_an_administrator_adding_a_test_number_verifies_it(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:marketing_activities_testnumber_add"),
        {"number": "(312) 555-0207", "label": "Lab phone"},
    )
    assert response.status_code == 302
    number = TestNumber.objects.get()
    assert (number.number, number.verified_by, number.is_verified) == ("+13125550207", admin_user, True)


def test_a_test_number_that_cannot_take_sms_is_refused_in_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:marketing_activities_testnumber_add"), {"number": "12", "label": ""}
    )
    assert response.status_code == 200
    assert "has the wrong number of digits" in response.content.decode()
    assert not TestNumber.objects.exists()
