"""The admin's page of Vibes callbacks (Callback events → Registrations with
Vibes): what is registered, Register, Send test events, each result shown."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from smscampaigns.permissions import permission_label
from tests.vibes.simulated import APP_URL, CALLBACK_PASSWORD, CALLBACK_USERNAME
from vibes.callback_types import PLATFORM_TYPES
from vibes.callbacks import APPLIERS
from vibes.conf import get_client
from vibes.models import CallbackTest
from vibes.registration.testing import TESTABLE_TYPES
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:vibes_callbackevent_registrations")
PLATFORM_READ = {t for t in APPLIERS if t in PLATFORM_TYPES}
# The types read whose test event the app can send (not unmatched_message_received).
TESTED = PLATFORM_READ & TESTABLE_TYPES


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_callback_events_page_links_to_the_registrations(admin_client):
    html = admin_client.get(reverse("admin:vibes_callbackevent_changelist")).content.decode()
    assert f'href="{PAGE}"' in html


def test_the_page_shows_each_type_the_app_reads_and_its_state(admin_client, configured):
    get_client().register_callback("subscription_added", url=APP_URL)
    get_client().register_callback("person_added", url="https://crm.example.test/hook")
    response = admin_client.get(PAGE)
    html = response.content.decode()
    assert response.status_code == 200
    assert "https://vibes:***@sms.example.test/vibes/callbacks/" in html
    assert CALLBACK_PASSWORD not in html
    states = {row.wanted.callback_type: row.state for row in response.context["overview"].rows}
    assert states == {t: "current" if t == "subscription_added" else "missing" for t in APPLIERS}
    assert '<tr data-type="subscription_added" data-state="current">' in html
    assert "https://crm.example.test/hook" in html  # another registration, left alone
    assert 'id="callbacks-register"' in html and 'id="callbacks-test"' in html


def test_register_from_the_admin_registers_and_says_what_it_did(admin_client, configured):
    response = admin_client.post(PAGE, {"action": "register"}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert {r["callback_type"] for r in configured.registrations()["platform"]} == PLATFORM_READ
    ids = {r["callback_type"]: r["callback_id"] for r in configured.registrations()["platform"]}
    ids.update({c["callback_type"]: c["id"] for c in configured.registrations()["connect"]})
    assert sorted(shown_messages(response)) == sorted(
        f"{'Platform' if t in PLATFORM_READ else 'Connect'} {t}: registered ({ids[t]})" for t in APPLIERS
    )
    again = admin_client.post(PAGE, {"action": "register"}, follow=True)
    assert all("already registered, unchanged" in m for m in shown_messages(again))


@pytest.mark.django_db(transaction=True)
def test_send_test_events_from_the_admin_shows_that_they_arrived(
    vibes_live_callbacks, vibes_simulator, django_user_model, client
):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-1"))
    vibes_simulator.configure(callback_url="")
    vibes_sync(client=get_client())
    client.post(PAGE, {"action": "register"})

    response = client.post(PAGE, {"action": "test", "deadline": "25"}, follow=True)

    texts = shown_messages(response)
    for callback_type in TESTED:
        assert any(m.startswith(f"Platform {callback_type}: the test event arrived after") for m in texts)
    html = response.content.decode()
    table = html[html.index('id="callback-tests"') :]
    assert table.count("arrived after ") == len(TESTED)
    assert CallbackTest.objects.filter(arrived_at__isnull=False).count() == len(TESTED)


def test_a_test_event_that_does_not_arrive_is_an_error_on_the_page(admin_client, configured, settings):
    settings.VIBES_DELIVERY_RECEIPT_URL = (
        f"http://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@127.0.0.1:9/vibes/callbacks/"
    )
    vibes_sync(client=get_client())
    admin_client.post(PAGE, {"action": "register"})
    response = admin_client.post(PAGE, {"action": "test", "deadline": "1"}, follow=True)
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert len(errors) == len(TESTED)
    assert all("the test event did not arrive within 1 s" in m for m in errors)
    assert "not arrived yet" in response.content.decode()


@pytest.mark.parametrize("deadline", ["0", "26", "ten", "-3"])
def test_a_wait_out_of_bounds_is_refused_and_nothing_is_asked_of_vibes(admin_client, configured, deadline):
    response = admin_client.post(PAGE, {"action": "test", "deadline": deadline}, follow=True)
    assert shown_messages(response) == [
        "The wait for the test events must be a whole number of seconds from 1 to 25."
    ]
    assert not CallbackTest.objects.exists()


def test_settings_that_could_not_work_are_shown_not_a_500(admin_client, configured, settings):
    settings.VIBES_CALLBACK_PASSWORD = ""
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    assert "VIBES_CALLBACK_PASSWORD is not set" in response.content.decode()
    posted = admin_client.post(PAGE, {"action": "register"}, follow=True)
    assert any("VIBES_CALLBACK_PASSWORD is not set" in m for m in shown_messages(posted))


def test_an_unreachable_vibes_is_shown_not_a_500(admin_client, configured, settings):
    settings.VIBES_PLATFORM_URL = "http://127.0.0.1:9"
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    assert "could not connect to 127.0.0.1:9" in response.content.decode()


def test_a_user_who_may_only_look_sees_no_buttons_and_is_refused_with_the_permission(
    client, django_user_model, configured
):
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_callbackevent"))
    client.force_login(user)
    html = client.get(PAGE).content.decode()
    assert 'id="callbacks-register"' not in html and 'id="callbacks-test"' not in html
    response = client.post(PAGE, {"action": "register"})
    assert response.status_code == 403
    assert permission_label("vibes.manage_callbacks") in response.content.decode()
    assert "You cannot register and test Vibes callbacks" in response.content.decode()
    assert configured.registrations() == {"platform": [], "connect": []}


def test_a_user_without_view_permission_is_refused(client, django_user_model, configured):
    client.force_login(django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True))
    assert client.get(PAGE).status_code == 403
