"""POST /vibes/callbacks/ with bodies no database stores: a clear 400, never a 500 or a false "duplicate";
and a storage error answered 503, so that Vibes delivers the event again."""

import base64
import json
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, VibesListFactory
from vibes.callbacks import MAX_BODY_DEPTH, dedupe_key
from vibes.models import CallbackEvent, Subscription

USERNAME, PASSWORD = "vibes", "callback-pw-123"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
CALLBACKS = {
    "VIBES_CALLBACK_USERNAME": USERNAME,
    "VIBES_CALLBACK_PASSWORD": PASSWORD,
    "VIBES_CALLBACK_ALLOWED_IPS": [],
}


@pytest.fixture(autouse=True)
def callback_settings(settings):
    for name, value in CALLBACKS.items():
        setattr(settings, name, value)


@pytest.fixture
def post(client):
    def post(body: str | bytes, event_type="person_added"):
        return client.post(
            "/vibes/callbacks/",
            body,
            content_type="application/json",
            headers={"Authorization": AUTH, "X-Vibes-Event-Type": event_type},
        )

    return post


def nested(depth: int) -> str:
    """An object `depth` levels deep: {"a": {"a": ... {"a": 1} ...}}."""
    return '{"a":' * depth + "1" + "}" * depth


# --- Depth --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_body_nested_100000_levels_gets_400_with_the_limit(post):
    response = post(nested(100_000))
    assert response.status_code == 400
    assert response.json() == {
        "error": f"The body is nested deeper than {MAX_BODY_DEPTH} levels (at byte 500)."
    }
    assert not CallbackEvent.objects.exists()


@pytest.mark.django_db
def test_a_body_too_deep_for_the_database_is_refused_every_time_never_as_a_duplicate(post):
    """Issue 11: 2,000 levels were refused by SQLite's JSON check and then answered "duplicate"."""
    body = '{"event_type": "subscription_added", "person": ' + nested(2_000) + "}"
    for _attempt in range(2):
        response = post(body)
        assert response.status_code == 400
        assert "nested deeper than" in response.json()["error"]
    assert not CallbackEvent.objects.exists()


@pytest.mark.django_db
def test_a_body_as_deep_as_the_limit_is_stored_and_read_back_whole(post):
    body = '{"event_type": "person_added", "person": ' + nested(MAX_BODY_DEPTH - 1) + "}"
    response = post(body)
    assert response.status_code == 200
    assert CallbackEvent.objects.get().payload == json.loads(body)
    assert post(body).json() == {"status": "duplicate"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "inner",
    [
        nested(MAX_BODY_DEPTH),
        "[" * MAX_BODY_DEPTH + "]" * MAX_BODY_DEPTH,
        '[{"a":' * (MAX_BODY_DEPTH // 2) + "1" + "}]" * (MAX_BODY_DEPTH // 2),
    ],
    ids=["objects", "lists", "both"],
)
def test_one_level_more_than_the_limit_is_refused(post, inner):
    response = post('{"event_type": "person_added", "person": ' + inner + "}")
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["error"]


@pytest.mark.django_db
def test_brackets_inside_text_do_not_count_as_depth(post):
    body = json.dumps({"event_type": "person_added", "note": "[{" * 5_000 + '\\"' + "}]" * 5_000})
    assert post(body).status_code == 200


# --- Values no database stores ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, error",
    [
        ('{"person": {"score": NaN}}', "The number at person.score is not finite (NaN or Infinity)."),
        ('{"scores": [1, -Infinity]}', "The number at scores[1] is not finite (NaN or Infinity)."),
        ('{"score": 1e400}', "The number at score is not finite (NaN or Infinity)."),
        ('{"name": "Jos\\u0000"}', "The text at name holds a NUL character or an unpaired surrogate."),
        (
            '{"list": [{"name": "\\ud800"}]}',
            "The text at list[0].name holds a NUL character or an unpaired surrogate.",
        ),
        ('{"person": {"\\udfff": 1}}', "A key at person holds a NUL character or an unpaired surrogate."),
        (b'{"name": "K\xf6ln"}', "The body is not UTF-8 (byte 11)."),
        (b"<receipt>\x00</receipt>", "The body holds a NUL character."),
    ],
    ids=["nan", "infinity", "overflow", "nul", "surrogate", "surrogate-key", "latin-1", "raw-nul"],
)
def test_values_no_database_stores_get_400_saying_where(post, body, error):
    response = post(body)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert not CallbackEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"n": ' + "9" * 5_000 + "}", "The body holds a number too long to read."),
        ('{"n": 1,}', "The body is not JSON (line 1, column 8)."),
    ],
    ids=["long-integer", "not-json"],
)
def test_text_that_is_not_a_readable_json_object_is_kept_as_it_came(post, body, reason):
    """Storable, so never refused: Vibes drops a callback answered 4xx for good."""
    response = post(body)
    assert (response.status_code, response.json()) == (200, {"status": "unreadable"})
    event = CallbackEvent.objects.get()
    assert (event.outcome, event.note, event.raw_body) == ("unreadable", reason, body)


@pytest.mark.django_db
def test_a_body_larger_than_the_upload_limit_gets_400(post, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = post(json.dumps({"event_type": "person_added", "note": "x" * 2_000}))
    assert response.status_code == 400
    assert response.json() == {"error": "The body is larger than 1000 bytes."}


# --- Storage errors -----------------------------------------------------------------------------------------


def refuse_callback_events(errcode: str):
    """Make the database refuse every new callback event, as a full disk or a broken constraint would."""
    table = CallbackEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # SQLite reports a trigger's abort as a constraint failure: an IntegrityError, like a duplicate.
            cursor.execute(
                f"CREATE TRIGGER refuse_events BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION 'refused for the test' USING ERRCODE = '{errcode}'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_events BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_events()"
            )


def allow_callback_events():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER refuse_events")
        else:
            cursor.execute(f"DROP TRIGGER refuse_events ON {CallbackEvent._meta.db_table}")
            cursor.execute("DROP FUNCTION refuse_events()")


@pytest.mark.django_db
@pytest.mark.parametrize("errcode", ["check_violation", "disk_full"], ids=["integrity-error", "disk-full"])
def test_a_storage_error_gets_503_and_never_passes_for_a_duplicate(post, errcode, caplog):
    if connection.vendor == "sqlite" and errcode == "disk_full":
        pytest.skip("SQLite triggers can only raise a constraint failure")
    vibes_list = VibesListFactory(vibes_id="101")
    lead = LeadFactory(mobile_phone="+15551230001")
    body = json.dumps(
        {
            "subscription_list": {"id": "101"},
            "mobile_phone": {"mdn": "+15551230001"},
            "opt_out_date": "2026-11-10T09:00:00Z",
        }
    )
    refuse_callback_events(errcode)
    response = post(body, event_type="subscription_removed")
    assert response.status_code == 503
    assert response.json() == {"error": "The event could not be stored; deliver it again later."}
    assert "could not be stored" in caplog.text
    assert not CallbackEvent.objects.exists()

    # Vibes delivers it again once the database takes it: it is new, not a duplicate.
    allow_callback_events()
    response = post(body, event_type="subscription_removed")
    assert response.json() == {"status": "applied"}
    assert Subscription.objects.get(lead=lead, vibes_list=vibes_list).status == "unsubscribed"


# --- Any body at all ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
# A body that every handler acts on, and changes to it: any field the
# handlers read, removed or given a value of any type.
VALID = {
    "subscription_list": {"id": "101"},
    "acquisition_campaign": {"acquisition_id": "AC-1"},
    "mobile_phone": {"mdn": "+15551230001"},
    "external_person_id": "1",
    "person": {"person_key": "PK1"},
    "opt_in_date": "2026-11-05T09:00:00Z",
    "opt_out_date": "2026-11-10T09:00:00Z",
    "opt_out_reason": "user_opt_out",
    "participation_date": "2026-11-04T09:00:00Z",
    "status": "confirmed",
    "message_id": "M1",
    "occurred_at": "2026-11-10T09:00:00Z",
}
FIELDS = [*VALID, "event_type", "mdn", "to", "subscription_list_id", "acquisition_id"]
REMOVED = object()
# Values close to the real ones, so that bodies get past the first checks.
plausible = st.sampled_from(
    [
        "101",
        {"id": "101"},
        {"id": 101},
        {"mdn": "+15551230001"},
        {"mdn": 15551230001},
        "+15551230001",
        {"acquisition_id": "AC-1"},
        "AC-1",
        "1",
        "2",
        "²",
        "9" * 30,
        "subscribed",
        "expired",
        "pending",
        "2026-11-10T09:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "2026-11-10",
    ]
)
changes = st.dictionaries(st.sampled_from(FIELDS), json_values | plausible | st.just(REMOVED), max_size=4)


@override_settings(**CALLBACKS)
class AnyBodyTests(TestCase):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    # Values that once reached a conversion unguarded, for every event type.
    @example(event_type="subscription_removed", change={"external_person_id": "²"})
    @example(event_type="subscription_added", change={"external_person_id": "9" * 30})
    @example(event_type="subscription_added", change={"opt_in_date": "9999-12-31T23:59:59-23:59"})
    @example(event_type="subscription_removed", change={"opt_out_date": "0001-01-01T00:00:00+01:00"})
    @example(event_type="ack_participant_changed", change={"participation_date": "2026-11-04T09:00:00"})
    @example(event_type="delivery_receipt", change={"occurred_at": "9999-12-31T23:59:59-23:59"})
    @example(event_type="subscription_added", change={"mobile_phone": {"mdn": "+1" + "5" * 300}})
    @example(event_type="ack_participant_added", change={"status": {"a": 1}, "acquisition_campaign": [1]})
    @given(
        event_type=st.sampled_from(
            [
                "subscription_added",
                "subscription_removed",
                "ack_participant_added",
                "ack_participant_changed",
                "delivery_receipt",
                "person_added",
            ]
        ),
        change=changes,
    )
    def test_no_body_gets_500(self, event_type, change):
        body = {**VALID, **change}
        body = {name: value for name, value in body.items() if value is not REMOVED}
        vibes_list = VibesListFactory(vibes_id="101")
        AcquisitionCampaignFactory(vibes_id="AC-1", vibes_list=vibes_list)
        LeadFactory(pk=1, mobile_phone="+15551230001")
        LeadFactory(pk=2, mobile_phone="+15551230002")
        response = self.client.post(
            "/vibes/callbacks/",
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": AUTH, "X-Vibes-Event-Type": event_type},
        )
        assert response.status_code in (200, 400), response.content


@pytest.mark.django_db(transaction=True)
def test_the_same_event_stored_meanwhile_by_another_delivery_is_a_duplicate(client):
    """Only a collision on the dedupe key is a duplicate: the other delivery's row is there and is counted."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes its write lock first, so deliveries never collide on the key")
    body = {"event_type": "person_added", "person": {"person_key": "PK1"}}
    holding, release = threading.Event(), threading.Event()

    def other_delivery():
        # Stores the event and keeps its transaction open until told.
        try:
            with transaction.atomic():
                CallbackEvent.objects.create(
                    event_type="person_added",
                    dedupe_key=dedupe_key("person_added", body),
                    payload=body,
                    outcome="ignored",
                )
                holding.set()
                release.wait(60)
        finally:
            connections.close_all()

    def this_delivery():
        try:
            answers.append(
                client.post(
                    "/vibes/callbacks/",
                    json.dumps(body),
                    content_type="application/json",
                    headers={"Authorization": AUTH},
                )
            )
        finally:
            connections.close_all()

    answers = []
    other = threading.Thread(target=other_delivery)
    other.start()
    assert holding.wait(30)
    this = threading.Thread(target=this_delivery)
    this.start()
    # Its INSERT now waits for the other transaction's row with the same key.
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT%%'"
            )
            if cursor.fetchone()[0]:
                break
            assert time.monotonic() < deadline, "the second delivery never reached its INSERT"
            time.sleep(0.05)
    release.set()
    other.join(30)
    this.join(30)
    [answer] = answers
    assert (answer.status_code, answer.json()) == (200, {"status": "duplicate"})
    assert CallbackEvent.objects.get().deliveries == 2
