"""Every request the client can make, checked against the Vibes contract files
copied into `vibes/contract/`: the operation exists, the required headers and
parameters are there, and the JSON body validates against the operation's
request schema. The simulator's answers are checked against the response
schemas the same way."""

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import vibes
from tests.vibes.simulated import make_client
from vibes.callbacks import RECEIPT_STATUSES
from vibes.client import VibesClient

CONTRACT = Path(vibes.__file__).parent / "contract"
PLATFORM_SPEC = json.loads((CONTRACT / "platform-openapi.json").read_text())
CONNECT_SPEC = yaml.safe_load((CONTRACT / "connect-openapi.yml").read_text())
REGISTRY = Registry().with_resources(
    [
        ("urn:vibes:platform", Resource.from_contents(PLATFORM_SPEC, default_specification=DRAFT202012)),
        ("urn:vibes:connect", Resource.from_contents(CONNECT_SPEC, default_specification=DRAFT202012)),
    ]
)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

PLATFORM_URL = "https://platform.vibes.test"
CONNECT_URL = "https://connect.vibes.test"
USERNAME, PASSWORD = "acme-user", "acme-password"
MDN = "+15551230001"


@dataclass(frozen=True)
class Operation:
    spec_urn: str
    spec: dict
    method: str
    template: str
    pattern: re.Pattern

    @property
    def definition(self) -> dict:
        return self.spec["paths"][self.template][self.method.lower()]

    def pointer(self, *parts) -> str:
        escaped = [
            str(p).replace("~", "~0").replace("/", "~1")
            for p in ("paths", self.template, self.method.lower(), *parts)
        ]
        return f"{self.spec_urn}#/" + "/".join(escaped)

    def __str__(self):
        return f"{self.method} {self.template}"


def _operations(spec_urn, spec):
    for template, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")
        for method in item:
            if method in {"get", "post", "put", "delete", "patch"}:
                yield Operation(spec_urn, spec, method.upper(), template, pattern)


OPERATIONS = {
    PLATFORM_URL: list(_operations("urn:vibes:platform", PLATFORM_SPEC)),
    CONNECT_URL: list(_operations("urn:vibes:connect", CONNECT_SPEC)),
}


def find_operation(method: str, url: str) -> Operation | None:
    for base, operations in OPERATIONS.items():
        if url.startswith(base + "/"):
            path = urlsplit(url).path
            for operation in operations:
                if operation.method == method and operation.pattern.match(path):
                    return operation
    return None


def validate_schema(pointer: str, instance) -> list[str]:
    validator = Draft202012Validator({"$ref": pointer}, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


# The one departure from the contract, on purpose. The contract documents a list's
# `subscribers` only as a search for one subscriber and publishes no way to read them
# all, while the list-driven sync must (keyword subscribers are known to Vibes only).
# The sync pages that operation with the only paging the contract publishes (that of
# the wallet's store locations, checked below), reads each item as the contract's
# person resource, and falls back to the documented search when Vibes refuses.
SUBSCRIBERS = "GET /companies/{company_key}/mobiledb/subscription_lists/{subscription_list_id}/subscribers"
PAGING_SOURCE = "GET /companies/{company_key}/campaigns/wallet/{token}/locations"
BEYOND_THE_CONTRACT = {SUBSCRIBERS: {"page", "page_size"}}


def contract_violations(request: requests.PreparedRequest) -> list[str]:
    """What is wrong with this request according to the contract files; [] when nothing."""
    operation = find_operation(request.method, request.url)
    if operation is None:
        return [f"no operation {request.method} {urlsplit(request.url).path} in the contract"]
    problems = []
    headers = request.headers
    if operation.spec_urn == "urn:vibes:platform" and headers.get("X-API-Version") != "2":
        problems.append("X-API-Version must be 2 (version 1 is the default and refuses E.164 numbers)")
    if headers.get("Content-Type") != "application/json":
        problems.append("Content-Type must be application/json")
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme != "Basic" or base64.b64decode(encoded or b"").decode() != f"{USERNAME}:{PASSWORD}":
        problems.append("Basic authorization with the company's credentials is required")

    # The query as the server will read it: a bare "+" would become a space.
    query = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    for parameter in operation.definition.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "query":
            values = query.get(name)
            if parameter.get("required") and not (values and values[0]):
                problems.append(f"query parameter {name} is required")
            if name == "mdn" and values and not E164.match(values[0]):
                problems.append(
                    f"query parameter mdn must arrive in E.164 form (got {values[0]!r}: encode + as %2B)"
                )
        elif where == "header" and parameter.get("required") and name.lower() != "x-api-version":
            if not headers.get(name):
                problems.append(f"header {name} is required")
    undeclared = (
        set(query)
        - {p["name"] for p in operation.definition.get("parameters", []) if p["in"] == "query"}
        - BEYOND_THE_CONTRACT.get(str(operation), set())
    )
    if undeclared:
        problems.append(f"query parameters not in the contract: {sorted(undeclared)}")

    request_body = operation.definition.get("requestBody")
    if request_body is None:
        if request.body:
            problems.append("this operation takes no body")
    elif not request.body:
        if request_body.get("required"):
            problems.append("a JSON body is required")
    else:
        try:
            body = json.loads(request.body)
        except ValueError:
            problems.append("the body is not JSON")
        else:
            problems += validate_schema(
                operation.pointer("requestBody", "content", "application/json", "schema"), body
            )
    return problems


# --- Capturing every request the client makes ------------------------------------------


def canned_answer(request):
    """Answers in the contract's shapes, steering the client through every path it has."""
    path = urlsplit(request.url).path
    method = request.method
    if path.endswith("/acquisition_campaigns/"):
        return 200, {}, json.dumps([{"acquisition_id": "AC-1", "description": "Web", "status": "active"}])
    if path.endswith("/subscription_lists/"):
        return 200, {}, json.dumps([{"id": "101", "name": "News"}])
    if path.endswith("/participants"):
        return 201, {}, json.dumps({"person": {"person_key": "PK1"}, "status": "PENDING"})
    if path.endswith("/subscribers"):
        person = {"person_key": "PK7", "external_person_id": "", "mobile_phone": {"mdn": MDN}}
        return 200, {}, json.dumps([person] if "page=" in request.url else person)
    if path.endswith("/mobiledb/persons"):
        return (
            200,
            {},
            json.dumps({"person_key": "PK9", "external_person_id": "99", "mobile_phone": {"mdn": MDN}}),
        )
    if "/persons/external/" in path:
        # 404 sends unsubscribe() on to its by-number fallback.
        return (
            (404, {}, "")
            if method == "DELETE"
            else (200, {}, json.dumps([{"subscription_list": {"id": "101"}}]))
        )
    if "/subscriptions/" in path and method == "DELETE":
        return 204, {}, ""
    if path == "/api/v1/sms/messages":
        return 200, {}, json.dumps({"message_id": "M1", "status": "accepted"})
    if path.endswith("/config/callbacks/") and method == "GET":
        return 200, {}, json.dumps([CALLBACK_RESOURCE])
    if "/config/callbacks/" in path:
        return 200, {}, json.dumps(CALLBACK_RESOURCE)
    if path.endswith("/config/callback_events/test"):
        return 200, {}, json.dumps({"message": "queued", "event_id": "E1"})
    if path == "/api/v1/callbacks":
        return 201, {}, json.dumps({"id": "C1", "callback_type": "delivery_receipt", "url": CALLBACK_URL})
    return 599, {}, ""


CALLBACK_URL = "https://vibes:callback-pw@app.example.com/vibes/callbacks/"
CALLBACK_RESOURCE = {
    "callback_id": "CB1",
    "callback_type": "subscription_added",
    "destination": {"url": CALLBACK_URL, "method": "POST", "content_type": "application/json"},
}


def exercise_client(client: VibesClient):
    client.list_subscription_lists()
    client.list_acquisition_campaigns("101")
    client.add_participant("AC-1", mdn=MDN, external_person_id="42")
    client.find_person(MDN)
    client.get_subscription("101", external_person_id="42")
    client.unsubscribe("101", external_person_id="42", mdn=MDN)
    client.send_sms(to=MDN, text="Hello", callback_url="https://app.example.com/vibes/callbacks/?ref=7")
    client.send_sms(to=MDN, text="Hello")
    client.list_callbacks()
    client.register_callback("subscription_added", url=CALLBACK_URL)
    client.register_callback(
        "unmatched_message_received", url=CALLBACK_URL, details={"source_code": "12345", "country_code": "US"}
    )
    client.update_callback("CB1", "subscription_removed", url=CALLBACK_URL)
    client.cancel_callback("CB1")
    client.send_test_callback(
        "subscription_added", subscription={"person": {"id": "t1"}, "subscription_list": {"id": "101"}}
    )
    client.register_connect_callback("delivery_receipt", url=CALLBACK_URL)
    client.list_subscribers("101", page=2, page_size=1000)
    client.find_subscriber("101", mdn=MDN)


@pytest.fixture
def captured_requests():
    client = VibesClient(
        platform_url=PLATFORM_URL,
        connect_url=CONNECT_URL,
        company_key="acme",
        username=USERNAME,
        password=PASSWORD,
        short_code="12345",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for method in ("GET", "POST", "PUT", "DELETE"):
            mocked.add_callback(method, re.compile(r"https://.*"), callback=canned_answer)
        exercise_client(client)
        return [call.request for call in mocked.calls]


def test_the_client_uses_exactly_the_operations_the_project_needs(captured_requests):
    company = "/companies/{company_key}"
    by_external_id = (
        company + "/mobiledb/persons/external/{external_person_id}/subscriptions/{subscription_list_id}"
    )
    assert {str(find_operation(r.method, r.url)) for r in captured_requests} == {
        f"GET {company}/mobiledb/subscription_lists/",
        f"GET {company}/mobiledb/subscription_lists/{{subscription_list_id}}/acquisition_campaigns/",
        f"POST {company}/campaigns/acquisition/{{acquisition_id}}/participants",
        f"GET {company}/mobiledb/persons",
        f"GET {by_external_id}",
        f"DELETE {by_external_id}",
        f"DELETE {company}/mobiledb/persons/{{person_key}}/subscriptions/{{subscription_list_id}}",
        "POST /api/v1/sms/messages",
        f"GET {company}/config/callbacks/",
        f"POST {company}/config/callbacks/",
        f"PUT {company}/config/callbacks/{{callback_id}}",
        f"DELETE {company}/config/callbacks/{{callback_id}}",
        f"POST {company}/config/callback_events/test",
        "POST /api/v1/callbacks",
        SUBSCRIBERS,
    }


def test_the_search_for_a_subscriber_follows_the_contract_to_the_letter(captured_requests):
    [search] = [r for r in captured_requests if "/subscribers?mdn=" in r.url]
    assert contract_violations(search) == []
    assert search.url.endswith("/subscription_lists/101/subscribers?mdn=%2B15551230001")


def test_paging_subscribers_is_the_only_departure_and_uses_the_contracts_own_paging(captured_requests):
    departures = {}
    for request in captured_requests:
        operation = find_operation(request.method, request.url)
        query = set(parse_qs(urlsplit(request.url).query))
        declared = {p["name"] for p in operation.definition.get("parameters", []) if p["in"] == "query"}
        if query - declared:
            departures[str(operation)] = query - declared
    assert departures == BEYOND_THE_CONTRACT
    wallet_locations = find_operation("GET", f"{PLATFORM_URL}/companies/acme/campaigns/wallet/T/locations")
    assert str(wallet_locations) == PAGING_SOURCE
    paging = {p["name"]: p["schema"]["type"] for p in wallet_locations.definition["parameters"]}
    assert {name: paging[name] for name in BEYOND_THE_CONTRACT[SUBSCRIBERS]} == {
        "page": "integer",
        "page_size": "integer",
    }


def test_every_client_request_follows_the_contract(captured_requests):
    problems = {f"{r.method} {r.url}": contract_violations(r) for r in captured_requests}
    assert {request: found for request, found in problems.items() if found} == {}


def _prepared(method, url, *, json_body=None, headers=None, auth=(USERNAME, PASSWORD)):
    base_headers = {"X-API-Version": "2", "Content-Type": "application/json"}
    base_headers.update(headers or {})
    return requests.Request(method, url, json=json_body, headers=base_headers, auth=auth).prepare()


PARTICIPANTS = f"{PLATFORM_URL}/companies/acme/campaigns/acquisition/AC-1/participants"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(
            _prepared("POST", PARTICIPANTS, json_body={"mobile_phone": MDN, "external_person_id": "42"}),
            "mobile_phone: '+15551230001' is not of type 'object'",
            id="number-not-an-object",
        ),
        pytest.param(
            _prepared("POST", f"{CONNECT_URL}/api/v1/sms/messages", json_body={"to": MDN, "text": "Hi"}),
            "body: 'from' is a required property",
            id="sms-without-from",
        ),
        pytest.param(
            _prepared(
                "GET",
                f"{PLATFORM_URL}/companies/acme/mobiledb/subscription_lists/",
                headers={"X-API-Version": "1"},
            ),
            "X-API-Version must be 2",
            id="api-version-1",
        ),
        pytest.param(
            _prepared("GET", f"{PLATFORM_URL}/companies/acme/mobiledb/persons?mdn=+15551230001"),
            "query parameter mdn must arrive in E.164 form",
            id="plus-not-encoded",
        ),
        pytest.param(
            _prepared("GET", f"{PLATFORM_URL}/companies/acme/mobiledb/persons"),
            "query parameter mdn is required",
            id="mdn-missing",
        ),
        pytest.param(
            _prepared("POST", f"{PLATFORM_URL}/companies/acme/participants", json_body={}),
            "no operation POST /companies/acme/participants",
            id="unknown-operation",
        ),
        pytest.param(
            _prepared("GET", f"{PLATFORM_URL}/companies/acme/mobiledb/subscription_lists/", auth=None),
            "Basic authorization",
            id="no-auth",
        ),
        pytest.param(
            _prepared(
                "POST",
                PARTICIPANTS,
                json_body={"mobile_phone": {"mdn": MDN}},
                headers={"Content-Type": "text/plain"},
            ),
            "Content-Type must be application/json",
            id="wrong-content-type",
        ),
    ],
)
def test_a_request_that_breaks_the_contract_is_caught(request_, expected):
    problems = contract_violations(request_)
    assert any(expected in problem for problem in problems), problems


# --- The simulator speaks the contract too ---------------------------------------------


def _response_problems(operation: Operation, response: requests.Response) -> list[str]:
    declared = operation.definition.get("responses", {}).get(str(response.status_code))
    if declared is None:
        return [f"status {response.status_code} is not declared"]
    if "$ref" in declared or "schema" not in declared.get("content", {}).get("application/json", {}):
        return []
    return validate_schema(
        operation.pointer("responses", str(response.status_code), "content", "application/json", "schema"),
        response.json(),
    )


def test_the_simulator_answers_in_the_contract_shapes(vibes_simulator):
    from tests.vibes.simulated import make_client

    client = make_client(vibes_simulator.url)
    exchanges = []
    send = client.session.send

    def recording_send(prepared, **kwargs):
        response = send(prepared, **kwargs)
        exchanges.append(response)
        return response

    client.session.send = recording_send
    vibes_simulator.add_subscriber("101", "+15551230002", external_person_id="7")
    client.list_subscription_lists()
    client.list_acquisition_campaigns("101")
    client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")
    client.find_person(MDN)
    client.get_subscription("101", external_person_id="7")
    client.unsubscribe("101", external_person_id="7")
    client.send_sms(to=MDN, text="Hello")
    vibes_simulator.keyword("+15551230003", "JOIN")
    client.find_subscriber("101", mdn="+15551230003")
    client.list_subscribers("101", page=1, page_size=10)

    assert len(exchanges) == 9
    [page] = [response for response in exchanges if "page=" in response.request.url]
    # A page is an array of the contract's person resource (see BEYOND_THE_CONTRACT).
    assert len(page.json()) == 1
    assert [
        validate_schema("urn:vibes:platform#/components/schemas/personResponse", person)
        for person in page.json()
    ] == [[]]
    problems = {}
    for response in exchanges:
        if response is page:
            continue
        url = response.request.url.replace(
            vibes_simulator.url, PLATFORM_URL if "/companies/" in response.request.url else CONNECT_URL
        )
        operation = find_operation(response.request.method, url)
        assert operation is not None, url
        found = _response_problems(operation, response)
        if found:
            problems[str(operation)] = found
    assert problems == {}


# --- Callback registration: the types and the test events the app asks for ----------------------


def _callback_types(schema_names) -> set[str]:
    schemas = PLATFORM_SPEC["components"]["schemas"]
    return {value for name in schema_names for value in schemas[name]["properties"]["callback_type"]["enum"]}


def test_the_types_each_api_registers_are_the_contracts():
    from vibes import callback_types

    schemas = PLATFORM_SPEC["components"]["schemas"]
    assert callback_types.PLATFORM_TYPES == _callback_types(
        name for name in schemas if name.startswith("callbackRequest-")
    )
    assert callback_types.CONNECT_TYPES == set(
        CONNECT_SPEC["components"]["schemas"]["CallbackCreate"]["properties"]["callback_type"]["enum"]
    )


@pytest.mark.django_db
def test_every_test_event_the_app_asks_for_follows_the_contract():
    from tests.vibes.factories import AcquisitionCampaignFactory
    from vibes.callback_types import PLATFORM_TYPES
    from vibes.callbacks import APPLIERS
    from vibes.registration.testing import TESTABLE_TYPES, callback_test_details

    AcquisitionCampaignFactory()
    client = VibesClient(
        platform_url=PLATFORM_URL,
        connect_url=CONNECT_URL,
        company_key="acme",
        username=USERNAME,
        password=PASSWORD,
        short_code="12345",
    )
    asked = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback("POST", re.compile(r"https://.*"), callback=canned_answer)
        for callback_type in sorted(APPLIERS):
            details, _why = callback_test_details(callback_type, "callbacks-test-1")
            if details is not None:
                client.send_test_callback(callback_type, **details)
                asked.append(callback_type)
        requests_made = [call.request for call in mocked.calls]
    assert set(asked) == {t for t in APPLIERS if t in PLATFORM_TYPES} & TESTABLE_TYPES
    problems = {f"{r.method} {r.body}": contract_violations(r) for r in requests_made}
    assert {request: found for request, found in problems.items() if found} == {}


def test_the_simulator_registers_in_the_contract_shapes(vibes_simulator):
    from tests.vibes.simulated import make_client

    client = make_client(vibes_simulator.url)
    exchanges = []
    send = client.session.send

    def recording_send(prepared, **kwargs):
        response = send(prepared, **kwargs)
        exchanges.append(response)
        return response

    client.session.send = recording_send
    made = client.register_callback("subscription_added", url=CALLBACK_URL)
    client.list_callbacks()
    client.update_callback(made.id, "subscription_added", url=CALLBACK_URL + "?v=2")
    client.send_test_callback(
        "subscription_added", subscription={"person": {"id": "t1"}, "subscription_list": {"id": "101"}}
    )
    client.cancel_callback(made.id)
    client.register_connect_callback("delivery_receipt", url=CALLBACK_URL)

    assert len(exchanges) == 6
    problems = {}
    for response in exchanges:
        url = response.request.url.replace(
            vibes_simulator.url, PLATFORM_URL if "/companies/" in response.request.url else CONNECT_URL
        )
        operation = find_operation(response.request.method, url)
        assert operation is not None, url
        found = _response_problems(operation, response)
        if found:
            problems[str(operation)] = found
    assert problems == {}


# --- The callbacks the app reads: inbound messages ------------------------------------------

CONNECT_CALLBACK_TYPES = CONNECT_SPEC["components"]["schemas"]["CallbackCreate"]["properties"][
    "callback_type"
]["enum"]
PLATFORM_SCHEMAS = PLATFORM_SPEC["components"]["schemas"]
# The body of an unmatched message as Vibes documents it: the contract files name
# the event type only, so the fields are those of the example on Vibes' page
# (developer-platform.vibes.com/reference/unmatched-message-callbacks); the values are ours.
UNMATCHED_MESSAGE = {
    "event_id": "4c1f0c1e-0000-4000-8000-000000000001",
    "callback_type": "unmatched_message_received",
    "event_type": "unmatched_message_received",  # deprecated by Vibes, still sent
    "event_date": "2026-11-20T09:30:00Z",
    "participant": {"mdn": "+15551230001", "carrier_id": "104"},
    "source_code": {
        "company_key": "acme",
        "code": "12345",
        "country_code": "1",
        "code_type": "SC",
        "default_response": "Thanks for your message.",
        "response_sent": True,
    },
    "message": "Do you deliver on Sundays?",
    "message_id": "4c1f0c1e-0000-4000-8000-000000000002",
    "txn_id": "4c1f0c1e-0000-4000-8000-000000000003",
    "receipt_date": "2026-11-20T09:30:02+00:00",
}


def test_the_inbound_message_callbacks_the_app_reads_are_callback_types_of_the_contract():
    from vibes.callbacks import APPLIERS, INBOUND_EVENT_TYPES

    assert set(INBOUND_EVENT_TYPES) <= set(APPLIERS)
    # Connect registers inbound SMS; the Platform registers (and tests) unmatched messages.
    assert "inbound_sms" in CONNECT_CALLBACK_TYPES
    unmatched = "unmatched_message_received"
    assert unmatched in PLATFORM_SCHEMAS["callbackRequest-Unmatched"]["properties"]["callback_type"]["enum"]
    assert unmatched in PLATFORM_SCHEMAS["testcallbackRequest"]["properties"]["callback_type"]["enum"]
    assert set(INBOUND_EVENT_TYPES) == {"inbound_sms", unmatched}


@pytest.mark.django_db
def test_the_documented_unmatched_message_is_read_as_vibes_means_it(vibes_callback_post):
    from datetime import UTC, datetime

    from vibes.models import InboundMessage

    assert vibes_callback_post(UNMATCHED_MESSAGE, event_type="unmatched_message_received").status_code == 200
    message = InboundMessage.objects.get()
    assert (message.mdn, message.text, message.short_code, message.vibes_message_id) == (
        "+15551230001",
        "Do you deliver on Sundays?",
        "12345",
        UNMATCHED_MESSAGE["message_id"],
    )
    assert message.occurred_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert message.unmatched_in_vibes


def _keys(value, prefix=""):
    keys = set()
    for key, child in value.items():
        keys.add(prefix + key)
        if isinstance(child, dict):
            keys |= _keys(child, f"{prefix}{key}.")
    return keys


@pytest.mark.django_db(transaction=True)
def test_the_simulator_posts_inbound_messages_in_the_contract_shapes(vibes_simulator, vibes_live_callbacks):
    from vibes.models import CallbackEvent

    vibes_simulator.reply("+15551230001", "Do you deliver on Sundays?")
    assert vibes_simulator.wait_for_callbacks(30)
    inbound = CallbackEvent.objects.get(event_type="inbound_sms").payload
    # An inbound SMS is a Connect message the other way round: `from` the phone, `to` the short code.
    assert inbound["callback_type"] in CONNECT_CALLBACK_TYPES
    message = {name: inbound[name] for name in ("to", "from", "text")}
    assert validate_schema("urn:vibes:connect#/components/schemas/SmsMessageCreate", message) == []
    assert E164.match(inbound["from"]) and inbound["to"] == "12345"
    unmatched = CallbackEvent.objects.get(event_type="unmatched_message_received")
    assert unmatched.headers.get("X-Vibes-Event-Type") == "unmatched_message_received"
    # Every field of Vibes' documented body but the deprecated event_type, nothing else.
    assert _keys(unmatched.payload) == _keys(UNMATCHED_MESSAGE) - {"event_type"}
    assert unmatched.payload["message_id"] == inbound["message_id"]


# --- The callbacks the simulator sends, in the contract's shapes ----------------------------------------
# Vibes publishes its callback payloads only as examples: a callback is shaped
# like the matching API resource (contract README), and that is what is checked.

SMS_MESSAGE = "urn:vibes:connect#/components/schemas/SmsMessageResponse"
PARTICIPANT = "urn:vibes:platform#/components/schemas/acquisitionParticipantResponse"
SUBSCRIPTION = "urn:vibes:platform#/components/schemas/subscriptionResponse"


def test_delivery_receipts_delivered_and_failed_follow_the_contract(vibes_simulator, callback_catcher):
    client = make_client(vibes_simulator.url)
    client.send_sms(to=MDN, text="Hello", callback_url=callback_catcher.url)
    vibes_simulator.set_faults(receipt_failure_rate=1)
    client.send_sms(to=MDN, text="Hello", callback_url=callback_catcher.url)
    receipts = [r["body"] for r in callback_catcher.wait_for(2)]
    assert sorted(r["status"] for r in receipts) == ["delivered", "failed"]
    assert {r["message_id"] for r in receipts} == {m["message_id"] for m in vibes_simulator.messages()}
    assert [validate_schema(SMS_MESSAGE, receipt) for receipt in receipts] == [[], []]
    # Every status the contract lets a receipt carry is one the app reads.
    enum = CONNECT_SPEC["components"]["schemas"]["SmsMessageResponse"]["properties"]["status"]["enum"]
    assert set(enum) <= RECEIPT_STATUSES


def test_participant_events_of_the_confirmation_follow_the_contract(vibes_simulator, callback_catcher):
    client = make_client(vibes_simulator.url)
    vibes_simulator.configure(callback_url=callback_catcher.url, confirmation_window=0.5)
    client.add_participant("AC-NEWS-WEB", mdn=MDN, external_person_id="42")  # expires
    client.add_participant("AC-VIP", mdn="+15551230002", external_person_id="43")
    vibes_simulator.reply("+15551230002", "N")  # declines
    client.add_participant("AC-NEWS-STORE", mdn="+15551230003", external_person_id="44")
    vibes_simulator.reply("+15551230003", "Y")  # subscribes
    events = {
        (e["headers"]["X-Vibes-Event-Type"], e["body"].get("status", "")): e["body"]
        for e in callback_catcher.wait_for(3)
    }
    assert set(events) == {
        ("ack_participant_changed", "expired"),
        ("ack_participant_changed", "declined"),
        ("subscription_added", ""),
    }
    problems = {
        kind: validate_schema(SUBSCRIPTION if kind[0] == "subscription_added" else PARTICIPANT, body)
        for kind, body in events.items()
    }
    assert problems == dict.fromkeys(events, [])


def test_the_simulators_new_participant_says_when_the_request_expires(vibes_simulator):
    client = make_client(vibes_simulator.url)
    path = "/companies/sim-company/campaigns/acquisition/AC-NEWS-WEB/participants"
    response = client.session.post(f"{vibes_simulator.url}{path}", json={"mobile_phone": {"mdn": MDN}})
    assert response.status_code == 201
    schema = "urn:vibes:platform#/components/schemas/addParticipantResponse"
    assert validate_schema(schema, response.json()) == []
    assert response.json()["expire_date"]
