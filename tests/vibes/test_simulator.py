"""The local Vibes simulator, driven by the real client over HTTP."""

import base64
import bisect
import random
import socket
import time
from datetime import datetime, timedelta

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.vibes.simulated import SIM_COMPANY_KEY, SIM_PASSWORD, SIM_USERNAME, make_client
from tests.waiting import wait_until
from vibes.exceptions import (
    VibesAuthError,
    VibesBadRequest,
    VibesNotFound,
    VibesUncertain,
    VibesUnprocessable,
)
from vibes.simulator import VibesSimulator

MDN = "+15551230001"


def control(simulator, name, payload=None):
    url = f"{simulator.url}/_simulator/{name}"
    response = requests.post(url, json=payload or {}) if payload is not None else requests.get(url)
    response.raise_for_status()
    return response.json()


def test_it_serves_the_demo_lists_and_campaigns(vibes_client):
    assert [(item.id, item.name) for item in vibes_client.list_subscription_lists()] == [
        ("101", "SMS Newsletter"),
        ("102", "VIP Offers"),
    ]
    assert [c.acquisition_id for c in vibes_client.list_acquisition_campaigns("101")] == [
        "AC-NEWS-WEB",
        "AC-NEWS-STORE",
    ]


def test_a_participant_stays_pending_until_the_phone_replies_y(vibes_client, vibes_simulator):
    result = vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")
    assert (result.status, result.already_subscribed) == ("pending", False)
    assert result.person_key
    assert vibes_client.get_subscription("101", external_person_id="42") is None
    assert control(vibes_simulator, "reply", {"mdn": MDN, "text": "Y"})["confirmed"] == ["101"]
    assert vibes_client.get_subscription("101", external_person_id="42").subscribed
    assert vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42").already_subscribed


def test_replying_n_blocks_later_adds_with_422(vibes_client, vibes_simulator):
    vibes_client.add_participant("AC-VIP", mdn=MDN, external_person_id="42")
    vibes_simulator.reply(MDN, "N")
    with pytest.raises(VibesUnprocessable) as caught:
        vibes_client.add_participant("AC-VIP", mdn=MDN, external_person_id="42")
    assert caught.value.code == "MDNHASCONFIRMATIONBLOCK"


def test_stop_opts_the_number_out_of_every_list(vibes_client, vibes_simulator):
    vibes_simulator.add_subscriber("101", MDN, external_person_id="42")
    vibes_simulator.add_subscriber("102", MDN, external_person_id="42")
    assert sorted(vibes_simulator.reply(MDN, "STOP")["opted_out"]) == ["101", "102"]
    assert vibes_client.get_subscription("101", external_person_id="42") is None
    rows = vibes_simulator.subscriptions()
    assert {(r["list_id"], r["status"], r["opt_out_reason"]) for r in rows} == {
        ("101", "unsubscribed", "user_opt_out"),
        ("102", "unsubscribed", "user_opt_out"),
    }


def test_confirm_after_replies_y_by_itself(vibes_client, vibes_simulator):
    vibes_simulator.configure(confirm_after=0.05)
    vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")
    wait_until(
        lambda: vibes_client.get_subscription("101", external_person_id="42"), what="the reply", interval=0.02
    )


def test_unsubscribe_by_another_leads_external_id_falls_back_to_the_number(vibes_client, vibes_simulator):
    vibes_simulator.add_subscriber("101", MDN, external_person_id="7")
    assert vibes_client.unsubscribe("101", external_person_id="42", mdn=MDN) is True
    assert vibes_client.unsubscribe("101", external_person_id="42", mdn=MDN) is False


def test_find_person_needs_the_plus_encoded(vibes_client, vibes_simulator):
    vibes_simulator.add_subscriber("101", MDN, external_person_id="42")
    assert vibes_client.find_person(MDN).external_person_id == "42"
    # A bare "+" reads as a space, and Vibes says so.
    response = vibes_client.session.get(
        f"{vibes_simulator.url}/companies/sim-company/mobiledb/persons?mdn={MDN}"
    )
    assert response.status_code == 400
    assert "%2B" in response.json()["errors"][0]["message"]


def test_it_checks_credentials_version_and_company(vibes_simulator):
    with pytest.raises(VibesAuthError):
        make_client(vibes_simulator.url, password="wrong").list_subscription_lists()
    with pytest.raises(VibesNotFound):
        make_client(vibes_simulator.url, company_key="other").list_subscription_lists()
    client = make_client(vibes_simulator.url)
    client.session.headers["X-API-Version"] = "1"
    with pytest.raises(VibesBadRequest):
        client.list_subscription_lists()


def test_sms_are_recorded_and_listed(vibes_client, vibes_simulator):
    sent = vibes_client.send_sms(to=MDN, text="Hello")
    assert sent.status == "accepted"
    [message] = control(vibes_simulator, "messages")
    assert (message["message_id"], message["to"], message["text"]) == (sent.message_id, MDN, "Hello")
    assert message["received_at"]


def test_an_sms_to_a_malformed_number_is_refused(vibes_client):
    with pytest.raises(VibesBadRequest):
        vibes_client.send_sms(to="555-0100", text="Hello")


def test_stats_and_request_log(vibes_client, vibes_simulator):
    vibes_client.list_subscription_lists()
    vibes_client.send_sms(to=MDN, text="Hello")
    stats = control(vibes_simulator, "stats")
    assert stats["requests"] == 2 and stats["by_status"] == {"200": 2}
    assert stats["max_requests_per_second"] == 2
    log = control(vibes_simulator, "requests")
    assert [(r["method"], r["status"], r["processed"]) for r in log] == [
        ("GET", 200, True),
        ("POST", 200, True),
    ]


def test_reset_forgets_everything(vibes_client, vibes_simulator):
    vibes_client.send_sms(to=MDN, text="Hello")
    control(vibes_simulator, "faults", {"error_rate": 1})
    control(vibes_simulator, "reset", {})
    assert vibes_simulator.messages() == []
    assert vibes_simulator.faults["error_rate"] == 0


def test_faults_endpoint_refuses_unknown_switches(vibes_simulator):
    response = requests.post(f"{vibes_simulator.url}/_simulator/faults", json={"explode": 1})
    assert response.status_code == 400


def test_rate_limit_answers_429_above_the_rate_unprocessed(vibes_simulator):
    vibes_simulator.set_faults(rate_limit=5)
    client = make_client(vibes_simulator.url, max_attempts=1)
    statuses = []
    for n in range(8):
        try:
            client.send_sms(to=MDN, text=f"m{n}")
            statuses.append(200)
        except Exception as error:
            statuses.append(error.status)
    assert statuses == [200] * 5 + [429] * 3
    assert len(vibes_simulator.messages()) == 5
    assert [r["processed"] for r in vibes_simulator.requests_log()] == [True] * 5 + [False] * 3


def write_request(simulator, path):
    """Write a GET for `path` on a new connection; return it, and the time it was written."""
    connection = socket.create_connection((simulator.host, simulator.port), timeout=30)
    auth = base64.b64encode(f"{SIM_USERNAME}:{SIM_PASSWORD}".encode()).decode()
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: vibes\r\nAuthorization: Basic {auth}\r\n"
        "X-API-Version: 2\r\nConnection: close\r\n\r\n".encode()
    )
    return connection, time.time()


def read_answer(connection) -> bytes:
    with connection:
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_requests_count_when_they_arrive_not_when_a_busy_simulator_gets_to_them(vibes_simulator):
    path = f"/companies/{SIM_COMPANY_KEY}/mobiledb/subscription_lists/"
    with vibes_simulator._lock:  # busy: no handler thread gets to a request meanwhile
        first, written = write_request(vibes_simulator, path)
        while time.time() <= written + 1.05:
            time.sleep(0.05)
        second, _ = write_request(vibes_simulator, path)
    # Both are handled only now, together, but they arrived more than a second apart.
    assert [read_answer(c).split(b"\r\n", 1)[0] for c in (first, second)] == [b"HTTP/1.1 200 OK"] * 2
    stats = vibes_simulator.stats()
    assert (stats["requests"], stats["max_requests_per_second"]) == (2, 1)
    arrived = sorted(entry["at"] for entry in vibes_simulator.requests_log())
    assert arrived[0] <= written < arrived[1]


def busiest(times):
    """The most times in any one second (half-open, ending at one of them)."""
    times = sorted(times)
    return max(
        (bisect.bisect_right(times, t) - bisect.bisect_right(times, t - 1.0) for t in times), default=0
    )


HEADERS = {
    "Authorization": "Basic " + base64.b64encode(f"{SIM_USERNAME}:{SIM_PASSWORD}".encode()).decode(),
    "X-API-Version": "2",
}


@given(
    arrivals=st.lists(st.floats(min_value=0, max_value=4, allow_nan=False), min_size=1, max_size=60),
    limit=st.integers(min_value=0, max_value=6),
    seed=st.integers(),
)
def test_the_rate_window_holds_whatever_order_requests_are_handled_in(arrivals, limit, seed):
    simulator = VibesSimulator(company_key=SIM_COMPANY_KEY, username=SIM_USERNAME, password=SIM_PASSWORD)
    simulator.set_faults(rate_limit=limit)
    arrivals = [1_800_000_000 + at for at in arrivals]  # times as time.time() gives them
    handled = arrivals[:]
    random.Random(seed).shuffle(handled)
    path = f"/companies/{SIM_COMPANY_KEY}/mobiledb/subscription_lists/"
    admitted = []
    for at in handled:
        status, _ = simulator.handle("GET", path, HEADERS, b"", arrived=at)
        # Like Vibes: refused exactly when admitting it would put more than the limit in one second.
        refused = bool(limit) and busiest([*admitted, at]) > limit
        assert status == (429 if refused else 200)
        if not refused:
            admitted.append(at)
    stats = simulator.stats()
    assert stats["max_requests_per_second"] == busiest(arrivals)
    assert stats["max_admitted_per_second"] == busiest(admitted)


def test_a_hanging_post_was_processed_and_is_uncertain(vibes_simulator):
    vibes_simulator.set_faults(timeout_rate=1, hang_seconds=1)
    client = make_client(vibes_simulator.url, read_timeout=0.3)
    with pytest.raises(VibesUncertain):
        client.send_sms(to=MDN, text="Hello")
    # Processed (perhaps only after the client gave up, on a busy machine), answered too late.
    [entry] = wait_until(vibes_simulator.requests_log, what="the simulator to process the SMS")
    assert len(vibes_simulator.messages()) == 1
    assert (entry["processed"], entry["fault"]) == (True, "timeout")


def test_latency_is_added(vibes_simulator):
    vibes_simulator.set_faults(latency_ms=150)
    client = make_client(vibes_simulator.url)
    began = time.monotonic()
    client.list_subscription_lists()
    assert time.monotonic() - began >= 0.15


def test_start_stop_and_context_manager_on_a_random_port():
    with VibesSimulator(port=0) as simulator:
        assert simulator.port > 0
        assert requests.get(f"{simulator.url}/_simulator/stats").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{simulator.url}/_simulator/stats", timeout=1)


def test_connections_are_kept_alive(vibes_client, vibes_simulator):
    for _ in range(5):
        vibes_client.list_subscription_lists()
    pools = vibes_client.session.get_adapter(vibes_simulator.url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]


def test_every_text_a_phone_sends_is_recorded_and_unmatched_when_nothing_in_vibes_matches_it(vibes_simulator):
    vibes_client = make_client(vibes_simulator.url)
    vibes_client.add_participant("AC-VIP", mdn=MDN, external_person_id="42")
    stranger = "+15551239999"
    answers = [
        vibes_simulator.reply(stranger, "What time do you open?"),  # a number Vibes does not know
        vibes_simulator.reply(stranger, "Y"),  # nothing pending for it
        vibes_simulator.reply(stranger, "HELP"),  # a system keyword
        vibes_simulator.reply(stranger, "stop"),  # a system keyword, whoever sends it
        vibes_simulator.reply(MDN, "y"),  # confirms the pending participant
    ]
    assert [answer["unmatched"] for answer in answers] == [True, True, False, False, False]
    assert answers[-1]["confirmed"] == ["102"]
    assert [(m["mdn"], m["text"], m["message_id"]) for m in vibes_simulator.inbound()] == [
        (stranger, "What time do you open?", answers[0]["message_id"]),
        (stranger, "Y", answers[1]["message_id"]),
        (stranger, "HELP", answers[2]["message_id"]),
        (stranger, "stop", answers[3]["message_id"]),
        (MDN, "y", answers[4]["message_id"]),
    ]
    assert len({answer["message_id"] for answer in answers}) == 5


def test_a_reply_from_a_number_not_in_e164_form_is_refused(vibes_simulator):
    response = requests.post(
        f"{vibes_simulator.url}/_simulator/reply", json={"mdn": "555-1234", "text": "Hi"}
    )
    assert response.status_code == 400
    assert "E.164" in response.json()["errors"][0]["message"]
    assert vibes_simulator.inbound() == []


# --- Keyword joins and the list's subscribers ----------------------------------------------------


def subscribers_page(simulator, list_id="101", **query):
    client = make_client(simulator.url)
    return client.session.get(
        f"{simulator.url}/companies/sim-company/mobiledb/subscription_lists/{list_id}/subscribers",
        params=query,
    )


def test_a_keyword_text_subscribes_the_number_without_an_external_id(vibes_client, vibes_simulator):
    assert control(vibes_simulator, "keyword", {"mdn": MDN, "keyword": "join"}) == {
        "list_id": "101",
        "joined": True,
    }
    [row] = vibes_simulator.subscriptions()
    assert (row["list_id"], row["mdn"], row["status"], row["external_person_id"]) == (
        "101",
        MDN,
        "subscribed",
        "",
    )
    [subscriber] = vibes_client.list_subscribers("101", page=1, page_size=10)
    assert (subscriber.mdn, subscriber.external_person_id) == (MDN, "")
    assert subscriber.person_key == vibes_client.find_person(MDN).person_key


def test_a_keyword_no_campaign_has_or_a_bad_number_is_refused(vibes_simulator):
    unknown = requests.post(
        f"{vibes_simulator.url}/_simulator/keyword", json={"mdn": MDN, "keyword": "PIZZA"}
    )
    assert unknown.status_code == 404 and "PIZZA" in unknown.json()["errors"][0]["message"]
    bad = requests.post(f"{vibes_simulator.url}/_simulator/keyword", json={"mdn": "555", "keyword": "JOIN"})
    assert bad.status_code == 400
    assert vibes_simulator.subscriptions() == []


def test_a_keyword_from_a_subscribed_number_changes_nothing(vibes_simulator):
    vibes_simulator.add_subscriber("101", MDN, external_person_id="42")
    assert vibes_simulator.keyword(MDN, "JOIN") == {"list_id": "101", "joined": False}
    [row] = vibes_simulator.subscriptions()
    assert row["external_person_id"] == "42"


def test_subscribers_come_in_pages_in_the_order_they_joined(vibes_client, vibes_simulator):
    numbers = [f"+1555123{n:04d}" for n in range(5)]
    for number in numbers:
        vibes_simulator.keyword(number, "JOIN")
    vibes_simulator.add_subscriber("102", "+15559990000")
    pages = [vibes_client.list_subscribers("101", page=page, page_size=2) for page in (1, 2, 3, 4)]
    assert [[s.mdn for s in page] for page in pages] == [numbers[:2], numbers[2:4], numbers[4:], []]


def test_a_subscriber_who_leaves_moves_the_later_ones_forward(vibes_client, vibes_simulator):
    """Offset paging over a list that changes meanwhile skips someone: what the sync's checks are for."""
    numbers = [f"+1555123{n:04d}" for n in range(4)]
    for number in numbers:
        vibes_simulator.keyword(number, "JOIN")
    first = vibes_client.list_subscribers("101", page=1, page_size=2)
    vibes_simulator.reply(numbers[0], "STOP")
    second = vibes_client.list_subscribers("101", page=2, page_size=2)
    assert [s.mdn for s in first + second] == [numbers[0], numbers[1], numbers[3]]


def test_a_page_is_no_larger_than_the_simulators_limit(vibes_client, vibes_simulator):
    vibes_simulator.configure(max_page_size=3)
    for n in range(5):
        vibes_simulator.add_subscriber("101", f"+1555123{n:04d}")
    assert len(vibes_client.list_subscribers("101", page=1, page_size=100)) == 3
    assert len(vibes_client.list_subscribers("101", page=2, page_size=100)) == 2


def test_subscribers_carry_the_persons_custom_fields(vibes_client, vibes_simulator):
    vibes_simulator.add_subscriber("101", MDN, custom_fields={"first_name": "Ana"})
    [subscriber] = vibes_client.list_subscribers("101", page=1, page_size=10)
    assert subscriber.custom_fields == {"first_name": "Ana"}


def test_the_contracts_search_finds_one_subscriber_by_number(vibes_client, vibes_simulator):
    vibes_simulator.keyword(MDN, "JOIN")
    assert vibes_client.find_subscriber("101", mdn=MDN).mdn == MDN
    assert vibes_client.find_subscriber("102", mdn=MDN) is None
    vibes_simulator.reply(MDN, "STOP")
    assert vibes_client.find_subscriber("101", mdn=MDN) is None


def test_without_paging_only_the_search_is_served(vibes_client, vibes_simulator):
    vibes_simulator.configure(subscriber_paging=False)
    vibes_simulator.keyword(MDN, "JOIN")
    response = subscribers_page(vibes_simulator, page=1, page_size=10)
    assert response.status_code == 400
    assert "mdn" in response.json()["errors"][0]["message"]
    assert vibes_client.find_subscriber("101", mdn=MDN).mdn == MDN


def test_bad_paging_parameters_are_refused(vibes_simulator):
    assert subscribers_page(vibes_simulator, page=0).status_code == 400
    assert subscribers_page(vibes_simulator, page="two").status_code == 400
    assert subscribers_page(vibes_simulator, "999", page=1).status_code == 404


def test_many_subscribers_are_added_in_one_request(vibes_client, vibes_simulator):
    rows = [{"mdn": f"+1555123{n:04d}", "external_person_id": str(n)} for n in range(3)]
    assert control(vibes_simulator, "subscribers", {"list_id": "101", "subscribers": rows}) == {"added": 3}
    assert [s.external_person_id for s in vibes_client.list_subscribers("101", page=1, page_size=10)] == [
        "0",
        "1",
        "2",
    ]


# --- Receipts that fail, and the confirmation window ------------------------------------------------


def test_a_share_of_sms_get_a_failed_receipt_with_the_carriers_reason(
    vibes_client, vibes_simulator, callback_catcher
):
    vibes_simulator.set_faults(receipt_failure_rate=1)
    vibes_simulator.configure(receipt_failure_reason="Unknown subscriber")
    sent = vibes_client.send_sms(to=MDN, text="Hello", callback_url=f"{callback_catcher.url}?ref=r1")
    [receipt] = callback_catcher.wait_for(1)
    assert receipt["path"] == "/callbacks/?ref=r1"
    assert receipt["body"] | {"occurred_at": ""} == {
        "event_type": "delivery_receipt",
        "message_id": sent.message_id,
        "to": MDN,
        "from": "12345",
        "status": "failed",
        "error_code": "carrier_unreachable",
        "description": "Unknown subscriber",
        "occurred_at": "",
    }
    assert [m["delivery"] for m in vibes_simulator.messages()] == ["failed"]


def test_without_the_fault_every_receipt_says_delivered(vibes_client, vibes_simulator, callback_catcher):
    for n in range(5):
        vibes_client.send_sms(to=MDN, text=f"m{n}", callback_url=callback_catcher.url)
    assert {r["body"]["status"] for r in callback_catcher.wait_for(5)} == {"delivered"}
    assert all("description" not in r["body"] for r in callback_catcher.received)


def test_the_failure_rate_fails_about_that_share(vibes_client, vibes_simulator):
    control(vibes_simulator, "faults", {"receipt_failure_rate": 0.25})
    for n in range(200):
        vibes_client.send_sms(to=MDN, text=f"m{n}")
    failed = sum(m["delivery"] == "failed" for m in vibes_simulator.messages())
    assert 25 <= failed <= 75


def test_a_pending_participant_expires_after_the_confirmation_window(
    vibes_client, vibes_simulator, callback_catcher
):
    vibes_simulator.configure(callback_url=callback_catcher.url, confirmation_window=0.5)
    vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")
    [event] = callback_catcher.wait_for(1)
    assert event["headers"]["X-Vibes-Event-Type"] == "ack_participant_changed"
    assert event["body"]["status"] == "expired"
    assert event["body"]["acquisition_campaign"] == {"acquisition_id": "AC-NEWS-WEB"}
    assert event["body"]["expire_date"] > event["body"]["participation_date"]
    assert vibes_simulator.subscriptions() == []
    assert vibes_simulator.reply(MDN, "Y").get("confirmed", []) == []  # too late


def test_a_participant_who_answered_in_time_does_not_expire(vibes_client, vibes_simulator, callback_catcher):
    vibes_simulator.configure(callback_url=callback_catcher.url, confirmation_window=0.5)
    vibes_client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")
    vibes_simulator.reply(MDN, "Y")
    [event] = callback_catcher.wait_for(1)
    assert event["headers"]["X-Vibes-Event-Type"] == "subscription_added"
    deadline = time.monotonic() + 30
    while vibes_simulator.stats()["scheduled"].get("expire"):  # the window's end passes
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert vibes_simulator.wait_for_callbacks(30)
    assert len(callback_catcher.events()) == 1
    assert [s["status"] for s in vibes_simulator.subscriptions()] == ["subscribed"]


def test_the_window_is_a_day_unless_configured(vibes_simulator):
    client = make_client(vibes_simulator.url)
    response = client.session.post(
        f"{vibes_simulator.url}/companies/sim-company/campaigns/acquisition/AC-NEWS-WEB/participants",
        json={"mobile_phone": {"mdn": MDN}},
    )
    body = response.json()
    participation = datetime.fromisoformat(body["participation_date"])
    assert datetime.fromisoformat(body["expire_date"]) - participation == timedelta(days=1)
