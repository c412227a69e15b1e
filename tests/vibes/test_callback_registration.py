"""`manage.py vibes_callbacks register|list|test` against the simulator over HTTP:
every event type the app reads is registered where Vibes offers it, a second
register changes nothing, a stale registration of ours is updated, and a
test event is reported as arrived (or not) by a deadline."""

import io
import logging

import pytest
from django.core.management import CommandError, call_command

from tests.vibes.factories import SubscriptionFactory
from tests.vibes.simulated import APP_URL, CALLBACK_PASSWORD, CALLBACK_USERNAME
from vibes.callback_types import CONNECT_TYPES, PLATFORM_TYPES
from vibes.callbacks import APPLIERS
from vibes.conf import get_client
from vibes.models import (
    CallbackEvent,
    CallbackTest,
    ConnectCallback,
    Subscription,
    SubscriptionChange,
    VibesList,
)
from vibes.registration import CallbacksNotConfigured, callbacks_register, callbacks_url
from vibes.registration.testing import TESTABLE_TYPES
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db

PLATFORM_READ = {t for t in APPLIERS if t in PLATFORM_TYPES}
# The types read whose test event the app can send (not unmatched_message_received).
TESTED = PLATFORM_READ & TESTABLE_TYPES
CONNECT_READ = {t for t in APPLIERS if t in CONNECT_TYPES}


def run(*args) -> str:
    out = io.StringIO()
    call_command("vibes_callbacks", *args, stdout=out)
    return out.getvalue()


def writes(simulator) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in simulator.requests_log() if r["method"] != "GET"]


# --- register ---------------------------------------------------------------------------------


def test_every_event_type_the_app_reads_is_registered_where_vibes_offers_it(configured):
    assert PLATFORM_READ and CONNECT_READ  # the app reads events of both APIs
    output = run("register")

    registered = configured.registrations()
    assert {r["callback_type"]: r["destination"] for r in registered["platform"]} == {
        t: {"url": APP_URL, "method": "POST", "content_type": "application/json"} for t in PLATFORM_READ
    }
    assert {(c["callback_type"], c["url"], c["short_code"]) for c in registered["connect"]} == {
        (t, APP_URL, "12345") for t in CONNECT_READ
    }
    assert set(ConnectCallback.objects.values_list("callback_type", flat=True)) == CONNECT_READ
    for callback_type in APPLIERS:
        assert f"{callback_type}: registered" in output
    assert CALLBACK_PASSWORD not in output


def test_a_second_register_changes_nothing(configured):
    run("register")
    before, written = configured.registrations(), len(writes(configured))
    output = run("register")
    assert configured.registrations() == before
    assert len(writes(configured)) == written
    assert output.count("already registered, unchanged") == len(APPLIERS)


def test_a_stale_registration_of_ours_is_updated_in_place_and_others_are_left_alone(configured):
    client = get_client()
    stale = client.register_callback(
        "subscription_added",
        url=APP_URL.replace(CALLBACK_PASSWORD, "old-password"),
        details={"list_id": "101"},
    )
    elsewhere = client.register_callback("subscription_added", url="https://crm.example.test/hooks/vibes")

    output = run("register")

    by_id = {r["callback_id"]: r for r in configured.registrations()["platform"]}
    assert by_id[stale.id]["destination"]["url"] == APP_URL
    assert "subscription_added" not in by_id[stale.id]  # every list now, not list 101 only
    assert by_id[elsewhere.id]["destination"]["url"] == "https://crm.example.test/hooks/vibes"
    assert f"subscription_added: updated ({stale.id})" in output
    assert sum(r["callback_type"] == "subscription_added" for r in by_id.values()) == 2


def test_a_second_registration_of_our_url_is_cancelled(configured):
    client = get_client()
    current = client.register_callback("subscription_removed", url=APP_URL)
    second = client.register_callback(
        "subscription_removed", url=APP_URL.replace(CALLBACK_PASSWORD, "old-password")
    )
    output = run("register")
    ids = {r["callback_id"] for r in configured.registrations()["platform"]}
    assert current.id in ids and second.id not in ids
    assert f"subscription_removed: a second registration of this URL, cancelled ({second.id})" in output


def test_connect_is_registered_again_when_the_url_changes(configured, settings):
    run("register")
    settings.VIBES_CALLBACK_PASSWORD = "a-new-callback-secret"
    settings.VIBES_DELIVERY_RECEIPT_URL = "https://sms.example.test/vibes/callbacks/"

    output = run("register")

    new_url = f"https://{CALLBACK_USERNAME}:a-new-callback-secret@sms.example.test/vibes/callbacks/"
    connect = configured.registrations()["connect"]
    assert [c["url"] for c in connect] == [new_url] * len(CONNECT_READ)
    assert {r["destination"]["url"] for r in configured.registrations()["platform"]} == {new_url}
    assert output.count(": updated") == len(APPLIERS)


def test_connect_again_registers_what_connect_lost_though_it_is_recorded_here(configured):
    run("register")
    configured.reset()  # Connect forgot it, and has no list to show it: the record here says registered
    plain = run("register")
    for callback_type in CONNECT_READ:
        assert f"Connect {callback_type}: already registered, unchanged" in plain
    assert configured.registrations()["connect"] == []

    output = run("register", "--connect-again")

    assert {c["callback_type"] for c in configured.registrations()["connect"]} == CONNECT_READ
    for callback_type in CONNECT_READ:
        assert f"Connect {callback_type}: updated" in output


def test_an_event_type_added_to_the_app_is_registered_by_the_next_register(configured, monkeypatch):
    monkeypatch.delitem(APPLIERS, "unmatched_message_received")
    run("register")
    monkeypatch.setitem(APPLIERS, "unmatched_message_received", APPLIERS["subscription_added"])
    monkeypatch.setitem(APPLIERS, "made_up_event", APPLIERS["subscription_added"])

    output = run("register")

    unmatched = [
        r
        for r in configured.registrations()["platform"]
        if r["callback_type"] == "unmatched_message_received"
    ]
    assert [r["unmatched_message_received"] for r in unmatched] == [
        {"source_code": "12345", "country_code": "US"}
    ]
    assert "unmatched_message_received: registered" in output
    assert "made_up_event: not registered: no Vibes API registers this type" in output
    assert output.count("already registered, unchanged") == len(APPLIERS) - 2


def test_a_type_vibes_refuses_is_reported_and_the_others_are_registered(configured, monkeypatch):
    # event_processed needs its own settings, which the app does not give: Vibes refuses it.
    monkeypatch.setitem(APPLIERS, "event_processed", APPLIERS["subscription_added"])
    out = io.StringIO()
    with pytest.raises(CommandError, match="Vibes refused 1 of the registrations"):
        call_command("vibes_callbacks", "register", stdout=out)
    assert "event_processed: refused by Vibes: " in out.getvalue()
    assert {r["callback_type"] for r in configured.registrations()["platform"]} == PLATFORM_READ


# --- the URL and its credentials ------------------------------------------------------------------


def test_a_url_without_credentials_is_registered_with_the_callback_credentials(configured, settings):
    settings.VIBES_DELIVERY_RECEIPT_URL = "https://sms.example.test/vibes/callbacks/"
    assert callbacks_url() == APP_URL


@pytest.mark.parametrize(
    ("url", "password", "problem"),
    [
        ("", CALLBACK_PASSWORD, "VIBES_DELIVERY_RECEIPT_URL is not set"),
        (APP_URL, "", "VIBES_CALLBACK_PASSWORD is not set"),
        (
            APP_URL.replace(CALLBACK_PASSWORD, "something-else"),
            CALLBACK_PASSWORD,
            "The credentials in VIBES_DELIVERY_RECEIPT_URL are not VIBES_CALLBACK_USERNAME and",
        ),
        ("ftp://sms.example.test/vibes/callbacks/", CALLBACK_PASSWORD, "is not an http or https URL"),
        ("https://sms.example.test:port/vibes/callbacks/", CALLBACK_PASSWORD, "is not an http or https URL"),
    ],
)
def test_register_refuses_settings_that_could_not_work_and_says_why(
    configured, settings, url, password, problem
):
    settings.VIBES_DELIVERY_RECEIPT_URL = url
    settings.VIBES_CALLBACK_PASSWORD = password
    with pytest.raises(CommandError, match=problem):
        run("register")
    assert configured.registrations() == {"platform": [], "connect": []}


def test_an_unreachable_vibes_is_one_clear_line(configured, settings):
    settings.VIBES_PLATFORM_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"Vibes is unreachable at http://127\.0\.0\.1:9"):
        run("list")


def test_no_password_reaches_the_logs(configured, caplog):
    caplog.set_level(logging.DEBUG)
    client = get_client()
    client.register_callback("person_added", url=APP_URL)
    with pytest.raises(Exception) as refused:
        # Refused as a duplicate: Vibes' answer may quote the URL, the error must not.
        client.register_callback("person_added", url=APP_URL)
    run("register")
    run("list")
    assert CALLBACK_PASSWORD not in caplog.text
    assert CALLBACK_PASSWORD not in str(refused.value)
    assert CALLBACK_PASSWORD not in repr(client.list_callbacks())


# --- list ---------------------------------------------------------------------------------------------


def test_list_shows_each_type_with_its_state_and_the_others_without_passwords(configured):
    get_client().register_callback("person_added", url="https://crm:crm-secret@crm.example.test/hook")
    get_client().register_callback("subscription_added", url=APP_URL)

    output = run("list")

    assert "Callbacks URL: https://vibes:***@sms.example.test/vibes/callbacks/" in output
    lines = output.splitlines()
    assert any(line.split()[:3] == ["Platform", "subscription_added", "registered"] for line in lines)
    assert any(
        line.split()[:4] == ["Platform", "subscription_removed", "not", "registered"] for line in lines
    )
    assert "Other registrations in Vibes (left alone):" in output
    assert "https://crm:***@crm.example.test/hook" in output
    assert "crm-secret" not in output and CALLBACK_PASSWORD not in output


def test_list_says_connect_registrations_are_as_recorded_here(configured):
    run("register")
    output = run("list")
    for callback_type in CONNECT_READ:
        line = next(line for line in output.splitlines() if callback_type in line)
        assert "as recorded here (Connect lists no registrations)" in line


# --- test -------------------------------------------------------------------------------------------


@pytest.fixture
def live(vibes_live_callbacks, vibes_simulator):
    """The app served over HTTP, its URL registered with the simulator, its lists synced."""
    vibes_simulator.configure(callback_url="")  # only registered URLs get events
    vibes_sync(client=get_client())
    callbacks_register(client=get_client())
    return vibes_simulator


@pytest.mark.django_db(transaction=True)
def test_the_test_events_arrive_and_change_nothing(live):
    SubscriptionFactory(vibes_list=VibesList.objects.get(vibes_id="101"))
    subscriptions_before = list(Subscription.objects.values_list("lead_id", "vibes_list_id", "status"))

    output = run("test", "--deadline", "30")

    for callback_type in TESTED:
        assert f"Platform {callback_type}: the test event arrived after" in output
    for callback_type in PLATFORM_READ - TESTED:
        assert f"Platform {callback_type}: The Vibes contract has no test event" in output
    for callback_type in CONNECT_READ:
        assert f"Connect {callback_type}: Connect has no test event;" in output
    tests = CallbackTest.objects.all()
    assert {t.callback_type for t in tests} == TESTED
    assert all(t.arrived_at and t.vibes_event_id and not t.error for t in tests)
    events = CallbackEvent.objects.filter(outcome=CallbackEvent.Outcome.TEST)
    assert {e.event_type for e in events} == TESTED
    assert {t.callback_event_id for t in tests} == {e.pk for e in events}
    assert list(Subscription.objects.values_list("lead_id", "vibes_list_id", "status")) == (
        subscriptions_before
    )
    assert not SubscriptionChange.objects.exists()


def test_a_test_event_that_does_not_arrive_by_the_deadline_fails_the_command(configured, settings):
    # Vibes posts to a port where nothing listens.
    settings.VIBES_DELIVERY_RECEIPT_URL = (
        f"http://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@127.0.0.1:9/vibes/callbacks/"
    )
    vibes_sync(client=get_client())
    callbacks_register(client=get_client())
    out = io.StringIO()
    with pytest.raises(CommandError, match=rf"{len(TESTED)} of {len(APPLIERS)} callback tests failed"):
        call_command("vibes_callbacks", "test", "--deadline", "1", stdout=out)
    assert out.getvalue().count("the test event did not arrive within 1 s") == len(TESTED)
    assert "http://vibes:***@127.0.0.1:9/vibes/callbacks/" in out.getvalue()
    assert not CallbackTest.objects.filter(arrived_at__isnull=False).exists()


def test_testing_before_registering_sends_nothing_and_says_to_register(configured):
    vibes_sync(client=get_client())
    out = io.StringIO()
    with pytest.raises(CommandError, match="callback tests failed"):
        call_command("vibes_callbacks", "test", "--deadline", "1", stdout=out)
    assert out.getvalue().count("not registered for this app's URL: register it first.") == len(PLATFORM_READ)
    assert not [w for w in writes(configured) if "callback_events/test" in w]
    assert not CallbackTest.objects.exists()


def test_a_test_without_lists_to_test_with_asks_for_a_sync(configured):
    run("register")
    output = run("test", "--deadline", "1")
    assert "No Vibes list to test with: sync the Vibes lists first." in output
    assert "No acquisition campaign to test with: sync the Vibes lists first." in output


def test_a_deadline_of_zero_is_refused(configured):
    with pytest.raises(CommandError, match="--deadline must be a number of seconds above 0"):
        run("test", "--deadline", "0")


def test_settings_that_could_not_work_are_refused_by_list_and_test_too(configured, settings):
    settings.VIBES_CALLBACK_PASSWORD = ""
    for action in ("list", "test"):
        with pytest.raises(CommandError, match="VIBES_CALLBACK_PASSWORD is not set"):
            run(action)


def test_callbacks_not_configured_is_a_plain_exception_for_the_admin_too(configured, settings):
    settings.VIBES_DELIVERY_RECEIPT_URL = ""
    with pytest.raises(CallbacksNotConfigured):
        callbacks_url()
