"""What the simulated APIs speak: their paths, their error bodies, and the checks
every API request passes (Basic auth, the API version, the company, a JSON body)."""

import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

_C = r"/companies/(?P<company_key>[^/]+)"
ROUTES = [
    (re.compile(rf"^{_C}/mobiledb/subscription_lists/?$"), {"GET": "lists"}),
    (
        re.compile(rf"^{_C}/mobiledb/subscription_lists/(?P<list_id>[^/]+)/acquisition_campaigns/?$"),
        {"GET": "list_campaigns"},
    ),
    (re.compile(rf"^{_C}/campaigns/acquisition/?$"), {"GET": "campaigns"}),
    (
        re.compile(rf"^{_C}/campaigns/acquisition/(?P<acquisition_id>[^/]+)/participants/?$"),
        {"POST": "add_participant"},
    ),
    (
        re.compile(rf"^{_C}/mobiledb/subscription_lists/(?P<list_id>[^/]+)/subscribers/?$"),
        {"GET": "subscribers"},
    ),
    (re.compile(rf"^{_C}/mobiledb/persons/?$"), {"GET": "find_person"}),
    (
        re.compile(
            rf"^{_C}/mobiledb/persons/external/(?P<external_person_id>[^/]+)/subscriptions/(?P<list_id>[^/]+)/?$"
        ),
        {"GET": "get_subscription", "DELETE": "unsubscribe"},
    ),
    (
        re.compile(rf"^{_C}/mobiledb/persons/(?P<person_key>[^/]+)/subscriptions/(?P<list_id>[^/]+)/?$"),
        {"GET": "get_subscription", "DELETE": "unsubscribe"},
    ),
    (re.compile(r"^/api/v1/sms/messages/?$"), {"POST": "send_sms"}),
    (re.compile(rf"^{_C}/config/callbacks/?$"), {"GET": "list_callbacks", "POST": "register_callback"}),
    (
        re.compile(rf"^{_C}/config/callbacks/(?P<callback_id>[^/]+)/?$"),
        {"GET": "get_callback", "PUT": "update_callback", "DELETE": "cancel_callback"},
    ),
    (re.compile(rf"^{_C}/config/callback_events/test/?$"), {"POST": "test_callback"}),
    (re.compile(r"^/api/v1/callbacks/?$"), {"POST": "register_connect_callback"}),
]
CONNECT_OPERATIONS = {"send_sms", "register_connect_callback"}
# Operations whose bodies carry a callbacks URL with its password: logged without it.
URL_BODY_OPERATIONS = {"register_callback", "update_callback", "register_connect_callback"}


def now_iso(later: float = 0, *, now: datetime | None = None) -> str:
    """Now (or `now`), `later` seconds on, as Vibes writes times."""
    moment = (now or datetime.now(UTC)) + timedelta(seconds=later)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Answer(Exception):
    """Ends an operation early with an HTTP answer."""

    def __init__(self, status: int, payload=None):
        self.status = status
        self.payload = payload


def platform_error(status: int, message: str, code="") -> Answer:
    return Answer(status, {"errors": [{"message": message, "code": code or status}]})


def connect_error(status: int, message: str, code: str) -> Answer:
    # Connect's own error shape (connect-openapi.yml `Error`), not the Platform envelope.
    return Answer(status, {"error": code, "message": message})


def route(method: str, path: str):
    """(operation, path parameters) for a request; (None, the Answer: 404 or 405) for no operation."""
    for pattern, operations in ROUTES:
        match = pattern.match(path)
        if match:
            if method not in operations:
                return None, platform_error(405, f"{method} is not allowed here.", 405)
            return operations[method], {k: unquote(v) for k, v in match.groupdict().items()}
    return None, platform_error(404, "Not found.", 404)


def check_request(headers, params, *, connect: bool, expected_auth: str, company_key: str) -> None:
    """Raise the Answer Vibes gives a request without our credentials, API version or company."""
    error = connect_error if connect else platform_error
    if not hmac.compare_digest(headers.get("Authorization", ""), expected_auth):
        raise error(401, "Invalid or missing credentials.", "unauthorized")
    if connect:
        return
    if headers.get("X-API-Version") != "2":
        # Version 1 is Vibes' default and cannot take E.164 numbers.
        raise error(400, "This simulator speaks X-API-Version 2 only.", "UNSUPPORTEDAPIVERSION")
    if params.get("company_key") != company_key:
        raise error(404, "The company_key cannot be found.", 404)


def json_body(raw_body: bytes, *, connect: bool) -> dict:
    """The request's JSON object, or the Answer that refuses it."""
    error = connect_error if connect else platform_error
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise error(400, "The request body is not JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise error(400, "The request body must be a JSON object.", "invalid_json")
    return body
