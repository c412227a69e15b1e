"""Pytest fixtures for code that talks to Vibes: a real simulator over HTTP.

Registered for the whole suite from `tests/conftest.py`
(`pytest_plugins = ["tests.vibes.fixtures"]`), so any app's tests can use them.

`vibes_simulator`
    A `vibes.simulator.VibesSimulator` listening on 127.0.0.1 (random port),
    started once per test session and reset before and after each test (seed
    lists from `vibes/demo.py`: "101" SMS Newsletter with AC-NEWS-WEB and
    AC-NEWS-STORE, "102" VIP Offers with AC-VIP; no persons, no SMS, no
    faults, no callback URL). The `settings` fixture points VIBES_PLATFORM_URL,
    VIBES_CONNECT_URL, VIBES_COMPANY_KEY, VIBES_USERNAME, VIBES_PASSWORD and
    VIBES_SHORT_CODE at it, and VIBES_RATE_LIMIT at 0 (unlimited), so
    `vibes.conf.get_client()` talks to it. Useful methods:

    - `url`: its base URL (Platform and Connect alike);
    - `configure(callback_url=..., confirm_after=seconds, receipt_delay=seconds)`;
    - `set_faults(error_rate=0.2, rate_limit=50, latency_ms=5, timeout_rate=0.1, hang_seconds=2)`;
    - `reply(mdn, "Y" | "N" | "STOP")`: the simulated phone answers;
    - `add_subscriber(list_id, mdn, external_person_id="...")`: a number
      subscribed already, without confirmation or callback;
    - `messages()`: SMS received (message_id, to, from, text, callback_url, received_at);
    - `requests_log()`: API requests (method, path, status, processed, fault, body for POSTs);
    - `subscriptions()`, `stats()`, `callbacks_log()`;
    - `wait_for_callbacks(timeout=5)`: block until callbacks due so far were delivered.

`vibes_client`
    A `vibes.client.VibesClient` for the simulator with short backoffs and
    3 attempts, no rate limit, and timeouts a busy machine stays well within
    (connect 5 s, read 10 s; the simulator's hanging requests hang 30 s).

`vibes_live_callbacks`
    For tests with `live_server` whose app must receive the simulator's
    callbacks (confirmations, opt-outs, delivery receipts): sets
    VIBES_CALLBACK_PASSWORD and VIBES_DELIVERY_RECEIPT_URL, points the
    simulator at the live server's `/vibes/callbacks/` and returns that URL
    (with credentials). Equivalent by hand:
    `vibes_simulator.configure(callback_url=f"http://vibes:pw@{host}:{port}/vibes/callbacks/")`.
"""

import pytest
from django.urls import reverse

from vibes.client import VibesClient
from vibes.conf import reset_client
from vibes.simulator import VibesSimulator

SIM_COMPANY_KEY = "sim-company"
SIM_USERNAME = "sim-user"
SIM_PASSWORD = "sim-password-Q7x"
SIM_SHORT_CODE = "12345"
CALLBACK_USERNAME = "vibes"
CALLBACK_PASSWORD = "callback-secret-9Zk"


@pytest.fixture(scope="session")
def _vibes_simulator_server():
    simulator = VibesSimulator(
        company_key=SIM_COMPANY_KEY, username=SIM_USERNAME, password=SIM_PASSWORD, hang_seconds=30, seed=1234
    )
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def vibes_simulator(_vibes_simulator_server, settings):
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


def make_client(url: str, **overrides) -> VibesClient:
    options = {
        "platform_url": url,
        "connect_url": url,
        "company_key": SIM_COMPANY_KEY,
        "username": SIM_USERNAME,
        "password": SIM_PASSWORD,
        "short_code": SIM_SHORT_CODE,
        "connect_timeout": 5.0,
        "read_timeout": 10.0,
        "max_attempts": 3,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    options.update(overrides)
    return VibesClient(**options)


@pytest.fixture
def vibes_client(vibes_simulator) -> VibesClient:
    client = make_client(vibes_simulator.url)
    yield client
    client.session.close()


@pytest.fixture
def vibes_live_callbacks(live_server, vibes_simulator, settings) -> str:
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    host, port = live_server.thread.host, live_server.thread.port
    url = f"http://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@{host}:{port}{reverse('vibes:callbacks')}"
    settings.VIBES_DELIVERY_RECEIPT_URL = url
    vibes_simulator.configure(callback_url=url)
    return url
