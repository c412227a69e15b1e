"""Pytest fixtures for code that talks to Vibes: a real simulator over HTTP.

Registered for the whole suite from `tests/conftest.py`
(`pytest_plugins = ["tests.vibes.fixtures"]`), so any app's tests can use them.

`vibes_simulator`
    A `vibes.simulator.VibesSimulator` listening on 127.0.0.1 (random port),
    started once per test session and reset before and after each test (it
    starts with the demo company's lists, `vibes/demo.py`: "101" SMS
    Newsletter with AC-NEWS-WEB and AC-NEWS-STORE, "102" VIP Offers with
    AC-VIP; no persons, no SMS, no faults, no callback URL). The `settings` fixture points VIBES_PLATFORM_URL,
    VIBES_CONNECT_URL, VIBES_COMPANY_KEY, VIBES_USERNAME, VIBES_PASSWORD and
    VIBES_SHORT_CODE at it, and VIBES_RATE_LIMIT at 0 (unlimited), so
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

`vibes_client`
    A `vibes.client.VibesClient` for the simulator with short backoffs and
    3 attempts, no rate limit, and timeouts a busy machine stays well within
    (connect 5 s, read 10 s; the simulator's hanging requests hang 30 s).

`vibes_callback_post`
    For tests that post callbacks through Django's test client: sets the
    callback credentials and returns `post(payload, event_type=None)`, which
    sends the payload to `/vibes/callbacks/` as Vibes would (the event type
    in the `X-Vibes-Event-Type` header when given).

`callback_catcher`
    A bare HTTP server on 127.0.0.1 that answers every POST 200 and keeps
    what came (`received`: path, headers, JSON body), for looking at the
    callbacks the simulator sends without the app: `url`,
    `wait_for(count, timeout=30)`.

`vibes_live_callbacks`
    For tests with `live_server` whose app must receive the simulator's
    callbacks (confirmations, opt-outs, delivery receipts): sets
    VIBES_CALLBACK_PASSWORD and VIBES_DELIVERY_RECEIPT_URL, points the
    simulator at the live server's `/vibes/callbacks/` and returns that URL
    (with credentials). Equivalent by hand:
    `vibes_simulator.configure(callback_url=f"http://vibes:pw@{host}:{port}/vibes/callbacks/")`.
"""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from vibes.client import VibesClient
from vibes.conf import reset_client
from vibes.demo import DEMO_LISTS
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
def vibes_callback_post(client, settings):
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
def vibes_live_callbacks(live_server, vibes_simulator, settings) -> str:
    settings.VIBES_CALLBACK_USERNAME = CALLBACK_USERNAME
    settings.VIBES_CALLBACK_PASSWORD = CALLBACK_PASSWORD
    host, port = live_server.thread.host, live_server.thread.port
    url = f"http://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@{host}:{port}{reverse('vibes:callbacks')}"
    settings.VIBES_DELIVERY_RECEIPT_URL = url
    vibes_simulator.configure(callback_url=url)
    return url


INBOUND_TYPES = ("inbound_sms", "unmatched_message_received")


class CallbackCatcher:
    def __init__(self):
        self.received: list[dict] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"null")}
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        """The first `count` callbacks other than the texts phones sent (which the
        simulator posts as inbound messages whenever a phone replies)."""
        deadline = time.monotonic() + timeout
        while len(self.events()) < count:
            assert time.monotonic() < deadline, f"{len(self.events())} of {count} callbacks arrived"
            time.sleep(0.02)
        return self.events()

    def events(self) -> list[dict]:
        return [
            post
            for post in list(self.received)
            if not (isinstance(post["body"], dict) and post["body"].get("callback_type") in INBOUND_TYPES)
        ]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_catcher():
    catcher = CallbackCatcher()
    yield catcher
    catcher.close()
