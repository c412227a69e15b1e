"""The simulator registers callbacks as Vibes does (Platform `config/callbacks`,
Connect `/api/v1/callbacks`), posts its events to the registered URLs (the
configured callback URL only for types nobody registered), and sends test
events. Its posts are caught by a small HTTP server of the test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from vibes.exceptions import VibesConflict, VibesNotFound

MDN = "+15551230001"
INBOUND_TYPES = ("inbound_sms", "unmatched_message_received")


class Receiver:
    """An HTTP server on loopback that answers 200 and keeps what was posted to it."""

    def __init__(self):
        self.posts: list[dict] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._arrived:
                    receiver.posts.append(
                        {
                            "path": self.path,
                            "event_type": self.headers.get("X-Vibes-Event-Type", ""),
                            "authorization": self.headers.get("Authorization", ""),
                            "body": json.loads(body or b"{}"),
                        }
                    )
                    receiver._arrived.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, credentials: str = "") -> str:
        userinfo = f"{credentials}@" if credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        """The first `count` subscription events posted (the texts a phone sends,
        which the simulator also posts as inbound messages, are left out)."""

        def subscription_events():
            return [
                p
                for p in self.posts
                if (p["event_type"] or p["body"].get("callback_type") or p["body"].get("event_type"))
                not in INBOUND_TYPES
            ]

        with self._arrived:
            self._arrived.wait_for(lambda: len(subscription_events()) >= count, timeout)
            return subscription_events()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_platform_event_goes_to_the_url_registered_for_its_type(vibes_client, vibes_simulator, receiver):
    vibes_simulator.configure(callback_url=receiver.url("/fallback/"))
    vibes_client.register_callback("subscription_added", url=receiver.url("/registered/", "vibes:pw"))
    vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="7")
    vibes_simulator.reply(MDN, "Y")
    vibes_simulator.reply(MDN, "STOP")  # subscription_removed: registered for nobody
    posts = receiver.wait_for(2)
    assert vibes_simulator.wait_for_callbacks(30)
    assert sorted((p["event_type"], p["path"]) for p in posts) == [
        ("subscription_added", "/registered/"),
        ("subscription_removed", "/fallback/"),
    ]
    registered = next(p for p in posts if p["path"] == "/registered/")
    assert registered["authorization"].startswith("Basic ")


def test_a_registration_for_one_list_gets_that_lists_events_only(vibes_client, vibes_simulator, receiver):
    vibes_simulator.configure(callback_url=receiver.url("/fallback/"))
    vibes_client.register_callback(
        "subscription_added", url=receiver.url("/vip/"), details={"list_id": "102"}
    )
    vibes_client.register_callback(
        "subscription_added", url=receiver.url("/news/"), details={"list_id": "101"}
    )
    vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="7")
    vibes_simulator.reply(MDN, "Y")
    assert vibes_simulator.wait_for_callbacks(30)
    assert [p["path"] for p in receiver.wait_for(1)] == ["/news/"]


def test_registrations_are_listed_updated_and_cancelled(vibes_client, vibes_simulator):
    made = vibes_client.register_callback("subscription_removed", url="https://a.example.test/cb/")
    assert [r.id for r in vibes_client.list_callbacks()] == [made.id]
    changed = vibes_client.update_callback(made.id, "subscription_removed", url="https://b.example.test/cb/")
    assert (changed.id, changed.url) == (made.id, "https://b.example.test/cb/")
    with pytest.raises(VibesConflict):
        vibes_client.register_callback("subscription_removed", url="https://b.example.test/cb/")
    assert vibes_client.cancel_callback(made.id) is True
    assert vibes_client.cancel_callback(made.id) is False
    assert vibes_client.list_callbacks() == []


def test_a_test_event_needs_a_registration_and_goes_to_its_url(vibes_client, vibes_simulator, receiver):
    subscription = {"person": {"id": "marker-1"}, "subscription_list": {"id": "101"}}
    with pytest.raises(VibesNotFound, match="An active callback does not exist"):
        vibes_client.send_test_callback("subscription_added", subscription=subscription)
    vibes_client.register_callback("subscription_added", url=receiver.url("/cb/"))

    event_id = vibes_client.send_test_callback("subscription_added", subscription=subscription)

    [post] = receiver.wait_for(1)
    assert event_id
    assert post["event_type"] == "subscription_added"
    assert post["body"]["event_id"] == event_id
    assert post["body"]["person"] == {"id": "marker-1"}
    assert post["body"]["subscription_list"]["id"] == "101"


def test_connect_keeps_one_url_per_type_and_short_code(vibes_client, vibes_simulator):
    first = vibes_client.register_connect_callback("delivery_receipt", url="https://a.example.test/cb/")
    again = vibes_client.register_connect_callback("delivery_receipt", url="https://b.example.test/cb/")
    assert again.id == first.id
    assert [
        (c["callback_type"], c["url"], c["short_code"]) for c in vibes_simulator.registrations()["connect"]
    ] == [("delivery_receipt", "https://b.example.test/cb/", "12345")]


def test_a_receipt_goes_to_the_registered_url_when_the_sms_names_none(
    vibes_client, vibes_simulator, receiver
):
    vibes_client.register_connect_callback("delivery_receipt", url=receiver.url("/receipts/"))
    sent = vibes_client.send_sms(to=MDN, text="Hello")
    [post] = receiver.wait_for(1)
    assert (post["path"], post["body"]["message_id"]) == ("/receipts/", sent.message_id)


def test_the_inspection_and_the_request_log_hide_registered_passwords(vibes_client, vibes_simulator):
    vibes_client.register_callback("subscription_added", url="https://vibes:s3cret-pw@app.example.test/cb/")
    vibes_client.register_connect_callback(
        "delivery_receipt", url="https://vibes:s3cret-pw@app.example.test/cb/"
    )
    shown = requests.get(f"{vibes_simulator.url}/_simulator/registrations", timeout=10).json()
    logged = vibes_simulator.requests_log()
    assert shown["platform"][0]["destination"]["url"] == "https://vibes:***@app.example.test/cb/"
    assert shown["connect"][0]["url"] == "https://vibes:***@app.example.test/cb/"
    assert "s3cret-pw" not in json.dumps(shown) + json.dumps(logged)


def test_a_bad_registration_is_refused_with_what_is_wrong(vibes_simulator):
    from tests.vibes.simulated import make_client
    from vibes.exceptions import VibesBadRequest

    client = make_client(vibes_simulator.url)
    with pytest.raises(VibesBadRequest, match="destination.url must be an http or https URL"):
        client.register_callback("subscription_added", url="mailto:someone@example.test")
    with pytest.raises(VibesBadRequest, match="Unknown callback_type"):
        client.register_callback("made_up_event", url="https://a.example.test/cb/")
    with pytest.raises(VibesBadRequest, match="must be inbound_sms or delivery_receipt"):
        client.register_connect_callback("subscription_added", url="https://a.example.test/cb/")
