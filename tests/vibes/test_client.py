"""The Vibes client against canned answers (`responses`): status mapping,
retries, what is never resent, and what never leaks."""

import json
import logging

import pytest
import requests
import responses
from responses import matchers

from vibes.client import VibesClient
from vibes.exceptions import (
    VibesAuthError,
    VibesBadRequest,
    VibesConnectionError,
    VibesPagingUnsupported,
    VibesRateLimited,
    VibesServerError,
    VibesTimeout,
    VibesUncertain,
    VibesUnprocessable,
)
from vibes.types import (
    AcquisitionCampaignInfo,
    ParticipantResult,
    PersonInfo,
    SubscriberInfo,
    SubscriptionInfo,
    SubscriptionListInfo,
)

BASE = "https://vibes.test"
CONNECT = "https://connect.test"
COMPANY = f"{BASE}/companies/acme"
PASSWORD = "s3cret-Pa55word"
PARTICIPANTS = f"{COMPANY}/campaigns/acquisition/AC-1/participants"
SMS = f"{CONNECT}/api/v1/sms/messages"
MDN = "+15551230001"


class RecordingClient(VibesClient):
    """No real sleeping, no randomness: backoffs are recorded instead."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.slept = []

    def _jitter(self, delay):
        return delay

    def _sleep(self, seconds):
        self.slept.append(seconds)


@pytest.fixture
def client():
    return RecordingClient(
        platform_url=BASE,
        connect_url=CONNECT,
        company_key="acme",
        username="acme-user",
        password=PASSWORD,
        short_code="12345",
        max_attempts=4,
        backoff_base=0.1,
        backoff_max=0.3,
    )


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def test_every_request_carries_version_json_headers_and_basic_auth(client, mocked):
    mocked.get(
        f"{COMPANY}/mobiledb/subscription_lists/",
        json=[{"id": "101", "name": "News", "url": "/x"}],
        match=[
            matchers.header_matcher(
                {"X-API-Version": "2", "Content-Type": "application/json", "Accept": "application/json"}
            )
        ],
    )
    assert client.list_subscription_lists() == [SubscriptionListInfo(id="101", name="News")]
    assert mocked.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_acquisition_campaigns_are_read_with_keywords_and_lowercase_status(client, mocked):
    mocked.get(
        f"{COMPANY}/mobiledb/subscription_lists/101/acquisition_campaigns/",
        json=[
            {
                "acquisition_id": "AC-1",
                "description": "Web sign-up",
                "status": "ACTIVE",
                "acquisition_campaign": {"keywords": ["NEWS", "JOIN"]},
                "unknown_field": {"ignored": True},
            }
        ],
    )
    assert client.list_acquisition_campaigns("101") == [
        AcquisitionCampaignInfo(
            acquisition_id="AC-1", name="Web sign-up", status="active", keywords=("NEWS", "JOIN")
        )
    ]


def test_add_participant_posts_the_number_and_external_id(client, mocked):
    mocked.post(
        PARTICIPANTS,
        status=201,
        json={"person": {"person_key": "PK1"}, "status": "PENDING"},
        match=[matchers.json_params_matcher({"mobile_phone": {"mdn": MDN}, "external_person_id": "42"})],
    )
    assert client.add_participant("AC-1", mdn=MDN, external_person_id="42") == ParticipantResult(
        status="pending", person_key="PK1", already_subscribed=False
    )


def test_add_participant_reads_subscribed_status(client, mocked):
    mocked.post(PARTICIPANTS, status=201, json={"person": {"person_key": "PK1"}, "status": "SUBSCRIBED"})
    assert client.add_participant("AC-1", mdn=MDN, external_person_id="42").status == "subscribed"


def test_already_subscribed_409_is_a_success(client, mocked):
    mocked.post(PARTICIPANTS, status=409, json={"errors": [{"message": "Already subscribed", "code": 409}]})
    assert client.add_participant("AC-1", mdn=MDN, external_person_id="42") == ParticipantResult(
        status="subscribed", person_key="", already_subscribed=True
    )


def test_confirmation_block_422_raises_with_vibes_code_and_is_not_retried(client, mocked):
    mocked.post(
        PARTICIPANTS,
        status=422,
        json={"errors": [{"message": "MDN has confirmation block", "code": "MDNHASCONFIRMATIONBLOCK"}]},
    )
    with pytest.raises(VibesUnprocessable) as caught:
        client.add_participant("AC-1", mdn=MDN, external_person_id="42")
    assert caught.value.code == "MDNHASCONFIRMATIONBLOCK"
    assert caught.value.status == 422
    assert caught.value.errors == [
        {"message": "MDN has confirmation block", "code": "MDNHASCONFIRMATIONBLOCK"}
    ]
    assert len(mocked.calls) == 1


def test_bad_number_400_raises_bad_request(client, mocked):
    mocked.post(PARTICIPANTS, status=400, json={"errors": [{"message": "bad MDN", "code": 1}]})
    with pytest.raises(VibesBadRequest) as caught:
        client.add_participant("AC-1", mdn="555", external_person_id="42")
    assert caught.value.code == "1"


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_raise_auth_error(client, mocked, status):
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", status=status, body="")
    with pytest.raises(VibesAuthError):
        client.list_subscription_lists()


def test_find_person_encodes_the_plus_as_2b(client, mocked):
    mocked.get(
        f"{COMPANY}/mobiledb/persons",
        json={"person_key": "PK1", "external_person_id": "42", "mobile_phone": {"mdn": MDN}},
    )
    assert client.find_person(MDN) == PersonInfo(person_key="PK1", external_person_id="42", mdn=MDN)
    assert mocked.calls[0].request.url.endswith("/mobiledb/persons?mdn=%2B15551230001")


def test_find_person_unknown_number_is_none(client, mocked):
    mocked.get(
        f"{COMPANY}/mobiledb/persons",
        status=404,
        json={"errors": [{"message": "MDN not found", "code": 404}]},
    )
    assert client.find_person(MDN) is None


SUBSCRIBERS = f"{COMPANY}/mobiledb/subscription_lists/101/subscribers"


def test_list_subscribers_asks_for_a_page_and_reads_persons(client, mocked):
    mocked.get(
        SUBSCRIBERS,
        match=[matchers.query_param_matcher({"page": "3", "page_size": "500"})],
        json=[
            {"person_key": "PK1", "mobile_phone": {"mdn": MDN}, "custom_fields": {"first_name": "Ana"}},
            {"person_key": "PK2", "external_person_id": "42", "mobile_phone": {"mdn": "+15551230002"}},
        ],
    )
    assert client.list_subscribers("101", page=3, page_size=500) == [
        SubscriberInfo(person_key="PK1", external_person_id="", mdn=MDN, custom_fields={"first_name": "Ana"}),
        SubscriberInfo(person_key="PK2", external_person_id="42", mdn="+15551230002"),
    ]


def test_a_subscribers_answer_that_is_not_a_page_says_paging_is_unsupported(client, mocked):
    # What the contract documents: one person, for a search.
    mocked.get(SUBSCRIBERS, json={"person_key": "PK1", "mobile_phone": {"mdn": MDN}})
    with pytest.raises(VibesPagingUnsupported):
        client.list_subscribers("101", page=1, page_size=1000)


def test_find_subscriber_searches_by_the_encoded_number(client, mocked):
    mocked.get(SUBSCRIBERS, json={"person_key": "PK1", "mobile_phone": {"mdn": MDN}})
    assert client.find_subscriber("101", mdn=MDN).person_key == "PK1"
    assert mocked.calls[0].request.url.endswith("/subscribers?mdn=%2B15551230001")


def test_find_subscriber_not_subscribed_is_none(client, mocked):
    mocked.get(SUBSCRIBERS, status=404, json={"errors": [{"message": "not subscribed", "code": 404}]})
    assert client.find_subscriber("101", mdn=MDN) is None


def test_unsubscribe_by_external_id(client, mocked):
    mocked.delete(f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101", status=204)
    assert client.unsubscribe("101", external_person_id="42") is True


def test_unsubscribe_404_without_number_means_already_done(client, mocked):
    mocked.delete(f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101", status=404)
    assert client.unsubscribe("101", external_person_id="42") is False


def test_unsubscribe_404_falls_back_to_the_person_found_by_number(client, mocked):
    mocked.delete(f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101", status=404)
    mocked.get(
        f"{COMPANY}/mobiledb/persons",
        json={"person_key": "PK7", "external_person_id": "7", "mobile_phone": {"mdn": MDN}},
        match=[matchers.query_param_matcher({"mdn": MDN})],
    )
    mocked.delete(f"{COMPANY}/mobiledb/persons/PK7/subscriptions/101", status=204)
    assert client.unsubscribe("101", external_person_id="42", mdn=MDN) is True


def test_unsubscribe_of_a_number_vibes_does_not_know_is_false(client, mocked):
    mocked.delete(f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101", status=404)
    mocked.get(f"{COMPANY}/mobiledb/persons", status=404)
    assert client.unsubscribe("101", external_person_id="42", mdn=MDN) is False


def test_path_ids_are_escaped(client, mocked):
    mocked.delete(f"{COMPANY}/mobiledb/persons/external/a%2Fb%3F/subscriptions/101", status=204)
    assert client.unsubscribe("101", external_person_id="a/b?") is True


def test_get_subscription_reads_the_contract_list_shape(client, mocked):
    mocked.get(
        f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101",
        json=[
            {
                "subscription_list": {"id": "101"},
                "opt_in_date": "2026-01-01T00:00:00Z",
                "opt_out_date": "2026-02-01T00:00:00Z",
                "opt_out_reason": "user_opt_out",
            }
        ],
    )
    info = client.get_subscription("101", external_person_id="42")
    assert info == SubscriptionInfo(
        list_id="101",
        opt_in_date="2026-01-01T00:00:00Z",
        opt_out_date="2026-02-01T00:00:00Z",
        opt_out_reason="user_opt_out",
    )
    assert not info.subscribed


def test_get_subscription_404_is_none(client, mocked):
    mocked.get(f"{COMPANY}/mobiledb/persons/external/42/subscriptions/101", status=404)
    assert client.get_subscription("101", external_person_id="42") is None


def test_send_sms_posts_to_connect_from_the_short_code(client, mocked):
    mocked.post(
        SMS,
        json={"message_id": "M1", "status": "accepted"},
        match=[
            matchers.json_params_matcher(
                {
                    "to": MDN,
                    "from": "12345",
                    "text": "Hi",
                    "callback_url": "https://app.test/vibes/callbacks/?ref=9",
                }
            )
        ],
    )
    sent = client.send_sms(to=MDN, text="Hi", callback_url="https://app.test/vibes/callbacks/?ref=9")
    assert (sent.message_id, sent.status) == ("M1", "accepted")


def test_send_sms_without_callback_url_omits_it(client, mocked):
    mocked.post(SMS, json={"message_id": "M1", "status": "accepted"})
    client.send_sms(to=MDN, text="Hi")
    assert json.loads(mocked.calls[0].request.body) == {"to": MDN, "from": "12345", "text": "Hi"}


# --- Retries -------------------------------------------------------------------------


def test_get_is_retried_after_5xx_with_exponential_backoff(client, mocked):
    url = f"{COMPANY}/mobiledb/subscription_lists/"
    mocked.get(url, status=503)
    mocked.get(url, status=500)
    mocked.get(url, json=[])
    assert client.list_subscription_lists() == []
    assert len(mocked.calls) == 3
    assert client.slept == [0.1, 0.2]


def test_get_gives_up_after_max_attempts_with_server_error(client, mocked):
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", status=502)
    with pytest.raises(VibesServerError) as caught:
        client.list_subscription_lists()
    assert len(mocked.calls) == 4
    assert client.slept == [0.1, 0.2, 0.3]  # capped at backoff_max
    assert caught.value.status == 502


def test_post_5xx_is_uncertain_and_never_resent(client, mocked):
    mocked.post(SMS, status=500, json={"errors": [{"message": "oops", "code": 500}]})
    with pytest.raises(VibesUncertain) as caught:
        client.send_sms(to=MDN, text="Hi")
    assert len(mocked.calls) == 1
    assert caught.value.status == 500


def test_post_read_timeout_is_uncertain_and_never_resent(client, mocked):
    mocked.post(PARTICIPANTS, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(VibesUncertain):
        client.add_participant("AC-1", mdn=MDN, external_person_id="42")
    assert len(mocked.calls) == 1


def test_post_connection_dropped_after_sending_is_uncertain(client, mocked):
    mocked.post(SMS, body=requests.ConnectionError("Connection aborted."))
    with pytest.raises(VibesUncertain):
        client.send_sms(to=MDN, text="Hi")
    assert len(mocked.calls) == 1


def test_post_429_is_resent_because_vibes_refused_it_before_processing(client, mocked):
    mocked.post(SMS, status=429, body="Too Many Requests")
    mocked.post(SMS, status=429, body="Too Many Requests")
    mocked.post(SMS, json={"message_id": "M1", "status": "accepted"})
    assert client.send_sms(to=MDN, text="Hi").message_id == "M1"
    assert len(mocked.calls) == 3


def test_429_on_every_attempt_raises_rate_limited(client, mocked):
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", status=429)
    with pytest.raises(VibesRateLimited):
        client.list_subscription_lists()
    assert len(mocked.calls) == 4


def test_post_connect_timeout_is_resent_because_nothing_was_sent(client, mocked):
    mocked.post(SMS, body=requests.ConnectTimeout("connect timed out"))
    mocked.post(SMS, json={"message_id": "M1", "status": "accepted"})
    assert client.send_sms(to=MDN, text="Hi").message_id == "M1"


def test_connect_timeouts_on_every_attempt_raise_connection_error(client, mocked):
    mocked.post(SMS, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(VibesConnectionError):
        client.send_sms(to=MDN, text="Hi")
    assert len(mocked.calls) == 4


def test_get_read_timeout_is_retried_then_raises_timeout(client, mocked):
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(VibesTimeout):
        client.list_subscription_lists()
    assert len(mocked.calls) == 4


def test_refused_connection_is_retried_for_a_post_then_raises_connection_error():
    client = RecordingClient(
        platform_url="http://127.0.0.1:9",  # discard port: nothing listens
        connect_url="http://127.0.0.1:9",
        company_key="acme",
        username="u",
        password=PASSWORD,
        short_code="1",
        max_attempts=2,
    )
    with pytest.raises(VibesConnectionError) as caught:
        client.send_sms(to=MDN, text="Hi")
    assert len(client.slept) == 1
    assert MDN not in str(caught.value)


def test_every_attempt_passes_the_rate_limiter(client, mocked):
    class CountingLimiter:
        calls = 0

        def acquire(self):
            self.calls += 1

    client.rate_limiter = CountingLimiter()
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", status=429)
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", json=[])
    client.list_subscription_lists()
    assert client.rate_limiter.calls == 2


def test_jitter_stays_between_half_and_all_of_the_delay():
    client = VibesClient(
        platform_url=BASE, connect_url=CONNECT, company_key="a", username="u", password="p", short_code="1"
    )
    assert all(0.5 <= client._jitter(1.0) <= 1.0 for _ in range(200))


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        VibesClient(
            platform_url=BASE,
            connect_url=CONNECT,
            company_key="a",
            username="u",
            password="p",
            short_code="1",
            read_timeout=0,
        )


def test_every_call_has_a_connect_and_read_timeout(client, mocked):
    mocked.get(f"{COMPANY}/mobiledb/subscription_lists/", json=[])
    seen = {}
    original = client.session.request

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    client.session.request = spy
    client.list_subscription_lists()
    assert seen["timeout"] == (3.05, 15.0)


def test_pool_size_and_no_urllib3_retries(client):
    adapter = client.session.get_adapter(BASE)
    assert adapter._pool_maxsize == 16
    assert adapter.max_retries.total == 0


# --- Secrets ----------------------------------------------------------------------------


def test_password_never_appears_in_repr_errors_or_logs(client, mocked, caplog):
    caplog.set_level(logging.DEBUG, logger="vibes")
    # Even a body that echoes the password is scrubbed.
    mocked.get(
        f"{COMPANY}/mobiledb/subscription_lists/",
        status=401,
        json={"errors": [{"message": f"bad password {PASSWORD}", "code": 401}]},
    )
    with pytest.raises(VibesAuthError) as caught:
        client.list_subscription_lists()
    error = caught.value
    for text in (repr(client), str(error), repr(error), error.body, error.message, caplog.text):
        assert PASSWORD not in text
    assert "Authorization" not in caplog.text
    assert "GET /companies/acme/mobiledb/subscription_lists/" in caplog.text


def test_phone_numbers_stay_out_of_logs(client, mocked, caplog):
    caplog.set_level(logging.DEBUG, logger="vibes")
    mocked.get(f"{COMPANY}/mobiledb/persons", status=404)
    mocked.post(PARTICIPANTS, status=201, json={"status": "PENDING"})
    client.find_person(MDN)
    client.add_participant("AC-1", mdn=MDN, external_person_id="42")
    assert "5551230001" not in caplog.text
