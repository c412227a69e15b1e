"""The simulated Vibes of the tests: its credentials, a client for it, and a
catcher for the callbacks it posts.

The fixtures built on them are in `tests/conftest.py`: `vibes_simulator`,
`vibes_client`, `callback_catcher`, `vibes_callback_post` and
`vibes_live_callbacks`, for the whole suite.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vibes.client import VibesClient

SIM_COMPANY_KEY = "sim-company"
SIM_USERNAME = "sim-user"
SIM_PASSWORD = "sim-password-Q7x"
SIM_SHORT_CODE = "12345"
CALLBACK_USERNAME = "vibes"
CALLBACK_PASSWORD = "callback-secret-9Zk"
# The app's callbacks URL, credentials included, as the app gives it to Vibes.
APP_URL = f"https://{CALLBACK_USERNAME}:{CALLBACK_PASSWORD}@sms.example.test/vibes/callbacks/"


def make_client(url: str, **overrides) -> VibesClient:
    """A client for the simulator at `url` with short backoffs and 3 attempts, no
    rate limit, and timeouts a busy machine stays well within (connect 5 s,
    read 10 s; the simulator's hanging requests hang 30 s)."""
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


INBOUND_TYPES = ("inbound_sms", "unmatched_message_received")


class CallbackCatcher:
    """A bare HTTP server on 127.0.0.1 that answers every POST 200 and keeps
    what came (`received`: path, headers, JSON body), for looking at the
    callbacks the simulator sends without the app."""

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
