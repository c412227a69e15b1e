"""Fixtures for the whole suite: the compiled catalogues, logged-in users, and
the Vibes simulator over real HTTP.

Fixtures only the tests of one app use are in that app's conftest.py; plain
helpers are modules to import (`tests/waiting.py`, `tests/celery_broker.py`,
`tests/marketers.py`, `tests/vibes/simulated.py`, ...).
"""

import base64
import json
import os
import shutil
import subprocess

import pytest
from django.urls import reverse
from django.utils import translation
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from smscampaigns.background import background_threads_join
from tests.catalogues import LOCALE_DIR
from tests.vibes.simulated import (
    CALLBACK_PASSWORD,
    CALLBACK_USERNAME,
    SIM_COMPANY_KEY,
    SIM_PASSWORD,
    SIM_SHORT_CODE,
    SIM_USERNAME,
    CallbackCatcher,
    make_client,
)
from vibes.client import VibesClient
from vibes.conf import reset_client
from vibes.demo import DEMO_LISTS
from vibes.simulator import VibesSimulator

# Property tests check what holds, not how fast: on a loaded machine one
# example can take any time, so no example has a deadline and slow data
# generation is no failure.
hypothesis_settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("suite")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """What a test started in the background (runs, dispatches, the callbacks' applier)
    finishes before its fixtures are torn down: a thread still writing would deadlock
    the database's flush, or write into the next test."""
    background_threads_join()


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues():
    """The compiled catalogues (.mo) are built, not committed: `make test` compiles
    them, and so does this when pytest runs alone and a catalogue changed since."""
    if shutil.which("msgfmt") is None:
        return
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/django.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run(["msgfmt", "--check-format", "-o", str(mo), str(po)], check=True)


# Runs in tests go out whatever the hour the suite runs at; the quiet hours'
# own tests turn them on (tests/marketing_activities/test_quiet_hours.py).
# The environment too, for the workers and servers tests start as processes.
os.environ["QUIET_HOURS_ENABLED"] = "false"


@pytest.fixture(autouse=True)
def no_quiet_hours(settings):
    settings.QUIET_HOURS_ENABLED = False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Many tests create users with a password; the production hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def installation_language_after_each_test():
    """A request in another language leaves it active in the thread (LocaleMiddleware
    activates it; nothing deactivates it): the next test starts in the installation's."""
    yield
    translation.deactivate()


# --- Users --------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in marketer (staff, all permissions)."""
    user = django_user_model.objects.create_superuser("marketer", "marketer@example.com", "pw-marketer-1")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def marketers_group(db):
    """The "Marketers" group of the data migration (tests/marketers.py)."""
    from tests.marketers import marketers_group

    return marketers_group()


# --- Vibes: the simulator over real HTTP ---------------------------------------------------


@pytest.fixture(scope="session")
def _vibes_simulator_server():
    simulator = VibesSimulator(
        company_key=SIM_COMPANY_KEY,
        username=SIM_USERNAME,
        password=SIM_PASSWORD,
        short_code=SIM_SHORT_CODE,
        lists=DEMO_LISTS,
        hang_seconds=30,
        seed=1234,
    )
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def vibes_simulator(_vibes_simulator_server, settings):
    """A `vibes.simulator.VibesSimulator` listening on 127.0.0.1 (random port).

    Started once per test session and reset before and after each test (it
    starts with the demo company's lists, `vibes/demo.py`: "101" SMS
    Newsletter with AC-NEWS-WEB and AC-NEWS-STORE, "102" VIP Offers with
    AC-VIP; no persons, no SMS, no faults, no callback URL). The settings VIBES_PLATFORM_URL,
    VIBES_CONNECT_URL, VIBES_COMPANY_KEY, VIBES_USERNAME, VIBES_PASSWORD and
    VIBES_SHORT_CODE point at it, and VIBES_RATE_LIMIT is 0 (unlimited), so
    `vibes.conf.get_client()` talks to it. Useful methods:

    - `url`: its base URL (Platform and Connect alike);
    - `configure(callback_url=..., confirm_after=seconds, receipt_delay=seconds)`;
    - `set_faults(error_rate=0.2, rate_limit=50, latency_ms=5, timeout_rate=0.1, hang_seconds=2)`;
    - `reply(mdn, text)`: the phone texts the short code ("Y", "N", "STOP" or
      anything else); Vibes acts on what it matches, and the app gets the text
      as `inbound_sms` (and as `unmatched_message_received` when nothing matched);
    - `inbound()`: what phones texted (message_id, mdn, text, unmatched, received_at);
    - `keyword(mdn, "JOIN")`: the phone texts an acquisition campaign's keyword
      and joins its list, without an external person id (`subscription_added`);
    - `add_subscriber(list_id, mdn, external_person_id="...", custom_fields={...})`:
      a number subscribed already, without confirmation or callback;
    - `configure(subscriber_paging=False)`: a list's subscribers only by search
      (as the contract documents), `configure(max_page_size=N)`: smaller pages;
    - `messages()`: SMS received (message_id, to, from, text, callback_url, received_at);
    - `requests_log()`: API requests (method, path, status, processed, fault, body for POSTs);
    - `subscriptions()`, `stats()`, `callbacks_log()`;
    - `wait_for_callbacks(timeout=5)`: block until callbacks due so far were delivered.

    A client of its own: `tests.vibes.simulated.make_client(vibes_simulator.url)`.
    """
    simulator = _vibes_simulator_server
    simulator.reset()
    settings.VIBES_PLATFORM_URL = simulator.url
    settings.VIBES_CONNECT_URL = simulator.url
    settings.VIBES_COMPANY_KEY = SIM_COMPANY_KEY
    settings.VIBES_USERNAME = SIM_USERNAME
    settings.VIBES_PASSWORD = SIM_PASSWORD
    settings.VIBES_SHORT_CODE = SIM_SHORT_CODE
    settings.VIBES_RATE_LIMIT = 0
    reset_client()
    yield simulator
    simulator.reset()
    reset_client()


@pytest.fixture
def vibes_client(vibes_simulator) -> VibesClient:
    """A `vibes.client.VibesClient` for the simulator (`make_client`)."""
    client = make_client(vibes_simulator.url)
    yield client
    client.session.close()


@pytest.fixture
def callback_catcher():
    """A `CallbackCatcher` on 127.0.0.1: `url`, `received`, `wait_for(count, timeout=30)`."""
    catcher = CallbackCatcher()
    yield catcher
    catcher.close()


@pytest.fixture
def vibes_callback_post(client, settings):
    """For tests that post callbacks through Django's test client: sets the
    callback credentials and returns `post(payload, event_type=None)`, which
    sends the payload to `/vibes/callbacks/` as Vibes would (the event type
    in the `X-Vibes-Event-Type` header when given)."""
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    settings.VIBES_CALLBACK_ALLOWED_IPS = []
    credentials = base64.b64encode(f"{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}".encode()).decode()

    def post(payload, *, event_type=None):
        headers = {"Authorization": f"Basic {credentials}"}
        if event_type:
            headers["X-Vibes-Event-Type"] = event_type
        return client.post(
            reverse("vibes:callbacks"), json.dumps(payload), content_type="application/json", headers=headers
        )

    return post


@pytest.fixture
def vibes_live_callbacks(live_server, vibes_simulator, settings):
    """For tests with `live_server` whose app must receive the simulator's
    callbacks (confirmations, opt-outs, delivery receipts): sets
    VIBES_CALLBACK_PASSWORD and VIBES_DELIVERY_RECEIPT_URL, points the
    simulator at the live server's `/vibes/callbacks/` and returns that URL
    (with credentials). Equivalent by hand:
    `vibes_simulator.configure(callback_url=f"http://vibes:pw@{host}:{port}/vibes/callbacks/")`."""
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    host, port = live_server.thread.host, live_server.thread.port
    url = f"http://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@{host}:{port}{reverse('vibes:callbacks')}"
    settings.VIBES_DELIVERY_RECEIPT_URL = url
    vibes_simulator.configure(callback_url=url)
    yield url
    # What the callbacks started (trigger dispatches, runs) finishes before the
    # database is emptied: a thread still writing would deadlock the flush.
    background_threads_join()
