"""The local Vibes simulator, driven by the real client over HTTP."""

import base64
import bisect
import random
import socket
import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.vibes.fixtures import SIM_COMPANY_KEY, SIM_PASSWORD, SIM_USERNAME, make_client
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
    assert control(vibes_simulator, "reply", {"mdn": MDN, "text": "Y"}) == {"confirmed": ["101"]}
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
